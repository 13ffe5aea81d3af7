/**
 * The simulation's quorum (test/sim/quorum-adapter.ts on test/sim/etcd-model.ts) answers
 * as `EtcdQuorum` does (etcd-quorum.test.ts, on a real etcd) for the durable keys:
 * leader-last written only by its holder's served record, `held` reporting it as it was
 * in the write's revision, the relaxed mark written only by the holder and never over another
 * node's, cleared only as the exact record, both outliving every lease, and the mark's
 * calls failing (not throwing) while etcd is down or frozen. On the fake clock: each
 * call runs while the world runs.
 */
import { describe, expect, test } from 'vitest';
import { EtcdModel, type EtcdTiming } from './etcd-model.js';
import { Network } from './net.js';
import { SimQuorum } from './quorum-adapter.js';
import { Incarnation, World, type NodeId } from './world.js';

const REPL = 'c'.repeat(40);
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
  test('leader-last is written only by the holder\'s served record, reported with the next key, and outlives the lease', async () => {
    const h = new Harness();
    const served = (epoch: number) => ({ kind: 'served', epoch, replId: REPL } as const);
    expect(await h.answer(h.q.a.mark(served(1)))).toEqual({ ok: false, detail: 'not holding the leader key' });
    expect(await h.answer(h.q.a.acquire(1))).toMatchObject({ outcome: 'held', memory: { last: null, relaxed: null } });
    // Holding the key alone writes nothing there; serving does.
    expect(await h.answer(h.q.a.acquire(3))).toMatchObject({ outcome: 'held', memory: { last: null }, detail: 'key is mine; epoch raised to 3' });
    expect(await h.answer(h.q.a.mark(served(2)))).toMatchObject({ ok: false, detail: expect.stringContaining('not a@2 on this node\'s lease') });
    expect(await h.answer(h.q.a.mark(served(3)))).toEqual({ ok: true, detail: 'recorded a@3 as the last master to serve' });
    await h.answer(h.q.a.release());
    expect(await h.answer(h.q.b.acquire(5))).toMatchObject({ outcome: 'held', memory: { last: { node: 'a', epoch: 3, replId: REPL } } });
    expect(await h.answer(h.q.a.mark(served(3)))).toEqual({ ok: false, detail: 'not holding the leader key' });
    expect(h.etcd.last?.record).toEqual({ node: 'a', epoch: 3, replId: REPL });
  });

  test('the relaxed mark: only the holder writes it, never over another node\'s; cleared only as the exact record; it outlives the lease', async () => {
    const h = new Harness();
    expect(await h.answer(h.q.a.mark({ kind: 'relax', epoch: 1 }))).toEqual({ ok: false, detail: 'not holding the leader key' });
    expect(await h.answer(h.q.a.acquire(1))).toMatchObject({ outcome: 'held' });
    expect(await h.answer(h.q.a.mark({ kind: 'relax', epoch: 1 }))).toEqual({ ok: true, detail: 'marked a@1 relaxed' });
    expect(await h.answer(h.q.a.mark({ kind: 'relax', epoch: 1 }))).toEqual({ ok: true, detail: 'a@1 was already marked relaxed' });
    expect(await h.answer(h.q.a.mark({ kind: 'relax', epoch: 2 }))).toMatchObject({ ok: false, detail: expect.stringContaining('not a@2 on this node\'s lease (it is a@1)') });
    expect(await h.answer(h.q.a.acquire(2))).toMatchObject({ outcome: 'held', memory: { relaxed: { node: 'a', epoch: 1 } } });
    expect(await h.answer(h.q.a.mark({ kind: 'relax', epoch: 2 }))).toEqual({ ok: true, detail: 'marked a@2 relaxed' });
    expect(await h.answer(h.q.b.mark({ kind: 'relax', epoch: 3 }))).toEqual({ ok: false, detail: 'not holding the leader key' });

    // a's daemon dies; its lease ends; b takes the key and is told of a's mark.
    h.kill('a');
    await h.world.run(h.world.now + TIMING.leaseTtlMs + TIMING.electionTimeoutMs + 1000, () => undefined);
    expect(h.etcd.key).toBeNull();
    expect(await h.answer(h.q.b.acquire(3))).toMatchObject({ outcome: 'held', memory: { last: null, relaxed: { node: 'a', epoch: 2 } } });
    expect(await h.answer(h.q.b.mark({ kind: 'relax', epoch: 3 }))).toEqual({ ok: false, detail: 'the relaxed mark is a@2, not this node\'s: clear it first' });
    expect(await h.answer(h.q.b.mark({ kind: 'clear', holder: { node: 'a', epoch: 1 } }))).toEqual({ ok: true, detail: 'no mark a@1 (the mark is a@2)' });
    expect(await h.answer(h.q.b.mark({ kind: 'clear', holder: { node: 'a', epoch: 2 } }))).toEqual({ ok: true, detail: 'mark a@2 cleared' });
    expect(await h.answer(h.q.b.mark({ kind: 'clear', holder: { node: 'a', epoch: 2 } }))).toEqual({ ok: true, detail: 'no mark' });
    expect(await h.answer(h.q.b.mark({ kind: 'relax', epoch: 3 }))).toEqual({ ok: true, detail: 'marked b@3 relaxed' });
  });

  test('the durable keys survive an etcd restart; the mark\'s calls fail, without throwing, while etcd is down or frozen', async () => {
    const h = new Harness();
    expect(await h.answer(h.q.a.acquire(4))).toMatchObject({ outcome: 'held' });
    expect(await h.answer(h.q.a.mark({ kind: 'relax', epoch: 4 }))).toMatchObject({ ok: true });
    expect(await h.answer(h.q.a.mark({ kind: 'served', epoch: 4, replId: REPL }))).toMatchObject({ ok: true });

    h.etcd.freeze(h.world.now + 2 * TIMING.callTimeoutMs);
    expect(await h.answer(h.q.a.mark({ kind: 'relax', epoch: 4 }))).toEqual({ ok: false, detail: 'relaxed mark: deadline of 500 ms exceeded' });
    expect(await h.answer(h.q.a.mark({ kind: 'clear', holder: { node: 'a', epoch: 4 } }))).toEqual({ ok: false, detail: 'relaxed mark clear: deadline of 500 ms exceeded' });
    // The frozen member serves what it queued once it resumes (the clear whose caller gave up too).
    await h.world.run(h.world.now + 2 * TIMING.callTimeoutMs, () => undefined);
    expect(h.etcd.relaxed).toBeNull();

    h.etcd.kill();
    expect(await h.answer(h.q.a.mark({ kind: 'clear', holder: { node: 'a', epoch: 4 } }))).toEqual({ ok: false, detail: 'relaxed mark clear: connection refused' });
    h.etcd.start();
    await h.world.run(h.world.now + TIMING.electionTimeoutMs + 10, () => undefined);
    expect(h.etcd.last?.record).toEqual({ node: 'a', epoch: 4, replId: REPL });
  });
});
