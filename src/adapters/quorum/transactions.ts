/**
 * The leader key's names and the etcd transactions that write it. Pure: requests in,
 * responses read; `etcd-quorum.ts` sends them.
 *
 * Two keys per group:
 *   <prefix>/<cluster>/leader        the holder's record, bound to the holder's lease
 *   <prefix>/<cluster>/leader-fence  after a takeover: the previous holder's record, bound
 *                                    to the previous holder's lease
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
 */
import type { IKeyValue, ITxnRequest, ITxnResponse } from 'etcd3';
import { parseLeaderRecord, type ParsedRecord } from './record.js';

/** Names of a group's keys. */
export interface LeaderKeys {
  readonly leader: Buffer;
  readonly fence: Buffer;
}

/** A key as read: its parsed value, lease and revision. */
export interface StoredKey {
  readonly value: Buffer;
  readonly record: ParsedRecord;
  /** Lease id as etcd prints it; '0' for none. */
  readonly lease: string;
  readonly modRevision: string;
}

/** What a transaction's read branch found. */
export interface KeysRead {
  readonly leader: StoredKey | null;
  readonly fence: StoredKey | null;
}

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
  return { leader: Buffer.from(base), fence: Buffer.from(`${base}-fence`) };
}

function absent(key: Buffer): NonNullable<ITxnRequest['compare']>[number] {
  return { key, target: 'Create', result: 'Equal', create_revision: 0 };
}

function unchanged(key: Buffer, modRevision: string): NonNullable<ITxnRequest['compare']>[number] {
  return { key, target: 'Mod', result: 'Equal', mod_revision: modRevision };
}

function readBoth(keys: LeaderKeys): NonNullable<ITxnRequest['failure']> {
  return [{ request_range: { key: keys.leader } }, { request_range: { key: keys.fence } }];
}

/** Leader and fence absent → put mine; else read both. */
export function createTxn(keys: LeaderKeys, value: Buffer, leaseId: string): ITxnRequest {
  return {
    compare: [absent(keys.leader), absent(keys.fence)],
    success: [{ request_put: { key: keys.leader, value, lease: leaseId } }],
    failure: readBoth(keys),
  };
}

/** Leader unchanged since `modRevision` (and so still bound to my lease) → put mine; else read both. */
export function raiseTxn(keys: LeaderKeys, modRevision: string, value: Buffer, leaseId: string): ITxnRequest {
  return {
    compare: [unchanged(keys.leader, modRevision)],
    success: [{ request_put: { key: keys.leader, value, lease: leaseId } }],
    failure: readBoth(keys),
  };
}

/**
 * Takeover: leader unchanged since read and no fence → put mine, and (unless the caller
 * revokes the previous lease itself) the previous record as the fence on the previous lease.
 */
export function replaceTxn(keys: LeaderKeys, seen: StoredKey, value: Buffer, leaseId: string, withFence: boolean): ITxnRequest {
  const success: NonNullable<ITxnRequest['success']> = [{ request_put: { key: keys.leader, value, lease: leaseId } }];
  // etcd checks the leases of the branch it takes only: the compare holding means the key,
  // and so its lease, still exist, so the fence's put cannot fail on the previous lease.
  if (withFence && seen.lease !== '0') success.push({ request_put: { key: keys.fence, value: seen.value, lease: seen.lease } });
  return {
    compare: [unchanged(keys.leader, seen.modRevision), absent(keys.fence)],
    success,
    failure: readBoth(keys),
  };
}

/** Reads both keys in one revision. */
export function readTxn(keys: LeaderKeys): ITxnRequest {
  return { compare: [], success: readBoth(keys) };
}

function stored(kv: IKeyValue | undefined): StoredKey | null {
  if (kv === undefined) return null;
  return { value: kv.value, record: parseLeaderRecord(kv.value), lease: String(kv.lease), modRevision: String(kv.mod_revision) };
}

/** The two reads of a failed (or read-only) transaction. */
export function keysRead(response: ITxnResponse): KeysRead {
  return {
    leader: stored(response.responses[0]?.response_range?.kvs[0]),
    fence: stored(response.responses[1]?.response_range?.kvs[0]),
  };
}
