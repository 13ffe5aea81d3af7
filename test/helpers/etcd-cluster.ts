/**
 * Starts a real etcd cluster (Debian's `etcd-server`, 3.4) of 1 or 3 members on
 * loopback for adapter tests: free ports, a private temporary directory per cluster,
 * fast raft timings (heartbeat 50 ms, election 250 ms: etcd then grants a 1 s lease as
 * 1 s; see ../shared/notes/quorum-facts.md), a unique cluster token.
 *
 * Never uses the package's own `etcd.service` (127.0.0.1:2379): every member listens on
 * ports the kernel just handed out. Members are only ever signalled by their own PID.
 * Every wait is bounded in time. `stopAllEtcdClusters()` (register it in `afterAll`)
 * ends what a failed test left running; a process `exit` hook SIGKILLs any survivor.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './free-port.js';

/** Where Debian installs the server. */
export const ETCD_BIN = process.env['ETCD_BIN'] ?? '/usr/bin/etcd';

/** Raft heartbeat; etcd refuses an election timeout under 5 × this. */
export const HEARTBEAT_MS = 50;
/** Raft election timeout: the granted lease TTL is max(requested, ceil(1.5 × this)). */
export const ELECTION_MS = 250;

const HOST = '127.0.0.1';
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const HEALTH_PROBE_TIMEOUT_MS = 1_000;
const POLL_MS = 100;
const START_ATTEMPTS = 3;

/** One member: its ports stay the same across restarts. */
export interface EtcdMember {
  readonly name: string;
  /** `http://127.0.0.1:<port>`, what the client connects to. */
  readonly clientUrl: string;
  readonly peerUrl: string;
  /** PID of the current process, or null while the member is stopped. */
  readonly pid: number | null;
}

export interface EtcdCluster {
  readonly members: readonly EtcdMember[];
  /** The members' client URLs, for the client's endpoint list. */
  readonly endpoints: readonly string[];
  /** Sends a signal to one member's process (SIGSTOP / SIGCONT to freeze and thaw it). */
  signal(index: number, sig: NodeJS.Signals): void;
  /**
   * SIGSTOPs one member and waits (bounded) until every one of its threads is stopped:
   * kill() returns once the signal is queued, and a thread busy on another CPU or in a
   * system call (etcd's WAL fsync) runs on until it next enters the kernel or returns, so
   * a request sent right after kill() could still be served. True once stopped.
   */
  freeze(index: number): Promise<boolean>;
  /** SIGKILLs one member and waits (bounded) until it has exited. */
  kill(index: number): Promise<void>;
  /** Stops one member (SIGCONT, SIGTERM, then SIGKILL). */
  stop(index: number): Promise<void>;
  /** Starts a stopped or killed member again on its ports and data dir, and waits until it is healthy. */
  start(index: number): Promise<void>;
  /** Whether the member answers /health with true within the probe timeout. */
  healthy(index: number): Promise<boolean>;
  /** Waits (at most `timeoutMs`) until every running member is healthy; false if not by then. */
  settle(timeoutMs?: number): Promise<boolean>;
  /** Ends every member this cluster started and removes its directory. Idempotent. */
  teardown(): Promise<void>;
}

interface MemberSlot {
  readonly name: string;
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dataDir: string;
  readonly logFile: string;
  child: ChildProcess | null;
}

const live = new Set<ChildProcess>();
const clusters = new Set<EtcdCluster>();

process.once('exit', () => {
  for (const child of live) {
    if (child.pid !== undefined && !exited(child)) {
      try {
        process.kill(child.pid, 'SIGCONT');
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

/** Bound on waiting for a SIGSTOPped member's threads to stop. */
const FREEZE_WAIT_MS = 2_000;

/** Whether every thread of `pid` is stopped (state `T` in /proc/<pid>/task/<tid>/stat). */
async function allThreadsStopped(pid: number): Promise<boolean> {
  try {
    const tids = await readdir(`/proc/${pid}/task`);
    for (const tid of tids) {
      const stat = await readFile(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      // The state follows the command name in parentheses, which may itself hold spaces.
      if (stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'T') return false;
    }
    return tids.length > 0;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return true;
  return Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(timeoutMs).then(() => exited(child)),
  ]);
}

function send(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined || exited(child)) return;
  try {
    process.kill(child.pid, sig);
  } catch {
    // Exited meanwhile.
  }
}

async function end(child: ChildProcess, gentle: boolean): Promise<void> {
  // A SIGSTOPped member would never act on SIGTERM.
  send(child, 'SIGCONT');
  if (gentle) {
    send(child, 'SIGTERM');
    if (await waitForExit(child, STOP_TIMEOUT_MS)) {
      live.delete(child);
      return;
    }
  }
  send(child, 'SIGKILL');
  await waitForExit(child, STOP_TIMEOUT_MS);
  live.delete(child);
}

async function healthy(clientUrl: string): Promise<boolean> {
  try {
    const response = await fetch(`${clientUrl}/health`, { signal: AbortSignal.timeout(HEALTH_PROBE_TIMEOUT_MS) });
    const body: unknown = await response.json();
    return typeof body === 'object' && body !== null && (body as { health?: unknown }).health === 'true';
  } catch {
    return false;
  }
}

function clientUrl(slot: MemberSlot): string {
  return `http://${HOST}:${slot.clientPort}`;
}

function peerUrl(slot: MemberSlot): string {
  return `http://${HOST}:${slot.peerPort}`;
}

function spawnMember(slot: MemberSlot, initialCluster: string, token: string): ChildProcess {
  const args = [
    '--name', slot.name,
    '--data-dir', slot.dataDir,
    '--listen-client-urls', clientUrl(slot),
    '--advertise-client-urls', clientUrl(slot),
    '--listen-peer-urls', peerUrl(slot),
    '--initial-advertise-peer-urls', peerUrl(slot),
    '--initial-cluster', initialCluster,
    '--initial-cluster-token', token,
    '--initial-cluster-state', 'new',
    '--heartbeat-interval', String(HEARTBEAT_MS),
    '--election-timeout', String(ELECTION_MS),
    '--logger', 'zap',
    '--log-outputs', slot.logFile,
    '--log-level', 'warn',
    // Fewer WAL and snapshot files kept on a shared tmp.
    '--max-wals', '2',
    '--max-snapshots', '1',
  ];
  const child = spawn(ETCD_BIN, args, { stdio: 'ignore' });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

async function logTail(slot: MemberSlot): Promise<string> {
  const log = await readFile(slot.logFile, 'utf8').catch(() => '');
  return log.slice(-1_500);
}

/** Waits (bounded) until every running member answers /health with true. */
async function waitHealthy(slots: readonly MemberSlot[], timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const running = slots.filter((slot) => slot.child !== null && !exited(slot.child));
    if (running.length < slots.filter((slot) => slot.child !== null).length) return false;
    const results = await Promise.all(running.map((slot) => healthy(clientUrl(slot))));
    if (results.every(Boolean)) return true;
    await sleep(POLL_MS);
  }
  return false;
}

async function tryStart(root: string, size: number): Promise<{ slots: MemberSlot[]; initialCluster: string; token: string } | string> {
  const slots: MemberSlot[] = [];
  for (let i = 0; i < size; i++) {
    const dataDir = join(root, `m${i}`);
    await rm(dataDir, { recursive: true, force: true });
    await mkdir(dataDir, { mode: 0o700 });
    slots.push({
      name: `m${i}`,
      clientPort: await freePort(HOST),
      peerPort: await freePort(HOST),
      dataDir,
      logFile: join(root, `m${i}.log`),
      child: null,
    });
  }
  const initialCluster = slots.map((slot) => `${slot.name}=${peerUrl(slot)}`).join(',');
  const token = `redis-ha-test-${randomBytes(6).toString('hex')}`;
  for (const slot of slots) slot.child = spawnMember(slot, initialCluster, token);
  if (await waitHealthy(slots, START_TIMEOUT_MS)) return { slots, initialCluster, token };
  const logs = await Promise.all(slots.map(async (slot) => `${slot.name}: ${await logTail(slot)}`));
  await Promise.all(slots.map((slot) => (slot.child === null ? undefined : end(slot.child, false))));
  return `etcd cluster of ${size} did not become healthy within ${START_TIMEOUT_MS} ms:\n${logs.join('\n')}`;
}

/** Starts an etcd cluster of `size` members (1 or 3) and waits until every member is healthy. */
export async function startEtcdCluster(size: 1 | 3): Promise<EtcdCluster> {
  const root = await mkdtemp(join(tmpdir(), 'redis-ha-etcd-'));
  let started: Awaited<ReturnType<typeof tryStart>> = '';
  // A port handed out by the kernel can be taken by another process before etcd binds it.
  for (let attempt = 0; attempt < START_ATTEMPTS && typeof started === 'string'; attempt++) {
    started = await tryStart(root, size);
  }
  if (typeof started === 'string') {
    await rm(root, { recursive: true, force: true });
    throw new Error(started);
  }
  const { slots, initialCluster, token } = started;
  let tornDown = false;

  const slotAt = (index: number): MemberSlot => {
    const slot = slots[index];
    if (slot === undefined) throw new RangeError(`no etcd member ${index} (cluster of ${slots.length})`);
    return slot;
  };

  const cluster: EtcdCluster = {
    members: slots.map((slot) => ({
      name: slot.name,
      clientUrl: clientUrl(slot),
      peerUrl: peerUrl(slot),
      get pid(): number | null {
        return slot.child !== null && !exited(slot.child) ? (slot.child.pid ?? null) : null;
      },
    })),
    endpoints: slots.map(clientUrl),
    signal(index, sig) {
      const child = slotAt(index).child;
      if (child !== null) send(child, sig);
    },
    async freeze(index) {
      const child = slotAt(index).child;
      if (child === null || child.pid === undefined) return false;
      send(child, 'SIGSTOP');
      const until = Date.now() + FREEZE_WAIT_MS;
      while (Date.now() < until) {
        if (await allThreadsStopped(child.pid)) return true;
        await sleep(5);
      }
      return false;
    },
    async kill(index) {
      const slot = slotAt(index);
      if (slot.child !== null) await end(slot.child, false);
      slot.child = null;
    },
    async stop(index) {
      const slot = slotAt(index);
      if (slot.child !== null) await end(slot.child, true);
      slot.child = null;
    },
    async start(index) {
      const slot = slotAt(index);
      if (slot.child !== null && !exited(slot.child)) return;
      slot.child = spawnMember(slot, initialCluster, token);
      if (!(await waitHealthy([slot], START_TIMEOUT_MS))) {
        throw new Error(`etcd member ${slot.name} did not come back within ${START_TIMEOUT_MS} ms:\n${await logTail(slot)}`);
      }
    },
    async healthy(index) {
      const slot = slotAt(index);
      return slot.child !== null && !exited(slot.child) && healthy(clientUrl(slot));
    },
    async settle(timeoutMs = START_TIMEOUT_MS) {
      return waitHealthy(slots.filter((slot) => slot.child !== null), timeoutMs);
    },
    async teardown() {
      if (tornDown) return;
      tornDown = true;
      clusters.delete(cluster);
      await Promise.all(slots.map(async (slot) => {
        if (slot.child !== null) await end(slot.child, true);
        slot.child = null;
      }));
      await rm(root, { recursive: true, force: true });
    },
  };
  clusters.add(cluster);
  return cluster;
}

/** Tears down every cluster started by this helper that is still up; for `afterAll`. */
export async function stopAllEtcdClusters(): Promise<void> {
  await Promise.all([...clusters].map((cluster) => cluster.teardown()));
}
