/**
 * The audit log: ordered, hash-chained JSON lines; the chain continues across a
 * restart on the same file, across rotation (`reopen()` after a rename), and across a
 * restart right after rotation (an empty file, the head taken from `<path>.1`, plain or
 * gzip); a damaged last line never stops the daemon: the chain restarts with a record
 * saying why.
 */
import { execFileSync } from 'node:child_process';
import { appendFile, chmod, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { AuditLog, MAX_RECORD_BYTES } from '../../src/adapters/audit.js';
import { GENESIS_HASH, verifyLines } from '../../src/audit/chain.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { FatalError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';

function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

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

  it('writes a record with unserialisable data bounded and flattened, keeping its other fields', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    const cyclic: Record<string, unknown> = { name: 'loop' };
    cyclic.self = cyclic;
    await log.append('odd', { command: 'switchover', cyclic, outcome: 'ok' });
    await log.close();
    const recs = await lines(path);
    expect(recs[0]).toMatchObject({
      event: 'odd', command: 'switchover', outcome: 'ok', 'cyclic.name': 'loop', 'cyclic.self.name': 'loop',
      recordCut: { reason: expect.stringMatching(/not serialisable \(.*circular/i), deeper: 1 },
    });
    expect((await verify(path)).problems).toEqual([]);
  });

  it('keeps command, user, uid and outcome of a record nested deeper than the stack, and bounds its size', async () => {
    const path = join(await tmp(), 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    // What a control request with deeply nested args used to hand the log.
    const args = JSON.parse(`${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}`) as Record<string, unknown>;
    await log.append('control-request', { command: 'switchover', args, user: 'alice', uid: 1000, pid: 42, outcome: 'denied' });
    // And one that serialises but is huge.
    await log.append('control-request', { command: 'status', args: { pad: 'x'.repeat(100_000), list: Array.from({ length: 5000 }, (_, i) => i) }, user: 'bob', uid: 1001, outcome: 'ok' });
    await log.close();
    const text = await readFile(path, 'utf8');
    for (const line of text.trim().split('\n')) expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    const [deep, huge] = await lines(path);
    expect(deep).toMatchObject({ event: 'control-request', command: 'switchover', user: 'alice', uid: 1000, pid: 42, outcome: 'denied', 'args.a.a.a': '[object, 1 keys]' });
    expect(deep!.recordCut).toMatchObject({ reason: expect.stringMatching(/not serialisable.*call stack/), deeper: 1 });
    expect(huge).toMatchObject({ command: 'status', user: 'bob', uid: 1001, outcome: 'ok', recordCut: { reason: `larger than ${MAX_RECORD_BYTES} bytes` } });
    expect((await verify(path)).problems).toEqual([]);
  });

  describe('keyed chain', () => {
    const KEY = Buffer.from('0123456789abcdef0123456789abcdef');

    it('writes HMAC-linked records that verify with the key, and not without it', async () => {
      const path = join(await tmp(), 'audit.jsonl');
      const log = new AuditLog(path, 'a', silentLogger(), { key: KEY });
      await log.append('one', { x: 1 });
      await log.append('two', { x: 2 });
      await log.close();
      const recs = await lines(path);
      expect(recs.map((r) => [r.seq, typeof r.hmac, r.hash])).toEqual([[1, 'string', undefined], [2, 'string', undefined]]);
      expect(recs[1]!.prev).toBe(recs[0]!.hmac);
      expect(log.head).toEqual({ seq: 2, hash: recs[1]!.hmac });
      const keyed = await verifyAuditFiles([path], { keys: [KEY] });
      expect(keyed).toMatchObject({ ok: true, keyed: 2, keyedUnchecked: 0, unkeyed: 0 });
      const unchecked = await verifyAuditFiles([path]);
      expect(unchecked).toMatchObject({ ok: true, keyed: 2, keyedUnchecked: 2 });
    });

    it('continues an unkeyed chain keyed, and a restart with the key continues the keyed chain', async () => {
      const path = join(await tmp(), 'audit.jsonl');
      const before = new AuditLog(path, 'a', silentLogger());
      await before.append('unkeyed');
      await before.close();
      const { logger, lines: logged } = captureLogger();
      const keyed = new AuditLog(path, 'a', logger, { key: KEY });
      await keyed.append('keyed');
      await keyed.close();
      expect(logged.some((l) => l.msg === 'audit chain keyed from the next record on' && l.fromSeq === 2)).toBe(true);
      const again = new AuditLog(path, 'a', silentLogger(), { key: KEY });
      await again.append('keyed-again');
      await again.close();
      const report = await verifyAuditFiles([path], { keys: [KEY] });
      expect(report).toMatchObject({ ok: true, unkeyed: 1, unkeyedSeqs: { first: 1, last: 1 }, keyed: 2, keyedSeqs: { first: 2, last: 3 } });
    });

    it('a daemon without its key after a keyed chain warns, and verify reports the downgrade', async () => {
      const path = join(await tmp(), 'audit.jsonl');
      const keyed = new AuditLog(path, 'a', silentLogger(), { key: KEY });
      await keyed.append('keyed');
      await keyed.close();
      const { logger, lines: logged } = captureLogger();
      const unkeyed = new AuditLog(path, 'a', logger);
      await unkeyed.append('unkeyed');
      await unkeyed.close();
      expect(logged.some((l) => l.level === 40 && /keyed but audit.key_file is not set/.test(String(l.msg)))).toBe(true);
      const report = await verifyAuditFiles([path]);
      expect(report.ok).toBe(false);
      expect(report.problems).toEqual([expect.objectContaining({ line: 2, kind: 'downgrade' })]);
    });

    it('logs the chain head at open, within the interval after records, and at close', async () => {
      const path = join(await tmp(), 'audit.jsonl');
      const first = new AuditLog(path, 'a', silentLogger(), { key: KEY });
      await first.append('one');
      await first.close();
      const { logger, lines: logged } = captureLogger();
      const log = new AuditLog(path, 'a', logger, { key: KEY, anchorIntervalMs: 100 });
      await log.open();
      const anchors = () => logged.filter((l) => l.msg === 'audit chain head');
      expect(anchors()).toEqual([expect.objectContaining({ seq: 1, keyed: true, when: 'open', anchor: `1:${first.head.hash}` })]);
      await log.append('two');
      await log.append('three');
      expect(anchors()).toHaveLength(1); // a burst is anchored once, after the interval
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(anchors()).toHaveLength(2);
      expect(anchors()[1]).toMatchObject({ seq: 3, when: 'interval', anchor: `3:${log.head.hash}` });
      await log.append('four');
      await log.close();
      expect(anchors()[2]).toMatchObject({ seq: 4, when: 'close', anchor: `4:${log.head.hash}` });
      const anchored = await verifyAuditFiles([path], { keys: [KEY], anchor: { seq: 3, hash: String(anchors()[1]!.anchor).split(':')[1]! } });
      expect(anchored).toMatchObject({ ok: true, anchor: { seq: 3, state: 'matched' } });
    });

    it('refuses a key file readable by others, not regular, too short or a pattern (fromConfig: FatalError)', async () => {
      const d = await tmp();
      const keyFile = join(d, 'audit.key');
      await writeFile(keyFile, '3f9c1e07b25d48a6e1c97f0d2b8a4e61c5d09f3a7b2e84d1\n', { mode: 0o644 });
      const config = { path: join(d, 'audit.jsonl'), keyFile };
      expect(() => AuditLog.fromConfig(config, 'a', silentLogger())).toThrow(/only its owner can access .*mode 0644/);
      await chmod(keyFile, 0o600);
      expect(AuditLog.fromConfig(config, 'a', silentLogger()).keyed).toBe(true);
      await writeFile(keyFile, 'short\n');
      expect(() => AuditLog.fromConfig(config, 'a', silentLogger())).toThrow(/at least 128 bits .*got 5 .*about \d+ bits/);
      await writeFile(keyFile, `${'a'.repeat(40)}\n`);
      expect(() => AuditLog.fromConfig(config, 'a', silentLogger())).toThrow(/one character repeated/);
      await writeFile(keyFile, `${'0123456789abcdef'.repeat(4)}\n`);
      expect(() => AuditLog.fromConfig(config, 'a', silentLogger())).toThrow(/a sequence of 16 characters repeated/);
      expect(() => AuditLog.fromConfig({ ...config, keyFile: d }, 'a', silentLogger())).toThrow(/regular file/);
      try {
        AuditLog.fromConfig({ ...config, keyFile: join(d, 'missing') }, 'a', silentLogger());
        expect.unreachable();
      } catch (error) {
        expect(error).toBeInstanceOf(FatalError);
        expect((error as FatalError).message).toMatch(/audit.key_file: expected a readable key file for the audit chain, got ".*missing" \(no such file\)/);
      }
      expect(AuditLog.fromConfig({ ...config, keyFile: '' }, 'a', silentLogger()).keyed).toBe(false);
    });

    it('refuses a FIFO as the key file without hanging', async () => {
      const d = await tmp();
      const fifo = join(d, 'audit.key');
      execFileSync('mkfifo', ['-m', '600', fifo]);
      expect(() => AuditLog.fromConfig({ path: join(d, 'audit.jsonl'), keyFile: fifo }, 'a', silentLogger())).toThrow(/regular file/);
    });
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
