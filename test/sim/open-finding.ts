/**
 * How a finding of the simulation that is not fixed yet stays in the suite: its
 * reproduction must fail on its own assertion, so the suite is green; it turns red the
 * day a fix lands (then make it a plain test) or the day it fails for another reason.
 */
import { expect, it } from 'vitest';

/** A reproduction of an open bug: passes only while the reproduction's own assertion fails. */
export function openFinding(name: string, reproduce: () => void | Promise<void>): void {
  it(`${name} (open finding: fails until fixed)`, async () => {
    const outcome = await Promise.resolve().then(reproduce).then(() => 'passed', (error: unknown) => error);
    expect(outcome, 'the reproduction no longer fails: the bug is fixed, make this a plain test').not.toBe('passed');
    expect((outcome as Error).name, `the reproduction failed for another reason: ${String(outcome)}`).toBe('AssertionError');
  });
}
