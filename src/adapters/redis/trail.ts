/**
 * The step-by-step account of one Redis operation that becomes its `detail` (the
 * audit record and the log line), and the monotonic clock its durations are read from.
 */

/** Monotonic milliseconds: durations in `detail` must not jump with the wall clock. */
export function nowMs(): number {
  return performance.now();
}

/** The step-by-step account of one operation that ends up in `detail`. */
export class Trail {
  private readonly steps: string[] = [];
  private readonly startedAt = nowMs();

  /** Records a step that started at `since` (a `nowMs()` value). */
  add(text: string, since?: number): void {
    this.steps.push(since === undefined ? text : `${text} (${Math.round(nowMs() - since)} ms)`);
  }

  toString(): string {
    return `${this.steps.join('; ')}; total ${Math.round(nowMs() - this.startedAt)} ms`;
  }
}
