/**
 * The quorum adapter's narrow interface: what the runtime will drive (issue 11) and the
 * small set of outcomes the core can reason about. Nothing here talks to etcd; the etcd
 * implementation is `EtcdQuorum` (`etcd-quorum.ts`).
 *
 * Belief, not just the key: a node *holds* the leadership only while `holding()` is true,
 * that is while its last acquire succeeded, no takeover fence is pending, and its own
 * lease deadline (`validUntil()`, send time of the last acknowledged keepalive + granted
 * TTL, on the monotonic clock) has not passed. The deadline is never later than the
 * moment etcd could delete the key, so two nodes never hold at the same instant as long
 * as clocks run at about the same rate (the bound is the core's, `src/core/timing.ts`).
 */
import type { LeaderRecord } from './record.js';
import type { ServedRecord } from './served-record.js';

/** TLS material for the etcd endpoints (PEM file paths). */
export interface QuorumTls {
  /** CA bundle that signed the etcd servers' certificates. */
  readonly caFile: string;
  /** Client certificate, for etcd's `--client-cert-auth`; with `keyFile`. */
  readonly certFile?: string;
  /** Client key; with `certFile`. */
  readonly keyFile?: string;
}

/** What `EtcdQuorum.open()` needs. */
export interface EtcdQuorumOptions {
  /** Client URLs, `http://host:port` or `https://host:port` (all the same scheme). */
  readonly endpoints: readonly string[];
  readonly tls?: QuorumTls | null;
  /** etcd user and password (etcd's own auth; a token is fetched per connection). */
  readonly auth?: { readonly username: string; readonly password: string } | null;
  /** Key prefix, e.g. `/redis-ha`; keys are `<prefix>/<clusterName>/leader`. */
  readonly keyPrefix: string;
  /** The group's name: one leader key per group. */
  readonly clusterName: string;
  /** This node's name, written into the leader record. */
  readonly nodeName: string;
  /** Requested lease TTL in whole seconds (etcd may grant more; the granted TTL is used). */
  readonly leaseTtlS: number;
  /** Keepalive interval; default a quarter of the granted TTL. */
  readonly renewIntervalMs?: number;
  /** Deadline of every unary etcd call (acquire, read, revoke); default 1000 ms. */
  readonly callTimeoutMs?: number;
  /** Monotonic milliseconds; default `performance.now()`. */
  readonly now?: () => number;
}

/**
 * What etcd remembers of a group beyond any lease (two keys without a lease, see
 * `transactions.ts`), as read by the write that took or kept the key, in its revision.
 * A value nobody can read is not a record: leader-last is then null (and overwritten by
 * the write), and an unreadable leader-relaxed makes the acquire answer `held-by-other`
 * instead of `held` (see `EtcdQuorum`): no one serves until an operator deletes it.
 */
export interface QuorumMemory {
  /**
   * `<prefix>/<cluster>/leader-last`: the last master whose Redis served, with that
   * Redis's replication id (`recordServed`). A Redis whose history does not contain that
   * id never followed that master: its data may be older (finding Q9).
   */
  readonly last: ServedRecord | null;
  /**
   * `<prefix>/<cluster>/leader-relaxed`: a master that relaxed its Redis's fence to
   * `accepted` (its replica gone) and has not cleared the mark: its Redis may take writes
   * without any daemon, so a new master must fence it through Redis first (finding Q12).
   */
  readonly relaxed: LeaderRecord | null;
}

/** The result of `markRelaxed()` and `clearRelaxed()`. */
export type MarkOutcome = { readonly ok: true; readonly reason: string } | { readonly ok: false; readonly reason: string };

/** The result of `acquire()` and `takeover()`: the core's view of the leader key. */
export type QuorumOutcome =
  /** This node holds the key (bound to its live lease) in `record.epoch`, until `validUntilMs` unless renewed. */
  | { readonly type: 'held'; readonly record: LeaderRecord; readonly validUntilMs: number; readonly memory: QuorumMemory; readonly reason: string }
  /**
   * Another node holds the key, or this node took it over and waits for the previous
   * holder's lease to end (`waiting`). `holder` is null when the stored value is unreadable.
   */
  | { readonly type: 'held-by-other'; readonly holder: LeaderRecord | null; readonly waiting: boolean; readonly reason: string }
  /** etcd did not answer within the call deadline, or refused the call (auth, permissions). */
  | { readonly type: 'unreachable'; readonly reason: string }
  /** This node's lease ended (expired, revoked, or its deadline passed unrenewed); a new one is granted on the next acquire. */
  | { readonly type: 'lease-lost'; readonly reason: string };

/** The result of `holder()`: who holds the key, read once (linearizable). */
export type HolderOutcome =
  | {
      readonly type: 'absent';
      readonly previous: LeaderRecord | null;
      /** The durable keys, read in the same revision (`EtcdQuorum` always reports them). */
      readonly memory?: QuorumMemory;
      readonly reason: string;
    }
  | {
      readonly type: 'present';
      /** Null when the stored value is unreadable. */
      readonly record: LeaderRecord | null;
      /** Whether the key is bound to this node's current lease. */
      readonly mine: boolean;
      /** The holder before a takeover whose lease has not ended yet, if any. */
      readonly previous: LeaderRecord | null;
      /** The durable keys, read in the same revision (`EtcdQuorum` always reports them). */
      readonly memory?: QuorumMemory;
      readonly reason: string;
    }
  | { readonly type: 'unreachable'; readonly reason: string };

/** Why this node stopped holding (or its lease ended). */
export type LostReason =
  /** `validUntil()` passed without an acknowledged keepalive. */
  | 'deadline-passed'
  /** etcd answered that the lease no longer exists. */
  | 'lease-expired'
  /** The key is bound to another lease (a takeover) or was deleted. */
  | 'key-taken';

/** Events for the runtime; `lost` fires at most once per lease. */
export type QuorumEvent =
  | { readonly type: 'renewed'; readonly validUntilMs: number }
  | { readonly type: 'lost'; readonly reason: LostReason; readonly detail: string };

/** The quorum as the runtime drives it. */
export interface Quorum {
  /** Takes the key if absent, keeps it if mine (raising the stored epoch to `epoch`), else names the holder. */
  acquire(epoch: number): Promise<QuorumOutcome>;
  /**
   * Replaces the holder only if the stored epoch is `expectedEpoch` (or the key is absent),
   * never blindly. The new holder then waits (`held-by-other`, `waiting`) until the previous
   * holder's lease has ended, unless `revokePrevious` (the caller proved it fenced) ends it at once.
   */
  takeover(expectedEpoch: number, epoch: number, options?: { readonly revokePrevious?: boolean }): Promise<QuorumOutcome>;
  /** Reads who holds the key. */
  holder(): Promise<HolderOutcome>;
  /** Revokes this node's lease: the key (if mine) is gone at once. Idempotent. */
  release(): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }>;
  /**
   * Writes the relaxed mark `{node: this node, epoch}` only while the leader key is this
   * node's (compare on the key's value and lease); a master relaxes its fence only once
   * this is confirmed. Never over another node's mark (or one nobody can read): that
   * node's Redis may still take writes without a replica, so it must be cleared first.
   */
  markRelaxed(epoch: number): Promise<MarkOutcome>;
  /**
   * Deletes the relaxed mark only if it is exactly `record` (compare on the value): this
   * node's own once its Redis writes only with a replica again, or another node's whose
   * Redis this node fenced through Redis. An absent mark is `ok`.
   */
  clearRelaxed(record: LeaderRecord): Promise<MarkOutcome>;
  /**
   * Writes `leader-last = {node: this node, epoch, replId}` only while the leader key is
   * this node's (as `markRelaxed`): the master records its Redis once it serves.
   */
  recordServed(epoch: number, replId: string): Promise<MarkOutcome>;
  /** Whether this node holds the key right now (see the file header). */
  holding(): boolean;
  /** This node's own lease deadline (monotonic ms), or null without a live lease. */
  validUntil(): number | null;
  /** Subscribes to events; returns the unsubscribe function. */
  onEvent(listener: (event: QuorumEvent) => void): () => void;
  /** Stops renewing and closes the connections (does not revoke: call `release()` first). Idempotent. */
  close(): void;
}
