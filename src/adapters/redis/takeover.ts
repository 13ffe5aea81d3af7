/**
 * The fenced takeover: the peer side of a promotion when the old master still
 * answers. The promoting node catches up with it and takes its role without losing a
 * write. It is the manual procedure for Redis < 6.2 failover (`FAILOVER` needs the old
 * master to drive it), done by the promoting node:
 *
 *   1. probe    the peer answers, is a master, and is not this very server
 *   2. follow   REPLICAOF peer (if needed), wait for link up and no sync running
 *   3. pause    CLIENT PAUSE <maxSyncWaitMs + margin> WRITE on the peer: its
 *               replication offset stops moving, its clients wait instead of writing
 *   4. drain    read the peer's (now frozen) offset, wait until ours reaches it
 *   5. promote  REPLICAOF NO ONE locally (`promote.ts`)
 *   6. fence    on the peer: REPLICAOF <self>, CLIENT UNPAUSE (paused writes now fail
 *               with READONLY instead of vanishing), CLIENT KILL of its application
 *               clients so they reconnect through the VIP
 *
 * Without the pause, a write the old master acknowledges after the offset was read
 * (through its VIP, or from a client that has not seen the gratuitous ARP yet) is lost
 * when it is later resynchronised, and two masters coexist until its own daemon
 * demotes it, which never happens when that daemon is dead or cut off from adverts.
 *
 * Failure modes: a peer that does not answer, is not a master, is this server, or is a
 * Redis Cluster node (issue 14: sent nothing) is skipped (promotion goes ahead at once,
 * as before); so is one whose replication history
 * would discard writes only ours holds (`resyncWouldDiscard`). A peer that cannot pause only
 * writes (< 6.2) gets the unpaused catch-up. A peer we never got in sync with is not
 * fenced: its resync would discard writes we do not have. The pause is bounded on the
 * peer itself (`takeoverPauseMs` in `rules.ts`), so a promoter that dies mid-way cannot
 * freeze the old master for longer than `maxSyncWaitMs` plus a margin, and `release()`
 * lifts it on every path. Nothing on the peer side can fail the promotion: it only adds
 * to `detail`.
 *
 * Not to be confused with the operator's planned switchover (`switchover/`), which
 * runs on the old master's host while it is healthy.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../logger.js';
import { historyContains, resyncWouldDiscard } from '../../core/history.js';
import type { HostPort, RedisSnapshot } from '../../core/types.js';
import type { Config, RedisEndpoint } from '../../config/types.js';
import { RedisControlError } from '../../errors.js';
import { applyFence } from './fence.js';
import { killNormalClients } from './clients.js';
import { Connection, describeError, probeServer, REDIS_REPLY, REDIS_UNREACHABLE } from './connection.js';
import { parseReplicationInfo } from './info.js';
import type { LocalRedis } from './local.js';
import { supportsWritePause, takeoverPauseMs } from './rules.js';
import {
  behind,
  describeSnapshot,
  formatHostPort,
  replicatesFrom,
  sameServer,
  type LocalState,
} from './snapshot.js';
import { nowMs, type Trail } from './trail.js';

/** How often the local replica is polled while the link comes up (a full sync can take minutes). */
const SYNC_POLL_INTERVAL_MS = 25;
/** How often it is polled while writes on the peer are paused: every millisecond there is a client waiting. */
const DRAIN_POLL_INTERVAL_MS = 2;
/** How often the peer is probed during a wait, so a dead or demoted peer ends it early. */
const PEER_PROBE_INTERVAL_MS = 500;

/** What the takeover needs from the configuration. */
export interface TakeoverOptions {
  readonly promotion: Config['promotion'];
  /** Credentials (and TLS) for the peer's Redis. */
  readonly peerEndpoint: RedisEndpoint;
  /** Credentials of our Redis: the peer's `masterauth`/`masteruser` once it is fenced. */
  readonly localEndpoint: RedisEndpoint;
  /** How the peer reaches our Redis: where the fenced peer replicates from. */
  readonly self: HostPort;
  /** `CLIENT SETNAME` prefix: connections named so are never killed. */
  readonly clientName: string;
  readonly logger: Logger;
}

/** How a wait on the local replica ended. */
type WaitOutcome =
  | { readonly kind: 'done'; readonly state: LocalState }
  | { readonly kind: 'timeout'; readonly last: LocalState | null; readonly lastError: string }
  | { readonly kind: 'peer-gone'; readonly last: LocalState | null; readonly why: string };

/**
 * One takeover from `source`. `prepare()` runs steps 1–4, `fence()` step 6 once the
 * local Redis is a master, `release()` always (it lifts a pause still in place and
 * closes the peer connection).
 */
export class FencedTakeover {
  private readonly name: string;
  private readonly peer: Connection;
  /** Set once we are in sync with the peer and `self` names our server: the peer may be fenced. */
  private fenceable = false;
  /** Set when the peer answered as a replica whose writes ours holds. */
  private readOnly = false;
  /** Set when the local Redis caught up with everything the peer held at the pause. */
  private drainedAll = false;
  /** Set from the moment CLIENT PAUSE was sent (its outcome may be unknown) until CLIENT UNPAUSE succeeds. */
  private paused = false;

  constructor(
    private readonly options: TakeoverOptions,
    private readonly local: Pick<LocalRedis, 'state' | 'setMasterAuth' | 'replicaOf'>,
    private readonly source: HostPort,
    private readonly trail: Trail,
  ) {
    this.name = formatHostPort(source);
    this.peer = new Connection({
      endpoint: options.peerEndpoint,
      target: source,
      name: `${options.clientName}-peer`,
      timeoutMs: options.promotion.peerTimeoutMs,
    });
  }

  /** After `prepare`: the local Redis caught up with the peer, which may now be fenced. */
  get canFence(): boolean {
    return this.fenceable;
  }

  /** After `prepare`: the peer answered as a replica whose writes ours holds (nothing to fence, nothing to catch up with). */
  get peerReadOnly(): boolean {
    return this.readOnly;
  }

  /**
   * For a promotion that must go through the peer's Redis (`requireFence`): the peer is a
   * replica ours holds, or ours caught up with all of it (the drain reached its frozen
   * offset) and its writes are now refused by its own `min-replicas` fence, which holds
   * even if the later `REPLICAOF` does not. Call after `prepare`, before the local
   * promotion. Never throws.
   */
  async fencedForPromotion(): Promise<boolean> {
    if (this.readOnly) return true;
    if (!this.fenceable || !this.drainedAll) return false;
    const since = nowMs();
    const r = await applyFence(this.peer, this.options.promotion.peerTimeoutMs, 'refused');
    this.trail.add(r.ok ? `peer's writes refused (${r.detail})` : `could not refuse the peer's writes (${r.detail})`, since);
    return r.ok;
  }

  /**
   * Steps 1–4: probe, follow, pause, drain. Returns normally whatever happens on the
   * peer side (each outcome is in the trail); throws only when the local Redis fails.
   */
  async prepare(local: RedisSnapshot, localRunId: string, options: { readonly strict?: boolean } = {}): Promise<void> {
    const { trail, name, source } = this;
    const { maxSyncWaitMs, peerTimeoutMs, syncDelayMs } = this.options.promotion;
    let since = nowMs();
    const probe = await probeServer(this.peer, peerTimeoutMs);
    if (!probe.ok) {
      trail.add(`catch-up skipped: peer ${name} unreachable (${probe.detail})`, since);
      return;
    }
    if (sameServer(probe.runId, localRunId)) {
      trail.add(`catch-up skipped: ${name} is this very server (same run_id)`, since);
      return;
    }
    if (probe.clusterEnabled === true) {
      // Issue 14: nothing that changes a Redis Cluster node (no REPLICAOF, CONFIG SET,
      // CLIENT PAUSE, no fence); a promotion that must go through it fails.
      trail.add(`catch-up skipped: peer ${name} is a Redis Cluster node (cluster_enabled:1): redis-ha sends it nothing`, since);
      return;
    }
    if (probe.snapshot.role !== 'master') {
      // Never chain behind a replica: its data is no newer than its own master's. A replica
      // takes no writes either: nothing to fence, if ours holds what it holds (else its
      // resync from us would discard it: review S8).
      this.readOnly = historyContains(local, probe.snapshot);
      trail.add(`catch-up skipped: peer ${name} is not a master (${describeSnapshot(probe.snapshot)})`, since);
      return;
    }
    const following = replicatesFrom(local, source);
    // Following the peer means a resync from it: never onto a history that would discard
    // writes only ours holds (finding 8: a peer whose Redis restarted with older data).
    // The promotion goes ahead with what we have; the peer's daemon re-points its Redis
    // once its history allows (`reconcileReplica`). `strict` (a promotion that must go
    // through the peer's Redis: etcd remembers it served, or `prefer: safety`): only a sure
    // loss counts, not the guess from unlinked offsets (etcd's record is the better evidence).
    const discard = resyncWouldDiscard(probe.snapshot, local, following || options.strict === true);
    if (discard !== null) {
      trail.add(`catch-up skipped: peer ${name}'s history ${discard}: following it would discard local writes`, since);
      return;
    }
    trail.add(`peer ${name} is master at offset ${probe.snapshot.offset}`, since);
    // Runs during the link wait; only needed before the pause.
    const selfCheck = this.checkSelf(localRunId);

    await this.local.setMasterAuth(trail);
    since = nowMs();
    if (following) {
      trail.add(`already replicating from ${name}`);
    } else {
      await this.local.replicaOf(source);
      trail.add(`REPLICAOF ${source.host} ${source.port}`, since);
    }

    since = nowMs();
    const linked = await this.waitLocal(
      (s) => replicatesFrom(s, source) && s.linkUp && !s.syncInProgress,
      since + maxSyncWaitMs,
      SYNC_POLL_INTERVAL_MS,
    );
    if (linked.kind !== 'done') {
      // Not in sync: no pause (it would only hold clients up), and no fence (the
      // peer's resync from us would discard writes we never received).
      trail.add(this.unfinished(linked, probe.snapshot, maxSyncWaitMs), since);
      await selfCheck;
      return;
    }
    trail.add(`link up at offset ${linked.state.snapshot.offset}`, since);

    if (syncDelayMs > 0) {
      since = nowMs();
      await sleep(syncDelayMs);
      trail.add(`sync delay ${syncDelayMs} ms`, since);
    }

    const selfProblem = await selfCheck;
    let frozen = false;
    if (selfProblem === null) {
      this.fenceable = true;
      await this.setPeerMasterAuth();
      frozen = await this.pause(probe.version);
    } else {
      trail.add(`peer will not be fenced: ${selfProblem}`);
    }

    since = nowMs();
    let target: RedisSnapshot;
    try {
      target = await this.peer.run(peerTimeoutMs, async (c) => parseReplicationInfo(await c.info('replication')));
    } catch (err) {
      this.fenceable = false;
      trail.add(`catch-up abandoned: peer ${name} stopped answering (${describeError(err)})`, since);
      return;
    }
    const drained = await this.waitLocal(
      (s) => replicatesFrom(s, source) && s.linkUp && !s.syncInProgress && s.offset >= target.offset,
      since + maxSyncWaitMs,
      frozen ? DRAIN_POLL_INTERVAL_MS : SYNC_POLL_INTERVAL_MS,
    );
    if (drained.kind === 'done') {
      this.drainedAll = true;
      const offset = drained.state.snapshot.offset;
      trail.add(
        frozen ? `caught up to frozen offset ${target.offset}` : `caught up to offset ${offset} (peer was at ${target.offset})`,
        since,
      );
      return;
    }
    // The peer stopped answering or was demoted meanwhile: leave it alone.
    if (drained.kind === 'peer-gone') this.fenceable = false;
    trail.add(this.unfinished(drained, target, maxSyncWaitMs), since);
  }

  /**
   * Step 6, once the local Redis is a verified master: the peer replicates from
   * `self`, is unpaused, and loses its application clients. Never throws.
   */
  async fence(): Promise<void> {
    if (!this.fenceable) return;
    const { trail } = this;
    const { self } = this.options;
    const { peerTimeoutMs } = this.options.promotion;
    let since = nowMs();
    let fenced = false;
    try {
      await this.peer.run(peerTimeoutMs, (c) => c.replicaof(self.host, self.port));
      fenced = true;
      trail.add(`fenced peer: REPLICAOF ${self.host} ${self.port}`, since);
    } catch (err) {
      trail.add(`could not fence peer (${describeError(err)}): it may still accept writes`, since);
    }
    await this.unpause('unpaused peer');
    if (!fenced) return;
    this.options.logger.info({ peer: this.name, self: formatHostPort(self) }, 'old master fenced');
    since = nowMs();
    try {
      const killed = await killNormalClients(this.peer, peerTimeoutMs, this.options.clientName);
      trail.add(`disconnected ${killed} client(s) on peer`, since);
    } catch (err) {
      // Fenced already: its clients get READONLY and find the VIP on their own.
      trail.add(`could not disconnect clients on peer (${describeError(err)})`, since);
    }
  }

  /** Lifts a pause still in place (promotion failed or the fence never ran) and closes the peer connection. Never throws. */
  async release(): Promise<void> {
    await this.unpause('unpaused peer after an unfinished takeover');
    await this.peer.close();
  }

  /**
   * Step 3; true when the peer confirmed the pause. A peer that cannot pause only
   * writes (< 6.2, or CLIENT refused) is caught up with unpaused; one that does not
   * answer may have paused anyway, so `paused` is set before the command goes out.
   */
  private async pause(version: string): Promise<boolean> {
    const { trail, name } = this;
    const { maxSyncWaitMs, peerTimeoutMs } = this.options.promotion;
    if (!supportsWritePause(version)) {
      trail.add(`peer Redis ${version} cannot pause only writes (CLIENT PAUSE WRITE needs 6.2): catching up unpaused`);
      return false;
    }
    const pauseMs = takeoverPauseMs(maxSyncWaitMs);
    const since = nowMs();
    this.paused = true;
    try {
      await this.peer.run(peerTimeoutMs, (c) => c.call('CLIENT', 'PAUSE', String(pauseMs), 'WRITE'));
      trail.add('paused writes on peer', since);
      this.options.logger.info({ peer: name, pauseMs }, 'writes paused on the old master');
      return true;
    } catch (err) {
      // A reply error (syntax, ACL, renamed command) means no pause; a timeout or a lost
      // connection leaves it unknown, so `release()` still tries CLIENT UNPAUSE.
      if (err instanceof RedisControlError && err.code === REDIS_REPLY) this.paused = false;
      trail.add(`CLIENT PAUSE WRITE failed on peer (${describeError(err)}): catching up unpaused`, since);
      return false;
    }
  }

  private async unpause(text: string): Promise<void> {
    if (!this.paused) return;
    const since = nowMs();
    try {
      await this.peer.run(this.options.promotion.peerTimeoutMs, (c) => c.call('CLIENT', 'UNPAUSE'));
      this.paused = false;
      this.trail.add(text, since);
    } catch (err) {
      const bound = takeoverPauseMs(this.options.promotion.maxSyncWaitMs);
      this.trail.add(`could not unpause peer (${describeError(err)}): its pause ends by itself within ${bound} ms`, since);
    }
  }

  /** The fenced peer authenticates to our Redis with our credentials; a failure is reported, not fatal. */
  private async setPeerMasterAuth(): Promise<void> {
    const { password, username } = this.options.localEndpoint;
    if (password === null) return;
    const since = nowMs();
    try {
      await this.peer.run(this.options.promotion.peerTimeoutMs, async (c) => {
        await c.config('SET', 'masterauth', password);
        if (username !== null) await c.config('SET', 'masteruser', username);
      });
      this.trail.add(`CONFIG SET masterauth${username !== null ? ' masteruser' : ''} on peer`, since);
    } catch (err) {
      // CONFIG may be renamed; masterauth in the peer's redis.conf still works.
      this.trail.add(`CONFIG SET masterauth on peer failed (${describeError(err)}), relying on its redis.conf`, since);
    }
  }

  /**
   * Whether `self` reaches this very server (same run_id), so the fence can never
   * point the peer at itself or at a third server; a reason when it does not.
   */
  private async checkSelf(localRunId: string): Promise<string | null> {
    const { self, localEndpoint, clientName, promotion } = this.options;
    const where = formatHostPort(self);
    if (self.host === this.source.host && self.port === this.source.port) return `self ${where} is the peer's own address`;
    const connection = new Connection({
      endpoint: localEndpoint,
      target: self,
      name: `${clientName}-self`,
      timeoutMs: promotion.peerTimeoutMs,
    });
    try {
      const probe = await probeServer(connection, promotion.peerTimeoutMs);
      if (!probe.ok) return `self ${where} does not answer (${probe.detail})`;
      if (!sameServer(probe.runId, localRunId)) return `self ${where} is another server (run_id ${probe.runId})`;
      return null;
    } finally {
      await connection.close();
    }
  }

  /**
   * Polls the local replica until `reached`, the deadline, or the peer going away
   * (connection lost, or no longer a master). Each poll gets the full control
   * timeout (a poll cut short would cost the connection), so a local Redis that
   * stops answering can stretch the wait past `deadline` by one poll.
   */
  private async waitLocal(
    reached: (s: RedisSnapshot) => boolean,
    deadline: number,
    pollMs: number,
  ): Promise<WaitOutcome> {
    const { peerTimeoutMs } = this.options.promotion;
    let last: LocalState | null = null;
    let lastError = '';
    let lastProbe = nowMs();
    // Written by the background probe below.
    const peerSeen: { demoted: string | null } = { demoted: null };
    for (;;) {
      try {
        last = await this.local.state(false);
        if (reached(last.snapshot)) return { kind: 'done', state: last };
      } catch (err) {
        // Gone is final (promotion cannot succeed); slow is not: a replica flushing or
        // loading a big dataset can miss a poll.
        if (err instanceof RedisControlError && err.code === REDIS_UNREACHABLE) throw err;
        lastError = describeError(err);
      }
      if (nowMs() >= deadline) return { kind: 'timeout', last, lastError };
      if (nowMs() - lastProbe >= PEER_PROBE_INTERVAL_MS) {
        lastProbe = nowMs();
        // Not awaited: a failed probe drops the peer connection, which `lost` reports below.
        this.peer
          .run(peerTimeoutMs, async (c) => parseReplicationInfo(await c.info('replication')))
          .then((s) => {
            if (s.role !== 'master') peerSeen.demoted = describeSnapshot(s);
          })
          .catch(() => undefined);
      }
      if (this.peer.lost) return { kind: 'peer-gone', last, why: 'peer connection lost while waiting' };
      if (peerSeen.demoted !== null) {
        return { kind: 'peer-gone', last, why: `peer is no longer a master (${peerSeen.demoted})` };
      }
      await sleep(pollMs);
    }
  }

  /** The step text of a wait that did not reach its goal. */
  private unfinished(outcome: Exclude<WaitOutcome, { kind: 'done' }>, target: RedisSnapshot, boundMs: number): string {
    if (outcome.kind === 'peer-gone') return `catch-up abandoned: ${outcome.why}${behind(outcome.last, target)}; promoting anyway`;
    const why = outcome.last === null ? ` (local Redis: ${outcome.lastError})` : behind(outcome.last, target);
    this.options.logger.warn({ source: this.name, target: target.offset, maxSyncWaitMs: boundMs }, 'redis catch-up timed out');
    return `catch-up timed out after ${boundMs} ms${why}; promoting anyway`;
  }
}
