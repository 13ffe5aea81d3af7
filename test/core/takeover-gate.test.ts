/**
 * The gates on an automatic takeover (src/core/takeover-gate.ts): a replica that lagged
 * the master by more than `promotion.max_lag_bytes` when it last heard it does not take
 * over by itself (audited once, shown in status, looked at again), planned takeovers pass,
 * and hearing the master again clears the hold. Time is the `now` argument; no mocks.
 */
import { describe, expect, it } from 'vitest';
import type { CoreState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import { lagBehindMaster } from '../../src/core/takeover-gate.js';
import { whyNotMaster } from '../../src/daemon/status.js';
import { REPL_A, advert, coreConfig, fired, heard, last, ok, replicaSnap, run } from './fixtures.js';

const MAX = 1024 * 1024;
const cfg = coreConfig({ promotionMaxLagBytes: MAX });

/** b, BACKUP behind master a whose last advert says offset `masterOffset`; b's own offset is 1000. */
function backupBehind(masterOffset: number, flags: Partial<ReturnType<typeof advert>['flags']> = {}): CoreState {
  const a = advert({ state: 'MASTER', epoch: 1, redis: { role: 'master', replId: REPL_A, replId2: '', offset: masterOffset, secondOffset: -1 } });
  return last(run(cfg, [
    [0, { type: 'started' }],
    [10, ok(replicaSnap({ offset: 1000 }))],
    [20, heard({ ...a, flags: { ...a.flags, ...flags } })],
  ])).state;
}

describe('automatic takeover gates', () => {
  it('measures the lag from the master\'s last advert and this replica\'s last check, on one history only', () => {
    expect(lagBehindMaster(backupBehind(1000 + 5000))).toBe(5000);
    expect(lagBehindMaster(backupBehind(500))).toBe(0);
    const otherHistory = step(backupBehind(9_999_999), ok(replicaSnap({ replId: 'f'.repeat(40) })), 30, cfg).state;
    expect(lagBehindMaster(otherHistory)).toBeNull();
  });

  it('a silent master and a replica within the bound: taken over', () => {
    const r = step(backupBehind(1000 + MAX), fired('master-down'), 5000, cfg);
    expect(r.state.role).toBe('MASTER');
  });

  it('a silent master and a replica beyond the bound: held back, audited once, said in status, looked at again', () => {
    const s = backupBehind(1000 + MAX + 1);
    const r = step(s, fired('master-down'), 5000, cfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.reason).toMatch(/1048577 bytes behind a .*promotion.max_lag_bytes 1048576/);
    expect(r.actions.filter((a) => a.type === 'audit').map((a) => a.type === 'audit' && a.event)).toEqual(['takeover-held']);
    expect(r.state.timers['master-down']).toBeGreaterThan(5000);
    expect(whyNotMaster(r.state)).toMatch(/a takeover would discard up to that much/);
    const again = step(r.state, fired('master-down'), 9000, cfg);
    expect(again.state.role).toBe('BACKUP');
    expect(again.actions).toEqual([]);
    // The master is heard again: the hold is over.
    const back = step(again.state, heard(advert({ state: 'MASTER', epoch: 1 })), 9100, cfg);
    expect(back.state.takeoverHeld).toBeNull();
  });

  it('a master reporting FAULT is gated the same way', () => {
    const s = backupBehind(1000 + MAX + 1);
    const fault = advert({ state: 'FAULT', epoch: 1, redis: { role: 'unknown', replId: REPL_A, replId2: '', offset: 1000 + MAX + 1, secondOffset: -1 } });
    const r = step(s, heard({ ...fault, flags: { ...fault.flags, fault: true } }), 100, cfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.takeoverHeld?.blocker).toMatch(/bytes behind/);
  });

  it('a resigning master is a planned stop: not gated (its Redis is there to catch up from)', () => {
    const s = backupBehind(1000 + MAX + 1);
    const resign = advert({ state: 'MASTER', epoch: 1, priority: 0, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 1000 + MAX + 1, secondOffset: -1 } });
    const heardResign = step(s, heard({ ...resign, flags: { ...resign.flags, resigning: true } }), 100, cfg).state;
    const r = step(heardResign, fired('master-down'), 600, cfg);
    expect(r.state.role).toBe('MASTER');
  });

  it('recovery block: the node that took over automatically says so; its peer holds a second automatic takeover until the period is over', () => {
    const blocking = coreConfig({ recoveryBlockMs: 60_000 });
    // b takes over from a silent a: its block runs 60 s.
    const b = step(last(run(blocking, [[0, { type: 'started' }], [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER', epoch: 1 }))]])).state,
      fired('master-down'), 5000, blocking);
    expect(b.state.recoveryBlockUntilMs).toBe(65_000);
    expect(b.state.timers['recovery-block']).toBe(65_000);
    expect(b.actions.find((x) => x.type === 'send-advert')).toMatchObject({ advert: { flags: { recoveredRecently: true } } });
    expect(step(b.state, fired('recovery-block'), 65_000, blocking).state.recoveryBlockUntilMs).toBeNull();

    // a, now backup behind b, hears b's flag; b's Redis then fails: a holds back.
    const aCfg2 = coreConfig({ nodeName: 'a', priority: 100, recoveryBlockMs: 60_000, peerRedis: { host: '10.77.0.12', port: 6379 } });
    const flagged = advert({ nodeName: 'b', state: 'MASTER', epoch: 2 });
    const aBackup = last(run(aCfg2, [
      [0, { type: 'started' }], [10, ok(replicaSnap({ masterHost: '10.77.0.12' }))],
      [7000, heard({ ...flagged, flags: { ...flagged.flags, recoveredRecently: true } }, '10.77.0.12')],
    ])).state;
    const faulty = advert({ nodeName: 'b', state: 'FAULT', epoch: 2 });
    const r = step(aBackup, heard({ ...faulty, flags: { ...faulty.flags, fault: true, recoveredRecently: true } }, '10.77.0.12'), 8000, aCfg2);
    expect(r.state.role).toBe('BACKUP');
    expect(r.reason).toMatch(/took the master role over automatically less than promotion.recovery_block_ms \(60000 ms\) ago/);
    // Past the period (counted from b's last advert that carried the flag): taken over.
    const later = step(r.state, fired('master-down'), 8000 + 60_001, aCfg2);
    expect(later.state.role).toBe('MASTER');
  });

  it('recovery block: a planned takeover neither starts nor waits for one', () => {
    const blocking = coreConfig({ recoveryBlockMs: 60_000 });
    const s = backupBehind(1000);
    const resign = advert({ state: 'MASTER', epoch: 1, priority: 0 });
    const heardResign = step(s, heard({ ...resign, flags: { ...resign.flags, resigning: true, recoveredRecently: true } }), 100, blocking).state;
    const r = step(heardResign, fired('master-down'), 600, blocking);
    expect(r.state.role).toBe('MASTER');
    expect(r.state.recoveryBlockUntilMs).toBeNull();
  });
});


describe('prefer safety without a quorum: a silent master is replaced only through its own Redis', () => {
  const safety = coreConfig({ promotionMaxLagBytes: MAX, quorum: { backend: 'none', prefer: 'safety', retryMs: 500, fenceLeadMs: 0 } });
  const backup = (): CoreState => last(run(safety, [
    [0, { type: 'started' }],
    [10, ok(replicaSnap({ offset: 1000 }))],
    [20, heard(advert({ state: 'MASTER', epoch: 1, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 1000, secondOffset: -1 } }))],
  ])).state;

  it('the takeover after a silence promotes only with the old master fenced (requireFence): a link that looks up is not proof', () => {
    const r = step(backup(), fired('master-down'), 5000, safety);
    expect(r.state.role).toBe('MASTER');
    expect(r.actions.find((a) => a.type === 'promote-redis')).toMatchObject({ requireFence: true });
    // The adapter could not fence it: the node steps back and looks again at the next silence.
    const failed = step(r.state, { type: 'promotion-finished', ok: false, detail: 'not promoting: prefer safety', redis: replicaSnap({ offset: 1000 }) }, 5200, safety);
    expect(failed.state.role).toBe('BACKUP');
    expect(failed.actions.filter((a) => a.type === 'claim-vip')).toEqual([]);
  });

  it('a master that reported FAULT is replaced without that requirement (its Redis is failing); prefer availability never requires it', () => {
    const fault = step(backup(), heard(advert({ state: 'FAULT', epoch: 1, flags: { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false } })), 5000, safety);
    expect(fault.actions.find((a) => a.type === 'promote-redis')).not.toHaveProperty('requireFence');
    const availability = step(backupBehind(1000), fired('master-down'), 5000, cfg);
    expect(availability.actions.find((a) => a.type === 'promote-redis')).not.toHaveProperty('requireFence');
  });
});
