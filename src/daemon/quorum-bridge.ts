/**
 * The quorum adapter (`src/adapters/quorum`) as the runtime drives it: outcomes become
 * the core's `QuorumAnswer`, the adapter's events become `quorum-renewed` /
 * `quorum-lost`, and nothing rejects (a thrown call is an `unreachable` answer, logged).
 *
 * A `lease-lost` outcome means this node's lease ended while it asked; the adapter grants
 * a new one on the next acquire, so the bridge asks once more at once.
 */
import type { LeaderRecord } from '../adapters/quorum/record.js';
import type { MarkOutcome, Quorum, QuorumMemory, QuorumOutcome } from '../adapters/quorum/types.js';
import type { QuorumAnswer, QuorumMark } from '../core/types.js';
import { errorMessage } from '../errors.js';
import type { Logger } from '../logger.js';
import type { MarkAnswer, QuorumNotice, RuntimeQuorum } from './runtime.js';

/** What `acquireAnswer` needs of an acquire's outcome (`QuorumOutcome`, or the simulation's). */
export type AcquireOutcome =
  | { readonly type: 'held'; readonly record: LeaderRecord; readonly validUntilMs: number; readonly memory: QuorumMemory; readonly reason: string }
  | { readonly type: 'held-by-other'; readonly holder: LeaderRecord | null; readonly reason: string }
  | { readonly type: 'unreachable' | 'lease-lost'; readonly reason: string };

/**
 * Asks once, and once more when the lease ended meanwhile (the next ask grants a new
 * one), and words the outcome as the core's answer.
 */
export async function acquireAnswer(ask: () => Promise<AcquireOutcome>): Promise<QuorumAnswer> {
  let outcome = await ask();
  if (outcome.type === 'lease-lost') outcome = await ask();
  switch (outcome.type) {
    case 'held':
      return { outcome: 'held', epoch: outcome.record.epoch, validUntilAtMs: outcome.validUntilMs, memory: outcome.memory, detail: outcome.reason };
    case 'held-by-other':
      return { outcome: 'held-by-other', holder: outcome.holder, detail: outcome.reason };
    case 'unreachable':
    case 'lease-lost':
      return { outcome: 'unreachable', detail: outcome.reason };
    default: {
      const never: never = outcome;
      throw new Error(`unhandled quorum outcome ${JSON.stringify(never)}`);
    }
  }
}

export class QuorumBridge implements RuntimeQuorum {
  constructor(private readonly quorum: Quorum, private readonly logger: Logger) {}

  acquire(epoch: number): Promise<QuorumAnswer> {
    return acquireAnswer(() => this.call(() => this.quorum.acquire(epoch)));
  }

  mark(mark: QuorumMark): Promise<MarkAnswer> {
    switch (mark.kind) {
      case 'relax':
        return this.marked('relaxed mark', () => this.quorum.markRelaxed(mark.epoch));
      case 'clear':
        return this.marked('relaxed mark clear', () => this.quorum.clearRelaxed(mark.holder));
      case 'served':
        return this.marked('served record', () => this.quorum.recordServed(mark.epoch, mark.replId));
      default: {
        const never: never = mark;
        throw new Error(`unhandled quorum mark ${JSON.stringify(never)}`);
      }
    }
  }

  async release(): Promise<void> {
    try {
      const r = await this.quorum.release();
      if (!r.ok) this.logger.warn({ reason: r.reason }, 'leader key not released: it lapses with the lease');
    } catch (error) {
      this.logger.error({ err: error }, 'leader key release threw');
    }
  }

  onEvent(listener: (notice: QuorumNotice) => void): () => void {
    return this.quorum.onEvent((event) => {
      listener(event.type === 'renewed'
        ? { type: 'quorum-renewed', validUntilAtMs: event.validUntilMs }
        : { type: 'quorum-lost', reason: event.reason, detail: event.detail });
    });
  }

  private async marked(what: string, fn: () => Promise<MarkOutcome>): Promise<MarkAnswer> {
    try {
      const r = await fn();
      return { ok: r.ok, detail: r.reason };
    } catch (error) {
      this.logger.error({ err: error }, `${what} threw`);
      return { ok: false, detail: `${what} threw: ${errorMessage(error)}` };
    }
  }

  private async call(fn: () => Promise<QuorumOutcome>): Promise<QuorumOutcome> {
    try {
      return await fn();
    } catch (error) {
      this.logger.error({ err: error }, 'quorum call threw');
      return { type: 'unreachable', reason: `quorum call threw: ${errorMessage(error)}` };
    }
  }
}
