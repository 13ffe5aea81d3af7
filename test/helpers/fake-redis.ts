/**
 * A scripted stand-in for a Redis server on 127.0.0.1, for client tests that need a
 * connection to die at an exact moment (ioredis's model: `test/helpers/mock_server.ts`).
 * It reads RESP command arrays and answers `+OK` to every command except SADD (`:1`);
 * a connection chosen by `dropDuringHandshake` is destroyed as soon as its first bytes
 * (the client's handshake: AUTH, CLIENT SETINFO) arrive, before any reply, the way a
 * failover's reset can end a connection that was just opened. Nothing else of Redis.
 */
import { createServer, type Server, type Socket } from 'node:net';

/** What the test can see and do. */
export interface FakeRedis {
  readonly port: number;
  /** Connections accepted so far (1-based indexes are given to `dropDuringHandshake`). */
  connections(): number;
  /** Commands answered so far, by upper-case name. */
  commands(name: string): number;
  /** Destroys every open connection (as a server restart or a failover's reset does). */
  resetAll(): void;
  close(): Promise<void>;
}

/** Options of `startFakeRedis`. */
export interface FakeRedisOptions {
  /** Whether the `index`-th accepted connection (1-based) is destroyed on its first bytes. */
  readonly dropDuringHandshake?: (index: number) => boolean;
}

/** Parses complete RESP arrays of bulk strings from `buffer`; returns them and the unread rest. */
export function parseCommands(buffer: Buffer): { commands: string[][]; rest: Buffer } {
  const commands: string[][] = [];
  let offset = 0;
  const line = (from: number): { text: string; next: number } | null => {
    const end = buffer.indexOf('\r\n', from);
    return end < 0 ? null : { text: buffer.toString('latin1', from, end), next: end + 2 };
  };
  for (;;) {
    const header = line(offset);
    if (header === null || !header.text.startsWith('*')) break;
    const count = Number(header.text.slice(1));
    const args: string[] = [];
    let at = header.next;
    let complete = true;
    for (let i = 0; i < count; i++) {
      const size = line(at);
      if (size === null) {
        complete = false;
        break;
      }
      const length = Number(size.text.slice(1));
      if (buffer.length < size.next + length + 2) {
        complete = false;
        break;
      }
      args.push(buffer.toString('utf8', size.next, size.next + length));
      at = size.next + length + 2;
    }
    if (!complete) break;
    commands.push(args);
    offset = at;
  }
  return { commands, rest: buffer.subarray(offset) };
}

/** Starts the fake server on a free loopback port. */
export async function startFakeRedis(options: FakeRedisOptions = {}): Promise<FakeRedis> {
  const sockets = new Set<Socket>();
  const answered = new Map<string, number>();
  let accepted = 0;
  const server: Server = createServer((socket) => {
    const index = ++accepted;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    const drop = options.dropDuringHandshake?.(index) ?? false;
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      if (drop) {
        socket.destroy();
        return;
      }
      const { commands, rest } = parseCommands(Buffer.concat([pending, chunk]));
      pending = rest;
      for (const [name = ''] of commands) {
        const upper = name.toUpperCase();
        answered.set(upper, (answered.get(upper) ?? 0) + 1);
        socket.write(upper === 'SADD' ? ':1\r\n' : '+OK\r\n');
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('fake redis: no TCP address');
  return {
    port: address.port,
    connections: () => accepted,
    commands: (name) => answered.get(name.toUpperCase()) ?? 0,
    resetAll: () => {
      for (const socket of sockets) socket.destroy();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
