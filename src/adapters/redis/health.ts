/**
 * The health check of the local Redis over its own long-lived connection
 * (`redis-ha`), so that a slow role change never delays it: PING (must answer PONG)
 * and `INFO replication`, together bounded by `health.timeoutMs`; on the first check of
 * each connection also `INFO server`, for its run_id (the data guard).
 *
 * The run_id is asked once per connection, not once per check: it changes only when the
 * Redis process restarts, which closes the connection, and a closed connection is never
 * reused (`connection.ts`: the next check opens a new client). `INFO server` is the
 * larger reply of the three; at a 100 ms interval it was most of the check's parsing.
 *
 * `INFO cluster` is asked once per connection too (`cluster-enabled` cannot change without
 * a restart): a Redis Cluster node fails every check, with `clusterEnabled` and the
 * refusal as its detail (`cluster-mode.ts`; its `CLUSTER INFO` is read again each time, so
 * the detail says the cluster's state as it is). The core takes that as proof, like a
 * refused connection: FAULT at once, the VIP given up, nothing sent to that Redis. A mode
 * that cannot be read (a Redis before 3.0) is not a failure: `run` warned at start-up.
 */
import type { Redis } from 'ioredis';
import type { Logger } from '../../logger.js';
import type { RedisSnapshot } from '../../core/types.js';
import { RedisControlError } from '../../errors.js';
import { readClusterInfo, readClusterMode } from './cluster-check.js';
import { clusterRefusalLine, type ClusterNode } from './cluster-mode.js';
import { describeError, REDIS_REPLY, REDIS_TIMEOUT, type Connection } from './connection.js';
import { parseInfoFields, parseReplicationInfo } from './info.js';
import { describeSnapshot } from './snapshot.js';

/** Outcome of a health check or a promotion. */
export interface RedisCheckResult {
  readonly ok: boolean;
  /** One readable line: the log message field and the audit record. */
  readonly detail: string;
  /** What `INFO replication` said, when Redis answered. */
  readonly redis: RedisSnapshot | null;
  /** The connection was refused (no Redis listening): a dead Redis takes no writes. */
  readonly down?: boolean;
  /** The check ran out of time (a hung server): the next one may start at once. */
  readonly timedOut?: boolean;
  /** The server is a Redis Cluster node (`cluster_enabled:1`): refused, `detail` says why and what to use instead. */
  readonly clusterEnabled?: boolean;
}

/** Whether a failure's detail is a refused connection (`describeError` words ECONNREFUSED so). */
export function isRefusal(detail: string): boolean {
  return /connection refused|ECONNREFUSED/i.test(detail);
}

/** run_id per client (one client per connection); `''` when the server reported none. */
const runIds = new WeakMap<Redis, string>();
/** Per client: whether the server is a Redis Cluster node (`INFO cluster`; false also when it did not say). */
const clusterNodes = new WeakMap<Redis, boolean>();

/**
 * One health check of the server `node` names. A refused connection fails at once; a hung
 * server fails at the timeout and the connection is replaced on the next check; a Redis
 * Cluster node fails with `clusterEnabled`. Never throws.
 */
export async function checkHealth(connection: Connection, timeoutMs: number, log: Logger, node: ClusterNode): Promise<RedisCheckResult> {
  try {
    const found = await connection.run(timeoutMs, async (client): Promise<{ redis: RedisSnapshot } | { cluster: string }> => {
      const known = runIds.get(client);
      const cluster = clusterNodes.get(client);
      const [pong, info, server, mode] = await Promise.all([
        client.ping(), client.info('replication'), known === undefined ? client.info('server') : null,
        cluster === undefined ? readClusterMode(client) : null,
      ]);
      if (pong !== 'PONG') throw new RedisControlError(REDIS_REPLY, `PING answered ${JSON.stringify(pong)}`);
      if (mode !== null) clusterNodes.set(client, mode.kind === 'cluster');
      if (mode?.kind === 'cluster') return { cluster: clusterRefusalLine(node, mode.info) };
      if (cluster === true) return { cluster: clusterRefusalLine(node, await readClusterInfo(client)) };
      const runId = server === null ? known ?? '' : parseInfoFields(server).get('run_id') ?? '';
      if (server !== null) runIds.set(client, runId);
      const snapshot = parseReplicationInfo(info);
      return { redis: runId === '' ? snapshot : { ...snapshot, runId } };
    });
    if ('cluster' in found) {
      log.debug({ detail: found.cluster }, 'health check: a Redis Cluster node');
      return { ok: false, detail: found.cluster, redis: null, clusterEnabled: true };
    }
    return { ok: true, detail: `PONG; ${describeSnapshot(found.redis)}`, redis: found.redis };
  } catch (err) {
    const detail = describeError(err);
    log.debug({ detail }, 'health check failed');
    if (isRefusal(detail)) return { ok: false, detail, redis: null, down: true };
    return err instanceof RedisControlError && err.code === REDIS_TIMEOUT ? { ok: false, detail, redis: null, timedOut: true } : { ok: false, detail, redis: null };
  }
}
