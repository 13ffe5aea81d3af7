/**
 * What etcd remembers of a group beyond any lease (issue 11, findings Q9 and Q12), and
 * what the core does with it. Two durable records sit beside the leader key:
 *
 *   leader-last     the last master whose Redis served, with its Redis's replication id
 *                   (written by the master once promoted, while it holds the key). A node
 *                   about to become master whose Redis's history (replid, replid2) does
 *                   not contain that id never followed that master: it may lack its
 *                   writes (Q9: a node cut off at start-up adopts its older Redis once the
 *                   newer master's lease lapsed).
 *   leader-relaxed  a master that eased its Redis's fence to `accepted` (no replica left to
 *                   acknowledge) names itself here first, and clears the mark only once a
 *                   replica acknowledges again. Its Redis may take writes no replica
 *                   holds, without any daemon (Q12: the master's daemon then froze past its
 *                   lease and the backup promoted without reaching it).
 *
 * A master's fence stays `with-replica` while its mark is being written (or after etcd
 * refused it, or after a clear etcd did not confirm): only a `marked` answer eases it.
 * Either record makes the next mastership of another node go through the old master's
 * own Redis: a takeover that catches up with it and fences it (`promote-redis` with
 * `requireFence`), never an adoption as is. When that Redis cannot be reached the
 * promotion fails and the node stays BACKUP, looking again every master-down interval
 * (the operator's `redis-ha failover --accept-data-loss` overrides it).
 */
import { audit, done, prepend, withQuorum, type StepResult } from './common.js';
import { holdsKey } from './quorum-gate.js';
import type { CoreConfig, CoreState } from './state.js';
import type { Event, FenceSetting, KeyHolder } from './types.js';

type Marked = Extract<Event, { type: 'quorum-marked' }>;

function short(replId: string): string {
  return `${replId.slice(0, 8)}…`;
}

/**
 * Whether `node`, heard since it was master in `epoch` (its adverts carry its epoch),
 * says its Redis replicates this node's Redis, a master (same replication id): what it held is ours now (or was
 * discarded by its resync already), so there is nothing left to catch up with, and
 * waiting for a catch-up from a replica would wait for ever.
 */
function followsUs(s: CoreState, node: string, epoch: number): boolean {
  const peer = s.peer;
  const local = s.health.redis;
  return peer !== null && local !== null && local.role === 'master' && peer.nodeName === node && peer.epoch >= epoch &&
    peer.redis.role === 'replica' && peer.redis.replId === local.replId;
}

/**
 * Another node's relaxed mark that etcd remembers (null: none): a master of this node's
 * clears it once promoted (its Redis was caught up with and fenced, or follows ours, or
 * the operator forced the takeover).
 */
export function othersMark(s: CoreState, config: Pick<CoreConfig, 'nodeName'>): KeyHolder | null {
  const relaxed = s.quorum.memory?.relaxed ?? null;
  return relaxed !== null && relaxed.node !== config.nodeName ? relaxed : null;
}

/**
 * Why this node's next mastership must first catch up with and fence the old master's
 * Redis, from what etcd last remembered; null when nothing asks for it.
 */
export function memoryDemand(
  s: CoreState,
  config: Pick<CoreConfig, 'nodeName'> & { readonly quorum: Pick<CoreConfig['quorum'], 'backend'> },
): string | null {
  const m = s.quorum.memory;
  if (config.quorum.backend !== 'etcd' || m === null) return null;
  if (m.relaxed !== null && m.relaxed.node !== config.nodeName && !followsUs(s, m.relaxed.node, m.relaxed.epoch)) {
    return `${m.relaxed.node} eased its Redis's fence in epoch ${m.relaxed.epoch} (no replica acknowledged) and has not cleared the mark: ` +
      'its Redis may hold writes no replica has';
  }
  const last = m.last;
  const local = s.health.redis;
  if (last !== null && last.node !== config.nodeName && local !== null && local.replId !== last.replId && local.replId2 !== last.replId &&
    !followsUs(s, last.node, last.epoch)) {
    return `${last.node} served as master in epoch ${last.epoch} (replication id ${short(last.replId)}) and this node's Redis ` +
      `(${short(local.replId)}) never followed it: it may lack that master's writes`;
  }
  return null;
}

/**
 * The fence a master wants, passed through the relaxed mark: `accepted` only once etcd
 * names this node in `leader-relaxed` (the mark is asked for first, the fence stays as it
 * is meanwhile). Returns the step to take instead of applying `wanted`, or null to apply it.
 */
export function relaxGate(s: CoreState, wanted: FenceSetting, config: CoreConfig): StepResult | null {
  if (wanted !== 'accepted' || config.quorum.backend !== 'etcd') return null;
  const mark = s.quorum.relaxMark;
  if (mark !== null && mark.state === 'marked' && mark.epoch === s.epoch) return null;
  if (mark !== null && (mark.state === 'marking' || mark.state === 'clearing')) return done(s, [], `no replica acknowledging: relaxed mark ${mark.state} in etcd`);
  // etcd writes no mark over another node's: that one goes first (`clearFencedMark`).
  const other = s.quorum.fenceMark;
  if (other !== null) return done(s, [], `no replica acknowledging: ${other.holder.node}'s relaxed mark is cleared first`);
  const refusals = mark?.state === 'refused' ? mark.refusals ?? 0 : 0;
  return done(withQuorum(s, { relaxMark: { epoch: s.epoch, state: 'marking', refusals } }), [{ type: 'mark-quorum', mark: { kind: 'relax', epoch: s.epoch } }],
    'no replica acknowledging: naming this master in etcd\'s relaxed mark before easing the fence (writes wait for it)');
}

/**
 * A master whose fence is back to `with-replica`, confirmed, with a replica acknowledging:
 * the writes taken while relaxed are on the replica now, so its mark goes. Null otherwise.
 */
export function clearOwnMark(s: CoreState, replicas: number, config: CoreConfig): StepResult | null {
  const mark = s.quorum.relaxMark;
  const fence = s.quorum.fence;
  // A refused or unanswered write may have been committed all the same: cleared too (a
  // clear of a mark that is not there is no error).
  const settled = mark !== null && (mark.state === 'marked' || mark.state === 'refused' || mark.state === 'unknown');
  if (!settled || replicas === 0 || fence === null || fence.writes !== 'with-replica' || fence.ok !== true) return null;
  return done(withQuorum(s, { relaxMark: { epoch: mark.epoch, state: 'clearing' } }), [{ type: 'mark-quorum', mark: { kind: 'clear', holder: { node: config.nodeName, epoch: mark.epoch } } }],
    `${replicas} replica(s) acknowledging again: clearing this master's relaxed mark`);
}

/**
 * The master records its Redis in `leader-last` once it serves (promoted, key held), and
 * again when its replication id changed; a failed write is retried at the next check.
 */
export function keepServed(s: CoreState, now: number, config: CoreConfig): StepResult | null {
  if (config.quorum.backend !== 'etcd' || s.role !== 'MASTER' || s.redisOp !== null || s.resigning) return null;
  const redis = s.health.redis;
  if (redis === null || redis.role !== 'master' || redis.replId === '' || !holdsKey(s, now, config)) return null;
  const served = s.quorum.served;
  if (served !== null && served.epoch === s.epoch && served.replId === redis.replId && served.ok !== false) return null;
  return done(withQuorum(s, { served: { epoch: s.epoch, replId: redis.replId, ok: null } }),
    [{ type: 'mark-quorum', mark: { kind: 'served', epoch: s.epoch, replId: redis.replId } }],
    `recording in etcd that this master serves (epoch ${s.epoch}, replication id ${short(redis.replId)})`);
}

/** A `mark-quorum` call finished. `fenceAgain` re-runs the master's fence (a relax mark written may ease it now). */
export function onQuorumMarked(s: CoreState, e: Marked, config: CoreConfig, fenceAgain: (t: CoreState) => StepResult | null): StepResult {
  const m = e.mark;
  switch (m.kind) {
    case 'relax': {
      const mark = s.quorum.relaxMark;
      if (mark === null || mark.state !== 'marking' || mark.epoch !== m.epoch) return done(s, [], `relaxed mark answered (${e.detail}); no longer asked for`);
      if (!e.ok) {
        // Audited once per run of refusals (an etcd outage refuses it at every check).
        const refusals = (mark.refusals ?? 0) + 1;
        return done(withQuorum(s, { relaxMark: { epoch: m.epoch, state: 'refused', refusals } }),
          refusals === 1 ? [audit('quorum-relax-refused', { epoch: m.epoch, detail: e.detail })] : [],
          `relaxed mark not written (${e.detail}, ${refusals} time(s) in a row): the fence stays as it is, asked again at the next check`);
      }
      const memory = s.quorum.memory === null ? null : { ...s.quorum.memory, relaxed: { node: config.nodeName, epoch: m.epoch } };
      const next = withQuorum(s, { relaxMark: { epoch: m.epoch, state: 'marked' }, memory });
      const record = audit('quorum-relaxed', { epoch: m.epoch, detail: e.detail });
      return prepend([record], fenceAgain(next) ?? done(next, [], 'relaxed mark written'));
    }
    case 'clear': {
      const own = m.holder.node === config.nodeName;
      if (own) {
        const mark = s.quorum.relaxMark;
        if (mark === null || mark.state !== 'clearing') return done(s, [], `relaxed mark clear answered (${e.detail})`);
        // Not confirmed: etcd may have deleted it, so it is not trusted to ease the fence
        // again (a new relax write first), and the clear is retried at the next check.
        if (!e.ok) return done(withQuorum(s, { relaxMark: { epoch: mark.epoch, state: 'unknown' } }), [], `relaxed mark not cleared (${e.detail}): retried at the next check`);
        return done(withQuorum(s, { relaxMark: null, memory: forgetMark(s, m.holder) }), [audit('quorum-relax-cleared', { epoch: mark.epoch, detail: e.detail })], 'relaxed mark cleared');
      }
      const fenced = s.quorum.fenceMark;
      if (fenced === null || fenced.holder.node !== m.holder.node || fenced.holder.epoch !== m.holder.epoch) {
        return done(s, [], `${m.holder.node}'s relaxed mark clear answered (${e.detail})`);
      }
      if (!e.ok) {
        return done(withQuorum(s, { fenceMark: { ...fenced, clearing: false } }), [],
          `${m.holder.node}'s relaxed mark not cleared (${e.detail}): retried at the next check`);
      }
      const next = withQuorum(s, { fenceMark: null, memory: forgetMark(s, m.holder) });
      const record = audit('quorum-relax-cleared', { node: m.holder.node, epoch: m.holder.epoch, detail: e.detail });
      // This master's own relax waited for it (`relaxGate`).
      return prepend([record], fenceAgain(next) ?? done(next, [], `${m.holder.node}'s relaxed mark cleared (its Redis was fenced by this node's promotion)`));
    }
    case 'served': {
      const served = s.quorum.served;
      if (served === null || served.epoch !== m.epoch || served.replId !== m.replId) return done(s, [], `served record answered (${e.detail})`);
      const memory = e.ok && s.quorum.memory !== null ? { ...s.quorum.memory, last: { node: config.nodeName, epoch: m.epoch, replId: m.replId } } : s.quorum.memory;
      const next = withQuorum(s, { served: { ...served, ok: e.ok }, memory });
      return e.ok
        ? done(next, [audit('quorum-served', { epoch: m.epoch, replId: m.replId })], 'etcd records this master\'s Redis as the last to serve')
        : done(next, [], `served record not written (${e.detail}): retried at the next check`);
    }
    default: {
      const never: never = m;
      throw new Error(`unhandled quorum mark ${JSON.stringify(never)}`);
    }
  }
}

/** What etcd remembers once `holder`'s mark is gone (the view `status` and the next decisions read). */
function forgetMark(s: CoreState, holder: KeyHolder): CoreState['quorum']['memory'] {
  const m = s.quorum.memory;
  if (m === null || m.relaxed === null || m.relaxed.node !== holder.node || m.relaxed.epoch !== holder.epoch) return m;
  return { ...m, relaxed: null };
}

/**
 * After a promotion that fenced another node's relaxed Redis: its mark goes (retried at
 * each master check while it does not). Null when there is nothing to send.
 */
export function clearFencedMark(s: CoreState): StepResult | null {
  const fenced = s.quorum.fenceMark;
  if (fenced === null || fenced.clearing || s.role !== 'MASTER' || s.redisOp !== null) return null;
  return done(withQuorum(s, { fenceMark: { ...fenced, clearing: true } }), [{ type: 'mark-quorum', mark: { kind: 'clear', holder: fenced.holder } }],
    `clearing ${fenced.holder.node}'s relaxed mark: its Redis was caught up with and fenced`);
}

/** What a serving master keeps in etcd's memory at each check: its served record, a fenced node's mark cleared. */
export function keepMemory(s: CoreState, now: number, config: CoreConfig): StepResult | null {
  const served = keepServed(s, now, config);
  const cleared = clearFencedMark(served?.state ?? s);
  if (cleared === null) return served;
  return served === null ? cleared : prepend(served.actions, cleared);
}
