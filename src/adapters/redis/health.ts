/**
 * The health check of the local Redis over its own long-lived connection
 * (`redis-ha`), so that a slow role change never delays it: PING (must answer PONG),
 * `INFO replication` and `INFO server` (its run_id, for the data guard), together
 * bounded by `health.timeoutMs`.
 */
import type { Logger } from '../../logger.js';
import type { RedisSnapshot } from '../../core/types.js';
import { RedisControlError } from '../../errors.js';
import { describeError, REDIS_REPLY, type Connection } from './connection.js';
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
}

/**
 * One health check. A refused connection fails at once; a hung server fails at the
 * timeout and the connection is replaced on the next check. Never throws.
 */
export async function checkHealth(connection: Connection, timeoutMs: number, log: Logger): Promise<RedisCheckResult> {
  try {
    const redis = await connection.run(timeoutMs, async (client) => {
      const [pong, info, server] = await Promise.all([client.ping(), client.info('replication'), client.info('server')]);
      if (pong !== 'PONG') throw new RedisControlError(REDIS_REPLY, `PING answered ${JSON.stringify(pong)}`);
      const runId = parseInfoFields(server).get('run_id');
      const snapshot = parseReplicationInfo(info);
      return runId === undefined || runId === '' ? snapshot : { ...snapshot, runId };
    });
    return { ok: true, detail: `PONG; ${describeSnapshot(redis)}`, redis };
  } catch (err) {
    const detail = describeError(err);
    log.debug({ detail }, 'health check failed');
    // `describeError` words ECONNREFUSED as "connection refused".
    return /connection refused|ECONNREFUSED/i.test(detail) ? { ok: false, detail, redis: null, down: true } : { ok: false, detail, redis: null };
  }
}
