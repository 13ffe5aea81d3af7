/**
 * The planned switchover from the master's host (`RedisControl.switchOver`,
 * `src/adapters/redis/switchover/`) against real `redis-server` processes on loopback: a writer
 * running across the switchover (and back) loses no acknowledged write with either
 * method, refusals change nothing, a replica that stops answering mid-way rolls the
 * switchover back without leaving writes paused, `force` stays within its bounds, a
 * slow promotion keeps writes paused (the pause is renewed), and a FAILOVER whose
 * reply never came is watched to the guard and never called a rollback.
 *
 * Ports are handed out by the kernel (`startRedisServer` picks a free one per server),
 * so this file never collides with the fixed ports of other suites. Processes are only
 * signalled by their own PID (SIGSTOP/SIGCONT on a server this file started). An
 * unanswered FAILOVER is produced by a loopback relay in front of the master that
 * holds the command back (`failoverRelay`).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { Connection } from '../../../src/adapters/redis/connection.js';
import { parseReplicaEntries, parseReplicationInfo } from '../../../src/adapters/redis/info.js';
import { promotionPauseMs } from '../../../src/adapters/redis/rules.js';
import {
  switchOver,
  type SwitchoverDeps,
  type SwitchoverHooks,
  type SwitchoverRequest,
  type SwitchoverResult,
} from '../../../src/adapters/redis/switchover/switchover.js';
import { silentLogger } from '../../../src/daemon/logger.js';
import { closeControlsAfterEach, endpoint, hostPort, makeControl } from '../../helpers/redis-control.js';
import { startRedisServer, type RedisServer } from '../../helpers/redis-server.js';

closeControlsAfterEach();

const connections: Connection[] = [];
const relays: Relay[] = [];
afterEach(async () => {
  await Promise.all(connections.splice(0).map((c) => c.close()));
  await Promise.all(relays.splice(0).map((r) => r.close()));
});

async function eventually(probe: () => Promise<boolean> | boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(20);
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`);
}

/** `replica` replicates `master` with the link up. */
async function following(replica: Redis, master: RedisServer): Promise<boolean> {
  const info = await replica.info('replication');
  return info.includes('role:slave') && info.includes(`master_port:${master.port}`) && info.includes('master_link_status:up');
}

/** `master` lists `replica` online. */
async function listsOnline(master: Redis, replica: RedisServer): Promise<boolean> {
  const info = await master.info('replication');
  return parseReplicaEntries(info).some((e) => e.port === replica.port && e.state === 'online');
}

/** Makes `replica` a replica of `master` and waits until the stream flows and the master lists it online. */
async function pair(replica: RedisServer, master: RedisServer): Promise<void> {
  const adminReplica = replica.client();
  const adminMaster = master.client();
  await adminReplica.replicaof(master.host, master.port);
  await eventually(() => following(adminReplica, master), 20_000, 'replica link up');
  await adminMaster.set('pair:marker', String(Date.now()));
  const marker = await adminMaster.get('pair:marker');
  await eventually(async () => (await adminReplica.get('pair:marker')) === marker, 20_000, 'replication stream flowing');
  await eventually(() => listsOnline(adminMaster, replica), 20_000, 'master lists the replica online');
}

function request(target: RedisServer, method: SwitchoverRequest['method'], overrides: Partial<SwitchoverRequest> = {}): SwitchoverRequest {
  return { target: hostPort(target), timeoutMs: 5_000, force: false, method, maxLagBytes: 16 * 1024 * 1024, maxAckAgeS: 5, ...overrides };
}

/** What a test changes in the wiring of `directSwitchOver`. */
interface DirectOptions {
  /** Bound of each local command (and of the local connection). */
  readonly localTimeoutMs?: number;
  /** Reach the local Redis through this port on its host (a relay) instead of its own. */
  readonly localPort?: number;
  readonly setMasterAuth?: SwitchoverDeps['setMasterAuth'];
}

const DIRECT_LOCAL_TIMEOUT_MS = 2_000;
const DIRECT_PEER_TIMEOUT_MS = 1_000;

/** `switchOver` called directly, for the test seams (`hooks`); the same wiring `RedisControl.switchOver` uses. */
function directSwitchOver(
  local: RedisServer,
  peer: RedisServer,
  req: SwitchoverRequest,
  hooks: SwitchoverHooks,
  options: DirectOptions = {},
): Promise<SwitchoverResult> {
  const localTimeoutMs = options.localTimeoutMs ?? DIRECT_LOCAL_TIMEOUT_MS;
  const target = { host: local.host, port: options.localPort ?? local.port };
  const control = new Connection({ endpoint: endpoint(target), target, name: 'redis-ha-control', timeoutMs: localTimeoutMs });
  connections.push(control);
  const deps: SwitchoverDeps = {
    local: control,
    localTimeoutMs,
    peerEndpoint: endpoint(peer),
    peerTimeoutMs: DIRECT_PEER_TIMEOUT_MS,
    clientName: 'redis-ha',
    setMasterAuth: options.setMasterAuth ?? (async () => undefined),
    logger: silentLogger(),
  };
  return switchOver(deps, req, hooks);
}

/**
 * A write to `server` is answered quickly: nothing is paused or fenced. The client is
 * connected first (a new connection right after SIGCONT or a rollback may be slow on
 * a loaded machine); the bound still catches a leftover CLIENT PAUSE (3 s and more).
 */
async function writesFlow(server: RedisServer): Promise<number> {
  const client = server.client();
  expect(await client.ping()).toBe('PONG');
  const started = Date.now();
  expect(await client.set('after:switchover', String(started))).toBe('OK');
  const ms = Date.now() - started;
  expect(ms).toBeLessThan(1_500);
  return ms;
}

interface Relay {
  readonly port: number;
  close(): Promise<void>;
}

/** How `FAILOVER TO` goes on the wire (RESP), however its arguments continue. */
const FAILOVER_TO_RESP = '$8\r\nFAILOVER\r\n$2\r\nTO\r\n';

/**
 * A loopback TCP relay to `server` that holds back the chunk carrying `FAILOVER TO`:
 * dropped (`delayMs` null; Redis never sees it) or passed on `delayMs` after it came,
 * on its own upstream connection even once the client gave up and closed. Everything
 * else, `FAILOVER ABORT` included, is relayed as is. Closed after each test.
 */
async function failoverRelay(server: RedisServer, delayMs: number | null): Promise<Relay> {
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const relay: Server = createServer((client) => {
    const upstream = connect(server.port, server.host);
    sockets.add(client);
    sockets.add(upstream);
    let holding = false;
    client.on('error', () => undefined);
    upstream.on('error', () => undefined);
    upstream.on('data', (data: Buffer) => {
      if (!client.destroyed) client.write(data);
    });
    upstream.on('close', () => client.destroy());
    client.on('data', (data: Buffer) => {
      if (!data.includes(FAILOVER_TO_RESP)) {
        upstream.write(data);
        return;
      }
      if (delayMs === null) return;
      holding = true;
      const timer = setTimeout(() => {
        timers.delete(timer);
        upstream.write(data);
        holding = false;
        if (client.destroyed) upstream.end();
      }, delayMs);
      timers.add(timer);
    });
    client.on('close', () => {
      if (!holding) upstream.end();
    });
  });
  await new Promise<void>((resolve) => relay.listen(0, server.host, resolve));
  const address = relay.address();
  if (address === null || typeof address !== 'object') throw new Error('relay has no port');
  const handle: Relay = {
    port: address.port,
    close: async () => {
      for (const timer of timers) clearTimeout(timer);
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => relay.close(() => resolve()));
    },
  };
  relays.push(handle);
  return handle;
}

interface Ack {
  readonly value: number;
  /** Index of the server that acknowledged it. */
  readonly server: number;
}

/**
 * Writes unique integers one at a time (even: SADD to `key`, odd: SET `key:n`) to one
 * of `servers`, moving to the next server and retrying the same value whenever a write
 * fails (READONLY, NOREPLICAS, connection killed): it ends up on whichever is master.
 * Bounded by `maxMs`.
 */
class Writer {
  readonly acks: Ack[] = [];
  readonly errors = new Map<string, number>();
  private stopping = false;
  private readonly loop: Promise<void>;

  constructor(servers: readonly RedisServer[], private readonly key: string, maxMs = 45_000) {
    const clients = servers.map((s) => s.client());
    this.loop = (async () => {
      const deadline = Date.now() + maxMs;
      let current = 0;
      let value = 0;
      while (!this.stopping && Date.now() < deadline) {
        const client = clients[current] as Redis;
        try {
          if (value % 2 === 0) await client.sadd(key, String(value));
          else await client.set(`${key}:${value}`, String(value));
          this.acks.push({ value, server: current });
          value++;
        } catch (err) {
          const code = (err instanceof Error ? err.message : String(err)).split(' ')[0] ?? '?';
          this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
          current = (current + 1) % clients.length;
          await sleep(1);
        }
      }
    })();
  }

  ackedBy(server: number): number {
    return this.acks.filter((a) => a.server === server).length;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
  }

  /** The acknowledged writes `master` does not hold. */
  async lost(master: Redis, acks: readonly Ack[] = this.acks): Promise<number[]> {
    const members = new Set(await master.smembers(this.key));
    const odd = acks.filter((a) => a.value % 2 === 1).map((a) => a.value);
    const values = odd.length === 0 ? [] : await master.mget(odd.map((v) => `${this.key}:${v}`));
    const present = new Set(odd.filter((v, i) => values[i] === String(v)));
    return acks.map((a) => a.value).filter((v) => (v % 2 === 0 ? !members.has(String(v)) : !present.has(v)));
  }

  summary(): string {
    const errors = [...this.errors].map(([code, n]) => `${code} ${n}`).join(', ') || 'none';
    return `acknowledged ${this.acks.length}, errors: ${errors}`;
  }
}

describe.each(['failover', 'pause'] as const)('switchover by %s', (method) => {
  it('loses no acknowledged write, there and back again', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const adminA = a.client();
    const adminB = b.client();
    const key = `switchover:${method}`;
    const writer = new Writer([a, b], key);
    try {
      await eventually(() => writer.acks.length >= 500, 10_000, 'writes flowing on the master');

      const there = await makeControl({ local: endpoint(a), peer: endpoint(b) }).switchOver(request(b, method));
      console.log(`${method} a -> b: ${there.outcome}, paused ${there.pausedMs} ms: ${there.detail}`);
      expect(there.outcome, there.detail).toBe('done');
      expect(there.method).toBe(method);
      expect(there.pausedMs).not.toBeNull();
      expect(there.pausedMs as number).toBeLessThan(5_000);
      expect(there.redis?.role).toBe('replica');
      expect(there.redis?.masterPort).toBe(b.port);
      expect(there.detail).toMatch(/disconnected [1-9]\d* application client\(s\)/);

      // The writer moves on to b; everything acknowledged so far is there.
      const onBBefore = writer.ackedBy(1);
      await eventually(() => writer.ackedBy(1) >= onBBefore + 500, 10_000, 'writes flowing on the new master');
      expect(await writer.lost(adminB, [...writer.acks])).toEqual([]);
      await eventually(() => following(adminA, b), 20_000, 'old master replicating the new one');
      await eventually(() => listsOnline(adminB, a), 20_000, 'new master lists the old one online');

      const back = await makeControl({ local: endpoint(b), peer: endpoint(a) }).switchOver(request(a, method));
      console.log(`${method} b -> a: ${back.outcome}, paused ${back.pausedMs} ms: ${back.detail}`);
      expect(back.outcome, back.detail).toBe('done');
      expect(back.pausedMs).not.toBeNull();

      const onABefore = writer.ackedBy(0);
      await eventually(() => writer.ackedBy(0) >= onABefore + 500, 10_000, 'writes flowing on a again');
    } finally {
      await writer.stop();
    }
    console.log(`${method} writer: ${writer.summary()}`);
    expect(await writer.lost(adminA)).toEqual([]);
    await eventually(() => following(adminB, a), 20_000, 'b replicating a again');
    await eventually(async () => (await writer.lost(adminB)).length === 0, 10_000, 'b holds every acknowledged write');
  });
});

describe.each(['failover', 'pause'] as const)('switchover by %s with the quorum (fenceTarget)', (method) => {
  it('the target becomes the master already refusing writes, until its daemon lifts the fence', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const r = await makeControl({ local: endpoint(a), peer: endpoint(b) }).switchOver(request(b, method, { fenceTarget: true }));
    expect(r.outcome, r.detail).toBe('done');
    expect(r.detail).toMatch(/fenced until its daemon holds the leader key: min-replicas-to-write 1000000/);
    const adminB = b.client();
    expect((await adminB.config('GET', 'min-replicas-to-write')) as unknown).toEqual(['min-replicas-to-write', '1000000']);
    await expect(adminB.set('q8', '1')).rejects.toThrow(/NOREPLICAS/);
  });
});

describe('refusals change nothing', () => {
  it('refuses a target that is not connected as a replica', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    const c = await startRedisServer();
    await pair(b, a);
    const control = makeControl({ local: endpoint(a), peer: endpoint(c) });

    // c is a stand-alone master, never a replica of a.
    const unrelated = await control.switchOver(request(c, 'auto'));
    expect(unrelated.outcome, unrelated.detail).toBe('refused');
    expect(unrelated.detail).toMatch(
      new RegExp(`refused: replica 127\\.0\\.0\\.1:${c.port} is not connected to this master \\(connected replicas: 127\\.0\\.0\\.1:${b.port} online\\)`),
    );

    // b was a replica, and left.
    await b.client().replicaof('NO', 'ONE');
    await eventually(async () => (await a.client().info('replication')).includes('connected_slaves:0'), 10_000, 'a without replicas');
    const left = await makeControl({ local: endpoint(a), peer: endpoint(b) }).switchOver(request(b, 'pause'));
    expect(left.outcome, left.detail).toBe('refused');
    expect(left.detail).toMatch(/refused: replica 127\.0\.0\.1:\d+ is not connected to this master \(connected replicas: none\)/);
    expect(left.method).toBeNull();
    expect(left.pausedMs).toBeNull();
    expect(left.redis?.role).toBe('master');
    await writesFlow(a);
    expect(await a.client().info('replication')).toContain('role:master');
    expect(await b.client().info('replication')).toContain('role:master');
  });

  it('refuses when the local Redis is a replica, or the target is a master', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const fromReplica = await makeControl({ local: endpoint(b), peer: endpoint(a) }).switchOver(request(a, 'auto'));
    expect(fromReplica.outcome).toBe('refused');
    expect(fromReplica.detail).toMatch(/refused: local Redis is not a master \(role replica of 127\.0\.0\.1:\d+, link up/);

    const pre62 = await directSwitchOver(a, b, request(b, 'failover'), { assumeVersion: '6.0.16' });
    expect(pre62.outcome).toBe('refused');
    expect(pre62.detail).toContain('refused: FAILOVER needs Redis 6.2 or newer (local Redis is 6.0.16)');
    expect(await b.client().info('replication')).toContain('role:slave');
  });

  it('refuses a replica whose last ack is too old or which is too far behind, and one that does not answer', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const adminA = a.client();
    const control = makeControl({ local: endpoint(a), peer: endpoint(b) });
    b.signal('SIGSTOP');
    try {
      await eventually(
        async () => (parseReplicaEntries(await adminA.info('replication'))[0]?.lagS ?? 0) >= 2,
        10_000,
        'replica ack at least 2 s old',
      );
      const stale = await control.switchOver(request(b, 'auto', { maxAckAgeS: 1 }));
      expect(stale.outcome, stale.detail).toBe('refused');
      expect(stale.detail).toMatch(/refused: replica 127\.0\.0\.1:\d+ lags [2-9] s since its last ack \(bound 1 s\)/);

      await adminA.set('big', 'x'.repeat(20_000));
      const behind = await control.switchOver(request(b, 'auto', { maxLagBytes: 1_000, maxAckAgeS: 3_600 }));
      expect(behind.outcome, behind.detail).toBe('refused');
      expect(behind.detail).toMatch(/refused: replica 127\.0\.0\.1:\d+ lags \d{5,} bytes behind \(bound 1000 bytes\)/);

      // Forced past the lag bounds, it still must answer.
      const started = Date.now();
      const silent = await control.switchOver(request(b, 'auto', { force: true }));
      expect(silent.outcome, silent.detail).toBe('refused');
      expect(silent.detail).toMatch(/refused: replica 127\.0\.0\.1:\d+ does not answer directly \(timeout after 1000 ms/);
      expect(Date.now() - started).toBeLessThan(3_000);
      await writesFlow(a);
    } finally {
      b.signal('SIGCONT');
    }
    await eventually(() => following(b.client(), a), 20_000, 'replica back');
  });
});

describe('a replica that stops answering mid-way', () => {
  /** Stops `replica` once the pre-checks passed; with `pending`, after a write it has not received yet. */
  function stopAfterPreChecks(replica: RedisServer, master: RedisServer, pending: boolean): SwitchoverHooks {
    return {
      afterPreChecks: async () => {
        replica.signal('SIGSTOP');
        if (pending) await master.client().set('pending', 'never acknowledged by the replica');
      },
    };
  }

  it('FAILOVER: Redis aborts waiting-for-sync at the timeout; rolled back, writes flow', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    let result: SwitchoverResult;
    try {
      result = await directSwitchOver(a, b, request(b, 'failover', { timeoutMs: 300 }), stopAfterPreChecks(b, a, true));
      console.log(`failover rollback (waiting-for-sync): ${result.detail}`);
      expect(result.outcome, result.detail).toBe('rolled-back');
      expect(result.detail).toMatch(/FAILOVER aborted by Redis .*waiting-for-sync\/master at \d+ ms, no-failover\/master at \d+ ms/);
      expect(result.pausedMs as number).toBeGreaterThanOrEqual(250);
      expect(result.pausedMs as number).toBeLessThan(2_000);
      expect(result.redis?.role).toBe('master');
      await writesFlow(a);
    } finally {
      b.signal('SIGCONT');
    }
    await eventually(() => following(b.client(), a), 20_000, 'b still a replica of a');
  });

  it('FAILOVER: failover-in-progress outlives its TIMEOUT; our guard aborts it; rolled back', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    // Nothing pending, every byte acknowledged (acks come once a second): Redis skips
    // waiting-for-sync and demotes itself at once.
    const adminA = a.client();
    await eventually(async () => {
      const info = await adminA.info('replication');
      return parseReplicaEntries(info)[0]?.offset === parseReplicationInfo(info).offset;
    }, 10_000, 'replica acknowledged every byte');
    const started = Date.now();
    try {
      const result = await directSwitchOver(a, b, request(b, 'failover', { timeoutMs: 300 }), stopAfterPreChecks(b, a, false));
      const elapsed = Date.now() - started;
      console.log(`failover rollback (in progress, guard) in ${elapsed} ms: ${result.detail}`);
      expect(result.outcome, result.detail).toBe('rolled-back');
      expect(result.detail).toMatch(/failover-in-progress\/replica at \d+ ms.*; FAILOVER ABORT \(\d+ ms\); local Redis is master again/);
      expect(result.pausedMs as number).toBeGreaterThanOrEqual(2_300);
      expect(elapsed).toBeLessThan(2_300 + 4_000);
      await writesFlow(a);
    } finally {
      b.signal('SIGCONT');
    }
    // The handshake never got past PING: b did not promote itself when it resumed.
    await eventually(() => following(b.client(), a), 20_000, 'b still a replica of a');
    expect(await a.client().info('replication')).toContain('role:master');
  });

  it('pause: catch-up times out; rolled back, unpaused', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    try {
      const result = await directSwitchOver(a, b, request(b, 'pause', { timeoutMs: 300 }), stopAfterPreChecks(b, a, false));
      console.log(`pause rollback: ${result.detail}`);
      expect(result.outcome, result.detail).toBe('rolled-back');
      expect(result.detail).toMatch(/CLIENT PAUSE 3300 WRITE at offset \d+ .*did not catch up within 300 ms \(no answer: timeout after \d+ ms.*CLIENT UNPAUSE \(\d+ ms\)/);
      expect(result.pausedMs as number).toBeLessThan(1_500);
      await writesFlow(a);
    } finally {
      b.signal('SIGCONT');
    }
    await eventually(() => following(b.client(), a), 20_000, 'b still a replica of a');
  });

  it('force: stays within its bounds and leaves the master unpaused', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    for (const method of ['failover', 'pause'] as const) {
      const started = Date.now();
      let result: SwitchoverResult;
      try {
        result = await directSwitchOver(a, b, request(b, method, { timeoutMs: 300, force: true }), stopAfterPreChecks(b, a, true));
      } finally {
        b.signal('SIGCONT');
      }
      const elapsed = Date.now() - started;
      console.log(`forced ${method} with a stopped replica: ${result.outcome} in ${elapsed} ms, paused ${result.pausedMs} ms: ${result.detail}`);
      await sleep(500);
      console.log(`forced ${method}: 500 ms after SIGCONT the replica says ${(await b.client().info('replication')).split('\r\n')[1]}`);
      expect(['rolled-back', 'failed']).toContain(result.outcome);
      expect(elapsed).toBeLessThan(300 + 2_000 + 6_000);
      expect(await a.client().info('replication')).toContain('role:master');
      await writesFlow(a);
      // A REPLICAOF NO ONE still queued in the stopped replica runs when it resumes: put it back.
      await b.client().replicaof(a.host, a.port);
      await eventually(() => following(b.client(), a), 20_000, 'b a replica of a again');
      await eventually(() => listsOnline(a.client(), b), 20_000, 'a lists b online');
    }
  });
});

describe('pause: the pause is renewed for the promotion', () => {
  it('keeps writes paused through a promotion slower than the first pause, until REPLICAOF', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const probe = a.client();
    expect(await probe.ping()).toBe('PONG');
    const gap: { write?: Promise<string>; issuedAt?: number; settledAt?: number } = {};
    const request300 = request(b, 'pause', { timeoutMs: 300 });
    const result = await directSwitchOver(a, b, request300, {}, {
      // setMasterAuth runs between the target's promotion and our REPLICAOF: make it
      // outlast the first pause (300 + 3000 ms from its start), then write.
      setMasterAuth: async (trail) => {
        await sleep(3_600);
        gap.issuedAt = Date.now();
        gap.write = probe.set('during:promotion', 'acknowledged by the old master?');
        gap.write.then(
          () => (gap.settledAt = Date.now()),
          () => (gap.settledAt = Date.now()),
        );
        await sleep(300);
        trail.add('slow setMasterAuth (test)');
      },
    });
    console.log(`pause renewed for a slow promotion: ${result.detail}`);
    expect(result.outcome, result.detail).toBe('done');
    const renewedMs = promotionPauseMs({ localTimeoutMs: DIRECT_LOCAL_TIMEOUT_MS, peerTimeoutMs: DIRECT_PEER_TIMEOUT_MS });
    expect(result.detail).toMatch(
      new RegExp(`CLIENT PAUSE 3300 WRITE at offset \\d+ .*CLIENT PAUSE ${renewedMs} WRITE renewed for the promotion at offset \\d+ .*` +
        `promoted .*slow setMasterAuth \\(test\\); REPLICAOF 127\\.0\\.0\\.1 ${b.port} .*CLIENT UNPAUSE`),
    );
    // Held by the pause past its first bound, then answered by a replica: never acknowledged.
    await expect(gap.write).rejects.toThrow(/READONLY/);
    expect((gap.settledAt as number) - (gap.issuedAt as number)).toBeGreaterThanOrEqual(250);
    expect(await b.client().get('during:promotion')).toBeNull();
    expect(result.redis?.role).toBe('replica');
    await writesFlow(b);
  });
});

describe('FAILOVER: its own reply never comes', () => {
  it('a FAILOVER that runs late is watched until it completes: done, not rolled back', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    // Unanswered at 500 ms; Redis runs it at 1200 ms, after polls saw no-failover/master.
    const relay = await failoverRelay(a, 1_200);
    const result = await directSwitchOver(a, b, request(b, 'failover', { timeoutMs: 2_000 }), {}, { localTimeoutMs: 500, localPort: relay.port });
    console.log(`late FAILOVER: ${result.detail}`);
    expect(result.outcome, result.detail).toBe('done');
    expect(result.detail).toMatch(/FAILOVER TO .* unanswered \(timeout after 500 ms\), watching the failover state/);
    // Seen as master after the timeout (where the poll used to conclude a rollback), then a
    // replica: the in-between states may pass within one 3 ms poll.
    expect(result.detail).toMatch(/failover done: no-failover\/master at \d+ ms, (\S+ at \d+ ms, )*no-failover\/replica at \d+ ms/);
    expect(result.redis?.role).toBe('replica');
    expect(result.redis?.masterPort).toBe(b.port);
    await writesFlow(b);
  });

  it('a FAILOVER never seen running is watched to the guard, aborted, and reported failed: its fate is unknown', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const relay = await failoverRelay(a, null);
    const started = Date.now();
    const result = await directSwitchOver(a, b, request(b, 'failover', { timeoutMs: 500 }), {}, { localTimeoutMs: 500, localPort: relay.port });
    const elapsed = Date.now() - started;
    console.log(`lost FAILOVER in ${elapsed} ms: ${result.detail}`);
    expect(result.outcome, result.detail).toBe('failed');
    expect(result.detail).toMatch(
      /FAILOVER TO \S+ \d+ TIMEOUT 500 unanswered and not seen running within 500 \+ 2000 ms: no-failover\/master at \d+ ms \(\d+ ms\); FAILOVER ABORT answered .*No failover in progress.*; local Redis is master \(\d+ ms\)/,
    );
    expect(result.detail).toMatch(/the fate of the unanswered FAILOVER TO \S+ \d+ TIMEOUT 500 is unknown: it may still run/);
    expect(elapsed).toBeGreaterThanOrEqual(2_500);
    expect(elapsed).toBeLessThan(2_500 + 4_000);
    expect(result.redis?.role).toBe('master');
    await writesFlow(a);
    expect(await b.client().info('replication')).toContain('role:slave');
  });
});

describe('Redis < 6.2: the min-replicas fence', () => {
  it('switches over without losing a write and restores min-replicas-to-write', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const adminA = a.client();
    const adminB = b.client();
    const writer = new Writer([a, b], 'switchover:legacy');
    let result: SwitchoverResult;
    try {
      await eventually(() => writer.acks.length >= 500, 10_000, 'writes flowing on the master');
      result = await directSwitchOver(a, b, request(b, 'auto'), { assumeVersion: '6.0.16' });
      const before = writer.ackedBy(1);
      await eventually(() => writer.ackedBy(1) >= before + 500, 10_000, 'writes flowing on the new master');
    } finally {
      await writer.stop();
    }
    console.log(`legacy fence: paused ${result.pausedMs} ms: ${result.detail}; writer: ${writer.summary()}`);
    expect(result.outcome, result.detail).toBe('done');
    expect(result.method).toBe('pause');
    expect(result.detail).toMatch(/fenced writes \(min-replicas-to-write 2147483647, Redis < 6\.2\) at offset \d+.*restored min-replicas-to-write 0/);
    expect(await writer.lost(adminB)).toEqual([]);
    expect(await adminA.config('GET', 'min-replicas-to-write')).toEqual(['min-replicas-to-write', '0']);
    await eventually(() => following(adminA, b), 20_000, 'old master replicating the new one');
  });
});
