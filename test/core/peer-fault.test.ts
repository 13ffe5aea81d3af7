/**
 * The backup's own look at its master's Redis (`src/core/peer-fault.ts`, issue 12): a
 * refused connection, asked for because the replica's link dropped, is taken as the
 * master's FAULT report; anything less leaves the master-down timer to decide.
 */
import { describe, expect, it } from 'vitest';
import { step } from '../../src/core/step.js';
import type { CoreState } from '../../src/core/state.js';
import type { Event } from '../../src/core/types.js';
import { advert, coreConfig, heard, last, ok, replicaSnap, run, types } from './fixtures.js';

const cfg = coreConfig();
const refused: Event = { type: 'peer-redis-probed', down: true, detail: 'connection refused' };

/** b: a healthy BACKUP replicating a, which advertised MASTER at 100 ms. */
function backup(over: Parameters<typeof replicaSnap>[0] = {}): CoreState {
  const s = last(run(cfg, [[0, { type: 'started' }], [10, ok(replicaSnap(over))], [20, ok(replicaSnap(over))], [100, heard(advert({ state: 'MASTER', epoch: 1 }))]])).state;
  expect(s.role).toBe('BACKUP');
  return s;
}

describe('peer-redis-probed', () => {
  it('a refusal takes over at once, as after a FAULT report: no catch-up from the dead Redis', () => {
    const r = step(backup({ linkUp: false }), refused, 600, cfg);
    expect(r.state.role).toBe('MASTER');
    expect(types(r.actions)).toContain('promote-redis');
    const promote = r.actions.find((a) => a.type === 'promote-redis');
    expect(promote?.type === 'promote-redis' ? promote.catchUpFrom : 'none').toBeNull();
    expect(r.reason).toMatch(/peer a's Redis refused a connection from here \(connection refused\): its process is gone/);
    expect(r.state.timers['garp-refresh']).toBeDefined();
  });

  it('an answer, or a timeout, leaves the master-down timer to decide', () => {
    const s = backup({ linkUp: false });
    for (const detail of ['answered as master', 'timeout after 100 ms (connecting)']) {
      const r = step(s, { type: 'peer-redis-probed', down: false, detail }, 600, cfg);
      expect(r.state.role).toBe('BACKUP');
      expect(r.actions).toEqual([]);
    }
  });

  it('does nothing in maintenance but freeze, nor for a master it does not follow, nor once the master is silent', () => {
    const s = backup({ linkUp: false });
    expect(step({ ...s, maintenance: { ...s.maintenance, on: true } }, refused, 600, cfg).state.role).toBe('BACKUP');
    expect(step(backup({ linkUp: false, masterHost: '10.77.0.99' }), refused, 600, cfg).state.role).toBe('BACKUP');
    expect(step(s, refused, 100 + 4000, cfg).reason).toMatch(/not a healthy replica of a live master/);
  });

  it('a master or a node in FAULT ignores it', () => {
    const s = backup({ linkUp: false });
    for (const role of ['MASTER', 'FAULT'] as const) {
      const r = step({ ...s, role }, refused, 600, cfg);
      expect(r.state.role).toBe(role);
      expect(r.actions).toEqual([]);
    }
  });
});
