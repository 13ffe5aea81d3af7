/**
 * The live demo (`bash scripts/lab.sh`, or `node dist-tools/tools/lab/demo.js` after
 * `npm run build && npm run build:tools`; root only): builds the pair lab, waits for
 * the initial election, starts the set-test writer in the client namespace writing
 * through the VIP, shows a compact status line every 250 ms, injects one fault into
 * node A after about five seconds, shows the failover as it happens, waits until B
 * holds the VIP and writes flow again, repairs A and shows it rejoin as a replica of B,
 * then prints what it measured (fault to first acknowledged write through the VIP,
 * acknowledged writes lost, the audit-log transitions with their reasons) and tears
 * everything down, also on Ctrl-C.
 *
 * Usage: demo.js [--fault redis-kill|link-cut|daemon-term] [--profile default|fast]
 *                [--tag rhdemo] [--subnet 10.77.50] [--daemon-entry JS]
 */
import { parseArgs } from 'node:util';
import { analyseSetTest, unavailabilityWindow, type WriterProgress } from './analysis.js';
import { installSignalCleanup, isRoot } from './netns.js';
import { nowWallMs, PairLab, startPair, type AuditRecord, type LabProfile, type PairStatus, type WriterHandle } from './pair.js';
import { errorMessage } from '../../src/errors.js';

/** Faults the demo can inject into node A. */
export type DemoFault = 'redis-kill' | 'link-cut' | 'daemon-term';
const FAULTS: readonly DemoFault[] = ['redis-kill', 'link-cut', 'daemon-term'];
const PROFILE_NAMES: readonly LabProfile[] = ['default', 'fast'];

const DEFAULT_TAG = 'rhdemo';
const DEFAULT_SUBNET = '10.77.50';
/** Status line period. */
const TICK_MS = 250;
/** Writes run this long before the fault. */
const PRE_FAULT_MS = 5_000;
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

interface DemoArgs {
  readonly fault: DemoFault;
  readonly profile: LabProfile;
  readonly tag: string;
  readonly subnet: string;
  /** Daemon entry override (testing the demo itself); default `dist/cli/main.js`. */
  readonly daemonEntry: string | undefined;
}

function usage(message: string): never {
  process.stderr.write(
    `${message}\nusage: demo.js [--fault ${FAULTS.join('|')}] [--profile ${PROFILE_NAMES.join('|')}] [--tag T] [--subnet 10.77.N]\n`,
  );
  process.exit(EXIT_USAGE);
}

function parseDemoArgs(argv: readonly string[]): DemoArgs {
  let values: { fault?: string; profile?: string; tag?: string; subnet?: string; 'daemon-entry'?: string };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        fault: { type: 'string' },
        profile: { type: 'string' },
        tag: { type: 'string' },
        subnet: { type: 'string' },
        'daemon-entry': { type: 'string' },
      },
      strict: true,
    }));
  } catch (error) {
    usage(errorMessage(error));
  }
  const fault = (values.fault ?? 'redis-kill') as DemoFault;
  if (!FAULTS.includes(fault)) usage(`unknown --fault ${values.fault}`);
  const profile = (values.profile ?? 'default') as LabProfile;
  if (!PROFILE_NAMES.includes(profile)) usage(`unknown --profile ${values.profile}`);
  return {
    fault,
    profile,
    tag: values.tag ?? DEFAULT_TAG,
    subnet: values.subnet ?? DEFAULT_SUBNET,
    daemonEntry: values['daemon-entry'],
  };
}

function seconds(ms: number | null | undefined): string {
  return ms === null || ms === undefined || Number.isNaN(ms) ? 'n/a' : `${(ms / 1000).toFixed(2)} s`;
}

function roleName(role: string): string {
  return role === 'replica' ? 'replica' : role;
}

/** The live status line: time, VIP holder, roles, writer counters, phase. */
class Ticker {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private lastKey = '';
  private readonly tty = process.stdout.isTTY === true;
  private readonly origin = nowWallMs();
  phase = 'starting';
  writer: WriterHandle | null = null;
  latest: PairStatus | null = null;

  constructor(private readonly lab: PairLab) {}

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

  private stamp(): string {
    return `t=${((nowWallMs() - this.origin) / 1000).toFixed(2).padStart(6)}s`;
  }

  private async tick(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const status = await this.lab.status();
      this.latest = status;
      const p: WriterProgress | null = this.writer?.progress() ?? null;
      const vip = status.vipHolders.length ? status.vipHolders.join('+') : '-';
      const key = `${vip}|${status.roles.a}|${status.roles.b}|${this.phase}`;
      const writes = p ? `writes ok=${p.ok} failed=${p.failed} unknown=${p.unknown}` : 'writes -';
      const line =
        `${this.stamp()}  VIP=${vip.padEnd(3)}  A=${roleName(status.roles.a).padEnd(7)}  ` +
        `B=${roleName(status.roles.b).padEnd(7)}  ${writes}  [${this.phase}]`;
      if (this.tty) {
        // Keep the previous line when something other than the counters changed.
        process.stdout.write(`${key === this.lastKey ? '\r\x1b[2K' : '\n'}${line}`);
      } else {
        process.stdout.write(`${line}\n`);
      }
      this.lastKey = key;
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
  const reason = pick('reason') ?? pick('detail');
  const parts = [`${typeof time === 'string' ? time.replace(/^.*T/, '') : String(time ?? '')}`, node.toUpperCase(), event];
  if (from !== undefined || to !== undefined) parts.push(`${String(from)} -> ${String(to)}`);
  if (reason !== undefined) parts.push(`"${String(reason).slice(0, AUDIT_DETAIL_MAX)}"`);
  return parts.join('  ');
}

async function injectFault(lab: PairLab, fault: DemoFault): Promise<void> {
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

async function repair(lab: PairLab, fault: DemoFault): Promise<string> {
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

function describeFault(fault: DemoFault): string {
  switch (fault) {
    case 'redis-kill':
      return "SIGKILL A's Redis";
    case 'link-cut':
      return "cut A's link (bridge-side veth down)";
    case 'daemon-term':
      return "SIGTERM A's daemon";
  }
}

async function runDemo(args: DemoArgs): Promise<number> {
  process.stdout.write(
    `redis-ha lab: pair a/b + client c in namespaces ${args.tag}-*, subnet ${args.subnet}.0/24, ` +
      `profile ${args.profile}, fault ${args.fault}\n`,
  );
  const lab = await startPair({
    tag: args.tag,
    subnet: args.subnet,
    profile: args.profile,
    ...(args.daemonEntry ? { daemonEntry: args.daemonEntry } : {}),
  });
  const ticker = new Ticker(lab);
  let writer: WriterHandle | null = null;
  try {
    process.stdout.write(
      `A=${lab.address('a')} (priority 100)  B=${lab.address('b')} (priority 90)  VIP=${lab.vip}  ` +
        `client=${lab.address('c')}\n`,
    );
    ticker.phase = 'election';
    ticker.start();
    const electionMs = await lab.waitFor('A settled as master', () => lab.isSettledMaster('a'), ELECTION_TIMEOUT_MS);
    ticker.note(`initial election done in ${seconds(electionMs)}: VIP on A, B replicates A`);

    writer = lab.startWriter();
    ticker.writer = writer;
    ticker.phase = 'writing';
    const w = writer;
    await lab.waitFor('writer started', () => w.meta() !== null, ELECTION_TIMEOUT_MS);
    ticker.note(`writer started in the client namespace: SADD ha:set at 500/s through ${lab.vip}`);
    await new Promise((resolve) => setTimeout(resolve, PRE_FAULT_MS));

    ticker.phase = `fault: ${args.fault}`;
    // A link cut takes effect when `ip` returns (ops issued meanwhile still reach A); the
    // other faults start when they are sent.
    ticker.note(`FAULT: ${describeFault(args.fault)}`);
    let faultWallMs = nowWallMs();
    await injectFault(lab, args.fault);
    if (args.fault === 'link-cut') faultWallMs = nowWallMs();
    const faultWriterMs = w.toWriterMs(faultWallMs);

    const failoverMs = await lab.waitFor(
      'B holding the VIP as master with writes flowing again',
      async () => {
        const p = w.progress();
        if (!p || p.lastOkMs === null || p.lastOkMs <= faultWriterMs) return false;
        const [holders, roleB] = await Promise.all([lab.vipHolders(), lab.redisRole('b')]);
        return holders.includes('b') && roleB === 'master';
      },
      FAILOVER_TIMEOUT_MS,
    );
    ticker.note(`failover: B is master with the VIP and writes flow (observed ${seconds(failoverMs)} after the fault)`);

    ticker.phase = 'repair';
    ticker.note(await repair(lab, args.fault));
    const rejoinMs = await lab.waitFor(
      'A rejoined as a replica of B, VIP on B only',
      () => lab.isSettledMaster('b'),
      REJOIN_TIMEOUT_MS,
    );
    ticker.note(`A rejoined as a replica of B in ${seconds(rejoinMs)}; watching ${seconds(SETTLE_WATCH_MS)}`);
    ticker.phase = 'settled';
    await new Promise((resolve) => setTimeout(resolve, SETTLE_WATCH_MS));
    ticker.stop();

    const result = await w.stop();
    writer = null;
    const finalSet = await lab.readFinalSet('b', result.meta.key);
    const report = analyseSetTest(result.ops, finalSet);
    const window = unavailabilityWindow(result.ops, faultWriterMs);
    const ackedAfterRecovery = result.ops.filter(
      (op) => op.outcome === 'ok' && window.firstOkAfter !== null && op.startMs >= window.firstOkAfter.startMs,
    );
    const lostAfterRecovery = ackedAfterRecovery.filter((op) => !finalSet.has(op.value)).length;

    const out: string[] = [];
    out.push('', `=== summary (fault: ${args.fault}, profile: ${args.profile}) ===`);
    out.push(`fault -> first acknowledged write through the VIP: ${seconds(window.faultToFirstOkMs)}`);
    out.push(`write gap (last ok before the fault -> first ok after): ${seconds(window.windowMs)}`);
    out.push(
      `longest write gap from the fault to the end: ${seconds(window.longestGapMs)}` +
        (args.fault === 'daemon-term' ? ' (the old master serves until it releases the VIP: this is the outage)' : ''),
    );
    out.push(
      `writes: attempted ${report.attempted}, acknowledged ${report.acknowledged}, failed ${report.failed}, ` +
        `unknown ${report.unknown} (${report.unknownPresent} of them applied)`,
    );
    out.push(
      `acknowledged writes lost: ${report.lost.length}` +
        (report.lost.length ? ` (values ${report.lost.slice(0, 10).join(', ')}${report.lost.length > 10 ? ', ...' : ''})` : '') +
        `; lost after B took over: ${lostAfterRecovery}; unexpected values: ${report.unexpected.length}`,
    );
    out.push(`final set on B: ${report.finalSize} members`);
    out.push('', 'audit-log transitions (node, event, from -> to, reason):');
    for (const node of ['a', 'b'] as const) {
      for (const record of lab.auditRecords(node)) {
        const event = String(record['event'] ?? record['type'] ?? '');
        if (event === 'transition' || /promot|demot|vip|master|stop|start/.test(event)) {
          out.push(`  ${formatAudit(node, record)}`);
        }
      }
    }
    process.stdout.write(`${out.join('\n')}\n`);
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
