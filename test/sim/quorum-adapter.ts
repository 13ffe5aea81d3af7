/**
 * One daemon's quorum (`RuntimeQuorum`) on the etcd model (`etcd-model.ts`): what
 * `EtcdQuorum` + `LeaseKeeper` (src/adapters/quorum/) and `QuorumBridge`
 * (src/daemon/quorum-bridge.ts) do, step for step, on the fake clock:
 *
 *  - a lease is granted on the first acquire and kept alive every `renewIntervalMs`, one
 *    keepalive in flight at a time; one unanswered for a whole interval has its stream
 *    reset (its late answer is ignored) and a new one goes out; a stream refused (etcd not
 *    running) is retried after 20 ms, doubling, up to the interval;
 *  - the node's own deadline is the send time of the last acknowledged keepalive (or of
 *    the grant) + the granted TTL; a timer at the deadline drops the lease (`lost`,
 *    `deadline-passed`), a keepalive answered with TTL 0 drops it (`lease-expired`), a
 *    put refused for an unknown lease too; `lost` fires at most once per lease, and a
 *    dropped lease is revoked in the background;
 *  - `quorum-renewed` on every acknowledged keepalive; while the key is held, each is
 *    followed by a read of the key: gone or bound to another lease → `lost`, `key-taken`;
 *  - acquire: the lease (granted if none), then create-if-absent; failing that, the key
 *    read back: mine at this epoch or newer → held; mine at an older one → raised with a
 *    compare on its revision; another lease's → held by other; a `lease-lost` outcome is
 *    asked once more at once (the bridge);
 *  - every write of the key compares leader-last as last read (a create: as any earlier
 *    call read it) and raises it, never lowers it (the model does); one that failed only
 *    because leader-last moved is sent again against the new value, three sends at most;
 *    `held` carries leader-last (before the write) and leader-relaxed, as the write or the
 *    read that decided it saw them;
 *  - markRelaxed: only while held, a compare on the key (my record, my lease) and on the
 *    mark (absent, or my own older one as read; never another node's); clearRelaxed: the
 *    mark only if it is exactly the record, an absent mark is done;
 *  - every call has a deadline (`callTimeoutMs`): no answer in time is `unreachable`;
 *  - release revokes the lease.
 *
 * Everything here runs in the daemon process: its timers and the answers it reads are
 * the daemon's (`World.io`), held while the daemon is stalled and gone when it dies. A
 * daemon waking from a stall runs its timers before it reads its sockets, so a deadline
 * that passed during the stall is declared before a late answer is read, as in Node.
 */
import type { LeaderRecord } from '../../src/adapters/quorum/record.js';
import type { LostReason } from '../../src/adapters/quorum/types.js';
import type { KeyHolder, QuorumAnswer, QuorumMark } from '../../src/core/types.js';
import { acquireAnswer, type AcquireOutcome } from '../../src/daemon/quorum-bridge.js';
import type { MarkAnswer, QuorumNotice, RuntimeQuorum } from '../../src/daemon/runtime.js';
import type { Scheduler } from '../../src/daemon/time.js';
import type { EtcdModel, EtcdReply, EtcdRequest, EtcdTiming, StoredDurable, StoredLeader, StoredMemory } from './etcd-model.js';
import type { Incarnation, NodeId, World } from './world.js';

/** `STREAM_RETRY_MS` of lease-keeper.ts. */
const STREAM_RETRY_MS = 20;
/** `MARK_SENDS` of etcd-quorum.ts. */
const MARK_SENDS = 3;

type Failure = { readonly type: 'unreachable' | 'lease-lost'; readonly reason: string };
type TxnAnswer = { ok: true; succeeded: boolean; key: StoredLeader | null; memory: StoredMemory; revision: number } | { ok: false; outcome: Failure };
/** An acquire's outcome, as `EtcdQuorum` gives it (what `acquireAnswer` reads). */
type Outcome = AcquireOutcome;

interface LiveLease {
  readonly id: number;
  ttlMs: number;
  validUntilMs: number;
  /** Send time of the keepalive in flight, or null. */
  inFlightSince: number | null;
  /** The keepalive stream; a reset starts a new one, whose answers alone count. */
  stream: number;
  streamFailures: number;
}

/** The daemon's side of one etcd call: the answer, or a failure once the deadline passed. */
class EtcdCalls {
  private readonly scheduler: Scheduler;

  constructor(
    readonly node: NodeId,
    private readonly owner: Incarnation,
    private readonly world: World,
    private readonly etcd: EtcdModel,
    private readonly timing: EtcdTiming,
  ) {
    this.scheduler = world.scheduler(owner);
  }

  now(): number {
    return this.world.now;
  }

  /** A unary call with its deadline; never rejects. */
  unary(what: string, request: EtcdRequest): Promise<EtcdReply | Failure> {
    return new Promise((resolve) => {
      let settled = false;
      const settle = (r: EtcdReply | Failure): void => {
        if (settled) return;
        settled = true;
        resolve(r);
      };
      this.after(this.timing.callTimeoutMs, () =>
        settle({ type: 'unreachable', reason: `${what}: deadline of ${this.timing.callTimeoutMs} ms exceeded` }));
      this.send(request, (r) => settle(r.op === 'refused'
        ? { type: 'unreachable', reason: `${what}: connection refused` }
        : r.op === 'lease-not-found' ? { type: 'lease-lost', reason: `${what}: etcd says the lease is gone` } : r));
    });
  }

  /** A message on a stream: `onReply` runs in the daemon when the answer arrives. */
  send(request: EtcdRequest, onReply: (r: EtcdReply) => void): void {
    this.etcd.call(this.node, request, (r) => this.world.io(this.node, this.owner, 0, () => onReply(r)));
  }

  /** A timer of the daemon (its callbacks check that their lease is still the live one). */
  after(ms: number, run: () => void): void {
    this.scheduler.setTimer(run, ms);
  }
}

/** `LeaseKeeper`: one lease at a time, with this node's own deadline. */
class SimLeaseKeeper {
  private lease: LiveLease | null = null;
  private granting: Promise<{ ok: true; id: number } | Failure> | null = null;

  constructor(
    private readonly calls: EtcdCalls,
    private readonly timing: EtcdTiming,
    private readonly onRenewed: (validUntilMs: number) => void,
    private readonly onLost: (reason: LostReason, detail: string) => void,
  ) {}

  id(): number | null {
    return this.lease?.id ?? null;
  }

  validUntil(): number | null {
    return this.lease?.validUntilMs ?? null;
  }

  ensure(): Promise<{ ok: true; id: number } | Failure> {
    const now = this.calls.now();
    if (this.lease !== null && now < this.lease.validUntilMs) return Promise.resolve({ ok: true, id: this.lease.id });
    if (this.lease !== null) this.drop('deadline-passed', 'lease deadline passed before a keepalive was acknowledged');
    this.granting ??= this.grant().finally(() => {
      this.granting = null;
    });
    return this.granting;
  }

  abandon(reason: LostReason, detail: string): void {
    if (this.lease !== null) this.drop(reason, detail);
  }

  async revoke(): Promise<{ ok: true } | Failure> {
    const lease = this.lease;
    if (lease === null) return { ok: true };
    this.lease = null;
    return this.revokeId(lease.id);
  }

  private async grant(): Promise<{ ok: true; id: number } | Failure> {
    const sentAt = this.calls.now();
    const r = await this.calls.unary('lease grant', { op: 'grant', ttlMs: this.timing.leaseTtlMs });
    if ('type' in r) return r.type === 'lease-lost' ? { type: 'unreachable', reason: r.reason } : r;
    if (r.op !== 'grant') return { type: 'unreachable', reason: `lease grant: unexpected answer ${r.op}` };
    const lease: LiveLease = {
      id: r.lease, ttlMs: r.ttlMs, validUntilMs: sentAt + r.ttlMs, inFlightSince: null, stream: 0, streamFailures: 0,
    };
    this.lease = lease;
    this.armDeadline(lease);
    this.scheduleTick(lease, 0);
    return { ok: true, id: lease.id };
  }

  private scheduleTick(lease: LiveLease, afterMs: number): void {
    this.calls.after(afterMs, () => {
      if (this.lease !== lease) return;
      this.renew(lease);
      this.scheduleTick(lease, this.timing.renewIntervalMs);
    });
  }

  private armDeadline(lease: LiveLease): void {
    const afterMs = Math.max(0, lease.validUntilMs - this.calls.now()) + 1;
    this.calls.after(afterMs, () => {
      if (this.lease !== lease) return;
      if (this.calls.now() >= lease.validUntilMs) this.drop('deadline-passed', `no keepalive acknowledged within the granted TTL of ${lease.ttlMs} ms`);
    });
  }

  private renew(lease: LiveLease): void {
    const now = this.calls.now();
    if (lease.inFlightSince !== null) {
      if (now - lease.inFlightSince < this.timing.renewIntervalMs) return;
      // Unanswered for a whole interval: a frozen or cut member. Start afresh.
      lease.stream++;
    }
    const stream = lease.stream;
    lease.inFlightSince = now;
    this.calls.send({ op: 'keepalive', lease: lease.id }, (r) => {
      if (this.lease !== lease || lease.stream !== stream || lease.inFlightSince === null) return;
      if (r.op === 'refused') {
        this.streamEnded(lease);
        return;
      }
      const sentAt = lease.inFlightSince;
      lease.inFlightSince = null;
      const ttlMs = r.op === 'keepalive' ? r.ttlMs : 0;
      if (!(ttlMs > 0)) {
        this.drop('lease-expired', `etcd answered the keepalive with TTL ${ttlMs / 1000}: the lease is gone`);
        return;
      }
      lease.ttlMs = ttlMs;
      lease.streamFailures = 0;
      if (sentAt + ttlMs > lease.validUntilMs) {
        lease.validUntilMs = sentAt + ttlMs;
        this.armDeadline(lease);
      }
      this.onRenewed(lease.validUntilMs);
    });
  }

  private streamEnded(lease: LiveLease): void {
    lease.stream++;
    lease.inFlightSince = null;
    const retryMs = Math.min(this.timing.renewIntervalMs, STREAM_RETRY_MS * 2 ** lease.streamFailures);
    lease.streamFailures += 1;
    this.calls.after(retryMs, () => {
      if (this.lease === lease && lease.inFlightSince === null) this.renew(lease);
    });
  }

  private drop(reason: LostReason, detail: string): void {
    const lease = this.lease;
    if (lease === null) return;
    this.lease = null;
    // Best effort: frees the key at once when etcd is reachable.
    void this.revokeId(lease.id);
    this.onLost(reason, detail);
  }

  private async revokeId(id: number): Promise<{ ok: true } | Failure> {
    const r = await this.calls.unary('lease revoke', { op: 'revoke', lease: id });
    return 'type' in r && r.type === 'unreachable' ? r : { ok: true };
  }
}

/** `EtcdQuorum` behind `QuorumBridge`, for one daemon run. */
export class SimQuorum implements RuntimeQuorum {
  private readonly calls: EtcdCalls;
  private readonly keeper: SimLeaseKeeper;
  private readonly listeners = new Set<(notice: QuorumNotice) => void>();
  private held: { record: LeaderRecord; leaseId: number } | null = null;
  private confirming = false;

  constructor(node: NodeId, owner: Incarnation, world: World, etcd: EtcdModel, timing: EtcdTiming) {
    this.calls = new EtcdCalls(node, owner, world, etcd, timing);
    this.keeper = new SimLeaseKeeper(this.calls, timing,
      (validUntilMs) => this.renewed(validUntilMs),
      (reason, detail) => this.lost(reason, detail));
  }

  acquire(epoch: number): Promise<QuorumAnswer> {
    return acquireAnswer(() => this.acquireOnce(epoch));
  }

  mark(mark: QuorumMark): Promise<MarkAnswer> {
    switch (mark.kind) {
      case 'relax':
        return this.markRelaxed(mark.epoch);
      case 'clear':
        return this.clearRelaxed(mark.holder);
      case 'served':
        return this.recordServed(mark.epoch, mark.replId);
      default: {
        const never: never = mark;
        throw new Error(`unhandled quorum mark ${JSON.stringify(never)}`);
      }
    }
  }

  /** The key this node holds now, or null. */
  private holdingNow(): { record: LeaderRecord; leaseId: number } | null {
    const held = this.held;
    const validUntilMs = this.keeper.validUntil();
    return held === null || this.keeper.id() !== held.leaseId || validUntilMs === null || this.calls.now() >= validUntilMs ? null : held;
  }

  private async recordServed(epoch: number, replId: string): Promise<MarkAnswer> {
    const held = this.holdingNow();
    if (held === null) return { ok: false, detail: 'not holding the leader key' };
    const record = { node: this.calls.node, epoch };
    const sent = await this.txn('served record', { op: 'served', lease: held.leaseId, record, served: { ...record, replId } });
    if (!sent.ok) return { ok: false, detail: sent.outcome.reason };
    if (sent.succeeded) return { ok: true, detail: `recorded ${describe(record)} as the last master to serve` };
    return { ok: false, detail: `the leader key is not ${describe(record)} on this node's lease: not recorded` };
  }

  private async markRelaxed(epoch: number): Promise<MarkAnswer> {
    const held = this.holdingNow();
    if (held === null) return { ok: false, detail: 'not holding the leader key' };
    const record = { node: this.calls.node, epoch };
    const wanted = describe(record);
    let seen: StoredDurable | null = null;
    for (let send = 1; send <= MARK_SENDS; send++) {
      const sent = await this.txn('relaxed mark', { op: 'mark', lease: held.leaseId, record, relaxed: seen?.modRevision ?? null });
      if (!sent.ok) return { ok: false, detail: sent.outcome.reason };
      if (sent.succeeded) return { ok: true, detail: `marked ${wanted} relaxed` };
      const leader = sent.key;
      if (leader === null || leader.lease !== held.leaseId || !same(leader.record, record)) {
        const is = leader === null ? 'absent' : `${describe(leader.record)}${leader.lease === held.leaseId ? '' : ' on another lease'}`;
        return { ok: false, detail: `the leader key is not ${wanted} on this node's lease (it is ${is}): not marked` };
      }
      const relaxed = sent.memory.relaxed;
      if (relaxed !== null && same(relaxed.record, record)) return { ok: true, detail: `${wanted} was already marked relaxed` };
      if (relaxed !== null && relaxed.record.node !== this.calls.node) {
        return { ok: false, detail: `the relaxed mark is ${describe(relaxed.record)}, not this node's: clear it first` };
      }
      seen = relaxed;
    }
    return { ok: false, detail: `the relaxed mark kept changing (${MARK_SENDS} tries): not marked` };
  }

  private async clearRelaxed(record: KeyHolder): Promise<MarkAnswer> {
    const sent = await this.txn('relaxed mark clear', { op: 'clear', record });
    if (!sent.ok) return { ok: false, detail: sent.outcome.reason };
    if (sent.succeeded) return { ok: true, detail: `mark ${describe(record)} cleared` };
    const relaxed = sent.memory.relaxed;
    return { ok: true, detail: relaxed === null ? 'no mark' : `no mark ${describe(record)} (the mark is ${describe(relaxed.record)})` };
  }

  async release(): Promise<void> {
    this.held = null;
    await this.keeper.revoke();
  }

  onEvent(listener: (notice: QuorumNotice) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private async acquireOnce(epoch: number): Promise<Outcome> {
    const lease = await this.keeper.ensure();
    if (!('ok' in lease)) return lease;
    const record = { node: this.calls.node, epoch };
    const sent = await this.txn('acquire', { op: 'create', lease: lease.id, record });
    if (!sent.ok) return sent.outcome;
    if (sent.succeeded) return this.heldNow(record, lease.id, 'key was free: taken', sent.memory);
    return this.settle(sent.key, sent.memory, epoch, lease.id, true);
  }

  /** What a failed create or raise read back decides (`mayRaise`: one epoch-raising write allowed). */
  private async settle(leader: StoredLeader | null, memory: StoredMemory, epoch: number, leaseId: number, mayRaise: boolean): Promise<Outcome> {
    // Only after a raise's compare failed: the key expired meanwhile.
    if (leader === null) return mayRaise ? this.otherHolds(null, 'key is free but was not created') : this.acquireOnce(epoch);
    if (leader.lease !== leaseId) return this.otherHolds(leader, 'key is bound to another lease');
    if (leader.record.node === this.calls.node && leader.record.epoch >= epoch) {
      return this.heldNow(leader.record, leaseId, leader.record.epoch === epoch ? 'key is mine' : `key is mine at the newer epoch ${leader.record.epoch}; not lowered`, memory);
    }
    if (!mayRaise) return this.otherHolds(leader, 'key changed meanwhile');
    const record = { node: this.calls.node, epoch };
    const sent = await this.txn('epoch raise', { op: 'raise', modRevision: leader.modRevision, lease: leaseId, record });
    if (!sent.ok) return sent.outcome;
    if (sent.succeeded) return this.heldNow(record, leaseId, `key is mine; epoch raised to ${epoch}`, sent.memory);
    return this.settle(sent.key, sent.memory, epoch, leaseId, false);
  }

  private otherHolds(leader: StoredLeader | null, why: string): Outcome {
    const name = leader === null ? 'nobody' : `${leader.record.node} (epoch ${leader.record.epoch})`;
    return { type: 'held-by-other', holder: leader?.record ?? null, reason: `held by ${name}: ${why}` };
  }

  private heldNow(record: LeaderRecord, leaseId: number, reason: string, memory: StoredMemory): Outcome {
    const validUntilMs = this.keeper.validUntil();
    if (this.keeper.id() !== leaseId || validUntilMs === null || this.calls.now() >= validUntilMs) {
      this.held = null;
      return { type: 'lease-lost', reason: `${reason}, but the lease ended meanwhile` };
    }
    this.held = { record, leaseId };
    return { type: 'held', record, validUntilMs, memory: { last: memory.last?.record ?? null, relaxed: memory.relaxed?.record ?? null }, reason };
  }

  /** One transaction. */
  private async txn(what: string, request: EtcdRequest): Promise<TxnAnswer> {
    const r = await this.calls.unary(what, request);
    if ('type' in r) {
      if (r.type === 'lease-lost') this.keeper.abandon('lease-expired', r.reason);
      return { ok: false, outcome: r };
    }
    if (r.op !== 'txn') return { ok: false, outcome: { type: 'unreachable', reason: `${what}: unexpected answer ${r.op}` } };
    return { ok: true, succeeded: r.succeeded, key: r.key, memory: r.memory, revision: r.revision };
  }

  private renewed(validUntilMs: number): void {
    this.emit({ type: 'quorum-renewed', validUntilAtMs: validUntilMs });
    if (this.held !== null) void this.confirm(this.held);
  }

  /** Re-reads the key after a renewal; a holder whose key is gone or taken gives up its lease. */
  private async confirm(held: { record: LeaderRecord; leaseId: number }): Promise<void> {
    if (this.confirming) return;
    this.confirming = true;
    try {
      const r = await this.calls.unary('holder check', { op: 'read' });
      if ('type' in r || r.op !== 'read') return;
      if (this.held !== held) return;
      const leader = r.key;
      if (leader === null || leader.lease !== held.leaseId) {
        const by = leader === null ? 'deleted' : `bound to another lease (${leader.record.node} epoch ${leader.record.epoch})`;
        this.keeper.abandon('key-taken', `leader key ${by}`);
      }
    } finally {
      this.confirming = false;
    }
  }

  private lost(reason: LostReason, detail: string): void {
    this.held = null;
    this.emit({ type: 'quorum-lost', reason, detail });
  }

  private emit(notice: QuorumNotice): void {
    for (const listener of this.listeners) listener(notice);
  }
}

function same(a: LeaderRecord, b: LeaderRecord): boolean {
  return a.node === b.node && a.epoch === b.epoch;
}

function describe(record: LeaderRecord): string {
  return `${record.node}@${record.epoch}`;
}
