/**
 * The decision core: `step(state, event, now, config) -> { state, actions, reason }`.
 *
 * Pure and total: no I/O, no clock, no timers. It follows RFC 5798 (VRRPv3) for the
 * election and timers, with three changes for Redis: a node's health is its local
 * Redis (FAULT when it fails), the role is only taken after Redis is promoted, and
 * two masters are resolved by promotion epoch first, because the newer master holds
 * the newer writes (priority and address only break ties).
 *
 *                        started
 *                           |
 *                           v
 *     +------------------- INIT -------------------+
 *     | Redis replica, or a live          Redis master and no live master outranks it
 *     | master outranks us                (adopt: no role change, no resync)
 *     v                                            v
 *   BACKUP ---- master-down timer / peer FAULT ---> MASTER (promoting)
 *     ^   ^---- a master that outranks us ----------  |  promotion-finished ok
 *     |          (epoch, priority, address)           v
 *     |                                            MASTER (active: holds the VIP)
 *     | rise good checks                               |
 *   FAULT <----------- fall failed checks (any state) -+
 *
 * Ordering of effects (adapters carry them out serially, in this order):
 *  - promote Redis before claiming the VIP; release the VIP before demoting Redis;
 *  - a FAULT node releases the VIP at once and never claims it.
 */
import { compareAddresses } from './address.js';
import {
  initialState,
  vipDesired,
  type CoreConfig,
  type CoreState,
  type HealthView,
  type PeerView,
} from './state.js';
import { masterDownMs, PRIORITY_RESIGN, skewMs } from './timing.js';
import type { Action, Advert, AdvertBody, Event, NodeState, RedisSnapshot, TimerName } from './types.js';

export { initialState };

/** The result of one step: the next state, the effects to run in order, and why. */
export interface StepResult {
  readonly state: CoreState;
  readonly actions: readonly Action[];
  /** Human-readable reason; equals the new state's `reason` when the role changed. */
  readonly reason: string;
}

/** Feeds one event to the core at time `now` (monotonic milliseconds). */
export function step(state: CoreState, event: Event, now: number, config: CoreConfig): StepResult {
  if (state.resigning && event.type !== 'shutdown-requested') {
    return { state, actions: [], reason: 'shutting down: event ignored' };
  }
  switch (event.type) {
    case 'started':
      return onStarted(state, now, config);
    case 'health-checked':
      return onHealthChecked(state, event, now, config);
    case 'advert-received':
      return onAdvert(state, event.advert, event.fromAddress, now, config);
    case 'timer-fired':
      return onTimer(state, event.timer, now, config);
    case 'promotion-finished':
      return onPromotionFinished(state, event, now, config);
    case 'demotion-finished':
      return done({ ...state, redisOp: state.redisOp === 'demoting' ? null : state.redisOp, redisChangedAt: now }, [
        audit('redis-demoted', { ok: event.ok, detail: event.detail }),
      ], event.ok ? `demotion finished: ${event.detail}` : `demotion failed: ${event.detail}`);
    case 'vip-observed':
      return onVipObserved(state, event.present);
    case 'effect-failed':
      return done(state, [audit('effect-failed', { action: event.action, detail: event.detail })],
        `${event.action} failed: ${event.detail}`);
    case 'shutdown-requested':
      return onShutdown(state, now, config);
    default:
      return assertNever(event);
  }
}

// ---------------------------------------------------------------------------
// Events

function onStarted(state: CoreState, now: number, config: CoreConfig): StepResult {
  // RFC 5798 §6.4.1: a starting backup waits one master-down interval for a master.
  // Here INIT waits at most that long, and only when the local Redis is a master.
  const listen = masterDownMs(config.priority, config.advertIntervalMs);
  const next = withTimers(state, { advert: now, 'init-listen': now + listen });
  return done(next, [audit('daemon-started', { priority: config.priority, epoch: state.epoch })], 'daemon started');
}

function onHealthChecked(
  state: CoreState,
  event: Extract<Event, { type: 'health-checked' }>,
  now: number,
  config: CoreConfig,
): StepResult {
  const health = nextHealth(state.health, event, now, config, state.redisChangedAt);
  const s = { ...state, health };
  const turnedBad = health.healthy === false && state.health.healthy !== false;
  switch (s.role) {
    case 'INIT':
      return decideFromInit(s, now, config, false);
    case 'BACKUP':
      if (turnedBad) return toFault(s, now, config, `local Redis failed ${health.consecutiveFail} checks: ${health.detail}`);
      return reconcileReplica(s, now, config, 'health check');
    case 'MASTER':
      if (turnedBad) return toFault(s, now, config, `local Redis failed ${health.consecutiveFail} checks: ${health.detail}`);
      if (s.redisOp === null && health.redis?.role === 'replica' && event.ok) {
        return toBackup(s, now, config, 'local Redis was found a replica while MASTER (changed outside redis-ha)');
      }
      return done(s, [], 'health ok');
    case 'FAULT':
      if (health.healthy === true) {
        return toBackup(s, now, config, `local Redis passed ${health.consecutiveOk} checks (rise ${config.rise})`);
      }
      // A Redis that restarts as a master while the peer is the master with newer data
      // is demoted at its first good check, not after `rise` checks.
      return event.ok ? reconcileReplica(s, now, config, 'health check in FAULT') : done(s, [], 'still failing');
    default:
      return assertNever(s.role);
  }
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
    redis: advert.redis,
    receivedAt: now,
  };
  const knownEpoch = Math.max(state.knownEpoch, advert.epoch);
  const s: CoreState = { ...state, peer, knownEpoch };
  const persist: Action[] = knownEpoch > state.knownEpoch ? [persistState(s)] : [];
  const r = onAdvertByRole(s, peer, now, config);
  return { ...r, actions: [...persist, ...r.actions] };
}

function onAdvertByRole(s: CoreState, peer: PeerView, now: number, config: CoreConfig): StepResult {
  switch (s.role) {
    case 'INIT':
      return decideFromInit(s, now, config, false);
    case 'FAULT':
      return done(s, [], 'advert noted (FAULT)');
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
    return takeOver(s, now, config, `peer ${peer.nodeName} reported FAULT (${peerStateText(peer)})`);
  }
  if (peer.state === 'INIT' && peer.redis.role === 'master' && !peer.flags.resigning) {
    // The master's daemon is restarting in place (its Redis is still the master): it is
    // alive, so its silence as MASTER must not start a takeover.
    const next = withTimers(s, { 'master-down': now + masterDownMs(config.priority, peer.advertIntervalMs) });
    return done(next, [], `peer ${peer.nodeName} is restarting with its Redis still master`);
  }
  const resigningMaster = peer.flags.resigning && (peer.state === 'MASTER' || peer.redis.role === 'master');
  if (peer.state !== 'MASTER' && !resigningMaster) return done(s, [], `advert noted (peer ${peer.state})`);
  if (peer.priority === PRIORITY_RESIGN || peer.flags.resigning) {
    // RFC 5798 §6.4.2: on a priority-0 advert, Master_Down_Timer = Skew_Time.
    const at = now + skewMs(config.priority, peer.advertIntervalMs);
    const current = s.timers['master-down'];
    const next = withTimers(s, { 'master-down': current === undefined ? at : Math.min(current, at), preempt: undefined });
    return done(next, [], `peer ${peer.nodeName} is resigning: taking over after the skew time`);
  }
  const downAt = now + masterDownMs(config.priority, peer.advertIntervalMs);
  let next = withTimers(s, { 'master-down': downAt });
  const mayPreempt = config.preempt && config.priority > peer.priority && !peer.flags.maintenance;
  if (!mayPreempt) next = withTimers(next, { preempt: undefined });
  else if (next.timers.preempt === undefined) next = withTimers(next, { preempt: now + config.preemptDelayMs });
  return reconcileReplica(next, now, config, 'master advert');
}

function masterHeard(s: CoreState, peer: PeerView, now: number, config: CoreConfig): StepResult {
  if (peer.state !== 'MASTER' || peer.flags.resigning || peer.priority === PRIORITY_RESIGN) {
    return done(s, [], `advert noted (peer ${peer.state})`);
  }
  // Two masters: after a partition heals, or a node restarted as master.
  const mine = { epoch: s.epoch, priority: config.priority, address: config.nodeAddress };
  const theirs = { epoch: peer.epoch, priority: peer.priority, address: peer.address };
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
  const last = s.lastReannounceAt;
  if (last !== null && now - last < config.advertIntervalMs) {
    return done(s, [], `dual master: this node wins (${rankText(mine)} over ${rankText(theirs)}); re-announced recently`);
  }
  const actions: Action[] = [
    audit('dual-master-resolved', { winner: config.nodeName, loser: peer.nodeName, ...divergence }),
    sendAdvert(s, config),
  ];
  if (vipDesired(s)) actions.push({ type: 'announce-vip' });
  return done({ ...s, lastReannounceAt: now }, actions,
    `dual master resolved: this node wins (${rankText(mine)} over ${rankText(theirs)}); re-announcing`);
}

function onTimer(state: CoreState, timer: TimerName, now: number, config: CoreConfig): StepResult {
  const s = withTimers(state, { [timer]: undefined });
  switch (timer) {
    case 'advert':
      return done(withTimers(s, { advert: now + config.advertIntervalMs }), [sendAdvert(s, config)], 'advert sent');
    case 'garp-refresh':
      if (!vipDesired(s) || config.garpRefreshMs <= 0) return done(s, [], 'garp refresh not needed');
      return done(withTimers(s, { 'garp-refresh': now + config.garpRefreshMs }), [{ type: 'announce-vip' }], 'VIP re-announced');
    case 'init-listen':
      return s.role === 'INIT' ? decideFromInit(s, now, config, true) : done(s, [], 'listen window over');
    case 'master-down': {
      if (s.role !== 'BACKUP') return done(s, [], 'master-down timer ignored');
      const peer = s.peer;
      if (peer && (peer.flags.resigning || peer.priority === PRIORITY_RESIGN)) {
        return takeOver(s, now, config, `peer ${peer.nodeName} resigned (priority 0)`);
      }
      const silentMs = peer ? Math.round(now - peer.receivedAt) : null;
      return takeOver(s, now, config, silentMs === null
        ? `no advert from any master within the master-down interval (${Math.round(masterDownMs(config.priority, config.advertIntervalMs))} ms)`
        : `no master advert from ${peer?.nodeName} for ${silentMs} ms (master-down interval)`);
    }
    case 'preempt': {
      const peer = s.peer;
      if (s.role !== 'BACKUP' || !peer || !config.preempt || peer.state !== 'MASTER' || peer.priority >= config.priority) {
        return done(s, [], 'preempt no longer applies');
      }
      return takeOver(s, now, config, `preempting ${peer.nodeName} (priority ${config.priority} > ${peer.priority})`);
    }
    default:
      return assertNever(timer);
  }
}

function onPromotionFinished(
  state: CoreState,
  event: Extract<Event, { type: 'promotion-finished' }>,
  now: number,
  config: CoreConfig,
): StepResult {
  const health = event.redis ? { ...state.health, redis: event.redis } : state.health;
  const s: CoreState = { ...state, redisOp: null, redisChangedAt: now, health };
  const record = audit('redis-promoted', { ok: event.ok, detail: event.detail, ...redisFields(event.redis) });
  if (s.role !== 'MASTER') {
    // We stepped down while Redis was being promoted: put it back behind the master.
    const r = reconcileReplica(s, now, config, 'promotion finished after stepping down');
    return { ...r, actions: [record, ...r.actions] };
  }
  if (!event.ok) {
    const r = toBackup(s, now, config, `promotion failed: ${event.detail}`);
    return { ...r, actions: [record, ...r.actions] };
  }
  const next = config.garpRefreshMs > 0 ? withTimers(s, { 'garp-refresh': now + config.garpRefreshMs }) : s;
  // Advertise at once: the peer learns that our Redis is now the master it may follow.
  return done(next, [record, { type: 'claim-vip' }, audit('vip-claim', { reason: 'Redis promoted' }), sendAdvert(next, config)],
    `Redis promoted (${event.detail}); claiming the VIP`);
}

function onVipObserved(state: CoreState, present: boolean): StepResult {
  if (state.role === 'INIT') return done(state, [], 'VIP observed during INIT');
  const want = vipDesired(state);
  if (present === want) return done(state, [], 'VIP as desired');
  if (want) {
    return done(state, [{ type: 'claim-vip' }, audit('vip-repaired', { want: 'present', found: 'absent' })],
      'VIP missing on the master: re-adding it (drift repaired)');
  }
  return done(state, [{ type: 'release-vip' }, audit('vip-repaired', { want: 'absent', found: 'present', role: state.role })],
    `VIP present while ${state.role}${state.redisOp ? ` (${state.redisOp})` : ''}: removing it (drift repaired)`);
}

function onShutdown(state: CoreState, now: number, config: CoreConfig): StepResult {
  const s: CoreState = { ...state, resigning: true, timers: {} };
  const actions: Action[] = [];
  // INIT may be holding a VIP it kept at start-up; a stopping node holds none.
  if (state.role === 'MASTER' || state.role === 'INIT') actions.push({ type: 'release-vip' });
  // RFC 5798 §6.4.3: a master that shuts down sends an advert with priority 0. Sent twice
  // so one lost datagram does not turn a planned stop into a master-down wait.
  actions.push(sendAdvert(s, config), sendAdvert(s, config));
  actions.push(audit('daemon-stopping', { role: state.role, vipReleased: state.role === 'MASTER' }));
  actions.push({ type: 'exit', code: 0 });
  const reason = state.role === 'MASTER'
    ? 'shutdown: VIP released and priority-0 advert sent; Redis left as it is'
    : 'shutdown: priority-0 advert sent';
  return done(transitionTo(s, state.role, now, reason), actions, reason);
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
  if (!peer) {
    if (!listenOver) return done(s, [], 'local Redis is master; listening for a peer before adopting');
    return adoptMaster(s, now, config, 'adopted: local Redis is master and no peer master was heard');
  }
  const mine = { epoch: s.epoch, priority: config.priority, address: config.nodeAddress };
  const theirs = { epoch: peer.epoch, priority: peer.priority, address: peer.address };
  const peerClaims = peer.state === 'MASTER' || peer.redis.role === 'master';
  if (!peerClaims || peerCannotServe(peer)) {
    return adoptMaster(s, now, config, `adopted: local Redis is master, peer ${peer.nodeName} is ${peerStateText(peer)}`);
  }
  if (outranks(theirs, mine)) {
    return toBackup(s, now, config,
      `peer ${peer.nodeName} outranks this node as master (${rankText(theirs)} over ${rankText(mine)})`);
  }
  if (peer.state === 'MASTER') {
    return adoptMaster(s, now, config, `adopted: local Redis is master and outranks peer master ${peer.nodeName}`);
  }
  // Both Redis are masters and neither node is MASTER yet (a fresh pair): the winner
  // takes a new epoch so the election result is remembered across restarts.
  return takeOverAsIs(s, now, config,
    `elected: both Redis are masters; this node outranks ${peer.nodeName} (${rankText(mine)} over ${rankText(theirs)})`);
}

function adoptMaster(s: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  const next = withTimers(transitionTo(s, 'MASTER', now, reason), {
    'master-down': undefined, preempt: undefined, 'init-listen': undefined,
    'garp-refresh': config.garpRefreshMs > 0 ? now + config.garpRefreshMs : undefined,
  });
  return done(next, [transitionAudit(s, next, config), sendAdvert(next, config), { type: 'claim-vip' },
    audit('vip-claim', { reason: 'adopted master' })], reason);
}

/** Becomes MASTER with a new epoch without touching Redis (it already is a master). */
function takeOverAsIs(s: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  const epoch = Math.max(s.epoch, s.knownEpoch, s.peer?.epoch ?? 0) + 1;
  const r = adoptMaster({ ...s, epoch, knownEpoch: epoch }, now, config, reason);
  return { ...r, actions: [persistState(r.state), ...r.actions] };
}

/** BACKUP → MASTER: new epoch, advertise at once, promote Redis; the VIP follows on success. */
function takeOver(s: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  const epoch = Math.max(s.epoch, s.knownEpoch, s.peer?.epoch ?? 0) + 1;
  const base = transitionTo({ ...s, epoch, knownEpoch: epoch, redisOp: 'promoting' }, 'MASTER', now, reason);
  const next = withTimers(base, {
    'master-down': undefined, preempt: undefined, 'init-listen': undefined, advert: now + config.advertIntervalMs,
  });
  // Catch up with the old master only if it may still be alive; a peer that reported
  // FAULT has a dead Redis, so asking it would only spend the connect timeout.
  const catchUpFrom = s.peer && peerCannotServe(s.peer) ? null : config.peerRedis;
  return done(next, [
    transitionAudit(s, next, config),
    persistState(next),
    sendAdvert(next, config),
    { type: 'promote-redis', catchUpFrom },
  ], reason);
}

function toBackup(s: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  // INIT may have kept a VIP found at start-up (local Redis was a master); release it too.
  const wasHolding = s.role === 'MASTER' || s.role === 'INIT';
  const peerInterval = s.peer?.advertIntervalMs ?? config.advertIntervalMs;
  const next = withTimers(transitionTo(s, 'BACKUP', now, reason), {
    'master-down': now + masterDownMs(config.priority, peerInterval),
    preempt: undefined, 'init-listen': undefined, 'garp-refresh': undefined,
    advert: s.timers.advert ?? now,
  });
  const actions: Action[] = [transitionAudit(s, next, config)];
  if (wasHolding) actions.push({ type: 'release-vip' }, audit('vip-release', { reason }));
  if (s.role === 'MASTER') actions.push(sendAdvert(next, config));
  const r = reconcileReplica(next, now, config, 'entered BACKUP');
  return { state: r.state, actions: [...actions, ...r.actions], reason };
}

function toFault(s: CoreState, now: number, config: CoreConfig, reason: string): StepResult {
  const next = withTimers(transitionTo(s, 'FAULT', now, reason), {
    'master-down': undefined, preempt: undefined, 'init-listen': undefined, 'garp-refresh': undefined,
    advert: now + config.advertIntervalMs,
  });
  // A node with a dead Redis never keeps the VIP; the release is unconditional (idempotent).
  return done(next, [
    transitionAudit(s, next, config),
    { type: 'release-vip' },
    audit('vip-release', { reason }),
    sendAdvert(next, config),
  ], reason);
}

/**
 * Keeps the local Redis behind a live master peer: demotes a local master, re-points a
 * replica that follows someone else. Only towards a peer whose Redis says it is a master.
 */
function reconcileReplica(s: CoreState, now: number, config: CoreConfig, why: string): StepResult {
  const local = s.health.redis;
  const peer = livePeer(s, now, config);
  if (!local || s.redisOp !== null || s.role === 'MASTER' || !peer) return done(s, [], `${why}: nothing to do`);
  if (peer.state !== 'MASTER' || peer.redis.role !== 'master') return done(s, [], `${why}: peer is not a Redis master`);
  const target = config.peerRedis;
  const following = local.role === 'replica' && local.masterHost === target.host && local.masterPort === target.port;
  if (following) return done(s, [], `${why}: replicating ${target.host}:${target.port}`);
  const what = local.role === 'master'
    ? `local Redis is a master while ${peer.nodeName} is MASTER (epoch ${peer.epoch})`
    : `local Redis replicates ${local.masterHost}:${local.masterPort}, not the master`;
  const next: CoreState = { ...s, redisOp: 'demoting' };
  const data = { master: `${target.host}:${target.port}`, found: local.role, ...divergenceReport(local, peer) };
  return done(next, [audit('redis-demote', { reason: what, ...data }), { type: 'replicate-from', master: target }],
    `${what}: REPLICAOF ${target.host} ${target.port}`);
}

// ---------------------------------------------------------------------------
// Helpers

function nextHealth(
  h: HealthView,
  e: Extract<Event, { type: 'health-checked' }>,
  now: number,
  config: CoreConfig,
  redisChangedAt: number,
): HealthView {
  // A check that was sent before the last role change may report the old role.
  const fresh = (e.startedAt ?? now) >= redisChangedAt;
  const consecutiveOk = e.ok ? h.consecutiveOk + 1 : 0;
  const consecutiveFail = e.ok ? 0 : h.consecutiveFail + 1;
  let healthy = h.healthy;
  // The first check decides at once; afterwards rise/fall hysteresis applies.
  if (healthy === null) healthy = e.ok;
  else if (healthy && consecutiveFail >= config.fall) healthy = false;
  else if (!healthy && consecutiveOk >= config.rise) healthy = true;
  return { healthy, consecutiveOk, consecutiveFail, detail: e.detail, redis: e.ok && fresh ? e.redis : h.redis, checkedAt: now };
}

function livePeer(s: CoreState, now: number, config: CoreConfig): PeerView | null {
  const p = s.peer;
  if (!p) return null;
  return now - p.receivedAt <= masterDownMs(config.priority, p.advertIntervalMs) ? p : null;
}

function peerCannotServe(peer: PeerView): boolean {
  return peer.state === 'FAULT' || peer.flags.fault;
}

interface Rank {
  readonly epoch: number;
  readonly priority: number;
  readonly address: string;
}

/** Newer epoch first (it holds the newer writes), then priority, then address. */
export function outranks(a: Rank, b: Rank): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.priority !== b.priority) return a.priority > b.priority;
  return compareAddresses(a.address, b.address) > 0;
}

function rankText(r: Rank): string {
  return `epoch ${r.epoch}, priority ${r.priority}, ${r.address}`;
}

function peerStateText(p: PeerView): string {
  return `${p.state}${p.flags.fault ? ' fault' : ''}, Redis ${p.redis.role}`;
}

/**
 * How far the losing history ran past the point where the two diverged. When the winner
 * was promoted from the loser's history (its replid2 is the loser's replid), the
 * divergence point is the winner's second_repl_offset; everything the loser holds past
 * it will be discarded by the resync.
 */
export function divergenceReport(local: RedisSnapshot | null, peer: PeerView): Record<string, unknown> {
  if (!local) return { divergence: 'unknown: no local Redis snapshot' };
  const base = {
    localReplId: local.replId, localOffset: local.offset,
    peerReplId: peer.redis.replId, peerReplId2: peer.redis.replId2, peerOffset: peer.redis.offset,
  };
  if (local.replId === peer.redis.replId) return { ...base, discardedBytes: 0, divergence: 'same history' };
  if (peer.redis.replId2 === local.replId && peer.redis.secondOffset > 0) {
    const point = peer.redis.secondOffset - 1;
    return { ...base, divergenceOffset: point, discardedBytes: Math.max(0, local.offset - point) };
  }
  return { ...base, divergence: 'histories unrelated: full resync, every local write since the last sync is discarded' };
}

function transitionTo(s: CoreState, role: NodeState, now: number, reason: string): CoreState {
  return { ...s, role, since: role === s.role ? s.since : now, reason };
}

function withTimers(s: CoreState, changes: Partial<Record<TimerName, number | undefined>>): CoreState {
  const timers: Partial<Record<TimerName, number>> = { ...s.timers };
  for (const [k, v] of Object.entries(changes) as [TimerName, number | undefined][]) {
    if (v === undefined) delete timers[k];
    else timers[k] = v;
  }
  return { ...s, timers };
}

function advertBody(s: CoreState, config: CoreConfig): AdvertBody {
  const r = s.health.redis;
  return {
    nodeName: config.nodeName,
    state: s.role,
    priority: s.resigning ? PRIORITY_RESIGN : config.priority,
    advertIntervalMs: config.advertIntervalMs,
    epoch: s.epoch,
    flags: { fault: s.role === 'FAULT', resigning: s.resigning, maintenance: false },
    redis: r
      ? { role: s.health.healthy === false ? 'unknown' : r.role, replId: r.replId, replId2: r.replId2, offset: r.offset, secondOffset: r.secondOffset }
      : { role: 'unknown', replId: '', replId2: '', offset: 0, secondOffset: -1 },
  };
}

function sendAdvert(s: CoreState, config: CoreConfig): Action {
  return { type: 'send-advert', advert: advertBody(s, config) };
}

function persistState(s: CoreState): Action {
  return { type: 'persist-state', epoch: s.epoch, knownEpoch: s.knownEpoch };
}

function audit(event: string, data: Record<string, unknown>): Action {
  return { type: 'audit', event, data };
}

function transitionAudit(from: CoreState, to: CoreState, config: CoreConfig): Action {
  const p = from.peer;
  return audit('transition', {
    from: from.role,
    to: to.role,
    reason: to.reason,
    priority: config.priority,
    epoch: to.epoch,
    peer: p ? { node: p.nodeName, state: p.state, priority: p.priority, epoch: p.epoch, redis: p.redis } : null,
    ...redisFields(from.health.redis),
  });
}

function redisFields(r: RedisSnapshot | null): Record<string, unknown> {
  return r ? { redisRole: r.role, replId: r.replId, replId2: r.replId2, offset: r.offset } : { redisRole: 'unknown' };
}

function done(state: CoreState, actions: readonly Action[], reason: string): StepResult {
  return { state, actions, reason };
}

function assertNever(x: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(x)}`);
}
