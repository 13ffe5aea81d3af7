/**
 * One advert must not poison the epoch (issue 10, item 2): a ceiling that keeps every
 * takeover encodable, and a bounded step without evidence.
 */
import { describe, expect, it } from 'vitest';
import { encodeAdvert } from '../../src/proto/advert.js';
import { EPOCH_CEILING, MAX_EPOCH_STEP, adoptEpoch, nextEpoch } from '../../src/core/epoch.js';
import { advertBody } from '../../src/core/common.js';
import { initialState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import { REPL_A, advert, coreConfig, heard, ok, replicaSnap } from './fixtures.js';

const PEER = { host: '10.0.0.1', port: 6379 };
const noEvidence = { local: null, peerRedis: PEER, senderReplId: REPL_A };

describe('epochs', () => {
  it('a takeover never makes an epoch above the ceiling, so its adverts always encode', () => {
    expect(nextEpoch(3, 5)).toBe(6);
    expect(nextEpoch(EPOCH_CEILING, EPOCH_CEILING)).toBe(EPOCH_CEILING);
    const s = { ...initialState(0, { epoch: EPOCH_CEILING, knownEpoch: EPOCH_CEILING }), role: 'MASTER' as const };
    const body = advertBody({ ...s, epoch: nextEpoch(s.epoch, s.knownEpoch) }, coreConfig());
    expect(() => encodeAdvert({ groupId: 1, bootTimeMs: 1, seq: 1, echoBootTimeMs: 0, body }, { id: 1, secret: Buffer.from('k'.repeat(32)) })).not.toThrow();
  });

  it('adopts a small step, anything on a fresh node, and a jump only with evidence', () => {
    expect(adoptEpoch(10, 10 + MAX_EPOCH_STEP, noEvidence)).toEqual({ adopt: true, knownEpoch: 10 + MAX_EPOCH_STEP });
    expect(adoptEpoch(0, 5000, noEvidence)).toEqual({ adopt: true, knownEpoch: 5000 });
    expect(adoptEpoch(10, 5000, noEvidence)).toMatchObject({ adopt: false, knownEpoch: 10 });
    const following = { ...noEvidence, local: replicaSnap({ masterHost: PEER.host, masterPort: PEER.port, replId: REPL_A, linkUp: true }) };
    expect(adoptEpoch(10, 5000, following)).toEqual({ adopt: true, knownEpoch: 5000 });
    expect(adoptEpoch(10, 5000, { ...following, local: replicaSnap({ masterHost: PEER.host, masterPort: PEER.port, replId: REPL_A, linkUp: false }) }).adopt).toBe(false);
  });

  it('a backup hearing an unexplained jump keeps its known epoch, persists nothing, and audits it once', () => {
    const cfg = coreConfig();
    let s = step(initialState(0, { epoch: 3, knownEpoch: 3 }), { type: 'started' }, 0, cfg).state;
    // Not a replica of the sender: no evidence.
    s = step(s, ok(replicaSnap({ masterHost: '10.9.9.9' })), 10, cfg).state;
    const jump = heard(advert({ state: 'MASTER', epoch: 1_000_000 }));
    const r1 = step(s, jump, 20, cfg);
    expect(r1.state.knownEpoch).toBe(3);
    expect(r1.actions.filter((a) => a.type === 'persist-state')).toEqual([]);
    expect(r1.actions.filter((a) => a.type === 'audit' && a.event === 'epoch-not-adopted')).toHaveLength(1);
    const r2 = step(r1.state, heard(advert({ state: 'MASTER', epoch: 1_000_000, seq: 2 })), 30, cfg);
    expect(r2.actions.filter((a) => a.type === 'audit' && a.event === 'epoch-not-adopted')).toHaveLength(0);
  });
});

describe('dual-master ranking', () => {
  it('the final tie-break is the signed node name, not the forgeable source address', () => {
    const cfg = coreConfig({ nodeName: 'b', priority: 100 });
    const master = { ...initialState(0, { epoch: 4, knownEpoch: 4 }), role: 'MASTER' as const };
    // Equal epoch and priority: 'b' > 'a' wins whatever address the datagram came from.
    for (const from of ['10.77.0.1', '10.77.0.254']) {
      const r = step(master, heard(advert({ nodeName: 'a', state: 'MASTER', epoch: 4, priority: 100 }), from), 10, cfg);
      expect(r.state.role).toBe('MASTER');
    }
    const loser = step(master, heard(advert({ nodeName: 'c', state: 'MASTER', epoch: 4, priority: 100 }), '10.77.0.1'), 10, cfg);
    expect(loser.state.role).toBe('BACKUP');
    expect(loser.reason).toMatch(/name c/);
  });
});

describe('poisoned values are bounded, and an exhausted epoch space is refused loudly', () => {
  it('a handover naming an epoch far above the known one is ignored', () => {
    const cfg = coreConfig();
    let s = step(initialState(0, { epoch: 1, knownEpoch: 1 }), { type: 'started' }, 0, cfg).state;
    s = step(s, ok(replicaSnap()), 10, cfg).state;
    const flags = { fault: false, resigning: false, maintenance: false, switchingOver: true, holdsVip: true };
    s = step(s, heard(advert({ state: 'MASTER', epoch: 1, flags })), 20, cfg).state;
    const far = step(s, { type: 'handover-received', requestId: 'x', epoch: 1 + MAX_EPOCH_STEP + 1, force: false, from: 'a' }, 30, cfg);
    expect(far.state.role).toBe('BACKUP');
    expect(far.reason).toMatch(/more than 16 above the known epoch 1/);
    const near = step(s, { type: 'handover-received', requestId: 'y', epoch: 2, force: false, from: 'a' }, 30, cfg);
    expect(near.state.role).toBe('MASTER');
  });

  it('at the ceiling a takeover is refused (no silent tie), audited when the ceiling is reached', () => {
    const cfg = coreConfig();
    let s = step(initialState(0, { epoch: 0, knownEpoch: 0 }), { type: 'started' }, 0, cfg).state;
    s = step(s, ok(replicaSnap()), 10, cfg).state;
    // A fresh node adopts whatever it hears, up to the ceiling.
    const r = step(s, heard(advert({ state: 'MASTER', epoch: EPOCH_CEILING })), 20, cfg);
    expect(r.state.knownEpoch).toBe(EPOCH_CEILING);
    expect(r.actions.filter((a) => a.type === 'audit' && a.event === 'epoch-ceiling-reached')).toHaveLength(1);
    const t = step(r.state, { type: 'timer-fired', timer: 'master-down' }, 10_000, cfg);
    expect(t.state.role).toBe('BACKUP');
    expect(t.reason).toMatch(/no epoch above 2147483647 can be made/);
    expect(t.actions.filter((a) => a.type === 'promote-redis')).toEqual([]);
  });

  it('a maintenance generation far above ours is not adopted (audited once); ours can still turn maintenance off', () => {
    const cfg = coreConfig();
    let s = step(initialState(0, { epoch: 1, knownEpoch: 1, maintenance: { on: false, gen: 4 } }), { type: 'started' }, 0, cfg).state;
    s = step(s, ok(replicaSnap()), 10, cfg).state;
    const poisoned = { fault: false, resigning: false, maintenance: true, switchingOver: false, holdsVip: true };
    const r1 = step(s, heard(advert({ state: 'MASTER', epoch: 1, flags: poisoned, maintenanceGen: EPOCH_CEILING })), 20, cfg);
    expect(r1.state.maintenance).toEqual({ on: false, gen: 4 });
    expect(r1.actions.filter((a) => a.type === 'audit' && a.event === 'maintenance-not-adopted')).toHaveLength(1);
    const r2 = step(r1.state, heard(advert({ state: 'MASTER', epoch: 1, seq: 2, flags: poisoned, maintenanceGen: EPOCH_CEILING })), 30, cfg);
    expect(r2.actions.filter((a) => a.type === 'audit' && a.event === 'maintenance-not-adopted')).toHaveLength(0);
    // A legitimate change from the peer (a step newer) is adopted as before.
    const r3 = step(r2.state, heard(advert({ state: 'MASTER', epoch: 1, seq: 3, flags: poisoned, maintenanceGen: 5 })), 40, cfg);
    expect(r3.state.maintenance).toEqual({ on: true, gen: 5 });
  });
});
