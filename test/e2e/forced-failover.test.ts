/**
 * End-to-end forced failover (`redis-ha failover`): two real daemons and two Redis in
 * network namespaces, no quorum (`none`, `availability`), a set writer in the client
 * namespace writing through the VIP, and the built CLI.
 *
 * b's `promotion.max_lag_bytes` is 1000. The replication stream into b's Redis is
 * stalled (an nftables drop of the packets from a's Redis port on b's input hook: b's
 * link stays up, its offset stops) while the writer goes on through a; then a's Redis is
 * SIGKILLed. a's daemon goes FAULT and releases the VIP; b's automatic takeover is held
 * back (it was thousands of bytes behind). Then:
 *   - `status` on b names the blocker and the override;
 *   - `redis-ha failover` on b (no flag) exits 1, says what holds the takeover and what a
 *     forced one would do, and changes nothing (b BACKUP, no VIP anywhere);
 *   - `redis-ha failover --accept-data-loss` on b exits 0: b is master with the VIP, the
 *     writer's writes are acknowledged through it, b's audit has `takeover-forced` (the
 *     caller, the lag it overrode) and `takeover-forced-finished`;
 *   - a's Redis restarted: a replicates b, the pair settles on b.
 * Writes acknowledged by a while b lagged are the accepted loss (printed); none
 * acknowledged after the forced takeover is lost.
 *
 * Root only (skipped loudly otherwise); needs `npm run build` and `npm run build:tools`;
 * run under the e2e lock.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { nowWallMs, PairLab, startPair, type PairNode } from '../../tools/lab/pair.js';
import { LAB_REDIS_PORT } from '../../tools/lab/redis-proc.js';
import type { StatusReport } from '../../src/daemon/status.js';
import {
  auditMark, auditSince, describeAsRoot, describeWrites, events, expectStableMaster, finish, fmt, requireBuild, sleep, startWriting, waitWritesFlow,
} from './pair-helpers.js';

/** b's bound on the lag an automatic takeover may lose (bytes): tiny, so a stalled stream trips it. */
const MAX_LAG_BYTES = 1_000;
/** nftables table of the stall (removed in `finally`; it dies with the namespace anyway). */
const STALL_TABLE = 'rh_forced_stall';
/** Writes through a while b's stream is stalled: well over MAX_LAG_BYTES at 500 writes/s. */
const LAGGING_WRITES_MS = 2_000;
const ELECTION_TIMEOUT_MS = 30_000;
const HOLD_TIMEOUT_MS = 15_000;
const TAKEOVER_TIMEOUT_MS = 15_000;
const WRITES_RESUME_TIMEOUT_MS = 10_000;
const REJOIN_TIMEOUT_MS = 45_000;
/** How long the dry run is watched for any change. */
const DRY_RUN_WATCH_MS = 1_500;
const STABILITY_WATCH_MS = 2_000;
const STEP_TIMEOUT_MS = 180_000;

const describeRoot = describeAsRoot('test/e2e/forced-failover.test.ts');

/** Drops the replication stream from the other node's Redis into `replica` (its input hook). */
async function stallReplicationInto(lab: PairLab, replica: PairNode): Promise<void> {
  const master = lab.address(PairLab.other(replica));
  for (const argv of [
    ['nft', 'add', 'table', 'inet', STALL_TABLE],
    ['nft', 'add', 'chain', 'inet', STALL_TABLE, 'in', '{ type filter hook input priority 0; policy accept; }'],
    ['nft', 'add', 'rule', 'inet', STALL_TABLE, 'in', 'ip', 'saddr', master, 'tcp', 'sport', String(LAB_REDIS_PORT), 'drop'],
  ]) {
    const r = await lab.net.exec(replica, argv);
    if (r.code !== 0) throw new Error(`${argv.join(' ')} failed in ${replica}: ${r.stderr.trim() || `exit ${r.code}`}`);
  }
}

async function unstall(lab: PairLab, replica: PairNode): Promise<void> {
  await lab.net.exec(replica, ['nft', 'delete', 'table', 'inet', STALL_TABLE]);
}

async function statusOf(lab: PairLab, node: PairNode): Promise<StatusReport> {
  const r = await lab.ctl(node, ['status', '--json']);
  return JSON.parse(r.stdout) as StatusReport;
}

/** `redis-ha failover` on `node` through the built CLI (its socket named: `ctl` adds it only for the older commands). */
function failover(lab: PairLab, node: PairNode, args: readonly string[] = []): ReturnType<PairLab['ctl']> {
  return lab.ctl(node, ['failover', '--socket', lab.controlSocket(node), ...args]);
}

describeRoot('e2e forced failover: redis-ha failover takes over past a held-back takeover', () => {
  let lab: PairLab;

  beforeAll(async () => {
    requireBuild();
    lab = await startPair({
      tag: 'rhx1',
      subnet: '10.77.251',
      profile: 'default',
      quorum: { backend: 'none', prefer: 'availability' },
      daemon: { nodeB: { promotion: { max_lag_bytes: MAX_LAG_BYTES } } },
    });
    await lab.waitFor('A settled as master', () => lab.isSettledMaster('a'), ELECTION_TIMEOUT_MS);
  });

  afterAll(async () => {
    await lab?.teardown();
  });

  it('a lagging replica\'s held takeover: status names it, failover without the flag changes nothing, --accept-data-loss takes over', { timeout: STEP_TIMEOUT_MS }, async () => {
    const writer = await startWriting(lab);
    let stopped = false;
    try {
      await sleep(1_000);
      await stallReplicationInto(lab, 'b');
      await sleep(LAGGING_WRITES_MS);
      const mark = auditMark(lab);
      const faultWall = nowWallMs();
      lab.killRedis('a');

      // b holds its takeover back: it was far behind a when a's Redis died.
      await lab.waitFor('b holding its takeover back (lag)', async () => {
        const report = await statusOf(lab, 'b');
        return report.node.state === 'BACKUP' && /bytes behind a/.test(report.whyNotMaster ?? '');
      }, HOLD_TIMEOUT_MS);
      expect((await statusOf(lab, 'b')).whyNotMaster).toMatch(/this replica was \d+ bytes behind a .*promotion\.max_lag_bytes 1000.*; `redis-ha failover --accept-data-loss` overrides it$/);
      const heldAudit = events(auditSince(lab, 'b', mark), 'takeover-held');
      expect(heldAudit.length).toBeGreaterThan(0);
      const lagBytes = Number(heldAudit[0]?.['lagBytes']);
      expect(lagBytes).toBeGreaterThan(MAX_LAG_BYTES);
      const table = await lab.ctl('b', ['status']);
      expect(table.stdout).toMatch(/^not master +this replica was \d+ bytes behind a/m);

      // Without --accept-data-loss: refused to act, nothing changes.
      const dry = await failover(lab, 'b');
      expect(dry.code, `${dry.stdout}${dry.stderr}`).toBe(1);
      expect(dry.stdout).toMatch(/^failover NOT RUN: nothing changed \(no --accept-data-loss\)$/m);
      expect(dry.stdout).toMatch(/^ {2}held back now: this replica was \d+ bytes behind a/m);
      expect(dry.stdout).toMatch(/^ {2}a forced takeover would: take over as MASTER in epoch \d+: promote the local Redis without catching up \(the peer reported its Redis FAULT\), then claim the VIP/m);
      const dryJson = await failover(lab, 'b', ['--json']);
      expect(dryJson.code).toBe(1);
      expect(JSON.parse(dryJson.stdout)).toMatchObject({ ok: false, outcome: 'dry-run', acceptDataLoss: false });
      const watchUntil = Date.now() + DRY_RUN_WATCH_MS;
      while (Date.now() < watchUntil) {
        expect(await lab.vipHolders()).toEqual([]);
        expect(await lab.redisRole('b')).toBe('replica');
        await sleep(250);
      }
      expect(events(auditSince(lab, 'b', mark), 'takeover-forced')).toEqual([]);

      // With it: b takes over at once.
      const askedWall = nowWallMs();
      const forced = await failover(lab, 'b', ['--accept-data-loss']);
      expect(forced.code, `${forced.stdout}${forced.stderr}`).toBe(0);
      expect(forced.stdout).toMatch(/^failover done: this node is MASTER \(epoch \d+\); Redis promoted, the VIP claimed in \d+ ms\n {2}overrode: this replica was \d+ bytes behind a/);
      const vipMs = await lab.waitFor('b master with the VIP', async () =>
        (await lab.vipHolders()).join() === 'b' && (await lab.redisRole('b')) === 'master', TAKEOVER_TIMEOUT_MS);
      const takeoverWall = nowWallMs();
      const resumeMs = await waitWritesFlow(lab, writer, takeoverWall, WRITES_RESUME_TIMEOUT_MS);
      const records = auditSince(lab, 'b', mark);
      const [record] = events(records, 'takeover-forced');
      expect(record).toMatchObject({ user: 'root(uid 0)', overrode: expect.stringMatching(/bytes behind a/), lagBytes: expect.any(Number) });
      expect(typeof record?.['pid']).toBe('number');
      expect(events(records, 'takeover-forced-finished')).toEqual([expect.objectContaining({ ok: true })]);
      expect(events(records, 'control-request').filter((r) => r['command'] === 'failover').map((r) => r['outcome'])).toEqual(['dry-run', 'dry-run', 'taken-over']);
      expect((await statusOf(lab, 'b')).whyNotMaster).toBeNull();

      // a's Redis back: it follows b; the pair settles on b.
      await unstall(lab, 'b');
      await lab.restartRedis('a', { replicaOf: null });
      await lab.waitFor('a replicating b, the VIP on b alone', () => lab.isSettledMaster('b'), REJOIN_TIMEOUT_MS);
      await expectStableMaster(lab, 'b', STABILITY_WATCH_MS);

      const { report, result } = await finish(lab, writer, 'b', faultWall);
      stopped = true;
      const takeoverWriterMs = takeoverWall - result.meta.startWallMs;
      const lostAfter = report.lost.filter((value) => {
        const op = result.ops.find((o) => o.value === value);
        return op !== undefined && op.startMs >= takeoverWriterMs;
      });
      console.log(
        `(forced) b ${lagBytes} bytes behind when a's Redis died; forced takeover asked ${fmt(askedWall - faultWall)} after ` +
          `the kill, b master with the VIP ${fmt(vipMs)} after the CLI returned, writes through it ${fmt(resumeMs)} later; ` +
          `${describeWrites(report)} (the accepted loss: a's writes b never received)`,
      );
      expect(lostAfter, 'writes acknowledged after the forced takeover were lost').toEqual([]);
    } finally {
      await unstall(lab, 'b');
      if (!stopped) await writer.stop().catch(() => undefined);
    }
  });
});
