/**
 * The timing profiles (`timing.profile`): named sets of defaults for the keys that decide
 * how soon a lost host, a hung Redis or a stalled daemon is acted on. A profile only moves
 * defaults: a key set in the file or by its `REDIS_HA_*` variable always wins, and the
 * loader (`load.ts`) records which keys did (`Config.timing.overrides`).
 *
 * `default` is the schema's own defaults, read from the schema (so it cannot drift from
 * what the daemon shipped before profiles existed). The faster profiles are written out
 * below; `test/config/profiles.test.ts` holds each of them to every timing rule of
 * `src/core/timing.ts` (none may fail, and none but the short-advert warning may warn).
 *
 * Both faster profiles trade spurious failovers for speed: on a link that drops packets
 * (the benchmark's 30 % loss made `fast` flap) or a host that stalls for tens of ms,
 * three lost adverts in a row are taken for a dead master.
 */
import { schemaItems, TIMING_PROFILES, type TimingProfile } from './schema.js';

/** The keys a profile sets, by their dotted file names. */
export const PROFILE_KEYS = [
  'advert.interval_ms',
  'health.interval_ms',
  'health.timeout_ms',
  'promotion.peer_timeout_ms',
  'stall.threshold_ms',
] as const;
export type ProfileKey = (typeof PROFILE_KEYS)[number];

/** One profile: a value for every profile key. */
export type ProfileValues = Readonly<Record<ProfileKey, number>>;

/**
 * The faster profiles. Every value is chosen against a rule of `src/core/timing.ts`:
 *
 *  - `fast`, what the benchmark's `redis-ha-fast` ran before profiles existed: adverts and
 *    health checks every 100 ms, a 100 ms bound on the old master's Redis during a
 *    promotion. Local fault detection 2 × 100 + 100 = 300 ms stays under the peer's
 *    shortest master-down interval (300.8 ms); the stall threshold (300 ms) is lowered
 *    to that interval (`checkStallThreshold`).
 *  - `lan-fast`, for a dedicated, loss-free link: adverts every 20 ms (master-down
 *    60 + skew: 60.2 – 79.8 ms), health checks every 20 ms bounded by 20 ms (a hung Redis
 *    seen within 2 × 20 + 20 = 60 ms, under the peer's 60.2 ms), 50 ms for the old
 *    master's Redis during a promotion (a round trip on such a link is well under 1 ms),
 *    and a 60 ms stall threshold. A lost host is taken over in 73 + 50 = 123 ms at
 *    priority 90.
 */
const FASTER_PROFILES: Readonly<Record<Exclude<TimingProfile, 'default'>, ProfileValues>> = {
  fast: {
    'advert.interval_ms': 100,
    'health.interval_ms': 100,
    'health.timeout_ms': 100,
    'promotion.peer_timeout_ms': 100,
    'stall.threshold_ms': 300,
  },
  'lan-fast': {
    'advert.interval_ms': 20,
    'health.interval_ms': 20,
    'health.timeout_ms': 20,
    'promotion.peer_timeout_ms': 50,
    'stall.threshold_ms': 60,
  },
};

/** The schema's default of a profile key (the `default` profile). */
function schemaDefault(key: ProfileKey): number {
  const dot = key.indexOf('.');
  const value = schemaItems().get(key.slice(0, dot))?.get(key.slice(dot + 1))?.default;
  if (typeof value !== 'number') throw new Error(`profile key ${key} has no numeric default in the schema`);
  return value;
}

/** The values a profile gives its keys. */
export function profileValues(profile: TimingProfile): ProfileValues {
  if (profile !== 'default') return FASTER_PROFILES[profile];
  return Object.fromEntries(PROFILE_KEYS.map((key) => [key, schemaDefault(key)])) as Record<ProfileKey, number>;
}

/** Whether `value` names a profile. */
export function isTimingProfile(value: unknown): value is TimingProfile {
  return typeof value === 'string' && (TIMING_PROFILES as readonly string[]).includes(value);
}

export { TIMING_PROFILES, type TimingProfile };
