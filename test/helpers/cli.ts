/**
 * Running the built CLI (`node dist/cli/main.js ...`, as `npm run build` leaves it) the
 * way an operator does, with a clean environment (only PATH, plus what the test gives) so
 * no REDIS_HA_* variable of the machine running the tests leaks in.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';

/** The built CLI's entry point. */
export const CLI = join(import.meta.dirname, '../../dist/cli/main.js');

/** A CLI run that takes longer than this is hung: every command tested answers in well under a second. */
const CLI_TIMEOUT_MS = 8_000;

export interface CliRun {
  /** Exit status; -1 when the process was killed (by the timeout). */
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node dist/cli/main.js ...args`; `cwd` defaults to this process's. */
export function runCli(args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH, ...opts.env }, timeout: CLI_TIMEOUT_MS, killSignal: 'SIGKILL', ...(opts.cwd ? { cwd: opts.cwd } : {}) },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** One temporary root per test file (removed after it) and a new empty directory under it per call. */
export async function tempDirs(prefix: string): Promise<() => Promise<string>> {
  const { mkdtemp, mkdir, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { afterAll } = await import('vitest');
  const root = await mkdtemp(join(tmpdir(), prefix));
  afterAll(() => rm(root, { recursive: true, force: true }));
  let dirs = 0;
  return async () => {
    const dir = join(root, `d${++dirs}`);
    await mkdir(dir);
    return dir;
  };
}
