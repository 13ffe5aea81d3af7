/**
 * Peer messages: the few requests the two daemons exchange for a planned switchover
 * (the replica's daemon asks the master's to hand over; the master's tells the
 * replica's to take the master role now; the outcome goes back). They travel on the
 * advert channel with the advert's preamble, key id and HMAC-SHA256 trailer, and
 * their `(bootTimeMs, seq)` comes from the same counter as the sender's adverts, so
 * one `ReplayGuard` per sender covers both. Pure: no I/O, no clock.
 *
 * Layout, version 3 (the advert's version byte), packet type 2, all integers big-endian:
 *
 * ```
 *  offset  size  field
 *  ------  ----  -----------------------------------------------------------------
 *       0     2  magic "RH" (0x52 0x48)
 *       2     1  version = 3
 *       3     1  type = 2 (message)
 *       4     1  groupId
 *       5     6  bootTimeMs, ms since the Unix epoch (48-bit unsigned)
 *      11     4  seq (u32), shared with the sender's adverts
 *      15     6  echoBootTimeMs: the receiver's boot time as the sender last heard it (0: none)
 *      21     1  n = nodeName length in bytes, 1..64
 *      22     n  nodeName, UTF-8, no control or format characters
 *    22+n     2  p = payload length in bytes, 2..1024
 *    24+n     p  payload: one `PeerMessage` as a UTF-8 JSON object
 *  24+n+p     1  keyId
 *  25+n+p    32  HMAC-SHA256(secret of keyId, bytes 0 .. 24+n+p)
 *  ------  ----  -----------------------------------------------------------------
 *                total 57+n+p bytes: 60..1145
 * ```
 *
 * The largest message plus IP and UDP headers stays under the IPv6 minimum MTU
 * (1280), so a message is never fragmented.
 *
 * As for adverts, nothing but the preamble (magic, version, type) and the datagram
 * length is read before the MAC verifies; the name length, payload length and
 * payload are read after. The payload is then validated strictly: a known `kind`,
 * exactly that kind's keys, every value in range. A sender holding the key that
 * sends anything else has a bug or a version skew, and the message is refused as
 * `bad-payload` rather than half-understood.
 */
import type { AdvertKey } from '../config/types.js';
import { EPOCH_CEILING } from '../core/epoch.js';
import { MAX_SWITCHOVER_TIMEOUT_MS } from '../core/timing.js';
import type { PeerRequest } from '../core/types.js';
import { errorMessage, RedisHaError } from '../errors.js';
import {
  ADVERT_MAGIC,
  ADVERT_TYPE_ADVERT,
  ADVERT_VERSION,
  MAX_BOOT_TIME_MS,
  MAX_NODE_NAME_BYTES,
  MAX_SEQ,
  PACKET_PREAMBLE_BYTES,
  PACKET_TRAILER_BYTES,
  REJECT_REASONS,
  checkPreamble,
  decodeNodeName,
  nodeNameProblem,
  signPacket,
  verifyPacketMac,
} from './advert.js';

/** Packet type of a peer message (adverts are `ADVERT_TYPE_ADVERT` = 1). */
export const PACKET_TYPE_MESSAGE = 2;
/** Smallest payload: `{}` would be two bytes (and is still refused: it has no kind). */
export const MIN_MESSAGE_PAYLOAD_BYTES = 2;
/** Largest payload, in UTF-8 bytes; keeps every message in one unfragmented datagram. */
export const MAX_MESSAGE_PAYLOAD_BYTES = 1024;
/** A request id: what the operator and both audit logs use to follow one switchover. */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._-]{1,64}$/;
/** Longest `user` of a switchover request, in code points. */
export const MAX_USER_CHARS = 256;
/** Longest `detail` of a switchover result, in code points. */
export const MAX_DETAIL_CHARS = 512;

const OFF_GROUP = 4;
const OFF_BOOT_EPOCH = 5;
const BOOT_EPOCH_BYTES = 6;
const OFF_SEQ = 11;
const OFF_ECHO = 15;
const OFF_NAME_LENGTH = 21;
const OFF_NAME = 22;
const PAYLOAD_LENGTH_BYTES = 2;

/** Shortest valid message (a one-byte node name, a two-byte payload). */
export const MIN_MESSAGE_BYTES = OFF_NAME + 1 + PAYLOAD_LENGTH_BYTES + MIN_MESSAGE_PAYLOAD_BYTES + PACKET_TRAILER_BYTES;
/** Longest valid message; anything larger is rejected unread. */
export const MAX_MESSAGE_BYTES =
  OFF_NAME + MAX_NODE_NAME_BYTES + PAYLOAD_LENGTH_BYTES + MAX_MESSAGE_PAYLOAD_BYTES + PACKET_TRAILER_BYTES;

// Every C0 and C1 control and DEL (Unicode category Cc), and lone surrogates (Cs):
// user and detail end up in logs and the audit trail.
const CONTROL_CHARS = /\p{Cc}/u;
const LONE_SURROGATE = /\p{Cs}/u;
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** How much of a bad value a reject detail quotes. */
const SHOW_CHARS = 40;

/** A request between the two daemons of a pair (the core's vocabulary, `PeerRequest`). */
export type PeerMessage = PeerRequest;

/** The kinds of `PeerMessage`. */
export type PeerMessageKind = PeerMessage['kind'];

/** An authenticated peer message and who sent it. */
export interface ReceivedMessage {
  readonly groupId: number;
  readonly nodeName: string;
  readonly bootTimeMs: number;
  readonly seq: number;
  /** The receiver's boot time as the sender last heard it (0: none yet). */
  readonly echoBootTimeMs: number;
  readonly message: PeerMessage;
}

/** What the sender puts around a `PeerMessage`. */
export interface MessageEnvelope {
  readonly groupId: number;
  readonly nodeName: string;
  readonly bootTimeMs: number;
  readonly seq: number;
  /** The receiver's boot time as the sender last heard it (0: none yet). */
  readonly echoBootTimeMs: number;
  readonly message: PeerMessage;
}

/** Every reason `decodeMessage` can reject a datagram for: the advert's, and a bad payload. */
export const MESSAGE_REJECT_REASONS = [...REJECT_REASONS, 'bad-payload'] as const;

/** Why a datagram was not accepted as a peer message. */
export type MessageRejectReason = (typeof MESSAGE_REJECT_REASONS)[number];

/** Outcome of `decodeMessage`. */
export type MessageDecodeResult =
  | { readonly ok: true; readonly message: ReceivedMessage }
  | { readonly ok: false; readonly reason: MessageRejectReason; readonly detail: string };

/** A message could not be encoded: a field is out of range (a bug in the caller, not the network). */
export class MessageEncodeError extends RedisHaError {
  constructor(message: string) {
    super('MESSAGE_ENCODE_INVALID', message, { recoverable: true });
  }
}

/**
 * Which layout a datagram claims to be, from its preamble alone (magic, version,
 * type); nothing is authenticated yet. `null` for anything else, which the caller
 * hands to `decodeAdvert` to get the precise reject reason.
 */
export function packetType(buf: Buffer): typeof ADVERT_TYPE_ADVERT | typeof PACKET_TYPE_MESSAGE | null {
  if (buf.length < PACKET_PREAMBLE_BYTES) return null;
  if (buf[0] !== ADVERT_MAGIC[0] || buf[1] !== ADVERT_MAGIC[1] || buf[2] !== ADVERT_VERSION) return null;
  const type = buf[3];
  if (type === ADVERT_TYPE_ADVERT) return ADVERT_TYPE_ADVERT;
  if (type === PACKET_TYPE_MESSAGE) return PACKET_TYPE_MESSAGE;
  return null;
}

/**
 * Encodes and signs a peer message with `key`. The payload is validated with the
 * same rules the receiver applies, so nothing the peer would refuse is sent.
 *
 * @throws MessageEncodeError when a field does not fit (see the layout above).
 */
export function encodeMessage(input: MessageEnvelope, key: AdvertKey): Buffer {
  const { groupId, nodeName, bootTimeMs, seq, echoBootTimeMs } = input;
  checkInt('key id', key.id, 0, 0xff);
  if (key.secret.length === 0) throw new MessageEncodeError(`key ${key.id} has an empty secret`);
  checkInt('groupId', groupId, 0, 0xff);
  checkInt('bootTimeMs', bootTimeMs, 0, MAX_BOOT_TIME_MS);
  checkInt('seq', seq, 0, MAX_SEQ);
  checkInt('echoBootTimeMs', echoBootTimeMs, 0, MAX_BOOT_TIME_MS);
  const nameProblem = nodeNameProblem(nodeName);
  if (nameProblem !== null) throw new MessageEncodeError(nameProblem);
  const parsed = toPeerMessage(input.message);
  if (!parsed.ok) throw new MessageEncodeError(parsed.problem);
  // Serialise the canonical copy: fixed key order, and nothing the caller attached.
  const payload = Buffer.from(JSON.stringify(parsed.message), 'utf8');
  if (payload.length < MIN_MESSAGE_PAYLOAD_BYTES || payload.length > MAX_MESSAGE_PAYLOAD_BYTES) {
    throw new MessageEncodeError(
      `payload is ${payload.length} bytes, expected ${MIN_MESSAGE_PAYLOAD_BYTES}..${MAX_MESSAGE_PAYLOAD_BYTES}`,
    );
  }
  const name = Buffer.from(nodeName, 'utf8');

  const payloadAt = OFF_NAME + name.length + PAYLOAD_LENGTH_BYTES;
  const buf = Buffer.alloc(payloadAt + payload.length + PACKET_TRAILER_BYTES);
  ADVERT_MAGIC.copy(buf, 0);
  buf.writeUInt8(ADVERT_VERSION, 2);
  buf.writeUInt8(PACKET_TYPE_MESSAGE, 3);
  buf.writeUInt8(groupId, OFF_GROUP);
  buf.writeUIntBE(bootTimeMs, OFF_BOOT_EPOCH, BOOT_EPOCH_BYTES);
  buf.writeUInt32BE(seq, OFF_SEQ);
  buf.writeUIntBE(echoBootTimeMs, OFF_ECHO, BOOT_EPOCH_BYTES);
  buf.writeUInt8(name.length, OFF_NAME_LENGTH);
  name.copy(buf, OFF_NAME);
  buf.writeUInt16BE(payload.length, OFF_NAME + name.length);
  payload.copy(buf, payloadAt);
  signPacket(buf, key);
  return buf;
}

/**
 * Decodes and authenticates a peer message. Never throws: every way a datagram can
 * be wrong comes back as a reason with a human-readable detail.
 *
 * Order of checks, as for adverts: preamble and length; key id and MAC; then the
 * lengths, the node name and the payload; the group last, so a foreign group's
 * messages are reported as such only when they are genuinely signed with our key.
 *
 * @param keys verification keys; the one whose `id` matches the packet's key id is used.
 * @param groupId the group this node belongs to.
 */
export function decodeMessage(buf: Buffer, keys: readonly AdvertKey[], groupId: number): MessageDecodeResult {
  try {
    return decodeUnsafe(buf, keys, groupId);
  } catch (err) {
    // Unreachable by construction (every read is bounds-checked first); kept so a
    // future mistake costs one dropped datagram rather than the receive loop.
    return reject('bad-field', `decoder error: ${errorMessage(err)}`);
  }
}

function decodeUnsafe(buf: Buffer, keys: readonly AdvertKey[], groupId: number): MessageDecodeResult {
  const length = buf.length;
  const badPreamble = checkPreamble(buf, PACKET_TYPE_MESSAGE);
  if (badPreamble !== null) return badPreamble;
  if (length < MIN_MESSAGE_BYTES) return reject('too-short', `${length} bytes, at least ${MIN_MESSAGE_BYTES} needed`);
  if (length > MAX_MESSAGE_BYTES) return reject('bad-length', `${length} bytes, at most ${MAX_MESSAGE_BYTES} allowed`);

  const verified = verifyPacketMac(buf, keys);
  if (!verified.ok) return verified;
  const { keyIdAt } = verified;

  // Authenticated from here on.
  const nameLength = buf.readUInt8(OFF_NAME_LENGTH);
  if (nameLength < 1 || nameLength > MAX_NODE_NAME_BYTES) {
    return reject('bad-length', `node name length ${nameLength}, expected 1..${MAX_NODE_NAME_BYTES}`);
  }
  const payloadLengthAt = OFF_NAME + nameLength;
  if (payloadLengthAt + PAYLOAD_LENGTH_BYTES > keyIdAt) {
    return reject('bad-length', `node name length ${nameLength} leaves no room for the payload in ${length} bytes`);
  }
  const payloadLength = buf.readUInt16BE(payloadLengthAt);
  if (payloadLength < MIN_MESSAGE_PAYLOAD_BYTES || payloadLength > MAX_MESSAGE_PAYLOAD_BYTES) {
    return reject(
      'bad-length',
      `payload length ${payloadLength}, expected ${MIN_MESSAGE_PAYLOAD_BYTES}..${MAX_MESSAGE_PAYLOAD_BYTES}`,
    );
  }
  const payloadAt = payloadLengthAt + PAYLOAD_LENGTH_BYTES;
  if (payloadAt + payloadLength !== keyIdAt) {
    return reject(
      'bad-length',
      `node name length ${nameLength} and payload length ${payloadLength} do not match datagram length ${length}`,
    );
  }
  const name = decodeNodeName(buf.subarray(OFF_NAME, payloadLengthAt));
  if (!name.ok) return name;

  let text: string;
  try {
    text = UTF8_STRICT.decode(buf.subarray(payloadAt, keyIdAt));
  } catch {
    return reject('bad-payload', 'payload is not valid UTF-8');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return reject('bad-payload', `payload is not JSON: ${errorMessage(err)}`);
  }
  const parsed = toPeerMessage(json);
  if (!parsed.ok) return reject('bad-payload', parsed.problem);

  const group = buf.readUInt8(OFF_GROUP);
  if (group !== groupId) return reject('wrong-group', `group ${group}, expected ${groupId}`);

  return {
    ok: true,
    message: {
      groupId: group,
      nodeName: name.nodeName,
      bootTimeMs: buf.readUIntBE(OFF_BOOT_EPOCH, BOOT_EPOCH_BYTES),
      seq: buf.readUInt32BE(OFF_SEQ),
      echoBootTimeMs: buf.readUIntBE(OFF_ECHO, BOOT_EPOCH_BYTES),
      message: parsed.message,
    },
  };
}

/** The keys each kind carries, in the order they are serialised. */
const KEYS_BY_KIND: { readonly [K in PeerMessageKind]: readonly string[] } = {
  'switchover-request': ['kind', 'requestId', 'timeoutMs', 'force', 'user'],
  'switchover-result': ['kind', 'requestId', 'ok', 'detail'],
  handover: ['kind', 'requestId', 'epoch', 'force'],
  'advert-request': ['kind', 'requestId'],
};

type Parsed = { readonly ok: true; readonly message: PeerMessage } | { readonly ok: false; readonly problem: string };

/**
 * Validates an untrusted value as a `PeerMessage` and returns a fresh canonical copy
 * (keys in `KEYS_BY_KIND` order), or the first problem found.
 */
function toPeerMessage(value: unknown): Parsed {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return problem('payload is not a JSON object');
  }
  const record = value as Record<string, unknown>;
  const kind = record['kind'];
  if (typeof kind !== 'string' || !Object.hasOwn(KEYS_BY_KIND, kind)) {
    return problem(`unknown message kind ${show(kind)}`);
  }
  const allowed = KEYS_BY_KIND[kind as PeerMessageKind];
  // Object.keys lists an own "__proto__" from JSON.parse too, so it counts as extra.
  const extra = Object.keys(record).filter((k) => !allowed.includes(k));
  if (extra.length > 0) return problem(`${kind}: unexpected keys ${extra.map((k) => JSON.stringify(k)).join(', ')}`);

  const requestId = record['requestId'];
  if (typeof requestId !== 'string' || !REQUEST_ID_PATTERN.test(requestId)) {
    return problem(`${kind}: requestId ${show(requestId)} does not match ${String(REQUEST_ID_PATTERN)}`);
  }
  switch (kind as PeerMessageKind) {
    case 'switchover-request': {
      const timeoutMs = record['timeoutMs'];
      if (!isIntIn(timeoutMs, 1, MAX_SWITCHOVER_TIMEOUT_MS)) {
        return problem(`${kind}: timeoutMs ${show(timeoutMs)} is not an integer in 1..${MAX_SWITCHOVER_TIMEOUT_MS}`);
      }
      const force = record['force'];
      if (typeof force !== 'boolean') return problem(`${kind}: force ${show(force)} is not a boolean`);
      const user = record['user'];
      const userProblem = textProblem(user, MAX_USER_CHARS);
      if (userProblem !== null) return problem(`${kind}: user ${userProblem}`);
      return { ok: true, message: { kind: 'switchover-request', requestId, timeoutMs, force, user: user as string } };
    }
    case 'switchover-result': {
      const ok = record['ok'];
      if (typeof ok !== 'boolean') return problem(`${kind}: ok ${show(ok)} is not a boolean`);
      const detail = record['detail'];
      const detailProblem = textProblem(detail, MAX_DETAIL_CHARS);
      if (detailProblem !== null) return problem(`${kind}: detail ${detailProblem}`);
      return { ok: true, message: { kind: 'switchover-result', requestId, ok, detail: detail as string } };
    }
    case 'handover': {
      const epoch = record['epoch'];
      if (!isIntIn(epoch, 0, EPOCH_CEILING)) {
        return problem(`${kind}: epoch ${show(epoch)} is not an integer in 0..${EPOCH_CEILING}`);
      }
      const force = record['force'];
      if (typeof force !== 'boolean') return problem(`${kind}: force ${show(force)} is not a boolean`);
      return { ok: true, message: { kind: 'handover', requestId, epoch, force } };
    }
    case 'advert-request':
      return { ok: true, message: { kind: 'advert-request', requestId } };
  }
}

function isIntIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** Why `value` is not a loggable string of at most `maxChars` code points, or null. */
function textProblem(value: unknown, maxChars: number): string | null {
  if (typeof value !== 'string') return `${show(value)} is not a string`;
  if (LONE_SURROGATE.test(value)) return 'is not well-formed Unicode';
  const chars = [...value].length;
  if (chars > maxChars) return `is ${chars} characters, at most ${maxChars} allowed`;
  if (CONTROL_CHARS.test(value)) return 'contains control characters';
  return null;
}

/** A short rendering of an untrusted value for a reject detail (pino escapes it again). */
function show(value: unknown): string {
  if (value === undefined) return 'missing';
  let json: string;
  try {
    json = JSON.stringify(value) ?? typeof value;
  } catch {
    // A bigint or a cycle, from a caller of encodeMessage.
    return typeof value;
  }
  const chars = [...json];
  return chars.length > SHOW_CHARS ? `${chars.slice(0, SHOW_CHARS).join('')}...` : json;
}

function problem(text: string): Parsed {
  return { ok: false, problem: text };
}

function reject(reason: MessageRejectReason, detail: string): MessageDecodeResult {
  return { ok: false, reason, detail };
}

function checkInt(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new MessageEncodeError(`${field} ${String(value)} is not an integer in ${min}..${max}`);
  }
}
