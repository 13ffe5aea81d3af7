/**
 * The lab's client: a Jepsen-style set test writer, run as its own process inside the
 * client namespace (`ip netns exec <tag>-c node dist-tools/tools/lab/writer.js --host VIP ...`).
 *
 * It SADDs unique increasing integers to one set at a steady rate and records every op
 * as `ok` (acknowledged), `failed` (definitely not applied: a Redis error reply, or the
 * connection was not writable so nothing was sent) or `unknown` (sent, but timed out or
 * the connection dropped before the reply). Times come from the monotonic clock,
 * relative to start; the meta line carries the wall-clock start.
 *
 * The client is deliberately unforgiving so that it measures the failover rather than
 * hiding it: no offline queue, no retries, no resends, 250 ms command and connect
 * timeouts, quick reconnects (`redis-client.ts`). A connection whose command timed out
 * is destroyed (its socket too: a polite close can hang on a dead peer) and replaced at
 * once; so is a client that gave up reconnecting, or that ioredis left `ready` on a
 * dead socket after a connection closed during its handshake (ioredis#2099).
 *
 * Output: the meta line, then a progress JSON line on stdout every 250 ms; on SIGTERM/SIGINT or after
 * `--duration-ms`, the op log as JSON lines to `--out`, a summary line on stdout, exit 0.
 *
 * A pool (`--connections N`, N > 1) is N independent clients, one writer loop each,
 * sharing the rate, as an application's connection pool does; every second connection
 * sends `--pipeline K` SADDs per pipeline. Each op then records its connection (`conn`),
 * so the analysis can tell when each client wrote again after a fault.
 *
 * Usage: writer.js --host H [--port 6379] [--password-env VAR] [--rate 500]
 *                  [--concurrency 1] [--connections 1] [--pipeline 1] [--key ha:set]
 *                  [--duration-ms N] [--timeout-ms 250] --out FILE
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { Redis, ReplyError } from 'ioredis';
import type { OpOutcome, OpRecord, WriterCounts, WriterMeta, WriterProgress, WriterSummary } from './analysis.js';
import { COMMAND_TIMEOUT_MS, isStuckReady, MIN_COMMAND_TIMEOUT_MS, writerClientOptions } from './redis-client.js';
import { errorMessage } from '../../src/errors.js';

/** Default target rate, ops per second. */
const DEFAULT_RATE_PER_SEC = 500;
/** Default set key. */
const DEFAULT_SET_KEY = 'ha:set';
/** Progress line period. */
const PROGRESS_INTERVAL_MS = 250;
/** A worker that fell behind by more than this skips slots instead of bursting. */
const MAX_SCHEDULE_LAG_MS = 50;
/** Hard bounds on one run, whatever the arguments say. */
const MAX_RUN_MS = 60 * 60 * 1000;
const MAX_OPS = 5_000_000;
/** Bound on waiting for in-flight ops at stop. */
const DRAIN_BOUND_MS = COMMAND_TIMEOUT_MS * 4;
/** Longest error text kept per op. */
const ERROR_TEXT_MAX = 80;
const MAX_CONCURRENCY = 16;
/** Most connections (`--connections`) and commands per pipeline (`--pipeline`). */
const MAX_CONNECTIONS = 64;
const MAX_PIPELINE = 32;
/** Bound on waiting for the first connection before the clock starts. */
const INITIAL_CONNECT_BOUND_MS = 5_000;

interface WriterArgs {
  readonly host: string;
  readonly port: number;
  readonly password: string | null;
  readonly ratePerSec: number;
  readonly concurrency: number;
  /** Independent connections (a pool), one writer loop each; 1: one client shared by `concurrency` loops. */
  readonly connections: number;
  /** Commands per pipeline on every second connection of a pool (1: no pipelining). */
  readonly pipeline: number;
  readonly key: string;
  readonly durationMs: number;
  readonly out: string;
  /** Command and connect timeout (`--timeout-ms`, default `COMMAND_TIMEOUT_MS`). */
  readonly timeoutMs: number;
}

function fail(message: string): never {
  process.stderr.write(`writer: ${message}\n`);
  process.exit(2);
}

function positiveNumber(text: string | undefined, name: string, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isFinite(value) || value <= 0) fail(`--${name} must be a positive number, got ${text}`);
  return value;
}

function parseWriterArgs(argv: readonly string[]): WriterArgs {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      host: { type: 'string' },
      port: { type: 'string' },
      'password-env': { type: 'string' },
      rate: { type: 'string' },
      concurrency: { type: 'string' },
      connections: { type: 'string' },
      pipeline: { type: 'string' },
      key: { type: 'string' },
      'duration-ms': { type: 'string' },
      out: { type: 'string' },
      'timeout-ms': { type: 'string' },
    },
    strict: true,
  });
  if (!values.host) fail('--host is required');
  if (!values.out) fail('--out is required');
  const passwordEnv = values['password-env'];
  let password: string | null = null;
  if (passwordEnv !== undefined) {
    password = process.env[passwordEnv] ?? fail(`environment variable ${passwordEnv} is not set`);
  }
  return {
    host: values.host,
    port: positiveNumber(values.port, 'port', 6379),
    password,
    ratePerSec: positiveNumber(values.rate, 'rate', DEFAULT_RATE_PER_SEC),
    concurrency: Math.min(MAX_CONCURRENCY, Math.floor(positiveNumber(values.concurrency, 'concurrency', 1))),
    connections: Math.min(MAX_CONNECTIONS, Math.floor(positiveNumber(values.connections, 'connections', 1))),
    pipeline: Math.min(MAX_PIPELINE, Math.floor(positiveNumber(values.pipeline, 'pipeline', 1))),
    key: values.key ?? DEFAULT_SET_KEY,
    durationMs: Math.min(MAX_RUN_MS, positiveNumber(values['duration-ms'], 'duration-ms', MAX_RUN_MS)),
    out: values.out,
    timeoutMs: Math.max(MIN_COMMAND_TIMEOUT_MS, Math.floor(positiveNumber(values['timeout-ms'], 'timeout-ms', COMMAND_TIMEOUT_MS))),
  };
}

/** Classifies an ioredis rejection. */
function classify(error: unknown): { outcome: OpOutcome; timedOut: boolean; text: string } {
  const text = errorMessage(error).slice(0, ERROR_TEXT_MAX);
  // A Redis error reply (READONLY, NOAUTH, LOADING, ...): the server refused the write.
  if (error instanceof ReplyError) return { outcome: 'failed', timedOut: false, text };
  // With the offline queue off, a command on a connection that is not ready is
  // rejected before anything is written to the socket.
  if (text.startsWith("Stream isn't writeable")) return { outcome: 'failed', timedOut: false, text };
  if (text === 'Command timed out') return { outcome: 'unknown', timedOut: true, text };
  // Connection closed / max retries flushed the sent queue: the server may have applied it.
  return { outcome: 'unknown', timedOut: false, text };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function noop(): void {}

/** A client as unforgiving as described in the header. */
function makeClient(args: WriterArgs): Redis {
  const client = new Redis(writerClientOptions(args, args.timeoutMs));
  client.on('error', noop);
  return client;
}

/** Drops every listener and the socket itself. */
function destroyClient(client: Redis): void {
  client.removeAllListeners();
  client.on('error', noop);
  client.disconnect(false);
  // `disconnect` only half-closes; a dead peer would keep the socket (and its
  // pending commands) around, so cut it.
  (client.stream as typeof client.stream | undefined)?.destroy();
}

/** Resolves when the client is ready or after `boundMs`. */
function waitReady(client: Redis, boundMs: number): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, boundMs);
    function done(): void {
      clearTimeout(timer);
      client.off('ready', done);
      resolve();
    }
    client.on('ready', done);
  });
}

/** Runs the writer until stopped; resolves after the log and summary are written. */
async function main(): Promise<void> {
  const args = parseWriterArgs(process.argv.slice(2));
  let stopRequested: () => void = noop;
  const stopSignal = new Promise<void>((resolve) => {
    stopRequested = resolve;
  });
  process.once('SIGTERM', () => stopRequested());
  process.once('SIGINT', () => stopRequested());
  // The pool: one client per connection (`--connections`), each replaced on its own.
  const clients: Redis[] = Array.from({ length: args.connections }, () => makeClient(args));
  // Start the clock once connected (bounded), so a healthy run has no failed ops.
  await Promise.race([Promise.all(clients.map((c) => waitReady(c, INITIAL_CONNECT_BOUND_MS))), stopSignal]);
  const originMs = performance.now();
  const startWallMs = performance.timeOrigin + originMs;
  const now = (): number => performance.now() - originMs;
  const ops: OpRecord[] = [];
  let ok = 0;
  let failed = 0;
  let unknown = 0;
  let lastOkMs: number | null = null;
  let nextValue = 1;
  let nextSlotMs = 0;
  let stopping = false;
  const intervalMs = 1000 / args.ratePerSec;
  const pooled = args.connections > 1;

  const replaceClient = (conn: number, stale: Redis): void => {
    if (clients[conn] !== stale) return;
    clients[conn] = makeClient(args);
    destroyClient(stale);
  };

  const counts = (): WriterCounts => ({ attempted: ops.length, ok, failed, unknown, lastOkMs });

  /** Claims `n` consecutive slots of the shared schedule; returns when the first is due. */
  const claimSlots = (n: number): number => {
    const slot = Math.max(nextSlotMs, now() - MAX_SCHEDULE_LAG_MS);
    nextSlotMs = slot + intervalMs * n;
    return slot;
  };

  const inFlight = new Map<number, number>();
  const record = (conn: number, value: number, startMs: number, error: unknown): { timedOut: boolean } => {
    const endMs = now();
    inFlight.delete(value);
    const connField = pooled ? { conn } : {};
    if (error === null) {
      ok++;
      lastOkMs = endMs;
      ops.push({ type: 'op', value, startMs, endMs, outcome: 'ok', ...connField });
      return { timedOut: false };
    }
    const { outcome, timedOut, text } = classify(error);
    if (outcome === 'failed') failed++;
    else unknown++;
    ops.push({ type: 'op', value, startMs, endMs, outcome, error: text, ...connField });
    return { timedOut };
  };

  /** One slot's work on connection `conn`: one SADD, or a pipeline of `size` SADDs. */
  const doOps = async (conn: number, size: number): Promise<void> => {
    const used = clients[conn]!;
    const startMs = now();
    const values = Array.from({ length: size }, () => nextValue++);
    for (const value of values) inFlight.set(value, startMs);
    let errors: unknown[];
    try {
      if (size === 1) {
        await used.sadd(args.key, String(values[0]));
        errors = [null];
      } else {
        const pipeline = used.pipeline();
        for (const value of values) pipeline.sadd(args.key, String(value));
        const replies = (await pipeline.exec()) ?? [];
        errors = values.map((_, i) => replies[i]?.[0] ?? (replies[i] === undefined ? new Error('no reply in the pipeline') : null));
      }
    } catch (error) {
      errors = values.map(() => error);
    }
    let replace = false;
    values.forEach((value, i) => {
      if (record(conn, value, startMs, errors[i] ?? null).timedOut) replace = true;
    });
    // A timed-out connection is cut and replaced; so is a client that stopped
    // reconnecting (ioredis status `end`) or that ioredis left `ready` on a dead
    // socket (redis-client.ts), or every later write would fail at once.
    if (errors.some((e) => e !== null) && (replace || used.status === 'end' || isStuckReady(used))) replaceClient(conn, used);
  };

  const worker = async (index: number): Promise<void> => {
    const conn = index % args.connections;
    // In a pool, every second connection pipelines (as a batch-writing application would).
    const size = pooled && conn % 2 === 1 ? args.pipeline : 1;
    while (!stopping && ops.length + args.concurrency + size < MAX_OPS) {
      const waitMs = claimSlots(size) - now();
      if (waitMs > 0) await sleep(waitMs);
      if (stopping) break;
      await doOps(conn, size);
    }
  };

  const progress = setInterval(() => {
    const line: WriterProgress = { type: 'progress', tMs: now(), ...counts() };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }, PROGRESS_INTERVAL_MS);

  const durationTimer = setTimeout(() => stopRequested(), args.durationMs);

  const meta: WriterMeta = {
    type: 'meta',
    startWallMs,
    host: args.host,
    port: args.port,
    key: args.key,
    ratePerSec: args.ratePerSec,
  };
  // First stdout line: lets the parent convert its own fault times to writer time live.
  process.stdout.write(`${JSON.stringify(meta)}\n`);

  const workers = Array.from({ length: Math.max(args.concurrency, args.connections) }, (_, i) => worker(i));
  void stopSignal.then(() => {
    stopping = true;
  });
  await Promise.race([stopSignal, Promise.all(workers)]);
  stopping = true;
  clearTimeout(durationTimer);
  await Promise.race([Promise.all(workers), sleep(DRAIN_BOUND_MS)]);
  clearInterval(progress);
  // Ops still unanswered after the drain bound were sent: their fate is unknown.
  for (const [value, startMs] of inFlight) {
    unknown++;
    ops.push({ type: 'op', value, startMs, endMs: now(), outcome: 'unknown', error: 'in flight at stop' });
  }
  inFlight.clear();
  for (const client of clients) destroyClient(client);

  const lines = [JSON.stringify(meta), ...ops.map((op) => JSON.stringify(op))];
  writeFileSync(args.out, `${lines.join('\n')}\n`);
  const summary: WriterSummary = { type: 'summary', durationMs: now(), out: args.out, ...counts() };
  process.stdout.write(`${JSON.stringify(summary)}\n`, () => process.exit(0));
}

main().catch((error: unknown) => {
  process.stderr.write(`writer: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
