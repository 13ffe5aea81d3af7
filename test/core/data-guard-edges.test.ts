/**
 * The data guard's edge cases a review found (issue 11 item 5): each row is a sequence
 * of events; the last step must not let an emptied Redis become (or stay) the master the
 * peer's replica resyncs from: a preemption or a stopping peer's takeover before the
 * resync (F1), a second empty restart before it (F2), a crash right after a promotion
 * (F4: the run id kept across it), and a daemon restarted with its emptied Redis (F5).
 */
import { describe, expect, it } from 'vitest';
import type { CoreConfig, CoreState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import type { Event, RedisSnapshot } from '../../src/core/types.js';
import { B_ADDR, REPL_A, REPL_B, aCfg, bAdvert, coreConfig, fired, heard, last, masterSnap, ok, replicaSnap, run, types } from './fixtures.js';

const E = 'e'.repeat(40); // the emptied run's replid
const F = 'f'.repeat(40); // b's replid once b promoted
const before = masterSnap({ replId: REPL_A, offset: 5000, connectedReplicas: 1, runId: 'run-1' });
const emptied = masterSnap({ replId: E, offset: 0, runId: 'run-2' });
const refused: Event = { type: 'health-checked', ok: false, detail: 'connection refused', redis: null, down: true };
const bBackup = heard(bAdvert({ state: 'BACKUP', redis: { role: 'replica', replId: REPL_A, replId2: '', offset: 4900, secondOffset: -1 } }), B_ADDR);
const bMaster = heard(bAdvert({ state: 'MASTER', epoch: 2, redis: { role: 'master', replId: F, replId2: REPL_A, offset: 5000, secondOffset: 4901 } }), B_ADDR);
/** a's emptied Redis after the guard's REPLICAOF: a replica of b, full sync still running. */
const syncing: RedisSnapshot = replicaSnap({ masterHost: B_ADDR, replId: E, offset: 0, linkUp: false, syncInProgress: true, runId: 'run-2' });

/** a MASTER (run-1 at 5000), b a live BACKUP holding a's history up to 4900. */
function master(config: CoreConfig): CoreState {
  return last(run(config, [[0, { type: 'started' }], [10, ok(before)], [20, bBackup], [30, { type: 'vip-claimed' }], [40, ok(before)]])).state;
}

/** a after the guard fired, b promoted, a's Redis resyncing from b (not done): a BACKUP, historyLoss still set. */
function guardedBackup(config: CoreConfig): CoreState {
  return last(run(config, [
    [100, ok(emptied)], // the guard: REPLICAOF b, FAULT
    [150, { type: 'demotion-finished', ok: true, detail: 'replica of b' }],
    [200, bMaster],
    [700, ok(syncing)],
    [1200, ok(syncing)], // rise 2: BACKUP
  ], master(config))).state;
}

interface Row {
  readonly name: string;
  readonly config: CoreConfig;
  /** The state before the last event. */
  readonly state: () => CoreState;
  readonly events: readonly (readonly [number, Event])[];
  /** What the last step must (not) do. */
  readonly expect: (r: ReturnType<typeof step>) => void;
}

const preemptCfg = coreConfig({ ...aCfg, preempt: true, preemptDelayMs: 0 });

const rows: Row[] = [
  {
    // F1: preemption is not gated (cause null in takeOver): a's emptied Redis, mid full
    // sync, is promoted (the catch-up gives up after max_sync_wait_ms), b then resyncs from it.
    name: 'F1 preempt: a node whose Redis lost its data does not preempt the peer before it resynced',
    config: preemptCfg,
    state: () => guardedBackup(preemptCfg),
    events: [[1300, bMaster], [1300, fired('preempt')]],
    expect: (r) => {
      expect(r.state.historyLoss).not.toBeNull();
      expect(types(r.actions)).not.toContain('promote-redis');
      expect(r.state.role).toBe('BACKUP');
    },
  },
  {
    // F1 (same gap): a resigning peer's takeover is not gated either.
    name: 'F1 resign: a node whose Redis lost its data does not take over from a stopping peer before it resynced',
    config: aCfg,
    state: () => guardedBackup(aCfg),
    events: [
      [1300, heard(bAdvert({ state: 'MASTER', epoch: 2, priority: 0, flags: { fault: false, resigning: true, maintenance: false, switchingOver: false, holdsVip: false },
        redis: { role: 'master', replId: F, replId2: REPL_A, offset: 5000, secondOffset: 4901 } }), B_ADDR)],
      [1400, fired('master-down')],
    ],
    expect: (r) => {
      expect(r.state.historyLoss).not.toBeNull();
      expect(types(r.actions)).not.toContain('promote-redis');
    },
  },
  {
    // F2: the guard compares with the last snapshot only. After its REPLICAOF the run is a
    // replica at offset 0 (no link: b is still a replica of a); a second empty restart
    // (crash loop) is a master at offset 0, not "behind", so nothing re-points it, and b
    // (held, e.g. by a's recovery block) reconnects and resyncs from it.
    name: 'F2 second empty restart while the loss is pending and the peer is not master yet: guarded again',
    config: aCfg,
    state: () => last(run(aCfg, [
      [100, ok(emptied)],
      [150, { type: 'demotion-finished', ok: true, detail: 'replica of b' }],
      [200, ok(replicaSnap({ masterHost: B_ADDR, replId: E, offset: 0, linkUp: false, runId: 'run-2' }))],
      [210, bBackup],
      [220, refused],
    ], master(aCfg))).state,
    events: [[240, ok(masterSnap({ replId: 'd'.repeat(40), offset: 0, runId: 'run-3' }))]],
    expect: (r) => {
      expect(r.state.historyLoss).not.toBeNull(); // the first loss is still known...
      expect(r.state.health.redis?.role).toBe('master'); // ...and the new run is an empty master
      expect(r.actions).toContainEqual({ type: 'replicate-from', master: { host: B_ADDR, port: 6379 }, guard: true });
    },
  },
  {
    // F4: promotion-finished replaces health.redis with a snapshot without run_id; the
    // guard is blind until the next good check, so a crash in that interval escapes it.
    name: 'F4 a crash within one check interval after a promotion is still guarded (run_id kept across the promotion)',
    config: aCfg,
    state: () => last(run(aCfg, [
      [0, { type: 'started' }],
      [10, ok(replicaSnap({ masterHost: B_ADDR, replId: REPL_B, offset: 5000, runId: 'ra-1' }))],
      [20, heard(bAdvert({ state: 'MASTER', epoch: 1, redis: { role: 'master', replId: REPL_B, replId2: '', offset: 5000, secondOffset: -1 } }), B_ADDR)],
      [30, heard(bAdvert({ state: 'FAULT', epoch: 1, flags: { fault: true, resigning: false, maintenance: false, switchingOver: false, holdsVip: false },
        redis: { role: 'unknown', replId: REPL_B, replId2: '', offset: 5000, secondOffset: -1 } }), B_ADDR)],
      [40, { type: 'promotion-finished', ok: true, detail: 'promoted', redis: masterSnap({ replId: '9'.repeat(40), replId2: REPL_B, offset: 5000 }) }],
      [50, { type: 'vip-claimed' }],
      [60, heard(bAdvert({ state: 'BACKUP', epoch: 2, redis: { role: 'replica', replId: '9'.repeat(40), replId2: '', offset: 5000, secondOffset: -1 } }), B_ADDR)],
      [70, refused],
    ])).state,
    events: [[90, ok(masterSnap({ replId: E, offset: 0, runId: 'ra-2' }))]],
    expect: (r) => {
      expect(r.actions).toContainEqual({ type: 'replicate-from', master: { host: B_ADDR, port: 6379 }, guard: true });
    },
  },
  {
    // F5: INIT has no "before": a daemon restarted with its Redis (host reboot shorter than
    // master-down, `systemctl restart redis-server redis-ha`) adopts an emptied master
    // although b's advert shows b's replica further on another history; b then resyncs from it.
    name: 'F5 INIT does not adopt an emptied master while the live peer\'s replica holds more on another history',
    config: aCfg,
    state: () => last(run(aCfg, [[0, { type: 'started' }], [5, bBackup]])).state,
    events: [[10, ok(emptied)]],
    expect: (r) => {
      expect(r.state.role).not.toBe('MASTER');
      expect(types(r.actions)).not.toContain('claim-vip');
    },
  },
];

describe('data guard edge cases', () => {
  for (const row of rows) {
    it(row.name, () => {
      let s = row.state();
      let r: ReturnType<typeof step> | null = null;
      for (const [t, e] of row.events) {
        r = step(s, e, t, row.config);
        s = r.state;
      }
      if (r === null) throw new Error('no events');
      row.expect(r);
    });
  }
});
