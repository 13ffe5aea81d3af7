/**
 * Time as the runtime sees it: a monotonic clock and a scheduler for its timers, both
 * injected so the simulation (`test/sim/`) runs the real runtime on fake time (as
 * ioredis injects its `retryStrategy`). Wall-clock time never enters a decision.
 */

/** Monotonic milliseconds. */
export interface Clock {
  now(): number;
}

/** An armed timer, as handed back by {@link Scheduler.setTimer}. */
export type TimerHandle = { readonly id: unknown };

/** Arms and cancels one-shot timers. */
export interface Scheduler {
  setTimer(fn: () => void, delayMs: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
}

/** The process's monotonic clock, starting near 0 (`performance.now()`). */
export function monotonicClock(): Clock {
  const start = performance.now();
  return { now: () => performance.now() - start };
}

/** Node's own timers. */
export const nodeScheduler: Scheduler = {
  setTimer: (fn, delayMs) => ({ id: setTimeout(fn, delayMs) }),
  clearTimer: (handle) => clearTimeout(handle.id as NodeJS.Timeout),
};
