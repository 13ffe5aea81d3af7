/**
 * The quorum on etcd (issue 11): a group's leader key bound to this node's lease, taken
 * and kept with compare-and-swap transactions (`transactions.ts`), the lease kept alive
 * with this node's own deadline (`lease-keeper.ts`). Not used by the daemon yet: the
 * runtime will drive it through the `Quorum` interface (`types.ts`).
 *
 *   acquire(epoch)       absent → mine; mine → kept (epoch raised); else → the holder
 *   takeover(exp, epoch) only if the stored epoch is `exp`; the previous holder's lease
 *                        is then waited out (or revoked by a caller that proved it fenced)
 *   holder()             one linearizable read
 *   release()            revokes the lease: the key goes at once
 *
 * After each acknowledged keepalive a holder re-reads its key, so a takeover is noticed
 * within a renew interval (`lost`, `key-taken`), and then revokes its lease so the new
 * holder's wait ends at once. Safety does not depend on that read: the fence does.
 *
 * Every call has a deadline; every failure comes back as an outcome, never a throw
 * (only bad options, an epoch that is not a non-negative safe integer and a
 * non-increasing takeover epoch throw `QuorumError`: caller bugs).
 */
import type { Etcd3, ITxnRequest, ITxnResponse } from 'etcd3';
import { createEtcdClient } from './client.js';
import { callFailure, QuorumError } from './errors.js';
import { LeaseKeeper } from './lease-keeper.js';
import { describeRecord, encodeLeaderRecord, epochProblem, nodeNameProblem, type LeaderRecord } from './record.js';
import {
  createTxn,
  keysProblem,
  keysRead,
  leaderKeys,
  raiseTxn,
  readTxn,
  replaceTxn,
  type KeysRead,
  type LeaderKeys,
  type StoredKey,
} from './transactions.js';
import type { EtcdQuorumOptions, HolderOutcome, LostReason, MarkOutcome, Quorum, QuorumEvent, QuorumOutcome } from './types.js';

/** Default deadline of a unary etcd call. */
export const DEFAULT_CALL_TIMEOUT_MS = 1_000;

interface Held {
  readonly record: LeaderRecord;
  readonly leaseId: string;
}

type TxnResult = { ok: true; response: ITxnResponse } | { ok: false; outcome: QuorumOutcome };

/** The etcd-backed `Quorum`. Create with `EtcdQuorum.open()`. */
export class EtcdQuorum implements Quorum {
  private readonly keeper: LeaseKeeper;
  private readonly listeners = new Set<(event: QuorumEvent) => void>();
  private held: Held | null = null;
  private confirming = false;
  private closed = false;

  private constructor(
    private readonly client: Etcd3,
    private readonly keys: LeaderKeys,
    private readonly nodeName: string,
    private readonly callTimeoutMs: number,
    private readonly now: () => number,
    options: EtcdQuorumOptions,
  ) {
    this.keeper = new LeaseKeeper(client, {
      requestedTtlS: options.leaseTtlS,
      ...(options.renewIntervalMs !== undefined ? { renewIntervalMs: options.renewIntervalMs } : {}),
      callTimeoutMs,
      now,
      onRenewed: (validUntilMs) => this.renewed(validUntilMs),
      onLost: (reason, detail) => this.lost(reason, detail),
    });
  }

  /** Checks the options, reads the TLS files and builds the client (it connects on first use). */
  static async open(options: EtcdQuorumOptions): Promise<EtcdQuorum> {
    const problem =
      keysProblem(options.keyPrefix, options.clusterName) ??
      nodeNameProblem(options.nodeName) ??
      (Number.isInteger(options.leaseTtlS) && options.leaseTtlS >= 1 ? null : `lease TTL ${options.leaseTtlS} s is not a whole number >= 1`);
    if (problem !== null) throw new QuorumError('QUORUM_OPTIONS_INVALID', problem);
    const callTimeoutMs = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    const now = options.now ?? (() => performance.now());
    const client = await createEtcdClient(options, callTimeoutMs, now);
    return new EtcdQuorum(client, leaderKeys(options.keyPrefix, options.clusterName), options.nodeName, callTimeoutMs, now, options);
  }

  async acquire(epoch: number): Promise<QuorumOutcome> {
    this.checkEpoch(epoch);
    const lease = await this.keeper.ensure();
    if (!('ok' in lease)) return lease;
    const sent = await this.txn('acquire', createTxn(this.keys, this.value(epoch), lease.id));
    if (!sent.ok) return sent.outcome;
    if (sent.response.succeeded) return this.heldNow({ node: this.nodeName, epoch }, lease.id, 'key was free: taken');
    return this.settle(keysRead(sent.response), epoch, lease.id, true);
  }

  async takeover(expectedEpoch: number, epoch: number, options: { readonly revokePrevious?: boolean } = {}): Promise<QuorumOutcome> {
    this.checkEpoch(expectedEpoch);
    this.checkEpoch(epoch);
    if (epoch <= expectedEpoch) {
      throw new QuorumError('QUORUM_EPOCH_NOT_NEWER', `takeover epoch ${epoch} is not above the expected holder's epoch ${expectedEpoch}`);
    }
    const lease = await this.keeper.ensure();
    if (!('ok' in lease)) return lease;
    const read = await this.txn('takeover read', readTxn(this.keys));
    if (!read.ok) return read.outcome;
    const found = keysRead(read.response);
    const leader = found.leader;
    if (leader === null || leader.lease === lease.id) return this.acquire(epoch);
    if (found.fence !== null) return this.otherHolds(found, 'a previous takeover is still waiting for its holder\'s lease to end');
    if (!leader.record.ok) return this.otherHolds(found, `stored value is unreadable (${leader.record.reason}); cannot compare its epoch`);
    if (leader.record.record.epoch !== expectedEpoch) {
      return this.otherHolds(found, `stored epoch ${leader.record.record.epoch} is not the expected ${expectedEpoch}`);
    }
    const revoke = options.revokePrevious === true;
    const sent = await this.txn('takeover', replaceTxn(this.keys, leader, this.value(epoch), lease.id, !revoke));
    if (!sent.ok) return sent.outcome;
    if (!sent.response.succeeded) return this.settle(keysRead(sent.response), epoch, lease.id, false);
    const previous = describeRecord(leader.record.record);
    if (revoke) {
      const revoked = await this.revokeOther(leader);
      return this.heldNow({ node: this.nodeName, epoch }, lease.id, `taken over from ${previous}; its lease ${revoked}`);
    }
    return {
      type: 'held-by-other',
      holder: leader.record.record,
      waiting: true,
      reason: `taken over from ${previous}; holding once its lease has ended`,
    };
  }

  async holder(): Promise<HolderOutcome> {
    const read = await this.txn('holder read', readTxn(this.keys));
    if (!read.ok) return { type: 'unreachable', reason: read.outcome.reason };
    const found = keysRead(read.response);
    const previous = found.fence !== null && found.fence.record.ok ? found.fence.record.record : null;
    if (found.leader === null) {
      return { type: 'absent', previous, reason: previous === null ? 'no holder' : `no holder; ${describeRecord(previous)}'s lease has not ended` };
    }
    const record = found.leader.record.ok ? found.leader.record.record : null;
    const mine = found.leader.lease === this.keeper.id();
    return {
      type: 'present',
      record,
      mine,
      previous,
      reason: `${record === null ? 'unreadable value' : describeRecord(record)}${mine ? ' (this node)' : ''}`,
    };
  }

  async release(): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }> {
    this.held = null;
    const revoked = await this.keeper.revoke();
    return 'ok' in revoked ? { ok: true } : { ok: false, reason: revoked.reason };
  }

  // PLACEHOLDER (interface commit): the helper implements both.
  markRelaxed(_epoch: number): Promise<MarkOutcome> {
    return Promise.resolve({ ok: false, reason: 'not implemented yet' });
  }

  clearRelaxed(_record: LeaderRecord): Promise<MarkOutcome> {
    return Promise.resolve({ ok: false, reason: 'not implemented yet' });
  }

  holding(): boolean {
    const validUntil = this.keeper.validUntil();
    return this.held !== null && this.held.leaseId === this.keeper.id() && validUntil !== null && this.now() < validUntil;
  }

  validUntil(): number | null {
    return this.keeper.validUntil();
  }

  onEvent(listener: (event: QuorumEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.held = null;
    this.keeper.close();
    this.client.close();
  }

  /** Decides from what a failed write's read branch found; `mayRaise` allows one epoch-raising write. */
  private async settle(found: KeysRead, epoch: number, leaseId: string, mayRaise: boolean): Promise<QuorumOutcome> {
    const leader = found.leader;
    // Only after a takeover's compare failed: the key expired between the read and the write.
    if (leader === null && found.fence === null && !mayRaise) return this.acquire(epoch);
    if (leader === null) {
      return this.otherHolds(found, 'key is free but the previous holder\'s lease has not ended (takeover fence)');
    }
    if (leader.lease !== leaseId) {
      // This node's own earlier lease (abandoned after its deadline passed, or left by a
      // previous run): it is ours to end. etcd extends leases across its restarts, so
      // without this a master that lost etcd for a while would wait out its own old lease.
      const own = leader.record.ok && leader.record.record.node === this.nodeName && found.fence === null;
      if (own && mayRaise) {
        const revoked = await this.revokeOther(leader);
        const again = await this.txn('acquire after own lease', createTxn(this.keys, this.value(epoch), leaseId));
        if (!again.ok) return again.outcome;
        if (again.response.succeeded) return this.heldNow({ node: this.nodeName, epoch }, leaseId, `key was bound to this node's earlier lease, which ${revoked}: taken`);
        return this.settle(keysRead(again.response), epoch, leaseId, false);
      }
      return this.otherHolds(found, 'key is bound to another lease');
    }
    if (found.fence !== null) return this.otherHolds(found, 'taken over; holding once the previous holder\'s lease has ended', true);
    const stored = leader.record.ok ? leader.record.record : null;
    if (stored !== null && stored.node === this.nodeName && stored.epoch >= epoch) {
      return this.heldNow(stored, leaseId, stored.epoch === epoch ? 'key is mine' : `key is mine at the newer epoch ${stored.epoch}; not lowered`);
    }
    if (!mayRaise) return this.otherHolds(found, 'key changed meanwhile');
    const sent = await this.txn('epoch raise', raiseTxn(this.keys, leader.modRevision, this.value(epoch), leaseId));
    if (!sent.ok) return sent.outcome;
    if (sent.response.succeeded) return this.heldNow({ node: this.nodeName, epoch }, leaseId, `key is mine; epoch raised to ${epoch}`);
    return this.settle(keysRead(sent.response), epoch, leaseId, false);
  }

  private otherHolds(found: KeysRead, why: string, waiting = false): QuorumOutcome {
    const shown = (key: StoredKey | null): LeaderRecord | null => (key !== null && key.record.ok ? key.record.record : null);
    // While a fence is pending, the node that may still believe it holds is the fence's.
    const holder = found.fence !== null ? shown(found.fence) : shown(found.leader);
    const name = holder === null ? 'an unreadable holder' : describeRecord(holder);
    return { type: 'held-by-other', holder, waiting, reason: `held by ${name}: ${why}` };
  }

  private heldNow(record: LeaderRecord, leaseId: string, reason: string): QuorumOutcome {
    const validUntilMs = this.keeper.validUntil();
    if (this.keeper.id() !== leaseId || validUntilMs === null || this.now() >= validUntilMs) {
      this.held = null;
      return { type: 'lease-lost', reason: `${reason}, but the lease ended meanwhile` };
    }
    this.held = { record, leaseId };
    return { type: 'held', record, validUntilMs, memory: { last: null, relaxed: null }, reason }; // PLACEHOLDER: helper fills in
  }

  private async txn(what: string, request: ITxnRequest): Promise<TxnResult> {
    try {
      return { ok: true, response: await this.client.kv.txn(request, { deadline: Date.now() + this.callTimeoutMs }) };
    } catch (error) {
      const failure = callFailure(what, error);
      if (failure.type === 'lease-lost') this.keeper.abandon('lease-expired', failure.reason);
      return { ok: false, outcome: failure };
    }
  }

  private async revokeOther(previous: StoredKey): Promise<string> {
    if (previous.lease === '0') return 'was none';
    try {
      await this.client.leaseClient.leaseRevoke({ ID: previous.lease }, { deadline: Date.now() + this.callTimeoutMs });
      return 'was revoked';
    } catch (error) {
      const failure = callFailure('previous lease revoke', error);
      return failure.type === 'lease-lost' ? 'had already ended' : `could not be revoked (${failure.reason})`;
    }
  }

  private value(epoch: number): Buffer {
    return encodeLeaderRecord({ node: this.nodeName, epoch });
  }

  private checkEpoch(epoch: number): void {
    const problem = epochProblem(epoch);
    if (problem !== null) throw new QuorumError('QUORUM_EPOCH_INVALID', problem);
  }

  private renewed(validUntilMs: number): void {
    this.emit({ type: 'renewed', validUntilMs });
    if (this.held !== null) void this.confirm(this.held);
  }

  /** Re-reads the key after a renewal; a holder whose key is gone or taken gives up its lease. */
  private async confirm(held: Held): Promise<void> {
    if (this.confirming) return;
    this.confirming = true;
    try {
      const read = await this.txn('holder check', readTxn(this.keys));
      if (!read.ok || this.held !== held) return;
      const leader = keysRead(read.response).leader;
      if (leader === null || leader.lease !== held.leaseId) {
        const by = leader === null ? 'deleted' : `bound to another lease (${leader.record.ok ? describeRecord(leader.record.record) : 'unreadable'})`;
        this.keeper.abandon('key-taken', `leader key ${by}`);
      }
    } finally {
      this.confirming = false;
    }
  }

  private lost(reason: LostReason, detail: string): void {
    this.held = null;
    this.emit({ type: 'lost', reason, detail });
  }

  private emit(event: QuorumEvent): void {
    for (const listener of this.listeners) listener(event);
  }
}
