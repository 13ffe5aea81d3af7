/**
 * Benchmark results as files: the raw JSON (every run's figures), a Markdown report
 * (one table row per setup × fault with median (min–max) over the runs, a second table
 * of step-down and VIP-claim timings where measured, the footprint table, the
 * definitions, and the surprises: runs that did not recover, did
 * not end healthy, lost writes or failed), and a hand-written SVG chart (grouped bars of
 * median unavailability and lost writes per fault and setup, on a log scale when the
 * values span more than `LOG_SCALE_RATIO`).
 *
 * Written under `<out>/<timestamp>/` and copied to `<out>/latest.{json,md,svg}`.
 * Everything but `writeResults` is pure.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DAEMON_STALL_MS, TIMED_FAULT_MS } from './faults.js';
import { UNAVAILABLE_GAP_MS, type FootprintResult } from './measure.js';
import type { BenchResults, RunFigures, RunResult } from './run.js';
import type { FaultName } from './setup.js';

/** Beyond this max/min ratio of positive values, the chart uses a log scale. */
export const LOG_SCALE_RATIO = 20;

/** Median, min and max of the measured values (nulls dropped). */
export interface Summary {
  readonly n: number;
  readonly median: number | null;
  readonly min: number | null;
  readonly max: number | null;
}

/** Summarises a list of measurements; the median of an even count is the mean of the middle two. */
export function summarize(values: ReadonlyArray<number | null | undefined>): Summary {
  const sorted = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v)).sort((x, y) => x - y);
  const n = sorted.length;
  if (n === 0) return { n: 0, median: null, min: null, max: null };
  const mid = Math.floor(n / 2);
  const median = n % 2 === 1 ? (sorted[mid] ?? null) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
  return { n, median, min: sorted[0] ?? null, max: sorted[n - 1] ?? null };
}

/** Formats milliseconds as seconds: `1.23 s`, `0.05 s`, `n/a`. */
export function formatSeconds(ms: number | null): string {
  if (ms === null) return 'n/a';
  const s = ms / 1000;
  return `${s >= 100 ? s.toFixed(0) : s.toFixed(2)} s`;
}

/** Formats milliseconds as whole milliseconds, for the short figures: `12 ms`, `n/a`. */
export function formatMilliseconds(ms: number | null): string {
  return ms === null ? 'n/a' : `${Math.round(ms)} ms`;
}

/** Formats a count (a median may be a half). */
export function formatCount(value: number | null): string {
  if (value === null) return 'n/a';
  return Number.isInteger(value) ? String(value) : value.toFixed(1);
}

/** `median (min–max)`, or just the value when they coincide or there is one run. */
export function formatSummary(summary: Summary, format: (value: number | null) => string): string {
  if (summary.n === 0) return 'n/a';
  const median = format(summary.median);
  if (summary.n === 1 || format(summary.min) === format(summary.max)) return median;
  const unit = / m?s$/.exec(median)?.[0] ?? '';
  const strip = (text: string): string => (unit && text.endsWith(unit) ? text.slice(0, -unit.length) : text);
  return `${strip(median)} (${strip(format(summary.min))}–${strip(format(summary.max))})${unit}`;
}

/** A figure shown in the table. */
interface Metric {
  readonly key: keyof RunFigures;
  readonly label: string;
  readonly format: (value: number | null) => string;
}

const METRICS: readonly Metric[] = [
  { key: 'detectionMs', label: 'detection', format: formatSeconds },
  { key: 'unavailableMs', label: 'writes unavailable', format: formatSeconds },
  { key: 'windowMs', label: 'first gap', format: formatSeconds },
  { key: 'clientsBackMaxMs', label: 'all clients back', format: formatSeconds },
  { key: 'lost', label: 'acked writes lost', format: formatCount },
  { key: 'dualMasterMs', label: 'both masters', format: formatSeconds },
  { key: 'dualVipMs', label: 'VIP on both', format: formatSeconds },
];

function figureValues(runs: readonly RunResult[], key: keyof RunFigures): Array<number | null> {
  return runs.map((run) => {
    const value = run.figures?.[key];
    return typeof value === 'number' ? value : null;
  });
}

/** Runs grouped by setup then fault, in first-seen order. */
export function groupRuns(runs: readonly RunResult[]): Array<{ setup: string; fault: FaultName; runs: RunResult[] }> {
  const groups: Array<{ setup: string; fault: FaultName; runs: RunResult[] }> = [];
  for (const run of runs) {
    let group = groups.find((g) => g.setup === run.setup && g.fault === run.fault);
    if (!group) {
      group = { setup: run.setup, fault: run.fault, runs: [] };
      groups.push(group);
    }
    group.runs.push(run);
  }
  return groups;
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function countTrue(runs: readonly RunResult[], key: 'recovered' | 'healthyAtEnd'): string {
  const measured = runs.filter((run) => run.figures !== null);
  return `${measured.filter((run) => run.figures?.[key] === true).length}/${measured.length}`;
}

/** The main table: one row per setup × fault. */
export function resultsTable(runs: readonly RunResult[]): string {
  const header = ['setup', 'fault', 'runs', ...METRICS.map((m) => m.label), 'recovered', 'healthy at end'];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const group of groupRuns(runs)) {
    const ok = group.runs.filter((run) => run.status === 'ok');
    const errors = group.runs.filter((run) => run.status === 'error').length;
    const unsupported = group.runs.find((run) => run.status === 'unsupported');
    if (ok.length === 0) {
      const why = unsupported ? `unsupported: ${unsupported.reason ?? ''}` : `failed: ${group.runs[0]?.reason?.split('\n')[0] ?? ''}`;
      const cells = [group.setup, group.fault, errors ? `0 (${errors} failed)` : '–', escapeCell(why), ...METRICS.slice(1).map(() => ''), '', ''];
      lines.push(`| ${cells.join(' | ')} |`);
      continue;
    }
    const cells = [
      group.setup,
      group.fault,
      errors ? `${ok.length} (+${errors} failed)` : String(ok.length),
      ...METRICS.map((metric) => formatSummary(summarize(figureValues(ok, metric.key)), metric.format)),
      countTrue(ok, 'recovered'),
      countTrue(ok, 'healthyAtEnd'),
    ];
    lines.push(`| ${cells.map(escapeCell).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** A figure of the step-down and VIP-claim table; absent in runs where it does not apply. */
interface OptionalMetric {
  readonly key: 'vipClaimMs' | 'vipClaimRecordMs' | 'stepDownMs' | 'oldMasterOutMs' | 'afterHealDualMasterMs' | 'afterHealDualVipMs';
  readonly label: string;
}

const TAKEOVER_METRICS: readonly OptionalMetric[] = [
  { key: 'vipClaimMs', label: 'VIP claim' },
  { key: 'vipClaimRecordMs', label: 'VIP claim (recorded)' },
  { key: 'stepDownMs', label: 'step-down after continue' },
  { key: 'oldMasterOutMs', label: 'old master out after continue' },
  { key: 'afterHealDualMasterMs', label: 'both masters after heal' },
  { key: 'afterHealDualVipMs', label: 'VIP on both after heal' },
];

/**
 * One cell of an optional figure: `–` when no run has it (it does not apply), else
 * median (min–max) over the runs that measured a value, with how many runs never got
 * there (`null`: no step-down record, the VIP never seen, ...).
 */
function optionalCell(runs: readonly RunResult[], key: OptionalMetric['key']): string {
  const present = runs.filter((run) => run.figures !== null && run.figures[key] !== undefined);
  if (present.length === 0) return '–';
  const values = present.map((run) => run.figures?.[key] ?? null);
  const missing = values.filter((value) => value === null).length;
  const summary = formatSummary(summarize(values), formatMilliseconds);
  return missing === 0 || missing === present.length ? summary : `${summary}; ${missing}× n/a`;
}

/**
 * The step-down and VIP-claim table: one row per setup × fault with at least one of
 * these figures (results taken before they were measured have none: no rows).
 */
export function takeoverTable(runs: readonly RunResult[]): string | null {
  const groups = groupRuns(runs)
    .map((group) => ({ ...group, ok: group.runs.filter((run) => run.status === 'ok') }))
    .filter((group) => group.ok.some((run) => TAKEOVER_METRICS.some((metric) => run.figures?.[metric.key] !== undefined)));
  if (groups.length === 0) return null;
  const header = ['setup', 'fault', 'runs', ...TAKEOVER_METRICS.map((m) => m.label)];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const group of groups) {
    const cells = [group.setup, group.fault, String(group.ok.length), ...TAKEOVER_METRICS.map((metric) => optionalCell(group.ok, metric.key))];
    lines.push(`| ${cells.map(escapeCell).join(' | ')} |`);
  }
  return lines.join('\n');
}

/** `2 (keepalived ×2)`, `1 (etcd)`: how many processes and which; just the count in results without names. */
export function processesCell(pids: readonly number[], names: readonly string[] | undefined): string {
  if (!names || names.length === 0) return String(pids.length);
  const counts = new Map<string, number>();
  for (const name of names) counts.set(name, (counts.get(name) ?? 0) + 1);
  const which = [...counts].map(([name, n]) => (n > 1 ? `${name} ×${n}` : name)).join(', ');
  return `${pids.length} (${which})`;
}

/** The footprint table; anonymous / file-backed split and PSS where recorded (`–` in older results). */
export function footprintTable(footprints: readonly FootprintResult[]): string {
  const lines = [
    '| setup | host | processes | RSS (MiB) | anon / file (MiB) | PSS (MiB) | peak RSS (MiB) | CPU (% of one core) |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const mib = (kib: number): string => (kib / 1024).toFixed(1);
  for (const footprint of footprints) {
    if (footprint.error || footprint.hosts.length === 0) {
      lines.push(`| ${footprint.setup} | – | – | ${escapeCell(footprint.error ?? 'no daemon PIDs')} | | | | |`);
      continue;
    }
    for (const host of footprint.hosts) {
      const m = host.memory;
      lines.push(
        `| ${footprint.setup} | ${host.host} | ${escapeCell(processesCell(host.pids, host.names))} | ${mib(host.rssKiB)} | ` +
          `${m ? `${mib(m.anonKiB)} / ${mib(m.fileKiB)}` : '–'} | ${m?.pssKiB != null ? mib(m.pssKiB) : '–'} | ` +
          `${mib(host.peakRssKiB)} | ${host.cpuPercent.toFixed(2)} |`,
      );
    }
  }
  return lines.join('\n');
}

/** Things a reader should look at: failures, non-recoveries, unhealthy ends, lost or unexpected writes. */
export function surprises(runs: readonly RunResult[]): string[] {
  const out: string[] = [];
  for (const run of runs) {
    const id = `${run.setup} × ${run.fault} #${run.run}`;
    if (run.status === 'error') {
      out.push(`${id}: FAILED (${(run.reason ?? '').split('\n')[0]})`);
      continue;
    }
    const f = run.figures;
    if (!f) continue;
    const items: string[] = [];
    if (!f.recovered) items.push('writes not flowing at the end of the observation');
    if (!f.healthyAtEnd) items.push(`not healthy at the end (VIP ${run.endState?.vip ?? '?'}, a ${run.endState?.a ?? '?'}, b ${run.endState?.b ?? '?'})`);
    const stopped = (f.windowMs ?? 0) >= UNAVAILABLE_GAP_MS;
    if ((f.lost ?? 0) > 0) {
      items.push(`${f.lost} acknowledged writes lost${stopped && (f.lostAfterRecovery ?? 0) > 0 ? ` (${f.lostAfterRecovery} after writes had resumed)` : ''}`);
    }
    if ((f.unexpected ?? 0) > 0) items.push(`${f.unexpected} unexpected values in the final set`);
    if ((f.failedApplied ?? 0) > 0) items.push(`${f.failedApplied} writes reported failed were applied`);
    if (f.dualMasterMs > 0) items.push(`both Redis writable masters for ${formatSeconds(f.dualMasterMs)}`);
    if (f.dualVipMs > 0) items.push(`VIP on both hosts for ${formatSeconds(f.dualVipMs)}`);
    if ((f.repairDualVipMs ?? 0) > 0) items.push(`VIP on both hosts for ${formatSeconds(f.repairDualVipMs)} after the repair`);
    if (f.stepDownMs === null) items.push('the continued old master recorded no step-down');
    // Only when the setup reacted at all: with no takeover there is nothing to let go of.
    if (f.oldMasterOutMs === null && f.detectionMs !== null) items.push('the continued old master kept the VIP or a writable Redis to the end');
    for (const note of run.notes) if (!/^loss via|healed after|removed after|continued after|^packets dropped/.test(note)) items.push(note);
    if (items.length) out.push(`${id}: ${[...new Set(items)].join('; ')}`);
  }
  return out;
}

const DEFINITIONS = [
  '- **detection**: fault → first change of VIP holder or Redis role seen by the 50 ms samplers in a and b (the faulted Redis going down is the fault, not a reaction); n/a = the setup never reacted.',
  `- **writes unavailable**: total of the gaps ≥ ${UNAVAILABLE_GAP_MS} ms between acknowledged writes (SADD through the VIP at 500/s from the client namespace, no retries, 250 ms command and connect timeouts unless the run set --client-timeout-ms), from the last acknowledged write before the fault to the repair (Redis restarted, link restored, SIGCONT), or to the end of the run when nothing is repaired (daemon-kill, switchover; partition and loss are healed after ${TIMED_FAULT_MS / 1000} s and a stalled daemon is continued after ${DAEMON_STALL_MS / 1000} s, then observed, all inside this phase).`,
  '- **first gap**: last acknowledged write before the fault → first acknowledged write issued after it (≈ 0 when writes never stopped at first).',
  '- **all clients back**: fault → the first good write (after its last failure) of the last of the client\'s connections the fault interrupted (one connection, or a pool with `--connections N`); n/a when none was interrupted, or when one never wrote again.',
  '- **acked writes lost**: acknowledged writes missing from the set finally read from the master the client reaches through the VIP, after the repair and settle.',
  '- **both masters / VIP on both**: time both Redis were writable masters (reachable by the client or not; a master whose `min-replicas-to-write` exceeds its good replicas, as a fenced one, is not writable) / both hosts held the VIP, over the same phase, as certainly seen by both 50 ms samplers at once (a lower bound, within one sampling period per change).',
  '- **recovered**: writes flowing when the observation ended; **healthy at end**: one master holding the VIP alone and the other replicating it, within the settle bound after the repair (Redis restarted with its unchanged config, link restored, SIGCONT; a killed daemon is not restarted).',
  '- Cells: median (min–max) over the runs.',
];

const TAKEOVER_DEFINITIONS = [
  '- **VIP claim**: the new master\'s own record of its successful Redis promotion (redis-ha: the audit record `redis-promoted`; where none was recorded, its `transition` to MASTER) → the first 50 ms sample showing the VIP on that host, for the first takeover after the fault; includes up to one sampling period. **VIP claim (recorded)**: the same record → the host\'s own record that its claim returned (`vip-claimed`: the address added and the first gratuitous ARP sent, redis-ha waiting up to 20 ms (`ARPING_SETTLE_MS`) on that arping, so it can come after the VIP is seen). Only setups that record their role changes (redis-ha); – = no takeover (or no record), n/a = the VIP was never seen.',
  `- **step-down after continue** (daemon-stall: the master host's failover daemon SIGSTOPped for ${DAEMON_STALL_MS / 1000} s, longer than the peer's master-down interval, then SIGCONTed): SIGCONT → the old master's own record of leaving the master role (redis-ha: its audit \`transition\` out of MASTER). **old master out after continue**: SIGCONT → the first moment the samplers, reading the old master after the SIGCONT, show it holding no VIP and no writable Redis master (redis-ha's takeover normally fences the old Redis during the stall, so for it this is the VIP release); n/a = never, to the end of the run.`,
  '- **both masters / VIP on both after heal**: as above, from the heal of a timed fault (partition and loss healed, the stalled daemon continued) to the end of the run; the daemon-stall row\'s **both masters** and **VIP on both** in the results table cover the stall as well.',
  '- All times are wall-clock milliseconds of one machine; the daemons\' records carry millisecond timestamps.',
];

/** The whole Markdown report. */
export function markdownReport(results: BenchResults): string {
  const lines: string[] = [];
  lines.push(`# Failover benchmark: ${results.startedAt}`);
  lines.push('');
  lines.push(
    `${results.runs.length} runs (${results.options.runs} per setup × fault) in ${formatSeconds(results.durationMs).replace(' s', '')} s on ` +
      `${results.machine.cpus} CPUs / ${results.machine.memoryMiB} MiB, Node ${results.machine.node}, kernel ${results.machine.kernel}.` +
      (results.interrupted ? ` **Interrupted (${results.interrupted}): partial results.**` : '') +
      (results.merged ? ` Combined: ${results.merged}.` : ''),
  );
  lines.push('');
  lines.push('## Setups');
  lines.push('');
  for (const setup of results.setups) {
    lines.push(`- **${setup.name}**: ${setup.available ? setup.description : `unavailable (${setup.unavailable ?? ''})`}`);
  }
  lines.push('');
  lines.push('## Results');
  lines.push('');
  lines.push(resultsTable(results.runs));
  lines.push('');
  lines.push(...DEFINITIONS);
  const takeover = takeoverTable(results.runs);
  if (takeover !== null) {
    lines.push('');
    lines.push('## Step-down and VIP claim');
    lines.push('');
    lines.push(takeover);
    lines.push('');
    lines.push(...TAKEOVER_DEFINITIONS);
  }
  if (results.footprints.length) {
    lines.push('');
    lines.push('## Footprint');
    lines.push('');
    const interval = results.footprints[0]?.intervalMs ?? 0;
    lines.push(
      `Failover processes only (not Redis), steady state with the writer running, over ${formatSeconds(interval)}; ` +
        'CPU includes the scripts a daemon forks and reaps (cutime/cstime). A witness is part of its setup: ' +
        "redis-ha-etcd's host c row is its one-member etcd (the etcd server's own RSS and CPU), Sentinel's is its third sentinel.",
    );
    lines.push('');
    lines.push(footprintTable(results.footprints));
  }
  const notable = surprises(results.runs);
  if (notable.length) {
    lines.push('');
    lines.push('## Surprises and failures');
    lines.push('');
    for (const item of notable) lines.push(`- ${escapeCell(item)}`);
  }
  lines.push('');
  return lines.join('\n');
}

// -- SVG ----------------------------------------------------------------------------

/** Escapes text for SVG/XML. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const COLORS = ['#1f77b4', '#2ca02c', '#d62728', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'];

/** A chart axis: value → 0..1, and its ticks. */
interface Scale {
  readonly log: boolean;
  position(value: number): number;
  readonly ticks: readonly number[];
}

/** Linear from 0 to a round max, or log10(1 + v) when positive values span more than `LOG_SCALE_RATIO`. */
export function makeScale(values: readonly number[]): Scale {
  const positive = values.filter((v) => v > 0);
  const max = Math.max(1, ...values);
  const min = positive.length ? Math.min(...positive) : max;
  if (max / min > LOG_SCALE_RATIO) {
    const top = Math.ceil(Math.log10(1 + max));
    const ticks = [0, ...Array.from({ length: top }, (_, i) => 10 ** (i + 1))];
    return { log: true, position: (v) => Math.log10(1 + Math.max(0, v)) / top, ticks };
  }
  const magnitude = 10 ** Math.floor(Math.log10(max));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => max / s <= 5) ?? magnitude * 10;
  const top = Math.ceil(max / step) * step;
  const ticks = Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step);
  return { log: false, position: (v) => Math.max(0, v) / top, ticks };
}

interface Panel {
  readonly title: string;
  readonly value: (runs: readonly RunResult[]) => number | null;
  readonly tick: (value: number) => string;
  readonly label: (value: number) => string;
}

function shortSeconds(ms: number): string {
  const s = ms / 1000;
  if (s === 0) return '0';
  if (s < 1) return `${Number(s.toFixed(2))}`;
  return `${Number(s.toFixed(s < 10 ? 1 : 0))}`;
}

/** The chart: two panels (median unavailability, median lost writes), a group per fault, a bar per setup. */
export function svgChart(results: BenchResults): string {
  const ok = results.runs.filter((run) => run.status === 'ok');
  const setups = [...new Set(results.runs.map((run) => run.setup))];
  const faults = [...new Set(results.runs.map((run) => run.fault))];
  const panels: Panel[] = [
    {
      title: 'Writes unavailable after the fault (median, seconds)',
      value: (runs) => summarize(figureValues(runs, 'unavailableMs')).median,
      tick: (v) => `${shortSeconds(v)} s`,
      label: shortSeconds,
    },
    {
      title: 'Acknowledged writes lost (median)',
      value: (runs) => summarize(figureValues(runs, 'lost')).median,
      tick: (v) => String(v),
      label: (v) => formatCount(v),
    },
  ];
  const barWidth = 14;
  const groupGap = 18;
  const groupWidth = Math.max(1, setups.length) * barWidth + groupGap;
  const left = 70;
  const panelHeight = 220;
  const panelGap = 90;
  const top = 60;
  const width = left + Math.max(1, faults.length) * groupWidth + 30;
  const legendHeight = 24 + setups.length * 16;
  const height = top + panels.length * (panelHeight + panelGap) + legendHeight;
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      'font-family="sans-serif" font-size="11">',
  );
  parts.push(`<rect x="0" y="0" width="${width}" height="${height}" fill="#ffffff"/>`);
  parts.push(`<text x="${left}" y="24" font-size="15" font-weight="bold">${escapeXml(`Failover benchmark ${results.startedAt}`)}</text>`);
  parts.push(`<text x="${left}" y="42" fill="#555555">${escapeXml(`${results.options.runs} run(s) per setup × fault; missing bar = unsupported or no data`)}</text>`);
  panels.forEach((panel, p) => {
    const y0 = top + p * (panelHeight + panelGap) + 20;
    const values = new Map<string, number | null>();
    for (const setup of setups) {
      for (const fault of faults) values.set(`${setup}|${fault}`, panel.value(ok.filter((r) => r.setup === setup && r.fault === fault)));
    }
    const scale = makeScale([...values.values()].filter((v): v is number => v !== null));
    const yOf = (v: number): number => y0 + panelHeight - scale.position(v) * panelHeight;
    parts.push(`<text x="${left}" y="${y0 - 8}" font-size="13" font-weight="bold">${escapeXml(panel.title + (scale.log ? ' (log scale)' : ''))}</text>`);
    for (const tick of scale.ticks) {
      const y = yOf(tick).toFixed(1);
      parts.push(`<line x1="${left}" y1="${y}" x2="${width - 20}" y2="${y}" stroke="#dddddd"/>`);
      parts.push(`<text x="${left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(panel.tick(tick))}</text>`);
    }
    parts.push(`<line x1="${left}" y1="${y0 + panelHeight}" x2="${width - 20}" y2="${y0 + panelHeight}" stroke="#333333"/>`);
    faults.forEach((fault, f) => {
      const gx = left + f * groupWidth + groupGap / 2;
      setups.forEach((setup, s) => {
        const value = values.get(`${setup}|${fault}`);
        if (value === null || value === undefined) return;
        const x = gx + s * barWidth;
        const y = yOf(value);
        const h = Math.max(0, y0 + panelHeight - y);
        parts.push(
          `<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barWidth - 2}" height="${h.toFixed(1)}" fill="${COLORS[s % COLORS.length]}">` +
            `<title>${escapeXml(`${setup} × ${fault}: ${panel.label(value)}`)}</title></rect>`,
        );
        parts.push(
          `<text x="${(x + (barWidth - 2) / 2).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle" font-size="8">${escapeXml(panel.label(value))}</text>`,
        );
      });
      parts.push(
        `<text x="${(gx + (setups.length * barWidth) / 2).toFixed(1)}" y="${y0 + panelHeight + 14}" text-anchor="middle">${escapeXml(fault)}</text>`,
      );
    });
  });
  const legendY = top + panels.length * (panelHeight + panelGap);
  setups.forEach((setup, s) => {
    const y = legendY + s * 16;
    parts.push(`<rect x="${left}" y="${y}" width="12" height="12" fill="${COLORS[s % COLORS.length]}"/>`);
    parts.push(`<text x="${left + 18}" y="${y + 10}">${escapeXml(setup)}</text>`);
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

/** A directory-name-safe timestamp, e.g. `2025-01-31T12-00-00Z`. */
export function timestampDir(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z').replace(/:/g, '-');
}

/** Writes the three files under `<outDir>/<timestamp>/` and as `<outDir>/latest.*`; returns the run directory. */
export function writeResults(results: BenchResults, outDir: string): string {
  const dir = join(outDir, timestampDir(results.startedAt));
  mkdirSync(dir, { recursive: true });
  const files: Record<string, string> = {
    json: `${JSON.stringify(results, null, 2)}\n`,
    md: markdownReport(results),
    svg: svgChart(results),
  };
  for (const [ext, content] of Object.entries(files)) {
    writeFileSync(join(dir, `results.${ext}`), content);
    writeFileSync(join(outDir, `latest.${ext}`), content);
  }
  return dir;
}
