/**
 * What a simulated history exercised, summed over a property's runs and printed, so a
 * reader sees that the generated histories do reach takeovers, stalls, failing effects,
 * duplicated datagrams, switchovers and lost writes, and not only quiet runs.
 */
import type { AuditRecord } from './host.js';

export interface SimStats {
  /** Histories run (1 for one). */
  readonly histories: number;
  /** Transitions into MASTER. */
  readonly masters: number;
  readonly stallsDetected: number;
  /** Effects that failed on purpose and were handed back to the core. */
  readonly effectFailures: number;
  /** Datagrams the replay guard dropped (duplicated or overtaken). */
  readonly replayDrops: number;
  readonly switchoversOk: number;
  readonly writesAcked: number;
  /** Acknowledged writes discarded by a resync (partitions, crashes, known bugs). */
  readonly writesDiscarded: number;
  /**
   * Acknowledged writes a known product bug threw away (findings.test.ts), by finding;
   * only in histories without partitions (with them, a demoted master's writes are
   * expected losses).
   */
  readonly knownBugLosses: Readonly<Record<string, number>>;
  /** Longest time both hosts held the VIP with both Redis writable, once the pair was quiet. */
  readonly maxDualMs: number;
  /** With the quorum: longest time both Redis accepted writes (only a self-promoted Redis may cause it). */
  readonly maxBothWritableMs: number;
  /** With the quorum: masters that fenced for their lease, and that served on without it (failsafe). */
  readonly quorumFences: number;
  readonly failsafes: number;
  /** With the quorum: moments both Redis accepted writes that an open finding explains, by finding. */
  readonly bothWritableExcused: Readonly<Record<string, number>>;
  /** Heap entries run. */
  readonly steps: number;
}

export const NO_STATS: SimStats = {
  histories: 0, masters: 0, stallsDetected: 0, effectFailures: 0, replayDrops: 0, switchoversOk: 0, writesAcked: 0,
  writesDiscarded: 0, knownBugLosses: {}, maxDualMs: 0, maxBothWritableMs: 0, quorumFences: 0, failsafes: 0, bothWritableExcused: {}, steps: 0,
};

/** Sums two tallies (the longest dual window is the longer one). */
export function addStats(x: SimStats, y: SimStats): SimStats {
  return {
    histories: x.histories + y.histories, masters: x.masters + y.masters, stallsDetected: x.stallsDetected + y.stallsDetected,
    effectFailures: x.effectFailures + y.effectFailures, replayDrops: x.replayDrops + y.replayDrops,
    switchoversOk: x.switchoversOk + y.switchoversOk, writesAcked: x.writesAcked + y.writesAcked,
    writesDiscarded: x.writesDiscarded + y.writesDiscarded, knownBugLosses: sum(x.knownBugLosses, y.knownBugLosses),
    maxDualMs: Math.max(x.maxDualMs, y.maxDualMs), maxBothWritableMs: Math.max(x.maxBothWritableMs, y.maxBothWritableMs),
    quorumFences: x.quorumFences + y.quorumFences, failsafes: x.failsafes + y.failsafes,
    bothWritableExcused: sum(x.bothWritableExcused, y.bothWritableExcused), steps: x.steps + y.steps,
  };
}

/** What one finished history did. */
export interface HistoryFacts {
  readonly audit: readonly AuditRecord[];
  readonly replies: readonly string[];
  readonly replayDrops: number;
  readonly ackedIds: ReadonlySet<number>;
  readonly discardedIds: readonly number[];
  /** Discarded writes a known bug explains, and which (empty when the history had partitions). */
  readonly excused: ReadonlyMap<number, string>;
  readonly maxDualMs: number;
  readonly maxBothWritableMs: number;
  readonly bothWritableExcused: readonly string[];
  readonly steps: number;
}

export function statsOf(h: HistoryFacts): SimStats {
  const count = (event: string): number => h.audit.filter((x) => x.event === event).length;
  return {
    histories: 1,
    masters: h.audit.filter((x) => x.event === 'transition' && x.data['to'] === 'MASTER').length,
    stallsDetected: count('stall-detected'),
    effectFailures: count('effect-failed'),
    replayDrops: h.replayDrops,
    switchoversOk: h.replies.filter((l) => / s\d+ ok:/.test(l)).length,
    writesAcked: h.ackedIds.size,
    writesDiscarded: h.discardedIds.filter((id) => h.ackedIds.has(id)).length,
    knownBugLosses: countBy(h.discardedIds.filter((id) => h.ackedIds.has(id)).flatMap((id) => h.excused.get(id) ?? [])),
    maxDualMs: h.maxDualMs,
    maxBothWritableMs: h.maxBothWritableMs,
    quorumFences: count('quorum-fenced'),
    failsafes: count('quorum-failsafe'),
    bothWritableExcused: countBy(h.bothWritableExcused),
    steps: h.steps,
  };
}

function sum(p: Readonly<Record<string, number>>, q: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = { ...p };
  for (const [k, v] of Object.entries(q)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function countBy(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}
