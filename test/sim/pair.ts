/**
 * A redis-ha pair on fake time: two hosts, each with a real `Runtime`
 * (`src/daemon/runtime.ts`) run by `daemon.ts`, on the in-memory world (`world.ts`),
 * network (`net.ts`), Redis (`redis-model.ts`, `redis-adapter.ts`), hosts (`host.ts`)
 * and client (`client.ts`); with the quorum (`quorum: 'etcd'`), a third host running
 * etcd (`etcd-model.ts`) and each daemon's quorum on it (`quorum-adapter.ts`). This file
 * builds them, turns the faults of a history into world events (and an operator's
 * requests), and hands every step to the invariant checker (`invariants.ts`).
 *
 * `simulate()` runs one history and returns what the tests assert on, with a trace
 * (role changes, faults, restarts, answers) for failure messages.
 */
import { NO_QUORUM, type CoreConfig, type CoreQuorumConfig } from '../../src/core/state.js';
import { DEFAULT_FAULT_VIP_HOLD_MS } from '../../src/core/timing.js';
import type { Runtime, RequestEvent } from '../../src/daemon/runtime.js';
import { Client } from './client.js';
import { SimDaemon, type DaemonEnv } from './daemon.js';
import { CLOCK_RATE_BOUND, EtcdModel, type EtcdTiming } from './etcd-model.js';
import { describeFault, faultEnd, type Fault } from './faults.js';
import { HostVip, StateFile, type AuditRecord } from './host.js';
import { describe, Invariants, settleMs, type Observed, type Timing } from './invariants.js';
import { Network } from './net.js';
import type { Injector } from './redis-adapter.js';
import { ADDRESS, REDIS_PORT, RedisModel } from './redis-model.js';
import { statsOf, type SimStats } from './stats.js';
import { NODES, OTHER, World, type NodeId } from './world.js';

export type { Timing } from './invariants.js';
export { addStats, NO_STATS, type SimStats } from './stats.js';

/**
 * The daemon's defaults (advert 1 s, health 500 ms, reconcile 2 s, stall threshold 1 s);
 * with the quorum, a 2 s lease renewed every 500 ms, calls bounded by 500 ms, etcd's
 * election timeout 250 ms (heartbeat 50 ms: etcd then grants TTLs from 1 s), health
 * timeout 500 ms: renew + call + election = 1250 ms < TTL − fence lead = 1480 ms.
 */
export const DEFAULT_TIMING: Timing = {
  advertIntervalMs: 1000, healthIntervalMs: 500, reconcileIntervalMs: 2000, stallThresholdMs: 1000,
  quorum: { leaseTtlMs: 2000, renewIntervalMs: 500, callTimeoutMs: 500, electionTimeoutMs: 250, healthTimeoutMs: 500 },
};
/**
 * Tight timing, where effects take a good part of an advert interval; with the quorum,
 * etcd's shortest lease (1 s: `etcd3` takes no less), renewed every 200 ms, calls bounded
 * by 200 ms, election timeout 250 ms, health timeout 100 ms: 650 ms < 1000 − 110 ms.
 */
export const FAST_TIMING: Timing = {
  advertIntervalMs: 100, healthIntervalMs: 100, reconcileIntervalMs: 500, stallThresholdMs: 100,
  quorum: { leaseTtlMs: 1000, renewIntervalMs: 200, callTimeoutMs: 200, electionTimeoutMs: 250, healthTimeoutMs: 100 },
};

/** `CoreConfig.quorum.retryMs` with the quorum. */
export const QUORUM_RETRY_MS = 500;

/**
 * The fence lead of the timing rule (`quorumFenceLeadMs` in src/core/timing.ts, issue 11):
 * the clock-rate share of the TTL plus the time the fence takes (the health timeout).
 */
export function fenceLeadMs(q: EtcdTiming): number {
  return Math.ceil(q.leaseTtlMs * CLOCK_RATE_BOUND) + q.healthTimeoutMs;
}

/**
 * The rule itself: a renewal, a call timing out and an etcd election fit in the lease, less
 * the fence lead. Its other half, the VIP's kernel lifetime within the key
 * (`vipLifetimeBoundMs`), is left out: the simulation models no kernel lifetime, and both
 * timings here would fail it (their leases are too short for a 1 s lifetime).
 */
export function quorumTimingOk(q: EtcdTiming): boolean {
  return q.renewIntervalMs + q.callTimeoutMs + q.electionTimeoutMs < q.leaseTtlMs - fenceLeadMs(q);
}

/** Who decides that a node may be master: the pair alone (`none`), or the leader key in etcd. */
export type QuorumMode = 'none' | 'etcd';

const PRIORITY: Readonly<Record<NodeId, number>> = { a: 100, b: 90 };

export interface SimOptions {
  readonly seed: number;
  readonly timing: Timing;
  readonly faults: readonly Fault[];
  readonly preempt?: boolean;
  /** Run this long after the last fault has ended (default: `settleMs(timing)`). */
  readonly settleMs?: number;
  /** Check the no-lost-write property at the end (histories without partitions; with the quorum, any). */
  readonly lossFree?: boolean;
  /** Skip the end-state checks (scenarios that stop mid-way). */
  readonly noSettleCheck?: boolean;
  /** `etcd`: the quorum on a simulated etcd, `prefer: safety`, and the strict checks (`invariants.ts` 4). Default `none`. */
  readonly quorum?: QuorumMode;
  /**
   * The client runs on etcd's host, as in the lab (issue 11: "etcd on the client host"):
   * a node cut from etcd is cut from the client too. Default: with the quorum only. Without
   * it the client reaches both nodes whatever the etcd links do.
   */
  readonly clientBesideEtcd?: boolean;
}

export interface SimResult {
  readonly stats: SimStats;
  readonly violations: readonly string[];
  readonly trace: readonly string[];
  /** Operator requests answered: `<node> <requestId> ok|failed: detail`. */
  readonly replies: readonly string[];
  readonly audit: readonly AuditRecord[];
  readonly pair: SimPair;
}

/** Runs one history to its end and checks it. */
export async function simulate(opts: SimOptions): Promise<SimResult> {
  const pair = new SimPair(opts);
  await pair.run();
  const stats = statsOf({
    audit: pair.audit, replies: pair.replies, replayDrops: pair.net.drops['replayed'] ?? 0,
    ackedIds: new Set(pair.client.acked.map((w) => w.id)), discardedIds: pair.redis.discarded,
    excused: opts.lossFree === true ? pair.redis.excused : new Map(),
    maxDualMs: pair.checker.maxDualMs, maxBothWritableMs: pair.checker.maxBothWritableMs,
    bothWritableExcused: pair.checker.bothWritableExcused, steps: pair.world.steps,
  });
  return { stats, violations: pair.checker.violations, trace: pair.trace, replies: pair.replies, audit: pair.audit, pair };
}

export class SimPair implements Observed, DaemonEnv {
  readonly world: World;
  readonly net: Network;
  readonly redis: RedisModel;
  readonly etcd: EtcdModel | null;
  readonly client: Client;
  readonly timing: Timing;
  readonly checker: Invariants;
  readonly trace: string[] = [];
  readonly replies: string[] = [];
  readonly audit: AuditRecord[] = [];
  readonly daemons: Record<NodeId, SimDaemon>;
  private readonly restartedAt: Record<NodeId, number> = { a: -1, b: -1 };
  private readonly injectedAt: Record<NodeId, number> = { a: -Infinity, b: -Infinity };
  private requests = 0;
  /** Maintenance requests not answered yet (one held by a stalled daemon lands late). */
  private maintenanceInFlight = 0;

  constructor(private readonly opts: SimOptions) {
    this.timing = opts.timing;
    this.world = new World(opts.seed);
    this.net = new Network(this.world, opts.faults);
    this.redis = new RedisModel(this.world, this.net);
    const etcd = opts.quorum === 'etcd';
    this.redis.strictExcuses = etcd;
    this.etcd = etcd ? new EtcdModel(this.world, this.net, opts.timing.quorum, (line) => this.note(line)) : null;
    this.client = new Client(this.world, this.redis);
    const quorum: CoreQuorumConfig = etcd
      ? { backend: 'etcd', prefer: 'safety', retryMs: QUORUM_RETRY_MS, fenceLeadMs: fenceLeadMs(opts.timing.quorum) }
      : NO_QUORUM;
    const daemon = (id: NodeId): SimDaemon =>
      new SimDaemon(id, coreConfig(id, opts.timing, opts.preempt ?? false, quorum), new HostVip(id, this.world, this.client), new StateFile(), this);
    this.daemons = { a: daemon('a'), b: daemon('b') };
    this.client.vips = { a: this.daemons.a.vip, b: this.daemons.b.vip };
    this.client.roleOf = (n) => this.daemons[n].runtime?.current.role ?? 'down';
    const besideEtcd = opts.clientBesideEtcd ?? etcd;
    this.client.reachable = (n) => this.linkUp(n) && !(besideEtcd && (this.net.etcdCut(n, true) || this.net.etcdCut(n, false)));
    this.checker = new Invariants(this, etcd);
  }

  runtime(node: NodeId): Runtime | null {
    return this.daemons[node].runtime;
  }

  vip(node: NodeId): HostVip {
    return this.daemons[node].vip;
  }

  file(node: NodeId): StateFile {
    return this.daemons[node].file;
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
    return last + (this.opts.settleMs ?? settleMs(this.timing, this.etcd !== null));
  }

  async run(): Promise<void> {
    const end = this.endMs;
    for (const n of NODES) this.world.at(this.world.int(0, 200), () => void this.daemons[n].start());
    for (const f of this.opts.faults) this.schedule(f);
    this.client.start(Math.max(20, this.timing.advertIntervalMs / 10), end);
    await this.world.run(end, () => this.checker.observe());
    this.note(`end: ${describe(this)}`);
    if (!this.opts.noSettleCheck) this.checker.settled(this.opts.lossFree ?? false);
  }

  note(line: string): void {
    this.trace.push(`${Math.round(this.world.now)} ${line}`);
  }

  transmit(from: NodeId, buf: Buffer): void {
    this.net.send(from, OTHER[from], buf, (b) => this.daemons[OTHER[from]].receive(b, ADDRESS[from]));
  }

  /** The node's VIP interface has its carrier (no `link-down` fault active). */
  linkUp(node: NodeId): boolean {
    const now = this.world.now;
    return !this.opts.faults.some((f) => f.kind === 'link-down' && f.node === node && now >= f.at && now < f.at + f.durationMs);
  }

  /** Effects of `node` throw while a `flaky` fault is active on it. */
  injector(node: NodeId): Injector {
    return () => {
      const now = this.world.now;
      const f = this.opts.faults.find((x) => x.kind === 'flaky' && x.node === node && now >= x.at && now < x.at + x.durationMs);
      if (f === undefined || f.kind !== 'flaky' || !this.world.chance(f.rate)) return null;
      this.injectedAt[node] = now;
      return this.world.chance(0.5) ? 'before' : 'after';
    };
  }

  /**
   * An operator's request on `node`. With `retryEveryMs`, one that fails (daemon down,
   * no answer) is asked again, as an operator ending maintenance would until it is off.
   */
  private request(node: NodeId, event: RequestEvent, waitMs: number, retryEveryMs?: number): void {
    const maintenance = event.type === 'maintenance-requested';
    if (maintenance) this.maintenanceInFlight++;
    this.daemons[node].request(event, waitMs, ({ ok, detail }) => {
      if (maintenance) this.maintenanceInFlight--;
      this.replies.push(`${node} ${event.requestId} ${ok ? 'ok' : 'failed'}: ${detail}`);
      this.note(`${node} answered ${event.requestId}: ${ok ? 'ok' : 'failed'}: ${detail}`);
      if (!ok && retryEveryMs !== undefined) {
        this.world.at(this.world.now + retryEveryMs, () => this.request(node, event, waitMs, retryEveryMs));
      }
    });
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
      case 'flaky':
      case 'etcd-partition':
        return;
      case 'etcd-freeze':
        world.at(f.at, () => this.etcd?.freeze(end));
        return;
      case 'etcd-restart':
        world.at(f.at, () => this.etcd?.kill());
        world.at(end, () => this.etcd?.start());
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
      case 'restart': {
        const d = this.daemons[f.node];
        world.at(f.at, () => d.stop(f.how, f.execStopPost));
        world.at(end, () => {
          if (d.running) d.kill('still running at restart time', f.execStopPost && f.how !== 'detach');
          void d.start();
        });
        return;
      }
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
      default: {
        const never: never = f;
        throw new Error(`unknown fault ${JSON.stringify(never)}`);
      }
    }
  }

  /**
   * The operator checks `redis-ha status` every two advert intervals and repeats
   * `maintenance off` on any daemon that still reports it on, until both are off and no
   * maintenance command is still waiting for its answer (a daemon restarted meanwhile may
   * only learn of the flag from its peer afterwards: findings.test.ts, 3; a stalled one
   * applies an earlier `on` when it wakes).
   */
  private operatorEndsMaintenance(round: number): void {
    const MAX_ROUNDS = 30;
    this.world.at(this.world.now + 2 * this.timing.advertIntervalMs, () => {
      const on = NODES.filter((n) => this.daemons[n].runtime?.current.maintenance.on === true);
      const down = NODES.some((n) => this.daemons[n].runtime === null);
      for (const n of on) {
        this.request(n, { type: 'maintenance-requested', requestId: `m${++this.requests}`, on: false, user: 'sim' }, 5_000);
      }
      const waiting = on.length > 0 || down || this.maintenanceInFlight > 0;
      if (waiting && round < MAX_ROUNDS) this.operatorEndsMaintenance(round + 1);
    });
  }
}

function coreConfig(id: NodeId, t: Timing, preempt: boolean, quorum: CoreQuorumConfig): CoreConfig {
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
    faultVipHoldMs: DEFAULT_FAULT_VIP_HOLD_MS,
    peerRedis: { host: ADDRESS[OTHER[id]], port: REDIS_PORT },
    switchoverMaxLagBytes: 1_000_000,
    promotionMaxLagBytes: 1024 * 1024,
    // Off: the histories put faults seconds apart, and the block holds a second automatic
    // takeover by design (tested in test/core/takeover-gate.test.ts).
    recoveryBlockMs: 0,
    quorum,
  };
}
