/**
 * The simulation's world: fake time, one event heap, and the `Clock` and `Scheduler`
 * the real `Runtime` is built with (`src/daemon/time.ts`).
 *
 * Every callback (a daemon's timers, the completion of its effects, datagrams arriving,
 * Redis replication, the client's writes, faults) is an entry in one heap ordered by
 * (time, phase, insertion order). The loop pops one entry, sets the clock to its time,
 * runs it, then lets every microtask it started settle (`setImmediate` runs only once
 * the microtask queue is empty) before the next entry: the Runtime is promise-based, and
 * in Node a timer callback's microtasks also all run before the next callback.
 *
 * Two things belong to a daemon process and are modelled here:
 *  - death: entries owned by an `Incarnation` are dropped once it has crashed, so the
 *    effects and timers of a killed daemon simply never come back;
 *  - stalls (SIGSTOP, a VM pause): entries addressed to a stalled node's daemon are held
 *    until the stall ends and then run at its end, timers first and I/O (datagrams,
 *    effect completions, signals) after, as Node's event loop orders its phases. The
 *    clock runs on meanwhile, so the Runtime sees its timers fire late.
 * World-owned entries (Redis, the network in flight, the client, faults) never stall.
 */
import type { Clock, Scheduler, TimerHandle } from '../../src/daemon/time.js';

export type NodeId = 'a' | 'b';
export const NODES: readonly NodeId[] = ['a', 'b'];
export const OTHER: Readonly<Record<NodeId, NodeId>> = { a: 'b', b: 'a' };

/** One run of a node's daemon process; everything it scheduled dies with it. */
export class Incarnation {
  alive = true;
  constructor(readonly node: NodeId, readonly number: number) {}
}

type Kind = 'timer' | 'io';

interface Entry {
  at: number;
  /** 0 normally; 1 for I/O held by a stall, which runs after the held timers. */
  phase: 0 | 1;
  order: number;
  readonly run: () => void;
  /** The daemon this callback is for (held while it is stalled), or null: world-owned. */
  readonly node: NodeId | null;
  /** The daemon process that scheduled it (dropped once it died), or null. */
  readonly owner: Incarnation | null;
  readonly kind: Kind;
  cancelled: boolean;
}

/**
 * Node runs a timer no sooner than 1 ms after it was set (`setTimeout(fn, 0)` is
 * `setTimeout(fn, 1)`), so a timer set from a callback runs after the I/O already waiting:
 * a daemon waking from a stall reads its sockets before a timer it re-armed at once fires.
 */
const NODE_MIN_TIMER_MS = 1;

/** A run that needs more heap entries than this is looping (a bug in the sim or the product). */
const MAX_STEPS = 2_000_000;

export class World {
  now = 0;
  /** Heap entries run so far (a cost measure). */
  steps = 0;
  readonly clock: Clock = { now: () => this.now };
  readonly random: () => number;
  private readonly heap = new EventHeap();
  private order = 0;
  private readonly stalledUntil: Record<NodeId, number> = { a: -1, b: -1 };

  constructor(seed: number) {
    this.random = mulberry32(seed);
  }

  /** A uniformly random integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.random() * (max - min + 1));
  }

  chance(p: number): boolean {
    return p > 0 && this.random() < p;
  }

  /** A world-owned event at `time` (never held, never dropped). */
  at(time: number, run: () => void): void {
    this.push({ at: Math.max(time, this.now), phase: 0, order: this.order++, run, node: null, owner: null, kind: 'timer', cancelled: false });
  }

  /** I/O for `node`'s daemon after `delayMs`: held while it is stalled, dropped when `owner` has died. */
  io(node: NodeId, owner: Incarnation | null, delayMs: number, run: () => void): void {
    this.push({ at: this.now + Math.max(0, delayMs), phase: 0, order: this.order++, run, node, owner, kind: 'io', cancelled: false });
  }

  /** Resolves after `ms` of fake time, unless `owner` dies first (then never). */
  sleep(owner: Incarnation, ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.io(owner.node, owner, ms, resolve));
  }

  /** The timers of one daemon process. */
  scheduler(owner: Incarnation): Scheduler {
    return {
      setTimer: (fn, delayMs): TimerHandle => {
        const entry: Entry = {
          at: this.now + Math.max(NODE_MIN_TIMER_MS, delayMs), phase: 0, order: this.order++, run: fn,
          node: owner.node, owner, kind: 'timer', cancelled: false,
        };
        this.push(entry);
        return { id: entry };
      },
      clearTimer: (handle) => {
        (handle.id as Entry).cancelled = true;
      },
    };
  }

  /** Stalls `node`'s daemon until `untilMs` (extends a stall already running). */
  stall(node: NodeId, untilMs: number): void {
    this.stalledUntil[node] = Math.max(this.stalledUntil[node], untilMs);
  }

  isStalled(node: NodeId): boolean {
    return this.stalledUntil[node] > this.now;
  }

  /**
   * Runs the heap until `untilMs`, calling `observe` after each entry has run and its
   * microtasks have settled.
   */
  async run(untilMs: number, observe: () => void): Promise<void> {
    for (;;) {
      const next = this.heap.peek();
      if (next === undefined || next.at > untilMs) break;
      this.heap.pop();
      if (next.cancelled || (next.owner !== null && !next.owner.alive)) continue;
      if (next.node !== null && this.stalledUntil[next.node] > next.at) {
        next.at = this.stalledUntil[next.node];
        next.phase = next.kind === 'timer' ? 0 : 1;
        next.order = this.order++;
        this.heap.push(next);
        continue;
      }
      this.now = next.at;
      next.run();
      await new Promise(setImmediate);
      observe();
      if (++this.steps > MAX_STEPS) throw new Error(`simulation exceeded ${MAX_STEPS} steps at ${this.now} ms`);
    }
    this.now = Math.max(this.now, untilMs);
  }

  private push(entry: Entry): void {
    this.heap.push(entry);
  }
}

/** Min-heap on (time, phase, insertion order). */
class EventHeap {
  private readonly items: Entry[] = [];

  peek(): Entry | undefined {
    return this.items[0];
  }

  push(item: Entry): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(a[i]!, a[parent]!)) break;
      [a[i], a[parent]] = [a[parent]!, a[i]!];
      i = parent;
    }
  }

  pop(): Entry | undefined {
    const a = this.items;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

function before(x: Entry, y: Entry): boolean {
  if (x.at !== y.at) return x.at < y.at;
  if (x.phase !== y.phase) return x.phase < y.phase;
  return x.order < y.order;
}

/** A small seeded PRNG (mulberry32): every history is reproducible from its seed. */
export function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}
