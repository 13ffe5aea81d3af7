/**
 * The runtime loop: the only place events meet the core, the only actor, and the only
 * place a transition is logged. Events (adverts, health checks, timers, effect results,
 * signals, operators' requests) go through one queue into `step()`; the actions that
 * come out are carried out by the adapters in the core's order (`effect-runner.ts`).
 * Failures come back as events; nothing here decides anything: even whether a queued
 * effect is still wanted is the core's answer (`effectStillWanted`).
 *
 * Loops owned here: the health check (fixed rate, one check in flight at most), the
 * reconcile check (VIP actual vs desired, skipped while an effect is in flight) and one
 * timer armed for the core's earliest deadline. Time comes from the injected `Clock`
 * and `Scheduler`, so the simulation runs this very class on fake time.
 */
import type { LinkState } from '../adapters/link.js';
import type { VipManager } from '../adapters/vip.js';
import { effectStillWanted } from '../core/effects.js';
import { nextDeadline, type CoreConfig, type CoreState } from '../core/state.js';
import { step } from '../core/step.js';
import type { AdvertBody, Event, FenceSetting, HostPort, Maintenance, PeerRequest, QuorumAnswer, QuorumMark, RedisSnapshot, SwitchoverOutcome } from '../core/types.js';
import { DOWN_RECHECK_FOR_MS, DOWN_RECHECK_MS, LOST_RECHECK_FOR_MS } from '../core/timing.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import { EffectRunner, type Effect, type Notice } from './effect-runner.js';
import type { Clock, Scheduler, TimerHandle } from './time.js';

export type { Clock, Scheduler } from './time.js';

/** The core's answer to an operator's request. */
export interface RequestReply {
  readonly ok: boolean;
  readonly detail: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Events that carry an operator's request and expect a `reply` action. */
export type RequestEvent = Extract<Event, { type: 'switchover-requested' | 'maintenance-requested' | 'failover-requested' }>;

/** A health check or promotion as the Redis adapter reports it. */
export interface RedisProbe {
  readonly ok: boolean;
  readonly detail: string;
  readonly redis: RedisSnapshot | null;
  /** The connection was refused: no Redis is listening. */
  readonly down?: boolean;
  /** The check ran out of its time (a hung Redis): the next one starts at once. */
  readonly timedOut?: boolean;
  /** The local Redis is a Redis Cluster node (issue 14): refused, as proof. */
  readonly clusterEnabled?: boolean;
}

/** What the runtime asks of the Redis adapter for a planned switchover (`switchover-redis`). */
export interface SwitchoverCall {
  readonly target: HostPort;
  readonly timeoutMs: number;
  readonly force: boolean;
  /** Fence the target's writes (`refused`) before it becomes the master (the core's `fenceTarget`). */
  readonly fenceTarget?: boolean;
}

/** How the Redis part of a switchover ended. */
export interface SwitchoverReport {
  readonly outcome: SwitchoverOutcome;
  readonly method: 'failover' | 'pause' | null;
  readonly detail: string;
  readonly pausedMs: number | null;
  readonly redis: RedisSnapshot | null;
}

/** The Redis side the runtime drives (`src/adapters/redis`, or the simulation's model). */
export interface RuntimeRedis {
  check(): Promise<RedisProbe>;
  promote(catchUpFrom: HostPort | null, options?: { requireFence?: boolean }): Promise<RedisProbe>;
  replicateFrom(master: HostPort, options?: { guard?: boolean }): Promise<{ ok: boolean; detail: string }>;
  switchOver(call: SwitchoverCall): Promise<SwitchoverReport>;
  disconnectClients(): Promise<string>;
  /** Sets the local Redis's write fence; never rejects (a failure is `ok: false`). */
  fence(writes: FenceSetting): Promise<{ ok: boolean; detail: string }>;
  /** Registers what to run when the health connection is lost (the runtime checks again at once). */
  onConnectionLost?(listener: () => void): void;
  /**
   * One look at the peer's Redis (`down`: the connection was refused), asked when the local
   * replica's link to it dropped. Optional: without it the backup waits for the master's
   * FAULT report or its silence.
   */
  probePeer?(): Promise<{ down: boolean; detail: string }>;
}

/** What the quorum tells the loop by itself (lease renewals and losses). */
export type QuorumNotice = Extract<Event, { type: 'quorum-renewed' | 'quorum-lost' }>;

/** The answer to a relaxed-mark write: done, or why not. */
export interface MarkAnswer {
  readonly ok: boolean;
  readonly detail: string;
}

/** The quorum the runtime drives (`quorum-bridge.ts` over etcd, or the simulation's model). */
export interface RuntimeQuorum {
  /** Never rejects: a failure is an `unreachable` answer. */
  acquire(epoch: number): Promise<QuorumAnswer>;
  /** Gives the key up (revokes the lease); never rejects. */
  release(): Promise<void>;
  /** Writes one of etcd's durable records (`QuorumMark`: relaxed mark, its clearing, the served record); never rejects. */
  mark(mark: QuorumMark): Promise<MarkAnswer>;
  onEvent(listener: (notice: QuorumNotice) => void): () => void;
}

/** The adapters and settings the runtime drives. */
export interface RuntimeDeps {
  readonly core: CoreConfig;
  readonly healthIntervalMs: number;
  readonly reconcileIntervalMs: number;
  readonly redis: RuntimeRedis;
  /** The VIP interface's link: a link that is down fails the health check (keepalived's track_interface). */
  readonly link: () => Promise<LinkState>;
  readonly vip: VipManager;
  /** The quorum (backend `etcd`); null without one (the core then never asks for it). */
  readonly quorum: RuntimeQuorum | null;
  readonly adverts: { send(body: AdvertBody): void; sendMessage(message: PeerRequest): void };
  readonly audit: { append(event: string, data: Readonly<Record<string, unknown>>): Promise<void> };
  /** Writes the state file; resolves once it is durable, rejects when it is not. */
  readonly persist: (s: { epoch: number; knownEpoch: number; maintenance: Maintenance; switchoverIds: readonly string[] }) => Promise<void>;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly scheduler: Scheduler;
  /** A timer that fires later than this was held up by a stalled event loop (`stalled` event). */
  readonly stallThresholdMs: number;
  /** Told about every step (sd_notify status, metrics); must not throw or block. */
  readonly observer?: RuntimeObserver;
}

/** Watches the loop from outside the core (service manager, metrics). */
export interface RuntimeObserver {
  stepped(before: CoreState, after: CoreState, event: Event): void;
  /** A stall of the event loop was detected (before the core hears of it). */
  stalled?(stalledMs: number): void;
}

/** What the daemon found at start-up, handed to the core with the `started` event. */
export interface StartupFacts {
  /** The start-up probe of the local Redis and the VIP link, fed before anything else. */
  readonly firstCheck?: Extract<Event, { type: 'health-checked' }>;
  readonly vipPresent?: boolean;
  readonly loaded?: Readonly<Record<string, unknown>>;
}

interface Queued {
  readonly event: Event;
  readonly settled?: () => void;
}

/** Runs the core against the adapters until an `exit` or `detach` action. */
export class Runtime {
  private state: CoreState;
  private readonly queue: Queued[] = [];
  private draining = false;
  private readonly runner: EffectRunner;
  private timer: TimerHandle | null = null;
  private timerFor: { timer: string; at: number } | null = null;
  private healthTimer: TimerHandle | null = null;
  /** A health check is running; `healthAgain`: one more is due as soon as it ends. */
  private healthInFlight = false;
  private healthAgain = false;
  /** Since when the checks have been refused (Redis down), or null: they then come every `DOWN_RECHECK_MS`. */
  private downSinceMs: number | null = null;
  /** When a lost connection last brought a check forward (at most once a health interval). */
  private lostCheckAtMs: number | null = null;
  /**
   * The quick re-checks after a lost connection (`LOST_RECHECK_FOR_MS`): since when, and
   * whether one unproven failure was already counted. A new window opens only after a good
   * check, so a server that resets every connection gets one window, not one per notice.
   */
  private lostWindow: { readonly fromMs: number; failureCounted: boolean } | null = null;
  private okSinceLostWindow = true;
  /** The local replica's link as the last good check saw it (null: not a replica). */
  private replicaLinkUp: boolean | null = null;
  /** A probe of the peer's Redis is running (one at a time). */
  private peerProbeInFlight = false;
  private reconcileTimer: TimerHandle | null = null;
  private stopped = false;
  /** When the last health check completed (loop liveness for the watchdog). */
  private lastHealthDoneAtMs: number | null = null;
  private unsubscribeQuorum: (() => void) | null = null;
  private readonly pending = new Map<string, (reply: RequestReply) => void>();
  private finish: (code: number) => void = () => undefined;
  /** Resolves with the exit status once the core asked to exit or detach (after its effects ran). */
  readonly done: Promise<number>;

  constructor(private readonly deps: RuntimeDeps, initial: CoreState) {
    this.state = initial;
    this.done = new Promise<number>((resolve) => {
      this.finish = resolve;
    });
    this.runner = new EffectRunner({
      effect: (action) => this.perform(action),
      notice: (action) => this.tell(action),
      stillWanted: (action) => effectStillWanted(action, this.state),
      failed: (action, error, skipped) => {
        this.deps.logger.error({ err: error, action: action.type, skipped: skipped.map((a) => a.type) }, 'effect failed');
        this.dispatch({ type: 'effect-failed', action: action.type, detail: errorMessage(error), skipped });
      },
      dropped: (action) => this.deps.logger.debug({ action: action.type, role: this.state.role }, 'effect no longer wanted'),
    });
  }

  /** The current core state (read-only snapshot, for status and tests). */
  get current(): CoreState {
    return this.state;
  }

  /**
   * Whether the loops are turning: a health check completed within `withinMs` (each is
   * bounded by its timeout, so a hung Redis still completes them). The watchdog pings
   * only while this holds, so a wedged loop gets the daemon restarted.
   */
  alive(withinMs: number): boolean {
    if (this.stopped) return false;
    const last = this.lastHealthDoneAtMs;
    return last === null || this.deps.clock.now() - last <= withinMs;
  }

  /** Starts the loops with what the daemon found at start-up. */
  start(facts: StartupFacts = {}): void {
    this.dispatch({ type: 'started', vipPresent: facts.vipPresent, loaded: facts.loaded });
    this.unsubscribeQuorum = this.deps.quorum?.onEvent((notice) => this.dispatch(notice)) ?? null;
    if (facts.firstCheck) this.dispatch(facts.firstCheck);
    this.deps.redis.onConnectionLost?.(() => this.checkHealthNow());
    this.scheduleHealth(facts.firstCheck ? this.deps.healthIntervalMs : 0);
    this.scheduleReconcile();
  }

  /** Queues an event; it is processed after the events before it. */
  dispatch(event: Event): void {
    this.enqueue({ event });
  }

  /** Queues an event; resolves once every action its step emitted has been carried out. */
  dispatchAndSettle(event: Event): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.stopped) resolve();
      else this.enqueue({ event, settled: resolve });
    });
  }

  /**
   * Queues an operator's request and resolves with the core's `reply`, or with a
   * failure when none comes within `waitMs` (the request may still be carried out:
   * the answer says so).
   */
  request(event: RequestEvent, waitMs: number): Promise<RequestReply> {
    return new Promise<RequestReply>((resolve) => {
      if (this.stopped) {
        resolve({ ok: false, detail: 'the daemon is stopping', data: {} });
        return;
      }
      const timer = this.deps.scheduler.setTimer(() => {
        this.pending.delete(event.requestId);
        resolve({ ok: false, detail: `no answer from the daemon within ${waitMs} ms; check redis-ha status`, data: {} });
      }, waitMs);
      this.pending.set(event.requestId, (reply) => {
        this.deps.scheduler.clearTimer(timer);
        this.pending.delete(event.requestId);
        resolve(reply);
      });
      this.dispatch(event);
    });
  }

  private enqueue(item: Queued): void {
    if (this.stopped) {
      item.settled?.();
      return;
    }
    this.queue.push(item);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let q = this.queue.shift(); q; q = this.queue.shift()) this.process(q);
    } finally {
      this.draining = false;
    }
    this.armTimer();
  }

  private process(item: Queued): void {
    const { event } = item;
    const before = this.state;
    const r = step(before, event, this.deps.clock.now(), this.deps.core);
    this.state = r.state;
    try {
      this.deps.observer?.stepped(before, r.state, event);
    } catch (error) {
      this.deps.logger.warn({ err: error }, 'runtime observer failed');
    }
    const log = this.deps.logger;
    if (r.state.role !== before.role) {
      log.info({ from: before.role, to: r.state.role, reason: r.reason, epoch: r.state.epoch, event: event.type }, 'transition');
    } else if (r.actions.some((a) => a.type !== 'send-advert' && a.type !== 'audit')) {
      log.info({ role: r.state.role, reason: r.reason, event: event.type }, 'decision');
    } else if (event.type === 'advert-requested') {
      // Rare (the peer's replica link dropped), and the answer is only an advert: seen at debug.
      log.debug({ role: r.state.role, reason: r.reason, event: event.type }, 'decision');
    } else {
      log.trace({ role: r.state.role, reason: r.reason, event: event.type }, 'step');
    }
    const ran = this.runner.run(r.actions);
    if (item.settled) void ran.then(item.settled);
  }

  private tell(action: Notice): void {
    const { deps } = this;
    switch (action.type) {
      case 'send-advert':
        try {
          deps.adverts.send(action.advert);
        } catch (error) {
          // Not the network (that is retried by the next tick): this advert, and every
          // later one like it, cannot be encoded. The core must hear it, not only the log.
          deps.logger.error({ err: error, epoch: action.advert.epoch }, 'advert cannot be encoded');
          this.dispatch({ type: 'effect-failed', action: 'send-advert', detail: errorMessage(error) });
        }
        return;
      case 'send-message':
        deps.adverts.sendMessage(action.message);
        return;
      case 'audit':
        deps.audit.append(action.event, action.data).catch((error: unknown) =>
          deps.logger.error({ err: error, event: action.event }, 'audit record not written'));
        return;
      case 'acquire-quorum': {
        const epoch = action.epoch;
        const asked: Promise<QuorumAnswer> = deps.quorum
          ? deps.quorum.acquire(epoch)
          : Promise.resolve({ outcome: 'unreachable', detail: 'no quorum backend configured' });
        asked.catch((error: unknown): QuorumAnswer => ({ outcome: 'unreachable', detail: `quorum call threw: ${errorMessage(error)}` }))
          .then((answer) => this.dispatch({ type: 'quorum-answered', epoch, answer }));
        return;
      }
      case 'mark-quorum': {
        const mark = action.mark;
        const asked: Promise<MarkAnswer> = deps.quorum ? deps.quorum.mark(mark) : Promise.resolve({ ok: false, detail: 'no quorum backend configured' });
        asked.catch((error: unknown): MarkAnswer => ({ ok: false, detail: `quorum call threw: ${errorMessage(error)}` }))
          .then((answer) => this.dispatch({ type: 'quorum-marked', mark, ok: answer.ok, detail: answer.detail }));
        return;
      }
      case 'reply': {
        const resolve = this.pending.get(action.requestId);
        if (resolve) resolve({ ok: action.ok, detail: action.detail, data: action.data });
        else deps.logger.debug({ requestId: action.requestId }, 'reply for a request nobody waits for');
        return;
      }
      default: {
        const never: never = action;
        throw new Error(`unhandled notice ${JSON.stringify(never)}`);
      }
    }
  }

  private async perform(action: Effect): Promise<void> {
    const { deps } = this;
    switch (action.type) {
      case 'persist-state':
        await deps.persist({ epoch: action.epoch, knownEpoch: action.knownEpoch, maintenance: action.maintenance, switchoverIds: action.switchoverIds });
        this.dispatch({ type: 'state-persisted' });
        return;
      case 'promote-redis': {
        const r = await deps.redis.promote(action.catchUpFrom, action.requireFence === true ? { requireFence: true } : {});
        this.dispatch({ type: 'promotion-finished', ok: r.ok, detail: r.detail, redis: r.redis });
        return;
      }
      case 'switchover-redis': {
        const r = await deps.redis.switchOver({ target: action.target, timeoutMs: action.timeoutMs, force: action.force, ...(action.fenceTarget === true ? { fenceTarget: true } : {}) });
        this.dispatch({ type: 'redis-switchover-finished', outcome: r.outcome, method: r.method, detail: r.detail, pausedMs: r.pausedMs, redis: r.redis });
        return;
      }
      case 'replicate-from': {
        const r = await deps.redis.replicateFrom(action.master, action.guard === true ? { guard: true } : {});
        this.dispatch({ type: 'demotion-finished', ok: r.ok, detail: r.detail });
        return;
      }
      case 'claim-vip': {
        const r = await deps.vip.claim();
        deps.logger.info({ changed: r.changed }, 'VIP claimed');
        this.dispatch({ type: 'vip-claimed', changed: r.changed });
        return;
      }
      case 'release-vip': {
        deps.vip.stop?.();
        const r = await deps.vip.release();
        deps.logger.info({ changed: r.changed }, 'VIP released');
        this.dispatch({ type: 'vip-released', changed: r.changed });
        return;
      }
      case 'announce-vip':
        await deps.vip.announce();
        return;
      case 'refuse-vip':
        // An adapter that cannot refuse fails the effect: the core then releases at once.
        if (deps.vip.refuse === undefined) throw new Error('this VIP adapter cannot refuse connections');
        await deps.vip.refuse();
        deps.logger.info('VIP kept, refusing connections, while the peer takes over');
        return;
      case 'disconnect-clients': {
        const detail = await deps.redis.disconnectClients();
        deps.logger.info({ detail }, 'application clients disconnected');
        return;
      }
      case 'release-quorum':
        await deps.quorum?.release();
        return;
      case 'fence-redis': {
        const r = await deps.redis.fence(action.writes);
        (r.ok ? deps.logger.info : deps.logger.error).call(deps.logger, { writes: action.writes, detail: r.detail }, 'Redis write fence');
        this.dispatch({ type: 'fence-applied', writes: action.writes, ok: r.ok, detail: r.detail });
        return;
      }
      case 'exit':
        this.halt();
        this.finish(action.code);
        return;
      case 'detach':
        this.halt();
        this.finish(0);
        return;
      default: {
        const never: never = action;
        throw new Error(`unhandled effect ${JSON.stringify(never)}`);
      }
    }
  }

  private armTimer(): void {
    if (this.stopped) return;
    const next = nextDeadline(this.state);
    if (next && this.timerFor && next.timer === this.timerFor.timer && next.at === this.timerFor.at) return;
    if (this.timer) this.deps.scheduler.clearTimer(this.timer);
    this.timer = null;
    this.timerFor = next;
    if (!next) return;
    const delay = Math.max(0, next.at - this.deps.clock.now());
    this.timer = this.deps.scheduler.setTimer(() => {
      this.timer = null;
      this.timerFor = null;
      // A timer this late means the loop was stalled: the peer's adverts are still queued
      // behind it, so the core re-verifies instead of acting on what it knew before.
      const lateMs = this.deps.clock.now() - next.at;
      if (lateMs > this.deps.stallThresholdMs) {
        this.reportStall(lateMs);
        this.armTimer();
        return;
      }
      // Only fire if the deadline is still the one armed (the core may have moved it).
      if (this.state.timers[next.timer] === next.at) this.dispatch({ type: 'timer-fired', timer: next.timer });
      else this.armTimer();
    }, delay);
  }

  private reportStall(stalledMs: number): void {
    this.deps.logger.warn({ stalledMs: Math.round(stalledMs) }, 'event loop stalled');
    this.deps.observer?.stalled?.(stalledMs);
    this.dispatch({ type: 'stalled', stalledMs });
  }

  /**
   * The health connection was lost (a crashed Redis closes it at once): check now rather
   * than at the next interval, or right after the check in flight. The fixed rate then
   * resumes from this check.
   */
  private checkHealthNow(): void {
    if (this.stopped) return;
    // One check brought forward per interval: a server that accepts and then closes
    // every connection (maxclients, a proxy without its backend) must not turn the
    // fixed rate into a loop, nor `fall` into milliseconds.
    const now = this.deps.clock.now();
    if (this.lostCheckAtMs !== null && now - this.lostCheckAtMs < this.deps.healthIntervalMs) {
      this.deps.logger.debug('health connection lost again within an interval: the fixed rate stands');
      return;
    }
    this.lostCheckAtMs = now;
    if (this.okSinceLostWindow) {
      this.lostWindow = { fromMs: now, failureCounted: false };
      this.okSinceLostWindow = false;
    }
    if (this.healthInFlight) {
      this.deps.logger.debug('health connection lost: checking again right after the check in flight');
      this.healthAgain = true;
      return;
    }
    this.deps.logger.debug('health connection lost: checking now');
    if (this.healthTimer) this.deps.scheduler.clearTimer(this.healthTimer);
    this.scheduleHealth(0);
  }

  /** Records the replica's link; true when it went from up to down on a backup. */
  private noteReplicaLink(snapshot: RedisSnapshot | null): boolean {
    const was = this.replicaLinkUp;
    this.replicaLinkUp = snapshot?.role === 'replica' ? snapshot.linkUp : null;
    return was === true && this.replicaLinkUp === false && this.state.role === 'BACKUP';
  }

  /**
   * The local replica's link to the master dropped: look at the master's Redis from here
   * at once (issue 12), beside the core's request for a fresh advert (`replica-link-dropped`). A refusal brings the master-down timer forward (`peer-fault.ts`);
   * the master's own FAULT report usually comes first, this covers a lost report or a
   * daemon that died with its Redis. A probe still running at stop is not awaited: its result is
   * dropped with every other late event, and its socket closes within
   * `promotion.peer_timeout_ms`.
   */
  private probePeer(): void {
    const probe = this.deps.redis.probePeer;
    if (probe === undefined || this.peerProbeInFlight || this.stopped) return;
    this.peerProbeInFlight = true;
    this.deps.logger.debug("replica link to the master dropped: probing the master's Redis");
    void probe.call(this.deps.redis).then(
      (r) => this.dispatch({ type: 'peer-redis-probed', down: r.down, detail: r.detail }),
      (error: unknown) => this.deps.logger.error({ err: error }, 'peer probe threw'),
    ).finally(() => {
      this.peerProbeInFlight = false;
    });
  }

  /**
   * Hands one health check's outcome to the core (all but the quiet repeats below) and
   * says when the next check is due: one interval after this one started (fixed rate);
   * every DOWN_RECHECK_MS for a while after Redis was found down or the connection was
   * lost; at once after a timeout.
   */
  private takeHealthResult(link: LinkState, r: RedisProbe, startedAtMs: number): number {
    if (link.up && r.ok) this.okSinceLostWindow = true;
    // Within the window after a lost connection a reset or a closed connection is no
    // proof either way (a refusal and a Redis Cluster node are): repeated every
    // DOWN_RECHECK_MS until refused or answered, and counted once toward `fall`, so that
    // a server resetting every connection does not turn `fall` into milliseconds. The
    // repeats not passed on are not seen by metrics or `status` either (for at most
    // LOST_RECHECK_FOR_MS).
    const window = this.lostWindow !== null && startedAtMs - this.lostWindow.fromMs < LOST_RECHECK_FOR_MS ? this.lostWindow : null;
    const unproven = window !== null && link.up && !r.ok && r.down !== true && r.timedOut !== true && r.clusterEnabled !== true;
    const quiet = unproven && window.failureCounted;
    if (unproven) window.failureCounted = true;
    if (!quiet) {
      this.dispatch(link.up
        ? {
            type: 'health-checked', ok: r.ok, detail: r.detail, redis: r.redis, startedAtMs,
            ...(r.down === true ? { down: true } : {}), ...(r.clusterEnabled === true ? { clusterEnabled: true } : {}),
          }
        : { type: 'health-checked', ok: false, detail: link.detail, redis: null, startedAtMs });
    }
    this.downSinceMs = r.down === true && link.up ? this.downSinceMs ?? startedAtMs : null;
    // A timed-out check already waited its timeout: the next of the `fall` runs at once,
    // so a hang is seen within one interval + fall × timeout (`faultDetectMs`); once the
    // verdict is "unhealthy", the fixed rate again.
    if (!r.ok && r.timedOut === true && link.up && this.state.health.healthy !== false) return 0;
    const interval = Math.max(0, this.deps.healthIntervalMs - (this.deps.clock.now() - startedAtMs));
    const recheck = this.downSinceMs !== null && startedAtMs - this.downSinceMs < DOWN_RECHECK_FOR_MS;
    return recheck || unproven ? Math.min(interval, DOWN_RECHECK_MS) : interval;
  }

  private scheduleHealth(delayMs: number): void {
    if (this.stopped) return;
    const dueAtMs = this.deps.clock.now() + delayMs;
    this.healthTimer = this.deps.scheduler.setTimer(() => {
      const startedAtMs = this.deps.clock.now();
      if (startedAtMs - dueAtMs > this.deps.stallThresholdMs) this.reportStall(startedAtMs - dueAtMs);
      this.healthInFlight = true;
      const next = (delay: number): void => {
        this.healthInFlight = false;
        const again = this.healthAgain;
        this.healthAgain = false;
        this.scheduleHealth(again ? 0 : delay);
      };
      void Promise.all([this.deps.link(), this.deps.redis.check()]).then(([link, r]) => {
        this.lastHealthDoneAtMs = this.deps.clock.now();
        const linkDropped = this.noteReplicaLink(link.up && r.ok ? r.redis : null);
        next(this.takeHealthResult(link, r, startedAtMs));
        if (linkDropped) {
          // The core asks the master's daemon for an advert now; the probe is the runtime's own.
          this.dispatch({ type: 'replica-link-dropped' });
          this.probePeer();
        }
      }, (error: unknown) => {
        // The adapters report failures as results; a rejection is a bug, but must not stop the loop.
        this.deps.logger.error({ err: error }, 'health check threw');
        this.lastHealthDoneAtMs = this.deps.clock.now();
        this.dispatch({ type: 'health-checked', ok: false, detail: `health check threw: ${errorMessage(error)}`, redis: null, startedAtMs });
        next(this.deps.healthIntervalMs);
      });
    }, delayMs);
  }

  private scheduleReconcile(): void {
    if (this.stopped) return;
    this.reconcileTimer = this.deps.scheduler.setTimer(() => {
      // An effect in flight would make the comparison meaningless (a claim half done).
      if (this.runner.pending > 0) {
        this.scheduleReconcile();
        return;
      }
      this.deps.vip.isPresent().then(
        (present) => this.dispatch({ type: 'vip-observed', present }),
        (error: unknown) => this.deps.logger.warn({ err: error }, 'VIP state could not be read'),
      ).finally(() => this.scheduleReconcile());
    }, this.deps.reconcileIntervalMs);
  }

  private halt(): void {
    this.stopped = true;
    this.unsubscribeQuorum?.();
    this.unsubscribeQuorum = null;
    this.runner.halt();
    for (const resolve of [...this.pending.values()]) resolve({ ok: false, detail: 'the daemon stopped', data: {} });
    for (const t of [this.timer, this.healthTimer, this.reconcileTimer]) if (t) this.deps.scheduler.clearTimer(t);
    this.timer = this.healthTimer = this.reconcileTimer = null;
    for (const q of this.queue.splice(0)) q.settled?.();
  }
}
