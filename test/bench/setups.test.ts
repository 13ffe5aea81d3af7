/**
 * Benchmark setups, each on a fresh pair lab built with the driver's `labOptions`
 * (Redis on a and b, no daemons yet): the comparison setups `keepalived-classic` (seed
 * 002's keepalived + notify scripts) and `sentinel` (three sentinels, VIP by
 * client-reconfig-script), and `redis-ha-etcd` (redis-ha with the etcd quorum, the
 * witness on the client host; the plain `redis-ha` setup is covered by
 * bench-smoke.test.ts). For each: `start()` leaves the VIP on a with b replicating a
 * (and, with etcd, the leader key held by a), a write through the VIP from the client
 * host succeeds, the daemon-stall hooks stop and continue the setup's processes on a
 * (and only those), SIGKILL of a's Redis eventually makes b the master holding the VIP
 * (with etcd: and the key), and `stop()` leaves no process of the setup behind in the
 * lab's namespaces (the witness included).
 *
 * Bounds are generous: the keepalived recipe alone sleeps 25 s after detecting the
 * failure. Root only (skipped loudly otherwise); needs keepalived, redis-sentinel and
 * etcd installed (Debian: `apt-get install keepalived redis-sentinel etcd-server
 * etcd-client`), and `npm run build` for the redis-ha daemons.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SetupDriver } from '../../tools/bench/setup.js';
import { keepalivedClassic } from '../../tools/bench/setups/keepalived.js';
import { redisHaEtcd } from '../../tools/bench/setups/redis-ha.js';
import { sentinel, sentinelMasterAddresses } from '../../tools/bench/setups/sentinel.js';
import { isRoot, pidAlive } from '../../tools/lab/netns.js';
import { PairLab, startPair, type PairHost, type PairNode } from '../../tools/lab/pair.js';
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
/** Bound on the etcd leader key naming the new master (a lease is 2 s in the lab). */
const LEADER_KEY_MS = 10_000;

interface Case {
  readonly driver: SetupDriver;
  readonly tag: string;
  readonly subnet: string;
  /** Bound on b becoming master with the VIP after SIGKILL of a's Redis. */
  readonly failoverTimeoutMs: number;
  /** How many failover processes `daemonPids` lists per host once started. */
  readonly processes: Readonly<Record<PairHost, number>>;
  /** Setup-specific check once started: the setup itself knows a as the master. */
  readonly settledOnA?: (lab: PairLab) => Promise<void>;
  /** Setup-specific check after the failover: the setup itself knows b as the master. */
  readonly tookOverOnB?: (lab: PairLab) => Promise<void>;
}

/** Waits (bounded) until the etcd witness's leader key names `node`. */
async function leaderKeyHeldBy(lab: PairLab, node: PairNode): Promise<void> {
  await lab.waitFor(`the leader key held by ${node}`, async () => (await lab.etcd().leader())?.record?.node === node, LEADER_KEY_MS);
}

const CASES: readonly Case[] = [
  // chk_redis every 2 s, FAULT + priority 0, then notify_master's 15 + 10 s of sleeps.
  { driver: keepalivedClassic, tag: 'rhk1', subnet: '10.77.221', failoverTimeoutMs: 45_000, processes: { a: 2, b: 2, c: 0 } },
  // down-after 5 s, election, promotion, the observers' scripts.
  {
    driver: sentinel,
    tag: 'rhs1',
    subnet: '10.77.222',
    failoverTimeoutMs: 30_000,
    processes: { a: 1, b: 1, c: 1 },
    settledOnA: async (lab) => {
      expect(await sentinelMasterAddresses(lab)).toEqual({ a: lab.address('a'), b: lab.address('a'), c: lab.address('a') });
    },
  },
  // A dead Redis is seen at once; then the key (given up, or its 2 s lease) and the promotion.
  {
    driver: redisHaEtcd,
    tag: 'rhq1',
    subnet: '10.77.223',
    failoverTimeoutMs: 15_000,
    processes: { a: 1, b: 1, c: 1 },
    settledOnA: (lab) => leaderKeyHeldBy(lab, 'a'),
    tookOverOnB: (lab) => leaderKeyHeldBy(lab, 'b'),
  },
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
      lab = await startPair({ tag: testCase.tag, subnet: testCase.subnet, startDaemons: false, ...driver.labOptions });
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
        for (const host of HOSTS) expect(driver.daemonPids(lab, host), `processes on ${host}`).toHaveLength(testCase.processes[host]);
        await testCase.settledOnA?.(lab);
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
        await testCase.tookOverOnB?.(lab);
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
