/**
 * The drivers' process helpers for `daemon-stall`: a stall stops a process and every
 * process it started, the continue resumes exactly those, twice is harmless, and a
 * process tree stopped that way can still be killed. Runs a small local tree (a shell
 * with a `sleep` child), no lab and no root needed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import {
  descendants, killProcessTrees, processRef, resumeStalled, sleep, stallProcesses, type ProcessRef,
} from '../../tools/bench/setups/processes.js';

/** Bound on the shell starting its child. */
const CHILD_START_MS = 5_000;
const KILL_BOUND_MS = 5_000;

/** Field 3 of /proc/PID/stat: `T` stopped, `S` sleeping, ... */
function state(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
}

/** Waits (bounded) until `predicate` holds. */
async function until(predicate: () => boolean, boundMs: number): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(20);
  }
}

describe('stalling a process tree (daemon-stall)', () => {
  let shell: ChildProcess | null = null;
  let tree: ProcessRef[] = [];

  afterEach(async () => {
    await killProcessTrees(tree, KILL_BOUND_MS);
    tree = [];
    shell = null;
  });

  async function startTree(): Promise<{ root: ProcessRef; child: ProcessRef }> {
    shell = spawn('sh', ['-c', 'sleep 60 & wait'], { stdio: 'ignore' });
    const root = shell.pid === undefined ? null : processRef(shell.pid);
    if (!root) throw new Error('shell did not start');
    await until(() => descendants([root]).length > 0, CHILD_START_MS);
    const child = descendants([root])[0]!;
    tree = [root, child];
    return { root, child };
  }

  it('stops the process and its children, and the continue resumes exactly them', async () => {
    const { root, child } = await startTree();
    const lab = {};
    const stopped = stallProcesses(lab, 'a', [root]);
    expect(stopped.map((ref) => ref.pid).sort()).toEqual([root.pid, child.pid].sort());
    await until(() => state(root.pid) === 'T' && state(child.pid) === 'T', KILL_BOUND_MS);
    // Another node's stall on the same lab is its own.
    resumeStalled(lab, 'b');
    expect([state(root.pid), state(child.pid)]).toEqual(['T', 'T']);
    resumeStalled(lab, 'a');
    await until(() => state(root.pid) !== 'T' && state(child.pid) !== 'T', KILL_BOUND_MS);
    // Idempotent: nothing left to continue.
    resumeStalled(lab, 'a');
    expect(state(root.pid)).not.toBe('T');
  });

  it('a stalled tree can still be killed (a run that ends while stopped)', async () => {
    const { root } = await startTree();
    stallProcesses({}, 'a', [root]);
    expect(await killProcessTrees(tree, KILL_BOUND_MS)).toBe(true);
  });
});
