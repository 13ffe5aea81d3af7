/**
 * The advert transport: one UDP socket that sends this node's adverts to the peer
 * (unicast, or a multicast group) and turns received datagrams into authenticated,
 * non-replayed `Advert`s for the runtime. Decoding lives in `src/proto/advert.ts`,
 * replay protection in `src/proto/replay.ts`; this file only does the socket work,
 * counting and logging.
 *
 * Nothing received can make it throw: every datagram is decoded defensively, and a
 * rejected one is counted per reason and logged at most once per reason every
 * `REJECT_LOG_INTERVAL_MS` (a flood of forged packets must not flood the journal).
 * Sending never throws either: the next advert interval is the retry.
 *
 * Multicast: the socket binds to the group address itself, so on Linux it only
 * receives that group's datagrams on the port (binding a unicast address would
 * filter the group traffic out), joins the group on the configured interface, and
 * sets TTL 1 and loopback off, so adverts never leave the link and a node does not
 * hear itself.
 *
 * This adapter may read the clock: the boot epoch defaults to `Date.now()` at
 * construction, and rate limiting uses the injected `clock`.
 */
import dgram from 'node:dgram';
import { isIP } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { AdvertKey } from '../config/types.js';
import type { Advert, AdvertBody } from '../core/types.js';
import type { Logger } from '../daemon/logger.js';
import { FatalError, RedisHaError } from '../errors.js';
import { MAX_BOOT_EPOCH, MAX_SEQ, REJECT_REASONS, decodeAdvert, encodeAdvert, type RejectReason } from '../proto/advert.js';
import { REPLAY_REJECT_REASONS, ReplayGuard, type ReplayRejectReason } from '../proto/replay.js';

/** At most one warning per reject reason (and for send failures) in this window. */
export const REJECT_LOG_INTERVAL_MS = 10_000;
/** Multicast adverts must not be routed off the link. */
export const MULTICAST_TTL = 1;

/** Why a received datagram did not reach the runtime. */
export type TransportRejectReason = RejectReason | ReplayRejectReason;

/** Every `TransportRejectReason`, for building counters and dashboards. */
export const TRANSPORT_REJECT_REASONS: readonly TransportRejectReason[] = [...REJECT_REASONS, ...REPLAY_REJECT_REASONS];

/** Running totals since construction. */
export interface TransportCounters {
  /** Datagrams received, valid or not. */
  readonly received: number;
  /** Adverts handed to the runtime. */
  readonly accepted: number;
  /** Authenticated adverts carrying this node's own name (own loopback, or a duplicate name). */
  readonly ownIgnored: number;
  /** Adverts the kernel accepted for sending. */
  readonly sent: number;
  /** Adverts that could not be encoded or sent. */
  readonly sendErrors: number;
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
  readonly bootEpoch?: number;
  /** Wall clock for the boot epoch and log rate limiting; defaults to `Date.now`. */
  readonly clock?: () => number;
  /** Senders the replay guard remembers; see `ReplayGuard`. */
  readonly maxSenders?: number;
}

/** Called for every authenticated, fresh advert from another node. */
export type AdvertHandler = (advert: Advert, fromAddress: string) => void;

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
  private readonly replayGuard: ReplayGuard;
  private readonly rateLimits = new Map<string, RateLimitEntry>();
  private readonly rejected: Record<TransportRejectReason, number>;
  private socket: dgram.Socket | null = null;
  private handler: AdvertHandler | null = null;
  private currentBootEpoch: number;
  private seq = 0;
  private received = 0;
  private accepted = 0;
  private ownIgnored = 0;
  private sent = 0;
  private sendErrors = 0;

  /** @throws FatalError when the addresses or keys cannot work at all. */
  constructor(options: AdvertTransportOptions) {
    this.options = options;
    this.logger = options.logger;
    this.clock = options.clock ?? Date.now;
    const bindFamily = isIP(options.bindAddress);
    const peerFamily = isIP(options.peerAddress);
    if (bindFamily === 0) throw new FatalError('ADVERT_ADDRESS_INVALID', `bind address ${options.bindAddress} is not an IP address`);
    if (peerFamily === 0) throw new FatalError('ADVERT_ADDRESS_INVALID', `peer address ${options.peerAddress} is not an IP address`);
    if (bindFamily !== peerFamily) {
      throw new FatalError(
        'ADVERT_ADDRESS_INVALID',
        `bind address ${options.bindAddress} and peer address ${options.peerAddress} are of different IP families`,
      );
    }
    this.family = bindFamily === 6 ? 6 : 4;
    this.multicast = isMulticast(options.peerAddress, this.family);
    this.peerPort = options.peerPort ?? options.port;
    if (options.keys.length === 0) throw new FatalError('ADVERT_NO_KEY', 'no advert key configured');
    this.currentBootEpoch = Math.min(options.bootEpoch ?? this.clock(), MAX_BOOT_EPOCH);
    this.replayGuard = new ReplayGuard(options.maxSenders);
    this.rejected = Object.fromEntries(TRANSPORT_REJECT_REASONS.map((r) => [r, 0])) as Record<TransportRejectReason, number>;
  }

  /** This run's boot epoch as sent in adverts (it moves forward only if `seq` would wrap). */
  get bootEpoch(): number {
    return this.currentBootEpoch;
  }

  /** A snapshot of the counters; later traffic does not change it. */
  get counters(): TransportCounters {
    return Object.freeze({
      received: this.received,
      accepted: this.accepted,
      ownIgnored: this.ownIgnored,
      sent: this.sent,
      sendErrors: this.sendErrors,
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
   * to `onAdvert`. Errors thrown by `onAdvert` are logged, never propagated.
   *
   * @throws FatalError `ADVERT_BIND_FAILED` or `ADVERT_MULTICAST_FAILED`.
   */
  async start(onAdvert: AdvertHandler): Promise<void> {
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
    this.socket = socket;
    this.logger.info(
      {
        local: formatEndpoint(bindTo, socket.address().port),
        peer: formatEndpoint(peerAddress, this.peerPort),
        multicast: this.multicast,
        bootEpoch: this.currentBootEpoch,
      },
      'advert transport started',
    );
  }

  /**
   * Signs `body` with the first key and sends it to the peer. Never throws: an
   * advert that cannot be encoded or sent is counted and logged (rate-limited),
   * and the next interval sends a fresh one.
   */
  send(body: AdvertBody): void {
    const socket = this.socket;
    if (socket === null) {
      this.sendFailed('advert transport not started');
      return;
    }
    try {
      this.advanceSeq();
      const packet = encodeAdvert(
        { groupId: this.options.groupId, bootEpoch: this.currentBootEpoch, seq: this.seq, body },
        // Checked non-empty in the constructor.
        this.options.keys[0] as AdvertKey,
      );
      socket.send(packet, this.peerPort, this.options.peerAddress, (err) => {
        if (err) this.sendFailed(errorMessage(err));
        else this.sent++;
      });
    } catch (err) {
      this.sendFailed(errorMessage(err));
    }
  }

  /** Closes the socket (leaving any multicast group). Safe to call twice. */
  async stop(): Promise<void> {
    const socket = this.socket;
    if (socket === null) return;
    this.socket = null;
    this.handler = null;
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
      // Wrapping would make every later advert look replayed; a new boot epoch resets
      // the peer's expectation instead (about 6.8 years at 50 ms intervals).
      this.currentBootEpoch = Math.min(Math.max(this.clock(), this.currentBootEpoch + 1), MAX_BOOT_EPOCH);
      this.seq = 0;
    }
    this.seq++;
  }

  private handleDatagram(msg: Buffer, fromAddress: string): void {
    try {
      this.received++;
      const decoded = decodeAdvert(msg, this.options.keys, this.options.groupId);
      if (!decoded.ok) {
        this.reject(decoded.reason, decoded.detail, fromAddress);
        return;
      }
      const { advert } = decoded;
      if (advert.nodeName === this.options.nodeName) {
        this.ownIgnored++;
        // Our own boot epoch is harmless loopback; any other is a second node using
        // our name, or a replay of an earlier run of ours.
        if (advert.bootEpoch !== this.currentBootEpoch) {
          this.warnLimited('own-name', { from: fromAddress, bootEpoch: advert.bootEpoch }, 'advert with own node name from another run');
        }
        return;
      }
      const fresh = this.replayGuard.check(advert.nodeName, advert.bootEpoch, advert.seq);
      if (!fresh.ok) {
        this.reject(fresh.reason, fresh.detail, fromAddress);
        return;
      }
      this.accepted++;
      this.deliver(advert, fromAddress);
    } catch (err) {
      this.logger.error({ err, from: fromAddress }, 'advert datagram handling failed');
    }
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

  private reject(reason: TransportRejectReason, detail: string, fromAddress: string): void {
    this.rejected[reason]++;
    this.warnLimited(reason, { reason, detail, from: fromAddress }, 'advert rejected');
  }

  private sendFailed(detail: string): void {
    this.sendErrors++;
    this.warnLimited('send-failed', { detail, peer: formatEndpoint(this.options.peerAddress, this.peerPort) }, 'advert not sent');
  }

  /** One warn line per `key` per interval; the line carries how many were suppressed since the last one. */
  private warnLimited(key: string, fields: Record<string, unknown>, message: string): void {
    const now = this.clock();
    const entry = this.rateLimits.get(key);
    if (entry !== undefined && now - entry.lastLoggedAt < REJECT_LOG_INTERVAL_MS) {
      entry.suppressed++;
      return;
    }
    this.logger.warn({ ...fields, suppressed: entry?.suppressed ?? 0 }, message);
    this.rateLimits.set(key, { lastLoggedAt: now, suppressed: 0 });
  }
}

function isMulticast(address: string, family: 4 | 6): boolean {
  if (family === 6) return /^ff/i.test(address);
  const firstOctet = Number(address.split('.', 1)[0]);
  // 224.0.0.0/4 (RFC 5771).
  return firstOctet >= 224 && firstOctet <= 239;
}

function isWildcard(address: string): boolean {
  return address === '0.0.0.0' || address === '::';
}

/**
 * What `addMembership`/`setMulticastInterface` want: an interface address for IPv4,
 * `::%<name>` for IPv6 (the kernel needs the interface index for link-local groups).
 */
function resolveMulticastInterface(spec: string | null, bindAddress: string, family: 4 | 6): string | undefined {
  const interfaces = networkInterfaces();
  const familyName = family === 6 ? 'IPv6' : 'IPv4';
  if (spec !== null) {
    if (isIP(spec) !== 0) return spec;
    if (family === 6) return `::%${spec}`;
    const address = interfaces[spec]?.find((a) => a.family === familyName)?.address;
    if (address === undefined) throw new Error(`interface ${spec} has no IPv4 address`);
    return address;
  }
  if (isWildcard(bindAddress)) return undefined;
  if (family === 4) return bindAddress;
  for (const [name, addresses] of Object.entries(interfaces)) {
    if (addresses?.some((a) => a.family === familyName && a.address === bindAddress)) return `::%${name}`;
  }
  return undefined;
}

function formatEndpoint(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function closeQuietly(socket: dgram.Socket): void {
  try {
    socket.close();
  } catch {
    // Already closed or never bound: nothing to release.
  }
}
