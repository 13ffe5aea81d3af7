/**
 * `redis-ha check-config` through the built CLI: exit 0 with a summary and the takeover
 * times for a good file; exit 78 and one line per problem (key, expected, given) otherwise.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const dir = await mkdtemp(join(tmpdir(), 'rh-cli-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

/** A CLI run that takes longer than this is hung (a FIFO opened for reading waits for a writer forever). */
const CLI_PROMPT_MS = 4_000;

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: CLI_PROMPT_MS, killSignal: 'SIGKILL' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

async function exampleWith(replace: (text: string) => string): Promise<{ path: string; env: NodeJS.ProcessEnv }> {
  const key = join(dir, 'advert.key');
  await writeFile(key, '1 9f86d081884c7d659a2feaa0c55ad015\n');
  await chmod(key, 0o600);
  const text = (await readFile(join(import.meta.dirname, '../../etc/redis-ha.example.yaml'), 'utf8'))
    .replace(/key_file: \/etc\/redis-ha\/advert.key/, `key_file: ${key}`)
    .replace(/password_file: \/etc\/redis-ha\/redis.password/, 'password_file: ""')
    // check-config asks both Redis whether they are cluster nodes (issue 14): keep that on loopback.
    .replace(/^ {2}host: ""$/m, '  host: 127.0.0.2');
  const path = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  await writeFile(path, replace(text));
  return { path, env: {} };
}

describe('redis-ha check-config', () => {
  it('accepts the example and prints the summary with computed takeover times', async () => {
    const { path, env } = await exampleWith((t) => t);
    const r = await cli(['check-config', '--config', path], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/: OK/);
    expect(r.stdout).toMatch(/worst-case takeover by this node: Redis failure on the peer \d+ ms \(\d+ ms when its process dies\), peer host loss \d+ ms/);
  });

  it('prints the quorum mode in force and the worst case of each fault in it', async () => {
    const { path, env } = await exampleWith((t) => t);
    const none = await cli(['check-config', '--config', path], env);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('quorum: none, prefer availability: a partition can leave two masters and lose the writes of one side\n');
    expect(none.stdout.match(/^worst case if .*$/gm)).toHaveLength(5);
    expect(none.stdout).toMatch(/^worst case if the two hosts are cut from each other \(clients reach both\): writes stay available; acknowledged writes lost: everything written to the losing side during the cut; two writable masters: yes/m);

    const safety = await cli(['check-config', '--config', path], { ...env, REDIS_HA_QUORUM_PREFER: 'safety' });
    expect(safety.code).toBe(0);
    expect(safety.stdout).toContain('quorum: none, prefer safety: an isolated master refuses writes');
    expect(safety.stdout).toMatch(/^worst case if the master's host dies: writes unavailable until it is healed or repaired;/m);
  });

  it('with backend etcd, summarises the quorum and prints six worst cases', async () => {
    const { path, env } = await exampleWith((t) =>
      t.replace(/backend: none/, 'backend: etcd').replace(/endpoints: ""/, 'endpoints: "http://192.0.2.20:2379"'),
    );
    const r = await cli(['check-config', '--config', path], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(
      'quorum: etcd at http://192.0.2.20:2379 (1 endpoint, no TLS, no user), key /redis-ha/group-51/leader, ' +
        'lease 3 s renewed every 500 ms, calls time out after 500 ms, fence lead 330 ms\n',
    );
    expect(r.stdout.match(/^worst case if .*$/gm)).toHaveLength(6);
    expect(r.stdout).toMatch(/^worst case if etcd is down \(nothing else wrong\): writes stay available; acknowledged writes lost: none; two writable masters: no/m);
  });

  it('exits 78 when the lease cannot outlive an etcd election, naming the keys', async () => {
    const { path, env } = await exampleWith((t) =>
      t
        .replace(/backend: none/, 'backend: etcd')
        .replace(/endpoints: ""/, 'endpoints: "http://192.0.2.20:2379"')
        .replace(/call_timeout_ms: 500/, 'call_timeout_ms: 1200'),
    );
    const r = await cli(['check-config', '--config', path], env);
    expect(r.code).toBe(78);
    expect(r.stdout).toMatch(
      /^error: quorum\.etcd\.renew_interval_ms \(500\) \+ call_timeout_ms \(1200\) \+ election_timeout_ms \(1000\) = 2700 ms is not shorter than quorum\.etcd\.lease_ttl_s \(3 s\) less the fence lead \(330 ms = 1 % of the TTL for clock rates \+ the fence's bound 300: health\.timeout_ms, at least 200\) = 2670 ms: an etcd leader election right after a renewal would lapse the lease/m,
    );
  });

  it('exits 78 for an etcd backend without endpoints, and for https without a CA file', async () => {
    const { path, env } = await exampleWith((t) => t.replace(/backend: none/, 'backend: etcd'));
    const empty = await cli(['check-config', '--config', path], env);
    expect(empty.code).toBe(78);
    expect(empty.stderr).toContain('quorum.etcd.endpoints: expected at least one etcd client URL such as https://192.0.2.20:2379 (required when quorum.backend is etcd), got ""');
    const https = await cli(['check-config', '--config', path], { ...env, REDIS_HA_QUORUM_ETCD_ENDPOINTS: 'https://192.0.2.20:2379' });
    expect(https.code).toBe(78);
    expect(https.stderr).toContain("quorum.etcd.ca_file: expected the PEM file of the CA that signed the etcd servers' certificates (required with https:// endpoints), got \"\"");
  });

  it('exits 78 naming the key, the expected form and the value given', async () => {
    // The first empty `interval_ms:` of the example is advert's (the profile decides it).
    const { path, env } = await exampleWith((t) => t.replace(/^  interval_ms:$/m, '  interval_ms: 19'));
    const r = await cli(['check-config', '--config', path], env);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/advert\.interval_ms: expected .* from 20 to 60000, got "?19"?/);
  });

  it('prints the timing profile in force, and exits 78 for a name that is no profile', async () => {
    const { path, env } = await exampleWith((t) => t.replace(/^  profile: default$/m, '  profile: lan-fast'));
    const ok = await cli(['check-config', '--config', path], env);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^timing profile lan-fast \(no key set over it\); stall threshold 60 ms$/m);
    expect(ok.stdout).toMatch(/^advert every 20 ms on UDP port 5400/m);
    const bad = await cli(['check-config', '--config', path], { ...env, REDIS_HA_TIMING_PROFILE: 'turbo' });
    expect(bad.code).toBe(78);
    expect(bad.stderr).toContain('timing.profile: expected one of default, fast, lan-fast, got "turbo" (from REDIS_HA_TIMING_PROFILE)');
  });

  it('for a misspelt profile prints that one problem, not the default\'s timings checked against the keys set', async () => {
    const { path, env } = await exampleWith((t) => t.replace(/^  profile: default$/m, '  profile: fsat'));
    const r = await cli(['check-config', '--config', path], { ...env, REDIS_HA_HEALTH_INTERVAL_MS: '100' });
    expect(r.code).toBe(78);
    expect(r.stderr).toBe(`redis-ha: configuration ${path} has 1 problem(s):\n  timing.profile: expected one of default, fast, lan-fast, got "fsat"\n`);
  });

  it('exits 78 for a missing file', async () => {
    const r = await cli(['check-config', '--config', join(dir, 'nope.yaml')]);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/nope\.yaml/);
  });

  it('run refuses a bad configuration the same way, before touching anything', async () => {
    const { path, env } = await exampleWith((t) => t.replace(/priority: 150/, 'priority: 300'));
    const r = await cli(['run', '--config', path], env);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/node\.priority: expected .*got "?300"?/);
  });

  it('refuses a FIFO as the password file at once (exit 78) instead of waiting for a writer', async () => {
    const fifo = join(dir, 'redis.password.fifo');
    await exec('mkfifo', ['-m', '600', fifo]);
    const { path, env } = await exampleWith((t) => t.replace(/password_file: ""/, `password_file: ${fifo}`));
    const started = Date.now();
    const r = await cli(['check-config', '--config', path], env);
    expect(Date.now() - started).toBeLessThan(CLI_PROMPT_MS);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain(`redis.password_file: expected a readable file holding the Redis password, got "${fifo}" (a FIFO, not a regular file)`);
  });

  it('exits 78 for an interface name ip would read as an option', async () => {
    const { path, env } = await exampleWith((t) => t.replace(/interface: eth0/, 'interface: "-h"'));
    const r = await cli(['check-config', '--config', path], env);
    expect(r.code).toBe(78);
    expect(r.stderr).toMatch(/vip\.interface: expected .*got "-h" \(it starts with "-", which ip would read as an option\)/);
  });

  it('warns (exit 0) when the VIP lies in none of the subnets of an interface that exists', async () => {
    const { path, env } = await exampleWith((t) => t.replace(/interface: eth0/, 'interface: lo'));
    const r = await cli(['check-config', '--config', path], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^warning: vip\.address 192\.0\.2\.100\/24 lies in none of the IPv4 subnets of lo \(127\.0\.0\.1\/8\)/m);
  });

  it('keygen prints a key line usable in the key file', async () => {
    const r = await cli(['keygen', '--id', '3']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^3 [0-9a-f]{64}\n$/);
  });

  it('checks audit.key_file as the daemon would: weak or readable by others is 78, a good one is summarised', async () => {
    const key = join(dir, 'audit.key');
    // audit.key_file: the only one at section level set to "" (quorum.etcd.key_file is indented further).
    const withKey = await exampleWith((t) => t.replace(/^  key_file: ""/m, `  key_file: ${key}`));
    await writeFile(key, `${'ab'.repeat(32)}\n`);
    await chmod(key, 0o600);
    const weak = await cli(['check-config', '--config', withKey.path]);
    expect(weak.code).toBe(78);
    expect(weak.stderr).toMatch(/audit\.key_file: .*expected a secret of at least 128 bits .*, got a sequence of 2 characters repeated \(not shown/);
    await writeFile(key, '0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f9\n');
    await chmod(key, 0o640);
    const loose = await cli(['check-config', '--config', withKey.path]);
    expect(loose.code).toBe(78);
    expect(loose.stderr).toMatch(/audit\.key_file: expected a key file for the audit chain only its owner can access .*mode 0640/);
    await chmod(key, 0o600);
    const good = await cli(['check-config', '--config', withKey.path]);
    expect(good.stderr).toBe('');
    expect(good.code).toBe(0);
    expect(good.stdout).toContain(`chain keyed by ${key}`);
  });
});
