/**
 * `check-config`: a good file yields a summary without secrets, a bad one the full
 * list of problems; anything that is not a configuration problem propagates. The VIP's
 * subnet is held against its interface's addresses (`ip -j addr`, faked here): a
 * warning, never a refusal.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkConfig, vipSubnetNotes, type IpOutput } from '../../src/config/check.js';
import type { Config } from '../../src/config/types.js';

const EXAMPLE = fileURLToPath(new URL('../../etc/redis-ha.example.yaml', import.meta.url));
const SECRET = 'check-config-secret-0123456789';
const PASSWORD = 'the-redis-password';
const dir = mkdtempSync(join(tmpdir(), 'redis-ha-check-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const keyFile = join(dir, 'advert.key');
writeFileSync(keyFile, `1 ${SECRET}\n`);
chmodSync(keyFile, 0o600);
const env = { REDIS_HA_ADVERT_KEY_FILE: keyFile, REDIS_HA_REDIS_PASSWORD: PASSWORD };

describe('checkConfig', () => {
  it('summarises node, peer, VIP, advert and health settings', () => {
    const result = checkConfig(EXAMPLE, env);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.node.name).toBe('redis-a');
    const text = result.lines.join('\n');
    expect(result.lines[0]).toBe(`config ${EXAMPLE}: OK`);
    expect(text).toContain('node redis-a at 192.0.2.11, priority 150, preempt off');
    expect(text).toContain('peer 192.0.2.12 (unicast), group 51');
    expect(text).toContain('vip 192.0.2.100/24 (IPv4) on eth0, 3 gratuitous ARPs 200 ms apart, refreshed every 10000 ms');
    expect(text).toContain('advert every 1000 ms on UDP port 5400, 1 key(s), key 1 signs');
    expect(text).toContain('health check every 500 ms, timeout 300 ms, FAULT after 2 failure(s), back after 2 success(es)');
    expect(text).toContain('redis 127.0.0.1:6379 (default user, password set, no TLS)');
    expect(text).toContain('peer redis 192.0.2.12:6379 (default user, same password as local, no TLS)');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain(PASSWORD);
  });

  it('says the quorum mode in force and, per fault, its worst case in that mode', () => {
    const none = checkConfig(EXAMPLE, env);
    if (!none.ok) throw new Error(none.problems.join('\n'));
    expect(none.lines).toContain('quorum: none, prefer availability: a partition can leave two masters and lose the writes of one side');
    const worst = none.lines.filter((line) => line.startsWith('worst case if '));
    // The example's backup (priority 150): master-down 3000 + 415 ms, promotion 100 ms; a
    // Redis that dies is seen at once, one that hangs after 500 + 2 × 300 = 1100 ms.
    expect(worst.map((line) => line.slice(0, line.indexOf(' — ')))).toEqual([
      "worst case if the master's Redis process dies (crash, OOM kill): writes unavailable up to 100 ms; acknowledged writes lost: up to replication lag; two writable masters: no",
      "worst case if the master's Redis hangs (stops answering): writes unavailable up to 1200 ms; acknowledged writes lost: up to replication lag; two writable masters: no",
      "worst case if the master's host dies: writes unavailable up to 3514 ms; acknowledged writes lost: up to replication lag; two writable masters: no",
      'worst case if the master is cut off from its peer and etcd: writes unavailable up to 3514 ms;' +
        ' acknowledged writes lost: everything written to the losing side during the cut; two writable masters: yes',
      'worst case if the two hosts are cut from each other (clients reach both): writes stay available;' +
        ' acknowledged writes lost: everything written to the losing side during the cut; two writable masters: yes',
    ]);

    const safety = checkConfig(EXAMPLE, { ...env, REDIS_HA_QUORUM_PREFER: 'safety' });
    if (!safety.ok) throw new Error(safety.problems.join('\n'));
    expect(safety.lines).toContain(
      'quorum: none, prefer safety: an isolated master refuses writes, writes stop while the two hosts cannot see each other, and a silent master is replaced only through its own Redis',
    );
    expect(safety.lines.filter((line) => line.includes('until it is healed or repaired'))).toHaveLength(5);

    const etcd = checkConfig(EXAMPLE, {
      ...env,
      REDIS_HA_QUORUM_BACKEND: 'etcd',
      REDIS_HA_QUORUM_ETCD_ENDPOINTS: 'http://192.0.2.20:2379,http://192.0.2.21:2379,http://192.0.2.22:2379',
    });
    if (!etcd.ok) throw new Error(etcd.problems.join('\n'));
    expect(etcd.lines).toContain(
      'quorum: etcd at http://192.0.2.20:2379, http://192.0.2.21:2379, http://192.0.2.22:2379 (3 endpoints, no TLS, no user),' +
        ' key /redis-ha/group-51/leader, lease 3 s renewed every 500 ms, calls time out after 500 ms, fence lead 330 ms',
    );
    const etcdWorst = etcd.lines.filter((line) => line.startsWith('worst case if '));
    expect(etcdWorst).toHaveLength(6);
    // The lease (3000 ms + 500 ms expiry check) outlasts the master-down interval (3415 ms).
    expect(etcdWorst[2]).toMatch(/^worst case if the master's host dies: writes unavailable up to 4844 ms; acknowledged writes lost: up to replication lag; two writable masters: no — the backup takes the key once the dead master's lease \(3000 ms\)/);
    expect(etcdWorst[4]).toMatch(/^worst case if the two hosts are cut from each other \(clients reach both\): writes stay available; acknowledged writes lost: none; two writable masters: no/);
    expect(etcdWorst[5]).toMatch(/^worst case if etcd is down \(nothing else wrong\): writes stay available; acknowledged writes lost: none; two writable masters: no — failsafe/);
  });

  it('names TLS, the client certificate, the user and the cluster name of an etcd quorum, never the password', () => {
    const pem = (name: string, text: string, mode: number): string => {
      const path = join(dir, name);
      writeFileSync(path, text);
      chmodSync(path, mode);
      return path;
    };
    const result = checkConfig(EXAMPLE, {
      ...env,
      REDIS_HA_QUORUM_BACKEND: 'etcd',
      REDIS_HA_QUORUM_ETCD_ENDPOINTS: 'https://etcd.example.net:2379',
      REDIS_HA_QUORUM_ETCD_CA_FILE: pem('ca.pem', '-----BEGIN CERTIFICATE-----\n', 0o644),
      REDIS_HA_QUORUM_ETCD_CERT_FILE: pem('client.pem', '-----BEGIN CERTIFICATE-----\n', 0o644),
      REDIS_HA_QUORUM_ETCD_KEY_FILE: pem('client.key', '-----BEGIN PRIVATE KEY-----\n', 0o600),
      REDIS_HA_QUORUM_ETCD_USERNAME: 'redis-ha',
      REDIS_HA_QUORUM_ETCD_PASSWORD_FILE: pem('etcd.password', 'etcd-secret-password\n', 0o600),
      REDIS_HA_QUORUM_ETCD_CLUSTER_NAME: 'orders',
      REDIS_HA_QUORUM_ETCD_PREFIX: '/ha/',
    });
    if (!result.ok) throw new Error(result.problems.join('\n'));
    expect(result.lines).toContain(
      'quorum: etcd at https://etcd.example.net:2379 (1 endpoint, TLS with client certificate, user redis-ha), key /ha/orders/leader,' +
        ' lease 3 s renewed every 500 ms, calls time out after 500 ms, fence lead 330 ms',
    );
    expect(result.lines.join('\n')).not.toContain('etcd-secret-password');
  });

  it('returns every problem of a bad configuration', () => {
    const result = checkConfig(EXAMPLE, { ...env, REDIS_HA_NODE_PRIORITY: '0', REDIS_HA_VIP_ADDRESS: '192.0.2.100' });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toHaveLength(2);
    expect(result.problems[0]).toBe('node.priority: expected an integer from 1 to 254, got "0" (from REDIS_HA_NODE_PRIORITY)');
    expect(result.problems[1]).toMatch(/^vip\.address: .*got "192\.0\.2\.100" \(from REDIS_HA_VIP_ADDRESS\) \(the prefix length is missing\)$/);
  });

  it('reports a missing file as a problem', () => {
    const result = checkConfig(join(dir, 'absent.yaml'), env);
    expect(result).toEqual({ ok: false, problems: [`${join(dir, 'absent.yaml')}: expected a readable configuration file, got an error (no such file)`] });
  });
});

describe('vipSubnetNotes', () => {
  const loaded = checkConfig(EXAMPLE, env);
  if (!loaded.ok) throw new Error(loaded.problems.join('\n'));
  /** The example (VIP 192.0.2.100/24 on eth0) with another VIP. */
  const withVip = (address: string, prefixLength: number, family: 4 | 6 = 4): Config =>
    ({ ...loaded.config, vip: { ...loaded.config.vip, address, prefixLength, family } }) as Config;
  /** `ip -j addr show dev eth0` listing these addresses. */
  const listing =
    (...addresses: [family: string, local: string, prefixlen: number][]) =>
    async (args: readonly string[]): Promise<IpOutput> => {
      expect(args).toEqual(['-j', 'addr', 'show', 'dev', 'eth0']);
      const addr_info = addresses.map(([family, local, prefixlen]) => ({ family, local, prefixlen, scope: 'global' }));
      return { code: 0, stdout: JSON.stringify([{ ifindex: 2, ifname: 'eth0', addr_info }]) };
    };

  it('says nothing when the VIP lies in a subnet of its interface', async () => {
    expect(await vipSubnetNotes(loaded.config, listing(['inet', '192.0.2.11', 24]))).toEqual([]);
    expect(await vipSubnetNotes(withVip('192.0.2.100', 32), listing(['inet', '192.0.2.11', 24]))).toEqual([]);
    expect(await vipSubnetNotes(withVip('fd00::100', 64, 6), listing(['inet6', 'fe80::1', 64], ['inet6', 'fd00::11', 64]))).toEqual([]);
  });

  it('warns when it lies in none, naming the subnets it has', async () => {
    const notes = await vipSubnetNotes(withVip('198.51.100.10', 24), listing(['inet', '192.0.2.11', 24], ['inet', '10.0.0.5', 8]));
    expect(notes).toEqual([
      'warning: vip.address 198.51.100.10/24 lies in none of the IPv4 subnets of eth0 (192.0.2.11/24, 10.0.0.5/8):' +
        ' check the address and the interface; clients on that link reach the VIP only if a router sends them to it',
    ]);
  });

  it('does not count the VIP itself (held while master) nor IPv6 link-local addresses', async () => {
    const v4 = await vipSubnetNotes(withVip('198.51.100.10', 24), listing(['inet', '198.51.100.10', 24]));
    expect(v4[0]).toMatch(/^warning: .*\(it has none\)/);
    const v6 = await vipSubnetNotes(withVip('fd00::100', 64, 6), listing(['inet6', 'fe80::1', 64]));
    expect(v6[0]).toMatch(/^warning: vip\.address fd00::100\/64 lies in none of the IPv6 subnets of eth0 \(it has none\)/);
  });

  it('only notes an interface that does not exist here, or an ip that cannot run', async () => {
    expect(await vipSubnetNotes(loaded.config, async () => ({ code: 1, stdout: '' }))).toEqual([
      "note: interface eth0 does not exist here (yet): the VIP's subnet was not checked",
    ]);
    const missing = await vipSubnetNotes(loaded.config, () => Promise.reject(new Error('required program "ip" was not found')));
    expect(missing[0]).toMatch(/^note: could not list the addresses of eth0 \(required program "ip" was not found\)/);
  });
});
