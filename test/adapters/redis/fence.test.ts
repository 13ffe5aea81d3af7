/**
 * The write fence (`RedisControl.fence`, src/adapters/redis/fence.ts) against real
 * redis-server processes: a fenced master refuses writes by itself (NOREPLICAS), also
 * once the connection that set it is gone, and reads still pass; lifting it lets writes
 * through again; a replica that is later promoted keeps the fence; an unreachable Redis
 * is a failure result, never a throw.
 */
import { describe, expect, it } from 'vitest';
import { FENCE_MIN_REPLICAS } from '../../../src/adapters/redis/fence.js';
import { closeControlsAfterEach, endpoint, makeControl } from '../../helpers/redis-control.js';
import { startRedisServer } from '../../helpers/redis-server.js';

closeControlsAfterEach();

describe('the Redis write fence', () => {
  it('refused: every write gets NOREPLICAS, reads pass, and it holds without the daemon; accepted: writes pass again', async () => {
    const server = await startRedisServer();
    const app = server.client();
    await app.set('k', 'before');
    const control = makeControl({ local: endpoint(server) });
    const refused = await control.fence('refused');
    expect(refused).toMatchObject({ ok: true });
    expect(refused.detail).toMatch(new RegExp(`min-replicas-to-write ${FENCE_MIN_REPLICAS}`));
    await expect(app.set('k', 'during')).rejects.toThrow(/NOREPLICAS/);
    await expect(app.eval("return redis.call('SET', 'k', 'lua')", 0)).rejects.toThrow(/NOREPLICAS/);
    expect(await app.get('k')).toBe('before');
    // The daemon's connections are gone: Redis still refuses.
    await control.close();
    await expect(app.incr('n')).rejects.toThrow(/NOREPLICAS/);

    const again = makeControl({ local: endpoint(server) });
    expect(await again.fence('accepted')).toMatchObject({ ok: true, detail: expect.stringMatching(/min-replicas-to-write 0/) });
    expect(await app.set('k', 'after')).toBe('OK');
  });

  it('a fence set on a replica holds when it is promoted (REPLICAOF NO ONE), until lifted', async () => {
    const master = await startRedisServer();
    const replica = await startRedisServer({ args: ['--replicaof', master.host, String(master.port)] });
    const control = makeControl({ local: endpoint(replica) });
    expect(await control.fence('refused')).toMatchObject({ ok: true });
    const app = replica.client();
    await app.call('REPLICAOF', 'NO', 'ONE');
    await expect(app.set('k', 'v')).rejects.toThrow(/NOREPLICAS/);
    expect(await control.fence('accepted')).toMatchObject({ ok: true });
    expect(await app.set('k', 'v')).toBe('OK');
  });

  it('with-replica: writes pass while a replica is attached and stop by themselves when it goes', async () => {
    const master = await startRedisServer();
    const control = makeControl({ local: endpoint(master) });
    expect(await control.fence('with-replica')).toMatchObject({ ok: true, detail: expect.stringMatching(/min-replicas-to-write 1 \(max-lag \d+\)/) });
    const app = master.client();
    await expect(app.set('k', 'alone')).rejects.toThrow(/NOREPLICAS/);
    const replica = await startRedisServer({ args: ['--replicaof', master.host, String(master.port)] });
    const bound = Date.now() + 10_000;
    let written = false;
    while (!written && Date.now() < bound) {
      written = await app.set('k', 'with replica').then(() => true, () => false);
      if (!written) await new Promise((r) => setTimeout(r, 100));
    }
    expect(written).toBe(true);
    // The replica is promoted (as a backup does when it takes over): the old master refuses at once.
    await replica.client().call('REPLICAOF', 'NO', 'ONE');
    const refusedBy = Date.now() + 5_000;
    let refused = false;
    while (!refused && Date.now() < refusedBy) {
      refused = await app.set('k', 'after').then(() => false, (e: unknown) => /NOREPLICAS/.test(String(e)));
      if (!refused) await new Promise((r) => setTimeout(r, 50));
    }
    expect(refused).toBe(true);
  });

  it('an unreachable Redis is a failure result', async () => {
    const control = makeControl({ local: endpoint({ host: '127.0.0.1', port: 1 }), timeoutMs: 300 });
    const r = await control.fence('refused');
    expect(r.ok).toBe(false);
    expect(r.detail).toMatch(/CONFIG SET min-replicas-to-write 1000000 failed/);
  });
});
