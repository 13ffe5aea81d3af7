/**
 * Forced failover: `redis-ha failover --accept-data-loss`, run on the node that should
 * become master, takes the master role past an automatic takeover that is held back
 * (Patroni's `patronictl failover --force`, Sentinel's `SENTINEL FAILOVER`).
 *
 *   failover-requested   refused (below)          → answered at once; nothing changes
 *                        no acceptDataLoss        → answered at once; nothing changes: what a
 *                                                   forced takeover would do, what holds the
 *                                                   automatic one back now (a dry run)
 *                        acceptDataLoss           → `takeover-forced` audited; takeOver(forced)
 *   while it runs (`forcedFailover`), after every step:
 *     MASTER, Redis promoted                      → answered: done
 *     waiting for the leader key                  → waits; the first answer that is not the
 *                                                   key drops the wish and is answered (who
 *                                                   holds it): never retried on its own
 *     anything else (promotion failed, the master → answered: failed, with the reason
 *       heard again, a fault, a shutdown)
 *
 * Bypassed: the takeover gates (`takeover-gate.ts`: replication lag beyond
 * `promotion.max_lag_bytes`, the recovery block, `prefer: safety` without a quorum after a
 * silence, including the promotion's `requireFence`) and the data guard's hold
 * (`historyBlocker`; the loss is accepted, as a daemon restart accepts it). A forced
 * takeover starts no recovery block (it is not automatic) and catches up from the peer's
 * Redis when it answers, as any takeover does.
 *
 * Never bypassed: the leader key (`quorum.backend: etcd`; only its holder may be master,
 * which is what keeps two masters apart), the state file and the epoch space
 * (`heldTakeover` in transitions.ts). Refused: this node is MASTER (or INIT, or taking
 * over already); the peer is heard as a healthy MASTER (that is `redis-ha switchover`);
 * the local Redis is not healthy; maintenance is on (turn it off first: with it on, the
 * pair would not follow the new master automatically either); a switchover or another
 * forced failover is running; the daemon is stopping.
 */
import { audit, done, livePeer, peerCannotServe, peerResigning, takeoverBlocked, withTimers, type StepResult } from './common.js';
import { historyBlocker } from './data-guard.js';
import { nextEpoch } from './epoch.js';
import type { CoreConfig, CoreState, ForcedFailoverOp } from './state.js';
import { lagBehindMaster } from './takeover-gate.js';
import { masterDownMs } from './timing.js';
import { memoryDemand, othersMark } from './quorum-memory.js';
import { catchUpSource, takeOver } from './transitions.js';
import type { Action, Event } from './types.js';

type Requested = Extract<Event, { type: 'failover-requested' }>;

/** The operator's hint where a held takeover is shown (`status`). */
export const FORCED_FAILOVER_HINT = '`redis-ha failover --accept-data-loss` overrides it';

/**
 * What holds an automatic takeover by this node back now (a gate, the data guard, or
 * etcd's memory sending it through the old master's Redis), or null.
 */
export function takeoverHeldBy(s: CoreState, config: CoreConfig): string | null {
  const demand = memoryDemand(s, config);
  return s.takeoverHeld?.blocker ?? historyBlocker(s) ?? (demand === null ? null : `${demand}: a takeover promotes only through that Redis, caught up with and fenced`);
}

/** `redis-ha failover [--accept-data-loss]` on this node. */
export function onFailoverRequested(s: CoreState, e: Requested, now: number, config: CoreConfig): StepResult {
  const refused = refusal(s, now, config);
  if (refused !== null) {
    const records = e.acceptDataLoss
      ? [audit('takeover-forced-refused', { requestId: e.requestId, user: e.user, pid: e.pid, reason: refused })]
      : [];
    return done(s, [...records, reply(e.requestId, false, `refused: ${refused}`, { outcome: 'refused' })],
      `failover ${e.requestId} refused: ${refused}`);
  }
  const heldBy = takeoverHeldBy(s, config);
  const lagBytes = lagBehindMaster(s);
  const plan = planText(s, config, lagBytes);
  const epoch = nextEpoch(s.epoch, s.knownEpoch);
  if (!e.acceptDataLoss) {
    const waiting = s.quorum.wanted;
    const held = heldBy !== null ? `held back now: ${heldBy}`
      : waiting !== null ? `an automatic takeover is waiting for the leader key (${waiting.reason}), as a forced one would`
        : 'nothing holds an automatic takeover back now';
    const detail = `nothing changed: a forced takeover would ${plan}; ${held}. ` +
      'Run it again with --accept-data-loss to take over anyway';
    return done(s, [reply(e.requestId, false, detail, { outcome: 'dry-run', wouldDo: plan, heldBy, lagBytes, epoch })],
      `failover ${e.requestId} by ${e.user}: dry run, nothing changed`);
  }
  const op: ForcedFailoverOp = { requestId: e.requestId, user: e.user, overrode: heldBy, startedAtMs: now };
  const peer = livePeer(s, now, config);
  const reason = `forced failover ${e.requestId} by ${e.user}${heldBy === null ? '' : `, overriding: ${heldBy}`}`;
  const record = audit('takeover-forced', {
    requestId: e.requestId, user: e.user, pid: e.pid, overrode: heldBy, lagBytes, epoch,
    historyLoss: s.historyLoss, quorum: config.quorum.backend,
    peer: s.peer === null ? null : { node: s.peer.nodeName, state: s.peer.state, live: peer !== null, fault: s.peer.flags.fault },
  });
  const r = takeOver({ ...s, forcedFailover: op }, now, config, reason, {
    forced: true,
    // A silent master may be serving without its lease (failsafe): the takeover waits out
    // its fence as any takeover after a silence does.
    afterSilence: peer === null,
    ...(peer !== null && peerCannotServe(peer) ? { afterFault: true } : {}),
  });
  return { ...r, actions: [record, ...r.actions] };
}

/** Why a forced failover cannot run here now, or null. */
function refusal(s: CoreState, now: number, config: CoreConfig): string | null {
  if (s.resigning) return 'this daemon is shutting down';
  const op = s.forcedFailover;
  if (op !== null) return `forced failover ${op.requestId} by ${op.user} is already running`;
  if (s.switchover !== null) return `switchover ${s.switchover.requestId} is running (${s.switchover.phase}): wait for it to end`;
  if (s.role === 'MASTER') return s.redisOp === 'promoting' ? 'this node is taking over already (promoting its Redis)' : `this node is MASTER already (epoch ${s.epoch})`;
  if (s.role === 'INIT') return 'this node is starting (INIT): wait until it is BACKUP';
  if (s.health.healthy !== true || s.health.redis === null || s.role === 'FAULT') {
    return `this node's Redis is ${s.health.down === true ? 'down' : 'not healthy'} (${s.health.detail}): it cannot serve as master`;
  }
  if (s.maintenance.on) {
    return 'maintenance is on: automatic failover is frozen on both nodes and nothing would follow the new master; ' +
      'turn it off first (`redis-ha maintenance off`), then run failover again if the takeover is still held back';
  }
  const peer = livePeer(s, now, config);
  if (peer !== null && peer.state === 'MASTER' && !peerCannotServe(peer) && !peerResigning(peer)) {
    return `${peer.nodeName} is heard as a healthy MASTER (epoch ${peer.epoch}): use \`redis-ha switchover\` to move the role without losing writes`;
  }
  if (s.redisOp !== null) return `the local Redis is ${s.redisOp}: wait for it to finish`;
  if (takeoverBlocked(s)) {
    return s.persistFailure !== null
      ? `the state file cannot be written (${s.persistFailure.detail}), and a new epoch must be on disk before a promotion`
      : 'no newer epoch can be made (see status): stop both daemons and move both state files away';
  }
  return null;
}

/** What a forced takeover would do, in one sentence (the dry run's answer). */
function planText(s: CoreState, config: CoreConfig, lagBytes: number | null): string {
  const epoch = nextEpoch(s.epoch, s.knownEpoch);
  const peer = s.peer;
  const source = `${config.peerRedis.host}:${config.peerRedis.port}`;
  const catchUp = catchUpSource(s, config) === null
    ? 'without catching up (the peer reported its Redis FAULT)'
    : `after catching up from ${source} if it answers`;
  const key = config.quorum.backend === 'etcd' ? ', once etcd grants this node the leader key (never taken from another holder)' : '';
  const marked = othersMark(s, config);
  const relaxed = marked === null ? '' : `; ${marked.node}'s Redis may still take writes without a replica (its relaxed mark in etcd, cleared by this takeover): stop it first, or two masters take writes`;
  const loss = s.historyLoss !== null
    ? `this node's Redis lost its data: if ${source} does not answer, the peer's Redis resyncs from this emptied server when it comes back`
    : lagBytes !== null
      ? `the ${lagBytes} bytes this replica was behind ${peer?.nodeName ?? 'the master'} are lost unless the catch-up gets them`
      : 'writes this replica had not received are lost unless the catch-up gets them';
  return `take over as MASTER in epoch ${epoch}${key}: promote the local Redis ${catchUp}, then claim the VIP (${loss}${relaxed})`;
}

/**
 * After every step while a forced failover runs: answers it once it has an outcome, and
 * keeps the takeover that waits for the leader key the forced one.
 */
export function settleForcedFailover(r: StepResult, event: Event, now: number, config: CoreConfig): StepResult {
  const op = r.state.forcedFailover;
  if (op === null) return r;
  const s = r.state;
  if (s.resigning) return finish(r, op, false, 'the daemon is shutting down', now, { outcome: 'failed' });
  if (s.role === 'MASTER') {
    // The operator accepted the loss the data guard held back (as a daemon restart does).
    const accepted: StepResult = s.historyLoss === null ? r : { ...r, state: { ...s, historyLoss: null } };
    if (s.redisOp === 'promoting') return accepted;
    return finish(accepted, op, true, `this node is MASTER (epoch ${s.epoch}); Redis promoted, the VIP claimed`, now,
      { outcome: 'taken-over', epoch: s.epoch });
  }
  const wanted = s.quorum.wanted;
  if (wanted === null || wanted.kind !== 'takeover') return finish(r, op, false, r.reason, now, { outcome: 'failed' });
  if (event.type === 'quorum-answered' && event.answer.outcome !== 'held') return dropWish(r, op, event.answer, now, config);
  // An automatic takeover that began meanwhile (the master-down timer) stands for this one.
  if (wanted.forced === true) return r;
  return { ...r, state: { ...s, quorum: { ...s.quorum, wanted: { ...wanted, forced: true } } } };
}

/** etcd did not grant the key: the forced takeover ends here (the operator may run it again). */
function dropWish(r: StepResult, op: ForcedFailoverOp, answer: Exclude<Extract<Event, { type: 'quorum-answered' }>['answer'], { outcome: 'held' }>,
  now: number, config: CoreConfig): StepResult {
  const s = r.state;
  const why = answer.outcome === 'held-by-other'
    ? `the leader key is held by ${answer.holder === null ? 'another node' : `${answer.holder.node} (epoch ${answer.holder.epoch})`}: ` +
      'a forced failover never takes it from its holder (the key is what keeps two masters apart); ' +
      'once that lease has ended (its holder down or fenced), run failover again'
    : `etcd is unreachable (${answer.detail}): no takeover without the leader key, forced or not`;
  const peerInterval = s.peer?.advertIntervalMs ?? config.advertIntervalMs;
  // The automatic takeover goes on being looked at as before the request.
  const next = withTimers({ ...s, quorum: { ...s.quorum, wanted: null } }, {
    'quorum-retry': undefined,
    'master-down': s.timers['master-down'] ?? now + masterDownMs(config.priority, peerInterval),
  });
  const dropped: StepResult = { state: next, actions: r.actions, reason: `forced failover ${op.requestId}: ${why}` };
  return finish(dropped, op, false, why, now,
    { outcome: 'no-leader-key', holder: answer.outcome === 'held-by-other' ? answer.holder : null });
}

function finish(r: StepResult, op: ForcedFailoverOp, ok: boolean, detail: string, now: number, data: Record<string, unknown>): StepResult {
  const tookMs = Math.round(now - op.startedAtMs);
  const text = ok ? detail : `forced failover failed: ${detail}`;
  return {
    state: { ...r.state, forcedFailover: null },
    actions: [
      ...r.actions,
      audit('takeover-forced-finished', { requestId: op.requestId, ok, detail, user: op.user, overrode: op.overrode, tookMs }),
      reply(op.requestId, ok, text, { ...data, overrode: op.overrode, tookMs }),
    ],
    reason: r.reason,
  };
}

function reply(requestId: string, ok: boolean, detail: string, data: Record<string, unknown>): Action {
  return { type: 'reply', requestId, ok, detail, data };
}
