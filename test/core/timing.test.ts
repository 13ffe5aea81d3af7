/** Timing arithmetic (RFC 5798 §6.1) and the start-up invariants. */
import { describe, expect, it } from 'vitest';
import { checkTimingInvariants, faultDetectMs, masterDownMs, skewMs, takeoverEstimate } from '../../src/core/timing.js';

const base = {
  priority: 90,
  advertIntervalMs: 1000,
  health: { intervalMs: 500, timeoutMs: 500, fall: 2 },
  promotion: { peerTimeoutMs: 100, preDelayMs: 0, syncDelayMs: 0 },
};

describe('timing', () => {
  it.each([
    [255, 1000, 3.90625],
    [100, 1000, 609.375],
    [90, 1000, 648.4375],
    [1, 100, 99.609375],
  ])('skew(priority %i, interval %i) = %f ms', (priority, interval, expected) => {
    expect(skewMs(priority, interval)).toBeCloseTo(expected, 6);
  });

  it('master-down interval is 3 × interval + skew', () => {
    expect(masterDownMs(90, 1000)).toBeCloseTo(3648.4375, 6);
    expect(masterDownMs(90, 100)).toBeCloseTo(364.84375, 6);
  });

  it('fault detection counts fall checks, each possibly running to its timeout', () => {
    expect(faultDetectMs({ intervalMs: 500, timeoutMs: 500, fall: 2 })).toBe(1500);
    expect(faultDetectMs({ intervalMs: 100, timeoutMs: 300, fall: 3 })).toBe(1200);
  });

  it('takeover estimates add the promotion costs to each path', () => {
    const e = takeoverEstimate(base);
    expect(e.redisFailureMs).toBe(1600);
    expect(e.hostLossMs).toBeCloseTo(3748.4375, 6);
    expect(e.resignMs).toBeCloseTo(748.4375, 6);
  });

  it('the defaults pass the invariants without warnings', () => {
    const r = checkTimingInvariants(base);
    expect(r.errors).toEqual([]);
    expect(r.warnings).toEqual([]);
  });

  it('slow fault detection against a short master-down interval is flagged', () => {
    const r = checkTimingInvariants({ ...base, advertIntervalMs: 200, health: { intervalMs: 500, timeoutMs: 500, fall: 3 } });
    expect(r.warnings.join('\n')).toMatch(/local fault detection \(2000 ms.*not faster than the peer's master-down interval/);
  });

  it('a timeout longer than fall × interval is an error; blind delays are warned about', () => {
    const r = checkTimingInvariants({ ...base, health: { intervalMs: 100, timeoutMs: 500, fall: 2 },
      promotion: { peerTimeoutMs: 250, preDelayMs: 15000, syncDelayMs: 10000 } });
    expect(r.errors.join('\n')).toMatch(/health.timeout_ms \(500\) is longer than health.fall × health.interval_ms \(200\)/);
    expect(r.warnings.join('\n')).toMatch(/blind waits to every takeover \(25000 ms\)/);
  });
});
