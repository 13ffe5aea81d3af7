/**
 * The local Redis as the role changes drive it, over the long-lived control
 * connection (`redis-ha-control`): its replication state, `masterauth` for the
 * peer, `REPLICAOF` either way, the wait for a new role to show, and the eviction
 * of its application clients. Promotion, demotion and the takeover share it.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../logger.js';
import type { HostPort, RedisSnapshot } from '../../core/types.js';
import type { RedisEndpoint } from '../../config/types.js';
import { RedisControlError } from '../../errors.js';
import { disconnectApplicationClients } from './clients.js';
import { describeError, REDIS_REPLY, REDIS_TIMEOUT, type Connection } from './connection.js';
import { parseInfoFields, parseReplicationInfo } from './info.js';
import { replicatesFrom, type LocalState } from './snapshot.js';
import { nowMs, type Trail } from './trail.js';
import { ROLE_CHANGE_RETRY_MS } from '../../core/timing.js';

/** How often the role is polled while waiting for a change to show. */
const ROLE_POLL_INTERVAL_MS = 50;
const ROLE_CHANGE_RETRY_INTERVAL_MS = 100;

/** Where the local Redis is and how it is driven. */
export interface LocalRedisOptions {
  /** The control connection. */
  readonly connection: Connection;
  /** Bound of each command on it. */
  readonly timeoutMs: number;
  /** Credentials of the peer's Redis, which the local one authenticates with as its replica. */
  readonly peerEndpoint: RedisEndpoint;
  /** `CLIENT SETNAME` prefix: clients so named are never disconnected. */
  readonly clientName: string;
  readonly logger: Logger;
}

/** The local Redis. Methods throw `RedisControlError` when it fails, unless they say otherwise. */
export class LocalRedis {
  constructor(private readonly options: LocalRedisOptions) {}

  /** `INFO replication`, with `INFO server` when `withServer` (run_id, version). */
  async state(withServer: boolean): Promise<LocalState> {
    return this.options.connection.run(this.options.timeoutMs, async (c) => {
      const [server, replication] = await Promise.all([
        withServer ? c.info('server') : Promise.resolve(''),
        c.info('replication'),
      ]);
      const fields = parseInfoFields(`${server}\n${replication}`);
      return { snapshot: parseReplicationInfo(replication), fields };
    });
  }

  async replication(): Promise<RedisSnapshot> {
    return (await this.state(false)).snapshot;
  }

  /**
   * `CONFIG SET masterauth/masteruser` from the peer endpoint, before REPLICAOF so the
   * first handshake authenticates; recorded in `trail`, never throws.
   */
  async setMasterAuth(trail: Trail): Promise<void> {
    const { password, username } = this.options.peerEndpoint;
    if (password === null) return;
    const since = nowMs();
    try {
      await this.options.connection.run(this.options.timeoutMs, async (c) => {
        await c.config('SET', 'masterauth', password);
        if (username !== null) await c.config('SET', 'masteruser', username);
      });
      trail.add(`CONFIG SET masterauth${username !== null ? ' masteruser' : ''}`, since);
    } catch (err) {
      // CONFIG may be renamed; masterauth in redis.conf still works, so carry on.
      trail.add(`CONFIG SET masterauth failed (${describeError(err)}), relying on redis.conf`, since);
    }
  }

  /** `REPLICAOF host port`. */
  async replicaOf(target: HostPort): Promise<void> {
    await this.options.connection.run(this.options.timeoutMs, (c) => c.replicaof(target.host, target.port));
  }

  /** `REPLICAOF NO ONE`, retried while Redis is loading a dataset or too busy to answer, up to a bound. */
  async replicaOfNoOne(): Promise<void> {
    const deadline = nowMs() + ROLE_CHANGE_RETRY_MS;
    for (;;) {
      try {
        await this.options.connection.run(this.options.timeoutMs, (c) => c.replicaof('NO', 'ONE'));
        return;
      } catch (err) {
        const busy =
          err instanceof RedisControlError &&
          (err.code === REDIS_TIMEOUT || (err.code === REDIS_REPLY && /^(LOADING|BUSY)/.test(err.message)));
        if (!busy || nowMs() >= deadline) throw err;
        await sleep(ROLE_CHANGE_RETRY_INTERVAL_MS);
      }
    }
  }

  /** Polls until the local Redis replicates from `master` or `boundMs` passes; the last snapshot seen, if any. Never throws. */
  async waitForRole(master: HostPort, boundMs: number): Promise<RedisSnapshot | null> {
    const deadline = nowMs() + boundMs;
    let last: RedisSnapshot | null = null;
    for (;;) {
      try {
        last = await this.replication();
        if (replicatesFrom(last, master)) return last;
      } catch {
        // Keep polling until the bound: a busy server may miss one answer.
      }
      if (nowMs() >= deadline) return last;
      await sleep(ROLE_POLL_INTERVAL_MS);
    }
  }

  /** Disconnects the application clients (not ours); the step text, never throws. */
  disconnectApplicationClients(): Promise<string> {
    const { connection, timeoutMs, clientName, logger } = this.options;
    return disconnectApplicationClients(connection, timeoutMs, clientName, logger);
  }
}
