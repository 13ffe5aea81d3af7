/**
 * A redis-ha pair on fake time: two real `Runtime`s (`src/daemon/runtime.ts`) driven by
 * the in-memory world (`world.ts`), network (`net.ts`), Redis (`redis-model.ts`,
 * `redis-adapter.ts`), hosts (`host.ts`) and client (`client.ts`). This file builds
 * them, runs each daemon's life (start from the state file, stop, detach, crash,
 * restart), turns the faults of a history into world events, and hands every step to
 * the invariant checker (`invariants.ts`).
 *
 * `simulate()` runs one history and returns what the tests assert on, with a trace
 * (role changes, faults, VIP and Redis changes) for failure messages.
 */
import type { CoreConfig } from '../../src/core/state.js';
import { initialState } from '../../src/core/state.js';
import type { Event } from '../../src/core/types.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { Runtime, type RequestEvent, type RuntimeDeps } from '../../src/daemon/runtime.js';
import { Client } from './client.js';
import { describeFault, faultEnd, type Fault } from './faults.js';
import { HostVip, persister, SimVipManager, StateFile, type AuditRecord } from './host.js';
import { describe, Invariants, settleMs, type Observed, type Timing } from './invariants.js';
import { Network, Receiver, Sender } from './net.js';
import { SimRedisAdapter, type Injector } from './redis-adapter.js';
import { ADDRESS, REDIS_PORT, RedisModel } from './redis-model.js';
import { Incarnation, NODES, OTHER, World, type NodeId } from './world.js';

export type { Timing } from './invariants.js';

/** The daemon's defaults (advert 1 s, health 500 ms, reconcile 2 s, stall threshold 1 s). */
export const DEFAULT_TIMING: Timing = { advertIntervalMs: 1000, healthIntervalMs: 500, reconcileIntervalMs: 2000, stallThresholdMs: 1000 };
/** Tight timing, where effects take a good part of an advert interval. */
export const FAST_TIMING: Timing = { advertIntervalMs: 100, healthIntervalMs: 100, reconcileIntervalMs: 500, stallThresholdMs: 100 };

/** The daemons' boot times are wall-clock milliseconds: this is the wall clock at fake time 0. */
const WALL_CLOCK_AT_ZERO_MS = 1_800_000_000_000;
/** systemd's TimeoutStopSec: a daemon that has not exited by then is killed. */
const STOP_TIMEOUT_MS = 5_000;
const PRIORITY: Readonly<Record<NodeId, number>> = { a: 100, b: 90 };
const logger = silentLogger();

export interface SimOptions {
  readonly seed: number;
  readonly timing: Timing;
  readonly faults: readonly Fault[];
  readonly preempt?: boolean;
  /** Run this long after the last fault has ended (default: `settleMs(timing)`). */
  readonly settleMs?: number;
  /** Check the no-lost-write property at the end (histories without partitions). */
  readonly lossFree?: boolean;
  /** Build each daemon's initial state after its start-up probe, as `runDaemon` does (see `startDaemon`). */
  readonly productionStartup?: boolean;
  /** Skip the end-state checks (scenarios that stop mid-way). */
  readonly noSettleCheck?: boolean;
}

/** What a history exercised, summed over a property's runs to show its coverage. */
export interface SimStats {
  /** Histories run (1 for one). */
  readonly histories: number;
  /** Transitions into MASTER. */
  readonly masters: number;
  readonly stallsDetected: number;
  /** Effects that failed on purpose and were handed back to the core. */
  readonly effectFailures: number;
  /** Datagrams the replay guard dropped (duplicated or overtaken). */
  readonly replayDrops: number;
  readonly switchoversOk: number;
  readonly writesAcked: number;
  /** Acknowledged writes discarded by a resync (partitions, crashes). */
  readonly writesDiscarded: number;
  /** Longest time both hosts held the VIP with both Redis writable, once the pair was quiet. */
  readonly maxDualMs: number;
  /** Heap entries run. */
  readonly steps: number;
}

export function addStats(x: SimStats, y: SimStats): SimStats {
  const sum = Object.fromEntries(Object.keys(x).map((k) => [k, x[k as keyof SimStats] + y[k as keyof SimStats]])) as unknown as SimStats;
  return { ...sum, maxDualMs: Math.max(x.maxDualMs, y.maxDualMs) };
}

export const NO_STATS: SimStats = {
  histories: 0, masters: 0, stallsDetected: 0, effectFailures: 0, replayDrops: 0, switchoversOk: 0, writesAcked: 0,
  writesDiscarded: 0, maxDualMs: 0, steps: 0,
};

export interface SimResult {
  readonly stats: SimStats;
  readonly violations: readonly string[];
  readonly trace: readonly string[];
  /** Operator requests answered: `<node> <requestId> ok|failed: detail`. */
  readonly replies: readonly string[];
  readonly audit: readonly AuditRecord[];
  readonly pair: SimPair;
}

interface SimNode {
  readonly id: NodeId;
  readonly config: CoreConfig;
  readonly vip: HostVip;
  readonly file: StateFile;
  incarnations: number;
  inc: Incarnation | null;
  runtime: Runtime | null;
  receiver: Receiver | null;
  sender: Sender | null;
}

/** Runs one history to its end and checks it. */
export async function simulate(opts: SimOptions): Promise<SimResult> {
  const pair = new SimPair(opts);
  await pair.run();
  const count = (event: string): number => pair.audit.filter((x) => x.event === event).length;
  const acked = new Set(pair.client.acked.map((w) => w.id));
  const stats: SimStats = {
    histories: 1,
    masters: pair.audit.filter((x) => x.event === 'transition' && x.data['to'] === 'MASTER').length,
    stallsDetected: count('stall-detected'),
    effectFailures: count('effect-failed'),
    replayDrops: pair.net.drops['replayed'] ?? 0,
    switchoversOk: pair.replies.filter((l) => / s\d+ ok:/.test(l)).length,
    writesAcked: acked.size,
    writesDiscarded: pair.redis.discarded.filter((id) => acked.has(id)).length,
    maxDualMs: pair.checker.maxDualMs,
    steps: pair.world.steps,
  };
  return { stats, violations: pair.checker.violations, trace: pair.trace, replies: pair.replies, audit: pair.audit, pair };
}

export class SimPair implements Observed {
  readonly world: World;
  readonly net: Network;
  readonly redis: RedisModel;
  readonly client: Client;
  readonly timing: Timing;
  readonly checker: Invariants;
  readonly trace: string[] = [];
  readonly replies: string[] = [];
  readonly audit: AuditRecord[] = [];
  readonly nodes: Record<NodeId, SimNode>;
  private readonly restartedAt: Record<NodeId, number> = { a: -1, b: -1 };
  private readonly injectedAt: Record<NodeId, number> = { a: -Infinity, b: -Infinity };
  private requests = 0;

  constructor(private readonly opts: SimOptions) {
    this.timing = opts.timing;
    this.world = new World(opts.seed);
    this.net = new Network(this.world, opts.faults);
    this.redis = new RedisModel(this.world, this.net);
    this.client = new Client(this.world, this.redis);
    const node = (id: NodeId): SimNode => ({
      id, config: coreConfig(id, opts.timing, opts.preempt ?? false), vip: new HostVip(id, this.world, this.client),
      file: new StateFile(), incarnations: 0, inc: null, runtime: null, receiver: null, sender: null,
    });
    this.nodes = { a: node('a'), b: node('b') };
    this.client.vips = { a: this.nodes.a.vip, b: this.nodes.b.vip };
    this.client.roleOf = (n) => this.nodes[n].runtime?.current.role ?? 'down';
    this.client.reachable = (n) => this.linkUp(n);
    this.checker = new Invariants(this);
  }

  runtime(node: NodeId): Runtime | null {
    return this.nodes[node].runtime;
  }

  vip(node: NodeId): HostVip {
    return this.nodes[node].vip;
  }

  file(node: NodeId): StateFile {
    return this.nodes[node].file;
  }

  redisRestartedAt(node: NodeId): number {
    return this.restartedAt[node];
  }

  lastInjectedFailure(node: NodeId): number {
    return this.injectedAt[node];
  }

  /** The time the history ends: the last fault's end plus the settle time. */
  get endMs(): number {
    const last = Math.max(0, ...this.opts.faults.map((f) => faultEnd(f, this.timing.advertIntervalMs)));
    return last + (this.opts.settleMs ?? settleMs(this.timing));
  }

  async run(): Promise<void> {
    const end = this.endMs;
    for (const n of NODES) this.world.at(this.world.int(0, 200), () => void this.startDaemon(n));
    for (const f of this.opts.faults) this.schedule(f);
    this.client.start(Math.max(20, this.timing.advertIntervalMs / 10), end);
    await this.world.run(end, () => this.checker.observe());
    this.note(`end: ${describe(this)}`);
    if (!this.opts.noSettleCheck) this.checker.settled(this.opts.lossFree ?? false);
  }

  /**
   * An operator's request on `node`'s control socket (I/O for its daemon). With
   * `retryEveryMs`, a request that fails (daemon down, no answer) is asked again, as an
   * operator ending maintenance would until it is off.
   */
  request(node: NodeId, event: RequestEvent, waitMs: number, retryEveryMs?: number): void {
    const n = this.nodes[node];
    const inc = n.inc;
    let done = false;
    const answered = (ok: boolean, detail: string): void => {
      if (done) return;
      done = true;
      this.replies.push(`${node} ${event.requestId} ${ok ? 'ok' : 'failed'}: ${detail}`);
      this.note(`${node} answered ${event.requestId}: ${ok ? 'ok' : 'failed'}: ${detail}`);
      if (!ok && retryEveryMs !== undefined) {
        this.world.at(this.world.now + retryEveryMs, () => this.request(node, event, waitMs, retryEveryMs));
      }
    };
    if (inc === null || n.runtime === null) {
      answered(false, 'daemon not running');
      return;
    }
    this.world.io(node, inc, 0, () => {
      if (n.runtime === null) answered(false, 'daemon not running');
      else void n.runtime.request(event, waitMs).then((r) => answered(r.ok, r.detail));
    });
    // The CLI's own bound: a daemon killed meanwhile never answers.
    this.world.at(this.world.now + waitMs + 1, () => answered(false, 'no answer (the daemon went away)'));
  }

  note(line: string): void {
    this.trace.push(`${Math.round(this.world.now)} ${line}`);
  }

  private schedule(f: Fault): void {
    const { world } = this;
    const end = faultEnd(f, this.timing.advertIntervalMs);
    world.at(f.at, () => this.note(`fault ${describeFault(f)}`));
    switch (f.kind) {
      case 'partition':
        world.at(f.at, () => this.redis.kickAll());
        world.at(end, () => this.redis.kickAll());
        return;
      case 'loss':
      case 'jitter':
      case 'link-down':
        return;
      case 'redis-crash':
        world.at(f.at, () => this.redis.crash(f.node));
        world.at(end, () => {
          this.redis.crash(f.node);
          this.redis.restart(f.node, f.keepData);
          this.restartedAt[f.node] = world.now;
          this.note(`${f.node} Redis restarted ${f.keepData ? 'with its data' : 'empty'}`);
        });
        return;
      case 'stall':
        world.at(f.at, () => world.stall(f.node, end));
        world.at(end, () => this.note(`${f.node} daemon resumes`));
        return;
      case 'restart':
        world.at(f.at, () => this.stopDaemon(f.node, f.how, f.execStopPost));
        world.at(end, () => {
          if (this.nodes[f.node].inc !== null) this.kill(f.node, 'still running at restart time', f.execStopPost && f.how !== 'detach');
          void this.startDaemon(f.node);
        });
        return;
      case 'switchover': {
        const requestId = `s${++this.requests}`;
        world.at(f.at, () => this.request(f.node, {
          type: 'switchover-requested', requestId, timeoutMs: f.timeoutMs, force: f.force, user: 'sim', origin: 'local',
        }, f.timeoutMs + 15_000));
        return;
      }
      case 'maintenance': {
        const on = `m${++this.requests}`;
        const off = `m${++this.requests}`;
        world.at(f.at, () => this.request(f.node, { type: 'maintenance-requested', requestId: on, on: true, user: 'sim' }, 5_000));
        world.at(end, () => {
          this.request(f.offOn, { type: 'maintenance-requested', requestId: off, on: false, user: 'sim' }, 5_000, 500);
          this.operatorEndsMaintenance(1);
        });
        return;
      }
      case 'flaky':
        return;
      default: {
        const never: never = f;
        throw new Error(`unknown fault ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * The operator checks `redis-ha status` every two advert intervals and repeats
   * `maintenance off` on any daemon that still reports it on, until both are off (a
   * daemon restarted meanwhile may only learn of the flag from its peer afterwards).
   */
  private operatorEndsMaintenance(round: number): void {
    const MAX_ROUNDS = 30;
    this.world.at(this.world.now + 2 * this.timing.advertIntervalMs, () => {
      const on = NODES.filter((n) => this.nodes[n].runtime?.current.maintenance.on === true);
      const down = NODES.some((n) => this.nodes[n].runtime === null);
      for (const n of on) {
        this.request(n, { type: 'maintenance-requested', requestId: `m${++this.requests}`, on: false, user: 'sim' }, 5_000);
      }
      if ((on.length > 0 || down) && round < MAX_ROUNDS) this.operatorEndsMaintenance(round + 1);
    });
  }

  /** `redis-ha run`: boot time, start-up probe, VIP found, then the loops (`src/daemon/run.ts`). */
  private async startDaemon(id: NodeId): Promise<void> {
    const n = this.nodes[id];
    // One daemon per host (systemd): a restart that came first already started it.
    if (n.inc !== null) return;
    const inc = new Incarnation(id, ++n.incarnations);
    n.inc = inc;
    const bootEpoch = Math.max(WALL_CLOCK_AT_ZERO_MS + Math.round(this.world.now), n.file.content.bootEpoch + 1);
    n.file.write({ ...n.file.content, bootEpoch });
    const inject = this.injector(id);
    const redis = new SimRedisAdapter(id, inc, this.world, this.net, this.redis, inject);
    const vip = new SimVipManager(n.vip, inc, this.world, inject);
    const startedAt = this.world.now;
    const probe = await redis.check();
    const vipPresent = await vip.isPresent();
    const sender = new Sender(id, bootEpoch);
    const deps: RuntimeDeps = {
      core: n.config,
      healthIntervalMs: this.timing.healthIntervalMs,
      reconcileIntervalMs: this.timing.reconcileIntervalMs,
      redis: {
        check: () => redis.check(),
        promote: (from) => {
          this.checker.acting(id, 'promote-redis');
          const peer = this.nodes[id].runtime?.current.peer;
          const afterFault = from === null && peer != null && (peer.state === 'FAULT' || peer.flags.fault);
          return redis.promote(from, afterFault);
        },
        replicateFrom: (master) => redis.replicateFrom(master),
        switchOver: (call) => redis.switchOver(call),
        disconnectClients: () => redis.disconnectClients(),
      },
      link: () => Promise.resolve(this.linkUp(id) ? { up: true, detail: 'interface eth0 up' } : { up: false, detail: 'interface eth0 is down (no carrier)' }),
      vip: {
        isPresent: () => vip.isPresent(),
        claim: () => {
          this.checker.acting(id, 'claim-vip');
          return vip.claim();
        },
        release: () => vip.release(),
        announce: () => vip.announce(),
      },
      adverts: {
        send: (body) => this.transmit(id, sender.advert(body)),
        sendMessage: (message) => this.transmit(id, sender.message(message)),
      },
      audit: {
        append: (event, data) => {
          this.audit.push({ node: id, at: this.world.now, event, data });
          return Promise.resolve();
        },
      },
      persist: persister(n.file, inc, this.world, inject),
      logger,
      clock: this.world.clock,
      scheduler: this.world.scheduler(inc),
      stallThresholdMs: this.timing.stallThresholdMs,
      observer: {
        stepped: (before, after, event) => {
          if (before.role !== after.role) this.note(`${id} ${before.role}->${after.role} e${after.epoch}: ${after.reason}`);
          else if (event.type === 'stalled') this.note(`${id} stall detected: ${after.reason}`);
        },
      },
    };
    // `runDaemon` builds the initial state after the probe, which makes the probe older
    // than `redisChangedAt`, so the core drops its snapshot and adverts say "Redis
    // unknown" until the next check (reported: see findings.test.ts). The simulation
    // builds it as of the probe's start, so the properties test everything else;
    // `productionStartup` keeps the daemon's order.
    const builtAt = this.opts.productionStartup === true ? this.world.now : startedAt;
    const runtime = new Runtime(deps, initialState(builtAt, n.file.content));
    n.runtime = runtime;
    n.sender = sender;
    n.receiver = new Receiver(id, (reason) => this.net.drop(reason));
    this.checker.started(id, runtime);
    this.note(`${id} daemon started (run ${inc.number}, epoch ${runtime.current.epoch}, VIP ${vipPresent ? 'present' : 'absent'})`);
    runtime.start({
      vipPresent,
      firstCheck: { type: 'health-checked', ok: probe.ok, detail: probe.detail, redis: probe.redis, startedAt },
    });
    void runtime.done.then((code) => {
      if (n.inc === inc) this.kill(id, `exited with status ${code}`, false);
    });
  }

  /** SIGTERM (`stop`), SIGUSR2 (`detach`) or SIGKILL (`crash`); ExecStopPost follows the end. */
  private stopDaemon(id: NodeId, how: 'stop' | 'detach' | 'crash', execStopPost: boolean): void {
    const n = this.nodes[id];
    const inc = n.inc;
    if (inc === null) return;
    const releaseAfter = execStopPost && how !== 'detach';
    if (how === 'crash') {
      this.kill(id, 'killed', releaseAfter);
      return;
    }
    const event: Event = how === 'stop' ? { type: 'shutdown-requested' } : { type: 'detach-requested' };
    // A signal is I/O for the daemon: a stalled one handles it when it wakes up.
    this.world.io(id, inc, 0, () => n.runtime?.dispatch(event));
    void n.runtime?.done.then(() => {
      if (n.inc === inc) this.kill(id, `exited after ${how}`, releaseAfter);
    });
    this.world.at(this.world.now + STOP_TIMEOUT_MS, () => {
      if (n.inc === inc) this.kill(id, 'killed after the stop timeout', releaseAfter);
    });
  }

  /** The daemon process is gone; ExecStopPost (`redis-ha release-vip`) removes the VIP if asked. */
  private kill(id: NodeId, why: string, releaseVip: boolean): void {
    const n = this.nodes[id];
    if (n.inc === null) return;
    n.inc.alive = false;
    n.inc = null;
    n.runtime = null;
    n.sender = null;
    n.receiver = null;
    const released = releaseVip && n.vip.remove();
    this.note(`${id} daemon ${why}${released ? '; ExecStopPost removed the VIP' : ''}`);
  }

  private transmit(from: NodeId, buf: Buffer): void {
    const to = OTHER[from];
    this.net.send(from, to, buf, (b) => {
      const n = this.nodes[to];
      if (n.runtime === null || n.receiver === null) {
        this.net.drop('daemon-down');
        return;
      }
      const event = n.receiver.accept(b, ADDRESS[from]);
      if (event !== null) n.runtime.dispatch(event);
    });
  }

  /** The node's VIP interface has its carrier (no `link-down` fault active). */
  linkUp(node: NodeId): boolean {
    const now = this.world.now;
    return !this.opts.faults.some((f) => f.kind === 'link-down' && f.node === node && now >= f.at && now < f.at + f.durationMs);
  }

  /** Effects of `node` throw while a `flaky` fault is active on it. */
  private injector(node: NodeId): Injector {
    return () => {
      const now = this.world.now;
      const f = this.opts.faults.find((x) => x.kind === 'flaky' && x.node === node && now >= x.at && now < x.at + x.durationMs);
      if (f === undefined || f.kind !== 'flaky' || !this.world.chance(f.rate)) return null;
      this.injectedAt[node] = now;
      return this.world.chance(0.5) ? 'before' : 'after';
    };
  }
}

function coreConfig(id: NodeId, t: Timing, preempt: boolean): CoreConfig {
  return {
    nodeName: id,
    nodeAddress: ADDRESS[id],
    priority: PRIORITY[id],
    preempt,
    preemptDelayMs: preempt ? 2 * t.advertIntervalMs : 0,
    advertIntervalMs: t.advertIntervalMs,
    fall: 2,
    rise: 2,
    garpRefreshMs: 10 * t.advertIntervalMs,
    peerRedis: { host: ADDRESS[OTHER[id]], port: REDIS_PORT },
    switchoverMaxLagBytes: 1_000_000,
  };
}
