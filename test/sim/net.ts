/**
 * The network between the two daemons, on the real wire path: adverts and peer messages
 * are encoded and signed (`encodeAdvert`, `encodeMessage`), cross an in-memory link
 * with delay, loss, partitions (two-way and one-way), duplication and reordering (in
 * order otherwise), and
 * are decoded, authenticated and replay-checked on arrival (`decodeAdvert`,
 * `decodeMessage`, one `ReplayGuard` per receiving daemon) exactly as
 * `src/adapters/udp.ts` does, so a duplicated or overtaken datagram is dropped as in
 * production. Redis connections (replication, catch-up, FAILOVER) are TCP: they need
 * both directions, so any partition cuts them; loss and jitter do not.
 *
 * The client that writes through the VIP is not partitioned from either node.
 *
 * With the quorum, a third host: etcd (`etcd-model.ts`). A node's calls to it and
 * etcd's answers are messages on one TCP connection (`sendTcp`): in order, delayed by
 * jitter, and a lost packet is not lost but retransmitted after a retransmission timeout
 * (200 ms, doubling, as Linux does), so loss shows as delay; an `etcd-partition` drops
 * them (the node's call runs into its deadline). Partitions are checked when a message
 * leaves and when it arrives.
 */
import type { AdvertKey } from '../../src/config/types.js';
import type { AdvertBody, Event, PeerRequest } from '../../src/core/types.js';
import { decodeAdvert, encodeAdvert } from '../../src/proto/advert.js';
import { decodeMessage, encodeMessage, packetType, PACKET_TYPE_MESSAGE } from '../../src/proto/message.js';
import { Admission, type PeerSeen, type Stamped } from '../../src/proto/admission.js';
import { peerEvent } from '../../src/daemon/peer-event.js';
import type { Fault } from './faults.js';
import type { NodeId, World } from './world.js';

/** The hosts of the simulation: the two nodes and, with the quorum, etcd. */
export type Host = NodeId | 'etcd';

export const GROUP_ID = 51;
export const KEYS: readonly AdvertKey[] = [{ id: 1, secret: Buffer.from('redis-ha simulation key, not a secret') }];
/** Every datagram takes 1..BASE_DELAY_MS to cross the link. */
export const BASE_DELAY_MS = 3;

/** Linux's minimum TCP retransmission timeout: what one lost packet costs a TCP message. */
export const TCP_MIN_RTO_MS = 200;

/** Datagrams dropped on arrival, by reason (the replay guard's included). */
export type DropCounts = Record<string, number>;

export class Network {
  readonly drops: DropCounts = {};
  /** Arrival time of the last datagram per direction: a clean link delivers in order. */
  private readonly lastArrival: Record<string, number> = {};

  constructor(private readonly world: World, private readonly faults: readonly Fault[]) {}

  /** Datagrams from `from` to `to` are dropped now. */
  cut(from: NodeId, to: NodeId): boolean {
    return this.active((f) => f.kind === 'partition' && (f.direction === 'both' || f.direction === `${from}->${to}`));
  }

  /** A TCP connection between the two hosts works now. */
  tcpUp(x: NodeId, y: NodeId): boolean {
    return x === y || (!this.cut(x, y) && !this.cut(y, x));
  }

  /** Any network fault is active now. */
  disturbed(): boolean {
    return this.active((f) => f.kind === 'partition' || f.kind === 'loss' || f.kind === 'jitter' || f.kind === 'etcd-partition');
  }

  /** Packets between `node` and etcd in this direction are dropped now. */
  etcdCut(node: NodeId, towardsEtcd: boolean): boolean {
    return this.active((f) => f.kind === 'etcd-partition' && f.node === node
      && (f.direction === 'both' || f.direction === (towardsEtcd ? 'to-etcd' : 'from-etcd')));
  }

  /** A TCP message from `from` to `to` would be dropped now (etcd links only; the nodes' own Redis links use `tcpUp`). */
  tcpCut(from: Host, to: Host): boolean {
    if (from === 'etcd' && to !== 'etcd') return this.etcdCut(to, false);
    if (to === 'etcd' && from !== 'etcd') return this.etcdCut(from, true);
    return from !== to && from !== 'etcd' && to !== 'etcd' && !this.tcpUp(from, to);
  }

  /**
   * Sends one message on the TCP connection from `from` to `to`; `arrive` runs (world-owned)
   * when it gets there, unless a partition drops it. In order per direction; loss delays.
   */
  sendTcp(from: Host, to: Host, arrive: () => void): void {
    if (this.tcpCut(from, to)) return this.drop('tcp-partition');
    const { maxDelay } = this.conditions();
    let delay = this.world.int(1, BASE_DELAY_MS) + (maxDelay > 0 ? this.world.int(0, maxDelay) : 0);
    // Each retransmission meets the loss of its own moment: it gets through once the loss is over.
    for (let rto = TCP_MIN_RTO_MS; this.world.chance(this.conditions(this.world.now + delay).loss); rto *= 2) delay += rto;
    const key = `tcp ${from}->${to}`;
    const arrival = Math.max(this.world.now + delay, this.lastArrival[key] ?? 0);
    this.lastArrival[key] = arrival;
    this.world.at(arrival, () => {
      if (this.tcpCut(from, to)) this.drop('tcp-partition');
      else arrive();
    });
  }

  /** Sends one datagram; each copy that gets through is handed to `deliver` on arrival. */
  send(from: NodeId, to: NodeId, buf: Buffer, deliver: (buf: Buffer) => void): void {
    if (this.cut(from, to)) return this.drop('partition');
    const { loss, maxDelay, dup } = this.conditions();
    const copies = this.world.chance(dup) ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      if (this.world.chance(loss)) {
        this.drop('loss');
        continue;
      }
      const key = `${from}->${to}`;
      let arrival = this.world.now + this.world.int(1, BASE_DELAY_MS) + (maxDelay > 0 ? this.world.int(0, maxDelay) : 0);
      // Only jitter reorders (one Ethernet segment keeps datagrams in order otherwise).
      if (maxDelay === 0) arrival = Math.max(arrival, this.lastArrival[key] ?? 0);
      this.lastArrival[key] = Math.max(arrival, this.lastArrival[key] ?? 0);
      // Addressed to `to`'s daemon: held while it is stalled (the datagram waits in the socket).
      this.world.io(to, null, arrival - this.world.now, () => {
        if (this.cut(from, to)) this.drop('partition');
        else deliver(buf);
      });
    }
  }

  /** The worst loss rate, delay and duplication of the faults active at `at` (default now). */
  private conditions(at = this.world.now): { loss: number; maxDelay: number; dup: number } {
    let loss = 0;
    let maxDelay = 0;
    let dup = 0;
    for (const f of this.faults) {
      if (!this.isActive(f, at)) continue;
      if (f.kind === 'loss') loss = Math.max(loss, f.rate);
      if (f.kind === 'jitter') {
        maxDelay = Math.max(maxDelay, f.maxDelayMs);
        dup = Math.max(dup, f.dupRate);
      }
    }
    return { loss, maxDelay, dup };
  }

  drop(reason: string): void {
    this.drops[reason] = (this.drops[reason] ?? 0) + 1;
  }

  private active(match: (f: Fault) => boolean): boolean {
    return this.faults.some((f) => match(f) && this.isActive(f));
  }

  private isActive(f: Fault, at = this.world.now): boolean {
    return f.kind !== 'switchover' && at >= f.at && at < f.at + f.durationMs;
  }
}

/** One daemon run's sending side: its boot time and the sequence adverts and messages share. */
export class Sender {
  private seq = 0;

  /** @param echo the peer's run this daemon last heard (its `Receiver`'s `echo()`). */
  constructor(private readonly nodeName: string, readonly bootTimeMs: number, private readonly echo: () => number) {}

  advert(body: AdvertBody): Buffer {
    return encodeAdvert({ groupId: GROUP_ID, bootTimeMs: this.bootTimeMs, seq: ++this.seq, echoBootTimeMs: this.echo(), body }, KEYS[0]!);
  }

  message(message: PeerRequest): Buffer {
    return encodeMessage({
      groupId: GROUP_ID, nodeName: this.nodeName, bootTimeMs: this.bootTimeMs, seq: ++this.seq, echoBootTimeMs: this.echo(), message,
    }, KEYS[0]!);
  }
}

/** One daemon run's receiving side: decode, authenticate, refuse replays and stale packets, map to a core event. */
export class Receiver {
  private readonly admission: Admission;

  /**
   * @param seed the peer's last run as this host's state file kept it.
   * @param onPeerRun told when a new run of the peer is heard (the daemon persists it).
   */
  constructor(
    private readonly nodeName: string,
    bootTimeMs: number,
    seed: PeerSeen | null,
    private readonly drops: (reason: string) => void,
    onPeerRun: (seen: PeerSeen) => void = () => undefined,
  ) {
    this.admission = new Admission(() => bootTimeMs, { seed: seed ? [seed] : [], onNewRun: onPeerRun });
  }

  /** The peer run to echo in this daemon's packets. */
  echo(): number {
    return this.admission.echo();
  }

  accept(buf: Buffer, fromAddress: string): Event | null {
    if (packetType(buf) === PACKET_TYPE_MESSAGE) {
      const decoded = decodeMessage(buf, KEYS, GROUP_ID);
      if (!decoded.ok) return this.refuse(decoded.reason);
      return this.admit(decoded.message) ? peerEvent(decoded.message) : null;
    }
    const decoded = decodeAdvert(buf, KEYS, GROUP_ID);
    if (!decoded.ok) return this.refuse(decoded.reason);
    const { advert } = decoded;
    return this.admit(advert) ? { type: 'advert-received', advert, fromAddress } : null;
  }

  private admit(p: Stamped): boolean {
    if (p.nodeName === this.nodeName) {
      this.drops('own-name');
      return false;
    }
    const check = this.admission.check(p);
    if (!check.ok) this.drops(check.reason);
    return check.ok;
  }

  private refuse(reason: string): null {
    this.drops(reason);
    return null;
  }
}
