/**
 * Views of the configuration that other layers read: the decision core's slice and the
 * timing inputs. Built here, next to the configuration's types, so the core never
 * imports the configuration and the wiring never re-derives them.
 */
import { NO_QUORUM, type CoreConfig } from '../core/state.js';
import type { TakeoverTiming } from '../core/timing.js';
import type { Config } from './types.js';

/** Picks the core's slice out of the full configuration. */
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
    peerRedis: { host: config.peerRedis.host, port: config.peerRedis.port },
    switchoverMaxLagBytes: config.switchover.maxLagBytes,
    quorum: NO_QUORUM,
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
