/**
 * The write fence of a master's own Redis (`min-replicas-to-write`, issue 11), kept at
 * each health check and set afresh whenever the node starts to serve:
 *
 *   a replica acknowledging        `with-replica`: losing it (a cut, or the replica
 *                                  promoted after this daemon froze) stops writes without
 *                                  the daemon
 *   none, and this node holds the  `accepted`, but only once etcd names this master in its
 *     leader key                   relaxed mark (`quorum-memory.ts`; `with-replica` until
 *                                  then): a new master fences this Redis through Redis
 *                                  before it promotes
 *   none, without the key          `with-replica` (failsafe, or `prefer: safety` without a
 *                                  quorum: writes only while a replica acknowledges)
 */
import { done, fenceManaged, withQuorum, type StepResult } from './common.js';
import { holdsKey } from './quorum-gate.js';
import { clearOwnMark, relaxGate } from './quorum-memory.js';
import type { CoreConfig, CoreState } from './state.js';
import type { FenceSetting } from './types.js';

/**
 * The fence a serving master keeps (checked at each health check): `with-replica` while
 * its Redis has a replica, so that losing the replica (a cut, or the replica promoted
 * after this daemon froze) stops writes without the daemon; `accepted` without one,
 * which only a holder of the lease may run (a master without the key has stepped down
 * or serves in failsafe, which needs its peer). Null when nothing is to change.
 */
export function keepFence(s: CoreState, now: number, config: CoreConfig): StepResult | null {
  if (!fenceManaged(config) || s.role !== 'MASTER' || s.redisOp !== null || s.resigning) return null;
  const redis = s.health.redis;
  if (redis === null || redis.role !== 'master' || s.health.healthy !== true) return null;
  // Without a quorum (`prefer: safety`) a master always writes only while a replica acknowledges.
  const alone = config.quorum.backend !== 'none' && holdsKey(s, now, config);
  const replicas = redis.goodReplicas ?? redis.connectedReplicas;
  const wanted: FenceSetting = replicas > 0 || !alone ? 'with-replica' : 'accepted';
  const current = s.quorum.fence;
  if (current !== null && current.writes === wanted && current.ok !== false) return clearOwnMark(s, replicas, config);
  const marking = relaxGate(s, wanted, config);
  if (marking !== null) {
    // Until etcd holds the mark, writes only while a replica acknowledges (a Redis restarted
    // or never fenced would take them without one: review S1).
    if (current !== null && current.ok !== false && current.writes !== 'accepted') return marking;
    return { ...marking, state: withQuorum(marking.state, { fence: { writes: 'with-replica', ok: null, detail: 'being applied' } }),
      actions: [...marking.actions, { type: 'fence-redis', writes: 'with-replica' }] };
  }
  const next = withQuorum(s, { fence: { writes: wanted, ok: null, detail: 'being applied' } });
  return done(next, [{ type: 'fence-redis', writes: wanted }],
    `${replicas} replica(s) acknowledging: Redis fence ${wanted}`);
}

/**
 * A node that starts to serve (promoted, or adopting its Redis) sets its fence afresh,
 * whatever it was left at: it may have been set when this node last stepped down. Without
 * a quorum or `prefer: safety`, Redis's `min-replicas-*` settings are the operator's.
 */
export function masterWrites(s: CoreState, now: number, config: CoreConfig): StepResult {
  if (!fenceManaged(config)) return done(s, [], 'fence not managed');
  // Without a quorum, `prefer: safety` writes only while a replica acknowledges.
  if (config.quorum.backend === 'none') return done(s, [{ type: 'fence-redis', writes: 'with-replica' }], 'fence with-replica');
  return keepFence(withQuorum(s, { fence: null }), now, config) ?? done(s, [], 'fence kept');
}
