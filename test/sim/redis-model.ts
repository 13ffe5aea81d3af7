/**
 * The two Redis servers, with their data: each holds a log of write ids (its offset is
 * the log's length × WRITE_BYTES), a role, whom it replicates, and PSYNC2 replication
 * ids (replid, replid2, second offset) kept as Redis keeps them.
 *
 * Replication is asynchronous: a write reaches the master's replicas REPL_LAG_MS later,
 * and only while the replica's TCP link to its master works (a partition cuts it); a
 * replica whose link comes back, or that is pointed at a new master, resynchronises. A
 * replica whose history diverged from its master's keeps the common prefix and discards
 * the rest: those write ids are recorded in `discarded` (acknowledged writes lost).
 *
 * Write ids are unique and only ever copied as whole prefixes, so two logs that agree at
 * one position agree on everything before it: the common prefix is found by bisection.
 *
 * This file holds the servers' state and their atomic steps; the timed commands the
 * daemon issues (promote with catch-up and fence, FAILOVER, REPLICAOF) are in
 * `redis-adapter.ts`.
 */
import type { FenceSetting, HostPort, RedisSnapshot } from '../../src/core/types.js';
import type { Network } from './net.js';
import { NODES, OTHER, type NodeId, type World } from './world.js';

export const ADDRESS: Readonly<Record<NodeId, string>> = { a: '10.77.0.11', b: '10.77.0.12' };
export const REDIS_PORT = 6379;
export const WRITE_BYTES = 100;
/** A write reaches a connected replica 1..REPL_LAG_MS after the master acknowledged it. */
export const REPL_LAG_MS = 20;
/** A replica that (re)connects is in sync 5..RESYNC_MS later. */
export const RESYNC_MS = 30;
/**
 * A replica whose link broke (its master crashed) reconnects at its next replication
 * cron, once a second in Redis: 1..RECONNECT_MS after its master is back (the lab's
 * full sync then starts at once: `repl-diskless-sync-delay 0`).
 */
export const RECONNECT_MS = 1000;

/**
 * Known losses (findings.test.ts; 1, 7, 8, 9 and 10 were fixed: a stale handover is
 * ignored; a catch-up is neither outrun nor made from an older history, and no Redis
 * follows one that lacks its writes): 5 a takeover after FAULT does not catch up.
 * With the quorum, one more kind (`unreplicatedAtPromotion`): issue 11 item 6, not built.
 * `data guard window`: what a Redis restarted without its data acknowledged before the
 * data guard made it a replica (src/core/data-guard.ts), which its resync discards.
 */
export type KnownLoss = 'finding 5' | 'issue 11 item 6' | 'data guard window' | QuorumFinding;

/**
 * Findings of the takeover's catch-up that lose acknowledged writes with the quorum too,
 * with no split brain (the old master fenced before the promotion): 5, a takeover after a
 * FAULT report does not catch up (what the FAULT node acknowledged and never replicated,
 * a partition before the FAULT, is lost). Counted under its name, not failed.
 */
const CATCH_UP_FINDINGS: ReadonlySet<KnownLoss> = new Set<KnownLoss>(['finding 5']);

/** Open findings of the quorum (quorum-findings.test.ts) that lose acknowledged writes. */
export type QuorumFinding = 'finding Q6' | 'finding Q7' | 'finding Q10';

export interface RedisServer {
  readonly node: NodeId;
  alive: boolean;
  role: 'master' | 'replica';
  masterOf: NodeId | null;
  /** `run_id`: a new one at every (re)start. */
  runId: string;
  /**
   * A replica whose master restarted is disconnected until its next replication cron
   * (`RECONNECT_MS`): no data flows before this time. 0: connected as usual.
   */
  reconnectAt: number;
  replId: string;
  replId2: string;
  secondOffset: number;
  log: number[];
  /** CLIENT PAUSE WRITE (a catch-up or FAILOVER) until this time. */
  pausedUntil: number;
  /**
   * The daemon's fence (`min-replicas-to-write`): `refused` refuses every write,
   * `with-replica` writes only while a live replica is attached over a working link.
   */
  fence: FenceSetting;
  /**
   * A master by its own configuration, not by a daemon's command: at the start (A's), or
   * back from a restart (no `replicaof` in its configuration, the fence not persisted),
   * and no daemon has set its role or fence since. With the quorum such a Redis is
   * unfenced although no node holds the key for it: issue 11 item 5 (not built) and
   * finding Q6 (quorum-findings.test.ts).
   */
  selfMaster: boolean;
}

export function nodeOf(target: HostPort): NodeId | null {
  return NODES.find((n) => ADDRESS[n] === target.host && target.port === REDIS_PORT) ?? null;
}

export class RedisModel {
  readonly servers: Record<NodeId, RedisServer>;
  /** Write ids thrown away by a resync of a diverged history. */
  readonly discarded: number[] = [];
  /** Write ids that existed only on a server when it crashed (asynchronous replication's loss window). */
  readonly exposed = new Set<number>();
  /**
   * Write ids a known product bug threw away, with the finding that explains it
   * (findings.test.ts): the no-loss check leaves them out, so it keeps checking
   * everything else in the same history, and the coverage totals count them.
   */
  readonly excused = new Map<number, KnownLoss>();
  /**
   * With the quorum: a known bug's loss is excused only when one of the two servers is a
   * master by its own configuration (`selfMaster`: a restarted Redis, issue 11 item 5, not
   * built yet, or finding Q6); any other loss is a split brain, which the quorum must
   * prevent.
   */
  strictExcuses = false;
  private readonly pendingExcuse: Record<NodeId, { why: KnownLoss; untilMs: number; always: boolean } | null> = { a: null, b: null };
  private replIds = 0;
  private runs = 1;
  /** Who hears of a closed health connection, per server (the daemons' adapters). */
  private readonly lostListeners: Record<NodeId, (() => void)[]> = { a: [], b: [] };

  constructor(private readonly world: World, private readonly net: Network) {
    const replId = this.freshReplId();
    const base = { alive: true, replId, replId2: '', secondOffset: -1, log: [], pausedUntil: 0, fence: 'accepted' as FenceSetting, selfMaster: false, reconnectAt: 0 };
    this.servers = {
      a: { ...base, node: 'a', role: 'master', masterOf: null, log: [], selfMaster: true, runId: 'run-a-1' },
      b: { ...base, node: 'b', role: 'replica', masterOf: 'a', log: [], runId: 'run-b-1' },
    };
  }

  acceptsWrites(node: NodeId): boolean {
    const s = this.servers[node];
    if (!s.alive || s.role !== 'master' || s.pausedUntil > this.world.now || s.fence === 'refused') return false;
    return s.fence === 'accepted' || NODES.some((r) => {
      const replica = this.servers[r];
      return replica.alive && replica.masterOf === node && this.net.tcpUp(node, r);
    });
  }

  /** A client's write on `node`'s server: acknowledged (true) if it is a writable master. */
  write(node: NodeId, id: number): boolean {
    if (!this.acceptsWrites(node)) return false;
    this.servers[node].log.push(id);
    for (const r of NODES) {
      if (this.servers[r].masterOf === node) this.world.at(this.world.now + this.world.int(1, REPL_LAG_MS), () => this.sync(r));
    }
    return true;
  }

  /** CONFIG SET min-replicas-to-write (see `Server.fence`); false when the server is down. */
  setFence(node: NodeId, fence: FenceSetting): boolean {
    const s = this.servers[node];
    if (!s.alive) return false;
    s.fence = fence;
    s.selfMaster = false;
    return true;
  }

  /** `listener` runs when `node`'s server dies (every connection to it closes). */
  onLost(node: NodeId, listener: () => void): void {
    this.lostListeners[node].push(listener);
  }

  crash(node: NodeId): void {
    const s = this.servers[node];
    if (!s.alive) return;
    for (const listener of this.lostListeners[node]) this.world.at(this.world.now + this.world.int(0, 1), listener);
    const other = this.servers[OTHER[node]];
    for (const id of s.log.slice(commonPrefix(s.log, other.log))) this.exposed.add(id);
    s.alive = false;
  }

  /** Redis starts again as a master (no `replicaof` in its configuration), with its data (AOF) or empty. */
  restart(node: NodeId, keepData: boolean): void {
    const s = this.servers[node];
    Object.assign(s, {
      alive: true, role: 'master', masterOf: null, replId: this.freshReplId(), replId2: '', secondOffset: -1, pausedUntil: 0, fence: 'accepted',
      selfMaster: true, log: keepData ? s.log : [], runId: `run-${node}-${++this.runs}`,
    });
    // Its replica reconnects at its own next cron tick, not at once.
    for (const r of NODES) {
      const replica = this.servers[r];
      if (replica.masterOf !== node) continue;
      replica.reconnectAt = this.world.now + this.world.int(1, RECONNECT_MS);
      this.world.at(replica.reconnectAt, () => this.sync(r));
    }
  }

  /** `REPLICAOF host port`: the data follows once the link is up. */
  replicaOf(node: NodeId, master: NodeId): void {
    const pending = this.pendingExcuse[node];
    if (pending !== null && this.world.now <= pending.untilMs) {
      if (pending.always) this.mark(node, master, pending.why);
      else this.excuse(node, master, pending.why);
    }
    this.pendingExcuse[node] = null;
    const s = this.servers[node];
    s.role = 'replica';
    s.masterOf = master;
    s.selfMaster = false;
    s.reconnectAt = 0;
    this.kick(node);
  }

  /** `REPLICAOF NO ONE`: a new history that continues the old one (replid2). */
  promote(node: NodeId): void {
    const s = this.servers[node];
    s.selfMaster = false;
    if (s.role === 'master') return;
    Object.assign(s, {
      role: 'master', masterOf: null, replId2: s.replId, secondOffset: s.log.length * WRITE_BYTES + 1, replId: this.freshReplId(),
    });
    this.kickAll();
  }

  /** What only `from` holds, compared with `other`, is about to be discarded for a known reason. */
  excuse(from: NodeId, other: NodeId, why: KnownLoss): void {
    if (this.strictExcuses && !CATCH_UP_FINDINGS.has(why) && !this.servers[from].selfMaster && !this.servers[other].selfMaster) return;
    this.mark(from, other, why);
  }

  private mark(from: NodeId, other: NodeId, why: KnownLoss): void {
    const s = this.servers[from];
    if (!s.alive) return;
    for (const id of s.log.slice(commonPrefix(s.log, this.servers[other].log))) if (!this.excused.has(id)) this.excused.set(id, why);
  }

  /**
   * With the quorum: an open finding of quorum-findings.test.ts (named by the invariant
   * checker when it excused both Redis accepting writes) makes `from`'s Redis lose what it
   * holds beyond `other`'s, and what it acknowledges until it follows another server
   * (within `withinMs`).
   */
  quorumFinding(from: NodeId, other: NodeId, why: QuorumFinding, withinMs: number): void {
    this.mark(from, other, why);
    this.pendingExcuse[from] = { why, untilMs: this.world.now + withinMs, always: true };
  }

  /**
   * With the quorum: `promoted` became master without catching up from `peer`, which it
   * could not reach; what `peer` holds beyond it (writes its replication link never
   * brought over: the master kept acknowledging after the link went down, until it
   * fenced) is lost. Not a split brain (check 4 of invariants.ts rules that out): the
   * asynchronous replication window, which issue 11 item 6 closes (a backup whose link
   * was down longer than a bound is not promoted automatically) and item 2's
   * `min-replicas-max-lag` narrows; neither is built yet.
   */
  unreplicatedAtPromotion(peer: NodeId, promoted: NodeId): void {
    if (this.strictExcuses) this.mark(peer, promoted, 'issue 11 item 6');
  }

  /**
   * `peer` was left behind by a promotion without catch-up: what it holds now is excused,
   * and so is what it acknowledges until it is made to follow another server (within
   * `withinMs`), when its resync will discard it.
   */
  leftBehind(peer: NodeId, promoted: NodeId, why: KnownLoss, withinMs: number): void {
    const kept = CATCH_UP_FINDINGS.has(why) || this.servers[peer].selfMaster || this.servers[promoted].selfMaster;
    if (this.strictExcuses && !kept) return;
    this.mark(peer, promoted, why);
    this.pendingExcuse[peer] = { why, untilMs: this.world.now + withinMs, always: true };
  }

  pause(node: NodeId, untilMs: number): void {
    this.servers[node].pausedUntil = untilMs;
  }

  unpause(node: NodeId): void {
    this.servers[node].pausedUntil = 0;
  }

  /** The replica's link to its master works (both alive, the master a master, TCP up). */
  linked(node: NodeId): boolean {
    const s = this.servers[node];
    if (!s.alive || s.role !== 'replica' || s.masterOf === null || s.masterOf === node || this.world.now < s.reconnectAt) return false;
    const m = this.servers[s.masterOf];
    return m.alive && m.role === 'master' && this.net.tcpUp(node, m.node);
  }

  /** Brings a linked replica up to its master's log, discarding a diverged tail. */
  sync(node: NodeId): void {
    if (!this.linked(node)) return;
    const s = this.servers[node];
    const m = this.servers[s.masterOf!];
    const common = commonPrefix(s.log, m.log);
    if (common < s.log.length) {
      this.discarded.push(...s.log.slice(common));
      s.log.length = common;
    }
    for (let i = common; i < m.log.length; i++) s.log.push(m.log[i]!);
    s.replId = m.replId;
    s.replId2 = m.replId2;
    s.secondOffset = m.secondOffset;
  }

  /** Something changed the topology (a role, a crash, a partition): replicas resynchronise shortly. */
  kickAll(): void {
    for (const n of NODES) this.kick(n);
  }

  snapshot(node: NodeId): RedisSnapshot {
    const s = this.servers[node];
    const master = s.masterOf;
    const linkUp = this.linked(node) && commonPrefix(s.log, this.servers[master!].log) === s.log.length;
    return {
      role: s.role, replId: s.replId, replId2: s.replId2, offset: s.log.length * WRITE_BYTES, secondOffset: s.secondOffset,
      masterHost: master === null ? null : ADDRESS[master], masterPort: master === null ? null : REDIS_PORT,
      linkUp, syncInProgress: false,
      connectedReplicas: NODES.filter((r) => r !== node && this.servers[r].masterOf === node && this.linked(r)).length,
      runId: s.runId,
    };
  }

  private kick(node: NodeId): void {
    if (this.servers[node].role === 'replica') this.world.at(this.world.now + this.world.int(5, RESYNC_MS), () => this.sync(node));
  }

  private freshReplId(): string {
    return (++this.replIds).toString(16).padStart(40, '0');
  }
}

/** Length of the common prefix of two logs (bisection: see the file header). */
export function commonPrefix(a: readonly number[], b: readonly number[]): number {
  let lo = 0;
  let hi = Math.min(a.length, b.length);
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (a[mid - 1] === b[mid - 1]) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}
