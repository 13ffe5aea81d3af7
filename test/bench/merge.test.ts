/** Merging benchmark results: later files win per setup × fault cell and per footprint. */
import { describe, expect, it } from 'vitest';
import { mergeResults } from '../../tools/bench/merge.js';
import type { BenchResults, RunResult } from '../../tools/bench/run.js';

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

  it('refuses to merge nothing', () => {
    expect(() => mergeResults([])).toThrow(/nothing to merge/);
  });
});
