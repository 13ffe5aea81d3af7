/**
 * The live demo (`bash scripts/lab.sh`, or `node dist-tools/tools/lab/demo.js` after
 * `npm run build && npm run build:tools`; root only): builds the pair lab, by default
 * with a one-member etcd on the client host as the quorum's witness (`--quorum etcd`;
 * `--quorum none` runs the pair alone with the daemon's defaults, today's behaviour),
 * waits for the initial election, starts the set-test writer in the client namespace
 * writing through the VIP, shows a compact status line every 250 ms (VIP holder, roles,
 * who holds the leader key, writer counters) and, with etcd or the partition fault, the
 * daemons' role and quorum decisions from their audit logs as they are made. After
 * about five seconds it injects one fault:
 *
 *  - `redis-kill`, `link-cut`, `daemon-term` (A fails): shows the failover (with etcd,
 *    B takes the leader key first), waits until B holds the VIP and writes flow again,
 *    repairs A and shows it rejoin as a replica of B;
 *  - `partition`: A and B cut from each other while the client (and etcd) still reach
 *    both, for 3 × B's master-down interval, then healed. With etcd B asks for the leader
 *    key, is told A holds it and never promotes, and writes keep flowing through A; with
 *    `--quorum none` B promotes as well (two writable masters) and the side that loses
 *    at the heal discards what it acknowledged meanwhile.
 *
 * Then it prints what it measured (the write gap, attempted / acknowledged / failed /
 * lost writes, the audit-log transitions with their reasons) and tears everything
 * down, also on Ctrl-C. `--result FILE` also writes the numbers as JSON (`DemoResult`,
 * what the tests read).
 *
 * Usage: demo.js [--quorum etcd|none] [--fault redis-kill|link-cut|daemon-term|partition]
 *                [--profile default|fast] [--tag rhdemo] [--subnet 10.77.50]
 *                [--result FILE] [--daemon-entry JS] [--help]
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { analyseSetTest, unavailabilityWindow, type OpRecord, type WriterProgress } from './analysis.js';
import { installSignalCleanup, isRoot } from './netns.js';
import {
  LAB_WITNESS_HOST,
  nowWallMs,
  PairLab,
  PRIORITY_B,
  startPair,
  type AuditRecord,
  type LabProfile,
  type PairNode,
  type PairStatus,
  type WriterHandle,
} from './pair.js';
import { LAB_ETCD_CLIENT_PORT } from './etcd.js';
import { masterDownMs } from '../../src/core/timing.js';
import { errorMessage } from '../../src/errors.js';

/** Faults the demo can inject: into node A, or between A and B (`partition`). */
export type DemoFault = 'redis-kill' | 'link-cut' | 'daemon-term' | 'partition';
const FAULTS: readonly DemoFault[] = ['redis-kill', 'link-cut', 'daemon-term', 'partition'];
/** The faults after which B takes over and A is repaired. */
type FailoverFault = Exclude<DemoFault, 'partition'>;
/** The pair's quorum: the etcd witness on the client host, or none (the pair alone). */
export type DemoQuorum = 'etcd' | 'none';
const QUORUMS: readonly DemoQuorum[] = ['etcd', 'none'];
const PROFILE_NAMES: readonly LabProfile[] = ['default', 'fast'];

const DEFAULT_TAG = 'rhdemo';
const DEFAULT_SUBNET = '10.77.50';
/** Status line period. */
const TICK_MS = 250;
/** Writes run this long before the fault. */
const PRE_FAULT_MS = 5_000;
/** The partition lasts this many of B's master-down intervals: well past any takeover. */
const PARTITION_MASTER_DOWNS = 3;
/** How long the repaired pair is watched before the summary. */
const SETTLE_WATCH_MS = 3_000;
/** Bounds on each phase (generous: a noisy 2-core machine). */
const ELECTION_TIMEOUT_MS = 30_000;
const FAILOVER_TIMEOUT_MS = 60_000;
const REJOIN_TIMEOUT_MS = 60_000;
const EXIT_NOT_ROOT = 1;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
/** Longest audit detail printed per record. */
const AUDIT_DETAIL_MAX = 140;
/** Audit events shown live (with etcd or the partition fault): roles, the quorum, split brains. */
const LIVE_AUDIT_EVENT = /^(transition|quorum-|redis-fence|dual-master-resolved|takeover-held|failover-held)/;
/** Audit events listed in the summary. */
const SUMMARY_AUDIT_EVENT = /promot|demot|vip|master|stop|start|transition|quorum-|fence/;

interface DemoArgs {
  readonly fault: DemoFault;
  readonly quorum: DemoQuorum;
  readonly profile: LabProfile;
  readonly tag: string;
  readonly subnet: string;
  /** Where to write the `DemoResult` JSON, if anywhere. */
  readonly resultFile: string | undefined;
  /** Daemon entry override (testing the demo itself); default `dist/cli/main.js`. */
  readonly daemonEntry: string | undefined;
}

/** What one demo run measured (`--result FILE`). */
export interface DemoResult {
  readonly quorum: DemoQuorum;
  readonly fault: DemoFault;
  readonly profile: LabProfile;
  readonly attempted: number;
  readonly acknowledged: number;
  readonly failed: number;
  readonly unknown: number;
  /** Acknowledged writes missing from the final set. */
  readonly lost: number;
  /** Of `lost`, those issued after the first acknowledged write after the fault; `null` for `partition`. */
  readonly lostAfterTakeover: number | null;
  readonly unexpected: number;
  readonly faultToFirstOkMs: number | null;
  readonly longestGapMs: number | null;
  /** How long A and B were cut from each other (`partition`), else `null`. */
  readonly partitionMs: number | null;
  /** The settled master at the end (the VIP on it alone, the other replicating it). */
  readonly finalMaster: PairNode;
  /** Whether B became master after the fault (its audit, or its Redis seen a master). */
  readonly bPromoted: boolean;
  /** Time from the fault to B's Redis first seen a master, or `null`. */
  readonly bMasterAfterMs: number | null;
  /** Status samples that saw both Redis servers masters, × the sample period. */
  readonly twoMastersMs: number;
  /** Holder of the leader key at the end (`quorum: etcd`), else `null`. */
  readonly keyHolder: string | null;
  /** Audit events each node wrote from the fault to the end, in order. */
  readonly auditSinceFault: Readonly<Record<PairNode, readonly string[]>>;
}

const USAGE =
  `usage: demo.js [--quorum ${QUORUMS.join('|')}] [--fault ${FAULTS.join('|')}] ` +
  `[--profile ${PROFILE_NAMES.join('|')}] [--tag T] [--subnet 10.77.N] [--result FILE]\n` +
  '  --quorum   etcd (default): a one-member etcd on the client host is the third vote;\n' +
  "             none: the pair decides alone (the daemon's default, prefer availability)\n" +
  '  --fault    redis-kill (default), link-cut, daemon-term: A fails and B takes over;\n' +
  '             partition: A and B cut from each other, the client and etcd reaching both,\n' +
  "             for 3 x B's master-down interval, then healed\n" +
  '  --profile  default (1 s adverts) or fast (100 ms adverts)\n' +
  '  --result   also write the measured numbers as JSON to FILE\n';

function usage(message: string): never {
  process.stderr.write(`${message}\n${USAGE}`);
  process.exit(EXIT_USAGE);
}

function parseDemoArgs(argv: readonly string[]): DemoArgs {
  let values: {
    fault?: string;
    quorum?: string;
    profile?: string;
    tag?: string;
    subnet?: string;
    result?: string;
    help?: boolean;
    'daemon-entry'?: string;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        fault: { type: 'string' },
        quorum: { type: 'string' },
        profile: { type: 'string' },
        tag: { type: 'string' },
        subnet: { type: 'string' },
        result: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        'daemon-entry': { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    usage(errorMessage(error));
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const fault = (values.fault ?? 'redis-kill') as DemoFault;
  if (!FAULTS.includes(fault)) usage(`unknown --fault ${values.fault}`);
  const quorum = (values.quorum ?? 'etcd') as DemoQuorum;
  if (!QUORUMS.includes(quorum)) usage(`unknown --quorum ${values.quorum}`);
  const profile = (values.profile ?? 'default') as LabProfile;
  if (!PROFILE_NAMES.includes(profile)) usage(`unknown --profile ${values.profile}`);
  return {
    fault,
    quorum,
    profile,
    tag: values.tag ?? DEFAULT_TAG,
    subnet: values.subnet ?? DEFAULT_SUBNET,
    resultFile: values.result,
    daemonEntry: values['daemon-entry'],
  };
}

function seconds(ms: number | null | undefined): string {
  return ms === null || ms === undefined || Number.isNaN(ms) ? 'n/a' : `${(ms / 1000).toFixed(2)} s`;
}

function roleName(role: string): string {
  return role === 'replica' ? 'replica' : role;
}

function upper(node: string): string {
  return node.toUpperCase();
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The leader key as one tick saw it: its holder, nobody (`null`), or unknown (etcd did not answer). */
type KeySeen = { readonly node: string; readonly epoch: number } | null | 'unknown';

/** One status sample of the ticker. */
interface Sample {
  readonly atWallMs: number;
  readonly status: PairStatus;
  /** `undefined` without a quorum. */
  readonly key: KeySeen | undefined;
}

/**
 * The live status line: time, VIP holder, roles, the leader key's holder (etcd), writer
 * counters, phase; and, when asked, the audit events of `LIVE_AUDIT_EVENT` as they are
 * written. Every sample also goes to `onSample`.
 */
class Ticker {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private lastKey = '';
  private lastHolder: KeySeen | undefined = undefined;
  private readonly auditSeen: Record<PairNode, number> = { a: 0, b: 0 };
  private readonly tty = process.stdout.isTTY === true;
  private readonly origin = nowWallMs();
  phase = 'starting';
  writer: WriterHandle | null = null;
  onSample: ((sample: Sample) => void) | null = null;

  constructor(
    private readonly lab: PairLab,
    private readonly options: { readonly quorum: DemoQuorum; readonly followAudit: boolean },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), TICK_MS);
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = null;
    if (this.tty) process.stdout.write('\n');
  }

  /** Prints a permanent line (an event) without disturbing the live line. */
  note(text: string): void {
    const prefix = this.tty ? '\r\x1b[2K' : '';
    process.stdout.write(`${prefix}${this.stamp()}  >> ${text}\n`);
    this.lastKey = '';
  }

  /** Runs one tick now (after any running one), so what led to a phase's end is shown before its note. */
  async refresh(): Promise<void> {
    while (this.busy) await sleep(TICK_MS / 10);
    await this.tick();
  }

  private stamp(): string {
    return `t=${((nowWallMs() - this.origin) / 1000).toFixed(2).padStart(6)}s`;
  }

  private async readKey(): Promise<KeySeen | undefined> {
    if (this.options.quorum !== 'etcd') return undefined;
    try {
      const key = await this.lab.etcd().leader();
      if (key === null) return null;
      return key.record ? { node: key.record.node, epoch: key.record.epoch } : 'unknown';
    } catch {
      return 'unknown';
    }
  }

  private followAudit(): void {
    if (!this.options.followAudit) return;
    for (const node of ['a', 'b'] as const) {
      const records = this.lab.auditRecords(node);
      for (const record of records.slice(this.auditSeen[node])) {
        if (LIVE_AUDIT_EVENT.test(String(record['event'] ?? ''))) this.note(describeAuditLive(node, record));
      }
      this.auditSeen[node] = records.length;
    }
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const [status, key] = await Promise.all([this.lab.status(), this.readKey()]);
      const atWallMs = nowWallMs();
      this.followAudit();
      if (key !== undefined && key !== 'unknown' && JSON.stringify(key) !== JSON.stringify(this.lastHolder)) {
        // Nobody holds it before the first election: only a holder going away is news.
        if (key !== null || this.lastHolder !== undefined) {
          this.note(key === null ? 'leader key: held by nobody' : `leader key: held by ${upper(key.node)} (epoch ${key.epoch})`);
        }
        this.lastHolder = key;
      }
      const p: WriterProgress | null = this.writer?.progress() ?? null;
      const vip = status.vipHolders.length ? status.vipHolders.join('+') : '-';
      const holder = key === undefined ? '' : key === 'unknown' ? '?' : key === null ? '-' : upper(key.node);
      const lineKey = `${vip}|${status.roles.a}|${status.roles.b}|${holder}|${this.phase}`;
      const writes = p ? `writes ok=${p.ok} failed=${p.failed} unknown=${p.unknown}` : 'writes -';
      const line =
        `${this.stamp()}  VIP=${vip.padEnd(3)}  A=${roleName(status.roles.a).padEnd(7)}  ` +
        `B=${roleName(status.roles.b).padEnd(7)}  ${key === undefined ? '' : `key=${holder.padEnd(2)} `}` +
        `${writes}  [${this.phase}]`;
      if (this.tty) {
        // Keep the previous line when something other than the counters changed.
        process.stdout.write(`${lineKey === this.lastKey ? '\r\x1b[2K' : '\n'}${line}`);
      } else {
        process.stdout.write(`${line}\n`);
      }
      this.lastKey = lineKey;
      this.onSample?.({ atWallMs, status, key });
    } catch {
      // A status read racing a fault; the next tick will do.
    } finally {
      this.busy = false;
    }
  }
}

/** Picks the printable parts of an audit record, whatever its exact schema. */
export function formatAudit(node: string, record: AuditRecord): string {
  const data =
    typeof record['data'] === 'object' && record['data'] !== null
      ? (record['data'] as Record<string, unknown>)
      : record;
  const pick = (key: string): unknown => data[key] ?? record[key];
  const time = pick('ts') ?? pick('time') ?? pick('timestamp');
  const event = String(pick('event') ?? pick('type') ?? '?');
  const from = pick('from');
  const to = pick('to');
  const reason = pick('reason') ?? pick('detail') ?? pick('why');
  const parts = [`${typeof time === 'string' ? time.replace(/^.*T/, '') : String(time ?? '')}`, node.toUpperCase(), event];
  if (from !== undefined || to !== undefined) parts.push(`${String(from)} -> ${String(to)}`);
  if (reason !== undefined) parts.push(`"${String(reason).slice(0, AUDIT_DETAIL_MAX)}"`);
  return parts.join('  ');
}

/** `redis-fence` settings (src/core/types.ts `FenceSetting`) in words. */
const FENCE_WORDS: Readonly<Record<string, string>> = {
  'with-replica': 'accepts writes while a replica acknowledges (min-replicas-to-write 1)',
  accepted: 'accepts writes without a replica (min-replicas-to-write 0, only while holding the leader key)',
  refused: 'refuses every write',
};

function holderText(holder: unknown): string {
  if (typeof holder === 'object' && holder !== null) {
    const h = holder as { node?: unknown; epoch?: unknown };
    if (typeof h.node === 'string') return `${upper(h.node)}${typeof h.epoch === 'number' ? ` (epoch ${h.epoch})` : ''}`;
  }
  return 'another node';
}

/** One live line for an audit record: the quorum's events in words, the rest as `formatAudit`. */
export function describeAuditLive(node: PairNode, record: AuditRecord): string {
  const n = upper(node);
  const field = (key: string): string => String(record[key] ?? '?').slice(0, AUDIT_DETAIL_MAX);
  switch (record['event']) {
    case 'transition':
      return `${n} ${field('from')} -> ${field('to')}: ${field('reason')}`;
    case 'quorum-key-wanted':
      return `${n} asks etcd for the leader key (${field('kind')}, epoch ${field('epoch')}): ${field('reason')}`;
    case 'quorum-held-by-other':
      return (
        `${n} is told the leader key is held by ${holderText(record['holder'])}` +
        (record['wanted'] ? `: ${n} does not promote` : '')
      );
    case 'quorum-unreachable':
      return `${n} gets no answer from etcd (${field('detail')})` + (record['wanted'] ? `: ${n} does not promote` : '');
    case 'quorum-acquired':
      return `${n} holds the leader key (epoch ${field('epoch')})`;
    case 'quorum-key-not-wanted':
      return `${n} no longer wants the leader key: ${field('reason')}`;
    case 'dual-master-resolved': {
      const discarded = record['discardedBytes'];
      return (
        `${n} finds both nodes masters: ${upper(field('winner'))} wins, ${upper(field('loser'))} steps down and ` +
        (typeof discarded === 'number' ? `discards ${discarded} bytes of replication stream it acknowledged alone` : `resyncs (${field('divergence')})`)
      );
    }
    case 'redis-fence':
      return `${n}'s Redis ${FENCE_WORDS[field('writes')] ?? field('writes')}${record['ok'] === false ? ' (NOT APPLIED)' : ''}: ${field('detail')}`;
    default:
      return formatAudit(node, record).replace(/^\S*\s+/, '');
  }
}

async function injectFailoverFault(lab: PairLab, fault: FailoverFault): Promise<void> {
  switch (fault) {
    case 'redis-kill':
      lab.killRedis('a', 'SIGKILL');
      return;
    case 'link-cut':
      await lab.cutLink('a');
      return;
    case 'daemon-term':
      await lab.stopDaemon('a', 'SIGTERM');
      return;
  }
}

async function repair(lab: PairLab, fault: FailoverFault): Promise<string> {
  switch (fault) {
    case 'redis-kill':
      await lab.restartRedis('a');
      return "restarted A's Redis (same config: an empty master, no persistence)";
    case 'link-cut':
      await lab.restoreLink('a');
      return "restored A's link";
    case 'daemon-term':
      lab.startDaemon('a');
      return "restarted A's daemon";
  }
}

function describeFault(fault: FailoverFault): string {
  switch (fault) {
    case 'redis-kill':
      return "SIGKILL A's Redis";
    case 'link-cut':
      return "cut A's link (bridge-side veth down)";
    case 'daemon-term':
      return "SIGTERM A's daemon";
  }
}

/** What the fault phase leaves for the summary. */
interface FaultPhase {
  /** Wall-clock time the fault took effect. */
  readonly faultWallMs: number;
  /** The settled master at the end. */
  readonly finalMaster: PairNode;
  /** How long A and B were cut from each other (`partition`). */
  readonly partitionMs: number | null;
}

/** A fails: wait for B to take over with writes flowing, repair A, wait until it replicates B. */
async function runFailover(lab: PairLab, ticker: Ticker, writer: WriterHandle, fault: FailoverFault): Promise<FaultPhase> {
  ticker.phase = `fault: ${fault}`;
  // A link cut takes effect when `ip` returns (ops issued meanwhile still reach A); the
  // other faults start when they are sent.
  ticker.note(`FAULT: ${describeFault(fault)}`);
  let faultWallMs = nowWallMs();
  await injectFailoverFault(lab, fault);
  if (fault === 'link-cut') faultWallMs = nowWallMs();
  const faultWriterMs = writer.toWriterMs(faultWallMs);

  const failoverMs = await lab.waitFor(
    'B holding the VIP as master with writes flowing again',
    async () => {
      const p = writer.progress();
      if (!p || p.lastOkMs === null || p.lastOkMs <= faultWriterMs) return false;
      const [holders, roleB] = await Promise.all([lab.vipHolders(), lab.redisRole('b')]);
      return holders.includes('b') && roleB === 'master';
    },
    FAILOVER_TIMEOUT_MS,
  );
  await ticker.refresh();
  ticker.note(`failover: B is master with the VIP and writes flow (observed ${seconds(failoverMs)} after the fault)`);

  ticker.phase = 'repair';
  ticker.note(await repair(lab, fault));
  const rejoinMs = await lab.waitFor(
    'A rejoined as a replica of B, VIP on B only',
    () => lab.isSettledMaster('b'),
    REJOIN_TIMEOUT_MS,
  );
  await ticker.refresh();
  ticker.note(`A rejoined as a replica of B in ${seconds(rejoinMs)}; watching ${seconds(SETTLE_WATCH_MS)}`);
  return { faultWallMs, finalMaster: 'b', partitionMs: null };
}

/**
 * A and B cut from each other, the client (and etcd) reaching both, for
 * `PARTITION_MASTER_DOWNS` × B's master-down interval; then healed, and the pair
 * watched until one node is the settled master.
 */
async function runPartition(lab: PairLab, ticker: Ticker, writer: WriterHandle, quorum: DemoQuorum): Promise<FaultPhase> {
  const masterDown = masterDownMs(PRIORITY_B, lab.timing.advertIntervalMs);
  const holdMs = PARTITION_MASTER_DOWNS * masterDown;
  ticker.phase = 'fault: partition';
  ticker.note(
    `FAULT: cut A and B from each other for ${seconds(holdMs)} (${PARTITION_MASTER_DOWNS} x B's master-down interval ` +
      `${seconds(masterDown)}); ${quorum === 'etcd' ? 'the client and etcd still reach' : 'the client still reaches'} both`,
  );
  await lab.partitionNodes();
  // Taken once the rules are in: until then A and B still heard each other.
  const faultWallMs = nowWallMs();
  const okAtCut = writer.progress()?.ok ?? 0;
  let healWallMs: number;
  try {
    await sleep(holdMs);
  } finally {
    await lab.healNodes();
    healWallMs = nowWallMs();
  }
  const okDuring = (writer.progress()?.ok ?? 0) - okAtCut;
  ticker.phase = 'healed';
  await ticker.refresh();
  ticker.note(`healed after ${seconds(healWallMs - faultWallMs)}; writes acknowledged through the VIP meanwhile: ${okDuring}`);
  let finalMaster: PairNode = 'a';
  const settleMs = await lab.waitFor(
    'one settled master (VIP on it alone, the other replicating it)',
    async () => {
      for (const node of ['a', 'b'] as const) {
        if (await lab.isSettledMaster(node)) {
          finalMaster = node;
          return true;
        }
      }
      return false;
    },
    REJOIN_TIMEOUT_MS,
  );
  await ticker.refresh();
  const other = upper(PairLab.other(finalMaster));
  ticker.note(
    `settled ${seconds(settleMs)} after the heal: ${upper(finalMaster)} master with the VIP, ${other} replicating it; ` +
      `watching ${seconds(SETTLE_WATCH_MS)}`,
  );
  return { faultWallMs, finalMaster, partitionMs: healWallMs - faultWallMs };
}

/** Lost writes by when they were acknowledged: before `fromMs`, up to `toMs`, after it (writer times). */
function lostByPhase(ops: readonly OpRecord[], lost: ReadonlySet<number>, fromMs: number, toMs: number) {
  const counts = { before: 0, during: 0, after: 0 };
  for (const op of ops) {
    if (op.outcome !== 'ok' || !lost.has(op.value)) continue;
    if (op.endMs < fromMs) counts.before += 1;
    else if (op.endMs <= toMs) counts.during += 1;
    else counts.after += 1;
  }
  return counts;
}

/** Tracks, from the ticker's samples after the fault, when B's Redis became a master and how long both were. */
class SplitBrainWatch {
  bMasterAtWallMs: number | null = null;
  twoMastersSamples = 0;
  private noted = false;

  constructor(
    private readonly ticker: Ticker,
    private readonly fromWallMs: () => number | null,
    /**
     * Say so live: in a partition both masters reach the client; after A's own failure
     * (its Redis dead, its link cut) A's Redis being a master reaches nobody.
     */
    private readonly announce: boolean,
  ) {}

  observe(sample: Sample): void {
    const from = this.fromWallMs();
    if (from === null || sample.atWallMs < from) return;
    const { roles, vipHolders } = sample.status;
    if (roles.b === 'master' && this.bMasterAtWallMs === null) this.bMasterAtWallMs = sample.atWallMs;
    if (roles.a === 'master' && roles.b === 'master') {
      this.twoMastersSamples += 1;
      if (this.announce && !this.noted) {
        this.noted = true;
        this.ticker.note(`SPLIT BRAIN: A and B are both masters (VIP on ${vipHolders.join('+') || 'neither'}); each acknowledges writes`);
      }
    }
  }
}

async function runDemo(args: DemoArgs): Promise<number> {
  const etcd = args.quorum === 'etcd';
  process.stdout.write(
    `redis-ha lab: pair a/b + client c in namespaces ${args.tag}-*, subnet ${args.subnet}.0/24, ` +
      `profile ${args.profile}, quorum ${etcd ? 'etcd (one member on the client host)' : 'none (the pair alone)'}, ` +
      `fault ${args.fault}\n`,
  );
  const lab = await startPair({
    tag: args.tag,
    subnet: args.subnet,
    profile: args.profile,
    // None: no quorum section at all, the daemon's defaults (backend none, prefer availability).
    ...(etcd ? { quorum: { backend: 'etcd' } as const } : {}),
    ...(args.daemonEntry ? { daemonEntry: args.daemonEntry } : {}),
  });
  const ticker = new Ticker(lab, { quorum: args.quorum, followAudit: etcd || args.fault === 'partition' });
  let faultWallMs: number | null = null;
  const watch = new SplitBrainWatch(ticker, () => faultWallMs, args.fault === 'partition');
  ticker.onSample = (sample) => watch.observe(sample);
  let writer: WriterHandle | null = null;
  try {
    process.stdout.write(
      `A=${lab.address('a')} (priority 100)  B=${lab.address('b')} (priority 90)  VIP=${lab.vip}  ` +
        `client=${lab.address('c')}` +
        (etcd ? `  etcd=${lab.address(LAB_WITNESS_HOST)}:${LAB_ETCD_CLIENT_PORT}` : '') +
        '\n',
    );
    ticker.phase = 'election';
    ticker.start();
    const electionMs = await lab.waitFor(
      etcd ? 'A settled as master, holding the leader key' : 'A settled as master',
      async () => (await lab.isSettledMaster('a')) && (!etcd || (await lab.etcd().leader())?.record?.node === 'a'),
      ELECTION_TIMEOUT_MS,
    );
    await ticker.refresh();
    ticker.note(
      `initial election done in ${seconds(electionMs)}: VIP on A, B replicates A` + (etcd ? ', A holds the leader key' : ''),
    );

    writer = lab.startWriter();
    ticker.writer = writer;
    ticker.phase = 'writing';
    const w = writer;
    await lab.waitFor('writer started', () => w.meta() !== null, ELECTION_TIMEOUT_MS);
    ticker.note(`writer started in the client namespace: SADD ha:set at 500/s through ${lab.vip}`);
    await sleep(PRE_FAULT_MS);

    const auditMark = { a: lab.auditRecords('a').length, b: lab.auditRecords('b').length };
    // The split-brain watch starts at the fault (approximately: set again once known).
    faultWallMs = nowWallMs();
    const phase =
      args.fault === 'partition' ? await runPartition(lab, ticker, w, args.quorum) : await runFailover(lab, ticker, w, args.fault);
    faultWallMs = phase.faultWallMs;
    ticker.phase = 'settled';
    await sleep(SETTLE_WATCH_MS);
    ticker.stop();

    const result = await w.stop();
    writer = null;
    const faultWriterMs = phase.faultWallMs - result.meta.startWallMs;
    const finalSet = await lab.readFinalSet(phase.finalMaster, result.meta.key);
    const report = analyseSetTest(result.ops, finalSet);
    const window = unavailabilityWindow(result.ops, faultWriterMs);
    const ackedAfterRecovery = result.ops.filter(
      (op) => op.outcome === 'ok' && window.firstOkAfter !== null && op.startMs >= window.firstOkAfter.startMs,
    );
    const lostAfterRecovery = ackedAfterRecovery.filter((op) => !finalSet.has(op.value)).length;
    // When the lost writes were acknowledged, relative to the partition (before the cut,
    // during it, after the heal); `null` for the other faults.
    const lostWhen =
      phase.partitionMs === null ? null : lostByPhase(result.ops, new Set(report.lost), faultWriterMs, faultWriterMs + phase.partitionMs);
    const keyHolder = etcd ? ((await lab.etcd().leader().catch(() => null))?.record ?? null) : null;
    const auditSinceFault = {
      a: lab.auditRecords('a').slice(auditMark.a),
      b: lab.auditRecords('b').slice(auditMark.b),
    };
    const bPromotedInAudit = auditSinceFault.b.some((r) => r['event'] === 'transition' && r['to'] === 'MASTER');
    const bPromoted = bPromotedInAudit || watch.bMasterAtWallMs !== null;
    const bMasterAfterMs = watch.bMasterAtWallMs === null ? null : Math.max(0, watch.bMasterAtWallMs - phase.faultWallMs);
    const twoMastersMs = watch.twoMastersSamples * TICK_MS;

    const out: string[] = [];
    out.push('', `=== summary (quorum: ${args.quorum}, fault: ${args.fault}, profile: ${args.profile}) ===`);
    if (phase.partitionMs === null) {
      out.push(`fault -> first acknowledged write through the VIP: ${seconds(window.faultToFirstOkMs)}`);
      out.push(`write gap (last ok before the fault -> first ok after): ${seconds(window.windowMs)}`);
      out.push(
        `longest write gap from the fault to the end: ${seconds(window.longestGapMs)}` +
          (args.fault === 'daemon-term' ? ' (the old master serves until it releases the VIP: this is the outage)' : ''),
      );
    } else {
      out.push(
        `partition: A and B cut from each other for ${seconds(phase.partitionMs)}, the client${etcd ? ' and etcd' : ''} reaching both`,
      );
      out.push(
        bPromoted
          ? `B promoted during the partition: yes${bMasterAfterMs === null ? '' : `, its Redis a master ${seconds(bMasterAfterMs)} after the cut`}`
          : `B promoted during the partition: no` +
              (auditSinceFault.b.some((r) => r['event'] === 'quorum-held-by-other')
                ? ' (it asked etcd for the leader key and was told A holds it)'
                : ''),
      );
      out.push(
        `two masters at once: ${twoMastersMs > 0 ? `yes, for about ${seconds(twoMastersMs)}` : 'never'} (both Redis roles, sampled every ${TICK_MS} ms)`,
      );
      out.push(`longest write gap from the cut to the end: ${seconds(window.longestGapMs)}`);
    }
    out.push(
      `writes: attempted ${report.attempted}, acknowledged ${report.acknowledged}, failed ${report.failed}, ` +
        `unknown ${report.unknown} (${report.unknownPresent} of them applied)`,
    );
    out.push(
      `acknowledged writes lost: ${report.lost.length}` +
        (report.lost.length ? ` (values ${report.lost.slice(0, 10).join(', ')}${report.lost.length > 10 ? ', ...' : ''})` : '') +
        (lostWhen === null
          ? `; lost after B took over: ${lostAfterRecovery}`
          : report.lost.length
            ? `; acknowledged ${lostWhen.before} before the cut, ${lostWhen.during} during it, ${lostWhen.after} after the heal, ` +
              `by ${upper(PairLab.other(phase.finalMaster))}, which resynced from ${upper(phase.finalMaster)} at the heal`
            : '') +
        `; unexpected values: ${report.unexpected.length}`,
    );
    out.push(`final set on ${upper(phase.finalMaster)}: ${report.finalSize} members`);
    if (etcd) out.push(`leader key at the end: ${keyHolder ? `${upper(keyHolder.node)} (epoch ${keyHolder.epoch})` : 'nobody'}`);
    out.push('', 'audit-log transitions (node, event, from -> to, reason):');
    for (const node of ['a', 'b'] as const) {
      for (const record of lab.auditRecords(node)) {
        const event = String(record['event'] ?? record['type'] ?? '');
        if (SUMMARY_AUDIT_EVENT.test(event)) out.push(`  ${formatAudit(node, record)}`);
      }
    }
    process.stdout.write(`${out.join('\n')}\n`);

    if (args.resultFile !== undefined) {
      const demoResult: DemoResult = {
        quorum: args.quorum,
        fault: args.fault,
        profile: args.profile,
        attempted: report.attempted,
        acknowledged: report.acknowledged,
        failed: report.failed,
        unknown: report.unknown,
        lost: report.lost.length,
        lostAfterTakeover: phase.partitionMs === null ? lostAfterRecovery : null,
        unexpected: report.unexpected.length,
        faultToFirstOkMs: window.faultToFirstOkMs,
        longestGapMs: window.longestGapMs,
        partitionMs: phase.partitionMs,
        finalMaster: phase.finalMaster,
        bPromoted,
        bMasterAfterMs,
        twoMastersMs,
        keyHolder: keyHolder?.node ?? null,
        auditSinceFault: {
          a: auditSinceFault.a.map((r) => String(r['event'] ?? '')),
          b: auditSinceFault.b.map((r) => String(r['event'] ?? '')),
        },
      };
      writeFileSync(args.resultFile, `${JSON.stringify(demoResult, null, 2)}\n`);
    }
    return 0;
  } catch (error) {
    ticker.stop();
    process.stderr.write(`\ndemo failed: ${errorMessage(error)}\n`);
    return EXIT_FAILED;
  } finally {
    ticker.stop();
    if (writer) {
      try {
        await writer.stop();
      } catch {
        // Teardown kills it anyway.
      }
    }
    process.stdout.write('tearing the lab down...\n');
    await lab.teardown();
  }
}

async function main(): Promise<void> {
  const args = parseDemoArgs(process.argv.slice(2));
  if (!isRoot()) {
    process.stderr.write(
      'the lab demo must run as root: it creates network namespaces, a bridge and veth pairs ' +
        '(try: sudo npm run lab)\n',
    );
    process.exit(EXIT_NOT_ROOT);
  }
  installSignalCleanup();
  process.exitCode = await runDemo(args);
}

main().catch((error: unknown) => {
  process.stderr.write(`demo: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(EXIT_FAILED);
});
