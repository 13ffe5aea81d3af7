/**
 * `redis-ha run`: wiring. Loads the configuration, runs the start-up checks
 * (`startup.ts`: the timing rules, and a Redis Cluster node refused before anything
 * changes), probes the local Redis and looks for a VIP left by a crash or a restart in
 * place (the core decides whether it stays), builds the adapters and the runtime loop,
 * and maps signals onto it:
 *
 *   SIGTERM, SIGINT  planned stop: as master, release the VIP and send a priority-0
 *                    advert so the peer takes over after its skew time; Redis untouched.
 *   SIGUSR2          restart in place: stop without resigning, leaving Redis and the VIP
 *                    as they are; the next process adopts them (no role change).
 *   SIGHUP           reopen the audit log (log rotation).
 *
 * Under systemd (`Type=notify`) it reports READY/STATUS/WATCHDOG/STOPPING through
 * `service.ts`; a restart in place leaves a marker next to the control socket so the
 * unit's ExecStopPost (`redis-ha release-vip`) keeps the VIP that time only.
 *
 * The etcd client (`quorum.backend: etcd`) and the metrics endpoint (`metrics.enabled`)
 * are imported only when configured: together they are most of the daemon's heap
 * (README "Footprint").
 */
import { writeFile } from 'node:fs/promises';
import { AuditLog } from '../adapters/audit.js';
import { ControlServer } from '../adapters/control-socket.js';
import { readLinkState } from '../adapters/link.js';
import { RedisControl } from '../adapters/redis/index.js';
import { stateWriter, type PersistedState, type StateWriter } from '../adapters/state-file.js';
import { AdvertTransport } from '../adapters/udp.js';
import { LinuxVip } from '../adapters/vip.js';
import { systemdNotifier } from '../adapters/sd-notify.js';
import { loadConfig } from '../config/load.js';
import { summarise } from '../config/check.js';
import { coreConfigFrom, quorumTimingOf, refusePortOf, timingOf } from '../config/derived.js';
import type { Config } from '../config/types.js';
import { initialState } from '../core/state.js';
import { takeoverEstimate, vipLifetimeS, watchdogStaleMs } from '../core/timing.js';
import type { Logger } from '../logger.js';
import { controlHandler } from './control.js';
import { peerEvent } from './peer-event.js';
import { QuorumBridge } from './quorum-bridge.js';
import { createLogger } from './logger.js';
import { restartMarkerPath } from './restart-marker.js';
import type { Metrics } from './metrics.js';
import { Runtime, type RuntimeDeps, type RuntimeObserver } from './runtime.js';
import { ServiceNotifier } from './service.js';
import { checkClusterMode, checkTiming, prepareHost, recordBoot } from './startup.js';
import { buildStatus, type StatusReport } from './status.js';
import { monotonicClock, nodeScheduler, type Clock } from './time.js';

/** Runs the daemon in the foreground until it is stopped; resolves with the exit status. */
export async function runDaemon(configPath: string): Promise<number> {
  const config = loadConfig(configPath);
  const logger = createLogger(config.log.level).child({ node: config.node.name });
  // Read (and removed from the environment) before any tool is spawned.
  const service = new ServiceNotifier(systemdNotifier(logger.child({ component: 'systemd' })));
  checkTiming(config, logger);
  await checkClusterMode(config, logger);
  const persisted = await recordBoot(config);
  const persist = stateWriter(config.state.path, persisted);
  const clock = monotonicClock();
  const a = await openAdapters(config, persisted, persist, clock, logger);

  const probeStartedAtMs = clock.now();
  const probe = await a.redis.check();
  logger.info({ ok: probe.ok, detail: probe.detail }, 'local Redis probed');
  const vipPresent = await a.vip.isPresent();
  // A VIP on a kernel lifetime, left by a restart in place: kept alive while INIT decides.
  if (vipPresent) await a.vip.keepFound();
  await prepareHost(config, () => a.redis.bindWarning(config.vip.address), logger);

  const observers: RuntimeObserver[] = [service];
  let metrics: Metrics | null = null;
  if (config.metrics.enabled) {
    const [{ Metrics }, { MetricsObserver }] = await Promise.all([import('./metrics.js'), import('./metrics-observer.js')]);
    metrics = new Metrics({ nodeName: config.node.name });
    observers.push(new MetricsObserver(metrics, a.adverts, config.node.priority, clock));
  }
  const runtime = new Runtime(runtimeDeps(config, persist, a, clock, observers, logger), initialState(clock.now(), persisted));
  const control = controlServer(config, runtime, a, clock, logger);
  await control.start();
  if (metrics) {
    await metrics.serve(config.metrics.listen, config.metrics.port, logger.child({ component: 'metrics' }));
    logger.info({ listen: config.metrics.listen, port: config.metrics.port }, 'metrics endpoint up');
  }
  await a.adverts.start(
    (advert, fromAddress) => runtime.dispatch({ type: 'advert-received', advert, fromAddress }),
    (received) => runtime.dispatch(peerEvent(received)),
  );
  handleSignals(config, runtime, a.audit, logger);

  const link = await readLinkState(config.vip.interface);
  runtime.start({
    vipPresent,
    loaded: { source: config.source, summary: summarise(config), bootTimeMs: persisted.bootTimeMs },
    firstCheck: link.up
      ? {
          type: 'health-checked', ok: probe.ok, detail: probe.detail, redis: probe.redis, startedAtMs: probeStartedAtMs,
          ...(probe.clusterEnabled === true ? { clusterEnabled: true } : {}),
        }
      : { type: 'health-checked', ok: false, detail: link.detail, redis: null, startedAtMs: probeStartedAtMs },
  });
  service.startWatchdog((within) => runtime.alive(within), watchdogStaleMs(config.health));
  const code = await runtime.done;
  service.stop();
  await control.stop();
  await metrics?.close();
  await closeAdapters(a);
  logger.info({ code }, 'exiting');
  logger.flush();
  return code;
}

/** The adapters the runtime drives (the advert socket is opened later, once the loop can hear it). */
interface Adapters {
  readonly audit: AuditLog;
  readonly vip: LinuxVip;
  readonly redis: RedisControl;
  readonly adverts: AdvertTransport;
  readonly quorum: { readonly bridge: QuorumBridge; close(): void } | null;
}

async function openAdapters(config: Config, persisted: PersistedState, persist: StateWriter, clock: Clock, logger: Logger): Promise<Adapters> {
  const audit = AuditLog.fromConfig(config.audit, config.node.name, logger.child({ component: 'audit' }));
  await audit.open();
  const etcd = config.quorum.backend === 'etcd';
  // With a quorum the VIP is held on a kernel lease: a frozen daemon loses it by itself.
  const vip = new LinuxVip({
    ...config.vip, logger: logger.child({ component: 'vip' }), lifetimeS: etcd ? vipLifetimeS(quorumTimingOf(config)) : null,
    refusePort: refusePortOf(config),
  });
  await vip.checkTools();
  // A refusal left by a daemon that died while holding the VIP would reset every client.
  await vip.clearRefusal();
  const redis = new RedisControl({
    local: config.redis, peer: config.peerRedis, health: config.health,
    // Where a fenced old master replicates from: assumes our Redis listens on the node
    // address (bind * or bind <node-address> <vip>, see README) on the port the daemon uses
    // locally, i.e. what the peer's `peer_redis` points at. Checked by run_id before use.
    self: { host: config.node.address, port: config.redis.port },
    promotion: config.promotion, demotion: config.demotion, logger: logger.child({ component: 'redis' }),
  });
  const adverts = new AdvertTransport({
    bindAddress: config.node.address, port: config.advert.port, peerAddress: config.peer.address,
    multicastInterface: config.advert.multicastInterface, groupId: config.group.id, keys: config.advert.keys,
    nodeName: config.node.name, logger: logger.child({ component: 'adverts' }), bootTimeMs: persisted.bootTimeMs,
    seed: persisted.peer ? [persisted.peer] : [],
    // A new run of the peer is rare (its restarts): kept so that after our own restart
    // we echo its run from our first advert (see src/proto/admission.ts).
    onPeerRun: (peer) => {
      persist({ peer }).catch((error: unknown) => logger.warn({ err: error }, 'peer run not written to the state file'));
    },
  });
  const quorum = etcd ? await openQuorum(config, clock, logger.child({ component: 'quorum' })) : null;
  return { audit, vip, redis, adverts, quorum };
}

/** The etcd quorum (backend `etcd`): the leader key and its lease, as the runtime drives them. */
async function openQuorum(config: Config, clock: Clock, logger: Logger): Promise<{ bridge: QuorumBridge; close(): void }> {
  const e = config.quorum.etcd;
  const { EtcdQuorum } = await import('../adapters/quorum/index.js');
  const quorum = await EtcdQuorum.open({
    endpoints: e.endpoints,
    tls: e.caFile === '' ? null : { caFile: e.caFile, ...(e.certFile !== '' ? { certFile: e.certFile, keyFile: e.keyFile } : {}) },
    auth: e.username !== null && e.password !== null ? { username: e.username, password: e.password } : null,
    keyPrefix: e.prefix,
    clusterName: e.clusterName,
    nodeName: config.node.name,
    leaseTtlS: e.leaseTtlS,
    renewIntervalMs: e.renewIntervalMs,
    callTimeoutMs: e.callTimeoutMs,
    now: () => clock.now(),
  });
  logger.info({ endpoints: e.endpoints, key: `${e.prefix}/${e.clusterName}/leader`, leaseTtlS: e.leaseTtlS }, 'quorum: etcd');
  return { bridge: new QuorumBridge(quorum, logger), close: () => quorum.close() };
}

async function closeAdapters(a: Adapters): Promise<void> {
  a.vip.close();
  await a.adverts.stop();
  await a.redis.close();
  a.quorum?.close();
  await a.audit.close();
}

function runtimeDeps(
  config: Config, persist: StateWriter, a: Adapters, clock: Clock, observers: readonly RuntimeObserver[], logger: Logger,
): RuntimeDeps {
  const { redis } = a;
  return {
    core: coreConfigFrom(config),
    healthIntervalMs: config.health.intervalMs,
    reconcileIntervalMs: config.reconcile.intervalMs,
    redis: {
      check: () => redis.check(),
      promote: (from, options) => redis.promote(from, options),
      replicateFrom: (master, options) => redis.replicateFrom(master, options),
      switchOver: (call) => redis.switchOver({ ...call, ...switchoverBounds(config) }),
      disconnectClients: () => redis.disconnectClients(),
      fence: (writes) => redis.fence(writes),
      onConnectionLost: (listener) => redis.onConnectionLost(listener),
      probePeer: () => redis.probePeer(),
    },
    quorum: a.quorum?.bridge ?? null,
    vip: a.vip, adverts: a.adverts, audit: a.audit, clock, scheduler: nodeScheduler,
    link: () => readLinkState(config.vip.interface),
    logger: logger.child({ component: 'core' }),
    stallThresholdMs: config.stall.thresholdMs,
    observer: {
      stepped: (before, after, event) => observers.forEach((o) => o.stepped(before, after, event)),
      stalled: (ms) => observers.forEach((o) => o.stalled?.(ms)),
    },
    persist,
  };
}

/** The control socket: requests are queued to the loop; `status` reads the current state. */
function controlServer(config: Config, runtime: Runtime, a: Adapters, clock: Clock, logger: Logger): ControlServer {
  const status = async (): Promise<StatusReport> => {
    const holdsVip = await a.vip.isPresent().catch(() => null);
    return buildStatus({
      state: runtime.current, now: clock.now(), wallNow: Date.now(),
      node: { name: config.node.name, address: config.node.address, priority: config.node.priority },
      vip: `${config.vip.address}/${config.vip.prefixLength} on ${config.vip.interface}`,
      holdsVip, estimate: takeoverEstimate(timingOf(config)), maxLagBytes: config.switchover.maxLagBytes,
      adverts: { ...a.adverts.counters }, quorum: coreConfigFrom(config).quorum,
    });
  };
  return new ControlServer({
    path: config.control.socket, group: config.control.group, logger: logger.child({ component: 'control' }),
    handler: controlHandler({
      nodeName: config.node.name, defaultTimeoutMs: config.switchover.timeoutMs,
      request: (event, waitMs) => runtime.request(event, waitMs), status,
      record: (record) => runtime.dispatchAndSettle({ type: 'control-handled', record }),
      logger: logger.child({ component: 'control' }),
    }),
  });
}

/**
 * Signals onto the loop: SIGTERM/SIGINT a planned stop, SIGUSR2 a restart in place (the
 * marker first, so the unit's ExecStopPost keeps the VIP this time only), SIGHUP reopens
 * the audit log.
 */
function handleSignals(config: Config, runtime: Runtime, audit: AuditLog, logger: Logger): void {
  const onStop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stop requested');
    runtime.dispatch({ type: 'shutdown-requested' });
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', () => void audit.reopen());
  let detaching = false;
  process.on('SIGUSR2', () => {
    if (detaching) return;
    detaching = true;
    logger.info('restart in place requested: leaving Redis and the VIP as they are');
    void writeFile(restartMarkerPath(config), `${Date.now()}\n`, { mode: 0o640 })
      .catch((error: unknown) => logger.warn({ err: error }, 'restart-in-place marker not written: ExecStopPost will remove the VIP'))
      .then(() => runtime.dispatch({ type: 'detach-requested' }));
  });
}

function switchoverBounds(config: Config): { method: Config['switchover']['method']; maxLagBytes: number; maxAckAgeS: number } {
  return { method: config.switchover.method, maxLagBytes: config.switchover.maxLagBytes, maxAckAgeS: config.switchover.maxAckAgeS };
}
