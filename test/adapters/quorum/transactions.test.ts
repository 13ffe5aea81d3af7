/**
 * The transactions' shape, without a server (what etcd does with them is measured in
 * etcd-txn.test.ts and exercised in etcd-quorum.test.ts): a write of the leader key
 * ranges the durable keys before any put (what `memoryRead` reads back) and never puts
 * leader-last; the served record and the relaxed mark are put only over the leader key
 * holding exactly this node's record on its lease.
 */
import { describe, expect, test } from 'vitest';
import type { ITxnRequest, ITxnResponse } from 'etcd3';
import { encodeLeaderRecord, parseLeaderRecord } from '../../../src/adapters/quorum/record.js';
import {
  clearTxn,
  createTxn,
  keysRead,
  leaderKeys,
  markTxn,
  memoryRead,
  raiseTxn,
  readTxn,
  replaceTxn,
  servedTxn,
  type LeaderWrite,
  type StoredKey,
} from '../../../src/adapters/quorum/transactions.js';

const keys = leaderKeys('/redis-ha', 'g1');
const mine: LeaderWrite = { value: encodeLeaderRecord({ node: 'a', epoch: 5 }), epoch: 5, leaseId: '7' };

function stored(value: Buffer | string, modRevision: string, lease = '0'): StoredKey {
  const v = Buffer.from(value);
  return { value: v, record: parseLeaderRecord(v), lease, modRevision };
}

/** The keys a branch puts, as strings. */
const puts = (ops: ITxnRequest['success']): string[] => (ops ?? []).flatMap((op) => (op.request_put?.key ? [op.request_put.key.toString()] : []));

describe('key names', () => {
  test('four keys per group, next to each other', () => {
    expect(Object.fromEntries(Object.entries(keys).map(([name, key]) => [name, key.toString()]))).toEqual({
      leader: '/redis-ha/g1/leader',
      fence: '/redis-ha/g1/leader-fence',
      last: '/redis-ha/g1/leader-last',
      relaxed: '/redis-ha/g1/leader-relaxed',
    });
  });
});

describe('leader-last', () => {
  test('no write of the leader key compares or puts it: only its master\'s served record does', () => {
    const leader = stored(encodeLeaderRecord({ node: 'b', epoch: 4 }), '30', '99');
    for (const request of [createTxn(keys, mine), raiseTxn(keys, '30', mine), replaceTxn(keys, leader, mine, true)]) {
      expect(request.compare?.some((c) => c.key?.equals(keys.last) === true)).toBe(false);
      expect(puts(request.success)).not.toContain('/redis-ha/g1/leader-last');
    }
    const served = Buffer.from('{"format":"redis-ha-served/1"}');
    const request = servedTxn(keys, mine, served);
    expect(request.compare).toEqual([
      { key: keys.leader, target: 'Value', result: 'Equal', value: mine.value },
      { key: keys.leader, target: 'Lease', result: 'Equal', lease: '7' },
    ]);
    expect(request.success).toEqual([{ request_put: { key: keys.last, value: served } }]);
  });

  test('a write\'s branch ranges the durable keys before its puts; a takeover also puts the fence on the previous lease', () => {
    const leader = stored(encodeLeaderRecord({ node: 'b', epoch: 4 }), '30', '99');
    const request = replaceTxn(keys, leader, mine, true);
    const ops = request.success ?? [];
    expect(ops.slice(0, 2).map((op) => op.request_range?.key?.toString())).toEqual(['/redis-ha/g1/leader-last', '/redis-ha/g1/leader-relaxed']);
    expect(puts(ops)).toEqual(['/redis-ha/g1/leader', '/redis-ha/g1/leader-fence']);
    expect(ops.find((op) => op.request_put?.key?.equals(keys.fence))?.request_put).toMatchObject({ value: leader.value, lease: '99' });
    expect(ops.find((op) => op.request_put?.key?.equals(keys.leader))?.request_put?.lease).toBe('7');
  });
});

describe('relaxed mark', () => {
  test('written only over the leader key holding exactly my record on my lease, and over the mark as read', () => {
    const request = markTxn(keys, mine, null);
    expect(request.compare).toEqual([
      { key: keys.leader, target: 'Value', result: 'Equal', value: mine.value },
      { key: keys.leader, target: 'Lease', result: 'Equal', lease: '7' },
      { key: keys.relaxed, target: 'Create', result: 'Equal', create_revision: 0 },
    ]);
    expect(request.success).toEqual([{ request_put: { key: keys.relaxed, value: mine.value } }]);
    expect(markTxn(keys, mine, stored(encodeLeaderRecord({ node: 'a', epoch: 4 }), '12')).compare?.[2])
      .toEqual({ key: keys.relaxed, target: 'Mod', result: 'Equal', mod_revision: '12' });
  });

  test('cleared only when it is exactly the record (by value), or still the value read (by revision)', () => {
    expect(clearTxn(keys, { value: mine.value })).toMatchObject({
      compare: [{ key: keys.relaxed, target: 'Value', result: 'Equal', value: mine.value }],
      success: [{ request_delete_range: { key: keys.relaxed } }],
    });
    expect(clearTxn(keys, { read: stored('x', '12') }).compare).toEqual([{ key: keys.relaxed, target: 'Mod', result: 'Equal', mod_revision: '12' }]);
  });
});

describe('reading responses', () => {
  const kv = (key: Buffer, value: Buffer, modRevision: string) => ({ key, value, lease: '0', mod_revision: modRevision, create_revision: '1', version: '1' });
  const range = (...kvs: ReturnType<typeof kv>[]) => ({ response_range: { kvs, count: String(kvs.length), more: false, header: {} } });

  test('a read branch gives the four keys in order; a write\'s success branch gives the durable two', () => {
    const last = encodeLeaderRecord({ node: 'b', epoch: 6 });
    const read = { succeeded: false, header: {}, responses: [range(), range(), range(kv(keys.last, last, '40')), range(kv(keys.relaxed, Buffer.from('junk'), '41'))] } as unknown as ITxnResponse;
    const found = keysRead(read);
    expect(found.leader).toBeNull();
    expect(found.fence).toBeNull();
    expect(found.last).toMatchObject({ record: { ok: true, record: { node: 'b', epoch: 6 } }, modRevision: '40' });
    expect(found.relaxed).toMatchObject({ record: { ok: false, reason: 'value is not JSON' } });
    expect(readTxn(keys).success?.map((op) => op.request_range?.key?.toString())).toEqual(
      ['/redis-ha/g1/leader', '/redis-ha/g1/leader-fence', '/redis-ha/g1/leader-last', '/redis-ha/g1/leader-relaxed']);

    const written = { succeeded: true, header: {}, responses: [range(kv(keys.last, last, '40')), range(), { response_put: {} }] } as unknown as ITxnResponse;
    expect(memoryRead(written)).toMatchObject({ last: { record: { ok: true, record: { node: 'b', epoch: 6 } } }, relaxed: null });
  });
});
