/**
 * Decision-core tests: each case feeds timed events to `step()` and checks the role,
 * the ordered effects and the reason string. No mocks, no fake timers.
 */
import { describe, expect, it } from 'vitest';
import { initialState, step } from '../../src/core/step.js';
import { nextDeadline, vipDesired } from '../../src/core/state.js';
import { ARP_LOCKTIME_MARGIN_MS, masterDownMs, skewMs } from '../../src/core/timing.js';
import {
  A_ADDR, B_ADDR, REPL_A, REPL_B, advert, coreConfig, fail, find, fired, heard, last, masterSnap, ok, replicaSnap, run, types,
} from './fixtures.js';

const cfg = coreConfig();
const started = [0, { type: 'started' }] as const;

describe('INIT adopts what it finds', () => {
  const cases = [
    {
      name: 'local replica becomes BACKUP at once, no Redis command',
      events: [started, [10, ok(replicaSnap())]] as const,
      role: 'BACKUP', effects: ['release-vip'], reason: /adopted: local Redis is a replica/,
    },
    {
      name: 'local master waits for the listen window before adopting',
      events: [started, [10, ok(masterSnap())]] as const,
      role: 'INIT', effects: [], reason: /listening for a peer/,
    },
    {
      name: 'local master, nobody heard during the window: adopt MASTER and claim the VIP',
      events: [started, [10, ok(masterSnap())], [3700, fired('init-listen')]] as const,
      role: 'MASTER', effects: ['send-advert', 'claim-vip'], reason: /adopted: local Redis is master and no peer master was heard/,
    },
    {
      name: 'local master, peer is a BACKUP replicating us: adopt at once (no role change)',
      events: [started, [10, ok(masterSnap())], [500, heard(advert({ state: 'BACKUP', redis: { role: 'replica', replId: REPL_B, replId2: '', offset: 900, secondOffset: -1 } }))]] as const,
      role: 'MASTER', effects: ['persist-state', 'send-advert', 'claim-vip'], reason: /adopted: local Redis is master, peer a is BACKUP/,
    },
    {
      name: 'local master, peer MASTER with a newer epoch: step down and demote',
      events: [started, [10, ok(masterSnap())], [500, heard(advert({ state: 'MASTER', epoch: 5 }))]] as const,
      role: 'BACKUP', effects: ['persist-state', 'release-vip', 'replicate-from'], reason: /peer a outranks this node as master \(epoch 5/,
    },
    {
      name: 'unhealthy Redis at start-up: FAULT, VIP released',
      events: [started, [10, fail]] as const,
      role: 'FAULT', effects: ['release-vip', 'send-advert'], reason: /unhealthy at start-up: connection refused/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = last(run(cfg, c.events));
      expect(r.state.role).toBe(c.role);
      expect(types(r.actions)).toEqual(c.effects);
      expect(r.reason).toMatch(c.reason);
    });
  }

  it('fresh pair, both Redis masters: higher priority wins with a new epoch, loser demotes', () => {
    const a = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });
    const peerB = advert({ nodeName: 'b', state: 'INIT', priority: 90, epoch: 0, redis: { role: 'master', replId: REPL_B, replId2: '', offset: 10, secondOffset: -1 } });
    const ra = last(run(a, [started, [10, ok(masterSnap({ replId: REPL_A }))], [20, heard(peerB, B_ADDR)]]));
    expect(ra.state.role).toBe('MASTER');
    expect(ra.state.epoch).toBe(1);
    expect(types(ra.actions)).toEqual(['persist-state', 'send-advert', 'claim-vip']);
    expect(ra.reason).toMatch(/elected: both Redis are masters/);

    const peerA = advert({ nodeName: 'a', state: 'INIT', priority: 100, epoch: 0, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 10, secondOffset: -1 } });
    const rb = run(cfg, [started, [10, ok(masterSnap())], [20, heard(peerA)], [30, heard({ ...peerA, state: 'MASTER', epoch: 1, seq: 2 })]]);
    expect(rb[2]!.state.role).toBe('BACKUP');
    expect(types(rb[3]!.actions)).toEqual(['persist-state', 'replicate-from']);
    expect(find(rb[3]!.actions, 'replicate-from')?.master).toEqual({ host: A_ADDR, port: 6379 });
  });

  it('equal epoch and priority: the higher address wins', () => {
    const peerA = advert({ state: 'INIT', priority: 90, epoch: 0, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 10, secondOffset: -1 } });
    // B (10.77.0.12) > A (10.77.0.11): B is elected.
    const r = last(run(cfg, [started, [10, ok(masterSnap())], [20, heard(peerA)]]));
    expect(r.state.role).toBe('MASTER');
  });
});

describe('BACKUP', () => {
  const backup = run(cfg, [started, [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER' }))]]);
  const b0 = last(backup).state;

  it('each master advert pushes the master-down deadline to 3 × interval + skew', () => {
    expect(b0.timers['master-down']).toBe(20 + masterDownMs(90, 1000));
    const r = step(b0, heard(advert({ state: 'MASTER', seq: 2 })), 1020, cfg);
    expect(r.state.timers['master-down']).toBe(1020 + masterDownMs(90, 1000));
  });

  it('master silent for the master-down interval: take over with a new epoch, promote with catch-up, VIP only after promotion', () => {
    const t = b0.timers['master-down']!;
    const r = step(b0, fired('master-down'), t, cfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.state.epoch).toBe(2);
    expect(r.reason).toMatch(/no master advert from a for \d+ ms/);
    expect(types(r.actions)).toEqual(['persist-state', 'send-advert', 'promote-redis']);
    expect(find(r.actions, 'promote-redis')?.catchUpFrom).toEqual({ host: A_ADDR, port: 6379 });
    expect(vipDesired(r.state)).toBe(false);
    const p = step(r.state, { type: 'promotion-finished', ok: true, detail: 'REPLICAOF NO ONE', redis: masterSnap() }, t + 50, cfg);
    expect(types(p.actions)).toEqual(['claim-vip', 'send-advert']);
    expect(vipDesired(p.state)).toBe(true);
  });

  it('peer reports FAULT: take over at once without catching up from its dead Redis', () => {
    const r = step(b0, heard(advert({ state: 'FAULT', seq: 3, flags: { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false } })), 600, cfg);
    expect(r.state.role).toBe('MASTER');
    expect(r.reason).toMatch(/peer a reported FAULT/);
    expect(find(r.actions, 'promote-redis')?.catchUpFrom).toBeNull();
    // The peer may still hold the VIP (refusing) when its FAULT arrives: announce once more after the locktime.
    expect(r.state.timers['garp-refresh']).toBe(600 + ARP_LOCKTIME_MARGIN_MS);
  });

  it('priority-0 advert: master-down deadline becomes the skew time (RFC 5798 §6.4.2)', () => {
    const r = step(b0, heard(advert({ state: 'MASTER', priority: 0, seq: 3, flags: { fault: false, resigning: true, maintenance: false, switchingOver: false, holdsVip: false } })), 700, cfg);
    expect(r.state.timers['master-down']).toBe(700 + skewMs(90, 1000));
    const t = step(r.state, fired('master-down'), 700 + skewMs(90, 1000), cfg);
    expect(t.reason).toMatch(/resigned/);
    expect(find(t.actions, 'promote-redis')?.catchUpFrom).toEqual({ host: A_ADDR, port: 6379 });
  });

  it('a peer that stops while still in INIT with a master Redis is treated as resigning', () => {
    const r = step(b0, heard(advert({ state: 'INIT', priority: 0, seq: 5, flags: { fault: false, resigning: true, maintenance: false, switchingOver: false, holdsVip: false },
      redis: { role: 'master', replId: REPL_A, replId2: '', offset: 1, secondOffset: -1 } })), 3000, cfg);
    expect(r.state.timers['master-down']).toBe(3000 + skewMs(90, 1000));
  });

  it('stopping in INIT releases a VIP kept at start-up', () => {
    const s = last(run(cfg, [started, [10, ok(masterSnap())]])).state;
    expect(types(step(s, { type: 'shutdown-requested' }, 20, cfg).actions)).toEqual(['release-vip', 'send-advert', 'send-advert', 'exit']);
  });

  it('peer daemon restarting in place (INIT, Redis master) keeps the master-down timer from firing', () => {
    const r = step(b0, heard(advert({ state: 'INIT', seq: 4, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 1, secondOffset: -1 } })), 3000, cfg);
    expect(r.state.timers['master-down']).toBe(3000 + masterDownMs(90, 1000));
  });

  it('fall failed checks: FAULT, release the VIP, advertise the fault', () => {
    const r = run(cfg, [[100, fail], [600, fail]], b0);
    expect(r[0]!.state.role).toBe('BACKUP');
    expect(last(r).state.role).toBe('FAULT');
    expect(types(last(r).actions)).toEqual(['release-vip', 'send-advert']);
    expect(find(last(r).actions, 'send-advert')?.advert.flags.fault).toBe(true);
  });

  it('local Redis found master while the peer is master: demote towards the peer', () => {
    const r = step(b0, ok(masterSnap()), 100, cfg);
    expect(types(r.actions)).toEqual(['replicate-from']);
    expect(r.state.redisOp).toBe('demoting');
  });

  it('never REPLICAOF towards a peer whose Redis is not a master', () => {
    const s = step(b0, heard(advert({ state: 'MASTER', seq: 9, redis: { role: 'replica', replId: REPL_A, replId2: '', offset: 1, secondOffset: -1 } })), 50, cfg).state;
    const r = step(s, ok(masterSnap()), 100, cfg);
    expect(types(r.actions)).toEqual([]);
  });

  it('preempt: a higher-priority backup takes over after the preempt delay', () => {
    const c = coreConfig({ priority: 110, preempt: true, preemptDelayMs: 2000 });
    const r = run(c, [started, [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER' }))]]);
    expect(last(r).state.timers.preempt).toBe(2020);
    const p = step(last(r).state, fired('preempt'), 2020, c);
    expect(p.state.role).toBe('MASTER');
    expect(p.reason).toMatch(/preempting a \(priority 110 > 100\)/);
  });

  it('nopreempt: a higher-priority backup stays backup', () => {
    const c = coreConfig({ priority: 110, preempt: false });
    const r = run(c, [started, [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER' }))]]);
    expect(last(r).state.timers.preempt).toBeUndefined();
  });
});

describe('MASTER', () => {
  const a = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });
  const m0 = last(run(a, [started, [10, ok(masterSnap({ replId: REPL_A, offset: 5000 }))], [3700, fired('init-listen')]])).state;

  it('dual master, peer has the newer epoch: step down at once, release VIP before demoting, audit the discarded bytes', () => {
    const peerB = advert({
      nodeName: 'b', state: 'MASTER', priority: 90, epoch: 3,
      redis: { role: 'master', replId: REPL_B, replId2: REPL_A, offset: 4500, secondOffset: 4001 },
    });
    const r = step(m0, heard(peerB, B_ADDR), 4000, a);
    expect(r.state.role).toBe('BACKUP');
    expect(r.reason).toMatch(/dual master resolved: peer b wins \(epoch 3/);
    expect(types(r.actions)).toEqual(['persist-state', 'release-vip', 'send-advert', 'replicate-from']);
    const resolved = r.actions.find((x) => x.type === 'audit' && x.event === 'dual-master-resolved');
    expect(resolved?.type === 'audit' && resolved.data.discardedBytes).toBe(1000);
  });

  it('dual master, this node has the newer epoch: stay, re-advertise and re-send gratuitous ARP', () => {
    const s = { ...m0, epoch: 4 };
    const r = step(s, heard(advert({ nodeName: 'b', state: 'MASTER', priority: 90, epoch: 3 }), B_ADDR), 4000, a);
    expect(r.state.role).toBe('MASTER');
    expect(types(r.actions)).toEqual(['persist-state', 'send-advert', 'announce-vip']);
  });

  it('epoch beats priority: a lower-priority master with the newer epoch wins', () => {
    const r = step(m0, heard(advert({ nodeName: 'b', state: 'MASTER', priority: 1, epoch: 9 }), B_ADDR), 4000, a);
    expect(r.state.role).toBe('BACKUP');
  });

  it('a dead Redis never keeps the VIP', () => {
    const r = run(a, [[4000, fail], [4500, fail]], m0);
    expect(last(r).state.role).toBe('FAULT');
    expect(types(last(r).actions)).toContain('release-vip');
    expect(vipDesired(last(r).state)).toBe(false);
  });

  it('a refused connection is FAULT at once, and the peer hears it before the VIP release', () => {
    const refused = { ...fail, down: true } as const;
    const r = step(m0, refused, 4000, a);
    expect(r.state.role).toBe('FAULT');
    expect(r.reason).toMatch(/failed 1 checks: connection refused/);
    expect(types(r.actions)).toEqual(['send-advert', 'release-vip']);
    expect(find(r.actions, 'send-advert')?.advert.flags.fault).toBe(true);
    // A failed check that proves nothing (a timeout) waits for `fall`, and reports after the release.
    const slow = run(a, [[4000, fail], [4500, fail]], m0);
    expect(types(last(slow).actions)).toEqual(['release-vip', 'send-advert']);
    // With etcd the advert follows the release and the fence: the peer's ask would only meet our lease.
    const q = coreConfig({ ...a, quorum: { backend: 'etcd', prefer: 'safety', retryMs: 500, fenceLeadMs: 530 } });
    const withEtcd = types(step(m0, refused, 4000, q).actions);
    expect(withEtcd.indexOf('send-advert')).toBeGreaterThan(withEtcd.indexOf('release-vip'));
  });

  describe('the VIP hold of a master whose Redis is gone (vip.fault_hold_ms)', () => {
    const held = coreConfig({ ...a, faultVipHoldMs: 150 });
    const refused = { ...fail, down: true } as const;
    const r = step(m0, refused, 4000, held);

    it('advertises FAULT first, keeps the VIP refusing connections, and sets the timer', () => {
      expect(r.state.role).toBe('FAULT');
      expect(types(r.actions)).toEqual(['send-advert', 'refuse-vip']);
      expect(r.reason).toMatch(/connection refused; VIP kept refusing connections for at most 150 ms while the peer takes over/);
      expect(r.state.timers['fault-release']).toBe(4150);
      expect(vipDesired(r.state)).toBe(false);
      // The reconcile loop leaves the held VIP alone.
      expect(types(step(r.state, { type: 'vip-observed', present: true }, 4050, held).actions)).toEqual([]);
    });

    it('ends at its time, when the peer holds the VIP, when Redis answers again, on a stop, or when the refusal failed', () => {
      const ends = [
        step(r.state, fired('fault-release'), 4150, held),
        step(r.state, heard(advert({ nodeName: 'b', state: 'MASTER', priority: 90, epoch: 1, seq: 9,
          flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: true } }), B_ADDR), 4080, held),
        step(r.state, ok(masterSnap({ replId: REPL_A, offset: 5000 })), 4020, held),
        step(r.state, { type: 'effect-failed', action: 'refuse-vip', detail: 'nft: not found' }, 4005, held),
      ];
      for (const end of ends) {
        expect(types(end.actions)).toContain('release-vip');
        expect(end.state.timers['fault-release']).toBeUndefined();
      }
      expect(types(step(r.state, { type: 'shutdown-requested' }, 4030, held).actions)).toContain('release-vip');
      // Still refused, or an advert of a peer not yet holding it: the hold goes on.
      expect(types(step(r.state, refused, 4020, held).actions)).toEqual([]);
      const taking = step(r.state, heard(advert({ nodeName: 'b', state: 'MASTER', priority: 90, epoch: 1, seq: 9,
        flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false } }), B_ADDR), 4030, held);
      expect(types(taking.actions)).not.toContain('release-vip');
    });

    it('is not taken by a backup or on a timeout', () => {
      const b = last(run(cfg, [started, [10, ok(replicaSnap())]])).state;
      expect(types(step(b, refused, 100, coreConfig({ ...cfg, faultVipHoldMs: 150 })).actions)).toEqual(['send-advert', 'release-vip']);
      expect(types(last(run(held, [[4000, fail], [4500, fail]], m0)).actions)).toEqual(['release-vip', 'send-advert']);
    });

    it('is taken with etcd too, the FAULT advert then after the hold and the fence (whose end gives the key up)', () => {
      const q = coreConfig({ ...held, quorum: { backend: 'etcd', prefer: 'safety', retryMs: 500, fenceLeadMs: 530 } });
      const r = step(m0, refused, 4000, q);
      const kinds = types(r.actions);
      expect(kinds).toContain('refuse-vip');
      expect(kinds).not.toContain('release-vip');
      expect(kinds.at(-1)).toBe('send-advert');
      expect(kinds.indexOf('refuse-vip')).toBeLessThan(kinds.indexOf('send-advert'));
      expect(r.state.timers['fault-release']).toBe(4000 + 150);
      // A failed `nft` skips the rest of the step: the VIP goes at once, and the FAULT
      // report is still sent (not left to the next advert tick).
      const skipped = r.actions.slice(kinds.indexOf('refuse-vip') + 1);
      const failed = step(r.state, { type: 'effect-failed', action: 'refuse-vip', detail: 'nft: not found', skipped }, 4005, q);
      const after = types(failed.actions);
      expect(after).toContain('release-vip');
      expect(after).toContain('send-advert');
    });
  });

  it('reconcile: VIP missing on the master is re-added, VIP on a backup is removed', () => {
    expect(types(step(m0, { type: 'vip-observed', present: false }, 5000, a).actions)).toEqual(['claim-vip']);
    expect(types(step(m0, { type: 'vip-observed', present: true }, 5000, a).actions)).toEqual([]);
    const b = last(run(cfg, [started, [10, ok(replicaSnap())]])).state;
    const r = step(b, { type: 'vip-observed', present: true }, 20, cfg);
    expect(types(r.actions)).toEqual(['release-vip']);
    expect(r.reason).toMatch(/drift repaired/);
  });

  it('SIGTERM as master: release the VIP, send priority-0 adverts, leave Redis, exit 0', () => {
    const r = step(m0, { type: 'shutdown-requested' }, 5000, a);
    expect(types(r.actions)).toEqual(['release-vip', 'send-advert', 'send-advert', 'exit']);
    const adv = find(r.actions, 'send-advert')!.advert;
    expect(adv.priority).toBe(0);
    expect(adv.flags.resigning).toBe(true);
    expect(step(r.state, fired('advert'), 6000, a).actions).toEqual([]);
  });

  it('a stale health snapshot taken before the promotion finished does not look like drift', () => {
    const b = last(run(cfg, [started, [10, ok(replicaSnap())], [20, heard(advert({ state: 'FAULT', flags: { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false } }))]])).state;
    const p = step(b, { type: 'promotion-finished', ok: true, detail: 'ok', redis: masterSnap() }, 100, cfg).state;
    const r = step(p, { type: 'health-checked', ok: true, detail: 'PONG', redis: replicaSnap(), startedAtMs: 90 }, 110, cfg);
    expect(r.state.role).toBe('MASTER');
    const drift = step(p, { type: 'health-checked', ok: true, detail: 'PONG', redis: replicaSnap(), startedAtMs: 200 }, 210, cfg);
    expect(drift.state.role).toBe('BACKUP');
  });
});

describe('FAULT', () => {
  it('a restarted Redis that comes back as master is demoted at its first good check; rise checks → BACKUP', () => {
    const s = run(cfg, [started, [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER' }))], [100, fail], [600, fail]]);
    expect(last(s).state.role).toBe('FAULT');
    const first = step(last(s).state, ok(masterSnap()), 1100, cfg);
    expect(first.state.role).toBe('FAULT');
    expect(types(first.actions)).toEqual(['replicate-from']);
    const second = step(first.state, ok(replicaSnap()), 1600, cfg);
    expect(second.state.role).toBe('BACKUP');
    expect(second.reason).toMatch(/passed 2 checks \(rise 2\)/);
  });
});

describe('timers', () => {
  it('nextDeadline returns the earliest armed timer', () => {
    const s = step(initialState(0, { epoch: 0, knownEpoch: 0 }), { type: 'started' }, 0, cfg).state;
    expect(nextDeadline(s)).toEqual({ timer: 'advert', at: 0 });
  });

  it('the advert timer re-arms every interval and the advert carries role, epoch and Redis offsets', () => {
    const s = last(run(cfg, [started, [10, ok(replicaSnap({ offset: 777 }))]])).state;
    const r = step(s, fired('advert'), 1000, cfg);
    expect(r.state.timers.advert).toBe(2000);
    const adv = find(r.actions, 'send-advert')!.advert;
    expect(adv).toMatchObject({ state: 'BACKUP', priority: 90, epoch: 0, redis: { role: 'replica', offset: 777, replId: REPL_A } });
  });
});

describe('event-loop stall (TILT)', () => {
  it('a backup re-arms master-down from now instead of taking over on a late timer', () => {
    const s = last(run(cfg, [started, [10, ok(replicaSnap())], [20, heard(advert({ state: 'MASTER' }))]])).state;
    const r = step(s, { type: 'stalled', stalledMs: 6000 }, 9000, cfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.state.timers['master-down']).toBe(9000 + masterDownMs(cfg.priority, 1000));
    expect(r.state.timers.advert).toBe(9000);
    expect(types(r.actions)).toEqual([]);
    expect(r.reason).toMatch(/event loop stalled 6000 ms: re-verifying/);
    // The master's adverts, queued behind the stall, then keep it backup.
    const after = step(r.state, heard(advert({ state: 'MASTER' })), 9001, cfg);
    expect(after.state.role).toBe('BACKUP');
  });

  it('deadlines that passed during the stall fire now, not late again (no stall loop)', () => {
    const a = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });
    const s = last(run(a, [started, [10, ok(masterSnap())], [20, heard(advert({ nodeName: 'b', state: 'BACKUP', priority: 90 }), B_ADDR)]])).state;
    const refresh = s.timers['garp-refresh']!;
    const r = step(s, { type: 'stalled', stalledMs: 3000 }, refresh + 2000, a);
    expect(r.state.timers['garp-refresh']).toBe(refresh + 2000);
  });

  it('a master keeps its role; a queued advert of a newer master then makes it step down', () => {
    const a = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });
    const s = last(run(a, [started, [10, ok(masterSnap())], [20, heard(advert({ nodeName: 'b', state: 'BACKUP', priority: 90 }), B_ADDR)]])).state;
    const r = step(s, { type: 'stalled', stalledMs: 5000 }, 8000, a);
    expect(r.state.role).toBe('MASTER');
    const newer = step(r.state, heard(advert({ nodeName: 'b', state: 'MASTER', priority: 90, epoch: s.epoch + 1 }), B_ADDR), 8001, a);
    expect(newer.state.role).toBe('BACKUP');
    expect(find(newer.actions, 'release-vip')).toBeDefined();
  });
});
