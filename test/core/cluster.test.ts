/**
 * A local Redis found to be a Redis Cluster node (issue 14) in the decision core: the
 * health check reports the fact (`clusterEnabled`), the core refuses it as proof, like a
 * refused connection (FAULT at once, in maintenance too), gives up the VIP and the leader
 * key, and emits nothing that would change that Redis (no promotion, demotion, switchover,
 * client eviction or fence), whatever else happens while it stays one. `status` calls it
 * critical with the reason.
 */
import { describe, expect, it } from 'vitest';
import { initialState, type CoreConfig, type CoreState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import type { Action, Event } from '../../src/core/types.js';
import { buildStatus } from '../../src/daemon/status.js';
import { A_ADDR, B_ADDR, REPL_A, aCfg, advert, bAdvert, coreConfig, fired, heard, last, masterSnap, ok, replicaSnap, run, types } from './fixtures.js';
import { bCfg as bEtcd, masterB } from './quorum-fixtures.js';

const DETAIL = 'local Redis 127.0.0.1:7001 is a Redis Cluster node (cluster_enabled:1, cluster_state:ok, cluster_known_nodes:6): ' +
  'redis-ha does not manage Redis Cluster and sends it nothing';
const cluster: Event = { type: 'health-checked', ok: false, detail: DETAIL, redis: null, clusterEnabled: true };
const refused: Event = { type: 'health-checked', ok: false, detail: 'connection refused', redis: null, down: true };

/** The actions that change the local Redis: none may be emitted for a cluster node. */
const REDIS_CHANGES: ReadonlySet<Action['type']> = new Set(['promote-redis', 'replicate-from', 'switchover-redis', 'disconnect-clients', 'fence-redis']);

function redisChanges(actions: readonly Action[]): Action[] {
  return actions.filter((a) => REDIS_CHANGES.has(a.type));
}

/** Feeds `events` from `start`, returning the last state and every action emitted on the way. */
function feed(config: CoreConfig, start: CoreState, events: readonly (readonly [number, Event])[]): { state: CoreState; actions: Action[] } {
  let state = start;
  const actions: Action[] = [];
  for (const [t, e] of events) {
    const r = step(state, e, t, config);
    actions.push(...r.actions);
    state = r.state;
  }
  return { state, actions };
}

const safety: CoreConfig = { ...aCfg, quorum: { ...aCfg.quorum, prefer: 'safety' } };

/** a MASTER holding the VIP with b a live BACKUP, under `config`. */
function master(config: CoreConfig): CoreState {
  return last(run(config, [
    [0, { type: 'started' }],
    [10, ok(masterSnap({ replId: REPL_A, offset: 1000, connectedReplicas: 1 }))],
    [20, heard(bAdvert({ state: 'BACKUP' }), B_ADDR)],
    [30, { type: 'vip-claimed' }],
  ])).state;
}

/** What the node goes through while its Redis stays a cluster node: checks, the peer's adverts, timers, operators. */
function whileCluster(from: number): (readonly [number, Event])[] {
  const events: (readonly [number, Event])[] = [];
  for (let i = 0; i < 5; i++) {
    const t = from + i * 500;
    events.push([t, cluster], [t + 100, heard(advert({ state: 'MASTER', epoch: 5, flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: true } }), A_ADDR)]);
    events.push([t + 200, heard(bAdvert({ state: 'MASTER', epoch: 5 }), B_ADDR)], [t + 300, fired('master-down')], [t + 400, fired('advert')]);
  }
  events.push([from + 3000, { type: 'failover-requested', requestId: 'f1', user: 'root(uid 0)', pid: 1, acceptDataLoss: true }]);
  events.push([from + 3010, { type: 'switchover-requested', requestId: 's1', timeoutMs: 5000, force: true, user: 'root(uid 0)', origin: 'local' }]);
  return events;
}

describe('a local Redis that is a Redis Cluster node', () => {
  it('at start-up: FAULT at the first check, with the refusal as the reason; a VIP found at start-up goes', () => {
    const r = feed(coreConfig(), initialState(0, { epoch: 0, knownEpoch: 0 }), [
      [0, { type: 'started', vipPresent: true }],
      [10, cluster],
    ]);
    expect(r.state.role).toBe('FAULT');
    expect(r.state.reason).toBe(`local Redis unhealthy at start-up: ${DETAIL}`);
    expect(r.state.health).toMatchObject({ healthy: false, clusterEnabled: true });
    expect(types(r.actions)).toContain('release-vip');
    expect(redisChanges(r.actions)).toEqual([]);
  });

  it('on a BACKUP: FAULT at once (not after `fall` checks), then nothing sent to that Redis, whatever happens', () => {
    const backup = last(run(coreConfig(), [[0, { type: 'started' }], [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER', epoch: 1 }))]])).state;
    expect(backup.role).toBe('BACKUP');
    const r = feed(coreConfig(), backup, [[100, cluster], ...whileCluster(200)]);
    expect(r.state.role).toBe('FAULT');
    expect(r.state.reason).toBe(DETAIL);
    expect(redisChanges(r.actions)).toEqual([]);
    // The peer hears FAULT: its takeover does not catch up from (and so never touches) this Redis.
    const adverts = r.actions.filter((a): a is Extract<Action, { type: 'send-advert' }> => a.type === 'send-advert');
    expect(adverts.length).toBeGreaterThan(0);
    expect(adverts.every((a) => a.advert.flags.fault && a.advert.redis.role === 'unknown')).toBe(true);
    // The operator's requests are refused, not carried out.
    expect(r.actions).toContainEqual(expect.objectContaining({ type: 'reply', requestId: 'f1', ok: false }));
    expect(r.actions).toContainEqual(expect.objectContaining({ type: 'reply', requestId: 's1', ok: false }));
  });

  it('on a MASTER with prefer safety: FAULT, the VIP released, and no write fence (CONFIG SET) sent to it', () => {
    const m = master(safety);
    expect(m.role).toBe('MASTER');
    const first = step(m, cluster, 100, safety);
    expect(first.state.role).toBe('FAULT');
    expect(types(first.actions)).toEqual(['release-vip', 'send-advert']);
    // A refused connection, by contrast, is fenced (the Redis may come back writable).
    expect(types(step(m, refused, 100, safety).actions)).toContain('fence-redis');
    const r = feed(safety, first.state, whileCluster(200));
    expect(r.state.role).toBe('FAULT');
    expect(redisChanges(r.actions)).toEqual([]);
  });

  it('on a MASTER in maintenance: FAULT all the same (a failing Redis would be left to the operator)', () => {
    const m: CoreState = { ...master(aCfg), maintenance: { on: true, gen: 1 } };
    const frozen = step(step(m, { ...refused, down: false }, 100, aCfg).state, { ...refused, down: false }, 200, aCfg);
    expect(frozen.state.role).toBe('MASTER');
    const r = step(m, cluster, 100, aCfg);
    expect(r.state.role).toBe('FAULT');
    expect(types(r.actions)).toContain('release-vip');
    expect(redisChanges(r.actions)).toEqual([]);
    // Also when its checks were already failing (held as MASTER by maintenance).
    const later = step(frozen.state, cluster, 300, aCfg);
    expect(later.state.role).toBe('FAULT');
    expect(redisChanges(later.actions)).toEqual([]);
  });

  it('with etcd: the master gives the leader key up at once instead of fencing that Redis first', () => {
    const m = masterB();
    expect(m.role).toBe('MASTER');
    expect(m.quorum.held).not.toBeNull();
    const r = step(m, cluster, 5300, bEtcd);
    expect(r.state.role).toBe('FAULT');
    expect(r.state.quorum.held).toBeNull();
    expect(types(r.actions)).toEqual(['release-vip', 'release-quorum', 'send-advert']);
    const after = feed(bEtcd, r.state, whileCluster(5400));
    expect(redisChanges(after.actions)).toEqual([]);
  });

  it('is not sticky: a Redis restarted standalone is healthy again after `rise` checks and follows the master', () => {
    const backup = last(run(coreConfig(), [[0, { type: 'started' }], [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER', epoch: 1 }))]])).state;
    const faulted = step(backup, cluster, 100, coreConfig()).state;
    const r = feed(coreConfig(), faulted, [
      [200, heard(advert({ state: 'MASTER', epoch: 1 }))],
      [300, ok(masterSnap())],
      [400, ok(masterSnap())],
    ]);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.health.clusterEnabled).toBeUndefined();
    // Once it is no cluster node, a standalone master is re-pointed at the peer as usual.
    expect(types(r.actions)).toContain('replicate-from');
  });

  it('status: critical, the refusal on the verdict line and `redis.clusterEnabled` in --json', () => {
    const faulted = step(master(aCfg), cluster, 100, aCfg).state;
    const report = buildStatus({
      state: faulted, now: 200, wallNow: 1_800_000_000_000,
      node: { name: 'a', address: A_ADDR, priority: 100 }, vip: '10.77.0.100/24 on eth0', holdsVip: false,
      estimate: { redisFailureMs: 1, redisCrashMs: 1, hostLossMs: 1, resignMs: 1 }, maxLagBytes: 1, adverts: {},
      quorum: { backend: 'none', prefer: 'availability' },
    });
    expect(report.verdict).toBe('critical');
    expect(report.problems[0]).toBe(`this node is FAULT: ${DETAIL}`);
    expect(report.redis).toMatchObject({ healthy: false, clusterEnabled: true, detail: DETAIL });
    expect(JSON.parse(JSON.stringify(report)).redis.clusterEnabled).toBe(true);
  });
});
