/**
 * The data guard (issue 11 item 5): a Redis that lost its data never wipes its peer.
 *
 * A Redis restarted without persistence (or from an older dump) comes back as a master
 * with a new run_id and a replication offset behind the one it had: often within
 * milliseconds (systemd's `Restart=always`), faster than `fall` health checks. Left
 * alone, the peer's replica reconnects (Redis retries once a second), cannot continue
 * its history there, and full-resyncs from the emptied server: the whole data set is
 * gone, on both nodes. So, at the first health check that shows such a restart, while
 * the peer's Redis (by its last advert) still holds history beyond the restarted one:
 *
 *   1. `REPLICAOF <peer>` on the local Redis at once (`replicate-from` with `guard`): a
 *      replica that has no link to its own master answers a PSYNC with -NOMASTERLINK,
 *      so the peer's replica keeps its data and retries;
 *   2. a MASTER goes FAULT (VIP released, fenced, FAULT advertised): the peer takes over
 *      without a catch-up, and this node's Redis then resyncs from it;
 *   3. this node takes no automatic takeover while the peer still holds that history
 *      (`takeover-gate.ts`): its own promotion would make the peer resync from it.
 *
 * Both histories go to the audit (`redis-history-lost`). Under maintenance nothing is
 * done but the audit (Redis is left as the operator has it). Pure.
 */
import { audit } from './common.js';
import type { CoreConfig, CoreState, PeerView } from './state.js';
import type { Action, HistoryLoss, RedisSnapshot, ReplPosition } from './types.js';

function position(s: RedisSnapshot): ReplPosition {
  return { runId: s.runId ?? '', replId: s.replId, offset: s.offset };
}

/**
 * A new server process (run_id changed) that is a master with less history than the
 * last one held: restarted empty or from an older dump. A restart that kept (or
 * restored) at least the offset it had is not a loss; neither is an unknown run_id.
 */
export function historyLost(before: RedisSnapshot | null, after: RedisSnapshot | null): boolean {
  if (before === null || after === null) return false;
  if (!before.runId || !after.runId || before.runId === after.runId) return false;
  return after.role === 'master' && after.offset < before.offset;
}

/**
 * Whether the peer's Redis, by its last advert, still holds history the restarted local
 * one lost: it has not resynced from the new run (another replid), and it follows the
 * lost history or is further on. On the lost history its offset may be stale (adverts
 * come once an interval), so it counts whatever its offset said.
 */
export function peerHoldsMore(peer: PeerView | null, loss: HistoryLoss): boolean {
  if (peer === null || peer.redis.role === 'unknown') return false;
  if (peer.redis.replId === loss.after.replId) return false;
  const onLostHistory = peer.redis.replId === loss.before.replId || peer.redis.replId2 === loss.before.replId;
  return onLostHistory || peer.redis.offset > loss.after.offset;
}

/**
 * A snapshot a role change reported (promotion, switchover), which does not read
 * `run_id`: it carries the last one known, so that a restart right after the change is
 * still told from the same server.
 */
export function keepRunId(next: RedisSnapshot, previous: RedisSnapshot | null): RedisSnapshot {
  return next.runId === undefined && previous?.runId !== undefined ? { ...next, runId: previous.runId } : next;
}

/** The guard's part of a health check: null when the check shows no loss. */
export interface GuardOutcome {
  readonly state: CoreState;
  /** Run first, before the role's own handling of the check. */
  readonly actions: Action[];
  /** The local Redis was taken out of the master role: a MASTER must go FAULT now. */
  readonly acted: boolean;
  readonly reason: string;
}

/**
 * Looks at a health check's snapshot (`s.health.redis`) against the one before
 * (`before`); also ends a loss once the local Redis follows the peer again.
 */
export function guardHistory(before: RedisSnapshot | null, s: CoreState, now: number, config: CoreConfig): GuardOutcome | null {
  const after = s.health.redis;
  const open = s.historyLoss;
  // A loss still open (the Redis restarted again before it resynced, e.g. empty again at
  // offset 0) is measured from the history it lost first.
  const restartedAgain = open !== null && after !== null && before !== null && after.role === 'master' &&
    !!after.runId && after.runId !== before.runId && after.offset < open.before.offset;
  if ((!historyLost(before, after) && !restartedAgain) || before === null || after === null) return settled(s);
  const loss: HistoryLoss = { atMs: now, before: restartedAgain && open !== null ? open.before : position(before), after: position(after) };
  const holds = peerHoldsMore(s.peer, loss);
  const peer = s.peer === null ? null : { node: s.peer.nodeName, replId: s.peer.redis.replId, offset: s.peer.redis.offset };
  const what = `local Redis restarted behind its history (run ${short(loss.before.runId)} at offset ${loss.before.offset} -> ` +
    `run ${short(loss.after.runId)} at offset ${loss.after.offset})`;
  if (!holds) {
    const reason = `${what}; no peer Redis holds more: nothing to save`;
    return { state: s, actions: [audit('redis-history-lost', { ...loss, peer, action: 'none: no peer Redis holds more' })], acted: false, reason };
  }
  if (s.maintenance.on) {
    const reason = `${what}; ${s.peer?.nodeName ?? 'the peer'} holds more, but maintenance leaves Redis as it is`;
    return { state: s, actions: [audit('redis-history-lost', { ...loss, peer, action: 'none: maintenance' })], acted: false, reason };
  }
  const state: CoreState = { ...s, historyLoss: loss, redisOp: s.redisOp ?? 'demoting' };
  const target = config.peerRedis;
  return {
    state,
    actions: [
      audit('redis-history-lost', { ...loss, peer, action: `REPLICAOF ${target.host} ${target.port} at once; no takeover while the peer holds more` }),
      { type: 'replicate-from', master: target, guard: true },
    ],
    acted: true,
    reason: `${what}; ${s.peer?.nodeName ?? 'the peer'} holds more (offset ${s.peer?.redis.offset ?? '?'}): made it a replica of the peer first`,
  };
}

/**
 * At start-up there is no earlier check to compare with: a local master Redis that a
 * live peer's replica is ahead of, on another history (it followed this node's Redis
 * before it restarted empty, or from an older dump, with its daemon), is guarded the same
 * way before INIT could adopt it. A fresh pair (the peer's Redis a master too) is left to
 * the election. Null when that is not the case.
 */
export function guardAtStart(s: CoreState, peer: PeerView | null, config: CoreConfig, now: number): GuardOutcome | null {
  const local = s.health.redis;
  if (peer === null || local === null || local.role !== 'master' || peer.redis.role !== 'replica') return null;
  if (peer.redis.replId === local.replId || peer.redis.replId2 === local.replId || peer.redis.offset <= local.offset) return null;
  const loss: HistoryLoss = { atMs: now, before: { runId: '', replId: peer.redis.replId, offset: peer.redis.offset }, after: position(local) };
  const peerData = { node: peer.nodeName, replId: peer.redis.replId, offset: peer.redis.offset };
  const what = `local Redis (offset ${local.offset}) is a master behind ${peer.nodeName}'s replica (offset ${peer.redis.offset}, another history)`;
  // Under maintenance Redis is left as the operator has it (INIT decides as usual).
  if (s.maintenance.on) return null;
  const target = config.peerRedis;
  return {
    state: { ...s, historyLoss: loss, redisOp: s.redisOp ?? 'demoting' },
    actions: [
      audit('redis-history-lost', { ...loss, peer: peerData, action: `REPLICAOF ${target.host} ${target.port} at once; not adopting it` }),
      { type: 'replicate-from', master: target, guard: true },
    ],
    acted: true,
    reason: `${what}: made it a replica of the peer first; not adopting it`,
  };
}

/** A loss ends once the local Redis replicates the peer with its link up (it has the peer's data again). */
function settled(s: CoreState): GuardOutcome | null {
  const r = s.health.redis;
  if (s.historyLoss === null || r === null || r.role !== 'replica' || !r.linkUp) return null;
  return { state: { ...s, historyLoss: null }, actions: [audit('redis-history-restored', { replId: r.replId, offset: r.offset })], acted: false, reason: 'local Redis resynced from the peer' };
}

/** Why an automatic takeover by this node would wipe the peer's data, or null. */
export function historyBlocker(s: CoreState): string | null {
  const loss = s.historyLoss;
  if (loss === null || !peerHoldsMore(s.peer, loss)) return null;
  return `this node's Redis restarted without its data (offset ${loss.before.offset} -> ${loss.after.offset}) and ` +
    `${s.peer?.nodeName ?? 'the peer'}'s Redis still holds more (offset ${s.peer?.redis.offset ?? '?'}): a takeover here ` +
    'would make it resync from the emptied server; not taking over automatically (restarting this daemon ends the hold ' +
    'and accepts the loss)';
}

function short(runId: string): string {
  return runId === '' ? '?' : runId.slice(0, 8);
}
