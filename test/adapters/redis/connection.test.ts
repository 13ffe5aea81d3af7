/**
 * `Connection` against a scripted RESP server on 127.0.0.1 that closes the connection
 * in the middle of the connect handshake (after `CLIENT SETNAME` came, before it is
 * answered). ioredis 5.11.1 then leaves its client `ready` on a dead socket
 * (redis/ioredis#2099): these tests show that our connection never keeps such a
 * client, so a health or control connection cannot stick on "Stream isn't writeable".
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { clientOptions, Connection, REDIS_UNREACHABLE, usable, type ConnectionOptions } from '../../../src/adapters/redis/connection.js';
import { RedisControlError } from '../../../src/errors.js';

interface Scripted {
  readonly port: number;
  /** Connections accepted so far. */
  readonly accepted: number;
  /** Connections (counted from 1) that are closed as soon as `CLIENT SETNAME` arrives. */
  readonly cutDuringHandshake: Set<number>;
  /** Destroys every open connection, as a server restart or a reset does. */
  dropAll(): void;
  close(): Promise<void>;
}

const servers: Scripted[] = [];
const connections: Connection[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  await Promise.all(connections.splice(0).map((c) => c.close()));
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** The commands of a chunk of RESP arrays (`*2\r\n$4\r\nPING\r\n...`), lower-cased names first. */
function commands(chunk: string): string[][] {
  const lines = chunk.split('\r\n');
  const parsed: string[][] = [];
  let i = 0;
  while (i < lines.length && lines[i]?.startsWith('*')) {
    const count = Number(lines[i]?.slice(1));
    const args: string[] = [];
    for (let n = 0; n < count; n++) args.push(lines[i + 2 + 2 * n] ?? '');
    parsed.push(args.map((a, k) => (k === 0 ? a.toLowerCase() : a)));
    i += 1 + 2 * count;
  }
  return parsed;
}

/** A RESP server that answers CLIENT with +OK and PING with +PONG, and cuts the connections it is told to. */
async function scriptedServer(cutDuringHandshake: number[]): Promise<Scripted> {
  const sockets = new Set<Socket>();
  const state = { accepted: 0 };
  const server: Server = createServer((socket) => {
    const number = ++state.accepted;
    sockets.add(socket);
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.on('data', (data: Buffer) => {
      for (const [name, sub] of commands(data.toString('latin1'))) {
        if (name === 'client' && sub?.toLowerCase() === 'setname' && handle.cutDuringHandshake.has(number)) {
          socket.destroy();
          return;
        }
        if (name === 'ping') socket.write('+PONG\r\n');
        else if (name === 'client' || name === 'quit') socket.write('+OK\r\n');
        else socket.write(`-ERR unknown command '${name ?? ''}'\r\n`);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('no port');
  const handle: Scripted = {
    port: address.port,
    get accepted() {
      return state.accepted;
    },
    cutDuringHandshake: new Set(cutDuringHandshake),
    dropAll: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  servers.push(handle);
  return handle;
}

function options(port: number): ConnectionOptions {
  const target = { host: '127.0.0.1', port };
  return {
    endpoint: { ...target, password: null, username: null, tls: false, tlsInsecure: false },
    target,
    name: 'redis-ha',
    timeoutMs: 1_000,
  };
}

describe('a connection closed during its connect handshake', () => {
  it('leaves an ioredis client that our connection never reuses, whatever its status says', async () => {
    const server = await scriptedServer([1]);
    const client = new Redis(clientOptions(options(server.port)));
    clients.push(client);
    client.on('error', () => undefined);
    await expect(client.connect()).rejects.toThrow('Connection is closed.');
    // The handshake's completion runs after the close (a microtask later).
    await new Promise((resolve) => setTimeout(resolve, 20));
    console.log(`ioredis client after a handshake cut short: status ${client.status}, socket destroyed ${String(client.stream.destroyed)}`);
    expect(usable(client)).toBe(false);
    // Whatever ioredis calls it, nothing goes through it.
    await expect(client.ping()).rejects.toThrow();
  });

  it('fails that run at once and connects afresh on the next', async () => {
    const server = await scriptedServer([1]);
    const connection = new Connection(options(server.port));
    connections.push(connection);

    const started = Date.now();
    const failed = connection.run(1_000, (c) => c.ping());
    await expect(failed).rejects.toThrow(RedisControlError);
    await failed.catch((err: unknown) => {
      expect((err as RedisControlError).code).toBe(REDIS_UNREACHABLE);
      expect((err as RedisControlError).message).toBe('connection closed');
    });
    expect(Date.now() - started).toBeLessThan(900);
    expect(connection.lost).toBe(true);

    expect(await connection.run(1_000, (c) => c.ping())).toBe('PONG');
    expect(await connection.run(1_000, (c) => c.ping())).toBe('PONG');
    expect(server.accepted).toBe(2);
    expect(connection.lost).toBe(false);
  });

  it('recovers the same way when a long-lived connection is lost and its reconnects are cut', async () => {
    const server = await scriptedServer([2, 3]);
    const connection = new Connection(options(server.port));
    connections.push(connection);
    expect(await connection.run(1_000, (c) => c.ping())).toBe('PONG');

    // The established connection drops; the next two handshakes are cut short.
    server.dropAll();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(connection.lost).toBe(true);
    await expect(connection.run(1_000, (c) => c.ping())).rejects.toThrow('connection closed');
    await expect(connection.run(1_000, (c) => c.ping())).rejects.toThrow('connection closed');
    expect(await connection.run(1_000, (c) => c.ping())).toBe('PONG');
    expect(server.accepted).toBe(4);
  });
});
