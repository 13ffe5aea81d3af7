/**
 * What the core decides about its own effects once they are out of its hands: whether
 * an effect queued behind a long one is still wanted when its turn comes, and how the
 * core recovers when an effect throws.
 *
 * A thrown effect must never leave the core waiting for a result that will not come
 * (a MASTER stuck `promoting` never wants the VIP; a pending switchover refuses every
 * later one). So a thrown Redis effect is treated exactly as that effect reporting
 * failure, and the actions the same step emitted after it (which the runtime did not
 * run) are handed back and settled one by one:
 *
 *   promote-redis     → promotion failed: a MASTER steps down (BACKUP), with the reason
 *   replicate-from    → demotion failed: the next health check re-points Redis again
 *   switchover-redis  → the switchover failed: answered, this node stays master
 *   claim-vip         → retried by the reconcile loop; after MAX_VIP_CLAIM_FAILURES in a
 *                       row, a master with a live, healthy backup steps down so the backup
 *                       can serve (it may hold the address; this host cannot)
 *   release-vip       → the reconcile loop removes it at its next turn
 *   persist-state     → nothing it gated runs (a promotion is not started on an epoch that
 *                       is not on disk: see above); the write is retried with a backoff
 *                       (`persist-retry`), and no takeover starts until one succeeds
 *   send-advert       → (it threw only if it cannot be encoded, which no later advert
 *                       fixes) a node that cannot advertise goes FAULT, visibly: its
 *                       peer hears nothing from it and takes over
 *   acquire-quorum    → answered as etcd unreachable: asked again after `retryMs`
 *   fence-redis       → the fence did not take (a refused fence then keeps the key,
 *                       which lapses with the lease; a stopping master exits)
 *   release-quorum    → nothing: the key lapses with the lease
 *   exit, detach      → run anyway: a stopping daemon stops
 *   audit, messages, replies → still sent (they report, they do not act); adverts are
 *                       not re-sent (the next tick sends a current one) unless the node is
 *                       stopping (its priority-0 adverts are the resignation)
 */
import { audit, done, livePeer, peerCannotServe, prepend, withTimers, type StepResult } from './common.js';
import { stateRetryMs } from './timing.js';
import { vipDesired, type CoreConfig, type CoreState } from './state.js';
import { endVipHold, toBackup, toFault } from './transitions.js';
import type { Action, Event } from './types.js';

/** A master steps down after this many failed VIP claims in a row, if its backup can serve. */
export const MAX_VIP_CLAIM_FAILURES = 3;

type Step = (state: CoreState, event: Event, now: number, config: CoreConfig) => StepResult;
type EffectFailed = Extract<Event, { type: 'effect-failed' }>;

/**
 * Whether an effect the core emitted earlier is still wanted now that the runtime is
 * about to run it (it may have waited behind a long effect, such as a switchover, while
 * the role changed). Only effects that would mislead clients are dropped: announcing or
 * claiming a VIP this node no longer wants pulls clients to a host that does not serve.
 */
export function effectStillWanted(action: Action, state: CoreState): boolean {
  switch (action.type) {
    case 'announce-vip':
      return state.role === 'MASTER' && vipDesired(state);
    case 'claim-vip':
      return vipDesired(state);
    case 'refuse-vip':
      return state.timers['fault-release'] !== undefined;
    case 'fence-redis':
      // Easing the fence is for a master about to serve; refusing is always wanted.
      return action.writes === 'refused' || state.role === 'MASTER';
    default:
      return true;
  }
}

/** An effect threw: settle it and every action of its step that was not run. */
export function onEffectFailed(state: CoreState, e: EffectFailed, now: number, config: CoreConfig, step: Step): StepResult {
  if (e.action === 'send-advert') return advertFailed(state, e.detail, now, config);
  const skipped = e.skipped ?? [];
  const record = audit('effect-failed', { action: e.action, detail: e.detail, skipped: skipped.map((a) => a.type) });
  let r = settle(state, e.action, `${e.action} failed: ${e.detail}`, now, config, step);
  // A mastership taken without a promotion (the local Redis already was the master) claims
  // the VIP in the step that persists its epoch: that epoch is not on disk, so the node
  // must not serve as master on it (a restart would forget it).
  if (e.action === 'persist-state' && r.state.role === 'MASTER' && !r.state.vipClaimed && skipped.some((a) => a.type === 'claim-vip')) {
    r = prepend(r.actions, toBackup(r.state, now, config, `the new epoch ${r.state.epoch} could not be written (${e.detail}): not serving as master on it`));
  }
  const reasons = [r.reason];
  for (const action of skipped) {
    const next = settleSkipped(r.state, action, `not run: ${e.action} failed before it (${e.detail})`, now, config, step);
    r = { state: next.state, actions: [...r.actions, ...next.actions], reason: r.reason };
    if (next.actions.length > 0 || next.state !== r.state) reasons.push(next.reason);
  }
  return prepend([record], { ...r, reason: reasons.join('; ') });
}

function settleSkipped(s: CoreState, action: Action, why: string, now: number, config: CoreConfig, step: Step): StepResult {
  switch (action.type) {
    case 'audit':
    case 'send-message':
    case 'reply':
    case 'exit':
    case 'detach':
      return done(s, [action], `${action.type} still carried out`);
    case 'send-advert':
      // A stopping node's priority-0 adverts are its resignation: the peer takes over
      // after the skew time instead of a whole master-down interval; a FAULT report is what
      // the peer takes over on at once (with etcd it follows the hold and the fence, whose
      // failure must not delay it by an advert interval). Otherwise the next tick sends a
      // current advert.
      if (s.resigning) return done(s, [action], 'resignation advert still sent');
      return s.role === 'FAULT' ? done(s, [action], 'FAULT advert still sent') : done(s, [], 'advert dropped (the next one is current)');
    default:
      return settle(s, action.type, why, now, config, step);
  }
}

/** The effect `type` did not happen (it threw, or was skipped): bring the core back to a state it can act from. */
function settle(s: CoreState, type: Action['type'], why: string, now: number, config: CoreConfig, step: Step): StepResult {
  // A stopping master waits for its fence's outcome to exit (quorum.ts): a thrown fence is one.
  if (s.resigning && type === 'fence-redis' && s.role === 'MASTER') {
    return step(s, { type: 'fence-applied', writes: 'refused', ok: false, detail: why }, now, config);
  }
  if (s.resigning) return done(s, [], `${why} (shutting down)`);
  switch (type) {
    case 'promote-redis':
      return s.redisOp === 'promoting'
        ? step(s, { type: 'promotion-finished', ok: false, detail: why, redis: null }, now, config)
        : done(s, [], `${why}; no promotion pending`);
    case 'replicate-from':
      return s.redisOp === 'demoting'
        ? step(s, { type: 'demotion-finished', ok: false, detail: why }, now, config)
        : done(s, [], `${why}; no demotion pending`);
    case 'switchover-redis':
      return s.redisOp === 'switching-over'
        ? step(s, { type: 'redis-switchover-finished', outcome: 'failed', method: null, detail: why, pausedMs: null, redis: null }, now, config)
        : done(s, [], `${why}; no switchover pending`);
    case 'claim-vip':
      return claimFailed(s, why, now, config);
    case 'release-vip':
      return done(s, [], `${why}; the reconcile loop removes the VIP`);
    case 'refuse-vip': {
      // Without the refusal the VIP must not stay: let it go now (as without a hold).
      const ended = endVipHold(s, `the VIP could not refuse connections (${why})`);
      return ended === null ? done(s, [], `${why}; no VIP hold pending`) : done(ended.state, ended.actions, `${why}; VIP released at once`);
    }
    case 'persist-state':
      return persistFailed(s, why, now);
    case 'acquire-quorum':
      // Otherwise `asking` would wait forever for an answer that will not come.
      return s.quorum.asking === null
        ? done(s, [], `${why}; no ask pending`)
        : step(s, { type: 'quorum-answered', epoch: s.quorum.asking, answer: { outcome: 'unreachable', detail: why } }, now, config);
    case 'fence-redis':
      // A master only ever lifts the fence; any other node only sets it.
      return step(s, { type: 'fence-applied', writes: s.role === 'MASTER' ? 'accepted' : 'refused', ok: false, detail: why }, now, config);
    default:
      return done(s, [], why);
  }
}

function persistFailed(s: CoreState, why: string, now: number): StepResult {
  const previous = s.persistFailure;
  const attempts = (previous?.attempts ?? 0) + 1;
  const retryMs = stateRetryMs(attempts);
  const next = withTimers({ ...s, persistFailure: { detail: why, sinceMs: previous?.sinceMs ?? now, attempts, heldTakeover: previous?.heldTakeover ?? null } },
    { 'persist-retry': now + retryMs });
  return done(next, [], `${why}; state file write failed ${attempts} time(s) in a row: retrying in ${retryMs} ms, no takeover until it is on disk`);
}

function advertFailed(s: CoreState, detail: string, now: number, config: CoreConfig): StepResult {
  const why = `adverts cannot be encoded: ${detail}`;
  // Already FAULT: every tick fails the same way; one record was enough.
  if (s.role === 'FAULT' || s.resigning) return done({ ...s, advertFailure: s.advertFailure ?? why }, [], `${why} (no advert sent)`);
  return prepend([audit('effect-failed', { action: 'send-advert', detail })], toFault({ ...s, advertFailure: why }, now, config, why));
}

function claimFailed(s: CoreState, why: string, now: number, config: CoreConfig): StepResult {
  if (!vipDesired(s)) return done(s, [], `${why}; the VIP is no longer wanted here`);
  const failures = s.vipClaimFailures + 1;
  const next: CoreState = { ...s, vipClaimFailures: failures };
  const peer = livePeer(next, now, config);
  const backupCanServe = peer !== null && peer.state === 'BACKUP' && !peerCannotServe(peer);
  if (next.role === 'MASTER' && failures >= MAX_VIP_CLAIM_FAILURES && backupCanServe && !next.maintenance.on) {
    return toBackup(next, now, config,
      `VIP claim failed ${failures} times in a row (${why}): stepping down so ${peer.nodeName} can serve`);
  }
  return done(next, [], `${why}; claim ${failures} failed, the reconcile loop retries`);
}
