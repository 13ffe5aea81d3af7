/**
 * End-to-end data guard of issue 11, item 5 ("A Redis that lost its data never wipes its
 * peer"): two real redis-ha daemons and two real Redis servers (no persistence) in
 * network namespaces, a set writer in the client namespace writing through the VIP at
 * the lab rate, 10,000 seed keys so a wiped data set shows in the key count.
 *
 * A Redis that crashes and is restarted by systemd (`Restart=always`, 100 ms later) comes
 * back as an empty master, or one loaded from an older dump, with a new run_id and a
 * replication offset that went backwards, while its peer's Redis still holds the longer
 * history. Left alone, the peer's replica reconnects, finds a history it cannot continue
 * and full-resyncs from the empty server: the whole data set is gone. The guard: the
 * daemon that sees its Redis come back so makes it `REPLICAOF <peer>` at once (the peer's
 * replica then gets -NOMASTERLINK instead of a full sync), audits `redis-history-lost`
 * with both histories, and, if it was master, goes FAULT so the peer takes over; the node
 * that lost its data becomes the new master's replica and gets the data back.
 *
 * Each pair chains its scenarios, the victim always being the master of the moment:
 *   (r1) the master's Redis SIGKILLed and restarted empty 100 ms later, writer running:
 *        the peer master with the VIP, the victim replicating it, the peer's data kept
 *        (key count before and after), every write acknowledged before the kill kept
 *        but those of its last second (asynchronous replication), none acknowledged after
 *        the takeover lost;
 *   (r2) the history guard alone, deterministic: the replica's Redis first cut off the
 *        master's (`blockReplication`, so it cannot reconnect to the restarted server),
 *        then the master's Redis SIGKILLed and restarted empty at once: its daemon audits
 *        `redis-history-lost` naming both run ids, goes FAULT then BACKUP, the peer
 *        becomes master; after the block is lifted the peer still has its data and the
 *        victim replicates it with that data;
 *   (r3) an older dump: `SAVE` on the master's Redis, 2 s more writes, SIGKILL and restart
 *        100 ms later from that dump: as (r1).
 * Pair G1 runs r1, r2, r3 with the etcd witness on the client host (the lab's quorum, as
 * `scripts/lab.sh` starts it); pair G2 runs r1 without a quorum (`none`, `availability`).
 *
 * Bounds are generous (a noisy 2-core machine); the tests assert outcomes, print the
 * measured figures, and fail with the trail (audit events, roles, key counts). Root only
 * (skipped loudly otherwise); needs `npm run build` and `npm run build:tools`; run under
 * the e2e lock.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  acknowledgedBetween,
  analyseSetTest,
  failedButPresent,
  unavailabilityWindow,
  type OpRecord,
} from '../../tools/lab/analysis.js';
import {
  nowWallMs,
  PairLab,
  startPair,
  type AuditRecord,
  type LabQuorum,
  type PairNode,
  type WriterResult,
} from '../../tools/lab/pair.js';
import type { LabRedisRestartData } from '../../tools/lab/redis-proc.js';
import { auditMark, auditSince, describeAsRoot, events, expectStableMaster, fmt, REPLICATION_LAG_ALLOWANCE_MS, requireBuild, sleep, startWriting } from './pair-helpers.js';

/** The audit event of the data guard (issue 11, item 5): named here, and nowhere else. */
const HISTORY_LOST_EVENT = 'redis-history-lost';
/** The daemon's audit event for a role change (src/core/common.ts `transitionAudit`). */
const TRANSITION_EVENT = 'transition';

/** systemd's default `RestartSec`: how soon a crashed Redis is back under `Restart=always`. */
const SYSTEMD_RESTART_DELAY_MS = 100;
/** Keys written before the scenarios, so a wiped data set shows in `DBSIZE`. */
const SEED_KEYS = 10_000;
/** Writes before a fault. */
const PRE_FAULT_WRITES_MS = 3_000;
/** (r3): writes between the `SAVE` and the crash, which the dump does not hold. */
const WRITES_AFTER_SAVE_MS = 2_000;
/** Writes kept flowing to the new master before the writer stops. */
const POST_TAKEOVER_WRITES_MS = 1_000;
/** Bounds (ms). */
const ELECTION_TIMEOUT_MS = 30_000;
const SEED_SYNC_TIMEOUT_MS = 30_000;
/** The guard acts "at once"; generous on a noisy machine. */
const GUARD_TIMEOUT_MS = 10_000;
const FAILOVER_TIMEOUT_MS = 30_000;
const REJOIN_TIMEOUT_MS = 45_000;
/** Watch a settled pair this long for unwanted changes. */
const STABILITY_WATCH_MS = 3_000;
const STEP_TIMEOUT_MS = 180_000;

const describeRoot = describeAsRoot('test/e2e/data-guard.test.ts');

/** What a node's Redis says about its history at one moment. */
interface RedisHistory {
  readonly role: string;
  readonly runId: string;
  readonly replId: string;
  readonly offset: number;
  readonly keys: number | null;
  /** Members of the writer's set, when one was asked for. */
  readonly setSize?: number;
}

/**
 * A node's run_id, replication id and offset, role and key count (and the size of the
 * writer's set `setKey`); `null` when its Redis is down.
 */
async function history(lab: PairLab, node: PairNode, setKey?: string): Promise<RedisHistory | null> {
  const redis = lab.redis(node);
  const [server, replication, keys] = await Promise.all([redis.info('server'), redis.info('replication'), redis.dbSize()]);
  if (!server || !replication) return null;
  const set = setKey === undefined ? {} : { setSize: (await lab.readFinalSet(node, setKey)).size };
  return {
    ...set,
    role: replication['role'] ?? '?',
    runId: server['run_id'] ?? '?',
    replId: replication['master_replid'] ?? '?',
    offset: Number(replication['master_repl_offset'] ?? NaN),
    keys,
  };
}

function describeHistory(h: RedisHistory | null): string {
  if (h === null) return 'down';
  const set = h.setSize === undefined ? '' : `, set ${h.setSize}`;
  return `${h.role} run ${h.runId.slice(0, 8)} repl ${h.replId.slice(0, 8)} offset ${h.offset}, ${h.keys ?? '?'} keys${set}`;
}

/** One audit record as a trail line: time after the fault, event, and what matters of it. */
function trailLine(record: AuditRecord, faultWall: number): string {
  const at = typeof record['time'] === 'string' ? `+${Math.round(Date.parse(record['time']) - faultWall)} ms` : '?';
  const event = String(record['event']);
  if (event === TRANSITION_EVENT) return `${at} ${event} ${String(record['from'])} -> ${String(record['to'])} (${String(record['reason'])})`;
  if (event === HISTORY_LOST_EVENT) {
    const { time: _time, node: _node, event: _event, ...data } = record;
    return `${at} ${event} ${JSON.stringify(data)}`;
  }
  return `${at} ${event}`;
}

/** What a failure message shows: the audits since `mark`, timed from `faultWall`, after `before`. */
interface TrailContext {
  readonly mark: Record<PairNode, number>;
  readonly faultWall: number;
  /** Both Redis histories just before the fault. */
  readonly before: string;
  /** The running writer's set, whose size the trail shows. */
  readonly setKey?: string;
}

/** Both audits since the fault, the VIP holders and both Redis histories, before and now. */
async function trail(lab: PairLab, context: TrailContext): Promise<string> {
  const lines: string[] = [`before the fault: ${context.before}`];
  for (const node of ['a', 'b'] as const) {
    const records = auditSince(lab, node, context.mark);
    lines.push(`${node}'s audit since the fault: ${records.length ? '' : '(none)'}`);
    for (const record of records) lines.push(`  ${trailLine(record, context.faultWall)}`);
  }
  let now: string;
  try {
    const [vip, a, b] = await Promise.all([lab.vipHolders(), history(lab, 'a', context.setKey), history(lab, 'b', context.setKey)]);
    now = `VIP on [${vip.join(',')}]; a: ${describeHistory(a)}; b: ${describeHistory(b)}`;
  } catch (error) {
    now = `status unavailable: ${String(error)}`;
  }
  lines.push(`now (+${Math.round(nowWallMs() - context.faultWall)} ms): ${now}`);
  return lines.join('\n');
}

/** `lab.waitFor`, its timeout message extended with the trail. */
async function waitWithTrail(
  lab: PairLab,
  context: TrailContext,
  description: string,
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
): Promise<number> {
  try {
    return await lab.waitFor(description, predicate, timeoutMs);
  } catch (error) {
    throw new Error(`${error instanceof Error ? error.message : String(error)}\n--- trail\n${await trail(lab, context)}`);
  }
}

/** Both histories in one line, for `TrailContext.before`. */
function describeBoth(histories: Record<PairNode, RedisHistory | null>): string {
  return `a: ${describeHistory(histories.a)}; b: ${describeHistory(histories.b)}`;
}

/** `node` is master with the VIP (the other may not replicate it yet). */
async function masterWithVip(lab: PairLab, node: PairNode): Promise<boolean> {
  return (await lab.vipHolders()).join() === node && (await lab.redisRole(node)) === 'master';
}

/** Writes `SEED_KEYS` keys on `master` and waits until its replica holds them too. */
async function seed(lab: PairLab, master: PairNode): Promise<void> {
  const script = "for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'ha:seed:' .. i, i) end return tonumber(ARGV[1])";
  await lab.redis(master).cli(['EVAL', script, '0', String(SEED_KEYS)]);
  const replica = PairLab.other(master);
  await lab.waitFor(
    `${replica} holding the ${SEED_KEYS} seed keys`,
    async () => ((await lab.redis(replica).dbSize()) ?? 0) >= SEED_KEYS,
    SEED_SYNC_TIMEOUT_MS,
  );
}

/**
 * Seeds again when the replica of `master` holds fewer than `SEED_KEYS` keys (an earlier
 * scenario of the chain lost them), so each scenario starts from a full data set.
 */
async function ensureSeeded(lab: PairLab, master: PairNode): Promise<void> {
  const keys = await lab.redis(PairLab.other(master)).dbSize();
  if ((keys ?? 0) >= SEED_KEYS) return;
  console.log(`re-seeding: ${PairLab.other(master)} holds ${keys ?? '?'} keys (an earlier scenario lost the data set)`);
  await seed(lab, master);
}

/** The master of the moment (the scenarios' victim): the settled master, waited for. */
async function settledMaster(lab: PairLab): Promise<PairNode> {
  let master: PairNode | null = null;
  await lab.waitFor(
    'one settled master (VIP on it alone, the other replicating it)',
    async () => {
      for (const node of ['a', 'b'] as const) {
        if (await lab.isSettledMaster(node)) {
          master = node;
          return true;
        }
      }
      return false;
    },
    REJOIN_TIMEOUT_MS,
  );
  if (master === null) throw new Error('no settled master');
  return master;
}

/** Acknowledged ops absent from `finalSet`. */
function lostOps(ops: readonly OpRecord[], finalSet: ReadonlySet<number>): OpRecord[] {
  return ops.filter((op) => op.outcome === 'ok' && !finalSet.has(op.value));
}

/** Lost ops as a short list for a message. */
function describeOps(ops: readonly OpRecord[], faultMs: number): string {
  return ops
    .slice(0, 10)
    .map((op) => `${op.value} (acknowledged at ${Math.round(op.endMs - faultMs)} ms from the fault)`)
    .join(', ');
}

/**
 * (r1), (r3): the master's Redis SIGKILLed and restarted by "systemd" 100 ms later,
 * empty or from the dump `SAVE`d `WRITES_AFTER_SAVE_MS` before, the writer running.
 */
async function crashRestartScenario(lab: PairLab, name: string, data: LabRedisRestartData): Promise<void> {
  const victim = await settledMaster(lab);
  const peer = PairLab.other(victim);
  await ensureSeeded(lab, victim);
  const cameBackAs = data === 'empty' ? 'empty' : 'from an older dump';
  const writer = await startWriting(lab);
  let result: WriterResult | null = null;
  try {
    const key = writer.meta()?.key;
    if (key === undefined) throw new Error('the writer has not reported its key');
    await sleep(PRE_FAULT_WRITES_MS);
    let saved: RedisHistory | null = null;
    if (data === 'dump') {
      await lab.redis(victim).save();
      saved = await history(lab, victim, key);
      await sleep(WRITES_AFTER_SAVE_MS);
    }
    const before = { a: await history(lab, 'a', key), b: await history(lab, 'b', key) };
    const peerSetBefore = before[peer]?.setSize ?? 0;
    const context: TrailContext = { mark: auditMark(lab), faultWall: nowWallMs(), before: describeBoth(before), setKey: key };
    const restart = await lab.crashRestartRedis(victim, { delayMs: SYSTEMD_RESTART_DELAY_MS, data, replicaOf: null });
    const cameBack = await history(lab, victim, key);
    const takeoverMs = await waitWithTrail(
      lab,
      context,
      `${peer} master with the VIP after ${victim}'s Redis came back ${cameBackAs}`,
      () => masterWithVip(lab, peer),
      FAILOVER_TIMEOUT_MS,
    );
    const takeoverWall = nowWallMs();
    await waitWithTrail(
      lab,
      context,
      `${victim}'s Redis replicating ${peer}, the VIP on ${peer} alone`,
      () => lab.isSettledMaster(peer),
      REJOIN_TIMEOUT_MS,
    );
    await sleep(POST_TAKEOVER_WRITES_MS);
    result = await writer.stop();
    const finalSet = await lab.readFinalSet(peer, key);
    const peerAfter = await history(lab, peer);
    const faultMs = context.faultWall - result.meta.startWallMs;
    const takeoverWriterMs = takeoverWall - result.meta.startWallMs;
    const report = analyseSetTest(result.ops, finalSet);
    const window = unavailabilityWindow(result.ops, faultMs);
    const ackedLastSecond = acknowledgedBetween(result.ops, faultMs - REPLICATION_LAG_ALLOWANCE_MS, faultMs);
    const lost = lostOps(result.ops, finalSet);
    // Acknowledged before the replication window that precedes the kill: the peer had them.
    const lostBeforeWindow = lost.filter((op) => op.endMs < faultMs - REPLICATION_LAG_ALLOWANCE_MS);
    const lostInWindow = lost.filter((op) => op.endMs >= faultMs - REPLICATION_LAG_ALLOWANCE_MS && op.endMs <= faultMs);
    // Acknowledged by the restarted server before its daemon acted: it had no replica.
    const lostBetween = lost.filter((op) => op.endMs > faultMs && op.startMs < takeoverWriterMs);
    const lostAfterTakeover = lost.filter((op) => op.startMs >= takeoverWriterMs);
    const victimRecords = auditSince(lab, victim, context.mark);
    const historyLost = events(victimRecords, HISTORY_LOST_EVENT);
    const trailText = await trail(lab, context);
    console.log(
      `(${name}) ${victim}'s Redis SIGKILLed, back ${cameBackAs} after ${fmt(restart.readyMs)} ` +
        `(exit ${fmt(restart.exitedMs)}, spawn ${fmt(restart.spawnedMs)})` +
        (saved ? `; dump saved at offset ${saved.offset} with ${saved.keys ?? '?'} keys, set ${saved.setSize ?? '?'}` : '') +
        `; ${victim} came back: ${describeHistory(cameBack)}; ${peer}'s set before ${peerSetBefore}, after ${finalSet.size}` +
        `; ${peer}'s keys before ${before[peer]?.keys ?? '?'}, after ${peerAfter?.keys ?? '?'}` +
        `; ${peer} master with the VIP after ${fmt(takeoverMs)}; fault -> first ok ${fmt(window.faultToFirstOkMs)}, ` +
        `write gap ${fmt(window.windowMs)}; attempted ${report.attempted}, acknowledged ${report.acknowledged}, ` +
        `failed ${report.failed}, unknown ${report.unknown}; LOST ${report.lost.length}: ${lostBeforeWindow.length} before ` +
        `the last second, ${lostInWindow.length} in it (acknowledged in it: ${ackedLastSecond}), ${lostBetween.length} ` +
        `between the kill and the takeover, ${lostAfterTakeover.length} after; ${HISTORY_LOST_EVENT} audited by ${victim}: ` +
        `${historyLost.length}\n${trailText}`,
    );
    // The peer's data is not wiped: keys are only ever added, and the seed is there.
    expect(peerAfter?.keys ?? 0, `${peer}'s key count fell (wiped by a resync?)\n${trailText}`).toBeGreaterThanOrEqual(
      Math.max(SEED_KEYS, before[peer]?.keys ?? 0),
    );
    expect(finalSet.size, `${peer}'s set shrank\n${trailText}`).toBeGreaterThanOrEqual(peerSetBefore);
    expect(
      lostBeforeWindow.map((op) => op.value),
      `writes acknowledged before the last second before the kill were lost: ${describeOps(lostBeforeWindow, faultMs)}\n${trailText}`,
    ).toEqual([]);
    expect(
      lostAfterTakeover.map((op) => op.value),
      `writes acknowledged after ${peer} took over were lost: ${describeOps(lostAfterTakeover, faultMs)}\n${trailText}`,
    ).toEqual([]);
    expect(window.firstOkAfter, `no write acknowledged after the kill\n${trailText}`).not.toBeNull();
    // Item 1: the master's daemon saw its Redis die (or come back without its data) and left the role.
    expect(
      events(victimRecords, TRANSITION_EVENT).some((r) => r['from'] === 'MASTER' && r['to'] === 'FAULT'),
      `${victim}'s audit has no transition MASTER -> FAULT\n${trailText}`,
    ).toBe(true);
    expect(report.unexpected).toEqual([]);
    expect(failedButPresent(result.ops, finalSet)).toEqual([]);
    await expectStableMaster(lab, peer, STABILITY_WATCH_MS);
    // The node that lost its data replicates the new master and has the data back.
    await waitWithTrail(
      lab,
      context,
      `${victim}'s Redis holding ${peer}'s keys and set`,
      async () =>
        (await lab.redis(victim).dbSize()) === peerAfter?.keys && (await lab.readFinalSet(victim, key)).size === finalSet.size,
      REJOIN_TIMEOUT_MS,
    );
  } finally {
    if (result === null) await writer.stop().catch(() => undefined);
  }
}

/**
 * (r2): the history guard alone. The replica's Redis cannot reach the master's (so it
 * cannot resync from it whatever the daemons do); the master's Redis is SIGKILLed and
 * restarted empty at once, faster than any health check.
 */
async function historyGuardScenario(lab: PairLab): Promise<void> {
  const victim = await settledMaster(lab);
  const peer = PairLab.other(victim);
  await ensureSeeded(lab, victim);
  const before = { a: await history(lab, 'a'), b: await history(lab, 'b') };
  const victimBefore = before[victim];
  const peerBefore = before[peer];
  if (victimBefore === null || peerBefore === null) throw new Error('a Redis is down before the fault');
  await lab.blockReplication(peer);
  const context: TrailContext = { mark: auditMark(lab), faultWall: nowWallMs(), before: describeBoth(before) };
  const victimAudit = (event: string): AuditRecord[] => events(auditSince(lab, victim, context.mark), event);
  let restartMs: number;
  let cameBack: RedisHistory | null;
  let guardMs: number;
  let faultStateMs: number;
  let takeoverMs: number;
  try {
    restartMs = (await lab.crashRestartRedis(victim, { delayMs: 0, data: 'empty', replicaOf: null })).readyMs;
    cameBack = await history(lab, victim);
    guardMs = await waitWithTrail(
      lab,
      context,
      `${HISTORY_LOST_EVENT} in ${victim}'s audit`,
      () => victimAudit(HISTORY_LOST_EVENT).length > 0,
      GUARD_TIMEOUT_MS,
    );
    faultStateMs = await waitWithTrail(
      lab,
      context,
      `${victim}'s daemon FAULT (it was MASTER when its Redis lost its data)`,
      () => victimAudit(TRANSITION_EVENT).some((r) => r['from'] === 'MASTER' && r['to'] === 'FAULT'),
      GUARD_TIMEOUT_MS,
    );
    takeoverMs = await waitWithTrail(lab, context, `${peer} master with the VIP`, () => masterWithVip(lab, peer), FAILOVER_TIMEOUT_MS);
  } finally {
    await lab.unblockReplication(peer);
  }
  const settleMs = await waitWithTrail(
    lab,
    context,
    `${victim}'s Redis replicating ${peer}, the VIP on ${peer} alone`,
    () => lab.isSettledMaster(peer),
    REJOIN_TIMEOUT_MS,
  );
  await waitWithTrail(
    lab,
    context,
    `${victim}'s daemon BACKUP after FAULT`,
    () => {
      const toStates = victimAudit(TRANSITION_EVENT).map((r) => r['to']);
      return toStates.includes('FAULT') && toStates.lastIndexOf('BACKUP') > toStates.indexOf('FAULT');
    },
    REJOIN_TIMEOUT_MS,
  );
  const peerAfter = await history(lab, peer);
  await waitWithTrail(
    lab,
    context,
    `${victim}'s Redis holding ${peer}'s ${peerAfter?.keys ?? '?'} keys`,
    async () => (await lab.redis(victim).dbSize()) === peerAfter?.keys,
    REJOIN_TIMEOUT_MS,
  );
  const victimAfter = await history(lab, victim);
  const recordText = JSON.stringify(victimAudit(HISTORY_LOST_EVENT)[0]);
  const trailText = await trail(lab, context);
  console.log(
    `(r2) ${victim}'s Redis SIGKILLed with ${peer}'s replication blocked, back empty after ${fmt(restartMs)}: ` +
      `${HISTORY_LOST_EVENT} ${fmt(guardMs)}, FAULT ${fmt(faultStateMs)}, ${peer} master with the VIP ${fmt(takeoverMs)} ` +
      `after the fault; settled ${fmt(settleMs)} after the unblock; ${victim} came back: ${describeHistory(cameBack)}, ` +
      `after: ${describeHistory(victimAfter)}; ${peer}'s keys before ${peerBefore.keys ?? '?'}, after ${peerAfter?.keys ?? '?'}\n${trailText}`,
  );
  // Both histories audited: the run ids before and after the restart.
  expect(recordText, `${HISTORY_LOST_EVENT} lacks the run id before the restart\n${trailText}`).toContain(victimBefore.runId);
  if (cameBack !== null) expect(recordText, `${HISTORY_LOST_EVENT} lacks the new run id\n${trailText}`).toContain(cameBack.runId);
  expect(peerAfter?.keys ?? 0, `${peer}'s key count fell (wiped by a resync?)\n${trailText}`).toBeGreaterThanOrEqual(
    Math.max(SEED_KEYS, peerBefore.keys ?? 0),
  );
  expect(
    events(auditSince(lab, peer, context.mark), TRANSITION_EVENT).some((r) => r['to'] === 'MASTER'),
    `${peer}'s audit has no transition to MASTER\n${trailText}`,
  ).toBe(true);
  await expectStableMaster(lab, peer, STABILITY_WATCH_MS);
}

describeRoot('e2e data guard G1, quorum etcd: a Redis restarted empty or from an older dump never wipes its peer', () => {
  let lab: PairLab;

  beforeAll(async () => {
    requireBuild();
    lab = await startPair({ tag: 'rhg1', subnet: '10.77.231', profile: 'default', quorum: { backend: 'etcd' } });
    await lab.waitFor('A settled as master', () => lab.isSettledMaster('a'), ELECTION_TIMEOUT_MS);
    await seed(lab, 'a');
  });

  afterAll(async () => {
    await lab?.teardown();
  });

  it('(r1) the master\'s Redis SIGKILLed and restarted empty 100 ms later: the peer takes over with its data, the victim becomes its replica', { timeout: STEP_TIMEOUT_MS }, async () => {
    await crashRestartScenario(lab, 'r1 etcd', 'empty');
  });

  it('(r2) the history guard alone: a master\'s Redis back empty at once, its replica unable to resync, is audited, FAULT, and the peer takes over with its data', { timeout: STEP_TIMEOUT_MS }, async () => {
    await historyGuardScenario(lab);
  });

  it('(r3) the master\'s Redis restarted from an older dump 100 ms after a SIGKILL: the peer takes over with its data, the victim becomes its replica', { timeout: STEP_TIMEOUT_MS }, async () => {
    await crashRestartScenario(lab, 'r3 etcd', 'dump');
  });
});

/** The pair without a quorum, as the daemon defaults. */
const NO_QUORUM: LabQuorum = { backend: 'none', prefer: 'availability' };

describeRoot('e2e data guard G2, quorum none (availability): a Redis restarted empty never wipes its peer', () => {
  let lab: PairLab;

  beforeAll(async () => {
    requireBuild();
    lab = await startPair({ tag: 'rhg2', subnet: '10.77.232', profile: 'default', quorum: NO_QUORUM });
    await lab.waitFor('A settled as master', () => lab.isSettledMaster('a'), ELECTION_TIMEOUT_MS);
    await seed(lab, 'a');
  });

  afterAll(async () => {
    await lab?.teardown();
  });

  it('(r1) the master\'s Redis SIGKILLed and restarted empty 100 ms later: the peer takes over with its data, the victim becomes its replica', { timeout: STEP_TIMEOUT_MS }, async () => {
    await crashRestartScenario(lab, 'r1 none', 'empty');
  });
});
