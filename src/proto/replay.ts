/**
 * Anti-replay for authenticated adverts. Each sender stamps its adverts with
 * `(bootTimeMs, seq)`: the time its daemon started and a counter that only grows
 * within that run. A recorded MASTER advert replayed later (failure scenario: an
 * attacker on the link, or a looping switch, re-sends yesterday's "I am master,
 * priority 200") would otherwise keep a dead master looking alive; here it is
 * dropped because its pair is not newer than the last one accepted from that name.
 *
 * The order is lexicographic: a larger boot time is a restart and resets the
 * sequence; within one boot the sequence must strictly increase.
 *
 * Memory is bounded: at most `maxSenders` names are remembered, and the least
 * recently accepted one is forgotten first. Evicting a name re-opens replay of its
 * old adverts, but filling the table takes adverts signed with the group key, so
 * only a key holder can force it. A pair has exactly two nodes; the default of 64
 * leaves ample room for misconfigured neighbours sharing the key.
 *
 * Operational caveat: a node whose clock stepped backwards across a restart sends a
 * smaller boot time and is rejected as `stale-boot`; the sender persists its last boot
 * time and never goes below it (`recordBoot`), and a receiver that only knows the older
 * run from its state file accepts a smaller one that proves itself fresh (see
 * `Admission`).
 *
 * Pure: no timers, no clock. Call `check()` only for authenticated adverts; an
 * accepted pair is recorded by the call itself.
 */

/** How many sender names a guard remembers by default. */
export const DEFAULT_MAX_SENDERS = 64;

/** Why an authenticated advert was still refused. */
export type ReplayRejectReason = 'replayed' | 'stale-boot';

/** Every reason `ReplayGuard.check` can reject for. */
export const REPLAY_REJECT_REASONS: readonly ReplayRejectReason[] = ['replayed', 'stale-boot'];

/** Outcome of `ReplayGuard.check`. */
export type ReplayCheck =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: ReplayRejectReason; readonly detail: string };

interface LastSeen {
  readonly bootTimeMs: number;
  readonly seq: number;
}

const ACCEPTED: ReplayCheck = Object.freeze({ ok: true });

/** Remembers the newest `(bootTimeMs, seq)` accepted from each sender and refuses anything not newer. */
export class ReplayGuard {
  // Map iteration order is insertion order; re-inserting on every accept makes the
  // first key the least recently accepted sender.
  private readonly lastSeen = new Map<string, LastSeen>();
  private readonly maxSenders: number;

  /** @param maxSenders how many sender names to remember; at least 1. */
  constructor(maxSenders: number = DEFAULT_MAX_SENDERS) {
    if (!Number.isInteger(maxSenders) || maxSenders < 1) {
      throw new RangeError(`maxSenders must be a positive integer, got ${String(maxSenders)}`);
    }
    this.maxSenders = maxSenders;
  }

  /**
   * Accepts `(bootTimeMs, seq)` from `nodeName` if it is newer than the last pair
   * accepted from that name, and records it; otherwise says why not and records nothing.
   */
  check(nodeName: string, bootTimeMs: number, seq: number): ReplayCheck {
    const last = this.lastSeen.get(nodeName);
    if (last !== undefined) {
      if (bootTimeMs < last.bootTimeMs) {
        return {
          ok: false,
          reason: 'stale-boot',
          detail: `boot time ${bootTimeMs} older than ${last.bootTimeMs} from ${nodeName}`,
        };
      }
      if (bootTimeMs === last.bootTimeMs && seq <= last.seq) {
        return {
          ok: false,
          reason: 'replayed',
          detail: `seq ${seq} not after ${last.seq} in boot ${bootTimeMs} from ${nodeName}`,
        };
      }
      this.lastSeen.delete(nodeName);
    }
    this.lastSeen.set(nodeName, { bootTimeMs, seq });
    if (this.lastSeen.size > this.maxSenders) {
      const oldest = this.lastSeen.keys().next();
      if (oldest.done !== true) this.lastSeen.delete(oldest.value);
    }
    return ACCEPTED;
  }

  /** Forgets `nodeName`: its next pair is accepted whatever it is. */
  forget(nodeName: string): void {
    this.lastSeen.delete(nodeName);
  }

  /** How many senders are remembered now. */
  get size(): number {
    return this.lastSeen.size;
  }

  /** The last pair accepted from `nodeName`, if it is still remembered. */
  lastAccepted(nodeName: string): { readonly bootTimeMs: number; readonly seq: number } | undefined {
    return this.lastSeen.get(nodeName);
  }
}
