/**
 * Timing profiles (`timing.profile`, issue 12 item 2): a profile sets the defaults of its
 * keys and nothing else; a key given in the file or by its variable wins (and is recorded
 * as an override); the profile itself may come from the environment; a name that is no
 * profile is a configuration problem naming the key, the choices and what was given.
 * Each profile passes every timing rule, and the start-up line reports, per fault, when it
 * is noticed and how long writes may stop.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { faultTimesOf, timingOf, timingReportOf } from '../../src/config/derived.js';
import { buildConfig } from '../../src/config/load.js';
import { PROFILE_KEYS, profileValues, TIMING_PROFILES, type ProfileKey } from '../../src/config/profiles.js';
import type { Config } from '../../src/config/types.js';
import { takeoverEstimate } from '../../src/core/timing.js';
import { createLogger } from '../../src/daemon/logger.js';
import { checkTiming } from '../../src/daemon/startup.js';
import { ConfigError, EXIT_CONFIG } from '../../src/errors.js';

const BASE = {
  node: { name: 'redis-b', address: '192.0.2.12', priority: 90 },
  peer: { address: '192.0.2.11' },
  vip: { address: '192.0.2.100/24', interface: 'eth0' },
} as const;
const ENV: NodeJS.ProcessEnv = { REDIS_HA_ADVERT_KEY: 'e3b0c44298fc1c149afbf4c8996fb924' };

/** The profile keys' values in a loaded configuration, by their file names. */
function profileKeysOf(config: Config): Record<ProfileKey, number> {
  return {
    'advert.interval_ms': config.advert.intervalMs,
    'health.interval_ms': config.health.intervalMs,
    'health.timeout_ms': config.health.timeoutMs,
    'promotion.peer_timeout_ms': config.promotion.peerTimeoutMs,
    'stall.threshold_ms': config.stall.thresholdMs,
  };
}

function problemsOf(load: () => unknown): { problems: string[]; exitCode: number } {
  try {
    load();
  } catch (error) {
    if (error instanceof ConfigError) return { problems: [...error.problems], exitCode: error.exitCode };
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe('timing.profile', () => {
  it.each([
    // profile, advert, health interval, health timeout, peer timeout, stall threshold
    ['default', 1000, 500, 300, 100, 1000],
    ['fast', 100, 100, 100, 100, 300],
    ['lan-fast', 20, 20, 20, 50, 60],
  ] as const)('%s sets advert %i, health %i/%i, peer timeout %i, stall %i', (profile, advert, hi, ht, peer, stall) => {
    const config = buildConfig({ ...BASE, timing: { profile } }, ENV);
    expect(config.timing).toEqual({ profile, overrides: [] });
    expect(profileKeysOf(config)).toEqual({
      'advert.interval_ms': advert,
      'health.interval_ms': hi,
      'health.timeout_ms': ht,
      'promotion.peer_timeout_ms': peer,
      'stall.threshold_ms': stall,
    });
    expect(profileValues(profile)).toEqual(profileKeysOf(config));
  });

  it('default is exactly the configuration without a timing section (nothing changes for existing files)', () => {
    const without = buildConfig(BASE, ENV);
    const withDefault = buildConfig({ ...BASE, timing: { profile: 'default' } }, ENV);
    expect(withDefault).toEqual(without);
    expect(without.timing.profile).toBe('default');
    // An empty `timing:` or `profile:` is the default too.
    expect(buildConfig({ ...BASE, timing: { profile: null } }, ENV)).toEqual(without);
    expect(buildConfig({ ...BASE, timing: null }, ENV)).toEqual(without);
  });

  it('lets a key written in the file win over the profile, and records it', () => {
    const config = buildConfig({ ...BASE, timing: { profile: 'lan-fast' }, advert: { interval_ms: 50 }, stall: { threshold_ms: 150 } }, ENV);
    expect(config.advert.intervalMs).toBe(50);
    expect(config.stall.thresholdMs).toBe(150);
    // The other keys keep the profile's values.
    expect(config.health.intervalMs).toBe(20);
    expect(config.promotion.peerTimeoutMs).toBe(50);
    expect(config.timing.overrides).toEqual(['advert.interval_ms', 'stall.threshold_ms']);
  });

  it('records a key written with its default value as given (an explicit value, not the profile)', () => {
    const config = buildConfig({ ...BASE, timing: { profile: 'fast' }, health: { interval_ms: 500, timeout_ms: 300 } }, ENV);
    expect(config.health).toMatchObject({ intervalMs: 500, timeoutMs: 300 });
    expect(config.advert.intervalMs).toBe(100);
    expect(config.timing.overrides).toEqual(['health.interval_ms', 'health.timeout_ms']);
  });

  it('treats an empty key as not given: the profile decides it', () => {
    const config = buildConfig({ ...BASE, timing: { profile: 'fast' }, advert: { interval_ms: null } }, ENV);
    expect(config.advert.intervalMs).toBe(100);
    expect(config.timing.overrides).toEqual([]);
  });

  it('lets an environment variable win over the profile, and records it', () => {
    const config = buildConfig({ ...BASE, timing: { profile: 'fast' } }, { ...ENV, REDIS_HA_HEALTH_TIMEOUT_MS: '40' });
    expect(config.health).toMatchObject({ intervalMs: 100, timeoutMs: 40 });
    expect(config.timing.overrides).toEqual(['health.timeout_ms']);
  });

  it('takes the profile from REDIS_HA_TIMING_PROFILE, over the file', () => {
    const config = buildConfig({ ...BASE, timing: { profile: 'fast' } }, { ...ENV, REDIS_HA_TIMING_PROFILE: 'lan-fast' });
    expect(config.timing.profile).toBe('lan-fast');
    expect(config.advert.intervalMs).toBe(20);
    const fromEnvOnly = buildConfig(BASE, { ...ENV, REDIS_HA_TIMING_PROFILE: 'fast' });
    expect(profileKeysOf(fromEnvOnly)).toEqual(profileValues('fast'));
  });

  it('refuses a name that is no profile (exit 78), naming the key, the choices and what was given', () => {
    const fromFile = problemsOf(() => buildConfig({ ...BASE, timing: { profile: 'turbo' } }, ENV));
    expect(fromFile.exitCode).toBe(EXIT_CONFIG);
    expect(fromFile.problems).toEqual(['timing.profile: expected one of default, fast, lan-fast, got "turbo"']);
    const fromEnv = problemsOf(() => buildConfig(BASE, { ...ENV, REDIS_HA_TIMING_PROFILE: 'LAN-FAST' }));
    expect(fromEnv.problems).toEqual(['timing.profile: expected one of default, fast, lan-fast, got "LAN-FAST" (from REDIS_HA_TIMING_PROFILE)']);
    const misspelt = problemsOf(() => buildConfig({ ...BASE, timing: { profil: 'fast' } }, ENV));
    expect(misspelt.problems).toEqual(['timing.profil: unknown key, expected one of profile (did you mean profile?)']);
  });

  it('for a name that is no profile reports that alone: the keys it would set are not checked against the shipped defaults', () => {
    // `fsat` for `fast`, with the one key the operator wanted faster still: against the
    // default's 300 ms health timeout, health.interval_ms 100 would look like a mistake.
    const expected = 'timing.profile: expected one of default, fast, lan-fast, got "fsat"';
    const fromFile = problemsOf(() => buildConfig({ ...BASE, timing: { profile: 'fsat' }, health: { interval_ms: 100 } }, ENV));
    expect(fromFile).toEqual({ problems: [expected], exitCode: EXIT_CONFIG });
    const fromEnv = problemsOf(() =>
      buildConfig({ ...BASE, health: { interval_ms: 100 } }, { ...ENV, REDIS_HA_TIMING_PROFILE: 'fsat' }),
    );
    expect(fromEnv).toEqual({ problems: [`${expected} (from REDIS_HA_TIMING_PROFILE)`], exitCode: EXIT_CONFIG });
    const bothFromEnv = problemsOf(() =>
      buildConfig(BASE, { ...ENV, REDIS_HA_TIMING_PROFILE: 'fsat', REDIS_HA_HEALTH_INTERVAL_MS: '20' }),
    );
    expect(bothFromEnv).toEqual({ problems: [`${expected} (from REDIS_HA_TIMING_PROFILE)`], exitCode: EXIT_CONFIG });
    // A section that is no mapping leaves the profile unknown the same way.
    expect(problemsOf(() => buildConfig({ ...BASE, timing: 'fast', health: { interval_ms: 100 } }, ENV)).problems).toEqual([
      'timing: expected a mapping of keys (profile), got "fast"',
    ]);
    // A problem between two keys the operator wrote is still theirs.
    expect(problemsOf(() => buildConfig({ ...BASE, timing: { profile: 'fsat' }, health: { interval_ms: 100, timeout_ms: 200 } }, ENV)).problems).toEqual([
      expected,
      'health.timeout_ms: expected at most health.interval_ms (100), got 200',
    ]);
  });

  it("says when a value in a cross-field problem is the profile's, not the operator's", () => {
    const { problems } = problemsOf(() => buildConfig({ ...BASE, timing: { profile: 'fast' }, health: { interval_ms: 50 } }, ENV));
    expect(problems).toEqual(['health.timeout_ms: expected at most health.interval_ms (50), got 100 (from timing.profile fast)']);
  });

  it('lists exactly the keys the profiles set', () => {
    expect([...PROFILE_KEYS]).toEqual(['advert.interval_ms', 'health.interval_ms', 'health.timeout_ms', 'promotion.peer_timeout_ms', 'stall.threshold_ms']);
    for (const profile of TIMING_PROFILES) expect(Object.keys(profileValues(profile))).toEqual([...PROFILE_KEYS]);
  });
});

describe('the timing rules at each profile', () => {
  const ETCD = {
    quorum: { backend: 'etcd', etcd: { endpoints: 'http://192.0.2.20:2379' } },
  } as const;

  it.each(TIMING_PROFILES)('%s passes every rule, without and with the etcd quorum, at priorities 1 to 254', (profile) => {
    for (const priority of [1, 90, 100, 254]) {
      for (const extra of [{}, ETCD]) {
        const config = buildConfig({ ...BASE, ...extra, node: { ...BASE.node, priority }, timing: { profile } }, ENV);
        const report = timingReportOf(config);
        expect(report.errors).toEqual([]);
        // Only the short-advert warning, which is the profile's whole point (and its risk), and
        // that a restart in place outlasts the peer's master-down interval (upgrade with a switchover).
        const restart = /^a restart in place \(SIGUSR2\) leaves the peer without adverts for about 1500 ms, longer than its master-down interval/;
        const expected = profile === 'lan-fast'
          ? [/^advert\.interval_ms 20 is below 100 ms: a loaded host or a GC pause of \d+ ms triggers a failover/, restart]
          : profile === 'fast' ? [restart] : [];
        expect(report.warnings).toHaveLength(expected.length);
        report.warnings.forEach((warning, i) => expect(warning).toMatch(expected[i] as RegExp));
      }
    }
  });

  it('lan-fast takes over a lost host within 0.15 s, a hung Redis within 0.12 s, a dead one within 0.05 s', () => {
    const config = buildConfig({ ...BASE, timing: { profile: 'lan-fast' } }, ENV);
    const estimate = takeoverEstimate(timingOf(config));
    // Master-down 3 × 20 + (256 − 90) × 20 / 256 = 72.97 ms, plus the 50 ms peer timeout.
    expect(estimate.hostLossMs).toBeCloseTo(122.97, 2);
    expect(estimate.hostLossMs).toBeLessThanOrEqual(150);
    expect(estimate.redisFailureMs).toBe(2 * 20 + 20 + 50);
    expect(estimate.redisCrashMs).toBe(50);
  });

  it('warns when an explicit stall threshold outgrows the master-down interval', () => {
    const config = buildConfig({ ...BASE, timing: { profile: 'fast' }, stall: { threshold_ms: 1000 } }, ENV);
    expect(timingReportOf(config).warnings).toEqual([
      expect.stringMatching(/^stall\.threshold_ms \(1000\) is longer than the master-down interval \(301 ms at advert\.interval_ms 100\)/),
      expect.stringMatching(/^a restart in place \(SIGUSR2\)/),
    ]);
  });
});

describe('the start-up line', () => {
  /** Runs the start-up timing check with a logger writing into an array; returns the parsed lines. */
  function startupLines(config: Config): Record<string, unknown>[] {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(...chunk.toString('utf8').split('\n').filter((line) => line !== ''));
        done();
      },
    });
    const logger = createLogger('info', sink);
    checkTiming(config, logger);
    logger.flush();
    return lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  }

  it('logs the profile, what overrides it, and each fault noticed and taken over, in the quorum mode in force', () => {
    const config = buildConfig({ ...BASE, timing: { profile: 'lan-fast' }, promotion: { peer_timeout_ms: 40 } }, ENV);
    const line = startupLines(config).find((record) => record['msg'] === 'worst-case detection and takeover times');
    expect(line).toMatchObject({
      level: 'info',
      profile: 'lan-fast',
      overrides: ['promotion.peer_timeout_ms'],
      quorumMode: 'none-availability',
      stallThresholdMs: 60,
      faults: {
        'master-redis-dies': { detectMs: 0, writesUnavailableMs: 40 },
        'master-redis-hangs': { detectMs: 60, writesUnavailableMs: 100 },
        'master-host-dies': { detectMs: 73, writesUnavailableMs: 113 },
        'master-isolated': { detectMs: 73, writesUnavailableMs: 113 },
        'hosts-cut': { detectMs: 73, writesUnavailableMs: 0 },
        'master-daemon-stalls': { detectMs: 73, writesUnavailableMs: 113 },
      },
      worstCaseTakeoverMs: { redisFailureMs: 100, redisCrashMs: 40, hostLossMs: 113, resignMs: 53 },
    });
  });

  it('holds the same numbers check-config prints (one source: worstCaseOutages)', () => {
    for (const prefer of ['safety', 'availability'] as const) {
      const config = buildConfig({ ...BASE, quorum: { backend: 'none', prefer } }, ENV);
      const rows = faultTimesOf(config);
      const hostDies = rows.find((row) => row.fault === 'master-host-dies');
      const stalls = rows.find((row) => row.fault === 'master-daemon-stalls');
      if (prefer === 'safety') {
        // Not replaced while silent; a stalled daemon is replaced through its Redis, reachable.
        expect(hostDies?.writesUnavailableMs).toBeNull();
        expect(stalls?.writesUnavailableMs).toBeCloseTo(takeoverEstimate(timingOf(config)).hostLossMs, 6);
      } else {
        expect(stalls?.writesUnavailableMs).toBe(hostDies?.writesUnavailableMs);
      }
    }
  });

  it('with backend etcd, lists etcd down as noticed by no node', () => {
    const config = buildConfig({ ...BASE, quorum: { backend: 'etcd', etcd: { endpoints: 'http://192.0.2.20:2379' } } }, ENV);
    const line = startupLines(config).find((record) => record['msg'] === 'worst-case detection and takeover times');
    expect(line?.['quorumMode']).toBe('etcd');
    expect((line?.['faults'] as Record<string, unknown>)['etcd-down']).toEqual({ detectMs: null, writesUnavailableMs: 0 });
  });
});
