/**
 * `verifyAuditFiles` and `redis-ha audit verify` over real files: plain and gzipped
 * rotations, continuity between files (right and wrong order), damage reported as
 * `file:line: reason`, and the exit status (0 intact, 1 problems, 2 unreadable).
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { formatRecord, GENESIS_HEAD, type ChainHead } from '../../src/audit/chain.js';
import { formatVerifyReport, rotatedSiblings, verifyAuditFiles } from '../../src/audit/verify.js';
import { registerAuditCommands, type AuditCliIo } from '../../src/cli/audit.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rh-verify-'));
  dirs.push(d);
  return d;
}

/** Text of `count` chained records continuing `head`. */
function records(count: number, head: ChainHead = GENESIS_HEAD): { text: string; head: ChainHead; lines: string[] } {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const r = formatRecord(head, { time: new Date(Date.UTC(2026, 0, 1, 0, 0, head.seq)).toISOString(), node: 'redis-a', event: 'vip-claimed' }, { changed: true });
    lines.push(r.line);
    head = r.head;
  }
  return { text: lines.map((l) => `${l}\n`).join(''), head, lines };
}

/** A log rotated twice: `.2.gz` (seq 1-3), `.1` (seq 4-6) and the live file (seq 7-9). */
async function rotatedSet(dir: string): Promise<{ live: string; files: string[]; texts: string[] }> {
  const live = join(dir, 'audit.jsonl');
  const a = records(3);
  const b = records(3, a.head);
  const c = records(3, b.head);
  await writeFile(`${live}.2.gz`, gzipSync(a.text));
  await writeFile(`${live}.1`, b.text);
  await writeFile(live, c.text);
  return { live, files: [`${live}.2.gz`, `${live}.1`, live], texts: [a.text, b.text, c.text] };
}

describe('verifyAuditFiles', () => {
  it('accepts a clean rotated set, gzipped file included, oldest first', async () => {
    const { files } = await rotatedSet(await tmp());
    const report = await verifyAuditFiles(files);
    expect(report.problems).toEqual([]);
    expect(report).toMatchObject({ ok: true, records: 9, unreadable: 0 });
    expect(report.files[0]!.report).toMatchObject({ records: 3, first: { seq: 1 }, last: { seq: 3 } });
    expect(formatVerifyReport(report)).toMatch(/chain intact: 9 record\(s\) in 3 file\(s\)\n$/);
  });

  it('reports the break between files given in the wrong order', async () => {
    const { files } = await rotatedSet(await tmp());
    const report = await verifyAuditFiles([files[1]!, files[0]!, files[2]!]);
    expect(report.ok).toBe(false);
    expect(report.problems.map((p) => [p.path, p.line, p.kind])).toEqual([
      [files[0], 1, 'reordered'],
      [files[2], 1, 'deleted'],
    ]);
    expect(report.problems[0]!.reason).toMatch(/seq goes back from 6 \(the last record of .*audit\.jsonl\.1\) to 1/);
  });

  it('reports a rotated file missing from the set', async () => {
    const { files } = await rotatedSet(await tmp());
    const report = await verifyAuditFiles([files[0]!, files[2]!]);
    expect(report.problems.map((p) => [p.path, p.line, p.kind])).toEqual([[files[2], 1, 'deleted']]);
    expect(report.problems[0]!.reason).toMatch(/seq jumps from 3 .* to 7: 3 record\(s\) deleted/);
  });

  it('reports a deleted first line of a rotated file only when the previous file anchors it', async () => {
    const { files, texts } = await rotatedSet(await tmp());
    await writeFile(files[1]!, texts[1]!.split('\n').slice(1).join('\n'));
    expect((await verifyAuditFiles([files[1]!])).ok).toBe(true);
    const report = await verifyAuditFiles(files);
    expect(report.problems.map((p) => [p.path, p.line, p.kind])).toEqual([[files[1], 1, 'deleted']]);
  });

  it('reports damage inside a gzipped file with its line number', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl.3.gz');
    const { lines } = records(4);
    lines[1] = lines[1]!.replace('"changed":true', '"changed":false');
    await writeFile(path, gzipSync(`${lines.join('\n')}\n`));
    const report = await verifyAuditFiles([path]);
    expect(report.problems).toEqual([{ path, line: 2, kind: 'hash-mismatch', reason: expect.stringMatching(/edited/) }]);
    expect(formatVerifyReport(report)).toContain(`${path}:2: hash-mismatch: hash mismatch`);
  });

  it('reports files it cannot read, and corrupt gzip, without stopping', async () => {
    const dir = await tmp();
    const { files } = await rotatedSet(dir);
    const corrupt = join(dir, 'bad.gz');
    await writeFile(corrupt, Buffer.concat([gzipSync(records(2).text).subarray(0, 20), Buffer.from('xxxxxxxxxxxxxxxx')]));
    const report = await verifyAuditFiles([join(dir, 'missing'), corrupt, ...files]);
    expect(report.files.map((f) => f.error)).toEqual(['no such file', expect.stringMatching(/gzip|unexpected end/), null, null, null]);
    expect(report).toMatchObject({ unreadable: 2, ok: false, problemCount: 0 });
    expect(formatVerifyReport(report)).toMatch(/missing: cannot read: no such file/);
  });

  it('streams a file larger than one read chunk with a truncated tail', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const { text } = records(3000);
    await writeFile(path, text.slice(0, -30));
    const report = await verifyAuditFiles([path]);
    expect(report.problems).toEqual([{ path, line: 3000, kind: 'truncated', reason: 'truncated last record (a write was interrupted)' }]);
    expect(report.records).toBe(2999);
  });
});

describe('rotatedSiblings', () => {
  it('lists <path>.N and <path>.N.gz oldest first, then the path', async () => {
    const dir = await tmp();
    const live = join(dir, 'audit.jsonl');
    for (const name of ['audit.jsonl.1', 'audit.jsonl.2.gz', 'audit.jsonl.10.gz', 'audit.jsonl.3', 'audit.jsonl.3.gz', 'audit.jsonl.bak', 'other.jsonl.1']) {
      await writeFile(join(dir, name), '');
    }
    expect(await rotatedSiblings(live)).toEqual(['audit.jsonl.10.gz', 'audit.jsonl.3', 'audit.jsonl.2.gz', 'audit.jsonl.1', 'audit.jsonl'].map((n) => join(dir, n)));
  });
});

/** Runs `redis-ha <args>` in-process; returns the exit status and the output. */
async function cli(args: string[], defaultConfig = '/nonexistent/redis-ha.yaml', env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  let code = 0;
  const io: AuditCliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env, setExitCode: (c) => void (code = c) };
  const program = new Command().exitOverride().configureOutput({ writeOut: (t) => void (stdout += t), writeErr: (t) => void (stderr += t) });
  registerAuditCommands(program, defaultConfig, io);
  await program.parseAsync(['node', 'redis-ha', ...args]);
  return { code, stdout, stderr };
}

describe('redis-ha audit verify', () => {
  it('exits 0 for an intact chain given as files', async () => {
    const { files } = await rotatedSet(await tmp());
    const r = await cli(['audit', 'verify', ...files]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/chain intact: 9 record/);
  });

  it('with --file, verifies the file preceded by its rotated siblings', async () => {
    const { live, files, texts } = await rotatedSet(await tmp());
    const ok = await cli(['audit', 'verify', '--file', live]);
    expect(ok.code).toBe(0);
    expect(ok.stdout.split('\n').slice(0, 3).map((l) => l.split(':')[0])).toEqual(files);
    // A line deleted in the middle of .1.
    const lines = texts[1]!.split('\n');
    await writeFile(files[1]!, [...lines.slice(0, 1), ...lines.slice(2)].join('\n'));
    const bad = await cli(['audit', 'verify', '--file', live]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toContain(`${files[1]}:2: deleted: seq jumps from 4 (line 1) to 6`);
    expect(bad.stdout).toMatch(/chain NOT intact: 1 problem/);
  });

  it('finds the log through the configuration', async () => {
    const dir = await tmp();
    const { live } = await rotatedSet(dir);
    const config = join(dir, 'redis-ha.yaml');
    await writeFile(config, [
      'node: { name: redis-a, address: 192.0.2.11 }',
      'peer: { address: 192.0.2.12 }',
      'vip: { address: 192.0.2.100/24, interface: eth0 }',
      `audit: { path: ${JSON.stringify(live)} }`,
      '',
    ].join('\n'));
    const r = await cli(['audit', 'verify', '-c', config], undefined, { REDIS_HA_ADVERT_KEY: 'a-test-secret-of-enough-length' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/chain intact: 9 record\(s\) in 3 file/);
  });

  it('exits 2 when the configuration cannot be loaded and no --file is given, or a file is unreadable', async () => {
    const noConfig = await cli(['audit', 'verify']);
    expect(noConfig.code).toBe(2);
    expect(noConfig.stderr).toMatch(/cannot find the audit log: .*nonexistent.*\n.*--file/s);
    const missing = await cli(['audit', 'verify', join(await tmp(), 'nope.jsonl')]);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toMatch(/nope\.jsonl: cannot read: no such file/);
  });

  it('exits 1 on a truncated last record', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    await writeFile(path, records(3).text.slice(0, -5));
    const r = await cli(['audit', 'verify', path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`${path}:3: truncated: truncated last record (a write was interrupted)`);
    expect(await readFile(path, 'utf8')).not.toMatch(/\n$/);
  });
});
