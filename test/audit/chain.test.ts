/**
 * The record format and the chain check, on text only: a clean chain verifies; an edit,
 * a deletion, a swap, a duplicate and a torn last line are each reported once, at the
 * right line, with the right reason; reserved keys in data cannot forge the chain.
 */
import { describe, expect, it } from 'vitest';
import {
  ChainVerifier,
  formatRecord,
  GENESIS_HASH,
  GENESIS_HEAD,
  hmacHex,
  LineSplitter,
  parseLine,
  sha256hex,
  verifyLines,
  type ChainHead,
} from '../../src/audit/chain.js';

/** `count` chained lines continuing `head`, with times one second apart. */
function chain(count: number, head: ChainHead = GENESIS_HEAD): { lines: string[]; head: ChainHead } {
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    const time = new Date(Date.UTC(2026, 0, 1, 0, 0, head.seq)).toISOString();
    const r = formatRecord(head, { time, node: 'redis-a', event: 'transition' }, { from: 'BACKUP', to: 'MASTER', i: head.seq });
    lines.push(r.line);
    head = r.head;
  }
  return { lines, head };
}

/** The file text split on "\n", as `verifyLines` takes it. */
const file = (lines: readonly string[]): string[] => [...lines, ''];

describe('formatRecord', () => {
  it('hashes the body and appends the hash as the last key', () => {
    const r = formatRecord(GENESIS_HEAD, { time: '2026-01-01T00:00:00.000Z', node: 'a', event: 'daemon-started' }, { priority: 100 });
    const body = '{"seq":1,"time":"2026-01-01T00:00:00.000Z","node":"a","event":"daemon-started","priority":100,' +
      `"prev":"${GENESIS_HASH}"}`;
    expect(r.head).toEqual({ seq: 1, hash: sha256hex(body) });
    expect(r.line).toBe(`${body.slice(0, -1)},"hash":"${sha256hex(body)}"}`);
    const parsed = parseLine(r.line);
    expect(parsed.ok && parsed.computedHash).toBe(r.head.hash);
  });

  it('continues seq and prev from the head it is given', () => {
    const { lines } = chain(3);
    const records = lines.map((l) => JSON.parse(l) as { seq: number; prev: string; hash: string });
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(records[0]!.prev).toBe(GENESIS_HASH);
    expect(records[1]!.prev).toBe(records[0]!.hash);
    expect(records[2]!.prev).toBe(records[1]!.hash);
  });

  it('renames reserved keys in data so they cannot override the chain fields', () => {
    const data = { seq: 99, time: 'x', node: 'evil', event: 'fake', prev: 'p', hash: 'h', data_seq: 'taken', ok: true };
    const before = chain(4);
    const r = formatRecord(before.head, { time: '2026-01-01T00:00:00.000Z', node: 'a', event: 'control-request' }, data);
    const record = JSON.parse(r.line) as Record<string, unknown>;
    expect(record).toMatchObject({
      seq: 5, time: '2026-01-01T00:00:00.000Z', node: 'a', event: 'control-request', prev: before.head.hash, hash: r.head.hash,
      data_data_seq: 99, data_time: 'x', data_node: 'evil', data_event: 'fake', data_prev: 'p', data_hash: 'h', data_seq: 'taken', ok: true,
    });
    expect(Object.keys(record).at(-1)).toBe('hash');
    expect(verifyLines(file([...before.lines, r.line])).problems).toEqual([]);
  });

  it('keeps a __proto__ key as plain data and writes bigints as strings', () => {
    const data = JSON.parse('{"__proto__":{"polluted":true},"n":1}') as Record<string, unknown>;
    const r = formatRecord(GENESIS_HEAD, { time: 't', node: 'a', event: 'e' }, { ...data, big: 12345678901234567890n });
    const parsed = parseLine(r.line);
    expect(parsed.ok).toBe(true);
    expect(r.line).toContain('"__proto__":{"polluted":true}');
    expect(r.line).toContain('"big":"12345678901234567890"');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('parseLine', () => {
  const good = chain(1).lines[0]!;
  it.each([
    ['not JSON', '{"seq":1,', /^malformed JSON/],
    ['an array', '[1,2]', /not a JSON object/],
    ['no hash', '{"seq":1,"time":"t","node":"a","event":"e","prev":"0"}', /missing hash field/],
    ['a short hash', good.replace(/"hash":"[0-9a-f]{64}"/, '"hash":"abc"'), /invalid hash field: expected 64/],
    ['hash not last', good.replace(/,"hash":("[0-9a-f]{64}")\}$/, '}').replace(/^\{/, `{"hash":${JSON.stringify(JSON.parse(good).hash)},`), /not the last key/],
    ['re-serialised with spaces', JSON.stringify(JSON.parse(good), null, 1).replace(/\n/g, ''), /not the last key/],
    ['an empty line', '', /empty line/],
  ])('reports %s as malformed', (_name, line, reason) => {
    const parsed = parseLine(line);
    expect(parsed.ok).toBe(false);
    expect(!parsed.ok && parsed.reason).toMatch(reason);
  });

  it('returns the claimed and the recomputed hash of an edited line', () => {
    const edited = good.replace('"to":"MASTER"', '"to":"FAULT"');
    const parsed = parseLine(edited);
    expect(parsed.ok).toBe(true);
    if (parsed.ok) {
      expect(parsed.hash).toBe(JSON.parse(good).hash);
      expect(parsed.computedHash).not.toBe(parsed.hash);
      expect(parsed.record.to).toBe('FAULT');
    }
  });
});

describe('verifyLines', () => {
  const { lines, head } = chain(6);

  it('accepts a clean chain and reports its span', () => {
    const r = verifyLines(file(lines));
    expect(r.problems).toEqual([]);
    expect(r).toMatchObject({
      records: 6, problemCount: 0, head,
      first: { seq: 1, time: '2026-01-01T00:00:00.000Z' },
      last: { seq: 6, time: '2026-01-01T00:00:05.000Z', hash: head.hash },
    });
  });

  it('accepts an empty input', () => {
    expect(verifyLines([''])).toMatchObject({ records: 0, problems: [], head: null });
    expect(verifyLines([])).toMatchObject({ records: 0, problems: [] });
  });

  it('reports an edited field as a hash mismatch on that line only', () => {
    const edited = [...lines];
    edited[2] = edited[2]!.replace('"from":"BACKUP"', '"from":"FAULT"');
    const r = verifyLines(file(edited));
    expect(r.problems).toEqual([{ line: 3, kind: 'hash-mismatch', reason: expect.stringMatching(/hash mismatch: the line was edited/) }]);
  });

  it('reports a line edited together with its hash as a broken link on the next line', () => {
    const forged = [...lines];
    const record = JSON.parse(forged[2]!) as Record<string, unknown>;
    const { hash: _dropped, ...rest } = record;
    const body = JSON.stringify({ ...rest, from: 'FAULT' });
    forged[2] = `${body.slice(0, -1)},"hash":"${sha256hex(body)}"}`;
    const r = verifyLines(file(forged));
    expect(r.problems).toEqual([{ line: 4, kind: 'broken-link', reason: expect.stringMatching(/prev .* is not the hash of the record before \(line 3, seq 3, .*deleted, inserted or reordered/) }]);
  });

  it('reports a deleted middle line where the chain jumps', () => {
    const r = verifyLines(file([...lines.slice(0, 2), ...lines.slice(3)]));
    expect(r.problems).toEqual([{ line: 3, kind: 'deleted', reason: expect.stringMatching(/seq jumps from 2 \(line 2\) to 4: 1 record\(s\) deleted/) }]);
    expect(r.records).toBe(5);
  });

  it('accepts a file starting mid-chain unless an anchor says where the chain stood', () => {
    const rotated = lines.slice(3);
    expect(verifyLines(file(rotated)).problems).toEqual([]);
    // The previous file ended at seq 3: the rotated file must start at seq 4.
    const anchor = { seq: 3, hash: (JSON.parse(lines[2]!) as { hash: string }).hash };
    expect(verifyLines(file(rotated), { anchor }).problems).toEqual([]);
    // Its first line deleted.
    const r = verifyLines(file(rotated.slice(1)), { anchor: { ...anchor, description: 'the end of audit.jsonl.1' } });
    expect(r.problems).toEqual([{ line: 1, kind: 'deleted', reason: expect.stringMatching(/seq jumps from 3 \(the end of audit\.jsonl\.1\) to 5: 1 record\(s\) deleted/) }]);
    expect(verifyLines(file(rotated.slice(1))).problems).toEqual([]);
  });

  it('reports two swapped lines as reordered', () => {
    const swapped = [...lines];
    [swapped[2], swapped[3]] = [swapped[3]!, swapped[2]!];
    const r = verifyLines(file(swapped));
    expect(r.problems.map((p) => [p.line, p.kind])).toEqual([[3, 'deleted'], [4, 'reordered'], [5, 'deleted']]);
    expect(r.problems[1]!.reason).toMatch(/seq goes back from 4 \(line 3\) to 3: records reordered\/duplicated/);
  });

  it('reports a duplicated line once', () => {
    const r = verifyLines(file([...lines.slice(0, 3), lines[2]!, ...lines.slice(3)]));
    expect(r.problems).toEqual([{ line: 4, kind: 'reordered', reason: expect.stringMatching(/seq 3 repeats \(line 3\): records reordered\/duplicated: a duplicate of the line before/) }]);
  });

  it('reports a truncated last line', () => {
    const torn = [...lines.slice(0, 5), lines[5]!.slice(0, 40)];
    const r = verifyLines(torn);
    expect(r.problems).toEqual([{ line: 6, kind: 'truncated', reason: 'truncated last record (a write was interrupted)' }]);
    expect(r.head).toBeNull();
    // A complete record whose newline never made it is still an interrupted write.
    expect(verifyLines(lines).problems.map((p) => p.kind)).toEqual(['truncated']);
  });

  it('reports a garbage line once and re-anchors on the record after it', () => {
    const r = verifyLines(file([...lines.slice(0, 3), 'garbage', ...lines.slice(4)]));
    expect(r.problems).toEqual([{ line: 4, kind: 'malformed', reason: expect.stringMatching(/^malformed JSON/) }]);
  });

  it('reports an empty line without losing the link across it', () => {
    const r = verifyLines(file([...lines.slice(0, 3), '', ...lines.slice(4)]));
    expect(r.problems.map((p) => [p.line, p.kind])).toEqual([[4, 'malformed'], [5, 'deleted']]);
  });

  it('flags a new chain (prev all zeros) that does not start at seq 1', () => {
    const bad = formatRecord({ seq: 7, hash: GENESIS_HASH }, { time: 't', node: 'a', event: 'e' });
    expect(verifyLines(file([bad.line])).problems.map((p) => p.kind)).toEqual(['broken-link']);
  });

  it('keeps at most MAX_REPORTED_PROBLEMS problems but counts them all', () => {
    const r = verifyLines(file(Array.from({ length: 1500 }, () => 'x')));
    expect(r.problems).toHaveLength(1000);
    expect(r.problemCount).toBe(1500);
  });

  it('gives the same result fed one line at a time', () => {
    const v = new ChainVerifier();
    for (const l of lines) v.line(l);
    expect(v.end()).toEqual(verifyLines(file(lines)));
  });
});

describe('LineSplitter', () => {
  it('splits across chunk boundaries and multibyte characters', () => {
    const text = 'ab\nçé€\n\ntail';
    const bytes = Buffer.from(text, 'utf8');
    const s = new LineSplitter();
    const out: string[] = [];
    for (let i = 0; i < bytes.length; i++) s.push(bytes.subarray(i, i + 1), (l) => out.push(l));
    expect(out).toEqual(['ab', 'çé€', '']);
    expect(s.pending).toBe(true);
    expect(s.rest()).toBe('tail');
    expect(s.pending).toBe(false);
  });

  it('cuts a line longer than its limit instead of buffering it', () => {
    const s = new LineSplitter(4);
    const out: string[] = [];
    s.push(Buffer.from('abcdefgh\nxy\n'), (l) => out.push(l));
    expect(out).toEqual(['abcd', 'xy']);
  });
});

describe('keyed records', () => {
  const KEY = Buffer.from('5f2c9a0e7b31d4c8a6e19f03b72d58c4');
  const header = { time: '2026-01-01T00:00:00.000Z', node: 'a', event: 'e' };

  it('link with HMAC-SHA256 of the body under the key, as an "hmac" last key', () => {
    const r = formatRecord(GENESIS_HEAD, header, { x: 1 }, KEY);
    const body = `{"seq":1,"time":"2026-01-01T00:00:00.000Z","node":"a","event":"e","x":1,"prev":"${GENESIS_HASH}"}`;
    expect(r.head).toEqual({ seq: 1, hash: hmacHex(KEY, body) });
    expect(r.line).toBe(`${body.slice(0, -1)},"hmac":"${hmacHex(KEY, body)}"}`);
    expect(parseLine(r.line, [KEY])).toMatchObject({ ok: true, keyed: true, hash: r.head.hash, computedHash: r.head.hash });
    expect(parseLine(r.line)).toMatchObject({ ok: true, keyed: true, computedHash: null });
    expect(parseLine(r.line, [Buffer.from('another key of 32 characters!!!!')])).toMatchObject({ ok: true, keyed: true });
    const wrong = parseLine(r.line, [Buffer.from('another key of 32 characters!!!!')]);
    expect(wrong.ok && wrong.computedHash).not.toBe(r.head.hash);
  });

  it('an "hmac" or "hash" key in data cannot pass for the link', () => {
    const r = formatRecord(GENESIS_HEAD, header, { hmac: 'f'.repeat(64), hash: 'e'.repeat(64) }, null);
    expect(JSON.parse(r.line)).toMatchObject({ data_hmac: 'f'.repeat(64), data_hash: 'e'.repeat(64) });
    expect(parseLine(r.line)).toMatchObject({ ok: true, keyed: false });
  });

  it('verifyLines checks keyed records with the key, reports a downgrade once, and checks a checkpoint', () => {
    const lines: string[] = [];
    let head = GENESIS_HEAD;
    for (let i = 0; i < 6; i++) {
      const r = formatRecord(head, header, { i }, i < 1 || i > 3 ? null : KEY);
      lines.push(r.line);
      head = r.head;
    }
    const r = verifyLines(file(lines), { keys: [KEY], checkpoint: { seq: 3, hash: (JSON.parse(lines[2]!) as { hmac: string }).hmac } });
    expect(r).toMatchObject({ keyed: 3, keyedSeqs: { first: 2, last: 4 }, keyedUnchecked: 0, unkeyed: 3, unkeyedSeqs: { first: 1, last: 6 }, checkpoint: 'matched' });
    expect(r.problems).toEqual([{ line: 5, kind: 'downgrade', reason: expect.stringMatching(/^seq 5 is unkeyed \(SHA-256\) but the record before it is keyed/) }]);
    expect(verifyLines(file(lines), { checkpoint: { seq: 3, hash: 'a'.repeat(64) } })).toMatchObject({ checkpoint: 'mismatch', problems: expect.arrayContaining([expect.objectContaining({ line: 3, kind: 'anchor' })]) });
    expect(verifyLines(file(lines), { checkpoint: { seq: 30, hash: 'a'.repeat(64) } }).checkpoint).toBeNull();
  });
});
