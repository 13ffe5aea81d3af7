/**
 * Codec tests for `src/proto/message.ts`: round trips of every kind, the shared
 * preamble/trailer rules, strict payload validation (reachable only with a correctly
 * signed packet, so those are built with `signedRaw`, which signs any payload bytes),
 * and fast-check properties: random bytes never throw and never authenticate, and any
 * valid message round-trips.
 */
import { createHmac } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AdvertKey } from '../../src/config/types.js';
import type { PeerRequest } from '../../src/core/types.js';
import { ADVERT_MAC_BYTES, ADVERT_VERSION, MAX_BOOT_TIME_MS, MAX_SEQ, decodeAdvert, encodeAdvert } from '../../src/proto/advert.js';
import {
  MAX_MESSAGE_BYTES,
  MAX_MESSAGE_PAYLOAD_BYTES,
  MESSAGE_REJECT_REASONS,
  MIN_MESSAGE_BYTES,
  MessageEncodeError,
  PACKET_TYPE_MESSAGE,
  decodeMessage,
  encodeMessage,
  packetType,
  type MessageDecodeResult,
  type MessageEnvelope,
  type MessageRejectReason,
  type PeerMessage,
} from '../../src/proto/message.js';

const KEY_A: AdvertKey = { id: 1, secret: Buffer.from('correct horse battery staple') };
const KEY_B: AdvertKey = { id: 7, secret: Buffer.from('the next key, rotated in') };
const GROUP = 42;
const BOOT = 1_700_000_000_000;
const RUNS = 1_000;

const REQUEST: PeerMessage = { kind: 'switchover-request', requestId: 'sw-2024.01_a', timeoutMs: 30_000, force: false, user: 'alice' };
const RESULT: PeerMessage = { kind: 'switchover-result', requestId: 'sw-1', ok: true, detail: 'handed over in 412 ms' };
const HANDOVER: PeerMessage = { kind: 'handover', requestId: 'sw-1', epoch: 18, force: true };

function envelope(message: PeerMessage = REQUEST, over: Partial<MessageEnvelope> = {}): MessageEnvelope {
  return { groupId: GROUP, nodeName: 'redis-b', bootTimeMs: BOOT, seq: 5, echoBootTimeMs: 0, message, ...over };
}

function packet(message: PeerMessage = REQUEST, key: AdvertKey = KEY_A): Buffer {
  return encodeMessage(envelope(message), key);
}

/**
 * A signed message with arbitrary payload bytes and lengths: what only a key holder
 * with a bug (or a newer version) could send.
 */
function signedRaw(
  payload: Buffer | string | object,
  opts: { name?: string; nameLength?: number; payloadLength?: number; group?: number; type?: number } = {},
): Buffer {
  const bytes = Buffer.isBuffer(payload)
    ? payload
    : Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload), 'utf8');
  const name = Buffer.from(opts.name ?? 'redis-b', 'utf8');
  const head = Buffer.alloc(22);
  head.write('RH', 0, 'latin1');
  head[2] = ADVERT_VERSION;
  head[3] = opts.type ?? PACKET_TYPE_MESSAGE;
  head[4] = opts.group ?? GROUP;
  head.writeUIntBE(BOOT, 5, 6);
  head.writeUInt32BE(5, 11);
  head[21] = opts.nameLength ?? name.length;
  const length = Buffer.alloc(2);
  length.writeUInt16BE(opts.payloadLength ?? bytes.length);
  const body = Buffer.concat([head, name, length, bytes, Buffer.from([KEY_A.id])]);
  return Buffer.concat([body, createHmac('sha256', KEY_A.secret).update(body).digest()]);
}

function expectReject(result: MessageDecodeResult, reason: MessageRejectReason): void {
  expect(result.ok).toBe(false);
  if (!result.ok) {
    expect(result.reason).toBe(reason);
    expect(result.detail.length).toBeGreaterThan(0);
  }
}

const decode = (buf: Buffer, keys: readonly AdvertKey[] = [KEY_A], group = GROUP): MessageDecodeResult =>
  decodeMessage(buf, keys, group);

/** `true` only when A and B are the same type; `npm run typecheck` checks the uses below. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

describe('PeerMessage', () => {
  // A compile-time check that tsc enforces (vitest's typecheck mode is off): this
  // assignment fails to compile if the codec's type drifts from the core's.
  const sameType: Equal<PeerMessage, PeerRequest> = true;
  // One message of every kind the core can emit: tsc requires every kind of PeerRequest here.
  const oneOfEachKind: { readonly [K in PeerRequest['kind']]: Extract<PeerRequest, { kind: K }> } = {
    'switchover-request': { kind: 'switchover-request', requestId: 'sw-1', timeoutMs: 30_000, force: false, user: 'alice' },
    'switchover-result': { kind: 'switchover-result', requestId: 'sw-1', ok: false, detail: 'refused' },
    handover: { kind: 'handover', requestId: 'sw-1', epoch: 3, force: false },
    'advert-request': { kind: 'advert-request', requestId: 'link-12345' },
  };

  it('is the core vocabulary for peer requests: every kind the core can emit is carried', () => {
    expect(sameType).toBe(true);
    const kinds = Object.keys(oneOfEachKind);
    expect(kinds.length).toBeGreaterThan(0);
    for (const [kind, message] of Object.entries(oneOfEachKind)) {
      expect(message.kind).toBe(kind);
      expect(decode(packet(message))).toEqual({
        ok: true,
        message: { groupId: GROUP, nodeName: 'redis-b', bootTimeMs: BOOT, seq: 5, echoBootTimeMs: 0, message },
      });
    }
  });

  it('carries no kind the core does not have', () => {
    // @ts-expect-error 'takeover' is not a kind of PeerRequest, so it is not a PeerMessage either.
    const unknown: PeerMessage = { kind: 'takeover', requestId: 'sw-1', epoch: 3, force: false };
    expect(() => encodeMessage(envelope(unknown), KEY_A)).toThrow(MessageEncodeError);
    expectReject(decode(signedRaw(unknown)), 'bad-payload');
  });
});

describe('encodeMessage / decodeMessage round trip', () => {
  it.each([
    ['switchover-request', REQUEST],
    ['switchover-result', RESULT],
    ['handover', HANDOVER],
    ['advert-request', { kind: 'advert-request', requestId: 'link-12345' }],
  ] as const)('%s', (_kind, message) => {
    expect(decode(packet(message))).toEqual({
      ok: true,
      message: { groupId: GROUP, nodeName: 'redis-b', bootTimeMs: BOOT, seq: 5, echoBootTimeMs: 0, message },
    });
  });

  it('carries the extremes of every field', () => {
    const cases: PeerMessage[] = [
      { kind: 'switchover-request', requestId: 'x', timeoutMs: 1, force: true, user: '' },
      { kind: 'switchover-request', requestId: 'A'.repeat(64), timeoutMs: 600_000, force: false, user: 'é'.repeat(256) },
      { kind: 'switchover-result', requestId: 'a.b-c_d', ok: false, detail: '' },
      { kind: 'switchover-result', requestId: 'r', ok: true, detail: 'd'.repeat(512) },
      { kind: 'handover', requestId: 'h', epoch: 0, force: false },
      { kind: 'handover', requestId: 'h', epoch: 0x7fff_ffff, force: true },
      { kind: 'switchover-result', requestId: 'emoji', ok: true, detail: '🦀 done' },
    ];
    for (const message of cases) {
      const buf = encodeMessage(envelope(message, { groupId: 255, bootTimeMs: MAX_BOOT_TIME_MS, seq: MAX_SEQ }), KEY_A);
      const result = decode(buf, [KEY_A], 255);
      expect(result).toEqual({
        ok: true,
        message: { groupId: 255, nodeName: 'redis-b', bootTimeMs: MAX_BOOT_TIME_MS, seq: MAX_SEQ, echoBootTimeMs: 0, message },
      });
    }
  });

  it('writes the documented layout', () => {
    const message: PeerMessage = HANDOVER;
    const buf = packet(message);
    const json = Buffer.from(JSON.stringify(message));
    expect(buf.subarray(0, 2).toString('latin1')).toBe('RH');
    expect(buf[2]).toBe(ADVERT_VERSION);
    expect(buf[3]).toBe(2);
    expect(buf[4]).toBe(GROUP);
    expect(buf.readUIntBE(5, 6)).toBe(BOOT);
    expect(buf.readUInt32BE(11)).toBe(5);
    expect(buf.readUIntBE(15, 6)).toBe(0);
    expect(buf[21]).toBe('redis-b'.length);
    expect(buf.subarray(22, 29).toString()).toBe('redis-b');
    expect(buf.readUInt16BE(29)).toBe(json.length);
    expect(buf.subarray(31, 31 + json.length)).toEqual(json);
    expect(buf[31 + json.length]).toBe(KEY_A.id);
    expect(buf.length).toBe(57 + 'redis-b'.length + json.length);
  });

  it('serialises only the known keys, in a fixed order', () => {
    const shuffled = { force: true, epoch: 3, requestId: 'r', kind: 'handover' } as const;
    const buf = packet(shuffled);
    const json = buf.subarray(31, buf.length - ADVERT_MAC_BYTES - 1).toString();
    expect(json).toBe('{"kind":"handover","requestId":"r","epoch":3,"force":true}');
  });

  it('verifies with a key that is not first in the list (rotation)', () => {
    expect(decode(packet(REQUEST, KEY_B), [KEY_A, KEY_B]).ok).toBe(true);
  });

  it('accepts the payload whatever its key order and spacing', () => {
    const result = decode(signedRaw(' { "user": "bob", "force": true, "timeoutMs": 5, "requestId": "r", "kind": "switchover-request" } '));
    expect(result.ok && result.message.message).toEqual({
      kind: 'switchover-request',
      requestId: 'r',
      timeoutMs: 5,
      force: true,
      user: 'bob',
    });
  });
});

describe('packetType', () => {
  it('reads the preamble only', () => {
    expect(packetType(packet())).toBe(2);
    expect(packetType(encodeAdvert(advertEnvelope(), KEY_A))).toBe(1);
    expect(packetType(Buffer.from('RH\x03\x02'))).toBe(2);
    expect(packetType(Buffer.from('RH\x03\x03'))).toBeNull();
    expect(packetType(Buffer.from('RH\x04\x02'))).toBeNull();
    expect(packetType(Buffer.from('XH\x02\x02'))).toBeNull();
    expect(packetType(Buffer.from('RH\x01'))).toBeNull();
    expect(packetType(Buffer.alloc(0))).toBeNull();
  });
});

function advertEnvelope() {
  return {
    groupId: GROUP,
    bootTimeMs: BOOT,
    seq: 5,
    echoBootTimeMs: 0,
    body: {
      nodeName: 'redis-b',
      state: 'MASTER' as const,
      priority: 100,
      advertIntervalMs: 1000,
      epoch: 1,
      flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false },
      maintenanceGen: 0,
      redis: { role: 'master' as const, replId: '', replId2: '', offset: 0, secondOffset: -1 },
    },
  };
}

describe('decodeMessage rejects', () => {
  const produced = new Set<MessageRejectReason>();
  const check = (buf: Buffer, reason: MessageRejectReason, keys: readonly AdvertKey[] = [KEY_A], group = GROUP): void => {
    expectReject(decode(buf, keys, group), reason);
    produced.add(reason);
  };

  it('too-short: empty, preamble only, and every truncation of a valid message', () => {
    check(Buffer.alloc(0), 'too-short');
    check(Buffer.from('RH\x01'), 'too-short');
    check(Buffer.from('RH\x03\x02'), 'too-short');
    const buf = packet();
    for (let cut = 0; cut < buf.length; cut++) {
      const result = decode(buf.subarray(0, cut));
      expect(result.ok).toBe(false);
    }
    check(signedRaw('{}', { name: 'a' }).subarray(0, MIN_MESSAGE_BYTES - 1), 'too-short');
  });

  it('bad-magic and bad-version', () => {
    const magic = packet();
    magic[1] = 0x00;
    check(magic, 'bad-magic');
    const version = packet();
    version[2] = ADVERT_VERSION + 1;
    check(version, 'bad-version');
  });

  it('bad-type: an advert, or a signed packet with another type byte', () => {
    check(encodeAdvert(advertEnvelope(), KEY_A), 'bad-type');
    check(signedRaw(REQUEST, { type: 3 }), 'bad-type');
    // And the advert decoder refuses a message for the same reason.
    const asAdvert = decodeAdvert(packet(), [KEY_A], GROUP);
    expect(asAdvert.ok === false && asAdvert.reason).toBe('bad-type');
  });

  it('bad-length: oversized datagram, and signed lengths that do not add up', () => {
    check(Buffer.concat([packet(), Buffer.alloc(MAX_MESSAGE_BYTES)]), 'bad-length');
    check(signedRaw(REQUEST, { nameLength: 0 }), 'bad-length');
    check(signedRaw(REQUEST, { nameLength: 65 }), 'bad-length');
    check(signedRaw(REQUEST, { nameLength: 8 }), 'bad-length');
    check(signedRaw(REQUEST, { payloadLength: Buffer.byteLength(JSON.stringify(REQUEST)) + 1 }), 'bad-length');
    check(signedRaw(REQUEST, { payloadLength: Buffer.byteLength(JSON.stringify(REQUEST)) - 1 }), 'bad-length');
    check(signedRaw('{', { payloadLength: 1 }), 'bad-length');
    // A name length that runs into the trailer leaves no room for the payload length.
    check(signedRaw('{}', { name: 'a', nameLength: 4 }), 'bad-length');
  });

  it('bad-length: a signed payload above the limit, although the datagram fits', () => {
    const oversize = JSON.stringify({ ...RESULT, detail: 'x'.repeat(MAX_MESSAGE_PAYLOAD_BYTES) }).slice(0, MAX_MESSAGE_PAYLOAD_BYTES + 1);
    const buf = signedRaw(oversize, { name: 'a' });
    expect(buf.length).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
    check(buf, 'bad-length');
  });

  it('unknown-key', () => {
    check(packet(REQUEST, KEY_B), 'unknown-key');
    check(packet(), 'unknown-key', []);
    const empty: AdvertKey = { id: 3, secret: Buffer.alloc(0) };
    check(packet(), 'unknown-key', [{ ...empty, id: KEY_A.id }]);
  });

  it('bad-mac: wrong secret, and any tampered byte', () => {
    check(packet(REQUEST, { id: KEY_A.id, secret: Buffer.from('guessed') }), 'bad-mac');
    const buf = packet(HANDOVER);
    for (let i = 4; i < buf.length - ADVERT_MAC_BYTES - 1; i++) {
      const tampered = Buffer.from(buf);
      tampered[i] = (tampered[i] ?? 0) ^ 0x01;
      expectReject(decode(tampered), 'bad-mac');
    }
    const macByte = packet();
    macByte[macByte.length - 1] = (macByte[macByte.length - 1] ?? 0) ^ 0x80;
    check(macByte, 'bad-mac');
  });

  it('bad-field: a signed node name that is not valid UTF-8 or has control characters', () => {
    const badUtf8 = signedRaw(REQUEST, { name: 'ab' });
    badUtf8[22] = 0xff;
    check(resign(badUtf8), 'bad-field');
    check(signedRaw(REQUEST, { name: 'a\nb' }), 'bad-field');
  });

  it('wrong-group, only once authenticated', () => {
    check(packet(), 'wrong-group', [KEY_A], GROUP + 1);
    const forged = packet();
    forged[4] = GROUP + 1;
    check(forged, 'bad-mac', [KEY_A], GROUP + 1);
  });

  const badPayloads: [string, Buffer | string | object][] = [
    ['not UTF-8', Buffer.from([0x7b, 0xff, 0x7d])],
    ['not JSON', '{kind: handover}'],
    ['truncated JSON', JSON.stringify(HANDOVER).slice(0, -1)],
    ['an array', '[1,2]'],
    ['null', 'null'],
    ['a string', '"handover"'],
    ['an empty object', '{}'],
    ['unknown kind', { ...HANDOVER, kind: 'promote-now' }],
    ['kind from the prototype', { ...HANDOVER, kind: 'toString' }],
    ['kind not a string', { ...HANDOVER, kind: 2 }],
    ['extra key', { ...HANDOVER, extra: 1 }],
    ['extra key from another kind', { ...HANDOVER, user: 'alice' }],
    ['__proto__ key', `{"__proto__":{"x":1},${JSON.stringify(HANDOVER).slice(1)}`],
    ['missing requestId', { kind: 'handover', epoch: 1, force: false }],
    ['empty requestId', { ...HANDOVER, requestId: '' }],
    ['65-character requestId', { ...HANDOVER, requestId: 'r'.repeat(65) }],
    ['requestId with a space', { ...HANDOVER, requestId: 'sw 1' }],
    ['requestId with a slash', { ...HANDOVER, requestId: '../x' }],
    ['requestId with a newline', { ...HANDOVER, requestId: 'sw\n' }],
    ['requestId not a string', { ...HANDOVER, requestId: 12 }],
    ['advert-request with an extra key', { kind: 'advert-request', requestId: 'link-1', epoch: 1 }],
    ['advert-request without requestId', { kind: 'advert-request' }],
    ['timeoutMs 0', { ...REQUEST, timeoutMs: 0 }],
    ['timeoutMs 600001', { ...REQUEST, timeoutMs: 600_001 }],
    ['timeoutMs fractional', { ...REQUEST, timeoutMs: 1.5 }],
    ['timeoutMs a string', { ...REQUEST, timeoutMs: '1000' }],
    ['timeoutMs missing', { kind: 'switchover-request', requestId: 'r', force: false, user: 'u' }],
    ['request force a number', { ...REQUEST, force: 1 }],
    ['request force null', { ...REQUEST, force: null }],
    ['user 257 characters', { ...REQUEST, user: 'u'.repeat(257) }],
    ['user with a newline', { ...REQUEST, user: 'alice\nbob' }],
    ['user with NUL', { ...REQUEST, user: 'alice\u0000' }],
    ['user with DEL', { ...REQUEST, user: 'alice\u007f' }],
    ['user with a C1 control', { ...REQUEST, user: 'alice\u009b' }],
    ['user with an escape sequence', { ...REQUEST, user: '\u001b[31mred' }],
    ['user with a lone surrogate', '{"kind":"switchover-request","requestId":"r","timeoutMs":1,"force":false,"user":"\\ud800"}'],
    ['user not a string', { ...REQUEST, user: ['alice'] }],
    ['ok a string', { ...RESULT, ok: 'true' }],
    ['detail 513 characters', { ...RESULT, detail: 'd'.repeat(513) }],
    ['detail with a carriage return', { ...RESULT, detail: 'done\r' }],
    ['detail missing', { kind: 'switchover-result', requestId: 'r', ok: true }],
    ['epoch -1', { ...HANDOVER, epoch: -1 }],
    ['epoch 2^32', { ...HANDOVER, epoch: 2 ** 32 }],
    ['epoch fractional', { ...HANDOVER, epoch: 0.5 }],
    ['epoch as exponent beyond range', '{"kind":"handover","requestId":"r","epoch":1e10,"force":false}'],
    ['handover force a string', { ...HANDOVER, force: 'yes' }],
  ];

  it.each(badPayloads)('bad-payload: %s', (_label, payload) => {
    check(signedRaw(payload), 'bad-payload');
  });

  it('covers every reject reason', () => {
    expect([...produced].sort()).toEqual([...MESSAGE_REJECT_REASONS].sort());
  });
});

/** Re-signs a patched `signedRaw` packet. */
function resign(buf: Buffer): Buffer {
  const macAt = buf.length - ADVERT_MAC_BYTES;
  createHmac('sha256', KEY_A.secret).update(buf.subarray(0, macAt)).digest().copy(buf, macAt);
  return buf;
}

describe('encodeMessage refuses what the peer would refuse', () => {
  const enc = (message: unknown, over: Partial<MessageEnvelope> = {}, key: AdvertKey = KEY_A) => () =>
    encodeMessage(envelope(message as PeerMessage, over), key);

  it.each([
    ['group 256', enc(REQUEST, { groupId: 256 })],
    ['boot time 2^48', enc(REQUEST, { bootTimeMs: 2 ** 48 })],
    ['seq 2^32', enc(REQUEST, { seq: 2 ** 32 })],
    ['negative seq', enc(REQUEST, { seq: -1 })],
    ['key id 256', enc(REQUEST, {}, { id: 256, secret: Buffer.from('k') })],
    ['empty secret', enc(REQUEST, {}, { id: 1, secret: Buffer.alloc(0) })],
    ['empty node name', enc(REQUEST, { nodeName: '' })],
    ['65-byte node name', enc(REQUEST, { nodeName: 'n'.repeat(65) })],
    ['node name with a tab', enc(REQUEST, { nodeName: 'a\tb' })],
    ['unknown kind', enc({ ...HANDOVER, kind: 'nope' })],
    ['extra key', enc({ ...HANDOVER, extra: true })],
    ['bad requestId', enc({ ...HANDOVER, requestId: 'a b' })],
    ['timeoutMs 0', enc({ ...REQUEST, timeoutMs: 0 })],
    ['NaN epoch', enc({ ...HANDOVER, epoch: Number.NaN })],
    ['bigint epoch', enc({ ...HANDOVER, epoch: 1n })],
    ['user with a control character', enc({ ...REQUEST, user: 'a\u0085' })],
    ['user with a lone surrogate', enc({ ...REQUEST, user: 'a\ud800' })],
    ['detail too long', enc({ ...RESULT, detail: 'd'.repeat(513) })],
    // 256 four-byte characters fit the user limit but not the payload limit.
    ['payload over 1024 bytes', enc({ ...REQUEST, user: '🦀'.repeat(256) })],
  ])('%s', (_label, fn) => {
    expect(fn).toThrow(MessageEncodeError);
  });
});

describe('decodeMessage properties', () => {
  const KEYS = [KEY_A, KEY_B];
  const safeText = (maxLength: number) =>
    fc.string({ unit: 'grapheme', maxLength }).filter((s) => !/[\p{Cc}\p{Cs}]/u.test(s) && [...s].length <= maxLength);
  const requestId = fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/);
  const message: fc.Arbitrary<PeerMessage> = fc.oneof(
    fc.record({
      kind: fc.constant('switchover-request' as const),
      requestId,
      timeoutMs: fc.integer({ min: 1, max: 600_000 }),
      force: fc.boolean(),
      user: safeText(40),
    }),
    fc.record({ kind: fc.constant('switchover-result' as const), requestId, ok: fc.boolean(), detail: safeText(80) }),
    fc.record({ kind: fc.constant('handover' as const), requestId, epoch: fc.integer({ min: 0, max: 0x7fff_ffff }), force: fc.boolean() }),
  );
  const nodeName = fc
    .string({ unit: 'grapheme', minLength: 1, maxLength: 16 })
    .filter((s) => !/[\p{Cc}\p{Cf}]/u.test(s) && Buffer.byteLength(s) <= 64);
  const env: fc.Arbitrary<MessageEnvelope> = fc.record({
    groupId: fc.constant(GROUP),
    nodeName,
    bootTimeMs: fc.integer({ min: 0, max: MAX_BOOT_TIME_MS }),
    echoBootTimeMs: fc.integer({ min: 0, max: MAX_BOOT_TIME_MS }),
    seq: fc.integer({ min: 0, max: MAX_SEQ }),
    message,
  });

  it('round-trips any valid message', () => {
    fc.assert(
      fc.property(env, fc.constantFrom(...KEYS), (e, key) => {
        expect(decodeMessage(encodeMessage(e, key), KEYS, GROUP)).toEqual({
          ok: true,
          message: { groupId: e.groupId, nodeName: e.nodeName, bootTimeMs: e.bootTimeMs, seq: e.seq, echoBootTimeMs: e.echoBootTimeMs, message: e.message },
        });
      }),
      { numRuns: RUNS },
    );
  });

  it('never throws on and never authenticates random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 1200 }), (bytes) => {
        const result = decodeMessage(Buffer.from(bytes), KEYS, GROUP);
        expect(result.ok).toBe(false);
        if (!result.ok) expect(MESSAGE_REJECT_REASONS).toContain(result.reason);
      }),
      { numRuns: RUNS },
    );
  });

  it('never authenticates random bytes behind a message preamble and a known key id', () => {
    const lengths = fc.integer({ min: MIN_MESSAGE_BYTES, max: MAX_MESSAGE_BYTES });
    fc.assert(
      fc.property(
        lengths.chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
        fc.constantFrom(...KEYS),
        (bytes, key) => {
          const buf = Buffer.from(bytes);
          buf.write('RH\x03\x02', 0, 'latin1');
          buf[buf.length - ADVERT_MAC_BYTES - 1] = key.id;
          const result = decodeMessage(buf, KEYS, GROUP);
          expect(result.ok === false && result.reason).toBe('bad-mac');
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('rejects any single bit flip, truncation or extension of a valid message', () => {
    fc.assert(
      fc.property(env, fc.nat(), fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 40 }), (e, at, cut, extra) => {
        const buf = encodeMessage(e, KEY_A);
        const bit = at % (buf.length * 8);
        const flipped = Buffer.from(buf);
        flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        expect(decodeMessage(flipped, KEYS, GROUP).ok).toBe(false);
        expect(decodeMessage(buf.subarray(0, cut % buf.length), KEYS, GROUP).ok).toBe(false);
        expect(decodeMessage(Buffer.concat([buf, extra]), KEYS, GROUP).ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('never throws on any signed payload bytes, and accepts only what re-encodes identically', () => {
    const payload = fc.oneof(
      fc.uint8Array({ minLength: 2, maxLength: 200 }).map((b) => Buffer.from(b)),
      fc.json({ maxDepth: 3 }).filter((j) => Buffer.byteLength(j) >= 2),
      message.map((m) => JSON.stringify({ ...m })),
    );
    fc.assert(
      fc.property(payload, (p) => {
        const result = decodeMessage(signedRaw(p), [KEY_A], GROUP);
        if (result.ok) {
          // Anything accepted is a valid message: it encodes again and decodes equal.
          const again = decodeMessage(encodeMessage(envelope(result.message.message), KEY_A), [KEY_A], GROUP);
          expect(again.ok && again.message.message).toEqual(result.message.message);
        } else {
          expect(['bad-payload', 'bad-length']).toContain(result.reason);
        }
      }),
      { numRuns: RUNS },
    );
  });
});
