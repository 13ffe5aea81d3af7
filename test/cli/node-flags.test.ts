/**
 * The Node flags of `redis-ha` (`src/cli/node-flags.ts`, README "Footprint") reach the
 * process when the built CLI is run by its shebang (npm's bin link); the launcher of
 * `scripts/install.sh` copies them from that shebang (test/install/product-tree.test.ts)
 * and the lab passes `NODE_FLAGS` itself (test/e2e/footprint.test.ts).
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';

const SOURCE = join(import.meta.dirname, '../../src/cli/main.ts');
const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const SHEBANG = `#!/usr/bin/env -S node ${NODE_FLAGS.join(' ')}`;
/** Bound on the CLI starting and printing its first record. */
const START_MS = 5_000;

const dir = mkdtempSync(join(tmpdir(), 'rh-flags-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the Node flags', () => {
  it('are what the shebang of main.ts (and of the build) spells', () => {
    expect(readFileSync(SOURCE, 'utf8').split('\n')[0]).toBe(SHEBANG);
    expect(readFileSync(CLI, 'utf8').split('\n')[0]).toBe(SHEBANG);
  });

  it('make Node print nothing of its own: a command run by the shebang has a clean stderr', async () => {
    const r = await promisify(execFile)(CLI, ['keygen'], { env: { PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` } });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^1 [0-9a-f]+\n$/);
  });

  it('reach the process when the built CLI runs by its shebang', async () => {
    const file = join(dir, 'audit.jsonl');
    writeFileSync(file, '{"seq":1}\n');
    // A command that stays up (`audit tail --follow`), so its command line can be read.
    const child = spawn(CLI, ['audit', 'tail', '--follow', '--json', '--file', file], {
      env: { PATH: `${dirname(process.execPath)}:${process.env['PATH'] ?? ''}` },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the CLI printed nothing')), START_MS);
        child.stdout.once('data', () => {
          clearTimeout(timer);
          resolve();
        });
        child.once('error', reject);
      });
      const argv = readFileSync(`/proc/${child.pid}/cmdline`, 'utf8').split('\0');
      expect(argv).toEqual(expect.arrayContaining([...NODE_FLAGS, CLI]));
    } finally {
      child.kill('SIGTERM');
    }
  });
});
