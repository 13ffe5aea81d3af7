/**
 * Redis Cluster recognised and refused by the built CLI (issue 14), against a real
 * six-node cluster on loopback (three masters, three replicas, made by `redis-cli
 * --cluster create --cluster-replicas 1`, as the project's source documents set it up):
 * `check-config` and `run` with one of its nodes as the local Redis and another as the
 * peer's exit 78 with what was found, why, and what to use instead; no command that
 * changes a server reaches any node (`INFO commandstats` before and after), no VIP is
 * added, nothing is written, and the cluster is still `cluster_state:ok` afterwards.
 * Also: a Redis whose mode the ACL user may not read is a warning, not a refusal, and a
 * Redis that does not answer a note. `run` stops before anything that needs root.
 */
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterInfo, commandCalls, startRedisCluster, stateChangesBetween } from '../helpers/redis-cluster.js';
import { startRedisServer, stopAllRedisServers, type RedisServer } from '../helpers/redis-server.js';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const CLI_TIMEOUT_MS = 10_000;
/** On loopback: an address in the range tests may use (10.77.0.0/16), checked never to appear. */
const VIP = '10.77.14.100';
const SETUP_TIMEOUT_MS = 120_000;

let dir: string;
let nodes: RedisServer[] = [];

async function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, timeout: CLI_TIMEOUT_MS, killSignal: 'SIGKILL' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** A configuration whose local Redis is `local` and whose peer's Redis is `peer`; everything it could write under `dir`. */
async function configFor(name: string, local: { port: number }, peer: { port: number }, extra = ''): Promise<string> {
  const path = join(dir, `${name}.yaml`);
  await writeFile(path, [
    'node: { name: a, address: 127.0.0.1 }',
    'peer: { address: 127.0.0.2 }',
    `advert: { key_file: ${join(dir, 'advert.key')} }`,
    `redis: { host: 127.0.0.1, port: ${local.port}${extra} }`,
    `peer_redis: { host: 127.0.0.1, port: ${peer.port} }`,
    `vip: { address: ${VIP}/24, interface: lo }`,
    `control: { socket: ${join(dir, `${name}.sock`)} }`,
    `audit: { path: ${join(dir, `${name}.audit.jsonl`)} }`,
    `state: { path: ${join(dir, `${name}.state.json`)} }`,
    '',
  ].join('\n'));
  return path;
}

async function vipOnLo(): Promise<boolean> {
  const { stdout } = await exec('ip', ['-j', 'addr', 'show', 'dev', 'lo']);
  return stdout.includes(`"${VIP}"`);
}

/** The state-changing commands every node got while `action` ran (none expected). */
async function changesDuring(action: () => Promise<void>): Promise<Record<string, Record<string, number>>> {
  const before = await Promise.all(nodes.map((n) => commandCalls(n)));
  await action();
  const after = await Promise.all(nodes.map((n) => commandCalls(n)));
  const changed: Record<string, Record<string, number>> = {};
  nodes.forEach((n, i) => {
    const grown = stateChangesBetween(before[i]!, after[i]!);
    if (Object.keys(grown).length > 0) changed[String(n.port)] = grown;
  });
  return changed;
}

/** A master and one of the replicas, by CLUSTER INFO's view of `role`. */
async function masterAndReplica(): Promise<{ master: RedisServer; replica: RedisServer }> {
  const roles = await Promise.all(nodes.map(async (n) => {
    const c = n.client();
    const role = ((await c.call('ROLE')) as unknown[])[0];
    c.disconnect();
    return role;
  }));
  const master = nodes[roles.indexOf('master')];
  const replica = nodes[roles.indexOf('slave')];
  if (!master || !replica) throw new Error(`no master and replica among ${roles.join(', ')}`);
  return { master, replica };
}

function headline(side: 'local' | 'peer', port: number): string {
  const who = side === 'local' ? `the local Redis 127.0.0.1:${port} (redis.host, redis.port)` : `the peer's Redis 127.0.0.1:${port} (peer_redis)`;
  return `${who} is a Redis Cluster node: cluster_enabled:1, cluster_state:ok, cluster_known_nodes:6; nothing was changed on it`;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rh-cluster-'));
  await writeFile(join(dir, 'advert.key'), '1 9f86d081884c7d659a2feaa0c55ad015\n');
  await chmod(join(dir, 'advert.key'), 0o600);
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build`);
  nodes = await startRedisCluster(6, 1);
}, SETUP_TIMEOUT_MS);

afterAll(async () => {
  await stopAllRedisServers();
  await rm(dir, { recursive: true, force: true });
});

describe('redis-ha and a six-node Redis Cluster', () => {
  it('check-config exits 78 naming both nodes, why, and what to use instead; nothing reaches the cluster', async () => {
    const { master, replica } = await masterAndReplica();
    const path = await configFor('check', master, replica);
    let r = { code: -1, stdout: '', stderr: '' };
    expect(await changesDuring(async () => { r = await cli(['check-config', '--config', path]); })).toEqual({});
    expect(r.stderr).toBe('');
    expect(r.code).toBe(78);
    const lines = r.stdout.split('\n');
    expect(lines).toContain(`error: ${headline('local', master.port)}`);
    expect(lines).toContain(`error: ${headline('peer', replica.port)}`);
    expect(r.stdout).toMatch(/^ {2}why: .*Redis Cluster elects its own masters .*MOVED redirections/m);
    expect(r.stdout).toMatch(/^ {2}instead: let the cluster fail over by itself .*CLUSTER FAILOVER on the replica that should take over; .*cluster-aware client/m);
    for (const node of nodes) expect((await clusterInfo(node)).get('cluster_state')).toBe('ok');
  });

  it('run exits 78 before doing anything: no command that changes a node, no VIP, no state or audit file, no socket', async () => {
    const { master, replica } = await masterAndReplica();
    const path = await configFor('run', replica, master);
    let r = { code: -1, stdout: '', stderr: '' };
    expect(await changesDuring(async () => { r = await cli(['run', '--config', path]); })).toEqual({});
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('redis-ha: refusing to start:\n');
    expect(r.stderr).toContain(`  ${headline('local', replica.port)}\n`);
    expect(r.stderr).toContain(`  ${headline('peer', master.port)}\n`);
    expect(r.stderr).toMatch(/^ {2}instead: .*CLUSTER FAILOVER/m);
    expect(await vipOnLo()).toBe(false);
    for (const file of ['run.state.json', 'run.audit.jsonl', 'run.sock']) expect(existsSync(join(dir, file)), file).toBe(false);
    for (const node of nodes) expect((await clusterInfo(node)).get('cluster_state')).toBe('ok');
  });

  it('a standalone local Redis with a cluster node as the peer is refused all the same', async () => {
    const standalone = await startRedisServer();
    const path = await configFor('peer-only', standalone, nodes[0]!);
    const r = await cli(['check-config', '--config', path]);
    expect(r.code).toBe(78);
    expect(r.stdout).toContain(`local Redis 127.0.0.1:${standalone.port} is standalone (cluster_enabled:0)\n`);
    expect(r.stdout).toContain(`error: ${headline('peer', nodes[0]!.port)}`);
  });
});

describe('check-config when the cluster mode cannot be read, or Redis does not answer', () => {
  it('an ACL user without +info is a warning naming the rules to grant, and a peer not answering a note: exit 0', async () => {
    const server = await startRedisServer();
    const admin = server.client();
    await admin.call('ACL', 'SETUSER', 'hauser', 'on', '>secret', '~*', '&*', '+@all', '-info', '-cluster');
    admin.disconnect();
    const closed = await startRedisServer();
    const closedPort = closed.port;
    await closed.stop();
    const path = await configFor('acl', server, { port: closedPort }, ', username: hauser');
    const r = await cli(['check-config', '--config', path], { REDIS_HA_REDIS_PASSWORD: 'secret' });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^warning: cannot tell whether the local Redis 127\\.0\\.0\\.1:${server.port} \\(redis\\.host, redis\\.port\\) is a Redis Cluster node: ` +
      'INFO is not permitted for this ACL user \\(NOPERM .*\\); it is taken for a standalone server .*ACL SETUSER hauser \\+info \\+cluster\\|info$', 'm'));
    expect(r.stdout).toMatch(new RegExp(`^note: the peer's Redis 127\\.0\\.0\\.1:${closedPort} \\(peer_redis\\) could not be asked now \\(connection refused\\)`, 'm'));
  });
});
