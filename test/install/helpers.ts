/**
 * Helpers for the install tests: run a command without blocking the event loop (so
 * vitest's timeouts still work during a multi-minute debootstrap), read a systemd unit
 * file into its assignments, find lab or benchmark code in an installed tree, and say
 * loudly why a suite is skipped.
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root directory. */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** What a finished command left behind. */
export interface RunResult {
  readonly status: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Options of `run`. */
export interface RunOptions {
  readonly cwd?: string;
  readonly env?: NodeJS.ProcessEnv;
  /** Its process group is killed with SIGKILL after this long; default 5 minutes. */
  readonly timeoutMs?: number;
}

/**
 * After the command exits, how long to wait for its output pipes to close: a process it
 * left running in the background may hold them open for good.
 */
const CLOSE_GRACE_MS = 2_000;

/**
 * Runs `file args` to completion and collects its output; never throws for an exit status.
 * The command gets its own process group so that a timeout kills what it started too
 * (dpkg, wget, apt, npm), not only the direct child.
 */
export function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // The whole group is gone already.
      }
    }, options.timeoutMs ?? 5 * 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.once('exit', (status, signal) => {
      clearTimeout(timer);
      let closeTimer: NodeJS.Timeout | undefined;
      const finish = (): void => {
        clearTimeout(closeTimer);
        // A leftover process may still hold the pipes: stop reading them.
        child.stdout.destroy();
        child.stderr.destroy();
        resolve({ status, signal, stdout, stderr });
      };
      closeTimer = setTimeout(finish, CLOSE_GRACE_MS);
      child.once('close', finish);
    });
  });
}

/** A readable account of a command's outcome, for assertion messages. */
export function describeRun(what: string, result: RunResult): string {
  return `${what}: exit ${result.status ?? result.signal}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`;
}

/** Whether `file` can be run at all (found on PATH, answers `args`). */
export async function available(file: string, args: readonly string[] = ['--version']): Promise<boolean> {
  try {
    return (await run(file, args, { timeoutMs: 30_000 })).status === 0;
  } catch {
    return false;
  }
}

/**
 * Prints why a suite does not run, where a CI log shows it; returns the reason so it
 * can also name the skipped suite.
 */
export function announceSkip(suite: string, reason: string): string {
  const line = `SKIPPED ${suite}: ${reason}`;
  process.stderr.write(`\n${'!'.repeat(line.length)}\n${line}\n${'!'.repeat(line.length)}\n\n`);
  return reason;
}

/** The assignments of a unit file: section -> key -> values in order (keys repeat). */
export type UnitAssignments = Map<string, Map<string, string[]>>;

/** Parses systemd unit syntax: [Section], Key=value, comments, backslash continuations. */
export function parseUnit(text: string): UnitAssignments {
  const sections: UnitAssignments = new Map();
  let current: Map<string, string[]> | null = null;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      current = new Map();
      sections.set(header[1]!, current);
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0 || current === null) throw new Error(`not a unit file line: ${raw}`);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    current.set(key, [...(current.get(key) ?? []), value]);
  }
  return sections;
}

/** Reads and parses the unit file at `path`. */
export function readUnit(path: string): UnitAssignments {
  return parseUnit(readFileSync(path, 'utf8'));
}

/** The values of `key` in `section` (empty when unset). */
export function unitValues(unit: UnitAssignments, section: string, key: string): string[] {
  return unit.get(section)?.get(key) ?? [];
}

/** The last value of `key` in `section` (the one that counts for scalar settings). */
export function unitValue(unit: UnitAssignments, section: string, key: string): string | undefined {
  return unitValues(unit, section, key).at(-1);
}

/** `systemd-analyze security`'s "Overall exposure level for X: 2.1 OK" as a number. */
export function parseExposure(output: string): number | null {
  const match = /Overall exposure level for \S+:\s*(\d+(?:\.\d+)?)/.exec(output);
  return match ? Number(match[1]) : null;
}

/** Directories of an install prefix that hold third-party code: Node.js and the npm dependencies. */
const THIRD_PARTY_DIRS = new Set(['node', 'node_modules']);
/** Path segments only the lab and the benchmark have (`tools/lab`, `tools/bench`, their build `dist-tools/`). */
const TOOL_SEGMENTS = new Set(['lab', 'bench', 'tools', 'dist-tools']);
/** The lab's entry points (the demo, the client namespace's writer). */
const TOOL_ENTRY_NAMES = new Set(['demo.js', 'writer.js']);
/** Names that only the lab's and the benchmark's code contain. */
const TOOL_MARKERS = ['PairLab', 'LabNetwork', 'dist-tools', 'SetupDriver'];

/**
 * Lab or benchmark code under an install prefix (or in any list of shipped files): one
 * line per offending path, saying why. Third-party directories (`node/`,
 * `node_modules/`) are not searched; symbolic links are not followed.
 */
export function toolCodeIn(prefix: string): string[] {
  const found: string[] = [];
  const walk = (dir: string, rel: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const relPath = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (rel === '' && THIRD_PARTY_DIRS.has(entry.name)) continue;
      const problems = toolPathProblems(relPath);
      found.push(...problems);
      if (entry.isDirectory() && problems.length === 0) {
        walk(join(dir, entry.name), relPath);
      } else if (entry.isFile() && /\.(js|ts|map)$/.test(entry.name)) {
        const text = readFileSync(join(dir, entry.name), 'utf8');
        for (const marker of TOOL_MARKERS) {
          if (text.includes(marker)) found.push(`${relPath}: mentions ${marker}`);
        }
      }
    }
  };
  walk(prefix, '');
  return found;
}

/** Why a shipped path (relative, `/`-separated) looks like lab or benchmark code; empty if it does not. */
export function toolPathProblems(relPath: string): string[] {
  const segments = relPath.split('/');
  const problems: string[] = [];
  const segment = segments.find((s) => TOOL_SEGMENTS.has(s));
  if (segment !== undefined) problems.push(`${relPath}: a ${segment}/ directory`);
  const name = segments.at(-1) ?? '';
  if (TOOL_ENTRY_NAMES.has(name)) problems.push(`${relPath}: the lab's ${name}`);
  return problems;
}
