/**
 * Real Redis Cluster nodes on loopback for the tests of issue 14 (a cluster node is
 * recognised and refused): `redis-server --cluster-enabled yes` started and tracked by
 * `redis-server.ts` (free ports, a private directory each, stopped by PID), joined into a
 * cluster with `redis-cli --cluster create ... --cluster-replicas R --cluster-yes`, and
 * waited for, bounded, until every node reports `cluster_state:ok`. Also what the tests
 * read off a node: `CLUSTER INFO` and the call counts of `INFO commandstats`.
 */
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { startRedisServer, type RedisServer } from './redis-server.js';

const exec = promisify(execFile);

/** Where Debian installs the CLI. */
export const REDIS_CLI_BIN = process.env['REDIS_CLI_BIN'] ?? '/usr/bin/redis-cli';

/**
 * The arguments that make a node a cluster node. `nodes.conf` is relative: the server
 * runs in its own temporary directory (`--dir`, and its working directory), so it lands there.
 */
export const CLUSTER_ARGS: readonly string[] = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '5000'];

const CREATE_TIMEOUT_MS = 60_000;
const STATE_OK_TIMEOUT_MS = 30_000;
const POLL_MS = 100;

/** The commands that change a server, by their `cmdstat_` name: none may reach a cluster node from redis-ha. */
export const STATE_CHANGING_COMMANDS: readonly string[] = [
  'replicaof', 'slaveof', 'config|set', 'client|pause', 'client|unpause', 'client|kill', 'failover', 'cluster|failover',
];

/** `CLUSTER INFO` of a node, field by field. */
export async function clusterInfo(server: RedisServer): Promise<Map<string, string>> {
  const client = server.client();
  try {
    const text = String(await client.call('CLUSTER', 'INFO'));
    return new Map(text.split(/\r?\n/).filter((l) => l.includes(':')).map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)] as [string, string]));
  } finally {
    client.disconnect();
  }
}

/** Calls per command of `INFO commandstats` (`config|set` for `cmdstat_config|set`). */
export async function commandCalls(server: RedisServer): Promise<Map<string, number>> {
  const client = server.client();
  try {
    const text = await client.info('commandstats');
    const calls = new Map<string, number>();
    for (const line of text.split(/\r?\n/)) {
      const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line);
      if (m) calls.set(m[1]!, Number(m[2]));
    }
    return calls;
  } finally {
    client.disconnect();
  }
}

/** The state-changing commands whose call count grew between two `commandCalls` readings, with the growth. */
export function stateChangesBetween(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const grown: Record<string, number> = {};
  for (const name of STATE_CHANGING_COMMANDS) {
    const delta = (after.get(name) ?? 0) - (before.get(name) ?? 0);
    if (delta !== 0) grown[name] = delta;
  }
  return grown;
}

/** Waits (bounded) until `server` reports `cluster_state:ok`. */
export async function waitClusterOk(server: RedisServer, timeoutMs = STATE_OK_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  while (Date.now() < deadline) {
    last = (await clusterInfo(server)).get('cluster_state') ?? '?';
    if (last === 'ok') return;
    await sleep(POLL_MS);
  }
  throw new Error(`node ${server.host}:${server.port} not cluster_state:ok within ${timeoutMs} ms (last: ${last})`);
}

/** A single cluster-enabled node, not joined to any other (`cluster_state:fail`, one known node). */
export function startClusterNode(): Promise<RedisServer> {
  return startRedisServer({ args: CLUSTER_ARGS });
}

/**
 * `count` cluster nodes joined into one cluster with `replicas` replicas per master
 * (`redis-cli --cluster create`), every node `cluster_state:ok`. Stop them with
 * `stopAllRedisServers()`.
 */
export async function startRedisCluster(count = 6, replicas = 1): Promise<RedisServer[]> {
  const nodes = await Promise.all(Array.from({ length: count }, () => startClusterNode()));
  const addresses = nodes.map((n) => `${n.host}:${n.port}`);
  try {
    await exec(REDIS_CLI_BIN, ['--cluster', 'create', ...addresses, '--cluster-replicas', String(replicas), '--cluster-yes'], {
      timeout: CREATE_TIMEOUT_MS, killSignal: 'SIGKILL',
    });
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`redis-cli --cluster create failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
  }
  for (const node of nodes) await waitClusterOk(node);
  return nodes;
}
