/**
 * The comparison setups of the benchmark, each on a fresh pair lab (Redis on a and b,
 * no redis-ha daemons): `keepalived-classic` (seed 002's keepalived + notify scripts)
 * and `sentinel` (three sentinels, VIP by client-reconfig-script). For each: `start()`
 * leaves the VIP on a with b replicating a, a write through the VIP from the client
 * host succeeds, the daemon-stall hooks stop and continue the setup's processes on a
 * (and only those), SIGKILL of a's Redis eventually makes b the master holding the VIP,
 * and `stop()` leaves no process of the setup behind in the lab's namespaces.
 *
 * Bounds are generous: the keepalived recipe alone sleeps 25 s after detecting the
 * failure. Root only (skipped loudly otherwise); needs keepalived and redis-sentinel
 * installed (Debian: `apt-get install keepalived redis-sentinel`).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SetupDriver } from '../../tools/bench/setup.js';
import { keepalivedClassic } from '../../tools/bench/setups/keepalived.js';
import { sentinel, sentinelMasterAddresses } from '../../tools/bench/setups/sentinel.js';
import { isRoot, pidAlive } from '../../tools/lab/netns.js';
import { PairLab, startPair, type PairHost } from '../../tools/lab/pair.js';
import { LAB_REDIS_PORT } from '../../tools/lab/redis-proc.js';

const root = isRoot();
if (!root) console.warn('SKIPPING test/bench/setups.test.ts: the lab needs root (network namespaces)');
const describeRoot = root ? describe : describe.skip;

const HOSTS: readonly PairHost[] = ['a', 'b', 'c'];
/** `start()` itself is bounded at 60 s. */
const START_TEST_TIMEOUT_MS = 90_000;
const STOP_TEST_TIMEOUT_MS = 30_000;
/** Bound on a stalled process showing as continued. */
const STALL_CHECK_MS = 5_000;
const STALL_TEST_TIMEOUT_MS = 20_000;
const CLI_TIMEOUT_MS = 3_000;

interface Case {
  readonly driver: SetupDriver;
  readonly tag: string;
  readonly subnet: string;
  /** Bound on b becoming master with the VIP after SIGKILL of a's Redis. */
  readonly failoverTimeoutMs: number;
}

const CASES: readonly Case[] = [
  // chk_redis every 2 s, FAULT + priority 0, then notify_master's 15 + 10 s of sleeps.
  { driver: keepalivedClassic, tag: 'rhk1', subnet: '10.77.221', failoverTimeoutMs: 45_000 },
  // down-after 5 s, election, promotion, the observers' scripts.
  { driver: sentinel, tag: 'rhs1', subnet: '10.77.222', failoverTimeoutMs: 30_000 },
];

/** Field 3 of /proc/PID/stat (`T` = stopped), `gone` when the process is. */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
  } catch {
    return 'gone';
  }
}

/** PIDs of the live processes whose network namespace is `ns`. */
function processesInNamespace(ns: string): number[] {
  const target = statSync(`/run/netns/${ns}`);
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const net = statSync(`/proc/${entry}/ns/net`);
      if (net.ino === target.ino && net.dev === target.dev && pidAlive(Number(entry))) pids.push(Number(entry));
    } catch {
      // Gone, or a kernel thread.
    }
  }
  return pids;
}

/** `SET` through the VIP from the client host; true on OK. */
async function writeThroughVip(lab: PairLab, key: string): Promise<boolean> {
  const result = await lab.net.exec(
    'c',
    ['redis-cli', '--no-auth-warning', '-h', lab.vip, '-p', String(LAB_REDIS_PORT), 'SET', key, '1'],
    { timeoutMs: CLI_TIMEOUT_MS, env: { REDISCLI_AUTH: lab.password } },
  );
  return result.code === 0 && result.stdout.trim() === 'OK';
}

for (const testCase of CASES) {
  const { driver } = testCase;

  describeRoot(`bench setup ${driver.name}`, () => {
    let lab: PairLab | null = null;
    let started = false;

    beforeAll(async () => {
      lab = await startPair({ tag: testCase.tag, subnet: testCase.subnet, startDaemons: false });
    });

    afterAll(async () => {
      if (lab) {
        await driver.stop(lab);
        await lab.teardown();
      }
    });

    function theLab(): PairLab {
      if (!lab) throw new Error('lab not built');
      return lab;
    }

    it(
      'starts settled: the VIP on a, a master, b replicating a, writes through the VIP',
      async () => {
        const lab = theLab();
        const begun = Date.now();
        await driver.start(lab);
        started = true;
        console.log(`${driver.name}: start() settled in ${Date.now() - begun} ms`);
        expect(await lab.vipHolders()).toEqual(['a']);
        expect(await lab.isSettledMaster('a')).toBe(true);
        expect(await writeThroughVip(lab, 'setups:before')).toBe(true);
        expect(driver.daemonPids(lab, 'a').length).toBeGreaterThan(0);
        expect(driver.daemonPids(lab, 'b').length).toBeGreaterThan(0);
        if (driver === sentinel) {
          expect(driver.daemonPids(lab, 'c')).toHaveLength(1);
          expect(await sentinelMasterAddresses(lab)).toEqual({ a: lab.address('a'), b: lab.address('a'), c: lab.address('a') });
        } else {
          expect(driver.daemonPids(lab, 'a')).toHaveLength(2);
          expect(driver.daemonPids(lab, 'c')).toEqual([]);
        }
      },
      START_TEST_TIMEOUT_MS,
    );

    it(
      "stops and continues its failover process(es) on a for daemon-stall, leaving a's Redis running",
      async () => {
        expect(started).toBe(true);
        const lab = theLab();
        const pids = driver.daemonPids(lab, 'a');
        expect(pids.length).toBeGreaterThan(0);
        expect(driver.supports).toContain('daemon-stall');
        const redisPid = lab.redis('a').pid;
        expect(redisPid).not.toBeNull();
        await driver.suspendDaemon!(lab, 'a');
        try {
          await lab.waitFor('the processes on a stopped', () => pids.every((pid) => processState(pid) === 'T'), STALL_CHECK_MS);
          expect(processState(redisPid!)).not.toBe('T');
        } finally {
          await driver.resumeDaemon!(lab, 'a');
        }
        await lab.waitFor('the stalled processes continued', () => pids.every((pid) => processState(pid) !== 'T'), STALL_CHECK_MS);
        // Far shorter than any master-down interval: the pair has not moved.
        expect(driver.daemonPids(lab, 'a')).toEqual(pids);
        expect(await lab.isSettledMaster('a')).toBe(true);
      },
      STALL_TEST_TIMEOUT_MS,
    );

    it(
      "moves the master and the VIP to b after SIGKILL of a's Redis",
      async () => {
        expect(started).toBe(true);
        const lab = theLab();
        const killedAt = Date.now();
        lab.killRedis('a', 'SIGKILL');
        let vipOnBMs: number | null = null;
        const elapsed = await lab.waitFor(
          'b master and the only VIP holder',
          async () => {
            const holders = await lab.vipHolders();
            if (vipOnBMs === null && holders.includes('b')) vipOnBMs = Date.now() - killedAt;
            return holders.join() === 'b' && (await lab.redisRole('b')) === 'master';
          },
          testCase.failoverTimeoutMs,
          250,
        );
        console.log(
          `${driver.name}: after SIGKILL of a's Redis, the VIP reached b after ${vipOnBMs ?? '?'} ms, ` +
            `b master with the VIP alone after ${elapsed} ms`,
        );
        expect(await writeThroughVip(lab, 'setups:after')).toBe(true);
      },
      testCase.failoverTimeoutMs + 15_000,
    );

    it(
      'stops everything it started, and the lab tears down clean',
      async () => {
        const lab = theLab();
        const before = HOSTS.flatMap((host) => driver.daemonPids(lab, host));
        await driver.stop(lab);
        await driver.stop(lab); // idempotent
        for (const host of HOSTS) expect(driver.daemonPids(lab, host)).toEqual([]);
        // Only the lab's own Redis servers may remain in the namespaces: no daemon, no
        // notify or reconfig script, no sleep of one.
        const redisPids = new Set((['a', 'b'] as const).map((node) => lab.redis(node).pid));
        for (const host of HOSTS) {
          const leftovers = processesInNamespace(lab.net.host(host).ns).filter((pid) => !redisPids.has(pid));
          expect(leftovers, `processes left in ${host}`).toEqual([]);
        }
        for (const pid of before) expect(pidAlive(pid), `pid ${pid} still alive`).toBe(false);
        expect(await lab.vipHolders()).toEqual([]);
        await lab.teardown();
        expect(await lab.net.namespaces()).toEqual([]);
        expect(await lab.net.links()).toEqual([]);
      },
      STOP_TEST_TIMEOUT_MS,
    );
  });
}
