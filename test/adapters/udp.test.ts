/**
 * The advert transport on loopback: two transports exchange adverts, and an
 * attacker's raw socket sends forged, garbage, replayed and own-name datagrams that
 * must be dropped, counted and logged (rate-limited) without reaching the handler.
 */
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvertTransport, REJECT_LOG_INTERVAL_MS, type AdvertTransportOptions } from '../../src/adapters/udp.js';
import type { AdvertKey } from '../../src/config/types.js';
import type { Advert, AdvertBody } from '../../src/core/types.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { FatalError } from '../../src/errors.js';
import { encodeAdvert } from '../../src/proto/advert.js';

const LOOPBACK = '127.0.0.1';
const GROUP = 7;
const KEY: AdvertKey = { id: 1, secret: Buffer.from('shared secret for the pair') };
const WAIT_MS = 2_000;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
});

function body(nodeName: string, overrides: Partial<AdvertBody> = {}): AdvertBody {
  return {
    nodeName,
    state: 'MASTER',
    priority: 100,
    advertIntervalMs: 1000,
    epoch: 3,
    flags: { fault: false, resigning: false, maintenance: false },
    redis: { role: 'master', replId: 'ab'.repeat(20), replId2: '', offset: 4242, secondOffset: -1 },
    ...overrides,
  };
}

async function freePort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

interface Received {
  readonly advert: Advert;
  readonly from: string;
}

async function startTransport(
  nodeName: string,
  port: number,
  peerPort: number,
  extra: Partial<AdvertTransportOptions> = {},
): Promise<{ transport: AdvertTransport; received: Received[] }> {
  const transport = new AdvertTransport({
    bindAddress: LOOPBACK,
    port,
    peerAddress: LOOPBACK,
    peerPort,
    multicastInterface: null,
    groupId: GROUP,
    keys: [KEY],
    nodeName,
    logger: silentLogger(),
    ...extra,
  });
  const received: Received[] = [];
  await transport.start((advert, from) => received.push({ advert, from }));
  cleanups.push(() => transport.stop());
  return { transport, received };
}

/** A raw socket: the attacker, or a relay that captures datagrams. */
async function rawSocket(): Promise<{ socket: dgram.Socket; port: number; captured: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  const captured: Buffer[] = [];
  socket.on('message', (msg) => captured.push(msg));
  await new Promise<void>((resolve) => socket.bind(0, LOOPBACK, resolve));
  cleanups.push(() => new Promise<void>((resolve) => socket.close(() => resolve())));
  return { socket, port: socket.address().port, captured };
}

function sendRaw(socket: dgram.Socket, buf: Buffer, port: number): Promise<void> {
  return new Promise((resolve, reject) => socket.send(buf, port, LOOPBACK, (err) => (err ? reject(err) : resolve())));
}

async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { logger, lines };
}

describe('AdvertTransport on loopback', () => {
  it('two transports exchange adverts', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startTransport('node-a', portA, portB);
    const b = await startTransport('node-b', portB, portA);

    a.transport.send(body('node-a'));
    a.transport.send(body('node-a', { priority: 0, flags: { fault: false, resigning: true, maintenance: false } }));
    b.transport.send(body('node-b', { state: 'BACKUP', redis: { ...body('x').redis, role: 'replica' } }));
    await waitFor(() => b.received.length === 2 && a.received.length === 1, 'adverts');

    expect(b.received[0]).toMatchObject({ from: LOOPBACK, advert: { ...body('node-a'), groupId: GROUP, seq: 1 } });
    expect(b.received[1]?.advert).toMatchObject({ seq: 2, priority: 0, flags: { resigning: true } });
    expect(b.received[0]?.advert.bootEpoch).toBe(a.transport.bootEpoch);
    expect(a.received[0]?.advert).toMatchObject({ nodeName: 'node-b', state: 'BACKUP', redis: { role: 'replica' } });
    await waitFor(() => a.transport.counters.sent === 2, 'send callbacks');
    expect(a.transport.counters).toMatchObject({ sent: 2, received: 1, accepted: 1, sendErrors: 0 });
    expect(b.transport.counters).toMatchObject({ sent: 1, received: 2, accepted: 2 });
  });

  it('drops forged, garbage, replayed and own-name datagrams, counts them, and never calls the handler', async () => {
    const relay = await rawSocket();
    const attacker = await rawSocket();
    const portB = await freePort();
    // A sends to the relay, which captures the bytes and forwards them to B by hand.
    const a = await startTransport('node-a', await freePort(), relay.port);
    const b = await startTransport('node-b', portB, await freePort());

    a.transport.send(body('node-a'));
    await waitFor(() => relay.captured.length === 1, 'capture');
    const genuine = relay.captured[0] as Buffer;
    await sendRaw(relay.socket, genuine, portB);
    await waitFor(() => b.received.length === 1, 'genuine advert');

    const forged = encodeAdvert(
      { groupId: GROUP, bootEpoch: Date.now(), seq: 1, body: body('mallory') },
      { id: KEY.id, secret: Buffer.from('not the key') },
    );
    const unknownKey = encodeAdvert(
      { groupId: GROUP, bootEpoch: Date.now(), seq: 1, body: body('mallory') },
      { id: 99, secret: Buffer.from('not the key') },
    );
    const otherGroup = encodeAdvert({ groupId: GROUP + 1, bootEpoch: 1, seq: 1, body: body('node-c') }, KEY);
    const ownName = encodeAdvert({ groupId: GROUP, bootEpoch: 1, seq: 1, body: body('node-b') }, KEY);
    await sendRaw(attacker.socket, forged, portB);
    await sendRaw(attacker.socket, unknownKey, portB);
    await sendRaw(attacker.socket, Buffer.from('GET / HTTP/1.0\r\n\r\n'), portB);
    await sendRaw(attacker.socket, Buffer.alloc(0), portB);
    await sendRaw(attacker.socket, otherGroup, portB);
    await sendRaw(attacker.socket, ownName, portB);
    await sendRaw(attacker.socket, genuine, portB); // replay
    await waitFor(() => b.transport.counters.received === 8, 'all datagrams');

    expect(b.received).toHaveLength(1);
    const { rejected, ownIgnored, accepted } = b.transport.counters;
    expect(accepted).toBe(1);
    expect(ownIgnored).toBe(1);
    expect(rejected).toMatchObject({
      'bad-mac': 1,
      'unknown-key': 1,
      'bad-magic': 1,
      'too-short': 1,
      'wrong-group': 1,
      replayed: 1,
      'stale-boot': 0,
    });

    // An advert from A's earlier run (smaller boot epoch) is stale once a newer one was accepted.
    const stale = encodeAdvert({ groupId: GROUP, bootEpoch: a.transport.bootEpoch - 1, seq: 99, body: body('node-a') }, KEY);
    await sendRaw(attacker.socket, stale, portB);
    await waitFor(() => b.transport.counters.rejected['stale-boot'] === 1, 'stale boot');
    expect(b.received).toHaveLength(1);
  });

  it('logs at most one warning per reason per interval, with the suppressed count', async () => {
    let now = 1_000_000;
    const { logger, lines } = captureLogger();
    const portB = await freePort();
    const b = await startTransport('node-b', portB, await freePort(), { logger, clock: () => now });
    const attacker = await rawSocket();
    const garbage = Buffer.from('not an advert at all');

    for (let i = 0; i < 5; i++) await sendRaw(attacker.socket, garbage, portB);
    await sendRaw(attacker.socket, Buffer.alloc(1), portB);
    await waitFor(() => b.transport.counters.received === 6, 'first burst');
    now += REJECT_LOG_INTERVAL_MS;
    await sendRaw(attacker.socket, garbage, portB);
    await waitFor(() => b.transport.counters.received === 7, 'second burst');

    const warnings = lines.filter((l) => l['msg'] === 'advert rejected');
    expect(warnings.map((l) => [l['reason'], l['suppressed']])).toEqual([
      ['bad-magic', 0],
      ['too-short', 0],
      ['bad-magic', 4],
    ]);
    expect(warnings[0]).toMatchObject({ level: 40, from: LOOPBACK });
    expect(b.transport.counters.rejected['bad-magic']).toBe(6);
  });

  it('survives a handler that throws', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startTransport('node-a', portA, portB);
    const { logger, lines } = captureLogger();
    const b = new AdvertTransport({
      bindAddress: LOOPBACK,
      port: portB,
      peerAddress: LOOPBACK,
      peerPort: portA,
      multicastInterface: null,
      groupId: GROUP,
      keys: [KEY],
      nodeName: 'node-b',
      logger,
    });
    let calls = 0;
    await b.start(() => {
      calls++;
      throw new Error('handler bug');
    });
    cleanups.push(() => b.stop());
    a.transport.send(body('node-a'));
    a.transport.send(body('node-a'));
    await waitFor(() => calls === 2, 'both adverts');
    expect(lines.filter((l) => l['msg'] === 'advert handler threw')).toHaveLength(2);
  });

  it('never throws from send: not started, or a body that cannot be encoded', async () => {
    const transport = new AdvertTransport({
      bindAddress: LOOPBACK,
      port: await freePort(),
      peerAddress: LOOPBACK,
      multicastInterface: null,
      groupId: GROUP,
      keys: [KEY],
      nodeName: 'node-a',
      logger: silentLogger(),
    });
    expect(() => transport.send(body('node-a'))).not.toThrow();
    await transport.start(() => undefined);
    cleanups.push(() => transport.stop());
    expect(() => transport.send(body('node-a', { priority: 999 }))).not.toThrow();
    expect(transport.counters).toMatchObject({ sent: 0, sendErrors: 2 });
  });

  it('starts a new boot epoch rather than wrap the sequence', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startTransport('node-a', portA, portB, { bootEpoch: 5_000 });
    const b = await startTransport('node-b', portB, portA);
    // Reach the end of the sequence space through the public API would take years; poke the field.
    (a.transport as unknown as { seq: number }).seq = 0xffff_fffe;
    a.transport.send(body('node-a'));
    a.transport.send(body('node-a'));
    await waitFor(() => b.received.length === 2, 'adverts across the wrap');
    expect(b.received.map((r) => [r.advert.seq, r.advert.bootEpoch > 5_000])).toEqual([
      [0xffff_ffff, false],
      [1, true],
    ]);
  });

  it('fails to start with a FatalError when the port is taken', async () => {
    const port = await freePort();
    await startTransport('node-a', port, port);
    const second = new AdvertTransport({
      bindAddress: LOOPBACK,
      port,
      peerAddress: LOOPBACK,
      multicastInterface: null,
      groupId: GROUP,
      keys: [KEY],
      nodeName: 'node-b',
      logger: silentLogger(),
    });
    await expect(second.start(() => undefined)).rejects.toMatchObject({ code: 'ADVERT_BIND_FAILED' });
  });

  it('joins a multicast group on a named interface', async (ctx) => {
    // Any non-loopback IPv4 interface will do; sandboxes without one skip.
    const iface = Object.entries(networkInterfaces()).find(([, addrs]) =>
      addrs?.some((a) => a.family === 'IPv4' && !a.internal),
    )?.[0];
    if (iface === undefined) ctx.skip();
    const { transport } = await startTransport('node-a', await freePort(), 0, {
      bindAddress: '0.0.0.0',
      peerAddress: '239.255.77.1',
      peerPort: undefined,
      multicastInterface: iface ?? null,
    });
    expect(transport.address()?.address).toBe('239.255.77.1');
    transport.send(body('node-a'));
    await waitFor(() => transport.counters.sent === 1, 'multicast send');
  });

  it('refuses impossible options at construction', () => {
    const base: AdvertTransportOptions = {
      bindAddress: LOOPBACK,
      port: 1,
      peerAddress: LOOPBACK,
      multicastInterface: null,
      groupId: GROUP,
      keys: [KEY],
      nodeName: 'node-a',
      logger: silentLogger(),
    };
    expect(() => new AdvertTransport({ ...base, peerAddress: '::1' })).toThrow(FatalError);
    expect(() => new AdvertTransport({ ...base, bindAddress: 'localhost' })).toThrow(FatalError);
    expect(() => new AdvertTransport({ ...base, keys: [] })).toThrow(FatalError);
  });
});
