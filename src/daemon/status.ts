/**
 * `redis-ha status`: one snapshot of what this daemon knows, in a stable JSON shape,
 * and the verdict a monitoring check needs (ok / warning / critical, with reasons).
 *
 * Built from the runtime's current core state plus facts the core does not hold (the
 * VIP as the kernel has it, advert counters, configured timing). Reading it changes
 * nothing, so the socket handler may build it without going through the loop.
 * Times the operator reads are wall-clock ISO strings; ages are milliseconds.
 */
import { epochExhausted } from '../core/epoch.js';
import { FORCED_FAILOVER_HINT } from '../core/forced-failover.js';
import { memoryDemand } from '../core/quorum-memory.js';
import { vipDesired, type CoreQuorumConfig, type CoreState } from '../core/state.js';
import { masterDownMs } from '../core/timing.js';
import type { TakeoverEstimate } from '../core/timing.js';
import type { QuorumMemory } from '../core/types.js';

/** Status version: bumped when a field changes meaning or disappears (adding fields does not). */
export const STATUS_VERSION = 1;

/** Monitoring verdict, as Nagios plugins use exit codes: 0 ok, 1 warning, 2 critical (3 = unknown, CLI only). */
export type Verdict = 'ok' | 'warning' | 'critical';

export const VERDICT_EXIT: Readonly<Record<Verdict | 'unknown', number>> = { ok: 0, warning: 1, critical: 2, unknown: 3 };

/** Everything `status` reports; `--json` prints exactly this. */
export interface StatusReport {
  readonly version: number;
  readonly verdict: Verdict;
  readonly problems: readonly string[];
  readonly node: {
    readonly name: string;
    readonly address: string;
    readonly state: string;
    readonly priority: { readonly configured: number; readonly effective: number };
    readonly epoch: number;
    readonly holdsVip: boolean | null;
    readonly vip: string;
  };
  readonly lastTransition: { readonly state: string; readonly reason: string; readonly at: string; readonly agoMs: number };
  readonly maintenance: { readonly on: boolean; readonly gen: number; readonly heldBack: string | null; readonly heldSince: string | null };
  readonly switchover: { readonly requestId: string; readonly phase: string; readonly user: string; readonly runningMs: number } | null;
  /** `redis-ha failover --accept-data-loss` running here: who asked, what it overrode. */
  readonly forcedFailover: { readonly requestId: string; readonly user: string; readonly overrode: string | null; readonly runningMs: number } | null;
  readonly redis: {
    readonly healthy: boolean | null;
    readonly detail: string;
    readonly checkedAgoMs: number | null;
    readonly role: string;
    readonly replId: string | null;
    readonly replId2: string | null;
    readonly offset: number | null;
    readonly master: string | null;
    readonly linkUp: boolean | null;
    readonly connectedReplicas: number | null;
    /** The last health check found the local Redis a Redis Cluster node (refused: this node is FAULT, critical). */
    readonly clusterEnabled: boolean;
  };
  readonly peer: {
    readonly name: string;
    readonly address: string;
    readonly state: string;
    readonly priority: number;
    readonly epoch: number;
    readonly lastAdvertAgoMs: number;
    readonly live: boolean;
    readonly fault: boolean;
    readonly maintenance: boolean;
    readonly redis: { readonly role: string; readonly replId: string; readonly offset: number };
  } | null;
  /** Bytes the replica is behind the master, from this node's and the peer's latest offsets. */
  readonly replication: { readonly lagBytes: number | null; readonly maxLagBytes: number };
  readonly takeover: { readonly redisFailureMs: number; readonly redisCrashMs: number; readonly hostLossMs: number; readonly resignMs: number };
  readonly adverts: Readonly<Record<string, unknown>>;
  /** The quorum in force and what this node knows of the leader key (`backend: none`: only the mode). */
  readonly quorum: QuorumStatus;
  /** For a node that is not MASTER: why not, in one sentence; null on the master. */
  readonly whyNotMaster: string | null;
}

export interface QuorumStatus {
  readonly backend: 'none' | 'etcd';
  readonly prefer: 'safety' | 'availability';
  /** This node holds the leader key now. */
  readonly held: boolean;
  readonly epoch: number | null;
  /** Until this node's own lease deadline. */
  readonly validForMs: number | null;
  /** Another holder as etcd last named it. */
  readonly holder: { readonly node: string; readonly epoch: number } | null;
  /** Serving without a lease because the peer is heard (etcd unreachable), for this long. */
  readonly failsafeForMs: number | null;
  /** The mastership waiting for the key. */
  readonly waiting: { readonly kind: string; readonly reason: string; readonly forMs: number } | null;
  readonly lastAnswer: { readonly what: string; readonly detail: string; readonly agoMs: number } | null;
  /** The local Redis's write fence as last set by this daemon (null: never touched). */
  readonly fence: { readonly writes: string; readonly ok: boolean | null; readonly detail: string } | null;
  /** What etcd remembered with the key at the last grant (src/core/quorum-memory.ts); null before one. */
  readonly memory: QuorumMemory | null;
  /** This node's relaxed mark in etcd (its fence may be `accepted` only while `marked`). */
  readonly relaxMark: { readonly epoch: number; readonly state: string } | null;
  /** Why this node's next mastership must go through the old master's Redis (caught up with and fenced), or null. */
  readonly fenceRequired: string | null;
}

/** What `buildStatus` needs besides the core state. */
export interface StatusInputs {
  readonly state: CoreState;
  /** Monotonic now (the runtime clock) and the wall clock at the same instant. */
  readonly now: number;
  readonly wallNow: number;
  readonly node: { readonly name: string; readonly address: string; readonly priority: number };
  readonly vip: string;
  readonly holdsVip: boolean | null;
  readonly estimate: TakeoverEstimate;
  readonly maxLagBytes: number;
  readonly adverts: Readonly<Record<string, unknown>>;
  readonly quorum: Pick<CoreQuorumConfig, 'backend' | 'prefer'>;
}

export function buildStatus(i: StatusInputs): StatusReport {
  const s = i.state;
  const iso = (mono: number): string => new Date(i.wallNow - (i.now - mono)).toISOString();
  const r = s.health.redis;
  const p = s.peer;
  const peerLive = p !== null && i.now - p.receivedAtMs <= masterDownMs(i.node.priority, p.advertIntervalMs);
  const lagBytes = replicationLagBytes(s);
  const base = {
    version: STATUS_VERSION,
    node: {
      name: i.node.name,
      address: i.node.address,
      state: s.role,
      priority: { configured: i.node.priority, effective: s.resigning ? 0 : i.node.priority },
      epoch: s.epoch,
      holdsVip: i.holdsVip,
      vip: i.vip,
    },
    lastTransition: { state: s.role, reason: s.reason, at: iso(s.enteredAtMs), agoMs: Math.round(i.now - s.enteredAtMs) },
    maintenance: {
      on: s.maintenance.on,
      gen: s.maintenance.gen,
      heldBack: s.frozen?.reason ?? null,
      heldSince: s.frozen ? iso(s.frozen.atMs) : null,
    },
    switchover: s.switchover
      ? { requestId: s.switchover.requestId, phase: s.switchover.phase, user: s.switchover.user, runningMs: Math.round(i.now - s.switchover.startedAtMs) }
      : null,
    forcedFailover: s.forcedFailover
      ? { requestId: s.forcedFailover.requestId, user: s.forcedFailover.user, overrode: s.forcedFailover.overrode, runningMs: Math.round(i.now - s.forcedFailover.startedAtMs) }
      : null,
    redis: {
      healthy: s.health.healthy,
      detail: s.health.detail,
      checkedAgoMs: s.health.checkedAtMs === null ? null : Math.round(i.now - s.health.checkedAtMs),
      role: r?.role ?? 'unknown',
      replId: r?.replId ?? null,
      replId2: r?.replId2 ?? null,
      offset: r?.offset ?? null,
      master: r?.role === 'replica' ? `${r.masterHost ?? '?'}:${r.masterPort ?? '?'}` : null,
      linkUp: r?.role === 'replica' ? r.linkUp : null,
      connectedReplicas: r?.role === 'master' ? r.connectedReplicas : null,
      clusterEnabled: s.health.clusterEnabled === true,
    },
    peer: p
      ? {
          name: p.nodeName,
          address: p.address,
          state: p.state,
          priority: p.priority,
          epoch: p.epoch,
          lastAdvertAgoMs: Math.round(i.now - p.receivedAtMs),
          live: peerLive,
          fault: p.flags.fault,
          maintenance: p.flags.maintenance,
          redis: { role: p.redis.role, replId: p.redis.replId, offset: p.redis.offset },
        }
      : null,
    replication: { lagBytes, maxLagBytes: i.maxLagBytes },
    takeover: {
      redisFailureMs: Math.round(i.estimate.redisFailureMs),
      redisCrashMs: Math.round(i.estimate.redisCrashMs),
      hostLossMs: Math.round(i.estimate.hostLossMs),
      resignMs: Math.round(i.estimate.resignMs),
    },
    adverts: i.adverts,
    quorum: quorumStatus(s, i),
    whyNotMaster: whyNotMaster(s),
  };
  const { verdict, problems } = judge(s, { live: peerLive, silentMs: p ? Math.round(i.now - p.receivedAtMs) : null }, lagBytes, i);
  return { ...base, verdict, problems };
}

function quorumStatus(s: CoreState, i: Pick<StatusInputs, 'now' | 'quorum' | 'node'>): QuorumStatus {
  const q = s.quorum;
  const held = q.held !== null && i.now < q.held.validUntilAtMs;
  return {
    backend: i.quorum.backend,
    prefer: i.quorum.prefer,
    held,
    epoch: q.held?.epoch ?? null,
    validForMs: q.held === null ? null : Math.round(q.held.validUntilAtMs - i.now),
    holder: q.holder,
    failsafeForMs: q.failsafeSinceMs === null ? null : Math.round(i.now - q.failsafeSinceMs),
    waiting: q.wanted === null ? null : { kind: q.wanted.kind, reason: q.wanted.reason, forMs: Math.round(i.now - q.wanted.sinceMs) },
    lastAnswer: q.last === null ? null : { what: q.last.what, detail: q.last.detail, agoMs: Math.round(i.now - q.last.atMs) },
    fence: q.fence,
    memory: q.memory,
    relaxMark: q.relaxMark,
    fenceRequired: s.role === 'MASTER' ? null : memoryDemand(s, { nodeName: i.node.name, quorum: i.quorum }),
  };
}

/** Why this node is not the master, or null when it is. */
export function whyNotMaster(s: CoreState): string | null {
  if (s.role === 'MASTER') return null;
  const w = s.quorum.wanted;
  if (w !== null) {
    const last = s.quorum.last;
    const answer = last === null ? 'no answer from etcd yet'
      : last.what === 'held-by-other' && s.quorum.holder !== null ? `the leader key is held by ${s.quorum.holder.node} (epoch ${s.quorum.holder.epoch})`
        : `etcd: ${last.what} (${last.detail})`;
    return `waiting for the leader key to ${w.kind === 'takeover' ? 'take over' : 'become master'} (${w.reason}): ${answer}`;
  }
  if (s.persistFailure !== null) return `the state file cannot be written: ${s.persistFailure.detail}`;
  if (s.takeoverHeld !== null) return `${s.takeoverHeld.blocker}; ${FORCED_FAILOVER_HINT}`;
  return s.reason;
}

/**
 * Bytes the replica is behind: the master's offset minus the replica's, from this node's
 * last health check and the peer's last advert, when one side is each (else `null`).
 */
export function replicationLagBytes(s: CoreState): number | null {
  const r = s.health.redis;
  const p = s.peer;
  if (!r || !p) return null;
  if (r.role === 'master' && p.redis.role === 'replica') return Math.max(0, r.offset - p.redis.offset);
  if (r.role === 'replica' && p.redis.role === 'master') return Math.max(0, p.redis.offset - r.offset);
  return null;
}

/** The monitoring verdict: critical when clients may not reach a writable master, warning when protection is reduced. */
export function judge(
  s: CoreState,
  peerSeen: { live: boolean; silentMs: number | null },
  lagBytes: number | null,
  i: Pick<StatusInputs, 'holdsVip' | 'maxLagBytes'>,
): { verdict: Verdict; problems: string[] } {
  const critical: string[] = [];
  const warning: string[] = [];
  if (s.role === 'FAULT') critical.push(`this node is FAULT: ${s.advertFailure ?? s.health.detail}`);
  if (epochExhausted(s.epoch, s.knownEpoch)) {
    critical.push(`the promotion epoch ${s.knownEpoch} is at its ceiling: no takeover is possible; stop both daemons and move both state files away`);
  }
  if (epochExhausted(s.maintenance.gen)) critical.push(`the maintenance generation ${s.maintenance.gen} is at its ceiling: maintenance cannot be changed`);
  if (s.persistFailure !== null) {
    const held = s.persistFailure.heldTakeover === null ? '' : `; takeover held back (${s.persistFailure.heldTakeover})`;
    critical.push(`the state file cannot be written (${s.persistFailure.detail}, ${s.persistFailure.attempts} attempts): no takeover until it is${held}`);
  }
  if (s.role === 'INIT') warning.push('this node is starting (INIT)');
  if (s.role === 'MASTER' && s.health.healthy === false) critical.push(`this node is MASTER but its Redis fails: ${s.health.detail}`);
  const p = s.peer;
  if (!peerSeen.live) {
    critical.push(p ? `no advert from peer ${p.nodeName} for ${peerSeen.silentMs} ms: failover is not possible` : 'no advert from the peer yet: failover is not possible');
  } else if (p) {
    if (p.flags.fault || p.state === 'FAULT') critical.push(`peer ${p.nodeName} is FAULT: failover is not possible`);
    else if (p.flags.cannotTakeOver === true) critical.push(`peer ${p.nodeName} cannot take the master role (its state file or epoch, see its status): failover is not possible`);
    if (s.role === 'MASTER' && p.state === 'MASTER') critical.push(`both nodes are MASTER`);
    if (s.role !== 'MASTER' && p.state !== 'MASTER' && s.switchover === null) critical.push('no node is MASTER');
  }
  if (i.holdsVip !== null) {
    const wantVip = vipDesired(s);
    if (wantVip && !i.holdsVip) critical.push('this node is MASTER but does not hold the VIP');
    if (!wantVip && i.holdsVip && s.role !== 'INIT') critical.push(`this node holds the VIP while ${s.role}`);
  }
  if (s.maintenance.on) warning.push(`maintenance is on: automatic failover is frozen${s.frozen ? ` (held back: ${s.frozen.reason})` : ''}`);
  const r = s.health.redis;
  if (s.role === 'BACKUP' && r?.role === 'replica' && !r.linkUp) warning.push('the local replica has no replication link to the master');
  // The pair has no replica until the histories allow it, or the operator acts.
  if (s.role !== 'MASTER' && s.redisDiverged !== null) critical.push(`local Redis does not follow ${s.redisDiverged.peer}: ${s.redisDiverged.detail}`);
  if (lagBytes !== null && lagBytes > i.maxLagBytes) warning.push(`replication lag ${lagBytes} bytes exceeds ${i.maxLagBytes}`);
  if (s.switchover) warning.push(`switchover ${s.switchover.requestId} in progress (${s.switchover.phase})`);
  if (s.forcedFailover) warning.push(`forced failover ${s.forcedFailover.requestId} by ${s.forcedFailover.user} in progress`);
  const q = s.quorum;
  if (q.failsafeSinceMs !== null) {
    warning.push('serving without the leader key (etcd unreachable, peer heard: failsafe): losing the peer now fences this master');
  }
  if (q.fence !== null && q.fence.ok === false) critical.push(`the local Redis's write fence could not be set (${q.fence.writes}): ${q.fence.detail}`);
  if (q.wanted !== null && q.last !== null && q.last.what === 'unreachable') warning.push(`etcd unreachable (${q.last.detail}): no promotion possible`);
  const verdict: Verdict = critical.length > 0 ? 'critical' : warning.length > 0 ? 'warning' : 'ok';
  return { verdict, problems: [...critical, ...warning] };
}
