/**
 * The leader record's format: what is written parses back, and anything else stored
 * under the key (another program's value, a truncated write, a future format) is refused
 * with a reason, never a throw.
 */
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  LEADER_RECORD_FORMAT,
  MAX_NODE_NAME_LENGTH,
  encodeLeaderRecord,
  parseLeaderRecord,
} from '../../../src/adapters/quorum/record.js';
import { keysProblem, leaderKeys } from '../../../src/adapters/quorum/transactions.js';

const raw = (value: unknown): Buffer => Buffer.from(JSON.stringify(value));
const good = { format: LEADER_RECORD_FORMAT, node: 'node-a', epoch: 7 };

describe('leader record', () => {
  test('what is written parses back', () => {
    const value = encodeLeaderRecord({ node: 'redis-1.example', epoch: 42 });
    expect(parseLeaderRecord(value)).toEqual({ ok: true, record: { node: 'redis-1.example', epoch: 42 } });
    expect(value.toString()).toBe(`{"format":"${LEADER_RECORD_FORMAT}","node":"redis-1.example","epoch":42}`);
  });

  test.each([
    ['empty', Buffer.alloc(0), 'not JSON'],
    ['not JSON', Buffer.from('node-a 7'), 'not JSON'],
    ['truncated', Buffer.from(JSON.stringify(good).slice(0, 20)), 'not JSON'],
    ['an array', raw([good]), 'not a JSON object'],
    ['null', raw(null), 'not a JSON object'],
    ['a number', raw(7), 'not a JSON object'],
    ['another format', raw({ ...good, format: 'redis-ha-leader/2' }), 'format is not'],
    ['a missing epoch', raw({ format: LEADER_RECORD_FORMAT, node: 'a' }), 'expected [epoch,format,node]'],
    ['an extra field', raw({ ...good, ttl: 1 }), 'expected [epoch,format,node]'],
    ['an epoch as text', raw({ ...good, epoch: '7' }), 'epoch is not a number'],
    ['a negative epoch', raw({ ...good, epoch: -1 }), 'not a non-negative safe integer'],
    ['a fractional epoch', raw({ ...good, epoch: 1.5 }), 'not a non-negative safe integer'],
    ['an unsafe epoch', Buffer.from(`{"format":"${LEADER_RECORD_FORMAT}","node":"a","epoch":9007199254740993}`), 'not a non-negative safe integer'],
    ['a node as number', raw({ ...good, node: 1 }), 'node is not a string'],
    ['an empty node', raw({ ...good, node: '' }), 'node name is empty'],
    ['a node with a space', raw({ ...good, node: 'a b' }), 'node name is not'],
    ['a node too long', raw({ ...good, node: 'a'.repeat(MAX_NODE_NAME_LENGTH + 1) }), 'longer than'],
    ['a huge value', Buffer.alloc(2_000, 0x20), 'longer than'],
    ['invalid UTF-8', Buffer.from([0xff, 0xfe, 0x7b]), 'not JSON'],
  ])('refuses %s', (_name, value, reason) => {
    const parsed = parseLeaderRecord(value);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.reason).toContain(reason);
  });

  test('never throws, whatever the bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1_200 }), (bytes) => {
        const parsed = parseLeaderRecord(Buffer.from(bytes));
        expect(typeof parsed.ok).toBe('boolean');
      }),
    );
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(typeof parseLeaderRecord(raw(value)).ok).toBe('boolean');
      }),
    );
  });

  test('refuses to write what it could not read back', () => {
    expect(() => encodeLeaderRecord({ node: 'a b', epoch: 1 })).toThrow(RangeError);
    expect(() => encodeLeaderRecord({ node: 'a', epoch: -1 })).toThrow(RangeError);
    expect(() => encodeLeaderRecord({ node: 'a', epoch: Number.NaN })).toThrow(RangeError);
  });
});

describe('leader keys', () => {
  test('one leader key and one takeover fence per group, under the prefix', () => {
    const keys = leaderKeys('/redis-ha/', 'cache');
    expect(keys.leader.toString()).toBe('/redis-ha/cache/leader');
    expect(keys.fence.toString()).toBe('/redis-ha/cache/leader-fence');
  });

  test.each([
    ['redis-ha', 'cache', 'does not start with'],
    ['/redis ha', 'cache', 'white space'],
    ['/redis-ha', 'a/b', 'cluster name'],
    ['/redis-ha', '', 'cluster name'],
  ])('refuses prefix %j with cluster %j', (prefix, cluster, reason) => {
    expect(keysProblem(prefix, cluster)).toContain(reason);
  });
});
