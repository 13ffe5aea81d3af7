/**
 * What the benchmark measures in one run, and how.
 *
 *  - A state sampler in each Redis host's namespace (a and b): one small Node process
 *    per host that every `SAMPLE_PERIOD_MS` (50 ms) reads the namespace's local routes
 *    (`/proc/net/fib_trie`: is the VIP a local address here?) and asks the local Redis for
 *    `AUTH` + `INFO replication` + `CONFIG GET min-replicas-to-write` over a fresh TCP
 *    connection with a short timeout (role, writable, replica link). No process is
 *    spawned per sample, so sampling costs next to nothing next to the setups being
 *    measured. Each sample is one JSON
 *    line stamped with the wall-clock time of its VIP read (the writer's scale).
 *  - The lab writer's op log (a Jepsen set test through the VIP) and the set finally
 *    read from the master the client reaches, analysed with `tools/lab/analysis.ts`.
 *  - The role changes a setup records itself (`SetupDriver.roleRecords`, redis-ha's
 *    audit log), set against the samples: the stalled old master's step-down once
 *    continued, and the new master's VIP claim after its promotion.
 *  - Footprint: VmRSS from `/proc/PID/status` and CPU from `/proc/PID/stat`
 *    (utime + stime + cutime + cstime, so the health-check scripts a daemon forks and
 *    reaps are charged to it) over a steady-state interval.
 *
 * Everything after the spawning is pure and exported for the tests.
 */
import type { ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  analyseSetTest,
  failedButPresent,
  longestOkGap,
  unavailabilityWindow,
  clientRecovery,
  type OpRecord,
} from '../lab/analysis.js';
import { waitChildExit } from '../lab/netns.js';
import { PairLab, type PairHost, type PairNode } from '../lab/pair.js';
import { LAB_REDIS_PORT, parseInfo } from '../lab/redis-proc.js';
import type { RoleRecord } from './setup.js';

/**
 * Sampling period of the state sampler. Two independent samplers put a change on one
 * host up to one period late relative to the other, so interval sums (both masters,
 * VIP on both) carry that much uncertainty per change.
 */
export const SAMPLE_PERIOD_MS = 50;
/**
 * Bound on one `INFO replication` probe: an answer later than this counts as `down`
 * (a SIGSTOPped Redis accepts the connection and never answers). A probe that runs
 * long delays the next sample; the loop does not overlap probes.
 */
const PROBE_TIMEOUT_MS = 80;
/** A node whose latest sample is older than this counts as unknown in interval sums. */
export const SAMPLE_STALE_MS = 500;
/** Hard bound on one sampler process. */
const SAMPLER_MAX_MS = 15 * 60 * 1000;
const SAMPLER_STOP_GRACE_MS = 2_000;
/** Env var carrying the Redis password to the sampler (never on argv). */
const SAMPLER_PASSWORD_ENV = 'REDIS_HA_BENCH_PW';
/**
 * A gap between acknowledged writes at least this long counts as unavailability: 50
 * missed slots of the 500/s writer, far above its normal 2 ms spacing, and below the
 * shortest real failovers (the fast profile's ≈ 170 ms), which a higher bound would hide.
 * Results taken with another value must not be merged with these.
 */
export const UNAVAILABLE_GAP_MS = 100;
/** Most timeline entries kept per run. */
const TIMELINE_MAX = 200;

/** A Redis role as sampled. */
export type SampledRole = 'master' | 'replica' | 'down';

/** One VIP reading of one host. */
export interface VipSample {
  readonly kind: 'vip';
  readonly node: PairNode;
  /** Wall-clock ms (same scale as the writer's `startWallMs`). */
  readonly wallMs: number;
  /** Whether the VIP is on this host's interfaces. */
  readonly vip: boolean;
}

/** One `INFO replication` probe of one host's Redis: stamped with the answer, or with the start of a probe that got none. */
export interface RedisSample {
  readonly kind: 'redis';
  readonly node: PairNode;
  readonly wallMs: number;
  readonly role: SampledRole;
  /** A master that takes writes (`min-replicas-to-write`, if set, is satisfied). */
  readonly writable: boolean;
  /** A replica's `master_link_status`, or `null`. */
  readonly link: string | null;
}

/** A sample of either kind. */
export type Sample = VipSample | RedisSample;

/**
 * Whether the VIP is a local address, from `/proc/net/fib_trie` text (the `LOCAL` /32
 * route the kernel keeps for each address of an interface that is up). Not
 * `os.networkInterfaces()`: libuv leaves out interfaces without carrier, so a cut link
 * would look like a released VIP. The sampler script embeds this very function.
 */
export function fibHasLocal(fibTrie: string, address: string): boolean {
  const lines = fibTrie.split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]?.trim() !== `|-- ${address}`) continue;
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j]?.trim() ?? '';
      if (!line.startsWith('/')) break;
      if (line === '/32 host LOCAL') return true;
    }
  }
  return false;
}

/** One probe's reading: the `INFO replication` text and `min-replicas-to-write` (`null`: not readable). */
export interface ProbeReading {
  readonly info: string;
  readonly minReplicasToWrite: number | null;
}

/**
 * Reads a probe's replies (RESP2: `+OK` to AUTH, the `INFO replication` bulk string, the
 * `CONFIG GET min-replicas-to-write` array) from the bytes so far, as latin1 text:
 * `undefined` while incomplete, `null` when AUTH or INFO failed. A refused or empty
 * CONFIG GET gives `minReplicasToWrite: null`. The sampler script embeds this very
 * function.
 */
export function readProbe(buf: string): ProbeReading | null | undefined {
  const auth = buf.indexOf('\r\n');
  if (auth < 0) return undefined;
  if (buf[0] !== '+') return null;
  const head = buf.indexOf('\r\n', auth + 2);
  if (head < 0) return undefined;
  if (buf[auth + 2] !== '$') return null;
  const len = Number(buf.slice(auth + 3, head));
  if (!(len >= 0)) return null;
  const end = head + 2 + len + 2;
  if (buf.length < end) return undefined;
  const info = buf.slice(head + 2, head + 2 + len);
  const rest = buf.slice(end);
  if (rest.startsWith('-') || rest.startsWith('*0\r\n')) return rest.includes('\r\n') ? { info, minReplicasToWrite: null } : undefined;
  const config = /^\*2\r\n\$\d+\r\n[^\r]*\r\n\$\d+\r\n(\d+)\r\n/.exec(rest);
  if (config) return { info, minReplicasToWrite: Number(config[1]) };
  return (rest.match(/\r\n/g) ?? []).length >= 5 ? { info, minReplicasToWrite: null } : undefined;
}

/**
 * Whether a Redis takes writes, from its `INFO replication` and `min-replicas-to-write`:
 * a master whose good replicas (`min_slaves_good_slaves`, shown only while the
 * `min-replicas` check is on) reach `min-replicas-to-write`. A fenced master keeps its
 * replica but asks for more than it has (redis-ha's fence: 1000000), so the count alone
 * would call it writable. `null` (unreadable) is taken as 1, Redis's usual setting. The
 * sampler script embeds this very function.
 */
export function takesWrites(info: string, minReplicasToWrite: number | null): boolean {
  const role = /role:(\w+)/.exec(info);
  if (!role || role[1] !== 'master') return false;
  const good = /min_slaves_good_slaves:(\d+)/.exec(info);
  return good === null || Number(good[1]) >= Math.max(1, minReplicasToWrite ?? 1);
}

/**
 * The sampler, run as `node --input-type=module -e SCRIPT VIP PERIOD MAX PORT TIMEOUT`
 * inside a namespace: two independent loops (VIP reads, Redis probes) so that a hung
 * Redis does not delay the VIP readings. Bounded by MAX ms and SIGTERM; prints one
 * JSON line per sample (`k`: `v` or `r`).
 */
const SAMPLER_SCRIPT = `
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
const [vip, periodArg, maxArg, portArg, timeoutArg] = process.argv.slice(1);
const period = Number(periodArg), maxMs = Number(maxArg), port = Number(portArg), timeoutMs = Number(timeoutArg);
const pw = process.env.${SAMPLER_PASSWORD_ENV} ?? '';
const cmd = (...a) => '*' + a.length + '\\r\\n' + a.map((x) => '$' + Buffer.byteLength(x) + '\\r\\n' + x + '\\r\\n').join('');
const request = cmd('AUTH', pw) + cmd('INFO', 'replication') + cmd('CONFIG', 'GET', 'min-replicas-to-write');
const wall = () => performance.timeOrigin + performance.now();
${fibHasLocal.toString()}
${readProbe.toString()}
${takesWrites.toString()}
const hasVip = () => fibHasLocal(readFileSync('/proc/net/fib_trie', 'utf8'), vip);
const emit = (record) => process.stdout.write(JSON.stringify(record) + '\\n');
function probe() {
  return new Promise((resolve) => {
    let buf = '';
    let done = false;
    const s = net.connect(port, '127.0.0.1');
    const finish = (info) => { if (done) return; done = true; clearTimeout(t); s.destroy(); resolve(info); };
    const t = setTimeout(() => finish(null), timeoutMs);
    s.setEncoding('latin1');
    s.on('connect', () => s.write(request));
    s.on('error', () => finish(null));
    s.on('close', () => finish(null));
    s.on('data', (d) => {
      buf += d;
      const reading = readProbe(buf);
      if (reading !== undefined) finish(reading);
    });
  });
}
const started = performance.now();
const maxTicks = Math.ceil(maxMs / period);
process.on('SIGTERM', () => process.exit(0));
async function loop(sample) {
  for (let i = 0; i < maxTicks && performance.now() - started < maxMs; i++) {
    const wait = started + i * period - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    await sample();
  }
}
await Promise.all([
  loop(async () => emit({ k: 'v', wallMs: wall(), vip: hasVip() })),
  loop(async () => {
    const at = wall();
    const body = await probe();
    let role = 'down', writable = false, link = null;
    if (body !== null) {
      const m = /role:(\\w+)/.exec(body.info);
      role = m ? (m[1] === 'master' ? 'master' : 'replica') : 'down';
      writable = takesWrites(body.info, body.minReplicasToWrite);
      const l = /master_link_status:(\\w+)/.exec(body.info);
      link = l ? l[1] : null;
    }
    // An answer describes the server when it came; no answer, since the probe began.
    emit({ k: 'r', wallMs: body === null ? at : wall(), role, writable, link });
  }),
]);
`;

/** Parses one sampler line; `null` for anything malformed. */
export function parseSampleLine(node: PairNode, line: string): Sample | null {
  try {
    const raw = JSON.parse(line) as Record<string, unknown>;
    const wallMs = raw['wallMs'];
    if (typeof wallMs !== 'number') return null;
    if (raw['k'] === 'v') return { kind: 'vip', node, wallMs, vip: raw['vip'] === true };
    const role = raw['role'];
    if (raw['k'] !== 'r' || (role !== 'master' && role !== 'replica' && role !== 'down')) return null;
    return {
      kind: 'redis',
      node,
      wallMs,
      role,
      writable: raw['writable'] === true,
      link: typeof raw['link'] === 'string' ? raw['link'] : null,
    };
  } catch {
    return null;
  }
}

/** The running samplers of a and b. */
export class StateSampler {
  private readonly children: ChildProcess[] = [];
  private readonly collected: Sample[] = [];

  private constructor() {}

  /** Starts one sampler in each of a and b. */
  static start(lab: PairLab, periodMs = SAMPLE_PERIOD_MS): StateSampler {
    const sampler = new StateSampler();
    for (const node of ['a', 'b'] as const) {
      const child = lab.net.spawn(
        node,
        [
          process.execPath,
          '--input-type=module',
          '-e',
          SAMPLER_SCRIPT,
          lab.vip,
          String(periodMs),
          String(SAMPLER_MAX_MS),
          String(LAB_REDIS_PORT),
          String(PROBE_TIMEOUT_MS),
        ],
        { env: { [SAMPLER_PASSWORD_ENV]: lab.password } },
      );
      let buffered = '';
      child.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        let newline = buffered.indexOf('\n');
        while (newline >= 0) {
          const sample = parseSampleLine(node, buffered.slice(0, newline));
          if (sample) sampler.collected.push(sample);
          buffered = buffered.slice(newline + 1);
          newline = buffered.indexOf('\n');
        }
      });
      child.stderr?.resume();
      sampler.children.push(child);
    }
    return sampler;
  }

  /** Samples so far, in arrival order. */
  samples(): readonly Sample[] {
    return this.collected;
  }

  /** Stops both samplers (SIGTERM by PID), bounded. */
  async stop(): Promise<void> {
    await Promise.all(
      this.children.map(async (child) => {
        if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
          try {
            process.kill(child.pid, 'SIGTERM');
          } catch {
            // Already gone.
          }
        }
        await waitChildExit(child, SAMPLER_STOP_GRACE_MS);
      }),
    );
  }
}

// -- timeline analysis (pure) --------------------------------------------------------

/** The pair's state as far as the samples tell. */
export interface PairState {
  readonly vip: string;
  readonly a: string;
  readonly b: string;
}

/** One change of the sampled state, time relative to the fault. */
export interface TimelineEntry extends PairState {
  readonly tMs: number;
}

/** Interval sums and the first reaction, from the samples. */
export interface TimelineFigures {
  /** Time both Redis were certainly writable masters. */
  readonly dualMasterMs: number;
  /** Time both hosts certainly held the VIP. */
  readonly dualVipMs: number;
  /** Time no host certainly held the VIP. */
  readonly noVipMs: number;
  /** Fault → first sample showing the setup reacting, or `null`. */
  readonly detectionMs: number | null;
  /** State changes from a little before the fault on (relative ms). */
  readonly timeline: readonly TimelineEntry[];
}

/** What is known of one node at a moment: its latest sample of each kind. */
interface NodeView {
  vip?: VipSample;
  redis?: RedisSample;
}

function roleLabel(redis: RedisSample | undefined): string {
  if (!redis) return '?';
  if (redis.role === 'replica') return redis.link === 'up' ? 'replica' : `replica(link ${redis.link ?? '?'})`;
  if (redis.role === 'master' && !redis.writable) return 'master(refusing)';
  return redis.role;
}

function stateOf(a: NodeView, b: NodeView): PairState {
  const holders = [a.vip?.vip ? 'a' : '', b.vip?.vip ? 'b' : ''].filter(Boolean).join('+');
  return { vip: holders || '-', a: roleLabel(a.redis), b: roleLabel(b.redis) };
}

/**
 * What counts as the setup reacting, compared with the state just before the fault:
 * the VIP moving, b's role changing, or a's Redis taking another role (a's Redis going
 * `down` is the fault itself, not a reaction).
 */
function reactionKey(a: NodeView, b: NodeView, baselineA: string): string {
  const aRole = a.redis?.role === 'down' ? baselineA : (a.redis?.role ?? '?');
  return `${a.vip?.vip ? 1 : 0}${b.vip?.vip ? 1 : 0}|${b.redis?.role ?? '?'}|${aRole}`;
}

type Interval = readonly [number, number];

/**
 * Intervals in which `predicate` certainly held for one node: from the first sample
 * showing it to the last one of that streak (not extended to the next sample, and cut
 * where consecutive samples are more than `SAMPLE_STALE_MS` apart).
 */
export function certainIntervals<T extends Sample>(samples: readonly T[], predicate: (sample: T) => boolean): Interval[] {
  const sorted = [...samples].sort((x, y) => x.wallMs - y.wallMs);
  const intervals: Interval[] = [];
  let start: number | null = null;
  let end = 0;
  for (const sample of sorted) {
    const holds = predicate(sample);
    if (start !== null && (!holds || sample.wallMs - end > SAMPLE_STALE_MS)) {
      intervals.push([start, end]);
      start = null;
    }
    if (holds) {
      if (start === null) start = sample.wallMs;
      end = sample.wallMs;
    }
  }
  if (start !== null) intervals.push([start, end]);
  return intervals;
}

/** Total length of the intersection of two interval lists, clipped to `[from, to]`. */
export function overlapMs(x: readonly Interval[], y: readonly Interval[], from: number, to: number): number {
  let total = 0;
  for (const [x0, x1] of x) {
    for (const [y0, y1] of y) {
      const start = Math.max(x0, y0, from);
      const end = Math.min(x1, y1, to);
      if (end > start) total += end - start;
    }
  }
  return total;
}

function samplesOf<K extends Sample['kind']>(samples: readonly Sample[], node: PairNode, kind: K): Array<Extract<Sample, { kind: K }>> {
  return samples.filter((s): s is Extract<Sample, { kind: K }> => s.node === node && s.kind === kind);
}

/**
 * Folds the samples of both nodes (any order) into interval sums over
 * `[fromWallMs, toWallMs]` and the first reaction after `faultWallMs`. Interval sums
 * count only what both samplers certainly saw at once (a lower bound, off by at most
 * one sampling period per change), so that the phase offset of the two samplers never
 * shows a clean handover as an overlap.
 */
export function analyseTimeline(
  samples: readonly Sample[],
  faultWallMs: number,
  fromWallMs: number,
  toWallMs: number,
): TimelineFigures {
  const vipA = samplesOf(samples, 'a', 'vip');
  const vipB = samplesOf(samples, 'b', 'vip');
  const redisA = samplesOf(samples, 'a', 'redis');
  const redisB = samplesOf(samples, 'b', 'redis');
  const holds = (s: VipSample): boolean => s.vip;
  const lacks = (s: VipSample): boolean => !s.vip;
  const writable = (s: RedisSample): boolean => s.writable;
  const dualMasterMs = overlapMs(certainIntervals(redisA, writable), certainIntervals(redisB, writable), fromWallMs, toWallMs);
  const dualVipMs = overlapMs(certainIntervals(vipA, holds), certainIntervals(vipB, holds), fromWallMs, toWallMs);
  const noVipMs = overlapMs(certainIntervals(vipA, lacks), certainIntervals(vipB, lacks), fromWallMs, toWallMs);

  const sorted = [...samples].sort((x, y) => x.wallMs - y.wallMs);
  const view: Record<PairNode, NodeView> = { a: {}, b: {} };
  let detectionMs: number | null = null;
  let baselineKey: string | null = null;
  let baselineA = '?';
  const timeline: TimelineEntry[] = [];
  let lastStateKey = '';
  for (const sample of sorted) {
    if (sample.wallMs > faultWallMs && baselineKey === null) {
      baselineA = view.a.redis?.role === 'down' ? '?' : (view.a.redis?.role ?? '?');
      baselineKey = reactionKey(view.a, view.b, baselineA);
    }
    if (sample.kind === 'vip') view[sample.node].vip = sample;
    else view[sample.node].redis = sample;
    if (sample.wallMs > faultWallMs && baselineKey !== null && detectionMs === null) {
      if (reactionKey(view.a, view.b, baselineA) !== baselineKey) detectionMs = sample.wallMs - faultWallMs;
    }
    const state = stateOf(view.a, view.b);
    const key = `${state.vip}|${state.a}|${state.b}`;
    if (key !== lastStateKey && sample.wallMs >= fromWallMs && sample.wallMs <= toWallMs && timeline.length < TIMELINE_MAX) {
      timeline.push({ tMs: Math.round(sample.wallMs - faultWallMs), ...state });
    }
    lastStateKey = key;
  }
  return { dualMasterMs, dualVipMs, noVipMs, detectionMs, timeline };
}

/**
 * Wall time since which the combined sampled state (VIP holders, both roles) has been
 * what it is now, or `null` without samples.
 */
export function sampledStateSince(samples: readonly Sample[]): number | null {
  const sorted = [...samples].sort((x, y) => x.wallMs - y.wallMs);
  const view: Record<PairNode, NodeView> = { a: {}, b: {} };
  const keys: Array<{ wallMs: number; key: string }> = [];
  for (const sample of sorted) {
    if (sample.kind === 'vip') view[sample.node].vip = sample;
    else view[sample.node].redis = sample;
    const state = stateOf(view.a, view.b);
    keys.push({ wallMs: sample.wallMs, key: `${state.vip}|${state.a}|${state.b}` });
  }
  const last = keys[keys.length - 1];
  if (!last) return null;
  let since = last.wallMs;
  for (let i = keys.length - 1; i >= 0; i--) {
    const entry = keys[i];
    if (!entry || entry.key !== last.key) break;
    since = entry.wallMs;
  }
  return since;
}

// -- step-down and VIP claim (pure) -----------------------------------------------------

/** The stalled old master letting go once continued (`daemon-stall`). */
export interface StepDownFigures {
  /**
   * Continue → the old master's own record of leaving the master role (redis-ha: its
   * audit `transition` out of MASTER); `null` when none came. Absent when the setup
   * keeps no such record.
   */
  readonly stepDownMs?: number | null;
  /**
   * Continue → the first moment both samplers' latest readings of the old master, taken
   * after the continue, show it neither holding the VIP nor a writable Redis master;
   * `null` when that never happened.
   */
  readonly oldMasterOutMs: number | null;
}

/**
 * The step-down figures of `node` continued at `continuedWallMs` after a stall that
 * began at `faultWallMs`. `records` is `null` for a setup that keeps no role record. A
 * stopped daemon writes nothing, so any record of leaving the master role after the
 * stall began was written after the continue (its millisecond clock may read a hair
 * earlier than the continue's stamp).
 */
export function stepDownAfterContinue(
  samples: readonly Sample[],
  records: readonly RoleRecord[] | null,
  node: PairNode,
  faultWallMs: number,
  continuedWallMs: number,
): StepDownFigures {
  let oldMasterOutMs: number | null = null;
  let vip: VipSample | undefined;
  let redis: RedisSample | undefined;
  for (const sample of [...samples].sort((x, y) => x.wallMs - y.wallMs)) {
    if (sample.node !== node || sample.wallMs < continuedWallMs) continue;
    if (sample.kind === 'vip') vip = sample;
    else redis = sample;
    if (vip && redis && !vip.vip && !redis.writable) {
      oldMasterOutMs = sample.wallMs - continuedWallMs;
      break;
    }
  }
  if (records === null) return { oldMasterOutMs };
  const stepDown = firstRecord(records, node, 'from-master', faultWallMs);
  return { stepDownMs: stepDown === null ? null : stepDown.wallMs - continuedWallMs, oldMasterOutMs };
}

/** The new master claiming the VIP after its promotion. */
export interface VipClaimFigures {
  /** The node that took over. */
  readonly vipClaimNode: PairNode;
  /** What the claim is timed from: its successful Redis promotion, else (none recorded) its transition to master. */
  readonly vipClaimFrom: 'redis-promoted' | 'to-master';
  /** That record → the first sample showing the VIP on the node; `null` when never seen. */
  readonly vipClaimMs: number | null;
  /**
   * That record → the node's own record that its claim returned (redis-ha: `vip-claimed`,
   * after the address was added and the first gratuitous ARP sent); `null` without one.
   */
  readonly vipClaimRecordMs: number | null;
}

function firstRecord(records: readonly RoleRecord[], node: PairNode, kind: RoleRecord['kind'], fromWallMs: number): RoleRecord | null {
  let first: RoleRecord | null = null;
  for (const record of records) {
    if (record.node !== node || record.kind !== kind || record.wallMs < fromWallMs) continue;
    if (first === null || record.wallMs < first.wallMs) first = record;
  }
  return first;
}

/**
 * The first takeover after `faultWallMs` (on either node: the earliest successful Redis
 * promotion, or, where a node recorded none, its transition to master) and how long its
 * VIP claim took, as sampled and as the node recorded it; `null` when nobody took over.
 */
export function vipClaimAfterPromotion(samples: readonly Sample[], records: readonly RoleRecord[], faultWallMs: number): VipClaimFigures | null {
  let anchor: { node: PairNode; from: VipClaimFigures['vipClaimFrom']; wallMs: number } | null = null;
  for (const node of ['a', 'b'] as const) {
    const promoted = firstRecord(records, node, 'redis-promoted', faultWallMs);
    const record = promoted ?? firstRecord(records, node, 'to-master', faultWallMs);
    if (record !== null && (anchor === null || record.wallMs < anchor.wallMs)) {
      anchor = { node, from: promoted ? 'redis-promoted' : 'to-master', wallMs: record.wallMs };
    }
  }
  if (anchor === null) return null;
  const { node, wallMs } = anchor;
  let seen: number | null = null;
  for (const sample of samples) {
    if (sample.kind === 'vip' && sample.node === node && sample.vip && sample.wallMs >= wallMs && (seen === null || sample.wallMs < seen)) {
      seen = sample.wallMs;
    }
  }
  const claimed = firstRecord(records, node, 'vip-claimed', wallMs);
  return {
    vipClaimNode: node,
    vipClaimFrom: anchor.from,
    vipClaimMs: seen === null ? null : seen - wallMs,
    vipClaimRecordMs: claimed === null ? null : claimed.wallMs - wallMs,
  };
}

// -- writes (pure) ----------------------------------------------------------------------

/** The write figures of a run (writer times in ms since the writer started). */
export interface WriteFigures {
  readonly attempted: number;
  readonly acknowledged: number;
  readonly failed: number;
  readonly unknown: number;
  /** Unknown ops whose value made it into the final set. */
  readonly unknownApplied: number;
  /** Last ok before the fault → first ok issued after it. */
  readonly windowMs: number | null;
  /** Fault → first acknowledged write issued after it. */
  readonly faultToFirstOkMs: number | null;
  /** Longest gap between acknowledged writes over the fault phase. */
  readonly longestGapMs: number | null;
  /** Sum of gaps ≥ `UNAVAILABLE_GAP_MS` between acknowledged writes over the fault phase. */
  readonly unavailableMs: number | null;
  /** Same over the repair phase (restart, link restore, SIGCONT) to the end; `null` when none. */
  readonly repairUnavailableMs: number | null;
  /** Acknowledged − final; `null` when no final set could be read. */
  readonly lost: number | null;
  /** Lost writes issued at or after the first acknowledged write after the fault. */
  readonly lostAfterRecovery: number | null;
  /** Final − attempted. */
  readonly unexpected: number | null;
  /** Failed ops present in the final set (a failed write must not apply). */
  readonly failedApplied: number | null;
  /** A few lost values, for the post-mortem. */
  readonly lostSample: readonly number[];
  /** Connections the fault interrupted, and of those the ones that wrote again. */
  readonly clientsInterrupted: number;
  readonly clientsRecovered: number;
  /** Fault → each interrupted connection's first good write after its last failure: median and max. */
  readonly clientsBackMedianMs: number | null;
  readonly clientsBackMaxMs: number | null;
}

/** Sum of the gaps of at least `minGapMs` between acknowledged completions in `[fromMs, toMs]`. */
export function unavailableTime(ops: readonly OpRecord[], fromMs: number, toMs: number, minGapMs = UNAVAILABLE_GAP_MS): number {
  if (toMs <= fromMs) return 0;
  const times = ops
    .filter((op) => op.outcome === 'ok' && op.endMs >= fromMs && op.endMs <= toMs)
    .map((op) => op.endMs)
    .sort((x, y) => x - y);
  let previous = fromMs;
  let total = 0;
  for (const t of [...times, toMs]) {
    if (t - previous >= minGapMs) total += t - previous;
    previous = t;
  }
  return total;
}

/** Phase boundaries in writer time. */
export interface WritePhases {
  readonly faultMs: number;
  /** End of the fault phase (observation end; repair starts here when there is one). */
  readonly faultPhaseEndMs: number;
  /** Start of the repair phase, or `null`. */
  readonly repairMs: number | null;
  /** End of the run (writer stop requested). */
  readonly endMs: number;
}

/** Computes the write figures; `finalSet` is `null` when no master could be read. */
export function analyseWrites(ops: readonly OpRecord[], finalSet: ReadonlySet<number> | null, phases: WritePhases): WriteFigures {
  const window = unavailabilityWindow(ops, phases.faultMs, phases.faultPhaseEndMs);
  const from = window.lastOkBeforeMs ?? phases.faultMs;
  const empty = new Set<number>();
  const report = analyseSetTest(ops, finalSet ?? empty);
  const firstAfter = window.firstOkAfter;
  const clients = clientRecovery(ops.filter((op) => op.startMs <= phases.faultPhaseEndMs), phases.faultMs);
  const lostAfterRecovery =
    finalSet === null || firstAfter === null
      ? null
      : ops.filter((op) => op.outcome === 'ok' && op.startMs >= firstAfter.startMs && !finalSet.has(op.value)).length;
  return {
    attempted: report.attempted,
    acknowledged: report.acknowledged,
    failed: report.failed,
    unknown: report.unknown,
    unknownApplied: finalSet === null ? 0 : report.unknownPresent,
    windowMs: window.windowMs,
    faultToFirstOkMs: window.faultToFirstOkMs,
    longestGapMs: longestOkGap(ops, from, phases.faultPhaseEndMs),
    unavailableMs: unavailableTime(ops, from, phases.faultPhaseEndMs),
    repairUnavailableMs: phases.repairMs === null ? null : unavailableTime(ops, phases.repairMs, phases.endMs),
    lost: finalSet === null ? null : report.lost.length,
    lostAfterRecovery,
    unexpected: finalSet === null ? null : report.unexpected.length,
    failedApplied: finalSet === null ? null : failedButPresent(ops, finalSet).length,
    lostSample: finalSet === null ? [] : report.lost.slice(0, 10),
    clientsInterrupted: clients.interrupted,
    clientsRecovered: clients.recovered,
    clientsBackMedianMs: clients.backMs.length === 0 ? null : clients.backMs[Math.floor(clients.backMs.length / 2)]!,
    // A connection that never wrote again has no time: the figure is then unknown, not its best.
    clientsBackMaxMs: clients.backMs.length === 0 || clients.recovered < clients.interrupted ? null : clients.backMs.at(-1)!,
  };
}

// -- end state ------------------------------------------------------------------------

/** Which Redis the client reaches through the VIP, by `run_id`; `null` when none answers. */
export async function nodeBehindVip(lab: PairLab): Promise<PairNode | null> {
  const viaVip = await lab.net.exec(
    'c',
    ['redis-cli', '--no-auth-warning', '-h', lab.vip, '-p', String(LAB_REDIS_PORT), 'INFO', 'server'],
    { timeoutMs: 3_000, env: { REDISCLI_AUTH: lab.password } },
  );
  const runId = viaVip.code === 0 ? parseInfo(viaVip.stdout)['run_id'] : undefined;
  if (!runId) return null;
  for (const node of ['a', 'b'] as const) {
    if ((await lab.redis(node).info('server'))?.['run_id'] === runId) return node;
  }
  return null;
}

/** The node whose set is final: the master behind the VIP, else the only master. */
export async function finalMaster(lab: PairLab): Promise<{ node: PairNode | null; why: string }> {
  const [roleA, roleB] = await Promise.all([lab.redisRole('a'), lab.redisRole('b')]);
  const roles: Record<PairNode, string> = { a: roleA, b: roleB };
  const behind = await nodeBehindVip(lab);
  if (behind !== null && roles[behind] === 'master') {
    const both = roleA === 'master' && roleB === 'master';
    return { node: behind, why: both ? `both masters; the client reaches ${behind} through the VIP` : `${behind} is the master behind the VIP` };
  }
  const masters = (['a', 'b'] as const).filter((node) => roles[node] === 'master');
  if (masters.length === 1 && masters[0]) return { node: masters[0], why: `${masters[0]} is the only master (not reachable through the VIP)` };
  return { node: null, why: `no master to read the final set from (a ${roleA}, b ${roleB}, VIP reaches ${behind ?? 'nothing'})` };
}

// -- footprint --------------------------------------------------------------------------

/** CPU ticks (own + reaped children) and resident memory of one process. */
export interface ProcSnapshot {
  readonly pid: number;
  readonly cpuTicks: number;
  readonly rssKiB: number;
  /** The split of VmRSS (`/proc/PID/status`) and the proportional set size (`smaps_rollup`). */
  readonly memory: MemorySplit;
}

/**
 * Where a process's resident memory is, KiB: anonymous (its heap, stacks: its own),
 * file-backed (mapped executables and libraries: a Node daemon's ~34 MiB of the `node`
 * binary are shared with every Node process and reclaimable), shared memory, and the
 * proportional set size (shared pages divided among the processes mapping them).
 */
export interface MemorySplit {
  readonly anonKiB: number;
  readonly fileKiB: number;
  readonly shmemKiB: number;
  /** `null` when `smaps_rollup` is unreadable (kernel < 4.14, or another user's process). */
  readonly pssKiB: number | null;
}

let clockTicks: number | null = null;

/** `sysconf(_SC_CLK_TCK)` via getconf; 100 when unavailable. */
export function clockTicksPerSecond(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5_000 }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** Parses `/proc/PID/stat`: utime + stime + cutime + cstime (fields 14–17). */
export function parseStatTicks(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state), so field n is fields[n - 3].
  return [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i] ?? 0), 0);
}

/** Parses VmRSS (kB) from `/proc/PID/status`. */
export function parseRssKiB(status: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return match ? Number(match[1]) : 0;
}

/** Parses RssAnon, RssFile and RssShmem (kB) from `/proc/PID/status`, Pss from `smaps_rollup`. */
export function parseMemorySplit(status: string, smapsRollup: string | null): MemorySplit {
  const field = (text: string, name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+)\\s+kB`, 'm').exec(text);
    return match ? Number(match[1]) : 0;
  };
  const pss = smapsRollup === null ? null : /^Pss:\s+(\d+)\s+kB/m.exec(smapsRollup);
  return {
    anonKiB: field(status, 'RssAnon'),
    fileKiB: field(status, 'RssFile'),
    shmemKiB: field(status, 'RssShmem'),
    pssKiB: pss ? Number(pss[1]) : null,
  };
}

/** A snapshot of a live process, or `null` when it is gone. */
export function snapshotProcess(pid: number): ProcSnapshot | null {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    let rollup: string | null = null;
    try {
      rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    } catch {
      // Older kernels: PSS unknown.
    }
    return {
      pid,
      cpuTicks: parseStatTicks(readFileSync(`/proc/${pid}/stat`, 'utf8')),
      rssKiB: parseRssKiB(status),
      memory: parseMemorySplit(status, rollup),
    };
  } catch {
    return null;
  }
}

/** The command name of a live process (`/proc/PID/comm`), or `?` when it is gone. */
export function processName(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() || '?';
  } catch {
    return '?';
  }
}

/** The sum of several processes' splits (PSS unknown if any is). */
export function sumSplit(splits: ReadonlyArray<MemorySplit | undefined>): MemorySplit {
  const known = splits.filter((s): s is MemorySplit => s !== undefined);
  return {
    anonKiB: known.reduce((sum, s) => sum + s.anonKiB, 0),
    fileKiB: known.reduce((sum, s) => sum + s.fileKiB, 0),
    shmemKiB: known.reduce((sum, s) => sum + s.shmemKiB, 0),
    pssKiB: known.some((s) => s.pssKiB === null) ? null : known.reduce((sum, s) => sum + (s.pssKiB ?? 0), 0),
  };
}

/** Footprint of one host's failover processes over the steady-state interval. */
export interface HostFootprint {
  readonly host: PairHost;
  readonly pids: readonly number[];
  /**
   * Command names of `pids` (`/proc/PID/comm`, e.g. `node`, `etcd`, `keepalived`), in
   * the same order; absent in results taken before they were recorded.
   */
  readonly names?: readonly string[];
  /** Summed VmRSS at the end of the interval, KiB. */
  readonly rssKiB: number;
  /** Largest summed VmRSS seen during the interval, KiB. */
  readonly peakRssKiB: number;
  /** Summed split of VmRSS at the end of the interval; absent in results taken before it was recorded. */
  readonly memory?: MemorySplit;
  /** CPU time over wall time, percent of one core. */
  readonly cpuPercent: number;
}

/** Footprint of a setup. */
export interface FootprintResult {
  readonly setup: string;
  readonly intervalMs: number;
  readonly hosts: readonly HostFootprint[];
  readonly error?: string;
}

/**
 * Measures the daemons' footprint on every host over `intervalMs`, snapshotting every
 * `stepMs` for the peak RSS. PIDs are read once at the start.
 */
export async function measureFootprint(
  lab: PairLab,
  pidsOf: (host: PairHost) => number[],
  intervalMs: number,
  stepMs = 5_000,
): Promise<HostFootprint[]> {
  const hosts: PairHost[] = ['a', 'b', 'c'];
  const pids = new Map(hosts.map((host) => [host, pidsOf(host)]));
  const names = new Map(hosts.map((host) => [host, (pids.get(host) ?? []).map(processName)]));
  const first = new Map<number, ProcSnapshot>();
  const peak = new Map<PairHost, number>();
  const sumRss = (host: PairHost, snaps: Map<number, ProcSnapshot>): number =>
    (pids.get(host) ?? []).reduce((sum, pid) => sum + (snaps.get(pid)?.rssKiB ?? 0), 0);
  const snapAll = (): Map<number, ProcSnapshot> => {
    const snaps = new Map<number, ProcSnapshot>();
    for (const list of pids.values()) {
      for (const pid of list) {
        const snap = snapshotProcess(pid);
        if (snap) snaps.set(pid, snap);
      }
    }
    for (const host of hosts) peak.set(host, Math.max(peak.get(host) ?? 0, sumRss(host, snaps)));
    return snaps;
  };
  const startSnaps = snapAll();
  for (const [pid, snap] of startSnaps) first.set(pid, snap);
  const started = Date.now();
  const steps = Math.max(1, Math.ceil(intervalMs / stepMs));
  let last = startSnaps;
  for (let i = 0; i < steps; i++) {
    await new Promise((resolve) => setTimeout(resolve, Math.min(stepMs, Math.max(0, started + intervalMs - Date.now()))));
    last = snapAll();
  }
  const elapsedSec = (Date.now() - started) / 1000;
  const hz = clockTicksPerSecond();
  return hosts
    .filter((host) => (pids.get(host) ?? []).length > 0)
    .map((host) => {
      const list = pids.get(host) ?? [];
      const ticks = list.reduce((sum, pid) => {
        const a = first.get(pid);
        const b = last.get(pid);
        return a && b ? sum + (b.cpuTicks - a.cpuTicks) : sum;
      }, 0);
      return {
        host,
        pids: list,
        names: names.get(host) ?? [],
        rssKiB: sumRss(host, last),
        peakRssKiB: peak.get(host) ?? 0,
        memory: sumSplit(list.map((pid) => last.get(pid)?.memory)),
        cpuPercent: elapsedSec > 0 ? (100 * ticks) / hz / elapsedSec : 0,
      };
    });
}
