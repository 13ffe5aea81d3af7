/**
 * The write fence of the local Redis, in Redis itself so that it holds without the
 * daemon:
 *   refused       `min-replicas-to-write` above any replica count: every write is refused
 *                 (`-NOREPLICAS`) until it is lowered again, whatever happens to this process;
 *   with-replica  1, with `min-replicas-max-lag` REPLICA_FENCE_MAX_LAG_S: writes only while
 *                 a replica acknowledges, so a master cut from its replica (or whose replica
 *                 was promoted) refuses writes by itself, even with its daemon frozen;
 *   accepted      0: no condition.
 * `min-replicas-max-lag` must be above 0 for Redis to apply the check (0 turns it off),
 * so a fence that has a condition sets both in one `CONFIG SET`.
 *
 * Measured (see ../shared/notes/quorum-facts.md): a CONFIG SET applies from the next
 * command; a pipeline in flight gets `-NOREPLICAS` from the first write after it, never
 * an OK after the first error; a queued MULTI is aborted (EXECABORT). Reads still pass.
 * CONFIG SET is not persisted: a Redis restarted from its redis.conf comes back
 * unfenced, and the daemon decides again at its next health check.
 */
import { REPLICA_FENCE_MAX_LAG_S } from '../../core/timing.js';
import type { FenceSetting } from '../../core/types.js';
import { describeError, type Connection } from './connection.js';

/** `min-replicas-to-write` of a fenced master: no group has this many replicas. */
export const FENCE_MIN_REPLICAS = 1_000_000;
/** `min-replicas-max-lag` with the fence on (Redis's default; 0 would turn the check off). */
export const FENCE_MAX_LAG_S = 10;

/** The two settings of each fence. */
const SETTINGS: Readonly<Record<FenceSetting, { readonly minReplicas: number; readonly maxLagS: number | null }>> = {
  refused: { minReplicas: FENCE_MIN_REPLICAS, maxLagS: FENCE_MAX_LAG_S },
  'with-replica': { minReplicas: 1, maxLagS: REPLICA_FENCE_MAX_LAG_S },
  accepted: { minReplicas: 0, maxLagS: null },
};

/** The outcome of one fence change; never thrown. */
export interface FenceResult {
  readonly ok: boolean;
  readonly detail: string;
}

/** Sets the fence and reads it back; every failure is `{ ok: false }`. */
export async function applyFence(connection: Connection, timeoutMs: number, writes: FenceSetting): Promise<FenceResult> {
  const started = performance.now();
  const setting = SETTINGS[writes];
  const wanted = String(setting.minReplicas);
  try {
    const found = await connection.run(timeoutMs, async (c) => {
      if (setting.maxLagS !== null) {
        await c.config('SET', 'min-replicas-to-write', wanted, 'min-replicas-max-lag', String(setting.maxLagS));
      } else {
        await c.config('SET', 'min-replicas-to-write', wanted);
      }
      const reply = (await c.config('GET', 'min-replicas-to-write')) as unknown;
      return Array.isArray(reply) ? String(reply[1]) : String(reply);
    });
    const ms = Math.round(performance.now() - started);
    if (found !== wanted) return { ok: false, detail: `min-replicas-to-write reads ${found} after setting ${wanted} (${ms} ms)` };
    return { ok: true, detail: `min-replicas-to-write ${wanted}${setting.maxLagS !== null ? ` (max-lag ${setting.maxLagS})` : ''} in ${ms} ms` };
  } catch (error) {
    return { ok: false, detail: `CONFIG SET min-replicas-to-write ${wanted} failed: ${describeError(error)}` };
  }
}
