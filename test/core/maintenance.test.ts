/**
 * Maintenance mode in the decision core: what it holds back, what it still allows,
 * how the flag is shared through adverts, and what happens when it ends.
 */
import { describe, expect, it } from 'vitest';
import type { CoreState } from '../../src/core/state.js';
import { initialState, step } from '../../src/core/step.js';
import type { Event } from '../../src/core/types.js';
import { aCfg, B_ADDR, REPL_A, advert, coreConfig, fail, find, fired, heard, last, masterSnap, ok, replicaSnap, run, types } from './fixtures.js';

const bCfg = coreConfig();
const on = (requestId = 'm1'): Event => ({ type: 'maintenance-requested', requestId, on: true, user: 'root' });
const off = (requestId = 'm2'): Event => ({ type: 'maintenance-requested', requestId, on: false, user: 'root' });

function backupB(): CoreState {
  return last(run(bCfg, [[0, { type: 'started' }], [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER' }))]])).state;
}

function masterA(): CoreState {
  const bAdv = advert({ nodeName: 'b', state: 'BACKUP', priority: 90 });
  return last(run(aCfg, [[0, { type: 'started' }], [10, ok(masterSnap({ replId: REPL_A }))], [20, heard(bAdv, B_ADDR)]])).state;
}

describe('maintenance on', () => {
  it('persists a new generation, advertises it and answers', () => {
    const r = step(backupB(), on(), 100, bCfg);
    expect(r.state.maintenance).toEqual({ on: true, gen: 1 });
    expect(types(r.actions)).toEqual(['persist-state', 'send-advert', 'reply']);
    expect(find(r.actions, 'persist-state')?.maintenance).toEqual({ on: true, gen: 1 });
    const adv = find(r.actions, 'send-advert')?.advert;
    expect(adv?.flags.maintenance).toBe(true);
    expect(adv?.maintenanceGen).toBe(1);
    expect(find(r.actions, 'reply')).toMatchObject({ ok: true, data: { maintenance: true, gen: 1 } });
    const again = step(r.state, on('m3'), 200, bCfg);
    expect(again.state.maintenance.gen).toBe(1);
    expect(find(again.actions, 'reply')?.detail).toMatch(/already on/);
  });

  it('the backup does not take over when the master goes silent, and audits that once', () => {
    let s = step(backupB(), on(), 100, bCfg).state;
    const r = step(s, fired('master-down'), 4000, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.actions.map((a) => a.type)).toEqual(['audit']);
    expect(r.state.frozen?.reason).toMatch(/no master advert from a/);
    expect(r.reason).toMatch(/^maintenance: .*automatic failover is off/);
    s = r.state;
    const faultAdvert = heard(advert({ state: 'FAULT', flags: { fault: true, resigning: false, maintenance: true, switchingOver: false, holdsVip: false }, maintenanceGen: 1 }));
    const f = step(s, faultAdvert, 4100, bCfg);
    expect(f.state.role).toBe('BACKUP');
    expect(f.state.frozen?.reason).toMatch(/peer a reported FAULT/);
    const f2 = step(f.state, faultAdvert, 4200, bCfg);
    expect(f2.actions).toEqual([]);
  });

  it('the master keeps its role and the VIP while its Redis fails', () => {
    let s = step(masterA(), on(), 100, aCfg).state;
    s = step(s, fail, 200, aCfg).state;
    const r = step(s, fail, 300, aCfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.actions.some((a) => a.type === 'release-vip')).toBe(false);
    expect(r.state.frozen?.reason).toMatch(/local Redis failed 2 checks: connection refused; not stepping down/);
    expect(r.state.health.healthy).toBe(false);
  });

  it('Redis is not re-pointed in maintenance', () => {
    const s = step(backupB(), on(), 100, bCfg).state;
    const r = step(s, ok(masterSnap()), 200, bCfg);
    expect(find(r.actions, 'replicate-from')).toBeUndefined();
    expect(r.reason).toMatch(/maintenance: local Redis is a master while a is MASTER/);
  });

  it('a resigning master (planned stop) is still taken over from', () => {
    const s = step(backupB(), on(), 100, bCfg).state;
    const resign = heard(advert({ state: 'MASTER', priority: 0, flags: { fault: false, resigning: true, maintenance: true, switchingOver: false, holdsVip: false }, maintenanceGen: 1 }));
    const r1 = step(s, resign, 200, bCfg);
    const r = step(r1.state, fired('master-down'), r1.state.timers['master-down']!, bCfg);
    expect(r.state.role).toBe('MASTER');
  });

  it('no preemption in maintenance', () => {
    const hi = coreConfig({ priority: 200, preempt: true, preemptDelayMs: 0 });
    let s = last(run(hi, [[0, { type: 'started' }], [10, ok(replicaSnap())]])).state;
    s = step(s, on(), 15, hi).state;
    const r = step(s, heard(advert({ state: 'MASTER', priority: 100, maintenanceGen: 1, flags: { fault: false, resigning: false, maintenance: true, switchingOver: false, holdsVip: false } })), 20, hi);
    expect(r.state.timers.preempt).toBeUndefined();
  });
});

describe('maintenance off resumes what was held back', () => {
  it('the master with a failed Redis goes FAULT and releases the VIP', () => {
    let s = step(masterA(), on(), 100, aCfg).state;
    s = step(s, fail, 200, aCfg).state;
    s = step(s, fail, 300, aCfg).state;
    const r = step(s, off(), 400, aCfg);
    expect(r.state.role).toBe('FAULT');
    expect(types(r.actions)).toEqual(['persist-state', 'send-advert', 'reply', 'release-vip', 'send-advert']);
    expect(r.state.maintenance).toEqual({ on: false, gen: 2 });
    expect(r.state.frozen).toBeNull();
  });

  it('the backup takes over from a master that went silent', () => {
    let s = step(backupB(), on(), 100, bCfg).state;
    s = step(s, fired('master-down'), 4000, bCfg).state;
    const r = step(s, off(), 9000, bCfg);
    expect(r.state.role).toBe('MASTER');
    expect(find(r.actions, 'promote-redis')).toBeDefined();
  });

  it('a node that never heard its peer waits for master-down instead of taking over at once', () => {
    let s = last(run(bCfg, [[0, { type: 'started' }], [10, ok(replicaSnap())]])).state;
    s = step(s, on(), 100, bCfg).state;
    const r = step(s, off(), 300, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.timers['master-down']).toBeGreaterThan(300);
  });

  it('the backup re-arms master-down from the last master advert when the master is alive', () => {
    const s = step(backupB(), on(), 100, bCfg).state;
    const r = step(s, off(), 500, bCfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.timers['master-down']).toBeGreaterThan(500);
  });
});

describe('sharing the flag through adverts', () => {
  it('a newer generation from the peer is adopted and persisted; an older one is not', () => {
    const s = backupB();
    const r = step(s, heard(advert({ state: 'MASTER', maintenanceGen: 3, flags: { fault: false, resigning: false, maintenance: true, switchingOver: false, holdsVip: false } })), 100, bCfg);
    expect(r.state.maintenance).toEqual({ on: true, gen: 3 });
    expect(find(r.actions, 'persist-state')?.maintenance).toEqual({ on: true, gen: 3 });
    const older = step(r.state, heard(advert({ state: 'MASTER', maintenanceGen: 2, flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false } })), 200, bCfg);
    expect(older.state.maintenance).toEqual({ on: true, gen: 3 });
  });

  it('equal generations that disagree settle on "on"', () => {
    const s: CoreState = { ...backupB(), maintenance: { on: false, gen: 4 } };
    const r = step(s, heard(advert({ state: 'MASTER', maintenanceGen: 4, flags: { fault: false, resigning: false, maintenance: true, switchingOver: false, holdsVip: false } })), 100, bCfg);
    expect(r.state.maintenance).toEqual({ on: true, gen: 4 });
    const mine: CoreState = { ...backupB(), maintenance: { on: true, gen: 4 } };
    const r2 = step(mine, heard(advert({ state: 'MASTER', maintenanceGen: 4, flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false } })), 100, bCfg);
    expect(r2.state.maintenance).toEqual({ on: true, gen: 4 });
  });

  it('turned off by the peer: held-back decisions are re-evaluated', () => {
    let s = step(masterA(), on(), 100, aCfg).state;
    s = step(s, fail, 200, aCfg).state;
    s = step(s, fail, 300, aCfg).state;
    const r = step(s, heard(advert({ nodeName: 'b', state: 'BACKUP', priority: 90, maintenanceGen: 2, flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false } }), B_ADDR), 400, aCfg);
    expect(r.state.maintenance).toEqual({ on: false, gen: 2 });
    expect(r.state.role).toBe('FAULT');
    expect(r.reason).toMatch(/maintenance turned off by b: local Redis is failing/);
  });

  it('survives a restart through the persisted state', () => {
    const s = initialState(0, { epoch: 2, knownEpoch: 2, maintenance: { on: true, gen: 5 } });
    expect(s.maintenance).toEqual({ on: true, gen: 5 });
  });
});
