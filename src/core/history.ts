/**
 * Replication histories compared: does one Redis hold every write another holds?
 *
 * Redis names a history by its replication id (`master_replid`) and measures it in bytes
 * (`master_repl_offset`). A replica shares its master's id; a promotion (REPLICAOF NO ONE,
 * FAILOVER) starts a new id and keeps the old one as `master_replid2`, valid up to
 * `second_repl_offset - 1`, where the new history forked from it (PSYNC2). The offset runs
 * on across a promotion, so the stream named by an id includes everything before its fork.
 * Two servers on one id agree up to the shorter offset; a server promoted out of another's
 * history holds it up to the fork. Any other pair (a restart, a full resync from a third
 * server) is not linked by the ids: nothing can be said from them.
 *
 * The decisions that would make one Redis resync from another (a demotion, a takeover's
 * catch-up, INIT adopting its own master Redis) ask `compareHistories` first: a resync
 * discards whatever the follower holds that its new master does not (findings 7–10 of
 * test/sim/findings.test.ts). Pure.
 */
import type { AdvertRedis } from './types.js';

/** What a history is named by: `RedisSnapshot` (INFO replication) and `AdvertRedis` (an advert) both are. */
export type History = Pick<AdvertRedis, 'replId' | 'replId2' | 'offset' | 'secondOffset'>;

/**
 * How history `x` stands to history `y`:
 *  - `contains`: `x` holds every write of `y` (a resync of `y` from `x` discards nothing);
 *  - `lacks`: `y` holds at least `bytes` bytes `x` does not (a resync discards them);
 *  - `unrelated`: the replication ids do not link them (a restart, a resync from elsewhere).
 */
export type HistoryRelation =
  | { readonly kind: 'contains' }
  | { readonly kind: 'lacks'; readonly bytes: number }
  | { readonly kind: 'unrelated' };

const CONTAINS: HistoryRelation = { kind: 'contains' };
const UNRELATED: HistoryRelation = { kind: 'unrelated' };

/** The history `h` forked from and the last offset it shares with it, or null (none: never promoted). */
function ancestor(h: History): { readonly replId: string; readonly upTo: number } | null {
  // Redis reports no ancestor as replid2 0000…0 with second_repl_offset -1.
  if (h.replId2 === '' || /^0+$/.test(h.replId2) || h.secondOffset <= 0) return null;
  return { replId: h.replId2, upTo: h.secondOffset - 1 };
}

function lacks(bytes: number): HistoryRelation {
  return bytes > 0 ? { kind: 'lacks', bytes } : CONTAINS;
}

/** How `x` stands to `y` (see `HistoryRelation`). */
export function compareHistories(x: History, y: History): HistoryRelation {
  if (x.replId === '' || y.replId === '') return UNRELATED;
  // One history: the shorter is a prefix of the longer.
  if (x.replId === y.replId) return lacks(y.offset - x.offset);
  const ax = ancestor(x);
  const ay = ancestor(y);
  // x was promoted out of y's history: it holds y's up to the fork, and nothing of y's past it.
  if (ax !== null && ax.replId === y.replId) return lacks(y.offset - ax.upTo);
  // y was promoted out of x's history: what y wrote after the fork is y's alone.
  if (ay !== null && ay.replId === x.replId) return lacks(y.offset > ay.upTo ? y.offset - ay.upTo : y.offset - x.offset);
  // Both forked from one history: x holds y only if y wrote nothing of its own and x forked no earlier.
  if (ax !== null && ay !== null && ax.replId === ay.replId) return lacks(y.offset > ay.upTo ? y.offset - ay.upTo : ay.upTo - ax.upTo);
  return UNRELATED;
}

/** Whether `x` holds every write of `y`, as far as the replication ids tell. */
export function historyContains(x: History, y: History): boolean {
  return compareHistories(x, y).kind === 'contains';
}

/**
 * The bytes `x` wrote on its own history after it was promoted out of `y`'s, when `y` (as
 * far as it says) had not gone past that point: `y` is then an older point of `x`'s
 * lineage, and `x` holds every write of `y` and these bytes more. 0 otherwise (also when
 * `x` wrote nothing of its own yet: a stale offset of `y`'s could not be told from
 * `y` being behind).
 */
export function bytesPast(x: History, y: History): number {
  const ax = ancestor(x);
  if (ax === null || ax.replId !== y.replId || y.offset > ax.upTo) return 0;
  return Math.max(0, x.offset - ax.upTo);
}

/**
 * Whether a resync of `local` from `source` would discard writes only `local` holds, as
 * far as can be told: `source`'s history lacks some, or the two are not linked and
 * `local` counts more bytes. Offsets of unlinked histories say little (a server restarted
 * from its files counts from where it was, or from 0), but the more bytes is the better
 * guess; the data guard reads them the same way (`peerHoldsMore`). `following`: `local`
 * already replicates `source`, so Redis resyncs it anyway; only a sure loss counts then.
 */
export function resyncWouldDiscard(source: History, local: History, following: boolean): string | null {
  const relation = compareHistories(source, local);
  if (relation.kind === 'lacks') return `${historyText(source)} lacks ${relation.bytes} bytes of ${historyText(local)}`;
  if (relation.kind === 'unrelated' && !following && local.offset > source.offset) {
    return `${historyText(source)} is not linked to ${historyText(local)}, which counts more bytes`;
  }
  return null;
}

/** `h` in a reason or an audit record: `replid <first 8> @<offset>` (and its ancestor). */
export function historyText(h: History): string {
  const a = ancestor(h);
  return `${h.replId === '' ? '?' : h.replId.slice(0, 8)}@${h.offset}${a === null ? '' : ` (from ${a.replId.slice(0, 8)}@${a.upTo})`}`;
}
