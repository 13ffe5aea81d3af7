/**
 * Reading the audit log: the last records read from the end, following appends across
 * rotation and truncation (bounded waits, aborted with an AbortController), the
 * readable one-line format, and `redis-ha audit tail` in-process.
 */
import { appendFile, mkdtemp, readFile, rename, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/adapters/audit.js';
import { formatRecord, GENESIS_HEAD } from '../../src/audit/chain.js';
import { formatRecordLine, MAX_VALUE_CHARS } from '../../src/audit/format.js';
import { followRecords, readTail, tailRecords } from '../../src/audit/tail.js';
import type { AuditCliIo } from '../../src/cli/audit.js';
import { registerAuditCommands } from '../../src/cli/audit-commands.js';
import { silentLogger } from '../../src/daemon/logger.js';

const dirs: string[] = [];
const controllers: AbortController[] = [];
afterEach(async () => {
  for (const c of controllers.splice(0)) c.abort();
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rh-tail-'));
  dirs.push(d);
  return d;
}

function controller(): AbortController {
  const c = new AbortController();
  controllers.push(c);
  return c;
}

/** Waits until `check()` holds, polling every 10 ms, failing after `timeoutMs`. */
async function until(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  for (const start = Date.now(); !check(); await sleep(10)) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
  }
}

/** `count` numbered lines ("line-<from>".."line-<from+count-1>"), each with a newline. */
const numbered = (from: number, count: number, pad = 0): string =>
  Array.from({ length: count }, (_, i) => `line-${from + i}${'.'.repeat(pad)}\n`).join('');

const events = (lines: readonly string[]): string[] => lines.map((l) => (JSON.parse(l) as { event: string }).event);

describe('readTail / tailRecords', () => {
  it('returns the last n complete lines of a file much larger than one read chunk', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    await writeFile(path, numbered(1, 5000, 100));
    expect(await tailRecords(path, 3)).toEqual(['line-4998', 'line-4999', 'line-5000'].map((l) => `${l}${'.'.repeat(100)}`));
    expect(await tailRecords(path, 0)).toEqual([]);
    expect(await tailRecords(path, 100_000)).toHaveLength(5000);
  });

  it('leaves out a line still being written and says where following should start', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    await writeFile(path, `${numbered(1, 3)}line-4 half`);
    const r = await readTail(path, 2);
    expect(r.lines).toEqual(['line-2', 'line-3']);
    expect(r.position.offset).toBe(numbered(1, 3).length);
    expect(await tailRecords(path, 10)).toEqual(['line-1', 'line-2', 'line-3']);
  });

  it('handles an empty file, a file without any newline and a missing file', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'empty'), '');
    await writeFile(join(dir, 'torn'), 'no newline');
    expect(await readTail(join(dir, 'empty'), 5)).toMatchObject({ lines: [], position: { offset: 0 } });
    expect(await readTail(join(dir, 'torn'), 5)).toMatchObject({ lines: [], position: { offset: 0 } });
    await expect(tailRecords(join(dir, 'missing'), 5)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('followRecords', () => {
  it('passes on appended lines, holding a partial line until its newline, from the current end', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    await writeFile(path, numbered(1, 3));
    // The current end, taken before anything is appended (a sleep would race on a slow run).
    const { position } = await readTail(path, 0);
    const seen: string[] = [];
    const c = controller();
    const done = followRecords(path, (l) => seen.push(l), c.signal, 20, position);
    await appendFile(path, numbered(4, 2));
    await until(() => seen.length === 2, 'two appended lines');
    await appendFile(path, 'line-6 first half, ');
    await sleep(80);
    expect(seen).toEqual(['line-4', 'line-5']);
    await appendFile(path, 'second half\n');
    await until(() => seen.length === 3, 'the completed line');
    c.abort();
    await done;
    expect(seen).toEqual(['line-4', 'line-5', 'line-6 first half, second half']);
  });

  it('follows the audit log across rotation: the rest of the old file first, then the new one', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    await log.append('before-follow');
    const { position } = await readTail(path, 0);
    const seen: string[] = [];
    const c = controller();
    const done = followRecords(path, (l) => seen.push(l), c.signal, 20, position);
    await log.append('one');
    await until(() => seen.length === 1, 'the first record');
    await rename(path, `${path}.1`);
    await log.append('old-file-after-rename');
    await log.reopen();
    await log.append('new-file');
    await log.append('new-file-2');
    await until(() => seen.length === 4, 'records of both files');
    c.abort();
    await done;
    await log.close();
    expect(events(seen)).toEqual(['one', 'old-file-after-rename', 'new-file', 'new-file-2']);
  });

  it('waits for a missing file, and restarts at the top of a file truncated in place', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    await expect(readTail(path, 0)).rejects.toMatchObject({ code: 'ENOENT' });
    // The file is missing, so there is no position to take: inode 0 names no file, so
    // whichever file appears is read from its start (a sleep would race on a slow run).
    const nothingYet = { ino: 0, offset: 0 };
    const seen: string[] = [];
    const c = controller();
    const done = followRecords(path, (l) => seen.push(l), c.signal, 20, nothingYet);
    // A few polls find no file yet.
    await sleep(60);
    await writeFile(path, numbered(1, 2));
    await until(() => seen.length === 2, 'the created file');
    await truncate(path, 0);
    await sleep(60);
    await appendFile(path, numbered(10, 1));
    await until(() => seen.length === 3, 'the line after truncation');
    c.abort();
    await done;
    expect(seen).toEqual(['line-1', 'line-2', 'line-10']);
  });

  it('starts from a given position and stops promptly on abort', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    await writeFile(path, numbered(1, 5));
    const { position } = await readTail(path, 2);
    await appendFile(path, numbered(6, 1));
    const seen: string[] = [];
    const c = controller();
    const done = followRecords(path, (l) => seen.push(l), c.signal, 10_000, position);
    await until(() => seen.length === 1, 'the line after the position');
    const t0 = Date.now();
    c.abort();
    await done;
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(seen).toEqual(['line-6']);
  });
});

describe('formatRecordLine', () => {
  const base = { seq: 7, time: '2026-01-01T00:00:03.120Z', node: 'redis-a', prev: '0'.repeat(64), hash: 'f'.repeat(64) };

  it('prints a transition as from -> to: reason, without the chain fields', () => {
    const line = formatRecordLine({
      ...base, event: 'transition', from: 'BACKUP', to: 'MASTER', reason: 'peer silent for 3100 ms', epoch: 4,
      peer: { node: 'redis-b', state: 'MASTER', priority: 100 }, replId: 'abc', offset: 12,
    });
    expect(line).toBe('2026-01-01T00:00:03.120Z redis-a transition BACKUP -> MASTER: peer silent for 3100 ms  epoch=4 offset=12 peer=redis-b/MASTER');
  });

  it('prints a control request as user, request, outcome and duration', () => {
    expect(formatRecordLine({ ...base, event: 'control-request', user: 'alice', request: 'switchover', result: 'ok', durationMs: 812.4 }))
      .toBe('2026-01-01T00:00:03.120Z redis-a control-request user alice: switchover -> ok (812 ms)');
    expect(formatRecordLine({ ...base, event: 'control-request', user: 'bob', command: 'maintenance', ok: false, detail: 'peer unreachable' }))
      .toBe('2026-01-01T00:00:03.120Z redis-a control-request user bob: maintenance -> failed  detail="peer unreachable"');
  });

  it('prints other events as key=value pairs, objects as JSON, long values cut', () => {
    const line = formatRecordLine({ ...base, event: 'config-loaded', source: '/etc/redis-ha/redis-ha.yaml', summary: { priority: 150, vip: '10.0.0.1/24' }, note: 'x'.repeat(500), ok: true, gone: null });
    expect(line).toMatch(/^2026-01-01T00:00:03\.120Z redis-a config-loaded {2}source=\/etc\/redis-ha\/redis-ha\.yaml summary=\{"priority":150,"vip":"10\.0\.0\.1\/24"\} note=x+… ok=true gone=null$/);
    expect(line.match(/note=(x+…)/)![1]!.length).toBe(MAX_VALUE_CHARS + 1);
    expect(line).not.toMatch(/seq|prev|hash/);
  });

  it('escapes control characters so a record cannot drive the terminal', () => {
    const line = formatRecordLine({ ...base, node: 'evil\u001b[2J', event: 'transition', from: 'A', to: 'B', reason: 'x\u001b]0;pwned\u0007\ny' });
    expect(line).not.toMatch(/[\u0000-\u001f\u007f]/);
    expect(line).toContain('evil\\u001b[2J');
  });
});

/** Runs `redis-ha <args>` in-process; returns the exit status and the output. */
async function cli(args: string[], signal?: AbortSignal, onOut?: (text: string) => void): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  const io: AuditCliIo = {
    stdout: (t) => { stdout += t; onOut?.(t); },
    stderr: (t) => void (stderr += t),
    env: {},
    setExitCode: (c) => void (code = c),
    ...(signal ? { signal } : {}),
  };
  const program = new Command().exitOverride().configureOutput({ writeOut: (t) => void (stdout += t), writeErr: (t) => void (stderr += t) });
  registerAuditCommands(program, '/nonexistent/redis-ha.yaml', io);
  await program.parseAsync(['node', 'redis-ha', ...args]);
  return { code, stdout, stderr };
}

describe('redis-ha audit tail', () => {
  async function logWith(count: number): Promise<string> {
    const path = join(await tmp(), 'audit.jsonl');
    let head = GENESIS_HEAD;
    let text = '';
    for (let i = 1; i <= count; i++) {
      const r = formatRecord(head, { time: `2026-01-01T00:00:0${i}.000Z`, node: 'redis-a', event: 'vip-claimed' }, { changed: i % 2 === 0 });
      text += `${r.line}\n`;
      head = r.head;
    }
    await writeFile(path, text);
    return path;
  }

  it('prints the last n records, one readable line each', async () => {
    const path = await logWith(5);
    const r = await cli(['audit', 'tail', '--file', path, '-n', '2']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('2026-01-01T00:00:04.000Z redis-a vip-claimed  changed=true\n2026-01-01T00:00:05.000Z redis-a vip-claimed  changed=false\n');
  });

  it('prints the raw JSON lines with --json', async () => {
    const path = await logWith(5);
    const r = await cli(['audit', 'tail', '--file', path, '--lines', '3', '--json']);
    expect(r.stdout).toBe((await readFile(path, 'utf8')).split('\n').slice(2).join('\n'));
  });

  it('marks a line that is not a record instead of failing', async () => {
    const path = await logWith(1);
    await appendFile(path, 'garbage\u001b\n');
    const r = await cli(['audit', 'tail', '--file', path]);
    expect(r.stdout.split('\n')[1]).toMatch(/^\(not a record: malformed JSON \(.*\)\) "garbage\\u001b"$/);
    expect(r.stdout).not.toMatch(/\u001b/);
  });

  it('follows with -f until aborted', async () => {
    const path = await logWith(2);
    const c = controller();
    let out = '';
    const run = cli(['audit', 'tail', '--file', path, '-n', '1', '-f'], c.signal, (t) => { out += t; });
    await until(() => out.split('\n').length === 2, 'the last record');
    await sleep(100);
    await appendFile(path, `${formatRecord({ seq: 99, hash: 'a'.repeat(64) }, { time: '2026-01-01T00:01:00.000Z', node: 'redis-b', event: 'later' }).line}\n`);
    await until(() => out.includes('later'), 'the appended record', 5000);
    c.abort();
    const r = await run;
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split('\n').map((l) => l.split(' ').slice(1, 3).join(' '))).toEqual(['redis-a vip-claimed', 'redis-b later']);
  });

  it('exits 64 for a bad --lines and 2 for a missing file or configuration', async () => {
    expect((await cli(['audit', 'tail', '--file', '/nonexistent/audit.jsonl', '-n', 'ten'])).code).toBe(64);
    const missing = await cli(['audit', 'tail', '--file', join(await tmp(), 'nope')]);
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot read .*nope: no such file/) });
    expect((await cli(['audit', 'tail'])).code).toBe(2);
  });
});
