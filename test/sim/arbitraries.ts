/**
 * fast-check generators of simulated histories. Times are drawn in advert intervals, so
 * one generator serves both timing profiles: a history's faults start within its first
 * 20 intervals and last up to 8 (a Redis restart or a daemon restart can be much shorter
 * than one health check; a stall shorter or longer than the stall threshold and the
 * master-down interval).
 */
import fc from 'fast-check';
import type { Fault, FaultKind } from './faults.js';
import type { NodeId } from './world.js';

const node = fc.constantFrom<NodeId>('a', 'b');

/**
 * Faults of the given kinds, times scaled by `k` (the advert interval). `emptyRestarts`:
 * a crashed Redis may come back empty (else always with its data, as with AOF). etcd's
 * faults last from a quarter to four times `leaseMs` (the lease TTL; default two advert
 * intervals), so they end both before and after a lease could lapse.
 */
export function faultArb(kinds: readonly FaultKind[], k: number, emptyRestarts: boolean, leaseMs = 2 * k): fc.Arbitrary<Fault> {
  const at = fc.integer({ min: 0, max: 20 * k });
  const span = (minK: number, maxK: number) => fc.integer({ min: Math.max(1, Math.round(minK * k)), max: Math.round(maxK * k) });
  const e = Math.max(2 * k, leaseMs);
  const etcdSpan = fc.integer({ min: Math.round(e / 4), max: 4 * e });
  const all: Record<FaultKind, fc.Arbitrary<Fault>> = {
    partition: fc.record({
      kind: fc.constant('partition' as const), at, durationMs: span(0.5, 8),
      direction: fc.constantFrom('both' as const, 'a->b' as const, 'b->a' as const),
    }),
    loss: fc.record({ kind: fc.constant('loss' as const), at, durationMs: span(0.5, 8), rate: fc.double({ min: 0, max: 0.6, noNaN: true }) }),
    jitter: fc.record({
      kind: fc.constant('jitter' as const), at, durationMs: span(0.5, 8),
      maxDelayMs: span(0, 1.5), dupRate: fc.double({ min: 0, max: 0.5, noNaN: true }),
    }),
    'redis-crash': fc.record({ kind: fc.constant('redis-crash' as const), node, at, durationMs: span(0.05, 8),
      keepData: emptyRestarts ? fc.boolean() : fc.constant(true) }),
    stall: fc.record({ kind: fc.constant('stall' as const), node, at, durationMs: span(0.2, 6) }),
    'link-down': fc.record({ kind: fc.constant('link-down' as const), node, at, durationMs: span(0.2, 6) }),
    restart: fc.record({
      kind: fc.constant('restart' as const), node, at, durationMs: span(0.05, 5),
      how: fc.constantFrom('stop' as const, 'detach' as const, 'crash' as const), execStopPost: fc.boolean(),
    }),
    switchover: fc.record({
      kind: fc.constant('switchover' as const), node, at, force: fc.boolean(), timeoutMs: fc.integer({ min: 1000, max: 5000 }),
    }),
    maintenance: fc.record({ kind: fc.constant('maintenance' as const), node, offOn: node, at, durationMs: span(1, 10) }),
    flaky: fc.record({ kind: fc.constant('flaky' as const), node, at, durationMs: span(1, 8), rate: fc.double({ min: 0.05, max: 0.5, noNaN: true }) }),
    'etcd-partition': fc.record({
      kind: fc.constant('etcd-partition' as const), node, at, durationMs: etcdSpan,
      direction: fc.constantFrom('both' as const, 'to-etcd' as const, 'from-etcd' as const),
    }),
    'etcd-freeze': fc.record({ kind: fc.constant('etcd-freeze' as const), at, durationMs: etcdSpan }),
    'etcd-restart': fc.record({ kind: fc.constant('etcd-restart' as const), at, durationMs: etcdSpan }),
  };
  return fc.oneof(...kinds.map((kind) => all[kind]));
}

export const ALL_KINDS: readonly FaultKind[] = [
  'partition', 'loss', 'jitter', 'redis-crash', 'link-down', 'stall', 'restart', 'switchover', 'maintenance', 'flaky',
];
/**
 * Everything but partitions (Redis restarting with its data): no acknowledged write may
 * be lost beyond what a crashed Redis had not replicated yet.
 */
export const NO_PARTITION_KINDS: readonly FaultKind[] = ALL_KINDS.filter((k) => k !== 'partition');

/**
 * Drops a Redis crash that overlaps, on the same node, a stall or a restart of its
 * daemon, or (on either node) a switchover (within `marginMs`). Those double faults can
 * lose acknowledged writes with no partition: the Redis comes back as a master (its
 * REPLICAOF is not in its configuration) while the VIP is still on its host and nothing
 * demotes it in time: its daemon cannot act (stalled, down), or keeps the VIP on purpose
 * (a switchover's make-before-break, during which it leaves Redis alone); the peer's
 * catch-up found it down, so it was not fenced. Such histories run in the any-faults
 * profile, where loss is not checked.
 */
export function withoutDoubleFaults(faults: readonly Fault[], marginMs: number): Fault[] {
  const window = (d: Fault): { node: NodeId | null; from: number; to: number } | null => {
    if (d.kind === 'stall' || d.kind === 'restart') return { node: d.node, from: d.at - marginMs, to: d.at + d.durationMs + marginMs };
    if (d.kind === 'switchover') return { node: null, from: d.at - marginMs, to: d.at + d.timeoutMs + marginMs };
    return null;
  };
  const windows = faults.map(window).filter((w) => w !== null);
  return faults.filter((f) => f.kind !== 'redis-crash'
    || !windows.some((w) => (w.node === null || w.node === f.node) && f.at < w.to && w.from < f.at + f.durationMs));
}
