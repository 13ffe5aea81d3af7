/**
 * Freshness across restarts (issue 10, item 1): a packet is delivered only when it echoes
 * this run's boot time, so nothing recorded before a restart is accepted after it, and
 * what was accepted from the peer is kept across restarts.
 */
import { describe, expect, it } from 'vitest';
import { Admission } from '../../src/proto/admission.js';

const A_RUN = 1_700_000_000_000;
const B_OLD = 1_700_000_100_000;
const B_NEW = 1_700_000_200_000;

const fromA = (seq: number, echo: number, boot = A_RUN) => ({ nodeName: 'a', bootTimeMs: boot, seq, echoBootTimeMs: echo });

describe('Admission', () => {
  it('delivers packets that echo this run, in order; refuses replays', () => {
    const b = new Admission(() => B_OLD);
    expect(b.check(fromA(1, B_OLD))).toEqual({ ok: true });
    expect(b.check(fromA(2, B_OLD))).toEqual({ ok: true });
    expect(b.check(fromA(2, B_OLD))).toMatchObject({ ok: false, reason: 'replayed' });
  });

  it('after a restart, refuses everything recorded before it, whatever its sequence', () => {
    const before = new Admission(() => B_OLD);
    for (let seq = 1; seq <= 10; seq++) expect(before.check(fromA(seq, B_OLD)).ok).toBe(true);
    // B restarts: a new run, its memory gone but for what the state file kept (seq 3).
    const after = new Admission(() => B_NEW, { seed: [{ nodeName: 'a', bootTimeMs: A_RUN, seq: 3 }] });
    for (let seq = 1; seq <= 3; seq++) expect(after.check(fromA(seq, B_OLD))).toMatchObject({ ok: false, reason: 'replayed' });
    for (let seq = 4; seq <= 10; seq++) expect(after.check(fromA(seq, B_OLD))).toMatchObject({ ok: false, reason: 'not-fresh' });
    // A has heard B's new run: its next packets are delivered.
    expect(after.check(fromA(11, B_NEW))).toEqual({ ok: true });
  });

  it('a recording of a run older than the one kept in the state file is refused as stale at once', () => {
    const b = new Admission(() => B_NEW, { seed: [{ nodeName: 'a', bootTimeMs: A_RUN, seq: 50 }] });
    expect(b.check(fromA(999, B_OLD, A_RUN - 1))).toMatchObject({ ok: false, reason: 'stale-boot' });
  });

  it('echoes the last run heard (seeded from the state file, so a restarted node echoes at once)', () => {
    const b = new Admission(() => B_NEW, { seed: [{ nodeName: 'a', bootTimeMs: A_RUN, seq: 5 }] });
    expect(b.echo()).toBe(A_RUN);
    expect(new Admission(() => B_NEW).echo()).toBe(0);
    // A packet of a newer run of A, even one not yet fresh, teaches B what to echo.
    expect(b.check(fromA(1, 0, A_RUN + 10)).ok).toBe(false);
    expect(b.echo()).toBe(A_RUN + 10);
    expect(b.lastHeard()).toEqual({ nodeName: 'a', bootTimeMs: A_RUN + 10, seq: 1 });
  });

  it('two daemons that just met each refuse the other for at most one exchange', () => {
    const aBoot = A_RUN;
    const a = new Admission(() => aBoot);
    const b = new Admission(() => B_NEW);
    // a's first packet (it has heard nobody) is refused by b but teaches b a's run...
    expect(b.check({ nodeName: 'a', bootTimeMs: aBoot, seq: 1, echoBootTimeMs: a.echo() }).ok).toBe(false);
    // ...so b's reply echoes it and is delivered, and teaches a b's run...
    expect(a.check({ nodeName: 'b', bootTimeMs: B_NEW, seq: 1, echoBootTimeMs: b.echo() }).ok).toBe(true);
    // ...so a's next packet is delivered too.
    expect(b.check({ nodeName: 'a', bootTimeMs: aBoot, seq: 2, echoBootTimeMs: a.echo() }).ok).toBe(true);
  });
});

describe('Admission: a kept run is a hint, not a lock', () => {
  it('accepts a smaller run of the peer that echoes this run, while nothing of the peer was accepted in it', () => {
    // The peer's state file was moved away while its clock was behind: its new run is older.
    const b = new Admission(() => B_NEW, { seed: [{ nodeName: 'a', bootTimeMs: A_RUN, seq: 5 }] });
    expect(b.check(fromA(1, 0, A_RUN - 1000))).toMatchObject({ ok: false, reason: 'stale-boot' });
    expect(b.check(fromA(2, B_NEW, A_RUN - 1000))).toEqual({ ok: true });
    expect(b.echo()).toBe(A_RUN - 1000);
    // From then on the usual order holds: the newer-looking kept run is gone, older ones stay out.
    expect(b.check(fromA(1, B_NEW, A_RUN - 2000))).toMatchObject({ ok: false, reason: 'stale-boot' });
  });

  it('does not once the peer was heard in this run', () => {
    const b = new Admission(() => B_NEW, { seed: [{ nodeName: 'a', bootTimeMs: A_RUN, seq: 5 }] });
    expect(b.check(fromA(6, B_NEW))).toEqual({ ok: true });
    expect(b.check(fromA(1, B_NEW, A_RUN - 1000))).toMatchObject({ ok: false, reason: 'stale-boot' });
  });
});
