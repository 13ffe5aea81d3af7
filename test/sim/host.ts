/**
 * What one host keeps across daemon restarts, and the daemon's adapters for it:
 *
 *  - the VIP on the interface (the kernel's state: it outlives a killed daemon) and the
 *    `VipManager` a daemon drives; claiming and announcing send a gratuitous ARP that
 *    moves the client to this host;
 *  - the state file (`persist-state`): writes land in order, each after a few ms, and a
 *    write in flight when the daemon dies is lost whole (write + rename);
 *  - the audit sink.
 *
 * Effects may be made to throw (the `flaky` fault), before or after their change.
 */
import type { VipManager } from '../../src/adapters/vip.js';
import type { Maintenance } from '../../src/core/types.js';
import type { PeerSeen } from '../../src/proto/admission.js';
import type { Client } from './client.js';
import type { Injector } from './redis-adapter.js';
import type { Incarnation, NodeId, World } from './world.js';

/** `ip addr add` + the first `arping` (ARPING_SETTLE_MS, 20 ms, in the real adapter): at most 100, a busy host. */
export const MAX_CLAIM_MS = 100;
export const MAX_RELEASE_MS = 10;
export const MAX_PERSIST_MS = 5;

/** The VIP as the kernel holds it. */
export class HostVip {
  present = false;
  /** A master's hold (`refuse-vip`): the VIP is here, but every connection to it is reset. */
  refusing = false;
  /** When `present` last changed. */
  changedAt = 0;

  constructor(readonly node: NodeId, private readonly world: World, private readonly client: Client) {}

  add(): boolean {
    if (this.present) return false;
    this.present = true;
    this.changedAt = this.world.now;
    return true;
  }

  remove(): boolean {
    this.refusing = false;
    if (!this.present) return false;
    this.present = false;
    this.changedAt = this.world.now;
    return true;
  }

  /** A gratuitous ARP: only sent while the address is on the interface (arping binds to it). */
  announce(): void {
    if (this.present) this.client.heardGarp(this.node);
  }
}

export class SimVipManager implements VipManager {
  constructor(
    private readonly vip: HostVip,
    private readonly owner: Incarnation,
    private readonly world: World,
    private readonly inject: Injector,
  ) {}

  async isPresent(): Promise<boolean> {
    await this.world.sleep(this.owner, 1);
    return this.vip.present;
  }

  async claim(): Promise<{ changed: boolean }> {
    this.vip.refusing = false;
    const failure = this.inject('claim-vip');
    await this.world.sleep(this.owner, this.world.int(2, 10));
    if (failure === 'before') throw new Error('injected: ip addr add failed');
    const changed = this.vip.add();
    this.vip.announce();
    if (failure === 'after') throw new Error('injected: arping failed after the address was added');
    await this.world.sleep(this.owner, this.world.int(0, MAX_CLAIM_MS - 10));
    return { changed };
  }

  async release(): Promise<{ changed: boolean }> {
    const failure = this.inject('release-vip');
    await this.world.sleep(this.owner, this.world.int(1, MAX_RELEASE_MS));
    if (failure === 'before') throw new Error('injected: ip addr del failed');
    const changed = this.vip.remove();
    if (failure === 'after') throw new Error('injected: ip addr del reported failure after removing the address');
    return { changed };
  }

  async refuse(): Promise<void> {
    const failure = this.inject('refuse-vip');
    await this.world.sleep(this.owner, this.world.int(2, 10));
    if (failure === 'before') throw new Error('injected: nft failed');
    this.vip.refusing = true;
    if (failure === 'after') throw new Error('injected: nft reported failure after adding the table');
  }

  async announce(): Promise<void> {
    const failure = this.inject('announce-vip');
    await this.world.sleep(this.owner, this.world.int(1, 3));
    if (failure !== null) throw new Error('injected: arping failed');
    this.vip.announce();
  }
}

/** What the state file holds (`src/adapters/state-file.ts`). */
export interface StateFileContent {
  readonly epoch: number;
  readonly knownEpoch: number;
  readonly maintenance: Maintenance;
  readonly bootTimeMs: number;
  readonly switchoverIds?: readonly string[];
  /** The peer's last run heard (see `src/proto/admission.ts`). */
  readonly peer?: PeerSeen;
}

export class StateFile {
  content: StateFileContent = { epoch: 0, knownEpoch: 0, maintenance: { on: false, gen: 0 }, bootTimeMs: 0 };
  /** Set by the invariant checker: told about every write. */
  onWrite: (before: StateFileContent, after: StateFileContent) => void = () => undefined;

  write(next: StateFileContent): void {
    const before = this.content;
    this.content = next;
    this.onWrite(before, next);
  }
}

/** A daemon's `persist` dependency: ordered writes, like `stateWriter` in `src/daemon/run.ts`. */
export function persister(
  file: StateFile,
  owner: Incarnation,
  world: World,
  inject: Injector,
): (s: { epoch: number; knownEpoch: number; maintenance: Maintenance; switchoverIds: readonly string[] }) => Promise<void> {
  let chain: Promise<void> = Promise.resolve();
  return (s) => {
    const write = chain.catch(() => undefined).then(async () => {
      const failure = inject('persist-state');
      await world.sleep(owner, world.int(1, MAX_PERSIST_MS));
      if (failure === 'before') throw new Error('injected: state file not written (ENOSPC)');
      file.write({ ...file.content, ...s });
      if (failure === 'after') throw new Error('injected: fsync reported failure after the rename');
    });
    chain = write;
    return write;
  };
}

/** Audit records of both daemons, in order. */
export interface AuditRecord {
  readonly node: NodeId;
  readonly at: number;
  readonly event: string;
  readonly data: Readonly<Record<string, unknown>>;
}
