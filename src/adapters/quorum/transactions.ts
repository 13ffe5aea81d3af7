/**
 * The group's keys and the etcd transactions that write them. Pure: requests in,
 * responses read; `etcd-quorum.ts` sends them.
 *
 * Four keys per group:
 *   <prefix>/<cluster>/leader          the holder's record, bound to the holder's lease
 *   <prefix>/<cluster>/leader-fence    after a takeover: the previous holder's record, bound
 *                                      to the previous holder's lease
 *   <prefix>/<cluster>/leader-last     no lease (durable): the last master whose Redis served,
 *                                      with its replication id (`served-record.ts`, finding Q9)
 *   <prefix>/<cluster>/leader-relaxed  no lease (durable): a master that relaxed its Redis's
 *                                      fence and has not cleared the mark (finding Q12)
 *
 * Every write is a compare-and-swap, never a blind put:
 *  - create: leader absent AND fence absent → put mine with my lease;
 *  - raise:  leader unchanged since read (mod revision) → put mine with a higher epoch;
 *  - replace (takeover): leader unchanged since read AND fence absent → put mine with my
 *    lease, and the previous record as the fence, bound to the *previous* lease.
 * The fence is what keeps two nodes from both believing they hold: the previous holder may
 * believe until its own lease deadline, which is never later than its lease's end, and the
 * fence lives exactly as long as that lease. The new holder holds only once the fence is
 * gone, and no create or second takeover can happen while it exists (so a new holder that
 * dies at once cannot hand the key to a third node while the first still believes).
 *
 * The success branch of each first ranges leader-last and leader-relaxed, so the write
 * reports them as they were in its own revision (etcd runs a branch's operations in
 * order; a range before a put of the same key sees the old value: etcd-txn.test.ts).
 *
 * leader-last is put only by its master, while the leader key is its own (compare on the
 * key's value and lease): once its Redis serves, not when it merely holds the key.
 * The relaxed mark: put only while the leader key is mine (the same compare) and the mark
 * is absent or as read before (never over another node's mark: that node's Redis may
 * still take writes without a replica); deleted only when it is exactly a given record
 * (compare on the value, or on the mod revision of a value read).
 */
import type { IKeyValue, ITxnRequest, ITxnResponse } from 'etcd3';
import { parseLeaderRecord, type ParsedRecord } from './record.js';

/** Names of a group's keys. */
export interface LeaderKeys {
  readonly leader: Buffer;
  readonly fence: Buffer;
  readonly last: Buffer;
  readonly relaxed: Buffer;
}

/** A key as read: its parsed value, lease and revision. */
export interface StoredKey {
  readonly value: Buffer;
  readonly record: ParsedRecord;
  /** Lease id as etcd prints it; '0' for none. */
  readonly lease: string;
  readonly modRevision: string;
}

/** What a transaction's read branch found, in one revision. */
export interface KeysRead {
  readonly leader: StoredKey | null;
  readonly fence: StoredKey | null;
  readonly last: StoredKey | null;
  readonly relaxed: StoredKey | null;
}

/** What a successful write's branch read just before its puts (the durable keys). */
export interface MemoryRead {
  readonly last: StoredKey | null;
  readonly relaxed: StoredKey | null;
}

/** This node's write of the leader key: its encoded record, that record's epoch, its lease. */
export interface LeaderWrite {
  readonly value: Buffer;
  readonly epoch: number;
  readonly leaseId: string;
}

type Compare = NonNullable<ITxnRequest['compare']>[number];
type Ops = NonNullable<ITxnRequest['success']>;

const CLUSTER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Why `prefix`/`clusterName` cannot name keys, or null. */
export function keysProblem(prefix: string, clusterName: string): string | null {
  if (!prefix.startsWith('/')) return `etcd key prefix ${JSON.stringify(prefix)} does not start with "/"`;
  if (/\s/.test(prefix)) return `etcd key prefix ${JSON.stringify(prefix)} contains white space`;
  if (!CLUSTER_NAME.test(clusterName)) {
    return `cluster name ${JSON.stringify(clusterName)} is not letters, digits, ".", "_" or "-" starting with a letter or digit`;
  }
  return null;
}

/** The group's keys; call `keysProblem` first. */
export function leaderKeys(prefix: string, clusterName: string): LeaderKeys {
  const base = `${prefix.replace(/\/+$/, '')}/${clusterName}/leader`;
  return {
    leader: Buffer.from(base),
    fence: Buffer.from(`${base}-fence`),
    last: Buffer.from(`${base}-last`),
    relaxed: Buffer.from(`${base}-relaxed`),
  };
}

function absent(key: Buffer): Compare {
  return { key, target: 'Create', result: 'Equal', create_revision: 0 };
}

function unchanged(key: Buffer, modRevision: string): Compare {
  return { key, target: 'Mod', result: 'Equal', mod_revision: modRevision };
}

/** `key` is as read: absent when it was, else at the same mod revision. */
function asRead(key: Buffer, read: StoredKey | null): Compare {
  return read === null ? absent(key) : unchanged(key, read.modRevision);
}

function readAll(keys: LeaderKeys): Ops {
  return [keys.leader, keys.fence, keys.last, keys.relaxed].map((key) => ({ request_range: { key } }));
}

/** A write's success branch: the durable keys read first, then the leader key (and any `extra` put). */
function writeOps(keys: LeaderKeys, mine: LeaderWrite, extra: Ops = []): Ops {
  return [
    { request_range: { key: keys.last } },
    { request_range: { key: keys.relaxed } },
    { request_put: { key: keys.leader, value: mine.value, lease: mine.leaseId } },
    ...extra,
  ];
}

/** Leader and fence absent → put mine; else read all four. */
export function createTxn(keys: LeaderKeys, mine: LeaderWrite): ITxnRequest {
  return { compare: [absent(keys.leader), absent(keys.fence)], success: writeOps(keys, mine), failure: readAll(keys) };
}

/** Leader unchanged since `modRevision` (and so still bound to my lease) → put mine; else read all four. */
export function raiseTxn(keys: LeaderKeys, modRevision: string, mine: LeaderWrite): ITxnRequest {
  return { compare: [unchanged(keys.leader, modRevision)], success: writeOps(keys, mine), failure: readAll(keys) };
}

/**
 * Takeover: leader unchanged since read and no fence → put mine, and (unless the caller
 * revokes the previous lease itself) the previous record as the fence on the previous lease.
 */
export function replaceTxn(keys: LeaderKeys, seen: StoredKey, mine: LeaderWrite, withFence: boolean): ITxnRequest {
  // etcd checks the leases of the branch it takes only: the compare holding means the key,
  // and so its lease, still exist, so the fence's put cannot fail on the previous lease.
  const fence: Ops = withFence && seen.lease !== '0' ? [{ request_put: { key: keys.fence, value: seen.value, lease: seen.lease } }] : [];
  return {
    compare: [unchanged(keys.leader, seen.modRevision), absent(keys.fence)],
    success: writeOps(keys, mine, fence),
    failure: readAll(keys),
  };
}

/** The leader key holds exactly `mine.value` bound to `mine.leaseId`. */
function mineNow(keys: LeaderKeys, mine: LeaderWrite): Compare[] {
  return [
    { key: keys.leader, target: 'Value', result: 'Equal', value: mine.value },
    { key: keys.leader, target: 'Lease', result: 'Equal', lease: mine.leaseId },
  ];
}

/** The served record: the leader key is mine (`mineNow`) → put `served` in leader-last without a lease; else read all four. */
export function servedTxn(keys: LeaderKeys, mine: LeaderWrite, served: Buffer): ITxnRequest {
  return { compare: mineNow(keys, mine), success: [{ request_put: { key: keys.last, value: served } }], failure: readAll(keys) };
}

/** Reads all four keys in one revision. */
export function readTxn(keys: LeaderKeys): ITxnRequest {
  return { compare: [], success: readAll(keys) };
}

/**
 * The relaxed mark: the leader key holds exactly `mine.value` bound to `mine.leaseId`, and
 * the mark is as read (`relaxed`, absent when null) → put `mine.value` there without a
 * lease; else read all four.
 */
export function markTxn(keys: LeaderKeys, mine: LeaderWrite, relaxed: StoredKey | null): ITxnRequest {
  return {
    compare: [...mineNow(keys, mine), asRead(keys.relaxed, relaxed)],
    success: [{ request_put: { key: keys.relaxed, value: mine.value } }],
    failure: readAll(keys),
  };
}

/**
 * The mark is exactly `value` (or, given a mark as read, still at its mod revision) →
 * delete it; else read all four. A compare on the value of an absent key never holds.
 */
export function clearTxn(keys: LeaderKeys, expected: { readonly value: Buffer } | { readonly read: StoredKey }): ITxnRequest {
  const compare: Compare = 'value' in expected
    ? { key: keys.relaxed, target: 'Value', result: 'Equal', value: expected.value }
    : unchanged(keys.relaxed, expected.read.modRevision);
  return { compare: [compare], success: [{ request_delete_range: { key: keys.relaxed } }], failure: readAll(keys) };
}

function stored(kv: IKeyValue | undefined): StoredKey | null {
  if (kv === undefined) return null;
  return { value: kv.value, record: parseLeaderRecord(kv.value), lease: String(kv.lease), modRevision: String(kv.mod_revision) };
}

function ranged(response: ITxnResponse, index: number): StoredKey | null {
  return stored(response.responses[index]?.response_range?.kvs[0]);
}

/** The four reads of a failed (or read-only) transaction. */
export function keysRead(response: ITxnResponse): KeysRead {
  return { leader: ranged(response, 0), fence: ranged(response, 1), last: ranged(response, 2), relaxed: ranged(response, 3) };
}

/** The durable keys as a successful create, raise or replace read them, before its puts. */
export function memoryRead(response: ITxnResponse): MemoryRead {
  return { last: ranged(response, 0), relaxed: ranged(response, 1) };
}
