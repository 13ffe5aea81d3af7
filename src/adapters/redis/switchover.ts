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
 */
import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChainableCommander } from 'ioredis';
import type { HandoverOutcome, HostPort, RedisSnapshot } from '../../core/types.js';
import type { RedisEndpoint } from '../../config/types.js';
import type { Logger } from '../../daemon/logger.js';
import { RedisControlError } from '../../errors.js';
import {
  Connection,
  describeSnapshot,
  formatHostPort,
  killNormalClients,
  messageOf,
  nowMs,
  probeServer,
  REDIS_REPLY,
  replicatesFrom,
  Trail,
} from './connection.js';
import { parseInfoFields, parseReplicaEntries, parseReplicationInfo, type ReplicaEntry } from './info.js';
import { supportsWritePause } from './takeover.js';

/** What the operator asked for (config `switchover.*`, overridden on the command line). */
export interface SwitchoverRequest {
  /** The peer's Redis as this node reaches it (config `peer_redis`). */
  readonly target: HostPort;
  /** Bound on the write pause plus catch-up. */
  readonly timeoutMs: number;
  /** The operator accepts the risk: skip the lag bounds; FAILOVER FORCE; promote a replica that answers but did not catch up. */
  readonly force: boolean;
  readonly method: 'auto' | 'failover' | 'pause';
  /** Refusal bound on `master_repl_offset` minus the replica's acknowledged offset. */
  readonly maxLagBytes: number;
  /** Refusal bound on the replica's `lag=` (seconds since its last REPLCONF ACK). */
  readonly maxAckAgeS: number;
}

/** How a switchover ended. */
export interface SwitchoverResult {
  /**
   * `done`: the target is master and ours replicates from it. `refused`: nothing was
   * changed. `rolled-back`: ours is still master and unpaused, the target a replica.
   * `failed`: anything else; `detail` says which state each server is in.
   */
  readonly outcome: HandoverOutcome;
  /** The method used; `null` when refused before one was chosen. */
  readonly method: 'failover' | 'pause' | null;
  /** Each step with its duration, for the audit log. */
  readonly detail: string;
  /** The local `INFO replication` afterwards, when known. */
  readonly redis: RedisSnapshot | null;
  /** How long writes were paused or refused on the old master, measured; `null` when they never were. */
  readonly pausedMs: number | null;
}

/** What the switchover needs from `RedisControl`. */
export interface SwitchoverDeps {
  /** The control connection to the local Redis. */
  readonly local: Connection;
  /** Bound of each command on `local`. */
  readonly localTimeoutMs: number;
  /** Credentials (and TLS) for the peer's Redis. */
  readonly peerEndpoint: RedisEndpoint;
  /** Bound of each command on the peer. */
  readonly peerTimeoutMs: number;
  /** `CLIENT SETNAME` prefix: our connections are never killed, and the peer connection is named with it. */
  readonly clientName: string;
  /**
   * `CONFIG SET masterauth/masteruser` locally for the peer's credentials, recorded in
   * `trail`; bounded by `localTimeoutMs` (the renewed pause counts on it), never throws.
   */
  setMasterAuth(trail: Trail): Promise<void>;
  readonly logger: Logger;
}

/** Seams for tests; the daemon passes none. */
export interface SwitchoverHooks {
  /** Runs once the pre-checks passed, before anything changes (tests stop the replica here). */
  readonly afterPreChecks?: () => Promise<void>;
  /** Taken as the local `redis_version` (tests of the < 6.2 path on a newer server). */
  readonly assumeVersion?: string;
}

/** How often `master_failover_state` is polled: while it runs, writers wait. */
const FAILOVER_POLL_MS = 3;
/** Replicas send REPLCONF ACK once a second (replicationCron). */
const REPLICA_ACK_PERIOD_MS = 1_000;
/** FAILOVER goes out this long before the replica's next acknowledgement is due. */
const ACK_LEAD_MS = 60;
/** How often the acknowledged offset is read while learning the cadence. */
const ACK_POLL_MS = 5;
/** Give up learning the cadence after this long and issue FAILOVER at once. */
const ACK_ALIGN_BOUND_MS = 1_300;
/** Our guard beyond FAILOVER's own TIMEOUT, which does not bound failover-in-progress. */
const FAILOVER_GUARD_MS = 2_000;
/** How often the target's offset is polled while writes are fenced. */
const DRAIN_POLL_MS = 2;
/**
 * Added to `timeoutMs` for the first CLIENT PAUSE's own bound: covers the last
 * catch-up poll and the renewal that replaces it before the promotion (should it
 * lapse first, the offset read with the renewal shows it). Only reached when this
 * process dies mid-way.
 */
const PAUSE_MARGIN_MS = 3_000;
/** Added to the worst case of the promotion steps for the renewed CLIENT PAUSE (scheduling, event-loop stalls). */
const PROMOTION_PAUSE_MARGIN_MS = 1_000;
/** Shortest bound of one catch-up poll near the deadline (a shorter one could not even connect). */
const DRAIN_MIN_POLL_BOUND_MS = 50;
/** How long a role change is given to show in `INFO replication`. */
const ROLE_VERIFY_MS = 1_000;
const ROLE_POLL_MS = 10;
/** `min-replicas-to-write` of the pre-6.2 fence: more replicas than any master has (INT_MAX). */
const FENCE_MIN_REPLICAS = 2_147_483_647;
/** `min-replicas-max-lag` 0 disables the min-replicas check; the fence sets Redis' default then. */
const FENCE_MAX_LAG_S = 10;

/**
 * Runs one switchover to `request.target`. Never throws: every failure is in the
 * result's `outcome` and `detail`.
 */
export async function switchOver(
  deps: SwitchoverDeps,
  request: SwitchoverRequest,
  hooks: SwitchoverHooks = {},
): Promise<SwitchoverResult> {
  return new Switchover(deps, request, hooks).run();
}

/**
 * The bound of the CLIENT PAUSE renewed right before the target is promoted: every
 * step until our REPLICAOF at its own worst case, plus a margin. It counts from when
 * Redis ran the renewal, whose reply may take up to `localTimeoutMs`; then REPLICAOF
 * NO ONE on the target, followed by either the role re-check of an unanswered one or
 * the wait for its master role (the last poll may start just before that deadline);
 * then `setMasterAuth` and our REPLICAOF, each bounded by `localTimeoutMs`.
 */
export function promotionPauseMs(bounds: { readonly localTimeoutMs: number; readonly peerTimeoutMs: number }): number {
  const { localTimeoutMs, peerTimeoutMs } = bounds;
  const renewalReply = localTimeoutMs;
  const verify = Math.max(peerTimeoutMs, ROLE_VERIFY_MS + ROLE_POLL_MS + peerTimeoutMs);
  const promotion = peerTimeoutMs + verify;
  const local = 2 * localTimeoutMs;
  return renewalReply + promotion + local + PROMOTION_PAUSE_MARGIN_MS;
}

type Outcome = SwitchoverResult['outcome'];
type Method = 'failover' | 'pause';

/** What the pre-checks established. */
interface Checked {
  readonly local: RedisSnapshot;
  readonly entry: ReplicaEntry;
  readonly method: Method;
  /** True when CLIENT PAUSE WRITE / CLIENT UNPAUSE exist (6.2+). */
  readonly modern: boolean;
}

/** The write fence in place on the local Redis, if any. */
type Fence =
  /** `boundMs`: the longest CLIENT PAUSE sent, which ends by itself at the latest that long after it ran. */
  | { readonly kind: 'pause'; readonly boundMs: number }
  | { readonly kind: 'min-replicas'; readonly restore: readonly (readonly [string, string])[] };

/** Thrown by the pre-checks: the switchover is refused with this reason. */
class Refusal extends Error {}

/** A local `INFO replication` with the failover state. */
interface LocalView {
  readonly snapshot: RedisSnapshot;
  readonly failoverState: string;
}

class Switchover {
  private readonly trail = new Trail();
  private readonly name: string;
  private readonly peer: Connection;
  private method: Method | null = null;
  /** Set from the moment the fence command is sent (its outcome may be unknown) until it is lifted. */
  private fence: Fence | null = null;
  private fencedAt: number | null = null;
  private pausedMs: number | null = null;
  /** Whether the local Redis answered the pre-check (else the final snapshot is not even tried). */
  private localAnswered = false;

  constructor(
    private readonly deps: SwitchoverDeps,
    private readonly request: SwitchoverRequest,
    private readonly hooks: SwitchoverHooks,
  ) {
    this.name = formatHostPort(request.target);
    this.peer = new Connection({
      endpoint: deps.peerEndpoint,
      target: request.target,
      name: `${deps.clientName}-peer`,
      timeoutMs: deps.peerTimeoutMs,
    });
  }

  async run(): Promise<SwitchoverResult> {
    const { trail } = this;
    let outcome: Outcome;
    try {
      outcome = await this.steps();
    } catch (err) {
      trail.add(`failed: ${messageOf(err)}`);
      outcome = 'failed';
    }
    // Rule: no path leaves writes fenced.
    await this.liftFence();
    if (outcome === 'rolled-back' || outcome === 'failed') await this.describeStates();
    await this.peer.close();
    const redis = this.localAnswered ? await this.localSnapshot() : null;
    const detail = trail.toString();
    const { method, pausedMs } = this;
    const log = this.deps.logger;
    if (outcome === 'done') log.info({ target: this.name, method, pausedMs }, 'redis switchover done');
    else if (outcome === 'refused') log.info({ target: this.name, detail }, 'redis switchover refused');
    else log.warn({ target: this.name, method, outcome, detail }, 'redis switchover not done');
    return { outcome, method, detail, redis, pausedMs };
  }

  private async steps(): Promise<Outcome> {
    let checked: Checked;
    try {
      checked = await this.preChecks();
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      this.trail.add(`refused: ${err.message}`);
      return 'refused';
    }
    this.method = checked.method;
    await this.hooks.afterPreChecks?.();
    const outcome = checked.method === 'failover' ? await this.viaFailover(checked) : await this.viaPause(checked);
    return outcome === 'done' ? this.finishDone() : outcome;
  }

  // ---------------------------------------------------------------- pre-checks

  private async preChecks(): Promise<Checked> {
    const { trail, name, request } = this;
    let since = nowMs();
    let fields: Map<string, string>;
    let local: RedisSnapshot;
    let entries: ReplicaEntry[];
    try {
      const [server, replication] = await this.deps.local.run(this.deps.localTimeoutMs, (c) =>
        Promise.all([c.info('server'), c.info('replication')]),
      );
      fields = parseInfoFields(`${server}\n${replication}`);
      local = parseReplicationInfo(replication);
      entries = parseReplicaEntries(replication);
    } catch (err) {
      throw new Refusal(`local Redis does not answer (${messageOf(err)})`);
    }
    this.localAnswered = true;
    const version = this.hooks.assumeVersion ?? fields.get('redis_version') ?? '';
    if (local.role !== 'master') throw new Refusal(`local Redis is not a master (${describeSnapshot(local)})`);
    const failoverState = fields.get('master_failover_state') ?? 'no-failover';
    if (failoverState !== 'no-failover') throw new Refusal(`a FAILOVER is already under way locally (${failoverState})`);
    trail.add(`local Redis ${version || '(version unknown)'}: ${describeSnapshot(local)}`, since);

    // FAILOVER, CLIENT PAUSE WRITE and CLIENT UNPAUSE all arrived in 6.2.
    const modern = supportsWritePause(version);
    const method: Method = request.method === 'auto' ? (modern ? 'failover' : 'pause') : request.method;
    if (method === 'failover' && !modern) throw new Refusal(`FAILOVER needs Redis 6.2 or newer (local Redis is ${version})`);

    since = nowMs();
    const entry = await this.findTarget(entries);
    if (entry === null) {
      const listed = entries.map((e) => `${formatHostPort(listedAddress(e))} ${e.state}`).join(', ') || 'none';
      const hint = entries.some((e) => e.port === request.target.port)
        ? '; a replica is listed by its source address (or replica-announce-ip), which must match peer_redis'
        : '';
      throw new Refusal(`replica ${name} is not connected to this master (connected replicas: ${listed})${hint}`);
    }
    const listedAs = formatHostPort(listedAddress(entry));
    if (entry.state !== 'online') throw new Refusal(`replica ${name} is not online (state ${entry.state})`);
    const lagBytes = Math.max(0, local.offset - entry.offset);
    if (!request.force && lagBytes > request.maxLagBytes) {
      throw new Refusal(`replica ${name} lags ${lagBytes} bytes behind (bound ${request.maxLagBytes} bytes)`);
    }
    if (!request.force && entry.lagS > request.maxAckAgeS) {
      throw new Refusal(`replica ${name} lags ${entry.lagS} s since its last ack (bound ${request.maxAckAgeS} s)`);
    }
    trail.add(
      `replica ${name} listed as ${listedAs}, online, ${lagBytes} bytes and ${entry.lagS} s behind` +
        (request.force ? ' (forced: lag bounds not applied)' : ''),
      since,
    );

    since = nowMs();
    const probe = await probeServer(this.peer, this.deps.peerTimeoutMs);
    if (!probe.ok) throw new Refusal(`replica ${name} does not answer directly (${probe.detail})`);
    const target = probe.snapshot;
    if (target.role !== 'replica') throw new Refusal(`${name} is not a replica (${describeSnapshot(target)})`);
    if (!target.linkUp) throw new Refusal(`replica ${name} has its link down (${describeSnapshot(target)})`);
    // A replica streaming from us shares our replication id; one of another master does not.
    if (target.replId !== local.replId) {
      throw new Refusal(`replica ${name} follows another history (replid ${target.replId}, ours ${local.replId})`);
    }
    trail.add(`replica ${name} answers: ${describeSnapshot(target)}`, since);
    return { local, entry, method, modern };
  }

  /** The `slaveN` entry of the target: same port, and the same address (resolved when a name). */
  private async findTarget(entries: readonly ReplicaEntry[]): Promise<ReplicaEntry | null> {
    const { target } = this.request;
    const candidates = entries.filter((e) => e.port === target.port);
    if (candidates.length === 0) return null;
    let addresses = [canonicalAddress(target.host)];
    if (isIP(target.host) === 0) {
      try {
        addresses = (await lookup(target.host, { all: true })).map((a) => canonicalAddress(a.address));
      } catch (err) {
        this.trail.add(`cannot resolve ${target.host} (${messageOf(err)})`);
        return null;
      }
    }
    return candidates.find((e) => addresses.includes(canonicalAddress(e.ip))) ?? null;
  }

  // ---------------------------------------------------------------- failover

  private async viaFailover(checked: Checked): Promise<Outcome> {
    const { trail, request, deps } = this;
    const { entry } = checked;
    // The old master authenticates to the new one as its replica.
    await deps.setMasterAuth(trail);
    // FAILOVER only knows the replica by the address it lists.
    const newMaster = listedAddress(entry);
    const args = ['TO', entry.ip, String(entry.port), 'TIMEOUT', String(request.timeoutMs)];
    if (request.force) args.push('FORCE');
    const command = `FAILOVER ${args.join(' ')}`;
    await this.alignWithAck(entry);

    const since = nowMs();
    this.fencedAt = since;
    let accepted = false;
    try {
      await deps.local.run(deps.localTimeoutMs, (c) => c.call('FAILOVER', ...args));
      accepted = true;
      trail.add(command, since);
    } catch (err) {
      if (err instanceof RedisControlError && err.code === REDIS_REPLY) {
        this.fencedAt = null;
        trail.add(`refused: ${command} answered ${messageOf(err)}`, since);
        return 'refused';
      }
      // Unanswered: it may have started; the polls below tell.
      trail.add(`${command} unanswered (${messageOf(err)}), watching the failover state`, since);
    }

    const guardAt = since + request.timeoutMs + FAILOVER_GUARD_MS;
    const transitions: string[] = [];
    let lastState = '';
    let lastError = '';
    /** Whether the FAILOVER is known to have run: answered, or seen in a failover state. */
    let ran = accepted;
    for (;;) {
      let view: LocalView | null = null;
      try {
        view = await this.localView();
      } catch (err) {
        lastError = messageOf(err);
      }
      if (view !== null) {
        const state = `${view.failoverState}/${view.snapshot.role}`;
        if (state !== lastState) {
          transitions.push(`${state} at ${Math.round(nowMs() - since)} ms`);
          lastState = state;
        }
        if (view.failoverState !== 'no-failover') ran = true;
        // Unanswered and not seen running, a master proves nothing: the command may still be read and run.
        const undecided = !ran && view.failoverState === 'no-failover' && view.snapshot.role === 'master';
        if (view.failoverState === 'no-failover' && !undecided) {
          this.pausedMs = Math.round(nowMs() - since);
          this.fencedAt = null;
          if (replicatesFrom(view.snapshot, newMaster)) {
            trail.add(`failover done: ${transitions.join(', ')}`, since);
            return 'done';
          }
          if (view.snapshot.role === 'master') {
            const why = `FAILOVER aborted by Redis (the replica did not catch up within ${request.timeoutMs} ms, or refused PSYNC FAILOVER)`;
            trail.add(`${why}: ${transitions.join(', ')}`, since);
            await this.clientUnpause();
            return 'rolled-back';
          }
          trail.add(`failover ended in an unexpected state (${describeSnapshot(view.snapshot)}): ${transitions.join(', ')}`, since);
          return 'failed';
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
    return this.abortFailover(newMaster, since, ran ? null : command);
  }

  /**
   * Our guard fired: FAILOVER ABORT, then whatever state the servers ended up in.
   * `unanswered` names a FAILOVER never answered nor seen running: whether it will
   * still run is unknown, so a local master is not a rollback but a failure.
   */
  private async abortFailover(newMaster: HostPort, since: number, unanswered: string | null): Promise<Outcome> {
    const { trail, deps, name } = this;
    let step = nowMs();
    try {
      await deps.local.run(deps.localTimeoutMs, (c) => c.call('FAILOVER', 'ABORT'));
      trail.add('FAILOVER ABORT', step);
    } catch (err) {
      // "No failover in progress": it ended meanwhile; the re-check says how.
      trail.add(`FAILOVER ABORT answered ${messageOf(err)}`, step);
    }
    step = nowMs();
    const view = await this.waitLocal((v) => v.failoverState === 'no-failover', ROLE_VERIFY_MS);
    this.pausedMs = Math.round(nowMs() - since);
    this.fencedAt = null;
    if (view === null || view.failoverState !== 'no-failover') {
      trail.add(`failover state unknown after the abort (${view === null ? 'local Redis does not answer' : view.failoverState})`, step);
      return 'failed';
    }
    if (replicatesFrom(view.snapshot, newMaster)) {
      trail.add('the failover completed before the abort', step);
      return 'done';
    }
    if (view.snapshot.role !== 'master') {
      trail.add(`local Redis is ${describeSnapshot(view.snapshot)} after the abort`, step);
      return 'failed';
    }
    trail.add(unanswered === null ? 'local Redis is master again' : 'local Redis is master', step);
    await this.clientUnpause();
    step = nowMs();
    const target = await this.peerSnapshot();
    if (target.snapshot?.role === 'master') {
      trail.add(`but ${name} promoted itself (PSYNC FAILOVER was accepted): two masters`, step);
      return 'failed';
    }
    if (target.snapshot === null) {
      // Stopped or cut off: the handshake stalls at its first PING, long before PSYNC FAILOVER.
      trail.add(`${name} does not answer (${target.detail}); it was a replica and never acknowledged PSYNC FAILOVER`, step);
    }
    if (unanswered !== null) {
      // Its connection is gone but its bytes may still sit in Redis' input (a stalled server reads them when it resumes).
      trail.add(`the fate of the unanswered ${unanswered} is unknown: it may still run`);
      return 'failed';
    }
    return 'rolled-back';
  }

  // ---------------------------------------------------------------- pause

  private async viaPause(checked: Checked): Promise<Outcome> {
    const { trail, request, name } = this;
    const since = nowMs();
    let frozen: number;
    try {
      frozen = checked.modern ? await this.pauseWrites() : await this.fenceWritesLegacy();
    } catch (err) {
      if (this.fence === null) {
        trail.add(`refused: could not fence writes (${messageOf(err)})`, since);
        return 'refused';
      }
      trail.add(`fencing writes failed (${messageOf(err)})`, since);
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
        // A poll that overran the deadline would stretch the pause by up to peerTimeoutMs.
        const boundMs = Math.min(this.deps.peerTimeoutMs, Math.max(Math.ceil(deadline - nowMs()), DRAIN_MIN_POLL_BOUND_MS));
        seen = await this.peer.run(boundMs, async (c) => parseReplicationInfo(await c.info('replication')));
        answering = true;
        if (seen.role !== 'replica') {
          trail.add(`${name} stopped being a replica during the catch-up (${describeSnapshot(seen)})`, step);
          return 'failed';
        }
        if (seen.offset >= frozen) {
          // A PING to the replicas (repl-ping-replica-period) or an expired key still moves the offset.
          let now: number;
          if (checked.modern) {
            const renewed = await this.renewPause();
            if (renewed === null) return 'rolled-back';
            now = renewed;
          } else {
            now = (await this.localView()).snapshot.offset;
          }
          if (now <= frozen) {
            caughtUp = true;
            break;
          }
          frozen = now;
        }
      } catch (err) {
        lastError = messageOf(err);
      }
      if (nowMs() >= deadline) break;
      await sleep(DRAIN_POLL_MS);
    }
    const behind =
      seen === null || !answering
        ? `no answer: ${lastError || 'unknown'}`
        : `${Math.max(0, frozen - seen.offset)} bytes behind frozen offset ${frozen}`;
    if (caughtUp) {
      trail.add(`${name} caught up to frozen offset ${frozen}`, step);
    } else if (!request.force || !answering) {
      // Force accepts losing the writes a slow replica lacks, not promoting one that does not answer:
      // an unanswered REPLICAOF NO ONE could still promote it whenever it resumes.
      trail.add(`${name} did not catch up within ${request.timeoutMs} ms (${behind})${request.force ? ', not promoted although forced' : ''}`, step);
      return 'rolled-back';
    } else {
      trail.add(`forced: promoting ${name} although it did not catch up within ${request.timeoutMs} ms (${behind})`, step);
      if (checked.modern && (await this.renewPause()) === null) return 'rolled-back';
    }

    step = nowMs();
    const promoted = await this.promoteTarget();
    if (promoted !== 'done') return promoted;
    trail.add(`${name} promoted`, step);

    await this.deps.setMasterAuth(trail);
    step = nowMs();
    const { target } = request;
    try {
      await this.deps.local.run(this.deps.localTimeoutMs, (c) => c.replicaof(target.host, target.port));
      trail.add(`REPLICAOF ${target.host} ${target.port}`, step);
    } catch (err) {
      trail.add(`REPLICAOF ${target.host} ${target.port} failed locally (${messageOf(err)}): ${name} is master already`, step);
      return 'failed';
    }
    // Writes held by the fence now meet a replica and fail with READONLY: none is acknowledged and lost.
    await this.liftFence();
    return 'done';
  }

  /** CLIENT PAUSE WRITE and the offset read in one MULTI: the offset is the last one a write reached. */
  private async pauseWrites(): Promise<number> {
    const pauseMs = this.request.timeoutMs + PAUSE_MARGIN_MS;
    const since = nowMs();
    this.fence = { kind: 'pause', boundMs: pauseMs };
    this.fencedAt = since;
    const replies = await this.multi((m) => m.call('CLIENT', 'PAUSE', String(pauseMs), 'WRITE').info('replication'), true);
    const offset = parseReplicationInfo(String(replies[1])).offset;
    this.trail.add(`CLIENT PAUSE ${pauseMs} WRITE at offset ${offset}`, since);
    return offset;
  }

  /**
   * Renews the pause for the promotion (see the file header), with the offset read in
   * the same MULTI. Redis only ever moves a pause's end later, so a renewal shorter
   * than what is left changes nothing. Returns the offset, or `null` when the renewal
   * failed (recorded in the trail): the caller rolls back, the fence stays set for `liftFence`.
   */
  private async renewPause(): Promise<number | null> {
    const pauseMs = promotionPauseMs(this.deps);
    const since = nowMs();
    // Its outcome may be unknown (a timeout): from here the longer bound may be in force.
    const previous = this.fence?.kind === 'pause' ? this.fence.boundMs : 0;
    this.fence = { kind: 'pause', boundMs: Math.max(previous, pauseMs) };
    try {
      const replies = await this.multi((m) => m.call('CLIENT', 'PAUSE', String(pauseMs), 'WRITE').info('replication'));
      const offset = parseReplicationInfo(String(replies[1])).offset;
      this.trail.add(`CLIENT PAUSE ${pauseMs} WRITE renewed for the promotion at offset ${offset}`, since);
      return offset;
    } catch (err) {
      this.trail.add(`could not renew CLIENT PAUSE for the promotion (${messageOf(err)}): ${this.name} not promoted`, since);
      return null;
    }
  }

  /** Before 6.2 (see the file header): `min-replicas-to-write` beyond any replica count, with the offset read. */
  private async fenceWritesLegacy(): Promise<number> {
    const since = nowMs();
    const current = await this.deps.local.run(this.deps.localTimeoutMs, async (c) => {
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
    this.fence = { kind: 'min-replicas', restore };
    this.fencedAt = since;
    const replies = await this.multi((m) => {
      m.call('CONFIG', 'SET', 'min-replicas-to-write', String(FENCE_MIN_REPLICAS));
      if (fixLag) m.call('CONFIG', 'SET', 'min-replicas-max-lag', String(FENCE_MAX_LAG_S));
      return m.info('replication');
    }, true);
    const offset = parseReplicationInfo(String(replies[replies.length - 1])).offset;
    this.trail.add(`fenced writes (min-replicas-to-write ${FENCE_MIN_REPLICAS}, Redis < 6.2) at offset ${offset}`, since);
    return offset;
  }

  /**
   * Runs a MULTI on the local Redis; the replies, or a throw. With `placesFence` (the
   * MULTI that puts the fence in place), a transaction Redis discarded (EXECABORT)
   * changed nothing, so the fence is cleared; an error inside an executed one leaves
   * it set for `liftFence`, as does any failure of a renewal.
   */
  private async multi(build: (m: ChainableCommander) => unknown, placesFence = false): Promise<unknown[]> {
    let results: [Error | null, unknown][] | null;
    try {
      results = await this.deps.local.run(this.deps.localTimeoutMs, (c) => {
        const m = c.multi();
        build(m);
        return m.exec();
      });
    } catch (err) {
      if (placesFence && err instanceof RedisControlError && err.code === REDIS_REPLY) {
        this.fence = null;
        this.fencedAt = null;
      }
      throw err;
    }
    if (results === null) throw new RedisControlError(REDIS_REPLY, 'MULTI discarded');
    const failed = results.find(([err]) => err !== null)?.[0];
    if (failed !== undefined && failed !== null) throw new RedisControlError(REDIS_REPLY, failed.message);
    return results.map(([, reply]) => reply);
  }

  /**
   * REPLICAOF NO ONE on the target, verified. `done` when it is master; otherwise the
   * outcome of the whole switchover (the caller lifts the fence).
   */
  private async promoteTarget(): Promise<Outcome> {
    const { trail, name } = this;
    const since = nowMs();
    try {
      await this.peer.run(this.deps.peerTimeoutMs, (c) => c.replicaof('NO', 'ONE'));
      trail.add(`REPLICAOF NO ONE on ${name}`, since);
    } catch (err) {
      const refused = err instanceof RedisControlError && err.code === REDIS_REPLY;
      trail.add(`REPLICAOF NO ONE on ${name} ${refused ? 'refused' : 'unanswered'} (${messageOf(err)})`, since);
      const after = await this.peerSnapshot();
      if (after.snapshot?.role === 'master') return 'done';
      if (refused && after.snapshot?.role === 'replica') return 'rolled-back';
      // Unanswered, the command may still sit in the target's input and promote it when it resumes.
      trail.add(`${name} may still promote itself: ${after.snapshot === null ? `no answer (${after.detail})` : describeSnapshot(after.snapshot)}`);
      return 'failed';
    }
    const verified = await this.waitPeerMaster();
    if (verified === null || verified.role !== 'master') {
      trail.add(`${name} not master within ${ROLE_VERIFY_MS} ms (${verified === null ? 'no answer' : describeSnapshot(verified)})`, since);
      return 'failed';
    }
    return 'done';
  }

  // ---------------------------------------------------------------- common

  /** Both methods end here once the target took over: confirm it, then send our clients its way. */
  private async finishDone(): Promise<Outcome> {
    const { trail, name, deps } = this;
    let since = nowMs();
    const target = await this.waitPeerMaster();
    if (target === null || target.role !== 'master') {
      trail.add(`${name} not confirmed master within ${ROLE_VERIFY_MS} ms (${target === null ? 'no answer' : describeSnapshot(target)})`, since);
      return 'failed';
    }
    trail.add(`${name} confirmed: ${describeSnapshot(target)}`, since);
    since = nowMs();
    try {
      const killed = await killNormalClients(deps.local, deps.localTimeoutMs, deps.clientName);
      trail.add(killed === 0 ? 'no application clients to disconnect' : `disconnected ${killed} application client(s)`, since);
    } catch (err) {
      // They get READONLY on every write and find the VIP on their own.
      trail.add(`could not disconnect application clients (${messageOf(err)})`, since);
    }
    return 'done';
  }

  /** Lifts the fence still in place, if any; bounded, never throws. */
  private async liftFence(): Promise<void> {
    const fence = this.fence;
    if (fence !== null) await this.lift(fence);
    if (this.fencedAt !== null) {
      this.pausedMs = Math.round(nowMs() - this.fencedAt);
      this.fencedAt = null;
    }
  }

  private async lift(fence: Fence): Promise<void> {
    const since = nowMs();
    try {
      if (fence.kind === 'pause') {
        await this.deps.local.run(this.deps.localTimeoutMs, (c) => c.call('CLIENT', 'UNPAUSE'));
        this.trail.add('CLIENT UNPAUSE', since);
      } else {
        await this.deps.local.run(this.deps.localTimeoutMs, async (c) => {
          for (const [parameter, value] of fence.restore) await c.config('SET', parameter, value);
        });
        this.trail.add(`restored ${fence.restore.map(([p, v]) => `${p} ${v}`).join(', ')}`, since);
      }
      this.fence = null;
    } catch (err) {
      const bound = fence.kind === 'pause' ? `its pause ends by itself within ${fence.boundMs} ms` : 'writes stay refused until it is restored by hand';
      this.trail.add(`could not lift the write fence (${messageOf(err)}): ${bound}`, since);
    }
  }

  /** CLIENT UNPAUSE after a FAILOVER that did not happen: Redis lifts its own pause, this is a harmless extra. */
  private async clientUnpause(): Promise<void> {
    const since = nowMs();
    try {
      await this.deps.local.run(this.deps.localTimeoutMs, (c) => c.call('CLIENT', 'UNPAUSE'));
      this.trail.add('CLIENT UNPAUSE', since);
    } catch (err) {
      this.trail.add(`CLIENT UNPAUSE failed (${messageOf(err)})`, since);
    }
  }

  /** The final state of both servers, for a switchover that did not complete. */
  private async describeStates(): Promise<void> {
    let local: string;
    try {
      local = describeSnapshot((await this.localView()).snapshot);
    } catch (err) {
      local = `no answer (${messageOf(err)})`;
    }
    const peer = await this.peerSnapshot();
    const target = peer.snapshot === null ? `no answer (${peer.detail})` : describeSnapshot(peer.snapshot);
    this.trail.add(`now: local Redis ${local}; ${this.name} ${target}`);
  }

  /**
   * FAILOVER holds writes until the replica has acknowledged every byte, and replicas
   * acknowledge about once a second (Redis sends no GETACK while writes are paused), so
   * issued at a random moment it pauses writes for 0–1000 ms. Writes still flow here:
   * watch the acknowledged offset in `INFO replication` until it moves (an ACK just
   * arrived), then wait until shortly before the next one is due. With nothing left to
   * acknowledge FAILOVER does not wait at all, so that returns at once. Bounded; on any
   * error or no movement it just returns. Only the trail records what it saw.
   */
  private async alignWithAck(entry: ReplicaEntry): Promise<void> {
    const since = nowMs();
    const ackedOffset = async (): Promise<{ acked: number; master: number } | null> => {
      const text = await this.deps.local.run(this.deps.localTimeoutMs, (c) => c.info('replication'));
      const mine = parseReplicaEntries(text).find((e) => e.ip === entry.ip && e.port === entry.port);
      return mine ? { acked: mine.offset, master: parseReplicationInfo(text).offset } : null;
    };
    try {
      const first = await ackedOffset();
      if (first === null || first.acked >= first.master) {
        this.trail.add('replica has acknowledged everything: FAILOVER at once', since);
        return;
      }
      while (nowMs() - since < ACK_ALIGN_BOUND_MS) {
        await sleep(ACK_POLL_MS);
        const now = await ackedOffset();
        if (now === null) break;
        if (now.acked !== first.acked) {
          const ackAt = nowMs();
          await sleep(Math.max(0, REPLICA_ACK_PERIOD_MS - ACK_LEAD_MS - (nowMs() - ackAt)));
          this.trail.add(`timed FAILOVER ${ACK_LEAD_MS} ms before the replica's next acknowledgement`, since);
          return;
        }
      }
      this.trail.add('no acknowledgement seen: FAILOVER untimed', since);
    } catch (err) {
      this.trail.add(`could not time FAILOVER to the replica's acknowledgements (${messageOf(err)})`, since);
    }
  }

  private async localView(): Promise<LocalView> {
    const text = await this.deps.local.run(this.deps.localTimeoutMs, (c) => c.info('replication'));
    return {
      snapshot: parseReplicationInfo(text),
      failoverState: parseInfoFields(text).get('master_failover_state') ?? 'no-failover',
    };
  }

  private async localSnapshot(): Promise<RedisSnapshot | null> {
    try {
      return (await this.localView()).snapshot;
    } catch {
      return null;
    }
  }

  /** Polls the local Redis until `reached` or `boundMs`; the last view seen, if any. */
  private async waitLocal(reached: (v: LocalView) => boolean, boundMs: number): Promise<LocalView | null> {
    const deadline = nowMs() + boundMs;
    let last: LocalView | null = null;
    for (;;) {
      try {
        last = await this.localView();
        if (reached(last)) return last;
      } catch {
        // Keep polling until the bound.
      }
      if (nowMs() >= deadline) return last;
      await sleep(ROLE_POLL_MS);
    }
  }

  private async peerSnapshot(): Promise<{ snapshot: RedisSnapshot | null; detail: string }> {
    try {
      const text = await this.peer.run(this.deps.peerTimeoutMs, (c) => c.info('replication'));
      return { snapshot: parseReplicationInfo(text), detail: '' };
    } catch (err) {
      return { snapshot: null, detail: messageOf(err) };
    }
  }

  /** Polls the target until it reports role master or `ROLE_VERIFY_MS` passes; the last snapshot seen. */
  private async waitPeerMaster(): Promise<RedisSnapshot | null> {
    const deadline = nowMs() + ROLE_VERIFY_MS;
    let last: RedisSnapshot | null = null;
    for (;;) {
      const seen = await this.peerSnapshot();
      if (seen.snapshot !== null) {
        last = seen.snapshot;
        if (last.role === 'master') return last;
      }
      if (nowMs() >= deadline) return last;
      await sleep(ROLE_POLL_MS);
    }
  }
}

/** A `slaveN` entry's address as Redis lists it. */
function listedAddress(entry: ReplicaEntry): HostPort {
  return { host: entry.ip, port: entry.port };
}

/** The value of a one-parameter `CONFIG GET` reply (`[name, value]`), or null. */
function configValue(reply: unknown): string | null {
  return Array.isArray(reply) && reply.length >= 2 ? String(reply[1]) : null;
}

/** One spelling per address: lower case, IPv6 compressed, IPv4-mapped IPv6 as IPv4. */
function canonicalAddress(address: string): string {
  const lower = address.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)?.[1];
  if (mapped !== undefined) return mapped;
  if (isIP(lower) !== 6) return lower;
  try {
    return new URL(`http://[${lower}]/`).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return lower;
  }
}
