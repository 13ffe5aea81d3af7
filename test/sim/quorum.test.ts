/**
 * The quorum on etcd (issue 11), on the real runtime pair (`pair.ts` with `quorum:
 * 'etcd'`): random histories over three hosts (the two nodes and etcd) with partitions
 * between every pair of them (two-way and one-way), loss and delay on every link, daemon
 * stalls, stops and kills, Redis crashes, failing effects, switchovers, maintenance, and
 * etcd frozen or killed and restarted. Checked while each runs and once it settles
 * (`invariants.ts`): at no instant do both Redis accept writes, no acknowledged write is
 * lost, and once stable exactly one master holds the VIP.
 *
 * What is left out, and why (each an open finding in quorum-findings.test.ts, or a part
 * of issue 11 not built yet):
 *  - Redis restarted empty, and a Redis crash overlapping a daemon stall, restart or
 *    switchover (`withoutDoubleFaults`): a Redis that comes back a master by itself is
 *    issue 11 item 5; such a Redis is also the one exemption of the strict checks;
 *  - both Redis accepting writes while one is under a starting daemon (what is left of
 *    Q6, by design) is counted, not failed (`knownBothWritable` in invariants.ts); so are
 *    acknowledged writes lost to it, and
 *    writes a master acknowledged that never reached the backup before it promoted
 *    without catching up (asynchronous replication's window: `unreplicatedAtPromotion`).
 *
 * The same histories every run (a fixed seed); explore others with
 *   SIM_SEED=random npx vitest run test/sim/quorum.test.ts
 * reproduce a failure with SIM_SEED=<seed> SIM_PATH=<path>, and change the number of
 * histories per property with SIM_QUORUM_RUNS=<n>.
 */
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { masterDownMs } from '../../src/core/timing.js';
import { ALL_KINDS, faultArb, withoutDoubleFaults } from './arbitraries.js';
import { describeFault, ETCD_KINDS, type Fault, type FaultKind } from './faults.js';
import { lostWrites } from './invariants.js';
import { replaySettings } from './replay.js';
import { addStats, DEFAULT_TIMING, FAST_TIMING, NO_STATS, quorumTimingOk, simulate, type SimOptions, type SimResult, type SimStats, type Timing } from './pair.js';
import { NODES, type NodeId } from './world.js';

const RUNS = Number(process.env['SIM_QUORUM_RUNS'] ?? process.env['SIM_RUNS'] ?? 800);
/** The same histories every run (see replay.ts). */
const replay = replaySettings(11);

/** See properties.test.ts: shrinking stops running histories after this long. */
const SHRINK_BUDGET_MS = 20_000;
let firstFailureAt: number | null = null;
let totals: SimStats = NO_STATS;

const KINDS: readonly FaultKind[] = [...ALL_KINDS, ...ETCD_KINDS];

async function check(timing: Timing, faults: readonly Fault[], seed: number, preempt: boolean): Promise<void> {
  if (firstFailureAt !== null && performance.now() - firstFailureAt > SHRINK_BUDGET_MS) return;
  const r = await simulate({ seed, timing, faults, preempt, lossFree: true, quorum: 'etcd' });
  totals = addStats(totals, r.stats);
  if (r.violations.length > 0) {
    firstFailureAt ??= performance.now();
    const context = [
      `faults:\n  ${faults.map(describeFault).join('\n  ')}`,
      `trace (last 80):\n  ${r.trace.slice(-80).join('\n  ')}`,
    ].join('\n');
    expect.fail(`${r.violations.join('\n')}\n${context}`);
  }
}

function property(timing: Timing): fc.IAsyncProperty<[Fault[], number, boolean]> {
  const k = timing.advertIntervalMs;
  return fc.asyncProperty(
    fc.array(faultArb(KINDS, k, false, timing.quorum.leaseTtlMs), { maxLength: 8 })
      .map((faults) => withoutDoubleFaults(faults, masterDownMs(1, k))),
    fc.integer(),
    fc.boolean(),
    (faults, seed, preempt) => check(timing, faults, seed, preempt),
  );
}

describe.each([
  ['default timing', DEFAULT_TIMING],
  ['fast timing', FAST_TIMING],
] as const)('simulated pair with etcd, %s', (label, timing) => {
  beforeEach(() => {
    totals = NO_STATS;
    firstFailureAt = null;
  });
  afterEach((context) => {
    console.log(`${context.task.name} (${label}): ${JSON.stringify(totals)}`);
  });

  it('the timing satisfies the lease and fence rule', () => {
    expect(quorumTimingOk(timing.quorum)).toBe(true);
  });

  it('any faults of the three hosts: never two Redis accepting writes, no acknowledged write lost, one master once stable', async () => {
    await fc.assert(property(timing), { numRuns: RUNS, ...replay });
  });
});

/** Runs one fixed history with the quorum; no violation, no lost write excused. */
async function scenario(opts: Partial<SimOptions> & { faults: readonly Fault[] }): Promise<SimResult> {
  const r = await simulate({ seed: 1, timing: DEFAULT_TIMING, lossFree: true, quorum: 'etcd', ...opts });
  expect(r.violations, r.trace.join('\n')).toEqual([]);
  expect(r.stats.bothWritableExcused, r.trace.join('\n')).toEqual({});
  return r;
}

/** When `node` went from `from` to `to` (ms), from the trace. */
function changes(r: SimResult, node: NodeId, from: string, to: string): number[] {
  const re = new RegExp(`^(\\d+) ${node} ${from}->${to} `);
  return r.trace.flatMap((line) => {
    const m = re.exec(line);
    return m ? [Number(m[1])] : [];
  });
}

/** When `node`'s audit recorded `event` (with `match` in its data). */
function audited(r: SimResult, node: NodeId, event: string, match: Readonly<Record<string, unknown>> = {}): number[] {
  return r.audit
    .filter((x) => x.node === node && x.event === event && Object.entries(match).every(([k, v]) => x.data[k] === v))
    .map((x) => x.at);
}

/** Acknowledged writes the final master does not hold (a crashed Redis's unreplicated writes aside), with no exemption. */
function lost(r: SimResult): number[] {
  const master = NODES.find((n) => r.pair.runtime(n)?.current.role === 'MASTER');
  expect(master, r.trace.join('\n')).toBeDefined();
  return lostWrites(r.pair, master!).map((w) => w.id);
}

describe('simulated pair with etcd: scenarios', () => {
  it('a quiet start: A takes the key and serves, B replicates, the key names A in epoch 0', async () => {
    const r = await scenario({ faults: [] });
    expect(r.pair.runtime('a')!.current).toMatchObject({ role: 'MASTER', epoch: 0 });
    expect(r.pair.runtime('b')!.current.role).toBe('BACKUP');
    expect(r.pair.etcd!.key?.record).toEqual({ node: 'a', epoch: 0 });
    expect(r.pair.client.acked.length).toBeGreaterThan(100);
    expect(r.pair.redis.servers.b.log).toEqual(r.pair.redis.servers.a.log);
  });

  it('the hosts cut from each other while both reach etcd (the client sees both): no second master, no write lost', async () => {
    const r = await scenario({ faults: [{ kind: 'partition', direction: 'both', at: 6000, durationMs: 15_000 }] });
    // B asks for the key after the master-down interval and is told A holds it, again and again.
    expect(r.audit.some((x) => x.node === 'b' && x.event === 'quorum-held-by-other')).toBe(true);
    expect(changes(r, 'b', 'BACKUP', 'MASTER')).toEqual([]);
    expect(r.stats.maxBothWritableMs).toBe(0);
    expect(r.pair.runtime('a')!.current).toMatchObject({ role: 'MASTER', epoch: 0 });
    // A took writes all along; B caught up after the heal.
    expect(r.pair.client.acked.filter((w) => w.at > 6000 && w.at < 21_000).length).toBeGreaterThan(100);
    expect(lost(r)).toEqual([]);
    expect(r.pair.redis.servers.b.log).toEqual(r.pair.redis.servers.a.log);
  });

  it('the master cut from its peer and from etcd fences its Redis before the backup promotes', async () => {
    const cut = { at: 6000, durationMs: 10_000 };
    const r = await scenario({
      faults: [{ kind: 'partition', direction: 'both', ...cut }, { kind: 'etcd-partition', node: 'a', direction: 'both', ...cut }],
    });
    const [fenced] = audited(r, 'a', 'redis-fence', { writes: 'refused', ok: true });
    const [promoted] = audited(r, 'b', 'redis-promoted', { ok: true });
    expect(fenced).toBeDefined();
    expect(promoted).toBeDefined();
    // A fences when its peer has been silent two advert intervals (it serves on without
    // its lease meanwhile: failsafe); B promotes once A's lease has lapsed in etcd.
    expect(fenced!).toBeLessThan(promoted!);
    expect(fenced! - cut.at).toBeLessThanOrEqual(2 * DEFAULT_TIMING.advertIntervalMs + 100);
    expect(r.stats.maxBothWritableMs).toBe(0);
    expect(r.pair.runtime('b')!.current).toMatchObject({ role: 'MASTER', epoch: 1 });
    // The client runs beside etcd: cut off from A with it, it acknowledged nothing there.
    expect(lost(r)).toEqual([]);
  });

  it('the same with a client that still reaches the isolated master: A cannot ease its fence without etcd (the relaxed mark), so it acknowledges nothing B lacks (the model\'s fence trips with the link; real Redis after min-replicas-max-lag)', async () => {
    const cut = { at: 6000, durationMs: 10_000 };
    const r = await scenario({
      clientBesideEtcd: false,
      faults: [{ kind: 'partition', direction: 'both', ...cut }, { kind: 'etcd-partition', node: 'a', direction: 'both', ...cut }],
    });
    expect(r.stats.maxBothWritableMs).toBe(0);
    // Before the relaxed mark (src/core/quorum-memory.ts), A eased its fence while it held the
    // lease and acknowledged the client's writes until it fenced: those never reached B.
    expect(audited(r, 'a', 'quorum-relax-refused', {}).length).toBeGreaterThan(0);
    expect(r.pair.client.acked.filter((w) => w.node === 'a' && w.at >= cut.at && w.at < cut.at + cut.durationMs)).toEqual([]);
    expect(lost(r)).toEqual([]);
    expect(r.stats.knownBugLosses).toEqual({});
  });

  it('etcd frozen for 10 s: no failover; the master serves on while it hears its peer (failsafe) and takes the key again', async () => {
    const r = await scenario({ faults: [{ kind: 'etcd-freeze', at: 6000, durationMs: 10_000 }] });
    expect(changes(r, 'b', 'BACKUP', 'MASTER')).toEqual([]);
    expect(changes(r, 'a', 'MASTER', 'BACKUP')).toEqual([]);
    expect(audited(r, 'a', 'quorum-failsafe')).toHaveLength(1);
    const [restored] = audited(r, 'a', 'quorum-restored');
    expect(restored).toBeGreaterThanOrEqual(16_000);
    expect(r.pair.runtime('a')!.current).toMatchObject({ role: 'MASTER', epoch: 0 });
    // Writes went on throughout.
    expect(r.pair.client.acked.filter((w) => w.at > 6000 && w.at < 16_000).length).toBeGreaterThan(90);
    expect(lost(r)).toEqual([]);
  });

  it('etcd killed and restarted within the lease: no failover', async () => {
    const r = await scenario({ faults: [{ kind: 'etcd-restart', at: 6000, durationMs: 800 }] });
    expect(changes(r, 'b', 'BACKUP', 'MASTER')).toEqual([]);
    expect(changes(r, 'a', 'MASTER', 'BACKUP')).toEqual([]);
    expect(lost(r)).toEqual([]);
  });

  it('the master\'s daemon stalled longer than the master-down interval: B takes over, fencing A\'s Redis by the catch-up; no write lost', async () => {
    const r = await scenario({ faults: [{ kind: 'stall', node: 'a', at: 6000, durationMs: 8000 }] });
    const [takeover] = changes(r, 'b', 'BACKUP', 'MASTER');
    // Not before A's lease has lapsed in etcd (TTL + up to the expiry check).
    expect(takeover).toBeGreaterThan(6000 + DEFAULT_TIMING.quorum.leaseTtlMs - DEFAULT_TIMING.quorum.renewIntervalMs);
    expect(audited(r, 'b', 'redis-promoted', { ok: true }).length).toBe(1);
    expect(r.audit.find((x) => x.node === 'b' && x.event === 'redis-promoted')?.data['detail']).toMatch(/caught up with a; fenced a/);
    // A wakes, finds its lease gone, and steps down.
    expect(changes(r, 'a', 'MASTER', 'BACKUP')[0]).toBe(14_000);
    expect(r.stats.maxBothWritableMs).toBe(0);
    expect(lost(r)).toEqual([]);
    expect(r.pair.runtime('b')!.current).toMatchObject({ role: 'MASTER', epoch: 1 });
  });

  it('the same histories with fast timing: the hosts cut from each other, then the master isolated', async () => {
    const split = await scenario({ timing: FAST_TIMING, faults: [{ kind: 'partition', direction: 'both', at: 1000, durationMs: 3000 }] });
    expect(changes(split, 'b', 'BACKUP', 'MASTER')).toEqual([]);
    expect(lost(split)).toEqual([]);
    const cut = { at: 1000, durationMs: 3000 };
    const isolated = await scenario({
      timing: FAST_TIMING,
      faults: [{ kind: 'partition', direction: 'both', ...cut }, { kind: 'etcd-partition', node: 'a', direction: 'both', ...cut }],
    });
    const [fenced] = audited(isolated, 'a', 'redis-fence', { writes: 'refused', ok: true });
    const [promoted] = audited(isolated, 'b', 'redis-promoted', { ok: true });
    expect(fenced!).toBeLessThan(promoted!);
    expect(lost(isolated)).toEqual([]);
  });
});
