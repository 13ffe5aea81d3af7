/**
 * `redis-ha status` as a Nagios/NRPE check when no daemon answers: the verdict line on
 * stdout (UNKNOWN included), exit 3, and `--json` with every field of the daemon's report
 * present (null where only a daemon knows), through the built CLI.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { unknownStatus } from '../../src/cli/status-unknown.js';
import { buildStatus, STATUS_VERSION, VERDICT_EXIT } from '../../src/daemon/status.js';
import { NO_QUORUM } from '../../src/core/state.js';
import { A_ADDR, masterWithBackup } from '../core/fixtures.js';
import { runCli } from '../helpers/cli.js';

const dir = await mkdtemp(join(tmpdir(), 'rh-status-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
/** A socket path in a directory of ours where nothing listens. */
const NONE = join(dir, 'none.sock');
/** A configuration file that does not exist: the socket must come from -s or the environment. */
const NO_CONFIG = join(dir, 'absent.yaml');

/** A report as the daemon builds it, for its field names. */
function daemonReport(): Record<string, unknown> {
  return { ...buildStatus({
    state: masterWithBackup(), now: 5_000, wallNow: Date.parse('2026-11-22T12:00:00Z'),
    node: { name: 'a', address: A_ADDR, priority: 100 }, vip: '10.77.0.100/24 on eth0', holdsVip: true,
    estimate: { redisFailureMs: 1100, redisCrashMs: 100, hostLossMs: 3600, resignMs: 700 }, maxLagBytes: 1000, adverts: {}, quorum: NO_QUORUM,
  }) };
}

describe('the UNKNOWN status document', () => {
  it('has every field of the daemon report, in its order, null but version, verdict and problems', () => {
    const doc: Record<string, unknown> = { ...unknownStatus('why') };
    expect(Object.keys(doc)).toEqual(Object.keys(daemonReport()));
    for (const [key, value] of Object.entries(doc)) {
      if (key === 'version') expect(value).toBe(STATUS_VERSION);
      else if (key === 'verdict') expect(value).toBe('unknown');
      else if (key === 'problems') expect(value).toEqual(['why']);
      else expect(value, key).toBeNull();
    }
  });
});

describe('redis-ha status with no daemon answering', () => {
  it('prints UNKNOWN on stdout and exits 3', async () => {
    const r = await runCli(['status', '-c', NO_CONFIG, '-s', NONE]);
    expect(r.code).toBe(VERDICT_EXIT.unknown);
    expect(r.stdout).toBe(`UNKNOWN: no redis-ha daemon is listening on ${NONE} (is the service running? is control.socket the same in both configs?)\n`);
    expect(r.stderr).toBe('');
  });

  it('--json prints the full document, fields null, and exits 3', async () => {
    const r = await runCli(['status', '--json', '-c', NO_CONFIG, '--socket', NONE]);
    expect(r.code).toBe(3);
    expect(r.stderr).toBe('');
    const doc = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(Object.keys(doc)).toEqual(Object.keys(daemonReport()));
    expect(doc).toMatchObject({ version: STATUS_VERSION, verdict: 'unknown', node: null, peer: null, redis: null, quorum: null });
    expect(doc.problems).toEqual([expect.stringContaining(NONE)]);
  });

  it('takes the socket from REDIS_HA_CONTROL_SOCKET without -s; -s wins over it', async () => {
    const fromEnv = join(dir, 'env.sock');
    const env = await runCli(['status', '-c', NO_CONFIG], { env: { REDIS_HA_CONTROL_SOCKET: fromEnv } });
    expect(env.code).toBe(3);
    expect(env.stdout).toContain(`listening on ${fromEnv} `);
    const flag = await runCli(['status', '-c', NO_CONFIG, '-s', NONE], { env: { REDIS_HA_CONTROL_SOCKET: fromEnv } });
    expect(flag.stdout).toContain(`listening on ${NONE} `);
  });

  it('a socket path that is not a socket is UNKNOWN too, on stdout', async () => {
    const r = await runCli(['status', '-c', NO_CONFIG, '-s', dir]);
    expect(r.code).toBe(3);
    expect(r.stdout).toMatch(/^UNKNOWN: .+\n$/);
  });
});
