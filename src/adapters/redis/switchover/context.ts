/**
 * The state one switchover carries through its steps (`SwitchoverContext`): its
 * trail, the connection to the target, the write fence in place on the local Redis
 * and how long writes were held; and the reads and waits every method shares. The
 * fence is lifted here, on every path (`liftFence`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { ChainableCommander } from 'ioredis';
import type { RedisSnapshot } from '../../../core/types.js';
import { RedisControlError } from '../../../errors.js';
import { Connection, describeError, REDIS_REPLY } from '../connection.js';
import { parseInfoFields, parseReplicationInfo, type ReplicaEntry } from '../info.js';
import { ROLE_POLL_MS, ROLE_VERIFY_MS, type FailoverView } from '../rules.js';
import { describeSnapshot, formatHostPort } from '../snapshot.js';
import { nowMs, Trail } from '../trail.js';
import type { SwitchoverDeps, SwitchoverHooks, SwitchoverMethod, SwitchoverRequest } from './types.js';

/** What the pre-checks established. */
export interface Checked {
  readonly local: RedisSnapshot;
  /** The target's `slaveN` line on the local Redis. */
  readonly entry: ReplicaEntry;
  readonly method: SwitchoverMethod;
  /** True when CLIENT PAUSE WRITE / CLIENT UNPAUSE exist (6.2+). */
  readonly modern: boolean;
}

/** The write fence in place on the local Redis. */
export type Fence =
  /** `boundMs`: the longest CLIENT PAUSE sent, which ends by itself at the latest that long after it ran. */
  | { readonly kind: 'pause'; readonly boundMs: number }
  /** Before 6.2: `min-replicas-to-write` beyond any replica count, and the values to restore. */
  | { readonly kind: 'min-replicas'; readonly restore: readonly (readonly [string, string])[] };

/** One switchover's state, and the I/O its steps share. */
export class SwitchoverContext {
  readonly trail = new Trail();
  /** The target as `detail` names it. */
  readonly name: string;
  readonly peer: Connection;
  method: SwitchoverMethod | null = null;
  /** Set from the moment the fence command is sent (its outcome may be unknown) until it is lifted. */
  fence: Fence | null = null;
  /** When writes stopped being accepted (a `nowMs()` value), while they are held. */
  fencedAt: number | null = null;
  /** How long writes were held, once they flow again. */
  pausedMs: number | null = null;
  /** Whether the local Redis answered the pre-check (else the final snapshot is not even tried). */
  localAnswered = false;

  constructor(
    readonly deps: SwitchoverDeps,
    readonly request: SwitchoverRequest,
    readonly hooks: SwitchoverHooks,
  ) {
    this.name = formatHostPort(request.target);
    this.peer = new Connection({
      endpoint: deps.peerEndpoint,
      target: request.target,
      name: `${deps.clientName}-peer`,
      timeoutMs: deps.peerTimeoutMs,
    });
  }

  /** Writes were held from `since` until now: records how long. */
  writesResumed(since: number): void {
    this.pausedMs = Math.round(nowMs() - since);
    this.fencedAt = null;
  }

  /** Lifts the fence still in place, if any; bounded, never throws. */
  async liftFence(): Promise<void> {
    const fence = this.fence;
    if (fence !== null) await this.lift(fence);
    if (this.fencedAt !== null) this.writesResumed(this.fencedAt);
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
      this.trail.add(`could not lift the write fence (${describeError(err)}): ${bound}`, since);
    }
  }

  /** CLIENT UNPAUSE after a FAILOVER that did not happen: Redis lifts its own pause, this is a harmless extra. */
  async clientUnpause(): Promise<void> {
    const since = nowMs();
    try {
      await this.deps.local.run(this.deps.localTimeoutMs, (c) => c.call('CLIENT', 'UNPAUSE'));
      this.trail.add('CLIENT UNPAUSE', since);
    } catch (err) {
      this.trail.add(`CLIENT UNPAUSE failed (${describeError(err)})`, since);
    }
  }

  /**
   * Runs a MULTI on the local Redis; the replies, or a throw. With `placesFence` (the
   * MULTI that puts the fence in place), a transaction Redis discarded (EXECABORT)
   * changed nothing, so the fence is cleared; an error inside an executed one leaves
   * it set for `liftFence`, as does any failure of a renewal.
   */
  async multi(build: (m: ChainableCommander) => unknown, placesFence = false): Promise<unknown[]> {
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

  /** The final state of both servers, for a switchover that did not complete. */
  async describeStates(): Promise<void> {
    let local: string;
    try {
      local = describeSnapshot((await this.localView()).snapshot);
    } catch (err) {
      local = `no answer (${describeError(err)})`;
    }
    const peer = await this.peerSnapshot();
    const target = peer.snapshot === null ? `no answer (${peer.detail})` : describeSnapshot(peer.snapshot);
    this.trail.add(`now: local Redis ${local}; ${this.name} ${target}`);
  }

  /** The local `INFO replication` with `master_failover_state`; throws when the local Redis fails. */
  async localView(): Promise<FailoverView> {
    const text = await this.deps.local.run(this.deps.localTimeoutMs, (c) => c.info('replication'));
    return {
      snapshot: parseReplicationInfo(text),
      failoverState: parseInfoFields(text).get('master_failover_state') ?? 'no-failover',
    };
  }

  async localSnapshot(): Promise<RedisSnapshot | null> {
    try {
      return (await this.localView()).snapshot;
    } catch {
      return null;
    }
  }

  /** Polls the local Redis until `reached` or `boundMs`; the last view seen, if any. */
  async waitLocal(reached: (v: FailoverView) => boolean, boundMs: number): Promise<FailoverView | null> {
    const deadline = nowMs() + boundMs;
    let last: FailoverView | null = null;
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

  /** The target's `INFO replication`, or why it did not answer; never throws. */
  async peerSnapshot(): Promise<{ snapshot: RedisSnapshot | null; detail: string }> {
    try {
      const text = await this.peer.run(this.deps.peerTimeoutMs, (c) => c.info('replication'));
      return { snapshot: parseReplicationInfo(text), detail: '' };
    } catch (err) {
      return { snapshot: null, detail: describeError(err) };
    }
  }

  /** Polls the target until it reports role master or `ROLE_VERIFY_MS` passes; the last snapshot seen. */
  async waitPeerMaster(): Promise<RedisSnapshot | null> {
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
