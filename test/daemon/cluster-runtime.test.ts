/**
 * The running daemon finds its local Redis restarted as a Redis Cluster node (issue 14):
 * the real `Runtime` and the real Redis adapter on real time against a real
 * `redis-server`, restarted with `--cluster-enabled yes` while this node is MASTER with
 * the VIP (a recording VIP adapter: nothing touches the host's addresses). The health
 * check reports the fact, the core goes FAULT and gives the VIP up, and nothing that
 * changes a server reaches the cluster node in the seconds after (its `INFO
 * commandstats`), with `prefer: safety` so that a fence would be due on any other way
 * out of MASTER. `status` then says critical, with the reason.
 * Timing-sensitive (real time, 100 ms checks): run it under the e2e lock.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { NO_QUORUM, initialState } from '../../src/core/state.js';
import type { AdvertBody } from '../../src/core/types.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { Runtime, type RuntimeDeps } from '../../src/daemon/runtime.js';
import { buildStatus } from '../../src/daemon/status.js';
import { monotonicClock, nodeScheduler } from '../../src/daemon/time.js';
import { coreConfig } from '../core/fixtures.js';
import { CLUSTER_ARGS, commandCalls, stateChangesBetween } from '../helpers/redis-cluster.js';
import { closeControlsAfterEach, endpoint, makeControl } from '../helpers/redis-control.js';
import { startRedisServer } from '../helpers/redis-server.js';

closeControlsAfterEach();

const HEALTH_INTERVAL_MS = 100;
const SETTLE_TIMEOUT_MS = 10_000;
/** How long the node is watched once it refused the cluster node: many health checks, adverts and timers. */
const WATCH_MS = 2_000;
const POLL_MS = 20;

const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const rt of runtimes.splice(0)) {
    rt.dispatch({ type: 'shutdown-requested' });
    await Promise.race([rt.done, new Promise((resolve) => setTimeout(resolve, 2_000))]);
  }
});

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

describe('the running daemon and a local Redis restarted as a Redis Cluster node', () => {
  it('goes FAULT, gives the VIP up, sends that Redis nothing that changes it, and status says critical', { timeout: 30_000 }, async () => {
    const server = await startRedisServer();
    const peerRedis = { host: '127.0.0.1', port: 1 };
    const control = makeControl({ local: endpoint(server), peer: endpoint(peerRedis), timeoutMs: 300 });
    const core = coreConfig({
      nodeName: 'a', nodeAddress: '127.0.0.1', priority: 100, advertIntervalMs: 100, peerRedis,
      quorum: { ...NO_QUORUM, prefer: 'safety' },
    });
    const log: string[] = [];
    const adverts: AdvertBody[] = [];
    let vip = false;
    const clock = monotonicClock();
    const deps: RuntimeDeps = {
      core, healthIntervalMs: HEALTH_INTERVAL_MS, reconcileIntervalMs: 60_000,
      redis: {
        check: () => control.check(),
        promote: (from, options) => { log.push('promote'); return control.promote(from, options); },
        replicateFrom: (master, options) => { log.push('replicate'); return control.replicateFrom(master, options); },
        switchOver: (call) => { log.push('switchover'); return control.switchOver({ ...call, method: 'auto', maxLagBytes: 1, maxAckAgeS: 2 }); },
        disconnectClients: () => { log.push('disconnect'); return control.disconnectClients(); },
        fence: (writes) => { log.push(`fence:${writes}`); return control.fence(writes); },
        onConnectionLost: (listener) => control.onConnectionLost(listener),
        probePeer: () => control.probePeer(),
      },
      quorum: null,
      link: async () => ({ up: true, detail: 'up' }),
      vip: {
        isPresent: async () => vip,
        claim: async () => { log.push('claim'); const changed = !vip; vip = true; return { changed }; },
        release: async () => { log.push('release'); const changed = vip; vip = false; return { changed }; },
        announce: async () => undefined,
      },
      adverts: { send: (body) => void adverts.push(body), sendMessage: () => undefined },
      audit: { append: async () => undefined },
      persist: async () => undefined,
      logger: silentLogger(), clock, scheduler: nodeScheduler, stallThresholdMs: 1_000,
    };
    const rt = new Runtime(deps, initialState(clock.now(), { epoch: 0, knownEpoch: 0 }));
    runtimes.push(rt);
    rt.start();
    await waitFor('MASTER with the VIP (the standalone Redis adopted)', () => rt.current.role === 'MASTER' && rt.current.vipClaimed);
    expect(log).toContain('fence:with-replica'); // prefer safety: the standalone master's own fence

    const mark = log.length;
    await server.restart(CLUSTER_ARGS);
    await waitFor('FAULT on the cluster node', () => rt.current.role === 'FAULT' && rt.current.health.clusterEnabled === true);
    const seen = await commandCalls(server);
    await new Promise((resolve) => setTimeout(resolve, WATCH_MS));

    console.log(`after the restart: ${log.slice(mark).join(', ')}; FAULT because: ${rt.current.reason}`);
    expect(rt.current.role).toBe('FAULT');
    expect(vip).toBe(false);
    const after = log.slice(mark);
    expect(after).toContain('release');
    expect(after.filter((e) => ['claim', 'promote', 'replicate', 'switchover', 'disconnect'].includes(e))).toEqual([]);
    // Since its start, the cluster node got no state-changing command (a fence on the way
    // out of MASTER, if the check found the restart's gap first, was refused on the
    // control connection: `refuseClusterNode`).
    const calls = await commandCalls(server);
    expect(stateChangesBetween(new Map(), calls)).toEqual({});
    expect((calls.get('info') ?? 0) - (seen.get('info') ?? 0), 'health checks kept running').toBeGreaterThan(5);
    expect(adverts.at(-1)?.flags.fault).toBe(true);

    const report = buildStatus({
      state: rt.current, now: clock.now(), wallNow: Date.now(),
      node: { name: 'a', address: '127.0.0.1', priority: 100 }, vip: '10.77.14.100/24 on lo', holdsVip: vip,
      estimate: { redisFailureMs: 1, redisCrashMs: 1, hostLossMs: 1, resignMs: 1 }, maxLagBytes: 1, adverts: {},
      quorum: { backend: 'none', prefer: 'safety' },
    });
    expect(report.verdict).toBe('critical');
    expect(report.problems[0]).toMatch(/^this node is FAULT: local Redis 127\.0\.0\.1:\d+ is a Redis Cluster node \(cluster_enabled:1, cluster_state:fail, cluster_known_nodes:1 \(not joined to any other node yet\)\): redis-ha does not manage Redis Cluster/);
    expect(report.redis.clusterEnabled).toBe(true);
  });
});
