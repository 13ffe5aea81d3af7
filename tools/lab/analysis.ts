/**
 * Pure analysis of a Jepsen-style set test: the writer's op log (one record per SADD of
 * a unique integer) against the set finally read from the surviving master.
 *
 *  - acknowledged: values whose SADD returned OK;
 *  - lost: acknowledged but absent from the final set (an acknowledged write the
 *    failover threw away);
 *  - unexpected: present in the final set but never attempted (corruption);
 *  - failed ops were definitely not applied; unknown ones (timed out, connection lost
 *    with the command sent) may or may not be in the final set, and both are fine.
 *
 * Times are milliseconds since the writer started (`startMs`/`endMs` of each op);
 * `WriterMeta.startWallMs` maps them to the wall clock, so a fault time taken in
 * another process converts with `toWriterMs`.
 */

/** What happened to one op. */
export type OpOutcome = 'ok' | 'failed' | 'unknown';

/** One SADD, as the writer recorded it. */
export interface OpRecord {
  readonly type: 'op';
  /** The unique integer added. */
  readonly value: number;
  /** Issue time, ms since the writer started (monotonic clock). */
  readonly startMs: number;
  /** Completion (reply, error or timeout) time, same clock. */
  readonly endMs: number;
  readonly outcome: OpOutcome;
  /** Short error text for failed/unknown ops. */
  readonly error?: string;
  /** The pool connection that sent it (`--connections` > 1 only). */
  readonly conn?: number;
}

/** First line of the op log: how to read the times. */
export interface WriterMeta {
  readonly type: 'meta';
  /** Wall-clock time (ms since the Unix epoch, fractional) of writer time 0. */
  readonly startWallMs: number;
  readonly host: string;
  readonly port: number;
  readonly key: string;
  readonly ratePerSec: number;
}

/** Counters the writer prints every progress interval and at the end. */
export interface WriterCounts {
  readonly attempted: number;
  readonly ok: number;
  readonly failed: number;
  readonly unknown: number;
  /** Completion time of the latest acknowledged op, or `null`. */
  readonly lastOkMs: number | null;
}

/** A progress line on the writer's stdout. */
export interface WriterProgress extends WriterCounts {
  readonly type: 'progress';
  /** Writer time of this line. */
  readonly tMs: number;
}

/** The final line on the writer's stdout. */
export interface WriterSummary extends WriterCounts {
  readonly type: 'summary';
  readonly durationMs: number;
  readonly out: string;
}

/** The parsed op log. */
export interface OpLog {
  readonly meta: WriterMeta;
  readonly ops: readonly OpRecord[];
}

/** The write-unavailability window around a fault. */
export interface UnavailabilityWindow {
  /** Completion time of the last acknowledged op that completed at or before the fault. */
  readonly lastOkBeforeMs: number | null;
  /** The first acknowledged op issued at or after the fault. */
  readonly firstOkAfter: OpRecord | null;
  /** `firstOkAfter.endMs - faultMs`: fault to first acknowledged write. */
  readonly faultToFirstOkMs: number | null;
  /** `firstOkAfter.endMs - lastOkBeforeMs`: the gap in acknowledged writes. */
  readonly windowMs: number | null;
  /** Longest gap between consecutive acknowledged completions from the last ok before the fault to the horizon. */
  readonly longestGapMs: number | null;
}

/** Everything a scenario reports. */
export interface SetTestReport {
  readonly attempted: number;
  readonly acknowledged: number;
  readonly failed: number;
  readonly unknown: number;
  readonly finalSize: number;
  /** Acknowledged values missing from the final set, ascending. */
  readonly lost: readonly number[];
  /** Final-set values never attempted, ascending. */
  readonly unexpected: readonly number[];
  /** Unknown ops whose value did make it into the final set. */
  readonly unknownPresent: number;
}

/** Parses the op log (JSON lines: a meta line, then one op per line). */
export function parseOpLog(text: string): OpLog {
  let meta: WriterMeta | null = null;
  const ops: OpRecord[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const record = JSON.parse(line) as OpRecord | WriterMeta;
    if (record.type === 'meta') meta = record;
    else if (record.type === 'op') ops.push(record);
  }
  if (!meta) throw new Error('op log has no meta line');
  return { meta, ops };
}

/** Converts a wall-clock time (ms since the epoch) to writer time. */
export function toWriterMs(meta: WriterMeta, wallMs: number): number {
  return wallMs - meta.startWallMs;
}

/** Values of every op attempted. */
export function attemptedValues(ops: readonly OpRecord[]): Set<number> {
  return new Set(ops.map((op) => op.value));
}

/** Values of every acknowledged op. */
export function acknowledgedValues(ops: readonly OpRecord[]): Set<number> {
  return new Set(ops.filter((op) => op.outcome === 'ok').map((op) => op.value));
}

/** Parses final-set members (strings from SMEMBERS) into numbers; non-integers become NaN. */
export function parseFinalSet(members: readonly string[]): Set<number> {
  return new Set(members.map((m) => (/^-?\d+$/.test(m) ? Number(m) : Number.NaN)));
}

/** Acknowledged − final, ascending. */
export function lostWrites(ops: readonly OpRecord[], finalSet: ReadonlySet<number>): number[] {
  return [...acknowledgedValues(ops)].filter((v) => !finalSet.has(v)).sort((x, y) => x - y);
}

/** Final − attempted, ascending (NaN for non-integer members sorts first). */
export function unexpectedValues(ops: readonly OpRecord[], finalSet: ReadonlySet<number>): number[] {
  const attempted = attemptedValues(ops);
  return [...finalSet].filter((v) => !attempted.has(v)).sort((x, y) => x - y);
}

/** The first acknowledged op issued at or after `tMs` (earliest completion), or `null`. */
export function firstOkAfter(ops: readonly OpRecord[], tMs: number): OpRecord | null {
  let best: OpRecord | null = null;
  for (const op of ops) {
    if (op.outcome === 'ok' && op.startMs >= tMs && (best === null || op.endMs < best.endMs)) best = op;
  }
  return best;
}

/** Completion time of the last acknowledged op that completed at or before `tMs`, or `null`. */
export function lastOkBefore(ops: readonly OpRecord[], tMs: number): number | null {
  let best: number | null = null;
  for (const op of ops) {
    if (op.outcome === 'ok' && op.endMs <= tMs && (best === null || op.endMs > best)) best = op.endMs;
  }
  return best;
}

/** Number of acknowledged ops that completed in `[fromMs, toMs]`. */
export function acknowledgedBetween(ops: readonly OpRecord[], fromMs: number, toMs: number): number {
  return ops.filter((op) => op.outcome === 'ok' && op.endMs >= fromMs && op.endMs <= toMs).length;
}

/**
 * Longest gap between consecutive acknowledged completions within `[fromMs, toMs]`
 * (the edges count as completions), or `null` when the range is empty.
 */
export function longestOkGap(ops: readonly OpRecord[], fromMs: number, toMs: number): number | null {
  if (toMs < fromMs) return null;
  const times = ops
    .filter((op) => op.outcome === 'ok' && op.endMs >= fromMs && op.endMs <= toMs)
    .map((op) => op.endMs)
    .sort((x, y) => x - y);
  let previous = fromMs;
  let longest = 0;
  for (const t of [...times, toMs]) {
    longest = Math.max(longest, t - previous);
    previous = t;
  }
  return longest;
}

/**
 * The write-unavailability window around a fault at writer time `faultMs`:
 * last ok before it, first ok issued after it, and the longest ok gap up to
 * `horizonMs` (default: the last op's completion).
 */
export function unavailabilityWindow(
  ops: readonly OpRecord[],
  faultMs: number,
  horizonMs?: number,
): UnavailabilityWindow {
  const lastOkBeforeMs = lastOkBefore(ops, faultMs);
  const first = firstOkAfter(ops, faultMs);
  const horizon = horizonMs ?? ops.reduce((max, op) => Math.max(max, op.endMs), faultMs);
  return {
    lastOkBeforeMs,
    firstOkAfter: first,
    faultToFirstOkMs: first ? first.endMs - faultMs : null,
    windowMs: first && lastOkBeforeMs !== null ? first.endMs - lastOkBeforeMs : null,
    longestGapMs: longestOkGap(ops, lastOkBeforeMs ?? faultMs, horizon),
  };
}

/** Counts by outcome. */
export function countOutcomes(ops: readonly OpRecord[]): WriterCounts {
  let ok = 0;
  let failed = 0;
  let unknown = 0;
  let lastOkMs: number | null = null;
  for (const op of ops) {
    if (op.outcome === 'ok') {
      ok++;
      if (lastOkMs === null || op.endMs > lastOkMs) lastOkMs = op.endMs;
    } else if (op.outcome === 'failed') failed++;
    else unknown++;
  }
  return { attempted: ops.length, ok, failed, unknown, lastOkMs };
}

/** The full set-test report. */
export function analyseSetTest(ops: readonly OpRecord[], finalSet: ReadonlySet<number>): SetTestReport {
  const counts = countOutcomes(ops);
  const unknownPresent = ops.filter((op) => op.outcome === 'unknown' && finalSet.has(op.value)).length;
  return {
    attempted: counts.attempted,
    acknowledged: counts.ok,
    failed: counts.failed,
    unknown: counts.unknown,
    finalSize: finalSet.size,
    lost: lostWrites(ops, finalSet),
    unexpected: unexpectedValues(ops, finalSet),
    unknownPresent,
  };
}

/** Failed ops whose value is nonetheless in the final set (a failed op must not apply). */
export function failedButPresent(ops: readonly OpRecord[], finalSet: ReadonlySet<number>): number[] {
  return ops.filter((op) => op.outcome === 'failed' && finalSet.has(op.value)).map((op) => op.value);
}

/** An op issued this long before the fault can still fail by it (its command was in flight). */
const COMMAND_SPAN_BEFORE_FAULT_MS = 1_000;

/** The connections (`conn`, 0 without) with an acknowledged op issued after `tMs`. Pure. */
export function connectionsWritingAfter(ops: readonly OpRecord[], tMs: number): Set<number> {
  return new Set(ops.filter((op) => op.outcome === 'ok' && op.startMs > tMs).map((op) => op.conn ?? 0));
}

/** How the clients of a pool came back after a fault (`clientRecovery`). */
export interface ClientRecovery {
  /** Connections that sent anything. */
  readonly connections: number;
  /** Connections with a failed or unknown op issued at or after the fault. */
  readonly interrupted: number;
  /** Of those, the ones with an acknowledged op after their last failure. */
  readonly recovered: number;
  /** Per interrupted connection: fault to its first acknowledged write after its last failure (ascending). */
  readonly backMs: readonly number[];
}

/**
 * Per connection of a pooled writer: was it interrupted by the fault at `faultMs`, and
 * when did it write again for good (the first acknowledged op that completed after its
 * last failure)? Ops without `conn` count as connection 0. Pure.
 */
export function clientRecovery(ops: readonly OpRecord[], faultMs: number): ClientRecovery {
  const byConn = new Map<number, OpRecord[]>();
  for (const op of ops) {
    const conn = op.conn ?? 0;
    const list = byConn.get(conn) ?? [];
    list.push(op);
    byConn.set(conn, list);
  }
  const backMs: number[] = [];
  let interrupted = 0;
  for (const list of byConn.values()) {
    const failures = list.filter((op) => op.outcome !== 'ok' && op.startMs >= faultMs - COMMAND_SPAN_BEFORE_FAULT_MS);
    if (failures.length === 0) continue;
    interrupted++;
    const lastFailureEnd = Math.max(...failures.map((op) => op.endMs));
    const back = list.filter((op) => op.outcome === 'ok' && op.endMs >= lastFailureEnd).sort((x, y) => x.endMs - y.endMs)[0];
    if (back !== undefined) backMs.push(back.endMs - faultMs);
  }
  backMs.sort((x, y) => x - y);
  return { connections: byConn.size, interrupted, recovered: backMs.length, backMs };
}
