/**
 * Views of the configuration that other layers read: the decision core's slice and the
 * timing inputs. Built here, next to the configuration's types, so the core never
 * imports the configuration and the wiring never re-derives them.
 */
import type { CoreConfig } from '../core/state.js';
import {
  checkQuorumTiming, checkRestartInPlace, checkStallThreshold, fenceApplyMsOf, checkTimingInvariants, faultTimes, quorumFenceLeadMs, quorumMode, QUORUM_RETRY_MS,
  type FaultTimes, type QuorumTiming, type TakeoverTiming, type TimingReport,
} from '../core/timing.js';
import type { Config } from './types.js';

/** Picks the core's slice out of the full configuration. */
/** The port the VIP refuses connections on while a dead master holds it (`vip.fault_hold_ms`), or null when it never does. */
export function refusePortOf(config: Config): number | null {
  return config.vip.faultHoldMs > 0 ? config.redis.port : null;
}

export function coreConfigFrom(config: Config): CoreConfig {
  return {
    nodeName: config.node.name,
    nodeAddress: config.node.address,
    priority: config.node.priority,
    preempt: config.node.preempt,
    preemptDelayMs: config.node.preemptDelayMs,
    advertIntervalMs: config.advert.intervalMs,
    fall: config.health.fall,
    rise: config.health.rise,
    garpRefreshMs: config.vip.garpRefreshMs,
    faultVipHoldMs: config.vip.faultHoldMs,
    peerRedis: { host: config.peerRedis.host, port: config.peerRedis.port },
    switchoverMaxLagBytes: config.switchover.maxLagBytes,
    promotionMaxLagBytes: config.promotion.maxLagBytes,
    recoveryBlockMs: config.promotion.recoveryBlockMs,
    quorum: {
      backend: config.quorum.backend,
      prefer: config.quorum.prefer,
      retryMs: QUORUM_RETRY_MS,
      fenceLeadMs: config.quorum.backend === 'etcd' ? quorumFenceLeadMs(quorumTimingOf(config)) : 0,
    },
  };
}

/** The inputs of the timing invariants and the worst-case takeover estimate (`src/core/timing.ts`). */
export function timingOf(config: Config): TakeoverTiming {
  return {
    priority: config.node.priority,
    advertIntervalMs: config.advert.intervalMs,
    health: config.health,
    promotion: config.promotion,
  };
}

/** Detection and worst-case takeover of each fault for this configuration, in its quorum mode (`faultTimes`). */
export function faultTimesOf(config: Config): readonly FaultTimes[] {
  return faultTimes(timingOf(config), quorumTimingOf(config), quorumMode(config.quorum.backend, config.quorum.prefer));
}

/** The inputs of the quorum's lease and fence rule (`checkQuorumTiming`, `worstCaseOutages`). */
export function quorumTimingOf(config: Config): QuorumTiming {
  const { etcd } = config.quorum;
  return {
    leaseTtlMs: etcd.leaseTtlS * 1000,
    renewIntervalMs: etcd.renewIntervalMs,
    callTimeoutMs: etcd.callTimeoutMs,
    electionTimeoutMs: etcd.electionTimeoutMs,
    // The fence is one Redis command (CONFIG SET min-replicas-...), bounded like a health
    // check, but never below FENCE_APPLY_MIN_MS (a reconnect with AUTH must fit in it).
    fenceApplyMs: fenceApplyMsOf(config.health.timeoutMs),
    advertIntervalMs: config.advert.intervalMs,
  };
}

/**
 * Every timing rule a configuration must pass before the daemon runs: the takeover
 * invariants and, with backend etcd, the quorum's lease and fence rule. Errors stop
 * start-up (exit 78) and fail `check-config`; warnings are logged and printed.
 */
export function timingReportOf(config: Config): TimingReport {
  const checked = checkTimingInvariants(timingOf(config));
  const takeover = {
    ...checked,
    warnings: [
      ...checked.warnings,
      ...checkStallThreshold(config.stall.thresholdMs, config.advert.intervalMs),
      ...checkRestartInPlace(config.advert.intervalMs),
      ...fenceThroughRedisWarnings(config),
    ],
  };
  if (config.quorum.backend !== 'etcd') return takeover;
  const quorum = checkQuorumTiming(quorumTimingOf(config));
  return {
    errors: [...takeover.errors, ...quorum.errors],
    warnings: [...takeover.warnings, ...quorum.warnings],
    estimate: takeover.estimate,
  };
}

/**
 * A takeover that must go through the old master's Redis (etcd's memory, or `prefer:
 * safety` after a silence) catches up with it and fences it: with the catch-up off it
 * never can, and such a takeover is never made.
 */
function fenceThroughRedisWarnings(config: Config): string[] {
  const needsIt = config.quorum.backend === 'etcd' || config.quorum.prefer === 'safety';
  if (!needsIt || config.promotion.waitForSync) return [];
  const mode = config.quorum.backend === 'etcd' ? 'quorum.backend etcd' : 'quorum.prefer safety';
  return [`promotion.wait_for_sync is off with ${mode}: a takeover that must go through the old master's Redis ` +
    '(a master that served alone, or a silent one) can never catch up with it and fence it, so it is never made automatically'];
}
