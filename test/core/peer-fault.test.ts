/**
 * The backup's own look at its master's Redis (`src/core/peer-fault.ts`, issue 12): a
 * refused connection, asked for because the replica's link dropped, brings the
 * master-down timer forward to one advert interval; a live master's advert puts it back.
 */
import { describe, expect, it } from 'vitest';
import { step } from '../../src/core/step.js';
import type { CoreState } from '../../src/core/state.js';
import { masterDownMs, skewMs } from '../../src/core/timing.js';
import type { Event } from '../../src/core/types.js';
import { aCfg, advert, coreConfig, fired, heard, last, masterWithBackup, ok, replicaSnap, run, types } from './fixtures.js';

const cfg = coreConfig();
const refused: Event = { type: 'peer-redis-probed', down: true, detail: 'connection refused' };

/** b: a healthy BACKUP replicating a, which advertised MASTER at 100 ms. */
function backup(over: Parameters<typeof replicaSnap>[0] = {}): CoreState {
  const s = last(run(cfg, [[0, { type: 'started' }], [10, ok(replicaSnap(over))], [20, ok(replicaSnap(over))], [100, heard(advert({ state: 'MASTER', epoch: 1 }))]])).state;
  expect(s.role).toBe('BACKUP');
  return s;
}

describe('peer-redis-probed', () => {
  it('a refusal brings the master-down timer forward to one advert interval + skew, audited; no takeover yet', () => {
    const s = backup({ linkUp: false });
    const r = step(s, refused, 600, cfg);
    expect(r.state.role).toBe('BACKUP');
    expect(types(r.actions)).toEqual([]); // `types` leaves audits out: one, below
    expect(r.actions[0]).toMatchObject({ event: 'peer-redis-refused' });
    expect(r.state.timers['master-down']).toBeCloseTo(600 + 1000 + skewMs(cfg.priority, 1000), 6);
    expect(r.reason).toMatch(/peer a's Redis refused a connection from here \(connection refused\): master-down in \d+ ms unless a reports FAULT or advertises MASTER again/);
  });

  it('a master whose daemon died with its Redis is then taken over through the silence path (catching up from, and fencing, its Redis)', () => {
    const s = step(backup({ linkUp: false }), refused, 600, cfg).state;
    const r = step(s, fired('master-down'), s.timers['master-down'] ?? 0, cfg);
    expect(r.state.role).toBe('MASTER');
    const promote = r.actions.find((a) => a.type === 'promote-redis');
    expect(promote?.type === 'promote-redis' ? promote.catchUpFrom : null).toEqual(cfg.peerRedis);
  });

  it('a master that advertises again (a firewall refused us, not a dead Redis) puts the timer back', () => {
    const s = step(backup({ linkUp: false }), refused, 600, cfg).state;
    const r = step(s, heard(advert({ state: 'MASTER', epoch: 1, seq: 2 })), 1100, cfg);
    expect(r.state.timers['master-down']).toBeCloseTo(1100 + masterDownMs(cfg.priority, 1000), 6);
    expect(r.state.role).toBe('BACKUP');
  });

  it('an answer, or a timeout, leaves the master-down timer as it was', () => {
    const s = backup({ linkUp: false });
    for (const detail of ['answered as master', 'timeout after 100 ms (connecting)']) {
      const r = step(s, { type: 'peer-redis-probed', down: false, detail }, 600, cfg);
      expect(r.state.timers['master-down']).toBe(s.timers['master-down']);
      expect(r.actions).toEqual([]);
    }
  });

  it('does nothing for a master it does not follow, once the master is silent, or as MASTER or FAULT', () => {
    const s = backup({ linkUp: false });
    expect(step(backup({ linkUp: false, masterHost: '10.77.0.99' }), refused, 600, cfg).actions).toEqual([]);
    expect(step(s, refused, 100 + 4000, cfg).reason).toMatch(/not a healthy replica of a live master/);
    for (const role of ['MASTER', 'FAULT'] as const) {
      const r = step({ ...s, role }, refused, 600, cfg);
      expect(r.state.role).toBe(role);
      expect(r.actions).toEqual([]);
    }
  });
});

describe('replica-link-dropped: a fresh advert asked of the master', () => {
  const dropped: Event = { type: 'replica-link-dropped' };

  it("a backup following a live master asks that master's daemon for an advert now", () => {
    const r = step(backup({ linkUp: false }), dropped, 600, cfg);
    expect(r.state.role).toBe('BACKUP');
    expect(r.actions).toEqual([{ type: 'send-message', message: { kind: 'advert-request', requestId: 'link-600' } }]);
    expect(r.reason).toMatch(/replica link to a dropped: asking it for an advert now/);
  });

  it('asks nothing of a master it does not follow, a silent one, or as MASTER or FAULT', () => {
    const s = backup({ linkUp: false });
    expect(step(backup({ linkUp: false, masterHost: '10.77.0.99' }), dropped, 600, cfg).actions).toEqual([]);
    expect(step(s, dropped, 100 + 4000, cfg).actions).toEqual([]);
    for (const role of ['MASTER', 'FAULT'] as const) expect(step({ ...s, role }, dropped, 600, cfg).actions).toEqual([]);
  });
});

describe('advert-requested: the master answers with an advert at once', () => {
  const asked: Event = { type: 'advert-requested', from: 'b' };
  it('a node that advertises sends one now, whatever its role; the regular advert timer is left as it was', () => {
    const s = backup();
    expect(s.timers.advert).toBeDefined();
    const r = step(s, asked, 600, cfg);
    expect(types(r.actions)).toEqual(['send-advert']);
    expect(r.state.timers.advert).toBe(s.timers.advert);
    expect(r.reason).toBe('b asked for an advert: sent (BACKUP)');
    const m = masterWithBackup();
    expect(m.role).toBe('MASTER');
    const a = step(m, asked, 6000, aCfg).actions;
    expect(a.map((x) => (x.type === 'send-advert' ? x.advert.state : x.type))).toEqual(['MASTER']);
  });

  it('answers at most one request per 20 ms (a flood does not make it advertise faster)', () => {
    let s = step(backup(), asked, 600, cfg).state;
    const again = step(s, asked, 619, cfg);
    expect(again.actions).toEqual([]);
    expect(again.reason).toMatch(/one was sent 19 ms ago/);
    s = again.state;
    expect(types(step(s, asked, 620, cfg).actions)).toEqual(['send-advert']);
  });

  it('a node that does not advertise (no advert timer) sends nothing', () => {
    const s = backup();
    const r = step({ ...s, timers: { ...s.timers, advert: undefined } }, asked, 600, cfg);
    expect(r.actions).toEqual([]);
    expect(r.reason).toMatch(/not advertising/);
  });
});
