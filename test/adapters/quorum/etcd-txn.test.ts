/**
 * What the quorum's transactions (src/adapters/quorum/transactions.ts) rely on in etcd's
 * transaction semantics, measured on the real server (Debian's etcd-server, 3.4) rather
 * than assumed, so an etcd upgrade that changes one of them fails here first:
 *  - one transaction may range a key and then put it: allowed, and the range returns the
 *    value from before the put (operations run in order on one revision);
 *  - every put of one transaction gets its revision, the one in the response's header;
 *  - two puts of one key in one branch are refused as a whole ("duplicate key");
 *  - a compare on a key's lease (`target: Lease`) holds only for that lease; on an absent
 *    key it compares lease 0;
 *  - a compare on the value of an absent key never holds;
 *  - a put bound to an unknown lease fails the whole transaction, and only in the branch
 *    taken (the other branch's leases are not checked).
 * Run under the shared lock: flock /tmp/redis-ha-e2e.lock npx vitest run test/adapters/quorum
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { Etcd3, EtcdLeaseInvalidError, type ITxnRequest } from 'etcd3';
import { startEtcdCluster, stopAllEtcdClusters, type EtcdCluster } from '../../helpers/etcd-cluster.js';

const CALL_TIMEOUT_MS = 2_000;

let cluster: EtcdCluster;
let client: Etcd3;
let seq = 0;

function key(name: string): Buffer {
  seq += 1;
  return Buffer.from(`/redis-ha-txn-test/${process.pid}/${seq}/${name}`);
}

function txn(request: ITxnRequest) {
  return client.kv.txn(request, { deadline: Date.now() + CALL_TIMEOUT_MS });
}

beforeAll(async () => {
  cluster = await startEtcdCluster(1);
  client = new Etcd3({ hosts: [...cluster.endpoints] });
});

afterAll(async () => {
  client?.close();
  await stopAllEtcdClusters();
});

describe('etcd 3.4 transactions', () => {
  test('a branch may range a key and then put it; the range sees the value before the put', async () => {
    const k = key('last');
    await client.put(k).value('old');
    const r = await txn({
      compare: [],
      success: [{ request_range: { key: k } }, { request_put: { key: k, value: Buffer.from('new') } }, { request_range: { key: k } }],
    });
    expect(r.succeeded).toBe(true);
    expect(r.responses[0]?.response_range?.kvs[0]?.value.toString()).toBe('old');
    // A range after the put in the same branch sees it.
    expect(r.responses[2]?.response_range?.kvs[0]?.value.toString()).toBe('new');
    expect(await client.get(k).string()).toBe('new');
  });

  test('every put of a transaction carries the revision in its response\'s header', async () => {
    const a = key('leader');
    const b = key('last');
    const r = await txn({ compare: [], success: [{ request_put: { key: a, value: Buffer.from('1') } }, { request_put: { key: b, value: Buffer.from('2') } }] });
    const revisions = await Promise.all([a, b].map(async (k) => String((await client.get(k).exec()).kvs[0]?.mod_revision)));
    expect(revisions).toEqual([String(r.header.revision), String(r.header.revision)]);
  });

  test('two puts of one key in one branch are refused as a whole', async () => {
    const k = key('twice');
    const other = key('other');
    await expect(txn({
      compare: [],
      success: [{ request_put: { key: other, value: Buffer.from('x') } }, { request_put: { key: k, value: Buffer.from('1') } }, { request_put: { key: k, value: Buffer.from('2') } }],
    })).rejects.toThrow(/duplicate key/);
    expect(await client.get(other).string()).toBeNull();
  });

  test('a compare on the lease holds only for the key\'s own lease; an absent key has lease 0', async () => {
    const k = key('leader');
    const mine = client.lease(10, { autoKeepAlive: false });
    const other = client.lease(10, { autoKeepAlive: false });
    try {
      const mineId = await mine.grant();
      const otherId = await other.grant();
      const onLease = (id: string): ITxnRequest => ({
        compare: [{ key: k, target: 'Lease', result: 'Equal', lease: id }],
        success: [{ request_put: { key: key('mark'), value: Buffer.from('m') } }],
      });
      expect((await txn(onLease(mineId))).succeeded).toBe(false);
      expect((await txn(onLease('0'))).succeeded).toBe(true);
      await client.put(k).value('v').lease(mineId);
      expect((await txn(onLease(mineId))).succeeded).toBe(true);
      expect((await txn(onLease(otherId))).succeeded).toBe(false);
    } finally {
      await mine.revoke();
      await other.revoke();
    }
  });

  test('a compare on the value of an absent key never holds, not even against an empty value', async () => {
    const k = key('relaxed');
    const r = await txn({ compare: [{ key: k, target: 'Value', result: 'Equal', value: Buffer.alloc(0) }], success: [], failure: [] });
    expect(r.succeeded).toBe(false);
  });

  test('a put on an unknown lease fails the whole transaction, in the branch taken only', async () => {
    const k = key('leader');
    const gone = client.lease(10, { autoKeepAlive: false });
    const goneId = await gone.grant();
    await gone.revoke();
    const free = key('free');
    await expect(txn({
      compare: [],
      success: [{ request_put: { key: free, value: Buffer.from('x') } }, { request_put: { key: k, value: Buffer.from('v'), lease: goneId } }],
    })).rejects.toBeInstanceOf(EtcdLeaseInvalidError);
    expect(await client.get(free).string()).toBeNull();
    const r = await txn({
      compare: [{ key: k, target: 'Create', result: 'Equal', create_revision: 1 }],
      success: [{ request_put: { key: k, value: Buffer.from('v'), lease: goneId } }],
      failure: [{ request_put: { key: free, value: Buffer.from('y') } }],
    });
    expect(r.succeeded).toBe(false);
    expect(await client.get(free).string()).toBe('y');
  });
});
