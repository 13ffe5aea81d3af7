/**
 * The leader key's value: who holds a group's leadership and in which promotion epoch.
 * One JSON object, `{"format":"redis-ha-leader/1","node":"<name>","epoch":<n>}`, so an
 * operator can read it with `etcdctl get`. Pure: encoding and parsing only.
 *
 * The value alone never decides who holds the key: the key is bound to the holder's
 * lease, and every write of it is a transaction that compares the key's revisions (see
 * `transactions.ts`). The epoch in the value is what a takeover compares against, so that
 * a backup acting on a stale view of the holder cannot replace a newer one.
 *
 * Parsing never throws: anything that is not exactly this shape (another program's value,
 * a truncated write, a future format) is refused with a reason, and the caller treats the
 * key as held by someone it cannot name.
 */

/** The format tag; a different tag is refused, not guessed at. */
export const LEADER_RECORD_FORMAT = 'redis-ha-leader/1';
/** Longest node name accepted: `node.name`'s limit (`NODE_NAME_MAX_CHARS` in src/config/schema.ts). */
export const MAX_NODE_NAME_LENGTH = 64;
/** Longest value parsed at all; anything longer is not ours. */
export const MAX_RECORD_BYTES = 1_024;

/** Who holds (or held) a group's leader key. */
export interface LeaderRecord {
  /** The holder's node name. */
  readonly node: string;
  /** The promotion epoch the holder took the key in. */
  readonly epoch: number;
}

/** The outcome of parsing a stored value. */
export type ParsedRecord =
  | { readonly ok: true; readonly record: LeaderRecord }
  | { readonly ok: false; readonly reason: string };

// The same rule as `node.name` in src/config/schema.ts: every configured name can be
// stored, and nothing that could make the value ambiguous in a log line.
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Why `node` cannot be stored, or null when it can. */
export function nodeNameProblem(node: string): string | null {
  if (node.length === 0) return 'node name is empty';
  if (node.length > MAX_NODE_NAME_LENGTH) return `node name is longer than ${MAX_NODE_NAME_LENGTH} characters`;
  if (!NODE_NAME.test(node)) return 'node name is not letters, digits, ".", "_" or "-" starting with a letter or digit';
  return null;
}

/** Why `epoch` cannot be stored, or null when it can. */
export function epochProblem(epoch: number): string | null {
  return Number.isSafeInteger(epoch) && epoch >= 0 ? null : `epoch ${String(epoch)} is not a non-negative safe integer`;
}

/** Encodes a record; throws a RangeError for a name or epoch that could not be parsed back. */
export function encodeLeaderRecord(record: LeaderRecord): Buffer {
  const problem = nodeNameProblem(record.node) ?? epochProblem(record.epoch);
  if (problem !== null) throw new RangeError(`leader record: ${problem}`);
  return Buffer.from(JSON.stringify({ format: LEADER_RECORD_FORMAT, node: record.node, epoch: record.epoch }), 'utf8');
}

/**
 * A stored value's JSON object when it has exactly the fields `expected` (sorted, comma
 * separated), or why not; never throws. Shared by every record kept in etcd.
 */
export function parseFields(value: Buffer, expected: string): { readonly ok: true; readonly fields: Record<string, unknown> } | { readonly ok: false; readonly reason: string } {
  if (value.length > MAX_RECORD_BYTES) return { ok: false, reason: `value is longer than ${MAX_RECORD_BYTES} bytes` };
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    return { ok: false, reason: 'value is not JSON' };
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return { ok: false, reason: 'value is not a JSON object' };
  }
  const fields = parsed as Record<string, unknown>;
  const keys = Object.keys(fields).sort().join(',');
  if (keys !== expected) return { ok: false, reason: `value has fields [${keys}], expected [${expected}]` };
  return { ok: true, fields };
}

/** Parses a stored value; never throws. */
export function parseLeaderRecord(value: Buffer): ParsedRecord {
  const read = parseFields(value, 'epoch,format,node');
  if (!read.ok) return read;
  const { fields } = read;
  if (fields['format'] !== LEADER_RECORD_FORMAT) return { ok: false, reason: `format is not ${LEADER_RECORD_FORMAT}` };
  const node = fields['node'];
  const epoch = fields['epoch'];
  if (typeof node !== 'string') return { ok: false, reason: 'node is not a string' };
  if (typeof epoch !== 'number') return { ok: false, reason: 'epoch is not a number' };
  const problem = nodeNameProblem(node) ?? epochProblem(epoch);
  if (problem !== null) return { ok: false, reason: problem };
  return { ok: true, record: { node, epoch } };
}

/** `node@epoch`, for reasons and logs. */
export function describeRecord(record: LeaderRecord): string {
  return `${record.node}@${record.epoch}`;
}
