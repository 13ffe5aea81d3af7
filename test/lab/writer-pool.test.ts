/**
 * The lab writer's pool (`--connections`, `--pipeline`), used to measure how soon an
 * application's pooled clients write again after a failover (issue 12):
 * - `clientRecovery` (pure): which connections a fault interrupted and when each wrote again;
 * - the built writer against a real `redis-server` on 127.0.0.1, killed and restarted on
 *   the same port: every connection is used, pipelined ones included, every op of the
 *   log is in the set or reported, and every connection writes again after the restart.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { clientRecovery, connectionsWritingAfter, parseOpLog, type OpRecord } from '../../tools/lab/analysis.js';
import { writerEntry } from '../../tools/lab/pair.js';
import { startRedisServer, stopAllRedisServers } from '../helpers/redis-server.js';

const op = (conn: number, value: number, startMs: number, endMs: number, outcome: OpRecord['outcome']): OpRecord =>
  ({ type: 'op', value, startMs, endMs, outcome, conn });

describe('clientRecovery', () => {
  it('counts the interrupted connections and when each wrote again after its last failure', () => {
    const ops = [
      op(0, 1, 900, 901, 'ok'), op(1, 2, 905, 906, 'ok'), op(2, 3, 910, 911, 'ok'),
      // The fault at 1000: connection 0 fails twice and is back at 1300, 1 fails once and
      // is back at 1100, 2 is never interrupted, 3 fails and never writes again.
      op(0, 4, 1001, 1002, 'unknown'), op(1, 5, 1003, 1004, 'failed'), op(0, 6, 1150, 1160, 'failed'),
      op(1, 7, 1099, 1100, 'ok'), op(0, 8, 1299, 1300, 'ok'), op(2, 9, 1200, 1201, 'ok'), op(3, 10, 1005, 1255, 'unknown'),
    ];
    expect(clientRecovery(ops, 1000)).toEqual({ connections: 4, interrupted: 3, recovered: 2, backMs: [100, 300] });
  });

  it('an op log without connections is one connection', () => {
    const ops: OpRecord[] = [{ type: 'op', value: 1, startMs: 10, endMs: 20, outcome: 'failed' }, { type: 'op', value: 2, startMs: 30, endMs: 40, outcome: 'ok' }];
    expect(clientRecovery(ops, 5)).toEqual({ connections: 1, interrupted: 1, recovered: 1, backMs: [35] });
  });
});

describe('the lab writer with a pool', () => {
  afterAll(() => stopAllRedisServers());

  it('writes on every connection, pipelined or not, and every connection writes again after Redis restarts', async () => {
    const entry = writerEntry();
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build:tools`);
    const server = await startRedisServer({ password: 'pool-password' });
    const dir = mkdtempSync(join(tmpdir(), 'redis-ha-writer-pool-'));
    try {
      const out = join(dir, 'ops.jsonl');
      const child = spawn(
        process.execPath,
        [entry, '--host', server.host, '--port', String(server.port), '--password-env', 'WRITER_TEST_PASSWORD',
          '--rate', '400', '--connections', '6', '--pipeline', '4', '--duration-ms', '4000', '--out', out],
        { env: { ...process.env, WRITER_TEST_PASSWORD: 'pool-password' }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let stderr = '';
      let meta: { startWallMs: number } | null = null;
      child.stdout.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) if (line.includes('"meta"')) meta = JSON.parse(line) as { startWallMs: number };
      });
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      await sleep(1_500);
      const restartWall = Date.now();
      // `restart()` loses the dataset (no persistence): only what follows is checked against the set.
      await server.restart();
      expect(await exited, stderr).toBe(0);
      expect(meta, 'the writer printed no meta line').not.toBeNull();
      const { ops } = parseOpLog(readFileSync(out, 'utf8'));
      const restartMs = restartWall - meta!.startWallMs;
      expect(new Set(ops.map((o) => o.conn))).toEqual(new Set([0, 1, 2, 3, 4, 5]));
      // Every second connection pipelines: its ops come in groups of four with one start time.
      const starts = ops.filter((o) => o.conn === 1).map((o) => o.startMs);
      expect(new Set(starts).size * 4).toBe(starts.length);
      expect(new Set(ops.map((o) => o.value)).size).toBe(ops.length);
      const recovery = clientRecovery(ops, restartMs);
      expect(recovery.connections).toBe(6);
      // A connection between two of its slots during the restart may not notice it (its
      // reconnect lands first); every one that did came back, and every one writes after it.
      expect(recovery.interrupted).toBeGreaterThan(0);
      expect(recovery.recovered).toBe(recovery.interrupted);
      const lastFailureEnd = Math.max(...ops.filter((o) => o.outcome !== 'ok').map((o) => o.endMs));
      expect(connectionsWritingAfter(ops, lastFailureEnd).size).toBe(6);
      // Acknowledged after the restart (and after the last failure of each connection): in the new set.
      const members = new Set((await server.client().smembers('ha:set')).map(Number));
      const lastFailure = Math.max(...ops.filter((o) => o.outcome !== 'ok').map((o) => o.endMs), restartMs);
      const ackedAfter = ops.filter((o) => o.outcome === 'ok' && o.startMs > lastFailure);
      expect(ackedAfter.length).toBeGreaterThan(100);
      expect(ackedAfter.filter((o) => !members.has(o.value))).toEqual([]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
