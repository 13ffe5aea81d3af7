/**
 * Builders for decision-core tests: a node configuration, Redis snapshots, adverts and
 * a `run` helper that feeds events in order. Time is a plain number.
 */
import { NO_QUORUM, type CoreConfig, type CoreState } from '../../src/core/state.js';
import { initialState, step, type StepResult } from '../../src/core/step.js';
import type { Action, Advert, Event, NodeState, RedisSnapshot } from '../../src/core/types.js';

export const A_ADDR = '10.77.0.11';
export const B_ADDR = '10.77.0.12';

export function coreConfig(over: Partial<CoreConfig> = {}): CoreConfig {
  return {
    nodeName: 'b',
    nodeAddress: B_ADDR,
    priority: 90,
    preempt: false,
    preemptDelayMs: 0,
    advertIntervalMs: 1000,
    fall: 2,
    rise: 2,
    garpRefreshMs: 10_000,
    faultVipHoldMs: 0,
    peerRedis: { host: A_ADDR, port: 6379 },
    switchoverMaxLagBytes: 1_000_000,
    promotionMaxLagBytes: 1024 * 1024,
    recoveryBlockMs: 0,
    quorum: NO_QUORUM,
    ...over,
  };
}

export const REPL_A = 'a'.repeat(40);
export const REPL_B = 'b'.repeat(40);

export function masterSnap(over: Partial<RedisSnapshot> = {}): RedisSnapshot {
  return {
    role: 'master', replId: REPL_B, replId2: '0'.repeat(40), offset: 1000, secondOffset: -1,
    masterHost: null, masterPort: null, linkUp: false, syncInProgress: false, connectedReplicas: 0, ...over,
  };
}

export function replicaSnap(over: Partial<RedisSnapshot> = {}): RedisSnapshot {
  return {
    role: 'replica', replId: REPL_A, replId2: '0'.repeat(40), offset: 1000, secondOffset: -1,
    masterHost: A_ADDR, masterPort: 6379, linkUp: true, syncInProgress: false, connectedReplicas: 0, ...over,
  };
}

export function advert(over: Partial<Advert> & { state: NodeState }): Advert {
  return {
    groupId: 51, nodeName: 'a', priority: 100, advertIntervalMs: 1000, bootTimeMs: 1, seq: 1, echoBootTimeMs: 0, epoch: 1,
    flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: over.state === 'MASTER' },
    maintenanceGen: 0,
    redis: { role: over.state === 'MASTER' ? 'master' : 'replica', replId: REPL_A, replId2: '', offset: 1000, secondOffset: -1 },
    ...over,
  };
}

export const ok = (redis: RedisSnapshot): Event => ({ type: 'health-checked', ok: true, detail: 'PONG', redis });
export const fail: Event = { type: 'health-checked', ok: false, detail: 'connection refused', redis: null };
export const heard = (a: Advert, fromAddress = A_ADDR): Event => ({ type: 'advert-received', advert: a, fromAddress });
export const fired = (timer: Extract<Event, { type: 'timer-fired' }>['timer']): Event => ({ type: 'timer-fired', timer });

/** Feeds `[time, event]` pairs in order; returns every result. */
export function run(config: CoreConfig, events: readonly (readonly [number, Event])[], start?: CoreState): StepResult[] {
  let state = start ?? initialState(0, { epoch: 0, knownEpoch: 0 });
  const out: StepResult[] = [];
  for (const [t, e] of events) {
    const r = step(state, e, t, config);
    out.push(r);
    state = r.state;
  }
  return out;
}

export function last(results: StepResult[]): StepResult {
  const r = results[results.length - 1];
  if (!r) throw new Error('no results');
  return r;
}

export function types(actions: readonly Action[]): string[] {
  return actions.filter((a) => a.type !== 'audit').map((a) => a.type);
}

export function find<T extends Action['type']>(actions: readonly Action[], type: T): Extract<Action, { type: T }> | undefined {
  return actions.find((a): a is Extract<Action, { type: T }> => a.type === type);
}

/** Node a: priority 100, its peer b (whose Redis is at B_ADDR). */
export const aCfg = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });

/** An advert from b (priority 90, epoch 1, its Redis a replica of a's history). */
export const bAdvert = (over: Parameters<typeof advert>[0]): Advert =>
  advert({ nodeName: 'b', priority: 90, epoch: 1, redis: { role: 'replica', replId: REPL_A, replId2: '', offset: 1000, secondOffset: -1 }, ...over });

/** a is MASTER holding the VIP (elected at epoch 0), b a live BACKUP replicating it. */
export function masterWithBackup(): CoreState {
  return last(run(aCfg, [
    [0, { type: 'started' }],
    [10, ok(masterSnap({ replId: REPL_A, offset: 1000, connectedReplicas: 1 }))],
    [20, heard(bAdvert({ state: 'BACKUP' }), B_ADDR)],
    [30, { type: 'vip-claimed' }],
  ])).state;
}
