/**
 * The runtime loop: the only place events meet the core and the only place a
 * transition is logged. Events (adverts, health checks, timers, effect results,
 * signals) go through one queue into `step()`; the actions that come out are carried
 * out by the adapters. Redis and VIP actions run serially, in the order the core gave
 * them (promote before claim, release before demote); adverts and audit records go out
 * at once. Failures come back as events; nothing here decides anything.
 *
 * Loops owned here: the health check (fixed rate, one check in flight at most), the
 * reconcile check (VIP actual vs desired, skipped while a VIP/Redis effect is in
 * flight) and one OS timer armed for the core's earliest deadline.
 */
import type { AuditLog } from '../adapters/audit.js';
import type { RedisControl } from '../adapters/redis/index.js';
import type { LinkState } from '../adapters/link.js';
import type { VipManager } from '../adapters/vip.js';
import type { SwitchoverRequest, SwitchoverResult } from '../adapters/redis/index.js';
import { nextDeadline, vipDesired, type CoreConfig, type CoreState } from '../core/state.js';
import { step } from '../core/step.js';
import type { Action, AdvertBody, Event, Maintenance, PeerRequest, TimerName } from '../core/types.js';
import type { Logger } from './logger.js';

/** What the Redis adapter is asked for a planned switchover, and how it ended. */
export type { SwitchoverRequest, SwitchoverResult } from '../adapters/redis/index.js';

/** The core's answer to an operator's request. */
export interface RequestReply {
  readonly ok: boolean;
  readonly detail: string;
  readonly data: Readonly<Record<string, unknown>>;
}

/** Events that carry an operator's request and expect a `reply` action. */
export type RequestEvent = Extract<Event, { type: 'switchover-requested' | 'maintenance-requested' }>;

/** Monotonic milliseconds for the core; wall-clock time never enters a decision. */
export interface Clock {
  now(): number;
}

/** The adapters and settings the runtime drives. */
export interface RuntimeDeps {
  readonly core: CoreConfig;
  readonly healthIntervalMs: number;
  readonly reconcileIntervalMs: number;
  readonly redis: Pick<RedisControl, 'check' | 'promote' | 'replicateFrom' | 'disconnectClients'> & {
    switchOver(request: SwitchoverRequest): Promise<SwitchoverResult>;
  };
  /** Switchover settings the core does not decide on (how, and the adapter's refusal bounds). */
  readonly switchover: Pick<SwitchoverRequest, 'method' | 'maxLagBytes' | 'maxAckAgeS'>;
  /** The VIP interface's link: a link that is down fails the health check (keepalived's track_interface). */
  readonly link: () => Promise<LinkState>;
  readonly vip: VipManager;
  readonly adverts: { send(body: AdvertBody): void; sendMessage(message: PeerRequest): void };
  readonly audit: Pick<AuditLog, 'append'>;
  readonly persist: (s: { epoch: number; knownEpoch: number; maintenance: Maintenance }) => Promise<void>;
  readonly logger: Logger;
  readonly clock: Clock;
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

/** Runs the core against real adapters until an `exit` action or `detach()`. */
export class Runtime {
  private state: CoreState;
  private readonly queue: Event[] = [];
  private draining = false;
  private effects: Promise<void> = Promise.resolve();
  private pendingEffects = 0;
  private timer: NodeJS.Timeout | null = null;
  private timerFor: { timer: TimerName; at: number } | null = null;
  private healthTimer: NodeJS.Timeout | null = null;
  private reconcileTimer: NodeJS.Timeout | null = null;
  private stopped = false;
  /** When the last health check completed (loop liveness for the watchdog). */
  private lastHealthDoneAt: number | null = null;
  private readonly pending = new Map<string, (reply: RequestReply) => void>();
  private finish: (code: number) => void = () => undefined;
  /** Resolves with the exit status once the core asked to exit (after its effects ran). */
  readonly done: Promise<number>;

  constructor(private readonly deps: RuntimeDeps, initial: CoreState) {
    this.state = initial;
    this.done = new Promise<number>((resolve) => {
      this.finish = resolve;
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
    const last = this.lastHealthDoneAt;
    return last === null || this.deps.clock.now() - last <= withinMs;
  }

  /** Starts the loops. `firstCheck`, if given, is fed before anything else (the start-up probe). */
  start(firstCheck?: Extract<Event, { type: 'health-checked' }>): void {
    this.dispatch({ type: 'started' });
    if (firstCheck) this.dispatch(firstCheck);
    this.scheduleHealth(firstCheck ? this.deps.healthIntervalMs : 0);
    this.scheduleReconcile();
  }

  /** Queues an event; it is processed after the events before it. */
  dispatch(event: Event): void {
    if (this.stopped) return;
    this.queue.push(event);
    if (this.draining) return;
    this.draining = true;
    try {
      for (let e = this.queue.shift(); e; e = this.queue.shift()) this.process(e);
    } finally {
      this.draining = false;
    }
    this.armTimer();
  }

  /**
   * Queues an operator's request and resolves with the core's `reply`, or with a
   * failure when none comes within `waitMs` (the request may still be carried out:
   * the answer says so).
   */
  request(event: RequestEvent, waitMs: number): Promise<RequestReply> {
    return new Promise<RequestReply>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(event.requestId);
        resolve({ ok: false, detail: `no answer from the daemon within ${waitMs} ms; check redis-ha status`, data: {} });
      }, waitMs);
      this.pending.set(event.requestId, (reply) => {
        clearTimeout(timer);
        this.pending.delete(event.requestId);
        resolve(reply);
      });
      if (this.stopped) this.pending.get(event.requestId)?.({ ok: false, detail: 'the daemon is stopping', data: {} });
      else this.dispatch(event);
    });
  }

  /**
   * Stops every loop without telling the peer or touching Redis and the VIP: used for a
   * restart in place (SIGUSR2), where the next process adopts what it finds.
   */
  async detach(): Promise<void> {
    this.halt();
    await this.effects;
  }

  private process(event: Event): void {
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
    } else if (r.actions.some((a) => a.type !== 'send-advert')) {
      log.info({ role: r.state.role, reason: r.reason, event: event.type }, 'decision');
    } else {
      log.trace({ role: r.state.role, reason: r.reason, event: event.type }, 'step');
    }
    for (const action of r.actions) this.perform(action);
  }

  private perform(action: Action): void {
    const { deps } = this;
    switch (action.type) {
      case 'send-advert':
        deps.adverts.send(action.advert);
        return;
      case 'audit':
        void deps.audit.append(action.event, action.data);
        return;
      case 'send-message':
        deps.adverts.sendMessage(action.message);
        return;
      case 'reply': {
        const resolve = this.pending.get(action.requestId);
        if (resolve) resolve({ ok: action.ok, detail: action.detail, data: action.data });
        else deps.logger.debug({ requestId: action.requestId }, 'reply for a request nobody waits for');
        return;
      }
      case 'persist-state':
        deps.persist({ epoch: action.epoch, knownEpoch: action.knownEpoch, maintenance: action.maintenance }).catch((error: unknown) =>
          deps.logger.error({ err: error }, 'state file write failed'));
        return;
      case 'promote-redis':
        this.serial(action.type, async () => {
          const r = await deps.redis.promote(action.catchUpFrom);
          this.dispatch({ type: 'promotion-finished', ok: r.ok, detail: r.detail, redis: r.redis });
        });
        return;
      case 'hand-over-redis':
        this.serial(action.type, async () => {
          const r = await deps.redis.switchOver({ target: action.target, timeoutMs: action.timeoutMs, force: action.force, ...deps.switchover });
          this.dispatch({ type: 'handover-finished', outcome: r.outcome, method: r.method, detail: r.detail, pausedMs: r.pausedMs, redis: r.redis });
        });
        return;
      case 'replicate-from':
        this.serial(action.type, async () => {
          const r = await deps.redis.replicateFrom(action.master);
          this.dispatch({ type: 'demotion-finished', ok: r.ok, detail: r.detail });
        });
        return;
      case 'claim-vip':
        this.serial(action.type, async () => {
          const r = await deps.vip.claim();
          void deps.audit.append('vip-claimed', { changed: r.changed });
          deps.logger.info({ changed: r.changed }, 'VIP claimed');
          this.dispatch({ type: 'vip-claimed' });
        });
        return;
      case 'release-vip':
        this.serial(action.type, async () => {
          deps.vip.stop?.();
          const r = await deps.vip.release();
          if (r.changed) void deps.audit.append('vip-released', { changed: true });
          deps.logger.info({ changed: r.changed }, 'VIP released');
        });
        return;
      case 'announce-vip':
        this.serial(action.type, async () => {
          // Queued behind a long effect (a switchover's handover), an announcement can come
          // due after the role changed: a node that is no longer master must not pull
          // clients back to its MAC.
          if (this.state.role === 'MASTER' && vipDesired(this.state)) await deps.vip.announce();
        });
        return;
      case 'disconnect-clients':
        this.serial(action.type, async () => {
          const detail = await deps.redis.disconnectClients();
          deps.logger.info({ detail }, 'application clients disconnected');
        });
        return;
      case 'exit':
        this.serial(action.type, async () => {
          this.halt();
          this.finish(action.code);
        });
        return;
      default: {
        const never: never = action;
        throw new Error(`unhandled action ${JSON.stringify(never)}`);
      }
    }
  }

  /** Runs Redis/VIP effects one at a time, in order; a failure becomes an `effect-failed` event. */
  private serial(type: Action['type'], fn: () => Promise<void>): void {
    this.pendingEffects++;
    this.effects = this.effects.then(async () => {
      try {
        await fn();
      } catch (error) {
        const detail = error instanceof Error ? error.message : String(error);
        this.deps.logger.error({ err: error, action: type }, 'effect failed');
        this.dispatch({ type: 'effect-failed', action: type, detail });
      } finally {
        this.pendingEffects--;
      }
    });
  }

  private armTimer(): void {
    if (this.stopped) return;
    const next = nextDeadline(this.state);
    if (next && this.timerFor && next.timer === this.timerFor.timer && next.at === this.timerFor.at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.timerFor = next;
    if (!next) return;
    const delay = Math.max(0, next.at - this.deps.clock.now());
    this.timer = setTimeout(() => {
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

  private scheduleHealth(delayMs: number): void {
    if (this.stopped) return;
    const dueAt = this.deps.clock.now() + delayMs;
    this.healthTimer = setTimeout(() => {
      const startedAt = this.deps.clock.now();
      if (startedAt - dueAt > this.deps.stallThresholdMs) this.reportStall(startedAt - dueAt);
      void Promise.all([this.deps.link(), this.deps.redis.check()]).then(([link, r]) => {
        this.lastHealthDoneAt = this.deps.clock.now();
        this.dispatch(link.up
          ? { type: 'health-checked', ok: r.ok, detail: r.detail, redis: r.redis, startedAt }
          : { type: 'health-checked', ok: false, detail: link.detail, redis: null, startedAt });
        // Fixed rate: the next check is due one interval after this one started.
        const elapsed = this.deps.clock.now() - startedAt;
        this.scheduleHealth(Math.max(0, this.deps.healthIntervalMs - elapsed));
      });
    }, delayMs);
  }

  private scheduleReconcile(): void {
    if (this.stopped) return;
    this.reconcileTimer = setTimeout(() => {
      // An effect in flight would make the comparison meaningless (a claim half done).
      if (this.pendingEffects > 0) {
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
    for (const resolve of [...this.pending.values()]) resolve({ ok: false, detail: 'the daemon stopped', data: {} });
    for (const t of [this.timer, this.healthTimer, this.reconcileTimer]) if (t) clearTimeout(t);
    this.timer = this.healthTimer = this.reconcileTimer = null;
  }
}
