/**
 * `redis-ha check-config`: load the configuration exactly as `run` would (file, env
 * overrides, secrets) and either list every problem or summarise what the daemon will
 * do, like `keepalived -t`. Pure reporting: the CLI prints the lines and picks the exit
 * status (0, or EXIT_CONFIG = 78). Secrets are never shown, only whether they are set.
 */
import { leaderKeys } from '../adapters/quorum/transactions.js';
import { AuditKeyError, readAuditKey } from '../audit/key.js';
import {
  OUTAGE_FAULT_TEXT,
  quorumFenceLeadMs,
  quorumMode,
  worstCaseOutages,
  type WorstCaseOutage,
} from '../core/timing.js';
import { ConfigError, errorMessage } from '../errors.js';
import { addressBytes, isMulticastAddress, sameAddress } from '../net/address.js';
import { quorumTimingOf, timingOf } from './derived.js';
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
  // The daemon reads the audit key when it opens the log; refuse what it would refuse.
  if (config.audit.keyFile !== '') {
    try {
      readAuditKey(config.audit.keyFile, { what: 'audit.key_file', requirePrivate: true, env });
    } catch (error) {
      if (error instanceof AuditKeyError) return { ok: false, problems: [error.message] };
      throw error;
    }
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
      (vip.garpRefreshMs > 0 ? `refreshed every ${vip.garpRefreshMs} ms` : 'no refresh') +
      (vip.faultHoldMs > 0 ? `; kept refusing connections on port ${redis.port} for at most ${vip.faultHoldMs} ms when the master's Redis is gone` : '; released at once when the master\'s Redis is gone'),
    timingProfileLine(config),
    `advert every ${advert.intervalMs} ms on UDP port ${advert.port}, ${advert.keys.length} key(s), key ${signing?.id ?? '?'} signs`,
    `health check every ${health.intervalMs} ms, timeout ${health.timeoutMs} ms, FAULT after ${health.fall} failure(s), back after ${health.rise} success(es)`,
    redisLine('redis', redis, redis.password === null ? 'no password' : 'password set'),
    redisLine('peer redis', peerRedis, peerPassword),
    `promotion: wait for sync ${onOff(config.promotion.waitForSync)} (at most ${config.promotion.maxSyncWaitMs} ms), ` +
      `peer timeout ${config.promotion.peerTimeoutMs} ms, delays ${config.promotion.preDelayMs}/${config.promotion.syncDelayMs} ms, ` +
      `no automatic takeover by a replica more than ${config.promotion.maxLagBytes} bytes behind; ` +
      `demotion delay ${config.demotion.delayMs} ms; reconcile every ${config.reconcile.intervalMs} ms`,
    `audit log ${config.audit.path} (${config.audit.keyFile === '' ? 'unkeyed chain' : `chain keyed by ${config.audit.keyFile}`}), state ${config.state.path}, log level ${config.log.level}`,
    quorumLine(config),
    ...outageLines(config),
  ];
}

/** The timing profile in force and the keys set over it (`profiles.ts`). */
export function timingProfileLine(config: Config): string {
  const { profile, overrides } = config.timing;
  const over = overrides.length === 0 ? 'no key set over it' : `set over it: ${overrides.join(', ')}`;
  return `timing profile ${profile} (${over}); stall threshold ${config.stall.thresholdMs} ms`;
}

/** The quorum mode in force, in one line: etcd with how it is reached and timed, or what `prefer` gives up. */
export function quorumLine(config: Config): string {
  const { quorum } = config;
  if (quorum.backend === 'none') {
    return quorum.prefer === 'safety'
      ? 'quorum: none, prefer safety: an isolated master refuses writes, writes stop while the two hosts cannot see each other, and a silent master is replaced only through its own Redis'
      : 'quorum: none, prefer availability: a partition can leave two masters and lose the writes of one side';
  }
  const { etcd } = quorum;
  const https = etcd.endpoints[0]?.startsWith('https://') === true;
  const tls = https ? (etcd.certFile === '' ? 'TLS' : 'TLS with client certificate') : 'no TLS';
  const user = etcd.username === null ? 'no user' : `user ${etcd.username}`;
  const key = leaderKeys(etcd.prefix, etcd.clusterName).leader.toString();
  const count = `${etcd.endpoints.length} endpoint${etcd.endpoints.length === 1 ? '' : 's'}`;
  return (
    `quorum: etcd at ${etcd.endpoints.join(', ')} (${count}, ${tls}, ${user}), key ${key}, ` +
    `lease ${etcd.leaseTtlS} s renewed every ${etcd.renewIntervalMs} ms, calls time out after ${etcd.callTimeoutMs} ms, ` +
    `fence lead ${quorumFenceLeadMs(quorumTimingOf(config))} ms`
  );
}

/** One line per fault: its worst case in the quorum mode in force (`worstCaseOutages`). */
export function outageLines(config: Config): string[] {
  const mode = quorumMode(config.quorum.backend, config.quorum.prefer);
  return worstCaseOutages(timingOf(config), quorumTimingOf(config))
    .filter((row) => row.mode === mode && row.applicable)
    .map(outageLine);
}

function outageLine(row: WorstCaseOutage): string {
  const writes =
    row.writesUnavailableMs === null
      ? 'writes unavailable until it is healed or repaired'
      : row.writesUnavailableMs === 0
        ? 'writes stay available'
        : `writes unavailable up to ${Math.round(row.writesUnavailableMs)} ms`;
  return (
    `worst case if ${OUTAGE_FAULT_TEXT[row.fault]}: ${writes}; acknowledged writes lost: ${row.ackedWritesLost}; ` +
    `two writable masters: ${row.twoWritableMasters ? 'yes' : 'no'} — ${row.note}`
  );
}

/** What running `ip` gave: its exit status and output. */
export interface IpOutput {
  readonly code: number;
  readonly stdout: string;
}

/** Runs `ip` with these arguments (the CLI passes `src/adapters/exec.ts`; tests a fake). */
export type IpCommand = (args: readonly string[]) => Promise<IpOutput>;

/** One address of an interface, as `ip -j addr` lists it. */
interface InterfaceAddress {
  readonly family?: unknown;
  readonly local?: unknown;
  readonly prefixlen?: unknown;
}

/** Whether the first `prefixLength` bits of two addresses of one family agree. */
function samePrefix(a: readonly number[], b: readonly number[], prefixLength: number): boolean {
  if (a.length !== b.length) return false;
  for (let bit = 0; bit < prefixLength; bit++) {
    const mask = 0x80 >> bit % 8;
    if (((a[bit >> 3] ?? 0) & mask) !== ((b[bit >> 3] ?? 0) & mask)) return false;
  }
  return true;
}

/**
 * Whether the VIP lies in one of the subnets of its interface, when that interface
 * exists here: lines for `check-config` to print, `warning: ...` or `note: ...`.
 *
 * A warning, not a refusal: a VIP may sit in a subnet of its own on purpose (a /32
 * routed to the pair by the upstream router, or an interface that gets its address
 * later), but most often it is a typo in the address or the interface, and then
 * clients on the interface's subnet never reach it. An interface that does not exist
 * at check time (an image being built, a VLAN created later) is a note, not a problem.
 */
export async function vipSubnetNotes(config: Config, ip: IpCommand): Promise<string[]> {
  const { vip } = config;
  let result: IpOutput;
  try {
    result = await ip(['-j', 'addr', 'show', 'dev', vip.interface]);
  } catch (error) {
    return [`note: could not list the addresses of ${vip.interface} (${errorMessage(error)}): the VIP's subnet was not checked`];
  }
  if (result.code !== 0) {
    return [`note: interface ${vip.interface} does not exist here (yet): the VIP's subnet was not checked`];
  }
  let addresses: InterfaceAddress[];
  try {
    const links = JSON.parse(result.stdout) as { addr_info?: InterfaceAddress[] }[];
    addresses = links.flatMap((link) => link.addr_info ?? []);
  } catch {
    return [`note: ip -j addr show dev ${vip.interface} printed no JSON: the VIP's subnet was not checked`];
  }
  const family = vip.family === 4 ? 'inet' : 'inet6';
  const vipBytes = addressBytes(vip.address) ?? [];
  const subnets = addresses.filter(
    (a): a is { family: string; local: string; prefixlen: number } =>
      a.family === family &&
      typeof a.local === 'string' &&
      typeof a.prefixlen === 'number' &&
      // The VIP itself, while this node holds it, is no evidence.
      !sameAddress(a.local, vip.address) &&
      // IPv6 link-local addresses are on every link.
      !(vip.family === 6 && a.local.toLowerCase().startsWith('fe80:')),
  );
  if (subnets.some((a) => samePrefix(addressBytes(a.local) ?? [], vipBytes, a.prefixlen))) return [];
  const listed = subnets.map((a) => `${a.local}/${a.prefixlen}`).join(', ');
  return [
    `warning: vip.address ${vip.address}/${vip.prefixLength} lies in none of the IPv${vip.family} subnets of ${vip.interface}` +
      ` (${listed === '' ? 'it has none' : listed}): check the address and the interface; clients on that link reach the VIP` +
      ' only if a router sends them to it',
  ];
}
