/**
 * `redis-ha check-config`: load the configuration exactly as `run` would (file, env
 * overrides, secrets) and either list every problem or summarise what the daemon will
 * do, like `keepalived -t`. Pure reporting: the CLI prints the lines and picks the exit
 * status (0, or EXIT_CONFIG = 78). Secrets are never shown, only whether they are set.
 */
import { ConfigError } from '../errors.js';
import { isMulticastAddress } from '../net/address.js';
import { loadConfig } from './load.js';
import type { Config, RedisEndpoint } from './types.js';

/** What `check-config` reports. */
export type CheckResult =
  | { readonly ok: true; readonly config: Config; readonly lines: string[] }
  | { readonly ok: false; readonly problems: string[] };

/**
 * Loads and validates the configuration at `path`. Configuration problems come back
 * as `{ ok: false }`; anything else thrown is a bug and propagates.
 */
export function checkConfig(path: string, env: NodeJS.ProcessEnv = process.env): CheckResult {
  let config: Config;
  try {
    config = loadConfig(path, env);
  } catch (error) {
    if (error instanceof ConfigError) return { ok: false, problems: [...error.problems] };
    throw error;
  }
  return { ok: true, config, lines: summarise(config) };
}

function onOff(value: boolean): string {
  return value ? 'on' : 'off';
}

function redisLine(label: string, redis: RedisEndpoint, passwordNote: string): string {
  const user = redis.username === null ? 'default user' : `user ${redis.username}`;
  const tls = redis.tls ? (redis.tlsInsecure ? 'TLS without certificate check' : 'TLS') : 'no TLS';
  return `${label} ${redis.host}:${redis.port} (${user}, ${passwordNote}, ${tls})`;
}

/** One line per concern, in the order an operator reads a failover setup. */
export function summarise(config: Config): string[] {
  const { node, peer, vip, advert, health, redis, peerRedis } = config;
  const multicast = isMulticastAddress(peer.address);
  const [signing] = advert.keys;
  const peerPassword =
    peerRedis.password === null ? 'no password' : peerRedis.password === redis.password ? 'same password as local' : 'own password';
  return [
    `config ${config.source ?? '(built in code)'}: OK`,
    `node ${node.name} at ${node.address}, priority ${node.priority}, preempt ${onOff(node.preempt)}` +
      (node.preempt ? ` after ${node.preemptDelayMs} ms` : ''),
    `peer ${peer.address} (${multicast ? `multicast${advert.multicastInterface ? ` on ${advert.multicastInterface}` : ''}` : 'unicast'}), group ${config.group.id}`,
    `vip ${vip.address}/${vip.prefixLength} (IPv${vip.family}) on ${vip.interface}, ${vip.garpCount} ${vip.family === 4 ? 'gratuitous ARPs' : 'unsolicited NAs'} ${vip.garpIntervalMs} ms apart, ` +
      (vip.garpRefreshMs > 0 ? `refreshed every ${vip.garpRefreshMs} ms` : 'no refresh'),
    `advert every ${advert.intervalMs} ms on UDP port ${advert.port}, ${advert.keys.length} key(s), key ${signing?.id ?? '?'} signs`,
    `health check every ${health.intervalMs} ms, timeout ${health.timeoutMs} ms, FAULT after ${health.fall} failure(s), back after ${health.rise} success(es)`,
    redisLine('redis', redis, redis.password === null ? 'no password' : 'password set'),
    redisLine('peer redis', peerRedis, peerPassword),
    `promotion: wait for sync ${onOff(config.promotion.waitForSync)} (at most ${config.promotion.maxSyncWaitMs} ms), ` +
      `peer timeout ${config.promotion.peerTimeoutMs} ms, delays ${config.promotion.preDelayMs}/${config.promotion.syncDelayMs} ms; ` +
      `demotion delay ${config.demotion.delayMs} ms; reconcile every ${config.reconcile.intervalMs} ms`,
    `audit log ${config.audit.path}, state ${config.state.path}, log level ${config.log.level}`,
  ];
}
