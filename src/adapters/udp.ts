/**
 * The advert transport: one UDP socket that sends this node's adverts to the peer
 * (unicast, or a multicast group) and turns received datagrams into authenticated,
 * non-replayed, fresh `Advert`s for the runtime. Decoding lives in `src/proto/advert.ts`,
 * replay protection and freshness in `src/proto/admission.ts`; this file only does the
 * socket work, counting and logging.
 *
 * The same socket carries peer messages (`src/proto/message.ts`, the switchover
 * requests). They take their sequence number from the advert counter and pass the
 * same own-name filter, the same `Admission` and the same reject counting, so a
 * sender's adverts and messages form one increasing sequence. Like adverts they are
 * fire-and-forget: a message lost, or overtaken on the wire by a later advert (and
 * then refused as `replayed`), is not resent here; the requester retries with the
 * same request id.
 *
 * Nothing received can make it throw: every datagram is decoded defensively, and a
 * rejected one is counted per reason and logged at most once per reason every
 * `REJECT_LOG_INTERVAL_MS` (a flood of forged packets must not flood the journal).
 * Sending never throws for the network (the next advert interval is the retry); an
 * advert that cannot be encoded throws, so the runtime can tell the core (a node that
 * cannot advertise must not go on looking like a silent master to itself).
 *
 * Multicast: the socket binds to the group address itself, so on Linux it only
 * receives that group's datagrams on the port (binding a unicast address would
 * filter the group traffic out), joins the group on the configured interface, and
 * sets TTL 1 and loopback off, so adverts never leave the link and a node does not
 * hear itself.
 *
 * This adapter may read the clock: the boot time defaults to `Date.now()` at
 * construction, and rate limiting uses the injected `clock`.
 */
import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { AdvertKey } from '../config/types.js';
import type { Advert, AdvertBody } from '../core/types.js';
import type { Logger } from '../logger.js';
import { errorMessage, FatalError, RedisHaError } from '../errors.js';
import { ipFamily, isMulticastAddress, isUnspecifiedAddress, sameAddress } from '../net/address.js';
import { AdvertEncoder, MAX_BOOT_TIME_MS, MAX_SEQ, decodeAdvert } from '../proto/advert.js';
import {
  MESSAGE_REJECT_REASONS,
  PACKET_TYPE_MESSAGE,
  decodeMessage,
  encodeMessage,
  packetType,
  type MessageRejectReason,
  type PeerMessage,
  type ReceivedMessage,
} from '../proto/message.js';
import { ADMISSION_REJECT_REASONS, Admission, type AdmissionRejectReason, type PeerSeen } from '../proto/admission.js';

/** At most one warning per reject reason (and for send failures) in this window. */
export const REJECT_LOG_INTERVAL_MS = 10_000;
/** Multicast adverts must not be routed off the link. */
export const MULTICAST_TTL = 1;

/** Why a received datagram did not reach the runtime. */
export type TransportRejectReason = MessageRejectReason | AdmissionRejectReason;

/** Every `TransportRejectReason`, for building counters and dashboards. */
export const TRANSPORT_REJECT_REASONS: readonly TransportRejectReason[] = [
  ...MESSAGE_REJECT_REASONS,
  ...ADMISSION_REJECT_REASONS,
];

/** Running totals since construction. */
export interface TransportCounters {
  /** Datagrams received, valid or not. */
  readonly received: number;
  /** Adverts handed to the runtime. */
  readonly accepted: number;
  /** Authenticated adverts and messages carrying this node's own name (own loopback, or a duplicate name). */
  readonly ownIgnored: number;
  /** Adverts the kernel accepted for sending. */
  readonly sent: number;
  /** Adverts and messages that could not be encoded or sent. */
  readonly sendErrors: number;
  /** Peer messages the kernel accepted for sending. */
  readonly messagesSent: number;
  /** Peer messages accepted (authenticated, fresh, from another node) and handed to the runtime. */
  readonly messagesReceived: number;
  /** Received datagrams dropped, by reason. */
  readonly rejected: Readonly<Record<TransportRejectReason, number>>;
}

/** How to build an `AdvertTransport`. */
export interface AdvertTransportOptions {
  /** Local address to bind (unicast peers); its family picks udp4 or udp6. */
  readonly bindAddress: string;
  /** UDP port adverts are received on. */
  readonly port: number;
  /** The peer's address, or a multicast group. Must be of the same family as `bindAddress`. */
  readonly peerAddress: string;
  /** Port adverts are sent to; defaults to `port` (both nodes listen on the same port). */
  readonly peerPort?: number;
  /** Interface for multicast: a name (`eth0`) or an address; `null` derives it from `bindAddress`. */
  readonly multicastInterface: string | null;
  readonly groupId: number;
  /** The first key signs; all verify. Never empty. */
  readonly keys: readonly AdvertKey[];
  /** This node's name; received adverts carrying it are ignored. */
  readonly nodeName: string;
  readonly logger: Logger;
  /** This daemon's start time (ms since the Unix epoch); defaults to `clock()` at construction. */
  readonly bootTimeMs?: number;
  /** Wall clock for the boot time and log rate limiting; defaults to `Date.now`. */
  readonly clock?: () => number;
  /** Senders the replay guard remembers; see `ReplayGuard`. */
  readonly maxSenders?: number;
  /** What was accepted from the peer before this run (the state file); see `Admission`. */
  readonly seed?: readonly PeerSeen[];
  /** Called when a packet of a new run of a sender is accepted (to persist it). */
  readonly onPeerRun?: (seen: PeerSeen) => void;
}

/** Called for every authenticated, fresh advert from another node. */
export type AdvertHandler = (advert: Advert, fromAddress: string) => void;

/** Called for every authenticated, fresh peer message from another node. */
export type MessageHandler = (message: ReceivedMessage, fromAddress: string) => void;

/** Which packet type a log line or refusal is about. */
type PacketKind = 'advert' | 'message';

interface RateLimitEntry {
  lastLoggedAt: number;
  suppressed: number;
}

/** Sends and receives adverts over UDP; see the file header. */
export class AdvertTransport {
  private readonly options: AdvertTransportOptions;
  private readonly logger: Logger;
  private readonly clock: () => number;
  private readonly family: 4 | 6;
  private readonly multicast: boolean;
  private readonly peerPort: number;
  private readonly admission: Admission;
  private readonly rateLimits = new Map<string, RateLimitEntry>();
  private readonly rejected: Record<TransportRejectReason, number>;
  private socket: dgram.Socket | null = null;
  private handler: AdvertHandler | null = null;
  private messageHandler: MessageHandler | null = null;
  private currentBootTimeMs: number;
  /**
   * Encodes adverts into reused buffers. A buffer goes back to it only in the send
   * callback: until then the kernel send may still be reading it (libuv queues a send
   * the socket cannot take at once, and keeps only a pointer to our bytes).
   */
  private readonly encoder = new AdvertEncoder();
  private seq = 0;
  private received = 0;
  private accepted = 0;
  private ownIgnored = 0;
  private sent = 0;
  private sendErrors = 0;
  private messagesSent = 0;
  private messagesReceived = 0;

  /** @throws FatalError when the addresses or keys cannot work at all. */
  constructor(options: AdvertTransportOptions) {
    this.options = options;
    this.logger = options.logger;
    this.clock = options.clock ?? Date.now;
    const bindFamily = ipFamily(options.bindAddress);
    const peerFamily = ipFamily(options.peerAddress);
    if (bindFamily === 0) throw new FatalError('ADVERT_ADDRESS_INVALID', `bind address ${options.bindAddress} is not an IP address`);
    if (peerFamily === 0) throw new FatalError('ADVERT_ADDRESS_INVALID', `peer address ${options.peerAddress} is not an IP address`);
    if (bindFamily !== peerFamily) {
      throw new FatalError(
        'ADVERT_ADDRESS_INVALID',
        `bind address ${options.bindAddress} and peer address ${options.peerAddress} are of different IP families`,
      );
    }
    this.family = bindFamily === 6 ? 6 : 4;
    this.multicast = isMulticastAddress(options.peerAddress);
    this.peerPort = options.peerPort ?? options.port;
    if (options.keys.length === 0) throw new FatalError('ADVERT_NO_KEY', 'no advert key configured');
    this.currentBootTimeMs = Math.min(options.bootTimeMs ?? this.clock(), MAX_BOOT_TIME_MS);
    this.admission = new Admission(() => this.currentBootTimeMs, {
      ...(options.seed !== undefined ? { seed: options.seed } : {}),
      ...(options.maxSenders !== undefined ? { maxSenders: options.maxSenders } : {}),
      ...(options.onPeerRun !== undefined ? { onNewRun: options.onPeerRun } : {}),
    });
    this.rejected = Object.fromEntries(TRANSPORT_REJECT_REASONS.map((r) => [r, 0])) as Record<TransportRejectReason, number>;
  }

  /** This run's boot time as sent in adverts (it moves forward only if `seq` would wrap). */
  get bootTimeMs(): number {
    return this.currentBootTimeMs;
  }

  /** A snapshot of the counters; later traffic does not change it. */
  get counters(): TransportCounters {
    return Object.freeze({
      received: this.received,
      accepted: this.accepted,
      ownIgnored: this.ownIgnored,
      sent: this.sent,
      sendErrors: this.sendErrors,
      messagesSent: this.messagesSent,
      messagesReceived: this.messagesReceived,
      rejected: Object.freeze({ ...this.rejected }),
    });
  }

  /** The bound local address and port, once started (port 0 binds an ephemeral port). */
  address(): { address: string; port: number } | null {
    if (this.socket === null) return null;
    const { address, port } = this.socket.address();
    return { address, port };
  }

  /**
   * Binds the socket (and joins the multicast group) and starts delivering adverts
   * to `onAdvert` and peer messages to `onMessage`. Errors thrown by either handler
   * are logged, never propagated. Without `onMessage`, accepted messages are counted,
   * logged (rate-limited) and dropped.
   *
   * @throws FatalError `ADVERT_BIND_FAILED` or `ADVERT_MULTICAST_FAILED`.
   */
  async start(onAdvert: AdvertHandler, onMessage?: MessageHandler): Promise<void> {
    if (this.socket !== null) throw new RedisHaError('ADVERT_ALREADY_STARTED', 'advert transport already started');
    const { port, bindAddress, peerAddress } = this.options;
    const socket = dgram.createSocket({ type: this.family === 6 ? 'udp6' : 'udp4' });
    const bindTo = this.multicast ? peerAddress : bindAddress;
    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          socket.off('listening', onListening);
          reject(err);
        };
        const onListening = (): void => {
          socket.off('error', onError);
          resolve();
        };
        socket.once('error', onError);
        socket.once('listening', onListening);
        socket.bind({ port, address: bindTo, exclusive: true });
      });
    } catch (err) {
      closeQuietly(socket);
      throw new FatalError('ADVERT_BIND_FAILED', `cannot bind advert socket to ${formatEndpoint(bindTo, port)}: ${errorMessage(err)}`, 1, {
        cause: err,
      });
    }
    if (this.multicast) {
      try {
        const iface = resolveMulticastInterface(this.options.multicastInterface, bindAddress, this.family);
        socket.addMembership(peerAddress, iface);
        socket.setMulticastTTL(MULTICAST_TTL);
        socket.setMulticastLoopback(false);
        if (iface !== undefined) socket.setMulticastInterface(iface);
      } catch (err) {
        closeQuietly(socket);
        throw new FatalError(
          'ADVERT_MULTICAST_FAILED',
          `cannot join multicast group ${peerAddress} on ${this.options.multicastInterface ?? 'the default interface'}: ${errorMessage(err)}`,
          1,
          { cause: err },
        );
      }
    }
    socket.on('error', (err) => this.logger.error({ err }, 'advert socket error'));
    socket.on('message', (msg, rinfo) => this.handleDatagram(msg, rinfo.address));
    this.handler = onAdvert;
    this.messageHandler = onMessage ?? null;
    this.socket = socket;
    this.logger.info(
      {
        local: formatEndpoint(bindTo, socket.address().port),
        peer: formatEndpoint(peerAddress, this.peerPort),
        multicast: this.multicast,
        bootTimeMs: this.currentBootTimeMs,
      },
      'advert transport started',
    );
  }

  /**
   * Signs `body` with the first key and sends it to the peer. A send that fails is
   * counted and logged (rate-limited), and the next interval sends a fresh one.
   *
   * @throws AdvertEncodeError when `body` cannot be encoded: not a network fault, and
   *   every later advert would fail the same way.
   */
  send(body: AdvertBody): void {
    const socket = this.socket;
    if (socket === null) {
      this.sendFailed('advert transport not started');
      return;
    }
    this.advanceSeq();
    let packet: Buffer;
    try {
      packet = this.encoder.encode(
        { groupId: this.options.groupId, bootTimeMs: this.currentBootTimeMs, seq: this.seq, echoBootTimeMs: this.admission.echo(), body },
        // Checked non-empty in the constructor.
        this.options.keys[0] as AdvertKey,
      );
    } catch (err) {
      this.sendErrors++;
      throw err;
    }
    try {
      socket.send(packet, this.peerPort, this.options.peerAddress, (err) => {
        this.encoder.release(packet);
        if (err) this.sendFailed(errorMessage(err));
        else this.sent++;
      });
    } catch (err) {
      // Refused before anything was queued: nothing reads the buffer.
      this.encoder.release(packet);
      this.sendFailed(errorMessage(err));
    }
  }

  /**
   * Signs `message` with the first key and sends it to the peer, numbered from the
   * advert sequence. Never throws: a message that cannot be encoded or sent is
   * counted in `sendErrors` and logged (rate-limited); retrying is the caller's call.
   */
  sendMessage(message: PeerMessage): void {
    const socket = this.socket;
    if (socket === null) {
      this.sendFailed('advert transport not started', message);
      return;
    }
    try {
      this.advanceSeq();
      const packet = encodeMessage(
        {
          groupId: this.options.groupId,
          nodeName: this.options.nodeName,
          bootTimeMs: this.currentBootTimeMs,
          seq: this.seq,
          echoBootTimeMs: this.admission.echo(),
          message,
        },
        // Checked non-empty in the constructor.
        this.options.keys[0] as AdvertKey,
      );
      socket.send(packet, this.peerPort, this.options.peerAddress, (err) => {
        if (err) this.sendFailed(errorMessage(err), message);
        else this.messagesSent++;
      });
    } catch (err) {
      this.sendFailed(errorMessage(err), message);
    }
  }

  /** Closes the socket (leaving any multicast group). Safe to call twice. */
  async stop(): Promise<void> {
    const socket = this.socket;
    if (socket === null) return;
    this.socket = null;
    this.handler = null;
    this.messageHandler = null;
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve();
      }
    });
    this.logger.info('advert transport stopped');
  }

  private advanceSeq(): void {
    if (this.seq >= MAX_SEQ) {
      // Wrapping would make every later advert look replayed; a new boot time resets
      // the peer's expectation instead (about 6.8 years at 50 ms intervals).
      this.currentBootTimeMs = Math.min(Math.max(this.clock(), this.currentBootTimeMs + 1), MAX_BOOT_TIME_MS);
      this.seq = 0;
    }
    this.seq++;
  }

  private handleDatagram(msg: Buffer, fromAddress: string): void {
    try {
      this.received++;
      // Anything that does not announce a message, garbage included, goes to the
      // advert decoder, which names precisely what is wrong with it.
      if (packetType(msg) === PACKET_TYPE_MESSAGE) {
        this.handleMessage(msg, fromAddress);
        return;
      }
      const decoded = decodeAdvert(msg, this.options.keys, this.options.groupId);
      if (!decoded.ok) {
        this.reject(decoded.reason, decoded.detail, fromAddress, 'advert');
        return;
      }
      const { advert } = decoded;
      if (!this.admit(advert, fromAddress, 'advert')) return;
      this.accepted++;
      this.deliver(advert, fromAddress);
    } catch (err) {
      this.logger.error({ err, from: fromAddress }, 'advert datagram handling failed');
    }
  }

  private handleMessage(msg: Buffer, fromAddress: string): void {
    const decoded = decodeMessage(msg, this.options.keys, this.options.groupId);
    if (!decoded.ok) {
      this.reject(decoded.reason, decoded.detail, fromAddress, 'message');
      return;
    }
    const received = decoded.message;
    if (!this.admit(received, fromAddress, 'message')) return;
    this.messagesReceived++;
    const handler = this.messageHandler;
    if (handler === null) {
      this.warnLimited(
        'no-message-handler',
        { from: fromAddress, node: received.nodeName, kind: received.message.kind },
        'peer message dropped: no handler',
      );
      return;
    }
    try {
      handler(received, fromAddress);
    } catch (err) {
      this.logger.error(
        { err, from: fromAddress, node: received.nodeName, kind: received.message.kind },
        'message handler threw',
      );
    }
  }

  /**
   * The checks every authenticated packet passes before delivery: not our own name,
   * newer than anything accepted from that sender (adverts and messages share one
   * sequence, so one guard covers both), and echoing this run's boot time (see
   * `Admission`). Counts and logs a refusal.
   */
  private admit(
    packet: { readonly nodeName: string; readonly bootTimeMs: number; readonly seq: number; readonly echoBootTimeMs: number },
    fromAddress: string,
    kind: PacketKind,
  ): boolean {
    if (packet.nodeName === this.options.nodeName) {
      this.ownIgnored++;
      // Our own boot time is harmless loopback; any other is a second node using
      // our name, or a replay of an earlier run of ours.
      if (packet.bootTimeMs !== this.currentBootTimeMs) {
        this.warnLimited(
          'own-name',
          { from: fromAddress, bootTimeMs: packet.bootTimeMs, packet: kind },
          kind === 'advert' ? 'advert with own node name from another run' : 'message with own node name from another run',
        );
      }
      return false;
    }
    const fresh = this.admission.check(packet);
    if (!fresh.ok) {
      this.reject(fresh.reason, fresh.detail, fromAddress, kind);
      return false;
    }
    return true;
  }

  private deliver(advert: Advert, fromAddress: string): void {
    const handler = this.handler;
    if (handler === null) return;
    try {
      handler(advert, fromAddress);
    } catch (err) {
      this.logger.error({ err, from: fromAddress, node: advert.nodeName }, 'advert handler threw');
    }
  }

  private reject(reason: TransportRejectReason, detail: string, fromAddress: string, packet: PacketKind): void {
    this.rejected[reason]++;
    // One constant message for both packet types, so existing alerts keep matching.
    this.warnLimited(reason, { reason, detail, from: fromAddress, packet }, 'advert rejected');
  }

  private sendFailed(detail: string, message?: PeerMessage): void {
    this.sendErrors++;
    const peer = formatEndpoint(this.options.peerAddress, this.peerPort);
    if (message === undefined) this.warnLimited('send-failed', { detail, peer }, 'advert not sent');
    // Not rate-limited with adverts: a lost switchover request is worth its own line.
    else this.warnLimited('message-send-failed', { detail, peer, kind: message.kind, requestId: message.requestId }, 'peer message not sent');
  }

  /** One warn line per `key` per interval; the line carries how many were suppressed since the last one. */
  private warnLimited(key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock();
    const entry = this.rateLimits.get(key);
    if (entry !== undefined && now - entry.lastLoggedAt < REJECT_LOG_INTERVAL_MS) {
      entry.suppressed++;
      return;
    }
    // `not-fresh` is expected for one advert interval whenever either daemon restarts (the
    // two learn each other's run); only a count that keeps rising is worth attention.
    const level = key === 'not-fresh' ? 'info' : 'warn';
    this.logger[level]({ ...fields, suppressed: entry?.suppressed ?? 0 }, message);
    this.rateLimits.set(key, { lastLoggedAt: now, suppressed: 0 });
  }
}

/**
 * What `addMembership`/`setMulticastInterface` want: an interface address for IPv4,
 * `::%<name>` for IPv6 (the kernel needs the interface index for link-local groups).
 */
function resolveMulticastInterface(spec: string | null, bindAddress: string, family: 4 | 6): string | undefined {
  const interfaces = networkInterfaces();
  const familyName = family === 6 ? 'IPv6' : 'IPv4';
  if (spec !== null) {
    if (ipFamily(spec) !== 0) return spec;
    if (family === 6) return `::%${spec}`;
    const address = interfaces[spec]?.find((a) => a.family === familyName)?.address;
    if (address === undefined) throw new Error(`interface ${spec} has no IPv4 address`);
    return address;
  }
  if (isUnspecifiedAddress(bindAddress)) return undefined;
  if (family === 4) return bindAddress;
  for (const [name, addresses] of Object.entries(interfaces)) {
    if (addresses?.some((a) => a.family === familyName && sameAddress(a.address, bindAddress))) return `::%${name}`;
  }
  return undefined;
}

function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // Already closed or never bound: nothing to release.
  }
}
