/**
 * Tests for the anti-replay guard: the (bootTimeMs, seq) order, what is recorded,
 * and the bound on remembered senders.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_SENDERS, ReplayGuard } from '../../src/proto/replay.js';

const BOOT = 1_700_000_000_000;

describe('ReplayGuard', () => {
  it.each([
    // [last accepted, offered, expected]
    [[BOOT, 5], [BOOT, 6], 'ok'],
    [[BOOT, 5], [BOOT, 1_000], 'ok'],
    [[BOOT, 5], [BOOT, 5], 'replayed'],
    [[BOOT, 5], [BOOT, 4], 'replayed'],
    [[BOOT, 5], [BOOT + 1, 0], 'ok'],
    [[BOOT, 5], [BOOT + 1, 1], 'ok'],
    [[BOOT, 5], [BOOT - 1, 99], 'stale-boot'],
    [[BOOT, 5], [BOOT - 1, 1], 'stale-boot'],
  ] as const)('after %o, %o is %s', ([lastBoot, lastSeq], [boot, seq], expected) => {
    const guard = new ReplayGuard();
    expect(guard.check('b', lastBoot, lastSeq)).toEqual({ ok: true });
    const result = guard.check('b', boot, seq);
    expect(result.ok ? 'ok' : result.reason).toBe(expected);
    if (!result.ok) expect(result.detail).toContain('b');
  });

  it('accepts anything from a sender it has not seen', () => {
    const guard = new ReplayGuard();
    expect(guard.check('a', 0, 0).ok).toBe(true);
  });

  it('records accepted pairs and not rejected ones', () => {
    const guard = new ReplayGuard();
    guard.check('a', BOOT, 10);
    guard.check('a', BOOT, 3);
    guard.check('a', BOOT - 5, 50);
    expect(guard.lastAccepted('a')).toEqual({ bootTimeMs: BOOT, seq: 10 });
    guard.check('a', BOOT + 1, 2);
    expect(guard.lastAccepted('a')).toEqual({ bootTimeMs: BOOT + 1, seq: 2 });
    // After a restart, the old boot's adverts are stale however high their seq.
    expect(guard.check('a', BOOT, 11)).toMatchObject({ ok: false, reason: 'stale-boot' });
  });

  it('tracks senders independently', () => {
    const guard = new ReplayGuard();
    expect(guard.check('a', BOOT, 10).ok).toBe(true);
    expect(guard.check('b', BOOT, 1).ok).toBe(true);
    expect(guard.check('b', BOOT, 1).ok).toBe(false);
    expect(guard.check('a', BOOT, 11).ok).toBe(true);
  });

  it('accepts a sequence exactly when it is strictly increasing in (bootTimeMs, seq)', () => {
    const pair = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 5 }));
    fc.assert(
      fc.property(fc.array(pair, { maxLength: 40 }), (pairs) => {
        const guard = new ReplayGuard();
        let best: readonly [number, number] | null = null;
        for (const [boot, seq] of pairs) {
          const newer = best === null || boot > best[0] || (boot === best[0] && seq > best[1]);
          expect(guard.check('n', boot, seq).ok).toBe(newer);
          if (newer) best = [boot, seq];
        }
      }),
    );
  });

  it('remembers at most maxSenders, forgetting the least recently accepted', () => {
    const guard = new ReplayGuard(3);
    guard.check('a', BOOT, 1);
    guard.check('b', BOOT, 1);
    guard.check('c', BOOT, 1);
    guard.check('a', BOOT, 2); // a is now the most recent
    guard.check('d', BOOT, 1); // evicts b
    expect(guard.size).toBe(3);
    expect(guard.lastAccepted('b')).toBeUndefined();
    expect(guard.lastAccepted('a')).toEqual({ bootTimeMs: BOOT, seq: 2 });
    // A rejected advert does not refresh recency: c is evicted next, not a.
    guard.check('c', BOOT, 1);
    guard.check('e', BOOT, 1);
    expect(guard.lastAccepted('c')).toBeUndefined();
    expect(guard.lastAccepted('a')).toBeDefined();
  });

  it('stays bounded under many names', () => {
    const guard = new ReplayGuard();
    for (let i = 0; i < 1_000; i++) guard.check(`node-${i}`, BOOT, 1);
    expect(guard.size).toBe(DEFAULT_MAX_SENDERS);
  });

  it('refuses a capacity below one', () => {
    expect(() => new ReplayGuard(0)).toThrow(RangeError);
    expect(() => new ReplayGuard(1.5)).toThrow(RangeError);
  });
});
