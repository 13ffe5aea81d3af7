/**
 * The benchmark's pure measurements: sampler lines, certain intervals and their
 * overlaps (a clean handover seen by two out-of-phase samplers is no overlap), the
 * first reaction after a fault (a Redis going down is the fault, not a reaction),
 * the stalled master's step-down and the new master's VIP claim from the setup's own
 * role records, unavailability sums, the write figures, and /proc parsing.
 */
import { describe, expect, it } from 'vitest';
import type { OpRecord } from '../../tools/lab/analysis.js';
import {
  analyseTimeline,
  analyseWrites,
  certainIntervals,
  fibHasLocal,
  overlapMs,
  parseMemorySplit,
  parseRssKiB,
  sumSplit,
  parseSampleLine,
  parseStatTicks,
  readProbe,
  sampledStateSince,
  stepDownAfterContinue,
  takesWrites,
  UNAVAILABLE_GAP_MS,
  unavailableTime,
  vipClaimAfterPromotion,
  type RedisSample,
  type Sample,
  type VipSample,
} from '../../tools/bench/measure.js';
import type { RoleRecord } from '../../tools/bench/setup.js';
import { roleRecordsFromAudit } from '../../tools/bench/setups/redis-ha.js';

const vip = (node: 'a' | 'b', wallMs: number, held: boolean): VipSample => ({ kind: 'vip', node, wallMs, vip: held });
const redis = (node: 'a' | 'b', wallMs: number, role: RedisSample['role'], link: string | null = null): RedisSample => ({
  kind: 'redis',
  node,
  wallMs,
  role,
  writable: role === 'master',
  link,
});

/** Samples every `step` ms of both nodes from `from` to `to` with the states given by `at`. */
function stream(from: number, to: number, step: number, offsetB: number, at: (t: number) => { aVip: boolean; bVip: boolean; a: RedisSample['role']; b: RedisSample['role'] }): Sample[] {
  const samples: Sample[] = [];
  for (let t = from; t <= to; t += step) {
    const sa = at(t);
    samples.push(vip('a', t, sa.aVip), redis('a', t, sa.a, null));
    const tb = t + offsetB;
    const sb = at(tb);
    samples.push(vip('b', tb, sb.bVip), redis('b', tb, sb.b, sb.b === 'replica' ? 'up' : null));
  }
  return samples;
}

describe('sampler lines', () => {
  it('parses VIP and Redis samples and rejects anything else', () => {
    expect(parseSampleLine('a', '{"k":"v","wallMs":5,"vip":true}')).toEqual({ kind: 'vip', node: 'a', wallMs: 5, vip: true });
    expect(parseSampleLine('b', '{"k":"r","wallMs":6,"role":"replica","writable":false,"link":"up"}')).toEqual({
      kind: 'redis',
      node: 'b',
      wallMs: 6,
      role: 'replica',
      writable: false,
      link: 'up',
    });
    expect(parseSampleLine('a', '{"k":"r","wallMs":6,"role":"leader"}')).toBeNull();
    expect(parseSampleLine('a', '{"k":"v"}')).toBeNull();
    expect(parseSampleLine('a', 'garbage')).toBeNull();
  });
});

describe("the sampler's Redis probe", () => {
  const bulk = (text: string): string => `$${Buffer.byteLength(text, 'latin1')}\r\n${text}\r\n`;
  const info = 'role:master\r\nconnected_slaves:1\r\nmin_slaves_good_slaves:1\r\n';
  const config = (value: string): string => `*2\r\n${bulk('min-replicas-to-write')}${bulk(value)}`;

  it('reads INFO and min-replicas-to-write once every reply is in, and waits until then', () => {
    const whole = `+OK\r\n${bulk(info)}${config('1000000')}`;
    expect(readProbe(whole)).toEqual({ info, minReplicasToWrite: 1_000_000 });
    for (const cut of [0, 3, 6, 20, whole.length - config('1000000').length, whole.length - 1]) {
      expect(readProbe(whole.slice(0, cut)), `cut at ${cut}`).toBeUndefined();
    }
  });

  it('takes a refused or empty CONFIG GET as unknown, and a refused AUTH or INFO as no answer', () => {
    expect(readProbe(`+OK\r\n${bulk(info)}-ERR unknown command 'CONFIG'\r\n`)).toEqual({ info, minReplicasToWrite: null });
    expect(readProbe(`+OK\r\n${bulk(info)}*0\r\n`)).toEqual({ info, minReplicasToWrite: null });
    expect(readProbe('-WRONGPASS invalid password\r\n')).toBeNull();
    expect(readProbe('+OK\r\n-LOADING\r\n')).toBeNull();
  });

  it("a fenced master (min-replicas-to-write above its good replicas) takes no writes, though it has its replica", () => {
    expect(takesWrites(info, 1_000_000)).toBe(false);
    expect(takesWrites(info, 1)).toBe(true);
    expect(takesWrites(info, null)).toBe(true);
    expect(takesWrites('role:master\r\nmin_slaves_good_slaves:0\r\n', 1)).toBe(false);
    // The check off (to-write 0 or max-lag 0): INFO has no good-replica count.
    expect(takesWrites('role:master\r\nconnected_slaves:0\r\n', 0)).toBe(true);
    expect(takesWrites('role:slave\r\nmaster_link_status:up\r\n', 0)).toBe(false);
  });
});

describe('VIP presence from /proc/net/fib_trie', () => {
  const fib = [
    'Main:',
    '  +-- 0.0.0.0/0 3 0 5',
    '     +-- 10.77.60.0/24 2 0 2',
    '        |-- 10.77.60.0',
    '           /24 link UNICAST',
    '        |-- 10.77.60.10',
    '           /32 host LOCAL',
    '        |-- 10.77.60.100',
    '           /32 host LOCAL',
    '        |-- 10.77.60.11',
    '           /32 link UNICAST',
    '        |-- 10.77.60.255',
    '           /32 link BROADCAST',
    'Local:',
    '',
  ].join('\n');

  it('finds a local /32 for the address, and nothing for a route to it or a prefix of it', () => {
    expect(fibHasLocal(fib, '10.77.60.100')).toBe(true);
    expect(fibHasLocal(fib, '10.77.60.10')).toBe(true);
    // A host route through the partition sink is not a local address.
    expect(fibHasLocal(fib, '10.77.60.11')).toBe(false);
    expect(fibHasLocal(fib, '10.77.60.1')).toBe(false);
    expect(fibHasLocal('', '10.77.60.100')).toBe(false);
  });
});

describe('certain intervals', () => {
  it('run from the first to the last sample of a streak, cut by a stale gap', () => {
    const samples = [vip('a', 0, true), vip('a', 50, true), vip('a', 100, false), vip('a', 150, true), vip('a', 900, true), vip('a', 950, true)];
    expect(certainIntervals(samples, (s) => s.vip)).toEqual([
      [0, 50],
      [150, 150],
      [900, 950],
    ]);
  });

  it('overlap only where both hold, clipped to the range', () => {
    expect(overlapMs([[0, 100]], [[50, 200]], 0, 1_000)).toBe(50);
    expect(overlapMs([[0, 100]], [[50, 200]], 60, 1_000)).toBe(40);
    expect(overlapMs([[0, 100]], [[100, 200]], 0, 1_000)).toBe(0);
  });
});

describe('analyseTimeline', () => {
  // Fault at 1000: a's Redis dies at once; the VIP leaves a at 1500 and reaches b at
  // 1505; b is promoted at 1503. Samplers 50 ms apart, b's 30 ms out of phase.
  const handover = stream(0, 4_000, 50, 30, (t) => ({
    aVip: t < 1_500,
    bVip: t >= 1_505,
    a: t < 1_000 ? 'master' : 'down',
    b: t >= 1_503 ? 'master' : 'replica',
  }));

  it('sees no overlap in a clean handover and detects the first reaction, not the fault', () => {
    const figures = analyseTimeline(handover, 1_000, 1_000, 4_000);
    expect(figures.dualVipMs).toBe(0);
    expect(figures.dualMasterMs).toBe(0);
    expect(figures.detectionMs).not.toBeNull();
    // The first sample after 1500 (a's, at 1500) or b's promotion (seen at 1530).
    expect(figures.detectionMs).toBeGreaterThanOrEqual(500);
    expect(figures.detectionMs).toBeLessThanOrEqual(560);
    expect(figures.noVipMs).toBeLessThan(100);
    expect(figures.timeline.map((e) => `${e.vip}/${e.a}/${e.b}`)).toContain('b/down/master');
  });

  it('measures a real split brain to within a sampling period', () => {
    const split = stream(0, 4_000, 50, 30, (t) => ({
      aVip: true,
      bVip: t >= 1_000 && t < 3_000,
      a: 'master',
      b: t >= 1_000 && t < 3_000 ? 'master' : 'replica',
    }));
    const figures = analyseTimeline(split, 500, 0, 4_000);
    expect(figures.dualVipMs).toBeGreaterThan(1_900);
    expect(figures.dualVipMs).toBeLessThanOrEqual(2_000);
    expect(figures.dualMasterMs).toBeGreaterThan(1_900);
    expect(figures.detectionMs).toBeGreaterThanOrEqual(500);
    expect(figures.detectionMs).toBeLessThanOrEqual(550);
  });

  it('reports no detection when nothing changes', () => {
    const quiet = stream(0, 2_000, 50, 10, () => ({ aVip: true, bVip: false, a: 'master', b: 'replica' }));
    expect(analyseTimeline(quiet, 1_000, 1_000, 2_000).detectionMs).toBeNull();
    // Complete once b's first sample (10 ms out of phase) is in.
    expect(sampledStateSince(quiet)).toBe(10);
    expect(sampledStateSince([])).toBeNull();
    expect(sampledStateSince(handover)).toBeGreaterThanOrEqual(1_500);
  });
});

const record = (node: 'a' | 'b', wallMs: number, kind: RoleRecord['kind']): RoleRecord => ({ node, wallMs, kind });

describe('a stalled master continued (daemon-stall)', () => {
  // a's daemon stopped at 1000; b promoted at 4700 (its takeover fences a's Redis at
  // 4710) and holds the VIP from 4720; a continued at 7000 steps down at 7012 and
  // releases the VIP at 7020. Samplers 50 ms apart, b's 30 ms out of phase.
  const stall = stream(0, 10_000, 50, 30, (t) => ({
    aVip: t < 7_020,
    bVip: t >= 4_720,
    a: t < 4_710 ? 'master' : 'replica',
    b: t >= 4_700 ? 'master' : 'replica',
  }));
  const records = [record('a', 100, 'to-master'), record('b', 4_650, 'to-master'), record('b', 4_700, 'redis-promoted'), record('b', 4_721, 'vip-claimed'), record('a', 7_012, 'from-master')];

  it('times the recorded step-down and the first sampled moment the old master holds nothing, from the continue', () => {
    expect(stepDownAfterContinue(stall, records, 'a', 1_000, 7_000)).toEqual({ stepDownMs: 12, oldMasterOutMs: 50 });
  });

  it('leaves the recorded step-down out for a setup without records, and null when it never came', () => {
    expect(stepDownAfterContinue(stall, null, 'a', 1_000, 7_000)).toEqual({ oldMasterOutMs: 50 });
    const clinging = stream(0, 10_000, 50, 30, (t) => ({ aVip: true, bVip: t >= 4_720, a: 'master', b: t >= 4_700 ? 'master' : 'replica' }));
    expect(stepDownAfterContinue(clinging, records.slice(0, 4), 'a', 1_000, 7_000)).toEqual({ stepDownMs: null, oldMasterOutMs: null });
  });

  it('ignores records from before the stall and readings from before the continue', () => {
    // An old step-down (before the fault) does not count; a's readings before 7000
    // already show its Redis fenced, but the VIP reading must be one taken after 7000.
    const earlier = [record('a', 500, 'from-master'), ...records.slice(0, 4)];
    expect(stepDownAfterContinue(stall, earlier, 'a', 1_000, 7_000).stepDownMs).toBeNull();
    expect(stepDownAfterContinue(stall, earlier, 'a', 1_000, 6_000).oldMasterOutMs).toBe(1_050);
  });

  it('times the VIP claim from the promotion record to the first sample showing the VIP, and to the recorded claim', () => {
    expect(vipClaimAfterPromotion(stall, records, 1_000)).toEqual({
      vipClaimNode: 'b', vipClaimFrom: 'redis-promoted', vipClaimMs: 30, vipClaimRecordMs: 21,
    });
  });
});

describe('VIP claim after a takeover', () => {
  const samples = stream(0, 3_000, 50, 30, (t) => ({ aVip: t < 1_000, bVip: t >= 1_210, a: 'master', b: t >= 1_200 ? 'master' : 'replica' }));

  it('falls back to the transition to master when no promotion was recorded', () => {
    expect(vipClaimAfterPromotion(samples, [record('b', 1_190, 'to-master')], 500)).toEqual({
      vipClaimNode: 'b', vipClaimFrom: 'to-master', vipClaimMs: 40, vipClaimRecordMs: null,
    });
  });

  it('takes the earliest takeover after the fault, on either node, and reports a VIP never seen as null', () => {
    const records = [record('a', 100, 'redis-promoted'), record('b', 1_200, 'redis-promoted'), record('a', 2_500, 'redis-promoted')];
    expect(vipClaimAfterPromotion(samples, records, 500)?.vipClaimNode).toBe('b');
    expect(vipClaimAfterPromotion(samples, records, 2_000)).toEqual({
      vipClaimNode: 'a', vipClaimFrom: 'redis-promoted', vipClaimMs: null, vipClaimRecordMs: null,
    });
  });

  it('is null when nobody took over after the fault', () => {
    expect(vipClaimAfterPromotion(samples, [record('a', 100, 'to-master')], 500)).toBeNull();
    expect(vipClaimAfterPromotion(samples, [], 500)).toBeNull();
  });
});

describe("redis-ha's role records from its audit log", () => {
  it('keeps transitions into and out of MASTER, successful promotions and VIP claims, with their times', () => {
    const audit = [
      { event: 'daemon-started', time: '2026-01-01T00:00:00.000Z' },
      { event: 'transition', from: 'INIT', to: 'BACKUP', time: '2026-01-01T00:00:00.100Z' },
      { event: 'transition', from: 'BACKUP', to: 'MASTER', time: '2026-01-01T00:00:01.000Z' },
      { event: 'redis-promoted', ok: false, time: '2026-01-01T00:00:01.010Z' },
      { event: 'redis-promoted', ok: true, time: '2026-01-01T00:00:01.020Z' },
      { event: 'vip-claim', time: '2026-01-01T00:00:01.021Z' },
      { event: 'vip-claimed', changed: true, time: '2026-01-01T00:00:01.030Z' },
      { event: 'transition', from: 'MASTER', to: 'BACKUP', time: '2026-01-01T00:00:02.000Z' },
      { event: 'transition', from: 'MASTER', to: 'FAULT', time: 'not a time' },
    ];
    const at = (iso: string): number => Date.parse(iso);
    expect(roleRecordsFromAudit('b', audit)).toEqual([
      { node: 'b', wallMs: at('2026-01-01T00:00:01.000Z'), kind: 'to-master' },
      { node: 'b', wallMs: at('2026-01-01T00:00:01.020Z'), kind: 'redis-promoted' },
      { node: 'b', wallMs: at('2026-01-01T00:00:01.030Z'), kind: 'vip-claimed' },
      { node: 'b', wallMs: at('2026-01-01T00:00:02.000Z'), kind: 'from-master' },
    ]);
  });
});

function op(value: number, startMs: number, endMs: number, outcome: OpRecord['outcome']): OpRecord {
  return { type: 'op', value, startMs, endMs, outcome };
}

describe('writes', () => {
  // Writes every 10 ms; fault at 1000; nothing acknowledged 1000..2000; repair at 3000.
  const ops: OpRecord[] = [];
  for (let i = 0; i < 400; i++) {
    const t = i * 10;
    ops.push(op(i + 1, t, t + 2, t >= 1_000 && t < 2_000 ? 'failed' : 'ok'));
  }

  it('sums the gaps of at least UNAVAILABLE_GAP_MS only', () => {
    expect(unavailableTime(ops, 0, 4_000)).toBeCloseTo(1_010, 0);
    expect(unavailableTime(ops, 0, 900)).toBe(0);
    // A fast failover's single 170 ms gap counts; a 50 ms hiccup does not.
    const short = [op(1, 0, 1, 'ok'), op(2, 50, 51, 'ok'), op(3, 221, 222, 'ok')];
    expect(unavailableTime(short, 0, 222)).toBe(171);
    expect(UNAVAILABLE_GAP_MS).toBeLessThanOrEqual(170);
  });

  it('computes window, unavailability, losses against the final set', () => {
    const final = new Set(ops.filter((o) => o.outcome === 'ok' && o.value !== 50 && o.value !== 350).map((o) => o.value));
    const figures = analyseWrites(ops, final, { faultMs: 1_000, faultPhaseEndMs: 3_000, repairMs: 3_000, endMs: 4_000 });
    expect(figures.acknowledged).toBe(300);
    expect(figures.failed).toBe(100);
    expect(figures.windowMs).toBeCloseTo(1_010, 0);
    expect(figures.unavailableMs).toBeCloseTo(1_010, 0);
    expect(figures.repairUnavailableMs).toBe(0);
    expect(figures.lost).toBe(2);
    expect(figures.lostAfterRecovery).toBe(1);
    expect(figures.lostSample).toEqual([50, 350]);
    expect(figures.unexpected).toBe(0);
    expect(figures.failedApplied).toBe(0);
  });

  it('leaves the set figures null when no final set could be read', () => {
    const figures = analyseWrites(ops, null, { faultMs: 1_000, faultPhaseEndMs: 4_000, repairMs: null, endMs: 4_000 });
    expect(figures.lost).toBeNull();
    expect(figures.unexpected).toBeNull();
    expect(figures.repairUnavailableMs).toBeNull();
    expect(figures.acknowledged).toBe(300);
  });
});

describe('/proc parsing', () => {
  it('sums utime, stime, cutime and cstime, whatever the command name holds', () => {
    const stat = '1234 (node (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 7 3 20 0 11 0 500 1000 2000';
    expect(parseStatTicks(stat)).toBe(310);
  });

  it('reads VmRSS in kB', () => {
    expect(parseRssKiB('Name:\tnode\nVmRSS:\t   61440 kB\nThreads: 11\n')).toBe(61_440);
    expect(parseRssKiB('Name:\tzombie\n')).toBe(0);
    const status = 'VmRSS:\t   61440 kB\nRssAnon:\t   26624 kB\nRssFile:\t   34816 kB\nRssShmem:\t       0 kB\n';
    expect(parseMemorySplit(status, 'Rss:  61440 kB\nPss:  40960 kB\nPss_Anon:  26624 kB\n'))
      .toEqual({ anonKiB: 26_624, fileKiB: 34_816, shmemKiB: 0, pssKiB: 40_960 });
    expect(parseMemorySplit(status, null).pssKiB).toBeNull();
    expect(sumSplit([{ anonKiB: 1, fileKiB: 2, shmemKiB: 0, pssKiB: 3 }, undefined, { anonKiB: 10, fileKiB: 20, shmemKiB: 0, pssKiB: null }]))
      .toEqual({ anonKiB: 11, fileKiB: 22, shmemKiB: 0, pssKiB: null });
  });
});
