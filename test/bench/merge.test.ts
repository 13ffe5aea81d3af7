/**
 * Merging benchmark results: later files win per setup × fault cell and per footprint;
 * files from before the step-down and VIP-claim figures merge with newer ones.
 */
import { describe, expect, it } from 'vitest';
import { mergeResults } from '../../tools/bench/merge.js';
import { resultsTable, takeoverTable } from '../../tools/bench/report.js';
import type { BenchResults, RunFigures, RunResult } from '../../tools/bench/run.js';

function results(startedAt: string, runs: Array<Pick<RunResult, 'setup' | 'fault' | 'run'>>, footprintSetups: string[] = []): BenchResults {
  return {
    startedAt, finishedAt: startedAt, durationMs: 1000,
    machine: { cpus: 2, memoryMiB: 1024, node: 'v20', kernel: 'k' },
    options: { setups: [], faults: [], runs: 3, footprint: footprintSetups.length > 0 },
    setups: [...new Set(runs.map((r) => r.setup))].map((name) => ({ name, description: `${name} from ${startedAt}`, available: true })),
    runs: runs.map((r) => ({ ...r, tag: startedAt }) as unknown as RunResult),
    footprints: footprintSetups.map((setup) => ({ setup, intervalMs: 60_000, hosts: [] })),
  };
}

describe('mergeResults', () => {
  it('takes each cell from the last file that has it and keeps the others', () => {
    const older = results('t1', [
      { setup: 'redis-ha', fault: 'redis-kill', run: 1 }, { setup: 'redis-ha', fault: 'redis-kill', run: 2 },
      { setup: 'keepalived-classic', fault: 'redis-kill', run: 1 },
    ], ['redis-ha', 'keepalived-classic']);
    const newer = results('t2', [{ setup: 'redis-ha', fault: 'redis-kill', run: 1 }], ['redis-ha']);
    const merged = mergeResults([older, newer], new Date('2026-01-01T00:00:00Z'));
    const tags = merged.runs.map((r) => `${r.setup}/${r.run}/${(r as unknown as { tag: string }).tag}`).sort();
    expect(tags).toEqual(['keepalived-classic/1/t1', 'redis-ha/1/t2']);
    expect(merged.footprints.map((f) => f.setup).sort()).toEqual(['keepalived-classic', 'redis-ha']);
    expect(merged.merged).toMatch(/merged from 2 result files/);
    expect(merged.durationMs).toBe(2000);
  });

  it('combines results from before and after the step-down and VIP-claim figures: old cells stay without them', () => {
    const base = results('t1', []);
    const figures = (extra: Partial<RunFigures>): RunFigures => ({
      startMs: 1, detectionMs: 1, recovered: true, windowMs: 1, faultToFirstOkMs: 1, longestGapMs: 1, unavailableMs: 1,
      repairUnavailableMs: null, attempted: 1, acknowledged: 1, failed: 0, unknown: 0, unknownApplied: 0, lost: 0,
      lostAfterRecovery: 0, unexpected: 0, failedApplied: 0, dualMasterMs: 0, dualVipMs: 0, noVipMs: 0,
      repairDualMasterMs: null, repairDualVipMs: null, healthyAtEnd: true, settleMs: 1, observedMs: 1, ...extra,
    });
    const runOf = (fault: RunResult['fault'], extra: Partial<RunFigures>): RunResult => ({
      setup: 'redis-ha', fault, run: 1, status: 'ok', startedAt: 't', durationMs: 1, figures: figures(extra), notes: [],
    });
    // An old file, as JSON: figures without the new fields.
    const old: BenchResults = JSON.parse(JSON.stringify({ ...base, runs: [runOf('redis-kill', {})] })) as BenchResults;
    const stall = runOf('daemon-stall', {
      stepDownMs: 11, oldMasterOutMs: 45, afterHealDualMasterMs: 0, afterHealDualVipMs: 40,
      vipClaimNode: 'b', vipClaimFrom: 'redis-promoted', vipClaimMs: 35, vipClaimRecordMs: 12,
    });
    const fresh: BenchResults = { ...results('t2', []), runs: [stall] };
    const merged = mergeResults([old, fresh], new Date('2026-01-01T00:00:00Z'));
    expect(merged.runs.map((r) => r.fault)).toEqual(['redis-kill', 'daemon-stall']);
    expect(merged.runs[1]?.figures).toEqual(stall.figures);
    expect(merged.runs[0]?.figures?.stepDownMs).toBeUndefined();
    const table = takeoverTable(merged.runs) ?? '';
    expect(table.split('\n').slice(2)).toEqual(['| redis-ha | daemon-stall | 1 | 35 ms | 12 ms | 11 ms | 45 ms | 0 ms | 40 ms |']);
    expect(resultsTable(merged.runs).split('\n')).toHaveLength(4);
  });

  it('refuses to merge nothing', () => {
    expect(() => mergeResults([])).toThrow(/nothing to merge/);
  });
});
