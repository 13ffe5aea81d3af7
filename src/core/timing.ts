/**
 * All timing arithmetic in one place (keepalived keeps it in vrrp_scheduler.c; we keep
 * it here): master-down interval and skew from RFC 5798 §6.1, local fault detection,
 * worst-case takeover estimates, and the invariants checked at start-up.
 *
 * Pure functions of the configuration: no clock, no I/O.
 */

/** RFC 5798 §6.1: priority 0 means "the master is leaving, take over now". */
export const PRIORITY_RESIGN = 0;
/** RFC 5798 §5.2.4: 255 is reserved for the address owner; configured priorities stop at 254. */
export const PRIORITY_MAX_CONFIGURED = 254;
/** RFC 5798 §6.1: Master_Down_Interval counts this many advert intervals before the skew. */
export const MASTER_DOWN_ADVERTS = 3;

/** Longest switchover timeout an operator may ask for (ten minutes, as `switchover.timeout_ms`). */
export const MAX_SWITCHOVER_TIMEOUT_MS = 600_000;

/**
 * Linux's default neighbour `locktime` (1 s) plus a margin: a gratuitous ARP for an entry
 * updated less than locktime ago is ignored, so a new master re-announces this long after
 * the old one let go (see `reannounceAfterLetGo` in step.ts).
 */
export const ARP_LOCKTIME_MARGIN_MS = 1_200;

/** A failed state-file write is retried after this long, doubling per failure up to `STATE_RETRY_MAX_MS`. */
export const STATE_RETRY_MIN_MS = 500;
export const STATE_RETRY_MAX_MS = 10_000;

/** How long after its `attempts`-th failure in a row a state-file write is tried again. */
export function stateRetryMs(attempts: number): number {
  return Math.min(STATE_RETRY_MIN_MS * 2 ** Math.max(0, Math.min(attempts - 1, 16)), STATE_RETRY_MAX_MS);
}

/** A backup that forwarded a switchover waits this long beyond its timeout for the master's answer. */
export const SWITCHOVER_FORWARD_MARGIN_MS = 5_000;

/** The control socket waits this long beyond a switchover's timeout for the loop's answer (peer confirmation included). */
export const SWITCHOVER_REPLY_MARGIN_MS = 60_000;

/** The control socket waits this long for the loop to answer a maintenance request. */
export const MAINTENANCE_REPLY_MS = 10_000;

/**
 * RFC 5798 §6.1 Skew_Time = ((256 − Priority) × Master_Adver_Interval) / 256.
 * A higher priority backup waits less, so it wins the race to take over.
 */
export function skewMs(priority: number, advertIntervalMs: number): number {
  return ((256 - priority) * advertIntervalMs) / 256;
}

/** RFC 5798 §6.1 Master_Down_Interval = 3 × Master_Adver_Interval + Skew_Time. */
export function masterDownMs(priority: number, advertIntervalMs: number): number {
  return MASTER_DOWN_ADVERTS * advertIntervalMs + skewMs(priority, advertIntervalMs);
}

/** The health-check settings timing depends on. */
export interface HealthTiming {
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly fall: number;
}

/**
 * Worst case from a local Redis failure to the verdict "unhealthy": the failure starts
 * just after a good check; each of the `fall` failing checks may run to its timeout.
 * A refused connection fails at once, so a crash is usually detected faster than this.
 */
export function faultDetectMs(health: HealthTiming): number {
  return health.fall * Math.max(health.intervalMs, health.timeoutMs) + health.timeoutMs;
}

/** Everything the takeover estimates depend on. */
export interface TakeoverTiming {
  readonly priority: number;
  readonly advertIntervalMs: number;
  readonly health: HealthTiming;
  readonly promotion: {
    readonly peerTimeoutMs: number;
    readonly preDelayMs: number;
    readonly syncDelayMs: number;
  };
}

/** Worst-case times from a fault on the master to this node (as backup) holding the VIP. */
export interface TakeoverEstimate {
  /** The master's Redis crashes or hangs: its daemon detects it and advertises FAULT. */
  readonly redisFailureMs: number;
  /** The master's host or link dies: silence for one master-down interval. */
  readonly hostLossMs: number;
  /** The master's daemon stops cleanly and sends a priority-0 advert. */
  readonly resignMs: number;
}

/**
 * Estimates assume the peer uses the same advert interval and health settings. Fixed
 * promotion costs (pre/sync delays, peer connect timeout) are added to each path;
 * Redis command round trips (milliseconds) are not.
 */
export function takeoverEstimate(t: TakeoverTiming): TakeoverEstimate {
  const promotionMs = t.promotion.preDelayMs + t.promotion.syncDelayMs + t.promotion.peerTimeoutMs;
  return {
    redisFailureMs: faultDetectMs(t.health) + promotionMs,
    hostLossMs: masterDownMs(t.priority, t.advertIntervalMs) + promotionMs,
    resignMs: skewMs(t.priority, t.advertIntervalMs) + promotionMs,
  };
}

/** Problems found by {@link checkTimingInvariants}: errors stop start-up, warnings are logged. */
export interface TimingReport {
  readonly errors: readonly string[];
  readonly warnings: readonly string[];
  readonly estimate: TakeoverEstimate;
}

/**
 * Start-up invariants. The peer's shortest possible master-down interval (priority 254)
 * is about 3 × advert interval; a local Redis failure must be detected, and the fault
 * advertised, before that, or the peer's silence-based takeover races our own fault
 * handling and the failover path depends on which fires first.
 */
export function checkTimingInvariants(t: TakeoverTiming): TimingReport {
  const errors: string[] = [];
  const warnings: string[] = [];
  const detect = faultDetectMs(t.health);
  const peerMasterDown = masterDownMs(PRIORITY_MAX_CONFIGURED, t.advertIntervalMs);
  if (detect >= peerMasterDown) {
    warnings.push(
      `local fault detection (${fmt(detect)} = health.fall × max(interval, timeout) + timeout) is not faster than ` +
        `the peer's master-down interval (${fmt(peerMasterDown)} at advert.interval_ms ${t.advertIntervalMs}); ` +
        'lower health.interval_ms / health.timeout_ms / health.fall or raise advert.interval_ms',
    );
  }
  if (t.health.timeoutMs > t.health.intervalMs * t.health.fall) {
    errors.push(
      `health.timeout_ms (${t.health.timeoutMs}) is longer than health.fall × health.interval_ms ` +
        `(${t.health.intervalMs * t.health.fall}): a hung Redis would be detected later than configured`,
    );
  }
  if (t.promotion.preDelayMs > 0 || t.promotion.syncDelayMs > 0) {
    warnings.push(
      'promotion.pre_delay_ms / sync_delay_ms add blind waits to every takeover ' +
        `(${fmt(t.promotion.preDelayMs + t.promotion.syncDelayMs)}); wait_for_sync already waits for the data`,
    );
  }
  if (t.advertIntervalMs < 100) {
    warnings.push(
      `advert.interval_ms ${t.advertIntervalMs} is below 100 ms: a loaded host or a GC pause of ` +
        `${fmt(masterDownMs(t.priority, t.advertIntervalMs))} triggers a failover`,
    );
  }
  return { errors, warnings, estimate: takeoverEstimate(t) };
}

function fmt(ms: number): string {
  return `${Math.round(ms)} ms`;
}

/** How long a backup that forwarded a switchover waits for the master's answer. */
export function switchoverForwardWaitMs(timeoutMs: number, peerAdvertIntervalMs: number): number {
  return timeoutMs + SWITCHOVER_FORWARD_MARGIN_MS + 2 * peerAdvertIntervalMs;
}

/**
 * How long an old master that handed its Redis over waits for the new master to advertise
 * MASTER holding the VIP: the new master's own master-down interval (it may first have
 * to notice) plus two of our advert intervals for the adverts in flight.
 */
export function awaitNewMasterMs(priority: number, peerAdvertIntervalMs: number, advertIntervalMs: number): number {
  return masterDownMs(priority, peerAdvertIntervalMs) + 2 * advertIntervalMs;
}

/**
 * The watchdog stops pinging when no health check completed for this long: each check is
 * bounded by its timeout, so three intervals without one means the loop is stuck.
 */
export function watchdogStaleMs(health: Pick<HealthTiming, 'intervalMs' | 'timeoutMs'>): number {
  return 3 * (health.intervalMs + health.timeoutMs);
}

// ---------------------------------------------------------------------------
// Margins of the Redis role changes (src/adapters/redis/)

/**
 * Added to the takeover's `maxSyncWaitMs` for the old master's pause: covers REPLICAOF
 * NO ONE and the fence after the drain. Only reached when the promoter dies mid-way;
 * normally the fence unpauses the peer after a few milliseconds.
 */
export const TAKEOVER_PAUSE_MARGIN_MS = 3_000;

/**
 * Added to the switchover's `timeoutMs` for the first CLIENT PAUSE's own bound: covers
 * the last catch-up poll and the renewal that replaces it before the promotion (should
 * it lapse first, the offset read with the renewal shows it). Only reached when the
 * daemon dies mid-way.
 */
export const SWITCHOVER_PAUSE_MARGIN_MS = 3_000;

/** How long the target's role change is given to show in `INFO replication`. */
export const ROLE_VERIFY_MS = 1_000;

/** Added to the worst case of the promotion steps for the renewed CLIENT PAUSE (scheduling, event-loop stalls). */
export const PROMOTION_PAUSE_MARGIN_MS = 1_000;

/** Our guard beyond FAILOVER's own TIMEOUT, which does not bound failover-in-progress. */
export const FAILOVER_GUARD_MS = 2_000;

/** Replicas send REPLCONF ACK once a second (replicationCron). */
export const REPLICA_ACK_PERIOD_MS = 1_000;

/** FAILOVER goes out this long before the replica's next acknowledgement is due. */
export const ACK_LEAD_MS = 60;

/** Give up learning the cadence after this long and issue FAILOVER at once. */
export const ACK_ALIGN_BOUND_MS = 1_300;

/** Role commands get at least this long: a replica busy flushing its old dataset answers slowly. */
export const CONTROL_MIN_TIMEOUT_MS = 2_000;

/**
 * A replica that is loading the RDB of a full sync answers `REPLICAOF NO ONE` with
 * `-LOADING`; promotion retries for this long before giving up.
 */
export const ROLE_CHANGE_RETRY_MS = 10_000;

/** How long to wait for `role:slave` pointing at the new master. */
export const ROLE_VERIFY_BOUND_MS = 2_000;

// ---------------------------------------------------------------------------
// Quorum (issue 11): the core's side of the lease rule

/**
 * `min-replicas-max-lag` of a master's `with-replica` fence: Redis refuses writes once
 * no replica has acknowledged for longer than this (whole seconds; replicas acknowledge
 * once a second, Redis recounts once a second: the fence trips within this + ~2 s of the
 * last acknowledgement that arrives, and at once when the replica's connection closes).
 */
export const REPLICA_FENCE_MAX_LAG_S = 2;

/**
 * A master serving without its lease (failsafe: etcd unreachable, peer heard) fences when
 * it has not heard its peer for this long: two of the slower advert intervals, under the
 * peer's shortest master-down interval (three intervals plus the skew).
 */
export function failsafeSilenceMs(advertIntervalMs: number, peerAdvertIntervalMs: number): number {
  return 2 * Math.max(advertIntervalMs, peerAdvertIntervalMs);
}

/**
 * A backup that got the key after its master fell silent promotes no earlier than this
 * long after it last heard that master: a master in failsafe has fenced by then (it
 * fences after `failsafeSilenceMs` of silence, plus the time the fence takes).
 */
export function failsafeGraceMs(advertIntervalMs: number, peerAdvertIntervalMs: number, fenceLeadMs: number): number {
  return failsafeSilenceMs(advertIntervalMs, peerAdvertIntervalMs) + fenceLeadMs;
}
