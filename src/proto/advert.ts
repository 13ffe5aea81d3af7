/**
 * The advert wire format: a compact, versioned binary packet authenticated with
 * HMAC-SHA256 and a key id, so keys can rotate without a flag day (the first key
 * in the key file signs, every key verifies). Pure: no I/O, no clock.
 *
 * Layout, version 3 (version 2 had no echo field, version 1 no maintenanceGen), all integers big-endian:
 *
 * ```
 *  offset  size  field
 *  ------  ----  -----------------------------------------------------------------
 *       0     2  magic "RH" (0x52 0x48)
 *       2     1  version = 3
 *       3     1  type = 1 (advert)
 *       4     1  groupId
 *       5     1  state: 0 INIT | 1 BACKUP | 2 MASTER | 3 FAULT
 *       6     1  priority (0 = resigning, RFC 5798 §5.2.4)
 *       7     1  flags: bit0 fault | bit1 resigning | bit2 maintenance | bit3 switching over | bit4 holds the VIP
 *                | bit5 cannot take over | bit6 taking over (asking the quorum for the key)
 *                | bit7 recovered recently (an automatic takeover within its recovery block period)
 *       8     2  advertIntervalMs, 1..65535
 *      10     1  redisRole: 0 unknown | 1 master | 2 replica
 *      11     6  bootTimeMs, ms since the Unix epoch (48-bit unsigned)
 *      17     4  seq (u32)
 *      21     4  epoch, the promotion epoch (u32)
 *      25     8  offset (u64, at most 2^53 - 1)
 *      33     8  secondOffset (i64, -1 or 0..2^53 - 1)
 *      41    20  replId, raw bytes of the 40-hex-digit Redis replid; all zero = none
 *      61    20  replId2, likewise
 *      81     4  maintenanceGen: generation of the maintenance flag (u32)
 *      85     6  echoBootTimeMs: the receiver's boot time as the sender last heard it,
 *                0 before it heard one (48-bit unsigned; see `src/proto/admission.ts`)
 *      91     1  n = nodeName length in bytes, 1..64
 *      92     n  nodeName, UTF-8, no control or bidi/format characters
 *    92+n     1  keyId
 *    93+n    32  HMAC-SHA256(secret of keyId, bytes 0 .. 92+n)
 *  ------  ----  -----------------------------------------------------------------
 *                total 125+n bytes: 126..189
 * ```
 *
 * The echo makes every packet fresh for one run of its receiver: a daemon's boot time
 * is new at each start, so nothing recorded before a restart echoes it, and a replay
 * captured before the restart is refused however its sequence compares.
 *
 * The key id sits just before the MAC, so it is found from the end of the datagram
 * without reading any unauthenticated length field. Before the MAC is checked, the
 * decoder looks only at the magic, version and type (they say which layout this is)
 * and the datagram length; every other field is read after authentication.
 *
 * A replid of forty zeros (what Redis reports as `master_replid2` when there is no
 * second history) travels as all-zero bytes and decodes as the empty string.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AdvertKey } from '../config/types.js';
import { EPOCH_CEILING } from '../core/epoch.js';
import type { Advert, AdvertBody, NodeState, RedisRole } from '../core/types.js';
import { errorMessage, RedisHaError } from '../errors.js';

/** "RH": the first two bytes of every advert. */
export const ADVERT_MAGIC = Buffer.from('RH', 'latin1');
/** Wire format version this module reads and writes. */
export const ADVERT_VERSION = 3;
/** Packet type of an advert. Type 2 is a peer message (`src/proto/message.ts`). */
export const ADVERT_TYPE_ADVERT = 1;
/** Bytes of HMAC-SHA256 at the end of every packet. */
export const ADVERT_MAC_BYTES = 32;
/** Raw bytes of a Redis replication id (40 hex digits). */
export const REPL_ID_BYTES = 20;
/** Longest node name, in UTF-8 bytes. */
export const MAX_NODE_NAME_BYTES = 64;
/** Largest boot time a 48-bit field holds (year 10889). */
export const MAX_BOOT_TIME_MS = 2 ** 48 - 1;
/** Largest sequence number (u32); the sender starts a new boot time rather than wrap. */
export const MAX_SEQ = 0xffff_ffff;
/** Largest promotion epoch the u32 wire field holds. */
export const MAX_EPOCH = 0xffff_ffff;
/** Largest advert interval the u16 field holds. */
export const MAX_ADVERT_INTERVAL_MS = 0xffff;

const OFF_MAGIC = 0;
const OFF_VERSION = 2;
const OFF_TYPE = 3;
const OFF_GROUP = 4;
const OFF_STATE = 5;
const OFF_PRIORITY = 6;
const OFF_FLAGS = 7;
const OFF_INTERVAL = 8;
const OFF_ROLE = 10;
const OFF_BOOT_EPOCH = 11;
const BOOT_EPOCH_BYTES = 6;
const OFF_SEQ = 17;
const OFF_EPOCH = 21;
const OFF_OFFSET = 25;
const OFF_SECOND_OFFSET = 33;
const OFF_REPL_ID = 41;
const OFF_REPL_ID2 = 61;
const OFF_MAINTENANCE_GEN = 81;
const OFF_ECHO = 85;
const OFF_NAME_LENGTH = 91;
const OFF_NAME = 92;
/**
 * Bytes at the end of every packet type: key id and MAC. Exported with the helpers
 * below for `src/proto/message.ts`, which shares the preamble and the trailer.
 */
export const PACKET_TRAILER_BYTES = 1 + ADVERT_MAC_BYTES;
const TRAILER_BYTES = PACKET_TRAILER_BYTES;
/** Bytes needed to tell which layout a datagram claims to be (magic, version, type). */
export const PACKET_PREAMBLE_BYTES = 4;

/** Shortest valid advert (a one-byte node name). */
export const MIN_ADVERT_BYTES = OFF_NAME + 1 + TRAILER_BYTES;
/** Longest valid advert (a 64-byte node name); anything larger is rejected unread. */
export const MAX_ADVERT_BYTES = OFF_NAME + MAX_NODE_NAME_BYTES + TRAILER_BYTES;

const FLAG_FAULT = 0b001;
const FLAG_RESIGNING = 0b010;
const FLAG_MAINTENANCE = 0b100;
const FLAG_SWITCHING_OVER = 0b1000;
const FLAG_HOLDS_VIP = 0b1_0000;
const FLAG_CANNOT_TAKE_OVER = 0b10_0000;
const FLAG_TAKING_OVER = 0b100_0000;
const FLAG_RECOVERED_RECENTLY = 0b1000_0000;
const FLAGS_KNOWN = FLAG_FAULT | FLAG_RESIGNING | FLAG_MAINTENANCE | FLAG_SWITCHING_OVER | FLAG_HOLDS_VIP | FLAG_CANNOT_TAKE_OVER |
  FLAG_TAKING_OVER | FLAG_RECOVERED_RECENTLY;

/** Secondary offset meaning "no second history" (Redis `second_repl_offset:-1`). */
const NO_SECOND_OFFSET = -1;
/** 2^32: a u64 is written and read as two u32 halves. */
const U32_SPAN = 2 ** 32;
/** The high word of 2^53 − 1 (`Number.MAX_SAFE_INTEGER`): 2^21 − 1. */
const MAX_SAFE_HIGH_WORD = 2 ** 21 - 1;

const STATES: readonly NodeState[] = ['INIT', 'BACKUP', 'MASTER', 'FAULT'];
const ROLES: readonly RedisRole[] = ['unknown', 'master', 'replica'];

const HEX_REPL_ID = /^[0-9a-fA-F]{40}$/;
// Controls (C0, C1, DEL: category Cc) and format characters (Cf: bidi overrides and
// isolates, zero-width joiners...): names end up in logs, the audit trail and terminals,
// where a right-to-left override would make one name read as another.
const CONTROL_CHARS = /[\p{Cc}\p{Cf}]/u;
const UTF8_STRICT = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Every reason `decodeAdvert` can reject a datagram for. */
export const REJECT_REASONS = [
  'too-short',
  'bad-magic',
  'bad-version',
  'bad-type',
  'bad-length',
  'unknown-key',
  'bad-mac',
  'bad-field',
  'wrong-group',
] as const;

/** Why a datagram was not accepted as an advert. */
export type RejectReason = (typeof REJECT_REASONS)[number];

/** A rejection, as every decoder in `src/proto/` reports it. */
export interface PacketReject {
  readonly ok: false;
  readonly reason: RejectReason;
  readonly detail: string;
}

/** Outcome of `decodeAdvert`: the authenticated advert and the key that verified it, or why not. */
export type DecodeResult =
  | { readonly ok: true; readonly advert: Advert; readonly keyId: number }
  | PacketReject;

/** What the sender fills in around the core's body. */
export interface AdvertEnvelope {
  readonly groupId: number;
  readonly bootTimeMs: number;
  readonly seq: number;
  /** The receiver's boot time as the sender last heard it; 0 when it has heard none. */
  readonly echoBootTimeMs: number;
  readonly body: AdvertBody;
}

/** An advert could not be encoded: a field is out of range (a bug in the caller, not the network). */
export class AdvertEncodeError extends RedisHaError {
  constructor(message: string) {
    super('ADVERT_ENCODE_INVALID', message, { recoverable: true });
  }
}

/**
 * Encodes and signs an advert with `key`, into a new buffer.
 *
 * @throws AdvertEncodeError when a field does not fit its wire field (see the layout
 *   above); nothing is sent half-valid.
 */
export function encodeAdvert(input: AdvertEnvelope, key: AdvertKey): Buffer {
  const name = checkEnvelope(input, key);
  const buf = Buffer.alloc(OFF_NAME + name.bytes + TRAILER_BYTES);
  writeAdvert(buf, input, name.bytes, key);
  return buf;
}

/** Buffers an `AdvertEncoder` keeps for reuse; more in flight at once are allocated afresh. */
const ENCODER_SPARE_BUFFERS = 4;

/**
 * Encodes adverts into reused buffers, for the sender's hot path (one per transport):
 * the same bytes as `encodeAdvert`, without a new buffer, node-name buffer, replid
 * buffers or BigInts per advert, and with the node name checked once while it stays the
 * same. Every byte of a reused buffer is written again, so nothing of an earlier advert
 * survives in it.
 *
 * A buffer returned by `encode` belongs to the caller until it hands it back with
 * `release`: a datagram socket may still be reading it until its send callback runs, so
 * the transport releases it there, never earlier. Until then `encode` never returns that
 * buffer again (it takes another spare, or allocates one).
 */
export class AdvertEncoder {
  private readonly spare: Buffer[] = [];
  /** Each buffer's signed part (all but the MAC): a view made once per buffer, not per advert. */
  private readonly signedViews = new WeakMap<Buffer, Buffer>();
  private checkedName: string | null = null;
  private checkedNameBytes = 0;

  /**
   * Encodes and signs an advert; the buffer is the caller's until `release`.
   *
   * @throws AdvertEncodeError as `encodeAdvert`.
   */
  encode(input: AdvertEnvelope, key: AdvertKey): Buffer {
    checkEnvelopeFields(input, key);
    const nameBytes = this.nameBytes(input.body.nodeName);
    const length = OFF_NAME + nameBytes + TRAILER_BYTES;
    let buf = this.spare.pop();
    // A buffer of another length (the name changed) is dropped, not resized.
    if (buf === undefined || buf.length !== length) buf = Buffer.allocUnsafeSlow(length);
    let signed = this.signedViews.get(buf);
    if (signed === undefined) {
      signed = buf.subarray(0, length - ADVERT_MAC_BYTES);
      this.signedViews.set(buf, signed);
    }
    writeAdvert(buf, input, nameBytes, key, signed);
    return buf;
  }

  /** Hands back a buffer from `encode` once nothing reads it any more (the send completed). */
  release(buf: Buffer): void {
    if (this.spare.length < ENCODER_SPARE_BUFFERS && !this.spare.includes(buf)) this.spare.push(buf);
  }

  /** The node name's length in bytes, checked once per name. */
  private nameBytes(nodeName: string): number {
    if (nodeName !== this.checkedName) {
      const problem = nodeNameProblem(nodeName);
      if (problem !== null) throw new AdvertEncodeError(problem);
      this.checkedName = nodeName;
      this.checkedNameBytes = Buffer.byteLength(nodeName, 'utf8');
    }
    return this.checkedNameBytes;
  }
}

/** Checks every field of an envelope but the node name; throws `AdvertEncodeError`. */
function checkEnvelopeFields(input: AdvertEnvelope, key: AdvertKey): void {
  const { groupId, bootTimeMs, seq, echoBootTimeMs, body } = input;
  checkInt('key id', key.id, 0, 0xff);
  if (key.secret.length === 0) throw new AdvertEncodeError(`key ${key.id} has an empty secret`);
  checkInt('groupId', groupId, 0, 0xff);
  checkInt('bootTimeMs', bootTimeMs, 0, MAX_BOOT_TIME_MS);
  checkInt('seq', seq, 0, MAX_SEQ);
  checkInt('echoBootTimeMs', echoBootTimeMs, 0, MAX_BOOT_TIME_MS);
  checkInt('epoch', body.epoch, 0, MAX_EPOCH);
  checkInt('maintenanceGen', body.maintenanceGen ?? 0, 0, MAX_EPOCH);
  checkInt('priority', body.priority, 0, 0xff);
  checkInt('advertIntervalMs', body.advertIntervalMs, 1, MAX_ADVERT_INTERVAL_MS);
  checkInt('redis.offset', body.redis.offset, 0, Number.MAX_SAFE_INTEGER);
  if (body.redis.secondOffset !== NO_SECOND_OFFSET) {
    checkInt('redis.secondOffset', body.redis.secondOffset, 0, Number.MAX_SAFE_INTEGER);
  }
  if (STATES.indexOf(body.state) < 0) throw new AdvertEncodeError(`unknown state ${String(body.state)}`);
  if (ROLES.indexOf(body.redis.role) < 0) throw new AdvertEncodeError(`unknown redis role ${String(body.redis.role)}`);
  checkReplId('redis.replId', body.redis.replId);
  checkReplId('redis.replId2', body.redis.replId2);
}

/** Checks an envelope (node name included); returns the name's length in bytes. */
function checkEnvelope(input: AdvertEnvelope, key: AdvertKey): { readonly bytes: number } {
  checkEnvelopeFields(input, key);
  const problem = nodeNameProblem(input.body.nodeName);
  if (problem !== null) throw new AdvertEncodeError(problem);
  return { bytes: Buffer.byteLength(input.body.nodeName, 'utf8') };
}

/**
 * Writes every byte of a checked advert into `buf` (exactly `OFF_NAME + nameBytes +
 * TRAILER_BYTES` long) and signs it. Integers wider than 32 bits are written as two
 * halves (no BigInt); the hex replids and the name are written straight into place.
 */
function writeAdvert(buf: Buffer, input: AdvertEnvelope, nameBytes: number, key: AdvertKey, signed?: Buffer): void {
  const { groupId, bootTimeMs, seq, echoBootTimeMs, body } = input;
  buf[OFF_MAGIC] = ADVERT_MAGIC[0] as number;
  buf[OFF_MAGIC + 1] = ADVERT_MAGIC[1] as number;
  buf.writeUInt8(ADVERT_VERSION, OFF_VERSION);
  buf.writeUInt8(ADVERT_TYPE_ADVERT, OFF_TYPE);
  buf.writeUInt8(groupId, OFF_GROUP);
  buf.writeUInt8(STATES.indexOf(body.state), OFF_STATE);
  buf.writeUInt8(body.priority, OFF_PRIORITY);
  buf.writeUInt8(
    (body.flags.fault ? FLAG_FAULT : 0) |
      (body.flags.resigning ? FLAG_RESIGNING : 0) |
      (body.flags.maintenance ? FLAG_MAINTENANCE : 0) |
      (body.flags.switchingOver ? FLAG_SWITCHING_OVER : 0) |
      (body.flags.holdsVip ? FLAG_HOLDS_VIP : 0) |
      (body.flags.cannotTakeOver === true ? FLAG_CANNOT_TAKE_OVER : 0) |
      (body.flags.takingOver === true ? FLAG_TAKING_OVER : 0) |
      (body.flags.recoveredRecently === true ? FLAG_RECOVERED_RECENTLY : 0),
    OFF_FLAGS,
  );
  buf.writeUInt16BE(body.advertIntervalMs, OFF_INTERVAL);
  buf.writeUInt8(ROLES.indexOf(body.redis.role), OFF_ROLE);
  buf.writeUIntBE(bootTimeMs, OFF_BOOT_EPOCH, BOOT_EPOCH_BYTES);
  buf.writeUInt32BE(seq, OFF_SEQ);
  buf.writeUInt32BE(body.epoch, OFF_EPOCH);
  writeU64(buf, body.redis.offset, OFF_OFFSET);
  if (body.redis.secondOffset === NO_SECOND_OFFSET) buf.fill(0xff, OFF_SECOND_OFFSET, OFF_SECOND_OFFSET + 8);
  else writeU64(buf, body.redis.secondOffset, OFF_SECOND_OFFSET);
  writeReplId(buf, body.redis.replId, OFF_REPL_ID);
  writeReplId(buf, body.redis.replId2, OFF_REPL_ID2);
  buf.writeUInt32BE(body.maintenanceGen ?? 0, OFF_MAINTENANCE_GEN);
  buf.writeUIntBE(echoBootTimeMs, OFF_ECHO, BOOT_EPOCH_BYTES);
  buf.writeUInt8(nameBytes, OFF_NAME_LENGTH);
  buf.write(body.nodeName, OFF_NAME, nameBytes, 'utf8');
  signPacket(buf, key, signed);
}

/** A non-negative safe integer as a big-endian u64, in two u32 halves. */
function writeU64(buf: Buffer, value: number, offset: number): void {
  buf.writeUInt32BE(Math.floor(value / U32_SPAN), offset);
  buf.writeUInt32BE(value % U32_SPAN, offset + 4);
}

/** A checked replid (40 hex digits, or "" for all zero bytes) written in place. */
function writeReplId(buf: Buffer, replId: string, offset: number): void {
  if (replId === '') buf.fill(0, offset, offset + REPL_ID_BYTES);
  else buf.write(replId, offset, REPL_ID_BYTES, 'hex');
}

/**
 * Decodes and authenticates a datagram. Never throws: every way a datagram can be
 * wrong comes back as a `RejectReason` with a human-readable detail.
 *
 * Order of checks: preamble (magic, version, type) and length; key id and MAC
 * (constant-time compare); then the fields; the group last, so a foreign group's
 * adverts are reported as such only when they are genuinely signed with our key.
 *
 * @param keys verification keys; the one whose `id` matches the packet's key id is used,
 *   wherever it sits in the list (key rotation).
 * @param groupId the group this node belongs to.
 */
export function decodeAdvert(buf: Buffer, keys: readonly AdvertKey[], groupId: number): DecodeResult {
  try {
    return decodeUnsafe(buf, keys, groupId);
  } catch (err) {
    // Unreachable by construction (every read is bounds-checked first); kept so a
    // future mistake costs one dropped datagram rather than the receive loop.
    return reject('bad-field', `decoder error: ${errorMessage(err)}`);
  }
}

function decodeUnsafe(buf: Buffer, keys: readonly AdvertKey[], groupId: number): DecodeResult {
  const length = buf.length;
  const badPreamble = checkPreamble(buf, ADVERT_TYPE_ADVERT);
  if (badPreamble !== null) return badPreamble;
  if (length < MIN_ADVERT_BYTES) return reject('too-short', `${length} bytes, at least ${MIN_ADVERT_BYTES} needed`);
  if (length > MAX_ADVERT_BYTES) return reject('bad-length', `${length} bytes, at most ${MAX_ADVERT_BYTES} allowed`);

  const verified = verifyPacketMac(buf, keys);
  if (!verified.ok) return verified;
  const { keyId, keyIdAt } = verified;

  // Authenticated from here on: the sender holds the key, so a bad field is a bug or a
  // version skew on their side, not noise.
  const nameLength = buf.readUInt8(OFF_NAME_LENGTH);
  if (nameLength < 1 || nameLength > MAX_NODE_NAME_BYTES) {
    return reject('bad-length', `node name length ${nameLength}, expected 1..${MAX_NODE_NAME_BYTES}`);
  }
  if (OFF_NAME + nameLength !== keyIdAt) {
    return reject('bad-length', `node name length ${nameLength} does not match datagram length ${length}`);
  }
  const name = decodeNodeName(buf.subarray(OFF_NAME, OFF_NAME + nameLength));
  if (!name.ok) return name;
  const { nodeName } = name;

  const state = STATES[buf.readUInt8(OFF_STATE)];
  if (state === undefined) return reject('bad-field', `state ${buf.readUInt8(OFF_STATE)}`);
  const flags = buf.readUInt8(OFF_FLAGS);
  if ((flags & ~FLAGS_KNOWN) !== 0) return reject('bad-field', `unknown flag bits 0x${flags.toString(16)}`);
  const advertIntervalMs = buf.readUInt16BE(OFF_INTERVAL);
  if (advertIntervalMs === 0) return reject('bad-field', 'advert interval 0');
  const role = ROLES[buf.readUInt8(OFF_ROLE)];
  if (role === undefined) return reject('bad-field', `redis role ${buf.readUInt8(OFF_ROLE)}`);
  const offset = readSafeU64(buf, OFF_OFFSET);
  if (offset === null) return reject('bad-field', `offset ${buf.readBigUInt64BE(OFF_OFFSET)} exceeds 2^53 - 1`);
  const secondOffset = isAllOnes(buf, OFF_SECOND_OFFSET, 8) ? NO_SECOND_OFFSET : readSafeU64(buf, OFF_SECOND_OFFSET);
  if (secondOffset === null) return reject('bad-field', `second offset ${buf.readBigInt64BE(OFF_SECOND_OFFSET)} out of range`);

  const epoch = buf.readUInt32BE(OFF_EPOCH);
  if (epoch > EPOCH_CEILING) return reject('bad-field', `epoch ${epoch} above the ceiling ${EPOCH_CEILING}`);
  const maintenanceGen = buf.readUInt32BE(OFF_MAINTENANCE_GEN);
  if (maintenanceGen > EPOCH_CEILING) return reject('bad-field', `maintenance generation ${maintenanceGen} above the ceiling ${EPOCH_CEILING}`);

  const group = buf.readUInt8(OFF_GROUP);
  if (group !== groupId) return reject('wrong-group', `group ${group}, expected ${groupId}`);

  const advert: Advert = {
    groupId: group,
    nodeName,
    state,
    priority: buf.readUInt8(OFF_PRIORITY),
    advertIntervalMs,
    bootTimeMs: buf.readUIntBE(OFF_BOOT_EPOCH, BOOT_EPOCH_BYTES),
    seq: buf.readUInt32BE(OFF_SEQ),
    echoBootTimeMs: buf.readUIntBE(OFF_ECHO, BOOT_EPOCH_BYTES),
    epoch,
    maintenanceGen,
    flags: {
      fault: (flags & FLAG_FAULT) !== 0,
      resigning: (flags & FLAG_RESIGNING) !== 0,
      maintenance: (flags & FLAG_MAINTENANCE) !== 0,
      switchingOver: (flags & FLAG_SWITCHING_OVER) !== 0,
      holdsVip: (flags & FLAG_HOLDS_VIP) !== 0,
      cannotTakeOver: (flags & FLAG_CANNOT_TAKE_OVER) !== 0,
      takingOver: (flags & FLAG_TAKING_OVER) !== 0,
      recoveredRecently: (flags & FLAG_RECOVERED_RECENTLY) !== 0,
    },
    redis: {
      role,
      replId: decodeReplId(buf, OFF_REPL_ID),
      replId2: decodeReplId(buf, OFF_REPL_ID2),
      offset,
      secondOffset,
    },
  };
  return { ok: true, advert, keyId };
}

/**
 * Checks the preamble every packet type shares: the length to hold it, the magic,
 * the version, and that the type is `expectedType`. Reads nothing else.
 *
 * @returns null when the preamble announces `expectedType`, else why not.
 */
export function checkPreamble(buf: Buffer, expectedType: number): PacketReject | null {
  const length = buf.length;
  if (length < PACKET_PREAMBLE_BYTES) return reject('too-short', `${length} bytes`);
  if (buf[OFF_MAGIC] !== ADVERT_MAGIC[0] || buf[OFF_MAGIC + 1] !== ADVERT_MAGIC[1]) {
    return reject('bad-magic', `starts with 0x${buf.subarray(0, 2).toString('hex')}`);
  }
  const version = buf.readUInt8(OFF_VERSION);
  if (version !== ADVERT_VERSION) return reject('bad-version', `version ${version}, expected ${ADVERT_VERSION}`);
  const type = buf.readUInt8(OFF_TYPE);
  if (type !== expectedType) return reject('bad-type', `type ${type}, expected ${expectedType}`);
  return null;
}

/**
 * Authenticates a packet by its trailer: the key id just before the MAC (found from
 * the end, so no unauthenticated length field is read) selects the key, and the MAC
 * over every byte before it is compared in constant time.
 *
 * The caller must have checked that `buf` holds more than `PACKET_TRAILER_BYTES`.
 */
export function verifyPacketMac(
  buf: Buffer,
  keys: readonly AdvertKey[],
): { readonly ok: true; readonly keyId: number; readonly keyIdAt: number } | PacketReject {
  const keyIdAt = buf.length - TRAILER_BYTES;
  const keyId = buf.readUInt8(keyIdAt);
  // An empty secret would let anyone sign; treat it as no key at all.
  const key = keys.find((k) => k.id === keyId && k.secret.length > 0);
  if (key === undefined) return reject('unknown-key', `key id ${keyId}`);
  const expected = mac(key.secret, buf.subarray(0, keyIdAt + 1));
  const actual = buf.subarray(keyIdAt + 1);
  if (!timingSafeEqual(expected, actual)) return reject('bad-mac', `MAC does not verify with key ${keyId}`);
  return { ok: true, keyId, keyIdAt };
}

/**
 * Fills in the trailer of a packet whose last `PACKET_TRAILER_BYTES` are reserved:
 * `key.id`, then the MAC over everything before the MAC. The caller validates the key;
 * `signed` is that part of `buf` when the caller keeps a view of it (`AdvertEncoder`).
 */
export function signPacket(buf: Buffer, key: AdvertKey, signed: Buffer = buf.subarray(0, buf.length - ADVERT_MAC_BYTES)): void {
  const keyIdAt = buf.length - TRAILER_BYTES;
  buf.writeUInt8(key.id, keyIdAt);
  mac(key.secret, signed).copy(buf, keyIdAt + 1);
}

/** Decodes an authenticated node name: strict UTF-8, no control characters. */
export function decodeNodeName(raw: Buffer): { readonly ok: true; readonly nodeName: string } | PacketReject {
  let nodeName: string;
  try {
    nodeName = UTF8_STRICT.decode(raw);
  } catch {
    return reject('bad-field', 'node name is not valid UTF-8');
  }
  if (CONTROL_CHARS.test(nodeName)) return reject('bad-field', 'node name contains control or format characters');
  return { ok: true, nodeName };
}

/** Why `name` cannot travel as a node name (1..64 UTF-8 bytes, well-formed, no control or format characters), or null. */
export function nodeNameProblem(name: string): string | null {
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes < 1 || bytes > MAX_NODE_NAME_BYTES) return `node name is ${bytes} bytes, expected 1..${MAX_NODE_NAME_BYTES}`;
  // Lone surrogates would be replaced by U+FFFD and the peer would see another name.
  if (Buffer.from(name, 'utf8').toString('utf8') !== name) return 'node name is not well-formed Unicode';
  if (CONTROL_CHARS.test(name)) return 'node name contains control or format characters (Unicode Cc, Cf)';
  return null;
}

function reject(reason: RejectReason, detail: string): PacketReject {
  return { ok: false, reason, detail };
}

/**
 * One `Hmac` and one digest per packet: node:crypto has no cheaper HMAC. A `KeyObject` made
 * once per key, and copying hashes of the padded key (ipad/opad), were measured no faster
 * (`tools/bench/advert-hot-path.ts`; the latter allocates more).
 */
function mac(secret: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', secret).update(data).digest();
}

function checkInt(field: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new AdvertEncodeError(`${field} ${String(value)} is not an integer in ${min}..${max}`);
  }
}

function checkReplId(field: string, replId: string): void {
  if (replId !== '' && !HEX_REPL_ID.test(replId)) throw new AdvertEncodeError(`${field} is not 40 hex digits or empty`);
}

/** A replid read in place: all zero bytes decode as "" (no second history). */
function decodeReplId(buf: Buffer, offset: number): string {
  for (let i = offset; i < offset + REPL_ID_BYTES; i++) {
    if (buf[i] !== 0) return buf.toString('hex', offset, offset + REPL_ID_BYTES);
  }
  return '';
}

/** A big-endian u64 read as two u32 halves, or `null` above 2^53 − 1. */
function readSafeU64(buf: Buffer, offset: number): number | null {
  const high = buf.readUInt32BE(offset);
  if (high > MAX_SAFE_HIGH_WORD) return null;
  return high * U32_SPAN + buf.readUInt32BE(offset + 4);
}

function isAllOnes(buf: Buffer, offset: number, length: number): boolean {
  for (let i = offset; i < offset + length; i++) if (buf[i] !== 0xff) return false;
  return true;
}
