/**
 * Small pure helpers shared by the decision core's files (`step.ts`, `transitions.ts`,
 * `maintenance.ts`, `switchover.ts`): building results and actions, timers, the
 * ranking of two masters, and the wording of reasons. No decisions live here.
 */
import { epochExhausted } from './epoch.js';
import { compareHistories } from './history.js';
import { vipDesired, type CoreConfig, type CoreState, type PeerView, type QuorumView } from './state.js';
import { masterDownMs, PRIORITY_RESIGN } from './timing.js';
import type { Action, AdvertBody, NodeState, PeerRequest, RedisSnapshot, TimerName } from './types.js';

/** The result of one step: the next state, the effects to run in order, and why. */
export interface StepResult {
  readonly state: CoreState;
  readonly actions: readonly Action[];
  /** Human-readable reason; equals the new state's `reason` when the role changed. */
  readonly reason: string;
}

export function done(state: CoreState, actions: readonly Action[], reason: string): StepResult {
  return { state, actions, reason };
}

/** `r` with `actions` run before its own. */
export function prepend(actions: readonly Action[], r: StepResult): StepResult {
  return actions.length === 0 ? r : { ...r, actions: [...actions, ...r.actions] };
}

export function audit(event: string, data: Record<string, unknown>): Action {
  return { type: 'audit', event, data };
}

export function message(m: PeerRequest): Action {
  return { type: 'send-message', message: m };
}

export function assertNever(x: never): never {
  throw new Error(`unhandled case: ${JSON.stringify(x)}`);
}

export function withTimers(s: CoreState, changes: Partial<Record<TimerName, number | undefined>>): CoreState {
  const timers: Partial<Record<TimerName, number>> = { ...s.timers };
  for (const [k, v] of Object.entries(changes) as [TimerName, number | undefined][]) {
    if (v === undefined) delete timers[k];
    else timers[k] = v;
  }
  return { ...s, timers };
}

export function transitionTo(s: CoreState, role: NodeState, now: number, reason: string): CoreState {
  const same = role === s.role;
  return {
    ...s, role, enteredAtMs: same ? s.enteredAtMs : now, reason,
    vipClaimed: same && s.vipClaimed, vipClaimFailures: same ? s.vipClaimFailures : 0,
    takeoverHeld: same ? s.takeoverHeld : null,
    // A master's Redis follows nobody: a divergence kept as a backup is over.
    redisDiverged: role === 'MASTER' ? null : s.redisDiverged,
  };
}

/** The peer, if its last advert is recent enough (within its master-down interval). */
export function livePeer(s: CoreState, now: number, config: CoreConfig): PeerView | null {
  const p = s.peer;
  if (!p) return null;
  return now - p.receivedAtMs <= masterDownMs(config.priority, p.advertIntervalMs) ? p : null;
}

export function peerCannotServe(peer: PeerView): boolean {
  return peer.state === 'FAULT' || peer.flags.fault;
}

export function peerResigning(peer: PeerView): boolean {
  return peer.flags.resigning || peer.priority === PRIORITY_RESIGN;
}

interface Rank {
  readonly epoch: number;
  readonly priority: number;
  /** The node name: signed in every advert, unlike the datagram's source address. */
  readonly name: string;
}

/**
 * Newer epoch first (it holds the newer writes), then priority, then the greater node
 * name (compared as strings). Not the source address (VRRP's last tie-break): that is
 * not authenticated, and a packet's source can be forged; the name is signed.
 */
export function outranks(a: Rank, b: Rank): boolean {
  if (a.epoch !== b.epoch) return a.epoch > b.epoch;
  if (a.priority !== b.priority) return a.priority > b.priority;
  return a.name > b.name;
}

export function rankOf(s: CoreState, config: CoreConfig): Rank {
  return { epoch: s.epoch, priority: config.priority, name: config.nodeName };
}

export function peerRank(peer: PeerView): Rank {
  return { epoch: peer.epoch, priority: peer.priority, name: peer.nodeName };
}

export function rankText(r: Rank): string {
  return `epoch ${r.epoch}, priority ${r.priority}, name ${r.name}`;
}

export function peerStateText(p: PeerView): string {
  return `${p.state}${p.flags.fault ? ' fault' : ''}, Redis ${p.redis.role}`;
}

/**
 * What a resync of the local Redis from the peer's would discard (`compareHistories`):
 * nothing when the peer's history holds ours, the bytes past the point where the two
 * diverged when they are linked, everything since the last sync when they are not.
 */
export function divergenceReport(local: RedisSnapshot | null, peer: PeerView): Record<string, unknown> {
  if (!local) return { divergence: 'unknown: no local Redis snapshot' };
  const base = {
    localReplId: local.replId, localOffset: local.offset,
    peerReplId: peer.redis.replId, peerReplId2: peer.redis.replId2, peerOffset: peer.redis.offset,
  };
  const relation = compareHistories(peer.redis, local);
  if (relation.kind === 'contains') return { ...base, discardedBytes: 0, divergence: 'none: the peer\'s history holds every local write' };
  if (relation.kind === 'lacks') return { ...base, discardedBytes: relation.bytes, divergence: 'the local history ran past the peer\'s' };
  return { ...base, divergence: 'histories unrelated: full resync, every local write since the last sync is discarded' };
}

export function advertBody(s: CoreState, config: CoreConfig): AdvertBody {
  const r = s.health.redis;
  return {
    nodeName: config.nodeName,
    state: s.role,
    priority: s.resigning ? PRIORITY_RESIGN : config.priority,
    advertIntervalMs: config.advertIntervalMs,
    epoch: s.epoch,
    flags: {
      fault: s.role === 'FAULT',
      resigning: s.resigning,
      maintenance: s.maintenance.on,
      // From the Redis handover until the peer holds the role: the peer accepts our
      // `handover` only from a node it hears handing over.
      switchingOver: s.switchover?.phase === 'switching-over' || s.switchover?.phase === 'awaiting-peer',
      holdsVip: vipDesired(s) && s.vipClaimed,
      cannotTakeOver: takeoverBlocked(s),
      // Until the promotion has finished too: the peer leaves its Redis alone meanwhile, since
      // our catch-up may be reading from it and makes it our replica itself (finding 7).
      takingOver: s.quorum.wanted !== null || (s.role === 'MASTER' && s.redisOp === 'promoting'),
      recoveredRecently: s.recoveryBlockUntilMs !== null,
    },
    maintenanceGen: s.maintenance.gen,
    redis: r
      ? { role: s.health.healthy === false ? 'unknown' : r.role, replId: r.replId, replId2: r.replId2, offset: r.offset, secondOffset: r.secondOffset }
      : { role: 'unknown', replId: '', replId2: '', offset: 0, secondOffset: -1 },
  };
}

export function sendAdvert(s: CoreState, config: CoreConfig): Action {
  return { type: 'send-advert', advert: advertBody(s, config) };
}

export function persistState(s: CoreState): Action {
  return { type: 'persist-state', epoch: s.epoch, knownEpoch: s.knownEpoch, maintenance: s.maintenance, switchoverIds: s.switchoverIds };
}

/** Whether this node would hold back a takeover now (see `heldTakeover` in transitions.ts). */
export function takeoverBlocked(s: CoreState): boolean {
  return s.persistFailure !== null || epochExhausted(s.epoch, s.knownEpoch);
}

/** How many switchover ids a node remembers (and persists). */
export const MAX_REMEMBERED_SWITCHOVERS = 32;

/** `s` with `requestId` remembered as a switchover this node took part in. */
export function rememberSwitchover(s: CoreState, requestId: string): CoreState {
  if (s.switchoverIds.at(-1) === requestId) return s;
  const ids = [...s.switchoverIds.filter((id) => id !== requestId), requestId].slice(-MAX_REMEMBERED_SWITCHOVERS);
  return { ...s, switchoverIds: ids };
}

/** Whether this node already took part in switchover `requestId`. */
export function knownSwitchover(s: CoreState, requestId: string): boolean {
  return s.switchoverIds.includes(requestId);
}

export function redisFields(r: RedisSnapshot | null): Record<string, unknown> {
  return r ? { redisRole: r.role, replId: r.replId, replId2: r.replId2, offset: r.offset } : { redisRole: 'unknown' };
}

export function transitionAudit(from: CoreState, to: CoreState, config: CoreConfig): Action {
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

/** `quorum.backend: none` with `prefer: safety`. */
export function safetyWithoutQuorum(config: CoreConfig): boolean {
  return config.quorum.backend === 'none' && config.quorum.prefer === 'safety';
}

/** Whether the daemon owns the local Redis's write fence: with a quorum, or `prefer: safety` without. */
export function fenceManaged(config: CoreConfig): boolean {
  return config.quorum.backend !== 'none' || config.quorum.prefer === 'safety';
}

/** `s` with some of its quorum view changed. */
export function withQuorum(s: CoreState, changes: Partial<QuorumView>): CoreState {
  return { ...s, quorum: { ...s.quorum, ...changes } };
}
