/**
 * The fenced takeover from an old master that still answers (`FencedTakeover` through
 * `RedisControl.promote`), against real `redis-server` processes on loopback: a
 * writer hammering the old master during the takeover loses no acknowledged write,
 * the old master ends up a replica of the new one, its pause is lifted when the
 * promotion fails half-way, an unreachable peer is not waited for, a peer whose history
 * lacks local writes is not followed, and passwords on both sides are handled in both
 * directions.
 *
 * Both servers bind 127.0.0.1 on their own ports; `self` is the promoting server's
 * own host and port, as the daemon passes `node.address` and `redis.port`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { RedisControl } from '../../../src/adapters/redis/index.js';
import { closeControlsAfterEach, endpoint, hostPort, makeControl } from '../../helpers/redis-control.js';
import { startRedisServer, type RedisServer } from '../../helpers/redis-server.js';

closeControlsAfterEach();

/** A promoter for `local` taking over from `peer`; `self` defaults to `local`'s own address. */
function promoter(
  local: RedisServer,
  peer: RedisServer,
  setup: { self?: { host: string; port: number }; maxSyncWaitMs?: number } = {},
): RedisControl {
  return makeControl({
    local: endpoint(local, local.password),
    peer: endpoint(peer, peer.password),
    self: setup.self ?? hostPort(local),
    maxSyncWaitMs: setup.maxSyncWaitMs ?? 60_000,
  });
}

async function replication(client: Redis): Promise<string> {
  return client.info('replication');
}

async function eventually(probe: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await probe()) return;
    await sleep(50);
  }
  throw new Error(`not within ${timeoutMs} ms: ${what}`);
}

/** `replica` replicates `master` with the link up. */
async function following(replica: Redis, master: RedisServer): Promise<boolean> {
  const info = await replication(replica);
  return info.includes('role:slave') && info.includes(`master_port:${master.port}`) && info.includes('master_link_status:up');
}

/**
 * Makes `replica` a replica of `master` and waits until the stream flows, as in a pair
 * the daemons have run for a while. (Right after a diskless full sync the link says up,
 * but the master only streams once the replica's first REPLCONF ACK arrives, up to 1 s.)
 */
async function pair(replica: RedisServer, master: RedisServer): Promise<void> {
  const adminReplica = replica.client();
  const adminMaster = master.client();
  await adminReplica.replicaof(master.host, master.port);
  await eventually(() => following(adminReplica, master), 20_000, 'replica link up');
  await adminMaster.set('pair:marker', '1');
  await eventually(async () => (await adminReplica.get('pair:marker')) === '1', 20_000, 'replication stream flowing');
}

function statsField(info: string, field: string): number {
  return Number(new RegExp(`${field}:(\\d+)`).exec(info)?.[1] ?? NaN);
}

interface WriteRecord {
  readonly acknowledged: number[];
  readonly failed: { value: number; error: string }[];
}

/**
 * SADDs unique integers one at a time (no pipelining, no delay) through an ordinary
 * client that reconnects on its own, until `stop()` after at least `minimum` writes.
 * Every write is recorded in `record` as it completes, acknowledged or failed.
 */
async function writeUntil(
  client: Redis,
  key: string,
  record: WriteRecord,
  minimum: number,
  stop: () => boolean,
): Promise<void> {
  for (let value = 0; value < minimum || !stop(); value++) {
    try {
      await client.sadd(key, String(value));
      record.acknowledged.push(value);
    } catch (err) {
      record.failed.push({ value, error: err instanceof Error ? err.message : String(err) });
    }
  }
}

describe('takeover from an old master that still answers', () => {
  it('(a) loses no acknowledged write and leaves the old master a replica of the new one', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);

    const key = 'takeover:set';
    const record: WriteRecord = { acknowledged: [], failed: [] };
    let stopping = false;
    const writing = writeUntil(a.client(), key, record, 2_000, () => stopping);
    await eventually(async () => record.acknowledged.length >= 200, 10_000, 'writes flowing on the old master');

    const result = await promoter(b, a).promote(hostPort(a));
    expect(result.ok, result.detail).toBe(true);
    expect(result.redis?.role).toBe('master');
    expect(result.detail).toMatch(
      /link up at offset \d+ \(\d+ ms\); paused writes on peer \(\d+ ms\); caught up to frozen offset \d+ \(\d+ ms\); REPLICAOF NO ONE \(\d+ ms\)/,
    );
    expect(result.detail).toContain(`fenced peer: REPLICAOF ${b.host} ${b.port}`);
    expect(result.detail).toMatch(/unpaused peer \(\d+ ms\); disconnected [1-9]\d* client\(s\) on peer/);
    console.log(`(a) takeover detail: ${result.detail}`);

    // The writer keeps going after the fence; the old master refuses it from now on.
    await eventually(
      async () => record.failed.some((f) => f.error.startsWith('READONLY')),
      10_000,
      'a write refused with READONLY by the fenced old master',
    );
    stopping = true;
    await writing;
    const adminA = a.client();

    const adminB = b.client();
    const onB = new Set((await adminB.smembers(key)).map(Number));
    const lost = record.acknowledged.filter((value) => !onB.has(value));
    console.log(
      `(a) writes: acknowledged ${record.acknowledged.length}, failed ${record.failed.length} ` +
        `(${[...new Set(record.failed.map((f) => f.error.split(' ')[0]))].join(', ')}), lost ${lost.length}`,
    );
    expect(lost).toEqual([]);

    await eventually(() => following(adminA, b), 20_000, 'old master replicating the new one');
    // Same history, resumed where it stopped: a partial resync, nothing of the old master discarded.
    expect(statsField(await adminB.info('stats'), 'sync_partial_ok')).toBeGreaterThanOrEqual(1);
    expect(statsField(await adminB.info('stats'), 'sync_full')).toBe(0);
    await eventually(async () => (await adminA.scard(key)) === onB.size, 10_000, 'old master holds the same set');
  });

  it('(b) promotes at once, without pausing or fencing, when the peer is unreachable', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const peer = hostPort(a);
    await a.stop();

    const started = Date.now();
    const result = await promoter(b, a).promote(peer);
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/catch-up skipped: peer 127\.0\.0\.1:\d+ unreachable \(connection refused\)/);
    expect(result.detail).not.toMatch(/paus|fenced/);
    expect(result.redis?.role).toBe('master');
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('(c) lifts the pause on the old master when the promotion fails half-way', async () => {
    const a = await startRedisServer();
    // REPLICAOF NO ONE cannot succeed here; SLAVEOF (another command) still attaches it.
    const b = await startRedisServer({ args: ['--rename-command', 'REPLICAOF', ''] });
    await b.client().slaveof(a.host, a.port);
    await eventually(() => following(b.client(), a), 20_000, 'replica link up');

    // A pause this long would outlive the test if it were not lifted.
    const result = await promoter(b, a, { maxSyncWaitMs: 60_000 }).promote(hostPort(a));
    expect(result.ok).toBe(false);
    expect(result.detail).toMatch(
      /paused writes on peer .*caught up to frozen offset .*failed: local Redis: .*unknown command.*; unpaused peer after an unfinished takeover \(\d+ ms\)/,
    );
    expect(result.detail).not.toContain('fenced peer');

    const adminA = a.client();
    const started = Date.now();
    expect(await adminA.set('after', 'accepted')).toBe('OK');
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(await replication(adminA)).toContain('role:master');
  });

  it('(d) handles passwords on both sides: masterauth set in both directions', async () => {
    const a = await startRedisServer({ password: 'alpha-secret', masterauth: false });
    const b = await startRedisServer({ password: 'bravo-secret', masterauth: false });
    const adminA = a.client();
    for (let i = 0; i < 1_000; i++) await adminA.set(`k:${i}`, String(i));

    const result = await promoter(b, a).promote(hostPort(a));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toContain('CONFIG SET masterauth (');
    expect(result.detail).toContain('CONFIG SET masterauth on peer (');
    expect(result.detail).toMatch(/paused writes on peer.*fenced peer: REPLICAOF.*unpaused peer/);
    const adminB = b.client();
    expect(await adminB.dbsize()).toBe(1_000);
    expect(await adminB.config('GET', 'masterauth')).toEqual(['masterauth', 'alpha-secret']);
    expect(await adminA.config('GET', 'masterauth')).toEqual(['masterauth', 'bravo-secret']);
    await eventually(() => following(adminA, b), 20_000, 'old master replicating the new one with auth');
    await adminB.set('new', 'on-b');
    await eventually(async () => (await adminA.get('new')) === 'on-b', 10_000, 'new writes reach the old master');
  });

  it('(e) does not follow a peer whose history lacks local writes: no REPLICAOF, the local data kept (finding 8)', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    // b was promoted out of a's history and took writes a never saw: a's history is older.
    const adminB = b.client();
    await adminB.replicaof('NO', 'ONE');
    for (let i = 0; i < 100; i++) await adminB.set(`only-on-b:${i}`, String(i));

    const result = await promoter(b, a).promote(hostPort(a));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/catch-up skipped: peer 127\.0\.0\.1:\d+'s history \w+@\d+ lacks \d+ bytes of \w+@\d+ \(from \w+@\d+\)/);
    expect(result.detail).not.toMatch(/REPLICAOF 127|paused|fenced peer/);
    expect(result.redis?.role).toBe('master');
    expect(await adminB.get('only-on-b:99')).toBe('99');
    expect(await replication(adminB)).toContain('role:master');
    expect(await replication(a.client())).toContain('role:master');
  });

  it('neither pauses nor fences when self does not name the promoting server', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);

    // Misconfigured: self points at the peer itself.
    const result = await promoter(b, a, { self: hostPort(a) }).promote(hostPort(a));
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toMatch(/peer will not be fenced: self 127\.0\.0\.1:\d+ is the peer's own address/);
    expect(result.detail).toMatch(/caught up to offset \d+ \(peer was at \d+\)/);
    expect(result.detail).not.toMatch(/paused|fenced peer/);
    expect(await replication(a.client())).toContain('role:master');
    expect(await replication(b.client())).toContain('role:master');
  });
});

describe('requireFence (prefer safety without a quorum after a silence; etcd\'s memory)', () => {
  it('does not promote when the old master cannot be reached: the local Redis stays its replica', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    // a's Redis frozen: b's link may still say up, but nothing answers (a silent cut).
    a.signal('SIGSTOP');
    try {
      const result = await promoter(b, a).promote(hostPort(a), { requireFence: true });
      expect(result.ok, result.detail).toBe(false);
      expect(result.detail).toContain('not promoting: the old master\'s Redis could not be caught up with and fenced');
      expect(await replication(b.client())).toContain('role:slave');
    } finally {
      a.signal('SIGCONT');
    }
  });

  it('promotes when the old master\'s Redis answers as a replica of ours: it takes no writes, and ours holds what it holds', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    // b, the local Redis, is a master; a, the old master's, already replicates it.
    await pair(a, b);
    const result = await promoter(b, a).promote(hostPort(a), { requireFence: true });
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toContain('is not a master');
    expect(await replication(b.client())).toContain('role:master');
  });

  it('does not promote when the old master\'s Redis is a replica of a history ours lacks (its resync from us would discard it)', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    const c = await startRedisServer();
    // a replicates a third server: its data is not in b's history.
    await pair(a, c);
    const result = await promoter(b, a).promote(hostPort(a), { requireFence: true });
    expect(result.ok, result.detail).toBe(false);
    expect(result.detail).toContain('not promoting: the old master\'s Redis could not be caught up with and fenced');
  });

  it('promotes once the old master is caught up with, and fences it', async () => {
    const a = await startRedisServer();
    const b = await startRedisServer();
    await pair(b, a);
    const result = await promoter(b, a).promote(hostPort(a), { requireFence: true });
    expect(result.ok, result.detail).toBe(true);
    expect(result.detail).toContain(`fenced peer: REPLICAOF ${b.host} ${b.port}`);
    expect(await replication(a.client())).toContain('role:slave');
  });
});
