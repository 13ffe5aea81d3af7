/**
 * The role changes of the decision core, each with its effects in the order the
 * adapters must carry them out: promote Redis before claiming the VIP, release the
 * VIP before demoting Redis, and never claim it from FAULT. `step.ts` decides when;
 * this file says what a change does.
 */
import { EPOCH_CEILING, epochExhausted, nextEpoch } from './epoch.js';
import {
  audit,
  divergenceReport,
  done,
  livePeer,
  fenceManaged,
  peerCannotServe,
  persistState,
  prepend,
  safetyWithoutQuorum,
  sendAdvert,
  transitionAudit,
  transitionTo,
  withTimers,
  type StepResult,
} from './common.js';
import { quorumGate } from './quorum-gate.js';
import { historyBlocker } from './data-guard.js';
import { masterWrites } from './master-fence.js';
import { memoryDemand, othersMark } from './quorum-memory.js';
import { holdTakeover, takeoverGate } from './takeover-gate.js';
import { masterDownMs } from './timing.js';
import { bytesPast, historyText } from './history.js';
import type { CoreConfig, CoreState, PeerView } from './state.js';
import type { Action, HostPort, RedisSnapshot } from './types.js';

/** INIT → MASTER without touching Redis (it already is a master): no promotion, no resync. */
export function adoptMaster(s: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  const gated = quorumGate(s, now, config, { kind: 'adopt', reason, epoch: s.epoch, afterSilence: false });
  if (gated !== null) return gated;
  // etcd remembers a master this Redis never followed, or one whose Redis may hold writes
  // no replica has (quorum-memory.ts): not adopted as is; as BACKUP, the takeover catches
  // up with that Redis and fences it first.
  const demand = memoryDemand(s, config);
  if (demand !== null) {
    return prepend([audit('takeover-fence-required', { reason, why: demand })],
      toBackup(s, now, config, `${reason}; but ${demand}: not adopting this Redis as is (a takeover catches up with that master's Redis first)`));
  }
  return becomeMasterAsIs(s, now, config, reason);
}

/** The master role on a Redis that already is a master (the key, if any, is held). */
function becomeMasterAsIs(s0: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  // Another node's relaxed mark left here (its Redis follows ours: `memoryDemand` waived
  // it) is cleared once this node serves.
  const mark = config.quorum.backend === 'etcd' ? othersMark(s0, config) : null;
  const s: CoreState = { ...s0, quorum: { ...s0.quorum, wanted: null, fenceMark: mark === null ? null : { holder: mark, clearing: false } } };
  const next = withTimers(transitionTo(s, 'MASTER', now, reason), {
    'master-down': undefined, preempt: undefined, 'init-listen': undefined,
    'garp-refresh': config.garpRefreshMs > 0 ? now + config.garpRefreshMs : undefined,
  });
  const fenced = masterWrites(next, now, config);
  return done(fenced.state, [transitionAudit(s, next, config), sendAdvert(next, config),
    ...fenced.actions, audit('vip-claim', { reason: 'adopted master' }), { type: 'claim-vip' }], reason);
}

/**
 * A node leaving the master role (or a wish for it) with a quorum: its Redis refuses
 * writes first (`fence-applied` then gives the key up, see quorum.ts), and a mastership
 * it was waiting for is no longer wanted. Returns the state and the actions to run first.
 */
function leaveMastership(s: CoreState, config: CoreConfig): { state: CoreState; actions: Action[] } {
  if (!fenceManaged(config)) return { state: s, actions: [] };
  const q = s.quorum;
  // Serving without a lease ends with the mastership, whichever way it ends (finding Q8: a
  // failsafe left over made the next mastership fence on its peer's silence).
  const state: CoreState = q.wanted === null && q.failsafeSinceMs === null ? s : { ...s, quorum: { ...q, wanted: null, failsafeSinceMs: null } };
  // A local Redis found to be a Redis Cluster node (issue 14) gets nothing, not even the
  // fence: it is no longer this pair's Redis (a restart made it a cluster node, which
  // serves no client of the VIP). A key held goes at once, so the peer can take over.
  if (s.health.clusterEnabled === true) {
    if (q.held === null) return { state, actions: [] };
    return { state: { ...state, quorum: { ...state.quorum, held: null } }, actions: [{ type: 'release-quorum' }] };
  }
  // A master, or a starting node whose Redis is a master (it may have served clients of a
  // previous run): its Redis refuses writes before anything else happens.
  if (s.role === 'MASTER' || (s.role === 'INIT' && s.health.redis?.role === 'master')) {
    return { state, actions: [{ type: 'fence-redis', writes: 'refused' }] };
  }
  // Not a master: its Redis was not serving as one, so a key it got meanwhile goes at once.
  if (q.held !== null) return { state: { ...state, quorum: { ...state.quorum, held: null } }, actions: [{ type: 'release-quorum' }] };
  return { state, actions: [] };
}

/** Becomes MASTER with a new epoch without touching Redis (it already is a master). */
export function takeOverAsIs(s: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  const held = heldTakeover(s, now, config, reason);
  if (held !== null) return held;
  const epoch = nextEpoch(s.epoch, s.knownEpoch);
  const gated = quorumGate(s, now, config, { kind: 'as-is', reason, epoch, afterSilence: false });
  if (gated !== null) return gated;
  // As in `adoptMaster`: a takeover that catches up with that master's Redis instead.
  if (memoryDemand(s, config) !== null) return takeOver(s, now, config, reason);
  const r = becomeMasterAsIs({ ...s, epoch, knownEpoch: epoch }, now, config, reason);
  return { ...r, actions: [persistState(r.state), ...r.actions] };
}

/** How a takeover differs from the automatic one. */
export interface TakeOverOptions {
  /** At least this epoch (a planned handover names the epoch the old master expects). */
  readonly minEpoch?: number;
  /** Catch up with this master first; default: the peer's Redis unless the peer reported FAULT. */
  readonly catchUpFrom?: HostPort | null;
  /** The peer fell silent (no report, no handover): with a quorum, wait out a failsafe master's fence. */
  readonly afterSilence?: boolean;
  /** The peer reported its Redis FAULT: an automatic takeover, gated like a silence (`takeover-gate.ts`). */
  readonly afterFault?: boolean;
  /** An operator's forced failover (`forced-failover.ts`): past the data guard and the takeover gates, never past the key. */
  readonly forced?: true;
}

/** BACKUP → MASTER: new epoch, advertise at once, promote Redis; the VIP follows on success. */
export function takeOver(s: CoreState, now: number, config: CoreConfig, reason: string, options: TakeOverOptions = {}): StepResult {
  const held = heldTakeover(s, now, config, reason);
  if (held !== null) return held;
  // A forced takeover is the operator's, not automatic: no gate, no recovery block, no `requireFence`.
  const cause = options.forced === true ? null : options.afterSilence === true ? 'silence' : options.afterFault === true ? 'fault' : null;
  // Any takeover but a switchover's handover (whose pre-checks saw the data): a Redis that
  // lost its data must not become the source its peer resyncs from (data-guard.ts).
  const lost = options.minEpoch === undefined && options.forced !== true ? historyBlocker(s) : null;
  if (lost !== null) return holdTakeover(s, now, config, reason, lost);
  const gated = cause === null ? null : takeoverGate(s, now, config, reason, cause);
  if (gated !== null) return gated;
  const epoch = nextEpoch(s.epoch, s.knownEpoch, (options.minEpoch ?? 0) - 1);
  const waited = quorumGate(s, now, config, {
    kind: 'takeover', reason, epoch, afterSilence: options.afterSilence === true,
    ...(options.minEpoch !== undefined ? { minEpoch: options.minEpoch } : {}),
    ...(options.catchUpFrom !== undefined ? { catchUpFrom: options.catchUpFrom } : {}),
    ...(options.afterFault === true ? { afterFault: true } : {}),
    ...(options.forced === true ? { forced: true } : {}),
  });
  if (waited !== null) return waited;
  // What etcd remembers (quorum-memory.ts): the old master's Redis is caught up with and
  // fenced through Redis first, or the promotion fails.
  // A switchover's handover is exempt: the old master's Redis already follows ours (a
  // stale mark of its own is cleared all the same once promoted); so is a forced takeover
  // (the operator accepted the loss: it still catches up when that Redis answers).
  const remembered = memoryDemand(s, config);
  const demand = options.minEpoch === undefined && options.forced !== true ? remembered : null;
  const waived = options.forced === true && remembered !== null ? [audit('takeover-fence-waived', { reason, why: remembered })] : [];
  const mark = config.quorum.backend === 'etcd' ? othersMark(s, config) : null;
  const fenceMark = mark === null ? null : { holder: mark, clearing: false };
  const base = transitionTo({ ...s, epoch, knownEpoch: epoch, redisOp: 'promoting', frozen: null, quorum: { ...s.quorum, wanted: null, fenceMark } }, 'MASTER', now, reason);
  // An automatic takeover starts the pair's recovery block (anti-flapping, `takeover-gate.ts`).
  const block = cause !== null && config.recoveryBlockMs > 0 ? now + config.recoveryBlockMs : undefined;
  const next = withTimers(block === undefined ? base : { ...base, recoveryBlockUntilMs: block }, {
    'master-down': undefined, preempt: undefined, 'init-listen': undefined, advert: now + config.advertIntervalMs,
    ...(block === undefined ? {} : { 'recovery-block': block }),
  });
  const catchUpFrom = catchUpSource(s, config, options);
  // prefer safety without a quorum: a silent master is replaced only through its own
  // Redis (fenced by the takeover), never on a replica link that only looks up.
  const requireFence = demand !== null || (safetyWithoutQuorum(config) && cause === 'silence');
  // Its relaxed mark, if it has no replica once promoted, is written after the promotion
  // (`masterWrites`): a mark written before would outlive a promotion that fails.
  return done(next, [
    transitionAudit(s, next, config),
    ...(demand === null ? [] : [audit('takeover-fence-required', { reason, why: demand })]),
    ...waived,
    persistState(next),
    sendAdvert(next, config),
    { type: 'promote-redis', catchUpFrom, ...(requireFence ? { requireFence: true } : {}) },
  ], demand === null ? reason : `${reason}; ${demand}: promoting only through that Redis, caught up with and fenced`);
}

/**
 * Where a takeover catches up from: the old master's Redis only if it may still be alive
 * (a peer that reported FAULT has a dead Redis, so asking it would only spend the connect
 * timeout), unless etcd's memory names a demand (waived by the operator or not): the
 * writes are there, whatever the peer reported. A handover's own source stands.
 */
export function catchUpSource(s: CoreState, config: CoreConfig, options: Pick<TakeOverOptions, 'minEpoch' | 'catchUpFrom'> = {}): HostPort | null {
  if (options.minEpoch === undefined && memoryDemand(s, config) !== null) return config.peerRedis;
  if (options.catchUpFrom !== undefined) return options.catchUpFrom;
  return s.peer && peerCannotServe(s.peer) ? null : config.peerRedis;
}

/**
 * A takeover this node would start, held back, or null when nothing holds it: the state
 * file cannot be written (the new epoch must be on disk before a promotion; the write is
 * retried on its own timer meanwhile), or no newer epoch can be made (the epoch space is
 * exhausted: see `epoch.ts`). The node stays where it is (BACKUP, or INIT at start-up) and
 * looks again after a master-down interval (a peer that comes back re-arms the timer as
 * usual). Logged each time.
 */
function heldTakeover(s: CoreState, now: number, config: CoreConfig, reason: string): StepResult | null {
  const failure = s.persistFailure;
  const exhausted = epochExhausted(s.epoch, s.knownEpoch);
  if (failure === null && !exhausted) return null;
  const blocker = failure !== null
    ? `the state file cannot be written (${failure.detail}), and a new epoch must be on disk before a promotion`
    : `no epoch above ${s.knownEpoch} can be made (the ceiling is ${EPOCH_CEILING}): stop both daemons and move both state files away`;
  const again = now + masterDownMs(config.priority, s.peer?.advertIntervalMs ?? config.advertIntervalMs);
  const held: CoreState = failure === null ? s : { ...s, persistFailure: { ...failure, heldTakeover: reason } };
  const next = withTimers(held, s.role === 'INIT' ? { 'init-listen': again } : { 'master-down': again });
  // Audited once per state-file failure; an exhausted epoch space was audited when the
  // ceiling was reached (`epoch-ceiling-reached`) and stays critical in `status`.
  const first = failure !== null && failure.heldTakeover === null;
  return done(next, first ? [audit('takeover-held', { reason, blocker })] : [], `${reason}; not taking over: ${blocker}`);
}

/**
 * → BACKUP. `keepVip`: a planned switchover's old master keeps the VIP until the new
 * master holds it (see `switchover.ts`); every other way down releases it at once.
 */
export function toBackup(s0: CoreState, now: number, config: CoreConfig, reason: string, options: { keepVip?: boolean } = {}): StepResult {
  const left = leaveMastership(s0, config);
  const s = left.state;
  // INIT may have kept a VIP found at start-up (local Redis was a master); release it too.
  const wasHolding = (s.role === 'MASTER' || s.role === 'INIT') && options.keepVip !== true;
  const peerInterval = s.peer?.advertIntervalMs ?? config.advertIntervalMs;
  const backup = transitionTo({ ...s, frozen: null }, 'BACKUP', now, reason);
  const next = withTimers(options.keepVip === true ? { ...backup, vipClaimed: s.vipClaimed } : backup, {
    'master-down': now + masterDownMs(config.priority, peerInterval),
    preempt: undefined, 'init-listen': undefined, 'garp-refresh': undefined,
    advert: s.timers.advert ?? now,
  });
  const actions: Action[] = [transitionAudit(s, next, config), ...left.actions];
  if (wasHolding) actions.push(audit('vip-release', { reason }), { type: 'release-vip' });
  if (s.role === 'MASTER') actions.push(sendAdvert(next, config));
  const r = reconcileReplica(next, now, config, 'entered BACKUP');
  return { state: r.state, actions: [...actions, ...r.actions], reason };
}

export function toFault(s0: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  const left = leaveMastership(s0, config);
  const s = left.state;
  const next = withTimers(transitionTo({ ...s, frozen: null }, 'FAULT', now, reason), {
    'master-down': undefined, preempt: undefined, 'init-listen': undefined, 'garp-refresh': undefined,
    advert: now + config.advertIntervalMs,
  });
  // A node with a dead Redis never serves through the VIP; the release is unconditional (idempotent).
  const release: Action[] = [
    audit('vip-release', { reason }),
    { type: 'release-vip' },
    // After the release: a failing Redis may not answer the fence quickly.
    ...left.actions,
  ];
  // A refused connection proves the process is gone: nothing there takes a write, so the
  // peer hears FAULT now instead of after the VIP release (`ip` runs for ~10-20 ms), and
  // its promotion runs beside our release (issue 12). With etcd the advert still follows
  // the fence (whose end gives the key up): the peer's ask for the key would only meet our
  // lease, and wait a retry interval.
  const proven = s.health.down === true;
  const etcd = config.quorum.backend === 'etcd';
  const advert = sendAdvert(next, config);
  // A master keeps the VIP a moment, refusing every connection to it, so that clients are
  // reset at once until the peer's announcement moves them, instead of sending connects
  // nobody answers (DEFAULT_FAULT_VIP_HOLD_MS). Nothing can write through it meanwhile,
  // not even a Redis that restarts: the refusal comes before any socket. With etcd too:
  // the hold is about the address, not the key (measured before: with the VIP released at
  // once, a client's connect fell into the gap and waited out its timeout, 0.3 s).
  if (proven && s0.role === 'MASTER' && config.faultVipHoldMs > 0) {
    const hold: Action[] = [audit('vip-hold', { reason, maxMs: config.faultVipHoldMs }), { type: 'refuse-vip' }, ...left.actions];
    return done(withTimers(next, { 'fault-release': now + config.faultVipHoldMs }),
      [transitionAudit(s, next, config), ...(etcd ? [...hold, advert] : [advert, ...hold])],
      `${reason}; VIP kept refusing connections for at most ${config.faultVipHoldMs} ms while the peer takes over`);
  }
  const advertFirst = proven && !etcd;
  return done(next, [transitionAudit(s, next, config), ...(advertFirst ? [advert, ...release] : [...release, advert])], reason);
}

/** Ends the VIP hold of `toFault` (its time is up, the peer holds the VIP, Redis answers again, an effect failed): the VIP goes now. */
export function endVipHold(s: CoreState, why: string): { state: CoreState; actions: Action[] } | null {
  if (s.timers['fault-release'] === undefined) return null;
  return { state: withTimers(s, { 'fault-release': undefined }), actions: [audit('vip-release', { reason: why }), { type: 'release-vip' }] };
}

/**
 * Keeps the local Redis behind a live master peer: demotes a local master, re-points a
 * replica that follows someone else. Only towards a peer whose Redis says it is a master,
 * never in maintenance (Redis is left as the operator has it), never while the peer is
 * handing its role over to us (our Redis may already be the new master), never while the
 * peer is still taking over (its catch-up reads from our Redis and then makes it its
 * replica itself: finding 7), and never onto an older point of our own history (`older`:
 * finding 10).
 */
export function reconcileReplica(s: CoreState, now: number, config: CoreConfig, why: string): StepResult {
  const local = s.health.redis;
  const peer = livePeer(s, now, config);
  if (!local || s.redisOp !== null || s.role === 'MASTER' || !peer) return done(s, [], `${why}: nothing to do`);
  if (peer.state !== 'MASTER' || peer.redis.role !== 'master') return done(s, [], `${why}: peer is not a Redis master`);
  const target = config.peerRedis;
  const following = local.role === 'replica' && local.masterHost === target.host && local.masterPort === target.port;
  if (following) return converged(s, `${why}: replicating ${target.host}:${target.port}`);
  if (peer.flags.switchingOver === true || s.switchover !== null) {
    return done(s, [], `${why}: a switchover is running; Redis left as it is`);
  }
  if (peer.flags.takingOver === true) {
    return done(s, [], `${why}: ${peer.nodeName} is still taking over (its catch-up may be reading from this Redis); Redis left as it is`);
  }
  const what = local.role === 'master'
    ? `local Redis is a master while ${peer.nodeName} is MASTER (epoch ${peer.epoch})`
    : `local Redis replicates ${local.masterHost}:${local.masterPort}, not the master`;
  if (s.maintenance.on) return done(s, [], `maintenance: ${what}; Redis left as it is`);
  const newer = older(local, peer);
  if (newer !== null) return keepNewer(s, local, peer, now, config, `${what}, but ${newer}`);
  // Followed: its history holds ours, or the two diverged (the loser of a split brain or
  // of a failover gives way, the bytes it discards audited), or they are not linked (a
  // Redis restarted with a new replication id).
  const data = { master: `${target.host}:${target.port}`, found: local.role, ...divergenceReport(local, peer) };
  const next: CoreState = { ...s, redisOp: 'demoting', redisDiverged: null };
  return done(next, [audit('redis-demote', { reason: what, ...data }), { type: 'replicate-from', master: target }],
    `${what}: REPLICAOF ${target.host} ${target.port}`);
}

/**
 * Why the master's Redis is an older point of the local Redis's own history, or null: ours
 * was promoted out of its history where it still stands, and took writes of its own since
 * (`bytesPast`). Following it would discard them, and gain nothing: its writes are ours
 * already. It happens when the master took the role with a Redis that never followed ours
 * (adopted it at start-up over a FAULT peer: finding 10).
 */
function older(local: RedisSnapshot, peer: PeerView): string | null {
  const bytes = bytesPast(local, peer.redis);
  if (bytes === 0) return null;
  return `${peer.nodeName}'s Redis ${historyText(peer.redis)} is an older point of the local ${historyText(local)} ` +
    `(which holds all of it and ${bytes} bytes written since)`;
}

/**
 * The local Redis is newer than the master's (see `older`). A backup whose Redis is a
 * master takes the role over as it is (a new epoch): the old master then steps down and
 * its Redis follows ours, losing nothing. Otherwise (FAULT, a replica, the role just
 * entered in this step, or a quorum whose key the master holds) the Redis is kept as it
 * is: `redis-diverged` audited once, said in `status`, looked at again at every health
 * check and master advert.
 */
function keepNewer(s: CoreState, local: RedisSnapshot, peer: PeerView, now: number, config: CoreConfig, reason: string): StepResult {
  if (s.role === 'BACKUP' && local.role === 'master' && s.enteredAtMs < now && config.quorum.backend === 'none') {
    return takeOverAsIs(s, now, config, `contesting ${peer.nodeName}: ${reason}`);
  }
  return keepDiverged(s, peer, now, reason);
}

/** The local Redis is kept off the master's (see `keepNewer`): audited when it begins, in status while it lasts. */
function keepDiverged(s: CoreState, peer: PeerView, now: number, reason: string): StepResult {
  const detail = `${reason}; not following it (a resync would discard what only the local Redis holds): Redis left as it is ` +
    '(looked at again at every health check; to accept the loss, make it a replica of the master by hand)';
  const first = s.redisDiverged === null || s.redisDiverged.peer !== peer.nodeName;
  const next: CoreState = { ...s, redisDiverged: { peer: peer.nodeName, detail, sinceMs: first ? now : s.redisDiverged!.sinceMs } };
  const record = audit('redis-diverged', { reason, peer: peer.nodeName, ...divergenceReport(s.health.redis, peer) });
  return done(next, first ? [record] : [], detail);
}

/** The local Redis follows the master: a divergence held before is over. */
function converged(s: CoreState, reason: string): StepResult {
  if (s.redisDiverged === null) return done(s, [], reason);
  return done({ ...s, redisDiverged: null }, [audit('redis-diverged-resolved', { peer: s.redisDiverged.peer, reason })], reason);
}
