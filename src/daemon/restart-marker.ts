/**
 * The restart-in-place marker: SIGUSR2 makes the daemon exit leaving Redis and the VIP
 * as they are, for the next process to adopt. Under systemd the unit's ExecStopPost
 * (`redis-ha release-vip`) runs after every exit to make sure a dead daemon never
 * leaves the VIP behind; the marker, written just before such a planned exit next to
 * the control socket (systemd's RuntimeDirectory, preserved across restarts), tells it
 * to keep the VIP that one time. It is consumed when read and ignored when stale.
 */
import { dirname, join } from 'node:path';
import type { Config } from '../config/types.js';

/** A marker older than this is left over from an earlier exit and is not honoured. */
export const RESTART_MARKER_MAX_AGE_MS = 60_000;

export function restartMarkerPath(config: Pick<Config, 'control'>): string {
  return join(dirname(config.control.socket), 'restart-in-place');
}

/** Whether marker text written at `writtenAtMs` still stands at `nowMs`. */
export function markerFresh(text: string, nowMs: number): boolean {
  const written = Number(text.trim());
  return Number.isFinite(written) && nowMs - written >= 0 && nowMs - written <= RESTART_MARKER_MAX_AGE_MS;
}
