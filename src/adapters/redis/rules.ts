/**
 * The rules of the Redis role changes, pure (no I/O, no clock, no timers): how long a
 * write pause may last, which version can do what, when a switchover is refused, when
 * FAILOVER is issued relative to the replica's acknowledgements, and what the roles
 * seen after FAILOVER (or after a failed step) mean for the switchover's outcome.
 * The files that talk to Redis (`takeover.ts`, `switchover/`) read their answers from
 * here and only add the I/O; `test/adapters/redis/rules.test.ts` holds the tables.
 *
 * Every bound that a pause or a wait is computed from is in this file, next to the
 * reason for its value.
 */
import type { HostPort, RedisSnapshot } from '../../core/types.js';
import type { ReplicaEntry } from './info.js';
import type { SwitchoverMethod, SwitchoverOutcome, SwitchoverRequest } from './switchover/types.js';
import { describeSnapshot, formatHostPort, replicatesFrom } from './snapshot.js';
import { ACK_ALIGN_BOUND_MS, ACK_LEAD_MS, FAILOVER_GUARD_MS, PROMOTION_PAUSE_MARGIN_MS, REPLICA_ACK_PERIOD_MS, ROLE_VERIFY_MS, SWITCHOVER_PAUSE_MARGIN_MS, TAKEOVER_PAUSE_MARGIN_MS } from '../../core/timing.js';
export { ACK_ALIGN_BOUND_MS, ACK_LEAD_MS, FAILOVER_GUARD_MS, REPLICA_ACK_PERIOD_MS, ROLE_VERIFY_MS, SWITCHOVER_PAUSE_MARGIN_MS, TAKEOVER_PAUSE_MARGIN_MS };

// ------------------------------------------------------------------ versions

/** `CLIENT PAUSE ... WRITE`, `CLIENT UNPAUSE` and `FAILOVER` all exist from Redis 6.2. */
const WRITE_PAUSE_SINCE: readonly [number, number] = [6, 2];

/** Whether `redis_version` has `CLIENT PAUSE ... WRITE`; an unreadable version is given the benefit of the doubt. */
export function supportsWritePause(version: string): boolean {
  const match = /^(\d+)\.(\d+)/.exec(version);
  if (match === null) return true;
  const major = Number(match[1]);
  const minor = Number(match[2]);
  const [needMajor, needMinor] = WRITE_PAUSE_SINCE;
  return major > needMajor || (major === needMajor && minor >= needMinor);
}

// ------------------------------------------------------------------ pause budgets


/** The bound of the `CLIENT PAUSE` a takeover puts on the old master (it ends by itself then). */
export function takeoverPauseMs(maxSyncWaitMs: number): number {
  return maxSyncWaitMs + TAKEOVER_PAUSE_MARGIN_MS;
}


/** The bound of the first `CLIENT PAUSE` of a switchover by pause. */
export function switchoverPauseMs(timeoutMs: number): number {
  return timeoutMs + SWITCHOVER_PAUSE_MARGIN_MS;
}

/** How often the target's role is polled meanwhile. */
export const ROLE_POLL_MS = 10;

/**
 * The bound of the CLIENT PAUSE renewed right before the target is promoted: every
 * step until our REPLICAOF at its own worst case, plus a margin. It counts from when
 * Redis ran the renewal, whose reply may take up to `localTimeoutMs`; then REPLICAOF
 * NO ONE on the target, followed by either the role re-check of an unanswered one or
 * the wait for its master role (the last poll may start just before that deadline);
 * then `setMasterAuth` and our REPLICAOF, each bounded by `localTimeoutMs`.
 */
export function promotionPauseMs(bounds: { readonly localTimeoutMs: number; readonly peerTimeoutMs: number }): number {
  const { localTimeoutMs, peerTimeoutMs } = bounds;
  const renewalReply = localTimeoutMs;
  const verify = Math.max(peerTimeoutMs, ROLE_VERIFY_MS + ROLE_POLL_MS + peerTimeoutMs);
  const promotion = peerTimeoutMs + verify;
  const local = 2 * localTimeoutMs;
  return renewalReply + promotion + local + PROMOTION_PAUSE_MARGIN_MS;
}

/**
 * The latest a pause may still end after a renewal of `renewalMs` whose outcome may be
 * unknown: Redis only ever moves a pause's end later, so the longer bound is the one
 * to report.
 */
export function renewedPauseBoundMs(previousBoundMs: number | null, renewalMs: number): number {
  return Math.max(previousBoundMs ?? 0, renewalMs);
}

/** Shortest bound of one catch-up poll near the deadline (a shorter one could not even connect). */
const DRAIN_MIN_POLL_BOUND_MS = 50;

/**
 * The bound of one catch-up poll of the target while writes are paused, `remainingMs`
 * before the catch-up deadline: a poll that overran the deadline would stretch the
 * pause by up to `peerTimeoutMs`.
 */
export function drainPollBoundMs(peerTimeoutMs: number, remainingMs: number): number {
  return Math.min(peerTimeoutMs, Math.max(Math.ceil(remainingMs), DRAIN_MIN_POLL_BOUND_MS));
}


/** How long after it was sent a FAILOVER is watched before we abort it ourselves. */
export function failoverWatchMs(timeoutMs: number): number {
  return timeoutMs + FAILOVER_GUARD_MS;
}

// ------------------------------------------------------------------ refusals

/** Why the local Redis cannot start a switchover, or null. */
export function localRefusal(local: RedisSnapshot, failoverState: string): string | null {
  if (local.role !== 'master') return `local Redis is not a master (${describeSnapshot(local)})`;
  if (failoverState !== 'no-failover') return `a FAILOVER is already under way locally (${failoverState})`;
  return null;
}

/**
 * The method for `requested` on a local Redis of `version` (`auto`: FAILOVER from 6.2,
 * the pause before), whether the 6.2 commands exist, or why it cannot be done.
 */
export function chooseMethod(
  requested: SwitchoverRequest['method'],
  version: string,
): { readonly method: SwitchoverMethod; readonly modern: boolean } | { readonly refusal: string } {
  const modern = supportsWritePause(version);
  const method = requested === 'auto' ? (modern ? 'failover' : 'pause') : requested;
  if (method === 'failover' && !modern) return { refusal: `FAILOVER needs Redis 6.2 or newer (local Redis is ${version})` };
  return { method, modern };
}

/** The refusal when `target` is not among the master's `slaveN` lines, with a hint when only the address differs. */
export function notConnectedRefusal(name: string, target: HostPort, entries: readonly ReplicaEntry[]): string {
  const listed = entries.map((e) => `${formatHostPort({ host: e.ip, port: e.port })} ${e.state}`).join(', ') || 'none';
  const hint = entries.some((e) => e.port === target.port)
    ? '; a replica is listed by its source address (or replica-announce-ip), which must match peer_redis'
    : '';
  return `replica ${name} is not connected to this master (connected replicas: ${listed})${hint}`;
}

/** How many bytes the master has that the replica has not acknowledged. */
export function lagBytes(local: RedisSnapshot, entry: ReplicaEntry): number {
  return Math.max(0, local.offset - entry.offset);
}

/**
 * Why the replica, as the master lists it, may not be switched over to, or null: not
 * streaming yet, or (unless forced) too far behind in bytes or in time since its last
 * acknowledgement.
 */
export function replicaRefusal(
  name: string,
  entry: ReplicaEntry,
  local: RedisSnapshot,
  request: Pick<SwitchoverRequest, 'force' | 'maxLagBytes' | 'maxAckAgeS'>,
): string | null {
  if (entry.state !== 'online') return `replica ${name} is not online (state ${entry.state})`;
  if (request.force) return null;
  const lag = lagBytes(local, entry);
  if (lag > request.maxLagBytes) return `replica ${name} lags ${lag} bytes behind (bound ${request.maxLagBytes} bytes)`;
  if (entry.lagS > request.maxAckAgeS) {
    return `replica ${name} lags ${entry.lagS} s since its last ack (bound ${request.maxAckAgeS} s)`;
  }
  return null;
}

/** Why the target, as it answers itself, may not be switched over to, or null. */
export function targetRefusal(name: string, target: RedisSnapshot, local: RedisSnapshot): string | null {
  if (target.role !== 'replica') return `${name} is not a replica (${describeSnapshot(target)})`;
  if (!target.linkUp) return `replica ${name} has its link down (${describeSnapshot(target)})`;
  // A replica streaming from us shares our replication id; one of another master does not.
  if (target.replId !== local.replId) {
    return `replica ${name} follows another history (replid ${target.replId}, ours ${local.replId})`;
  }
  return null;
}

// ------------------------------------------------------------------ FAILOVER timing

/** How often the acknowledged offset is read while learning the cadence. */
export const ACK_POLL_MS = 5;

/** The master's offset and the one the replica last acknowledged (its `slaveN` line). */
export interface AckView {
  readonly acked: number;
  readonly master: number;
}

/** What to do next while timing FAILOVER to the replica's acknowledgements. */
export type AckTiming =
  /** Nothing left to acknowledge (or no entry): FAILOVER does not wait at all. */
  | { readonly kind: 'at-once' }
  /** Read the acknowledged offset again after `afterMs`. */
  | { readonly kind: 'poll'; readonly afterMs: number }
  /** An acknowledgement just arrived: issue FAILOVER after `waitMs`. */
  | { readonly kind: 'ack-seen'; readonly waitMs: number }
  /** No acknowledgement seen within the bound (or the entry vanished): issue FAILOVER now. */
  | { readonly kind: 'untimed' };

/**
 * FAILOVER holds writes until the replica has acknowledged every byte, and replicas
 * acknowledge about once a second (Redis sends no GETACK while writes are paused), so
 * issued at a random moment it pauses writes for 0–1000 ms. Writes still flow while
 * the acknowledged offset is watched: when it moves an acknowledgement just arrived,
 * and FAILOVER waits until shortly before the next one is due.
 *
 * `first` is the first reading, `latest` the last one (`undefined` before the second),
 * `elapsedMs` the time since timing began.
 */
export function ackTiming(first: AckView | null, latest: AckView | null | undefined, elapsedMs: number): AckTiming {
  if (first === null || first.acked >= first.master) return { kind: 'at-once' };
  if (latest === null) return { kind: 'untimed' };
  if (latest !== undefined && latest.acked !== first.acked) {
    return { kind: 'ack-seen', waitMs: REPLICA_ACK_PERIOD_MS - ACK_LEAD_MS };
  }
  if (elapsedMs >= ACK_ALIGN_BOUND_MS) return { kind: 'untimed' };
  return { kind: 'poll', afterMs: ACK_POLL_MS };
}

// ------------------------------------------------------------------ outcomes

/** The local Redis as seen while a FAILOVER runs: `INFO replication` and `master_failover_state`. */
export interface FailoverView {
  readonly snapshot: RedisSnapshot;
  readonly failoverState: string;
}

/** What one poll of the local Redis says about a FAILOVER that was sent. */
export type FailoverProgress =
  /** Still in a failover state, or not yet decided: poll again (until the guard). */
  | { readonly kind: 'running' }
  | { readonly kind: 'undecided' }
  /** Ended with ours a replica of the target. */
  | { readonly kind: 'done'; readonly outcome: 'done' }
  /** Ended with ours still master: Redis aborted it (timeout, or PSYNC FAILOVER refused). */
  | { readonly kind: 'aborted-by-redis'; readonly outcome: 'rolled-back' }
  /** Ended in any other state. */
  | { readonly kind: 'unexpected'; readonly outcome: 'failed' };

/**
 * The FAILOVER outcome table. `ran` says whether the FAILOVER is known to have run
 * (answered, or seen in a failover state before). Unanswered and never seen running,
 * `no-failover` with a master proves nothing: the command may still be read and run.
 */
export function failoverProgress(view: FailoverView, newMaster: HostPort, ran: boolean): FailoverProgress {
  if (view.failoverState !== 'no-failover') return { kind: 'running' };
  if (replicatesFrom(view.snapshot, newMaster)) return { kind: 'done', outcome: 'done' };
  if (view.snapshot.role === 'master') {
    return ran ? { kind: 'aborted-by-redis', outcome: 'rolled-back' } : { kind: 'undecided' };
  }
  return { kind: 'unexpected', outcome: 'failed' };
}

/** What the local Redis says after our FAILOVER ABORT. */
export type AbortedFailover =
  | { readonly kind: 'state-unknown'; readonly outcome: 'failed' }
  | { readonly kind: 'completed'; readonly outcome: 'done' }
  | { readonly kind: 'not-master'; readonly outcome: 'failed' }
  /** Master again: the outcome depends on the target (`abortedFailoverOutcome`). */
  | { readonly kind: 'master' };

/** The local half of the table after FAILOVER ABORT; `view` null when the local Redis did not answer. */
export function abortedFailoverLocal(view: FailoverView | null, newMaster: HostPort): AbortedFailover {
  if (view === null || view.failoverState !== 'no-failover') return { kind: 'state-unknown', outcome: 'failed' };
  if (replicatesFrom(view.snapshot, newMaster)) return { kind: 'completed', outcome: 'done' };
  if (view.snapshot.role !== 'master') return { kind: 'not-master', outcome: 'failed' };
  return { kind: 'master' };
}

/**
 * With ours master again after FAILOVER ABORT: the target's role (null when it did not
 * answer) and whether the FAILOVER was never answered nor seen running decide.
 */
export function abortedFailoverOutcome(
  targetRole: RedisSnapshot['role'] | null,
  unanswered: boolean,
): { readonly kind: 'two-masters' | 'fate-unknown'; readonly outcome: 'failed' } | { readonly kind: 'rolled-back'; readonly outcome: 'rolled-back' } {
  // PSYNC FAILOVER was accepted: the target promoted itself.
  if (targetRole === 'master') return { kind: 'two-masters', outcome: 'failed' };
  // Its connection is gone but its bytes may still sit in Redis' input.
  if (unanswered) return { kind: 'fate-unknown', outcome: 'failed' };
  return { kind: 'rolled-back', outcome: 'rolled-back' };
}

/**
 * The outcome of a `REPLICAOF NO ONE` on the target that did not succeed: `refused`
 * when it got a reply error (else it went unanswered), `targetRole` as re-read (null:
 * no answer). Unanswered, the command may still sit in the target's input and promote
 * it when it resumes.
 */
export function failedPromotionOutcome(refused: boolean, targetRole: RedisSnapshot['role'] | null): SwitchoverOutcome {
  if (targetRole === 'master') return 'done';
  if (refused && targetRole === 'replica') return 'rolled-back';
  return 'failed';
}

/** How the catch-up of a switchover by pause ended. */
export type CatchUpVerdict = 'caught-up' | 'roll-back' | 'promote-forced';

/**
 * Force accepts losing the writes a slow replica lacks, not promoting one that does not
 * answer: an unanswered REPLICAOF NO ONE could still promote it whenever it resumes.
 */
export function catchUpVerdict(end: { readonly caughtUp: boolean; readonly force: boolean; readonly answering: boolean }): CatchUpVerdict {
  if (end.caughtUp) return 'caught-up';
  if (!end.force || !end.answering) return 'roll-back';
  return 'promote-forced';
}
