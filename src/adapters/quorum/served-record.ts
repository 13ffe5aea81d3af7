/**
 * The value of `<prefix>/<cluster>/leader-last` (no lease): the last master whose Redis
 * served, `{"format":"redis-ha-served/1","node":"<name>","epoch":<n>,"replId":"<40 hex>"}`,
 * written by that master once its Redis is promoted (`Quorum.recordServed`), readable with
 * `etcdctl get`. Pure; parsing never throws (anything else is refused with a reason, and
 * the caller reads it as no record).
 */
import { epochProblem, nodeNameProblem, parseFields } from './record.js';

export const SERVED_RECORD_FORMAT = 'redis-ha-served/1';

/** The last master whose Redis served, and that Redis's replication id (`master_replid`). */
export interface ServedRecord {
  readonly node: string;
  readonly epoch: number;
  readonly replId: string;
}

const REPL_ID = /^[0-9a-f]{40}$/;

/** Why `replId` is not a Redis replication id (40 lower-case hex digits), or null. */
export function replIdProblem(replId: string): string | null {
  return REPL_ID.test(replId) ? null : 'replId is not 40 lower-case hexadecimal digits';
}

/** Encodes a record; throws a RangeError for one that could not be parsed back. */
export function encodeServedRecord(record: ServedRecord): Buffer {
  const problem = nodeNameProblem(record.node) ?? epochProblem(record.epoch) ?? replIdProblem(record.replId);
  if (problem !== null) throw new RangeError(`served record: ${problem}`);
  return Buffer.from(JSON.stringify({ format: SERVED_RECORD_FORMAT, node: record.node, epoch: record.epoch, replId: record.replId }), 'utf8');
}

/** Parses a stored value; never throws. */
export function parseServedRecord(value: Buffer): { readonly ok: true; readonly record: ServedRecord } | { readonly ok: false; readonly reason: string } {
  const read = parseFields(value, 'epoch,format,node,replId');
  if (!read.ok) return read;
  const { fields } = read;
  if (fields['format'] !== SERVED_RECORD_FORMAT) return { ok: false, reason: `format is not ${SERVED_RECORD_FORMAT}` };
  const { node, epoch, replId } = fields;
  if (typeof node !== 'string' || typeof epoch !== 'number' || typeof replId !== 'string') {
    return { ok: false, reason: 'node, epoch or replId has the wrong type' };
  }
  const problem = nodeNameProblem(node) ?? epochProblem(epoch) ?? replIdProblem(replId);
  return problem === null ? { ok: true, record: { node, epoch, replId } } : { ok: false, reason: problem };
}
