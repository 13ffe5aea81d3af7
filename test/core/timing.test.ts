/** Timing arithmetic (RFC 5798 §6.1), the start-up invariants, and the quorum's lease and fence rule with its worst cases. */
import { describe, expect, it } from 'vitest';
import {
  checkQuorumTiming,
  checkStallThreshold,
  checkTimingInvariants,
  faultTimes,
  faultDetectMs,
  grantedLeaseTtlMs,
  masterDownMs,
  OUTAGE_FAULTS,
  QUORUM_MODES,
  quorumFenceLeadMs,
  quorumMode,
  skewMs,
  takeoverEstimate,
  vipLifetimeBoundMs,
  vipLifetimeS,
  worstCaseOutages,
  type QuorumTiming,
} from '../../src/core/timing.js';

const base = {
  priority: 90,
  advertIntervalMs: 1000,
  health: { intervalMs: 500, timeoutMs: 500, fall: 2 },
  promotion: { peerTimeoutMs: 100, preDelayMs: 0, syncDelayMs: 0 },
};

describe('timing', () => {
  it.each([
    [255, 1000, 3.90625],
    [100, 1000, 609.375],
    [90, 1000, 648.4375],
    [1, 100, 99.609375],
  ])('skew(priority %i, interval %i) = %f ms', (priority, interval, expected) => {
    expect(skewMs(priority, interval)).toBeCloseTo(expected, 6);
  });

  it('master-down interval is 3 × interval + skew', () => {
    expect(masterDownMs(90, 1000)).toBeCloseTo(3648.4375, 6);
    expect(masterDownMs(90, 100)).toBeCloseTo(364.84375, 6);
  });

  it('fault detection: one interval to the first failing check, then fall checks back to back, each to its timeout', () => {
    expect(faultDetectMs({ intervalMs: 500, timeoutMs: 500, fall: 2 })).toBe(1500);
    expect(faultDetectMs({ intervalMs: 500, timeoutMs: 300, fall: 2 })).toBe(1100);
    expect(faultDetectMs({ intervalMs: 100, timeoutMs: 300, fall: 3 })).toBe(1000);
  });

  it('takeover estimates add the promotion costs to each path', () => {
    const e = takeoverEstimate(base);
    expect(e.redisFailureMs).toBe(1600);
    expect(e.hostLossMs).toBeCloseTo(3748.4375, 6);
    expect(e.resignMs).toBeCloseTo(748.4375, 6);
  });

  it('the defaults pass the invariants without warnings', () => {
    const r = checkTimingInvariants(base);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it('slow fault detection against a short master-down interval is flagged', () => {
    const r = checkTimingInvariants({ ...base, advertIntervalMs: 200, health: { intervalMs: 500, timeoutMs: 500, fall: 3 } });
    expect(r.warnings.join('\n')).toMatch(/local fault detection \(2000 ms.*not faster than the peer's master-down interval/);
  });

  it('a timeout longer than fall × interval is an error; blind delays are warned about', () => {
    const r = checkTimingInvariants({ ...base, health: { intervalMs: 100, timeoutMs: 500, fall: 2 },
      promotion: { peerTimeoutMs: 250, preDelayMs: 15000, syncDelayMs: 10000 } });
    expect(r.errors.join('\n')).toMatch(/health.timeout_ms \(500\) is longer than health.fall × health.interval_ms \(200\)/);
    expect(r.warnings.join('\n')).toMatch(/blind waits to every takeover \(25000 ms\)/);
  });
});

/** The configuration's defaults: lease 3 s renewed every 500 ms, calls bounded by 500 ms, etcd's election timeout 1 s. */
const quorum: QuorumTiming = {
  leaseTtlMs: 3000,
  renewIntervalMs: 500,
  callTimeoutMs: 500,
  electionTimeoutMs: 1000,
  fenceApplyMs: 500,
  advertIntervalMs: 1000,
};

describe('the quorum lease and fence rule', () => {
  it.each([
    [3000, 500, 530],
    [3000, 100, 130],
    [60_000, 500, 1100],
    [1000, 10, 20],
    [1500, 0, 15],
  ])('fence lead for a %i ms lease applied in %i ms is %i ms (1 %% of the TTL, rounded up, + the apply time)', (leaseTtlMs, fenceApplyMs, lead) => {
    expect(quorumFenceLeadMs({ leaseTtlMs, fenceApplyMs })).toBe(lead);
  });

  it.each([
    [3000, 1000, 3000],
    [1000, 1000, 2000],
    [1000, 250, 1000],
    [2000, 2000, 3000],
  ])('etcd grants a %i ms lease as %i ms at election timeout %i ms', (leaseTtlMs, electionTimeoutMs, granted) => {
    expect(grantedLeaseTtlMs({ leaseTtlMs, electionTimeoutMs })).toBe(granted);
  });

  it('the defaults pass, for both health profiles', () => {
    expect(checkQuorumTiming(quorum)).toEqual({ errors: [], warnings: [] });
    expect(checkQuorumTiming({ ...quorum, fenceApplyMs: 100, advertIntervalMs: 100 })).toEqual({ errors: [], warnings: [] });
  });

  it.each<[string, Partial<QuorumTiming>, RegExp]>([
    [
      'an election after a renewal that outlasts the lease',
      { callTimeoutMs: 1000 },
      /^quorum\.etcd\.renew_interval_ms \(500\) \+ call_timeout_ms \(1000\) \+ election_timeout_ms \(1000\) = 2500 ms is not shorter than quorum\.etcd\.lease_ttl_s \(3 s\) less the fence lead \(530 ms = 1 % of the TTL for clock rates \+ the fence's bound 500: health\.timeout_ms, at least 200\) = 2470 ms: an etcd leader election right after a renewal would lapse the lease: a failover caused by etcd alone/,
    ],
    ['exactly no room to spare', { renewIntervalMs: 970 }, /= 2470 ms is not shorter than .* = 2470 ms/],
    ['a slow fence eating the room', { fenceApplyMs: 1000 }, /= 2000 ms is not shorter than .*fence lead \(1030 ms.* = 1970 ms/],
    ['a lease no longer than the fence lead', { leaseTtlMs: 3000, fenceApplyMs: 3000 }, /^quorum\.etcd\.lease_ttl_s \(3 s\) is not longer than the fence lead \(3030 ms/],
    [
      'a VIP lifetime that would be raised to 1 s, past the key',
      { leaseTtlMs: 2000, electionTimeoutMs: 250 },
      /^quorum\.etcd\.lease_ttl_s \(2 s\) less 1 % \(clock rates\), quorum\.etcd\.renew_interval_ms \(500\) and call_timeout_ms \(500\) = 980 ms is below 1 s, the VIP's shortest kernel lifetime: the VIP of a master whose daemon froze would outlive its leader key; raise quorum\.etcd\.lease_ttl_s or lower the others$/,
    ],
    ['a renewal interval below 50 ms', { renewIntervalMs: 20 }, /^quorum\.etcd\.renew_interval_ms \(20\) is below 50 ms$/],
  ])('refuses %s, naming the keys', (_name, change, message) => {
    const report = checkQuorumTiming({ ...quorum, ...change });
    expect(report.errors).toHaveLength(1);
    expect(report.errors[0]).toMatch(message);
  });

  it('just inside the rule passes', () => {
    expect(checkQuorumTiming({ ...quorum, renewIntervalMs: 969 }).errors).toEqual([]);
  });

  it.each<[string, Partial<QuorumTiming>, number | null]>([
    // The review's configuration (S5): the key outlives a freeze by 790 ms, the VIP by 1 s.
    ['TTL 1 s renewed every 100 ms, calls 100 ms', { leaseTtlMs: 1000, renewIntervalMs: 100, callTimeoutMs: 100, electionTimeoutMs: 500, fenceApplyMs: 200 }, null],
    ['TTL 2 s renewed every 250 ms, calls 500 ms (the lab)', { leaseTtlMs: 2000, renewIntervalMs: 250, callTimeoutMs: 500, electionTimeoutMs: 250 }, 1],
    ['the defaults', {}, 1],
    ['TTL 10 s', { leaseTtlMs: 10_000 }, 8],
  ])('%s: the VIP lifetime stays within the key, or the rule refuses it', (_name, change, lifetimeS) => {
    const q = { ...quorum, ...change };
    const refused = checkQuorumTiming(q).errors.some((e) => e.includes("the VIP's shortest kernel lifetime"));
    expect(refused).toBe(lifetimeS === null);
    if (lifetimeS !== null) {
      expect(vipLifetimeS(q)).toBe(lifetimeS);
      expect(vipLifetimeS(q) * 1000).toBeLessThanOrEqual(vipLifetimeBoundMs(q));
    }
  });

  it('warns when the lease is shorter than two etcd elections', () => {
    const report = checkQuorumTiming({ ...quorum, leaseTtlMs: 5000, electionTimeoutMs: 3000, renewIntervalMs: 100, callTimeoutMs: 100 });
    expect(report.errors).toEqual([]);
    expect(report.warnings).toEqual([
      'quorum.etcd.lease_ttl_s (5 s) is less than twice quorum.etcd.election_timeout_ms (3000): one etcd leader election takes half the lease or more,' +
        " and etcd grants no less than 1.5 election timeouts rounded up to a second (5 s here), so a dead master's key may outlive the TTL asked for",
    ]);
  });
});

describe('worst-case outages per fault and mode', () => {
  // base: priority 90, adverts every 1000 ms (master-down 3648.4375 ms), promotion costs 100 ms,
  // Redis failure detected in 1500 ms; lease 3000 ms + 500 ms expiry check.
  const table = worstCaseOutages(base, quorum);
  const cell = (fault: string, mode: string) => {
    const found = table.find((row) => row.fault === fault && row.mode === mode);
    if (found === undefined) throw new Error(`no row for ${fault} / ${mode}`);
    return found;
  };

  it('has one row per fault and mode', () => {
    expect(table).toHaveLength(OUTAGE_FAULTS.length * QUORUM_MODES.length);
    for (const fault of OUTAGE_FAULTS) for (const mode of QUORUM_MODES) expect(() => cell(fault, mode)).not.toThrow();
  });

  it.each([
    // fault, mode, writes unavailable (ms or null), acknowledged writes lost, two writable masters
    ['master-redis-dies', 'etcd', 100, 'up to replication lag', false],
    ['master-redis-dies', 'none-safety', null, 'up to replication lag', false],
    ['master-redis-dies', 'none-availability', 100, 'up to replication lag', false],
    ['master-redis-hangs', 'etcd', 1600, 'up to replication lag', false],
    ['master-redis-hangs', 'none-safety', null, 'up to replication lag', false],
    ['master-redis-hangs', 'none-availability', 1600, 'up to replication lag', false],
    ['master-host-dies', 'etcd', 5278.4375, 'up to replication lag', false],
    ['master-host-dies', 'none-safety', null, 'none', false],
    ['master-host-dies', 'none-availability', 3748.4375, 'up to replication lag', false],
    ['master-isolated', 'etcd', 5278.4375, 'up to replication lag', false],
    ['master-isolated', 'none-safety', null, 'none', false],
    ['master-isolated', 'none-availability', 3748.4375, 'everything written to the losing side during the cut', true],
    ['hosts-cut', 'etcd', 0, 'none', false],
    ['hosts-cut', 'none-safety', null, 'none', false],
    ['hosts-cut', 'none-availability', 0, 'everything written to the losing side during the cut', true],
    ['etcd-down', 'etcd', 0, 'none', false],
    ['etcd-down', 'none-safety', 0, 'none', false],
    ['etcd-down', 'none-availability', 0, 'none', false],
  ] as const)('%s, %s: writes unavailable %s ms, lost: %s, two writable masters: %s', (fault, mode, unavailable, lost, two) => {
    const row = cell(fault, mode);
    if (unavailable === null) expect(row.writesUnavailableMs).toBeNull();
    else expect(row.writesUnavailableMs).toBeCloseTo(unavailable, 6);
    expect(row.ackedWritesLost).toBe(lost);
    expect(row.twoWritableMasters).toBe(two);
    expect(row.note.length).toBeGreaterThan(20);
  });

  it('only etcd down without etcd is not applicable', () => {
    expect(table.filter((row) => !row.applicable).map((row) => `${row.fault} ${row.mode}`)).toEqual([
      'etcd-down none-safety',
      'etcd-down none-availability',
    ]);
  });

  it('with etcd, a lease longer than the master-down interval sets the takeover: TTL + expiry check + promotion', () => {
    const slow = worstCaseOutages(base, { ...quorum, leaseTtlMs: 10_000 });
    const host = slow.find((row) => row.fault === 'master-host-dies' && row.mode === 'etcd');
    expect(host?.writesUnavailableMs).toBe(10_000 + 500 + 100);
    const isolated = slow.find((row) => row.fault === 'master-isolated' && row.mode === 'etcd');
    expect(isolated?.note).toMatch(/^the isolated master fences, refusing writes 9400 ms after its last renewal/);
    // Without etcd nothing changes.
    expect(slow.find((row) => row.fault === 'master-host-dies' && row.mode === 'none-availability')?.writesUnavailableMs).toBeCloseTo(3748.4375, 6);
  });

  it('counts the TTL etcd grants, not the one asked for', () => {
    const short = worstCaseOutages({ ...base, advertIntervalMs: 100 }, { ...quorum, leaseTtlMs: 1000 });
    // Granted as 2000 ms at etcd's 1000 ms election timeout: 2000 + 500 + 100.
    expect(short.find((row) => row.fault === 'master-host-dies' && row.mode === 'etcd')?.writesUnavailableMs).toBe(2600);
  });

  it.each([
    ['etcd', 'availability', 'etcd'],
    ['etcd', 'safety', 'etcd'],
    ['none', 'safety', 'none-safety'],
    ['none', 'availability', 'none-availability'],
  ] as const)('backend %s, prefer %s is mode %s', (backend, prefer, mode) => {
    expect(quorumMode(backend, prefer)).toBe(mode);
  });
});

describe('the stall threshold against the master-down interval', () => {
  it.each([
    // threshold, advert interval, warned
    [1000, 1000, false],
    [3000, 1000, false],
    [3008, 1000, true],
    [300, 100, false],
    [1000, 100, true],
    [60, 20, false],
    [61, 20, true],
  ] as const)('threshold %i ms at adverts every %i ms: warned %s', (threshold, interval, warned) => {
    const warnings = checkStallThreshold(threshold, interval);
    expect(warnings).toHaveLength(warned ? 1 : 0);
    if (warned) expect(warnings[0]).toMatch(new RegExp(`^stall\\.threshold_ms \\(${threshold}\\) is longer than the master-down interval`));
  });
});

describe('detection and takeover per fault (the start-up line)', () => {
  const quorum: QuorumTiming = {
    leaseTtlMs: 3000, renewIntervalMs: 500, callTimeoutMs: 500, electionTimeoutMs: 1000, fenceApplyMs: 500, advertIntervalMs: 1000,
  };

  it('takes each fault of the mode from worstCaseOutages, adds when it is noticed, and a stalled master daemon', () => {
    const rows = faultTimes(base, quorum, 'none-availability');
    expect(rows.map((row) => row.fault)).toEqual([
      'master-redis-dies', 'master-redis-hangs', 'master-host-dies', 'master-isolated', 'hosts-cut', 'master-daemon-stalls',
    ]);
    const table = worstCaseOutages(base, quorum);
    for (const row of rows) {
      const outage = table.find((r) => r.fault === row.fault && r.mode === 'none-availability');
      if (outage) expect(row.writesUnavailableMs).toBe(outage.writesUnavailableMs);
    }
    const byFault = Object.fromEntries(rows.map((row) => [row.fault, row.detectMs]));
    expect(byFault['master-redis-dies']).toBe(0);
    expect(byFault['master-redis-hangs']).toBe(1500);
    expect(byFault['master-host-dies']).toBeCloseTo(3648.4375, 6);
    expect(byFault['master-daemon-stalls']).toBeCloseTo(3648.4375, 6);
  });

  it('with etcd, etcd down is noticed by no node and a stalled daemon costs what a lost host does', () => {
    const rows = faultTimes(base, quorum, 'etcd');
    expect(rows.find((row) => row.fault === 'etcd-down')).toEqual({ fault: 'etcd-down', detectMs: null, writesUnavailableMs: 0 });
    const host = rows.find((row) => row.fault === 'master-host-dies');
    expect(rows.find((row) => row.fault === 'master-daemon-stalls')?.writesUnavailableMs).toBe(host?.writesUnavailableMs);
  });
});
