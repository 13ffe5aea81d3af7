/**
 * Start-up checks of `redis-ha run`, before any loop turns: the timing invariants (a
 * configuration that could fail over spuriously is refused, exit 78), whether the local
 * or the peer's Redis is a Redis Cluster node (refused, exit 78, before anything is
 * changed: issue 14; a Redis not answering yet is only noted), the tools the VIP
 * needs, the boot time (persisted, so it grows across restarts even if the wall clock
 * steps back: with the advert sequence it is the anti-replay pair), the VIP interface's
 * `arp_announce`, and whether the local Redis accepts connections on the VIP.
 *
 * Nothing here decides a role or touches the VIP: what the daemon finds (a VIP left by a
 * crash or a restart in place, the local Redis's role) goes to the core as the `started`
 * event and the first health check, and the core decides.
 */
import { ensureArpAnnounce } from '../adapters/link.js';
import { clusterRefusalLines, RedisControl } from '../adapters/redis/index.js';
import { loadState, saveState, type PersistedState } from '../adapters/state-file.js';
import { faultTimesOf, timingReportOf } from '../config/derived.js';
import { quorumMode } from '../core/timing.js';
import type { Config } from '../config/types.js';
import { EXIT_CONFIG, FatalError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Refuses timing settings that break the invariants; logs the warnings and the computed takeover times. */
export function checkTiming(config: Config, logger: Logger): void {
  const report = timingReportOf(config);
  for (const w of report.warnings) logger.warn({ warning: w }, 'timing');
  if (report.errors.length > 0) {
    throw new FatalError('TIMING_INVALID', `timing invariants violated:\n  ${report.errors.join('\n  ')}`, EXIT_CONFIG);
  }
  logger.info(startupTimesFields(config, report.estimate), 'worst-case detection and takeover times');
}

/**
 * Refuses to start (exit 78) when the local or the peer's Redis is a Redis Cluster node,
 * saying what was found, why and what to use instead; logs a server whose mode cannot be
 * read (warning) and one that does not answer yet (the health check and the takeover look
 * again later). Runs before anything changes: no VIP, no Redis command, no state file.
 */
export async function checkClusterMode(config: Pick<Config, 'redis' | 'peerRedis' | 'health' | 'promotion'>, logger: Logger): Promise<void> {
  const verdict = await RedisControl.clusterModes({ local: config.redis, peer: config.peerRedis, health: config.health, promotion: config.promotion });
  if (verdict.refusals.length > 0) {
    throw new FatalError('REDIS_CLUSTER_NODE', `refusing to start:\n  ${clusterRefusalLines(verdict.refusals).join('\n  ')}`, EXIT_CONFIG);
  }
  for (const warning of verdict.warnings) logger.warn({ warning }, 'Redis cluster mode unknown');
  for (const note of verdict.notes) logger.info({ note }, 'Redis cluster mode not checked yet');
  for (const found of verdict.standalone) logger.debug({ found }, 'Redis cluster mode');
}

/**
 * The fields of the start-up line: the profile and what overrides it, the quorum mode,
 * and per fault when it is noticed and how long writes may be unavailable (`null`: until
 * healed or repaired), from the same functions `check-config` prints; `worstCaseTakeoverMs`
 * is this node's own estimate as the backup taking over (`takeoverEstimate`).
 */
export function startupTimesFields(config: Config, estimate: object): Record<string, unknown> {
  const round = (ms: number | null): number | null => (ms === null ? null : Math.round(ms));
  return {
    profile: config.timing.profile,
    overrides: config.timing.overrides,
    quorumMode: quorumMode(config.quorum.backend, config.quorum.prefer),
    faults: Object.fromEntries(
      faultTimesOf(config).map((row) => [row.fault, { detectMs: round(row.detectMs), writesUnavailableMs: round(row.writesUnavailableMs) }]),
    ),
    stallThresholdMs: config.stall.thresholdMs,
    worstCaseTakeoverMs: roundAll(estimate),
  };
}

/** Loads the persisted state and records this start's boot time (always above the last one). */
export async function recordBoot(config: Config): Promise<PersistedState> {
  const persisted = await loadState(config.state.path);
  const bootTimeMs = Math.max(Date.now(), persisted.bootTimeMs + 1);
  const saved: PersistedState = { ...persisted, bootTimeMs: bootTimeMs };
  await saveState(config.state.path, saved);
  return saved;
}

/** Host settings the VIP relies on; warnings only (the daemon still runs). */
export async function prepareHost(config: Config, bindWarning: () => Promise<string | null>, logger: Logger): Promise<void> {
  if (config.vip.family === 4) {
    const arp = await ensureArpAnnounce(config.vip.interface);
    if (arp.changed) logger.info({ interface: config.vip.interface }, 'set arp_announce=2 so host ARP never announces the VIP');
    if (arp.warning) logger.warn({ warning: arp.warning }, 'arp_announce');
  }
  const warning = await bindWarning();
  if (warning) logger.warn({ warning }, 'local Redis may refuse connections on the VIP');
}

function roundAll(o: object): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(Number(v))]));
}
