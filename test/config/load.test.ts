/**
 * The configuration loader: the shipped example loads, environment overrides apply,
 * secrets come from files or the environment, and every kind of bad input yields a
 * problem naming the key, the expected form and the value given — all of them at once.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { buildConfig, loadConfig } from '../../src/config/load.js';
import { ConfigError, EXIT_CONFIG } from '../../src/errors.js';

const EXAMPLE = fileURLToPath(new URL('../../etc/redis-ha.example.yaml', import.meta.url));
const SECRET = 'an-advert-secret-of-32-characters';
const dir = mkdtempSync(join(tmpdir(), 'redis-ha-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fileCount = 0;
/** Writes `text` to a fresh file in the temp dir with `mode`; returns its path. */
function writeTemp(name: string, text: string, mode = 0o600): string {
  const path = join(dir, `${fileCount++}-${name}`);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}

const KEY_FILE = writeTemp('advert.key', `# test keys\n1 ${SECRET}\n\n2 second-secret-0123456789\n`);
const PASSWORD_FILE = writeTemp('redis.password', 'local-redis-password\n');

/** The smallest valid configuration: the five required keys. */
const BASE = {
  node: { name: 'redis-a', address: '192.0.2.11' },
  peer: { address: '192.0.2.12' },
  vip: { address: '192.0.2.100/24', interface: 'eth0' },
} as const;
/** An environment that satisfies the advert key without touching /etc. */
const ENV: NodeJS.ProcessEnv = { REDIS_HA_ADVERT_KEY: SECRET };

const DELETE = Symbol('delete');
type Patch = Record<string, unknown>;

/** BASE with `patch` applied: `{ section: { key: value } }`, `DELETE` removes a key, a non-object replaces a section. */
function withPatch(patch: Patch): Record<string, unknown> {
  const result: Record<string, unknown> = structuredClone(BASE) as unknown as Record<string, unknown>;
  for (const [section, body] of Object.entries(patch)) {
    if (body === DELETE) {
      delete result[section];
    } else if (typeof body === 'object' && body !== null && !Array.isArray(body)) {
      const target = { ...((result[section] as Record<string, unknown> | undefined) ?? {}) };
      for (const [key, value] of Object.entries(body)) {
        if (value === DELETE) delete target[key];
        else target[key] = value;
      }
      result[section] = target;
    } else {
      result[section] = body;
    }
  }
  return result;
}

/** The problems a ConfigError carries; fails the test if nothing (or something else) is thrown. */
function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return [...error.problems];
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('the example file', () => {
  const env = { REDIS_HA_ADVERT_KEY_FILE: KEY_FILE, REDIS_HA_REDIS_PASSWORD_FILE: PASSWORD_FILE };

  it('loads, with the key and password files swapped for temp ones', () => {
    const config = loadConfig(EXAMPLE, env);
    expect(config.source).toBe(EXAMPLE);
    expect(config.node).toEqual({ name: 'redis-a', address: '192.0.2.11', priority: 150, preempt: false, preemptDelayMs: 0 });
    expect(config.peer.address).toBe('192.0.2.12');
    expect(config.vip).toEqual({
      address: '192.0.2.100',
      prefixLength: 24,
      family: 4,
      interface: 'eth0',
      garpCount: 3,
      garpIntervalMs: 200,
      garpRefreshMs: 10_000,
      faultHoldMs: 150,
    });
    expect(config.advert.intervalMs).toBe(1000);
    expect(config.advert.keyFile).toBe(KEY_FILE);
    expect(config.advert.keys.map((key) => key.id)).toEqual([1, 2]);
    expect(config.advert.keys[0]?.secret.toString('utf8')).toBe(SECRET);
    expect(config.advert.multicastInterface).toBeNull();
    expect(config.redis).toEqual({
      host: '127.0.0.1',
      port: 6379,
      password: 'local-redis-password',
      username: null,
      tls: false,
      tlsInsecure: false,
    });
    expect(config.peerRedis).toEqual({ ...config.redis, host: '192.0.2.12' });
    expect(config.health).toEqual({ intervalMs: 500, timeoutMs: 300, fall: 2, rise: 2 });
    expect(config.log.level).toBe('info');
  });

  it('refuses to load as shipped when the key file is missing, saying which file', () => {
    const problems = problemsOf(() =>
      loadConfig(EXAMPLE, { REDIS_HA_ADVERT_KEY_FILE: join(dir, 'absent.key'), REDIS_HA_REDIS_PASSWORD_FILE: PASSWORD_FILE }),
    );
    expect(problems).toEqual([`advert.key_file: expected a readable key file, got "${join(dir, 'absent.key')}" (no such file)`]);
  });
});

describe('defaults and overrides', () => {
  it('fills every default from the schema', () => {
    const config = buildConfig(BASE, ENV);
    expect(config.source).toBeNull();
    expect(config.group.id).toBe(51);
    expect(config.advert).toMatchObject({ port: 5400, intervalMs: 1000, keyFile: '/etc/redis-ha/advert.key' });
    expect(config.advert.keys).toHaveLength(1);
    expect(config.redis.password).toBeNull();
    expect(config.peerRedis).toMatchObject({ host: '192.0.2.12', port: 6379, password: null });
    expect(config.promotion).toEqual({ waitForSync: true, maxSyncWaitMs: 5000, peerTimeoutMs: 100, preDelayMs: 0, syncDelayMs: 0, maxLagBytes: 1024 * 1024, recoveryBlockMs: 60_000 });
    expect(config.demotion.delayMs).toBe(0);
    expect(config.reconcile.intervalMs).toBe(2000);
    expect(config.audit.path).toBe('/var/log/redis-ha/audit.jsonl');
    expect(config.state.path).toBe('/var/lib/redis-ha/state.json');
  });

  it('treats an empty value as the default', () => {
    expect(buildConfig(withPatch({ node: { priority: null }, advert: null }), ENV).node.priority).toBe(100);
  });

  it('applies REDIS_HA_<SECTION>_<KEY> over the file, converting types', () => {
    const config = buildConfig(withPatch({ advert: { interval_ms: 1000 } }), {
      ...ENV,
      REDIS_HA_ADVERT_INTERVAL_MS: '100',
      REDIS_HA_HEALTH_INTERVAL_MS: '100',
      REDIS_HA_HEALTH_TIMEOUT_MS: '100',
      REDIS_HA_NODE_PREEMPT: 'true',
      REDIS_HA_PEER_REDIS_HOST: 'redis-b.example.net',
      REDIS_HA_PEER_REDIS_PORT: '6380',
      REDIS_HA_VIP_INTERFACE: 'bond0',
      REDIS_HA_LOG_LEVEL: 'debug',
      REDIS_HA_REDIS_TLS: 'yes',
    });
    expect(config.advert.intervalMs).toBe(100);
    expect(config.health).toMatchObject({ intervalMs: 100, timeoutMs: 100 });
    expect(config.node.preempt).toBe(true);
    expect(config.peerRedis).toMatchObject({ host: 'redis-b.example.net', port: 6380 });
    expect(config.vip.interface).toBe('bond0');
    expect(config.log.level).toBe('debug');
    expect(config.redis.tls).toBe(true);
  });

  it('can supply a required key from the environment', () => {
    const config = buildConfig(withPatch({ node: { name: DELETE } }), { ...ENV, REDIS_HA_NODE_NAME: 'redis-b' });
    expect(config.node.name).toBe('redis-b');
  });

  it('accepts IPv6 and canonicalises addresses', () => {
    const config = buildConfig(
      { node: { name: 'a', address: 'FD00:0:0::11' }, peer: { address: 'fd00::12' }, vip: { address: 'fd00::0100/64', interface: 'eth0' } },
      ENV,
    );
    expect(config.node.address).toBe('fd00::11');
    expect(config.vip).toMatchObject({ address: 'fd00::100', prefixLength: 64, family: 6 });
  });

  it('spells addresses as ip addr does: IPv4-mapped in mixed notation, one zero group kept, the zone id as written', () => {
    const config = buildConfig(
      {
        node: { name: 'a', address: '::FFFF:192.0.2.11' },
        peer: { address: '::ffff:c000:020c' },
        vip: { address: '1:0:2:3:4:5:6:7/64', interface: 'eth0' },
        redis: { host: 'FE80::0001%eth0' },
      },
      ENV,
    );
    expect(config.node.address).toBe('::ffff:192.0.2.11');
    expect(config.peer.address).toBe('::ffff:192.0.2.12');
    expect(config.peerRedis.host).toBe('::ffff:192.0.2.12');
    expect(config.vip).toMatchObject({ address: '1:0:2:3:4:5:6:7', prefixLength: 64, family: 6 });
    expect(config.redis.host).toBe('fe80::1%eth0');
  });

  it('takes only ff00::/8 for IPv6 multicast: ff::12 is the unicast 00ff::12', () => {
    const config = buildConfig(
      { node: { name: 'a', address: 'ff::11' }, peer: { address: 'ff::12' }, vip: { address: 'ff::100/64', interface: 'eth0' } },
      ENV,
    );
    expect(config.peer.address).toBe('ff::12');
    expect(config.peerRedis.host).toBe('ff::12');
    expect(problemsOf(() => buildConfig(withPatch({ node: { address: 'ff02::11' }, peer: { address: 'ff02::12' } }), ENV))).toEqual([
      'node.address: expected an IPv4 or IPv6 address such as 192.0.2.11 (no prefix length), got "ff02::11" (a multicast address)',
      'peer_redis.host: expected the peer\'s Redis host (required when peer.address is the multicast group ff02::12), got ""',
    ]);
  });

  it('accepts a multicast peer when peer_redis.host is set', () => {
    const config = buildConfig(
      withPatch({ peer: { address: '224.0.0.18' }, peer_redis: { host: '192.0.2.12' }, advert: { multicast_interface: 'eth1' } }),
      ENV,
    );
    expect(config.peer.address).toBe('224.0.0.18');
    expect(config.peerRedis.host).toBe('192.0.2.12');
    expect(config.advert.multicastInterface).toBe('eth1');
  });

  it('loads JSON by extension', () => {
    const path = writeTemp('redis-ha.json', JSON.stringify(BASE));
    expect(loadConfig(path, ENV).node.name).toBe('redis-a');
  });

  it('returns a deep-frozen config', () => {
    const config = buildConfig(BASE, ENV);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.node)).toBe(true);
    expect(Object.isFrozen(config.redis)).toBe(true);
    expect(Object.isFrozen(config.advert.keys)).toBe(true);
    expect(Object.isFrozen(config.advert.keys[0])).toBe(true);
    expect(() => {
      (config.node as { priority: number }).priority = 200;
    }).toThrow(TypeError);
  });
});

describe('secrets', () => {
  it('reads the Redis password from password_file, without the trailing newline', () => {
    const config = buildConfig(withPatch({ redis: { password_file: PASSWORD_FILE } }), ENV);
    expect(config.redis.password).toBe('local-redis-password');
    expect(config.peerRedis.password).toBe('local-redis-password');
  });

  it('prefers REDIS_HA_REDIS_PASSWORD over the file, which is then not read', () => {
    const config = buildConfig(withPatch({ redis: { password_file: join(dir, 'absent') } }), {
      ...ENV,
      REDIS_HA_REDIS_PASSWORD: 'from-env',
    });
    expect(config.redis.password).toBe('from-env');
  });

  it("reads the peer's password separately when given, and the ACL user defaults to the local one", () => {
    const peerFile = writeTemp('peer.password', 'peer-password\n');
    const fromFile = buildConfig(withPatch({ redis: { username: 'ha' }, peer_redis: { password_file: peerFile } }), {
      ...ENV,
      REDIS_HA_REDIS_PASSWORD: 'local',
    });
    expect(fromFile.redis).toMatchObject({ password: 'local', username: 'ha' });
    expect(fromFile.peerRedis).toMatchObject({ password: 'peer-password', username: 'ha' });
    const fromEnv = buildConfig(BASE, { ...ENV, REDIS_HA_PEER_REDIS_PASSWORD: 'peer-env' });
    expect(fromEnv.redis.password).toBeNull();
    expect(fromEnv.peerRedis.password).toBe('peer-env');
  });

  it('prefers REDIS_HA_ADVERT_KEY (key id 1) over the key file', () => {
    const secret = '9f86d081884c7d659a2feaa0c55ad015';
    const config = buildConfig(withPatch({ advert: { key_file: KEY_FILE } }), { REDIS_HA_ADVERT_KEY: secret });
    expect(config.advert.keys).toHaveLength(1);
    expect(config.advert.keys[0]?.id).toBe(1);
    expect(config.advert.keys[0]?.secret.toString()).toBe(secret);
  });

  it('reads the key file when REDIS_HA_ADVERT_KEY is unset or empty', () => {
    const config = buildConfig(withPatch({ advert: { key_file: KEY_FILE } }), { REDIS_HA_ADVERT_KEY: '' });
    expect(config.advert.keys.map((key) => key.id)).toEqual([1, 2]);
  });
});

/** One bad input and the problem it must produce (exactly, or matching). */
interface BadCase {
  readonly name: string;
  readonly patch: Patch;
  readonly env?: NodeJS.ProcessEnv;
  readonly problem: string | RegExp;
}

const BAD_CASES: readonly BadCase[] = [
  {
    name: 'advert interval below the minimum',
    patch: { advert: { interval_ms: 19 } },
    problem: 'advert.interval_ms: expected an integer number of milliseconds from 20 to 60000, got 19',
  },
  {
    name: 'advert interval with a unit',
    patch: { advert: { interval_ms: '1s' } },
    problem: 'advert.interval_ms: expected an integer number of milliseconds from 20 to 60000, got "1s"',
  },
  {
    name: 'advert interval from the environment',
    patch: {},
    env: { REDIS_HA_ADVERT_INTERVAL_MS: '10' },
    problem: 'advert.interval_ms: expected an integer number of milliseconds from 20 to 60000, got "10" (from REDIS_HA_ADVERT_INTERVAL_MS)',
  },
  {
    name: 'fractional interval',
    patch: { health: { interval_ms: 100.5 } },
    problem: 'health.interval_ms: expected an integer number of milliseconds from 20 to 60000, got 100.5',
  },
  { name: 'priority 0', patch: { node: { priority: 0 } }, problem: 'node.priority: expected an integer from 1 to 254, got 0' },
  { name: 'priority 255', patch: { node: { priority: 255 } }, problem: 'node.priority: expected an integer from 1 to 254, got 255' },
  { name: 'group id 0', patch: { group: { id: 0 } }, problem: 'group.id: expected an integer from 1 to 255, got 0' },
  { name: 'port 70000', patch: { redis: { port: 70000 } }, problem: 'redis.port: expected a port number from 1 to 65535, got 70000' },
  { name: 'fall 0', patch: { health: { fall: 0 } }, problem: 'health.fall: expected an integer from 1 to 100, got 0' },
  {
    name: 'VIP without prefix',
    patch: { vip: { address: '192.0.2.100' } },
    problem:
      'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "192.0.2.100" (the prefix length is missing)',
  },
  {
    name: 'VIP prefix too long',
    patch: { vip: { address: '192.0.2.100/33' } },
    problem:
      'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "192.0.2.100/33" (the prefix length must be from 8 to 32 for IPv4)',
  },
  {
    name: 'VIP not an address',
    patch: { vip: { address: '192.0.2.300/24' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "192.0.2.300/24"',
  },
  {
    name: 'VIP is a multicast address',
    patch: { vip: { address: '239.1.1.1/24' } },
    problem: /^vip\.address: expected an address with its prefix length.*got "239\.1\.1\.1\/24" \(a multicast address\)$/,
  },
  {
    name: 'node address with a prefix',
    patch: { node: { address: '192.0.2.11/24' } },
    problem: 'node.address: expected an IPv4 or IPv6 address such as 192.0.2.11 (no prefix length), got "192.0.2.11/24"',
  },
  {
    name: 'VIP prefix /1',
    patch: { vip: { address: '192.0.2.100/1' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "192.0.2.100/1" (the prefix length must be from 8 to 32 for IPv4)',
  },
  {
    name: 'VIP prefix /0',
    patch: { vip: { address: '192.0.2.100/0' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "192.0.2.100/0" (the prefix length must be from 8 to 32 for IPv4)',
  },
  {
    name: 'IPv6 VIP prefix /8',
    patch: { node: { address: 'fd00::11' }, peer: { address: 'fd00::12' }, vip: { address: 'fd00::100/8' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "fd00::100/8" (the prefix length must be from 16 to 128 for IPv6)',
  },
  {
    name: 'loopback VIP',
    patch: { vip: { address: '127.0.0.5/8' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "127.0.0.5/8" (a loopback address)',
  },
  {
    name: 'IPv6 loopback VIP',
    patch: { node: { address: 'fd00::11' }, peer: { address: 'fd00::12' }, vip: { address: '::1/128' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "::1/128" (a loopback address)',
  },
  {
    name: 'unspecified VIP',
    patch: { vip: { address: '0.0.0.0/24' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "0.0.0.0/24" (the unspecified address)',
  },
  {
    name: 'multicast VIP',
    patch: { vip: { address: '224.0.0.18/24' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "224.0.0.18/24" (a multicast address)',
  },
  {
    name: 'IPv4-mapped VIP',
    patch: { node: { address: 'fd00::11' }, peer: { address: 'fd00::12' }, vip: { address: '::ffff:192.0.2.100/120' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "::ffff:192.0.2.100/120" (an IPv4-mapped address: write the IPv4 address)',
  },
  {
    name: 'VIP is the network address',
    patch: { vip: { address: '192.0.2.0/24' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "192.0.2.0/24" (the network address of its /24)',
  },
  {
    name: 'VIP is the broadcast address',
    patch: { vip: { address: '192.0.2.255/24' } },
    problem: 'vip.address: expected an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /8 to /32 for IPv4, /16 to /128 for IPv6), got "192.0.2.255/24" (the broadcast address of its /24)',
  },
  {
    name: 'interface name that ip reads as an option',
    patch: { vip: { interface: '-h' } },
    problem: 'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "-h" (it starts with "-", which ip would read as an option)',
  },
  {
    name: 'interface name of 16 bytes',
    patch: { vip: { interface: 'eth0123456789abc' } },
    problem: `vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "eth0123456789abc" (16 bytes, more than the kernel's 15)`,
  },
  {
    name: 'interface name of 15 characters but 16 bytes',
    patch: { vip: { interface: 'eth0123456789aé' } },
    problem: `vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "eth0123456789aé" (16 bytes, more than the kernel's 15)`,
  },
  {
    name: 'interface name with a control character',
    patch: { vip: { interface: 'eth\x070' } },
    problem: 'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "eth\\u00070" (it contains the control character U+0007)',
  },
  {
    name: 'interface name with DEL',
    patch: { vip: { interface: 'eth\x7f' } },
    problem: 'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "eth\\u007f" (it contains the control character U+007F)',
  },
  {
    name: 'interface name with a space',
    patch: { vip: { interface: 'eth 0' } },
    problem: 'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "eth 0" (only printable ASCII characters are accepted)',
  },
  {
    name: 'interface name with a slash',
    patch: { vip: { interface: 'eth/0' } },
    problem: 'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "eth/0"',
  },
  {
    name: 'interface name ..',
    patch: { vip: { interface: '..' } },
    problem: 'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got ".."',
  },
  {
    name: 'interface name with a zone separator',
    patch: { vip: { interface: 'eth0%1' } },
    problem: 'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "eth0%1"',
  },
  {
    name: 'multicast interface that ip reads as an option',
    patch: { advert: { multicast_interface: '--all' } },
    problem: 'advert.multicast_interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", or "", got "--all" (it starts with "-", which ip would read as an option)',
  },
  {
    name: 'node name with a bidi override',
    patch: { node: { name: 'redis-a\u202e' } },
    problem: 'node.name: expected a node name of 1 to 64 letters, digits, ".", "_" or "-" (starting with a letter or digit), got "redis-a\\u202e" (it contains the invisible format character U+202E)',
  },
  {
    name: 'node name with an escape',
    patch: { node: { name: 'redis\x1b[31m' } },
    problem: 'node.name: expected a node name of 1 to 64 letters, digits, ".", "_" or "-" (starting with a letter or digit), got "redis\\u001b[31m" (it contains the control character U+001B)',
  },
  {
    name: 'node name with a C1 control',
    patch: { node: { name: 'redis\u0085a' } },
    problem: 'node.name: expected a node name of 1 to 64 letters, digits, ".", "_" or "-" (starting with a letter or digit), got "redis\\u0085a" (it contains the control character U+0085)',
  },
  {
    name: 'node name with a zero-width joiner',
    patch: { node: { name: 'redis\u200da' } },
    problem: 'node.name: expected a node name of 1 to 64 letters, digits, ".", "_" or "-" (starting with a letter or digit), got "redis\\u200da" (it contains the invisible format character U+200D)',
  },
  {
    name: 'interface alias label',
    patch: { vip: { interface: 'eth0:1' } },
    problem: 'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got "eth0:1"',
  },
  {
    name: 'unknown key with a likely meaning',
    patch: { advert: { interval: 100 } },
    problem: 'advert.interval: unknown key, expected one of port, interval_ms, key_file, multicast_interface (did you mean interval_ms?)',
  },
  {
    name: 'camelCase key',
    patch: { health: { timeoutMs: 100 } },
    problem: 'health.timeoutMs: unknown key, expected one of interval_ms, timeout_ms, fall, rise (did you mean timeout_ms?)',
  },
  {
    name: 'unknown section',
    patch: { sentinel: { quorum: 2 } },
    problem: /^sentinel: unknown section, expected one of node, group, peer, timing, advert, .*, log$/,
  },
  {
    name: 'missing required key',
    patch: { vip: { interface: DELETE } },
    problem:
      'vip.interface: expected a network interface name of 1 to 15 printable ASCII characters without "/", ":", "%" or spaces, not starting with "-", got nothing (this key is required)',
  },
  {
    name: 'missing required section',
    patch: { peer: DELETE },
    problem: /^peer\.address: expected an IPv4 or IPv6 address .*, got nothing \(this key is required\)$/,
  },
  {
    name: 'empty required key from the environment',
    patch: {},
    env: { REDIS_HA_NODE_NAME: '' },
    problem: /^node\.name: expected a node name .*, got "" \(from REDIS_HA_NODE_NAME\)$/,
  },
  {
    name: 'password in the YAML',
    patch: { redis: { password: 'hunter2-hunter2' } },
    problem:
      'redis.password: expected no secrets in the configuration file (put it in the file named by redis.password_file, or the environment variable REDIS_HA_REDIS_PASSWORD), got a secret (not shown)',
  },
  {
    name: 'peer password in the YAML',
    patch: { peer_redis: { password: 'hunter2-hunter2' } },
    problem: /^peer_redis\.password: expected no secrets .*peer_redis\.password_file.*REDIS_HA_PEER_REDIS_PASSWORD.*got a secret \(not shown\)$/,
  },
  {
    name: 'section given as a scalar',
    patch: { health: 5 },
    problem: 'health: expected a mapping of keys (interval_ms, timeout_ms, fall, rise), got 5',
  },
  {
    name: 'mapping where a number goes',
    patch: { advert: { port: { number: 5400 } } },
    problem: 'advert.port: expected a port number from 1 to 65535, got a mapping',
  },
  {
    name: 'mistyped host address',
    patch: { redis: { host: '192.0.2.300' } },
    problem: 'redis.host: expected a host name or IP address, got "192.0.2.300"',
  },
  { name: 'bad boolean', patch: { node: { preempt: 'maybe' } }, problem: 'node.preempt: expected true or false, got "maybe"' },
  {
    name: 'bad log level',
    patch: { log: { level: 'verbose' } },
    problem: 'log.level: expected one of fatal, error, warn, info, debug, trace, got "verbose"',
  },
  {
    name: 'relative path',
    patch: { audit: { path: 'audit.jsonl' } },
    problem: 'audit.path: expected an absolute file path, got "audit.jsonl"',
  },
  {
    name: 'bad node name',
    patch: { node: { name: 'redis a' } },
    problem: /^node\.name: expected a node name of 1 to 64 letters.*, got "redis a"$/,
  },
  {
    name: 'peer is this node',
    patch: { peer: { address: '192.0.2.11' } },
    problem: `peer.address: expected the other node's address, got "192.0.2.11" (the same as node.address)`,
  },
  {
    name: 'peer of another family',
    patch: { peer: { address: 'fd00::12' } },
    problem: 'peer.address: expected an IPv4 address like node.address, got "fd00::12"',
  },
  {
    name: `VIP is a node's own address`,
    patch: { vip: { address: '192.0.2.12/24' } },
    problem: 'vip.address: expected an address no node owns, got "192.0.2.12/24" (it is peer.address)',
  },
  {
    name: 'VIP of another family',
    patch: { vip: { address: 'fd00::100/64' } },
    problem: 'vip.address: expected an IPv4 address like node.address, got "fd00::100/64"',
  },
  {
    name: 'health timeout longer than the interval',
    patch: { health: { interval_ms: 100, timeout_ms: 500 } },
    problem: 'health.timeout_ms: expected at most health.interval_ms (100), got 500',
  },
  {
    name: 'multicast peer without a Redis host',
    patch: { peer: { address: '224.0.0.18' } },
    problem: `peer_redis.host: expected the peer's Redis host (required when peer.address is the multicast group 224.0.0.18), got ""`,
  },
  {
    name: 'replicating from itself',
    patch: { peer_redis: { host: '127.0.0.1' } },
    problem: `peer_redis.host: expected the peer's Redis, got 127.0.0.1:6379 (this node's own Redis: it would replicate from itself)`,
  },
  {
    name: 'short advert key in the environment',
    patch: {},
    env: { REDIS_HA_ADVERT_KEY: 'short' },
    problem:
      'REDIS_HA_ADVERT_KEY: expected a secret of at least 128 bits (32 hex digits or 22 base64 characters, as "redis-ha keygen" writes) without spaces,' +
      ' got 5 base64 characters, about 30 bits (not shown)',
  },
  {
    name: 'advert key of 16 equal characters in the environment',
    patch: {},
    env: { REDIS_HA_ADVERT_KEY: 'x'.repeat(16) },
    problem:
      'REDIS_HA_ADVERT_KEY: expected a secret of at least 128 bits (32 hex digits or 22 base64 characters, as "redis-ha keygen" writes) without spaces,' +
      ' got one character repeated (not shown)',
  },
  {
    name: 'missing password file',
    patch: { redis: { password_file: '/nonexistent/redis.password' } },
    problem: 'redis.password_file: expected a readable file holding the Redis password, got "/nonexistent/redis.password" (no such file)',
  },
];

describe('bad input', () => {
  it.each(BAD_CASES)('$name', ({ patch, env, problem }) => {
    const problems = problemsOf(() => buildConfig(withPatch(patch), { ...ENV, ...env }));
    if (typeof problem === 'string') expect(problems).toContain(problem);
    else expect(problems.some((line) => problem.test(line)), problems.join('\n')).toBe(true);
    // One mistake, one problem: no cascade of follow-up complaints.
    expect(problems, problems.join('\n')).toHaveLength(1);
  });

  it('never shows a secret', () => {
    const problems = problemsOf(() =>
      buildConfig(withPatch({ redis: { password: 'hunter2-hunter2' } }), { REDIS_HA_ADVERT_KEY: 'tiny-secret' }),
    );
    expect(problems.join('\n')).not.toMatch(/hunter2|tiny-secret/);
  });

  it('reports every problem at once', () => {
    const error = (() => {
      try {
        buildConfig(
          withPatch({
            node: { priority: 300, name: DELETE },
            advert: { interval_ms: 10, intervall: 5 },
            vip: { address: 'nonsense' },
            redis: { password: 'x' },
          }),
          { ...ENV, REDIS_HA_HEALTH_FALL: '0' },
          '/etc/redis-ha/redis-ha.yaml',
        );
      } catch (caught) {
        return caught;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const configError = error as ConfigError;
    expect(configError.exitCode).toBe(EXIT_CONFIG);
    expect(configError.message).toMatch(/^invalid configuration in \/etc\/redis-ha\/redis-ha\.yaml:\n/);
    const keys = configError.problems.map((line) => line.slice(0, line.indexOf(':')));
    expect(keys.sort()).toEqual(
      ['advert.interval_ms', 'advert.intervall', 'health.fall', 'node.name', 'node.priority', 'redis.password', 'vip.address'].sort(),
    );
  });

  it('accepts exactly the advert intervals from 20 to 60000 ms (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1000, max: 100_000 }), (interval) => {
        const inRange = interval >= 20 && interval <= 60_000;
        try {
          expect(buildConfig(withPatch({ advert: { interval_ms: interval } }), ENV).advert.intervalMs).toBe(interval);
          return inRange;
        } catch (error) {
          return (
            !inRange &&
            error instanceof ConfigError &&
            error.problems.length === 1 &&
            error.problems[0] === `advert.interval_ms: expected an integer number of milliseconds from 20 to 60000, got ${interval}`
          );
        }
      }),
      { numRuns: 200 },
    );
  });
});

describe('file problems', () => {
  it('reports a missing configuration file', () => {
    const path = join(dir, 'nope.yaml');
    expect(problemsOf(() => loadConfig(path, ENV))).toEqual([
      `${path}: expected a readable configuration file, got an error (no such file)`,
    ]);
  });

  it('reports a directory given as the configuration file', () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path);
    expect(problemsOf(() => loadConfig(path, ENV))).toEqual([
      `${path}: expected a readable configuration file, got an error (it is a directory)`,
    ]);
  });

  it.each([
    {
      name: 'unclosed flow sequence',
      text: 'node:\n  name: redis-a\n  address: [192.0.2.11\npeer:\n  address: 192.0.2.12\n',
      at: /:4:1: YAML syntax error: /,
    },
    { name: 'duplicate key', text: 'node:\n  name: a\n  name: b\n', at: /:3:3: YAML syntax error: Map keys must be unique/ },
    { name: 'tab indentation', text: 'node:\n\tname: a\n', at: /:2:1: YAML syntax error: Tabs are not allowed/ },
    { name: 'unresolved alias', text: 'node:\n  name: *nothing\n', at: /: YAML error: Unresolved alias/ },
  ])('reports a YAML syntax error with line and column: $name', ({ text, at }) => {
    const path = writeTemp('bad.yaml', text);
    const problems = problemsOf(() => loadConfig(path, ENV));
    expect(problems.length).toBeGreaterThan(0);
    expect(problems[0]?.startsWith(path)).toBe(true);
    expect(problems[0]).toMatch(at);
  });

  it('reports a JSON syntax error with line and column', () => {
    const path = writeTemp('bad.json', '{\n  "node": {"name": "a",}\n}\n');
    expect(problemsOf(() => loadConfig(path, ENV))[0]).toMatch(/^.*bad\.json:2:\d+: JSON syntax error: /);
  });

  it('reports a top level that is not a mapping', () => {
    const path = writeTemp('list.yaml', '- node\n- peer\n');
    expect(problemsOf(() => loadConfig(path, ENV))).toEqual([
      '(top level): expected a mapping of sections (node, group, peer, timing, advert, redis, peer_redis, health, vip, promotion, demotion, reconcile, control, switchover, metrics, stall, quorum, audit, state, log), got a list',
    ]);
  });

  it('reports __proto__ keys as unknown instead of letting them set a prototype', () => {
    const path = writeTemp('proto.yaml', 'node:\n  __proto__:\n    priority: 200\n__proto__:\n  x: 1\n');
    const problems = problemsOf(() => loadConfig(path, ENV));
    expect(problemsOf(() => buildConfig(withPatch({ redis: { constructor: 1 } }), ENV))).toEqual([
      'redis.constructor: unknown key, expected one of host, port, username, password_file, tls, tls_insecure',
    ]);
    expect(problems).toContain('node.__proto__: unknown key, expected one of name, address, priority, preempt, preempt_delay_ms');
    expect(problems.some((line) => line.startsWith('__proto__: unknown section'))).toBe(true);
  });

  it('treats an empty file as an empty configuration (the required keys are missing)', () => {
    const path = writeTemp('empty.yaml', '# nothing yet\n');
    const problems = problemsOf(() => loadConfig(path, ENV));
    expect(problems.map((line) => line.slice(0, line.indexOf(':')))).toEqual([
      'node.name',
      'node.address',
      'peer.address',
      'vip.address',
      'vip.interface',
    ]);
  });

  it('reports key file problems through loadConfig, with path and line', () => {
    const keyFile = writeTemp('bad.key', `1 ${SECRET}\n1 ${SECRET}-other\n300 ${SECRET}\n2 short\n`);
    const problems = problemsOf(() => loadConfig(EXAMPLE, { REDIS_HA_ADVERT_KEY_FILE: keyFile, REDIS_HA_REDIS_PASSWORD: 'pw' }));
    expect(problems).toEqual([
      `advert.key_file: ${keyFile} line 2: expected each key id once, got id 1 again (first on line 1)`,
      `advert.key_file: ${keyFile} line 3: expected a key id from 1 to 255, got "300"`,
      `advert.key_file: ${keyFile} line 4: expected a secret of at least 128 bits (32 hex digits or 22 base64 characters, as "redis-ha keygen" writes),` +
        ' got key id 2 with 5 base64 characters, about 30 bits (not shown; try "redis-ha keygen")',
    ]);
  });

  it.each(['redis', 'peer_redis'] as const)(
    'refuses a %s.password_file group or others can access, like the key file, unless REDIS_HA_ALLOW_INSECURE_KEY_FILE=1',
    (section) => {
      const loose = writeTemp('loose.password', 'a-password\n', 0o644);
      const patch = { [section]: { password_file: loose } };
      expect(problemsOf(() => buildConfig(withPatch(patch), ENV))).toEqual([
        `${section}.password_file: expected a file holding ${section === 'redis' ? 'the Redis password' : "the peer's Redis password"}` +
          ` only its owner can access (mode 0600 or 0400), got "${loose}" with mode 0644` +
          ` (run "chmod 600 ${loose}", or set REDIS_HA_ALLOW_INSECURE_KEY_FILE=1 to accept it)`,
      ]);
      const waived = buildConfig(withPatch(patch), { ...ENV, REDIS_HA_ALLOW_INSECURE_KEY_FILE: '1' });
      expect((section === 'redis' ? waived.redis : waived.peerRedis).password).toBe('a-password');
    },
  );

  it.each([
    ['a FIFO', () => {
      const path = join(dir, `fifo-${fileCount++}`);
      execFileSync('mkfifo', ['-m', '600', path]);
      return path;
    }, 'a FIFO'],
    ['a directory', () => dir, 'a directory'],
    ['a character device', () => '/dev/null', 'a character device'],
  ])('refuses %s as a password file without opening it', (_name, make, kind) => {
    const path = make();
    expect(problemsOf(() => buildConfig(withPatch({ redis: { password_file: path } }), ENV))).toEqual([
      `redis.password_file: expected a readable file holding the Redis password, got "${path}" (${kind}, not a regular file)`,
    ]);
  });

  it('refuses a group-readable key file unless REDIS_HA_ALLOW_INSECURE_KEY_FILE=1', () => {
    const keyFile = writeTemp('loose.key', `1 ${SECRET}\n`, 0o640);
    const env = { REDIS_HA_ADVERT_KEY_FILE: keyFile, REDIS_HA_REDIS_PASSWORD: 'pw' };
    expect(problemsOf(() => loadConfig(EXAMPLE, env))).toEqual([
      `advert.key_file: expected a key file only its owner can access (mode 0600 or 0400), got "${keyFile}" with mode 0640` +
        ` (run "chmod 600 ${keyFile}", or set REDIS_HA_ALLOW_INSECURE_KEY_FILE=1 to accept it)`,
    ]);
    expect(loadConfig(EXAMPLE, { ...env, REDIS_HA_ALLOW_INSECURE_KEY_FILE: '1' }).advert.keys).toHaveLength(1);
  });
});

describe('numbers are quoted as the operator wrote them', () => {
  const keyEnv = { REDIS_HA_ADVERT_KEY: SECRET };
  const head = 'node: { name: redis-a, address: 192.0.2.11, priority: PRIORITY }\npeer: { address: 192.0.2.12 }\nvip: { address: 192.0.2.100/24, interface: eth0 }\n';

  it.each([
    ['a huge number', '100000000000000000000000', 'node.priority: expected an integer from 1 to 254, got 100000000000000000000000'],
    ['an exponent', '1e23', 'node.priority: expected an integer from 1 to 254, got 1e23'],
    ['an exponent beyond a double', '1e999', 'node.priority: expected an integer from 1 to 254, got 1e999'],
    ['YAML infinity', '.inf', 'node.priority: expected an integer from 1 to 254, got .inf'],
    ['a fraction', '150.50', 'node.priority: expected an integer from 1 to 254, got 150.50'],
    ['hexadecimal', '0x1FF', 'node.priority: expected an integer from 1 to 254, got 0x1FF'],
    ['a negative number', '-0', 'node.priority: expected an integer from 1 to 254, got -0'],
  ])('%s (%s)', (_name, written, problem) => {
    const path = writeTemp('numbers.yaml', head.replace('PRIORITY', written));
    expect(problemsOf(() => loadConfig(path, keyEnv))).toEqual([problem]);
  });

  it('in JSON too', () => {
    const path = writeTemp(
      'numbers.json',
      JSON.stringify({ node: { name: 'redis-a', address: '192.0.2.11', priority: 0 }, peer: { address: '192.0.2.12' }, vip: { address: '192.0.2.100/24', interface: 'eth0' } })
        .replace('"priority":0', '"priority":1e999'),
    );
    expect(problemsOf(() => loadConfig(path, keyEnv))).toEqual(['node.priority: expected an integer from 1 to 254, got 1e999']);
  });

  it('in a problem between two keys', () => {
    const path = writeTemp('cross.yaml', `${head.replace('PRIORITY', '100')}health: { interval_ms: 5e2, timeout_ms: 0x3E8 }\n`);
    expect(problemsOf(() => loadConfig(path, keyEnv))).toEqual(['health.timeout_ms: expected at most health.interval_ms (5e2), got 0x3E8']);
  });

  it('and from the environment, with the variable named', () => {
    const path = writeTemp('env.yaml', head.replace('PRIORITY', '100'));
    expect(problemsOf(() => loadConfig(path, { ...keyEnv, REDIS_HA_NODE_PRIORITY: '1e23' }))).toEqual([
      'node.priority: expected an integer from 1 to 254, got "1e23" (from REDIS_HA_NODE_PRIORITY)',
    ]);
  });
});

describe('the quorum section', () => {
  const CERT = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
  const KEY = '-----BEGIN EC PRIVATE KEY-----\nMHcfake\n-----END EC PRIVATE KEY-----\n';
  const caFile = writeTemp('etcd-ca.pem', CERT, 0o644);
  const certFile = writeTemp('etcd-client.pem', CERT, 0o644);
  const keyFile = writeTemp('etcd-client.key', KEY);
  const etcdPasswordFile = writeTemp('etcd.password', 'the-etcd-password\n');
  const HTTPS = 'https://192.0.2.20:2379,https://192.0.2.21:2379';
  /** A complete etcd section: https, a client certificate, a user. */
  const TLS_ETCD = {
    endpoints: HTTPS,
    ca_file: caFile,
    cert_file: certFile,
    key_file: keyFile,
    username: 'redis-ha',
    password_file: etcdPasswordFile,
  };
  const etcd = (fields: Record<string, unknown>, backend = 'etcd'): Patch => ({ quorum: { backend, etcd: fields } });

  it('defaults to no quorum, preferring availability, with the etcd keys unset', () => {
    const { quorum } = buildConfig(BASE, ENV);
    expect(quorum).toEqual({
      backend: 'none',
      prefer: 'availability',
      etcd: {
        endpoints: [],
        prefix: '/redis-ha',
        clusterName: 'group-51',
        username: null,
        password: null,
        passwordFile: '',
        caFile: '',
        certFile: '',
        keyFile: '',
        leaseTtlS: 3,
        renewIntervalMs: 500,
        callTimeoutMs: 500,
        electionTimeoutMs: 1000,
      },
    });
  });

  it('loads etcd over TLS with a client certificate and a user, reading the password', () => {
    const { quorum } = buildConfig(withPatch({ ...etcd(TLS_ETCD), group: { id: 7 } }), ENV);
    expect(quorum.backend).toBe('etcd');
    expect(quorum.etcd).toMatchObject({
      endpoints: ['https://192.0.2.20:2379', 'https://192.0.2.21:2379'],
      clusterName: 'group-7',
      username: 'redis-ha',
      password: 'the-etcd-password',
      passwordFile: etcdPasswordFile,
      caFile,
      certFile,
      keyFile,
    });
    expect(Object.isFrozen(quorum.etcd.endpoints)).toBe(true);
  });

  it('takes the endpoints as a YAML list too, and trims spaces around commas', () => {
    const list = writeTemp(
      'etcd-list.yaml',
      `${JSON.stringify(BASE)}`.replace(/}$/, ',"quorum":{"backend":"etcd","etcd":{"endpoints":["http://etcd-1.example:2379","http://[fd00::20]:2379"]}}}'),
    );
    expect(loadConfig(list, ENV).quorum.etcd.endpoints).toEqual(['http://etcd-1.example:2379', 'http://[fd00::20]:2379']);
    const spaced = buildConfig(withPatch(etcd({ endpoints: ' http://192.0.2.20:2379 , http://192.0.2.21:2379' })), ENV);
    expect(spaced.quorum.etcd.endpoints).toEqual(['http://192.0.2.20:2379', 'http://192.0.2.21:2379']);
  });

  it('applies REDIS_HA_QUORUM_* and REDIS_HA_QUORUM_ETCD_* over the file', () => {
    const config = buildConfig(withPatch(etcd({ lease_ttl_s: 3, cluster_name: 'from-file' }, 'none')), {
      ...ENV,
      REDIS_HA_QUORUM_BACKEND: 'etcd',
      REDIS_HA_QUORUM_PREFER: 'safety',
      REDIS_HA_QUORUM_ETCD_ENDPOINTS: 'http://192.0.2.20:2379',
      REDIS_HA_QUORUM_ETCD_LEASE_TTL_S: '5',
      REDIS_HA_QUORUM_ETCD_CLUSTER_NAME: 'orders',
      REDIS_HA_QUORUM_ETCD_PREFIX: '/ha',
    });
    expect(config.quorum).toMatchObject({ backend: 'etcd', prefer: 'safety' });
    expect(config.quorum.etcd).toMatchObject({ endpoints: ['http://192.0.2.20:2379'], leaseTtlS: 5, clusterName: 'orders', prefix: '/ha' });
  });

  it('with backend none, neither requires the etcd keys nor reads their files, but still checks their form', () => {
    const unused = { endpoints: '', cert_file: certFile, password_file: '/nonexistent/etcd.password', ca_file: '/nonexistent/ca.pem' };
    const config = buildConfig(withPatch(etcd(unused, 'none')), ENV);
    expect(config.quorum.etcd.password).toBeNull();
    expect(problemsOf(() => buildConfig(withPatch(etcd({ lease_ttl_s: 0, endpoints: 'etcd:2379' }, 'none')), ENV))).toEqual([
      'quorum.etcd.endpoints: expected etcd client URLs separated by commas, such as https://192.0.2.20:2379,https://192.0.2.21:2379' +
        ' (http:// or https://, each with host and port, all of one scheme), or "", got "etcd:2379" ("etcd:2379" is not http(s)://host:port)',
      'quorum.etcd.lease_ttl_s: expected an integer from 1 to 60, got 0',
    ]);
  });

  const ENDPOINTS_EXPECTED =
    'quorum.etcd.endpoints: expected etcd client URLs separated by commas, such as https://192.0.2.20:2379,https://192.0.2.21:2379' +
    ' (http:// or https://, each with host and port, all of one scheme), or ""';

  it.each([
    ['no port', 'http://192.0.2.20', '("http://192.0.2.20" is not http(s)://host:port)'],
    ['a path', 'http://192.0.2.20:2379/', '("http://192.0.2.20:2379/" is not http(s)://host:port)'],
    ['user info', 'http://root@192.0.2.20:2379', '("http://root@192.0.2.20:2379" is not http(s)://host:port)'],
    ['another scheme', 'grpc://192.0.2.20:2379', '("grpc://192.0.2.20:2379" is not http(s)://host:port)'],
    ['port 0', 'http://192.0.2.20:0', '("http://192.0.2.20:0" has no valid port)'],
    ['port 70000', 'http://192.0.2.20:70000', '("http://192.0.2.20:70000" has no valid port)'],
    ['a bad host', 'http://192.0.2.300:2379', '("http://192.0.2.300:2379" has no valid host)'],
    ['IPv6 without brackets', 'http://fd00::20:2379', '("http://fd00::20:2379" is not http(s)://host:port)'],
    ['a bracketed IPv4', 'http://[192.0.2.20]:2379', '("http://[192.0.2.20]:2379" has no valid host)'],
    ['an empty entry', 'http://192.0.2.20:2379,,http://192.0.2.21:2379', '(entry 2 is empty)'],
    ['a trailing comma', 'http://192.0.2.20:2379,', '(entry 2 is empty)'],
    ['mixed schemes', 'http://192.0.2.20:2379,https://192.0.2.21:2379', '(it mixes http:// and https://)'],
  ])('refuses endpoints with %s', (_name, endpoints, reason) => {
    expect(problemsOf(() => buildConfig(withPatch(etcd({ endpoints })), ENV))).toEqual([
      `${ENDPOINTS_EXPECTED}, got ${JSON.stringify(endpoints)} ${reason}`,
    ]);
  });

  it('quotes a bad endpoint from the environment with its variable', () => {
    expect(problemsOf(() => buildConfig(withPatch(etcd({})), { ...ENV, REDIS_HA_QUORUM_ETCD_ENDPOINTS: 'etcd:2379' }))).toEqual([
      `${ENDPOINTS_EXPECTED}, got "etcd:2379" (from REDIS_HA_QUORUM_ETCD_ENDPOINTS) ("etcd:2379" is not http(s)://host:port)`,
    ]);
  });

  it.each<[string, Record<string, unknown>, string]>([
    [
      'etcd without endpoints',
      {},
      'quorum.etcd.endpoints: expected at least one etcd client URL such as https://192.0.2.20:2379 (required when quorum.backend is etcd), got ""',
    ],
    [
      'https without a CA file',
      { endpoints: HTTPS },
      'quorum.etcd.ca_file: expected the PEM file of the CA that signed the etcd servers\' certificates (required with https:// endpoints), got ""',
    ],
    [
      'http with a CA file',
      { endpoints: 'http://192.0.2.20:2379', ca_file: caFile },
      `quorum.etcd.ca_file: expected "" with http:// endpoints (TLS files are used with https:// only), got "${caFile}"`,
    ],
    [
      'a client certificate without its key',
      { endpoints: HTTPS, ca_file: caFile, cert_file: certFile },
      'quorum.etcd.key_file: expected the private key of quorum.etcd.cert_file (a client certificate needs its key), got ""',
    ],
    [
      'a client key without its certificate',
      { endpoints: HTTPS, ca_file: caFile, key_file: keyFile },
      'quorum.etcd.cert_file: expected the client certificate of quorum.etcd.key_file (a client key needs its certificate), got ""',
    ],
    [
      'a user without a password file',
      { endpoints: 'http://192.0.2.20:2379', username: 'redis-ha' },
      'quorum.etcd.password_file: expected the file holding the password of etcd user "redis-ha" (required with quorum.etcd.username), got ""',
    ],
    [
      'a password file without a user',
      { endpoints: 'http://192.0.2.20:2379', password_file: etcdPasswordFile },
      'quorum.etcd.username: expected the etcd user whose password quorum.etcd.password_file holds, got ""',
    ],
    [
      'a prefix without the leading /',
      { endpoints: 'http://192.0.2.20:2379', prefix: 'redis-ha' },
      'quorum.etcd.prefix: expected an etcd key prefix starting with "/", without white space, such as /redis-ha, got "redis-ha"' +
        ' (etcd key prefix "redis-ha" does not start with "/")',
    ],
    [
      'a prefix with a space',
      { endpoints: 'http://192.0.2.20:2379', prefix: '/redis ha' },
      'quorum.etcd.prefix: expected an etcd key prefix starting with "/", without white space, such as /redis-ha, got "/redis ha"' +
        ' (etcd key prefix "/redis ha" contains white space)',
    ],
    [
      'a cluster name with a slash',
      { endpoints: 'http://192.0.2.20:2379', cluster_name: 'a/b' },
      'quorum.etcd.cluster_name: expected a cluster name of letters, digits, ".", "_" or "-" (starting with a letter or digit), or "" for group-<group.id>,' +
        ' got "a/b" (cluster name "a/b" is not letters, digits, ".", "_" or "-" starting with a letter or digit)',
    ],
    [
      'a user name with a space',
      { endpoints: 'http://192.0.2.20:2379', username: 'redis ha', password_file: etcdPasswordFile },
      'quorum.etcd.username: expected an etcd user name without white space, or "" for none, got "redis ha"',
    ],
    ['a lease TTL of a minute and more', { endpoints: 'http://192.0.2.20:2379', lease_ttl_s: 61 }, 'quorum.etcd.lease_ttl_s: expected an integer from 1 to 60, got 61'],
    [
      'a call timeout below 50 ms',
      { endpoints: 'http://192.0.2.20:2379', call_timeout_ms: 20 },
      'quorum.etcd.call_timeout_ms: expected an integer number of milliseconds from 50 to 30000, got 20',
    ],
    [
      'a password in the file',
      { endpoints: 'http://192.0.2.20:2379', password: 'hunter2-hunter2' },
      'quorum.etcd.password: expected no secrets in the configuration file (put it in the file named by quorum.etcd.password_file), got a secret (not shown)',
    ],
    [
      'a misspelt key',
      { endpoints: 'http://192.0.2.20:2379', call_timeout: 500 },
      'quorum.etcd.call_timeout: unknown key, expected one of endpoints, prefix, cluster_name, username, password_file, ca_file, cert_file, key_file,' +
        ' lease_ttl_s, renew_interval_ms, call_timeout_ms, election_timeout_ms (did you mean call_timeout_ms?)',
    ],
    [
      'a missing password file',
      { endpoints: 'http://192.0.2.20:2379', username: 'redis-ha', password_file: '/nonexistent/etcd.password' },
      'quorum.etcd.password_file: expected a readable file holding the etcd password, got "/nonexistent/etcd.password" (no such file)',
    ],
    [
      'a missing CA file',
      { endpoints: HTTPS, ca_file: '/nonexistent/ca.pem' },
      'quorum.etcd.ca_file: expected a readable CA certificate of the etcd servers, got "/nonexistent/ca.pem" (no such file)',
    ],
    [
      'a directory as the client certificate',
      { endpoints: HTTPS, ca_file: caFile, cert_file: dir, key_file: keyFile },
      `quorum.etcd.cert_file: expected a readable client certificate for etcd, got "${dir}" (a directory, not a regular file)`,
    ],
  ])('refuses %s, naming the key', (_name, fields, problem) => {
    const problems = problemsOf(() => buildConfig(withPatch(etcd(fields)), ENV));
    expect(problems).toEqual([problem]);
  });

  it('refuses a CA file and a client certificate without a certificate in them, and a key file without a key', () => {
    const notPem = writeTemp('not.pem', 'hello\n', 0o644);
    const certAsKey = writeTemp('cert-as.key', CERT);
    expect(problemsOf(() => buildConfig(withPatch(etcd({ ...TLS_ETCD, ca_file: notPem, cert_file: notPem, key_file: certAsKey })), ENV))).toEqual([
      `quorum.etcd.ca_file: expected a CA certificate of the etcd servers in PEM form ("-----BEGIN CERTIFICATE-----"), got "${notPem}" (no such block in it)`,
      `quorum.etcd.cert_file: expected a client certificate for etcd in PEM form ("-----BEGIN CERTIFICATE-----"), got "${notPem}" (no such block in it)`,
      `quorum.etcd.key_file: expected a client key for etcd in PEM form ("-----BEGIN PRIVATE KEY-----"), got "${certAsKey}" (no such block in it)`,
    ]);
  });

  it('holds the client key and the password file to the secret-file rule (only the CA and certificate may be readable by others)', () => {
    const looseKey = writeTemp('loose-etcd.key', KEY, 0o644);
    const loosePassword = writeTemp('loose-etcd.password', 'pw\n', 0o640);
    const patch = withPatch(etcd({ ...TLS_ETCD, key_file: looseKey, password_file: loosePassword }));
    expect(problemsOf(() => buildConfig(patch, ENV))).toEqual([
      `quorum.etcd.password_file: expected a file holding the etcd password only its owner can access (mode 0600 or 0400), got "${loosePassword}"` +
        ` with mode 0640 (run "chmod 600 ${loosePassword}", or set REDIS_HA_ALLOW_INSECURE_KEY_FILE=1 to accept it)`,
      `quorum.etcd.key_file: expected a client key for etcd only its owner can access (mode 0600 or 0400), got "${looseKey}"` +
        ` with mode 0644 (run "chmod 600 ${looseKey}", or set REDIS_HA_ALLOW_INSECURE_KEY_FILE=1 to accept it)`,
    ]);
    expect(buildConfig(patch, { ...ENV, REDIS_HA_ALLOW_INSECURE_KEY_FILE: '1' }).quorum.etcd.password).toBe('pw');
  });

  it('refuses a FIFO as the CA file at once instead of waiting for a writer', () => {
    const fifo = join(dir, `ca-fifo-${fileCount++}`);
    execFileSync('mkfifo', ['-m', '644', fifo]);
    expect(problemsOf(() => buildConfig(withPatch(etcd({ endpoints: HTTPS, ca_file: fifo })), ENV))).toEqual([
      `quorum.etcd.ca_file: expected a readable CA certificate of the etcd servers, got "${fifo}" (a FIFO, not a regular file)`,
    ]);
  });

  it('reports an unknown quorum key, a subsection replaced by a value, and a bad backend', () => {
    expect(problemsOf(() => buildConfig(withPatch({ quorum: { backend: 'consul', witness: 'x' } }), ENV))).toEqual([
      'quorum.backend: expected one of none, etcd, got "consul"',
      'quorum.witness: unknown key, expected one of backend, prefer, etcd',
    ]);
    expect(problemsOf(() => buildConfig(withPatch({ quorum: { backend: 'etcd', etcd: 'http://192.0.2.20:2379' } }), ENV))).toEqual([
      'quorum.etcd: expected a mapping of keys (endpoints, prefix, cluster_name, username, password_file, ca_file, cert_file, key_file,' +
        ' lease_ttl_s, renew_interval_ms, call_timeout_ms, election_timeout_ms), got "http://192.0.2.20:2379"',
    ]);
    expect(problemsOf(() => buildConfig(withPatch({ quorum: 'etcd' }), ENV))).toEqual([
      'quorum: expected a mapping of keys (backend, prefer, etcd), got "etcd"',
    ]);
  });

  it('refuses a dotted name written as one key, saying to nest it', () => {
    expect(problemsOf(() => buildConfig({ ...withPatch({}), 'quorum.etcd': { lease_ttl_s: 5 }, quorum: { 'etcd.lease_ttl_s': 5 } }, ENV))).toEqual([
      '"quorum.etcd": unknown section (a dotted name: write each part as a nested key), expected one of node, group, peer, timing, advert, redis,' +
        ' peer_redis, health, vip, promotion, demotion, reconcile, control, switchover, metrics, stall, quorum, audit, state, log',
      'quorum."etcd.lease_ttl_s": unknown key (a dotted name: write each part as a nested key), expected one of backend, prefer, etcd',
    ]);
  });

  it('quotes a number in the subsection as written', () => {
    const path = writeTemp(
      'etcd-numbers.yaml',
      'node: { name: redis-a, address: 192.0.2.11 }\npeer: { address: 192.0.2.12 }\nvip: { address: 192.0.2.100/24, interface: eth0 }\n' +
        'quorum:\n  etcd:\n    lease_ttl_s: 0x40\n',
    );
    expect(problemsOf(() => loadConfig(path, ENV))).toEqual(['quorum.etcd.lease_ttl_s: expected an integer from 1 to 60, got 0x40']);
  });
});
