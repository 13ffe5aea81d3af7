/**
 * The simulation's quorum (test/sim/quorum-adapter.ts on test/sim/etcd-model.ts) answers
 * as `EtcdQuorum` does (etcd-quorum.test.ts, on a real etcd) for the durable keys:
 * leader-last raised by every write and never lowered, `held` reporting it as it was
 * before the write, the relaxed mark written only by the holder and never over another
 * node's, cleared only as the exact record, both outliving every lease, and the mark's
 * calls failing (not throwing) while etcd is down or frozen. On the fake clock: each
 * call runs while the world runs.
 */
import { describe, expect, test } from 'vitest';
import { EtcdModel, type EtcdTiming } from '../../sim/etcd-model.js';
import { Network } from '../../sim/net.js';
import { SimQuorum } from '../../sim/quorum-adapter.js';
import { Incarnation, World, type NodeId } from '../../sim/world.js';

const TIMING: EtcdTiming = { leaseTtlMs: 2000, renewIntervalMs: 500, callTimeoutMs: 500, electionTimeoutMs: 250, healthTimeoutMs: 500 };
/** Long enough for any one call (a few sends, each well inside the call timeout). */
const CALL_MS = 4 * TIMING.callTimeoutMs;

class Harness {
  readonly world = new World(7);
  readonly etcd = new EtcdModel(this.world, new Network(this.world, []), TIMING);
  private readonly runs: Record<NodeId, Incarnation> = { a: new Incarnation('a', 1), b: new Incarnation('b', 1) };
  readonly q: Record<NodeId, SimQuorum> = { a: this.quorum('a'), b: this.quorum('b') };

  /** Runs the world until `call` has answered (at most `CALL_MS`). */
  async answer<T>(call: Promise<T>): Promise<T> {
    let done = false;
    const answered = call.finally(() => {
      done = true;
    });
    const until = this.world.now + CALL_MS;
    while (!done && this.world.now < until) await this.world.run(this.world.now + 10, () => undefined);
    expect(done, 'the call did not answer within its bound').toBe(true);
    return answered;
  }

  /** The daemon dies without revoking (its timers and keepalives go with it). */
  kill(node: NodeId): void {
    this.runs[node].alive = false;
    this.runs[node] = new Incarnation(node, this.runs[node].number + 1);
    this.q[node] = this.quorum(node);
  }

  private quorum(node: NodeId): SimQuorum {
    return new SimQuorum(node, this.runs[node], this.world, this.etcd, TIMING);
  }
}

describe('the simulation\'s quorum memory', () => {
  test('leader-last is raised by every write, reported as it was before it, and never lowered', async () => {
    const h = new Harness();
    expect(await h.answer(h.q.a.acquire(1))).toMatchObject({ outcome: 'held', memory: { last: null, relaxed: null } });
    expect(await h.answer(h.q.a.acquire(3))).toMatchObject({ outcome: 'held', memory: { last: { node: 'a', epoch: 1 } }, detail: 'key is mine; epoch raised to 3' });
    expect(await h.answer(h.q.a.acquire(3))).toMatchObject({ outcome: 'held', memory: { last: { node: 'a', epoch: 3 } }, detail: 'key is mine' });
    await h.answer(h.q.a.release());
    expect(await h.answer(h.q.b.acquire(5))).toMatchObject({ outcome: 'held', memory: { last: { node: 'a', epoch: 3 } } });
    await h.answer(h.q.b.release());
    // a last read leader-last at its own write: its create meets b's, and is sent again.
    expect(await h.answer(h.q.a.acquire(2))).toMatchObject({ outcome: 'held', epoch: 2, memory: { last: { node: 'b', epoch: 5 } }, detail: 'key was free: taken' });
    expect(h.etcd.last?.record).toEqual({ node: 'b', epoch: 5 });
  });

  test('the relaxed mark: only the holder writes it, never over another node\'s; cleared only as the exact record; it outlives the lease', async () => {
    const h = new Harness();
    expect(await h.answer(h.q.a.markRelaxed(1))).toEqual({ ok: false, detail: 'not holding the leader key' });
    expect(await h.answer(h.q.a.acquire(1))).toMatchObject({ outcome: 'held' });
    expect(await h.answer(h.q.a.markRelaxed(1))).toEqual({ ok: true, detail: 'marked a@1 relaxed' });
    expect(await h.answer(h.q.a.markRelaxed(1))).toEqual({ ok: true, detail: 'a@1 was already marked relaxed' });
    expect(await h.answer(h.q.a.markRelaxed(2))).toMatchObject({ ok: false, detail: expect.stringContaining('not a@2 on this node\'s lease (it is a@1)') });
    expect(await h.answer(h.q.a.acquire(2))).toMatchObject({ outcome: 'held', memory: { relaxed: { node: 'a', epoch: 1 } } });
    expect(await h.answer(h.q.a.markRelaxed(2))).toEqual({ ok: true, detail: 'marked a@2 relaxed' });
    expect(await h.answer(h.q.b.markRelaxed(3))).toEqual({ ok: false, detail: 'not holding the leader key' });

    // a's daemon dies; its lease ends; b takes the key and is told of a's mark.
    h.kill('a');
    await h.world.run(h.world.now + TIMING.leaseTtlMs + TIMING.electionTimeoutMs + 1000, () => undefined);
    expect(h.etcd.key).toBeNull();
    expect(await h.answer(h.q.b.acquire(3))).toMatchObject({ outcome: 'held', memory: { last: { node: 'a', epoch: 2 }, relaxed: { node: 'a', epoch: 2 } } });
    expect(await h.answer(h.q.b.markRelaxed(3))).toEqual({ ok: false, detail: 'the relaxed mark is a@2, not this node\'s: clear it first' });
    expect(await h.answer(h.q.b.clearRelaxed({ node: 'a', epoch: 1 }))).toEqual({ ok: false, detail: 'mark is a@2' });
    expect(await h.answer(h.q.b.clearRelaxed({ node: 'a', epoch: 2 }))).toEqual({ ok: true, detail: 'mark a@2 cleared' });
    expect(await h.answer(h.q.b.clearRelaxed({ node: 'a', epoch: 2 }))).toEqual({ ok: true, detail: 'no mark' });
    expect(await h.answer(h.q.b.markRelaxed(3))).toEqual({ ok: true, detail: 'marked b@3 relaxed' });
  });

  test('the durable keys survive an etcd restart; the mark\'s calls fail, without throwing, while etcd is down or frozen', async () => {
    const h = new Harness();
    expect(await h.answer(h.q.a.acquire(4))).toMatchObject({ outcome: 'held' });
    expect(await h.answer(h.q.a.markRelaxed(4))).toMatchObject({ ok: true });

    h.etcd.freeze(h.world.now + 2 * TIMING.callTimeoutMs);
    expect(await h.answer(h.q.a.markRelaxed(4))).toEqual({ ok: false, detail: 'relaxed mark: deadline of 500 ms exceeded' });
    expect(await h.answer(h.q.a.clearRelaxed({ node: 'a', epoch: 4 }))).toEqual({ ok: false, detail: 'relaxed mark clear: deadline of 500 ms exceeded' });
    // The frozen member serves what it queued once it resumes (the clear whose caller gave up too).
    await h.world.run(h.world.now + 2 * TIMING.callTimeoutMs, () => undefined);
    expect(h.etcd.relaxed).toBeNull();

    h.etcd.kill();
    expect(await h.answer(h.q.a.clearRelaxed({ node: 'a', epoch: 4 }))).toEqual({ ok: false, detail: 'relaxed mark clear: connection refused' });
    h.etcd.start();
    await h.world.run(h.world.now + TIMING.electionTimeoutMs + 10, () => undefined);
    expect(h.etcd.last?.record).toEqual({ node: 'a', epoch: 4 });
  });
});
