/**
 * Codec tests for `src/proto/advert.ts`: round trips, key rotation, and every reject
 * reason, including the ones only reachable with a correctly signed packet (those are
 * built by patching a valid packet and signing it again with `resign`).
 */
import { createHmac } from 'node:crypto';
import { EPOCH_CEILING } from '../../src/core/epoch.js';
import { describe, expect, it } from 'vitest';
import type { AdvertKey } from '../../src/config/types.js';
import type { AdvertBody } from '../../src/core/types.js';
import {
  ADVERT_MAC_BYTES,
  ADVERT_VERSION,
  AdvertEncodeError,
  MAX_ADVERT_BYTES,
  MAX_BOOT_TIME_MS,
  MAX_SEQ,
  MIN_ADVERT_BYTES,
  REJECT_REASONS,
  decodeAdvert,
  encodeAdvert,
  type DecodeResult,
  type RejectReason,
} from '../../src/proto/advert.js';

const KEY_A: AdvertKey = { id: 1, secret: Buffer.from('correct horse battery staple') };
const KEY_B: AdvertKey = { id: 7, secret: Buffer.from('the next key, rotated in') };
const GROUP = 42;
const REPL_ID = '8c5d4a7e0f1b2c3d4e5f60718293a4b5c6d7e8f9';
const REPL_ID2 = '0123456789abcdef0123456789abcdef01234567';

function body(overrides: Partial<AdvertBody> = {}): AdvertBody {
  return {
    nodeName: 'redis-a',
    state: 'MASTER',
    priority: 150,
    advertIntervalMs: 1000,
    epoch: 17,
    flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false, cannotTakeOver: false, takingOver: false, recoveredRecently: false },
    maintenanceGen: 3,
    redis: { role: 'master', replId: REPL_ID, replId2: REPL_ID2, offset: 123_456_789, secondOffset: 1_000 },
    ...overrides,
  };
}

function packet(b: AdvertBody = body(), key: AdvertKey = KEY_A, seq = 5, bootTimeMs = 1_700_000_000_000): Buffer {
  return encodeAdvert({ groupId: GROUP, bootTimeMs, seq, echoBootTimeMs: 0, body: b }, key);
}

/** Re-signs a patched packet in place so the decoder gets past the MAC. */
function resign(buf: Buffer, key: AdvertKey = KEY_A): Buffer {
  const macAt = buf.length - ADVERT_MAC_BYTES;
  buf[macAt - 1] = key.id;
  createHmac('sha256', key.secret).update(buf.subarray(0, macAt)).digest().copy(buf, macAt);
  return buf;
}

function expectReject(result: DecodeResult, reason: RejectReason): void {
  expect(result.ok).toBe(false);
  if (!result.ok) {
    expect(result.reason).toBe(reason);
    expect(result.detail.length).toBeGreaterThan(0);
  }
}

describe('encodeAdvert / decodeAdvert round trip', () => {
  it('carries every field', () => {
    const b = body();
    const result = decodeAdvert(packet(b, KEY_A, 99, 1_700_000_000_123), [KEY_A], GROUP);
    expect(result).toEqual({
      ok: true,
      keyId: KEY_A.id,
      advert: { ...b, groupId: GROUP, bootTimeMs: 1_700_000_000_123, seq: 99, echoBootTimeMs: 0 },
    });
  });

  it.each([
    ['INIT', 'unknown', { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false }],
    ['BACKUP', 'replica', { fault: false, resigning: true, maintenance: false, switchingOver: false, holdsVip: false }],
    ['MASTER', 'master', { fault: false, resigning: false, maintenance: true, switchingOver: false, holdsVip: false }],
    ['FAULT', 'unknown', { fault: true, resigning: true, maintenance: true, switchingOver: false, holdsVip: false }],
  ] as const)('state %s, role %s, flags %o', (state, role, flags) => {
    const b = body({ state, flags, redis: { ...body().redis, role } });
    const result = decodeAdvert(packet(b), [KEY_A], GROUP);
    expect(result.ok && result.advert).toMatchObject({ state, flags, redis: { role } });
  });

  it('carries a negative second offset and empty replication ids', () => {
    const b = body({ redis: { role: 'replica', replId: '', replId2: '', offset: 0, secondOffset: -1 } });
    const result = decodeAdvert(packet(b), [KEY_A], GROUP);
    expect(result.ok && result.advert.redis).toEqual(b.redis);
  });

  it('decodes forty zeros (Redis "no replid2") as the empty string, and upper-case hex as lower-case', () => {
    const b = body({ redis: { ...body().redis, replId: REPL_ID.toUpperCase(), replId2: '0'.repeat(40) } });
    const result = decodeAdvert(packet(b), [KEY_A], GROUP);
    expect(result.ok && result.advert.redis).toMatchObject({ replId: REPL_ID, replId2: '' });
  });

  it('carries the extremes of every numeric field', () => {
    const b = body({
      priority: 255,
      advertIntervalMs: 65_535,
      epoch: EPOCH_CEILING,
      maintenanceGen: EPOCH_CEILING,
      redis: { ...body().redis, offset: Number.MAX_SAFE_INTEGER, secondOffset: Number.MAX_SAFE_INTEGER },
    });
    const result = decodeAdvert(
      encodeAdvert({ groupId: 255, bootTimeMs: MAX_BOOT_TIME_MS, seq: MAX_SEQ, echoBootTimeMs: MAX_BOOT_TIME_MS, body: b }, KEY_A),
      [KEY_A],
      255,
    );
    expect(result.ok && result.advert).toEqual({ ...b, groupId: 255, bootTimeMs: MAX_BOOT_TIME_MS, seq: MAX_SEQ, echoBootTimeMs: MAX_BOOT_TIME_MS });
  });

  it('refuses an epoch or maintenance generation above the ceiling (one advert must not poison the epoch)', () => {
    for (const over of [{ epoch: EPOCH_CEILING + 1 }, { epoch: 0xffff_ffff }, { maintenanceGen: EPOCH_CEILING + 1 }]) {
      const result = decodeAdvert(packet(body(over)), [KEY_A], GROUP);
      expect(result).toMatchObject({ ok: false, reason: 'bad-field' });
    }
  });

  it('refuses node names with control or bidi/format characters', () => {
    for (const name of ['a\u202eb', 'a\u200fb', 'x\u2066y', 'a\u0085b', 'a\u007fb']) {
      expect(() => packet(body({ nodeName: name }))).toThrow(/control or format/);
    }
  });

  it('carries 1- and 64-byte names, including multi-byte UTF-8, at the minimum and maximum sizes', () => {
    const short = packet(body({ nodeName: 'a' }));
    expect(short.length).toBe(MIN_ADVERT_BYTES);
    const longName = 'é'.repeat(32); // 64 bytes
    const long = packet(body({ nodeName: longName }));
    expect(long.length).toBe(MAX_ADVERT_BYTES);
    const result = decodeAdvert(long, [KEY_A], GROUP);
    expect(result.ok && result.advert.nodeName).toBe(longName);
  });

  it('writes the documented header', () => {
    const buf = packet();
    expect(buf.subarray(0, 2).toString('latin1')).toBe('RH');
    expect(buf[2]).toBe(ADVERT_VERSION);
    expect(buf[3]).toBe(1);
    expect(buf[4]).toBe(GROUP);
    expect(buf.length).toBe(125 + 'redis-a'.length);
  });
});

describe('keys', () => {
  it('verifies with a key that is not first in the list (rotation)', () => {
    const result = decodeAdvert(packet(body(), KEY_B), [KEY_A, KEY_B], GROUP);
    expect(result.ok && result.keyId).toBe(KEY_B.id);
  });

  it('rejects a packet signed with a different secret under a known id', () => {
    const forged = packet(body(), { id: KEY_A.id, secret: Buffer.from('guessed') });
    expectReject(decodeAdvert(forged, [KEY_A, KEY_B], GROUP), 'bad-mac');
  });

  it('rejects a key id it does not hold', () => {
    expectReject(decodeAdvert(packet(body(), KEY_B), [KEY_A], GROUP), 'unknown-key');
  });

  it('never verifies with an empty secret', () => {
    const empty: AdvertKey = { id: 3, secret: Buffer.alloc(0) };
    const forged = resign(packet(), empty);
    expectReject(decodeAdvert(forged, [empty], GROUP), 'unknown-key');
    expect(() => packet(body(), empty)).toThrow(AdvertEncodeError);
  });
});

describe('decodeAdvert rejects', () => {
  const produced = new Set<RejectReason>();
  const check = (buf: Buffer, reason: RejectReason, keys: readonly AdvertKey[] = [KEY_A], group = GROUP): void => {
    expectReject(decodeAdvert(buf, keys, group), reason);
    produced.add(reason);
  };

  it('too-short', () => {
    check(Buffer.alloc(0), 'too-short');
    check(Buffer.from('RH\x01'), 'too-short');
    check(packet().subarray(0, MIN_ADVERT_BYTES - 1), 'too-short');
  });

  it('bad-magic', () => {
    const buf = packet();
    buf[0] = 0x58;
    check(buf, 'bad-magic');
  });

  it('bad-version', () => {
    const buf = packet();
    buf[2] = ADVERT_VERSION + 1;
    check(buf, 'bad-version');
  });

  it('bad-type', () => {
    const buf = packet();
    buf[3] = 2;
    check(buf, 'bad-type');
  });

  it('bad-length: oversized, and a signed name length that disagrees with the datagram', () => {
    check(Buffer.concat([packet(), Buffer.alloc(MAX_ADVERT_BYTES)]), 'bad-length');
    const longer = packet();
    longer[91] = 8;
    check(resign(longer), 'bad-length');
    const zero = packet();
    zero[91] = 0;
    check(resign(zero), 'bad-length');
    const huge = packet(body({ nodeName: 'x'.repeat(64) }));
    huge[91] = 65;
    check(resign(huge), 'bad-length');
  });

  it('unknown-key', () => {
    check(packet(), 'unknown-key', []);
  });

  it('bad-mac: any tampered byte', () => {
    const buf = packet();
    buf.writeUInt8(buf.readUInt8(6) ^ 0x01, 6); // priority
    check(buf, 'bad-mac');
    const macByte = packet();
    const last = macByte.length - 1;
    macByte.writeUInt8(macByte.readUInt8(last) ^ 0x80, last);
    check(macByte, 'bad-mac');
  });

  it.each([
    ['state 4', (b: Buffer) => void (b[5] = 4)],
    ['interval 0', (b: Buffer) => b.writeUInt16BE(0, 8)],
    ['redis role 3', (b: Buffer) => void (b[10] = 3)],
    ['offset 2^53', (b: Buffer) => b.writeBigUInt64BE(2n ** 53n, 25)],
    ['offset 2^64 - 1', (b: Buffer) => b.writeBigUInt64BE(2n ** 64n - 1n, 25)],
    ['second offset -2', (b: Buffer) => b.writeBigInt64BE(-2n, 33)],
    ['second offset 2^53', (b: Buffer) => b.writeBigInt64BE(2n ** 53n, 33)],
    ['invalid UTF-8 name', (b: Buffer) => void (b[92] = 0xff)],
    ['control character in name', (b: Buffer) => void (b[92] = 0x0a)],
  ])('bad-field: %s', (_label, patch) => {
    const buf = packet();
    patch(buf);
    check(resign(buf), 'bad-field');
  });

  it('wrong-group, only once authenticated', () => {
    check(packet(), 'wrong-group', [KEY_A], GROUP + 1);
    // A forged packet for another group is a MAC failure, not a group mismatch.
    const forged = packet();
    forged[4] = GROUP + 1;
    check(forged, 'bad-mac', [KEY_A], GROUP + 1);
  });

  it('covers every reject reason', () => {
    expect([...produced].sort()).toEqual([...REJECT_REASONS].sort());
  });
});

describe('encodeAdvert refuses what does not fit', () => {
  const enc = (over: { groupId?: number; bootTimeMs?: number; seq?: number; body?: AdvertBody; key?: AdvertKey }) => () =>
    encodeAdvert(
      { groupId: over.groupId ?? GROUP, bootTimeMs: over.bootTimeMs ?? 1, seq: over.seq ?? 1, echoBootTimeMs: 0, body: over.body ?? body() },
      over.key ?? KEY_A,
    );

  it.each([
    ['group 256', enc({ groupId: 256 })],
    ['negative boot time', enc({ bootTimeMs: -1 })],
    ['boot time 2^48', enc({ bootTimeMs: 2 ** 48 })],
    ['seq 2^32', enc({ seq: 2 ** 32 })],
    ['fractional seq', enc({ seq: 1.5 })],
    ['key id 256', enc({ key: { id: 256, secret: Buffer.from('k') } })],
    ['priority 256', enc({ body: body({ priority: 256 }) })],
    ['interval 0', enc({ body: body({ advertIntervalMs: 0 }) })],
    ['epoch 2^32', enc({ body: body({ epoch: 2 ** 32 }) })],
    ['empty name', enc({ body: body({ nodeName: '' }) })],
    ['65-byte name', enc({ body: body({ nodeName: 'n'.repeat(65) }) })],
    ['lone surrogate in name', enc({ body: body({ nodeName: 'a\ud800' }) })],
    ['newline in name', enc({ body: body({ nodeName: 'a\nb' }) })],
    ['offset beyond 2^53', enc({ body: body({ redis: { ...body().redis, offset: 2 ** 53 } }) })],
    ['second offset -2', enc({ body: body({ redis: { ...body().redis, secondOffset: -2 } }) })],
    ['short replid', enc({ body: body({ redis: { ...body().redis, replId: 'abc' } }) })],
    ['non-hex replid2', enc({ body: body({ redis: { ...body().redis, replId2: 'z'.repeat(40) } }) })],
  ])('%s', (_label, fn) => {
    expect(fn).toThrow(AdvertEncodeError);
  });
});
