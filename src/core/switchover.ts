/**
 * Planned switchover: the master role moves to the peer on an operator's request, with
 * no acknowledged write lost. The master's daemon drives it, whichever host the
 * operator asked on:
 *
 *   operator on the backup         operator on the master
 *   B: forwarded ──request──▶ A     A: checks (peer live BACKUP, healthy, replica, lag)
 *                                  A: switching-over: `switchover-redis` (FAILOVER TO B, or
 *                                     pause + catch-up + promote B + demote A); the VIP
 *                                     stays on A until B's Redis is the master
 *   B ◀──handover (epoch)── A      A: BACKUP, still holding the VIP, awaiting-peer
 *   B: taking-over: MASTER with that epoch, Redis confirmed master, VIP claimed
 *   B: replies to its operator      A: once B advertises MASTER holding the VIP:
 *                                     releases the VIP, disconnects its clients, replies
 *
 * Make before break: between A's Redis turning replica and B holding the VIP, clients
 * that reach A get READONLY at once (nothing is acknowledged there) instead of
 * connecting into an address nobody holds; once B's gratuitous ARP is out, A lets go
 * and disconnects its clients, which reconnect to B. If B never confirms, A releases
 * the VIP at the switchover deadline.
 *
 * A refused or rolled-back switchover changes nothing (A stays master with the VIP) and
 * is answered at once (to the peer with `switchover-result`). Messages between the
 * daemons are authenticated like adverts; `handover` is re-sent on every advert tick
 * until the peer advertises MASTER, and a request id that was already handled is
 * ignored, so a lost or duplicated datagram cannot start a second switchover.
 */
import { keepRunId } from './data-guard.js';
import { handoverEpochProblem, nextEpoch } from './epoch.js';
import {
  audit,
  done,
  knownSwitchover,
  livePeer,
  message,
  peerCannotServe,
  persistState,
  prepend,
  rememberSwitchover,
  sendAdvert,
  takeoverBlocked,
  withTimers,
  type StepResult,
} from './common.js';
import { holdsKey } from './quorum-gate.js';
import type { CoreConfig, CoreState, SwitchoverOp } from './state.js';
import { awaitNewMasterMs, switchoverForwardWaitMs } from './timing.js';
import { takeOver, toBackup } from './transitions.js';
import type { Action, Event, PeerRequest } from './types.js';

/** `handover` is re-sent at most this many times (once per advert interval). */
const MAX_HANDOVER_RESENDS = 5;

type Requested = Extract<Event, { type: 'switchover-requested' }>;

export function onSwitchoverRequested(s: CoreState, e: Requested, now: number, config: CoreConfig): StepResult {
  const op = s.switchover;
  if (e.origin === 'peer' && (op?.requestId === e.requestId || knownSwitchover(s, e.requestId))) {
    return done(s, [], `switchover ${e.requestId}: duplicate request from the peer ignored`);
  }
  if (op !== null) return refuse(s, e, `switchover ${op.requestId} is already running (${op.phase})`);
  if (s.resigning) return refuse(s, e, 'this daemon is shutting down');
  if (s.role === 'MASTER') return startSwitchover(s, e, now, config);
  if (s.role === 'BACKUP' && e.origin === 'local') return forward(s, e, now, config);
  const where = e.origin === 'peer' ? 'the peer asked this node to hand over, but it is' : 'this node is';
  return refuse(s, e, `${where} ${s.role}: only the master or its backup can run a switchover`);
}

/** On the master: check, then hand the Redis master role over; the VIP stays until it is done. */
function startSwitchover(s: CoreState, e: Requested, now: number, config: CoreConfig): StepResult {
  const problem = switchoverProblem(s, e.force, now, config);
  if (problem !== null) return refuse(s, e, problem);
  const peer = s.peer!;
  const local = s.health.redis!;
  const lagBytes = Math.max(0, local.offset - peer.redis.offset);
  const op: SwitchoverOp = {
    requestId: e.requestId, phase: 'switching-over', replyTo: e.origin, user: e.user, force: e.force,
    timeoutMs: e.timeoutMs, startedAtMs: now, epoch: 0, resends: 0, method: null, pausedMs: null,
  };
  const next: CoreState = { ...s, switchover: op, redisOp: 'switching-over' };
  const reason = `switchover ${e.requestId} by ${e.user}${e.force ? ' (forced)' : ''}: handing the master role to ${peer.nodeName}`;
  return done(next, [
    audit('switchover-started', {
      requestId: e.requestId, user: e.user, origin: e.origin, force: e.force, timeoutMs: e.timeoutMs,
      peer: peer.nodeName, lagBytes,
    }),
    // Tells the peer not to "repair" its Redis when it turns master under it; twice, so
    // one lost datagram does not leave it to a health check to re-point the new master.
    sendAdvert(next, config),
    sendAdvert(next, config),
    {
      type: 'switchover-redis', target: config.peerRedis, timeoutMs: e.timeoutMs, force: e.force,
      // Finding Q8: the target's Redis becomes the master before its daemon holds the key;
      // should it never get the key (etcd away from it), this node takes the role back
      // while that Redis, fenced, cannot take writes beside ours.
      ...(config.quorum.backend !== 'none' ? { fenceTarget: true as const } : {}),
    },
  ], reason);
}

/** Why this master cannot hand over now, or `null`. */
function switchoverProblem(s: CoreState, force: boolean, now: number, config: CoreConfig): string | null {
  if (s.redisOp !== null) return `local Redis is ${s.redisOp}`;
  if (s.health.healthy !== true || s.health.redis === null) return `local Redis is not healthy (${s.health.detail})`;
  if (s.health.redis.role !== 'master') return 'local Redis is not a master';
  const peer = livePeer(s, now, config);
  if (peer === null) {
    return s.peer === null
      ? 'no advert from the peer yet: its daemon must be running to take over'
      : `no advert from ${s.peer.nodeName} for ${Math.round(now - s.peer.receivedAtMs)} ms: its daemon must be running to take over`;
  }
  if (peerCannotServe(peer)) return `peer ${peer.nodeName} is FAULT: its Redis is failing its health checks`;
  // Even forced: Redis would be handed over to a node that then refuses the role.
  if (peer.flags.cannotTakeOver === true) return `peer ${peer.nodeName} cannot take the master role now (see its status: state file or epoch)`;
  if (peer.state !== 'BACKUP') return `peer ${peer.nodeName} is ${peer.state}, not BACKUP`;
  if (peer.redis.role !== 'replica') return `peer ${peer.nodeName}'s Redis is ${peer.redis.role}, not a replica`;
  // Even forced: with the quorum the new master must take the leader key, and a master
  // serving without its lease (failsafe) cannot reach etcd; handing Redis over would leave
  // no writable master until etcd is back (review L4).
  const quorumProblem = switchoverQuorumProblem(s, now, config);
  if (quorumProblem !== null) return quorumProblem;
  if (!force && peer.flags.maintenance !== s.maintenance.on) {
    return `peer ${peer.nodeName} has maintenance ${peer.flags.maintenance ? 'on' : 'off'} and this node ${s.maintenance.on ? 'on' : 'off'}: wait until they agree (or --force)`;
  }
  const lag = s.health.redis.offset - peer.redis.offset;
  if (!force && lag > config.switchoverMaxLagBytes) {
    return `peer ${peer.nodeName}'s Redis lags ${lag} bytes (bound ${config.switchoverMaxLagBytes}; --force accepts the risk)`;
  }
  return null;
}

/** With the quorum, why the leader key cannot pass to the peer now, or `null`. */
function switchoverQuorumProblem(s: CoreState, now: number, config: CoreConfig): string | null {
  if (config.quorum.backend === 'none') return null;
  if (s.quorum.failsafeSinceMs !== null) {
    return 'etcd unreachable: this master serves without its lease (failsafe), and the new master could not take the leader key';
  }
  if (!holdsKey(s, now, config)) return 'this master does not hold the leader key now: the new master could not take it in turn';
  return null;
}

/** On the backup: ask the master's daemon to hand over to us. */
function forward(s: CoreState, e: Requested, now: number, config: CoreConfig): StepResult {
  if (takeoverBlocked(s)) {
    return refuse(s, e, s.persistFailure !== null
      ? `this node cannot take the master role: its state file cannot be written (${s.persistFailure.detail})`
      : 'this node cannot take the master role: no newer epoch can be made (see status)');
  }
  const peer = livePeer(s, now, config);
  const local = s.health.redis;
  if (s.health.healthy !== true || local === null) return refuse(s, e, `local Redis is not healthy (${s.health.detail})`);
  if (s.redisOp !== null) return refuse(s, e, `local Redis is ${s.redisOp}`);
  if (peer === null || peer.state !== 'MASTER') {
    return refuse(s, e, peer === null ? 'no live master peer to take over from' : `peer ${peer.nodeName} is ${peer.state}, not MASTER`);
  }
  if (peerCannotServe(peer)) return refuse(s, e, `peer ${peer.nodeName} is FAULT`);
  const target = config.peerRedis;
  if (local.role !== 'replica' || local.masterHost !== target.host || local.masterPort !== target.port) {
    return refuse(s, e, `local Redis does not replicate from the master ${target.host}:${target.port}`);
  }
  if (!local.linkUp) return refuse(s, e, 'local Redis replication link is down');
  const lag = peer.redis.offset - local.offset;
  if (!e.force && lag > config.switchoverMaxLagBytes) {
    return refuse(s, e, `local Redis lags ${lag} bytes (bound ${config.switchoverMaxLagBytes}; --force accepts the risk)`);
  }
  const op: SwitchoverOp = {
    requestId: e.requestId, phase: 'forwarded', replyTo: 'local', user: e.user, force: e.force,
    timeoutMs: e.timeoutMs, startedAtMs: now, epoch: 0, resends: 0, method: null, pausedMs: null,
  };
  const waitMs = switchoverForwardWaitMs(e.timeoutMs, peer.advertIntervalMs);
  const next = withTimers({ ...s, switchover: op }, { switchover: now + waitMs });
  const request: PeerRequest = { kind: 'switchover-request', requestId: e.requestId, timeoutMs: e.timeoutMs, force: e.force, user: e.user };
  return done(next, [
    audit('switchover-forwarded', { requestId: e.requestId, user: e.user, force: e.force, timeoutMs: e.timeoutMs, master: peer.nodeName }),
    // Twice: a lost datagram would otherwise cost the whole wait (a duplicate is ignored).
    message(request),
    message(request),
  ], `switchover ${e.requestId} by ${e.user}: asked master ${peer.nodeName} to hand over`);
}

type Finished = Extract<Event, { type: 'redis-switchover-finished' }>;

/** The Redis part of the switchover ended on the master. */
export function onRedisSwitchoverFinished(s: CoreState, e: Finished, now: number, config: CoreConfig): StepResult {
  const op = s.switchover;
  const health = e.redis ? { ...s.health, redis: keepRunId(e.redis, s.health.redis) } : s.health;
  const base: CoreState = { ...s, health, redisOp: s.redisOp === 'switching-over' ? null : s.redisOp, redisChangedAtMs: now };
  const record = audit('switchover-redis', { requestId: op?.requestId ?? null, outcome: e.outcome, method: e.method, pausedMs: e.pausedMs, detail: e.detail });
  if (op === null || op.phase !== 'switching-over') return done(base, [record], 'Redis switchover finished with no switchover running');
  const peerName = s.peer?.nodeName ?? 'peer';
  if (e.outcome !== 'done') {
    const detail = `${e.outcome}: ${e.detail}`;
    const ended = { ...rememberSwitchover(base, op.requestId), switchover: null };
    return done(ended, [record, ...answer(op, false, detail, { outcome: e.outcome, method: e.method, pausedMs: e.pausedMs }),
      sendAdvert(ended, config)], `switchover ${op.requestId} ${e.outcome}; this node stays master`);
  }
  // Our Redis follows the peer's now: step down (VIP kept until the peer holds it) and
  // tell the peer to take the role with a newer epoch than ours.
  const epoch = nextEpoch(s.epoch, s.knownEpoch);
  if (s.role !== 'MASTER') {
    // This node went FAULT (or stepped down) while Redis was handed over: it keeps that
    // role and its VIP state; the peer still has to be told to take over.
    const awaitingFault: SwitchoverOp = { ...op, phase: 'awaiting-peer', epoch, method: e.method, pausedMs: e.pausedMs };
    const kept = withTimers({ ...base, knownEpoch: epoch, switchover: awaitingFault },
      { switchover: now + awaitNewMasterMs(config.priority, s.peer?.advertIntervalMs ?? config.advertIntervalMs, config.advertIntervalMs) });
    return done(kept, [record, persistState(kept), message({ kind: 'handover', requestId: op.requestId, epoch, force: op.force })],
      `switchover ${op.requestId}: Redis handed to ${peerName} while this node was ${s.role}`);
  }
  const reason = `switchover ${op.requestId}: Redis master handed to ${peerName} (${e.method ?? '?'}, writes paused ${e.pausedMs ?? '?'} ms)`;
  const awaiting: SwitchoverOp = { ...op, phase: 'awaiting-peer', epoch, method: e.method, pausedMs: e.pausedMs };
  const stepped = toBackup({ ...base, knownEpoch: epoch, switchover: awaiting }, now, config, reason, { keepVip: true });
  const awaitMs = awaitNewMasterMs(config.priority, s.peer?.advertIntervalMs ?? config.advertIntervalMs, config.advertIntervalMs);
  const state = withTimers(stepped.state, { switchover: now + awaitMs });
  const handover: PeerRequest = { kind: 'handover', requestId: op.requestId, epoch, force: op.force };
  return {
    state,
    actions: [record, persistState(state), ...stepped.actions, message(handover)],
    reason,
  };
}

/** On the backup: the master handed its role to us. */
export function onHandoverReceived(
  s: CoreState,
  e: Extract<Event, { type: 'handover-received' }>,
  now: number,
  config: CoreConfig,
): StepResult {
  const op = s.switchover;
  if (op?.requestId === e.requestId && op.phase === 'taking-over') return done(s, [], 'duplicate handover ignored');
  // Acting on a handover promotes without catching up: only a current one from the peer
  // now handing over may do that. A stale one (re-sent while this node was stalled, by an
  // old master that took its role back, or replayed from an earlier switchover) is ignored.
  // A re-send (or replay) of a handover this node already acted on: not worth a record each.
  if (knownSwitchover(s, e.requestId)) return done(s, [], `handover ${e.requestId} ignored: this node already took part in that switchover`);
  const stale = staleHandover(s, e, now, config);
  if (stale !== null) {
    return done(s, [audit('switchover-handover-ignored', { requestId: e.requestId, from: e.from, role: s.role, epoch: e.epoch, knownEpoch: s.knownEpoch, why: stale })],
      `handover ${e.requestId} ignored: ${stale}`);
  }
  if (s.role !== 'BACKUP') {
    const why = `handover ${e.requestId} ignored: this node is ${s.role}`;
    return done(s, [audit('switchover-handover-ignored', { requestId: e.requestId, role: s.role }),
      message({ kind: 'switchover-result', requestId: e.requestId, ok: false, detail: why })], why);
  }
  if (s.persistFailure !== null) {
    // The old master checked our `cannotTakeOver` flag before touching Redis, so this is a
    // write that began failing mid-switchover: refused, the old master lets go, and its
    // master-down timer takes the role back (catching up from our Redis first).
    const why = `handover ${e.requestId} refused: the state file cannot be written (${s.persistFailure.detail}), and a new epoch must be on disk before a promotion`;
    return done(s, [audit('switchover-handover-ignored', { requestId: e.requestId, role: s.role, why }),
      message({ kind: 'switchover-result', requestId: e.requestId, ok: false, detail: why })], why);
  }
  const mine = op?.requestId === e.requestId && op.phase === 'forwarded';
  const taking: SwitchoverOp = mine
    ? { ...op, phase: 'taking-over' }
    : {
        requestId: e.requestId, phase: 'taking-over', replyTo: null, user: 'peer', force: e.force, timeoutMs: 0,
        startedAtMs: now, epoch: e.epoch, resends: 0, method: null, pausedMs: null,
      };
  const peerName = s.peer?.nodeName ?? 'the peer';
  // The old master follows our Redis already: no catch-up from it, no pause, no fence.
  const r = takeOver({ ...withTimers(rememberSwitchover(s, e.requestId), { switchover: undefined }), switchover: taking }, now, config,
    `switchover ${e.requestId}: ${peerName} handed over the master role`, { minEpoch: e.epoch, catchUpFrom: null });
  return r;
}

/** Why a `handover` must not be acted on, or null when it is current (see `onHandoverReceived`). */
function staleHandover(s: CoreState, e: Extract<Event, { type: 'handover-received' }>, now: number, config: CoreConfig): string | null {
  const epochProblem = handoverEpochProblem(s.knownEpoch, e.epoch);
  if (epochProblem !== null) return epochProblem;
  const peer = livePeer(s, now, config);
  if (peer === null || peer.nodeName !== e.from) return `${e.from} is not a live peer of this node`;
  // Only while the old master hands over do its adverts carry the flag; a lost advert
  // costs a moment: the old master re-sends `handover` on its next advert tick.
  if (!peer.flags.switchingOver) return `${e.from} is not heard handing over (its advert has no switching-over flag)`;
  return null;
}

/** On the backup that forwarded a request: the master answered (a refusal or failure). */
export function onSwitchoverResult(
  s: CoreState,
  e: Extract<Event, { type: 'switchover-result-received' }>,
): StepResult {
  const op = s.switchover;
  if (op === null || op.requestId !== e.requestId) {
    return done(s, [audit('switchover-result', { requestId: e.requestId, ok: e.ok, detail: e.detail, expected: false })],
      `switchover result for ${e.requestId} noted`);
  }
  if (op.phase === 'forwarded') {
    const ended = withTimers({ ...rememberSwitchover(s, op.requestId), switchover: null }, { switchover: undefined });
    const detail = `${s.peer?.nodeName ?? 'the master'}: ${e.detail}`;
    return done(ended, answer(op, e.ok, detail, {}), `switchover ${op.requestId}: ${e.ok ? 'done' : 'refused'} by the master`);
  }
  if (op.phase === 'awaiting-peer' && !e.ok) {
    const ended = withTimers({ ...rememberSwitchover(s, op.requestId), switchover: null }, { switchover: undefined });
    return done(ended, [
      ...letGo(s, `switchover ${op.requestId}: the peer refused the role`),
      ...answer(op, false, `Redis was handed over, but the peer refused the role: ${e.detail}`, {}),
    ], `switchover ${op.requestId}: the peer refused the role`);
  }
  return done(s, [], `switchover result for ${e.requestId} noted (${op.phase})`);
}

/** The new master's promotion ended; answers the operator who asked on this host. */
export function finishTakingOver(s: CoreState, ok: boolean, detail: string): StepResult {
  const op = s.switchover;
  if (op === null || op.phase !== 'taking-over') return done(s, [], 'no switchover to finish');
  const ended: CoreState = { ...rememberSwitchover(s, op.requestId), switchover: null };
  const text = ok ? `this node is master (epoch ${s.epoch}) and holds the VIP` : `promotion failed: ${detail}`;
  return done(ended, [
    audit('switchover-finished', { requestId: op.requestId, ok, epoch: s.epoch, user: op.user }),
    ...answer(op, ok, text, { epoch: s.epoch }),
  ], `switchover ${op.requestId} ${ok ? 'finished' : 'failed'}`);
}

/** The old master hears the new one: the switchover is complete. */
export function onPeerAdvertDuringSwitchover(s: CoreState, now: number, config: CoreConfig): StepResult | null {
  const op = s.switchover;
  const peer = s.peer;
  if (op === null || op.phase !== 'awaiting-peer' || peer === null) return null;
  if (peer.state !== 'MASTER' || peer.epoch < op.epoch || !peer.flags.holdsVip) return null;
  const ended = withTimers({ ...rememberSwitchover(s, op.requestId), switchover: null }, { switchover: undefined });
  const tookMs = Math.round(now - op.startedAtMs);
  return done(ended, [
    ...letGo(s, `switchover ${op.requestId}: ${peer.nodeName} holds the VIP`),
    // Tells the new master we let go, so it re-announces the VIP (see step.ts).
    ...(s.role === 'BACKUP' ? [sendAdvert(ended, config)] : []),
    audit('switchover-finished', { requestId: op.requestId, ok: true, newMaster: peer.nodeName, epoch: peer.epoch, user: op.user, tookMs }),
    ...answer(op, true, `${peer.nodeName} is master (epoch ${peer.epoch}); this node replicates from it`,
      { newMaster: peer.nodeName, epoch: peer.epoch, tookMs, method: op.method, pausedMs: op.pausedMs }),
  ], `switchover ${op.requestId} finished: ${peer.nodeName} is MASTER`);
}

/** Advert tick on the old master: re-send `handover` until the peer advertises MASTER. */
export function resendHandover(s: CoreState): { state: CoreState; actions: Action[] } {
  const op = s.switchover;
  // Only the old master, now BACKUP, hands over; one that took the role back (preempted,
  // or the peer resigned) must not invite the peer to promote again.
  if (op === null || op.phase !== 'awaiting-peer' || s.role !== 'BACKUP' || op.resends >= MAX_HANDOVER_RESENDS) return { state: s, actions: [] };
  return {
    state: { ...s, switchover: { ...op, resends: op.resends + 1 } },
    actions: [message({ kind: 'handover', requestId: op.requestId, epoch: op.epoch, force: op.force })],
  };
}

/** The switchover deadline passed while waiting for the peer. */
export function onSwitchoverTimer(s: CoreState, now: number): StepResult {
  const op = s.switchover;
  if (op === null || (op.phase !== 'forwarded' && op.phase !== 'awaiting-peer')) return done(s, [], 'switchover timer ignored');
  const ended = { ...rememberSwitchover(s, op.requestId), switchover: null };
  const waited = Math.round(now - op.startedAtMs);
  const detail = op.phase === 'forwarded'
    ? `no answer from the master within ${waited} ms; check \`redis-ha status\` on both nodes`
    : `Redis was handed over, but ${s.peer?.nodeName ?? 'the peer'} has not advertised MASTER within ${waited} ms; ` +
      'it takes over when its master-down timer runs out';
  const release = op.phase === 'awaiting-peer' && s.role === 'BACKUP' ? letGo(s, `switchover ${op.requestId}: deadline`) : [];
  return prepend([audit('switchover-timeout', { requestId: op.requestId, phase: op.phase, waitedMs: waited }), ...release],
    done(ended, answer(op, false, detail, {}), `switchover ${op.requestId}: ${detail}`));
}

/** The old master lets go of the VIP it kept during the switchover, and of its clients. */
function letGo(s: CoreState, reason: string): Action[] {
  if (s.role !== 'BACKUP') return [];
  return [audit('vip-release', { reason }), { type: 'release-vip' }, { type: 'disconnect-clients' }];
}

function refuse(s: CoreState, e: Requested, why: string): StepResult {
  const op = { requestId: e.requestId, replyTo: e.origin } as const;
  return done(s, [
    audit('switchover-refused', { requestId: e.requestId, user: e.user, origin: e.origin, force: e.force, reason: why }),
    ...answer(op, false, `refused: ${why}`, { outcome: 'refused' }),
  ], `switchover ${e.requestId} refused: ${why}`);
}

/** The answer to whoever asked: the local operator, or the peer that forwarded the request. */
function answer(
  op: Pick<SwitchoverOp, 'requestId' | 'replyTo'>,
  ok: boolean,
  detail: string,
  data: Record<string, unknown>,
): Action[] {
  if (op.replyTo === 'local') return [{ type: 'reply', requestId: op.requestId, ok, detail, data }];
  // Success reaches a forwarding peer as `handover`; only failures need a result.
  if (op.replyTo === 'peer' && !ok) return [message({ kind: 'switchover-result', requestId: op.requestId, ok, detail })];
  return [];
}
