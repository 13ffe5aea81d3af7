/**
 * The audit log: ordered, hash-chained JSON lines; the chain continues across a
 * restart on the same file, across rotation (`reopen()` after a rename), and across a
 * restart right after rotation (an empty file, the head taken from `<path>.1`, plain or
 * gzip); a damaged last line never stops the daemon: the chain restarts with a record
 * saying why.
 */
import { appendFile, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/adapters/audit.js';
import { GENESIS_HASH, verifyLines } from '../../src/audit/chain.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/daemon/logger.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rh-audit-'));
  dirs.push(d);
  return d;
}

const lines = async (p: string) => (await readFile(p, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
const verify = async (p: string) => verifyLines((await readFile(p, 'utf8')).split('\n'));

describe('AuditLog', () => {
  it('appends records in order, each a JSON line with seq, time, node, event, prev and hash', async () => {
    const path = join(await tmp(), 'sub', 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger(), () => new Date('2026-01-01T00:00:00Z'));
    await log.open();
    for (let i = 0; i < 50; i++) void log.append('transition', { i, from: 'BACKUP', to: 'MASTER' });
    await log.close();
    const recs = await lines(path);
    expect(recs).toHaveLength(50);
    expect(recs.map((r) => r.i)).toEqual([...Array(50).keys()]);
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    expect(recs[0]).toMatchObject({ seq: 1, time: '2026-01-01T00:00:00.000Z', node: 'a', event: 'transition', from: 'BACKUP', prev: GENESIS_HASH });
    expect(log.head).toEqual({ seq: 50, hash: recs[49]!.hash });
    expect((await verify(path)).problems).toEqual([]);
  });

  it('keeps appending to an existing file, continuing seq and prev', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const first = new AuditLog(path, 'a', silentLogger());
    await first.append('one');
    await first.append('two');
    await first.close();
    const second = new AuditLog(path, 'a', silentLogger());
    await second.open();
    expect(second.head).toEqual(first.head);
    await second.append('three');
    await second.close();
    const recs = await lines(path);
    expect(recs.map((r) => [r.event, r.seq])).toEqual([['one', 1], ['two', 2], ['three', 3]]);
    expect(recs[2]!.prev).toBe(recs[1]!.hash);
    expect((await verify(path)).problems).toEqual([]);
  });

  it('continues the chain across rotation: reopen() after a rename', async () => {
    const d = await tmp();
    const path = join(d, 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    await log.open();
    await log.append('one');
    await log.append('two');
    await rename(path, `${path}.1`);
    await log.append('still-old'); // written to the renamed file until SIGHUP
    await log.reopen();
    await log.append('three');
    await log.close();
    expect((await lines(`${path}.1`)).map((r) => r.event)).toEqual(['one', 'two', 'still-old']);
    const rotated = await lines(path);
    expect(rotated.map((r) => [r.event, r.seq])).toEqual([['three', 4]]);

    const inOrder = await verifyAuditFiles([`${path}.1`, path]);
    expect(inOrder.problems).toEqual([]);
    expect(inOrder.ok).toBe(true);
    const wrongOrder = await verifyAuditFiles([path, `${path}.1`]);
    expect(wrongOrder.problems).toEqual([
      { path: `${path}.1`, line: 1, kind: 'reordered', reason: expect.stringMatching(/seq goes back from 4 \(the last record of .*audit\.jsonl\) to 1/) },
    ]);
  });

  /** Writes `events` to `path`, then rotates it as logrotate's `create` does: rename to `.1`, an empty file in its place. */
  async function writeAndRotate(path: string, events: readonly string[]): Promise<AuditLog> {
    const log = new AuditLog(path, 'a', silentLogger());
    for (const e of events) await log.append(e);
    await log.close();
    await rename(path, `${path}.1`);
    await writeFile(path, '');
    return log;
  }

  it('continues the chain from <path>.1 after a restart into the empty file logrotate created', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const before = await writeAndRotate(path, ['one', 'two']);
    const after = new AuditLog(path, 'a', silentLogger());
    await after.open();
    expect(after.head).toEqual(before.head);
    await after.append('three');
    await after.close();
    const recs = await lines(path);
    expect(recs.map((r) => [r.event, r.seq])).toEqual([['three', 3]]);
    expect(recs[0]!.prev).toBe(before.head.hash);
    const report = await verifyAuditFiles([`${path}.1`, path]);
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.records).toBe(3);
  });

  it('continues the chain from a gzip previous file, named <path>.1 or <path>.1.gz', async () => {
    for (const name of ['.1', '.1.gz']) {
      const path = join(await tmp(), 'audit.jsonl');
      const before = await writeAndRotate(path, ['one', 'two']);
      await writeFile(`${path}${name}`, gzipSync(await readFile(`${path}.1`)));
      if (name !== '.1') await rm(`${path}.1`);
      const after = new AuditLog(path, 'a', silentLogger());
      await after.append('three');
      await after.close();
      expect((await lines(path)).map((r) => [r.event, r.seq, r.prev])).toEqual([['three', 3, before.head.hash]]);
      expect((await verifyAuditFiles([`${path}${name}`, path])).problems, name).toEqual([]);
    }
  });

  it('restarts the chain explicitly when <path>.1 ends in a damaged line, from its last good record', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const before = await writeAndRotate(path, ['one', 'two']);
    await appendFile(`${path}.1`, 'this is not a record\n');
    const after = new AuditLog(path, 'a', silentLogger());
    await after.append('three');
    await after.close();
    const recs = await lines(path);
    expect(recs.map((r) => [r.event, r.seq])).toEqual([['audit-chain-restarted', 3], ['three', 4]]);
    expect(recs[0]).toMatchObject({ prev: before.head.hash, lastGoodSeq: 2, reason: expect.stringMatching(/rotated file .*audit\.jsonl\.1 is not a valid record: malformed JSON/) });
    const report = await verifyAuditFiles([`${path}.1`, path]);
    expect(report.problems.map((p) => [p.path, p.line, p.kind])).toEqual([[`${path}.1`, 3, 'malformed']]);
  });

  it('starts a new chain at seq 1 when the file is empty and nothing was rotated before it', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    await writeFile(path, '');
    const log = new AuditLog(path, 'a', silentLogger());
    await log.append('one');
    await log.close();
    expect((await lines(path)).map((r) => [r.event, r.seq, r.prev])).toEqual([['one', 1, GENESIS_HASH]]);
  });

  it('recovers the head from the tail of a large file whose last line is longer than the first read window', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const first = new AuditLog(path, 'a', silentLogger());
    for (let i = 0; i < 200; i++) void first.append('filler', { i, pad: 'x'.repeat(1000) });
    await first.append('big', { blob: 'y'.repeat(200 * 1024) });
    await first.close();
    const second = new AuditLog(path, 'a', silentLogger());
    await second.open();
    expect(second.head).toEqual(first.head);
    expect(second.head.seq).toBe(201);
    await second.close();
  });

  it('restarts the chain after a damaged last line, and verify reports exactly one break there', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const first = new AuditLog(path, 'a', silentLogger());
    for (const e of ['one', 'two', 'three']) await first.append(e);
    await first.close();
    await appendFile(path, 'this is not a record\n');

    const second = new AuditLog(path, 'a', silentLogger());
    await second.open();
    await second.append('four');
    await second.close();
    const text = await readFile(path, 'utf8');
    const all = text.trim().split('\n');
    const restarted = JSON.parse(all[4]!) as Record<string, unknown>;
    expect(restarted).toMatchObject({ event: 'audit-chain-restarted', seq: 4, lastGoodSeq: 3, prev: first.head.hash });
    expect(restarted.reason).toMatch(/last line of the existing file is not a valid record: malformed JSON/);
    expect((JSON.parse(all[5]!) as Record<string, unknown>).event).toBe('four');

    const report = verifyLines(text.split('\n'));
    expect(report.problems).toEqual([{ line: 4, kind: 'malformed', reason: expect.stringMatching(/^malformed JSON/) }]);
    expect(report.restarts).toEqual([{ line: 5, seq: 4, reason: restarted.reason }]);
  });

  it('terminates a torn last line before appending, so no record is glued to it', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const first = new AuditLog(path, 'a', silentLogger());
    await first.append('one');
    await first.close();
    await appendFile(path, '{"seq":2,"time":"2026-');

    const second = new AuditLog(path, 'a', silentLogger());
    await second.append('two');
    await second.close();
    const all = (await readFile(path, 'utf8')).trim().split('\n');
    expect(all).toHaveLength(4);
    expect(all[1]).toBe('{"seq":2,"time":"2026-');
    expect(JSON.parse(all[2]!)).toMatchObject({ event: 'audit-chain-restarted', seq: 2, reason: expect.stringMatching(/does not end with a newline/) });
    expect(JSON.parse(all[3]!)).toMatchObject({ event: 'two', seq: 3 });
    expect((await verify(path)).problems.map((p) => [p.line, p.kind])).toEqual([[2, 'malformed']]);
  });

  it('starts from zeros when the only line is damaged', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    await writeFile(path, 'garbage\n');
    const log = new AuditLog(path, 'a', silentLogger());
    await log.append('one');
    await log.close();
    const recs = (await readFile(path, 'utf8')).trim().split('\n').slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((r) => [r.event, r.seq])).toEqual([['audit-chain-restarted', 1], ['one', 2]]);
    expect(recs[0]!.prev).toBe(GENESIS_HASH);
    expect((await verify(path)).problems.map((p) => p.line)).toEqual([1]);
  });

  it('keeps the chain from memory when the reopened file is damaged', async () => {
    const d = await tmp();
    const path = join(d, 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    await log.append('one');
    await rename(path, `${path}.1`);
    await writeFile(path, 'garbage\n');
    await log.reopen();
    await log.append('two');
    await log.close();
    const recs = (await readFile(path, 'utf8')).trim().split('\n').slice(1).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(recs.map((r) => [r.event, r.seq])).toEqual([['audit-chain-restarted', 2], ['two', 3]]);
    const report = await verifyAuditFiles([`${path}.1`, path]);
    expect(report.problems.map((p) => [p.path, p.line, p.kind])).toEqual([[path, 1, 'malformed']]);
  });

  it('writes reserved keys of the data under other names', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    await log.append('control-request', { seq: 1000, prev: 'x', hash: 'y', node: 'b', user: 'alice' });
    await log.append('next');
    await log.close();
    const recs = await lines(path);
    expect(recs[0]).toMatchObject({ seq: 1, node: 'a', event: 'control-request', data_seq: 1000, data_prev: 'x', data_hash: 'y', data_node: 'b', user: 'alice' });
    expect(recs[1]!.seq).toBe(2);
    expect((await verify(path)).problems).toEqual([]);
  });

  it('writes a record with unserialisable data instead of losing it', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await log.append('odd', { cyclic });
    await log.close();
    const recs = await lines(path);
    expect(recs[0]).toMatchObject({ event: 'odd', unserialisable: expect.stringMatching(/circular/i) });
  });

  it('logs and survives a failed write, then notes the lost record in the chain', async () => {
    const d = await tmp();
    const path = join(d, 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    await log.append('one');
    // Make the path unusable: the directory replaced by a file.
    await rm(d, { recursive: true, force: true });
    await writeFile(d, 'not a directory');
    await log.reopen();
    await log.append('lost');
    await rm(d, { force: true });
    await log.append('two'); // reopens on demand: directory and file are created again
    await log.close();
    const recs = await lines(path);
    expect(recs.map((r) => [r.event, r.seq])).toEqual([['audit-records-lost', 2], ['two', 3]]);
    expect(recs[0]!.count).toBe(1);
  });
});
