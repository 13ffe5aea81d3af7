/**
 * `redis-ha release-vip`: removes the VIP from this host, whatever state the daemon
 * left it in. The systemd unit runs it as ExecStopPost, so a daemon that was SIGKILLed,
 * crashed or hit its watchdog never leaves the VIP behind (the peer takes over by its
 * master-down timer, and two hosts must not answer for the address meanwhile).
 * Idempotent. One exception: right after a restart in place (SIGUSR2) the daemon has
 * left a fresh marker, and the VIP is kept for the next process to adopt.
 *
 * Exit status: 0 (removed, not present, or kept for a restart in place), 1 when `ip`
 * failed, 78 for a configuration error.
 */
import { readFile, unlink } from 'node:fs/promises';
import { LinuxVip } from '../adapters/vip.js';
import { refusePortOf } from '../config/derived.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { markerFresh, restartMarkerPath } from '../daemon/restart-marker.js';
import { createLogger } from '../daemon/logger.js';
import { ConfigError, errorMessage, EXIT_CONFIG } from '../errors.js';

export async function releaseVipCommand(configPath: string): Promise<number> {
  let config: Config;
  try {
    config = loadConfig(configPath);
  } catch (error) {
    process.stderr.write(`redis-ha: ${errorMessage(error)}\n`);
    return error instanceof ConfigError ? error.exitCode : EXIT_CONFIG;
  }
  const vipText = `${config.vip.address}/${config.vip.prefixLength} on ${config.vip.interface}`;
  const marker = restartMarkerPath(config);
  const text = await readFile(marker, 'utf8').catch(() => null);
  if (text !== null) {
    await unlink(marker).catch(() => undefined);
    if (markerFresh(text, Date.now())) {
      process.stdout.write(`redis-ha: restart in place: VIP ${vipText} kept for the next process\n`);
      return 0;
    }
  }
  const vip = new LinuxVip({ ...config.vip, logger: createLogger('warn', process.stderr), refusePort: refusePortOf(config) });
  try {
    const r = await vip.release();
    // A daemon that died while holding the VIP (vip.fault_hold_ms) may have left its refusal.
    await vip.clearRefusal();
    process.stdout.write(`redis-ha: VIP ${vipText} ${r.changed ? 'removed' : 'not present'}\n`);
    return 0;
  } catch (error) {
    process.stderr.write(`redis-ha: could not remove the VIP ${vipText}: ${errorMessage(error)}\n`);
    return 1;
  } finally {
    vip.stop();
  }
}
