/**
 * What a connection opened right after a SIGKILLed Redis closed its clients meets:
 * refused, or accepted and then reset (the dying server's listener still queued the SYN).
 * The reason a failed re-check after a lost health connection is repeated within
 * `DOWN_RECHECK_MS` (`LOST_RECHECK_FOR_MS` in `src/core/timing.ts`) instead of counting as
 * one failure among `fall`. Not part of the product; loopback only; run after
 * `npm run build:tools`:
 *
 *   node dist-tools/tools/bench/reset-after-kill.js [runs, default 60] [port, default 6391]
 *
 * Each run starts its own `redis-server` (no persistence), holds six idle connections,
 * SIGKILLs the server, reconnects the moment the first connection closes, and records
 * the outcome. Prints the counts as JSON.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

const HOST = '127.0.0.1';
const START_TRIES = 200;
const OUTCOME_BOUND_MS = 2_000;

function errorCode(err: unknown): string {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : 'error';
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, HOST);
    socket.once('connect', () => { socket.destroy(); resolve(true); });
    socket.once('error', () => resolve(false));
  });
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  for (let i = 0; i < START_TRIES; i++) {
    if (await canConnect(port)) return child;
    await sleep(10);
  }
  child.kill('SIGKILL');
  throw new Error(`redis-server on port ${port} did not start`);
}

/** Kills the server and reports what a reconnect right after the first close met. */
function killAndReconnect(child: ChildProcess, port: number): Promise<string> {
  return new Promise((resolve) => {
    const bound = setTimeout(() => resolve(`no outcome within ${OUTCOME_BOUND_MS} ms`), OUTCOME_BOUND_MS);
    const done = (outcome: string): void => { clearTimeout(bound); resolve(outcome); };
    const first = connect(port, HOST);
    first.on('error', () => undefined);
    first.once('connect', () => {
      first.once('close', () => {
        const again = connect(port, HOST);
        const settle = (outcome: string): void => { again.destroy(); done(outcome); };
        again.once('error', (err) => settle(errorCode(err)));
        again.once('connect', () => {
          again.once('data', () => settle('answered'));
          again.once('close', () => settle('accepted, then closed'));
          again.write('PING\r\n');
        });
      });
      child.kill('SIGKILL');
    });
  });
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 60);
  const port = Number(process.argv[3] ?? 6391);
  const counts: Record<string, number> = {};
  for (let i = 0; i < runs; i++) {
    const child = await startRedis(port);
    const idle: Socket[] = Array.from({ length: 5 }, () => connect(port, HOST).on('error', () => undefined));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    const outcome = await killAndReconnect(child, port);
    counts[outcome] = (counts[outcome] ?? 0) + 1;
    for (const socket of idle) socket.destroy();
    await exited;
  }
  process.stdout.write(`${JSON.stringify(counts)}\n`);
}

await main();
