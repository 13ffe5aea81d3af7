/**
 * All timing arithmetic in one place (keepalived keeps it in vrrp_scheduler.c; we keep
 * it here): master-down interval and skew from RFC 5798 §6.1, local fault detection,
 * worst-case takeover estimates, the invariants checked at start-up, and the quorum's
 * lease and fence rule with the worst case of each fault in each quorum mode (issue 11).
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
 * The control socket waits this long for a forced failover's answer (`redis-ha failover`):
 * the promotion's catch-up (`promotion.max_sync_wait_ms`, at most ten minutes), etcd's
 * answer and the failsafe grace fit in it. A dry run or a refusal is answered at once.
 */
export const FAILOVER_REPLY_MS = MAX_SWITCHOVER_TIMEOUT_MS + SWITCHOVER_REPLY_MARGIN_MS;

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
 * just after a good check, so the first failing check starts one interval later; each of
 * the `fall` failing checks runs to its timeout, and a timed-out check is followed by the
 * next at once (the runtime's health loop). A refused connection fails at once, so a
 * crash is detected much faster than this.
 */
export function faultDetectMs(health: HealthTiming): number {
  return health.intervalMs + health.fall * health.timeoutMs;
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
  /** The master's Redis hangs: its daemon's checks time out `fall` times, then it advertises FAULT. */
  readonly redisFailureMs: number;
  /**
   * The master's Redis process dies: its connections close at once, the re-check is
   * refused (proof), and the daemon advertises FAULT; only the promotion's cost remains.
   */
  readonly redisCrashMs: number;
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
  const promotionMs = promotionCostMs(t);
  return {
    redisFailureMs: faultDetectMs(t.health) + promotionMs,
    redisCrashMs: promotionMs,
    hostLossMs: masterDownMs(t.priority, t.advertIntervalMs) + promotionMs,
    resignMs: skewMs(t.priority, t.advertIntervalMs) + promotionMs,
  };
}

/** The fixed costs of a promotion: the blind delays and the peer's connect timeout (round trips not counted). */
export function promotionCostMs(t: Pick<TakeoverTiming, 'promotion'>): number {
  return t.promotion.preDelayMs + t.promotion.syncDelayMs + t.promotion.peerTimeoutMs;
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
      `local fault detection (${fmt(detect)} = health.interval_ms + health.fall × health.timeout_ms) is not faster than ` +
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

/**
 * The stall threshold against the master-down interval. A timer that fires late by
 * more than `stall.threshold_ms` is taken for a stalled loop and re-verified (the peer's
 * adverts may be queued behind it); one that fires late by less is acted on. A stall
 * long enough to let this node's master-down deadline pass, yet under the threshold
 * beyond it, makes the node take over from a live peer whose adverts are still queued:
 * the threshold must not exceed the shortest master-down interval (priority 254, so the
 * rule holds whatever the priority) or that window outgrows the interval itself. A
 * warning, not an error: configurations written before the rule keep starting.
 */
export function checkStallThreshold(stallThresholdMs: number, advertIntervalMs: number): string[] {
  const masterDown = masterDownMs(PRIORITY_MAX_CONFIGURED, advertIntervalMs);
  if (stallThresholdMs <= masterDown) return [];
  return [
    `stall.threshold_ms (${stallThresholdMs}) is longer than the master-down interval (${fmt(masterDown)} at ` +
      `advert.interval_ms ${advertIntervalMs}): an event-loop stall that outlasts the master-down deadline by less than ` +
      'the threshold is not noticed, and this node may take over from a live peer whose adverts are still queued; ' +
      `lower stall.threshold_ms to ${Math.floor(masterDown)} or less (timing.profile fast and lan-fast do)`,
  ];
}

/** How long a backup that forwarded a switchover waits for the master's answer. */
export function switchoverForwardWaitMs(timeoutMs: number, peerAdvertIntervalMs: number): number {
  return timeoutMs + SWITCHOVER_FORWARD_MARGIN_MS + 2 * peerAdvertIntervalMs;
}

/**
 * What a claim costs before the new master's advert can say it holds the VIP: the state
 * file, `ip addr add`, and the wait on the first `arping` (ARPING_SETTLE_MS, 20 ms, in
 * `src/adapters/vip.ts`), with a margin for a busy host.
 */
export const CLAIM_ALLOWANCE_MS = 250;

/**
 * How long an old master that handed its Redis over waits for the new master to advertise
 * MASTER holding the VIP: the new master's own master-down interval (it may first have
 * to notice), its claim (`CLAIM_ALLOWANCE_MS`; at short advert intervals it outweighs the
 * rest), plus two of our advert intervals for the adverts in flight.
 */
export function awaitNewMasterMs(priority: number, peerAdvertIntervalMs: number, advertIntervalMs: number): number {
  return masterDownMs(priority, peerAdvertIntervalMs) + CLAIM_ALLOWANCE_MS + 2 * advertIntervalMs;
}

/**
 * A restart in place (SIGUSR2: the daemon exits leaving Redis and the VIP, systemd starts
 * the next one after `RestartSec=1s`, which then loads and starts) leaves the peer without
 * adverts for about this long.
 */
export const RESTART_IN_PLACE_GAP_MS = 1_500;

/** A warning when the peer's master-down interval is shorter than a restart in place: it would take over. */
export function checkRestartInPlace(advertIntervalMs: number): string[] {
  const masterDown = masterDownMs(PRIORITY_MAX_CONFIGURED, advertIntervalMs);
  if (masterDown >= RESTART_IN_PLACE_GAP_MS) return [];
  return [
    `a restart in place (SIGUSR2) leaves the peer without adverts for about ${RESTART_IN_PLACE_GAP_MS} ms, longer than ` +
      `its master-down interval (${fmt(masterDown)} at advert.interval_ms ${advertIntervalMs}): the peer takes over ` +
      'meanwhile; upgrade such a pair with redis-ha switchover and a plain restart instead',
  ];
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
 * The look at each Redis's cluster mode before anything changes (`check-config`, `run`'s
 * start-up) gets the health timeout (local) or the peer timeout, but never less than
 * this: it opens a fresh connection (connect, INFO, CLUSTER INFO) from a process just
 * started, often on a busy host, and a server that does not answer in time is only a
 * note, so a cluster node answering late would go unrefused. 200 ms missed a loaded
 * cluster node in CI; the cost of 1 s is paid only when a host does not answer at all
 * (a refused connection returns at once), once per `check-config` or start.
 */
export const CLUSTER_PROBE_MIN_MS = 1_000;

/** The cluster-mode look's bound for a health or peer timeout (see `CLUSTER_PROBE_MIN_MS`). */
export function clusterProbeMsOf(timeoutMs: number): number {
  return Math.max(timeoutMs, CLUSTER_PROBE_MIN_MS);
}

/**
 * After a refused health check (no Redis listening), the next checks come this often
 * for `DOWN_RECHECK_FOR_MS`, not once an interval: a Redis restarted at once (systemd)
 * is seen within this time, and the data guard (`data-guard.ts`) acts before the peer's
 * replica, which reconnects once a second, can resync from an emptied server. A refused
 * connection on the local host costs microseconds.
 */
export const DOWN_RECHECK_MS = 20;

/**
 * At most one advert answers the peer's `advert-request`s in this long: the smallest
 * advert interval the schema allows (`ADVERT_MIN_INTERVAL_MS`), so requests, even from a
 * peer with a bug, never make this node advertise faster than a `lan-fast` pair does.
 */
export const SOLICITED_ADVERT_GAP_MS = 20;
export const DOWN_RECHECK_FOR_MS = 5_000;

/**
 * After the health connection was lost, a check that fails without proof either way (a
 * reset or a closed connection, not a refusal) is repeated every `DOWN_RECHECK_MS` for
 * this long, not once an interval. Measured here: a connection opened right after a
 * SIGKILLed Redis closed its clients is reset, not refused, about one time in six (the
 * dying server's listener still queues the SYN, then resets it); counted as one failure
 * among `fall`, that left the dead master serving until its next interval, by which time
 * a Redis restarted from an older dump had been resynced from by the peer's replica. One
 * second: the replica reconnects once a second. The repeats count as one failure toward
 * `fall`, and a window opens again only after a good check (the runtime's `lostWindow`):
 * a server that resets every connection gets one second of them, not a loop.
 */
export const LOST_RECHECK_FOR_MS = 1_000;

/**
 * `vip.fault_hold_ms` by default: how long a master whose Redis refuses connections keeps
 * the VIP, refusing every connection to it, after it advertised FAULT (`toFault`). The
 * peer's promotion, claim and first gratuitous ARP take ~30-80 ms; until that ARP reaches
 * them, clients still send to this host: with the VIP gone, a connect is never answered
 * and waits out its timeout (0.25 s in the bench's client, 10 s in ioredis's defaults);
 * with the VIP held and refusing, it is reset at once and retried. The hold ends early
 * when the peer advertises that it holds the VIP, or when the local Redis answers again.
 * The peer's later announcements (`vip.garp_interval_ms` apart) override any ARP reply
 * this host gave meanwhile, so a hold shorter than that interval leaves no client behind.
 */
export const DEFAULT_FAULT_VIP_HOLD_MS = 150;

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

/**
 * The VIP's kernel lifetime with a quorum (whole seconds, at least 1: `checkQuorumTiming`
 * refuses a configuration where that floor would apply): a daemon that froze at F last
 * renewed the VIP at or before F, and its last keepalive went out no earlier than F −
 * renew interval − call timeout, so its key lives until at least that plus the TTL (on
 * etcd's clock): a lifetime within that difference makes the VIP leave the frozen master
 * before a backup can hold the key.
 */
export function vipLifetimeS(q: Pick<QuorumTiming, 'leaseTtlMs' | 'renewIntervalMs' | 'callTimeoutMs'>): number {
  return Math.max(VIP_MIN_LIFETIME_S, Math.floor(vipLifetimeBoundMs(q) / 1000));
}

/**
 * The longest VIP lifetime that cannot outlive a frozen master's key (see `vipLifetimeS`):
 * 99 % of the TTL (clock rates) less a renewal interval and a call timeout. Below
 * `VIP_MIN_LIFETIME_S` the kernel's shortest lifetime would outlive the key, so
 * `checkQuorumTiming` refuses such a configuration (review S5).
 */
export function vipLifetimeBoundMs(q: Pick<QuorumTiming, 'leaseTtlMs' | 'renewIntervalMs' | 'callTimeoutMs'>): number {
  return q.leaseTtlMs * (1 - CLOCK_RATE_BOUND) - q.renewIntervalMs - q.callTimeoutMs;
}

/** The shortest VIP lifetime (`ip addr ... valid_lft`, whole seconds; 0 would mean none). */
export const VIP_MIN_LIFETIME_S = 1;

/** A backup asks etcd for the key again this long after a refusal or no answer. */
export const QUORUM_RETRY_MS = 500;

// ---------------------------------------------------------------------------
// The quorum (issue 11): the leader key's lease, the master's fence, the worst cases: the leader key's lease, the master's fence, the worst cases

/**
 * Our monotonic clock and etcd's run at most this far apart in rate (1 %; NTP keeps real
 * clocks within 500 ppm, a VM's within a few per mille). A lease deadline measured on our
 * clock is brought forward by this share of the TTL, so it never falls after etcd's.
 */
export const CLOCK_RATE_BOUND = 0.01;

/**
 * etcd deletes an expired lease's keys up to this late: it checks for expired leases every
 * 500 ms (measured: TTL 3 s keys gone 3019 / 3309 / 3460 ms after the last keepalive, never
 * early; ../shared/notes/quorum-facts.md).
 */
export const ETCD_EXPIRY_CHECK_MS = 500;

/** etcd grants at least this many election timeouts as a lease TTL, rounded up to a second. */
export const ETCD_MIN_TTL_ELECTIONS = 1.5;

/** Shortest renewal interval the rule accepts (`quorum.etcd.renew_interval_ms`'s floor). */
export const QUORUM_MIN_RENEW_INTERVAL_MS = 50;

/** Everything the lease and fence rule depends on (`quorumTimingOf` in src/config/derived.ts). */
export interface QuorumTiming {
  /** The lease TTL asked for (`quorum.etcd.lease_ttl_s`), in ms. */
  readonly leaseTtlMs: number;
  readonly renewIntervalMs: number;
  /** Deadline of each etcd call. */
  readonly callTimeoutMs: number;
  /** The etcd cluster's `--election-timeout`. */
  readonly electionTimeoutMs: number;
  /** How long making the local Redis refuse writes may take: one Redis command, bounded by `health.timeout_ms`. */
  readonly fenceApplyMs: number;
  readonly advertIntervalMs: number;
}

/**
 * How long before its own lease deadline a master fences (makes its Redis refuse writes):
 * the clock-rate share of the TTL plus the time the fence takes to apply. The deadline is
 * the send time of the last acknowledged keepalive + the granted TTL, which is never later
 * than etcd's deletion of the key, so the fence is in force before another node can take
 * the key.
 */
/**
 * The fence's bound (`CONFIG SET min-replicas-to-write` on the control connection, maybe
 * a reconnect with AUTH and TLS first): `health.timeout_ms`, but never below this. A
 * longer bound only makes a master fence earlier before its lease can lapse.
 */
export const FENCE_APPLY_MIN_MS = 200;

/** The fence's bound for a health timeout (see `FENCE_APPLY_MIN_MS`). */
export function fenceApplyMsOf(healthTimeoutMs: number): number {
  return Math.max(healthTimeoutMs, FENCE_APPLY_MIN_MS);
}

export function quorumFenceLeadMs(q: Pick<QuorumTiming, 'leaseTtlMs' | 'fenceApplyMs'>): number {
  return Math.ceil(q.leaseTtlMs * CLOCK_RATE_BOUND) + q.fenceApplyMs;
}

/**
 * The TTL etcd grants for the one asked: at least 1.5 election timeouts, rounded up to a
 * whole second (quorum-facts.md: TTL 1 s is granted as 2 s at etcd's default 1000 ms).
 */
export function grantedLeaseTtlMs(q: Pick<QuorumTiming, 'leaseTtlMs' | 'electionTimeoutMs'>): number {
  const floorMs = Math.ceil((ETCD_MIN_TTL_ELECTIONS * q.electionTimeoutMs) / 1000) * 1000;
  return Math.max(q.leaseTtlMs, floorMs);
}

/** Problems found by {@link checkQuorumTiming}: errors stop start-up (exit 78), warnings are logged. */
export interface QuorumTimingReport {
  readonly errors: string[];
  readonly warnings: string[];
}

/**
 * The lease and fence rule, checked at start-up and by `check-config` with backend etcd.
 * The master renews every `renewIntervalMs`; a renewal may hang for `callTimeoutMs` and
 * then meet an etcd leader election (`electionTimeoutMs`) before the next one succeeds.
 * All of that must fit in the lease, less the fence lead, or an etcd election alone
 * makes the master fence and step down: a failover caused by etcd alone, which issue 11
 * rules out. The VIP's lifetime (`vipLifetimeBoundMs`) must also reach the kernel's
 * shortest, or the VIP of a frozen master outlives its key. Messages name the keys and
 * the numbers.
 */
export function checkQuorumTiming(q: QuorumTiming): QuorumTimingReport {
  const errors: string[] = [];
  const warnings: string[] = [];
  const lead = quorumFenceLeadMs(q);
  const ttl = `quorum.etcd.lease_ttl_s (${fmtSeconds(q.leaseTtlMs)})`;
  const leadText = `the fence lead (${fmt(lead)} = ${CLOCK_RATE_BOUND * 100} % of the TTL for clock rates + the fence's bound ${q.fenceApplyMs}: health.timeout_ms, at least ${FENCE_APPLY_MIN_MS})`;
  if (q.renewIntervalMs < QUORUM_MIN_RENEW_INTERVAL_MS) {
    errors.push(`quorum.etcd.renew_interval_ms (${q.renewIntervalMs}) is below ${QUORUM_MIN_RENEW_INTERVAL_MS} ms`);
  }
  if (q.leaseTtlMs <= lead) {
    errors.push(`${ttl} is not longer than ${leadText}: a master would fence as soon as it took the key; raise quorum.etcd.lease_ttl_s`);
  } else {
    const needed = q.renewIntervalMs + q.callTimeoutMs + q.electionTimeoutMs;
    const room = q.leaseTtlMs - lead;
    if (needed >= room) {
      errors.push(
        `quorum.etcd.renew_interval_ms (${q.renewIntervalMs}) + call_timeout_ms (${q.callTimeoutMs}) + election_timeout_ms ` +
          `(${q.electionTimeoutMs}) = ${fmt(needed)} is not shorter than ${ttl} less ${leadText} = ${fmt(room)}: ` +
          'an etcd leader election right after a renewal would lapse the lease: a failover caused by etcd alone; ' +
          'raise quorum.etcd.lease_ttl_s or lower the others',
      );
    }
  }
  const lifetimeMs = vipLifetimeBoundMs(q);
  if (lifetimeMs < VIP_MIN_LIFETIME_S * 1000) {
    errors.push(
      `${ttl} less ${CLOCK_RATE_BOUND * 100} % (clock rates), quorum.etcd.renew_interval_ms (${q.renewIntervalMs}) and ` +
        `call_timeout_ms (${q.callTimeoutMs}) = ${fmt(Math.floor(lifetimeMs))} is below ${VIP_MIN_LIFETIME_S} s, the VIP's shortest ` +
        `kernel lifetime: the VIP of a master whose daemon froze would outlive its leader key; ` +
        'raise quorum.etcd.lease_ttl_s or lower the others',
    );
  }
  if (q.leaseTtlMs < 2 * q.electionTimeoutMs) {
    warnings.push(
      `${ttl} is less than twice quorum.etcd.election_timeout_ms (${q.electionTimeoutMs}): one etcd leader election ` +
        `takes half the lease or more, and etcd grants no less than ${ETCD_MIN_TTL_ELECTIONS} election timeouts ` +
        `rounded up to a second (${fmtSeconds(grantedLeaseTtlMs(q))} here), so a dead master's key may outlive the TTL asked for`,
    );
  }
  return { errors, warnings };
}

function fmtSeconds(ms: number): string {
  return `${ms / 1000} s`;
}

/** Who decides that a node may be master: etcd, or the pair alone preferring safety or availability. */
export type QuorumMode = 'etcd' | 'none-safety' | 'none-availability';
export const QUORUM_MODES: readonly QuorumMode[] = ['etcd', 'none-safety', 'none-availability'];

/** The mode of a configuration's `quorum.backend` and `quorum.prefer`. */
export function quorumMode(backend: 'none' | 'etcd', prefer: 'safety' | 'availability'): QuorumMode {
  if (backend === 'etcd') return 'etcd';
  return prefer === 'safety' ? 'none-safety' : 'none-availability';
}

/** The faults the worst-case table covers, each with nothing else wrong. */
export type OutageFault = 'master-redis-dies' | 'master-redis-hangs' | 'master-host-dies' | 'master-isolated' | 'hosts-cut' | 'etcd-down';
export const OUTAGE_FAULTS: readonly OutageFault[] = ['master-redis-dies', 'master-redis-hangs', 'master-host-dies', 'master-isolated', 'hosts-cut', 'etcd-down'];

/** Each fault in words, for `check-config`, `status` and the README's table. */
export const OUTAGE_FAULT_TEXT: Readonly<Record<OutageFault, string>> = {
  'master-redis-dies': "the master's Redis process dies (crash, OOM kill)",
  'master-redis-hangs': "the master's Redis hangs (stops answering)",
  'master-host-dies': "the master's host dies",
  'master-isolated': 'the master is cut off from its peer and etcd',
  'hosts-cut': 'the two hosts are cut from each other (clients reach both)',
  'etcd-down': 'etcd is down (nothing else wrong)',
};

/** Which acknowledged writes a fault can lose. */
export type AckedWritesLost = 'none' | 'up to replication lag' | 'everything written to the losing side during the cut';

/** The worst case of one fault in one mode. */
export interface WorstCaseOutage {
  readonly fault: OutageFault;
  readonly mode: QuorumMode;
  /** Whether the fault means anything in this mode (etcd down without etcd does not). */
  readonly applicable: boolean;
  /** Longest time no node accepts writes, from the fault; `null`: until the fault is healed or repaired. */
  readonly writesUnavailableMs: number | null;
  readonly ackedWritesLost: AckedWritesLost;
  /** Whether two Redis masters can accept writes at the same time. */
  readonly twoWritableMasters: boolean;
  /** What happens, in a sentence. */
  readonly note: string;
}

/**
 * The worst case of each fault ({@link OUTAGE_FAULTS}) in each mode ({@link QUORUM_MODES}),
 * for this node taking over (its priority sets the master-down interval). Derived from
 * {@link takeoverEstimate} and the quorum timing; Redis and etcd round trips (milliseconds)
 * are not counted, as in the estimate.
 *
 * Asynchronous replication loses what the master acknowledged and its replica had not yet
 * received whenever the replica takes over ("up to replication lag"); with `min-replicas`
 * as the fence, that lag is bounded by `min-replicas-max-lag` (+ about 2 s, quorum-facts.md).
 * Writes are lost beyond that only where two masters accept writes at once.
 */
export function worstCaseOutages(t: TakeoverTiming, q: QuorumTiming): readonly WorstCaseOutage[] {
  const estimate = takeoverEstimate(t);
  const masterDown = masterDownMs(t.priority, t.advertIntervalMs);
  const lease = grantedLeaseTtlMs(q);
  const leaseEnd = lease + ETCD_EXPIRY_CHECK_MS;
  // The backup takes the key only once the old lease (and with it the key) is gone, and
  // promotes only after its own master-down interval; a key already free when it first
  // asks (the master may have served without it) costs the failsafe grace: one advert
  // interval and the fence lead after it said it was taking over (src/core/quorum-gate.ts).
  const etcdTakeover = Math.max(masterDown + t.advertIntervalMs + quorumFenceLeadMs(q), leaseEnd) + promotionCostMs(t);
  const fenceAt = lease - quorumFenceLeadMs(q);
  const leaseText = `lease (${fmt(lease)}) and etcd's expiry check (${fmt(ETCD_EXPIRY_CHECK_MS)})`;
  const row = (
    fault: OutageFault,
    mode: QuorumMode,
    writesUnavailableMs: number | null,
    ackedWritesLost: AckedWritesLost,
    twoWritableMasters: boolean,
    note: string,
    applicable = true,
  ): WorstCaseOutage => ({ fault, mode, applicable, writesUnavailableMs, ackedWritesLost, twoWritableMasters, note });
  const LAG: AckedWritesLost = 'up to replication lag';
  const LOSING_SIDE: AckedWritesLost = 'everything written to the losing side during the cut';
  return [
    row('master-redis-dies', 'etcd', estimate.redisCrashMs, LAG, false,
      "the master's daemon sees its health connection close and the re-check refused (proof of a dead process), " +
        'releases the key and advertises FAULT at once; the backup takes the key and promotes'),
    row('master-redis-dies', 'none-safety', null, LAG, false,
      "the master's daemon advertises FAULT at once and the backup promotes, but writes only while a replica " +
        "acknowledges: writes resume once the old master's Redis is back as its replica"),
    row('master-redis-dies', 'none-availability', estimate.redisCrashMs, LAG, false,
      "the master's daemon sees its health connection close and the re-check refused, advertises FAULT at once, and the backup promotes"),

    row('master-redis-hangs', 'etcd', estimate.redisFailureMs, LAG, false,
      "the master's daemon sees health.fall checks time out, fences, releases the key and advertises FAULT; the backup takes the key and promotes"),
    row('master-redis-hangs', 'none-safety', null, LAG, false,
      "the master's daemon advertises FAULT after health.fall timed-out checks and the backup promotes, but writes only " +
        "while a replica acknowledges: writes resume once the old master's Redis is back as its replica"),
    row('master-redis-hangs', 'none-availability', estimate.redisFailureMs, LAG, false,
      "the master's daemon advertises FAULT after health.fall timed-out checks and the backup promotes"),

    row('master-host-dies', 'etcd', etcdTakeover, LAG, false,
      `the backup takes the key once the dead master's ${leaseText} have run out (a key already free costs the failsafe ` +
        'grace: one advert interval and the fence lead after the backup said it was taking over), and promotes'),
    row('master-host-dies', 'none-safety', null, 'none', false,
      'the backup cannot tell a dead host from a cut, and cannot reach its Redis to fence it: it does not take over; ' +
        'writes stop until the host is back (or an operator switches over with --force)'),
    row('master-host-dies', 'none-availability', estimate.hostLossMs, LAG, false,
      `the backup promotes after the master-down interval (${fmt(masterDown)})`),

    row('master-isolated', 'etcd', etcdTakeover, LAG, false,
      `the isolated master fences, refusing writes ${fmt(fenceAt)} after its last renewal, before its lease can end; ` +
        `the backup takes the key once its ${leaseText} have run out, and promotes. Clients that still reach the isolated ` +
        'master until it fences may have writes acknowledged that the backup never received (as with any asynchronous replica)'),
    row('master-isolated', 'none-safety', null, 'none', false,
      "the isolated master refuses writes once its replica's acknowledgements stop (min-replicas); the backup, which " +
        'cannot reach its Redis, does not take over: writes stop until the cut heals'),
    row('master-isolated', 'none-availability', estimate.hostLossMs, LOSING_SIDE, true,
      `the backup promotes after the master-down interval (${fmt(masterDown)}) while the isolated master keeps ` +
        'accepting writes from clients that still reach it; those are discarded at the heal'),

    row('hosts-cut', 'etcd', 0, 'none', false,
      'the master keeps the key and keeps serving; the backup cannot take the key and stays a replica, catching up at the heal'),
    row('hosts-cut', 'none-safety', null, 'none', false,
      "the master refuses writes once its replica's acknowledgements stop (min-replicas); the backup, which cannot " +
        'reach its Redis, does not take over: writes stop until the cut heals, and nothing acknowledged is lost'),
    row('hosts-cut', 'none-availability', 0, LOSING_SIDE, true,
      `both nodes are master (the backup promotes after ${fmt(masterDown)}) and clients write to either; ` +
        'the side that loses at the heal has its writes discarded'),

    row('etcd-down', 'etcd', 0, 'none', false,
      'failsafe: the master keeps serving while it still hears its peer; nothing is promoted without etcd'),
    row('etcd-down', 'none-safety', 0, 'none', false, 'not applicable: this mode uses no etcd', false),
    row('etcd-down', 'none-availability', 0, 'none', false, 'not applicable: this mode uses no etcd', false),
  ];
}

// ---------------------------------------------------------------------------
// The start-up line: detection and takeover per fault (issue 12)

/** The faults the start-up line reports: the worst-case table's, and a stalled master daemon. */
export type StartupFault = OutageFault | 'master-daemon-stalls';

/** How soon one fault is noticed, and how long writes may be unavailable, in the mode in force. */
export interface FaultTimes {
  readonly fault: StartupFault;
  /**
   * From the fault to the first node acting on it: the master's own daemon (its Redis),
   * or the backup's master-down timer (silence). `null`: no node acts (etcd down).
   */
  readonly detectMs: number | null;
  /** As `WorstCaseOutage.writesUnavailableMs`: `null` until healed or repaired. */
  readonly writesUnavailableMs: number | null;
}

/**
 * The worst case of each fault in `mode`, with when it is noticed: the applicable rows of
 * {@link worstCaseOutages}, and a stalled master daemon (its host and Redis fine), which
 * the backup cannot tell from a lost host, except without a quorum preferring safety,
 * where it replaces a silent master only through that master's Redis, still reachable
 * here (caught up and fenced; the catch-up's round trips are not counted, as elsewhere).
 * `redis-ha run` logs these at start-up; `check-config` prints the writes-unavailable
 * side of them (`worstCaseOutages`), without the detection times or the stalled daemon.
 */
export function faultTimes(t: TakeoverTiming, q: QuorumTiming, mode: QuorumMode): readonly FaultTimes[] {
  const masterDown = masterDownMs(t.priority, t.advertIntervalMs);
  const detect: Readonly<Record<OutageFault, number | null>> = {
    // The health connection closes and the refused re-check proves it at once.
    'master-redis-dies': 0,
    'master-redis-hangs': faultDetectMs(t.health),
    'master-host-dies': masterDown,
    'master-isolated': masterDown,
    'hosts-cut': masterDown,
    'etcd-down': null,
  };
  const rows = worstCaseOutages(t, q).filter((row) => row.mode === mode && row.applicable);
  const hostDies = rows.find((row) => row.fault === 'master-host-dies');
  const stalled: FaultTimes = {
    fault: 'master-daemon-stalls',
    detectMs: masterDown,
    writesUnavailableMs: mode === 'none-safety' ? takeoverEstimate(t).hostLossMs : (hostDies?.writesUnavailableMs ?? null),
  };
  return [
    ...rows.map((row) => ({ fault: row.fault, detectMs: detect[row.fault], writesUnavailableMs: row.writesUnavailableMs })),
    stalled,
  ];
}
