/**
 * The application: one client writing through the VIP at a steady rate. It reaches the
 * VIP's holder by its ARP entry, which the last gratuitous ARP set; when that host no
 * longer has the address it resolves again (if both hosts have it, the one that
 * announced last answers). A write is acknowledged when it lands on a Redis that is an
 * unpaused, live master; otherwise it fails (nothing acknowledged). It is not
 * partitioned from either host by a `partition` (it sees both), but cannot reach one
 * whose VIP interface is down, nor, when it runs beside etcd (`SimOptions.clientBesideEtcd`),
 * one cut from etcd.
 */
import type { HostVip } from './host.js';
import type { RedisModel } from './redis-model.js';
import { NODES, type NodeId, type World } from './world.js';

export interface Ack {
  readonly id: number;
  readonly node: NodeId;
  readonly at: number;
  /** The role of that node's daemon when its Redis acknowledged the write (`down`: not running). */
  readonly role: string;
  /** That Redis had come back from a restart a master by itself (`RedisServer.selfMaster`). */
  readonly selfMaster: boolean;
}

export class Client {
  /** Where the client's neighbour entry for the VIP points. */
  arp: NodeId | null = null;
  readonly acked: Ack[] = [];
  failed = 0;
  private nextId = 1;
  private lastGarp: NodeId | null = null;
  vips: Readonly<Record<NodeId, HostVip>> | null = null;
  /** Whether a host's VIP interface is up (a host with its link down cannot be reached). */
  reachable: (node: NodeId) => boolean = () => true;
  /** The role of a node's daemon, for the record of each acknowledgement. */
  roleOf: (node: NodeId) => string = () => 'unknown';

  constructor(private readonly world: World, private readonly redis: RedisModel) {}

  heardGarp(node: NodeId): void {
    this.arp = node;
    this.lastGarp = node;
  }

  /** Writes every `intervalMs` until `untilMs`. */
  start(intervalMs: number, untilMs: number): void {
    const tick = (): void => {
      this.write();
      if (this.world.now + intervalMs <= untilMs) this.world.at(this.world.now + intervalMs, tick);
    };
    this.world.at(this.world.now + intervalMs, tick);
  }

  private write(): void {
    const target = this.resolve();
    const id = this.nextId++;
    if (target !== null && !this.vips![target].refusing && this.reachable(target) && this.redis.write(target, id)) this.acked.push({
      id, node: target, at: this.world.now, role: this.roleOf(target), selfMaster: this.redis.servers[target].selfMaster,
    });
    else this.failed++;
  }

  private resolve(): NodeId | null {
    const vips = this.vips!;
    if (this.arp !== null && vips[this.arp].present) return this.arp;
    const holders = NODES.filter((n) => vips[n].present);
    if (holders.length === 0) return null;
    this.arp = this.lastGarp !== null && holders.includes(this.lastGarp) ? this.lastGarp : holders[0]!;
    return this.arp;
  }
}
