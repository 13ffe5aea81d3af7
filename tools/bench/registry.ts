/**
 * The benchmarked setups, in the order the results list them, each with the runner's
 * observation bounds. The bounds follow from each setup's own timers (they are not
 * part of the driver interface, which stays what `setup.ts` says):
 *
 *  - `minObserveMs`: the runner watches at least this long after a fault (after the heal
 *    for timed faults), so that a reaction the setup's timers schedule late is seen even
 *    when writes never stopped (a SIGKILLed daemon, a partition);
 *  - `observeBoundMs`: the longest the runner waits for writes to flow and the pair to
 *    stop changing before it gives up and records "not recovered";
 *  - `settleBoundMs`: after the repair, the longest wait for a healthy pair (one master,
 *    one replica of it, the VIP on the master only).
 *
 * A driver whose `load` fails (kept lazy so that a future driver can need something
 * optional) is listed as unavailable with the reason instead of stopping the bench.
 */
import type { SetupDriver } from './setup.js';
import { keepalivedClassic } from './setups/keepalived.js';
import { redisHa, redisHaEtcd, redisHaFast, redisHaLanFast, redisHaPause, redisHaSafety } from './setups/redis-ha.js';
import { sentinel } from './setups/sentinel.js';
import { errorMessage } from '../../src/errors.js';

/** When the runner stops watching a fault, per setup. */
export interface ObservationBounds {
  readonly minObserveMs: number;
  readonly observeBoundMs: number;
  readonly settleBoundMs: number;
}

/** A setup the benchmark knows about. */
export interface RegisteredSetup {
  readonly name: string;
  readonly bounds: ObservationBounds;
  /** The driver, or `null` when it could not be loaded. */
  readonly driver: SetupDriver | null;
  /** Why the driver is missing. */
  readonly unavailable?: string;
}

interface SetupEntry {
  readonly name: string;
  readonly bounds: ObservationBounds;
  load(): Promise<SetupDriver>;
}

/** Every setup name, in result order. */
export const SETUP_NAMES = [
  'redis-ha',
  'redis-ha-etcd',
  'redis-ha-safety',
  'redis-ha-fast',
  'redis-ha-lan-fast',
  'redis-ha-pause',
  'keepalived-classic',
  'sentinel',
] as const;

/** redis-ha at the default timing: master-down 3 × 1 s + skew 0.15 s, then promotion. */
const REDIS_HA_BOUNDS = { minObserveMs: 6_000, observeBoundMs: 30_000, settleBoundMs: 30_000 } as const;

const ENTRIES: readonly SetupEntry[] = [
  {
    name: 'redis-ha',
    bounds: REDIS_HA_BOUNDS,
    load: async () => redisHa,
  },
  {
    name: 'redis-ha-etcd',
    // The same master-down, plus at most the 2 s lease of a holder that cannot give the key back.
    bounds: REDIS_HA_BOUNDS,
    load: async () => redisHaEtcd,
  },
  {
    name: 'redis-ha-safety',
    bounds: REDIS_HA_BOUNDS,
    load: async () => redisHaSafety,
  },
  {
    name: 'redis-ha-fast',
    // Master-down 3 × 100 ms + skew, then promotion.
    bounds: { minObserveMs: 2_500, observeBoundMs: 20_000, settleBoundMs: 30_000 },
    load: async () => redisHaFast,
  },
  {
    name: 'redis-ha-lan-fast',
    // Master-down 3 × 20 ms + skew, then promotion; the fast setup's bounds are ample.
    bounds: { minObserveMs: 2_500, observeBoundMs: 20_000, settleBoundMs: 30_000 },
    load: async () => redisHaLanFast,
  },
  {
    name: 'redis-ha-pause',
    bounds: REDIS_HA_BOUNDS,
    load: async () => redisHaPause,
  },
  {
    name: 'keepalived-classic',
    // Check every 2 s, master-down ~3.6 s, then notify_master's sleep 15 + sleep 10 before
    // SLAVEOF NO ONE; notify_backup's sleep 15 before SLAVEOF on a rejoining node.
    bounds: { minObserveMs: 33_000, observeBoundMs: 45_000, settleBoundMs: 40_000 },
    load: async () => keepalivedClassic,
  },
  {
    name: 'sentinel',
    // down-after-milliseconds 5 s, the leader election and the failover, then the
    // client-reconfig-script moving the VIP.
    bounds: { minObserveMs: 12_000, observeBoundMs: 40_000, settleBoundMs: 40_000 },
    load: async () => sentinel,
  },
];

/** Loads the named setups (all by default), in result order; unknown names throw. */
export async function loadSetups(names: readonly string[] = SETUP_NAMES): Promise<RegisteredSetup[]> {
  for (const name of names) {
    if (!ENTRIES.some((entry) => entry.name === name)) {
      throw new Error(`unknown setup ${name} (known: ${ENTRIES.map((entry) => entry.name).join(', ')})`);
    }
  }
  const loaded: RegisteredSetup[] = [];
  for (const entry of ENTRIES) {
    if (!names.includes(entry.name)) continue;
    try {
      loaded.push({ name: entry.name, bounds: entry.bounds, driver: await entry.load() });
    } catch (error) {
      loaded.push({ name: entry.name, bounds: entry.bounds, driver: null, unavailable: errorMessage(error) });
    }
  }
  return loaded;
}
