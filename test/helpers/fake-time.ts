/**
 * Fake time for tests that run the real `Runtime`: one clock and one scheduler, advanced
 * by hand. Between two timers every pending promise continuation runs (a macrotask turn
 * of the real event loop), so the runtime's async effects complete in fake time.
 */
import type { Clock, Scheduler, TimerHandle } from '../../src/daemon/time.js';

/** Lets every queued promise continuation run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

export class FakeTime implements Clock, Scheduler {
  private t = 0;
  private seq = 0;
  private readonly timers = new Map<number, { at: number; order: number; fn: () => void }>();

  now(): number {
    return this.t;
  }

  setTimer(fn: () => void, delayMs: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, delayMs), order: id, fn });
    return { id };
  }

  clearTimer(handle: TimerHandle): void {
    this.timers.delete(handle.id as number);
  }

  /** Number of armed timers. */
  get armed(): number {
    return this.timers.size;
  }

  /** Runs every timer due within `ms`, in order, settling promises after each; ends at now + ms. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (let guard = 0; guard < 100_000; guard++) {
      await settle();
      let next: [number, { at: number; order: number; fn: () => void }] | null = null;
      for (const entry of this.timers) {
        if (entry[1].at <= end && (next === null || entry[1].at < next[1].at || (entry[1].at === next[1].at && entry[1].order < next[1].order))) next = entry;
      }
      if (next === null) break;
      this.timers.delete(next[0]);
      this.t = Math.max(this.t, next[1].at);
      next[1].fn();
    }
    this.t = end;
    await settle();
  }

  /** Moves the clock without running anything: a stalled event loop. */
  jump(ms: number): void {
    this.t += ms;
  }
}
