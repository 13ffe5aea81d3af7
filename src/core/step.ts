/**
 * The decision core: `step(state, event, now, config) -> { state, actions, reason }`.
 *
 * Pure and total: no I/O, no clock, no timers. It follows RFC 5798 (VRRPv3) for the
 * election and timers, with three changes for Redis: a node's health is its local
 * Redis (FAULT when it fails), the role is only taken after Redis is promoted, and
 * two masters are resolved by promotion epoch first, because the newer master holds
 * the newer writes (priority and then the signed node name only break ties).
 *
 *                        started
 *                           |
 *                           v
 *     +------------------- INIT -------------------+
 *     | Redis replica, or a live          Redis master and no live master outranks it
 *     | master outranks us                (adopt: no role change, no resync)
 *     v                                            v
 *   BACKUP - master-down / peer FAULT / failover -> MASTER (promoting)
 *     ^   ^---- a master that outranks us ----------  |  promotion-finished ok
 *     |          (epoch, priority, node name)         v
 *     |                                            MASTER (active: holds the VIP)
 *     | rise good checks                               |
 *   FAULT <----------- fall failed checks (any state) -+
 *
 * (failover: the operator's forced takeover, past the gates but never the key: forced-failover.ts)
 *
 * Ordering of effects (adapters carry them out serially, in this order):
 *  - promote Redis before claiming the VIP; release the VIP before demoting Redis;
 *  - a FAULT node releases the VIP at once and never claims it.
 */
import {
  audit,
  assertNever,
  divergenceReport,
  done,
  fenceManaged,
  livePeer,
  outranks,
  peerCannotServe,
  peerRank,
  peerResigning,
  peerStateText,
  persistState,
  prepend,
  rankOf,
  rankText,
  redisFields,
  sendAdvert,
  transitionTo,
  withTimers,
  type StepResult,
} from './common.js';
import { onEffectFailed } from './effects.js';
import { onFailoverRequested, settleForcedFailover } from './forced-failover.js';
import { keepMemory } from './quorum-memory.js';
import { holdsKey } from './quorum-gate.js';
import { keepFence, masterWrites } from './master-fence.js';
import { armQuorumFence, keepFenceDown, keyReleasableOnStop, onPeerHeardInFailsafe, onQuorumEvent, onQuorumTimer } from './quorum.js';
import { adoptPeerMaintenance, freeze, onMaintenanceRequested, resume } from './maintenance.js';
import { initialState, vipDesired, type CoreConfig, type CoreState, type HealthView, type PeerView } from './state.js';
import {
  finishTakingOver,
  onRedisSwitchoverFinished,
  onHandoverReceived,
  onPeerAdvertDuringSwitchover,
  onSwitchoverRequested,
  onSwitchoverResult,
  onSwitchoverTimer,
  resendHandover,
} from './switchover.js';
import { EPOCH_CEILING, adoptEpoch, epochExhausted } from './epoch.js';
import { ARP_LOCKTIME_MARGIN_MS, masterDownMs, skewMs } from './timing.js';
import { guardAtStart, guardHistory, keepRunId } from './data-guard.js';
import { adoptMaster, endVipHold, reconcileReplica, takeOver, takeOverAsIs, toBackup, toFault } from './transitions.js';
import { compareHistories, historyContains, historyText } from './history.js';
import { announceAfterLocktime, onAdvertRequested, onPeerRedisProbed, onReplicaLinkDropped, takeOverFromFault } from './peer-fault.js';
import type { Action, Advert, Event, RedisSnapshot, TimerName } from './types.js';

export { initialState, outranks, divergenceReport };

/** Events a stopping node still hears: its effects' outcomes and the records of requests. */
const HEARD_WHILE_RESIGNING: ReadonlySet<Event['type']> = new Set<Event['type']>([
  'shutdown-requested', 'effect-failed', 'vip-released', 'control-handled', 'state-persisted',
  // A stopping master exits once its fence has ended (the key goes only if it took).
  'fence-applied',
  // Answered (refused) rather than left to the control socket's wait.
  'failover-requested',
]);

export { ARP_LOCKTIME_MARGIN_MS };
export type { StepResult };

/** Feeds one event to the core at time `now` (monotonic milliseconds). */
export function step(state: CoreState, event: Event, now: number, config: CoreConfig): StepResult {
  if (state.resigning && !HEARD_WHILE_RESIGNING.has(event.type)) {
    return { state, actions: [], reason: 'shutting down: event ignored' };
  }
  // A forced failover in progress is answered once the step gave it an outcome.
  const r = settleForcedFailover(stepEvent(state, event, now, config), event, now, config);
  // One place keeps the master's lease deadline armed, whatever the event was.
  const armed = armQuorumFence(r.state, config, now);
  return armed === r.state ? r : { ...r, state: armed };
}

function stepEvent(state: CoreState, event: Event, now: number, config: CoreConfig): StepResult {
  switch (event.type) {
    case 'started':
      return onStarted(state, event, now, config);
    case 'health-checked':
      return onHealthChecked(state, event, now, config);
    case 'advert-received':
      return onAdvert(state, event.advert, event.fromAddress, now, config);
    case 'timer-fired':
      return onTimer(state, event.timer, now, config);
    case 'promotion-finished':
      return onPromotionFinished(state, event, now, config);
    case 'demotion-finished':
      return done({ ...state, redisOp: state.redisOp === 'demoting' ? null : state.redisOp, redisChangedAtMs: now }, [
        audit('redis-demoted', { ok: event.ok, detail: event.detail }),
      ], event.ok ? `demotion finished: ${event.detail}` : `demotion failed: ${event.detail}`);
    case 'vip-observed':
      return onVipObserved(state, event.present, now, config);
    case 'vip-claimed': {
      const record = audit('vip-claimed', { changed: event.changed ?? null });
      if (!vipDesired(state) || state.vipClaimed) return done({ ...state, vipClaimFailures: 0 }, [record], 'VIP claim noted');
      // Advertise at once: a switchover's old master lets go only when it hears this.
      const claimed: CoreState = { ...state, vipClaimed: true, vipClaimFailures: 0 };
      return done(claimed, [record, sendAdvert(claimed, config)], 'VIP claimed; advertised');
    }
    case 'vip-released':
      return done(state, event.changed ? [audit('vip-released', { changed: true })] : [], 'VIP release noted');
    case 'effect-failed':
      return onEffectFailed(state, event, now, config, step);
    case 'detach-requested':
      return done({ ...state, timers: {} }, [audit('daemon-detached', { role: state.role, reason: 'SIGUSR2: restart in place' }),
        { type: 'detach' }], 'restart in place: leaving Redis and the VIP as they are');
    case 'control-handled':
      return done(state, [audit('control-request', event.record)], 'control request recorded');
    case 'state-persisted':
      return onStatePersisted(state);
    case 'shutdown-requested':
      return onShutdown(state, now, config);
    case 'switchover-requested':
      return onSwitchoverRequested(state, event, now, config);
    case 'redis-switchover-finished':
      return onRedisSwitchoverFinished(state, event, now, config);
    case 'handover-received':
      return onHandoverReceived(state, event, now, config);
    case 'switchover-result-received':
      return onSwitchoverResult(state, event);
    case 'maintenance-requested':
      return onMaintenanceRequested(state, event, now, config);
    case 'failover-requested':
      return onFailoverRequested(state, event, now, config);
    case 'stalled':
      return onStalled(state, event.stalledMs, now, config);
    case 'peer-redis-probed':
      return onPeerRedisProbed(state, event.down, event.detail, now, config);
    case 'replica-link-dropped':
      return onReplicaLinkDropped(state, now, config);
    case 'advert-requested':
      return onAdvertRequested(state, event.from, now, config);
    case 'quorum-answered':
    case 'quorum-renewed':
    case 'quorum-lost':
    case 'fence-applied':
    case 'quorum-marked':
      return onQuorumEvent(state, event, now, config);
    default:
      return assertNever(event);
  }
}

// ---------------------------------------------------------------------------
// Events

function onStarted(state: CoreState, e: Extract<Event, { type: 'started' }>, now: number, config: CoreConfig): StepResult {
  // RFC 5798 §6.4.1: a starting backup waits one master-down interval for a master.
  // Here INIT waits at most that long, and only when the local Redis is a master.
  const listen = masterDownMs(config.priority, config.advertIntervalMs);
  const next = withTimers({ ...state, vipFoundAtStart: e.vipPresent === true }, { advert: now, 'init-listen': now + listen });
  const actions: Action[] = [];
  if (e.loaded) actions.push(audit('config-loaded', { ...e.loaded, epoch: state.epoch }));
  actions.push(audit('daemon-started', { priority: config.priority, epoch: state.epoch, vipPresent: e.vipPresent ?? null }));
  return done(next, actions, 'daemon started');
}

/**
 * keepalived removes its VIPs at start-up; so do we, with one exception: when the local
 * Redis is a master the VIP may be serving clients right now (a restart in place), and
 * removing it would refuse their writes. INIT then decides within one listen window
 * whether this node keeps it (adopt) or releases it (a peer master outranks it).
 */
function startupVip(s: CoreState, e: Extract<Event, { type: 'health-checked' }>): { state: CoreState; actions: Action[] } {
  if (!s.vipFoundAtStart) return { state: s, actions: [] };
  const state: CoreState = { ...s, vipFoundAtStart: false };
  if (e.ok && e.redis?.role === 'master') {
    return { state, actions: [audit('vip-kept-at-startup', { reason: 'local Redis is a master; INIT decides' })] };
  }
  return { state, actions: [audit('vip-release', { reason: 'start-up clean-up: left over from a previous run' }), { type: 'release-vip' }] };
}

function onHealthChecked(
  state: CoreState,
  event: Extract<Event, { type: 'health-checked' }>,
  now: number,
  config: CoreConfig,
): StepResult {
  const health = nextHealth(state.health, event, now, config, state.redisChangedAtMs);
  const guarded = guardHistory(state.health.redis, { ...state, health }, now, config);
  if (guarded === null) return byRoleOnHealth(state, { ...state, health }, event, now, config);
  if (guarded.acted && guarded.state.role === 'MASTER') return prepend(guarded.actions, toFault(guarded.state, now, config, guarded.reason));
  return prepend(guarded.actions, byRoleOnHealth(state, guarded.state, event, now, config));
}

/** A health check as each role takes it (after the data guard). */
function byRoleOnHealth(
  state: CoreState,
  s: CoreState,
  event: Extract<Event, { type: 'health-checked' }>,
  now: number,
  config: CoreConfig,
): StepResult {
  const { health } = s;
  const turnedBad = health.healthy === false && state.health.healthy !== false;
  // Issue 14: a Redis Cluster node is not this pair's Redis. Refused at once, in maintenance
  // too: the VIP must not lead to it, and nothing redis-ha would send it is wanted.
  const turnedCluster = health.clusterEnabled === true && state.health.clusterEnabled !== true;
  const failure = health.clusterEnabled === true ? health.detail : `local Redis failed ${health.consecutiveFail} checks: ${health.detail}`;
  switch (s.role) {
    case 'INIT': {
      const kept = startupVip(s, event);
      return prepend(kept.actions, decideFromInit(kept.state, now, config, false));
    }
    case 'BACKUP':
      if (turnedBad || turnedCluster) return toFault(s, now, config, failure);
      return prependFence(keepFenceDown(s, config), (t) => reconcileReplica(t, now, config, 'health check'), s);
    case 'MASTER':
      if (turnedBad || turnedCluster) {
        return s.maintenance.on && !turnedCluster ? freeze(s, now, `${failure}; not stepping down`) : toFault(s, now, config, failure);
      }
      if (s.redisOp === null && health.redis?.role === 'replica' && event.ok) {
        const why = 'local Redis was found a replica while MASTER (changed outside redis-ha)';
        return s.maintenance.on ? freeze(s, now, `${why}; not stepping down`) : toBackup(s, now, config, why);
      }
      return prependFence(keepFence(s, now, config),
        (t) => keepMemory(t, now, config) ?? done(t, [], health.healthy === false ? 'health still failing' : 'health ok'), s);
    case 'FAULT': {
      // A Redis that answers again ends the VIP hold: it follows the new master from here.
      const ended = event.ok ? endVipHold(s, 'local Redis answers again') : null;
      if (ended !== null) return prepend(ended.actions, byRoleOnHealth(state, ended.state, event, now, config));
      // A node that cannot advertise stays FAULT (restart the daemon once fixed); its
      // Redis still follows the peer that took over.
      if (health.healthy === true && s.advertFailure === null) {
        return toBackup(s, now, config, `local Redis passed ${health.consecutiveOk} checks (rise ${config.rise})`);
      }
      // A Redis that restarts as a master while the peer is the master with newer data
      // is demoted at its first good check, not after `rise` checks.
      return prependFence(keepFenceDown(s, config),
        (t) => event.ok ? reconcileReplica(t, now, config, 'health check in FAULT') : done(t, [], 'still failing'), s);
    }
    default:
      return assertNever(s.role);
  }
}

/** The fence step `fenced` (if any) followed by `next` from its state. */
function prependFence(fenced: StepResult | null, next: (s: CoreState) => StepResult, s: CoreState): StepResult {
  if (fenced === null) return next(s);
  const r = next(fenced.state);
  return { state: r.state, actions: [...fenced.actions, ...r.actions], reason: r.actions.length > 0 ? r.reason : fenced.reason };
}

function onAdvert(state: CoreState, advert: Advert, fromAddress: string, now: number, config: CoreConfig): StepResult {
  const peer: PeerView = {
    nodeName: advert.nodeName,
    address: fromAddress,
    state: advert.state,
    priority: advert.priority,
    epoch: advert.epoch,
    advertIntervalMs: advert.advertIntervalMs,
    flags: advert.flags,
    maintenanceGen: advert.maintenanceGen ?? 0,
    redis: advert.redis,
    receivedAtMs: now,
    masterHeardAtMs: advert.state === 'MASTER' ? now : state.peer?.nodeName === advert.nodeName ? state.peer.masterHeardAtMs ?? null : null,
  };
  const adoption = adoptEpoch(state.knownEpoch, advert.epoch,
    { local: state.health.redis, peerRedis: config.peerRedis, senderReplId: advert.redis.replId });
  const { knownEpoch } = adoption;
  let s: CoreState = { ...state, peer, knownEpoch };
  const first: Action[] = knownEpoch > state.knownEpoch ? [persistState(s)] : [];
  // Once per value heard, not once per advert.
  if (!adoption.adopt && state.peer?.epoch !== advert.epoch) {
    first.push(audit('epoch-not-adopted', { node: advert.nodeName, heard: advert.epoch, knownEpoch, why: adoption.why }));
  }
  if (epochExhausted(knownEpoch) && !epochExhausted(state.knownEpoch)) {
    first.push(audit('epoch-ceiling-reached', { node: advert.nodeName, knownEpoch, ceiling: EPOCH_CEILING }));
  }
  const adopted = adoptPeerMaintenance(s, advert, state.peer?.maintenanceGen ?? null);
  if (adopted) {
    s = adopted.state;
    first.push(...adopted.actions);
  }
  const failsafe = onPeerHeardInFailsafe(s, now, config);
  let r = prepend(first, failsafe ?? onAdvertByRole(s, peer, now, config));
  if (adopted?.turnedOff) r = prepend(r.actions, resume(r.state, now, config, `maintenance turned off by ${peer.nodeName}`));
  const finished = onPeerAdvertDuringSwitchover(r.state, now, config);
  if (finished) r = prepend(r.actions, finished);
  if (state.peer?.flags.holdsVip === true && !advert.flags.holdsVip && vipDesired(r.state)) r = reannounceAfterLetGo(r, now);
  return r;
}

/**
 * The peer just stopped holding the VIP we hold (a switchover's old master let go).
 * While it held it, it answered clients' ARP probes, and Linux ignores a gratuitous ARP
 * for an entry updated less than `locktime` (1 s) ago, so the announcements sent at our
 * claim may all have been dropped: announce again now, and once more after the locktime,
 * or such a client keeps the old MAC until the next periodic refresh.
 */
function reannounceAfterLetGo(r: StepResult, now: number): StepResult {
  return { ...r, state: announceAfterLocktime(r.state, now), actions: [...r.actions, { type: 'announce-vip' }] };
}

function onAdvertByRole(s: CoreState, peer: PeerView, now: number, config: CoreConfig): StepResult {
  switch (s.role) {
    case 'INIT':
      return decideFromInit(s, now, config, false);
    case 'FAULT': {
      // The peer holds the VIP now: the hold has done its work.
      const ended = peer.flags.holdsVip ? endVipHold(s, `${peer.nodeName} holds the VIP`) : null;
      return ended === null ? done(s, [], 'advert noted (FAULT)') : done(ended.state, ended.actions, `advert noted (FAULT); ${peer.nodeName} holds the VIP: released`);
    }
    case 'BACKUP':
      return backupHeard(s, peer, now, config);
    case 'MASTER':
      return masterHeard(s, peer, now, config);
    default:
      return assertNever(s.role);
  }
}

function backupHeard(s: CoreState, peer: PeerView, now: number, config: CoreConfig): StepResult {
  if (peerCannotServe(peer)) {
    return takeOverFromFault(s, now, config, `peer ${peer.nodeName} reported FAULT (${peerStateText(peer)})`);
  }
  if (peer.state === 'INIT' && peer.redis.role === 'master' && !peer.flags.resigning) {
    // The master's daemon is restarting in place (its Redis is still the master): it is
    // alive, so its silence as MASTER must not start a takeover.
    const next = withTimers(s, { 'master-down': now + masterDownMs(config.priority, peer.advertIntervalMs) });
    return done(next, [], `peer ${peer.nodeName} is restarting with its Redis still master`);
  }
  const resigningMaster = peer.flags.resigning && (peer.state === 'MASTER' || peer.redis.role === 'master');
  if (peer.state !== 'MASTER' && !resigningMaster) return done(s, [], `advert noted (peer ${peer.state})`);
  if (peerResigning(peer)) {
    // RFC 5798 §6.4.2: on a priority-0 advert, Master_Down_Timer = Skew_Time.
    const at = now + skewMs(config.priority, peer.advertIntervalMs);
    const current = s.timers['master-down'];
    const next = withTimers(s, { 'master-down': current === undefined ? at : Math.min(current, at), preempt: undefined });
    return done(next, [], `peer ${peer.nodeName} is resigning: taking over after the skew time`);
  }
  const downAt = now + masterDownMs(config.priority, peer.advertIntervalMs);
  // A handover this node could not finish (finding Q8: no leader key for it) is over once
  // the old master serves again: the switchover ends, so its Redis (a fenced master since
  // the handover) is re-pointed like any other.
  const abandoned = s.switchover?.phase === 'taking-over' && peer.flags.switchingOver !== true
    ? finishTakingOver(s, false, `${peer.nodeName} is MASTER again (epoch ${peer.epoch}) before this node could take the role`)
    : null;
  const base = abandoned?.state ?? s;
  const cancelled = cancelWantedKey(base.takeoverHeld === null ? base : { ...base, takeoverHeld: null });
  let next = withTimers(cancelled.state, { 'master-down': downAt });
  // With a quorum the master holds the key and keeps it: a preemption would ask for it
  // for ever (a planned switchover moves the role instead).
  const mayPreempt = config.preempt && config.quorum.backend === 'none' && config.priority > peer.priority && !peer.flags.maintenance && !s.maintenance.on;
  if (!mayPreempt) next = withTimers(next, { preempt: undefined });
  else if (next.timers.preempt === undefined) next = withTimers(next, { preempt: now + config.preemptDelayMs });
  return prepend([...(abandoned?.actions ?? []), ...cancelled.actions], reconcileReplica(next, now, config, 'master advert'));
}

/**
 * The master is heard again: a takeover that waited for the leader key is off, and a key
 * this backup got meanwhile goes back (its Redis never served as master on it).
 */
function cancelWantedKey(s: CoreState): { state: CoreState; actions: Action[] } {
  const q = s.quorum;
  if (q.wanted === null && q.held === null) return { state: s, actions: [] };
  const state: CoreState = { ...s, quorum: { ...q, wanted: null, held: null }, timers: s.timers };
  const actions: Action[] = [audit('quorum-key-not-wanted', { reason: 'the master is heard again', wanted: q.wanted?.kind ?? null, held: q.held !== null })];
  if (q.held !== null) actions.push({ type: 'release-quorum' });
  return { state: withTimers(state, { 'quorum-retry': undefined }), actions };
}

function masterHeard(s: CoreState, peer: PeerView, now: number, config: CoreConfig): StepResult {
  if (peer.state !== 'MASTER' || peerResigning(peer)) {
    return done(s, [], `advert noted (peer ${peer.state})`);
  }
  // Two masters: after a partition heals, or a node restarted as master.
  const mine = rankOf(s, config);
  const theirs = peerRank(peer);
  const divergence = divergenceReport(s.health.redis, peer);
  if (outranks(theirs, mine)) {
    const reason =
      `dual master resolved: peer ${peer.nodeName} wins (${rankText(theirs)} over ${rankText(mine)}); stepping down`;
    const r = toBackup(s, now, config, reason);
    return { ...r, actions: [audit('dual-master-resolved', { winner: peer.nodeName, loser: config.nodeName, ...divergence }), ...r.actions] };
  }
  // Re-announce at most once per advert interval: if the two nodes ever disagreed on
  // the ranking (e.g. a peer seen from another source address), immediate replies to
  // each other's adverts would become a packet storm.
  const last = s.lastReannounceAtMs;
  if (last !== null && now - last < config.advertIntervalMs) {
    return done(s, [], `dual master: this node wins (${rankText(mine)} over ${rankText(theirs)}); re-announced recently`);
  }
  const actions: Action[] = [
    audit('dual-master-resolved', { winner: config.nodeName, loser: peer.nodeName, ...divergence }),
    sendAdvert(s, config),
  ];
  if (vipDesired(s)) actions.push({ type: 'announce-vip' });
  return done({ ...s, lastReannounceAtMs: now }, actions,
    `dual master resolved: this node wins (${rankText(mine)} over ${rankText(theirs)}); re-announcing`);
}

function onTimer(state: CoreState, timer: TimerName, now: number, config: CoreConfig): StepResult {
  const s = withTimers(state, { [timer]: undefined });
  switch (timer) {
    case 'advert': {
      const resent = resendHandover(s);
      return done(withTimers(resent.state, { advert: now + config.advertIntervalMs }),
        [sendAdvert(s, config), ...resent.actions], 'advert sent');
    }
    case 'switchover':
      return onSwitchoverTimer(s, now);
    case 'fault-release': {
      // A node master again within the hold holds the VIP by its claim (which lifts the refusal).
      const ended = vipDesired(s) ? null : endVipHold(state, 'VIP hold over');
      return ended === null ? done(s, [], 'VIP hold over') : done(ended.state, ended.actions, 'VIP hold over: released');
    }
    case 'garp-refresh':
      if (!vipDesired(s)) return done(s, [], 'garp refresh not needed');
      return done(withTimers(s, { 'garp-refresh': config.garpRefreshMs > 0 ? now + config.garpRefreshMs : undefined }),
        [{ type: 'announce-vip' }], 'VIP re-announced');
    case 'init-listen':
      return s.role === 'INIT' ? decideFromInit(s, now, config, true) : done(s, [], 'listen window over');
    case 'master-down': {
      if (s.role !== 'BACKUP') return done(s, [], 'master-down timer ignored');
      const peer = s.peer;
      // A resigning master is a planned stop: an operator's request, honoured in maintenance too.
      if (peer && peerResigning(peer)) {
        return takeOver(s, now, config, `peer ${peer.nodeName} resigned (priority 0)`);
      }
      const silentMs = peer ? Math.round(now - peer.receivedAtMs) : null;
      const why = silentMs === null
        ? `no advert from any master within the master-down interval (${Math.round(masterDownMs(config.priority, config.advertIntervalMs))} ms)`
        : `no master advert from ${peer?.nodeName} for ${silentMs} ms (master-down interval)`;
      return s.maintenance.on ? freeze(s, now, `${why}; not taking over`) : takeOver(s, now, config, why, { afterSilence: true });
    }
    case 'preempt': {
      const peer = s.peer;
      if (s.role !== 'BACKUP' || !peer || !config.preempt || peer.state !== 'MASTER' || peer.priority >= config.priority || s.maintenance.on) {
        return done(s, [], 'preempt no longer applies');
      }
      return takeOver(s, now, config, `preempting ${peer.nodeName} (priority ${config.priority} > ${peer.priority})`);
    }
    case 'quorum-retry':
    case 'quorum-fence':
      return onQuorumTimer(s, timer, now, config);
    case 'recovery-block':
      return done({ ...s, recoveryBlockUntilMs: null }, [], 'recovery block period over: automatic takeovers allowed again in the pair');
    case 'persist-retry':
      return s.persistFailure === null
        ? done(s, [], 'state file already written')
        : done(s, [persistState(s)], `retrying the state file write (failing since ${Math.round(now - s.persistFailure.sinceMs)} ms)`);
    default:
      return assertNever(timer);
  }
}

function onStatePersisted(s: CoreState): StepResult {
  if (s.persistFailure === null) return done(s, [], 'state file written');
  const { attempts, detail } = s.persistFailure;
  return done(withTimers({ ...s, persistFailure: null }, { 'persist-retry': undefined }),
    [audit('state-file-recovered', { failedAttempts: attempts, lastError: detail })],
    `state file written after ${attempts} failed attempt(s)`);
}

function onPromotionFinished(
  state: CoreState,
  event: Extract<Event, { type: 'promotion-finished' }>,
  now: number,
  config: CoreConfig,
): StepResult {
  const health = event.redis ? { ...state.health, redis: keepRunId(event.redis, state.health.redis) } : state.health;
  const s: CoreState = { ...state, redisOp: null, redisChangedAtMs: now, health };
  const record = audit('redis-promoted', { ok: event.ok, detail: event.detail, ...redisFields(event.redis) });
  const r = promotionOutcome(s, event.ok, event.detail, now, config);
  const finished = finishTakingOver(r.state, event.ok && s.role === 'MASTER', event.detail);
  return prepend([record], finished.actions.length > 0 ? prepend(r.actions, { ...finished, reason: r.reason }) : r);
}

function promotionOutcome(s: CoreState, ok: boolean, detail: string, now: number, config: CoreConfig): StepResult {
  if (s.role !== 'MASTER') {
    // We stepped down while Redis was being promoted: put it back behind the master.
    return reconcileReplica(s, now, config, 'promotion finished after stepping down');
  }
  if (!ok) return toBackup({ ...s, quorum: { ...s.quorum, fenceMark: null } }, now, config, `promotion failed: ${detail}`);
  const next = config.garpRefreshMs > 0 ? withTimers(s, { 'garp-refresh': now + config.garpRefreshMs }) : s;
  // Advertise at once: the peer learns that our Redis is now the master it may follow;
  // then etcd records it as the master that serves (quorum-memory.ts).
  // etcd first clears a mark this promotion fenced (a mark of this node's own cannot go
  // over another's) and records the master that serves (quorum-memory.ts).
  const remembered = keepMemory(next, now, config);
  const fenced = masterWrites(remembered?.state ?? next, now, config);
  return done(fenced.state, [...(remembered?.actions ?? []), ...fenced.actions, audit('vip-claim', { reason: 'Redis promoted' }), { type: 'claim-vip' },
    sendAdvert(next, config)], `Redis promoted (${detail}); claiming the VIP`);
}

function onVipObserved(state: CoreState, present: boolean, now: number, config: CoreConfig): StepResult {
  if (state.role === 'INIT') return done(state, [], 'VIP observed during INIT');
  if (state.timers['fault-release'] !== undefined) return done(state, [], 'VIP held (refusing) while the peer takes over');
  const want = vipDesired(state);
  if (present === want) {
    return present && !state.vipClaimed ? done({ ...state, vipClaimed: true }, [], 'VIP in place') : done(state, [], 'VIP as desired');
  }
  if (want) {
    // With etcd, only while the key is this node's (or in the failsafe, etcd away): a master
    // just out of a freeze longer than its lease (the kernel took the VIP with its lifetime)
    // may see this before it hears that its lease is gone, and must not take the VIP back
    // from the node that now holds the key (the lease's end steps it down).
    if (config.quorum.backend === 'etcd' && !holdsKey(state, now, config) && state.quorum.failsafeSinceMs === null) {
      return done(state, [], 'VIP missing on the master, whose lease is not current: not re-adding it');
    }
    return done(state, [audit('vip-repaired', { want: 'present', found: 'absent' }), { type: 'claim-vip' }],
      'VIP missing on the master: re-adding it (drift repaired)');
  }
  return done(state, [audit('vip-repaired', { want: 'absent', found: 'present', role: state.role }), { type: 'release-vip' }],
    `VIP present while ${state.role}${state.redisOp ? ` (${state.redisOp})` : ''}: removing it (drift repaired)`);
}

/**
 * After a stall, nothing this node heard or checked is current: the peer's adverts and
 * our health checks are still queued behind the late timers. Deadlines that depend on
 * hearing the peer (master-down, preempt, init-listen) restart from now, so a takeover
 * happens only if the peer stays silent for a whole fresh interval; an advert goes out
 * at once so the peer hears from us too. A master keeps its role: its own fresh health
 * check and the peer's queued adverts decide (an outranking master makes it step down).
 */
function onStalled(s: CoreState, stalledMs: number, now: number, config: CoreConfig): StepResult {
  const peerInterval = s.peer?.advertIntervalMs ?? config.advertIntervalMs;
  const restart = (timer: TimerName, afterMs: number): number | undefined =>
    s.timers[timer] === undefined ? undefined : now + afterMs;
  // Any other deadline that passed during the stall (garp-refresh, switchover) is due now:
  // left in the past it would be the next late timer, and the next stall, forever.
  const due: Partial<Record<TimerName, number>> = {};
  for (const [timer, at] of Object.entries(s.timers) as [TimerName, number | undefined][]) {
    if (at !== undefined && at < now) due[timer] = now;
  }
  const next = withTimers(s, {
    ...due,
    advert: now,
    'master-down': restart('master-down', masterDownMs(config.priority, peerInterval)),
    preempt: restart('preempt', config.preemptDelayMs),
    'init-listen': restart('init-listen', masterDownMs(config.priority, config.advertIntervalMs)),
  });
  const reason = `event loop stalled ${Math.round(stalledMs)} ms: re-verifying the peer and Redis before acting on late timers`;
  return done(next, [audit('stall-detected', { stalledMs: Math.round(stalledMs), role: s.role })], reason);
}

function onShutdown(state: CoreState, now: number, config: CoreConfig): StepResult {
  const s: CoreState = { ...state, resigning: true, timers: {}, switchover: null };
  const actions: Action[] = [];
  const op = state.switchover;
  if (op?.replyTo === 'local') {
    actions.push({ type: 'reply', requestId: op.requestId, ok: false, detail: `daemon shutting down during switchover (${op.phase})`, data: {} });
  }
  // INIT may be holding a VIP it kept at start-up, a switchover's old master the one it
  // keeps until the new master holds it; a stopping node holds none.
  const holding = state.role === 'INIT' || vipDesired(state) || state.timers['fault-release'] !== undefined;
  // With a quorum (or `prefer: safety`) a stopping master's Redis refuses writes before
  // the key goes: the backup that takes over must not find it still writable. The key
  // goes, and the daemon exits, once the fence has ended (`fence-applied`, quorum.ts):
  // released if it took, else left to lapse with the lease (review S3).
  const fencing = fenceManaged(config) && state.role === 'MASTER';
  if (fencing) actions.push({ type: 'fence-redis', writes: 'refused' });
  if (holding) actions.push({ type: 'release-vip' });
  let next = s;
  const keyKept = config.quorum.backend !== 'none' && state.quorum.held !== null && !fencing;
  const releasable = keyKept ? keyReleasableOnStop(s) : null;
  if (releasable !== null) {
    next = { ...s, quorum: { ...s.quorum, held: null } };
    actions.push({ type: 'release-quorum' });
  } else if (keyKept) {
    actions.push(audit('quorum-key-kept', { why: 'local Redis may take writes' }));
  }
  // RFC 5798 §6.4.3: a master that shuts down sends an advert with priority 0. Sent twice
  // so one lost datagram does not turn a planned stop into a master-down wait.
  actions.push(sendAdvert(next, config), sendAdvert(next, config));
  actions.push(audit('daemon-stopping', { role: state.role, vipReleased: holding }));
  if (!fencing) actions.push({ type: 'exit', code: 0 });
  const reason = fencing
    ? 'shutdown: fencing Redis, VIP released and priority-0 advert sent; exiting once the fence has ended (the key goes only if it took)'
    : state.role === 'MASTER'
      ? 'shutdown: VIP released and priority-0 advert sent; Redis left as it is'
      : `shutdown: priority-0 advert sent${keyKept ? (releasable !== null ? `; ${releasable}: leader key released` : '; leader key kept to lapse with its lease (local Redis may take writes)') : ''}`;
  return done(transitionTo(next, state.role, now, reason), actions, reason);
}

// ---------------------------------------------------------------------------
// Decisions

/**
 * INIT adopts what it finds: a replica stays a replica (BACKUP), a master stays a master
 * (MASTER, no promotion, no resync) unless a live peer that outranks it is a master too.
 */
function decideFromInit(s: CoreState, now: number, config: CoreConfig, listenOver: boolean): StepResult {
  const { healthy, redis } = s.health;
  if (healthy === null) return done(s, [], 'waiting for the first health check');
  if (!healthy) return toFault(s, now, config, `local Redis unhealthy at start-up: ${s.health.detail}`);
  if (!redis) return done(s, [], 'waiting for a Redis snapshot');
  if (redis.role === 'replica') return toBackup(s, now, config, 'adopted: local Redis is a replica');
  const peer = livePeer(s, now, config);
  const guarded = guardAtStart(s, peer, config, now);
  if (guarded !== null) return prepend(guarded.actions, toBackup(guarded.state, now, config, guarded.reason));
  if (!peer) {
    if (!listenOver) return done(s, [], 'local Redis is master; listening for a peer before adopting');
    return adoptMaster(s, now, config, 'adopted: local Redis is master and no peer master was heard');
  }
  const mine = rankOf(s, config);
  const theirs = peerRank(peer);
  const peerClaims = peer.state === 'MASTER' || peer.redis.role === 'master';
  if (!peerClaims || peerCannotServe(peer)) {
    // A FAULT peer that held the role after this node did (a newer epoch) may hold writes
    // our Redis lacks (its link or health failing, not its data): adopting would make its
    // Redis resync from ours once it is back (finding 10). As BACKUP this node still takes
    // over, a new epoch, from a peer that stays FAULT.
    if (peerCannotServe(peer) && peer.epoch > s.epoch && !historyContains(redis, peer.redis)) {
      return toBackup(s, now, config, `not adopting: peer ${peer.nodeName} (${peerStateText(peer)}) was master in a newer epoch ` +
        `(${peer.epoch} > ${s.epoch}) and local Redis ${historyText(redis)} does not hold its ${historyText(peer.redis)}`);
    }
    return adoptMaster(s, now, config, `adopted: local Redis is master, peer ${peer.nodeName} is ${peerStateText(peer)}`);
  }
  if (outranks(theirs, mine)) {
    return toBackup(s, now, config,
      `peer ${peer.nodeName} outranks this node as master (${rankText(theirs)} over ${rankText(mine)})`);
  }
  if (peer.state === 'MASTER') {
    // A live master is contested only by a newer epoch, and only when its Redis holds
    // nothing ours lacks: priority alone says nothing of whose Redis took the writes, and
    // the loser's resync would discard them (finding 9).
    const contest = contestable(s, redis, peer);
    if (contest !== null) return toBackup(s, now, config, `not contesting peer master ${peer.nodeName}: ${contest}`);
    return adoptMaster(s, now, config, `adopted: local Redis is master and outranks peer master ${peer.nodeName}`);
  }
  // Both Redis are masters and neither node is MASTER yet (a fresh pair): the winner
  // takes a new epoch so the election result is remembered across restarts.
  return takeOverAsIs(s, now, config,
    `elected: both Redis are masters; this node outranks ${peer.nodeName} (${rankText(mine)} over ${rankText(theirs)})`);
}

/** Why INIT must not contest the live master `peer` it outranks, or null when it may. */
function contestable(s: CoreState, local: RedisSnapshot, peer: PeerView): string | null {
  if (s.epoch <= peer.epoch) {
    return `it serves in epoch ${peer.epoch}, not older than this node's (${s.epoch}); priority alone does not say whose Redis holds the writes`;
  }
  const relation = compareHistories(local, peer.redis);
  if (relation.kind === 'lacks') {
    return `its Redis ${historyText(peer.redis)} holds ${relation.bytes} bytes the local ${historyText(local)} lacks`;
  }
  return null;
}

// ---------------------------------------------------------------------------
// Helpers

function nextHealth(
  h: HealthView,
  e: Extract<Event, { type: 'health-checked' }>,
  now: number,
  config: CoreConfig,
  redisChangedAtMs: number,
): HealthView {
  // A check that was sent before the last role change may report the old role.
  const fresh = (e.startedAtMs ?? now) >= redisChangedAtMs;
  const consecutiveOk = e.ok ? h.consecutiveOk + 1 : 0;
  const consecutiveFail = e.ok ? 0 : h.consecutiveFail + 1;
  let healthy = h.healthy;
  // The first check decides at once; afterwards rise/fall hysteresis applies, except that
  // a refused connection is proof (no Redis is listening), not one failed check among `fall`;
  // so is a Redis Cluster node (issue 14: refused whatever it answers).
  const proof = e.down === true || e.clusterEnabled === true;
  if (healthy === null) healthy = e.ok;
  else if (healthy && (consecutiveFail >= config.fall || proof)) healthy = false;
  else if (!healthy && consecutiveOk >= config.rise) healthy = true;
  return {
    healthy, consecutiveOk, consecutiveFail, detail: e.detail, redis: e.ok && fresh ? e.redis : h.redis, checkedAtMs: now, down: e.down === true,
    ...(e.clusterEnabled === true ? { clusterEnabled: true } : {}),
  };
}

