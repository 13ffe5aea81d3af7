/**
 * The benchmark runner. One run = one setup × one fault on a fresh pair lab:
 *
 *   build the lab (Redis a master, b replica, no daemons; the driver's `labOptions`,
 *   e.g. the etcd witness on c)
 *   -> driver.start (VIP on a, b replicating a)
 *   -> state samplers in a and b, the set writer in c, warm-up
 *   -> fault (timed faults: wait, then heal)
 *   -> observe until writes flow and the sampled state has not changed for
 *      `STABLE_MS`, but at least the setup's `minObserveMs`, at most `observeBoundMs`
 *   -> repair (restart Redis, restore the link, SIGCONT), bounded settle wait for a
 *      healthy pair (one master, one replica of it, VIP on the master only)
 *   -> stop the writer, read the final set from the master the client reaches
 *   -> driver.stop, teardown (also on failure and on SIGINT/SIGTERM via the cleanup
 *      registry).
 *
 * A setup that never recovers, never settles, or fails to start is a result, not a
 * crash: the run is recorded with what was measured and why it stopped.
 */
import { cpus, totalmem } from 'node:os';
import { registerCleanup } from '../lab/netns.js';
import { nowWallMs, startPair, type PairLab, type PairNode, type WriterHandle, type WriterResult } from '../lab/pair.js';
import { parseFinalSet } from '../lab/analysis.js';
import { faultUnsupported, injectFault, lossSupportProbe, type ActiveFault } from './faults.js';
import {
  analyseTimeline,
  analyseWrites,
  finalMaster,
  measureFootprint,
  sampledStateSince,
  StateSampler,
  stepDownAfterContinue,
  vipClaimAfterPromotion,
  type FootprintResult,
  type TimelineEntry,
  type VipClaimFigures,
} from './measure.js';
import type { RegisteredSetup } from './registry.js';
import type { FaultName } from './setup.js';
import { errorMessage } from '../../src/errors.js';

/** Every fault is injected on the master the setup elected at start-up. */
const FAULTED_MASTER: PairNode = 'a';
/** Lab tag and subnet of benchmark runs (one lab at a time). */
export const BENCH_TAG = 'rhbench';
export const BENCH_SUBNET = '10.77.60';
/** Writes before the fault. */
export const WARMUP_MS = 3_000;
/**
 * The fault comes after the warm-up plus a random part of this: the daemons' timers (health
 * checks every 500 ms, adverts every second) start with the lab, so a fixed warm-up would
 * inject every run at nearly the same phase of them and report one point of the spread as
 * its median (a hang measured 0.95-1.09 s of a 0.6-1.1 s range so).
 */
export const FAULT_PHASE_SPREAD_MS = 1_000;
/** The sampled state must not have changed for this long to call the pair stable. */
export const STABLE_MS = 2_000;
/** Writes count as flowing when the latest acknowledged one is at most this old. */
export const FLOWING_MS = 750;
/** Observation poll period. */
const POLL_MS = 100;
/** Bound on a driver's start (they bound themselves at 60 s). */
const START_BOUND_MS = 75_000;
/** Settle bound after faults nothing repairs (daemon-kill, switchover). */
const UNREPAIRED_SETTLE_MS = 10_000;
/** Writes kept flowing after the pair settled, before the writer stops. */
const LINGER_MS = 1_000;
/** Bound on the writer's first progress line. */
const WRITER_START_MS = 15_000;
/** Steady-state interval of the footprint measurement. */
export const FOOTPRINT_MS = 60_000;
/** Longest error text kept in a result. */
const ERROR_TEXT_MAX = 4_000;

/** Every figure of one run (ms unless named otherwise); `null` = could not be measured. */
export interface RunFigures {
  /** Driver start until the pair was settled. */
  readonly startMs: number;
  /** Fault → first change of VIP or roles seen by the sampler (a Redis going down excluded). */
  readonly detectionMs: number | null;
  /** Writes were flowing when the fault phase ended. */
  readonly recovered: boolean;
  readonly windowMs: number | null;
  readonly faultToFirstOkMs: number | null;
  readonly longestGapMs: number | null;
  readonly unavailableMs: number | null;
  readonly repairUnavailableMs: number | null;
  readonly attempted: number;
  readonly acknowledged: number;
  readonly failed: number;
  readonly unknown: number;
  readonly unknownApplied: number;
  readonly lost: number | null;
  readonly lostAfterRecovery: number | null;
  readonly unexpected: number | null;
  readonly failedApplied: number | null;
  /**
   * The client's connections (one, or `--connections`): how many the fault interrupted,
   * and fault → the first good write of the last one back (median over them too).
   * Absent in results taken before the pool was measured.
   */
  readonly clientsInterrupted?: number;
  readonly clientsRecovered?: number;
  readonly clientsBackMedianMs?: number | null;
  readonly clientsBackMaxMs?: number | null;
  /**
   * Both Redis writable masters / both hosts with the VIP / no VIP, during the fault
   * phase: from the fault to the repair, or to the end of the run when there is none.
   */
  readonly dualMasterMs: number;
  readonly dualVipMs: number;
  readonly noVipMs: number;
  /** The same during the repair and settle phase (`null` without a repair). */
  readonly repairDualMasterMs: number | null;
  readonly repairDualVipMs: number | null;
  /** The pair ended healthy within the settle bound. */
  readonly healthyAtEnd: boolean;
  /** Repair (or end of observation) → healthy, or `null` when it never got there. */
  readonly settleMs: number | null;
  /** Fault → end of the observation (the fault phase itself lasts until the repair, or the end of the run). */
  readonly observedMs: number;
  /**
   * Both Redis writable masters / both hosts with the VIP from the heal of a timed
   * fault (partition and loss healed, a stalled daemon continued) to the end of the
   * run; absent for other faults (and in results taken before these were measured).
   */
  readonly afterHealDualMasterMs?: number;
  readonly afterHealDualVipMs?: number;
  /** `daemon-stall` only (see `StepDownFigures`); `stepDownMs` only for setups that record their role changes. */
  readonly stepDownMs?: number | null;
  readonly oldMasterOutMs?: number | null;
  /**
   * The first takeover's VIP claim (see `VipClaimFigures`), for setups that record
   * their role changes (redis-ha), in every run where a node took over.
   */
  readonly vipClaimNode?: PairNode;
  readonly vipClaimFrom?: VipClaimFigures['vipClaimFrom'];
  readonly vipClaimMs?: number | null;
  readonly vipClaimRecordMs?: number | null;
}

/** One run's result. */
export interface RunResult {
  readonly setup: string;
  readonly fault: FaultName;
  readonly run: number;
  readonly status: 'ok' | 'unsupported' | 'error';
  /** Why unsupported, or what failed. */
  readonly reason?: string;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly faultDescription?: string;
  readonly repairDescription?: string;
  readonly figures: RunFigures | null;
  /** Where the final set was read from and why. */
  readonly finalMaster?: string | null;
  /** VIP holders and roles at the very end. */
  readonly endState?: { readonly vip: string; readonly a: string; readonly b: string };
  readonly lostSample?: readonly number[];
  /** Sampled state changes, ms relative to the fault. */
  readonly timeline?: readonly TimelineEntry[];
  readonly notes: readonly string[];
}

/** Options of one run. */
export interface RunOptions {
  readonly setup: RegisteredSetup;
  readonly fault: FaultName;
  /** 1-based run number. */
  readonly run: number;
  readonly tag?: string;
  readonly subnet?: string;
  readonly warmupMs?: number;
  /** The client's connections (default one, not pipelined). */
  readonly clients?: WriterPool;
  /** Progress lines (default: none). */
  readonly log?: (line: string) => void;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function errorText(error: unknown): string {
  const text = errorMessage(error);
  return text.length > ERROR_TEXT_MAX ? `${text.slice(0, ERROR_TEXT_MAX)}...` : text;
}

/** Rejects after `ms` with `what` unless `promise` settles first. */
async function bounded<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    if (timer) clearTimeout(timer);
  }
}

/** Whether the writer has acknowledged a write within `FLOWING_MS`. */
function writesFlowing(writer: WriterHandle): boolean {
  const progress = writer.progress();
  if (!progress || progress.lastOkMs === null || writer.meta() === null) return false;
  return writer.toWriterMs(nowWallMs()) - progress.lastOkMs <= FLOWING_MS;
}

/**
 * Watches from `fromWallMs` until writes flow and the sampled state has been stable
 * for `STABLE_MS`, no sooner than `minMs` and no later than `boundMs` after it.
 * Resolves with whether writes were flowing at the end.
 */
async function observe(writer: WriterHandle, sampler: StateSampler, fromWallMs: number, minMs: number, boundMs: number): Promise<boolean> {
  const deadline = fromWallMs + boundMs;
  for (let i = 0; i < Math.ceil(boundMs / POLL_MS) + 10; i++) {
    const now = nowWallMs();
    const since = sampledStateSince(sampler.samples());
    const stable = since !== null && now - since >= STABLE_MS;
    if (now - fromWallMs >= minMs && stable && writesFlowing(writer)) return true;
    if (now >= deadline) break;
    await sleep(Math.min(POLL_MS, Math.max(0, deadline - now)));
  }
  return writesFlowing(writer);
}

/** Whether the pair is healthy: one master holding the VIP alone, the other replicating it. */
async function pairHealthy(lab: PairLab): Promise<PairNode | null> {
  for (const node of ['a', 'b'] as const) {
    if (await lab.isSettledMaster(node)) return node;
  }
  return null;
}

/** Runs one setup × fault on a fresh lab; never throws for a setup's misbehaviour. */
export async function runOne(options: RunOptions): Promise<RunResult> {
  const { setup, fault, run } = options;
  const log = options.log ?? (() => {});
  const startedAt = new Date();
  const base = { setup: setup.name, fault, run, startedAt: startedAt.toISOString() };
  const elapsed = (): number => Date.now() - startedAt.getTime();
  const driver = setup.driver;
  if (!driver) {
    return { ...base, status: 'unsupported', reason: `setup unavailable: ${setup.unavailable ?? 'not loaded'}`, durationMs: 0, figures: null, notes: [] };
  }
  if (!driver.supports.includes(fault) || (fault === 'switchover' && !driver.switchover)) {
    return { ...base, status: 'unsupported', reason: `${driver.name} does not support ${fault}`, durationMs: 0, figures: null, notes: [] };
  }
  const notes: string[] = [];
  let lab: PairLab | null = null;
  let sampler: StateSampler | null = null;
  let writer: WriterHandle | null = null;
  let active: ActiveFault | null = null;
  let driverStarted = false;
  const unregister: Array<() => void> = [];
  let phase = 'building the lab';
  try {
    lab = await startPair({ tag: options.tag ?? BENCH_TAG, subnet: options.subnet ?? BENCH_SUBNET, startDaemons: false, ...driver.labOptions });
    const theLab = lab;
    const unsupported = await faultUnsupported(fault, driver, theLab);
    if (unsupported) return { ...base, status: 'unsupported', reason: unsupported, durationMs: elapsed(), figures: null, notes };
    if (fault === 'loss') notes.push(`loss via ${lossSupportProbe()?.reason ?? 'nftables'}`);

    phase = `starting ${driver.name}`;
    unregister.push(registerCleanup(() => driver.stop(theLab)));
    driverStarted = true;
    const startBegan = Date.now();
    await bounded(driver.start(theLab), START_BOUND_MS, `${driver.name} start`);
    const startMs = Date.now() - startBegan;
    log(`  ${driver.name} settled in ${(startMs / 1000).toFixed(1)} s`);

    phase = 'warm-up';
    sampler = StateSampler.start(theLab);
    const theWriter = theLab.startWriter(options.clients ?? {});
    writer = theWriter;
    await theLab.waitFor('the writer to start', () => theWriter.progress() !== null, WRITER_START_MS);
    await sleep((options.warmupMs ?? WARMUP_MS) + Math.floor(Math.random() * FAULT_PHASE_SPREAD_MS));
    if (!writesFlowing(theWriter)) notes.push('writes were not flowing at the end of the warm-up');

    phase = `injecting ${fault}`;
    active = await injectFault(fault, theLab, driver, FAULTED_MASTER);
    const theFault = active;
    unregister.push(registerCleanup(() => theFault.cleanup()));
    const faultWall = active.injectedWallMs;
    log(`  fault: ${active.description}`);

    phase = 'observing the fault';
    let observeFrom = faultWall;
    // When a timed fault was healed (for a stalled daemon: the SIGCONT, which takes effect as the call returns).
    let healWall: number | null = null;
    if (active.durationMs !== null && active.repair) {
      await sleep(Math.max(0, faultWall + active.durationMs - nowWallMs()));
      await active.repair.run();
      healWall = nowWallMs();
      observeFrom = healWall;
      notes.push(`${active.repair.description} after ${(active.durationMs / 1000).toFixed(0)} s`);
    }
    const recovered = await observe(theWriter, sampler, observeFrom, setup.bounds.minObserveMs, setup.bounds.observeBoundMs);
    const observeEndWall = nowWallMs();
    if (!recovered) notes.push(`writes not flowing ${(setup.bounds.observeBoundMs / 1000).toFixed(0)} s after the fault${active.durationMs !== null ? "'s heal" : ''}`);

    let repairWall: number | null = null;
    if (active.durationMs === null && active.repair) {
      phase = `repair: ${active.repair.description}`;
      repairWall = nowWallMs();
      await active.repair.run();
    }

    phase = 'settling';
    const settleFrom = repairWall ?? observeEndWall;
    // Without a repair the setup had its whole observation to heal on its own; a short
    // extra wait is enough to tell whether it did.
    const settleBoundMs = active.repair ? setup.bounds.settleBoundMs : Math.min(setup.bounds.settleBoundMs, UNREPAIRED_SETTLE_MS);
    let settleMs: number | null = null;
    try {
      await theLab.waitFor(
        'a healthy pair with writes flowing',
        async () => (await pairHealthy(theLab)) !== null && writesFlowing(theWriter),
        settleBoundMs,
        250,
      );
      settleMs = nowWallMs() - settleFrom;
    } catch {
      notes.push(`not healthy ${(settleBoundMs / 1000).toFixed(0)} s after ${repairWall !== null ? 'the repair' : 'the observation'}`);
    }
    await sleep(LINGER_MS);
    const endWall = nowWallMs();
    // Without a repair, whatever the fault left (a VIP on both hosts, two masters) lasts
    // to the end of the run and is counted to the end.
    const faultPhaseEndWall = repairWall ?? endWall;

    phase = 'collecting';
    const roleRecords = driver.roleRecords?.(theLab) ?? null;
    const status = await theLab.status();
    const endState = { vip: status.vipHolders.join('+') || '-', a: status.roles.a, b: status.roles.b };
    await sampler.stop();
    const result: WriterResult = await theWriter.stop();
    writer = null;
    const master = await finalMaster(theLab);
    if (master.why.startsWith('both masters')) notes.push(master.why);
    let finalSet: Set<number> | null = null;
    if (master.node !== null) {
      finalSet = parseFinalSet(await theLab.redis(master.node).smembers(result.meta.key));
    } else {
      notes.push(master.why);
    }
    const toWriter = (wall: number): number => wall - result.meta.startWallMs;
    const writes = analyseWrites(result.ops, finalSet, {
      faultMs: toWriter(faultWall),
      faultPhaseEndMs: toWriter(faultPhaseEndWall),
      repairMs: repairWall === null ? null : toWriter(repairWall),
      endMs: toWriter(endWall),
    });
    const samples = sampler.samples();
    const faultPhase = analyseTimeline(samples, faultWall, faultWall, faultPhaseEndWall);
    const repairPhase = repairWall === null ? null : analyseTimeline(samples, faultWall, repairWall, endWall);
    const whole = analyseTimeline(samples, faultWall, faultWall - 1_000, endWall);
    const afterHeal = healWall === null ? null : analyseTimeline(samples, faultWall, healWall, endWall);
    const stepDown = fault === 'daemon-stall' && healWall !== null
      ? stepDownAfterContinue(samples, roleRecords, FAULTED_MASTER, faultWall, healWall)
      : null;
    const vipClaim = roleRecords === null ? null : vipClaimAfterPromotion(samples, roleRecords, faultWall);
    if (vipClaim && vipClaim.vipClaimMs === null) notes.push(`${vipClaim.vipClaimNode} took over but the VIP was never sampled on it`);
    notes.push(...active.notes);
    const { lostSample, ...writeFigures } = writes;
    const figures: RunFigures = {
      startMs,
      detectionMs: faultPhase.detectionMs,
      recovered,
      ...writeFigures,
      dualMasterMs: faultPhase.dualMasterMs,
      dualVipMs: faultPhase.dualVipMs,
      noVipMs: faultPhase.noVipMs,
      repairDualMasterMs: repairPhase?.dualMasterMs ?? null,
      repairDualVipMs: repairPhase?.dualVipMs ?? null,
      healthyAtEnd: settleMs !== null,
      settleMs,
      observedMs: observeEndWall - faultWall,
      ...(afterHeal ? { afterHealDualMasterMs: afterHeal.dualMasterMs, afterHealDualVipMs: afterHeal.dualVipMs } : {}),
      ...stepDown,
      ...vipClaim,
    };
    return {
      ...base,
      status: 'ok',
      durationMs: elapsed(),
      faultDescription: active.description,
      ...(active.repair ? { repairDescription: active.repair.description } : {}),
      figures,
      finalMaster: master.node,
      endState,
      lostSample,
      timeline: whole.timeline,
      notes,
    };
  } catch (error) {
    return { ...base, status: 'error', reason: `${phase}: ${errorText(error)}`, durationMs: elapsed(), figures: null, notes };
  } finally {
    if (writer) await writer.stop().catch(() => undefined);
    if (active) await active.cleanup().catch(() => undefined);
    if (sampler) await sampler.stop().catch(() => undefined);
    if (lab && driverStarted) await driver.stop(lab).catch((error: unknown) => log(`  ${driver.name} stop failed: ${errorText(error)}`));
    for (const fn of unregister.reverse()) fn();
    if (lab) await lab.teardown();
  }
}

/** Footprint of one setup in steady state on a fresh lab (writer running). */
export async function runFootprint(
  setup: RegisteredSetup,
  options: { intervalMs?: number; tag?: string; subnet?: string; log?: (line: string) => void } = {},
): Promise<FootprintResult> {
  const intervalMs = options.intervalMs ?? FOOTPRINT_MS;
  const driver = setup.driver;
  if (!driver) return { setup: setup.name, intervalMs, hosts: [], error: `setup unavailable: ${setup.unavailable ?? 'not loaded'}` };
  let lab: PairLab | null = null;
  let writer: WriterHandle | null = null;
  let driverStarted = false;
  const unregister: Array<() => void> = [];
  try {
    lab = await startPair({ tag: options.tag ?? BENCH_TAG, subnet: options.subnet ?? BENCH_SUBNET, startDaemons: false, ...driver.labOptions });
    const theLab = lab;
    unregister.push(registerCleanup(() => driver.stop(theLab)));
    driverStarted = true;
    await bounded(driver.start(theLab), START_BOUND_MS, `${driver.name} start`);
    const theWriter = theLab.startWriter();
    writer = theWriter;
    await theLab.waitFor('the writer to start', () => theWriter.progress() !== null, WRITER_START_MS);
    await sleep(WARMUP_MS);
    options.log?.(`  measuring ${driver.name} for ${intervalMs / 1000} s`);
    const hosts = await measureFootprint(theLab, (host) => driver.daemonPids(theLab, host), intervalMs);
    return { setup: setup.name, intervalMs, hosts };
  } catch (error) {
    return { setup: setup.name, intervalMs, hosts: [], error: errorText(error) };
  } finally {
    if (writer) await writer.stop().catch(() => undefined);
    if (lab && driverStarted) await driver.stop(lab).catch(() => undefined);
    for (const fn of unregister.reverse()) fn();
    if (lab) await lab.teardown();
  }
}

/** What the whole benchmark produced. */
export interface BenchResults {
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly durationMs: number;
  readonly machine: { readonly cpus: number; readonly memoryMiB: number; readonly node: string; readonly kernel: string };
  readonly options: { readonly setups: readonly string[]; readonly faults: readonly FaultName[]; readonly runs: number; readonly footprint: boolean };
  readonly setups: ReadonlyArray<{ readonly name: string; readonly description: string; readonly available: boolean; readonly unavailable?: string }>;
  readonly runs: readonly RunResult[];
  readonly footprints: readonly FootprintResult[];
  /** Set when the benchmark was interrupted. */
  readonly interrupted?: string;
  /** Set by `merge.ts`: which result files this report combines. */
  readonly merged?: string;
}

/** Options of the whole benchmark. */
export interface BenchOptions {
  readonly setups: readonly RegisteredSetup[];
  readonly faults: readonly FaultName[];
  readonly runs: number;
  readonly footprint: boolean;
  readonly footprintMs?: number;
  readonly log?: (line: string) => void;
  /** Called after every run with the results so far (partial results on interruption). */
  readonly onProgress?: (results: BenchResults) => void;
  /** Labs run at once (default 1); see {@link planLanes}. */
  readonly lanes?: number;
  /** The client's connections in every run (default one). */
  readonly clients?: WriterPool;
}

/** How the bench's client writes: `connections` independent clients, every second one sending `pipeline` SADDs at once. */
export interface WriterPool {
  readonly connections: number;
  readonly pipeline: number;
  /** The client's command and connect timeout (the writer's default, 250 ms, when absent). */
  readonly timeoutMs?: number;
}

/**
 * Setups whose time is spent in their own blind sleeps rather than on the CPU (the
 * classic keepalived recipe sleeps ~25 s per role change), so they can share the
 * machine with another lab without their figures changing.
 */
const SLEEP_BOUND_SETUPS: ReadonlySet<string> = new Set(['keepalived-classic']);

/**
 * Splits the setups into at most `lanes` sequences that run in parallel, each on its own
 * lab: sleep-bound setups get their own lanes, everything else shares lane 0, so
 * timing-sensitive setups never run beside each other. Pure; order within a lane kept.
 */
export function planLanes<T extends { readonly name: string }>(setups: readonly T[], lanes: number): T[][] {
  if (lanes <= 1) return [[...setups]];
  const main = setups.filter((s) => !SLEEP_BOUND_SETUPS.has(s.name));
  const slow = setups.filter((s) => SLEEP_BOUND_SETUPS.has(s.name));
  const extra: T[][] = Array.from({ length: Math.max(0, Math.min(lanes - 1, slow.length)) }, () => []);
  slow.forEach((s, i) => (extra.length ? extra[i % extra.length]!.push(s) : main.push(s)));
  return [main, ...extra].filter((lane) => lane.length > 0);
}

/** Lab tag and subnet of lane `i` (lane 0 is the historical `rhbench` lab). */
function laneLab(i: number): { tag: string; subnet: string } {
  if (i === 0) return { tag: BENCH_TAG, subnet: BENCH_SUBNET };
  const [x, y, z] = BENCH_SUBNET.split('.');
  return { tag: `${BENCH_TAG}${i}`, subnet: `${x}.${y}.${Number(z) + 10 * i}` };
}

/** Setups whose footprint is worth the 60 s (redis-ha-etcd: the daemons and the etcd witness). */
const FOOTPRINT_SETUPS = new Set(['redis-ha', 'redis-ha-etcd', 'redis-ha-fast', 'keepalived-classic', 'sentinel']);

/** Runs the matrix (setup-major, then fault, then run number), then the footprints. */
export async function runBench(options: BenchOptions, kernel: string): Promise<BenchResults> {
  const log = options.log ?? (() => {});
  const started = new Date();
  const runs: RunResult[] = [];
  const footprints: FootprintResult[] = [];
  const snapshot = (): BenchResults => ({
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    durationMs: Date.now() - started.getTime(),
    machine: { cpus: cpus().length, memoryMiB: Math.round(totalmem() / 1024 / 1024), node: process.version, kernel },
    options: { setups: options.setups.map((s) => s.name), faults: [...options.faults], runs: options.runs, footprint: options.footprint },
    setups: options.setups.map((s) => ({
      name: s.name,
      description: s.driver?.description ?? '',
      available: s.driver !== null,
      ...(s.unavailable ? { unavailable: s.unavailable } : {}),
    })),
    runs: [...runs],
    footprints: [...footprints],
  });
  const total = options.setups.length * options.faults.length * options.runs;
  let index = 0;
  // Each lane is a sequence of setups on its own lab (tag and subnet); lanes run at once.
  const runLane = async (lane: readonly RegisteredSetup[], laneIndex: number): Promise<void> => {
    const lab = laneLab(laneIndex);
    const laneLog = (line: string): void => log(laneIndex === 0 ? line : `[lane ${laneIndex}] ${line}`);
    for (const setup of lane) {
      for (const fault of options.faults) {
        for (let run = 1; run <= options.runs; run++) {
          index++;
          laneLog(`[${index}/${total}] ${setup.name} × ${fault}, run ${run}`);
          const result = await runOne({ setup, fault, run, log: laneLog, ...lab, ...(options.clients ? { clients: options.clients } : {}) });
          runs.push(result);
          laneLog(`  -> ${describeRun(result)}`);
          options.onProgress?.(snapshot());
          // Unsupported does not change between runs: record it once per cell.
          if (result.status === 'unsupported') break;
        }
      }
    }
  };
  await Promise.all(planLanes(options.setups, options.lanes ?? 1).map(runLane));
  if (options.footprint) {
    for (const setup of options.setups) {
      if (!FOOTPRINT_SETUPS.has(setup.name) || !setup.driver) continue;
      log(`footprint: ${setup.name}`);
      const footprint = await runFootprint(setup, { intervalMs: options.footprintMs ?? FOOTPRINT_MS, log });
      footprints.push(footprint);
      log(`  -> ${footprint.error ?? footprint.hosts.map((h) => `${h.host}: ${(h.rssKiB / 1024).toFixed(1)} MiB` +
        `${h.memory ? ` (anon ${(h.memory.anonKiB / 1024).toFixed(1)}, file ${(h.memory.fileKiB / 1024).toFixed(1)})` : ''}, ${h.cpuPercent.toFixed(2)} % CPU`).join('; ')}`);
      options.onProgress?.(snapshot());
    }
  }
  return snapshot();
}

/** One line about a run, for the progress log. */
export function describeRun(result: RunResult): string {
  if (result.status !== 'ok' || !result.figures) return `${result.status}: ${result.reason ?? ''}`.split('\n')[0] ?? '';
  const f = result.figures;
  const s = (ms: number | null): string => (ms === null ? 'n/a' : `${(ms / 1000).toFixed(2)} s`);
  const ms = (value: number | null): string => (value === null ? 'n/a' : `${Math.round(value)} ms`);
  const extra = [
    ...(f.stepDownMs !== undefined ? [`step-down ${ms(f.stepDownMs)} after continue`] : []),
    ...(f.oldMasterOutMs !== undefined ? [`old master out ${ms(f.oldMasterOutMs)} after continue`] : []),
    ...(f.vipClaimMs !== undefined ? [`VIP claim on ${f.vipClaimNode ?? '?'} ${ms(f.vipClaimMs)} after ${f.vipClaimFrom ?? '?'}`] : []),
  ];
  return (
    `detect ${s(f.detectionMs)}, unavailable ${s(f.unavailableMs)} (window ${s(f.windowMs)}), lost ${f.lost ?? 'n/a'}, ` +
    `dual-master ${s(f.dualMasterMs)}, dual-VIP ${s(f.dualVipMs)}, ${f.recovered ? 'recovered' : 'NOT recovered'}, ` +
    `${f.healthyAtEnd ? 'healthy' : 'NOT healthy'} at end (${(result.durationMs / 1000).toFixed(0)} s)` +
    extra.map((item) => `, ${item}`).join('')
  );
}
