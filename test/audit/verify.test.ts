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
import type { AuditCliIo } from '../../src/cli/audit.js';
import { registerAuditCommands } from '../../src/cli/audit-commands.js';

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

describe('keyed chains and anchors', () => {
  const KEY = Buffer.from('5f2c9a0e7b31d4c8a6e19f03b72d58c4');
  const OTHER_KEY = Buffer.from('c41e8d2f6a09b7e35d1c4f8a2b6e90d7');

  /** Like `records`, keyed with `key` (or unkeyed with `null`), with a field to edit. */
  function chain(count: number, head: ChainHead = GENESIS_HEAD, key: Buffer | null = KEY): { text: string; head: ChainHead; lines: string[] } {
    const lines: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = formatRecord(head, { time: new Date(Date.UTC(2026, 0, 1, 0, 0, head.seq)).toISOString(), node: 'redis-a', event: 'transition' }, { to: 'MASTER' }, key);
      lines.push(r.line);
      head = r.head;
    }
    return { text: lines.map((l) => `${l}\n`).join(''), head, lines };
  }

  /** What an attacker who can write the file does: edit record `index` and re-chain every record after it with `key`. */
  function rewrite(lines: readonly string[], index: number, key: Buffer | null): string {
    let head: ChainHead = index === 0 ? GENESIS_HEAD : { seq: index, hash: (JSON.parse(lines[index - 1]!) as { hash?: string; hmac?: string }).hmac ?? (JSON.parse(lines[index - 1]!) as { hash: string }).hash };
    const out = lines.slice(0, index);
    for (let i = index; i < lines.length; i++) {
      const { seq: _s, time, node, event, prev: _p, hash: _h, hmac: _m, ...data } = JSON.parse(lines[i]!) as Record<string, unknown>;
      const r = formatRecord(head, { time: String(time), node: String(node), event: String(event) }, i === index ? { ...data, to: 'FAULT' } : data, key);
      out.push(r.line);
      head = r.head;
    }
    return out.map((l) => `${l}\n`).join('');
  }

  async function keyFile(dir: string, key: Buffer, name = 'audit.key'): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, `${key.toString('utf8')}\n`, { mode: 0o600 });
    return path;
  }

  it('unkeyed: an edit re-chained to the end passes, and says the guarantee is only against accidents; an anchor catches it', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl');
    const original = chain(6, GENESIS_HEAD, null);
    await writeFile(path, rewrite(original.lines, 2, null));
    const r = await cli(['audit', 'verify', path]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('checked: 6 unkeyed (SHA-256) record(s), seq 1..6: detects accidental damage and edits that were not re-chained');
    // The daemon logged `audit chain head` with anchor "6:<hash>" before the edit.
    const anchored = await cli(['audit', 'verify', '--anchor', `6:${original.head.hash}`, path]);
    expect(anchored.code).toBe(1);
    expect(anchored.stdout).toMatch(new RegExp(`${path}:6: anchor: seq 6 has the link .* but the anchor says ${original.head.hash.slice(0, 12)}`));
    expect(anchored.stdout).toContain('checked: anchor seq 6: does NOT match');
    // On the untouched file, the anchor holds.
    await writeFile(path, original.text);
    const intact = await cli(['audit', 'verify', '--anchor', `4:${JSON.parse(original.lines[3]!).hash}`, path]);
    expect(intact.code).toBe(0);
    expect(intact.stdout).toContain('checked: anchored at seq 4: seq 4 has the link recorded elsewhere, so no record up to it was rewritten since');
  });

  it('keyed: verifies with --key-file and says what that guarantees; without it, says the HMACs were not checked', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl');
    await writeFile(path, chain(5).text);
    const withKey = await cli(['audit', 'verify', '--key-file', await keyFile(dir, KEY), path]);
    expect(withKey.code).toBe(0);
    expect(withKey.stdout).toContain('checked: 5 keyed (HMAC-SHA256) record(s), seq 1..5: detects any edit, insertion or reordering, and any deletion between the first and the last record checked, by someone without the key');
    const withoutKey = await cli(['audit', 'verify', path]);
    expect(withoutKey.code).toBe(0);
    expect(withoutKey.stdout).toContain('checked: 5 keyed (HMAC-SHA256) record(s), seq 1..5, NOT checked: no --key-file given');
  });

  it('keyed: an edit re-chained with another key fails with the key', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl');
    await writeFile(path, rewrite(chain(5).lines, 1, OTHER_KEY));
    const r = await cli(['audit', 'verify', '--key-file', await keyFile(dir, KEY), path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(new RegExp(`${path}:2: hash-mismatch: hmac mismatch: the line was edited`));
    expect(r.stdout).toMatch(/chain NOT intact: 4 problem/);
    // Both keys given (a key change): the records keyed with either verify.
    const both = await cli(['audit', 'verify', '--key-file', await keyFile(dir, KEY), '--key-file', await keyFile(dir, OTHER_KEY, 'other.key'), path]);
    expect(both.code).toBe(0);
  });

  it('a downgrade (keyed records rewritten unkeyed) is reported with or without the key; a whole file rewritten unkeyed fails with the key', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl');
    const keyed = chain(5);
    await writeFile(path, rewrite(keyed.lines, 2, null));
    for (const args of [[path], ['--key-file', await keyFile(dir, KEY), path]]) {
      const r = await cli(['audit', 'verify', ...args]);
      expect(r.code).toBe(1);
      expect(r.stdout).toMatch(new RegExp(`${path}:3: downgrade: seq 3 is unkeyed \\(SHA-256\\) but the record before it is keyed`));
    }
    await writeFile(path, rewrite(keyed.lines, 0, null));
    expect((await cli(['audit', 'verify', path])).code).toBe(0); // without the key nothing tells this file from an unkeyed log
    const r = await cli(['audit', 'verify', '--key-file', await keyFile(dir, KEY), path]);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain('problem: a key was given but no record is keyed');
  });

  it('a downgrade across rotated files is reported at the first line of the newer file', async () => {
    const dir = await tmp();
    const live = join(dir, 'audit.jsonl');
    const old = chain(3);
    await writeFile(`${live}.1`, old.text);
    await writeFile(live, chain(2, old.head, null).text);
    const report = await verifyAuditFiles([`${live}.1`, live]);
    expect(report.problems).toEqual([expect.objectContaining({ path: live, line: 1, kind: 'downgrade' })]);
  });

  it('an unkeyed history followed by keyed records (the key set later) verifies, and names both guarantees', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl');
    const before = chain(2, GENESIS_HEAD, null);
    await writeFile(path, before.text + chain(3, before.head).text);
    const r = await cli(['audit', 'verify', '--key-file', await keyFile(dir, KEY), path]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('checked: 2 unkeyed (SHA-256) record(s), seq 1..2:');
    expect(r.stdout).toContain('checked: 3 keyed (HMAC-SHA256) record(s), seq 3..5: detects any edit');
  });

  it('says when records before the first one checked were not seen (cut from the start, or rotated away)', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl');
    const before = chain(2, GENESIS_HEAD, null);
    await writeFile(path, chain(3, before.head).text);
    const r = await cli(['audit', 'verify', '--key-file', await keyFile(dir, KEY), path]);
    expect(r.stdout).toContain('checked: records before seq 3 not checked');
  });

  it('takes the key from audit.key_file of the configuration', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl');
    await writeFile(path, chain(3).text);
    const config = join(dir, 'redis-ha.yaml');
    await writeFile(config, [
      'node: { name: redis-a, address: 192.0.2.11 }',
      'peer: { address: 192.0.2.12 }',
      'vip: { address: 192.0.2.100/24, interface: eth0 }',
      `audit: { path: ${JSON.stringify(path)}, key_file: ${JSON.stringify(await keyFile(dir, KEY))} }`,
      '',
    ].join('\n'));
    const r = await cli(['audit', 'verify', '-c', config], undefined, { REDIS_HA_ADVERT_KEY: 'a-test-secret-of-enough-length' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('checked: 3 keyed (HMAC-SHA256) record(s), seq 1..3: detects any edit');
  });

  it('exits 64 for a malformed --anchor, 2 for an unusable --key-file, 1 for an anchor not in the files', async () => {
    const dir = await tmp();
    const path = join(dir, 'audit.jsonl');
    const { text, head } = chain(3);
    await writeFile(path, text);
    for (const bad of ['3', `x:${head.hash}`, `3:${head.hash.slice(1)}`, `0:${head.hash}`, `3:${head.hash.toUpperCase()}`]) {
      const r = await cli(['audit', 'verify', '--anchor', bad, path]);
      expect(r.code).toBe(64);
      expect(r.stderr).toMatch(/--anchor: expected SEQ:HASH/);
    }
    const missingKey = await cli(['audit', 'verify', '--key-file', join(dir, 'nope.key'), path]);
    expect(missingKey.code).toBe(2);
    expect(missingKey.stderr).toMatch(/--key-file: expected a readable key file for the audit chain, got ".*nope\.key" \(no such file\)/);
    const later = await cli(['audit', 'verify', '--anchor', `9:${head.hash}`, path]);
    expect(later.code).toBe(1);
    expect(later.stdout).toContain("problem: the anchor's seq 9 is not in the files checked (they hold seq 1..3)");
  });
});
