/**
 * `npm run bench` / `node dist-tools/tools/bench/main.js`: runs failover setups (redis-ha
 * and the tools people would otherwise use) through the same faults on the same lab and
 * client, and writes the results (JSON, Markdown table, SVG chart) under
 * `bench/results/<timestamp>/` and `bench/results/latest.*`. Root only: the lab builds
 * network namespaces. Ctrl-C tears the current lab down and writes what was measured.
 */
import { release } from 'node:os';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { installSignalCleanup, isRoot, registerCleanup } from '../lab/netns.js';
import { MIN_COMMAND_TIMEOUT_MS } from '../lab/redis-client.js';
import { loadSetups, SETUP_NAMES } from './registry.js';
import { resultsTable, writeResults } from './report.js';
import { runBench, type BenchResults, type WriterPool } from './run.js';
import { FAULTS, type FaultName } from './setup.js';
import { errorMessage } from '../../src/errors.js';

const EXIT_NOT_ROOT = 1;
const EXIT_USAGE = 2;
const EXIT_FAILED = 1;
const DEFAULT_RUNS = 3;
const DEFAULT_LANES = 2;
const MAX_LANES = 4;
const MAX_RUNS = 50;
const DEFAULT_OUT = 'bench/results';
const MAX_CONNECTIONS = 64;
const MAX_PIPELINE = 32;
const DEFAULT_PIPELINE = 4;
/** Longest `--client-timeout-ms` (the shortest is the writer's own floor). */
const MAX_CLIENT_TIMEOUT_MS = 5_000;

const USAGE = `usage: node dist-tools/tools/bench/main.js [options]   (root only)

  --setup S[,S...]    setups to run (default: all): ${SETUP_NAMES.join(', ')}
  --fault F[,F...]    faults to inject (default: all): ${FAULTS.join(', ')}
  --runs N            runs per setup × fault, each on a fresh lab (default ${DEFAULT_RUNS})
  --lanes N           labs at once (default ${DEFAULT_LANES}): sleep-bound setups (keepalived-classic)
                      run on their own lab beside the others, so the full matrix fits in ~35 min
  --out DIR           results directory (default ${DEFAULT_OUT}); writes DIR/<timestamp>/results.{json,md,svg}
                      and DIR/latest.{json,md,svg}
  --connections N     the client writes through a pool of N connections (default 1), every second one
                      pipelining (--pipeline K, default 4 with a pool): how soon all of them write again
  --client-timeout-ms T  the client's command and connect timeout (default 250): the grain at which it
                      notices a silent master (link down); 20..5000
  --footprint         measure each setup's daemons (RSS, CPU) over 60 s of steady state
  --no-footprint      skip it (default: on for the full matrix, off when --setup or --fault is given)
  -h, --help          this text
`;

interface CliArgs {
  readonly setups: readonly string[];
  readonly faults: readonly FaultName[];
  readonly runs: number;
  readonly lanes: number;
  readonly out: string;
  readonly footprint: boolean;
  readonly clients: WriterPool;
}

function usage(message: string): never {
  process.stderr.write(`${message}\n\n${USAGE}`);
  process.exit(EXIT_USAGE);
}

function splitList(text: string | undefined): string[] | null {
  if (text === undefined) return null;
  return text
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** Parses the command line; exits with usage on any error. */
export function parseCli(argv: readonly string[]): CliArgs {
  let values: {
    setup?: string;
    fault?: string;
    runs?: string;
    lanes?: string;
    connections?: string;
    pipeline?: string;
    'client-timeout-ms'?: string;
    out?: string;
    footprint?: boolean;
    'no-footprint'?: boolean;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        setup: { type: 'string' },
        fault: { type: 'string' },
        runs: { type: 'string' },
        lanes: { type: 'string' },
        connections: { type: 'string' },
        pipeline: { type: 'string' },
        'client-timeout-ms': { type: 'string' },
        out: { type: 'string' },
        footprint: { type: 'boolean' },
        'no-footprint': { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    usage(errorMessage(error));
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const setups = splitList(values.setup);
  for (const name of setups ?? []) {
    if (!(SETUP_NAMES as readonly string[]).includes(name)) usage(`unknown setup: ${name}`);
  }
  const faults = splitList(values.fault);
  for (const name of faults ?? []) {
    if (!(FAULTS as readonly string[]).includes(name)) usage(`unknown fault: ${name}`);
  }
  const runs = values.runs === undefined ? DEFAULT_RUNS : Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > MAX_RUNS) usage(`--runs must be an integer 1..${MAX_RUNS}, got ${values.runs}`);
  const lanes = values.lanes === undefined ? DEFAULT_LANES : Number(values.lanes);
  if (!Number.isInteger(lanes) || lanes < 1 || lanes > MAX_LANES) usage(`--lanes must be an integer 1..${MAX_LANES}, got ${values.lanes}`);
  const connections = values.connections === undefined ? 1 : Number(values.connections);
  if (!Number.isInteger(connections) || connections < 1 || connections > MAX_CONNECTIONS) usage(`--connections must be an integer 1..${MAX_CONNECTIONS}, got ${values.connections}`);
  const pipeline = values.pipeline === undefined ? (connections > 1 ? DEFAULT_PIPELINE : 1) : Number(values.pipeline);
  if (!Number.isInteger(pipeline) || pipeline < 1 || pipeline > MAX_PIPELINE) usage(`--pipeline must be an integer 1..${MAX_PIPELINE}, got ${values.pipeline}`);
  const timeoutText = values['client-timeout-ms'];
  const timeoutMs = timeoutText === undefined ? undefined : Number(timeoutText);
  if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < MIN_COMMAND_TIMEOUT_MS || timeoutMs > MAX_CLIENT_TIMEOUT_MS)) {
    usage(`--client-timeout-ms must be an integer ${MIN_COMMAND_TIMEOUT_MS}..${MAX_CLIENT_TIMEOUT_MS}, got ${timeoutText}`);
  }
  if (values.footprint && values['no-footprint']) usage('--footprint and --no-footprint are exclusive');
  if ((setups && setups.length === 0) || (faults && faults.length === 0)) usage('empty --setup or --fault list');
  const fullMatrix = setups === null && faults === null;
  return {
    setups: setups ?? [...SETUP_NAMES],
    faults: (faults as FaultName[] | null) ?? [...FAULTS],
    runs,
    lanes,
    out: values.out ?? DEFAULT_OUT,
    footprint: values.footprint ?? (values['no-footprint'] ? false : fullMatrix),
    clients: { connections, pipeline, ...(timeoutMs === undefined ? {} : { timeoutMs }) },
  };
}

async function main(): Promise<number> {
  const args = parseCli(process.argv.slice(2));
  if (!isRoot()) {
    process.stderr.write(
      'redis-ha bench must run as root: every run builds a lab of network namespaces, a bridge and veth pairs ' +
        '(try: sudo npm run bench)\n',
    );
    return EXIT_NOT_ROOT;
  }
  installSignalCleanup();
  const outDir = resolve(args.out);
  const setups = await loadSetups(args.setups);
  for (const setup of setups) {
    if (!setup.driver) process.stderr.write(`setup ${setup.name} unavailable: ${setup.unavailable ?? ''}\n`);
  }
  let latest: BenchResults | null = null;
  // Registered before any lab, so on Ctrl-C it runs last (cleanups run newest first):
  // the current lab is torn down, then whatever was measured is written.
  const unregister = registerCleanup(async () => {
    if (latest) {
      const dir = writeResults({ ...latest, interrupted: 'signal' }, outDir);
      process.stderr.write(`partial results written to ${dir}\n`);
    }
  });
  const log = (line: string): void => {
    process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  };
  log(
    `bench: ${setups.map((s) => s.name).join(', ')} × ${args.faults.join(', ')}, ${args.runs} run(s) each` +
      (args.footprint ? ', then footprints' : ''),
  );
  const results = await runBench(
    {
      setups,
      faults: args.faults,
      runs: args.runs,
      lanes: args.lanes,
      footprint: args.footprint,
      clients: args.clients,
      log,
      onProgress: (partial) => {
        latest = partial;
      },
    },
    release(),
  );
  unregister();
  const dir = writeResults(results, outDir);
  log(`done in ${(results.durationMs / 1000).toFixed(0)} s; results in ${dir} and ${outDir}/latest.{md,json,svg}`);
  process.stdout.write(`${resultsTable(results.runs)}\n`);
  const failed = results.runs.filter((run) => run.status === 'error').length;
  if (failed) log(`${failed} run(s) failed: see the report`);
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(EXIT_FAILED);
  },
);
