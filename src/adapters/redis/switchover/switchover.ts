/**
 * The Redis side of a planned switchover, driven from the current master's host
 * (`redis-ha switchover`): the peer's Redis, our replica, becomes the master without
 * losing an acknowledged write, and ours becomes its replica. Anything that goes
 * wrong before the peer is promoted rolls back: our Redis stays master, unpaused.
 *
 *   pre-checks   local is a master; the target is listed among its `slaveN` lines,
 *                online, not too far behind (bytes and ack age, unless forced); the
 *                target answers directly as a replica of our history, link up
 *                -> any failure: `refused`, nothing changed
 *
 *   failover     (Redis >= 6.2) FAILOVER TO <ip> <port> TIMEOUT <t> [FORCE]; Redis
 *                pauses writes, waits for the replica (waiting-for-sync), demotes
 *                itself and sends PSYNC FAILOVER (failover-in-progress); we poll
 *                `master_failover_state` and `role`:
 *                  no-failover + replica of the target  -> done
 *                  no-failover + master                 -> Redis aborted: rolled-back
 *                  still running at t + guard           -> FAILOVER ABORT, re-check
 *                FAILOVER itself unanswered (its connection is destroyed, yet Redis may
 *                still read and run it): no-failover + master proves nothing until it was
 *                seen running, so polling goes on to t + guard; never seen running by
 *                then -> FAILOVER ABORT, re-check both servers: failed (fate unknown)
 *
 *   pause        fence writes (CLIENT PAUSE <t + margin> WRITE; a min-replicas fence
 *                before 6.2, see below) together with the offset read (one MULTI),
 *                wait until the target has processed that offset, renew the pause for
 *                the worst case of the promotion (CLIENT PAUSE again, with the offset
 *                read that ends the catch-up, one MULTI), REPLICAOF NO ONE on the
 *                target (verified), REPLICAOF <target> here, lift the fence
 *                  catch-up timeout      -> lift the fence: rolled-back (forced, and the
 *                                           target answers: promote it anyway)
 *                  renewal fails         -> lift the fence: rolled-back, target untouched
 *                  promotion refused     -> lift the fence: rolled-back
 *                  promotion unanswered  -> lift the fence: failed (it may still run)
 *
 *   done         the target answers as master, our application clients are
 *                disconnected so they reconnect through the VIP
 *
 * Redis 7.0 observations that shaped this: FAILOVER leaves waiting-for-sync only when
 * the replica's acknowledged offset equals ours, and acknowledgements come once a
 * second (no GETACK goes out while writes are paused), so under write load it holds
 * writes for up to a second, where the pause method, polling the replica's own
 * offset, holds them for milliseconds. With every byte already acknowledged it skips
 * waiting-for-sync altogether. Its TIMEOUT only bounds waiting-for-sync:
 * failover-in-progress (our Redis already a replica, answering writes with READONLY)
 * waits for the target's answer for as long as the replication handshake allows
 * (`repl-timeout`, 60 s), hence our own guard and FAILOVER ABORT. A target that is
 * stopped holds the handshake at its first PING, so an abort then leaves it a replica.
 *
 * Before 6.2 there is neither CLIENT PAUSE WRITE nor CLIENT UNPAUSE, and a plain
 * CLIENT PAUSE also holds our own connection: the REPLICAOF that must precede the
 * end of the pause would only run when the pause expires, racing the application's
 * writes. So the fence there is `min-replicas-to-write` set beyond any replica count
 * (writes fail with NOREPLICAS, never acknowledged), restored on every path.
 *
 * The pause is renewed because the first one only covers the catch-up: a catch-up
 * that used all of `t`, then each promotion step at its own bound, could outlast it,
 * and writes our Redis acknowledged once it lapsed, with the target already master,
 * would be discarded by our REPLICAOF. The renewal's bound (`promotionPauseMs`) adds
 * up those steps; the offset read with it shows writes let through should the first
 * pause have lapsed before it (the catch-up then goes on). The min-replicas fence has
 * no expiry and is not renewed.
 *
 * Every path that fenced writes ends by lifting the fence (bounded; a failure is in
 * the trail, and a pause still ends by itself at its own bound).
 *
 * Files: this one runs the steps; `checks.ts` the pre-checks, `failover.ts` and
 * `pause.ts` the two methods, `context.ts` the state they share; the pure rules
 * (bounds, refusals, the FAILOVER outcome table) are in `../rules.ts`.
 */
import { describeError } from '../connection.js';
import { disconnectApplicationClients } from '../clients.js';
import { applyFence } from '../fence.js';
import { ROLE_VERIFY_MS } from '../rules.js';
import { describeSnapshot } from '../snapshot.js';
import { nowMs } from '../trail.js';
import { preChecks } from './checks.js';
import { SwitchoverContext } from './context.js';
import { viaFailover } from './failover.js';
import { viaPause } from './pause.js';
import type { SwitchoverDeps, SwitchoverHooks, SwitchoverOutcome, SwitchoverRequest, SwitchoverResult } from './types.js';

export type {
  SwitchoverDeps,
  SwitchoverHooks,
  SwitchoverMethod,
  SwitchoverOutcome,
  SwitchoverRequest,
  SwitchoverResult,
} from './types.js';

/**
 * Runs one switchover to `request.target`. Never throws: every failure is in the
 * result's `outcome` and `detail`.
 */
export async function switchOver(
  deps: SwitchoverDeps,
  request: SwitchoverRequest,
  hooks: SwitchoverHooks = {},
): Promise<SwitchoverResult> {
  const ctx = new SwitchoverContext(deps, request, hooks);
  const { trail } = ctx;
  let outcome: SwitchoverOutcome;
  try {
    outcome = await steps(ctx);
  } catch (err) {
    trail.add(`failed: ${describeError(err)}`);
    outcome = 'failed';
  }
  // Rule: no path leaves writes fenced.
  await ctx.liftFence();
  if (outcome === 'rolled-back' || outcome === 'failed') await ctx.describeStates();
  await ctx.peer.close();
  const redis = ctx.localAnswered ? await ctx.localSnapshot() : null;
  const detail = trail.toString();
  const { method, pausedMs, name } = ctx;
  const log = deps.logger;
  if (outcome === 'done') log.info({ target: name, method, pausedMs }, 'redis switchover done');
  else if (outcome === 'refused') log.info({ target: name, detail }, 'redis switchover refused');
  else log.warn({ target: name, method, outcome, detail }, 'redis switchover not done');
  return { outcome, method, detail, redis, pausedMs };
}

async function steps(ctx: SwitchoverContext): Promise<SwitchoverOutcome> {
  const checked = await preChecks(ctx);
  if ('refusal' in checked) {
    ctx.trail.add(`refused: ${checked.refusal}`);
    return 'refused';
  }
  ctx.method = checked.method;
  if (ctx.request.fenceTarget === true) {
    // Finding Q8: the target takes writes only once its daemon holds the leader key (it
    // lifts the fence as the new master). A replica ignores the setting meanwhile.
    const since = nowMs();
    const fenced = await applyFence(ctx.peer, ctx.deps.peerTimeoutMs, 'refused');
    ctx.trail.add(`${ctx.name} fenced until its daemon holds the leader key: ${fenced.detail}`, since);
    if (!fenced.ok) {
      ctx.trail.add('refused: the target could not be fenced');
      return 'refused';
    }
  }
  await ctx.hooks.afterPreChecks?.();
  const outcome = checked.method === 'failover' ? await viaFailover(ctx, checked) : await viaPause(ctx, checked);
  return outcome === 'done' ? finishDone(ctx) : outcome;
}

/** Both methods end here once the target took over: confirm it, then send our clients its way. */
async function finishDone(ctx: SwitchoverContext): Promise<SwitchoverOutcome> {
  const { trail, name, deps } = ctx;
  let since = nowMs();
  const target = await ctx.waitPeerMaster();
  if (target === null || target.role !== 'master') {
    trail.add(`${name} not confirmed master within ${ROLE_VERIFY_MS} ms (${target === null ? 'no answer' : describeSnapshot(target)})`, since);
    return 'failed';
  }
  trail.add(`${name} confirmed: ${describeSnapshot(target)}`, since);
  since = nowMs();
  trail.add(await disconnectApplicationClients(deps.local, deps.localTimeoutMs, deps.clientName, deps.logger), since);
  return 'done';
}
