/**
 * Prometheus metrics (`metrics.enabled`, off by default): a private prom-client
 * registry, never the global one, so two daemons in one process (tests, the lab) and
 * libraries that use the default registry cannot mix their series. Every name starts
 * with `redis_ha_`; `etc/grafana-dashboard.json` queries them, and a test checks that
 * every name it queries is rendered here.
 *
 * Nothing here decides or acts. The runtime hands over what it knows:
 *  - `observe()` with a core state snapshot, the VIP as the kernel has it and the
 *    advert transport's cumulative counters: the gauges are recomputed from scratch and
 *    the transport counters advance by the difference to the previous snapshot, so
 *    calling it as often as wanted, with the same snapshot or a newer one, is safe;
 *  - `transition()`, `healthCheckFailed()`, `takeover()`, `switchover()`, `stall()`
 *    for things that happen once and are counted.
 * Gauges whose value is unknown (no health check yet, no advert from the peer, VIP not
 * read) are NaN, never a plausible-looking 0.
 *
 * `serve()` exposes `GET /metrics` on `metrics.listen`:`metrics.port` (loopback by
 * default: the endpoint has no authentication, and the numbers tell an attacker when
 * a failover is running).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { monitorEventLoopDelay, type IntervalHistogram } from 'node:perf_hooks';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { TRANSPORT_REJECT_REASONS, type TransportCounters, type TransportRejectReason } from '../adapters/udp.js';
import type { CoreState } from '../core/state.js';
import type { NodeState } from '../core/types.js';
import { errorMessage, FatalError, RedisHaError } from '../errors.js';
import type { Logger } from './logger.js';
import { replicationLagBytes } from './status.js';

/** Prefix of every metric name, the process defaults included. */
export const METRIC_PREFIX = 'redis_ha_';
/** The only path served; everything else is 404. */
export const METRICS_PATH = '/metrics';
/** Every node state, so `redis_ha_state` always has one series per state. */
export const NODE_STATES: readonly NodeState[] = ['INIT', 'BACKUP', 'MASTER', 'FAULT'];
/**
 * Sampling interval of the event-loop delay histogram. Each sample is the time between
 * two timer ticks, so an idle loop reads this much; the lag reported is the excess.
 */
export const EVENT_LOOP_RESOLUTION_MS = 10;
/**
 * The lag window ends at each scrape; without scrapes (only `eventLoopLagMs()` read)
 * it ends after this long, so an old stall does not linger.
 */
export const EVENT_LOOP_MAX_WINDOW_MS = 60_000;

/** What `observe()` needs besides the core state. */
export interface ObserveExtra {
  /** Whether the kernel holds the VIP on this host; `null` when it could not be read. */
  readonly holdsVip: boolean | null;
  /** The advert transport's cumulative counters (`AdvertTransport.counters`). */
  readonly transport: TransportCounters;
  /** The configured priority; the gauge shows 0 while the node resigns. */
  readonly priority: number;
}

/** The transport totals this class turns into counters (all cumulative). */
type TransportTotals = Pick<TransportCounters, 'sent' | 'accepted' | 'received' | 'sendErrors' | 'messagesSent' | 'messagesReceived'>;

const NO_TRANSPORT: TransportTotals = { sent: 0, accepted: 0, received: 0, sendErrors: 0, messagesSent: 0, messagesReceived: 0 };

/** One redis-ha node's metrics and, optionally, the HTTP endpoint serving them. */
export class Metrics {
  private readonly registry = new Registry();
  private readonly state: Gauge<'state'>;
  private readonly priorityEffective: Gauge;
  private readonly epoch: Gauge;
  private readonly vipHeld: Gauge;
  private readonly maintenance: Gauge;
  private readonly transitions: Counter<'from' | 'to'>;
  private readonly advertsSent: Counter;
  private readonly advertsReceived: Counter;
  private readonly advertsRejected: Counter<'reason'>;
  private readonly datagramsReceived: Counter;
  private readonly sendErrors: Counter;
  private readonly messagesSent: Counter;
  private readonly messagesReceived: Counter;
  private readonly healthCheckFailures: Counter;
  private readonly redisUp: Gauge;
  private readonly replicationOffset: Gauge<'node'>;
  private readonly replicationLag: Gauge;
  private readonly peerAdvertAge: Gauge;
  private readonly lastTakeover: Gauge;
  private readonly takeovers: Counter;
  private readonly switchovers: Counter<'outcome'>;
  private readonly eventLoopLag: Gauge;
  private readonly stalls: Counter;
  private readonly lastStall: Gauge;
  private readonly loopDelay: IntervalHistogram;
  private loopWindowStartedAt = performance.now();
  /** The excess delay of the last completed window, returned while the current one is empty. */
  private lastWindowLagMs = 0;
  private lastTransport: TransportTotals = NO_TRANSPORT;
  private lastRejected: Partial<Record<TransportRejectReason, number>> = {};
  private server: Server | null = null;

  /**
   * Creates the metrics and starts sampling the event loop. prom-client's default process
   * metrics (CPU, memory, handles, GC, its own event-loop lag) go to the same private registry.
   */
  constructor(options: { nodeName: string }) {
    const registers = [this.registry];
    const gauge = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> =>
      new Gauge<L>({ name: METRIC_PREFIX + name, help, labelNames, registers });
    const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []): Counter<L> =>
      new Counter<L>({ name: METRIC_PREFIX + name, help, labelNames, registers });

    gauge('node_info', 'Always 1; the name label is this node\'s node.name.', ['name']).set({ name: options.nodeName }, 1);
    this.state = gauge('state', 'Node state: 1 for the current state (INIT, BACKUP, MASTER, FAULT), 0 for the others.', ['state']);
    this.priorityEffective = gauge('priority_effective', 'Priority this node advertises (0 while it resigns).');
    this.epoch = gauge('epoch', 'Promotion epoch of this node\'s latest mastership (the newer epoch wins a dual-master resolution).');
    this.vipHeld = gauge('vip_held', 'Whether the kernel holds the VIP on this host (1/0; NaN when it could not be read).');
    this.maintenance = gauge('maintenance', 'Pair-wide maintenance flag as this node sees it (1 = automatic failover frozen).');
    this.transitions = counter('transitions_total', 'Node state transitions.', ['from', 'to']);
    this.advertsSent = counter('adverts_sent_total', 'Adverts the kernel accepted for sending.');
    this.advertsReceived = counter('adverts_received_total', 'Adverts accepted (authenticated, fresh, from the peer) and handed to the decision core.');
    this.advertsRejected = counter('adverts_rejected_total', 'Received datagrams (adverts and peer messages) dropped, by reason.', ['reason']);
    this.datagramsReceived = counter('datagrams_received_total', 'Datagrams received on the advert socket, valid or not.');
    this.sendErrors = counter('advert_send_errors_total', 'Adverts and peer messages that could not be encoded or sent.');
    this.messagesSent = counter('messages_sent_total', 'Peer messages (switchover requests) the kernel accepted for sending.');
    this.messagesReceived = counter('messages_received_total', 'Peer messages accepted and handed to the decision core.');
    this.healthCheckFailures = counter('health_check_failures_total', 'Failed health checks of the local Redis.');
    this.redisUp = gauge('redis_up', 'Whether the last health check of the local Redis succeeded (1/0; NaN before the first check).');
    this.replicationOffset = gauge('redis_replication_offset', 'Replication offset in bytes: node="local" from the last good health check, node="peer" from the peer\'s last advert.', ['node']);
    this.replicationLag = gauge('replication_lag_bytes', 'Bytes the replica is behind the master, from the local and the peer\'s offsets (NaN when unknown), as in redis-ha status.');
    this.peerAdvertAge = gauge('peer_last_advert_age_seconds', 'Age of the peer\'s last authenticated advert when the daemon last updated the metrics (NaN before the first).');
    this.lastTakeover = gauge('last_takeover_duration_seconds', 'Duration of the last takeover: from entering MASTER with a promotion until the promotion finished and the VIP was claimed (NaN before the first).');
    this.takeovers = counter('takeovers_total', 'Takeovers (promotions of the local Redis) that finished.');
    this.switchovers = counter('switchovers_total', 'Planned switchovers this node finished, by outcome.', ['outcome']);
    this.eventLoopLag = gauge('event_loop_lag_seconds', `Maximum event-loop delay beyond the ${EVENT_LOOP_RESOLUTION_MS} ms sampling interval, over the last scrape interval.`);
    this.stalls = counter('event_loop_stalls_total', 'Event-loop stalls the daemon detected (timers firing late by more than stall.threshold_ms).');
    this.lastStall = gauge('last_event_loop_stall_seconds', 'Duration of the last event-loop stall the daemon detected (NaN before the first).');

    for (const g of [this.vipHeld, this.redisUp, this.replicationLag, this.peerAdvertAge, this.lastTakeover, this.lastStall]) g.set(Number.NaN);
    // Series for every reason from the start: a rate over a series that appears only with
    // its first forged packet misses that packet.
    for (const reason of TRANSPORT_REJECT_REASONS) this.advertsRejected.inc({ reason }, 0);

    this.loopDelay = monitorEventLoopDelay({ resolution: EVENT_LOOP_RESOLUTION_MS });
    this.loopDelay.enable();
    collectDefaultMetrics({ register: this.registry, prefix: METRIC_PREFIX });
  }

  /**
   * Recomputes the gauges from a snapshot and advances the transport counters by the
   * difference to the previous snapshot (a smaller total means a new transport: its
   * totals count from zero). `now` is the runtime's monotonic clock, as in the core.
   */
  observe(state: CoreState, now: number, extra: ObserveExtra): void {
    for (const s of NODE_STATES) this.state.set({ state: s }, s === state.role ? 1 : 0);
    this.priorityEffective.set(state.resigning ? 0 : extra.priority);
    this.epoch.set(state.epoch);
    this.vipHeld.set(extra.holdsVip === null ? Number.NaN : Number(extra.holdsVip));
    this.maintenance.set(Number(state.maintenance.on));

    const h = state.health;
    this.redisUp.set(h.checkedAtMs === null ? Number.NaN : Number(h.consecutiveOk > 0));
    this.replicationOffset.reset();
    if (h.redis) this.replicationOffset.set({ node: 'local' }, h.redis.offset);
    const peer = state.peer;
    if (peer && peer.redis.role !== 'unknown') this.replicationOffset.set({ node: 'peer' }, peer.redis.offset);
    this.replicationLag.set(replicationLagBytes(state) ?? Number.NaN);
    this.peerAdvertAge.set(peer ? Math.max(0, now - peer.receivedAtMs) / 1000 : Number.NaN);

    this.advanceTransport(extra.transport);
  }

  /** Counts a node state transition (the runtime logs it at the same place). */
  transition(from: string, to: string): void {
    this.transitions.inc({ from, to });
  }

  /** Counts one failed health check of the local Redis. */
  healthCheckFailed(): void {
    this.healthCheckFailures.inc();
  }

  /** Records a finished takeover: from entering MASTER with a promotion until the VIP claim. */
  takeover(durationMs: number): void {
    this.lastTakeover.set(durationMs / 1000);
    this.takeovers.inc();
  }

  /** Counts a planned switchover this node finished, by outcome (`ok`, `ok-forced`, `rolled-back`, ...). */
  switchover(outcome: string): void {
    this.switchovers.inc({ outcome });
  }

  /** Counts an event-loop stall the daemon detected, and how long it was. */
  stall(durationMs: number): void {
    this.stalls.inc();
    this.lastStall.set(durationMs / 1000);
  }

  /**
   * The event loop's maximum delay beyond the sampling interval, in ms, over the current
   * window (since the last scrape), or over the previous window while the current one has
   * no sample yet.
   */
  eventLoopLagMs(): number {
    if (performance.now() - this.loopWindowStartedAt > EVENT_LOOP_MAX_WINDOW_MS) this.rollLoopWindow();
    return this.loopDelay.count > 0 ? excessMs(this.loopDelay.max) : this.lastWindowLagMs;
  }

  /** The registry in the Prometheus text format; ends the event-loop lag window. */
  async render(): Promise<{ contentType: string; body: string }> {
    this.rollLoopWindow();
    this.eventLoopLag.set(this.lastWindowLagMs / 1000);
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /**
   * Serves `GET /metrics` on `listen`:`port` until `close()`. Port 0 (refused by the
   * configuration) binds an ephemeral port, for tests; see `address()`.
   * @throws FatalError `METRICS_BIND_FAILED` when the address cannot be bound.
   */
  async serve(listen: string, port: number, logger: Logger): Promise<void> {
    if (this.server) throw new RedisHaError('METRICS_ALREADY_SERVING', 'the metrics endpoint is already open', { recoverable: false });
    const server = createServer((req, res) => void this.handle(req, res, logger));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: listen, port }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } catch (error) {
      throw new FatalError(
        'METRICS_BIND_FAILED',
        `cannot serve metrics on ${formatEndpoint(listen, port)} (metrics.listen, metrics.port): ${errorMessage(error)}`,
        1,
        { cause: error },
      );
    }
    server.on('error', (error) => logger.error({ err: error }, 'metrics endpoint error'));
    this.server = server;
    const bound = this.address();
    logger.info({ listen: bound?.address ?? listen, port: bound?.port ?? port, path: METRICS_PATH }, 'metrics endpoint listening');
  }

  /** The bound address and port while serving, else `null`. */
  address(): { address: string; port: number } | null {
    const a = this.server?.address();
    if (!a || typeof a === 'string') return null;
    return { address: a.address, port: a.port };
  }

  /** Stops serving (open keep-alive connections included) and stops sampling the event loop. */
  async close(): Promise<void> {
    this.loopDelay.disable();
    const server = this.server;
    this.server = null;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse, logger: Logger): Promise<void> {
    const path = (req.url ?? '').split('?')[0];
    if (req.method !== 'GET' || path !== METRICS_PATH) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found: metrics are at GET /metrics\n');
      return;
    }
    try {
      const { contentType, body } = await this.render();
      res.writeHead(200, { 'content-type': contentType }).end(body);
    } catch (error) {
      logger.error({ err: error }, 'metrics could not be rendered');
      res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' }).end('metrics could not be rendered\n');
    }
  }

  private advanceTransport(t: TransportCounters): void {
    const prev = this.lastTransport;
    addDelta(this.advertsSent, prev.sent, t.sent);
    addDelta(this.advertsReceived, prev.accepted, t.accepted);
    addDelta(this.datagramsReceived, prev.received, t.received);
    addDelta(this.sendErrors, prev.sendErrors, t.sendErrors);
    addDelta(this.messagesSent, prev.messagesSent, t.messagesSent);
    addDelta(this.messagesReceived, prev.messagesReceived, t.messagesReceived);
    for (const reason of TRANSPORT_REJECT_REASONS) {
      const total = t.rejected[reason];
      const delta = deltaOf(this.lastRejected[reason] ?? 0, total);
      if (delta > 0) this.advertsRejected.inc({ reason }, delta);
    }
    this.lastTransport = {
      sent: t.sent, accepted: t.accepted, received: t.received, sendErrors: t.sendErrors,
      messagesSent: t.messagesSent, messagesReceived: t.messagesReceived,
    };
    this.lastRejected = { ...t.rejected };
  }

  private rollLoopWindow(): void {
    if (this.loopDelay.count > 0) this.lastWindowLagMs = excessMs(this.loopDelay.max);
    this.loopDelay.reset();
    this.loopWindowStartedAt = performance.now();
  }
}

/** How much a cumulative total grew; a smaller total restarted from zero. */
function deltaOf(previous: number, current: number): number {
  return current >= previous ? current - previous : current;
}

function addDelta(counter: Counter, previous: number, current: number): void {
  const delta = deltaOf(previous, current);
  if (delta > 0) counter.inc(delta);
}

/** A histogram sample (ns between two ticks) minus the sampling interval, in ms. */
function excessMs(sampleNs: number): number {
  return Math.max(0, sampleNs / 1e6 - EVENT_LOOP_RESOLUTION_MS);
}

function formatEndpoint(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
