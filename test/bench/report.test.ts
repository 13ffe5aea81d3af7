/**
 * The benchmark report, pure: medians and ranges, the Markdown table (rows per setup ×
 * fault, unsupported and failed cells, recovered / healthy counts), the surprises list,
 * and the SVG chart (well-formed XML, a bar per measured cell, log scale when the values
 * span orders of magnitude, escaped labels).
 */
import { describe, expect, it } from 'vitest';
import {
  escapeXml,
  footprintTable,
  formatCount,
  formatMilliseconds,
  formatSeconds,
  formatSummary,
  makeScale,
  markdownReport,
  processesCell,
  resultsTable,
  summarize,
  surprises,
  svgChart,
  takeoverTable,
  timestampDir,
} from '../../tools/bench/report.js';
import { planLanes, type BenchResults, type RunFigures, type RunResult } from '../../tools/bench/run.js';
import type { FaultName } from '../../tools/bench/setup.js';

function figures(overrides: Partial<RunFigures> = {}): RunFigures {
  return {
    startMs: 800,
    detectionMs: 500,
    recovered: true,
    windowMs: 600,
    faultToFirstOkMs: 590,
    longestGapMs: 600,
    unavailableMs: 600,
    repairUnavailableMs: 0,
    attempted: 5000,
    acknowledged: 4700,
    failed: 300,
    unknown: 0,
    unknownApplied: 0,
    lost: 0,
    lostAfterRecovery: 0,
    unexpected: 0,
    failedApplied: 0,
    dualMasterMs: 0,
    dualVipMs: 0,
    noVipMs: 20,
    repairDualMasterMs: 0,
    repairDualVipMs: 0,
    healthyAtEnd: true,
    settleMs: 700,
    observedMs: 6000,
    ...overrides,
  };
}

function run(setup: string, fault: FaultName, n: number, overrides: Partial<RunFigures> = {}, extra: Partial<RunResult> = {}): RunResult {
  return {
    setup,
    fault,
    run: n,
    status: 'ok',
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 12_000,
    figures: figures(overrides),
    endState: { vip: 'b', a: 'replica', b: 'master' },
    notes: [],
    ...extra,
  };
}

function bench(runs: RunResult[]): BenchResults {
  return {
    startedAt: '2025-01-01T10:00:00.123Z',
    finishedAt: '2025-01-01T10:10:00.000Z',
    durationMs: 600_000,
    machine: { cpus: 2, memoryMiB: 4096, node: 'v20.19.0', kernel: '6.1.0' },
    options: { setups: ['redis-ha', 'keepalived-classic'], faults: ['redis-kill', 'switchover'], runs: 3, footprint: true },
    setups: [
      { name: 'redis-ha', description: 'redis-ha daemons, profile default', available: true },
      { name: 'keepalived-classic', description: 'keepalived <VRRP> & notify scripts', available: true },
    ],
    runs,
    footprints: [
      {
        setup: 'redis-ha',
        intervalMs: 60_000,
        hosts: [
          { host: 'a', pids: [10], rssKiB: 61_440, peakRssKiB: 70_000, cpuPercent: 1.234 },
          { host: 'b', pids: [11], rssKiB: 60_000, peakRssKiB: 65_000, cpuPercent: 0.9 },
        ],
      },
    ],
  };
}

const SAMPLE_RUNS: RunResult[] = [
  run('redis-ha', 'redis-kill', 1, { unavailableMs: 1_000, lost: 0 }),
  run('redis-ha', 'redis-kill', 2, { unavailableMs: 2_000, lost: 2 }),
  run('redis-ha', 'redis-kill', 3, { unavailableMs: 1_500, lost: 0 }),
  run('keepalived-classic', 'redis-kill', 1, { unavailableMs: 27_000, lost: 0 }),
  run('keepalived-classic', 'redis-kill', 2, { unavailableMs: 28_000, lost: 0, healthyAtEnd: false, settleMs: null }),
  {
    setup: 'keepalived-classic',
    fault: 'redis-kill',
    run: 3,
    status: 'error',
    reason: 'starting keepalived-classic: timed out\nlong log',
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 60_000,
    figures: null,
    notes: [],
  },
  run('redis-ha', 'switchover', 1, { unavailableMs: 300, windowMs: 2 }),
  {
    setup: 'keepalived-classic',
    fault: 'switchover',
    run: 1,
    status: 'unsupported',
    reason: 'keepalived-classic does not support switchover',
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 0,
    figures: null,
    notes: [],
  },
];

/** A minimal XML well-formedness check: balanced tags, quoted attributes, escaped text. */
function assertWellFormedXml(xml: string): void {
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<&]*(?:&(?:amp|lt|gt|quot|apos);[^"<&]*)*")*)\s*(\/?)>/g;
  let last = 0;
  let match: RegExpExecArray | null;
  while ((match = tag.exec(xml)) !== null) {
    const text = xml.slice(last, match.index);
    expect(text, `raw markup in text before ${match[0]}`).not.toMatch(/[<>]/);
    expect(text.replace(/&(amp|lt|gt|quot|apos);/g, ''), 'unescaped & in text').not.toContain('&');
    last = tag.lastIndex;
    const [, closing, name = '', , selfClosing] = match;
    if (closing) {
      expect(stack.pop(), `closing </${name}>`).toBe(name);
    } else if (!selfClosing) {
      stack.push(name);
    }
  }
  expect(xml.slice(last).trim()).toBe('');
  expect(stack).toEqual([]);
}

describe('summarize', () => {
  it('takes the median of an odd count, the mean of the middle two of an even one, and drops nulls', () => {
    expect(summarize([3, 1, 2])).toEqual({ n: 3, median: 2, min: 1, max: 3 });
    expect(summarize([4, 1, null, 2, 3])).toEqual({ n: 4, median: 2.5, min: 1, max: 4 });
    expect(summarize([null, undefined])).toEqual({ n: 0, median: null, min: null, max: null });
    expect(summarize([Number.NaN, 5])).toEqual({ n: 1, median: 5, min: 5, max: 5 });
  });
});

describe('formatting', () => {
  it('shows seconds with two decimals, counts as integers or one decimal', () => {
    expect(formatSeconds(1_234)).toBe('1.23 s');
    expect(formatSeconds(0)).toBe('0.00 s');
    expect(formatSeconds(123_456)).toBe('123 s');
    expect(formatSeconds(null)).toBe('n/a');
    expect(formatCount(3)).toBe('3');
    expect(formatCount(2.5)).toBe('2.5');
    expect(formatCount(null)).toBe('n/a');
    expect(formatMilliseconds(11.6)).toBe('12 ms');
    expect(formatMilliseconds(null)).toBe('n/a');
    expect(formatSummary(summarize([10, 30, 12]), formatMilliseconds)).toBe('12 (10–30) ms');
  });

  it('formats median (min–max), collapsing a single or constant value', () => {
    expect(formatSummary(summarize([1_000, 2_000, 1_500]), formatSeconds)).toBe('1.50 (1.00–2.00) s');
    expect(formatSummary(summarize([1_000]), formatSeconds)).toBe('1.00 s');
    expect(formatSummary(summarize([0, 0, 0]), formatCount)).toBe('0');
    expect(formatSummary(summarize([0, 2, 0]), formatCount)).toBe('0 (0–2)');
    expect(formatSummary(summarize([]), formatCount)).toBe('n/a');
    // A range that rounds to one value is shown as that value.
    expect(formatSummary(summarize([0.4, 1.2, 2]), formatSeconds)).toBe('0.00 s');
  });

  it('makes directory-safe timestamps', () => {
    expect(timestampDir('2025-01-01T10:00:00.123Z')).toBe('2025-01-01T10-00-00Z');
  });
});

describe('resultsTable', () => {
  const table = resultsTable(SAMPLE_RUNS);
  const rows = table.split('\n');

  it('has a header, a separator and one row per setup × fault in first-seen order', () => {
    expect(rows[0]).toBe(
      '| setup | fault | runs | detection | writes unavailable | first gap | all clients back | acked writes lost | both masters | VIP on both | recovered | healthy at end |',
    );
    expect(rows[1]).toMatch(/^\|(---\|){12}$/);
    expect(rows.slice(2).map((row) => row.split(' | ').slice(0, 2).join(' '))).toEqual([
      '| redis-ha redis-kill',
      '| keepalived-classic redis-kill',
      '| redis-ha switchover',
      '| keepalived-classic switchover',
    ]);
    for (const row of rows) expect(row.split(/(?<!\\)\|/).length).toBe(14);
  });

  it('summarises the measured runs: median (min–max), counts of recovered and healthy', () => {
    expect(rows[2]).toContain('| 3 |');
    expect(rows[2]).toContain('| 1.50 (1.00–2.00) s |');
    expect(rows[2]).toContain('| 0 (0–2) |');
    expect(rows[2]).toMatch(/\| 3\/3 \| 3\/3 \|$/);
  });

  it('counts failed runs beside the measured ones and reports healthy ones only among those measured', () => {
    expect(rows[3]).toContain('| 2 (+1 failed) |');
    expect(rows[3]).toContain('| 27.50 (27.00–28.00) s |');
    expect(rows[3]).toMatch(/\| 2\/2 \| 1\/2 \|$/);
  });

  it('shows an unsupported cell with its reason', () => {
    expect(rows[5]).toContain('unsupported: keepalived-classic does not support switchover');
  });
});

describe('surprises', () => {
  it('lists failures, unhealthy ends and lost writes, one line per run', () => {
    const list = surprises(SAMPLE_RUNS);
    expect(list).toContain('redis-ha × redis-kill #2: 2 acknowledged writes lost');
    expect(list.some((line) => line.startsWith('keepalived-classic × redis-kill #2: not healthy at the end'))).toBe(true);
    expect(list).toContain('keepalived-classic × redis-kill #3: FAILED (starting keepalived-classic: timed out)');
    expect(list.some((line) => line.startsWith('redis-ha × redis-kill #1'))).toBe(false);
  });
});

describe('takeoverTable (step-down and VIP claim)', () => {
  const stall = (n: number, overrides: Partial<RunFigures>): RunResult =>
    run('redis-ha', 'daemon-stall', n, { afterHealDualMasterMs: 0, afterHealDualVipMs: 20, vipClaimNode: 'b', vipClaimFrom: 'redis-promoted', ...overrides });
  const runs: RunResult[] = [
    stall(1, { stepDownMs: 12, oldMasterOutMs: 40, vipClaimMs: 30, vipClaimRecordMs: 15 }),
    stall(2, { stepDownMs: 10, oldMasterOutMs: 60, vipClaimMs: 50, vipClaimRecordMs: 14 }),
    stall(3, { stepDownMs: null, oldMasterOutMs: 50, vipClaimMs: null, vipClaimRecordMs: 16 }),
    run('redis-ha', 'redis-kill', 1, { vipClaimNode: 'b', vipClaimFrom: 'redis-promoted', vipClaimMs: 40, vipClaimRecordMs: 20 }),
    run('keepalived-classic', 'daemon-stall', 1, { oldMasterOutMs: null, afterHealDualMasterMs: 0, afterHealDualVipMs: 9_000 }),
    // Results taken before these figures existed: no row.
    run('sentinel', 'redis-kill', 1),
  ];
  const rows = (takeoverTable(runs) ?? '').split('\n');

  it('has one row per setup × fault with any of the figures, in first-seen order', () => {
    expect(rows[0]).toBe(
      '| setup | fault | runs | VIP claim | VIP claim (recorded) | step-down after continue | old master out after continue | both masters after heal | VIP on both after heal |',
    );
    expect(rows.slice(2).map((row) => row.split(' | ').slice(0, 2).join(' '))).toEqual([
      '| redis-ha daemon-stall',
      '| redis-ha redis-kill',
      '| keepalived-classic daemon-stall',
    ]);
    for (const row of rows) expect(row.split(/(?<!\\)\|/).length).toBe(11);
  });

  it('summarises the runs that measured a value and counts those that never got there', () => {
    expect(rows[2]).toBe('| redis-ha | daemon-stall | 3 | 40 (30–50) ms; 1× n/a | 15 (14–16) ms | 11 (10–12) ms; 1× n/a | 50 (40–60) ms | 0 ms | 20 ms |');
  });

  it('shows – where a figure does not apply and n/a where it never happened', () => {
    expect(rows[3]).toBe('| redis-ha | redis-kill | 1 | 40 ms | 20 ms | – | – | – | – |');
    expect(rows[4]).toBe('| keepalived-classic | daemon-stall | 1 | – | – | – | n/a | 0 ms | 9000 ms |');
  });

  it('is absent when no run has any of them (results from before they were measured)', () => {
    expect(takeoverTable(SAMPLE_RUNS)).toBeNull();
    const md = markdownReport(bench(SAMPLE_RUNS));
    expect(md).not.toContain('## Step-down and VIP claim');
    expect(md).not.toContain('**VIP claim**');
  });

  it('is in the report with its definitions, and the main table keeps its columns', () => {
    const md = markdownReport(bench(runs));
    expect(md).toContain(`## Step-down and VIP claim\n\n${takeoverTable(runs) ?? ''}`);
    expect(md).toContain('- **VIP claim**: ');
    expect(md).toContain('- **step-down after continue** (daemon-stall: ');
    expect(md).toContain('**old master out after continue**');
    expect(md).toContain('- **both masters / VIP on both after heal**');
    expect(resultsTable(runs).split('\n')[0]).toBe(resultsTable(SAMPLE_RUNS).split('\n')[0]);
  });

  it('lists a missing step-down, and an old master that never let go after a takeover, as surprises', () => {
    const list = surprises(runs);
    expect(list.find((line) => line.startsWith('redis-ha × daemon-stall #3'))).toContain('the continued old master recorded no step-down');
    expect(list.find((line) => line.startsWith('keepalived-classic × daemon-stall #1'))).toContain('kept the VIP or a writable Redis to the end');
    expect(list.some((line) => line.startsWith('redis-ha × daemon-stall #1'))).toBe(false);
    // No reaction at all (sentinel's quorum never lost a's Redis): nothing to let go of.
    const quiet = run('sentinel', 'daemon-stall', 1, { detectionMs: null, oldMasterOutMs: null });
    expect(surprises([quiet])).toEqual([]);
  });

  it('keeps the stall\'s own continue note out of the surprises', () => {
    const noted = stall(1, { stepDownMs: 12, oldMasterOutMs: 40, vipClaimMs: 30, vipClaimRecordMs: 15 });
    expect(surprises([{ ...noted, notes: ["SIGCONT: redis-ha's daemon(s) on a continued after 6 s"] }])).toEqual([]);
  });
});

describe('markdownReport', () => {
  it('has the setups, the table, the definitions, the footprint and the surprises', () => {
    const md = markdownReport(bench(SAMPLE_RUNS));
    expect(md).toContain('# Failover benchmark: 2025-01-01T10:00:00.123Z');
    expect(md).toContain('- **keepalived-classic**: keepalived <VRRP> & notify scripts');
    expect(md).toContain(resultsTable(SAMPLE_RUNS));
    expect(md).toContain('## Footprint');
    expect(md).toContain('| redis-ha | a | 1 | 60.0 | – | – | 68.4 | 1.23 |');
    expect(md).toContain('## Surprises and failures');
  });
});

describe('footprintTable', () => {
  it("names each host's processes, the etcd witness of redis-ha-etcd on c included", () => {
    const table = footprintTable([
      {
        setup: 'redis-ha-etcd',
        intervalMs: 60_000,
        hosts: [
          {
            host: 'a', pids: [10], names: ['node'], rssKiB: 61_440, peakRssKiB: 61_440, cpuPercent: 1.5,
            memory: { anonKiB: 26_624, fileKiB: 34_816, shmemKiB: 0, pssKiB: 40_960 },
          },
          { host: 'c', pids: [12], names: ['etcd'], rssKiB: 30_720, peakRssKiB: 31_744, cpuPercent: 0.75 },
        ],
      },
    ]);
    expect(table).toContain('| redis-ha-etcd | a | 1 (node) | 60.0 | 26.0 / 34.0 | 40.0 | 60.0 | 1.50 |');
    // A result recorded before the split was: dashes, not zeros.
    expect(table).toContain('| redis-ha-etcd | c | 1 (etcd) | 30.0 | – | – | 31.0 | 0.75 |');
  });

  it('counts repeated names, and shows the bare count for results without names', () => {
    expect(processesCell([1, 2, 3], ['keepalived', 'keepalived', 'sh'])).toBe('3 (keepalived ×2, sh)');
    expect(processesCell([1, 2], undefined)).toBe('2');
  });
});

describe('svgChart', () => {
  it('is well-formed XML with a bar per measured setup × fault in each panel', () => {
    const svg = svgChart(bench(SAMPLE_RUNS));
    assertWellFormedXml(svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    // redis-ha × redis-kill, keepalived × redis-kill, redis-ha × switchover; twice (two panels).
    expect(svg.match(/<rect [^>]*><title>/g)?.length).toBe(6);
    expect(svg).toContain('<title>keepalived-classic × redis-kill: 28</title>');
    expect(svg).toContain('>switchover</text>');
  });

  it('switches to a log scale when the values span orders of magnitude', () => {
    const svg = svgChart(bench(SAMPLE_RUNS));
    expect(svg).toContain('Writes unavailable after the fault (median, seconds) (log scale)');
    const narrow = svgChart(bench(SAMPLE_RUNS.filter((r) => r.setup === 'redis-ha' && r.fault === 'redis-kill')));
    expect(narrow).not.toContain('(log scale)');
    assertWellFormedXml(narrow);
  });

  it('escapes names and survives no data at all', () => {
    expect(escapeXml(`a<b & "c" 'd'>`)).toBe('a&lt;b &amp; &quot;c&quot; &apos;d&apos;&gt;');
    const empty = svgChart(bench([]));
    assertWellFormedXml(empty);
  });
});

describe('makeScale', () => {
  it('is linear from zero to a round top for a narrow range', () => {
    const scale = makeScale([1_000, 2_000, 1_500]);
    expect(scale.log).toBe(false);
    expect(scale.ticks[0]).toBe(0);
    expect(scale.position(0)).toBe(0);
    expect(scale.ticks[scale.ticks.length - 1]).toBeGreaterThanOrEqual(2_000);
    expect(scale.position(scale.ticks[scale.ticks.length - 1] ?? 0)).toBe(1);
  });

  it('is log10(1 + v) with decade ticks for a wide range, zero included', () => {
    const scale = makeScale([0, 5, 30_000]);
    expect(scale.log).toBe(true);
    expect(scale.ticks).toEqual([0, 10, 100, 1_000, 10_000, 100_000]);
    expect(scale.position(0)).toBe(0);
    expect(scale.position(30_000)).toBeLessThanOrEqual(1);
    expect(scale.position(5)).toBeGreaterThan(0);
  });
});

describe('planLanes', () => {
  const named = (...names: string[]) => names.map((name) => ({ name }));
  const names = (lanes: Array<Array<{ name: string }>>) => lanes.map((l) => l.map((s) => s.name));

  it('one lane keeps the order', () => {
    expect(names(planLanes(named('redis-ha', 'keepalived-classic', 'sentinel'), 1))).toEqual([['redis-ha', 'keepalived-classic', 'sentinel']]);
  });

  it('puts the sleep-bound keepalived recipe on its own lab, timing-sensitive setups together', () => {
    const all = named('redis-ha', 'redis-ha-fast', 'keepalived-classic', 'sentinel');
    expect(names(planLanes(all, 2))).toEqual([['redis-ha', 'redis-ha-fast', 'sentinel'], ['keepalived-classic']]);
    expect(names(planLanes(all, 4))).toEqual([['redis-ha', 'redis-ha-fast', 'sentinel'], ['keepalived-classic']]);
  });

  it('without a sleep-bound setup there is one lane', () => {
    expect(names(planLanes(named('redis-ha', 'sentinel'), 2))).toEqual([['redis-ha', 'sentinel']]);
    expect(names(planLanes(named('keepalived-classic'), 2))).toEqual([['keepalived-classic']]);
  });
});
