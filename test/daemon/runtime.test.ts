/**
 * The real `Runtime` on fake time with recording adapters: every action runs in the
 * order the core emitted it (persist before promote, release before demote), adverts
 * keep flowing while a long effect runs, a thrown effect of every kind brings the core
 * back to a state it can act from, stale effects are dropped by the core's word, and
 * the runtime's own loops (timers, stall detection, requests, detach) behave.
 */
import { describe, expect, it } from 'vitest';
import { EPOCH_CEILING } from '../../src/core/epoch.js';
import { initialState, type CoreState } from '../../src/core/state.js';
import type { AdvertBody, Event, HostPort, Maintenance, PeerRequest, RedisSnapshot } from '../../src/core/types.js';
import { DOWN_RECHECK_MS, LOST_RECHECK_FOR_MS } from '../../src/core/timing.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { Runtime, type RedisProbe, type RuntimeDeps, type SwitchoverCall, type SwitchoverReport } from '../../src/daemon/runtime.js';
import { A_ADDR, B_ADDR, REPL_A, advert, coreConfig, masterSnap, replicaSnap } from '../core/fixtures.js';
import { FakeTime, settle } from '../helpers/fake-time.js';

/** A promise resolved from outside: an effect that takes as long as the test wants. */
function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: unknown) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

type Hook<A extends unknown[], R> = (...args: A) => Promise<R>;

/** Recording adapters; each effect can be replaced by a test. */
class World {
  readonly time = new FakeTime();
  readonly log: string[] = [];
  readonly adverts: AdvertBody[] = [];
  readonly messages: PeerRequest[] = [];
  readonly audit: { event: string; data: Readonly<Record<string, unknown>> }[] = [];
  vipPresent = false;
  snapshot: RedisSnapshot | null;
  persistHook: Hook<[{ epoch: number; knownEpoch: number; maintenance: Maintenance }], void> = async () => undefined;
  promoteHook: Hook<[HostPort | null], RedisProbe> = async () => ({ ok: true, detail: 'promoted', redis: masterSnap() });
  replicateHook: Hook<[HostPort], { ok: boolean; detail: string }> = async () => ({ ok: true, detail: 'replicating' });
  switchOverHook: Hook<[SwitchoverCall], SwitchoverReport> = async () =>
    ({ outcome: 'done', method: 'failover', detail: 'FAILOVER done', pausedMs: 60, redis: replicaSnap({ masterHost: B_ADDR }) });
  claimHook: Hook<[], { changed: boolean }> = async () => ({ changed: true });
  releaseHook: Hook<[], { changed: boolean }> = async () => ({ changed: true });
  announceHook: Hook<[], void> = async () => undefined;
  /** What the runtime registered to hear of a lost health connection. */
  connectionLost: (() => void) | null = null;
  /** What a probe of the peer's Redis answers, and how often it was asked. */
  peerProbe: { down: boolean; detail: string } = { down: false, detail: 'answered as master' };
  peerProbes = 0;
  checks = 0;
  /** How long each health check takes on the fake clock (0: answers at once). */
  checkMs = 0;
  /** Answers given before the snapshot decides (first one first): e.g. a reset connection. */
  readonly queuedChecks: { ok: false; detail: string; redis: null; timedOut?: true; clusterEnabled?: true }[] = [];

  constructor(snapshot: RedisSnapshot | null) {
    this.snapshot = snapshot;
  }

  deps(core = coreConfig()): RuntimeDeps {
    return {
      core,
      healthIntervalMs: 500,
      reconcileIntervalMs: 2000,
      redis: {
        check: async () => {
          this.checks += 1;
          if (this.checkMs > 0) await new Promise<void>((resolve) => this.time.setTimer(resolve, this.checkMs));
          const queued = this.queuedChecks.shift();
          if (queued !== undefined) return queued;
          return this.snapshot ? { ok: true, detail: 'PONG', redis: this.snapshot } : { ok: false, detail: 'connection refused', redis: null, down: true };
        },
        onConnectionLost: (listener) => { this.connectionLost = listener; },
        probePeer: async () => { this.peerProbes += 1; return this.peerProbe; },
        promote: async (from) => {
          this.log.push('promote:start');
          const r = await this.promoteHook(from);
          if (r.ok && r.redis) this.snapshot = r.redis;
          this.log.push('promote:end');
          return r;
        },
        replicateFrom: async (m) => { this.log.push('replicate'); return this.replicateHook(m); },
        switchOver: async (c) => { this.log.push('switchover:start'); const r = await this.switchOverHook(c); this.log.push('switchover:end'); return r; },
        disconnectClients: async () => { this.log.push('disconnect'); return 'killed 0'; },
        fence: async (writes) => { this.log.push(`fence:${writes}`); return { ok: true, detail: `writes ${writes}` }; },
      },
      quorum: null,
      link: async () => ({ up: true, detail: 'up' }),
      vip: {
        isPresent: async () => this.vipPresent,
        claim: async () => { this.log.push('claim'); const r = await this.claimHook(); this.vipPresent = true; return r; },
        release: async () => { this.log.push('release'); const r = await this.releaseHook(); this.vipPresent = false; return r; },
        announce: async () => { this.log.push('announce'); await this.announceHook(); },
      },
      adverts: {
        send: (body) => { this.log.push(`advert:${body.state}`); this.adverts.push(body); },
        sendMessage: (m) => { this.log.push(`message:${m.kind}`); this.messages.push(m); },
      },
      audit: { append: async (event, data) => void this.audit.push({ event, data }) },
      persist: async (s) => { this.log.push(`persist:start:${s.epoch}`); await this.persistHook(s); this.log.push(`persist:end:${s.epoch}`); },
      logger: silentLogger(),
      clock: this.time,
      scheduler: this.time,
      stallThresholdMs: 1000,
    };
  }

  audited(event: string): boolean {
    return this.audit.some((r) => r.event === event);
  }
}

const aMaster = (over: Partial<Parameters<typeof advert>[0]> = {}): Event =>
  ({ type: 'advert-received', advert: advert({ state: 'MASTER', epoch: 1, ...over }), fromAddress: A_ADDR });

/** b: a BACKUP following a, with the runtime started and a's adverts heard once. */
async function backupB(w: World): Promise<Runtime> {
  const rt = new Runtime(w.deps(), initialState(w.time.now(), { epoch: 1, knownEpoch: 1 }));
  rt.start({ firstCheck: { type: 'health-checked', ok: true, detail: 'PONG', redis: replicaSnap(), startedAtMs: 0 } });
  rt.dispatch(aMaster());
  await w.time.advance(10);
  expect(rt.current.role).toBe('BACKUP');
  return rt;
}

/** a: MASTER holding the VIP with b a live BACKUP. */
async function masterA(w: World): Promise<Runtime> {
  const cfg = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });
  w.snapshot = masterSnap({ replId: REPL_A, connectedReplicas: 1 });
  const rt = new Runtime(w.deps(cfg), initialState(0, { epoch: 1, knownEpoch: 1 }));
  rt.start({ firstCheck: { type: 'health-checked', ok: true, detail: 'PONG', redis: w.snapshot, startedAtMs: 0 } });
  const bBackup = advert({ nodeName: 'b', priority: 90, state: 'BACKUP', epoch: 1, redis: { role: 'replica', replId: REPL_A, replId2: '', offset: 1000, secondOffset: -1 } });
  rt.dispatch({ type: 'advert-received', advert: bBackup, fromAddress: B_ADDR });
  await w.time.advance(3500);
  expect(rt.current).toMatchObject({ role: 'MASTER', vipClaimed: true });
  return rt;
}

/** Silence from a until b's master-down timer fires: b takes over. */
async function silenceUntilTakeover(w: World, rt: Runtime): Promise<void> {
  for (let i = 0; i < 40 && rt.current.role === 'BACKUP'; i++) await w.time.advance(100);
}

describe('every action runs in the order the core emitted it', () => {
  it('the new epoch is on disk before Redis is promoted, and Redis is promoted before the VIP is claimed', async () => {
    const w = new World(replicaSnap());
    const disk = deferred<void>();
    w.persistHook = () => disk.promise;
    const rt = await backupB(w);
    await silenceUntilTakeover(w, rt);
    expect(rt.current).toMatchObject({ role: 'MASTER', redisOp: 'promoting', epoch: 2 });
    await w.time.advance(200);
    expect(w.log).toContain('persist:start:2');
    expect(w.log).not.toContain('promote:start');
    disk.resolve();
    await w.time.advance(10);
    const order = ['persist:start:2', 'persist:end:2', 'promote:start', 'promote:end', 'claim'].map((e) => w.log.indexOf(e));
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((x, y) => x - y)).toEqual(order);
    // The takeover's own advert (epoch 2) waited for the epoch to be durable.
    expect(w.log.indexOf('advert:MASTER')).toBeGreaterThan(w.log.indexOf('persist:end:2'));
    expect(rt.current).toMatchObject({ role: 'MASTER', redisOp: null, vipClaimed: true });
  });

  it('adverts keep flowing while a long effect runs (a switchover of several seconds)', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    const long = deferred<SwitchoverReport>();
    w.switchOverHook = () => long.promise;
    const reply = rt.request({ type: 'switchover-requested', requestId: 'r1', timeoutMs: 8000, force: false, user: 'op', origin: 'local' }, 20_000);
    await w.time.advance(10);
    expect(w.log).toContain('switchover:start');
    const before = w.adverts.length;
    await w.time.advance(5000);
    expect(w.adverts.length - before).toBeGreaterThanOrEqual(4);
    expect(w.adverts.at(-1)?.flags.switchingOver).toBe(true);
    long.resolve({ outcome: 'rolled-back', method: 'failover', detail: 'timeout', pausedMs: null, redis: w.snapshot });
    expect(await reply).toMatchObject({ ok: false });
  });

  it('an announcement queued behind a long effect is dropped once the node is no longer master (the core says so)', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    const slowClaim = deferred<{ changed: boolean }>();
    w.claimHook = () => slowClaim.promise;
    w.vipPresent = false;
    await w.time.advance(2100); // the reconcile loop finds the VIP missing and claims it (slowly)
    expect(w.log.filter((e) => e === 'claim')).toHaveLength(2);
    rt.dispatch({ type: 'timer-fired', timer: 'garp-refresh' }); // ignored: not armed for now
    // A rival master with a newer epoch: a steps down while the claim is still running.
    const rival = advert({ nodeName: 'b', priority: 90, state: 'MASTER', epoch: 9, redis: { role: 'master', replId: 'c'.repeat(40), replId2: '', offset: 9, secondOffset: -1 } });
    rt.dispatch({ type: 'advert-received', advert: rival, fromAddress: B_ADDR });
    expect(rt.current.role).toBe('BACKUP');
    const announcesBefore = w.log.filter((e) => e === 'announce').length;
    slowClaim.resolve({ changed: true });
    await w.time.advance(50);
    expect(w.log.filter((e) => e === 'announce').length).toBe(announcesBefore);
    expect(w.log.lastIndexOf('release')).toBeGreaterThan(w.log.lastIndexOf('claim'));
    expect(w.vipPresent).toBe(false);
  });
});

describe('a thrown effect of every kind leaves the core able to act', () => {
  it('persist-state: Redis is not promoted on an epoch that is not durable; the node stays BACKUP with the reason', async () => {
    const w = new World(replicaSnap());
    w.persistHook = async () => { throw new Error('ENOSPC: no space left on device'); };
    const rt = await backupB(w);
    await silenceUntilTakeover(w, rt);
    await w.time.advance(50);
    expect(w.log).not.toContain('promote:start');
    expect(rt.current).toMatchObject({ role: 'BACKUP', redisOp: null });
    expect(rt.current.reason).toMatch(/ENOSPC/);
    expect(w.audit.find((r) => r.event === 'effect-failed')?.data).toMatchObject({ action: 'persist-state', skipped: ['send-advert', 'promote-redis'] });
  });

  it('promote-redis: the node steps down and takes over again at the next silence', async () => {
    const w = new World(replicaSnap());
    let attempts = 0;
    w.promoteHook = async () => {
      attempts++;
      if (attempts === 1) throw new Error('socket hang up');
      return { ok: true, detail: 'promoted', redis: masterSnap() };
    };
    const rt = await backupB(w);
    await silenceUntilTakeover(w, rt);
    await w.time.advance(50);
    expect(rt.current.role).toBe('BACKUP');
    expect(rt.current.reason).toMatch(/promotion failed: .*socket hang up/);
    await silenceUntilTakeover(w, rt);
    await w.time.advance(100);
    expect(attempts).toBe(2);
    expect(rt.current).toMatchObject({ role: 'MASTER', redisOp: null, vipClaimed: true });
  });

  it('replicate-from: the demotion is retried at a later health check', async () => {
    const w = new World(replicaSnap({ masterHost: '10.77.0.99' }));
    let calls = 0;
    w.replicateHook = async () => {
      calls++;
      if (calls === 1) throw new Error('READONLY');
      w.snapshot = replicaSnap();
      return { ok: true, detail: 'replicating' };
    };
    const rt = new Runtime(w.deps(), initialState(0, { epoch: 1, knownEpoch: 1 }));
    rt.start({ firstCheck: { type: 'health-checked', ok: true, detail: 'PONG', redis: w.snapshot, startedAtMs: 0 } });
    rt.dispatch(aMaster());
    await w.time.advance(1200);
    expect(calls).toBe(2);
    expect(rt.current).toMatchObject({ role: 'BACKUP', redisOp: null });
    expect(w.audited('effect-failed')).toBe(true);
  });

  it('switchover-redis: the operator hears the failure and a later switchover is accepted', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    w.switchOverHook = async () => { throw new Error('connection closed'); };
    const first = await rt.request({ type: 'switchover-requested', requestId: 'r1', timeoutMs: 5000, force: false, user: 'op', origin: 'local' }, 20_000);
    expect(first).toMatchObject({ ok: false });
    expect(first.detail).toMatch(/connection closed/);
    expect(rt.current).toMatchObject({ role: 'MASTER', redisOp: null, switchover: null });
    w.switchOverHook = async () => ({ outcome: 'refused', method: null, detail: 'peer lags', pausedMs: null, redis: w.snapshot });
    const second = await rt.request({ type: 'switchover-requested', requestId: 'r2', timeoutMs: 5000, force: false, user: 'op', origin: 'local' }, 20_000);
    expect(second.detail).toMatch(/peer lags/);
  });

  it('claim-vip: retried by the reconcile loop until it holds', async () => {
    const w = new World(replicaSnap());
    let claims = 0;
    w.claimHook = async () => {
      claims++;
      if (claims === 1) throw new Error('RTNETLINK answers: Operation not permitted');
      return { changed: true };
    };
    const rt = await backupB(w);
    await silenceUntilTakeover(w, rt);
    await w.time.advance(100);
    expect(rt.current).toMatchObject({ role: 'MASTER', vipClaimed: false, vipClaimFailures: 1 });
    w.vipPresent = false;
    await w.time.advance(2100);
    expect(claims).toBe(2);
    expect(rt.current).toMatchObject({ role: 'MASTER', vipClaimed: true, vipClaimFailures: 0 });
  });

  it('release-vip: removed at the reconcile loop\'s next turn', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    let releases = 0;
    w.releaseHook = async () => {
      releases++;
      if (releases === 1) throw new Error('ip: timed out');
      return { changed: true };
    };
    const keepPresent = w.vipPresent;
    w.snapshot = null; // the local Redis dies: FAULT, release
    await w.time.advance(1100);
    expect(rt.current.role).toBe('FAULT');
    expect(keepPresent).toBe(true);
    w.vipPresent = true; // the failed release left it there
    await w.time.advance(2100);
    expect(releases).toBe(2);
    expect(w.vipPresent).toBe(false);
  });
});

describe('the runtime\'s own loops', () => {
  it('a timer that fires far too late is reported as a stall, not acted on', async () => {
    const w = new World(replicaSnap());
    const rt = await backupB(w);
    const before: CoreState = rt.current;
    w.time.jump(10_000); // the process was stopped: every deadline is long past
    await w.time.advance(1);
    expect(w.audited('stall-detected')).toBe(true);
    expect(rt.current.role).toBe('BACKUP');
    expect(rt.current.timers['master-down']).toBeGreaterThan(before.timers['master-down']!);
  });

  it('a request nobody answers times out on the injected scheduler', async () => {
    const w = new World(replicaSnap());
    const rt = await backupB(w);
    // A switchover forwarded to a master that never answers: the core waits for the peer.
    const pending = rt.request({ type: 'switchover-requested', requestId: 'r9', timeoutMs: 1000, force: false, user: 'op', origin: 'local' }, 3000);
    await w.time.advance(3001);
    expect(await pending).toMatchObject({ ok: false, detail: expect.stringMatching(/no answer from the daemon within 3000 ms/) });
  });

  it('a restart in place is audited, runs the queued effects, then stops every loop without resigning', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    const advertsBefore = w.adverts.length;
    rt.dispatch({ type: 'detach-requested' });
    expect(await rt.done).toBe(0);
    await w.time.advance(5000);
    expect(w.adverts.length).toBe(advertsBefore);
    expect(w.time.armed).toBe(0);
    expect(w.audited('daemon-detached')).toBe(true);
    expect(w.vipPresent).toBe(true);
  });

  it('a planned stop resigns (priority 0, twice) after releasing the VIP, then exits', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    const from = w.log.length;
    rt.dispatch({ type: 'shutdown-requested' });
    expect(await rt.done).toBe(0);
    expect(w.log.slice(from)).toEqual(['release', 'advert:MASTER', 'advert:MASTER']);
    expect(w.adverts.slice(-2).map((a) => a.priority)).toEqual([0, 0]);
    expect(w.audited('vip-released')).toBe(true);
  });

  it('dispatchAndSettle resolves once the step\'s actions ran (the control socket\'s audit record)', async () => {
    const w = new World(replicaSnap());
    const rt = await backupB(w);
    await rt.dispatchAndSettle({ type: 'control-handled', record: { command: 'status' } });
    expect(w.audit.at(-1)).toEqual({ event: 'control-request', data: { command: 'status' } });
    await settle();
  });
});

describe('issue 10: the state file and the advert encoder cannot fail silently', () => {
  it('a state write that fails is retried; no takeover starts until the epoch is on disk', async () => {
    const w = new World(replicaSnap());
    const rt = await backupB(w);
    let failing = true;
    w.persistHook = async () => { if (failing) throw new Error('EROFS: read-only file system'); };
    await silenceUntilTakeover(w, rt);
    // The takeover began (MASTER), its persist failed, the promotion never ran.
    await w.time.advance(10);
    expect(w.log).not.toContain('promote:start');
    expect(rt.current.role).toBe('BACKUP');
    expect(rt.current.persistFailure).toMatchObject({ attempts: 1 });
    // The write is retried on its own timer (backing off); takeovers are held meanwhile.
    const persistsBefore = w.log.filter((l) => l.startsWith('persist:start')).length;
    await w.time.advance(8000);
    expect(w.log.filter((l) => l.startsWith('persist:start')).length).toBeGreaterThan(persistsBefore + 1);
    expect(w.log).not.toContain('promote:start');
    expect(rt.current.role).toBe('BACKUP');
    expect(w.audited('takeover-held')).toBe(true);
    // The disk comes back: the next retry writes, and the next master-down takes over,
    // its epoch on disk before the promotion starts.
    failing = false;
    for (let i = 0; i < 200 && rt.current.role !== 'MASTER'; i++) await w.time.advance(100);
    expect(w.audited('state-file-recovered')).toBe(true);
    expect(rt.current.role).toBe('MASTER');
    await w.time.advance(50);
    const epoch = rt.current.epoch;
    const persisted = w.log.indexOf(`persist:end:${epoch}`);
    expect(persisted).toBeGreaterThanOrEqual(0);
    expect(persisted).toBeLessThan(w.log.indexOf('promote:start'));
    expect(rt.current.persistFailure).toBeNull();
  });

  it('an advert with the largest epoch does not stop the master advertising', async () => {
    const w = new World(masterSnap());
    const rt = await masterA(w);
    const known = rt.current.knownEpoch;
    const poisoned = advert({ nodeName: 'b', priority: 90, state: 'BACKUP', epoch: EPOCH_CEILING, seq: 50,
      redis: { role: 'replica', replId: REPL_A, replId2: '', offset: 1000, secondOffset: -1 } });
    rt.dispatch({ type: 'advert-received', advert: poisoned, fromAddress: B_ADDR });
    const before = w.adverts.length;
    await w.time.advance(5000);
    expect(rt.current).toMatchObject({ role: 'MASTER', knownEpoch: known });
    expect(w.adverts.length).toBeGreaterThanOrEqual(before + 4);
    expect(w.adverts.at(-1)?.epoch).toBe(rt.current.epoch);
    expect(w.audited('epoch-not-adopted')).toBe(true);
  });

  it('an advert that cannot be encoded sends the node to FAULT, visibly, instead of a silent master', async () => {
    // The transport throws for an unencodable body (an AdvertEncodeError).
    const broken = new World(masterSnap());
    const cfg = coreConfig({ nodeName: 'a', nodeAddress: A_ADDR, priority: 100, peerRedis: { host: B_ADDR, port: 6379 } });
    const d = broken.deps(cfg);
    const rt2 = new Runtime({ ...d, adverts: { ...d.adverts, send: () => { throw new Error('epoch 4294967296 is not an integer in 0..4294967295'); } } },
      initialState(0, { epoch: 1, knownEpoch: 1 }));
    rt2.start({ firstCheck: { type: 'health-checked', ok: true, detail: 'PONG', redis: masterSnap(), startedAtMs: 0 } });
    await broken.time.advance(5000);
    expect(rt2.current.role).toBe('FAULT');
    expect(rt2.current.reason).toMatch(/adverts cannot be encoded/);
    // Recorded once, not once per advert tick; and it stays FAULT though Redis is healthy.
    expect(broken.audit.filter((r) => r.event === 'effect-failed' && r.data['action'] === 'send-advert')).toHaveLength(1);
    expect(rt2.current.advertFailure).toMatch(/not an integer/);
  });
});

describe("the backup's own look at its master's Redis (its replica's link dropped)", () => {
  it('probes the master once when the link goes down; a refusal, and no advert after it, is taken over within one advert interval', async () => {
    const w = new World(replicaSnap());
    const rt = await backupB(w); // a's advert heard at ~10 ms: master-down at ~3.76 s
    await w.time.advance(600);
    expect(w.peerProbes).toBe(0); // the link is up: nothing to look at
    w.peerProbe = { down: true, detail: 'connection refused' };
    w.snapshot = replicaSnap({ linkUp: false });
    await w.time.advance(500); // the next health check sees the link down
    expect(w.peerProbes).toBe(1);
    expect(w.audited('peer-redis-refused')).toBe(true);
    expect(rt.current.role).toBe('BACKUP');
    await w.time.advance(2000); // one advert interval + skew after the refusal (at ~1.3 s), before 3.76 s
    expect(rt.current.role).toBe('MASTER');
    expect(w.log).toContain('promote:start');
  });

  it('leaves the master-down timer to decide when the master answers, and probes once per drop', async () => {
    const w = new World(replicaSnap());
    const rt = await backupB(w);
    await w.time.advance(600);
    w.snapshot = replicaSnap({ linkUp: false });
    await w.time.advance(1500); // three checks with the link down: one drop, one probe, one advert asked for
    expect(w.peerProbes).toBe(1);
    expect(w.messages.filter((m) => m.kind === 'advert-request')).toHaveLength(1);
    expect(rt.current.role).toBe('BACKUP');
    w.snapshot = replicaSnap();
    await w.time.advance(500);
    w.snapshot = replicaSnap({ linkUp: false });
    await w.time.advance(500);
    expect(w.peerProbes).toBe(2);
    expect(w.messages.filter((m) => m.kind === 'advert-request')).toHaveLength(2);
  });
});

describe('a lost health connection', () => {
  it('is checked again at once, not at the next interval: a MASTER whose Redis died goes FAULT and advertises it', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    expect(w.connectionLost).not.toBeNull();
    await w.time.advance(250); // mid-interval (500 ms)
    const before = w.checks;
    w.snapshot = null; // the Redis process is gone: its connection closed, a new one is refused
    w.connectionLost?.();
    await w.time.advance(1);
    expect(w.checks).toBe(before + 1);
    expect(rt.current.role).toBe('FAULT');
    expect(w.adverts.at(-1)?.state).toBe('FAULT');
  });

  it('a check reset right after the loss is repeated within DOWN_RECHECK_MS, not at the next interval: the refusal that follows is seen before a restarted Redis', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    await w.time.advance(250); // mid-interval (500 ms)
    const before = w.checks;
    // The dying server's listener still queued the SYN, then reset it (measured: ~1 in 6).
    w.snapshot = null;
    w.queuedChecks.push({ ok: false, detail: 'connection reset', redis: null }, { ok: false, detail: 'connection reset', redis: null });
    w.connectionLost?.();
    await w.time.advance(1);
    expect(w.checks).toBe(before + 1);
    expect(rt.current.role).toBe('MASTER'); // one failure among `fall`: no proof yet
    await w.time.advance(DOWN_RECHECK_MS);
    expect(w.checks).toBe(before + 2);
    await w.time.advance(DOWN_RECHECK_MS);
    expect(w.checks).toBe(before + 3); // refused: the process is gone
    expect(rt.current.role).toBe('FAULT');
  });

  it('a Redis restarted as a Redis Cluster node is proof, not a quiet repeat: FAULT at the first check that finds it, nothing sent to it', async () => {
    const w = new World(null);
    const rt = await masterA(w); // fall 2
    await w.time.advance(250);
    const mark = w.log.length;
    w.queuedChecks.push(
      { ok: false, detail: 'connection reset', redis: null },
      { ok: false, detail: 'local Redis 127.0.0.1:6379 is a Redis Cluster node (cluster_enabled:1, cluster_state:fail)', redis: null, clusterEnabled: true },
    );
    w.connectionLost?.();
    await w.time.advance(1);
    expect(rt.current.role).toBe('MASTER'); // the reset: one failure, no proof
    await w.time.advance(DOWN_RECHECK_MS);
    expect(rt.current.role).toBe('FAULT');
    expect(rt.current.reason).toMatch(/^local Redis 127\.0\.0\.1:6379 is a Redis Cluster node/);
    expect(rt.current.health.clusterEnabled).toBe(true);
    expect(w.log.slice(mark).filter((e) => !e.startsWith('advert:'))).toEqual(['release']);
  });

  it('after the loss, failed checks are repeated quickly for LOST_RECHECK_FOR_MS only, then the fixed rate resumes', async () => {
    const w = new World(null);
    await masterA(w);
    await w.time.advance(250);
    const before = w.checks;
    for (let i = 0; i < 1000; i++) w.queuedChecks.push({ ok: false, detail: 'connection reset', redis: null });
    w.connectionLost?.();
    await w.time.advance(LOST_RECHECK_FOR_MS + 1);
    const quick = w.checks - before;
    expect(quick).toBeGreaterThan(LOST_RECHECK_FOR_MS / DOWN_RECHECK_MS / 2);
    expect(quick).toBeLessThanOrEqual(LOST_RECHECK_FOR_MS / DOWN_RECHECK_MS + 1);
    await w.time.advance(1000);
    expect(w.checks - before - quick).toBeLessThanOrEqual(3); // the fixed rate again (500 ms)
  });

  it('a timed-out check is followed by the next at once: a hang is FAULT within one interval + fall × timeout', async () => {
    const w = new World(null);
    const rt = await masterA(w); // the last regular check ran at 3500 ms; fall 2
    const hungAt = w.time.now() + 1; // just after a good check: the worst case
    w.checkMs = 300;
    for (let i = 0; i < 10; i++) w.queuedChecks.push({ ok: false, detail: 'timeout after 300 ms', redis: null, timedOut: true });
    const limit = 500 + 2 * 300;
    for (let i = 0; i < limit / 10 + 1 && rt.current.role === 'MASTER'; i++) await w.time.advance(10);
    expect(rt.current.role).toBe('FAULT');
    expect(w.time.now() - hungAt).toBeLessThanOrEqual(limit + 10);
  });

  it('a server that resets every connection gets one window of quick checks, counted as one failure, not a loop', async () => {
    const w = new World(null);
    const rt = await masterA(w); // fall 2
    await w.time.advance(250);
    // Every check now fails with a reset, and each failed connection is another notice.
    for (let i = 0; i < 10_000; i++) w.queuedChecks.push({ ok: false, detail: 'connection reset', redis: null });
    const before = w.checks;
    const notify = (): void => w.connectionLost?.();
    w.connectionLost?.();
    for (let t = DOWN_RECHECK_MS; t < LOST_RECHECK_FOR_MS; t += DOWN_RECHECK_MS) {
      await w.time.advance(DOWN_RECHECK_MS);
      notify();
      expect(rt.current.role).toBe('MASTER'); // the quick resets count once toward `fall`
    }
    expect(w.checks - before).toBeGreaterThan(LOST_RECHECK_FOR_MS / DOWN_RECHECK_MS / 2);
    const windowChecks = w.checks - before;
    await w.time.advance(3000);
    notify();
    await w.time.advance(3000);
    expect(w.checks - before - windowChecks).toBeLessThanOrEqual(6000 / 500 + 2); // the fixed rate, no second window
    expect(rt.current.role).toBe('FAULT'); // `fall` failures at the fixed rate
  });

  it('after a hang is declared, the timed-out checks come at the fixed rate again', async () => {
    const w = new World(null);
    const rt = await masterA(w);
    w.checkMs = 300;
    for (let i = 0; i < 100; i++) w.queuedChecks.push({ ok: false, detail: 'timeout after 300 ms', redis: null, timedOut: true });
    for (let i = 0; i < 200 && rt.current.role === 'MASTER'; i++) await w.time.advance(10);
    expect(rt.current.role).toBe('FAULT');
    const before = w.checks;
    await w.time.advance(5000);
    expect(w.checks - before).toBeLessThanOrEqual(5000 / 500 + 1); // not one per timeout (5000 / 300)
  });

  it('a notice during a check in flight runs one more check right after it, then the fixed rate resumes', async () => {
    const w = new World(null);
    await masterA(w); // healthy: a regular check every 500 ms, the last one at 3500 ms
    w.checkMs = 50;
    await w.time.advance(500); // the check due at 4000 ms is in flight until 4050 ms
    const before = w.checks;
    w.connectionLost?.();
    await w.time.advance(49);
    expect(w.checks - before).toBe(0); // not a second check beside the one in flight
    await w.time.advance(10);
    expect(w.checks - before).toBe(1); // right after it
    await w.time.advance(500);
    expect(w.checks - before).toBe(2); // then the fixed rate again
  });

  it('a server that accepts and then closes every connection brings at most one check forward per interval', async () => {
    const w = new World(null);
    await masterA(w); // healthy: the regular checks come every 500 ms
    const before = w.checks;
    for (let i = 0; i < 5; i++) {
      w.connectionLost?.();
      await w.time.advance(10);
    }
    expect(w.checks - before).toBe(1);
  });
});
