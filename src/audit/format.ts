/**
 * One readable line per audit record, for `redis-ha audit tail`:
 *
 *   2026-01-01T00:00:03.120Z redis-a transition BACKUP -> MASTER: peer silent for 3100 ms  epoch=4
 *   2026-01-01T00:05:00.000Z redis-a control-request user alice: switchover -> ok (812 ms)
 *   2026-01-01T00:06:00.000Z redis-b vip-claimed changed=true
 *
 * The time is the record's own UTC ISO 8601 text (the same on every machine, whatever
 * its time zone); the chain fields (`seq`, `prev`, `hash` or `hmac`) are left out (`--json` shows
 * them). Every value is printed with control characters escaped, so a hostile node
 * name or reason cannot drive the operator's terminal.
 */
import { escapeControls } from './chain.js';

/** Longest value printed; longer ones end in "…". */
export const MAX_VALUE_CHARS = 200;

/** Keys never printed as data: the header is printed first, the chain fields not at all. */
const HEADER_KEYS: ReadonlySet<string> = new Set(['seq', 'time', 'node', 'event', 'prev', 'hash', 'hmac']);

/** A bare value needs no quotes: no spaces, quotes, `=` or anything a terminal might act on. */
const BARE = /^[\w.:/@+,-]+$/;

/** What an event's summary printed, and which keys it used up. */
interface Summary {
  readonly text: string;
  readonly used: readonly string[];
  /** Keys not worth a line of their own (shown by `--json`). */
  readonly hidden?: readonly string[];
}

type Fields = Readonly<Record<string, unknown>>;

const SUMMARIES: Readonly<Record<string, (r: Fields) => Summary>> = {
  transition: (r) => ({
    text: `${text(r['from'])} -> ${text(r['to'])}${r['reason'] === undefined ? '' : `: ${text(r['reason'])}`}`,
    used: ['from', 'to', 'reason', 'peer'],
    hidden: ['replId', 'replId2'],
  }),
  'control-request': (r) => {
    const request = first(r, ['request', 'command', 'action', 'type']);
    const outcome = first(r, ['result', 'outcome', 'status']);
    const ok = r['ok'];
    const result = outcome.value !== undefined ? text(outcome.value) : ok === true ? 'ok' : ok === false ? 'failed' : '?';
    const ms = first(r, ['durationMs', 'elapsedMs', 'ms']);
    const user = first(r, ['user', 'uid']);
    return {
      text: `user ${user.value === undefined ? '?' : text(user.value)}: ${request.value === undefined ? '?' : text(request.value)} -> ${result}` +
        `${typeof ms.value === 'number' ? ` (${Math.round(ms.value)} ms)` : ''}`,
      used: [request.key, outcome.key, 'ok', ms.key, user.key].filter((k): k is string => k !== undefined),
    };
  },
  'dual-master-resolved': (r) => ({ text: `winner ${text(r['winner'])}, loser ${text(r['loser'])}`, used: ['winner', 'loser'] }),
  'audit-chain-restarted': (r) => ({ text: text(r['reason']), used: ['reason'] }),
};

/** One line (no newline) for a parsed record. */
export function formatRecordLine(record: Fields): string {
  const event = typeof record['event'] === 'string' ? record['event'] : '?';
  const parts = [formatTime(record['time']), text(record['node'] ?? '?'), text(event)];
  const summary = Object.hasOwn(SUMMARIES, event) ? SUMMARIES[event]!(record) : null;
  const skip = new Set<string>([...HEADER_KEYS, ...(summary?.used ?? []), ...(summary?.hidden ?? [])]);
  if (summary) parts.push(summary.text);
  const pairs = Object.keys(record).filter((k) => !skip.has(k)).map((k) => `${text(k)}=${formatValue(record[k])}`);
  if (event === 'transition' && record['peer'] !== undefined) pairs.push(`peer=${formatPeer(record['peer'])}`);
  return pairs.length > 0 ? `${parts.join(' ')}  ${pairs.join(' ')}` : parts.join(' ');
}

/** The record's time, normalised to UTC ISO 8601 when it parses, else as written. */
function formatTime(time: unknown): string {
  if (typeof time !== 'string') return '?';
  const ms = Date.parse(time);
  return Number.isNaN(ms) ? text(time) : new Date(ms).toISOString();
}

/** One `key=value` value: bare when safe, else quoted JSON; objects as compact JSON; cut at `MAX_VALUE_CHARS`. */
export function formatValue(value: unknown): string {
  if (typeof value === 'string') return truncate(BARE.test(value) ? value : escapeControls(JSON.stringify(value)));
  if (value === undefined) return 'undefined';
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined;
  }
  return truncate(json === undefined ? String(value) : escapeControls(json));
}

function formatPeer(peer: unknown): string {
  if (peer === null || typeof peer !== 'object') return formatValue(peer);
  const p = peer as Fields;
  return typeof p['node'] === 'string' && typeof p['state'] === 'string' ? `${text(p['node'])}/${text(p['state'])}` : formatValue(peer);
}

/** Free text (a reason, a name): control characters escaped, cut at `MAX_VALUE_CHARS`. */
function text(value: unknown): string {
  if (typeof value === 'string') return truncate(escapeControls(value));
  return formatValue(value);
}

function first(r: Fields, keys: readonly string[]): { key: string | undefined; value: unknown } {
  for (const key of keys) if (r[key] !== undefined) return { key, value: r[key] };
  return { key: undefined, value: undefined };
}

function truncate(value: string): string {
  return value.length > MAX_VALUE_CHARS ? `${value.slice(0, MAX_VALUE_CHARS)}…` : value;
}
