/**
 * Promotion: the local Redis becomes a master (`REPLICAOF NO ONE`, verified), after a
 * fenced takeover from the old master when it still answers (`takeover.ts`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../logger.js';
import type { HostPort, RedisSnapshot } from '../../core/types.js';
import { describeError } from './connection.js';
import type { RedisCheckResult } from './health.js';
import type { LocalRedis } from './local.js';
import { describeSnapshot, formatHostPort } from './snapshot.js';
import { FencedTakeover, type TakeoverOptions } from './takeover.js';
import { nowMs, Trail } from './trail.js';

/** Outcome of a promotion: ok when the local Redis ended up `role:master`. */
export type RedisPromoteResult = RedisCheckResult;

/** What a promotion drives: the local Redis, and what a takeover from the peer needs. */
export interface PromoteDeps {
  readonly local: LocalRedis;
  /** `promotion.waitForSync` off: no takeover, promote at once. */
  readonly takeover: TakeoverOptions;
  readonly logger: Logger;
}

/**
 * Makes the local Redis a master; see `RedisControl.promote`. Never throws: a failure
 * is `{ ok: false, detail }`.
 */
export async function promote(
  deps: PromoteDeps,
  catchUpFrom: HostPort | null,
  options: { readonly requireFence?: boolean } = {},
): Promise<RedisPromoteResult> {
  const trail = new Trail();
  const { waitForSync } = deps.takeover.promotion;
  const takeover =
    catchUpFrom !== null && waitForSync ? new FencedTakeover(deps.takeover, deps.local, catchUpFrom, trail) : null;
  let outcome: { ok: boolean; redis: RedisSnapshot | null };
  try {
    outcome = await promoteSteps(deps, catchUpFrom, takeover, trail, options.requireFence === true);
  } catch (err) {
    trail.add(`failed: local Redis: ${describeError(err)}`);
    outcome = { ok: false, redis: null };
  }
  await takeover?.release();
  const detail = trail.toString();
  if (!outcome.ok) deps.logger.warn({ detail }, 'redis promotion failed');
  return { ok: outcome.ok, detail, redis: outcome.redis };
}

/** The local side of `promote`; throws when the local Redis fails. */
async function promoteSteps(
  deps: PromoteDeps,
  catchUpFrom: HostPort | null,
  takeover: FencedTakeover | null,
  trail: Trail,
  requireFence: boolean,
): Promise<{ ok: boolean; redis: RedisSnapshot | null }> {
  const { local } = deps;
  const { preDelayMs } = deps.takeover.promotion;
  if (preDelayMs > 0) {
    const since = nowMs();
    await sleep(preDelayMs);
    trail.add(`pre-delay ${preDelayMs} ms`, since);
  }
  let since = nowMs();
  const state = await local.state(true);
  trail.add(`local ${describeSnapshot(state.snapshot)}`, since);

  if (catchUpFrom === null) {
    trail.add('no catch-up source');
  } else if (takeover === null) {
    trail.add(`catch-up with ${formatHostPort(catchUpFrom)} disabled (promotion.wait_for_sync off)`);
  } else {
    await takeover.prepare(state.snapshot, state.fields.get('run_id') ?? '', { strict: requireFence });
  }
  if (requireFence && (takeover === null || !(await takeover.fencedForPromotion()))) {
    // The old master may be serving clients on the other side of a cut (prefer safety), or
    // hold writes no replica has (etcd's memory): only its own Redis, caught up with and
    // fenced, or found a replica (taking no writes), proves it is not.
    trail.add('not promoting: the old master\'s Redis could not be caught up with and fenced (required: prefer safety, or etcd\'s memory)');
    return { ok: false, redis: (await local.replication().catch(() => null)) ?? state.snapshot };
  }

  since = nowMs();
  const before = await local.replication();
  if (before.role === 'master') {
    trail.add('already master, nothing to change', since);
    return { ok: true, redis: before };
  }
  await local.replicaOfNoOne();
  trail.add('REPLICAOF NO ONE', since);
  since = nowMs();
  const after = await local.replication();
  if (after.role !== 'master') {
    trail.add(`still ${describeSnapshot(after)} after REPLICAOF NO ONE`, since);
    return { ok: false, redis: after };
  }
  trail.add(`verified ${describeSnapshot(after)}`, since);
  deps.logger.info({ offset: after.offset, replId: after.replId }, 'redis promoted');
  await takeover?.fence();
  return { ok: true, redis: after };
}
