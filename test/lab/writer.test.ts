/**
 * The lab writer's client against a connection that dies during its handshake
 * (redis/ioredis#2099; see `tools/lab/redis-client.ts`), on 127.0.0.1 with a scripted
 * server (`test/helpers/fake-redis.ts`), no root:
 * - the installed ioredis, with the writer's options, is left `ready` on a dead socket
 *   and never reconnects: every command fails at once with "Stream isn't writeable"
 *   (this test fails, on purpose, once an ioredis without the bug is installed);
 * - `isStuckReady` tells that state from a healthy client and from one reconnecting;
 * - the built writer (`npm run build:tools`) replaces such a client and writes again.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { isStuckReady, RECONNECT_DELAY_MS, writerClientOptions } from '../../tools/lab/redis-client.js';
import { writerEntry } from '../../tools/lab/pair.js';
import type { WriterProgress, WriterSummary } from '../../tools/lab/analysis.js';
import { startFakeRedis, type FakeRedis } from '../helpers/fake-redis.js';

/** Many reconnect delays: long enough for any reconnect ioredis had scheduled to land. */
const SETTLE_MS = RECONNECT_DELAY_MS * 25;
const WAIT_BOUND_MS = 5_000;
const PASSWORD = 'lab-password';

async function until(what: string, predicate: () => boolean, boundMs = WAIT_BOUND_MS): Promise<void> {
  const deadline = Date.now() + boundMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${boundMs} ms waiting for: ${what}`);
    await sleep(10);
  }
}

let server: FakeRedis | null = null;
const clients: Redis[] = [];

function writerClient(port: number): Redis {
  const client = new Redis(writerClientOptions({ host: '127.0.0.1', port, password: PASSWORD }));
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

afterEach(async () => {
  for (const client of clients.splice(0)) {
    client.disconnect();
    client.stream?.destroy();
  }
  await server?.close();
  server = null;
});

describe('ioredis and a connection closed during its handshake', () => {
  it('leaves the writer client ready on a dead socket, never reconnecting (ioredis#2099)', async () => {
    server = await startFakeRedis({ dropDuringHandshake: (index) => index === 1 });
    const client = writerClient(server.port);
    await until('the first connection', () => server!.connections() >= 1);
    await sleep(SETTLE_MS);
    const stuck = server.connections() === 1 && client.status === 'ready';
    expect(stuck, 'the installed ioredis reconnected: #2099 is fixed there, so the writer no longer needs isStuckReady').toBe(true);
    expect(client.stream.destroyed).toBe(true);
    await expect(client.sadd('ha:set', '1')).rejects.toThrow(/^Stream isn't writeable/);
    expect(isStuckReady(client)).toBe(true);
  });

  it('isStuckReady: false for a healthy client and for one that is reconnecting', async () => {
    server = await startFakeRedis();
    const healthy = writerClient(server.port);
    await until('the healthy client ready', () => healthy.status === 'ready');
    expect(await healthy.sadd('ha:set', '1')).toBe(1);
    expect(isStuckReady(healthy)).toBe(false);

    server.resetAll();
    await until('the client noticing the reset', () => healthy.status !== 'ready');
    expect(isStuckReady(healthy)).toBe(false);
    await until('the client back', () => healthy.status === 'ready');
    expect(isStuckReady(healthy)).toBe(false);
  });
});

describe('the lab writer', () => {
  it('replaces a client left ready on a dead socket and writes again', async () => {
    const entry = writerEntry();
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build:tools`);
    // Connection 1 serves; the reset then ends it, and the reconnect (2) dies during its handshake.
    server = await startFakeRedis({ dropDuringHandshake: (index) => index === 2 });
    const dir = mkdtempSync(join(tmpdir(), 'redis-ha-writer-'));
    try {
      const child = spawn(
        process.execPath,
        [entry, '--host', '127.0.0.1', '--port', String(server.port), '--password-env', 'WRITER_TEST_PASSWORD',
          '--rate', '200', '--duration-ms', '3000', '--out', join(dir, 'ops.jsonl')],
        { env: { ...process.env, WRITER_TEST_PASSWORD: PASSWORD }, stdio: ['ignore', 'pipe', 'pipe'] },
      );
      let progress: WriterProgress | null = null;
      let summary: WriterSummary | null = null;
      let stderr = '';
      let buffered = '';
      child.stdout.on('data', (chunk: Buffer) => {
        buffered += chunk.toString();
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines) {
          const record = JSON.parse(line) as { type: string };
          if (record.type === 'progress') progress = record as WriterProgress;
          if (record.type === 'summary') summary = record as WriterSummary;
        }
      });
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

      await until('acknowledged writes before the reset', () => (progress?.ok ?? 0) >= 20);
      server.resetAll();
      await until('the reconnect that dies during its handshake', () => server!.connections() >= 2);
      const okAtReset = server.commands('SADD');
      expect(await exited, stderr).toBe(0);
      const final = summary as WriterSummary | null;
      expect(final, 'the writer printed no summary').not.toBeNull();
      // Without the replacement every op after the reset fails at once and nothing reaches the server.
      expect(server.connections(), 'the writer never opened another connection').toBeGreaterThanOrEqual(3);
      expect(server.commands('SADD') - okAtReset, 'no write reached the server after the stuck connection').toBeGreaterThan(50);
      expect(final!.ok).toBeLessThanOrEqual(server.commands('SADD'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
