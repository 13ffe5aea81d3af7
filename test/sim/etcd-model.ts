/**
 * One etcd member on the fake clock, as the quorum uses it (issue 11): the group's leader
 * key, its two durable keys, leases, and the calls `quorum-adapter.ts` makes, each a
 * message over the network (`Network.sendTcp`) from a node to the third host, "etcd", and
 * back.
 *
 * The keys (src/adapters/quorum/transactions.ts; no takeover fence: the simulation's
 * daemons never take the key over while it is held):
 *   leader          the holder's record, bound to its lease
 *   leader-last     no lease: the last master whose Redis served, with its replication id
 *                   (put by that master while the leader key is its own)
 *   leader-relaxed  no lease: the relaxed mark of a master whose fence is relaxed
 *
 *   grant(ttl)                 a lease; granted TTL = max(asked, 1.5 election timeouts
 *                              rounded up to a second), as etcd 3.4 does
 *   keepalive(lease)           its TTL starts afresh when etcd *receives* it; a lease whose
 *                              TTL ran out answers TTL 0 (gone), as etcd does once it revoked it
 *   create(lease, rec)         key absent → put mine bound to my lease; else read all
 *   raise(rev, lease, rec)     key unchanged since `rev` → put mine (a higher epoch); else read all
 *   served(lease, rec, srv)    leader is exactly `rec` on `lease` → put leader-last `srv`; else read all
 *   read()                     all three keys
 *   revoke(lease)              the lease and the key bound to it go at once
 *   mark(lease, rec, relaxed)  leader is exactly `rec` on `lease` and the mark as read (its
 *                              revision, null when absent) → put the mark `rec`; else read all
 *   clear(rec)                 the mark is exactly `rec` → delete it; else read all
 * A write's success answer carries the durable keys as they were just before its puts;
 * a failed compare's carries what its failure branch read (all in one revision).
 *
 * A put bound to a lease etcd does not know fails as a whole (EtcdLeaseInvalidError).
 *
 * Expiry (quorum-facts.md): etcd looks for expired leases every ETCD_EXPIRY_CHECK_MS, so a
 * lease's key goes 0–500 ms after its TTL ran out since the last keepalive it received,
 * never early. etcd's clock may run up to CLOCK_RATE_BOUND faster than the nodes' (`rate`,
 * drawn per history): its TTLs then end that much sooner in the nodes' time, which is what
 * the fence lead's clock-rate share is for.
 *
 * Faults: frozen (SIGSTOP), etcd answers and expires nothing; requests queue in its socket
 * and are served, in order, when it resumes (a request whose caller gave up meanwhile is
 * still carried out: its answer goes nowhere). Killed, connections are refused at once;
 * started again, it serves once it is leader, an election timeout later, and becoming
 * leader extends every lease to an election timeout + its TTL from then (etcd's
 * `lessor.Promote`; measured: a dead holder's key lived about TTL + election timeout).
 * Keys and leases survive the restart (the WAL); the durable keys, bound to no lease,
 * outlive every lease as well.
 */
import type { LeaderRecord } from '../../src/adapters/quorum/record.js';
import type { ServedRecord } from '../../src/adapters/quorum/served-record.js';
import type { Network } from './net.js';
import type { NodeId, World } from './world.js';

/** Our clock and etcd's run at most this far apart in rate (`CLOCK_RATE_BOUND` in the timing rule). */
export const CLOCK_RATE_BOUND = 0.01;
/** etcd checks for expired leases this often (`ETCD_EXPIRY_CHECK_MS` in the timing rule). */
export const ETCD_EXPIRY_CHECK_MS = 500;
/** etcd grants no TTL below this many election timeouts, rounded up to a whole second. */
const MIN_TTL_ELECTIONS = 1.5;

/** The leader key as stored: the holder's record, its lease and its revision. */
export interface StoredLeader {
  readonly record: LeaderRecord;
  readonly lease: number;
  readonly modRevision: number;
}

/** A durable key (no lease) as stored: its record and revision. */
export interface StoredDurable<R = LeaderRecord> {
  readonly record: R;
  readonly modRevision: number;
}

/** leader-last and leader-relaxed, as one read saw them. */
export interface StoredMemory {
  readonly last: StoredDurable<ServedRecord> | null;
  readonly relaxed: StoredDurable | null;
}

export type EtcdRequest =
  | { readonly op: 'grant'; readonly ttlMs: number }
  | { readonly op: 'keepalive'; readonly lease: number }
  | { readonly op: 'create'; readonly lease: number; readonly record: LeaderRecord }
  | { readonly op: 'raise'; readonly modRevision: number; readonly lease: number; readonly record: LeaderRecord }
  | { readonly op: 'served'; readonly lease: number; readonly record: LeaderRecord; readonly served: ServedRecord }
  | { readonly op: 'read' }
  | { readonly op: 'revoke'; readonly lease: number }
  | { readonly op: 'mark'; readonly lease: number; readonly record: LeaderRecord; readonly relaxed: number | null }
  | { readonly op: 'clear'; readonly record: LeaderRecord };

export type EtcdReply =
  | { readonly op: 'grant'; readonly lease: number; readonly ttlMs: number }
  /** `ttlMs` 0: the lease is gone. */
  | { readonly op: 'keepalive'; readonly ttlMs: number }
  /**
   * A compare-and-swap: `key` is what its failure branch read (null when it succeeded);
   * `memory` the durable keys its failure branch read, or, when it succeeded, as they were
   * just before its puts. `revision`: the store's revision after it (etcd's response
   * header), the mod revision of every key it put.
   */
  | { readonly op: 'txn'; readonly succeeded: boolean; readonly key: StoredLeader | null; readonly memory: StoredMemory; readonly revision: number }
  | { readonly op: 'read'; readonly key: StoredLeader | null; readonly memory: StoredMemory }
  | { readonly op: 'revoke'; readonly found: boolean }
  /** The put's lease does not exist (the whole transaction failed). */
  | { readonly op: 'lease-not-found' }
  /** The connection was refused or reset (etcd is not running). */
  | { readonly op: 'refused' };

/** The etcd settings the simulation runs with. */
export interface EtcdTiming {
  /** The TTL the nodes ask for (whole seconds, as `quorum.etcd.lease_ttl_s`). */
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  /** Deadline of each unary call. */
  readonly callTimeoutMs: number;
  /** etcd's `--election-timeout`. */
  readonly electionTimeoutMs: number;
  /** `health.timeout_ms`: how long the fence may take to apply (part of the fence lead). */
  readonly healthTimeoutMs: number;
}

interface Lease {
  readonly id: number;
  readonly ttlMs: number;
  /** When its TTL runs out, in the nodes' time. */
  expiresAt: number;
}

interface Pending {
  readonly from: NodeId;
  readonly request: EtcdRequest;
  readonly reply: (r: EtcdReply) => void;
}

type Status = 'up' | 'frozen' | 'down' | 'electing';

export class EtcdModel {
  status: Status = 'up';
  key: StoredLeader | null = null;
  /** leader-last: bound to no lease. */
  last: StoredDurable<ServedRecord> | null = null;
  /** leader-relaxed: bound to no lease. */
  relaxed: StoredDurable | null = null;
  readonly leases = new Map<number, Lease>();
  /** etcd's clock runs this much faster than the nodes' (1 ..< 1 + CLOCK_RATE_BOUND). */
  readonly rate: number;
  private revision = 0;
  private nextLease = 0x1000;
  private queue: Pending[] = [];
  private frozenUntil = -1;
  /** Bumped by a kill: an election started before it does not finish. */
  private run = 0;

  /** @param note told every change of the key and of etcd's state, for the trace. */
  constructor(
    private readonly world: World,
    private readonly net: Network,
    private readonly timing: EtcdTiming,
    private readonly note: (line: string) => void = () => undefined,
  ) {
    this.rate = 1 + world.random() * CLOCK_RATE_BOUND;
    this.scheduleExpiryCheck(world.int(1, ETCD_EXPIRY_CHECK_MS));
  }

  /** The TTL etcd grants for `askedMs`. */
  grantedTtlMs(askedMs: number): number {
    const floorMs = Math.ceil((MIN_TTL_ELECTIONS * this.timing.electionTimeoutMs) / 1000) * 1000;
    return Math.max(askedMs, floorMs);
  }

  /**
   * A call from `node`: the request crosses the network, etcd serves it (or queues it, or
   * refuses it), the answer crosses back and `reply` runs on arrival (world-owned: the
   * caller hands it to its daemon). Nothing comes back when a message is dropped.
   */
  call(node: NodeId, request: EtcdRequest, reply: (r: EtcdReply) => void): void {
    this.net.sendTcp(node, 'etcd', () => {
      const answer = (r: EtcdReply): void => this.net.sendTcp('etcd', node, () => reply(r));
      switch (this.status) {
        case 'down':
          answer({ op: 'refused' });
          return;
        case 'frozen':
        case 'electing':
          this.queue.push({ from: node, request, reply: answer });
          return;
        case 'up':
          answer(this.serve(node, request));
          return;
        default: {
          const never: never = this.status;
          throw new Error(`unknown etcd status ${String(never)}`);
        }
      }
    });
  }

  /** SIGSTOP until `untilMs` (extends a freeze already running); a dead etcd is not frozen. */
  freeze(untilMs: number): void {
    if (this.status === 'down') return;
    this.frozenUntil = Math.max(this.frozenUntil, untilMs);
    if (this.status === 'up') this.status = 'frozen';
    this.world.at(untilMs, () => {
      if (this.status === 'frozen' && this.world.now >= this.frozenUntil) {
        this.status = 'up';
        this.log('resumed');
        this.drain();
      }
    });
  }

  /** SIGKILL: connections are refused; what it queued is lost. */
  kill(): void {
    this.status = 'down';
    this.run++;
    this.frozenUntil = -1;
    this.queue = [];
    this.log('killed');
  }

  /** Started again: it serves once it has been elected leader, an election timeout later. */
  start(): void {
    if (this.status !== 'down') return;
    this.status = 'electing';
    const run = this.run;
    this.log('started');
    this.world.at(this.world.now + this.timing.electionTimeoutMs, () => {
      if (this.status !== 'electing' || this.run !== run) return;
      this.status = 'up';
      // lessor.Promote(electionTimeout): every lease lives its TTL again from an election timeout on.
      for (const l of this.leases.values()) l.expiresAt = this.world.now + (this.timing.electionTimeoutMs + l.ttlMs) / this.rate;
      this.log('leader: leases extended');
      this.drain();
    });
  }

  /** etcd is serving requests now. */
  get serving(): boolean {
    return this.status === 'up';
  }

  private drain(): void {
    const queued = this.queue;
    this.queue = [];
    for (const p of queued) p.reply(this.serve(p.from, p.request));
  }

  private serve(from: NodeId, q: EtcdRequest): EtcdReply {
    const now = this.world.now;
    switch (q.op) {
      case 'grant': {
        const id = this.nextLease++;
        const ttlMs = this.grantedTtlMs(q.ttlMs);
        this.leases.set(id, { id, ttlMs, expiresAt: now + ttlMs / this.rate });
        return { op: 'grant', lease: id, ttlMs };
      }
      case 'keepalive': {
        const l = this.leases.get(q.lease);
        if (l === undefined || now >= l.expiresAt) return { op: 'keepalive', ttlMs: 0 };
        l.expiresAt = now + l.ttlMs / this.rate;
        return { op: 'keepalive', ttlMs: l.ttlMs };
      }
      case 'create':
        if (this.key !== null) return this.failed();
        return this.put(q.lease, q.record, `${from} created`);
      case 'raise':
        if (this.key === null || this.key.modRevision !== q.modRevision) return this.failed();
        return this.put(q.lease, q.record, `${from} raised`);
      case 'served': {
        const k = this.key;
        if (k === null || k.lease !== q.lease || !sameRecord(k.record, q.record)) return this.failed();
        const memory = this.memory();
        this.last = { record: q.served, modRevision: ++this.revision };
        this.log(`${from} recorded ${q.served.node} epoch ${q.served.epoch} (${q.served.replId}) as the last master to serve`);
        return { op: 'txn', succeeded: true, key: null, memory, revision: this.revision };
      }
      case 'read':
        return { op: 'read', key: this.key, memory: this.memory() };
      case 'mark': {
        const k = this.key;
        const mine = k !== null && k.lease === q.lease && sameRecord(k.record, q.record);
        if (!mine || !this.asRead(this.relaxed, q.relaxed)) return this.failed();
        const memory = this.memory();
        this.relaxed = { record: q.record, modRevision: ++this.revision };
        this.log(`${from} marked ${q.record.node} epoch ${q.record.epoch} relaxed`);
        return { op: 'txn', succeeded: true, key: null, memory, revision: this.revision };
      }
      case 'clear': {
        if (this.relaxed === null || !sameRecord(this.relaxed.record, q.record)) return this.failed();
        const memory = this.memory();
        this.relaxed = null;
        ++this.revision;
        this.log(`${from} cleared the relaxed mark of ${q.record.node} epoch ${q.record.epoch}`);
        return { op: 'txn', succeeded: true, key: null, memory, revision: this.revision };
      }
      case 'revoke': {
        const found = this.leases.has(q.lease);
        this.dropLease(q.lease, `revoked by ${from}`);
        return { op: 'revoke', found };
      }
      default: {
        const never: never = q;
        throw new Error(`unknown etcd request ${JSON.stringify(never)}`);
      }
    }
  }

  /** A write of the leader key bound to `lease`: refused as a whole when etcd does not know the lease. */
  private put(lease: number, record: LeaderRecord, what: string): EtcdReply {
    if (!this.leases.has(lease)) return { op: 'lease-not-found' };
    const memory = this.memory();
    const revision = ++this.revision;
    this.key = { record, lease, modRevision: revision };
    this.log(`${what} the key: ${record.node} epoch ${record.epoch} on lease ${lease.toString(16)}`);
    return { op: 'txn', succeeded: true, key: null, memory, revision };
  }

  /** A compare that failed: its failure branch reads all keys. */
  private failed(): EtcdReply {
    return { op: 'txn', succeeded: false, key: this.key, memory: this.memory(), revision: this.revision };
  }

  private memory(): StoredMemory {
    return { last: this.last, relaxed: this.relaxed };
  }

  /** A compare on a durable key: absent when `modRevision` is null, else at that revision. */
  private asRead<R>(stored: StoredDurable<R> | null, modRevision: number | null): boolean {
    return modRevision === null ? stored === null : stored?.modRevision === modRevision;
  }

  private dropLease(id: number, why: string): void {
    if (!this.leases.delete(id)) return;
    if (this.key !== null && this.key.lease === id) {
      this.log(`key deleted (${this.key.record.node} epoch ${this.key.record.epoch}): lease ${id.toString(16)} ${why}`);
      this.key = null;
    }
  }

  private scheduleExpiryCheck(afterMs: number): void {
    this.world.at(this.world.now + afterMs, () => {
      if (this.status === 'up') {
        for (const l of [...this.leases.values()]) if (this.world.now >= l.expiresAt) this.dropLease(l.id, 'expired');
      }
      this.scheduleExpiryCheck(ETCD_EXPIRY_CHECK_MS / this.rate);
    });
  }

  private log(what: string): void {
    this.note(`etcd ${what}`);
  }
}

function sameRecord(a: LeaderRecord, b: LeaderRecord): boolean {
  return a.node === b.node && a.epoch === b.epoch;
}
