/**
 * A switchover by Redis' own `FAILOVER TO <ip> <port> TIMEOUT <t> [FORCE]` (6.2+):
 * timed to the replica's once-a-second acknowledgement, then watched through
 * `master_failover_state` and `role` until it ends, and aborted by us (`FAILOVER
 * ABORT`) when it outlives our guard. What each observation means for the outcome is
 * the table in `rules.ts` (`failoverProgress`, `abortedFailoverLocal`,
 * `abortedFailoverOutcome`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { HostPort } from '../../../core/types.js';
import { RedisControlError } from '../../../errors.js';
import { describeError, REDIS_REPLY } from '../connection.js';
import { parseReplicaEntries, parseReplicationInfo, type ReplicaEntry } from '../info.js';
import {
  abortedFailoverLocal,
  abortedFailoverOutcome,
  ACK_LEAD_MS,
  ackTiming,
  failoverProgress,
  failoverWatchMs,
  FAILOVER_GUARD_MS,
  ROLE_VERIFY_MS,
  type AckView,
  type FailoverView,
} from '../rules.js';
import { describeSnapshot } from '../snapshot.js';
import { nowMs } from '../trail.js';
import type { Checked, SwitchoverContext } from './context.js';
import type { SwitchoverOutcome } from './types.js';

/** How often `master_failover_state` is polled: while it runs, writers wait. */
const FAILOVER_POLL_MS = 3;

/** The FAILOVER method, from the pre-checks to a final outcome (`done` still needs `finishDone`). */
export async function viaFailover(ctx: SwitchoverContext, checked: Checked): Promise<SwitchoverOutcome> {
  const { trail, request, deps } = ctx;
  const { entry } = checked;
  // The old master authenticates to the new one as its replica.
  await deps.setMasterAuth(trail);
  // FAILOVER only knows the replica by the address it lists.
  const newMaster: HostPort = { host: entry.ip, port: entry.port };
  const args = ['TO', entry.ip, String(entry.port), 'TIMEOUT', String(request.timeoutMs)];
  if (request.force) args.push('FORCE');
  const command = `FAILOVER ${args.join(' ')}`;
  await alignWithAck(ctx, entry);

  const since = nowMs();
  ctx.fencedAt = since;
  let accepted = false;
  try {
    await deps.local.run(deps.localTimeoutMs, (c) => c.call('FAILOVER', ...args));
    accepted = true;
    trail.add(command, since);
  } catch (err) {
    if (err instanceof RedisControlError && err.code === REDIS_REPLY) {
      ctx.fencedAt = null;
      trail.add(`refused: ${command} answered ${describeError(err)}`, since);
      return 'refused';
    }
    // Unanswered: it may have started; the polls below tell.
    trail.add(`${command} unanswered (${describeError(err)}), watching the failover state`, since);
  }

  const guardAt = since + failoverWatchMs(request.timeoutMs);
  const transitions: string[] = [];
  let lastState = '';
  let lastError = '';
  /** Whether the FAILOVER is known to have run: answered, or seen in a failover state. */
  let ran = accepted;
  for (;;) {
    let view: FailoverView | null = null;
    try {
      view = await ctx.localView();
    } catch (err) {
      lastError = describeError(err);
    }
    if (view !== null) {
      const state = `${view.failoverState}/${view.snapshot.role}`;
      if (state !== lastState) {
        transitions.push(`${state} at ${Math.round(nowMs() - since)} ms`);
        lastState = state;
      }
      const progress = failoverProgress(view, newMaster, ran);
      if (progress.kind === 'running') ran = true;
      if (progress.kind === 'done' || progress.kind === 'aborted-by-redis' || progress.kind === 'unexpected') {
        ctx.writesResumed(since);
        if (progress.kind === 'done') {
          trail.add(`failover done: ${transitions.join(', ')}`, since);
        } else if (progress.kind === 'aborted-by-redis') {
          const why = `FAILOVER aborted by Redis (the replica did not catch up within ${request.timeoutMs} ms, or refused PSYNC FAILOVER)`;
          trail.add(`${why}: ${transitions.join(', ')}`, since);
          await ctx.clientUnpause();
        } else {
          trail.add(`failover ended in an unexpected state (${describeSnapshot(view.snapshot)}): ${transitions.join(', ')}`, since);
        }
        return progress.outcome;
      }
    }
    if (nowMs() >= guardAt) break;
    await sleep(FAILOVER_POLL_MS);
  }

  const seen = `${lastError === '' ? '' : ` (last error: ${lastError})`}: ${transitions.join(', ') || 'no answer'}`;
  if (ran) {
    trail.add(`failover still running after ${request.timeoutMs} + ${FAILOVER_GUARD_MS} ms${seen}`, since);
  } else {
    trail.add(`${command} unanswered and not seen running within ${request.timeoutMs} + ${FAILOVER_GUARD_MS} ms${seen}`, since);
  }
  return abortFailover(ctx, newMaster, since, ran ? null : command);
}

/**
 * Our guard fired: FAILOVER ABORT, then whatever state the servers ended up in.
 * `unanswered` names a FAILOVER never answered nor seen running: whether it will
 * still run is unknown, so a local master is not a rollback but a failure.
 */
async function abortFailover(
  ctx: SwitchoverContext,
  newMaster: HostPort,
  since: number,
  unanswered: string | null,
): Promise<SwitchoverOutcome> {
  const { trail, deps, name } = ctx;
  let step = nowMs();
  try {
    await deps.local.run(deps.localTimeoutMs, (c) => c.call('FAILOVER', 'ABORT'));
    trail.add('FAILOVER ABORT', step);
  } catch (err) {
    // "No failover in progress": it ended meanwhile; the re-check says how.
    trail.add(`FAILOVER ABORT answered ${describeError(err)}`, step);
  }
  step = nowMs();
  const view = await ctx.waitLocal((v) => v.failoverState === 'no-failover', ROLE_VERIFY_MS);
  ctx.writesResumed(since);
  const local = abortedFailoverLocal(view, newMaster);
  switch (local.kind) {
    case 'state-unknown':
      trail.add(`failover state unknown after the abort (${view === null ? 'local Redis does not answer' : view.failoverState})`, step);
      return local.outcome;
    case 'completed':
      trail.add('the failover completed before the abort', step);
      return local.outcome;
    case 'not-master':
      trail.add(`local Redis is ${view === null ? 'unknown' : describeSnapshot(view.snapshot)} after the abort`, step);
      return local.outcome;
    case 'master':
      break;
  }
  trail.add(unanswered === null ? 'local Redis is master again' : 'local Redis is master', step);
  await ctx.clientUnpause();
  step = nowMs();
  const target = await ctx.peerSnapshot();
  const verdict = abortedFailoverOutcome(target.snapshot?.role ?? null, unanswered !== null);
  if (verdict.kind === 'two-masters') {
    trail.add(`but ${name} promoted itself (PSYNC FAILOVER was accepted): two masters`, step);
    return verdict.outcome;
  }
  if (target.snapshot === null) {
    // Stopped or cut off: the handshake stalls at its first PING, long before PSYNC FAILOVER.
    trail.add(`${name} does not answer (${target.detail}); it was a replica and never acknowledged PSYNC FAILOVER`, step);
  }
  if (verdict.kind === 'fate-unknown') {
    // Its connection is gone but its bytes may still sit in Redis' input (a stalled server reads them when it resumes).
    trail.add(`the fate of the unanswered ${unanswered ?? 'FAILOVER'} is unknown: it may still run`);
  }
  return verdict.outcome;
}

/**
 * Waits, while writes still flow, until shortly before the replica's next
 * acknowledgement is due (`ackTiming` in `rules.ts` says why). Bounded; on any error
 * it just returns. Only the trail records what it saw.
 */
async function alignWithAck(ctx: SwitchoverContext, entry: ReplicaEntry): Promise<void> {
  const { trail, deps } = ctx;
  const since = nowMs();
  const ackedOffset = async (): Promise<AckView | null> => {
    const text = await deps.local.run(deps.localTimeoutMs, (c) => c.info('replication'));
    const mine = parseReplicaEntries(text).find((e) => e.ip === entry.ip && e.port === entry.port);
    return mine ? { acked: mine.offset, master: parseReplicationInfo(text).offset } : null;
  };
  try {
    const first = await ackedOffset();
    let latest: AckView | null | undefined;
    for (;;) {
      const next = ackTiming(first, latest, nowMs() - since);
      switch (next.kind) {
        case 'at-once':
          trail.add('replica has acknowledged everything: FAILOVER at once', since);
          return;
        case 'untimed':
          trail.add('no acknowledgement seen: FAILOVER untimed', since);
          return;
        case 'ack-seen':
          await sleep(next.waitMs);
          trail.add(`timed FAILOVER ${ACK_LEAD_MS} ms before the replica's next acknowledgement`, since);
          return;
        case 'poll':
          await sleep(next.afterMs);
          latest = await ackedOffset();
      }
    }
  } catch (err) {
    trail.add(`could not time FAILOVER to the replica's acknowledgements (${describeError(err)})`, since);
  }
}
