/**
 * End to end, the client's side of a failover (issue 12 item 4): an application's pool
 * of 20 connections writing through the VIP, every second one pipelining 4 SADDs, while
 * the master's Redis is SIGKILLed. Every connection must write again through the new
 * master, and no acknowledged write may be lost.
 *
 * Two real daemons (`dist/cli/main.js run`), two real Redis, the pooled lab writer in
 * the client namespace. Bounds are generous; the time each connection took to write
 * again is printed (the benchmark reports it: `npm run bench -- --connections 20`).
 * Root only; needs `npm run build` and `npm run build:tools`.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { analyseSetTest, clientRecovery, connectionsWritingAfter } from '../../tools/lab/analysis.js';
import { nowWallMs, PairLab, startPair } from '../../tools/lab/pair.js';
import { describeAsRoot, describeWrites, fmt, requireBuild, sleep } from './pair-helpers.js';

const ELECTION_TIMEOUT_MS = 30_000;
const FAILOVER_TIMEOUT_MS = 30_000;
const PRE_FAULT_WRITES_MS = 3_000;
/** After the takeover: long enough for every connection's reconnect (at most a few of its timeouts). */
const AFTER_TAKEOVER_MS = 3_000;
const STEP_TIMEOUT_MS = 120_000;
const CONNECTIONS = 20;
const PIPELINE = 4;
const RATE_PER_SEC = 1_000;

const describeRoot = describeAsRoot('test/e2e/client-pool.test.ts');

describeRoot('e2e: 20 pooled clients through the VIP while the master\'s Redis is killed', () => {
  let lab: PairLab;

  beforeAll(async () => {
    requireBuild();
    lab = await startPair({ tag: 'rhcp', subnet: '10.77.217', profile: 'default' });
    await lab.waitFor('A master with the VIP, B replicating', () => lab.isSettledMaster('a'), ELECTION_TIMEOUT_MS);
  }, STEP_TIMEOUT_MS);

  afterAll(async () => {
    await lab?.teardown();
  });

  it('every connection writes again through B, and no acknowledged write is lost', { timeout: STEP_TIMEOUT_MS }, async () => {
    const writer = lab.startWriter({ ratePerSec: RATE_PER_SEC, connections: CONNECTIONS, pipeline: PIPELINE });
    await lab.waitFor('the pool writing', () => (writer.progress()?.ok ?? 0) > 100, 15_000);
    await sleep(PRE_FAULT_WRITES_MS);
    const faultWall = nowWallMs();
    lab.killRedis('a', 'SIGKILL');
    const failoverMs = await lab.waitFor(
      'B master with the VIP',
      async () => (await lab.vipHolders()).join() === 'b' && (await lab.redisRole('b')) === 'master',
      FAILOVER_TIMEOUT_MS,
    );
    await sleep(AFTER_TAKEOVER_MS);
    const result = await writer.stop();
    const faultMs = faultWall - result.meta.startWallMs;
    const finalSet = await lab.readFinalSet('b', result.meta.key);
    const report = analyseSetTest(result.ops, finalSet);
    const recovery = clientRecovery(result.ops, faultMs);
    const median = recovery.backMs[Math.floor(recovery.backMs.length / 2)];
    console.log(
      `pool of ${CONNECTIONS} (every second one pipelining ${PIPELINE}): B master with the VIP after ${fmt(failoverMs)}; ` +
        `${recovery.interrupted} connections interrupted, ${recovery.recovered} wrote again; fault -> each connection's ` +
        `first good write: median ${fmt(median)}, max ${fmt(recovery.backMs.at(-1))}; ${describeWrites(report)}`,
    );
    expect(recovery.connections).toBe(CONNECTIONS);
    // Every connection was on A's Redis. One between two of its (pipelined) slots while the
    // VIP moved may not notice; every one that did is back, and every one writes through B.
    expect(recovery.interrupted).toBeGreaterThanOrEqual(CONNECTIONS / 2);
    expect(recovery.recovered).toBe(recovery.interrupted);
    const lastFailureEnd = Math.max(...result.ops.filter((o) => o.outcome !== 'ok').map((o) => o.endMs));
    expect(connectionsWritingAfter(result.ops, lastFailureEnd).size).toBe(CONNECTIONS);
    expect(report.unexpected).toEqual([]);
    expect(report.lost).toEqual([]);
  });
});
