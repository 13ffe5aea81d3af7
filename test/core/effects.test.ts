/**
 * Effects that fail: a thrown effect (and the actions of its step that were therefore not
 * run) must bring the core back to a state it can act from, with a reason; and effects
 * queued behind a long one are dropped only when they would mislead clients. Also the
 * start-up VIP decision and the records the core writes for the daemon (detach, control).
 * Time is the `now` argument; no mocks.
 */
import { describe, expect, it } from 'vitest';
import { effectStillWanted, MAX_VIP_CLAIM_FAILURES } from '../../src/core/effects.js';
import type { CoreState } from '../../src/core/state.js';
import { initialState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import { takeOverAsIs } from '../../src/core/transitions.js';
import type { Action, Event } from '../../src/core/types.js';
import {
  B_ADDR, REPL_A, aCfg, advert, bAdvert, coreConfig, fail, fired, find, heard, last, masterSnap, masterWithBackup, ok, replicaSnap, run, types,
} from './fixtures.js';

const bCfg = coreConfig();

function masterA(): CoreState {
  const s = masterWithBackup();
  expect(s.role).toBe('MASTER');
  return s;
}

/** b, BACKUP, has just started taking over from a silent a: it is MASTER, promoting. */
function promotingB(): { state: CoreState; actions: readonly Action[] } {
  const backup = last(run(bCfg, [
    [0, { type: 'started' }],
    [10, ok(replicaSnap())],
    [20, heard(advert({ state: 'MASTER', epoch: 1 }))],
  ])).state;
  const r = step(backup, fired('master-down'), 5000, bCfg);
  expect(r.state).toMatchObject({ role: 'MASTER', redisOp: 'promoting', epoch: 2 });
  return r;
}

const failed = (action: Action['type'], skipped: readonly Action[] = [], detail = 'boom'): Event =>
  ({ type: 'effect-failed', action, detail, skipped });

describe('a thrown effect never leaves the core stuck', () => {
  it('persist-state of a mastership taken as it is (Redis already master): the node does not serve on an epoch not on disk', () => {
    const init = step(initialState(0, { epoch: 1, knownEpoch: 1 }), { type: 'started' }, 0, bCfg).state;
    const taken = takeOverAsIs({ ...init, health: { ...init.health, healthy: true, redis: masterSnap() } }, 10, bCfg, 'elected');
    expect(taken.state).toMatchObject({ role: 'MASTER', epoch: 2 });
    const i = taken.actions.findIndex((a) => a.type === 'persist-state');
    const skipped = taken.actions.slice(i + 1);
    expect(skipped.map((a) => a.type)).toContain('claim-vip');
    const r = step(taken.state, failed('persist-state', skipped, 'EROFS'), 20, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.persistFailure).toMatchObject({ attempts: 1 });
    expect(find(r.actions, 'claim-vip')).toBeUndefined();
    expect(r.reason).toMatch(/the new epoch 2 could not be written/);
  });

  it('promote-redis: the new master steps down with the reason, and can take over again later', () => {
    const p = promotingB();
    const r = step(p.state, failed('promote-redis', [], 'connection reset'), 5100, bCfg);
    expect(r.state).toMatchObject({ role: 'BACKUP', redisOp: null });
    expect(r.state.reason).toMatch(/promotion failed: .*connection reset/);
    expect(types(r.actions)).toContain('release-vip');
    expect(find(r.actions, 'audit')).toMatchObject({ event: 'effect-failed', data: { action: 'promote-redis' } });
    // The master-down timer is armed again: the next silence retries the takeover.
    expect(r.state.timers['master-down']).toBeGreaterThan(5100);
  });

  it('persist-state: a promotion is not started on an epoch that is not on disk', () => {
    const p = promotingB();
    const i = p.actions.findIndex((a) => a.type === 'persist-state');
    expect(i).toBeGreaterThanOrEqual(0);
    const skipped = p.actions.slice(i + 1);
    expect(skipped.map((a) => a.type)).toEqual(['send-advert', 'promote-redis']);
    const r = step(p.state, failed('persist-state', skipped, 'ENOSPC'), 5010, bCfg);
    expect(r.state).toMatchObject({ role: 'BACKUP', redisOp: null });
    expect(r.reason).toMatch(/persist-state failed: ENOSPC/);
    expect(r.state.reason).toMatch(/promotion failed: not run: persist-state failed before it \(ENOSPC\)/);
    expect(types(r.actions)).not.toContain('promote-redis');
  });

  it('replicate-from: the pending demotion is cleared and the next health check tries again', () => {
    const backup = last(run(bCfg, [
      [0, { type: 'started' }],
      [10, ok(replicaSnap())],
      [20, heard(advert({ state: 'MASTER', epoch: 1 }))],
    ])).state;
    const wrong = step(backup, ok(replicaSnap({ masterHost: '10.77.0.99' })), 600, bCfg);
    expect(wrong.state.redisOp).toBe('demoting');
    const r = step(wrong.state, failed('replicate-from'), 700, bCfg);
    expect(r.state.redisOp).toBeNull();
    const again = step(r.state, ok(replicaSnap({ masterHost: '10.77.0.99' })), 1100, bCfg);
    expect(types(again.actions)).toEqual(['replicate-from']);
  });

  it('switchover-redis: the switchover fails and is answered; the master stays; a later switchover is accepted', () => {
    const s = masterA();
    const started = step(s, { type: 'switchover-requested', requestId: 'r1', timeoutMs: 5000, force: false, user: 'op', origin: 'local' }, 100, aCfg);
    expect(started.state.redisOp).toBe('switching-over');
    const r = step(started.state, failed('switchover-redis', [], 'socket closed'), 200, aCfg);
    expect(r.state).toMatchObject({ role: 'MASTER', redisOp: null, switchover: null });
    expect(find(r.actions, 'reply')).toMatchObject({ requestId: 'r1', ok: false });
    expect(find(r.actions, 'reply')?.detail).toMatch(/failed: socket closed/);
    const next = step(r.state, { type: 'switchover-requested', requestId: 'r2', timeoutMs: 5000, force: false, user: 'op', origin: 'local' }, 300, aCfg);
    expect(types(next.actions)).toContain('switchover-redis');
  });

  it(`claim-vip: retried by the reconcile loop; after ${MAX_VIP_CLAIM_FAILURES} in a row the master hands over to a live backup`, () => {
    let s = masterA();
    for (let i = 1; i < MAX_VIP_CLAIM_FAILURES; i++) {
      const r = step(s, failed('claim-vip', [], 'RTNETLINK answers: No such device'), 100 * i, aCfg);
      expect(r.state).toMatchObject({ role: 'MASTER', vipClaimFailures: i });
      expect(r.reason).toMatch(/reconcile loop retries/);
      s = r.state;
      // The reconcile loop sees the VIP missing and claims it again.
      expect(types(step(s, { type: 'vip-observed', present: false }, 100 * i + 1, aCfg).actions)).toEqual(['claim-vip']);
    }
    const r = step(s, failed('claim-vip', [], 'RTNETLINK answers: No such device'), 1000, aCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.reason).toMatch(/VIP claim failed 3 times in a row .*so b can serve/);
  });

  it('claim-vip: without a live backup the master stays and keeps retrying', () => {
    let s = masterA();
    for (let i = 1; i <= MAX_VIP_CLAIM_FAILURES + 1; i++) s = step(s, failed('claim-vip'), 10_000 * i, aCfg).state;
    expect(s.role).toBe('MASTER');
    expect(s.vipClaimFailures).toBe(MAX_VIP_CLAIM_FAILURES + 1);
  });

  it('claim-vip: a completed claim resets the count', () => {
    const s = step(masterA(), failed('claim-vip'), 100, aCfg).state;
    expect(step(s, { type: 'vip-claimed', changed: true }, 200, aCfg).state.vipClaimFailures).toBe(0);
  });

  it('release-vip: nothing stuck; the reconcile loop removes it', () => {
    const s = step(masterA(), fail, 100, aCfg).state;
    const fault = step(s, fail, 600, aCfg);
    expect(fault.state.role).toBe('FAULT');
    const r = step(fault.state, failed('release-vip', [], 'timeout'), 700, aCfg);
    expect(r.state.role).toBe('FAULT');
    expect(r.reason).toMatch(/reconcile loop removes the VIP/);
    expect(types(step(r.state, { type: 'vip-observed', present: true }, 2000, aCfg).actions)).toEqual(['release-vip']);
  });

  it('a stopping node whose release failed still resigns and exits', () => {
    const stop = step(masterA(), { type: 'shutdown-requested' }, 100, aCfg);
    const i = stop.actions.findIndex((a) => a.type === 'release-vip');
    const r = step(stop.state, failed('release-vip', stop.actions.slice(i + 1), 'ip: not found'), 150, aCfg);
    expect(types(r.actions)).toEqual(['send-advert', 'send-advert', 'exit']);
    expect(find(r.actions, 'send-advert')?.advert.priority).toBe(0);
    expect(r.actions.filter((a) => a.type === 'audit').map((a) => a.type === 'audit' && a.event)).toEqual(['effect-failed', 'daemon-stopping']);
  });

  it('skipped notices are still carried out, except a stale advert', () => {
    const s = masterA();
    const skipped: Action[] = [
      { type: 'audit', event: 'x', data: {} },
      { type: 'send-advert', advert: find(step(s, fired('advert'), 10, aCfg).actions, 'send-advert')!.advert },
      { type: 'reply', requestId: 'q', ok: true, detail: 'd', data: {} },
      { type: 'send-message', message: { kind: 'switchover-result', requestId: 'q', ok: false, detail: 'd' } },
    ];
    const r = step(s, failed('announce-vip', skipped), 50, aCfg);
    expect(types(r.actions)).toEqual(['reply', 'send-message']);
    expect(r.state.role).toBe('MASTER');
  });
});

describe('effects still wanted when their turn comes', () => {
  it('an announcement or claim is dropped once the node no longer wants the VIP; everything else runs', () => {
    const master = masterA();
    const backup = step(master, heard(bAdvert({ state: 'MASTER', epoch: 5 }), B_ADDR), 100, aCfg).state;
    expect(backup.role).toBe('BACKUP');
    const cases: [Action, boolean, boolean][] = [
      [{ type: 'announce-vip' }, true, false],
      [{ type: 'claim-vip' }, true, false],
      [{ type: 'release-vip' }, true, true],
      [{ type: 'replicate-from', master: { host: B_ADDR, port: 6379 } }, true, true],
      [{ type: 'persist-state', epoch: 1, knownEpoch: 5, maintenance: { on: false, gen: 0 }, switchoverIds: [] }, true, true],
    ];
    for (const [action, asMaster, asBackup] of cases) {
      expect(effectStillWanted(action, master), `${action.type} as master`).toBe(asMaster);
      expect(effectStillWanted(action, backup), `${action.type} as backup`).toBe(asBackup);
    }
  });
});

describe('start-up VIP and daemon records, decided by the core', () => {
  it('a VIP found at start-up is kept while the local Redis is a master (INIT decides), removed otherwise', () => {
    const kept = run(aCfg, [[0, { type: 'started', vipPresent: true }], [10, ok(masterSnap({ replId: REPL_A }))]]);
    expect(types(last(kept).actions)).not.toContain('release-vip');
    expect(last(kept).actions).toContainEqual(expect.objectContaining({ type: 'audit', event: 'vip-kept-at-startup' }));
    const removed = run(bCfg, [[0, { type: 'started', vipPresent: true }], [10, ok(replicaSnap())]]);
    expect(types(last(removed).actions)[0]).toBe('release-vip');
    const unhealthy = run(bCfg, [[0, { type: 'started', vipPresent: true }], [10, fail]]);
    expect(types(last(unhealthy).actions)).toContain('release-vip');
    const absent = run(bCfg, [[0, { type: 'started', vipPresent: false }], [10, ok(replicaSnap())]]);
    const cleanUp = (a: Action) => a.type === 'audit' && a.event === 'vip-release' && /start-up clean-up/.test(String(a.data.reason));
    expect(last(removed).actions.some(cleanUp)).toBe(true);
    expect(last(absent).actions.some(cleanUp)).toBe(false);
  });

  it('the configuration loaded is audited first; a released VIP is audited when it was there', () => {
    const r = step(masterA(), { type: 'vip-released', changed: true }, 5, aCfg);
    expect(r.actions).toEqual([{ type: 'audit', event: 'vip-released', data: { changed: true } }]);
    expect(step(masterA(), { type: 'vip-released', changed: false }, 5, aCfg).actions).toEqual([]);
    const started = run(aCfg, [[0, { type: 'started', loaded: { source: '/etc/x.yaml' } }]]);
    expect(started[0]!.actions.map((a) => a.type === 'audit' && a.event)).toEqual(['config-loaded', 'daemon-started']);
  });

  it('a restart in place is audited and detaches without resigning; a control request is recorded', () => {
    const d = step(masterA(), { type: 'detach-requested' }, 5, aCfg);
    expect(d.actions.map((a) => a.type)).toEqual(['audit', 'detach']);
    expect(d.state.timers).toEqual({});
    expect(d.state.role).toBe('MASTER');
    const c = step(masterA(), { type: 'control-handled', record: { command: 'status', outcome: 'ok' } }, 5, aCfg);
    expect(c.actions).toEqual([{ type: 'audit', event: 'control-request', data: { command: 'status', outcome: 'ok' } }]);
  });
});
