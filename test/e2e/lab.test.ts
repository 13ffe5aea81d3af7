/**
 * Tests of the lab itself: the namespaces come up and reach each other, a link can be
 * cut and restored, two hosts can be partitioned while both still reach the third,
 * Redis replication works across namespaces, the writer writes through an address from
 * the client namespace with a consistent op log, and teardown leaves nothing behind (no
 * daemon involved); then the live demo (`scripts/lab.sh`) run as a user runs it: its
 * default (the etcd witness on the client host, A's Redis killed), the partition with
 * etcd, and the pair alone (`--quorum none`), each judged by the numbers it prints and
 * writes with `--result`. Root only (skipped loudly otherwise); the spawned writer and
 * demo run compiled JS, so run `npm run build && npm run build:tools` first. The pure
 * set-test analysis is checked here too, without root.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  acknowledgedBetween,
  analyseSetTest,
  failedButPresent,
  parseFinalSet,
  parseOpLog,
  toWriterMs,
  unavailabilityWindow,
  type OpRecord,
} from '../../tools/lab/analysis.js';
import { isRoot, LabNetwork, pollUntil, run, waitChildExit } from '../../tools/lab/netns.js';
import { LabRedis, LAB_REDIS_PORT } from '../../tools/lab/redis-proc.js';
import { demoEntry, nowWallMs, PRIORITY_B, PROFILES, writerEntry } from '../../tools/lab/pair.js';
import type { DemoResult } from '../../tools/lab/demo.js';
import { masterDownMs } from '../../src/core/timing.js';

const TAG = 'rhlab1';
const SUBNET = '10.77.201';
const PASSWORD = 'lab-test-password';
const WRITER_RUN_MS = 2_000;
const WRITER_RATE_PER_SEC = 500;
/** The writer must reach a good part of its target rate against a healthy server. */
const MIN_RATE_FRACTION = 0.6;

const root = isRoot();
if (!root) console.warn('SKIPPING test/e2e/lab.test.ts: the lab needs root (network namespaces)');
const describeRoot = root ? describe : describe.skip;

/** PING `target` from `from`'s namespace with redis-cli; true on PONG. */
async function pingAcross(net: LabNetwork, from: string, target: string, timeoutMs = 2_000): Promise<boolean> {
  const result = await net.exec(
    from,
    ['redis-cli', '--no-auth-warning', '-h', target, '-p', String(LAB_REDIS_PORT), 'PING'],
    { timeoutMs, env: { REDISCLI_AUTH: PASSWORD } },
  );
  return result.code === 0 && result.stdout.trim() === 'PONG';
}

describeRoot('lab network and processes', () => {
  let net: LabNetwork;
  let redisA: LabRedis;
  let redisB: LabRedis;
  let redisC: LabRedis;
  let workDir: string;

  beforeAll(async () => {
    workDir = mkdtempSync(join(tmpdir(), 'redis-ha-labtest-'));
    net = await LabNetwork.create({ tag: TAG, subnet: SUBNET, hosts: ['a', 'b', 'c'] });
    redisA = await LabRedis.start({ net, host: 'a', password: PASSWORD });
    redisB = await LabRedis.start({ net, host: 'b', password: PASSWORD, replicaOf: net.address('a') });
    redisC = await LabRedis.start({ net, host: 'c', password: PASSWORD });
  });

  afterAll(async () => {
    for (const redis of [redisA, redisB, redisC]) await redis?.cleanup();
    await net?.teardown();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  it('gives each host its namespace, eth0 address and a path to the others', async () => {
    expect((await net.namespaces()).sort()).toEqual([`${TAG}-a`, `${TAG}-b`, `${TAG}-c`]);
    expect(net.address('a')).toBe(`${SUBNET}.10`);
    expect(net.address('c')).toBe(`${SUBNET}.12`);
    for (const link of await net.links()) expect(link.length).toBeLessThanOrEqual(15);
    expect(await pingAcross(net, 'c', net.address('a'))).toBe(true);
    expect(await pingAcross(net, 'a', net.address('b'))).toBe(true);
    expect(await pingAcross(net, 'b', net.address('c'))).toBe(true);
  });

  it('kills the real process by the spawned PID (ip netns exec execs)', async () => {
    const pid = redisC.pid;
    expect(pid).not.toBeNull();
    expect(readFileSync(`/proc/${pid}/comm`, 'utf8').trim()).toBe('redis-server');
    redisC.kill('SIGKILL');
    expect(await redisC.waitExit(5_000)).toBe(true);
    expect(await pingAcross(net, 'a', net.address('c'), 1_000)).toBe(false);
    await redisC.restart();
    expect(redisC.pid).not.toBe(pid);
    expect(await pingAcross(net, 'a', net.address('c'))).toBe(true);
  });

  it('cuts and restores a link', async () => {
    await net.cutLink('a');
    expect(await net.linkUp('a')).toBe(false);
    expect(await pingAcross(net, 'c', net.address('a'), 1_000)).toBe(false);
    expect(await pingAcross(net, 'c', net.address('b'))).toBe(true);
    await net.restoreLink('a');
    expect(await net.linkUp('a')).toBe(true);
    expect(await pollUntil(() => pingAcross(net, 'c', net.address('a'), 1_000), 5_000, 100)).toBe(true);
  });

  it('partitions two hosts while both still reach the third', async () => {
    await net.partition('a', 'b');
    try {
      expect(await pingAcross(net, 'a', net.address('b'), 1_000)).toBe(false);
      expect(await pingAcross(net, 'b', net.address('a'), 1_000)).toBe(false);
      expect(await pingAcross(net, 'a', net.address('c'))).toBe(true);
      expect(await pingAcross(net, 'b', net.address('c'))).toBe(true);
      expect(await pingAcross(net, 'c', net.address('a'))).toBe(true);
    } finally {
      await net.heal('a', 'b');
    }
    expect(await pingAcross(net, 'a', net.address('b'))).toBe(true);
  });

  it('replicates from a to b', async () => {
    const linked = await pollUntil(async () => (await redisB.info())?.['master_link_status'] === 'up', 10_000, 100);
    expect(linked).toBe(true);
    expect(await redisB.role()).toBe('replica');
    expect(await redisA.role()).toBe('master');
    await redisA.cli(['SET', 'lab:probe', 'replicated']);
    expect(await pollUntil(async () => (await redisB.tryCli(['GET', 'lab:probe'])) === 'replicated', 5_000, 50)).toBe(
      true,
    );
  });

  /** Runs the writer from c against `target`; `during` runs while it writes. */
  async function runWriter(
    name: string,
    target: string,
    durationMs: number,
    during?: (startWallMs: number) => Promise<void>,
  ): Promise<{ lines: Array<{ type: string; ok: number }>; log: ReturnType<typeof parseOpLog> }> {
    const writerJs = writerEntry();
    if (!existsSync(writerJs)) throw new Error(`${writerJs} missing: run npm run build:tools first`);
    const out = join(workDir, `${name}.jsonl`);
    const child = net.spawn(
      'c',
      [
        process.execPath,
        writerJs,
        '--host',
        target,
        '--port',
        String(LAB_REDIS_PORT),
        '--password-env',
        'LAB_WRITER_PASSWORD',
        '--rate',
        String(WRITER_RATE_PER_SEC),
        '--duration-ms',
        String(durationMs),
        '--out',
        out,
      ],
      { env: { LAB_WRITER_PASSWORD: PASSWORD } },
    );
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    if (during) {
      const started = await pollUntil(() => stdout.includes('"type":"meta"'), 10_000, 20);
      expect(started, 'writer printed its meta line').toBe(true);
      const meta = JSON.parse(stdout.split('\n')[0] ?? '{}') as { startWallMs: number };
      await during(meta.startWallMs);
    }
    await waitChildExit(child, durationMs + 15_000);
    expect(child.exitCode, stderr).toBe(0);
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { type: string; ok: number });
    return { lines, log: parseOpLog(readFileSync(out, 'utf8')) };
  }

  it('runs the writer from the client namespace with a consistent op log', async () => {
    const { lines, log } = await runWriter('healthy', net.address('a'), WRITER_RUN_MS);
    expect(lines[0]?.type).toBe('meta');
    expect(lines.filter((l) => l.type === 'progress').length).toBeGreaterThanOrEqual(4);
    const summary = lines.at(-1);
    expect(summary?.type).toBe('summary');

    const finalSet = parseFinalSet(await redisA.smembers(log.meta.key));
    const report = analyseSetTest(log.ops, finalSet);
    const ratePerSec = report.acknowledged / (WRITER_RUN_MS / 1000);
    console.log(`lab writer, healthy: ${JSON.stringify({ ...report, lost: report.lost.length, ratePerSec })}`);
    expect(summary?.ok).toBe(report.acknowledged);
    expect(report.lost).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(report.failed).toBe(0);
    expect(failedButPresent(log.ops, finalSet)).toEqual([]);
    expect(ratePerSec).toBeGreaterThan(WRITER_RATE_PER_SEC * MIN_RATE_FRACTION);
    // Values are unique and the op times are consistent.
    expect(new Set(log.ops.map((op) => op.value)).size).toBe(log.ops.length);
    for (const op of log.ops) expect(op.endMs).toBeGreaterThanOrEqual(op.startMs);
    expect(Math.abs(log.meta.startWallMs - Date.now())).toBeLessThan(60_000);
  });

  it('records a dead link as unknown ops and resumes on a fresh connection after restore', async () => {
    await redisA.cli(['DEL', 'ha:set']);
    let cutMs = 0;
    let restoreMs = 0;
    const { log } = await runWriter('link-cut', net.address('a'), 4_000, async (startWallMs) => {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      // Times taken once the command has returned: ops issued while `ip` ran still went through.
      await net.cutLink('a');
      cutMs = nowWallMs() - startWallMs;
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      await net.restoreLink('a');
      restoreMs = nowWallMs() - startWallMs;
    });
    const finalSet = parseFinalSet(await redisA.smembers(log.meta.key));
    const report = analyseSetTest(log.ops, finalSet);
    const window = unavailabilityWindow(log.ops, cutMs);
    const resumedAfterRestoreMs = unavailabilityWindow(log.ops, restoreMs).faultToFirstOkMs;
    console.log(
      `lab writer, link cut: ${JSON.stringify({ ...report, lost: report.lost.length, window, resumedAfterRestoreMs })}`,
    );
    expect(report.unknown).toBeGreaterThan(0);
    expect(report.lost).toEqual([]);
    expect(report.unexpected).toEqual([]);
    expect(failedButPresent(log.ops, finalSet)).toEqual([]);
    // Nothing acknowledged while the link was down.
    expect(window.firstOkAfter?.startMs ?? 0).toBeGreaterThanOrEqual(restoreMs - 1);
    // Replacing the dead connection lets writes resume promptly once the link is back.
    expect(resumedAfterRestoreMs).not.toBeNull();
    expect(resumedAfterRestoreMs ?? Infinity).toBeLessThan(2_000);
  });
});

describeRoot('lab teardown', () => {
  it('leaves no namespace, bridge or veth behind, and is idempotent', async () => {
    const tag = 'rhlab2';
    const net = await LabNetwork.create({ tag, subnet: '10.77.202', hosts: ['a', 'b'] });
    const redis = await LabRedis.start({ net, host: 'a', password: PASSWORD });
    const pid = redis.pid;
    expect((await net.namespaces()).length).toBe(2);
    await net.teardown();
    await net.teardown();
    await redis.cleanup();
    const namespaces = await run(['ip', 'netns', 'list']);
    expect(namespaces.stdout).not.toContain(`${tag}-`);
    const links = await run(['ip', '-o', 'link', 'show']);
    expect(links.stdout).not.toMatch(new RegExp(`\\d+: ${tag}`));
    expect(pid !== null && existsSync(`/proc/${pid}`)).toBe(false);
  });
});

/**
 * A demo run takes 25-40 s here; the demo ends a stuck run itself through its phase
 * bounds (30 s election, 60 s failover, 60 s rejoin), so this outer bound only catches
 * a hang in the demo's own teardown.
 */
const DEMO_RUN_BOUND_MS = 240_000;
/** Grace for the demo to tear its lab down after SIGINT when the bound ran out. */
const DEMO_SIGINT_GRACE_MS = 30_000;
const DEMO_TEST_TIMEOUT_MS = DEMO_RUN_BOUND_MS + DEMO_SIGINT_GRACE_MS + 10_000;
/** B's master-down interval in the demo's default profile. */
const DEMO_MASTER_DOWN_MS = masterDownMs(PRIORITY_B, PROFILES.default.advertIntervalMs);
/** The partition lasts 3 × that (the demo's `PARTITION_MASTER_DOWNS`). */
const DEMO_PARTITION_MS = 3 * DEMO_MASTER_DOWN_MS;
/** "Writes keep flowing": no gap in acknowledged writes this long during a partition the quorum absorbs. */
const PARTITION_MAX_WRITE_GAP_MS = 1_000;

describeRoot('the live demo (scripts/lab.sh)', () => {
  let workDir: string;

  beforeAll(() => {
    for (const entry of [demoEntry(), writerEntry()]) {
      if (!existsSync(entry)) throw new Error(`${entry} missing: run npm run build && npm run build:tools first`);
    }
    workDir = mkdtempSync(join(tmpdir(), 'redis-ha-demotest-'));
  });

  afterAll(() => {
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  /** Runs the compiled demo with `args` on its own tag and subnet; its output and `--result`. */
  async function runDemo(tag: string, subnet: string, args: readonly string[]): Promise<{ result: DemoResult; stdout: string }> {
    const resultFile = join(workDir, `${tag}.json`);
    const argv = [demoEntry(), '--tag', tag, '--subnet', subnet, '--result', resultFile, ...args];
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const started = Date.now();
    await waitChildExit(child, DEMO_RUN_BOUND_MS);
    if (child.exitCode === null && child.signalCode === null) {
      // SIGINT: the demo tears its lab down (namespaces, daemons, etcd) before it exits.
      child.kill('SIGINT');
      await waitChildExit(child, DEMO_SIGINT_GRACE_MS);
    }
    // What the demo said went wrong first (its error names the wait and the status), then its last lines.
    const why = stderr.split('\n').find((line) => line.startsWith('demo failed:') || line.startsWith('demo:')) ?? '';
    const tail = `${why}\n--- stdout (last 40 lines)\n${stdout.split('\n').slice(-40).join('\n')}\n--- stderr\n${stderr.slice(-4_000)}`;
    const summaryAt = stdout.indexOf('=== summary');
    console.log(
      `demo ${args.join(' ') || '(no arguments)'}: exit ${child.exitCode ?? child.signalCode} after ${Date.now() - started} ms\n` +
        (summaryAt >= 0 ? stdout.slice(summaryAt).split('\n\n')[0] : why),
    );
    expect(child.exitCode, `demo ${args.join(' ')} did not finish cleanly:\n${tail}`).toBe(0);
    expect(existsSync(resultFile), `demo wrote no result file:\n${tail}`).toBe(true);
    return { result: JSON.parse(readFileSync(resultFile, 'utf8')) as DemoResult, stdout };
  }

  it('default (no arguments: quorum etcd, fault redis-kill): B takes the leader key and the VIP; nothing acknowledged after the takeover is lost', { timeout: DEMO_TEST_TIMEOUT_MS }, async () => {
    const { result, stdout } = await runDemo('rhdm1', '10.77.203', []);
    expect(result).toMatchObject({ quorum: 'etcd', fault: 'redis-kill', profile: 'default', finalMaster: 'b', keyHolder: 'b', bPromoted: true });
    expect(result.auditSinceFault.b).toContain('quorum-key-wanted');
    expect(result.auditSinceFault.b).toContain('quorum-acquired');
    expect(result.lostAfterTakeover).toBe(0);
    expect(result.unexpected).toBe(0);
    expect(result.faultToFirstOkMs).not.toBeNull();
    expect(stdout).toContain('=== summary (quorum: etcd, fault: redis-kill, profile: default) ===');
    expect(stdout).toMatch(/ key=B /);
    expect(stdout).toContain('leader key at the end: B');
  });

  it('--fault partition (etcd): B asks for the leader key, is told A holds it and never promotes; writes keep flowing; 0 acknowledged writes lost', { timeout: DEMO_TEST_TIMEOUT_MS }, async () => {
    const { result, stdout } = await runDemo('rhdm2', '10.77.204', ['--fault', 'partition']);
    expect(result).toMatchObject({ quorum: 'etcd', fault: 'partition', finalMaster: 'a', keyHolder: 'a', bPromoted: false, twoMastersMs: 0 });
    expect(result.partitionMs ?? 0).toBeGreaterThanOrEqual(DEMO_PARTITION_MS);
    expect(result.auditSinceFault.b).toContain('quorum-key-wanted');
    expect(result.auditSinceFault.b).toContain('quorum-held-by-other');
    expect(result.auditSinceFault.b).not.toContain('transition');
    expect(result.lost).toBe(0);
    expect(result.unexpected).toBe(0);
    expect(result.failed).toBe(0);
    expect(result.acknowledged).toBeGreaterThan(0);
    expect(result.longestGapMs ?? Infinity).toBeLessThan(PARTITION_MAX_WRITE_GAP_MS);
    expect(stdout).toContain('B is told the leader key is held by A');
    expect(stdout).toContain('B promoted during the partition: no');
    expect(stdout).toContain('acknowledged writes lost: 0;');
  });

  it("--quorum none (the pair alone, today's demo), default fault: B fails over without any leader key; nothing acknowledged after the takeover is lost", { timeout: DEMO_TEST_TIMEOUT_MS }, async () => {
    const { result, stdout } = await runDemo('rhdm3', '10.77.205', ['--quorum', 'none']);
    expect(result).toMatchObject({ quorum: 'none', fault: 'redis-kill', finalMaster: 'b', keyHolder: null, bPromoted: true });
    expect(result.auditSinceFault.b.filter((event) => event.startsWith('quorum-'))).toEqual([]);
    expect(result.lostAfterTakeover).toBe(0);
    expect(result.unexpected).toBe(0);
    expect(stdout).toContain('=== summary (quorum: none, fault: redis-kill, profile: default) ===');
    expect(stdout).not.toMatch(/ key=/);
    expect(stdout).not.toContain('leader key');
  });
});

describe('set-test analysis (pure)', () => {
  const op = (value: number, startMs: number, endMs: number, outcome: OpRecord['outcome']): OpRecord => ({
    type: 'op',
    value,
    startMs,
    endMs,
    outcome,
  });
  const ops: OpRecord[] = [
    op(1, 0, 1, 'ok'),
    op(2, 2, 3, 'ok'),
    op(3, 4, 5, 'ok'),
    op(4, 6, 256, 'unknown'),
    op(5, 257, 257, 'failed'),
    op(6, 300, 301, 'ok'),
    op(7, 302, 303, 'ok'),
  ];

  it('counts lost, unexpected and unknown-but-applied values', () => {
    const report = analyseSetTest(ops, new Set([1, 2, 4, 6, 7, 99]));
    expect(report).toMatchObject({ attempted: 7, acknowledged: 5, failed: 1, unknown: 1, finalSize: 6, unknownPresent: 1 });
    expect(report.lost).toEqual([3]);
    expect(report.unexpected).toEqual([99]);
    expect(failedButPresent(ops, new Set([5]))).toEqual([5]);
  });

  it('measures the unavailability window around a fault', () => {
    const window = unavailabilityWindow(ops, 5.5);
    expect(window.lastOkBeforeMs).toBe(5);
    expect(window.firstOkAfter?.value).toBe(6);
    expect(window.faultToFirstOkMs).toBeCloseTo(295.5);
    expect(window.windowMs).toBe(296);
    expect(window.longestGapMs).toBe(296);
    expect(acknowledgedBetween(ops, 0, 5)).toBe(3);
  });

  it('parses the op log and converts wall-clock times', () => {
    const meta = { type: 'meta', startWallMs: 1_000, host: 'h', port: 6379, key: 'k', ratePerSec: 500 };
    const text = [JSON.stringify(meta), ...ops.map((o) => JSON.stringify(o))].join('\n');
    const log = parseOpLog(text);
    expect(log.ops).toHaveLength(7);
    expect(toWriterMs(log.meta, 1_250)).toBe(250);
    expect(parseFinalSet(['1', '2', 'x'])).toEqual(new Set([1, 2, Number.NaN]));
  });
});
