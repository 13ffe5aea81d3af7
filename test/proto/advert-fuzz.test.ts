/**
 * Property tests for the advert decoder: it is fed straight from the network, so
 * whatever arrives it must return a verdict without throwing, and nothing but an
 * untouched, correctly signed packet may authenticate.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AdvertKey } from '../../src/config/types.js';
import type { AdvertBody, NodeState, RedisRole } from '../../src/core/types.js';
import {
  ADVERT_MAC_BYTES,
  MAX_ADVERT_BYTES,
  MAX_BOOT_TIME_MS,
  MAX_NODE_NAME_BYTES,
  MAX_SEQ,
  MIN_ADVERT_BYTES,
  REJECT_REASONS,
  decodeAdvert,
  encodeAdvert,
  type AdvertEnvelope,
} from '../../src/proto/advert.js';

const KEYS: readonly AdvertKey[] = [
  { id: 1, secret: Buffer.from('first key') },
  { id: 2, secret: Buffer.from('second key') },
];
const GROUP = 9;
const RUNS = 2_000;

const hexId = fc.oneof(
  fc.constant(''),
  fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex')),
);
const nodeName = fc
  .string({ unit: 'grapheme', minLength: 1, maxLength: 16 })
  .filter((s) => !/[\p{Cc}\p{Cf}]/u.test(s))
  .filter((s) => {
    const n = Buffer.byteLength(s, 'utf8');
    return n >= 1 && n <= MAX_NODE_NAME_BYTES;
  });

const body: fc.Arbitrary<AdvertBody> = fc.record({
  nodeName,
  state: fc.constantFrom<NodeState>('INIT', 'BACKUP', 'MASTER', 'FAULT'),
  priority: fc.integer({ min: 0, max: 255 }),
  advertIntervalMs: fc.integer({ min: 1, max: 65_535 }),
  epoch: fc.integer({ min: 0, max: 0x7fff_ffff }),
  flags: fc.record({ fault: fc.boolean(), resigning: fc.boolean(), maintenance: fc.boolean(), switchingOver: fc.boolean(), holdsVip: fc.boolean(), cannotTakeOver: fc.boolean(), takingOver: fc.boolean(), recoveredRecently: fc.boolean() }),
  maintenanceGen: fc.integer({ min: 0, max: 0x7fff_ffff }),
  redis: fc.record({
    role: fc.constantFrom<RedisRole>('master', 'replica', 'unknown'),
    replId: hexId,
    replId2: hexId,
    offset: fc.maxSafeNat(),
    secondOffset: fc.oneof(fc.constant(-1), fc.maxSafeNat()),
  }),
});

const envelope: fc.Arbitrary<AdvertEnvelope> = fc.record({
  groupId: fc.constant(GROUP),
  bootTimeMs: fc.integer({ min: 0, max: MAX_BOOT_TIME_MS }),
  seq: fc.integer({ min: 0, max: MAX_SEQ }),
  echoBootTimeMs: fc.integer({ min: 0, max: MAX_BOOT_TIME_MS }),
  body,
});

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
