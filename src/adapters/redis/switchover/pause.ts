/**
 * A switchover by pause: fence writes on the local Redis together with the offset
 * read (one MULTI), wait until the target has processed that offset, renew the pause
 * for the worst case of the promotion (with the offset read that ends the catch-up),
 * `REPLICAOF NO ONE` on the target (verified), `REPLICAOF <target>` here, and lift
 * the fence. The fence is CLIENT PAUSE WRITE from 6.2, `min-replicas-to-write`
 * before (see `switchover.ts`). Pause bounds and verdicts are in `rules.ts`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RedisSnapshot } from '../../../core/types.js';
import { RedisControlError } from '../../../errors.js';
import { describeError, REDIS_REPLY } from '../connection.js';
import { parseReplicationInfo } from '../info.js';
import {
  catchUpVerdict,
  drainPollBoundMs,
  failedPromotionOutcome,
  promotionPauseMs,
  renewedPauseBoundMs,
  ROLE_VERIFY_MS,
  switchoverPauseMs,
} from '../rules.js';
import { describeSnapshot } from '../snapshot.js';
import { nowMs } from '../trail.js';
import type { Checked, SwitchoverContext } from './context.js';
import type { SwitchoverOutcome } from './types.js';

/** How often the target's offset is polled while writes are fenced. */
const DRAIN_POLL_MS = 2;
/** `min-replicas-to-write` of the pre-6.2 fence: more replicas than any master has (INT_MAX). */
const FENCE_MIN_REPLICAS = 2_147_483_647;
/** `min-replicas-max-lag` 0 disables the min-replicas check; the fence sets Redis' default then. */
const FENCE_MAX_LAG_S = 10;

/** The pause method, from the pre-checks to a final outcome (`done` still needs `finishDone`). */
export async function viaPause(ctx: SwitchoverContext, checked: Checked): Promise<SwitchoverOutcome> {
  const { trail, request, name } = ctx;
  const since = nowMs();
  let frozen: number;
  try {
    frozen = checked.modern ? await pauseWrites(ctx) : await fenceWritesLegacy(ctx);
  } catch (err) {
    if (ctx.fence === null) {
      trail.add(`refused: could not fence writes (${describeError(err)})`, since);
      return 'refused';
    }
    trail.add(`fencing writes failed (${describeError(err)})`, since);
    return 'rolled-back';
  }

  // Catch-up: the target must have processed every byte we wrote before the fence.
  let step = nowMs();
  const deadline = since + request.timeoutMs;
  let seen: RedisSnapshot | null = null;
  let lastError = '';
  let answering = false;
  let caughtUp = false;
  for (;;) {
    answering = false;
    try {
      const boundMs = drainPollBoundMs(ctx.deps.peerTimeoutMs, deadline - nowMs());
      seen = await ctx.peer.run(boundMs, async (c) => parseReplicationInfo(await c.info('replication')));
      answering = true;
      if (seen.role !== 'replica') {
        trail.add(`${name} stopped being a replica during the catch-up (${describeSnapshot(seen)})`, step);
        return 'failed';
      }
      if (seen.offset >= frozen) {
        // A PING to the replicas (repl-ping-replica-period) or an expired key still moves the offset.
        let now: number;
        if (checked.modern) {
          const renewed = await renewPause(ctx);
          if (renewed === null) return 'rolled-back';
          now = renewed;
        } else {
          now = (await ctx.localView()).snapshot.offset;
        }
        if (now <= frozen) {
          caughtUp = true;
          break;
        }
        frozen = now;
      }
    } catch (err) {
      lastError = describeError(err);
    }
    if (nowMs() >= deadline) break;
    await sleep(DRAIN_POLL_MS);
  }
  const behind =
    seen === null || !answering
      ? `no answer: ${lastError || 'unknown'}`
      : `${Math.max(0, frozen - seen.offset)} bytes behind frozen offset ${frozen}`;
  switch (catchUpVerdict({ caughtUp, force: request.force, answering })) {
    case 'caught-up':
      trail.add(`${name} caught up to frozen offset ${frozen}`, step);
      break;
    case 'roll-back':
      trail.add(`${name} did not catch up within ${request.timeoutMs} ms (${behind})${request.force ? ', not promoted although forced' : ''}`, step);
      return 'rolled-back';
    case 'promote-forced':
      trail.add(`forced: promoting ${name} although it did not catch up within ${request.timeoutMs} ms (${behind})`, step);
      if (checked.modern && (await renewPause(ctx)) === null) return 'rolled-back';
      break;
  }

  step = nowMs();
  const promoted = await promoteTarget(ctx);
  if (promoted !== 'done') return promoted;
  trail.add(`${name} promoted`, step);

  await ctx.deps.setMasterAuth(trail);
  step = nowMs();
  const { target } = request;
  try {
    await ctx.deps.local.run(ctx.deps.localTimeoutMs, (c) => c.replicaof(target.host, target.port));
    trail.add(`REPLICAOF ${target.host} ${target.port}`, step);
  } catch (err) {
    trail.add(`REPLICAOF ${target.host} ${target.port} failed locally (${describeError(err)}): ${name} is master already`, step);
    return 'failed';
  }
  // Writes held by the fence now meet a replica and fail with READONLY: none is acknowledged and lost.
  await ctx.liftFence();
  return 'done';
}

/** CLIENT PAUSE WRITE and the offset read in one MULTI: the offset is the last one a write reached. */
async function pauseWrites(ctx: SwitchoverContext): Promise<number> {
  const pauseMs = switchoverPauseMs(ctx.request.timeoutMs);
  const since = nowMs();
  ctx.fence = { kind: 'pause', boundMs: pauseMs };
  ctx.fencedAt = since;
  const replies = await ctx.multi((m) => m.call('CLIENT', 'PAUSE', String(pauseMs), 'WRITE').info('replication'), true);
  const offset = parseReplicationInfo(String(replies[1])).offset;
  ctx.trail.add(`CLIENT PAUSE ${pauseMs} WRITE at offset ${offset}`, since);
  return offset;
}

/**
 * Renews the pause for the promotion (see `promotionPauseMs`), with the offset read in
 * the same MULTI. Redis only ever moves a pause's end later, so a renewal shorter
 * than what is left changes nothing. Returns the offset, or `null` when the renewal
 * failed (recorded in the trail): the caller rolls back, the fence stays set for `liftFence`.
 */
async function renewPause(ctx: SwitchoverContext): Promise<number | null> {
  const pauseMs = promotionPauseMs(ctx.deps);
  const since = nowMs();
  // Its outcome may be unknown (a timeout): from here the longer bound may be in force.
  ctx.fence = { kind: 'pause', boundMs: renewedPauseBoundMs(ctx.fence?.kind === 'pause' ? ctx.fence.boundMs : null, pauseMs) };
  try {
    const replies = await ctx.multi((m) => m.call('CLIENT', 'PAUSE', String(pauseMs), 'WRITE').info('replication'));
    const offset = parseReplicationInfo(String(replies[1])).offset;
    ctx.trail.add(`CLIENT PAUSE ${pauseMs} WRITE renewed for the promotion at offset ${offset}`, since);
    return offset;
  } catch (err) {
    ctx.trail.add(`could not renew CLIENT PAUSE for the promotion (${describeError(err)}): ${ctx.name} not promoted`, since);
    return null;
  }
}

/** Before 6.2 (see `switchover.ts`): `min-replicas-to-write` beyond any replica count, with the offset read. */
async function fenceWritesLegacy(ctx: SwitchoverContext): Promise<number> {
  const since = nowMs();
  const current = await ctx.deps.local.run(ctx.deps.localTimeoutMs, async (c) => {
    const toWrite = configValue(await c.config('GET', 'min-replicas-to-write'));
    const maxLag = configValue(await c.config('GET', 'min-replicas-max-lag'));
    return { toWrite, maxLag };
  });
  if (current.toWrite === null || current.maxLag === null) {
    throw new RedisControlError(REDIS_REPLY, 'CONFIG GET min-replicas-to-write/min-replicas-max-lag returned nothing');
  }
  const restore: [string, string][] = [['min-replicas-to-write', current.toWrite]];
  const fixLag = current.maxLag === '0';
  if (fixLag) restore.push(['min-replicas-max-lag', current.maxLag]);
  ctx.fence = { kind: 'min-replicas', restore };
  ctx.fencedAt = since;
  const replies = await ctx.multi((m) => {
    m.call('CONFIG', 'SET', 'min-replicas-to-write', String(FENCE_MIN_REPLICAS));
    if (fixLag) m.call('CONFIG', 'SET', 'min-replicas-max-lag', String(FENCE_MAX_LAG_S));
    return m.info('replication');
  }, true);
  const offset = parseReplicationInfo(String(replies[replies.length - 1])).offset;
  ctx.trail.add(`fenced writes (min-replicas-to-write ${FENCE_MIN_REPLICAS}, Redis < 6.2) at offset ${offset}`, since);
  return offset;
}

/**
 * REPLICAOF NO ONE on the target, verified. `done` when it is master; otherwise the
 * outcome of the whole switchover (the caller lifts the fence).
 */
async function promoteTarget(ctx: SwitchoverContext): Promise<SwitchoverOutcome> {
  const { trail, name } = ctx;
  const since = nowMs();
  try {
    await ctx.peer.run(ctx.deps.peerTimeoutMs, (c) => c.replicaof('NO', 'ONE'));
    trail.add(`REPLICAOF NO ONE on ${name}`, since);
  } catch (err) {
    const refused = err instanceof RedisControlError && err.code === REDIS_REPLY;
    trail.add(`REPLICAOF NO ONE on ${name} ${refused ? 'refused' : 'unanswered'} (${describeError(err)})`, since);
    const after = await ctx.peerSnapshot();
    const outcome = failedPromotionOutcome(refused, after.snapshot?.role ?? null);
    if (outcome === 'failed') {
      trail.add(`${name} may still promote itself: ${after.snapshot === null ? `no answer (${after.detail})` : describeSnapshot(after.snapshot)}`);
    }
    return outcome;
  }
  const verified = await ctx.waitPeerMaster();
  if (verified === null || verified.role !== 'master') {
    trail.add(`${name} not master within ${ROLE_VERIFY_MS} ms (${verified === null ? 'no answer' : describeSnapshot(verified)})`, since);
    return 'failed';
  }
  return 'done';
}

/** The value of a one-parameter `CONFIG GET` reply (`[name, value]`), or null. */
function configValue(reply: unknown): string | null {
  return Array.isArray(reply) && reply.length >= 2 ? String(reply[1]) : null;
}
