/**
 * The advert transport on loopback: two transports exchange adverts and peer
 * messages, and an attacker's raw socket sends forged, garbage, replayed and
 * own-name datagrams that must be dropped, counted and logged (rate-limited) without
 * reaching a handler.
 */
import { createHmac } from 'node:crypto';
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import { pino, type Logger } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { AdvertTransport, REJECT_LOG_INTERVAL_MS, type AdvertTransportOptions } from '../../src/adapters/udp.js';
import type { AdvertKey } from '../../src/config/types.js';
import type { Advert, AdvertBody } from '../../src/core/types.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { FatalError } from '../../src/errors.js';
import { ADVERT_MAC_BYTES, encodeAdvert } from '../../src/proto/advert.js';
import { encodeMessage, type PeerMessage, type ReceivedMessage } from '../../src/proto/message.js';

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
    flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false },
    maintenanceGen: 0,
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

interface ReceivedMsg {
  readonly message: ReceivedMessage;
  readonly from: string;
}

/** Loopback transport options; `peerPort` defaults to `port` (the transport's own default). */
/**
 * The runs of the two test nodes: each starts having heard the other's (as from its state
 * file), so their packets echo each other's boot time from the first one and are fresh.
 */
const TEST_BOOT: Readonly<Record<string, number>> = {
  'node-a': 1_700_000_000_001, 'node-b': 1_700_000_000_002, 'node-c': 1_700_000_000_003, 'node-d': 1_700_000_000_004,
};
const PARTNER: Readonly<Record<string, string>> = { 'node-a': 'node-b', 'node-b': 'node-a', 'node-c': 'node-d', 'node-d': 'node-c' };

function testRun(nodeName: string): Partial<AdvertTransportOptions> {
  const boot = TEST_BOOT[nodeName];
  const other = PARTNER[nodeName];
  if (boot === undefined || other === undefined) return {};
  return { bootTimeMs: boot, seed: [{ nodeName: other, bootTimeMs: TEST_BOOT[other]!, seq: 0 }] };
}

function loopbackOptions(
  nodeName: string,
  port: number,
  peerPort?: number,
  extra: Partial<AdvertTransportOptions> = {},
): AdvertTransportOptions {
  return {
    ...testRun(nodeName),
    bindAddress: LOOPBACK,
    port,
    peerAddress: LOOPBACK,
    ...(peerPort === undefined ? {} : { peerPort }),
    multicastInterface: null,
    groupId: GROUP,
    keys: [KEY],
    nodeName,
    logger: silentLogger(),
    ...extra,
  };
}

async function startTransport(
  nodeName: string,
  port: number,
  peerPort: number,
  extra: Partial<AdvertTransportOptions> = {},
): Promise<{ transport: AdvertTransport; received: Received[]; messages: ReceivedMsg[] }> {
  const transport = new AdvertTransport(loopbackOptions(nodeName, port, peerPort, extra));
  const received: Received[] = [];
  const messages: ReceivedMsg[] = [];
  await transport.start(
    (advert, from) => received.push({ advert, from }),
    (message, from) => messages.push({ message, from }),
  );
  cleanups.push(() => transport.stop());
  return { transport, received, messages };
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
    a.transport.send(body('node-a', { priority: 0, flags: { fault: false, resigning: true, maintenance: false, switchingOver: false, holdsVip: false } }));
    b.transport.send(body('node-b', { state: 'BACKUP', redis: { ...body('x').redis, role: 'replica' } }));
    await waitFor(() => b.received.length === 2 && a.received.length === 1, 'adverts');

    expect(b.received[0]).toMatchObject({ from: LOOPBACK, advert: { ...body('node-a'), groupId: GROUP, seq: 1 } });
    expect(b.received[1]?.advert).toMatchObject({ seq: 2, priority: 0, flags: { resigning: true } });
    expect(b.received[0]?.advert.bootTimeMs).toBe(a.transport.bootTimeMs);
    expect(a.received[0]?.advert).toMatchObject({ nodeName: 'node-b', state: 'BACKUP', redis: { role: 'replica' } });
    await waitFor(() => a.transport.counters.sent === 2, 'send callbacks');
    expect(a.transport.counters).toMatchObject({ sent: 2, received: 1, accepted: 1, sendErrors: 0 });
    expect(b.transport.counters).toMatchObject({ sent: 1, received: 2, accepted: 2 });
  });

  it('sends each advert intact from reused buffers, however many are in flight at once', async () => {
    // The transport reuses its encode buffers, each only after its send callback: a burst
    // sent within one tick keeps more buffers in flight than the encoder keeps spare, and
    // then a burst after the callbacks reuses them. Every advert must arrive as sent.
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startTransport('node-a', portA, portB);
    const b = await startTransport('node-b', portB, portA);
    const BURST = 20;
    for (let i = 0; i < BURST; i++) a.transport.send(body('node-a', { epoch: i, redis: { ...body('x').redis, offset: 1000 + i } }));
    await waitFor(() => a.transport.counters.sent === BURST, 'send callbacks of the first burst');
    for (let i = BURST; i < 2 * BURST; i++) a.transport.send(body('node-a', { epoch: i, redis: { ...body('x').redis, offset: 1000 + i } }));
    await waitFor(() => b.received.length === 2 * BURST, 'both bursts');
    expect(b.received.map((r) => [r.advert.seq, r.advert.epoch, r.advert.redis.offset])).toEqual(
      Array.from({ length: 2 * BURST }, (_, i) => [i + 1, i, 1000 + i]),
    );
    expect(b.transport.counters.rejected['bad-mac']).toBe(0);
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
      { groupId: GROUP, bootTimeMs: Date.now(), seq: 1, echoBootTimeMs: TEST_BOOT['node-b']!, body: body('mallory') },
      { id: KEY.id, secret: Buffer.from('not the key') },
    );
    const unknownKey = encodeAdvert(
      { groupId: GROUP, bootTimeMs: Date.now(), seq: 1, echoBootTimeMs: TEST_BOOT['node-b']!, body: body('mallory') },
      { id: 99, secret: Buffer.from('not the key') },
    );
    const otherGroup = encodeAdvert({ groupId: GROUP + 1, bootTimeMs: 1, seq: 1, echoBootTimeMs: TEST_BOOT['node-b']!, body: body('node-c') }, KEY);
    const ownName = encodeAdvert({ groupId: GROUP, bootTimeMs: 1, seq: 1, echoBootTimeMs: TEST_BOOT['node-b']!, body: body('node-b') }, KEY);
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

    // An advert from A's earlier run (smaller boot time) is stale once a newer one was accepted.
    const stale = encodeAdvert({ groupId: GROUP, bootTimeMs: a.transport.bootTimeMs - 1, seq: 99, echoBootTimeMs: TEST_BOOT['node-b']!, body: body('node-a') }, KEY);
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
    const b = new AdvertTransport(loopbackOptions('node-b', portB, portA, { logger }));
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

  it('send: counts a send before start; throws for a body that cannot be encoded (the core must hear it)', async () => {
    const transport = new AdvertTransport(loopbackOptions('node-a', await freePort()));
    expect(() => transport.send(body('node-a'))).not.toThrow();
    await transport.start(() => undefined);
    cleanups.push(() => transport.stop());
    expect(() => transport.send(body('node-a', { priority: 999 }))).toThrow(/priority 999/);
    expect(transport.counters).toMatchObject({ sent: 0, sendErrors: 2 });
  });

  it('starts a new boot time rather than wrap the sequence', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startTransport('node-a', portA, portB, { bootTimeMs: 5_000 });
    const b = await startTransport('node-b', portB, portA, { seed: [{ nodeName: 'node-a', bootTimeMs: 5_000, seq: 0 }] });
    // Reach the end of the sequence space through the public API would take years; poke the field.
    (a.transport as unknown as { seq: number }).seq = 0xffff_fffe;
    a.transport.send(body('node-a'));
    a.transport.send(body('node-a'));
    await waitFor(() => b.received.length === 2, 'adverts across the wrap');
    expect(b.received.map((r) => [r.advert.seq, r.advert.bootTimeMs > 5_000])).toEqual([
      [0xffff_ffff, false],
      [1, true],
    ]);
  });

  it('fails to start with a FatalError when the port is taken', async () => {
    const port = await freePort();
    await startTransport('node-a', port, port);
    const second = new AdvertTransport(loopbackOptions('node-b', port));
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

  it('takes a peer in ff::/16 outside ff00::/8 for the unicast address it is, not a group', async (ctx) => {
    // ff::12 is 00ff::12: bound as a group it would fail (EADDRNOTAVAIL); as a peer it just gets datagrams.
    const hasIpv6Loopback = Object.values(networkInterfaces()).some((addrs) => addrs?.some((a) => a.address === '::1'));
    if (!hasIpv6Loopback) ctx.skip('no IPv6 loopback address (::1) here');
    const { transport } = await startTransport('node-a', await freePort(), 0, { bindAddress: '::1', peerAddress: 'ff::12' });
    expect(transport.address()?.address).toBe('::1');
  });

  it('refuses impossible options at construction', () => {
    const base = loopbackOptions('node-a', 1);
    expect(() => new AdvertTransport({ ...base, peerAddress: '::1' })).toThrow(FatalError);
    expect(() => new AdvertTransport({ ...base, bindAddress: 'localhost' })).toThrow(FatalError);
    expect(() => new AdvertTransport({ ...base, keys: [] })).toThrow(FatalError);
  });
});

const REQUEST: PeerMessage = { kind: 'switchover-request', requestId: 'sw-1', timeoutMs: 30_000, force: false, user: 'alice' };
const HANDOVER: PeerMessage = { kind: 'handover', requestId: 'sw-1', epoch: 4, force: false };
const RESULT: PeerMessage = { kind: 'switchover-result', requestId: 'sw-1', ok: true, detail: 'node-b is master' };

/** Re-signs a patched packet with KEY so it authenticates. */
function resign(buf: Buffer): Buffer {
  const macAt = buf.length - ADVERT_MAC_BYTES;
  createHmac('sha256', KEY.secret).update(buf.subarray(0, macAt)).digest().copy(buf, macAt);
  return buf;
}

describe('AdvertTransport peer messages', () => {
  it('delivers messages both ways, numbered from the advert sequence, and counts them', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startTransport('node-a', portA, portB);
    const b = await startTransport('node-b', portB, portA);

    b.transport.sendMessage(REQUEST);
    await waitFor(() => a.messages.length === 1, 'request');
    a.transport.send(body('node-a'));
    a.transport.sendMessage(HANDOVER);
    await waitFor(() => b.messages.length === 1 && b.received.length === 1, 'handover');
    b.transport.sendMessage(RESULT);
    await waitFor(() => a.messages.length === 2, 'result');

    expect(a.messages.map((m) => m.message)).toEqual([
      { groupId: GROUP, nodeName: 'node-b', bootTimeMs: b.transport.bootTimeMs, seq: 1, echoBootTimeMs: TEST_BOOT['node-a']!, message: REQUEST },
      { groupId: GROUP, nodeName: 'node-b', bootTimeMs: b.transport.bootTimeMs, seq: 2, echoBootTimeMs: TEST_BOOT['node-a']!, message: RESULT },
    ]);
    expect(a.messages[0]?.from).toBe(LOOPBACK);
    expect(b.received[0]?.advert.seq).toBe(1);
    expect(b.messages[0]?.message).toMatchObject({ nodeName: 'node-a', seq: 2, message: HANDOVER });
    expect(a.received).toHaveLength(0);

    await waitFor(() => a.transport.counters.messagesSent === 1 && b.transport.counters.messagesSent === 2, 'send callbacks');
    expect(a.transport.counters).toMatchObject({ sent: 1, messagesSent: 1, received: 2, accepted: 0, messagesReceived: 2, sendErrors: 0 });
    expect(b.transport.counters).toMatchObject({ sent: 0, messagesSent: 2, received: 2, accepted: 1, messagesReceived: 1, sendErrors: 0 });
  });

  it('accepts interleaved adverts and messages from one sender, in order', async () => {
    const [portA, portB] = [await freePort(), await freePort()];
    const a = await startTransport('node-a', portA, portB);
    const b = await startTransport('node-b', portB, portA);

    const order: string[] = [];
    for (let i = 0; i < 10; i++) {
      if (i % 3 === 0) {
        a.transport.sendMessage({ ...HANDOVER, requestId: `sw-${i}` });
        order.push(`message ${i + 1}`);
      } else {
        a.transport.send(body('node-a', { epoch: i }));
        order.push(`advert ${i + 1}`);
      }
    }
    await waitFor(() => b.transport.counters.received === 10, 'all datagrams');

    const arrived = [
      ...b.received.map((r) => ({ seq: r.advert.seq, what: `advert ${r.advert.seq}` })),
      ...b.messages.map((m) => ({ seq: m.message.seq, what: `message ${m.message.seq}` })),
    ].sort((x, y) => x.seq - y.seq);
    expect(arrived.map((x) => x.what)).toEqual(order);
    expect(b.messages.map((m) => m.message.message.requestId)).toEqual(['sw-0', 'sw-3', 'sw-6', 'sw-9']);
    expect(b.transport.counters).toMatchObject({ accepted: 6, messagesReceived: 4 });
    expect(b.transport.counters.rejected).toMatchObject({ replayed: 0, 'stale-boot': 0 });
  });

  it('rejects a replayed message datagram, and an advert older than an accepted message', async () => {
    const relay = await rawSocket();
    const portB = await freePort();
    const a = await startTransport('node-a', await freePort(), relay.port);
    const b = await startTransport('node-b', portB, await freePort());

    a.transport.send(body('node-a')); // seq 1
    a.transport.sendMessage(HANDOVER); // seq 2
    await waitFor(() => relay.captured.length === 2, 'capture');
    const [advert, message] = relay.captured as [Buffer, Buffer];
    await sendRaw(relay.socket, message, portB);
    await waitFor(() => b.messages.length === 1, 'genuine message');
    await sendRaw(relay.socket, message, portB); // replay of the message
    await sendRaw(relay.socket, advert, portB); // advert overtaken by the message: same sequence space
    await waitFor(() => b.transport.counters.received === 3, 'all datagrams');

    expect(b.messages).toHaveLength(1);
    expect(b.received).toHaveLength(0);
    expect(b.transport.counters.rejected.replayed).toBe(2);
    expect(b.transport.counters.messagesReceived).toBe(1);
  });

  it('drops forged, foreign, malformed and own-name messages, counts them, and never calls the handler', async () => {
    const { logger, lines } = captureLogger();
    const portB = await freePort();
    const b = await startTransport('node-b', portB, await freePort(), { logger });
    const attacker = await rawSocket();
    const env = { groupId: GROUP, nodeName: 'mallory', bootTimeMs: Date.now(), seq: 1, echoBootTimeMs: TEST_BOOT['node-b']!, message: HANDOVER };

    const forged = encodeMessage(env, { id: KEY.id, secret: Buffer.from('not the key') });
    const unknownKey = encodeMessage(env, { id: 99, secret: Buffer.from('not the key') });
    const otherGroup = encodeMessage({ ...env, groupId: GROUP + 1 }, KEY);
    // An earlier run of ours (its boot time is not ours), so it is also logged.
    const ownName = encodeMessage({ ...env, nodeName: 'node-b', bootTimeMs: b.transport.bootTimeMs - 1 }, KEY);
    // Signed with the key but not JSON: a key holder's bug, refused as bad-payload.
    const badPayload = encodeMessage({ ...env, seq: 2 }, KEY);
    badPayload.write('x', badPayload.indexOf('"force":false') + 8, 'latin1');
    resign(badPayload);
    const truncated = encodeMessage(env, KEY).subarray(0, 40);
    for (const datagram of [forged, unknownKey, otherGroup, ownName, badPayload, truncated]) {
      await sendRaw(attacker.socket, datagram, portB);
    }
    await waitFor(() => b.transport.counters.received === 6, 'all datagrams');

    expect(b.messages).toHaveLength(0);
    expect(b.received).toHaveLength(0);
    const { rejected, ownIgnored, messagesReceived } = b.transport.counters;
    expect(messagesReceived).toBe(0);
    expect(ownIgnored).toBe(1);
    expect(rejected).toMatchObject({ 'bad-mac': 1, 'unknown-key': 1, 'wrong-group': 1, 'bad-payload': 1, 'too-short': 1 });
    const warnings = lines.filter((l) => l['msg'] === 'advert rejected');
    expect(warnings.map((l) => [l['reason'], l['packet']])).toEqual([
      ['bad-mac', 'message'],
      ['unknown-key', 'message'],
      ['wrong-group', 'message'],
      ['bad-payload', 'message'],
      ['too-short', 'message'],
    ]);
    expect(lines.filter((l) => l['msg'] === 'message with own node name from another run')).toHaveLength(1);
  });

  it('never throws from sendMessage: not started, or a message that cannot be encoded', async () => {
    const { logger, lines } = captureLogger();
    const transport = new AdvertTransport(loopbackOptions('node-a', await freePort(), undefined, { logger }));
    expect(() => transport.sendMessage(REQUEST)).not.toThrow();
    await transport.start(() => undefined);
    cleanups.push(() => transport.stop());
    expect(() => transport.sendMessage({ ...REQUEST, requestId: 'has spaces' })).not.toThrow();
    expect(() => transport.sendMessage({ ...REQUEST, timeoutMs: 0 })).not.toThrow();
    expect(transport.counters).toMatchObject({ messagesSent: 0, sent: 0, sendErrors: 3 });
    const warnings = lines.filter((l) => l['msg'] === 'peer message not sent');
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ kind: 'switchover-request', requestId: 'sw-1', suppressed: 0 });
  });

  it('counts and drops messages when started without a message handler, and survives one that throws', async () => {
    const [portA, portB, portC] = [await freePort(), await freePort(), await freePort()];
    const a = await startTransport('node-a', portA, portB);
    const { logger, lines } = captureLogger();
    const b = new AdvertTransport(loopbackOptions('node-b', portB, portA, { logger }));
    const adverts: Advert[] = [];
    await b.start((advert) => adverts.push(advert));
    cleanups.push(() => b.stop());
    a.transport.sendMessage(REQUEST);
    a.transport.send(body('node-a'));
    await waitFor(() => adverts.length === 1, 'advert after the message');
    expect(b.counters).toMatchObject({ messagesReceived: 1, accepted: 1 });
    expect(lines.filter((l) => l['msg'] === 'peer message dropped: no handler')).toHaveLength(1);

    const c = new AdvertTransport(loopbackOptions('node-c', portC, portA, { logger }));
    let calls = 0;
    await c.start(
      () => undefined,
      () => {
        calls++;
        throw new Error('handler bug');
      },
    );
    cleanups.push(() => c.stop());
    const d = await startTransport('node-d', await freePort(), portC);
    d.transport.sendMessage(REQUEST);
    d.transport.sendMessage(RESULT);
    await waitFor(() => calls === 2, 'both messages');
    expect(lines.filter((l) => l['msg'] === 'message handler threw')).toHaveLength(2);
    expect(c.counters.messagesReceived).toBe(2);
  });
});
