/**
 * Property tests for the advert decoder: it is fed straight from the network, so
 * whatever arrives it must return a verdict without throwing, and nothing but an
 * untouched, correctly signed packet may authenticate.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AdvertKey } from '../../src/config/types.js';
import {
  ADVERT_MAC_BYTES,
  MAX_ADVERT_BYTES,
  MAX_NODE_NAME_BYTES,
  MIN_ADVERT_BYTES,
  REJECT_REASONS,
  decodeAdvert,
  encodeAdvert,
} from '../../src/proto/advert.js';
import { advertBody, advertEnvelope } from './advert-arbitraries.js';

const KEYS: readonly AdvertKey[] = [
  { id: 1, secret: Buffer.from('first key') },
  { id: 2, secret: Buffer.from('second key') },
];
const GROUP = 9;
const RUNS = 2_000;

const nodeName = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 16 })
  .filter((s) => !/[\p{Cc}\p{Cf}]/u.test(s))
  .filter((s) => {
    const n = Buffer.byteLength(s, 'utf8');
    return n >= 1 && n <= MAX_NODE_NAME_BYTES;
  });

const body = advertBody(nodeName);
const envelope = advertEnvelope(fc.constant(GROUP), body);

const signed = fc
  .tuple(envelope, fc.constantFrom(...KEYS))
  .map(([env, key]) => ({ env, buf: encodeAdvert(env, key) }));

function decode(buf: Buffer) {
  const result = decodeAdvert(buf, KEYS, GROUP);
  if (!result.ok) expect(REJECT_REASONS).toContain(result.reason);
  return result;
}

describe('advert decoder properties', () => {
  it('round-trips any valid envelope', () => {
    fc.assert(
      fc.property(signed, ({ env, buf }) => {
        const result = decode(buf);
        expect(result.ok).toBe(true);
        if (result.ok) {
          expect(result.advert).toEqual({ ...env.body, groupId: env.groupId, bootTimeMs: env.bootTimeMs, seq: env.seq, echoBootTimeMs: env.echoBootTimeMs });
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('never throws on and never authenticates random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 400 }), (bytes) => {
        expect(decode(Buffer.from(bytes)).ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('never authenticates random bytes behind a valid preamble and a known key id', () => {
    const lengths = fc.integer({ min: MIN_ADVERT_BYTES, max: MAX_ADVERT_BYTES });
    fc.assert(
      fc.property(
        lengths.chain((n) => fc.uint8Array({ minLength: n, maxLength: n })),
        fc.constantFrom(...KEYS),
        (bytes, key) => {
          const buf = Buffer.from(bytes);
          buf.write('RH\x03\x01', 0, 'latin1');
          buf[buf.length - ADVERT_MAC_BYTES - 1] = key.id;
          const result = decode(buf);
          expect(result.ok).toBe(false);
          if (!result.ok) expect(result.reason).toBe('bad-mac');
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('rejects any single bit flip', () => {
    fc.assert(
      fc.property(signed, fc.nat(), ({ buf }, at) => {
        const bit = at % (buf.length * 8);
        const flipped = Buffer.from(buf);
        flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        expect(decode(flipped).ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });

  it('rejects any non-empty set of bit flips, and accepts the empty one', () => {
    fc.assert(
      fc.property(signed, fc.uniqueArray(fc.nat(), { maxLength: 24 }), ({ buf }, positions) => {
        const bits = new Set(positions.map((p) => p % (buf.length * 8)));
        const flipped = Buffer.from(buf);
        for (const bit of bits) flipped[bit >> 3] = (flipped[bit >> 3] ?? 0) ^ (1 << (bit & 7));
        expect(decode(flipped).ok).toBe(bits.size === 0);
      }),
      { numRuns: RUNS },
    );
  });

  it('rejects every truncation and every extension', () => {
    fc.assert(
      fc.property(signed, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 40 }), ({ buf }, cut, extra) => {
        expect(decode(buf.subarray(0, cut % buf.length)).ok).toBe(false);
        expect(decode(Buffer.concat([buf, extra])).ok).toBe(false);
      }),
      { numRuns: RUNS },
    );
  });
});
