/**
 * What must hold in every simulated history. Checked after every heap entry (during the
 * run, not only after settling), and once more when the network has been stable long
 * enough. A breach is recorded with the time and a short explanation; the test prints
 * it with the run's trace.
 *
 * During the run:
 *  1. Epochs only rise. Per daemon run, `state.epoch` and `state.knownEpoch` never go
 *     down; the state file's epoch, known epoch and maintenance generation never go
 *     down; a promotion only runs once the state file holds the epoch it promotes for
 *     (the core's order "persist the epoch, then promote", issue 9); a restarted daemon
 *     starts at or above every epoch it promoted with.
 *  2. A FAULT node does not keep the VIP: at most FAULT_VIP_BOUND_MS of (FAULT and the
 *     VIP on its interface), time stalled excluded (a frozen daemon acts on nothing).
 *  3. Two hosts never both hold the VIP while both Redis accept writes for longer than
 *     `dualBoundMs` once the pair is quiet (see `dualBoundMs` for the derivation).
 *
 *  4. With the quorum (backend etcd), at no instant do both Redis servers accept writes
 *     (a live, unpaused, unfenced master: what a client reaching it by its own address
 *     would get acknowledged), whatever the network, etcd or the daemons do. The one
 *     exemption is a Redis that is a master by its own configuration (at the start, or
 *     back from a restart) and that no daemon has handled since (`RedisServer.selfMaster`:
 *     issue 11 item 5, not built, and finding Q6 of quorum-findings.test.ts).
 *
 * After settling: exactly one MASTER, the VIP on it only, its Redis a master, the other
 * node BACKUP with its Redis replicating the master over a working link; and, in
 * histories without partitions (with the quorum: in every history checked for loss), no
 * acknowledged write is lost except those that lived only on a Redis server when it
 * crashed (asynchronous replication's window) and those known product bugs threw away
 * (see `lostWrites`).
 */
import type { CoreState } from '../../src/core/state.js';
import { DEFAULT_FAULT_VIP_HOLD_MS, masterDownMs } from '../../src/core/timing.js';
import type { Runtime } from '../../src/daemon/runtime.js';
import type { Ack, Client } from './client.js';
import { ETCD_EXPIRY_CHECK_MS, type EtcdTiming } from './etcd-model.js';
import { MAX_CLAIM_MS, MAX_PERSIST_MS, MAX_RELEASE_MS, type HostVip, type StateFile, type StateFileContent } from './host.js';
import { BASE_DELAY_MS, type Network } from './net.js';
import { MAX_REDIS_EFFECT_MS, MAX_SWITCHOVER_MS } from './redis-adapter.js';
import type { QuorumFinding, RedisModel } from './redis-model.js';
import { NODES, OTHER, type NodeId, type World } from './world.js';

/**
 * The longest run of effects that can be queued on a daemon's lane ahead of the one that
 * resolves a breach (the release of the VIP): a Redis role change or a FAILOVER in
 * flight, a claim, and the state-file writes around them.
 */
export const LANE_BACKLOG_MS = Math.max(MAX_REDIS_EFFECT_MS, MAX_SWITCHOVER_MS) + MAX_CLAIM_MS + 2 * MAX_PERSIST_MS + MAX_RELEASE_MS;

/** How long a Redis that lost writes to finding Q7 may go on acknowledging before it follows the new master. */
const Q6_WINDOW_MS = 10_000;

/**
 * A FAULT node releases the VIP as its first effect after the ones already queued, or,
 * a master whose Redis is gone, once its hold is over (refusing every connection meanwhile).
 */
export const FAULT_VIP_BOUND_MS = LANE_BACKLOG_MS + DEFAULT_FAULT_VIP_HOLD_MS;

/** Longest fence change (`SimRedisAdapter.fence`). */
const MAX_FENCE_MS = 3;

/**
 * With the quorum, what more can be queued on a daemon's effect lane: an `acquire-quorum`
 * (lease grant and transaction, each up to the call timeout, twice when the lease was
 * lost meanwhile), a `release-quorum` (one call) and two fence changes. Etcd's calls run
 * on the same lane as the VIP and Redis effects (src/daemon/runtime.ts), so a FAULT
 * node's VIP release can wait behind them: part of finding Q7.
 */
export function quorumLaneMs(t: Timing): number {
  return 5 * t.quorum.callTimeoutMs + 2 * MAX_FENCE_MS;
}

/** The timing a history runs with (a subset of the daemon's configuration). */
export interface Timing {
  readonly advertIntervalMs: number;
  readonly healthIntervalMs: number;
  readonly reconcileIntervalMs: number;
  readonly stallThresholdMs: number;
  /** etcd and the lease, with the quorum (`pair.ts` derives the fence lead from it). */
  readonly quorum: EtcdTiming;
}

/**
 * How long both hosts may hold the VIP with both Redis writable, counted from the later
 * of the moment it began and the moment the pair became quiet (network clean, both
 * daemons running and not stalled, no Redis restart). Once quiet, one of these resolves
 * it, whichever comes first:
 *  - both are MASTER: the lower-ranked one hears the winner's next advert (at most one
 *    advert interval + the link's delay), steps down and releases the VIP;
 *  - the extra holder is not MASTER (a BACKUP or INIT node with a VIP left over): the
 *    reconcile loop removes it at its next turn, or INIT hears the master's advert;
 *  - a FAULT holder releases it at once.
 * Each path then waits for the effects already on that daemon's lane. A daemon that has
 * just (re)started first waits for its first check and the peer's advert: the same
 * advert interval.
 */
export function dualBoundMs(t: Timing, quorum = false): number {
  return Math.max(t.advertIntervalMs + BASE_DELAY_MS, t.reconcileIntervalMs) + LANE_BACKLOG_MS + (quorum ? quorumLaneMs(t) : 0);
}

/** What the checker reads from the running pair. */
export interface Observed {
  readonly world: World;
  readonly net: Network;
  readonly redis: RedisModel;
  readonly client: Client;
  readonly timing: Timing;
  runtime(node: NodeId): Runtime | null;
  vip(node: NodeId): HostVip;
  file(node: NodeId): StateFile;
  /** When a Redis server was last restarted (a new writable master may appear). */
  redisRestartedAt(node: NodeId): number;
  /** When an effect of this node last failed on purpose (the `flaky` fault). */
  lastInjectedFailure(node: NodeId): number;
}

interface Window {
  since: number | null;
}

export class Invariants {
  readonly violations: string[] = [];
  private readonly last: Record<NodeId, { runtime: Runtime | null; epoch: number; knownEpoch: number }> = {
    a: { runtime: null, epoch: 0, knownEpoch: 0 },
    b: { runtime: null, epoch: 0, knownEpoch: 0 },
  };
  /** Highest epoch each node promoted its Redis with. */
  private readonly actedEpoch: Record<NodeId, number> = { a: 0, b: 0 };
  /** Epochs of the promotions each node's core emitted and its lane has not run yet. */
  private readonly promotions: Record<NodeId, number[]> = { a: [], b: [] };
  private readonly faultVip: Record<NodeId, Window> = { a: { since: null }, b: { since: null } };
  private readonly dual: Window = { since: null };
  private quietSince = 0;
  /** Longest dual-writable VIP seen (for reporting), quiet time only. */
  maxDualMs = 0;
  /** With the quorum: both Redis accepting writes (check 4). */
  private readonly bothWritable: Window = { since: null };
  private bothReported = false;
  /** Whether each node's current daemon run has been MASTER (finding Q6). */
  private readonly mastered: Record<NodeId, boolean> = { a: false, b: false };
  /** When each node's daemon last served without its lease (failsafe), for finding Q7. */
  private readonly failsafeAt: Record<NodeId, number> = { a: -Infinity, b: -Infinity };
  /** With the quorum: both Redis accepting writes that an open finding explains, by finding (`knownBothWritable`). */
  readonly bothWritableExcused: string[] = [];
  /** Longest time both Redis accepted writes (check 4; exempt time included). */
  maxBothWritableMs = 0;

  /**
   * @param strict with the quorum: check 4, the open findings of quorum-findings.test.ts
   * counted rather than failed, and a lost write exempt only when a self-promoted Redis
   * acknowledged it (see `RedisModel.strictExcuses` for the excused losses).
   */
  constructor(private readonly o: Observed, private readonly strict = false) {
    for (const n of NODES) o.file(n).onWrite = (before, after) => this.fileWritten(n, before, after);
  }

  /** A new daemon run of `node` starts from its state file. */
  started(node: NodeId, runtime: Runtime): void {
    this.promotions[node] = [];
    this.mastered[node] = false;
    const s = runtime.current;
    if (s.epoch < this.actedEpoch[node]) {
      this.fail(`${node} restarted at epoch ${s.epoch}, below epoch ${this.actedEpoch[node]} it promoted with before`);
    }
    this.last[node] = { runtime, epoch: s.epoch, knownEpoch: s.knownEpoch };
  }

  /**
   * A step of `node`'s core took the master role with a promotion (`promote-redis` is on
   * its way, behind the `persist-state` of that epoch). The lane runs promotions in the
   * order they were emitted; this queue says which epoch each one belongs to (the state
   * may have moved on by the time it runs).
   */
  promotionEmitted(node: NodeId, epoch: number): void {
    this.promotions[node].push(epoch);
  }

  /** A promotion emitted earlier will not run: an effect before it in its step failed. */
  promotionSkipped(node: NodeId): void {
    this.promotions[node].shift();
  }

  /** `node` is about to promote its Redis: the epoch it does so for must be on disk (issue 9). */
  promoting(node: NodeId): void {
    const epoch = this.promotions[node].shift();
    if (epoch === undefined) {
      this.fail(`${node} runs promote-redis that no step of its core emitted`);
      return;
    }
    const onDisk = this.o.file(node).content.epoch;
    if (onDisk < epoch) this.fail(`${node} runs promote-redis for epoch ${epoch} while its state file holds epoch ${onDisk}`);
    this.actedEpoch[node] = Math.max(this.actedEpoch[node], epoch);
  }

  /** After every heap entry. */
  observe(): void {
    const { world, net, redis } = this.o;
    const now = world.now;
    let quiet = !net.disturbed();
    for (const n of NODES) {
      const rt = this.o.runtime(n);
      if (rt === null || world.isStalled(n) || this.o.redisRestartedAt(n) === now) quiet = false;
      if (rt !== null) this.epochs(n, rt.current);
      const faultHolds = rt !== null && rt.current.role === 'FAULT' && this.o.vip(n).present && !world.isStalled(n);
      this.window(this.faultVip[n], faultHolds, (since) => this.afterFailures([n], since, this.faultVipBoundMs()),
        `${n} is FAULT and holds the VIP`);
    }
    if (!quiet) this.quietSince = now;
    // A VIP held refusing connections (`refuse-vip`) takes no write, whatever its Redis does.
    const dual = NODES.every((n) => this.o.vip(n).present && !this.o.vip(n).refusing && redis.acceptsWrites(n));
    const since = this.dual.since;
    if (dual && since !== null) this.maxDualMs = Math.max(this.maxDualMs, now - Math.max(since, this.quietSince));
    this.window(this.dual, dual, (since) => this.afterFailures(NODES, Math.max(since, this.quietSince), dualBoundMs(this.o.timing, this.strict)),
      'both hosts hold the VIP and both Redis accept writes');
    if (this.strict) {
      for (const n of NODES) {
        const s = this.o.runtime(n)?.current;
        if (s?.quorum.failsafeSinceMs != null) this.failsafeAt[n] = now;
        if (s?.role === 'MASTER') this.mastered[n] = true;
      }
      this.oneWritable();
    }
  }

  private faultVipBoundMs(): number {
    return FAULT_VIP_BOUND_MS + (this.strict ? quorumLaneMs(this.o.timing) : 0);
  }

  /** Check 4: never two Redis accepting writes (with the quorum); reported once per window. */
  private oneWritable(): void {
    const { redis, world } = this.o;
    const w = this.bothWritable;
    if (!NODES.every((n) => redis.acceptsWrites(n))) {
      w.since = null;
      this.bothReported = false;
      return;
    }
    w.since ??= world.now;
    this.maxBothWritableMs = Math.max(this.maxBothWritableMs, world.now - w.since);
    const exempt = NODES.some((n) => redis.servers[n].selfMaster);
    if (exempt || this.bothReported) return;
    this.bothReported = true;
    const known = this.knownBothWritable();
    if (known === null) {
      this.fail(`both Redis accept writes (${describe(this.o)})`);
      return;
    }
    this.bothWritableExcused.push(known.finding);
    redis.quorumFinding(known.node, OTHER[known.node], known.finding, Q6_WINDOW_MS);
  }

  /**
   * Both Redis accept writes, and what is left of finding Q6 explains it: a starting
   * daemon (INIT) does not fence a master Redis it finds (a restart in place keeps
   * serving while it decides), so a history where its peer promotes meanwhile is counted,
   * not failed (quorum-findings.test.ts); what that Redis acknowledged is excused.
   */
  private knownBothWritable(): { node: NodeId; finding: QuorumFinding } | null {
    const { redis, world } = this.o;
    // What is left of Q6 by design: a starting daemon (INIT) does not fence a master Redis
    // it finds (a restart in place keeps serving while it decides).
    const starting = NODES.find((n) => !this.mastered[n] && this.o.runtime(n)?.current.role === 'INIT' && redis.acceptsWrites(n));
    void world;
    return starting === undefined ? null : { node: starting, finding: 'finding Q6' };
  }

  /**
   * A release of the VIP that failed is repaired by the reconcile loop (`src/core/effects.ts`):
   * when an effect of these nodes failed on purpose during the window (or just before it,
   * still on the lane), the window counts from the last such failure and allows two turns
   * of the loop, because a turn that finds any effect in flight (a state-file write of a
   * few milliseconds will do) is skipped for a whole interval (`Runtime.scheduleReconcile`).
   */
  private afterFailures(nodes: readonly NodeId[], since: number, boundMs: number): { from: number; boundMs: number } {
    const last = Math.max(...nodes.map((n) => this.o.lastInjectedFailure(n)));
    if (last < since - LANE_BACKLOG_MS) return { from: since, boundMs };
    return { from: Math.max(since, last), boundMs: boundMs + 2 * this.o.timing.reconcileIntervalMs + LANE_BACKLOG_MS };
  }

  /** Once the network has been stable long enough. */
  settled(lossFree: boolean): void {
    const { redis } = this.o;
    const rts = NODES.map((n) => this.o.runtime(n));
    if (rts.some((r) => r === null)) {
      this.fail(`a daemon is not running at the end (${NODES.filter((n) => this.o.runtime(n) === null).join(', ')})`);
      return;
    }
    const masters = NODES.filter((n) => this.o.runtime(n)!.current.role === 'MASTER');
    if (masters.length !== 1) {
      this.fail(`expected exactly one MASTER at the end, found ${masters.length} (${describe(this.o)})`);
      return;
    }
    const m = masters[0]!;
    const b = OTHER[m];
    const expect = (ok: boolean, what: string): void => {
      if (!ok) this.fail(`at the end: ${what} (${describe(this.o)})`);
    };
    expect(this.o.vip(m).present, `the VIP is not on the master ${m}`);
    expect(!this.o.vip(b).present, `the VIP is also on ${b}`);
    expect(redis.servers[m].alive && redis.servers[m].role === 'master', `${m}'s Redis is not a live master`);
    expect(this.o.runtime(b)!.current.role === 'BACKUP', `${b} is ${this.o.runtime(b)!.current.role}, not BACKUP`);
    const snap = redis.servers[b].alive ? redis.snapshot(b) : null;
    expect(snap !== null && snap.role === 'replica' && redis.servers[b].masterOf === m && snap.linkUp,
      `${b}'s Redis does not replicate ${m} over a working link`);
    if (lossFree) this.noWriteLost(m);
  }

  private noWriteLost(master: NodeId): void {
    const { excused } = this.o.redis;
    // Without the quorum a Redis acknowledging writes while its daemon is FAULT is
    // findings.test.ts 5; with it, only a self-promoted Redis's writes are left out.
    const exempt = (w: Ack): boolean => (this.strict ? w.selfMaster : w.role === 'FAULT');
    const lost = lostWrites(this.o, master).filter((w) => !exempt(w) && !excused.has(w.id));
    if (lost.length > 0) {
      const first = lost.slice(0, 5).map((w) => `#${w.id} on ${w.node} (${w.role}) at ${w.at}`).join(', ');
      this.fail(`${lost.length} acknowledged write(s) lost without a Redis crash to explain them: ${first}`);
    }
  }

  private epochs(n: NodeId, s: CoreState): void {
    const last = this.last[n];
    if (s.epoch < last.epoch) this.fail(`${n}'s epoch went down from ${last.epoch} to ${s.epoch}`);
    if (s.knownEpoch < last.knownEpoch) this.fail(`${n}'s known epoch went down from ${last.knownEpoch} to ${s.knownEpoch}`);
    last.epoch = s.epoch;
    last.knownEpoch = s.knownEpoch;
  }

  private fileWritten(n: NodeId, before: StateFileContent, after: StateFileContent): void {
    if (after.epoch < before.epoch) this.fail(`${n}'s state file epoch went down from ${before.epoch} to ${after.epoch}`);
    if (after.knownEpoch < before.knownEpoch) this.fail(`${n}'s state file known epoch went down from ${before.knownEpoch} to ${after.knownEpoch}`);
    if (after.maintenance.gen < before.maintenance.gen) {
      this.fail(`${n}'s state file maintenance generation went down from ${before.maintenance.gen} to ${after.maintenance.gen}`);
    }
  }

  /** `bound` gives, for a window open since `since`, where its clock starts and how long it may last. */
  private window(w: Window, holds: boolean, bound: (since: number) => { from: number; boundMs: number }, what: string): void {
    const now = this.o.world.now;
    if (!holds) {
      w.since = null;
      return;
    }
    w.since ??= now;
    const { from, boundMs } = bound(w.since);
    const lasted = now - from;
    if (lasted > boundMs) {
      this.fail(`${what} for ${Math.round(lasted)} ms (bound ${Math.round(boundMs)} ms)`);
      w.since = now;
    }
  }

  private fail(what: string): void {
    if (this.violations.length < 20) this.violations.push(`${Math.round(this.o.world.now)} ms: ${what}`);
  }
}

/**
 * Acknowledged writes missing from `master`'s Redis, except those that lived only on a
 * Redis when it crashed. The no-loss check also leaves out the writes known product
 * bugs threw away (`RedisModel.excused`, findings.test.ts 5), and writes a Redis
 * acknowledged while its daemon was FAULT (5: a Redis back from a crash answers through
 * the VIP until the release lands, and the takeover does not catch up from it).
 */
export function lostWrites(o: Observed, master: NodeId): Ack[] {
  const kept = new Set(o.redis.servers[master].log);
  return o.client.acked.filter((w) => !kept.has(w.id) && !o.redis.exposed.has(w.id));
}

/** One line per node: role, epoch, VIP, Redis. */
export function describe(o: Observed): string {
  return NODES.map((n) => {
    const s = o.runtime(n)?.current;
    const r = o.redis.servers[n];
    const role = s ? `${s.role} e${s.epoch}${s.redisOp ? ` ${s.redisOp}` : ''}` : 'down';
    const redis = r.alive ? `${r.role}${r.masterOf ? ` of ${r.masterOf}` : ''} @${r.log.length}` : 'dead';
    return `${n}: ${role}, VIP ${o.vip(n).present ? 'yes' : 'no'}, Redis ${redis}`;
  }).join('; ');
}

/**
 * How long after the last fault the pair must have settled (the old simulation's bound,
 * plus a reconcile turn). With the quorum, add what the leader key can take to come free:
 * a dead holder's lease extended by an etcd restart (an election timeout + the TTL +
 * the expiry check), then a retry and two calls.
 */
export function settleMs(t: Timing, quorum = false): number {
  const base = 2 * masterDownMs(1, t.advertIntervalMs) + 4 * t.healthIntervalMs + t.reconcileIntervalMs + 3000;
  if (!quorum) return base;
  const q = t.quorum;
  return base + q.electionTimeoutMs + q.leaseTtlMs + ETCD_EXPIRY_CHECK_MS + 1000 + 2 * q.callTimeoutMs;
}
