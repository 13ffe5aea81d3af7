/**
 * Property tests over simulated histories (fast-check): random Redis crashes, partitions,
 * packet loss and delays. Once the network has been stable for long enough, exactly one
 * node is MASTER, the VIP is on it and only on it, its Redis is a master, and the other
 * Redis replicates it. At every step, a FAULT node holds no VIP.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { masterDownMs } from '../../src/core/timing.js';
import { simulate, type Fault, type SimOptions } from './cluster-sim.js';

const fault = fc.record({
  kind: fc.constantFrom<Fault['kind']>('redis-crash', 'partition', 'loss', 'switchover', 'maintenance'),
  node: fc.constantFrom<'a' | 'b'>('a', 'b'),
  at: fc.integer({ min: 0, max: 20_000 }),
  durationMs: fc.integer({ min: 50, max: 8000 }),
});

function check(opts: SimOptions): void {
  const out = simulate(opts);
  const ctx = `\n${out.log.slice(-30).join('\n')}\n${JSON.stringify(out.nodes)}`;
  expect(out.violations, ctx).toEqual([]);
  const masters = (['a', 'b'] as const).filter((n) => out.nodes[n].role === 'MASTER');
  expect(masters, `exactly one MASTER${ctx}`).toHaveLength(1);
  const m = masters[0]!;
  const other = m === 'a' ? 'b' : 'a';
  expect(out.nodes[m].vip, `VIP on the master${ctx}`).toBe(true);
  expect(out.nodes[other].vip, `no VIP on the backup${ctx}`).toBe(false);
  expect(out.nodes[m].redisRole, `master's Redis is master${ctx}`).toBe('master');
  expect(out.nodes[other].role, `other node BACKUP${ctx}`).toBe('BACKUP');
  expect(out.nodes[other].redisRole, `other Redis is a replica${ctx}`).toBe('replica');
  expect(out.nodes[other].masterOf, `other Redis replicates the master${ctx}`).toBe(m);
}

describe('simulated pair', () => {
  for (const [label, advertIntervalMs, healthIntervalMs] of [['default timing', 1000, 500], ['fast timing', 100, 100]] as const) {
    it(`${label}: after the network settles there is exactly one master, holding the VIP`, () => {
      const settleMs = 2 * masterDownMs(1, advertIntervalMs) + 4 * healthIntervalMs + 3000;
      fc.assert(
        fc.property(
          fc.array(fault, { maxLength: 6 }),
          fc.double({ min: 0, max: 0.6, noNaN: true }),
          fc.integer({ min: 0, max: 80 }),
          fc.integer(),
          (faults, lossRate, maxDelayMs, seed) =>
            check({ faults, lossRate, maxDelayMs, seed, advertIntervalMs, healthIntervalMs, settleMs }),
        ),
        { numRuns: 150 },
      );
    });
  }

  it('a switchover asked on either node moves the master and answers the operator', () => {
    for (const node of ['a', 'b'] as const) {
      const out = simulate({
        faults: [{ kind: 'switchover', node, at: 8000, durationMs: 0 }],
        lossRate: 0, maxDelayMs: 5, seed: 3, advertIntervalMs: 1000, healthIntervalMs: 500, settleMs: 10_000,
      });
      expect(out.violations).toEqual([]);
      expect(out.nodes.b).toMatchObject({ role: 'MASTER', vip: true, redisRole: 'master' });
      expect(out.nodes.a).toMatchObject({ role: 'BACKUP', vip: false, redisRole: 'replica', masterOf: 'b' });
      expect(out.replies).toEqual([expect.stringMatching(new RegExp(`^${node} s1 ok: `))]);
    }
  });

  it('in maintenance a crashed master Redis is not failed over until maintenance ends', () => {
    const base = { lossRate: 0, maxDelayMs: 5, seed: 4, advertIntervalMs: 1000, healthIntervalMs: 500 } as const;
    const during = simulate({ ...base, settleMs: 0, faults: [
      { kind: 'maintenance', node: 'b', at: 6000, durationMs: 20_000 },
      { kind: 'redis-crash', node: 'a', at: 8000, durationMs: 30_000 },
    ] });
    // Stopped at the end of the crash window: maintenance ended at 26 s, the failover followed.
    expect(during.log.some((l) => /b BACKUP->MASTER/.test(l) && Number(l.split(' ')[0]) >= 26_000)).toBe(true);
    expect(during.log.some((l) => /b BACKUP->MASTER/.test(l) && Number(l.split(' ')[0]) < 26_000)).toBe(false);
  });

  it('a quiet start elects A (higher priority) and B replicates it', () => {
    const out = simulate({ faults: [], lossRate: 0, maxDelayMs: 5, seed: 1, advertIntervalMs: 1000, healthIntervalMs: 500, settleMs: 10_000 });
    expect(out.nodes.a).toMatchObject({ role: 'MASTER', vip: true, redisRole: 'master' });
    expect(out.nodes.b).toMatchObject({ role: 'BACKUP', vip: false, redisRole: 'replica', masterOf: 'a' });
  });

  it('a Redis crash on A moves the master to B, and A stays backup after its Redis returns (nopreempt)', () => {
    const out = simulate({
      faults: [{ kind: 'redis-crash', node: 'a', at: 8000, durationMs: 3000 }],
      lossRate: 0, maxDelayMs: 5, seed: 2, advertIntervalMs: 1000, healthIntervalMs: 500, settleMs: 10_000,
    });
    expect(out.nodes.b).toMatchObject({ role: 'MASTER', vip: true, redisRole: 'master' });
    expect(out.nodes.a).toMatchObject({ role: 'BACKUP', vip: false, redisRole: 'replica', masterOf: 'b' });
  });
});
