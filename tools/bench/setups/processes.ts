/**
 * Process helpers shared by the benchmark's setup drivers: POSIX shell quoting, log
 * tails, and finding, stopping (SIGSTOP/SIGCONT, for `daemon-stall`) and killing
 * process trees by PID. Scripts started by a daemon outlive it when it is SIGKILLed, so
 * each PID is paired with its start time and a recycled PID is never signalled.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Bound on processes going away after SIGKILL. */
export const KILL_WAIT_MS = 5_000;
export const LOG_TAIL_LINES = 20;

/** Quotes a string for a POSIX shell. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The last `count` lines of a file, or a placeholder. */
export function tailFile(path: string, count = LOG_TAIL_LINES): string {
  if (!existsSync(path)) return '(no file)';
  return readFileSync(path, 'utf8').trimEnd().split('\n').slice(-count).join('\n');
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}


/** A process named by PID and start time (clock ticks after boot). */
export interface ProcessRef {
  readonly pid: number;
  readonly ppid: number;
  readonly startTicks: number;
}

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly state: string;
  readonly startTicks: number;
}

/** Fields after the parenthesised comm: state is field 3, ppid 4, starttime 22. */
const STAT_STATE_INDEX = 0;
const STAT_PPID_INDEX = 1;
const STAT_STARTTIME_INDEX = 19;
/** Bound on the rounds of freezing newly found descendants. */
const FREEZE_ROUNDS = 20;

function readStat(pid: number): ProcStat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[STAT_STATE_INDEX];
  const ppid = Number(fields[STAT_PPID_INDEX]);
  const startTicks = Number(fields[STAT_STARTTIME_INDEX]);
  if (state === undefined || !Number.isFinite(ppid) || !Number.isFinite(startTicks)) return null;
  return { pid, ppid, state, startTicks };
}

/** A reference to a live process, or `null`. */
export function processRef(pid: number): ProcessRef | null {
  const stat = readStat(pid);
  if (!stat || stat.state === 'Z') return null;
  return { pid, ppid: stat.ppid, startTicks: stat.startTicks };
}

/** Whether the referenced process still runs (same start time, not a zombie). */
export function processAlive(ref: ProcessRef): boolean {
  const stat = readStat(ref.pid);
  return !!stat && stat.startTicks === ref.startTicks && stat.state !== 'Z';
}

/** The command line of a process, NULs as spaces ('' when gone). */
export function processCmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    return '';
  }
}

function allProcesses(): ProcStat[] {
  const stats: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = readStat(Number(entry));
    if (stat && stat.state !== 'Z') stats.push(stat);
  }
  return stats;
}

/** Live descendants (children, grandchildren, ...) of the live processes in `roots`. */
export function descendants(roots: readonly ProcessRef[]): ProcessRef[] {
  const table = allProcesses();
  const known = new Set(roots.filter(processAlive).map((ref) => ref.pid));
  const found: ProcessRef[] = [];
  for (let grew = true; grew; ) {
    grew = false;
    for (const stat of table) {
      if (!known.has(stat.pid) && known.has(stat.ppid)) {
        known.add(stat.pid);
        found.push({ pid: stat.pid, ppid: stat.ppid, startTicks: stat.startTicks });
        grew = true;
      }
    }
  }
  return found;
}

/** Sends `signal` to each live referenced process. */
export function signalAll(refs: readonly ProcessRef[], signal: NodeJS.Signals): void {
  for (const ref of refs) {
    if (!processAlive(ref)) continue;
    try {
      process.kill(ref.pid, signal);
    } catch {
      // Gone in between.
    }
  }
}

/** Waits (bounded) until none of `refs` runs; resolves with whether they all went. */
export async function waitGone(refs: readonly ProcessRef[], boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    if (!refs.some(processAlive)) return true;
    if (Date.now() >= deadline) return false;
    await sleep(50);
  }
}

/**
 * Freezes `roots` and all their descendants (SIGSTOP, repeated until no new child
 * appears, since a parent may fork between the listing and its own stop). Returns
 * every process stopped, roots first, for a later SIGCONT or SIGKILL.
 */
export function freezeProcessTrees(roots: readonly ProcessRef[]): ProcessRef[] {
  const frozen = new Map<number, ProcessRef>();
  for (const ref of roots.filter(processAlive)) frozen.set(ref.pid, ref);
  signalAll([...frozen.values()], 'SIGSTOP');
  for (let round = 0; round < FREEZE_ROUNDS; round++) {
    const fresh = descendants([...frozen.values()]).filter((ref) => !frozen.has(ref.pid));
    if (fresh.length === 0) break;
    for (const ref of fresh) frozen.set(ref.pid, ref);
    signalAll(fresh, 'SIGSTOP');
  }
  return [...frozen.values()];
}

/**
 * Freezes `roots` and all their descendants (`freezeProcessTrees`), SIGKILLs them all
 * and waits (bounded) until they are gone.
 */
export async function killProcessTrees(roots: readonly ProcessRef[], boundMs: number): Promise<boolean> {
  const all = freezeProcessTrees(roots);
  signalAll(all, 'SIGKILL');
  return waitGone(all, boundMs);
}

/**
 * What `daemon-stall` stopped, per lab and node, so that the SIGCONT reaches exactly
 * those processes (drivers share it: each stalls its own processes).
 */
const stalled = new WeakMap<object, Map<string, ProcessRef[]>>();

/** Freezes the trees of `roots` as `node`'s stall on `lab`; a second stall of the same node adds to it. */
export function stallProcesses(lab: object, node: string, roots: readonly ProcessRef[]): ProcessRef[] {
  const byNode = stalled.get(lab) ?? new Map<string, ProcessRef[]>();
  stalled.set(lab, byNode);
  const frozen = freezeProcessTrees(roots);
  byNode.set(node, [...(byNode.get(node) ?? []), ...frozen]);
  return frozen;
}

/** SIGCONT of what `stallProcesses` stopped for `node` on `lab`; idempotent. */
export function resumeStalled(lab: object, node: string): void {
  const byNode = stalled.get(lab);
  const refs = byNode?.get(node) ?? [];
  byNode?.delete(node);
  // A recycled PID is never signalled: each reference carries its start time.
  signalAll(refs, 'SIGCONT');
}
