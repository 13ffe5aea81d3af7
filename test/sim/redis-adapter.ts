/**
 * The Redis side of one simulated daemon (`RuntimeRedis`), on the model of
 * `redis-model.ts`. Each command takes fake time and applies its change part-way
 * through, so a daemon killed in the middle leaves Redis changed without hearing of it,
 * as a real one would. What it does follows `src/adapters/redis-*`:
 *
 *  - promote(catchUpFrom): if that peer answers and is a master, follow it, pause its
 *    writes, catch up, REPLICAOF NO ONE, fence it (it replicates us) and unpause it
 *    (the real `FencedTakeover`); an unreachable peer costs the connect timeout, a dead
 *    or non-master one is skipped, so is one whose history would discard ours
 *    (`resyncWouldDiscard`), and the promotion goes ahead with what we have.
 *  - replicateFrom(master): REPLICAOF; the data follows when the link is up.
 *  - switchOver: FAILOVER TO the peer, which must replicate us over a working link
 *    (fenced first when asked: `fenceTarget`);
 *    writes pause until the peer has caught up and the roles swap; rolled back when the
 *    peer goes away meanwhile.
 *
 * Effects may be made to throw (the `flaky` fault), before or after their change.
 */
import { historyContains, resyncWouldDiscard } from '../../src/core/history.js';
import type { FenceSetting, HostPort } from '../../src/core/types.js';
import type { RedisProbe, RuntimeRedis, SwitchoverCall, SwitchoverReport } from '../../src/daemon/runtime.js';
import type { Network } from './net.js';
import { nodeOf, type RedisModel } from './redis-model.js';
import { OTHER, type Incarnation, type NodeId, type World } from './world.js';

/** `promotion.peer_timeout_ms`: what a catch-up from a cut-off peer costs. */
export const PEER_TIMEOUT_MS = 100;
/** A pause left by a promoter that died lifts itself after this (maxSyncWaitMs + margin). */
export const PAUSE_BOUND_MS = 3_000;
/** Longest any one Redis effect takes here (promotion from a cut-off peer: connect timeout + steps). */
export const MAX_REDIS_EFFECT_MS = PEER_TIMEOUT_MS + 8 + 20 + 5 + 5;
/** Longest FAILOVER (its pause included). */
export const MAX_SWITCHOVER_MS = 5 + 80 + 5;

/**
 * How long a Redis left behind by a promotion without catch-up may keep taking writes
 * before it follows the new master: its daemon hears the new master's advert, releases
 * the VIP, and re-points it (a few advert intervals at the slowest timing, with margin).
 */
const LEFT_BEHIND_MS = 10_000;

/** Decides whether an effect of this daemon throws now (the `flaky` fault). */
export type Injector = (effect: string) => 'before' | 'after' | null;

export class SimRedisAdapter implements RuntimeRedis {
  constructor(
    private readonly node: NodeId,
    private readonly owner: Incarnation,
    private readonly world: World,
    private readonly net: Network,
    private readonly redis: RedisModel,
    private readonly inject: Injector,
  ) {}

  async check(): Promise<RedisProbe> {
    await this.sleep(1, 3);
    return this.alive()
      ? { ok: true, detail: 'PONG', redis: this.redis.snapshot(this.node) }
      : { ok: false, detail: 'connection refused', redis: null, down: true };
  }

  onConnectionLost(listener: () => void): void {
    this.redis.onLost(this.node, listener);
  }

  /**
   * `afterFault`: the core skipped the catch-up because the peer reported FAULT; else a
   * promotion without catch-up comes from a `handover`, whose old master follows us already.
   * `requireFence` (prefer safety after a silence): no promotion unless the catch-up
   * reached the peer and it can be fenced.
   */
  async promote(catchUpFrom: HostPort | null, options: { afterFault?: boolean; requireFence?: boolean } = {}): Promise<RedisProbe> {
    const afterFault = options.afterFault === true;
    const failure = this.inject('promote-redis');
    await this.sleep(2, 8);
    if (failure === 'before') throw new Error('injected: promotion failed');
    if (!this.alive()) return { ok: false, detail: 'local Redis: connection refused', redis: null };
    const peer = catchUpFrom === null ? null : nodeOf(catchUpFrom);
    let discard: string | null = null;
    let detail = 'no catch-up';
    let fenceable = false;
    let readOnly = false;
    if (peer !== null) {
      const p = this.redis.servers[peer];
      if (!this.net.tcpUp(this.node, peer)) {
        await this.world.sleep(this.owner, PEER_TIMEOUT_MS);
        this.redis.unreplicatedAtPromotion(peer, this.node);
        detail = `catch-up skipped: peer ${peer} unreachable`;
      } else if (!p.alive) {
        detail = `catch-up skipped: peer ${peer} refused the connection`;
      } else if (p.role !== 'master') {
        // A replica takes no writes: nothing to fence, if ours holds what it holds
        // (`FencedTakeover.peerReadOnly`).
        readOnly = historyContains(this.redis.snapshot(this.node), this.redis.snapshot(peer));
        detail = `catch-up skipped: peer ${peer} is not a master`;
      } else if ((discard = this.resyncDiscards(peer, options.requireFence === true)) !== null) {
        // As `FencedTakeover.prepare`: never onto a history that would discard ours.
        detail = `catch-up skipped: peer ${peer}'s history ${discard}`;
      } else {
        if (this.redis.servers[this.node].masterOf !== peer || this.redis.servers[this.node].role !== 'replica') {
          this.redis.replicaOf(this.node, peer);
        }
        await this.sleep(5, 20);
        if (this.alive() && this.redis.linked(this.node)) {
          this.redis.pause(peer, this.world.now + PAUSE_BOUND_MS);
          this.redis.sync(this.node);
          fenceable = true;
          detail = `caught up with ${peer}`;
          await this.sleep(1, 5);
        } else {
          // Re-read: the peer's Redis may have changed during the wait.
          const now = this.redis.servers[peer];
          const outrun = now.alive && now.role === 'replica';
          detail = `catch-up abandoned: link to ${peer} not up${outrun ? ` (${peer} now replicates ${now.masterOf})` : ''}`;
        }
      }
    }
    if (!this.alive()) {
      if (peer !== null) this.redis.unpause(peer);
      return { ok: false, detail: `${detail}; local Redis: connection refused`, redis: null };
    }
    if (options.requireFence === true && !fenceable && !readOnly) {
      return { ok: false, detail: `${detail}; not promoting: the old master's Redis must be caught up with and fenced`, redis: this.redis.snapshot(this.node) };
    }
    // What only the peer holds is discarded when it follows us (findings.test.ts, 5).
    if (afterFault) this.redis.leftBehind(OTHER[this.node], this.node, 'finding 5', LEFT_BEHIND_MS);
    this.redis.promote(this.node);
    if (peer !== null && fenceable) {
      const p = this.redis.servers[peer];
      if (this.net.tcpUp(this.node, peer) && p.alive) {
        this.redis.replicaOf(peer, this.node);
        detail += `; fenced ${peer}`;
      }
      this.redis.unpause(peer);
    }
    if (failure === 'after') throw new Error('injected: promotion reported failure after REPLICAOF NO ONE');
    await this.sleep(1, 5);
    return this.alive()
      ? { ok: true, detail, redis: this.redis.snapshot(this.node) }
      : { ok: false, detail: `${detail}; local Redis died`, redis: null };
  }

  /** `guard` (the data guard): REPLICAOF first, before the demotion's other steps. */
  async replicateFrom(master: HostPort, options: { guard?: boolean } = {}): Promise<{ ok: boolean; detail: string }> {
    const failure = this.inject('replicate-from');
    if (options.guard === true) await this.sleep(0, 1);
    else await this.sleep(2, 8);
    if (failure === 'before') throw new Error('injected: REPLICAOF failed');
    if (!this.alive()) return { ok: false, detail: 'local Redis: connection refused' };
    const target = nodeOf(master);
    if (target === null || target === this.node) return { ok: false, detail: `refused: ${master.host}:${master.port} is this server` };
    this.redis.replicaOf(this.node, target);
    if (failure === 'after') throw new Error('injected: REPLICAOF reported failure after it was applied');
    await this.sleep(1, 5);
    return this.alive() ? { ok: true, detail: `replicating ${target}` } : { ok: false, detail: 'local Redis died' };
  }

  async switchOver(call: SwitchoverCall): Promise<SwitchoverReport> {
    const failure = this.inject('switchover-redis');
    await this.sleep(2, 5);
    if (failure === 'before') throw new Error('injected: switchover failed');
    const report = (outcome: SwitchoverReport['outcome'], detail: string, pausedMs: number | null): SwitchoverReport => ({
      outcome, method: outcome === 'done' ? 'failover' : null, detail, pausedMs,
      redis: this.alive() ? this.redis.snapshot(this.node) : null,
    });
    if (!this.alive()) return report('failed', 'local Redis: connection refused', null);
    const target = nodeOf(call.target);
    const me = this.redis.servers[this.node];
    if (target === null || target === this.node) return report('refused', 'target is this server', null);
    const t = this.redis.servers[target];
    const ready = (): boolean => this.net.tcpUp(this.node, target) && t.alive && t.role === 'replica' && t.masterOf === this.node;
    if (me.role !== 'master') return report('refused', 'local Redis is not a master', null);
    if (!ready()) return report('refused', `${target} is not a connected replica of this master`, null);
    // With the quorum: the target takes writes only once its daemon holds the key (finding Q8).
    if (call.fenceTarget === true && !this.redis.setFence(target, 'refused')) return report('refused', `${target} could not be fenced`, null);
    const pausedAt = this.world.now;
    this.redis.pause(this.node, pausedAt + call.timeoutMs);
    await this.sleep(10, 80);
    if (!this.alive()) return report('failed', 'local Redis died during FAILOVER', null);
    if (!ready() || me.role !== 'master') {
      this.redis.unpause(this.node);
      return report('rolled-back', `${target} went away during FAILOVER`, null);
    }
    this.redis.sync(target);
    this.redis.promote(target);
    this.redis.replicaOf(this.node, target);
    this.redis.unpause(this.node);
    const pausedMs = this.world.now - pausedAt;
    if (failure === 'after') throw new Error('injected: FAILOVER reported failure after the roles swapped');
    await this.sleep(1, 5);
    return report('done', `FAILOVER TO ${target} done`, pausedMs);
  }

  async fence(writes: FenceSetting): Promise<{ ok: boolean; detail: string }> {
    await this.sleep(1, 3);
    return this.redis.setFence(this.node, writes)
      ? { ok: true, detail: `writes ${writes}` }
      : { ok: false, detail: 'connection refused' };
  }

  async disconnectClients(): Promise<string> {
    await this.sleep(1, 3);
    return 'disconnected 0 client(s)';
  }

  /** Why following `peer`'s Redis would discard writes only ours holds (`resyncWouldDiscard`), or null. */
  /** `strict`: a promotion that must go through the peer's Redis counts only a sure loss (as `FencedTakeover.prepare`). */
  private resyncDiscards(peer: NodeId, strict: boolean): string | null {
    const local = this.redis.snapshot(this.node);
    const following = local.role === 'replica' && this.redis.servers[this.node].masterOf === peer;
    return resyncWouldDiscard(this.redis.snapshot(peer), local, following || strict);
  }

  private alive(): boolean {
    return this.redis.servers[this.node].alive;
  }

  private sleep(min: number, max: number): Promise<void> {
    return this.world.sleep(this.owner, this.world.int(min, max));
  }
}
