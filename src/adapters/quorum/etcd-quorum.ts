/**
 * The quorum on etcd (issue 11): a group's leader key bound to this node's lease, taken
 * and kept with compare-and-swap transactions (`transactions.ts`), the lease kept alive
 * with this node's own deadline (`lease-keeper.ts`). The runtime drives it through the
 * `Quorum` interface (`types.ts`) and `QuorumBridge` (src/daemon/quorum-bridge.ts).
 *
 *   acquire(epoch)       absent → mine; mine → kept (epoch raised); else → the holder
 *   takeover(exp, epoch) only if the stored epoch is `exp`; the previous holder's lease
 *                        is then waited out (or revoked by a caller that proved it fenced)
 *   holder()             one linearizable read
 *   release()            revokes the lease: the key goes at once
 *   markRelaxed(epoch)   the relaxed mark {me, epoch}, only while the key is mine and
 *                        no other node's mark is there
 *   clearRelaxed(record) deletes the mark only if it is exactly `record` (another mark is
 *                        left, and answers that `record` is gone)
 *   recordServed(e, id)  leader-last = {me, e, id}, only while the key is mine
 *
 * A `held` outcome carries both durable keys as they were in the revision of the write
 * (or read) that decided it (`memory`): the last master whose Redis served, and a master
 * whose fence may be relaxed.
 *
 * After each acknowledged keepalive a holder re-reads its key, so a takeover is noticed
 * within a renew interval (`lost`, `key-taken`), and then revokes its lease so the new
 * holder's wait ends at once. Safety does not depend on that read: the fence does.
 *
 * Every call has a deadline; every failure comes back as an outcome, never a throw
 * (only bad options, an epoch that is not a non-negative safe integer, a non-increasing
 * takeover epoch and a mark to clear that is not a storable record throw `QuorumError`:
 * caller bugs).
 */
import type { Etcd3, ITxnRequest, ITxnResponse } from 'etcd3';
import { createEtcdClient } from './client.js';
import { callFailure, QuorumError } from './errors.js';
import { LeaseKeeper } from './lease-keeper.js';
import { describeRecord, encodeLeaderRecord, epochProblem, nodeNameProblem, type LeaderRecord } from './record.js';
import { encodeServedRecord, parseServedRecord, replIdProblem } from './served-record.js';
import {
  clearTxn,
  createTxn,
  keysProblem,
  keysRead,
  leaderKeys,
  markTxn,
  memoryRead,
  raiseTxn,
  readTxn,
  replaceTxn,
  servedTxn,
  type KeysRead,
  type LeaderKeys,
  type LeaderWrite,
  type MemoryRead,
  type StoredKey,
} from './transactions.js';
import type { EtcdQuorumOptions, HolderOutcome, LostReason, MarkOutcome, Quorum, QuorumEvent, QuorumMemory, QuorumOutcome } from './types.js';

/** Default deadline of a unary etcd call. */
export const DEFAULT_CALL_TIMEOUT_MS = 1_000;
/** Sends of a relaxed-mark write when only the mark moved meanwhile (my own older mark replaced). */
const MARK_SENDS = 3;

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
    return this.create('acquire', epoch, lease.id, 'key was free: taken', true);
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
    const found = this.read(read.response);
    const leader = found.leader;
    if (leader === null || leader.lease === lease.id) return this.acquire(epoch);
    if (found.fence !== null) return this.otherHolds(found, 'a previous takeover is still waiting for its holder\'s lease to end');
    if (!leader.record.ok) return this.otherHolds(found, `stored value is unreadable (${leader.record.reason}); cannot compare its epoch`);
    if (leader.record.record.epoch !== expectedEpoch) {
      return this.otherHolds(found, `stored epoch ${leader.record.record.epoch} is not the expected ${expectedEpoch}`);
    }
    const revoke = options.revokePrevious === true;
    const mine = this.mine(epoch, lease.id);
    const sent = await this.txn('takeover', replaceTxn(this.keys, leader, mine, !revoke));
    if (!sent.ok) return sent.outcome;
    if (!sent.response.succeeded) return this.settle(keysRead(sent.response), epoch, lease.id, false);
    const previous = describeRecord(leader.record.record);
    if (revoke) {
      const revoked = await this.revokeOther(leader);
      return this.heldNow({ node: this.nodeName, epoch }, lease.id, `taken over from ${previous}; its lease ${revoked}`, memoryRead(sent.response));
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
    const found = this.read(read.response);
    const previous = found.fence !== null && found.fence.record.ok ? found.fence.record.record : null;
    const memory = memoryOf(found);
    const unreadable = this.unreadableNote(found);
    if (found.leader === null) {
      const reason = previous === null ? 'no holder' : `no holder; ${describeRecord(previous)}'s lease has not ended`;
      return { type: 'absent', previous, memory, reason: `${reason}${unreadable}` };
    }
    const record = found.leader.record.ok ? found.leader.record.record : null;
    const mine = found.leader.lease === this.keeper.id();
    return {
      type: 'present',
      record,
      mine,
      previous,
      memory,
      reason: `${record === null ? 'unreadable value' : describeRecord(record)}${mine ? ' (this node)' : ''}${unreadable}`,
    };
  }

  async release(): Promise<{ readonly ok: true } | { readonly ok: false; readonly reason: string }> {
    this.held = null;
    const revoked = await this.keeper.revoke();
    return 'ok' in revoked ? { ok: true } : { ok: false, reason: revoked.reason };
  }

  async markRelaxed(epoch: number): Promise<MarkOutcome> {
    this.checkEpoch(epoch);
    const held = this.held;
    if (held === null || !this.holding()) return { ok: false, reason: 'not holding the leader key' };
    const mine = this.mine(epoch, held.leaseId);
    const wanted = describeRecord({ node: this.nodeName, epoch });
    // Sent first against an absent mark (the usual case); else against the mark as read.
    let seen: StoredKey | null = null;
    for (let send = 1; send <= MARK_SENDS; send++) {
      const sent = await this.txn('relaxed mark', markTxn(this.keys, mine, seen));
      if (!sent.ok) return { ok: false, reason: sent.outcome.reason };
      if (sent.response.succeeded) return { ok: true, reason: `marked ${wanted} relaxed` };
      const found = this.read(sent.response);
      const leader = found.leader;
      if (leader === null || leader.lease !== held.leaseId || !leader.value.equals(mine.value)) {
        return { ok: false, reason: `${notMine(leader, wanted, held.leaseId)}: not marked` };
      }
      const relaxed = found.relaxed;
      if (relaxed !== null && relaxed.value.equals(mine.value)) return { ok: true, reason: `${wanted} was already marked relaxed` };
      // Another node's mark (or one nobody can read): that node's Redis may still take
      // writes without a replica. Overwriting would forget it; it is cleared only by
      // whoever fenced that Redis (`clearRelaxed`).
      if (relaxed !== null && !(relaxed.record.ok && relaxed.record.record.node === this.nodeName)) {
        return { ok: false, reason: `the relaxed mark is ${shownRecord(relaxed)}, not this node's: clear it first` };
      }
      seen = relaxed;
    }
    return { ok: false, reason: `the relaxed mark kept changing (${MARK_SENDS} tries): not marked` };
  }

  async clearRelaxed(record: LeaderRecord): Promise<MarkOutcome> {
    const problem = nodeNameProblem(record.node) ?? epochProblem(record.epoch);
    if (problem !== null) throw new QuorumError('QUORUM_RECORD_INVALID', `relaxed mark to clear: ${problem}`);
    const wanted = describeRecord(record);
    const sent = await this.txn('relaxed mark clear', clearTxn(this.keys, { value: encodeLeaderRecord(record) }));
    if (!sent.ok) return { ok: false, reason: sent.outcome.reason };
    if (sent.response.succeeded) return { ok: true, reason: `mark ${wanted} cleared` };
    const relaxed = this.read(sent.response).relaxed;
    if (relaxed === null) return { ok: true, reason: 'no mark' };
    const same = relaxed.record.ok && relaxed.record.record.node === record.node && relaxed.record.record.epoch === record.epoch;
    // Another mark (or one nobody can read) is not this one, which is gone: done; the other
    // stays for whoever it names.
    if (!same) return { ok: true, reason: `no mark ${wanted} (the mark is ${shownRecord(relaxed)})` };
    // The same record spelled otherwise (another writer's JSON): cleared by its revision.
    const again = await this.txn('relaxed mark clear', clearTxn(this.keys, { read: relaxed }));
    if (!again.ok) return { ok: false, reason: again.outcome.reason };
    if (again.response.succeeded) return { ok: true, reason: `mark ${wanted} cleared` };
    const now = this.read(again.response).relaxed;
    return now === null ? { ok: true, reason: 'no mark' } : { ok: false, reason: `mark is ${shownRecord(now)}, changed during the clear` };
  }

  async recordServed(epoch: number, replId: string): Promise<MarkOutcome> {
    this.checkEpoch(epoch);
    const problem = replIdProblem(replId);
    if (problem !== null) throw new QuorumError('QUORUM_RECORD_INVALID', `served record: ${problem}`);
    const held = this.held;
    if (held === null || !this.holding()) return { ok: false, reason: 'not holding the leader key' };
    const wanted = `${describeRecord({ node: this.nodeName, epoch })} (${replId.slice(0, 8)}…)`;
    const sent = await this.txn('served record', servedTxn(this.keys, this.mine(epoch, held.leaseId), encodeServedRecord({ node: this.nodeName, epoch, replId })));
    if (!sent.ok) return { ok: false, reason: sent.outcome.reason };
    if (sent.response.succeeded) return { ok: true, reason: `recorded ${wanted} as the last master to serve` };
    const leader = this.read(sent.response).leader;
    return { ok: false, reason: `${notMine(leader, describeRecord({ node: this.nodeName, epoch }), held.leaseId)}: not recorded` };
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

  /** Creates the key; a lost race is decided by `settle`. */
  private async create(what: string, epoch: number, leaseId: string, reason: string, mayRaise: boolean): Promise<QuorumOutcome> {
    const sent = await this.txn(what, createTxn(this.keys, this.mine(epoch, leaseId)));
    if (!sent.ok) return sent.outcome;
    if (sent.response.succeeded) return this.heldNow({ node: this.nodeName, epoch }, leaseId, reason, memoryRead(sent.response));
    return this.settle(keysRead(sent.response), epoch, leaseId, mayRaise);
  }

  /** Decides from what a failed write's read branch found; `mayRaise` allows one epoch-raising write. */
  private async settle(found: KeysRead, epoch: number, leaseId: string, mayRaise: boolean): Promise<QuorumOutcome> {
    const leader = found.leader;
    // Only after a takeover's or a raise's compare failed: the key expired between the read
    // and the write.
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
        return this.create('acquire after own lease', epoch, leaseId, `key was bound to this node's earlier lease, which ${revoked}: taken`, false);
      }
      return this.otherHolds(found, 'key is bound to another lease');
    }
    if (found.fence !== null) return this.otherHolds(found, 'taken over; holding once the previous holder\'s lease has ended', true);
    const stored = leader.record.ok ? leader.record.record : null;
    if (stored !== null && stored.node === this.nodeName && stored.epoch >= epoch) {
      const reason = stored.epoch === epoch ? 'key is mine' : `key is mine at the newer epoch ${stored.epoch}; not lowered`;
      return this.heldNow(stored, leaseId, reason, found);
    }
    if (!mayRaise) return this.otherHolds(found, 'key changed meanwhile');
    const sent = await this.txn('epoch raise', raiseTxn(this.keys, leader.modRevision, this.mine(epoch, leaseId)));
    if (!sent.ok) return sent.outcome;
    if (sent.response.succeeded) return this.heldNow({ node: this.nodeName, epoch }, leaseId, `key is mine; epoch raised to ${epoch}`, memoryRead(sent.response));
    return this.settle(keysRead(sent.response), epoch, leaseId, false);
  }

  private otherHolds(found: KeysRead, why: string, waiting = false): QuorumOutcome {
    const shown = (key: StoredKey | null): LeaderRecord | null => (key !== null && key.record.ok ? key.record.record : null);
    // While a fence is pending, the node that may still believe it holds is the fence's.
    const holder = found.fence !== null ? shown(found.fence) : shown(found.leader);
    const name = holder === null ? 'an unreadable holder' : describeRecord(holder);
    return { type: 'held-by-other', holder, waiting, reason: `held by ${name}: ${why}` };
  }

  /** `held`, with the durable keys as read in the same revision as the write (or the read) that decided it. */
  private heldNow(record: LeaderRecord, leaseId: string, reason: string, read: MemoryRead): QuorumOutcome {
    const validUntilMs = this.keeper.validUntil();
    if (this.keeper.id() !== leaseId || validUntilMs === null || this.now() >= validUntilMs) {
      this.held = null;
      return { type: 'lease-lost', reason: `${reason}, but the lease ended meanwhile` };
    }
    const relaxed = read.relaxed;
    if (relaxed !== null && !relaxed.record.ok) {
      // A relaxed mark nobody can read (another program's value, a damaged write) may stand
      // for any node's Redis taking writes without a replica, and `QuorumMemory` cannot name
      // "some node". Reporting no mark would let this node serve beside it; so the
      // conservative answer: not held, as for a leader value nobody can read. The key stays
      // bound to this lease, so no other node promotes either, until an operator who has
      // checked every Redis of the group deletes the mark.
      this.held = null;
      return {
        type: 'held-by-other',
        holder: null,
        waiting: false,
        reason: `${reason}, but ${this.keys.relaxed.toString()} is unreadable (${relaxed.record.reason}): a master may take writes ` +
          'without a replica; not serving until an operator deletes that key',
      };
    }
    this.held = { record, leaseId };
    return { type: 'held', record, validUntilMs, memory: memoryOf(read), reason: `${reason}${this.unreadableNote(read)}` };
  }

  /** Says which durable keys nobody can read (leader-last is overwritten by the next master's record; see `heldNow` for the mark). */
  private unreadableNote(read: MemoryRead): string {
    const last = read.last === null ? null : parseServedRecord(read.last.value);
    const lastNote = last !== null && !last.ok ? `; ${this.keys.last.toString()} is unreadable (${last.reason})` : '';
    const relaxedNote = read.relaxed !== null && !read.relaxed.record.ok ? `; ${this.keys.relaxed.toString()} is unreadable (${read.relaxed.record.reason})` : '';
    return `${lastNote}${relaxedNote}`;
  }

  private read(response: ITxnResponse): KeysRead {
    return keysRead(response);
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

  private mine(epoch: number, leaseId: string): LeaderWrite {
    return { value: this.value(epoch), epoch, leaseId };
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
      const leader = this.read(read.response).leader;
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

/** The durable keys for the core: a value nobody can read is reported as absent (see `heldNow` for the mark). */
function memoryOf(read: MemoryRead): QuorumMemory {
  const last = read.last === null ? null : parseServedRecord(read.last.value);
  const relaxed = read.relaxed !== null && read.relaxed.record.ok ? read.relaxed.record.record : null;
  return { last: last !== null && last.ok ? last.record : null, relaxed };
}

/** Why a write that needed the leader key to be `wanted` on `leaseId` found it otherwise. */
function notMine(leader: StoredKey | null, wanted: string, leaseId: string): string {
  const is = leader === null ? 'absent' : `${shownRecord(leader)}${leader.lease === leaseId ? '' : ' on another lease'}`;
  return `the leader key is not ${wanted} on this node's lease (it is ${is})`;
}

/** `node@epoch`, or why the value cannot be read. */
function shownRecord(key: StoredKey): string {
  return key.record.ok ? describeRecord(key.record.record) : `unreadable (${key.record.reason})`;
}
