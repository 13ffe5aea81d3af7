/**
 * One host's redis-ha daemon, run after run: what `redis-ha run` does at start-up (boot
 * time into the state file, probe of the local Redis, look for a VIP left behind, then a
 * real `Runtime` with the simulation's adapters), and how it ends: SIGTERM (resigns),
 * SIGUSR2 (restart in place), SIGKILL, each possibly followed by systemd's ExecStopPost
 * (`redis-ha release-vip`). A daemon run is an `Incarnation`: everything it scheduled
 * dies with it. The host's VIP and state file outlive it; so does its etcd lease (with
 * the quorum: `quorum-adapter.ts`), which lapses in etcd once nobody renews it.
 */
import type { CoreConfig } from '../../src/core/state.js';
import { initialState } from '../../src/core/state.js';
import type { Event } from '../../src/core/types.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { Runtime, type RequestEvent, type RequestReply, type RuntimeDeps } from '../../src/daemon/runtime.js';
import type { EtcdModel } from './etcd-model.js';
import type { AuditRecord, HostVip, StateFile } from './host.js';
import { persister, SimVipManager } from './host.js';
import type { Invariants, Timing } from './invariants.js';
import { Receiver, Sender, type Network } from './net.js';
import { SimQuorum } from './quorum-adapter.js';
import { SimRedisAdapter, type Injector } from './redis-adapter.js';
import type { RedisModel } from './redis-model.js';
import { Incarnation, OTHER, type NodeId, type World } from './world.js';

/** The daemons' boot times are wall-clock milliseconds: this is the wall clock at fake time 0. */
const WALL_CLOCK_AT_ZERO_MS = 1_800_000_000_000;
/** systemd's TimeoutStopSec: a daemon that has not exited by then is killed. */
const STOP_TIMEOUT_MS = 5_000;
const logger = silentLogger();

/** What a daemon reaches of the simulated world. */
export interface DaemonEnv {
  readonly world: World;
  readonly net: Network;
  readonly redis: RedisModel;
  /** etcd, with the quorum (backend etcd); null without. */
  readonly etcd: EtcdModel | null;
  readonly timing: Timing;
  readonly checker: Invariants;
  readonly audit: AuditRecord[];
  note(line: string): void;
  linkUp(node: NodeId): boolean;
  injector(node: NodeId): Injector;
  /** Sends a datagram to the other host. */
  transmit(from: NodeId, buf: Buffer): void;
}

export type StopHow = 'stop' | 'detach' | 'crash';

export class SimDaemon {
  runtime: Runtime | null = null;
  private inc: Incarnation | null = null;
  private receiver: Receiver | null = null;
  private runs = 0;

  constructor(
    readonly id: NodeId,
    readonly config: CoreConfig,
    readonly vip: HostVip,
    readonly file: StateFile,
    private readonly env: DaemonEnv,
  ) {}

  /** A daemon process exists (it may still be starting, or stalled). */
  get running(): boolean {
    return this.inc !== null;
  }

  /** `redis-ha run`: boot time, start-up probe, VIP found, then the loops (`src/daemon/run.ts`). */
  async start(): Promise<void> {
    // One daemon per host (systemd): a restart that came first already started it.
    if (this.inc !== null) return;
    const { env, id, file } = this;
    const { world } = env;
    const inc = new Incarnation(id, ++this.runs);
    this.inc = inc;
    const bootTimeMs = Math.max(WALL_CLOCK_AT_ZERO_MS + Math.round(world.now), file.content.bootTimeMs + 1);
    file.write({ ...file.content, bootTimeMs });
    const inject = env.injector(id);
    const redis = new SimRedisAdapter(id, inc, world, env.net, env.redis, inject);
    const vip = new SimVipManager(this.vip, inc, world, inject);
    const startedAtMs = world.now;
    const probe = await redis.check();
    const vipPresent = await vip.isPresent();
    const receiver = new Receiver(id, bootTimeMs, file.content.peer ?? null, (reason) => env.net.drop(reason),
      (peer) => file.write({ ...file.content, peer }));
    const sender = new Sender(id, bootTimeMs, () => receiver.echo());
    const quorum = env.etcd === null ? null : new SimQuorum(id, inc, world, env.etcd, env.timing.quorum);
    const runtime = new Runtime(this.deps(inc, redis, vip, sender, inject, quorum), initialState(
      // As `runDaemon` does: the state is built after the start-up probe (which the core
      // still trusts: findings.test.ts, 2).
      world.now, file.content,
    ));
    this.runtime = runtime;
    this.receiver = receiver;
    env.checker.started(id, runtime);
    env.note(`${id} daemon started (run ${inc.number}, epoch ${runtime.current.epoch}, VIP ${vipPresent ? 'present' : 'absent'})`);
    runtime.start({
      vipPresent,
      firstCheck: { type: 'health-checked', ok: probe.ok, detail: probe.detail, redis: probe.redis, startedAtMs },
    });
    void runtime.done.then((code) => {
      if (this.inc === inc) this.kill(`exited with status ${code}`, false);
    });
  }

  /** SIGTERM (`stop`), SIGUSR2 (`detach`) or SIGKILL (`crash`); ExecStopPost follows the end. */
  stop(how: StopHow, execStopPost: boolean): void {
    const inc = this.inc;
    if (inc === null) return;
    const releaseAfter = execStopPost && how !== 'detach';
    if (how === 'crash') {
      this.kill('killed', releaseAfter);
      return;
    }
    const event: Event = how === 'stop' ? { type: 'shutdown-requested' } : { type: 'detach-requested' };
    // A signal is I/O for the daemon: a stalled one handles it when it wakes up.
    this.env.world.io(this.id, inc, 0, () => this.runtime?.dispatch(event));
    void this.runtime?.done.then(() => {
      if (this.inc === inc) this.kill(`exited after ${how}`, releaseAfter);
    });
    this.env.world.at(this.env.world.now + STOP_TIMEOUT_MS, () => {
      if (this.inc === inc) this.kill('killed after the stop timeout', releaseAfter);
    });
  }

  /** The daemon process is gone; ExecStopPost (`redis-ha release-vip`) removes the VIP if asked. */
  kill(why: string, releaseVip: boolean): void {
    if (this.inc === null) return;
    this.inc.alive = false;
    this.inc = null;
    this.runtime = null;
    this.receiver = null;
    const released = releaseVip && this.vip.remove();
    this.env.note(`${this.id} daemon ${why}${released ? '; ExecStopPost removed the VIP' : ''}`);
  }

  /** A datagram arrived: dropped when no daemon listens, else decoded and handed to the loop. */
  receive(buf: Buffer, fromAddress: string): void {
    if (this.runtime === null || this.receiver === null) {
      this.env.net.drop('daemon-down');
      return;
    }
    const event = this.receiver.accept(buf, fromAddress);
    if (event !== null) this.runtime.dispatch(event);
  }

  /**
   * An operator's request on the control socket (I/O for the daemon), answered through
   * `answer`; a daemon that is not running, or dies before answering, fails it.
   */
  request(event: RequestEvent, waitMs: number, answer: (reply: Pick<RequestReply, 'ok' | 'detail'>) => void): void {
    const { world } = this.env;
    const inc = this.inc;
    let answered = false;
    const once = (reply: Pick<RequestReply, 'ok' | 'detail'>): void => {
      if (answered) return;
      answered = true;
      answer(reply);
    };
    if (inc === null || this.runtime === null) {
      once({ ok: false, detail: 'daemon not running' });
      return;
    }
    world.io(this.id, inc, 0, () => {
      if (this.runtime === null) once({ ok: false, detail: 'daemon not running' });
      else void this.runtime.request(event, waitMs).then(once);
    });
    // The CLI's own bound: a daemon killed meanwhile never answers.
    world.at(world.now + waitMs + 1, () => once({ ok: false, detail: 'no answer (the daemon went away)' }));
  }

  private deps(
    inc: Incarnation, redis: SimRedisAdapter, vip: SimVipManager, sender: Sender, inject: Injector, quorum: SimQuorum | null,
  ): RuntimeDeps {
    const { env, id } = this;
    return {
      core: this.config,
      healthIntervalMs: env.timing.healthIntervalMs,
      reconcileIntervalMs: env.timing.reconcileIntervalMs,
      redis: {
        check: () => redis.check(),
        promote: (from, promoteOptions) => {
          env.checker.promoting(id);
          const peer = this.runtime?.current.peer;
          const afterFault = from === null && peer != null && (peer.state === 'FAULT' || peer.flags.fault);
          return redis.promote(from, { afterFault, ...(promoteOptions?.requireFence === true ? { requireFence: true } : {}) });
        },
        replicateFrom: (master, options) => {
          if (options?.guard === true) {
            // The data guard demotes a Redis that came back without its data: what it
            // acknowledged between its restart and the guard (through the VIP it still
            // held) is discarded, the window README's "Data guard" names.
            if (env.redis.servers[id].role === 'master') env.redis.excuse(id, OTHER[id], 'data guard window');
            return redis.replicateFrom(master, options);
          }
          return redis.replicateFrom(master);
        },
        switchOver: (call) => redis.switchOver(call),
        disconnectClients: () => redis.disconnectClients(),
        fence: (writes) => redis.fence(writes),
        // A closed health connection is I/O: a stalled daemon hears of it when it wakes.
        onConnectionLost: (listener) => redis.onConnectionLost(() => env.world.io(id, inc, 0, listener)),
      },
      quorum,
      link: () => Promise.resolve(env.linkUp(id)
        ? { up: true, detail: 'interface eth0 up' }
        : { up: false, detail: 'interface eth0 is down (no carrier)' }),
      vip: {
        isPresent: () => vip.isPresent(),
        claim: () => vip.claim(),
        release: () => vip.release(),
        announce: () => vip.announce(),
      },
      adverts: {
        send: (body) => env.transmit(id, sender.advert(body)),
        sendMessage: (message) => env.transmit(id, sender.message(message)),
      },
      audit: {
        append: (event, data) => {
          env.audit.push({ node: id, at: env.world.now, event, data });
          return Promise.resolve();
        },
      },
      persist: persister(this.file, inc, env.world, inject),
      logger,
      clock: env.world.clock,
      scheduler: env.world.scheduler(inc),
      stallThresholdMs: env.timing.stallThresholdMs,
      observer: {
        stepped: (before, after, event) => {
          // `takeOver` is the only step that emits `promote-redis`: into MASTER, promoting.
          if (after.role === 'MASTER' && after.redisOp === 'promoting' && (before.role !== 'MASTER' || before.epoch !== after.epoch)) {
            env.checker.promotionEmitted(id, after.epoch);
          }
          if (event.type === 'effect-failed' && (event.skipped ?? []).some((a) => a.type === 'promote-redis')) env.checker.promotionSkipped(id);
          if (event.type === 'quorum-lost' || (event.type === 'quorum-answered' && before.quorum.last?.what !== after.quorum.last?.what)) {
            env.note(`${id} quorum: ${event.type === 'quorum-lost' ? `lost (${event.reason}): ${event.detail}` : `${event.answer.outcome}: ${event.answer.detail}`}`);
          }
          if (before.quorum.failsafeSinceMs === null && after.quorum.failsafeSinceMs !== null) env.note(`${id} serves on without its lease (failsafe)`);
          if (before.role !== after.role) env.note(`${id} ${before.role}->${after.role} e${after.epoch}: ${after.reason}`);
          else if (event.type === 'stalled') env.note(`${id} stall detected (${Math.round(event.stalledMs)} ms)`);
        },
      },
    };
  }
}
