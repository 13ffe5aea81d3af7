/**
 * A deterministic discrete-event simulation of a redis-ha pair: two decision cores, two
 * simulated Redis servers, the VIP, and an in-memory network with delay, loss and
 * partitions, all on a fake clock. The cores are the real `step()`; only the world
 * around them is simulated. Used by the property tests in `cluster.test.ts`.
 */
import { nextDeadline, type CoreConfig, type CoreState } from '../../src/core/state.js';
import { initialState, step } from '../../src/core/step.js';
import type { Action, Advert, Event, RedisSnapshot } from '../../src/core/types.js';

export type NodeId = 'a' | 'b';

export interface Fault {
  /**
   * `switchover`: an operator asks `node` for a planned switchover at `at` (durationMs
   * unused); `maintenance`: maintenance on at `at` on `node`, off `durationMs` later.
   */
  readonly kind: 'redis-crash' | 'partition' | 'loss' | 'switchover' | 'maintenance';
  readonly node: NodeId;
  readonly at: number;
  readonly durationMs: number;
}

export interface SimOptions {
  readonly faults: readonly Fault[];
  readonly lossRate: number;
  readonly maxDelayMs: number;
  readonly seed: number;
  readonly advertIntervalMs: number;
  readonly healthIntervalMs: number;
  /** Run this long after the last fault has ended. */
  readonly settleMs: number;
}

interface SimRedis {
  alive: boolean;
  role: 'master' | 'replica';
  masterOf: NodeId | null;
  replId: string;
  offset: number;
}

interface SimNode {
  readonly id: NodeId;
  readonly config: CoreConfig;
  state: CoreState;
  redis: SimRedis;
  vip: boolean;
  timerGen: number;
  seq: number;
}

interface Scheduled {
  readonly at: number;
  readonly order: number;
  readonly run: () => void;
}

/** What the invariant checks look at after the run. */
export interface SimOutcome {
  readonly nodes: Record<NodeId, { role: string; vip: boolean; redisRole: string; masterOf: NodeId | null; reason: string }>;
  /** Invariant breaches seen while running (a FAULT node holding the VIP, ...). */
  readonly violations: readonly string[];
  /** Operator requests answered: `<node> <requestId> ok|failed: detail`. */
  readonly replies: readonly string[];
  readonly log: readonly string[];
}

const ADDR: Record<NodeId, string> = { a: '10.77.0.11', b: '10.77.0.12' };
const OTHER: Record<NodeId, NodeId> = { a: 'b', b: 'a' };
const REDIS_OP_MS = 20;
const RECONCILE_MS = 2000;

/** Runs one simulated history and reports the final state and any invariant breaches. */
export function simulate(opts: SimOptions): SimOutcome {
  let rand = mulberry32(opts.seed);
  const queue = new EventHeap();
  let order = 0;
  let now = 0;
  const log: string[] = [];
  const violations: string[] = [];
  const replies: string[] = [];
  const schedule = (at: number, fn: () => void): void => {
    queue.push({ at, order: order++, run: fn });
  };

  const mkConfig = (id: NodeId, priority: number): CoreConfig => ({
    nodeName: id, nodeAddress: ADDR[id], priority, preempt: false, preemptDelayMs: 0,
    advertIntervalMs: opts.advertIntervalMs, fall: 2, rise: 2, garpRefreshMs: 10_000,
    peerRedis: { host: ADDR[OTHER[id]], port: 6379 },
    switchoverMaxLagBytes: 1_000_000,
  });
  const nodes: Record<NodeId, SimNode> = {
    a: { id: 'a', config: mkConfig('a', 100), state: initialState(0, { epoch: 0, knownEpoch: 0 }),
      redis: { alive: true, role: 'master', masterOf: null, replId: 'h0', offset: 0 }, vip: false, timerGen: 0, seq: 0 },
    b: { id: 'b', config: mkConfig('b', 90), state: initialState(0, { epoch: 0, knownEpoch: 0 }),
      redis: { alive: true, role: 'replica', masterOf: 'a', replId: 'h0', offset: 0 }, vip: false, timerGen: 0, seq: 0 },
  };

  const faultActive = (kind: Fault['kind'], node: NodeId): boolean =>
    opts.faults.some((f) => f.kind === kind && f.node === node && now >= f.at && now < f.at + f.durationMs);
  const linkUp = (from: NodeId, to: NodeId): boolean => !faultActive('partition', from) && !faultActive('partition', to);
  const lossy = (): boolean => opts.faults.some((f) => f.kind === 'loss' && now >= f.at && now < f.at + f.durationMs);

  const snapshot = (r: SimRedis): RedisSnapshot => ({
    role: r.role, replId: r.replId, replId2: '', offset: r.offset, secondOffset: -1,
    masterHost: r.masterOf ? ADDR[r.masterOf] : null, masterPort: r.masterOf ? 6379 : null,
    linkUp: r.masterOf !== null && nodes[r.masterOf].redis.alive, syncInProgress: false, connectedReplicas: 0,
  });

  const feed = (n: SimNode, e: Event): void => {
    const before = n.state.role;
    const r = step(n.state, e, now, n.config);
    n.state = r.state;
    if (r.state.role !== before) log.push(`${now} ${n.id} ${before}->${r.state.role}: ${r.reason}`);
    for (const a of r.actions) perform(n, a);
    if (n.state.role === 'FAULT' && n.vip) violations.push(`${now} ${n.id} holds the VIP in FAULT`);
    armTimer(n);
  };

  const armTimer = (n: SimNode): void => {
    const gen = ++n.timerGen;
    const d = nextDeadline(n.state);
    if (!d) return;
    schedule(Math.max(d.at, now), () => {
      if (n.timerGen === gen) feed(n, { type: 'timer-fired', timer: d.timer });
    });
  };

  const perform = (n: SimNode, a: Action): void => {
    switch (a.type) {
      case 'send-advert': {
        const to = nodes[OTHER[n.id]];
        const advert: Advert = { ...a.advert, groupId: 51, bootTimeMs: 1, seq: ++n.seq };
        if (!linkUp(n.id, to.id) || (lossy() && rand() < opts.lossRate)) return;
        const from = n.id;
        schedule(now + rand() * opts.maxDelayMs, () => {
          if (linkUp(from, to.id)) feed(to, { type: 'advert-received', advert, fromAddress: ADDR[from] });
        });
        return;
      }
      case 'promote-redis':
        schedule(now + REDIS_OP_MS, () => {
          const ok = n.redis.alive;
          if (ok) {
            n.redis.role = 'master';
            n.redis.masterOf = null;
            n.redis.replId = `h${now}${n.id}`;
          }
          feed(n, { type: 'promotion-finished', ok, detail: ok ? 'promoted' : 'connection refused', redis: ok ? snapshot(n.redis) : null });
        });
        return;
      case 'replicate-from':
        schedule(now + REDIS_OP_MS, () => {
          const ok = n.redis.alive;
          if (ok) {
            n.redis.role = 'replica';
            n.redis.masterOf = OTHER[n.id];
          }
          feed(n, { type: 'demotion-finished', ok, detail: ok ? 'replicating' : 'connection refused' });
        });
        return;
      case 'claim-vip':
        n.vip = true;
        schedule(now, () => feed(n, { type: 'vip-claimed' }));
        return;
      case 'release-vip':
        n.vip = false;
        return;
      case 'disconnect-clients':
        return;
      case 'switchover-redis':
        schedule(now + REDIS_OP_MS, () => {
          // FAILOVER TO: needs both servers up and the peer replicating us.
          const peer = nodes[OTHER[n.id]];
          const ok = n.redis.alive && peer.redis.alive && n.redis.role === 'master' && peer.redis.masterOf === n.id;
          if (ok) {
            Object.assign(peer.redis, { role: 'master', masterOf: null, replId: `so${now}${peer.id}` });
            Object.assign(n.redis, { role: 'replica', masterOf: peer.id });
          }
          feed(n, {
            type: 'redis-switchover-finished', outcome: ok ? 'done' : 'refused', method: 'failover', detail: ok ? 'FAILOVER done' : 'refused',
            pausedMs: ok ? 5 : null, redis: n.redis.alive ? snapshot(n.redis) : null,
          });
        });
        return;
      case 'send-message': {
        const to = nodes[OTHER[n.id]];
        const m = a.message;
        if (!linkUp(n.id, to.id) || (lossy() && rand() < opts.lossRate)) return;
        const from = n.id;
        schedule(now + rand() * opts.maxDelayMs, () => {
          if (!linkUp(from, to.id)) return;
          if (m.kind === 'switchover-request') {
            feed(to, { type: 'switchover-requested', requestId: m.requestId, timeoutMs: m.timeoutMs, force: m.force, user: m.user, origin: 'peer' });
          } else if (m.kind === 'handover') {
            feed(to, { type: 'handover-received', requestId: m.requestId, epoch: m.epoch, force: m.force });
          } else {
            feed(to, { type: 'switchover-result-received', requestId: m.requestId, ok: m.ok, detail: m.detail });
          }
        });
        return;
      }
      case 'reply':
        replies.push(`${n.id} ${a.requestId} ${a.ok ? 'ok' : 'failed'}: ${a.detail}`);
        return;
      case 'announce-vip':
      case 'persist-state':
      case 'audit':
      case 'exit':
      case 'detach':
        return;
      default: {
        const never: never = a;
        throw new Error(`unknown action ${JSON.stringify(never)}`);
      }
    }
  };

  const healthLoop = (n: SimNode, at: number): void => {
    schedule(at, () => {
      const r = n.redis;
      feed(n, r.alive
        ? { type: 'health-checked', ok: true, detail: 'PONG', redis: snapshot(r), startedAt: now }
        : { type: 'health-checked', ok: false, detail: 'connection refused', redis: null, startedAt: now });
      healthLoop(n, now + opts.healthIntervalMs);
    });
  };
  const reconcileLoop = (n: SimNode, at: number): void => {
    schedule(at, () => {
      feed(n, { type: 'vip-observed', present: n.vip });
      reconcileLoop(n, now + RECONCILE_MS);
    });
  };

  // Redis crashes: down for the duration, then restarted as a bare master (no replicaof).
  for (const f of opts.faults) {
    if (f.kind !== 'redis-crash') continue;
    schedule(f.at, () => {
      nodes[f.node].redis.alive = false;
    });
    schedule(f.at + f.durationMs, () => {
      const r = nodes[f.node].redis;
      Object.assign(r, { alive: true, role: 'master', masterOf: null, replId: `restart${now}` });
    });
  }

  // Operator requests.
  let requests = 0;
  for (const f of opts.faults) {
    const n = nodes[f.node];
    if (f.kind === 'switchover') {
      schedule(f.at, () => feed(n, { type: 'switchover-requested', requestId: `s${++requests}`, timeoutMs: 1000, force: false, user: 'sim', origin: 'local' }));
    } else if (f.kind === 'maintenance') {
      schedule(f.at, () => feed(n, { type: 'maintenance-requested', requestId: `m${++requests}`, on: true, user: 'sim' }));
      schedule(f.at + f.durationMs, () => feed(n, { type: 'maintenance-requested', requestId: `m${++requests}`, on: false, user: 'sim' }));
    }
  }

  const end = Math.max(0, ...opts.faults.map((f) => f.at + f.durationMs)) + opts.settleMs;
  for (const n of Object.values(nodes)) {
    schedule(rand() * 200, () => feed(n, { type: 'started' }));
    healthLoop(n, 5 + rand() * opts.healthIntervalMs);
    reconcileLoop(n, rand() * RECONCILE_MS);
  }

  let steps = 0;
  const MAX_STEPS = 500_000;
  while (queue.size > 0 && steps++ < MAX_STEPS) {
    const next = queue.pop()!;
    if (next.at > end) break;
    now = next.at;
    next.run();
  }
  if (steps >= MAX_STEPS) violations.push('step budget exhausted');
  rand = () => 0;

  const view = (n: SimNode) => ({
    role: n.state.role, vip: n.vip, redisRole: n.redis.role, masterOf: n.redis.masterOf, reason: n.state.reason,
  });
  return { nodes: { a: view(nodes.a), b: view(nodes.b) }, violations, log, replies };
}

/** Min-heap on (time, insertion order): the simulation's event queue. */
class EventHeap {
  private readonly items: Scheduled[] = [];

  get size(): number {
    return this.items.length;
  }

  push(item: Scheduled): void {
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

  pop(): Scheduled | undefined {
    const a = this.items;
    const top = a[0];
    const lastItem = a.pop();
    if (a.length > 0 && lastItem) {
      a[0] = lastItem;
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

function before(x: Scheduled, y: Scheduled): boolean {
  return x.at < y.at || (x.at === y.at && x.order < y.order);
}

function mulberry32(seed: number): () => number {
  let t = seed >>> 0;
  return () => {
    t = (t + 0x6d2b79f5) >>> 0;
    let r = Math.imul(t ^ (t >>> 15), 1 | t);
    r ^= r + Math.imul(r ^ (r >>> 7), 61 | r);
    return ((r ^ (r >>> 14)) >>> 0) / 4294967296;
  };
}
