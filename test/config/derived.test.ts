/**
 * The views other layers read (`src/config/derived.ts`): the quorum timing taken from the
 * configuration, and the one timing report `run` and `check-config` both enforce (the
 * takeover invariants, and with backend etcd the lease and fence rule).
 */
import { describe, expect, it } from 'vitest';
import { buildConfig } from '../../src/config/load.js';
import { quorumTimingOf, timingReportOf } from '../../src/config/derived.js';

const BASE = {
  node: { name: 'redis-a', address: '192.0.2.11' },
  peer: { address: '192.0.2.12' },
  vip: { address: '192.0.2.100/24', interface: 'eth0' },
};
const ENV = { REDIS_HA_ADVERT_KEY: 'e3b0c44298fc1c149afbf4c8996fb924' };
const ETCD = { backend: 'etcd', etcd: { endpoints: 'http://192.0.2.20:2379' } };

describe('quorumTimingOf', () => {
  it('takes the lease in ms, the etcd timings, the health timeout as the fence apply time and the advert interval', () => {
    const config = buildConfig(
      { ...BASE, advert: { interval_ms: 200 }, health: { interval_ms: 300, timeout_ms: 250 }, quorum: { etcd: { lease_ttl_s: 4, renew_interval_ms: 400 } } },
      ENV,
    );
    expect(quorumTimingOf(config)).toEqual({
      leaseTtlMs: 4000,
      renewIntervalMs: 400,
      callTimeoutMs: 500,
      electionTimeoutMs: 1000,
      fenceApplyMs: 250,
      advertIntervalMs: 200,
    });
  });
});

describe('timingReportOf', () => {
  it('passes the defaults, with and without etcd', () => {
    expect(timingReportOf(buildConfig(BASE, ENV)).errors).toEqual([]);
    expect(timingReportOf(buildConfig({ ...BASE, quorum: ETCD }, ENV))).toMatchObject({ errors: [], warnings: [] });
  });

  it('applies the lease and fence rule with backend etcd only', () => {
    const unsafe = { lease_ttl_s: 2, call_timeout_ms: 1000 };
    const none = buildConfig({ ...BASE, quorum: { backend: 'none', etcd: unsafe } }, ENV);
    expect(timingReportOf(none).errors).toEqual([]);
    const etcd = buildConfig({ ...BASE, quorum: { backend: 'etcd', etcd: { ...ETCD.etcd, ...unsafe } } }, ENV);
    const report = timingReportOf(etcd);
    expect(report.errors).toEqual([
      expect.stringMatching(
        /^quorum\.etcd\.renew_interval_ms \(500\) \+ call_timeout_ms \(1000\) \+ election_timeout_ms \(1000\) = 2500 ms is not shorter than quorum\.etcd\.lease_ttl_s \(2 s\)/,
      ),
      // 1980 − 500 − 1000 ms: the VIP's shortest lifetime (1 s) would outlive the key.
      expect.stringMatching(/^quorum\.etcd\.lease_ttl_s \(2 s\) less 1 % .* = 480 ms is below 1 s, the VIP's shortest kernel lifetime/),
    ]);
    // Two elections fit in the 2 s lease: no warning, only the error.
    expect(report.warnings).toEqual([]);
    const shortLease = buildConfig({ ...BASE, quorum: { backend: 'etcd', etcd: { ...ETCD.etcd, lease_ttl_s: 3, election_timeout_ms: 1600, call_timeout_ms: 100, renew_interval_ms: 100 } } }, ENV);
    expect(timingReportOf(shortLease)).toMatchObject({
      errors: [],
      warnings: [expect.stringMatching(/^quorum\.etcd\.lease_ttl_s \(3 s\) is less than twice quorum\.etcd\.election_timeout_ms \(1600\)/)],
    });
  });

  it.each([
    ['etcd', { quorum: ETCD }, true],
    ['prefer safety', { quorum: { backend: 'none', prefer: 'safety' } }, true],
    ['prefer availability', { quorum: { backend: 'none', prefer: 'availability' } }, false],
  ])('warns that promotion.wait_for_sync off never lets a takeover go through the old master\'s Redis (%s: %s)', (_name, over, warned) => {
    const report = timingReportOf(buildConfig({ ...BASE, ...over, promotion: { wait_for_sync: false } }, ENV));
    expect(report.errors).toEqual([]);
    expect(report.warnings.some((w) => w.startsWith('promotion.wait_for_sync is off with'))).toBe(warned);
  });

  it('keeps the takeover invariants and their estimate', () => {
    const config = buildConfig({ ...BASE, quorum: ETCD, promotion: { pre_delay_ms: 1000 } }, ENV);
    const report = timingReportOf(config);
    expect(report.warnings).toEqual([expect.stringMatching(/^promotion\.pre_delay_ms \/ sync_delay_ms add blind waits/)]);
    expect(report.estimate.redisFailureMs).toBe(500 + 2 * 300 + 1000 + 100);
  });
});
