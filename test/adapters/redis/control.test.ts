/**
 * `RedisControl` against real `redis-server` processes on loopback: health checks
 * (refused, hung, recovered, auth errors), promotion with and without catch-up,
 * demotion with client eviction, password handling and the bind check.
 *
 * The machine is small and shared: assertions are about outcomes, and time bounds
 * are generous (a "fast" failure only has to beat the timeout it would otherwise hit).
 */
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { closeControlsAfterEach, endpoint, hostPort, makeControl } from '../../helpers/redis-control.js';
import { startRedisServer } from '../../helpers/redis-server.js';

closeControlsAfterEach();

/** Writes `count` keys `key:<i>` with pipelined SETs. */
async function load(client: Redis, count: number, valueBytes: number): Promise<void> {
  const padding = 'x'.repeat(valueBytes);
  const batch = 10_000;
  for (let start = 0; start < count; start += batch) {
    const pipeline = client.pipeline();
    for (let i = start; i < Math.min(count, start + batch); i++) pipeline.set(`key:${i}`, `${i}:${padding}`);
    await pipeline.exec();
  }
}

/** Every key present and a sample of values intact. */
async function expectDataset(client: Redis, count: number, valueBytes: number): Promise<void> {
  expect(await client.dbsize()).toBe(count);
  const padding = 'x'.repeat(valueBytes);
  const sample = [0, count - 1, ...Array.from({ length: 200 }, (_, i) => Math.floor((i * count) / 200))];
  const values = await client.mget(sample.map((i) => `key:${i}`));
  expect(values).toEqual(sample.map((i) => `${i}:${padding}`));
}

async function role(client: Redis): Promise<string> {
  const info = await client.info('replication');
  return /role:(\w+)/.exec(info)?.[1] ?? '?';
}

async function eventually(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(50);
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`);
}

async function linkUp(client: Redis): Promise<boolean> {
  return (await client.info('replication')).includes('master_link_status:up');
}

/** A port nothing listens on: a server started and stopped again. */
async function closedPort(): Promise<number> {
  const server = await startRedisServer();
  await server.stop();
  return server.port;
}

describe('RedisControl.check', () => {
  it('reports a master and a replica from INFO', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await b.client().replicaof(a.host, a.port);
    await eventually(() => linkUp(b.client()), 20_000, 'replica link up');

    const onA = await makeControl({ local: endpoint(a) }).check();
    expect(onA.ok).toBe(true);
    expect(onA.redis).toMatchObject({ role: 'master', connectedReplicas: 1 });
    const onB = await makeControl({ local: endpoint(b) }).check();
    expect(onB.ok).toBe(true);
    expect(onB.redis).toMatchObject({ role: 'replica', masterHost: a.host, masterPort: a.port, linkUp: true });
    expect(onB.detail).toContain('link up');
  });

  it('names its connection redis-ha', async () => {
    const a = await startRedisServer();
    const control = makeControl({ local: endpoint(a) });
    expect((await control.check()).ok).toBe(true);
    expect(String(await a.client().client('LIST'))).toMatch(/ name=redis-ha /);
  });

  it('fails at once on a refused connection', async () => {
    const port = await closedPort();
    const control = makeControl({ local: endpoint({ host: '127.0.0.1', port }), timeoutMs: 3_000 });
    const started = Date.now();
    const result = await control.check();
    expect(result).toEqual({ ok: false, detail: 'connection refused', redis: null, down: true });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('fails within the timeout on a hung server and recovers when it resumes', async () => {
    const a = await startRedisServer();
    const control = makeControl({ local: endpoint(a), timeoutMs: 500 });
    expect((await control.check()).ok).toBe(true);

    a.signal('SIGSTOP');
    try {
      for (let i = 0; i < 2; i++) {
        // The second round opens a fresh connection to the stopped server: it must time out too.
        const started = Date.now();
        const result = await control.check();
        expect(result.ok).toBe(false);
        expect(result.detail).toMatch(/^timeout after 500 ms/);
        expect(result).toMatchObject({ timedOut: true }); // the runtime starts the next check at once
        expect(result.down).toBeUndefined();
        expect(Date.now() - started).toBeLessThan(500 + 1_500);
      }
    } finally {
      a.signal('SIGCONT');
    }
    await eventually(async () => (await control.check()).ok, 10_000, 'check ok after SIGCONT');
  });

  it('recovers when a killed server is restarted', async () => {
    const a = await startRedisServer();
    const control = makeControl({ local: endpoint(a), timeoutMs: 1_000 });
    expect((await control.check()).ok).toBe(true);

    a.signal('SIGKILL');
    await eventually(async () => (await control.check()).detail === 'connection refused', 10_000, 'refused');
    await a.restart();
    expect((await control.check()).ok).toBe(true);
  });

  it('reports the run_id, and a new one after a restart (the data guard compares them)', async () => {
    const a = await startRedisServer();
    const control = makeControl({ local: endpoint(a), timeoutMs: 1_000 });
    const first = (await control.check()).redis?.runId;
    expect(first).toMatch(/^[0-9a-f]{40}$/);
    await a.restart();
    await eventually(async () => (await control.check()).ok, 10_000, 'check ok after restart');
    const second = (await control.check()).redis?.runId;
    expect(second).toMatch(/^[0-9a-f]{40}$/);
    expect(second).not.toBe(first);
  });

  it('asks INFO server and INFO cluster once per connection, and reports its run_id on every check', async () => {
    const a = await startRedisServer();
    const control = makeControl({ local: endpoint(a), timeoutMs: 1_000 });
    const admin = a.client();
    const infoCalls = async (): Promise<number> =>
      Number(/^cmdstat_info:calls=(\d+)/m.exec(await admin.info('commandstats'))?.[1] ?? 0);
    const before = await infoCalls();
    const runIds = [];
    for (let i = 0; i < 5; i++) runIds.push((await control.check()).redis?.runId);
    expect(new Set(runIds).size).toBe(1);
    expect(runIds[0]).toMatch(/^[0-9a-f]{40}$/);
    // 5 × INFO replication + 1 × INFO server + 1 × INFO cluster (issue 14), + the INFO
    // commandstats that read `before`.
    expect(await infoCalls() - before).toBe(8);
  });

  it('tells its listener at once when the server closes the health connection (SIGKILL), not when we close it', async () => {
    const a = await startRedisServer();
    const control = makeControl({ local: endpoint(a), timeoutMs: 1_000 });
    let lost = 0;
    control.onConnectionLost(() => {
      lost += 1;
    });
    expect((await control.check()).ok).toBe(true);
    a.signal('SIGKILL');
    await eventually(async () => lost > 0, 5_000, 'connection-lost notice');
    expect(lost).toBe(1);
    // A refused re-check opens no connection, so it raises no second notice.
    expect((await control.check()).down).toBe(true);
    await sleep(100);
    expect(lost).toBe(1);
  });

  it("probes the peer's Redis: an answer is not down, a refusal is (its process gone), and it leaves no connection behind", async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    const control = makeControl({ local: endpoint(a), peer: endpoint(b) });
    expect(await control.probePeer()).toEqual({ down: false, detail: 'answered as master' });
    expect(await b.client().client('LIST')).not.toMatch(/name=redis-ha-peer/);
    b.signal('SIGKILL');
    await eventually(async () => (await control.probePeer()).down, 5_000, 'a refused probe');
    expect((await control.probePeer()).detail).toMatch(/connection refused/);
  });

  it('says NOAUTH without a password and WRONGPASS with a wrong one', async () => {
    const a = await startRedisServer({ password: 'right' });
    const none = await makeControl({ local: endpoint(a) }).check();
    expect(none.ok).toBe(false);
    expect(none.detail).toMatch(/^NOAUTH/);
    const wrong = await makeControl({ local: endpoint(a, 'wrong') }).check();
    expect(wrong.ok).toBe(false);
    expect(wrong.detail).toMatch(/WRONGPASS/);
    expect((await makeControl({ local: endpoint(a, 'right') }).check()).ok).toBe(true);
  });
});

describe('RedisControl.promote', () => {
  it('waits for a far-behind replica to finish its full sync before promoting', async () => {
    const keys = 200_000;
    const valueBytes = 256; // ~50 MB of values
    const a = await startRedisServer();
    const b = await startRedisServer();
    const adminA = a.client();
    await load(adminA, keys, valueBytes);
    const adminB = b.client();
    // Freshly attached: the full sync has only just begun when promotion starts.
    await adminB.replicaof(a.host, a.port);

    const control = makeControl({ local: endpoint(b), peer: endpoint(a), timeoutMs: 2_000 });
    const promotion = control.promote(hostPort(a));
    // Health checks use their own connection: they answer (ok or LOADING) within their bound meanwhile.
    let promoted = false;
    void promotion.then(() => {
      promoted = true;
    });
    while (!promoted) {
      const started = Date.now();
      await control.check();
      expect(Date.now() - started).toBeLessThan(2_000 + 2_000);
      await sleep(100);
    }

    const result = await promotion;
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/peer 127\.0\.0\.1:\d+ is master/);
    expect(result.detail).toMatch(/link up at offset \d+/);
    expect(result.detail).toMatch(/caught up to frozen offset \d+/);
    expect(result.detail).toContain('REPLICAOF NO ONE');
    expect(result.redis?.role).toBe('master');
    expect(await role(adminB)).toBe('master');
    await expectDataset(adminB, keys, valueBytes);
  });

  it('promotes anyway when the catch-up runs out of time, and says how far behind', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    // ~25 MB: a full sync takes far longer than the 1 ms allowed.
    await load(a.client(), 100_000, 256);

    const control = makeControl({ local: endpoint(b), peer: endpoint(a), maxSyncWaitMs: 1 });
    const result = await control.promote(hostPort(a));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(
      /catch-up timed out after 1 ms \((\d+ bytes behind|full sync still in progress|not synced with the peer yet).*\); promoting anyway/,
    );
    expect(await role(b.client())).toBe('master');
  });

  it('stops waiting when the peer dies during the catch-up', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await load(a.client(), 100_000, 256);

    const control = makeControl({ local: endpoint(b), peer: endpoint(a), maxSyncWaitMs: 60_000 });
    const started = Date.now();
    const promotion = control.promote(hostPort(a));
    const adminB = b.client();
    await eventually(async () => (await adminB.info('replication')).includes(`master_port:${a.port}`), 20_000, 'REPLICAOF');
    a.signal('SIGKILL');

    const result = await promotion;
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/catch-up abandoned: peer (connection lost|.* stopped answering)/);
    expect(await role(adminB)).toBe('master');
    // Far less than maxSyncWaitMs: a dead peer ends the wait.
    expect(Date.now() - started).toBeLessThan(30_000);
  });

  it('promotes at once when catch-up is disabled', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await load(a.client(), 1_000, 16);
    await b.client().replicaof(a.host, a.port);
    await eventually(() => linkUp(b.client()), 20_000, 'replica link up');

    const result = await makeControl({ local: endpoint(b), peer: endpoint(a), waitForSync: false }).promote(hostPort(a));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/catch-up with 127\.0\.0\.1:\d+ disabled/);
    expect(result.detail).not.toMatch(/caught up/);
    expect(result.redis?.role).toBe('master');
    expect(await b.client().dbsize()).toBe(1_000);
  });

  it('skips the catch-up and still promotes when the peer is down', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await b.client().replicaof(a.host, a.port);
    await eventually(() => linkUp(b.client()), 20_000, 'replica link up');
    const peer = hostPort(a);
    await a.stop();

    const result = await makeControl({ local: endpoint(b), peer: endpoint(a) }).promote(peer);
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/catch-up skipped: peer 127\.0\.0\.1:\d+ unreachable \(connection refused\)/);
    expect(await role(b.client())).toBe('master');
  });

  it('never replicates from a replica', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    const c = await startRedisServer();
    await b.client().replicaof(a.host, a.port);
    await eventually(() => linkUp(b.client()), 20_000, 'replica link up');
    await c.client().set('only-on-c', '1');

    const result = await makeControl({ local: endpoint(c), peer: endpoint(b) }).promote(hostPort(b));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/catch-up skipped: peer 127\.0\.0\.1:\d+ is not a master/);
    expect(result.detail).toContain('already master');
    expect(result.detail).not.toContain(`REPLICAOF ${b.host} ${b.port}`);
    // Had it replicated from b, the full sync would have flushed this key.
    expect(await c.client().get('only-on-c')).toBe('1');
  });

  it('never replicates from itself, even under another address', async () => {
    const a = await startRedisServer({ args: ['--bind', '127.0.0.1', '127.0.0.2'] });
    await a.client().set('k', 'v');
    const alias = { host: '127.0.0.2', port: a.port };
    const control = makeControl({ local: endpoint(a), peer: endpoint(a) });

    const promoted = await control.promote(alias);
    expect(promoted.ok, promoted.detail).toBe(true);
    expect(promoted.detail).toMatch(/is this very server/);
    expect(await role(a.client())).toBe('master');

    const demoted = await control.replicateFrom(alias);
    expect(demoted.ok).toBe(false);
    expect(demoted.detail).toMatch(/refused: .* is this very server/);
    expect(await role(a.client())).toBe('master');
    expect(await a.client().get('k')).toBe('v');
  });

  it('catches up with password auth on both sides, setting masterauth itself', async () => {
    const keys = 20_000;
    const a = await startRedisServer({ password: 'alpha-secret', masterauth: false });
    const b = await startRedisServer({ password: 'bravo-secret', masterauth: false });
    await load(a.client(), keys, 64);

    const control = makeControl({ local: endpoint(b, 'bravo-secret'), peer: endpoint(a, 'alpha-secret') });
    const result = await control.promote(hostPort(a));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toContain('CONFIG SET masterauth');
    expect(result.detail).toMatch(/caught up to frozen offset/);
    const adminB = b.client();
    expect(await role(adminB)).toBe('master');
    await expectDataset(adminB, keys, 64);
    expect(await adminB.config('GET', 'masterauth')).toEqual(['masterauth', 'alpha-secret']);
  });

  it('is a no-op on a master without a catch-up source', async () => {
    const a = await startRedisServer();
    const result = await makeControl({ local: endpoint(a) }).promote(null);
    expect(result.ok).toBe(true);
    expect(result.detail).toContain('already master');
    expect(result.redis?.role).toBe('master');
  });

  it('fails (without throwing) when the local Redis is down', async () => {
    const port = await closedPort();
    const result = await makeControl({ local: endpoint({ host: '127.0.0.1', port }) }).promote(null);
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(/failed: local Redis: connection refused/);
  });
});

describe('RedisControl.replicateFrom', () => {
  it('demotes a master and disconnects application clients but not its own', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await b.client().set('from-b', '1');
    const control = makeControl({ local: endpoint(a), peer: endpoint(b) });
    expect((await control.check()).ok).toBe(true);

    // An application client without auto-reconnect, so its disconnection stays visible.
    const app = a.client();
    app.options.retryStrategy = () => null;
    const appId = await app.client('ID');
    let appClosed = false;
    app.once('end', () => {
      appClosed = true;
    });

    const result = await control.replicateFrom(hostPort(b));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toContain(`REPLICAOF ${b.host} ${b.port}`);
    expect(result.detail).toMatch(/verified role replica of/);
    expect(result.detail).toContain('disconnected 1 application client(s)');
    await eventually(async () => appClosed, 5_000, 'application client disconnected');

    const admin = a.client();
    const list = String(await admin.client('LIST'));
    expect(list).not.toMatch(new RegExp(`id=${appId} `));
    expect(list).toMatch(/ name=redis-ha /);
    expect((await control.check()).ok).toBe(true);
    await eventually(async () => (await admin.get('from-b')) === '1', 20_000, 'data from the new master');
    expect(await role(admin)).toBe('slave');
  });

  it('skips REPLICAOF when already pointed at the master and still verifies', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await a.client().replicaof(b.host, b.port);
    const result = await makeControl({ local: endpoint(a), peer: endpoint(b) }).replicateFrom(hostPort(b));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toContain('already replicating from');
  });

  // Full syncs start at once (no 5 s diskless delay): the hazard at its fastest.
  const fastSync = { args: ['--repl-diskless-sync-delay', '0'] } as const;

  it('the hazard the data guard closes: a replica full-resyncs from its master restarted empty and loses everything', async () => {
    const a = await startRedisServer(fastSync);
    const b = await startRedisServer(fastSync);
    await load(a.client(), 500, 10);
    await b.client().replicaof(a.host, a.port);
    await eventually(async () => (await b.client().dbsize()) === 500 && (await linkUp(b.client())), 20_000, 'b synced');
    await a.restart();
    await eventually(async () => (await b.client().dbsize()) === 0, 10_000, 'b wiped by its resync from the empty a');
  });

  it('data guard: REPLICAOF first, so the peer\'s replica cannot full-resync from a server restarted empty (-NOMASTERLINK)', async () => {
    const a = await startRedisServer(fastSync);
    const b = await startRedisServer(fastSync);
    await load(a.client(), 500, 10);
    await b.client().replicaof(a.host, a.port);
    await eventually(async () => (await b.client().dbsize()) === 500 && (await linkUp(b.client())), 20_000, 'b synced');
    // a restarts empty; its replica b would resync from it at its next reconnect (once a
    // second). b is held still meanwhile, so that it cannot get in before the guard (the
    // daemon's race, which the e2e tests cover).
    b.signal('SIGSTOP');
    try {
      await a.restart();
      const guarded = await makeControl({ local: endpoint(a), peer: endpoint(b), demotionDelayMs: 5_000 }).replicateFrom(hostPort(b), { guard: true });
      expect(guarded.detail).toContain('data guard, first');
      expect(guarded.ok).toBe(true);
    } finally {
      b.signal('SIGCONT');
    }
    // b tries again for a few seconds and is refused each time: it keeps its data.
    await sleep(2_500);
    expect(await b.client().dbsize()).toBe(500);
    expect(readFileSync(b.logFile, 'utf8')).toMatch(/NOMASTERLINK/);
    // b promoted: a resyncs from it and has the data back.
    await b.client().replicaof('NO', 'ONE');
    await eventually(async () => (await a.client().dbsize()) === 500, 20_000, 'a resynced from b');
  });

  it('points at an unreachable master anyway and says so', async () => {
    const a = await startRedisServer();
    const port = await closedPort();
    const result = await makeControl({ local: endpoint(a) }).replicateFrom({ host: '127.0.0.1', port });
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/not reachable \(connection refused\), replicating anyway/);
    expect(await role(a.client())).toBe('slave');
  });
});

describe('RedisControl.bindWarning', () => {
  function nonlocalBind(): string | null {
    try {
      return readFileSync('/proc/sys/net/ipv4/ip_nonlocal_bind', 'utf8').trim();
    } catch {
      return null;
    }
  }

  it('warns when Redis binds only loopback', async () => {
    const a = await startRedisServer();
    const warning = await makeControl({ local: endpoint(a) }).bindWarning('10.77.0.100');
    expect(warning).toMatch(/binds only 127\.0\.0\.1, so it refuses connections to the VIP 10\.77\.0\.100/);
    expect(warning).toContain('net.ipv4.ip_nonlocal_bind=1');
    expect(warning).toContain('bind * -::*');
  });

  it('judges an explicitly bound VIP by ip_nonlocal_bind', async () => {
    const a = await startRedisServer();
    // `-` makes the address optional: Redis skips it when it cannot bind it.
    await a.client().config('SET', 'bind', '127.0.0.1 -10.77.0.100');
    const warning = await makeControl({ local: endpoint(a) }).bindWarning('10.77.0.100');
    if (nonlocalBind() === '1') expect(warning).toBeNull();
    else expect(warning).toMatch(/binds the VIP 10\.77\.0\.100 explicitly.*silently skips/);
  });

  it('warns about protected-mode on a wildcard bind without a password, and accepts one with', async () => {
    const a = await startRedisServer();
    const admin = a.client();
    await admin.config('SET', 'bind', '* -::*');
    const control = makeControl({ local: endpoint(a) });
    expect(await control.bindWarning('10.77.0.100')).toMatch(/protected-mode is on and the default user has no password/);
    await admin.config('SET', 'requirepass', 'now-protected');
    expect(await control.bindWarning('10.77.0.100')).toBeNull();
    expect(await control.bindWarning('fd00::100')).toBeNull();
  });

  it('says the check could not be done when CONFIG is renamed', async () => {
    const a = await startRedisServer({ args: ['--rename-command', 'CONFIG', ''] });
    const warning = await makeControl({ local: endpoint(a) }).bindWarning('10.77.0.100');
    expect(warning).toMatch(/^could not check whether Redis accepts connections on the VIP 10\.77\.0\.100: CONFIG GET failed/);
  });
});
