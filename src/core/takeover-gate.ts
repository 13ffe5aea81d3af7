/**
 * Gates on an automatic takeover (the master fell silent, or reported its Redis FAULT),
 * before any quorum is asked: a takeover that would lose acknowledged writes it could
 * avoid losing is held back, said in the audit (once per hold), in `status`, and looked
 * at again each master-down interval. Planned takeovers (a switchover's handover, a
 * resigning master, preemption) pass: the old master's Redis is there to catch up from.
 *
 *   replication lag   this replica was further behind the master than
 *                     `promotion.max_lag_bytes` when it last heard it (Patroni's
 *                     `maximum_lag_on_failover`): the takeover would discard that much
 *   prefer safety     without a quorum, a silent master whose Redis this replica cannot
 *                     reach either may still serve clients on the other side
 *   recovery block    the peer took the role over automatically less than
 *                     `promotion.recovery_block_ms` ago (its adverts say so): a master
 *                     whose Redis hangs again and again moves at most once per period
 *                     (orchestrator's `RecoveryPeriodBlockSeconds`)
 */
import { audit, done, type StepResult } from './common.js';
import { withTimers } from './common.js';
import type { CoreConfig, CoreState } from './state.js';
import { masterDownMs } from './timing.js';

/** Why the master is being replaced automatically. */
export type AutomaticCause = 'silence' | 'fault';

/**
 * Bytes this replica was behind the master it last heard, from the master's last advert
 * and this node's last health check, when both are on one history; null when unknown.
 */
export function lagBehindMaster(s: CoreState): number | null {
  const local = s.health.redis;
  const peer = s.peer;
  if (local === null || peer === null || local.role !== 'replica' || peer.redis.replId !== local.replId) return null;
  return Math.max(0, peer.redis.offset - local.offset);
}

/** Why an automatic takeover must be held back now, or null. */
function blocker(s: CoreState, now: number, config: CoreConfig, cause: AutomaticCause): string | null {
  const peer = s.peer;
  // The peer's block ends at most one period after its last advert that carried it.
  if (peer !== null && peer.flags.recoveredRecently === true && config.recoveryBlockMs > 0) {
    const until = peer.receivedAtMs + config.recoveryBlockMs;
    if (now < until) {
      return `${peer.nodeName} took the master role over automatically less than promotion.recovery_block_ms ` +
        `(${config.recoveryBlockMs} ms) ago: no second automatic takeover for up to ${Math.round(until - now)} ms more ` +
        '(flapping guard; restarting this daemon ends the wait)';
    }
  }
  const lag = lagBehindMaster(s);
  if (lag !== null && lag > config.promotionMaxLagBytes) {
    return `this replica was ${lag} bytes behind ${s.peer?.nodeName ?? 'the master'} when it last heard it ` +
      `(promotion.max_lag_bytes ${config.promotionMaxLagBytes}): a takeover would discard up to that much; not taking over automatically`;
  }
  if (cause === 'silence' && config.quorum.backend === 'none' && config.quorum.prefer === 'safety') {
    const local = s.health.redis;
    if (local === null || local.role !== 'replica' || !local.linkUp) {
      return 'prefer safety: the master is silent and its Redis unreachable from here (it may still serve clients on the ' +
        'other side); not taking over without a quorum';
    }
  }
  return null;
}

/** Null when the automatic takeover `reason` may go on; otherwise the step that holds it back. */
export function takeoverGate(s: CoreState, now: number, config: CoreConfig, reason: string, cause: AutomaticCause): StepResult | null {
  const why = blocker(s, now, config, cause);
  return why === null ? null : holdTakeover(s, now, config, reason, why);
}

/**
 * The takeover `reason` held back by `why`: audited once per blocker, said in status,
 * looked at again after a master-down interval.
 */
export function holdTakeover(s: CoreState, now: number, config: CoreConfig, reason: string, why: string): StepResult {
  const again = now + masterDownMs(config.priority, s.peer?.advertIntervalMs ?? config.advertIntervalMs);
  const first = s.takeoverHeld === null || s.takeoverHeld.blocker !== why;
  const held: CoreState = first ? { ...s, takeoverHeld: { reason, blocker: why, sinceMs: now } } : s;
  return done(withTimers(held, { 'master-down': again }),
    first ? [audit('takeover-held', { reason, blocker: why, lagBytes: lagBehindMaster(s) })] : [], `${reason}; ${why}`);
}
