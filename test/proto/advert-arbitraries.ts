/**
 * fast-check arbitraries of adverts, shared by the decoder's property tests
 * (`advert-fuzz.test.ts`) and the sender's (`advert-encoder.test.ts`).
 */
import fc from 'fast-check';
import type { AdvertBody, NodeState, RedisRole } from '../../src/core/types.js';
import { MAX_BOOT_TIME_MS, MAX_SEQ, type AdvertEnvelope } from '../../src/proto/advert.js';

/** A Redis replication id: 40 hex digits, or none. */
export const hexId = fc.oneof(
  fc.constant(''),
  fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => Buffer.from(b).toString('hex')),
);

/** Any advert body whose node name comes from `nodeName`. */
export function advertBody(nodeName: fc.Arbitrary<string>): fc.Arbitrary<AdvertBody> {
  return fc.record({
    nodeName,
    state: fc.constantFrom<NodeState>('INIT', 'BACKUP', 'MASTER', 'FAULT'),
    priority: fc.integer({ min: 0, max: 255 }),
    advertIntervalMs: fc.integer({ min: 1, max: 65_535 }),
    epoch: fc.integer({ min: 0, max: 0x7fff_ffff }),
    flags: fc.record({
      fault: fc.boolean(), resigning: fc.boolean(), maintenance: fc.boolean(), switchingOver: fc.boolean(), holdsVip: fc.boolean(),
      cannotTakeOver: fc.boolean(), takingOver: fc.boolean(), recoveredRecently: fc.boolean(),
    }),
    maintenanceGen: fc.integer({ min: 0, max: 0x7fff_ffff }),
    redis: fc.record({
      role: fc.constantFrom<RedisRole>('master', 'replica', 'unknown'),
      replId: hexId,
      replId2: hexId,
      offset: fc.maxSafeNat(),
      secondOffset: fc.oneof(fc.constant(-1), fc.maxSafeNat()),
    }),
  });
}

/** Any envelope of `groupId` around a body from `body`. */
export function advertEnvelope(groupId: fc.Arbitrary<number>, body: fc.Arbitrary<AdvertBody>): fc.Arbitrary<AdvertEnvelope> {
  return fc.record({
    groupId,
    bootTimeMs: fc.integer({ min: 0, max: MAX_BOOT_TIME_MS }),
    seq: fc.integer({ min: 0, max: MAX_SEQ }),
    echoBootTimeMs: fc.integer({ min: 0, max: MAX_BOOT_TIME_MS }),
    body,
  });
}
