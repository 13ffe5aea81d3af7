/**
 * Redis Cluster recognised and refused (issue 14), in the Redis adapter: the pure reading
 * of `INFO cluster` / `CLUSTER INFO` and the refusal's words (`cluster-mode.ts`), then real
 * `redis-server` processes: a single `--cluster-enabled yes` node (not joined: `cluster_state:fail`,
 * one known node), ACL users that may not run INFO or CLUSTER INFO, a standalone server
 * restarted as a cluster node under a running health check, and every path on which the
 * adapter would change a server (promotion, demotion, the takeover's catch-up and fence
 * of the peer): none of them sends a cluster node a command that changes it
 * (`INFO commandstats` before and after).
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { probeClusterMode } from '../../../src/adapters/redis/cluster-check.js';
import {
  clusterFacts,
  clusterModeOf,
  clusterRefusalHeadline,
  clusterRefusalLine,
  clusterRefusalLines,
  clusterUnknownText,
  clusterVerdict,
  parseClusterInfo,
  type ClusterNode,
} from '../../../src/adapters/redis/cluster-mode.js';
import { RedisControl } from '../../../src/adapters/redis/index.js';
import { checkClusterMode } from '../../../src/daemon/startup.js';
import { CLUSTER_ARGS, commandCalls, startClusterNode, stateChangesBetween } from '../../helpers/redis-cluster.js';
import { closeControlsAfterEach, endpoint, hostPort, makeControl } from '../../helpers/redis-control.js';
import { startRedisServer, type RedisServer } from '../../helpers/redis-server.js';

closeControlsAfterEach();

const LOCAL: ClusterNode = { side: 'local', host: '127.0.0.1', port: 7001 };
const PEER: ClusterNode = { side: 'peer', host: '127.0.0.1', port: 7002, username: 'hauser' };
const UNJOINED = { state: 'fail', knownNodes: 1, unreadable: null };
const UNJOINED_HEADLINE = 'the local Redis 127.0.0.1:7001 (redis.host, redis.port) is a Redis Cluster node: cluster_enabled:1, ' +
  'cluster_state:fail, cluster_known_nodes:1 (not joined to any other node yet); nothing was changed on it';
const PROBE_MS = 1_000;
const CHECK_AGAIN_MS = 10_000;

/** An ACL user on `server` with every command but the ones `minus` names. */
async function aclUser(server: RedisServer, name: string, minus: readonly string[]): Promise<void> {
  const c = server.client();
  await c.call('ACL', 'SETUSER', name, 'on', '>pw', '~*', '&*', '+@all', ...minus.map((m) => `-${m}`));
  c.disconnect();
}

/** A health check repeated (bounded) until `done` holds: the first after a restart may meet the closed connection. */
async function checkUntil(control: RedisControl, done: (r: Awaited<ReturnType<RedisControl['check']>>) => boolean): Promise<Awaited<ReturnType<RedisControl['check']>>> {
  const deadline = Date.now() + CHECK_AGAIN_MS;
  for (;;) {
    const r = await control.check();
    if (done(r) || Date.now() > deadline) return r;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('what INFO cluster and CLUSTER INFO say (pure)', () => {
  it('cluster_enabled 1 is a cluster node, 0 standalone; an empty section (Redis < 3.0) or another value is unknown, not standalone', () => {
    expect(clusterModeOf('# Cluster\r\ncluster_enabled:1\r\n').kind).toBe('cluster');
    expect(clusterModeOf('# Cluster\r\ncluster_enabled:0\r\n')).toEqual({ kind: 'standalone' });
    expect(clusterModeOf('')).toEqual({ kind: 'unknown', why: 'INFO cluster has no cluster_enabled field (a Redis before 3.0 has no cluster section)' });
    expect(clusterModeOf('cluster_enabled:yes\r\n')).toEqual({ kind: 'unknown', why: 'INFO cluster reports cluster_enabled:yes, neither 0 nor 1' });
  });

  it('reads cluster_state and cluster_known_nodes from CLUSTER INFO', () => {
    expect(parseClusterInfo('cluster_state:ok\r\ncluster_slots_assigned:16384\r\ncluster_known_nodes:6\r\n')).toEqual({ state: 'ok', knownNodes: 6, unreadable: null });
    expect(parseClusterInfo('cluster_state:fail\r\ncluster_known_nodes:1\r\n')).toEqual(UNJOINED);
    expect(parseClusterInfo('')).toEqual({ state: null, knownNodes: null, unreadable: null });
  });

  it('the refusal of a node that is cluster-enabled but not joined yet says what was found, why, and what to use instead', () => {
    expect(clusterFacts(UNJOINED)).toBe('cluster_enabled:1, cluster_state:fail, cluster_known_nodes:1 (not joined to any other node yet)');
    expect(clusterRefusalHeadline(LOCAL, UNJOINED)).toBe(UNJOINED_HEADLINE);
    const lines = clusterRefusalLines([clusterRefusalHeadline(LOCAL, UNJOINED)]);
    expect(lines[0]).toBe(UNJOINED_HEADLINE);
    expect(lines[1]).toMatch(/^why: .*Redis Cluster elects its own masters.*MOVED redirections.*REPLICAOF, CONFIG SET or CLIENT PAUSE from redis-ha would fight the cluster's own failover/);
    expect(lines[2]).toMatch(/^instead: let the cluster fail over by itself.*CLUSTER FAILOVER on the replica that should take over.*cluster-aware client/);
    expect(lines[3]).toContain('cluster-enabled no');
    expect(clusterRefusalLine(LOCAL, UNJOINED)).toBe(
      'local Redis 127.0.0.1:7001 is a Redis Cluster node (cluster_enabled:1, cluster_state:fail, cluster_known_nodes:1 (not joined to any other node yet)): ' +
        'redis-ha does not manage Redis Cluster and sends it nothing; the cluster fails over by itself, CLUSTER FAILOVER on a replica moves a master, ' +
        'clients need a cluster-aware client (point redis-ha at standalone servers only)',
    );
    // CLUSTER INFO refused: still refused, and the facts say why the state is missing.
    expect(clusterFacts({ state: null, knownNodes: null, unreadable: 'CLUSTER INFO is not permitted for this ACL user (NOPERM ...)' }))
      .toBe('cluster_enabled:1; CLUSTER INFO could not be read: CLUSTER INFO is not permitted for this ACL user (NOPERM ...) (grant +info +cluster|info)');
  });

  it('an unreadable mode is a warning naming the ACL rules; an unreachable server a note; the verdict sorts them', () => {
    expect(clusterUnknownText(PEER, 'INFO is not permitted')).toBe(
      "cannot tell whether the peer's Redis 127.0.0.1:7002 (peer_redis) is a Redis Cluster node: INFO is not permitted; it is taken for a standalone " +
        'server (a cluster node must not be managed by redis-ha). To let redis-ha check, allow INFO and CLUSTER INFO: ACL SETUSER hauser +info +cluster|info',
    );
    const verdict = clusterVerdict([
      { node: LOCAL, probe: { reachable: true, mode: { kind: 'cluster', info: UNJOINED } } },
      { node: PEER, probe: { reachable: false, detail: 'connection refused' } },
    ]);
    expect(verdict.refusals).toEqual([UNJOINED_HEADLINE]);
    expect(verdict.notes).toEqual(["the peer's Redis 127.0.0.1:7002 (peer_redis) could not be asked now (connection refused): whether it is a Redis Cluster node is checked again before redis-ha sends it any command that changes it"]);
    expect(clusterVerdict([{ node: LOCAL, probe: { reachable: true, mode: { kind: 'standalone' } } }]))
      .toEqual({ refusals: [], warnings: [], notes: [], standalone: ['local Redis 127.0.0.1:7001 is standalone (cluster_enabled:0)'] });
  });
});

describe('against real servers', () => {
  it('a single cluster-enabled node: cluster_state:fail, one known node, and the same message as the pure function', async () => {
    const node = await startClusterNode();
    const probe = await probeClusterMode(endpoint(node), PROBE_MS, 'redis-ha-test');
    expect(probe).toEqual({ reachable: true, mode: { kind: 'cluster', info: UNJOINED } });
    const verdict = await RedisControl.clusterModes({
      local: endpoint(node), peer: endpoint({ host: '127.0.0.1', port: 1 }), health: { timeoutMs: 300 }, promotion: { peerTimeoutMs: 100 },
    });
    expect(verdict.refusals).toEqual([clusterRefusalHeadline({ side: 'local', ...hostPort(node) }, UNJOINED)]);
    expect(verdict.refusals[0]).toContain('cluster_state:fail, cluster_known_nodes:1 (not joined to any other node yet)');
    expect(verdict.notes).toHaveLength(1);
    expect(verdict.notes[0]).toMatch(/^the peer's Redis 127\.0\.0\.1:1 \(peer_redis\) could not be asked now \(connection refused\)/);
  });

  it('an ACL user without +info: the mode is unknown (NOPERM), warned about with the rules to grant, not refused', async () => {
    const server = await startRedisServer();
    await aclUser(server, 'noinfo', ['info', 'cluster']);
    const user = { ...endpoint(server, 'pw'), username: 'noinfo' };
    const probe = await probeClusterMode(user, PROBE_MS, 'redis-ha-test');
    expect(probe.reachable && probe.mode.kind).toBe('unknown');
    expect(probe.reachable && probe.mode.kind === 'unknown' && probe.mode.why).toMatch(/^INFO is not permitted for this ACL user \(NOPERM .*info.*\)$/);
    // What `run` logs at start-up (and `check-config` prints as a warning).
    const logged: string[] = [];
    const logger = pino({ level: 'debug' }, new Writable({ write(chunk, _enc, done) { logged.push(String(chunk)); done(); } }));
    await checkClusterMode({ redis: user, peerRedis: endpoint({ host: '127.0.0.1', port: 1 }), health: { intervalMs: 500, timeoutMs: 300, fall: 2, rise: 2 },
      promotion: { waitForSync: true, maxSyncWaitMs: 1000, peerTimeoutMs: 100, preDelayMs: 0, syncDelayMs: 0, maxLagBytes: 1, recoveryBlockMs: 0 } }, logger);
    const warning = logged.map((l) => JSON.parse(l) as { level: number; msg: string; warning?: string }).find((l) => l.level === 40);
    expect(warning?.msg).toBe('Redis cluster mode unknown');
    expect(warning?.warning).toMatch(/^cannot tell whether the local Redis 127\.0\.0\.1:\d+ \(redis\.host, redis\.port\) is a Redis Cluster node: INFO is not permitted .*NOPERM.*ACL SETUSER noinfo \+info \+cluster\|info$/);
  });

  it('an ACL user with +info but without +cluster|info on a cluster node: still refused, the state said unreadable', async () => {
    const node = await startClusterNode();
    await aclUser(node, 'nocluster', ['cluster']);
    const probe = await probeClusterMode({ ...endpoint(node, 'pw'), username: 'nocluster' }, PROBE_MS, 'redis-ha-test');
    expect(probe.reachable && probe.mode.kind).toBe('cluster');
    const info = probe.reachable && probe.mode.kind === 'cluster' ? probe.mode.info : null;
    expect(info).toMatchObject({ state: null, knownNodes: null });
    expect(info?.unreadable).toMatch(/^CLUSTER INFO is not permitted for this ACL user \(NOPERM .*cluster\|info.*\)$/);
  });

  it('the health check of a standalone Redis restarted with --cluster-enabled yes refuses it, and accepts it again restarted standalone', async () => {
    const server = await startRedisServer();
    const control = makeControl({ local: endpoint(server) });
    expect((await control.check()).ok).toBe(true);
    await server.restart(CLUSTER_ARGS);
    const refused = await checkUntil(control, (r) => r.clusterEnabled === true);
    expect(refused).toMatchObject({ ok: false, clusterEnabled: true, redis: null });
    expect(refused.detail).toBe(clusterRefusalLine({ side: 'local', ...hostPort(server) }, UNJOINED));
    // The connection is kept, and every check on it says so again.
    expect(await control.check()).toMatchObject({ ok: false, clusterEnabled: true });
    await server.restart([]);
    const healthy = await checkUntil(control, (r) => r.ok);
    expect(healthy.ok).toBe(true);
    expect(healthy.clusterEnabled).toBeUndefined();
  });

  it('a local Redis that is a cluster node: promotion, demotion, the fence and client eviction stop before any command that changes it', async () => {
    const node = await startClusterNode();
    const master = await startRedisServer();
    const control = makeControl({ local: endpoint(node), peer: endpoint(master) });
    const before = await commandCalls(node);
    const fence = await control.fence('refused');
    expect(fence.ok).toBe(false);
    expect(fence.detail).toMatch(/^CONFIG SET min-replicas-to-write 1000000 failed: local Redis 127\.0\.0\.1:\d+ is a Redis Cluster node \(cluster_enabled:1\)/);
    expect(await control.disconnectClients()).toContain('is a Redis Cluster node');
    const promoted = await control.promote(hostPort(master));
    expect(promoted.ok).toBe(false);
    expect(promoted.detail).toContain('is a Redis Cluster node (cluster_enabled:1)');
    const demoted = await control.replicateFrom(hostPort(master));
    expect(demoted.ok).toBe(false);
    expect(demoted.detail).toContain('is a Redis Cluster node (cluster_enabled:1)');
    expect(stateChangesBetween(before, await commandCalls(node))).toEqual({});
    expect(stateChangesBetween(new Map(), await commandCalls(master))).toEqual({});
  });

  it('a local Redis restarted as a cluster node between two health checks gets no fence on the control connection it had', async () => {
    const server = await startRedisServer();
    const control = makeControl({ local: endpoint(server) });
    expect((await control.fence('with-replica')).ok).toBe(true); // a CONFIG SET on the standalone server
    await server.restart(CLUSTER_ARGS);
    const fence = await control.fence('refused');
    expect(fence.ok).toBe(false);
    expect(fence.detail).toContain('is a Redis Cluster node (cluster_enabled:1)');
    expect(stateChangesBetween(new Map(), await commandCalls(server))).toEqual({});
  });

  it('a peer that is a cluster node: the takeover skips its catch-up and fence, the demotion will not follow it, the probe names it', async () => {
    const node = await startClusterNode();
    const local = await startRedisServer();
    const control = makeControl({ local: endpoint(local), peer: endpoint(node) });
    const before = await commandCalls(node);

    const promoted = await control.promote(hostPort(node));
    expect(promoted.ok).toBe(true); // the local Redis is promoted with what it has
    expect(promoted.detail).toMatch(/catch-up skipped: peer 127\.0\.0\.1:\d+ is a Redis Cluster node \(cluster_enabled:1\): redis-ha sends it nothing/);
    const fenced = await control.promote(hostPort(node), { requireFence: true });
    expect(fenced.ok).toBe(false); // a promotion that must go through that Redis is not made

    const demoted = await control.replicateFrom(hostPort(node));
    expect(demoted.ok).toBe(false);
    expect(demoted.detail).toMatch(/refused: 127\.0\.0\.1:\d+ is a Redis Cluster node \(cluster_enabled:1\): not replicating from it/);
    expect((await control.check()).redis?.role).toBe('master');

    expect((await control.probePeer()).detail).toBe('answered as master, a Redis Cluster node (cluster_enabled:1): redis-ha sends it nothing');
    expect(stateChangesBetween(before, await commandCalls(node))).toEqual({});
    // The local Redis was never pointed at it either.
    expect((await commandCalls(local)).get('replicaof') ?? 0).toBe(0);
  });
});
