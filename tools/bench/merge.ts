/**
 * `node dist-tools/tools/bench/merge.js OUT_DIR results.json...`: combines benchmark results taken in
 * several sessions (e.g. a setup re-measured after a change, or setups run on separate
 * labs at once) into one report. For each setup × fault cell the runs come from the LAST
 * file that has that cell; footprints likewise per setup. Writes the usual JSON, Markdown
 * and SVG under OUT_DIR/<timestamp>/ and OUT_DIR/latest.*, naming its sources.
 */
import { readFileSync } from 'node:fs';
import { writeResults } from './report.js';
import type { BenchResults, RunResult } from './run.js';

/** Merges `inputs` (later ones win per cell); pure. */
export function mergeResults(inputs: readonly BenchResults[], now: Date = new Date()): BenchResults {
  if (inputs.length === 0) throw new Error('nothing to merge');
  const cells = new Map<string, RunResult[]>();
  const footprints = new Map<string, BenchResults['footprints'][number]>();
  const setups = new Map<string, BenchResults['setups'][number]>();
  for (const input of inputs) {
    const fresh = new Map<string, RunResult[]>();
    for (const run of input.runs) {
      const key = `${run.setup}\u0000${run.fault}`;
      fresh.set(key, [...(fresh.get(key) ?? []), run]);
    }
    for (const [key, runs] of fresh) cells.set(key, runs);
    for (const f of input.footprints) if (!f.error || !footprints.has(f.setup)) footprints.set(f.setup, f);
    for (const s of input.setups) if (s.available || !setups.has(s.name)) setups.set(s.name, s);
  }
  const first = inputs[0]!;
  const durationMs = inputs.reduce((sum, r) => sum + r.durationMs, 0);
  const runs = [...cells.values()].flat();
  return {
    startedAt: now.toISOString(),
    finishedAt: now.toISOString(),
    durationMs,
    machine: first.machine,
    options: {
      setups: [...setups.keys()],
      faults: [...new Set(runs.map((r) => r.fault))],
      runs: Math.max(...inputs.map((r) => r.options.runs)),
      footprint: footprints.size > 0,
    },
    setups: [...setups.values()],
    runs,
    footprints: [...footprints.values()],
    merged: `merged from ${inputs.length} result files (started ${inputs.map((r) => r.startedAt).join(', ')}); ` +
      'each setup × fault from the latest file that measured it',
  };
}

function main(argv: readonly string[]): number {
  const [out, ...files] = argv;
  if (!out || files.length === 0) {
    process.stderr.write('usage: node dist-tools/tools/bench/merge.js OUT_DIR results.json [results.json...]\n');
    return 2;
  }
  const inputs = files.map((f) => JSON.parse(readFileSync(f, 'utf8')) as BenchResults);
  const dir = writeResults(mergeResults(inputs), out);
  process.stdout.write(`merged ${files.length} file(s) into ${dir} and ${out}/latest.*\n`);
  return 0;
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  process.exitCode = main(process.argv.slice(2));
}
