/**
 * The sender's hot path (`AdvertEncoder`, issue 12 item 2): the same bytes as before it
 * existed (golden vectors written by the encoder it replaced, and `encodeAdvert` for any
 * input), every byte of a reused buffer written again, and a buffer never handed out
 * twice while its datagram may still be in flight (until `release`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AdvertKey } from '../../src/config/types.js';
import {
  AdvertEncodeError,
  AdvertEncoder,
  decodeAdvert,
  encodeAdvert,
  MAX_NODE_NAME_BYTES,
  MAX_SEQ,
  type AdvertEnvelope,
} from '../../src/proto/advert.js';
import { advertBody, advertEnvelope } from './advert-arbitraries.js';

const KEY: AdvertKey = { id: 7, secret: Buffer.from('golden vector key, not a secret') };
const NO_FLAGS = { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: false };

/** Two adverts and their bytes as the encoder before `AdvertEncoder` wrote them (wire format version 3). */
const GOLDEN: readonly { readonly name: string; readonly envelope: AdvertEnvelope; readonly hex: string }[] = [
  {
    name: 'a master at 20 ms adverts, no second history',
    envelope: {
      groupId: 51, bootTimeMs: 1_760_000_000_000, seq: 42, echoBootTimeMs: 0,
      body: {
        nodeName: 'redis-a', state: 'MASTER', priority: 100, advertIntervalMs: 20, epoch: 3, maintenanceGen: 0,
        flags: { ...NO_FLAGS, holdsVip: true },
        redis: { role: 'master', replId: '8c5d4a7e0f1b2c3d4e5f60718293a4b5c6d7e8f9', replId2: '', offset: 123456789, secondOffset: -1 },
      },
    },
    hex:
      '52480301330264100014010199c82cc0000000002a0000000300000000075bcd15ffffffffffffffff8c5d4a7e0f1b2c3d4e5f60718293a4b5c6d7e8f9' +
      '0000000000000000000000000000000000000000000000000000000000000772656469732d6107d0cce531740c47f1ec65d170a36fc6209a5275daef345d5e4bcf6f6492cea3f8',
  },
  {
    name: 'every field at its largest, a multi-byte name',
    envelope: {
      groupId: 255, bootTimeMs: 2 ** 48 - 1, seq: 0xffffffff, echoBootTimeMs: 2 ** 48 - 1,
      body: {
        nodeName: 'nœud-β', state: 'FAULT', priority: 0, advertIntervalMs: 65535, epoch: 0x7fffffff, maintenanceGen: 9,
        flags: { fault: true, resigning: true, maintenance: true, switchingOver: true, holdsVip: true, cannotTakeOver: true, takingOver: true, recoveredRecently: true },
        redis: {
          role: 'replica', replId: 'ffffffffffffffffffffffffffffffffffffffff', replId2: '0123456789abcdef0123456789abcdef01234567',
          offset: Number.MAX_SAFE_INTEGER, secondOffset: 2 ** 32,
        },
      },
    },
    hex:
      '52480301ff0300ffffff02ffffffffffffffffffff7fffffff001fffffffffffff0000000100000000ffffffffffffffffffffffffffffffffffffffff' +
      '0123456789abcdef0123456789abcdef0123456700000009ffffffffffff086ec59375642dceb2079aef17df0538009fa983d82a480d2e21174f5286500736f231edce4bc58a75b9',
  },
];

const body = advertBody(fc.constantFrom('redis-a', 'b', 'nœud-β', 'x'.repeat(MAX_NODE_NAME_BYTES)));
const envelope = advertEnvelope(fc.integer({ min: 0, max: 255 }), body);

describe('the advert wire format does not change', () => {
  it.each(GOLDEN)('$name: encodeAdvert and AdvertEncoder write the golden bytes, which decode back', ({ envelope: env, hex }) => {
    expect(encodeAdvert(env, KEY).toString('hex')).toBe(hex);
    const encoder = new AdvertEncoder();
    const packet = encoder.encode(env, KEY);
    expect(packet.toString('hex')).toBe(hex);
    const decoded = decodeAdvert(Buffer.from(hex, 'hex'), [KEY], env.groupId);
    expect(decoded.ok && decoded.advert.nodeName).toBe(env.body.nodeName);
    expect(decoded.ok && decoded.advert.redis).toEqual(env.body.redis);
  });

  it('AdvertEncoder writes what encodeAdvert writes, for any sequence of adverts through reused buffers (property)', () => {
    const encoder = new AdvertEncoder();
    fc.assert(
      fc.property(fc.array(envelope, { minLength: 1, maxLength: 8 }), (envelopes) => {
        for (const env of envelopes) {
          const packet = encoder.encode(env, KEY);
          expect(packet.equals(encodeAdvert(env, KEY))).toBe(true);
          const decoded = decodeAdvert(packet, [KEY], env.groupId);
          expect(decoded.ok).toBe(true);
          encoder.release(packet);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('buffer reuse', () => {
  const [first, second] = GOLDEN.map((g) => g.envelope) as [AdvertEnvelope, AdvertEnvelope];
  const sameName = (env: AdvertEnvelope, seq: number): AdvertEnvelope => ({ ...env, seq, body: { ...env.body, nodeName: 'redis-a' } });

  it('never hands out a buffer again before it is released: one in flight is left untouched', () => {
    const encoder = new AdvertEncoder();
    const inFlight = encoder.encode(sameName(first, 1), KEY);
    const copy = Buffer.from(inFlight);
    const next = encoder.encode(sameName(second, 2), KEY);
    expect(next).not.toBe(inFlight);
    expect(inFlight.equals(copy)).toBe(true);
  });

  it('reuses a released buffer, rewriting every byte of it', () => {
    const encoder = new AdvertEncoder();
    const a = encoder.encode(sameName(second, 1), KEY);
    encoder.release(a);
    const b = encoder.encode(sameName(first, 2), KEY);
    expect(b).toBe(a);
    expect(b.equals(encodeAdvert(sameName(first, 2), KEY))).toBe(true);
  });

  it('keeps a released buffer once, however often it is released', () => {
    const encoder = new AdvertEncoder();
    const a = encoder.encode(sameName(first, 1), KEY);
    encoder.release(a);
    encoder.release(a);
    const b = encoder.encode(sameName(first, 2), KEY);
    const c = encoder.encode(sameName(first, 3), KEY);
    expect(b).toBe(a);
    expect(c).not.toBe(a);
  });

  it('takes a fresh buffer when the name, and with it the length, changes', () => {
    const encoder = new AdvertEncoder();
    const a = encoder.encode(first, KEY);
    encoder.release(a);
    const b = encoder.encode(second, KEY);
    expect(b).not.toBe(a);
    expect(b.toString('hex')).toBe(GOLDEN[1]?.hex);
  });

  it('refuses what encodeAdvert refuses, the node name included, and checks a new name again', () => {
    const encoder = new AdvertEncoder();
    encoder.encode(first, KEY);
    const bad = { ...first, body: { ...first.body, nodeName: 'bad\u202ename' } };
    expect(() => encoder.encode(bad, KEY)).toThrow(AdvertEncodeError);
    expect(() => encoder.encode({ ...first, seq: MAX_SEQ + 1 }, KEY)).toThrow(/seq 4294967296 is not an integer/);
    expect(() => encoder.encode({ ...first, body: { ...first.body, redis: { ...first.body.redis, replId: 'xyz' } } }, KEY)).toThrow(
      /redis\.replId is not 40 hex digits or empty/,
    );
  });
});
