/**
 * The core's side of the quorum (backend `etcd`, issue 11): what the answers and events
 * of the leader key do to this node.
 *
 *   acquire answered held     → the mastership waiting for the key goes ahead
 *                               (`quorum.wanted`); a key nobody wants is given back
 *   held by another / no etcd → the wish stays; asked again after `retryMs`
 *   renewed                   → the master's fence deadline moves on
 *   lost, or the deadline     → the master fences its Redis and steps down, unless it
 *     (`quorum-fence` timer)    still hears its peer and the peer is not taking over:
 *                               then it serves on without the lease (failsafe, as in
 *                               Patroni) and keeps asking for the key
 *   fence applied (refused)   → a node that is no longer master gives its key up; a
 *                               stopping master gives it up and exits
 *
 * The master's deadline is its own: the send time of the last acknowledged keepalive
 * plus the granted TTL, never later than etcd's deletion of the key. It fences
 * `fenceLeadMs` before it (clock-rate bound and the time the fence takes; see
 * `quorumFenceLeadMs` in timing.ts), so its Redis refuses writes before another node
 * can hold the key.
 */
import { audit, done, fenceManaged, livePeer, prepend, withQuorum, withTimers, type StepResult } from './common.js';
import { holdsKey } from './quorum-gate.js';
import { onQuorumMarked } from './quorum-memory.js';
import type { CoreConfig, CoreState, WantedMastership } from './state.js';
import { failsafeSilenceMs } from './timing.js';
import { adoptMaster, takeOver, takeOverAsIs, toBackup } from './transitions.js';
import { keepFence } from './master-fence.js';
import type { Action, Event, FenceSetting } from './types.js';

type QuorumEvent = Extract<Event, { type: 'quorum-answered' | 'quorum-renewed' | 'quorum-lost' | 'fence-applied' | 'quorum-marked' }>;

/** One of the quorum's events. */
export function onQuorumEvent(s: CoreState, e: QuorumEvent, now: number, config: CoreConfig): StepResult {
  switch (e.type) {
    case 'quorum-answered':
      return onAnswered(s, e, now, config);
    case 'quorum-renewed': {
      const held = s.quorum.held;
      if (held === null) return done(s, [], 'lease renewed (no key held)');
      return done(armQuorumFence(withQuorum(s, { held: { ...held, validUntilAtMs: e.validUntilAtMs } }), config, now), [],
        `lease renewed: key held until ${Math.round(e.validUntilAtMs - now)} ms from now`);
    }
    case 'quorum-lost':
      return onLost(s, e, now, config);
    case 'fence-applied':
      return onFenceApplied(s, e.writes, e.ok, e.detail);
    case 'quorum-marked':
      return onQuorumMarked(s, e, config, (t) => keepFence(t, now, config));
    default: {
      const never: never = e;
      throw new Error(`unhandled quorum event ${JSON.stringify(never)}`);
    }
  }
}

function onAnswered(s0: CoreState, e: Extract<Event, { type: 'quorum-answered' }>, now: number, config: CoreConfig): StepResult {
  const a = e.answer;
  const s = withQuorum(s0, { asking: null, last: { what: a.outcome, detail: a.detail, atMs: now } });
  const wanted = s.quorum.wanted;
  if (a.outcome === 'held') {
    // A mark of this node's own left by an earlier mastership (or run) is cleared like any
    // other of its own, once a replica acknowledges.
    const own = a.memory.relaxed !== null && a.memory.relaxed.node === config.nodeName && s.quorum.relaxMark === null
      ? { relaxMark: { epoch: a.memory.relaxed.epoch, state: 'marked' as const } } : {};
    // An epoch etcd remembers a master in is known: a later takeover goes above it.
    const knownEpoch = Math.max(s.knownEpoch, a.memory.last?.epoch ?? 0, a.memory.relaxed?.epoch ?? 0);
    const held = withQuorum({ ...s, knownEpoch }, { held: { epoch: a.epoch, validUntilAtMs: a.validUntilAtMs }, holder: null, memory: a.memory, ...own });
    const record = audit('quorum-acquired', { epoch: a.epoch, validForMs: Math.round(a.validUntilAtMs - now), detail: a.detail });
    if (s.role === 'MASTER') {
      const restored = s.quorum.failsafeSinceMs !== null;
      const next = armQuorumFence(withQuorum(held, { failsafeSinceMs: null }), config, now);
      return done(next, restored ? [audit('quorum-restored', { failsafeMs: Math.round(now - (s.quorum.failsafeSinceMs ?? now)), epoch: a.epoch })] : [],
        restored ? 'leader key held again: failsafe over' : 'leader key kept');
    }
    if (wanted === null) {
      return done(withQuorum(held, { held: null }), [record, { type: 'release-quorum' }], 'leader key granted but no longer wanted: released');
    }
    return prepend([record], resumeWanted(held, now, config));
  }
  const holder = a.outcome === 'held-by-other' ? a.holder : s.quorum.holder;
  const changed = s0.quorum.last?.what !== a.outcome || JSON.stringify(s0.quorum.holder) !== JSON.stringify(holder);
  const peerHolds = a.outcome === 'held-by-other' && wanted !== null && holder !== null && holder.node === s.peer?.nodeName;
  const next = withTimers(withQuorum(s, { holder, ...(peerHolds && wanted !== null ? { wanted: { ...wanted, sawPeerHold: true } } : {}) }),
    { 'quorum-retry': now + config.quorum.retryMs });
  const record = changed
    ? [audit(a.outcome === 'held-by-other' ? 'quorum-held-by-other' : 'quorum-unreachable', { holder, detail: a.detail, wanted: wanted?.kind ?? null })]
    : [];
  const what = a.outcome === 'held-by-other'
    ? `the leader key is held by ${holder ? `${holder.node} (epoch ${holder.epoch})` : 'another node'}`
    : `etcd is unreachable (${a.detail}): no promotion without etcd`;
  // Held by this node's own earlier lease (the adapter normally takes that back itself):
  // not another master, so no reason to fence.
  const another = a.outcome === 'held-by-other' && a.holder?.node !== config.nodeName;
  if (s.role === 'MASTER' && s.quorum.failsafeSinceMs !== null && another) {
    return prepend(record, fenceAndStepDown(next, now, config, `serving without a lease and ${what}`));
  }
  return done(next, record, wanted ? `${wanted.reason}; ${what}; asking again in ${config.quorum.retryMs} ms` : what);
}

/** Runs the mastership that waited for the key (it passes the gate now), if it still applies. */
function resumeWanted(s: CoreState, now: number, config: CoreConfig): StepResult {
  const w = s.quorum.wanted;
  if (w === null) return done(s, [], 'no mastership waiting for the key');
  const fits = w.kind === 'takeover' ? s.role === 'BACKUP' : s.role === 'INIT';
  // Maintenance turned on while the takeover waited for the key: an automatic one is off.
  const frozen = s.maintenance.on && (w.afterSilence || w.afterFault === true);
  if (!fits || frozen) {
    if (frozen) {
      return done(withQuorum(s, { wanted: null, held: null }), s.quorum.held === null ? [] : [{ type: 'release-quorum' }],
        `${w.reason}; maintenance is on: not taking over (the leader key, if held, released)`);
    }
    return done(withQuorum(s, { wanted: null, held: null }), [{ type: 'release-quorum' }],
      `${w.kind} no longer applies (node is ${s.role}): leader key released`);
  }
  const r = runWanted(s, w, now, config);
  // A gate before the quorum's (replication lag, recovery block, the state file) held it
  // back: the wish is off for now and the key, if held, goes back (it would block the
  // peer for nothing); the gate looks again later.
  if (r.state.role !== 'MASTER' && r.state.quorum.wanted === w) {
    const held = r.state.quorum.held !== null;
    return { ...r, state: withQuorum(r.state, { wanted: null, held: null }), actions: held ? [...r.actions, { type: 'release-quorum' }] : r.actions };
  }
  return r;
}

function runWanted(s: CoreState, w: WantedMastership, now: number, config: CoreConfig): StepResult {
  switch (w.kind) {
    case 'takeover':
      return takeOver(s, now, config, w.reason, {
        afterSilence: w.afterSilence,
        ...(w.afterFault === true ? { afterFault: true } : {}),
        ...(w.minEpoch !== undefined ? { minEpoch: w.minEpoch } : {}),
        ...(w.catchUpFrom !== undefined ? { catchUpFrom: w.catchUpFrom } : {}),
        ...(w.forced === true ? { forced: true } : {}),
      });
    case 'as-is':
      return takeOverAsIs(s, now, config, w.reason);
    case 'adopt':
      return adoptMaster(s, now, config, w.reason);
    default: {
      const never: never = w.kind;
      throw new Error(`unhandled mastership ${String(never)}`);
    }
  }
}

function onLost(s0: CoreState, e: Extract<Event, { type: 'quorum-lost' }>, now: number, config: CoreConfig): StepResult {
  const s = withQuorum(s0, { held: null, last: { what: `lost: ${e.reason}`, detail: e.detail, atMs: now } });
  const record = audit('quorum-lost', { reason: e.reason, detail: e.detail, role: s.role });
  if (s.role !== 'MASTER') return done(s, s0.quorum.held === null ? [] : [record], `leader key lost (${e.reason}) while ${s.role}`);
  if (s0.quorum.held === null) return done(s, [], `leader key loss reported again (${e.reason})`);
  return prepend([record], leaseEnding(s, now, config, `leader key lost (${e.reason}: ${e.detail})`, e.reason !== 'key-taken'));
}

/** A `quorum-fence` or `quorum-retry` timer fired. */
export function onQuorumTimer(s: CoreState, timer: 'quorum-fence' | 'quorum-retry', now: number, config: CoreConfig): StepResult {
  if (timer === 'quorum-retry') {
    if (s.quorum.wanted !== null) return resumeWanted(s, now, config);
    if (s.role === 'MASTER' && s.quorum.failsafeSinceMs !== null && s.quorum.asking === null) {
      return done(withQuorum(s, { asking: s.epoch }), [{ type: 'acquire-quorum', epoch: s.epoch }], 'serving without a lease: asking etcd for the key again');
    }
    return done(s, [], 'quorum retry no longer needed');
  }
  if (s.role !== 'MASTER') return done(s, [], 'quorum fence timer ignored (not master)');
  if (s.quorum.failsafeSinceMs !== null) {
    return fenceAndStepDown(s, now, config, `serving without a lease and the peer is silent (${peerSilence(s, now)})`);
  }
  const held = s.quorum.held;
  if (held !== null && holdsKey(s, now, config)) return done(armQuorumFence(s, config, now), [], 'lease still valid');
  const left = held === null ? 'no lease' : `lease deadline in ${Math.round(held.validUntilAtMs - now)} ms`;
  // `held` stays until the fence is confirmed: then the key is given up at once
  // (`onFenceApplied`) rather than left to lapse.
  return leaseEnding(s, now, config, `lease not renewed in time (${left}, fence lead ${config.quorum.fenceLeadMs} ms)`, true);
}

function peerSilence(s: CoreState, now: number): string {
  return s.peer ? `${s.peer.nodeName} last heard ${Math.round(now - s.peer.receivedAtMs)} ms ago` : 'no peer heard';
}

/**
 * The master can no longer count on its lease. It serves on only while it hears its
 * peer and the peer is not asking for the key (failsafe); otherwise it fences.
 */
function leaseEnding(s: CoreState, now: number, config: CoreConfig, why: string, failsafeAllowed: boolean): StepResult {
  const peer = livePeer(s, now, config);
  const silence = failsafeSilenceMs(config.advertIntervalMs, peer?.advertIntervalMs ?? config.advertIntervalMs);
  const hearsPeer = peer !== null && now - peer.receivedAtMs <= silence && peer.state === 'BACKUP' && peer.flags.takingOver !== true &&
    !peer.flags.fault && !peer.flags.resigning;
  if (!failsafeAllowed || !hearsPeer) {
    const because = !failsafeAllowed ? 'another node holds the key' : peer?.flags.takingOver === true ? `${peer.nodeName} is taking over` : peerSilence(s, now);
    return fenceAndStepDown(s, now, config, `${why}; ${because}`);
  }
  const next = withQuorum(s, { held: null, failsafeSinceMs: s.quorum.failsafeSinceMs ?? now, asking: s.quorum.asking ?? s.epoch });
  const actions = [audit('quorum-failsafe', { why, peer: peer.nodeName, epoch: s.epoch })];
  if (s.quorum.asking === null) actions.push({ type: 'acquire-quorum', epoch: s.epoch });
  return done(armQuorumFence(next, config, now), actions,
    `${why}; ${peer.nodeName} is heard and not taking over: serving on without the lease (failsafe), asking etcd again`);
}

/** The master's Redis refuses writes, then it steps down (VIP released; `fence-applied` gives the key up). */
function fenceAndStepDown(s: CoreState, now: number, config: CoreConfig, why: string): StepResult {
  const next = withTimers(withQuorum(s, { failsafeSinceMs: null }), { 'quorum-fence': undefined });
  return prepend([audit('quorum-fenced', { why, epoch: s.epoch })], toBackup(next, now, config, `${why}: fencing Redis and stepping down`));
}

/** A master in failsafe heard its peer: the peer asking for the key ends the failsafe. */
export function onPeerHeardInFailsafe(s: CoreState, now: number, config: CoreConfig): StepResult | null {
  if (s.role !== 'MASTER' || s.quorum.failsafeSinceMs === null || s.peer === null) return null;
  const peer = s.peer;
  // With the quorum a peer is MASTER only while it holds the key: this node is not.
  if (peer.flags.takingOver === true || peer.state === 'MASTER') {
    return fenceAndStepDown(s, now, config, `serving without a lease and ${peer.nodeName} is ${peer.state === 'MASTER' ? 'MASTER' : 'taking over'}`);
  }
  // Only a backup that serves as our replica keeps the failsafe going; anything else
  // (FAULT, resigning, starting) is left to the role handler.
  if (peer.state !== 'BACKUP' || peer.flags.fault || peer.flags.resigning) return null;
  return done(armQuorumFence(s, config, now), [], 'failsafe: peer heard');
}

function onFenceApplied(s0: CoreState, writes: FenceSetting, ok: boolean, detail: string): StepResult {
  const selfFenced = ok ? writes !== 'accepted' : s0.quorum.selfFenced;
  const s = withQuorum(s0, { fence: { writes, ok, detail }, selfFenced });
  const record = audit('redis-fence', { writes, ok, detail });
  if (s.resigning && s.role === 'MASTER' && writes === 'refused') return stoppingMasterFenced(s, ok, detail, record);
  if (writes === 'refused' && s.role !== 'MASTER' && s.quorum.held !== null) {
    const why = keyReleasable(s, ok);
    if (why !== null) return done(withQuorum(s, { held: null }), [record, { type: 'release-quorum' }], `${why}: leader key released`);
    return done(s, [record], `fence not applied (${detail}): the leader key is kept, the fence retried at the next check`);
  }
  const what = writes === 'refused' ? 'refuses writes' : writes === 'with-replica' ? 'accepts writes while a replica acknowledges' : 'accepts writes';
  return done(s, [record], ok ? `Redis ${what}` : `fence not applied (${writes}): ${detail}`);
}

/**
 * A stopping master's fence ended (the shutdown waits for it; the fence is bounded like
 * any Redis command): the key goes only if its Redis cannot take writes now (review S3);
 * otherwise it is kept, unrenewed once the daemon exits, and lapses with the lease, so the
 * backup takes over only after the lease TTL. Then the daemon exits.
 */
function stoppingMasterFenced(s: CoreState, ok: boolean, detail: string, record: Action): StepResult {
  const exit: Action = { type: 'exit', code: 0 };
  if (s.quorum.held === null) return done(s, [record, exit], `shutdown: fence ${ok ? 'applied' : `not applied (${detail})`}; stopping`);
  const why = keyReleasable(s, ok);
  if (why !== null) {
    return done(withQuorum(s, { held: null }), [record, { type: 'release-quorum' }, exit], `shutdown: ${why}: leader key released; stopping`);
  }
  return done(s, [record, audit('quorum-key-kept', { why: `fence not applied: ${detail}` }), exit],
    `shutdown: fence not applied (${detail}): the leader key is not released but lapses with its lease (Redis may still take writes); stopping`);
}

/**
 * Why a stopping node that is not master may give its key up at once, or null (it is
 * kept, and lapses with the lease): its Redis cannot take writes.
 */
export function keyReleasableOnStop(s: CoreState): string | null {
  if (s.health.healthy === true && s.health.redis?.role === 'replica') return 'local Redis is a replica';
  const fence = s.quorum.fence;
  return keyReleasable(s, fence !== null && fence.writes === 'refused' && fence.ok === true);
}

/**
 * Why a node that left the master role may give its key up now, or null: only once its
 * Redis cannot take writes (a fence refused and confirmed, a Redis that refuses the
 * connection, or one that fences itself when its replica is promoted), else a peer
 * holding the key could find it writable.
 */
function keyReleasable(s: CoreState, fenced: boolean): string | null {
  if (fenced) return 'Redis refuses writes';
  if (s.health.down === true) return 'Redis is down (connection refused)';
  if (s.health.clusterEnabled === true) return "Redis is a Redis Cluster node now (no longer this pair's Redis)";
  if (s.quorum.selfFenced) return 'Redis refuses writes by itself once its replica is promoted (min-replicas)';
  return null;
}

/**
 * A node that is not master keeps a master Redis fenced (checked at each health check):
 * a BACKUP whose Redis is a master (until it is re-pointed), and a node that left the
 * master role while its fence did not take (retried; the key goes once it takes, or once
 * Redis is seen down). Not during a switchover (the target's Redis is a master before it
 * holds the role), nor in INIT (a restart in place keeps serving while it decides).
 */
export function keepFenceDown(s: CoreState, config: CoreConfig): StepResult | null {
  if (!fenceManaged(config) || s.resigning || s.redisOp !== null || s.switchover !== null) return null;
  if (s.role !== 'BACKUP' && s.role !== 'FAULT') return null;
  const fence = s.quorum.fence;
  if (s.role === 'FAULT' && s.quorum.held !== null && fence?.ok === false) {
    const why = keyReleasable(s, false);
    if (why !== null) return done(withQuorum(s, { held: null }), [{ type: 'release-quorum' }], `${why}: leader key released`);
  }
  // A Redis Cluster node gets no fence (issue 14): it is not this pair's Redis.
  if (s.health.clusterEnabled === true) return null;
  const redis = s.health.redis;
  const masterRedis = s.role === 'BACKUP' ? s.health.healthy === true && redis?.role === 'master' && s.peer?.flags.switchingOver !== true
    : s.quorum.held !== null;
  if (!masterRedis) return null;
  if (fence !== null && fence.writes === 'refused' && fence.ok !== false) return null;
  return done(withQuorum(s, { fence: { writes: 'refused', ok: null, detail: 'being applied' } }), [{ type: 'fence-redis', writes: 'refused' }],
    `${s.role}: local Redis is a master this node does not serve: fencing it`);
}

/**
 * The master's `quorum-fence` deadline: its lease deadline less the fence lead, or, in
 * failsafe, the moment its peer has been silent too long. Cleared on other nodes.
 */
export function armQuorumFence(s: CoreState, config: CoreConfig, now: number): CoreState {
  if (config.quorum.backend === 'none') return s;
  let at: number | undefined;
  if (s.role === 'MASTER' && !s.resigning) {
    if (s.quorum.failsafeSinceMs !== null) {
      const peer = s.peer;
      const base = peer?.receivedAtMs ?? s.quorum.failsafeSinceMs;
      at = base + failsafeSilenceMs(config.advertIntervalMs, peer?.advertIntervalMs ?? config.advertIntervalMs);
    } else if (s.quorum.held !== null) {
      at = s.quorum.held.validUntilAtMs - config.quorum.fenceLeadMs;
    }
  }
  // A deadline already passed fires now, never left in the past (the runtime would take
  // its lateness for a stall, again and again).
  if (at !== undefined) at = Math.max(at, now);
  return s.timers['quorum-fence'] === at ? s : withTimers(s, { 'quorum-fence': at });
}
