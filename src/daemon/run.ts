/**
 * `redis-ha run`: wiring and start-up. Loads the configuration, checks the timing
 * invariants and the tools, probes the local Redis, removes a VIP left over from a
 * crash, then hands over to the runtime loop and maps signals onto it:
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
 */
import { writeFile } from 'node:fs/promises';
import { AuditLog } from '../adapters/audit.js';
import { ControlServer } from '../adapters/control-socket.js';
import { ensureArpAnnounce, readLinkState } from '../adapters/link.js';
import { RedisControl } from '../adapters/redis/index.js';
import { loadState, saveState, type PersistedState } from '../adapters/state-file.js';
import { AdvertTransport } from '../adapters/udp.js';
import { LinuxVip } from '../adapters/vip.js';
import { systemdNotifier } from '../adapters/sd-notify.js';
import { loadConfig } from '../config/load.js';
import { summarise } from '../config/check.js';
import type { Config } from '../config/types.js';
import { coreConfigFrom, initialState } from '../core/state.js';
import { checkTimingInvariants, takeoverEstimate } from '../core/timing.js';
import type { ReceivedMessage } from '../proto/message.js';
import { EXIT_CONFIG, FatalError } from '../errors.js';
import { controlHandler } from './control.js';
import { createLogger, type Logger } from './logger.js';
import { restartMarkerPath } from './restart-marker.js';
import { Metrics } from './metrics.js';
import { MetricsObserver } from './metrics-observer.js';
import { Runtime, type RuntimeObserver } from './runtime.js';
import { ServiceNotifier } from './service.js';
import { buildStatus, type StatusReport } from './status.js';

/** Runs the daemon in the foreground until it is stopped; resolves with the exit status. */
export async function runDaemon(configPath: string): Promise<number> {
  const config = loadConfig(configPath);
  const logger = createLogger(config.log.level).child({ node: config.node.name });
  // Read (and removed from the environment) before any tool is spawned.
  const service = new ServiceNotifier(systemdNotifier(logger.child({ component: 'systemd' })));
  const report = checkTimingInvariants(timingOf(config));
  for (const w of report.warnings) logger.warn({ warning: w }, 'timing');
  if (report.errors.length > 0) {
    throw new FatalError('TIMING_INVALID', `timing invariants violated:\n  ${report.errors.join('\n  ')}`, EXIT_CONFIG);
  }
  logger.info({ worstCaseTakeoverMs: roundAll(report.estimate) }, 'computed worst-case takeover times');

  // The boot epoch must grow across restarts even if the wall clock stepped back.
  const persisted = await loadState(config.state.path);
  const bootEpoch = Math.max(Date.now(), persisted.bootEpoch + 1);
  let saved: PersistedState = { ...persisted, bootEpoch };
  await saveState(config.state.path, saved);

  const audit = new AuditLog(config.audit.path, config.node.name, logger.child({ component: 'audit' }));
  await audit.open();
  void audit.append('config-loaded', { source: config.source, summary: summarise(config), epoch: persisted.epoch, bootEpoch });

  const vip = LinuxVip.fromConfig(config.vip, logger.child({ component: 'vip' }));
  await vip.checkTools();
  const redis = new RedisControl({
    local: config.redis, peer: config.peerRedis, health: config.health,
    // Where a fenced old master replicates from: assumes our Redis listens on the node
    // address (bind * or bind <node-address> <vip>, see README) on the port the daemon uses
    // locally, i.e. what the peer's `peer_redis` points at. Checked by run_id before use.
    self: { host: config.node.address, port: config.redis.port },
    promotion: config.promotion, demotion: config.demotion, logger: logger.child({ component: 'redis' }),
  });

  const clockStart = performance.now();
  const clock = { now: () => performance.now() - clockStart };
  const firstStartedAt = clock.now();
  const probe = await redis.check();
  logger.info({ ok: probe.ok, detail: probe.detail }, 'local Redis probed');
  await cleanUpVip(vip, probe.ok && probe.redis?.role === 'master', audit, logger);
  if (config.vip.family === 4) {
    const arp = await ensureArpAnnounce(config.vip.interface);
    if (arp.changed) logger.info({ interface: config.vip.interface }, 'set arp_announce=2 so host ARP never announces the VIP');
    if (arp.warning) logger.warn({ warning: arp.warning }, 'arp_announce');
  }
  const warning = await redis.bindWarning(config.vip.address);
  if (warning) logger.warn({ warning }, 'local Redis may refuse connections on the VIP');

  const adverts = new AdvertTransport({
    bindAddress: config.node.address, port: config.advert.port, peerAddress: config.peer.address,
    multicastInterface: config.advert.multicastInterface, groupId: config.group.id, keys: config.advert.keys,
    nodeName: config.node.name, logger: logger.child({ component: 'adverts' }), bootEpoch,
  });

  const metrics = config.metrics.enabled ? new Metrics({ nodeName: config.node.name }) : null;
  const observers: RuntimeObserver[] = [service];
  if (metrics) observers.push(new MetricsObserver(metrics, adverts, config.node.priority, clock));
  let persistChain = Promise.resolve();
  const runtime = new Runtime({
    core: coreConfigFrom(config),
    healthIntervalMs: config.health.intervalMs,
    reconcileIntervalMs: config.reconcile.intervalMs,
    redis, vip, adverts, audit, clock,
    switchover: { method: config.switchover.method, maxLagBytes: config.switchover.maxLagBytes, maxAckAgeS: config.switchover.maxAckAgeS },
    link: () => readLinkState(config.vip.interface),
    logger: logger.child({ component: 'core' }),
    stallThresholdMs: config.stall.thresholdMs,
    observer: {
      stepped: (before, after, event) => observers.forEach((o) => o.stepped(before, after, event)),
      stalled: (ms) => observers.forEach((o) => o.stalled?.(ms)),
    },
    persist: (s) => {
      saved = { ...saved, ...s };
      const snapshot = saved;
      persistChain = persistChain.then(() => saveState(config.state.path, snapshot));
      return persistChain;
    },
  }, initialState(clock.now(), persisted));

  const status = async (): Promise<StatusReport> => {
    const holdsVip = await vip.isPresent().catch(() => null);
    return buildStatus({
      state: runtime.current, now: clock.now(), wallNow: Date.now(),
      node: { name: config.node.name, address: config.node.address, priority: config.node.priority },
      vip: `${config.vip.address}/${config.vip.prefixLength} on ${config.vip.interface}`,
      holdsVip, estimate: takeoverEstimate(timingOf(config)), maxLagBytes: config.switchover.maxLagBytes,
      adverts: { ...adverts.counters },
    });
  };
  const control = new ControlServer({
    path: config.control.socket, group: config.control.group, logger: logger.child({ component: 'control' }),
    handler: controlHandler({
      nodeName: config.node.name, defaultTimeoutMs: config.switchover.timeoutMs,
      request: (event, waitMs) => runtime.request(event, waitMs), status, audit, logger: logger.child({ component: 'control' }),
    }),
  });
  await control.start();
  if (metrics) {
    await metrics.serve(config.metrics.listen, config.metrics.port, logger.child({ component: 'metrics' }));
    logger.info({ listen: config.metrics.listen, port: config.metrics.port }, 'metrics endpoint up');
  }

  await adverts.start(
    (advert, fromAddress) => runtime.dispatch({ type: 'advert-received', advert, fromAddress }),
    (received) => runtime.dispatch(peerEvent(received)),
  );
  let detached = false;
  const onStop = (signal: NodeJS.Signals): void => {
    logger.info({ signal }, 'stop requested');
    runtime.dispatch({ type: 'shutdown-requested' });
  };
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', () => void audit.reopen());
  process.on('SIGUSR2', () => {
    if (detached) return;
    detached = true;
    logger.info('restart in place requested: leaving Redis and the VIP as they are');
    void writeFile(restartMarkerPath(config), `${Date.now()}\n`, { mode: 0o640 })
      .catch((error: unknown) => logger.warn({ err: error }, 'restart-in-place marker not written: ExecStopPost will remove the VIP'))
      .then(() => audit.append('daemon-detached', { role: runtime.current.role, reason: 'SIGUSR2: restart in place' }))
      .then(() => runtime.detach())
      .then(() => finishDetached());
  });
  let finishDetached: () => void = () => undefined;
  const detachedDone = new Promise<number>((resolve) => {
    finishDetached = () => resolve(0);
  });

  const link = await readLinkState(config.vip.interface);
  runtime.start(link.up
    ? { type: 'health-checked', ok: probe.ok, detail: probe.detail, redis: probe.redis, startedAt: firstStartedAt }
    : { type: 'health-checked', ok: false, detail: link.detail, redis: null, startedAt: firstStartedAt });
  // A health check may take its timeout; three intervals without one means the loop is stuck.
  service.startWatchdog((within) => runtime.alive(within), 3 * (config.health.intervalMs + config.health.timeoutMs));
  const code = await Promise.race([runtime.done, detachedDone]);
  service.stop();
  await control.stop();
  await metrics?.close();
  vip.stop();
  await adverts.stop();
  await redis.close();
  await persistChain.catch(() => undefined);
  await audit.close();
  logger.info({ code }, 'exiting');
  logger.flush();
  return code;
}

/**
 * keepalived removes its VIPs at start-up; so do we, with one exception: when the local
 * Redis is a master the VIP may be serving clients right now (a restart in place), and
 * removing it would refuse their writes. INIT then decides within one listen window
 * whether this node keeps it (adopt) or releases it (a peer master outranks it).
 */
async function cleanUpVip(vip: LinuxVip, localMaster: boolean, audit: AuditLog, logger: Logger): Promise<void> {
  const present = await vip.isPresent();
  if (!present) return;
  if (localMaster) {
    logger.warn('VIP present at start-up and the local Redis is a master: kept until the first role decision');
    void audit.append('vip-kept-at-startup', { reason: 'local Redis is a master; INIT decides' });
    return;
  }
  await vip.release();
  logger.warn('VIP present at start-up on a host whose Redis is not a master: removed');
  void audit.append('vip-released', { reason: 'start-up clean-up: left over from a previous run' });
}

/** A request from the peer daemon (already authenticated and replay-checked) as a core event. */
function peerEvent(received: ReceivedMessage): Parameters<Runtime['dispatch']>[0] {
  const m = received.message;
  switch (m.kind) {
    case 'switchover-request':
      return { type: 'switchover-requested', requestId: m.requestId, timeoutMs: m.timeoutMs, force: m.force, user: `${m.user} on ${received.nodeName}`, origin: 'peer' };
    case 'switchover-result':
      return { type: 'switchover-result-received', requestId: m.requestId, ok: m.ok, detail: m.detail };
    case 'handover':
      return { type: 'handover-received', requestId: m.requestId, epoch: m.epoch, force: m.force };
  }
}

function timingOf(config: Config) {
  return {
    priority: config.node.priority,
    advertIntervalMs: config.advert.intervalMs,
    health: config.health,
    promotion: config.promotion,
  };
}

function roundAll(o: object): Record<string, number> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, Math.round(Number(v))]));
}

export { timingOf };
