/**
 * The decision core's state and the configuration slice it reads.
 *
 * Everything `step()` needs to decide is here, including timer deadlines (absolute
 * milliseconds on the runtime's monotonic clock): time enters only as the `now`
 * argument, so tests drive the core by passing numbers.
 */
import type { AdvertFlags, AdvertRedis, FenceSetting, HistoryLoss, HostPort, KeyHolder, Maintenance, NodeState, QuorumMemory, RedisSnapshot, TimerName } from './types.js';

/** The configuration the core reads; built once from the daemon's configuration (`src/config/derived.ts`). */
export interface CoreConfig {
  readonly nodeName: string;
  readonly nodeAddress: string;
  readonly priority: number;
  readonly preempt: boolean;
  readonly preemptDelayMs: number;
  readonly advertIntervalMs: number;
  readonly fall: number;
  readonly rise: number;
  readonly garpRefreshMs: number;
  /**
   * How long a master whose Redis refuses connections keeps the VIP (refusing connections
   * to it) after it advertised FAULT, at most: until the peer says it holds the VIP, or its
   * own Redis answers again; 0: released at once (`toFault`).
   */
  readonly faultVipHoldMs: number;
  /** Where the local Redis replicates from when this node is backup. */
  readonly peerRedis: HostPort;
  /** A switchover is refused (unless forced) when the replica is further behind than this. */
  readonly switchoverMaxLagBytes: number;
  /** An automatic takeover is held back when this replica lagged the master by more than this (`takeover-gate.ts`). */
  readonly promotionMaxLagBytes: number;
  /** After an automatic takeover, no other automatic takeover in the pair for this long (0 = off). */
  readonly recoveryBlockMs: number;
  readonly quorum: CoreQuorumConfig;
}

/** How the core uses the quorum (`quorum.*`; the timing from `src/core/timing.ts`). */
export interface CoreQuorumConfig {
  /** `none`: the pair decides alone (today's behaviour); `etcd`: only the key's holder may be master. */
  readonly backend: 'none' | 'etcd';
  readonly prefer: 'safety' | 'availability';
  /** An acquire refused or unanswered is asked again after this long. */
  readonly retryMs: number;
  /** A master fences this long before its own lease deadline (`quorumFenceLeadMs`). */
  readonly fenceLeadMs: number;
}

/** No quorum: the pair decides alone (the numbers are unused). */
export const NO_QUORUM: CoreQuorumConfig = { backend: 'none', prefer: 'availability', retryMs: 1_000, fenceLeadMs: 0 };

/** The quorum as this node knows it (backend `etcd`; unused with `none`). */
export interface QuorumView {
  /** This node holds the key in `epoch` until `validUntilAtMs` (its own deadline), unless renewed. */
  readonly held: { readonly epoch: number; readonly validUntilAtMs: number } | null;
  /** The other holder etcd last named (null: none, unknown, or this node). */
  readonly holder: KeyHolder | null;
  /** An `acquire-quorum` in flight: the epoch it asks for. */
  readonly asking: number | null;
  /** The mastership waiting for the key (null: none), and why it is wanted. */
  readonly wanted: WantedMastership | null;
  /** The last answer or loss, for `status` and for auditing changes once. */
  readonly last: { readonly what: string; readonly detail: string; readonly atMs: number } | null;
  /**
   * Since when this master serves without its lease because it still hears its peer
   * (etcd unreachable: Patroni's failsafe mode); null when not.
   */
  readonly failsafeSinceMs: number | null;
  /** What this node last asked of its Redis's fence, and whether it took (null: never asked). */
  readonly fence: { readonly writes: FenceSetting; readonly ok: boolean | null; readonly detail: string } | null;
  /**
   * The local Redis fences itself when it loses its replica (`with-replica` confirmed in
   * force): once the peer promotes, it refuses writes whatever this daemon manages.
   */
  readonly selfFenced: boolean;
  /** What etcd remembered with the key at the last `held` answer (null: no answer yet); see `quorum-memory.ts`. */
  readonly memory: QuorumMemory | null;
  /**
   * This node's `leader-relaxed` mark: being written (`marking`: the fence stays
   * `with-replica` until etcd has it), written (`marked`: the fence may be `accepted`),
   * or being cleared (a replica acknowledges again); `refused`: etcd did not write it (asked
   * again at the next check; `refusals` in a row, audited at the first); `unknown`: a clear
   * etcd did not confirm (retried; a relax is written afresh before the fence eases). The
   * fence is `with-replica` in every state but `marked`. Null: none known.
   */
  readonly relaxMark: { readonly epoch: number; readonly state: 'marking' | 'marked' | 'clearing' | 'refused' | 'unknown'; readonly refusals?: number } | null;
  /** The `leader-last` record this master wrote for its Redis (`ok` null: in flight, false: to retry). */
  readonly served: { readonly epoch: number; readonly replId: string; readonly ok: boolean | null } | null;
  /** Another node's relaxed mark that this node's promotion fences through Redis; cleared in etcd once promoted. */
  readonly fenceMark: { readonly holder: KeyHolder; readonly clearing: boolean } | null;
}

/**
 * A mastership the core wanted and holds back until this node holds the leader key:
 * `takeover` (promote Redis), `as-is` (Redis already master: a new epoch, no promotion)
 * or `adopt` (INIT finds its Redis master: keep its epoch).
 */
export interface WantedMastership {
  readonly kind: 'takeover' | 'as-is' | 'adopt';
  readonly reason: string;
  /** The epoch the mastership will carry, as asked of the quorum. */
  readonly epoch: number;
  readonly sinceMs: number;
  /** `takeover` options (see `TakeOverOptions` in transitions.ts). */
  readonly minEpoch?: number;
  readonly catchUpFrom?: HostPort | null;
  /** The peer was silent (not a planned handover or a FAULT report): wait out a failsafe master's fence. */
  readonly afterSilence: boolean;
  /** The peer reported its Redis FAULT (an automatic takeover too). */
  readonly afterFault?: boolean;
  /**
   * etcd named the peer as the holder since the wish began: its lease was alive then, so
   * it fences before its key can be free (it hears this node taking over, or its lease
   * ends): no failsafe grace to wait.
   */
  readonly sawPeerHold?: boolean;
  /** An operator's forced failover (`forced-failover.ts`): the takeover passes the gates when the key comes. */
  readonly forced?: true;
}

/** The last authenticated advert from the peer, and when it arrived. */
export interface PeerView {
  readonly nodeName: string;
  readonly address: string;
  readonly state: NodeState;
  readonly priority: number;
  readonly epoch: number;
  readonly advertIntervalMs: number;
  readonly flags: AdvertFlags;
  readonly maintenanceGen: number;
  readonly redis: AdvertRedis;
  readonly receivedAtMs: number;
  /** When the peer was last heard as MASTER (null: not since it was first heard). */
  readonly masterHeardAtMs?: number | null;
}

/**
 * Health verdict with rise/fall hysteresis. `healthy` is `null` until the first check;
 * `redis` keeps the last successful snapshot (a failed check has none).
 */
export interface HealthView {
  readonly healthy: boolean | null;
  readonly consecutiveOk: number;
  readonly consecutiveFail: number;
  readonly detail: string;
  readonly redis: RedisSnapshot | null;
  readonly checkedAtMs: number | null;
  /** The last check's connection was refused: no Redis is listening. */
  readonly down?: boolean;
  /** The last check found the local Redis a Redis Cluster node (issue 14): nothing that changes it is sent to it. */
  readonly clusterEnabled?: boolean;
}

/** A Redis role change in flight (the adapter runs one at a time and reports back). */
export type RedisOp = 'promoting' | 'demoting' | 'switching-over' | null;

/**
 * A planned switchover this node takes part in. Phases:
 *  - `forwarded`     (backup) asked the master's daemon to hand over; waits for `handover`
 *  - `switching-over` (master) the Redis switchover runs; the VIP stays until it is done
 *  - `awaiting-peer` (now backup) told the peer to take over; waits for its MASTER advert
 *  - `taking-over`   (now master) promoting after the peer's `handover`
 */
export interface SwitchoverOp {
  readonly requestId: string;
  readonly phase: 'forwarded' | 'switching-over' | 'awaiting-peer' | 'taking-over';
  /** Who waits for the outcome: the local CLI, the peer daemon that forwarded it, or nobody. */
  readonly replyTo: 'local' | 'peer' | null;
  readonly user: string;
  readonly force: boolean;
  readonly timeoutMs: number;
  readonly startedAtMs: number;
  /** `awaiting-peer`: the epoch the peer was told to take. */
  readonly epoch: number;
  /** `awaiting-peer`: how often `handover` was re-sent. */
  readonly resends: number;
  /** Once the Redis handover is done: how, and how long writes were paused. */
  readonly method: 'failover' | 'pause' | null;
  readonly pausedMs: number | null;
}

/**
 * An operator's forced failover in progress (`forced-failover.ts`): the takeover is
 * promoting or waiting for the leader key, and the operator waits for its outcome.
 */
export interface ForcedFailoverOp {
  readonly requestId: string;
  readonly user: string;
  /** What held the automatic takeover back when the operator overrode it (null: nothing did). */
  readonly overrode: string | null;
  readonly startedAtMs: number;
}

export interface CoreState {
  readonly role: NodeState;
  /** When `role` was entered. */
  readonly enteredAtMs: number;
  /** Why `role` was entered: the transition's log line and what tests assert. */
  readonly reason: string;
  /** Promotion epoch of this node's latest mastership; carried in adverts. */
  readonly epoch: number;
  /** Highest epoch seen anywhere; a takeover uses one more than this. */
  readonly knownEpoch: number;
  readonly redisOp: RedisOp;
  /** When the last promotion or demotion finished: health snapshots taken before it are stale. */
  readonly redisChangedAtMs: number;
  readonly health: HealthView;
  readonly peer: PeerView | null;
  readonly timers: Readonly<Partial<Record<TimerName, number>>>;
  /** When this node last answered a rival master's advert by re-announcing (rate limit). */
  readonly lastReannounceAtMs: number | null;
  /** When this node last answered the peer's `advert-request` with an advert (`peer-fault.ts`), or null. */
  readonly solicitedAdvertAtMs: number | null;
  /** Set on shutdown: adverts carry priority 0 and nothing else is started. */
  readonly resigning: boolean;
  /** Pair-wide maintenance flag (persisted): no automatic role change while on. */
  readonly maintenance: Maintenance;
  /** While in maintenance: the automatic action being held back, and since when. */
  readonly frozen: { readonly reason: string; readonly atMs: number } | null;
  readonly switchover: SwitchoverOp | null;
  /**
   * The switchovers this node took part in, most recent last (at most
   * `MAX_REMEMBERED_SWITCHOVERS`, persisted): a request or a `handover` naming one of them
   * is a duplicate or a replay, never acted on again.
   */
  readonly switchoverIds: readonly string[];
  /**
   * The VIP claim of the current role has completed (or the VIP was seen in place): only
   * then do adverts say `holdsVip`, which a switchover's old master waits for.
   */
  readonly vipClaimed: boolean;
  /** The VIP was on this host at start-up; the first health check decides whether it is kept. */
  readonly vipFoundAtStart: boolean;
  /** Claims of the VIP that failed in a row in this role (reset by a completed claim). */
  readonly vipClaimFailures: number;
  /**
   * The state file cannot be written (null: the last write succeeded). While set, the
   * write is retried on the `persist-retry` timer and no takeover starts: a promotion
   * whose epoch is not on disk could be forgotten by a restart and lose an election to
   * older data.
   */
  /**
   * Why this node's adverts cannot be encoded (null: they can). No later advert would
   * fare better, so the node stays FAULT (its peer hears nothing and takes over) until
   * the daemon restarts with that fixed.
   */
  readonly advertFailure: string | null;
  /**
   * An automatic takeover a gate holds back (`takeover-gate.ts`: replication lag,
   * `prefer: safety`), why it was wanted and what holds it; null when none. Cleared when
   * the master is heard again or the role changes.
   */
  readonly takeoverHeld: { readonly reason: string; readonly blocker: string; readonly sinceMs: number } | null;
  /**
   * Until when this node's last automatic takeover blocks the next one in the pair (its
   * adverts say so: `recoveredRecently`); null when no block runs. Cleared by the
   * `recovery-block` timer.
   */
  readonly recoveryBlockUntilMs: number | null;
  /**
   * The local Redis came back behind its history while the peer held more (the data
   * guard, `data-guard.ts`): no automatic takeover here until it resynced from the peer
   * (or the peer no longer holds more). Null when none.
   */
  readonly historyLoss: HistoryLoss | null;
  /** `redis-ha failover --accept-data-loss` running on this node (null: none). */
  readonly forcedFailover: ForcedFailoverOp | null;
  /**
   * The local Redis is kept as it is instead of following the master peer's: it holds
   * writes the peer's Redis lacks (`reconcileReplica`, src/core/history.ts), and since when.
   * Looked at again at every health check and master advert; null when none.
   */
  readonly redisDiverged: { readonly peer: string; readonly detail: string; readonly sinceMs: number } | null;
  readonly quorum: QuorumView;
  readonly persistFailure: {
    readonly detail: string;
    readonly sinceMs: number;
    readonly attempts: number;
    /** The takeover held back meanwhile (why it was wanted), or null. */
    readonly heldTakeover: string | null;
  } | null;
}

/** What a node keeps across restarts (`src/adapters/state-file.ts`). */
export interface PersistedCoreState {
  readonly epoch: number;
  readonly knownEpoch: number;
  readonly maintenance?: Maintenance;
  readonly switchoverIds?: readonly string[];
}

/** The state of a node that has just started, with the epochs it persisted last time. */
export function initialState(now: number, persisted: PersistedCoreState): CoreState {
  return {
    role: 'INIT',
    enteredAtMs: now,
    reason: 'daemon started',
    epoch: persisted.epoch,
    knownEpoch: Math.max(persisted.epoch, persisted.knownEpoch),
    redisOp: null,
    // No role change by this daemon yet: the start-up probe, sent before this state was
    // built, is as trusted as any later check.
    redisChangedAtMs: Number.NEGATIVE_INFINITY,
    health: { healthy: null, consecutiveOk: 0, consecutiveFail: 0, detail: 'not checked yet', redis: null, checkedAtMs: null },
    peer: null,
    timers: {},
    lastReannounceAtMs: null,
    solicitedAdvertAtMs: null,
    resigning: false,
    maintenance: persisted.maintenance ?? { on: false, gen: 0 },
    frozen: null,
    switchover: null,
    switchoverIds: persisted.switchoverIds ?? [],
    vipClaimed: false,
    vipFoundAtStart: false,
    vipClaimFailures: 0,
    advertFailure: null,
    takeoverHeld: null,
    recoveryBlockUntilMs: null,
    historyLoss: null,
    forcedFailover: null,
    redisDiverged: null,
    quorum: {
      held: null, holder: null, asking: null, wanted: null, last: null, failsafeSinceMs: null, fence: null, selfFenced: false,
      memory: null, relaxMark: null, served: null, fenceMark: null,
    },
    persistFailure: null,
  };
}

/**
 * The VIP belongs on this host when it is MASTER and its Redis has been promoted, and,
 * during a planned switchover, on the old master until the new one holds it too
 * (make before break: clients always find a server, the old one answering READONLY).
 */
export function vipDesired(state: CoreState): boolean {
  if (state.resigning) return false;
  if (state.role === 'MASTER') return state.redisOp !== 'promoting';
  return state.role === 'BACKUP' && state.switchover?.phase === 'awaiting-peer';
}

/** The earliest armed deadline, or `null`: the runtime arms one OS timer for it. */
export function nextDeadline(state: CoreState): { timer: TimerName; at: number } | null {
  let best: { timer: TimerName; at: number } | null = null;
  for (const [timer, at] of Object.entries(state.timers) as [TimerName, number | undefined][]) {
    if (at !== undefined && (best === null || at < best.at)) best = { timer, at };
  }
  return best;
}
