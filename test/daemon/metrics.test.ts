/**
 * The Prometheus metrics: values rendered from core states built by the core itself,
 * counters fed from transport snapshots, the HTTP endpoint on loopback, and the Grafana
 * dashboard checked against what is rendered (so it cannot query a name that is gone).
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { register as globalRegistry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { TRANSPORT_REJECT_REASONS, type TransportCounters, type TransportRejectReason } from '../../src/adapters/udp.js';
import type { CoreState } from '../../src/core/state.js';
import { initialState, step } from '../../src/core/step.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { Metrics } from '../../src/daemon/metrics.js';
import { FatalError } from '../../src/errors.js';
import { A_ADDR, REPL_A, advert, coreConfig, fired, heard, last, masterSnap, ok, replicaSnap, run } from '../core/fixtures.js';

// ---------------------------------------------------------------------------
// States, from the real core: b is a backup of a, then takes over when a goes silent.

const bCfg = coreConfig();
const aMasterAdvert = advert({ nodeName: 'a', state: 'MASTER', epoch: 3, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 1000, secondOffset: -1 } });

function backupB(): CoreState {
  return last(run(bCfg, [[0, { type: 'started' }], [10, ok(replicaSnap({ offset: 900 }))], [20, heard(aMasterAdvert, A_ADDR)]])).state;
}

/** b after a went silent: MASTER with epoch 4, `promoting` until `promotion-finished`. */
function takingOverB(): { state: CoreState; at: number } {
  const backup = backupB();
  const at = backup.timers['master-down'];
  if (at === undefined) throw new Error('no master-down timer armed');
  return { state: step(backup, fired('master-down'), at, bCfg).state, at };
}

function masterB(): { state: CoreState; at: number } {
  const { state, at } = takingOverB();
  const done = step(state, { type: 'promotion-finished', ok: true, detail: 'promoted', redis: masterSnap({ replId: REPL_A, offset: 1200 }) }, at + 50, bCfg);
  return { state: done.state, at: at + 50 };
}

function counters(over: Partial<Omit<TransportCounters, 'rejected'>> = {}, rejected: Partial<Record<TransportRejectReason, number>> = {}): TransportCounters {
  const zero = Object.fromEntries(TRANSPORT_REJECT_REASONS.map((r) => [r, 0])) as Record<TransportRejectReason, number>;
  return {
    received: 0, accepted: 0, ownIgnored: 0, sent: 0, sendErrors: 0, messagesSent: 0, messagesReceived: 0,
    ...over,
    rejected: { ...zero, ...rejected },
  };
}

// ---------------------------------------------------------------------------
// Reading the text format

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

function samples(body: string): Sample[] {
  const out: Sample[] = [];
  for (const line of body.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1] ?? ''] = l[2] ?? '';
    out.push({ name: m[1] ?? '', labels, value: parseValue(m[3] ?? '') });
  }
  return out;
}

/** prom-client writes NaN as `Nan` (Prometheus parses values with Go's case-insensitive ParseFloat). */
function parseValue(text: string): number {
  if (text === 'NaN' || text === 'Nan') return Number.NaN;
  if (text === '+Inf' || text === '-Inf') return text === '+Inf' ? Infinity : -Infinity;
  const v = Number(text);
  if (text === '' || Number.isNaN(v)) throw new Error(`not a sample value: ${text}`);
  return v;
}

/** The one sample of `name` whose labels include `labels`; fails when there is none or several. */
function value(body: string, name: string, labels: Record<string, string> = {}): number {
  const found = samples(body).filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (found.length !== 1) throw new Error(`${found.length} samples of ${name} ${JSON.stringify(labels)}`);
  return found[0]?.value ?? Number.NaN;
}

function has(body: string, name: string, labels: Record<string, string> = {}): boolean {
  return samples(body).some((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

// ---------------------------------------------------------------------------

const open: Metrics[] = [];
function metrics(nodeName = 'b'): Metrics {
  const m = new Metrics({ nodeName });
  open.push(m);
  return m;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

const body = async (m: Metrics): Promise<string> => (await m.render()).body;

describe('gauges from core states', () => {
  it('a MASTER after a takeover: state, epoch, VIP, Redis, peer and lag', async () => {
    const { state, at } = masterB();
    expect(state.role).toBe('MASTER');
    const m = metrics();
    m.observe(state, at + 500, { holdsVip: true, transport: counters(), priority: 90 });
    const b = await body(m);
    expect(value(b, 'redis_ha_node_info', { name: 'b' })).toBe(1);
    expect(value(b, 'redis_ha_state', { state: 'MASTER' })).toBe(1);
    for (const s of ['INIT', 'BACKUP', 'FAULT']) expect(value(b, 'redis_ha_state', { state: s })).toBe(0);
    expect(value(b, 'redis_ha_epoch')).toBe(4);
    expect(value(b, 'redis_ha_priority_effective')).toBe(90);
    expect(value(b, 'redis_ha_vip_held')).toBe(1);
    expect(value(b, 'redis_ha_maintenance')).toBe(0);
    expect(value(b, 'redis_ha_redis_up')).toBe(1);
    expect(value(b, 'redis_ha_redis_replication_offset', { node: 'local' })).toBe(1200);
    expect(value(b, 'redis_ha_redis_replication_offset', { node: 'peer' })).toBe(1000);
    // Both sides claim master (a silent old master): no lag can be computed.
    expect(value(b, 'redis_ha_replication_lag_bytes')).toBeNaN();
    // a's last advert arrived at 20.
    expect(value(b, 'redis_ha_peer_last_advert_age_seconds')).toBeCloseTo((at + 500 - 20) / 1000, 6);
  });

  it('a BACKUP: replica offsets, lag behind the master, no VIP', async () => {
    const m = metrics();
    m.observe(backupB(), 1020, { holdsVip: false, transport: counters(), priority: 90 });
    const b = await body(m);
    expect(value(b, 'redis_ha_state', { state: 'BACKUP' })).toBe(1);
    expect(value(b, 'redis_ha_state', { state: 'MASTER' })).toBe(0);
    expect(value(b, 'redis_ha_vip_held')).toBe(0);
    expect(value(b, 'redis_ha_redis_replication_offset', { node: 'local' })).toBe(900);
    expect(value(b, 'redis_ha_redis_replication_offset', { node: 'peer' })).toBe(1000);
    expect(value(b, 'redis_ha_replication_lag_bytes')).toBe(100);
    expect(value(b, 'redis_ha_peer_last_advert_age_seconds')).toBe(1);
  });

  it('a node just started: unknowns are NaN or absent, never 0', async () => {
    const m = metrics();
    m.observe(initialState(0, { epoch: 2, knownEpoch: 2 }), 0, { holdsVip: null, transport: counters(), priority: 90 });
    const b = await body(m);
    expect(value(b, 'redis_ha_state', { state: 'INIT' })).toBe(1);
    expect(value(b, 'redis_ha_epoch')).toBe(2);
    expect(value(b, 'redis_ha_vip_held')).toBeNaN();
    expect(value(b, 'redis_ha_redis_up')).toBeNaN();
    expect(value(b, 'redis_ha_replication_lag_bytes')).toBeNaN();
    expect(value(b, 'redis_ha_peer_last_advert_age_seconds')).toBeNaN();
    expect(value(b, 'redis_ha_last_takeover_duration_seconds')).toBeNaN();
    expect(has(b, 'redis_ha_redis_replication_offset')).toBe(false);
  });

  it('a newer state replaces the old values: a backup whose Redis fails turns FAULT', async () => {
    const m = metrics();
    const backup = backupB();
    m.observe(backup, 1020, { holdsVip: false, transport: counters(), priority: 90 });
    const failed = step(step(backup, { type: 'health-checked', ok: false, detail: 'refused', redis: null }, 1100, bCfg).state,
      { type: 'health-checked', ok: false, detail: 'refused', redis: null }, 1200, bCfg).state;
    expect(failed.role).toBe('FAULT');
    m.observe(failed, 1300, { holdsVip: false, transport: counters(), priority: 90 });
    const b = await body(m);
    expect(value(b, 'redis_ha_state', { state: 'FAULT' })).toBe(1);
    expect(value(b, 'redis_ha_state', { state: 'BACKUP' })).toBe(0);
    expect(value(b, 'redis_ha_redis_up')).toBe(0);
  });

  it('resigning advertises priority 0; maintenance shows as 1', async () => {
    const { state, at } = masterB();
    const frozen = step(state, { type: 'maintenance-requested', requestId: 'm1', on: true, user: 'root' }, at + 10, bCfg).state;
    const resigning = step(frozen, { type: 'shutdown-requested' }, at + 20, bCfg).state;
    expect(resigning.resigning).toBe(true);
    const m = metrics();
    m.observe(resigning, at + 30, { holdsVip: true, transport: counters(), priority: 90 });
    const b = await body(m);
    expect(value(b, 'redis_ha_priority_effective')).toBe(0);
    expect(value(b, 'redis_ha_maintenance')).toBe(1);
  });
});

describe('counters', () => {
  it('transport totals advance by difference, stay monotonic across a new transport, and ignore repeats', async () => {
    const m = metrics();
    const s = backupB();
    const [r1, r2] = TRANSPORT_REJECT_REASONS;
    if (r1 === undefined || r2 === undefined) throw new Error('need two reject reasons');
    const obs = (t: TransportCounters): void => m.observe(s, 1020, { holdsVip: false, transport: t, priority: 90 });

    obs(counters({ sent: 5, accepted: 4, received: 7, messagesSent: 1, messagesReceived: 2, sendErrors: 1 }, { [r1]: 3 }));
    let b = await body(m);
    expect(value(b, 'redis_ha_adverts_sent_total')).toBe(5);
    expect(value(b, 'redis_ha_adverts_received_total')).toBe(4);
    expect(value(b, 'redis_ha_datagrams_received_total')).toBe(7);
    expect(value(b, 'redis_ha_messages_sent_total')).toBe(1);
    expect(value(b, 'redis_ha_messages_received_total')).toBe(2);
    expect(value(b, 'redis_ha_advert_send_errors_total')).toBe(1);
    expect(value(b, 'redis_ha_adverts_rejected_total', { reason: r1 })).toBe(3);
    // Every reason has a series from the start.
    for (const reason of TRANSPORT_REJECT_REASONS) expect(has(b, 'redis_ha_adverts_rejected_total', { reason })).toBe(true);
    expect(value(b, 'redis_ha_adverts_rejected_total', { reason: r2 })).toBe(0);

    const later = counters({ sent: 8, accepted: 6, received: 10, messagesSent: 1, messagesReceived: 2, sendErrors: 1 }, { [r1]: 3, [r2]: 2 });
    obs(later);
    obs(later);
    b = await body(m);
    expect(value(b, 'redis_ha_adverts_sent_total')).toBe(8);
    expect(value(b, 'redis_ha_adverts_received_total')).toBe(6);
    expect(value(b, 'redis_ha_adverts_rejected_total', { reason: r1 })).toBe(3);
    expect(value(b, 'redis_ha_adverts_rejected_total', { reason: r2 })).toBe(2);

    // A new transport counts from zero: its totals are added, nothing goes down.
    obs(counters({ sent: 2, accepted: 1, received: 1 }, { [r2]: 1 }));
    b = await body(m);
    expect(value(b, 'redis_ha_adverts_sent_total')).toBe(10);
    expect(value(b, 'redis_ha_adverts_received_total')).toBe(7);
    expect(value(b, 'redis_ha_datagrams_received_total')).toBe(11);
    expect(value(b, 'redis_ha_adverts_rejected_total', { reason: r1 })).toBe(3);
    expect(value(b, 'redis_ha_adverts_rejected_total', { reason: r2 })).toBe(3);
  });

  it('transitions, health-check failures, takeovers, switchovers and stalls', async () => {
    const m = metrics();
    m.transition('INIT', 'BACKUP');
    m.transition('BACKUP', 'MASTER');
    m.transition('BACKUP', 'MASTER');
    m.healthCheckFailed();
    m.healthCheckFailed();
    m.takeover(1500);
    m.takeover(750);
    m.switchover('ok');
    m.switchover('rolled-back');
    m.switchover('ok');
    m.stall(2500);
    const b = await body(m);
    expect(value(b, 'redis_ha_transitions_total', { from: 'INIT', to: 'BACKUP' })).toBe(1);
    expect(value(b, 'redis_ha_transitions_total', { from: 'BACKUP', to: 'MASTER' })).toBe(2);
    expect(value(b, 'redis_ha_health_check_failures_total')).toBe(2);
    expect(value(b, 'redis_ha_takeovers_total')).toBe(2);
    expect(value(b, 'redis_ha_last_takeover_duration_seconds')).toBe(0.75);
    expect(value(b, 'redis_ha_switchovers_total', { outcome: 'ok' })).toBe(2);
    expect(value(b, 'redis_ha_switchovers_total', { outcome: 'rolled-back' })).toBe(1);
    expect(value(b, 'redis_ha_event_loop_stalls_total')).toBe(1);
    expect(value(b, 'redis_ha_last_event_loop_stall_seconds')).toBe(2.5);
  });
});

describe('process and event loop', () => {
  it('default process metrics go to the private registry, prefixed, and nothing to the global one', async () => {
    const b = await body(metrics());
    expect(has(b, 'redis_ha_process_cpu_user_seconds_total')).toBe(true);
    expect(has(b, 'redis_ha_nodejs_heap_size_used_bytes')).toBe(true);
    expect(samples(b).every((s) => s.name.startsWith('redis_ha_'))).toBe(true);
    expect(globalRegistry.getSingleMetric('redis_ha_state')).toBeUndefined();
    // Two instances in one process do not collide.
    expect(has(await body(metrics('a')), 'redis_ha_node_info', { name: 'a' })).toBe(true);
  });

  it('a blocked event loop shows as lag until a scrape after it', async () => {
    // Scrapes, 100 ms apart, of which one must read a quiet loop: 3 s, well under the 60 s window.
    const QUIET_SCRAPES = 30;
    const m = metrics();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const until = performance.now() + 150;
    while (performance.now() < until) { /* block the loop */ }
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(m.eventLoopLagMs()).toBeGreaterThan(100);
    const firstLagS = value(await body(m), 'redis_ha_event_loop_lag_seconds');
    expect(firstLagS).toBeGreaterThan(0.1);
    // The window ended with that scrape, so a later one covers a quiet loop and the stall
    // no longer shows. Without the reset every scrape would show it for a minute
    // (EVENT_LOOP_MAX_WINDOW_MS). Several scrapes are allowed, so a GC pause or a busy
    // machine delaying the next tick in one window does not fail it.
    let laterLagS = firstLagS;
    for (let scrape = 0; scrape < QUIET_SCRAPES && laterLagS >= firstLagS / 2; scrape++) {
      await new Promise((resolve) => setTimeout(resolve, 100));
      laterLagS = value(await body(m), 'redis_ha_event_loop_lag_seconds');
    }
    expect(laterLagS).toBeLessThan(firstLagS / 2);
  });
});

describe('HTTP endpoint', () => {
  it('serves GET /metrics, 404 elsewhere, and close() frees the port', async () => {
    const m = metrics();
    m.observe(backupB(), 1020, { holdsVip: false, transport: counters(), priority: 90 });
    await m.serve('127.0.0.1', 0, silentLogger());
    const addr = m.address();
    expect(addr?.address).toBe('127.0.0.1');
    const port = addr?.port ?? 0;
    expect(port).toBeGreaterThan(0);

    const res = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(value(await res.text(), 'redis_ha_state', { state: 'BACKUP' })).toBe(1);
    expect((await fetch(`http://127.0.0.1:${port}/metrics?x=1`)).status).toBe(200);

    for (const [path, method] of [['/', 'GET'], ['/metricsx', 'GET'], ['/metrics', 'POST']] as const) {
      const r = await fetch(`http://127.0.0.1:${port}${path}`, { method });
      expect(r.status, `${method} ${path}`).toBe(404);
      await r.text();
    }

    await m.close();
    expect(m.address()).toBeNull();
    const other = createServer();
    await new Promise<void>((resolve, reject) => {
      other.once('error', reject);
      other.listen({ host: '127.0.0.1', port }, resolve);
    });
    await new Promise<void>((resolve) => other.close(() => resolve()));
  });

  it('a port already in use is METRICS_BIND_FAILED naming metrics.listen and metrics.port', async () => {
    const first = metrics();
    await first.serve('127.0.0.1', 0, silentLogger());
    const port = first.address()?.port ?? 0;
    const second = metrics();
    const error = await second.serve('127.0.0.1', port, silentLogger()).then(() => null, (e: unknown) => e);
    expect(error).toBeInstanceOf(FatalError);
    expect(error).toMatchObject({ code: 'METRICS_BIND_FAILED', recoverable: false });
    expect((error as FatalError).message).toMatch(new RegExp(`127\\.0\\.0\\.1:${port} \\(metrics\\.listen, metrics\\.port\\).*EADDRINUSE`));
    expect(second.address()).toBeNull();
  });
});

// ---------------------------------------------------------------------------
// The dashboard

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every PromQL string in the dashboard: panel targets (rows included) and template queries. */
function queries(node: Json, out: string[] = []): string[] {
  if (Array.isArray(node)) for (const n of node) queries(n, out);
  else if (node !== null && typeof node === 'object') {
    for (const [key, v] of Object.entries(node)) {
      if ((key === 'expr' || key === 'definition' || key === 'query') && typeof v === 'string') out.push(v);
      else queries(v, out);
    }
  }
  return out;
}

describe('etc/grafana-dashboard.json', () => {
  const dashboard = JSON.parse(readFileSync(new URL('../../etc/grafana-dashboard.json', import.meta.url), 'utf8')) as { [key: string]: Json };

  it('is an importable dashboard with a Prometheus input and a node variable', () => {
    expect(dashboard.schemaVersion).toBe(39);
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    expect(JSON.stringify(dashboard.templating)).toContain('label_values(redis_ha_state, instance)');
    const ids = JSON.stringify(dashboard.panels).match(/"id":\d+/g) ?? [];
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('queries only metric names that render() produces', async () => {
    const m = metrics();
    // Feed everything, so labelled series exist as well.
    const { state, at } = masterB();
    m.observe(state, at + 10, { holdsVip: true, transport: counters({ sent: 1 }), priority: 90 });
    m.transition('BACKUP', 'MASTER');
    m.healthCheckFailed();
    m.takeover(1000);
    m.switchover('ok');
    m.stall(1000);
    const rendered = new Set(samples(await body(m)).map((s) => s.name));

    const used = new Set(queries(dashboard).flatMap((q) => q.match(/\bredis_ha_[a-z0-9_]+/g) ?? []));
    expect(used.size).toBeGreaterThan(15);
    expect([...used].filter((name) => !rendered.has(name))).toEqual([]);
    // And the panels cover what the daemon exports about failover.
    for (const name of ['redis_ha_state', 'redis_ha_vip_held', 'redis_ha_maintenance', 'redis_ha_transitions_total',
      'redis_ha_last_takeover_duration_seconds', 'redis_ha_adverts_rejected_total', 'redis_ha_health_check_failures_total',
      'redis_ha_redis_replication_offset', 'redis_ha_replication_lag_bytes', 'redis_ha_peer_last_advert_age_seconds',
      'redis_ha_event_loop_lag_seconds', 'redis_ha_event_loop_stalls_total']) {
      expect(used.has(name), name).toBe(true);
    }
  });
});
