/** The status report and its monitoring verdict, from core states built by the core itself. */
import { describe, expect, it } from 'vitest';
import { NO_QUORUM, type CoreQuorumConfig, type CoreState } from '../../src/core/state.js';
import { step } from '../../src/core/step.js';
import { buildStatus, VERDICT_EXIT } from '../../src/daemon/status.js';
import { formatStatus } from '../../src/cli/status-format.js';
import { backupB, bCfg as quorumB } from '../core/quorum-fixtures.js';
import { aCfg, A_ADDR, B_ADDR, REPL_A, advert, fail, heard, last, masterSnap, ok, run } from '../core/fixtures.js';

const bAdvert = advert({ nodeName: 'b', state: 'BACKUP', priority: 90, redis: { role: 'replica', replId: REPL_A, replId2: '', offset: 900, secondOffset: -1 } });

function masterA(): CoreState {
  return last(run(aCfg, [[0, { type: 'started' }], [10, ok(masterSnap({ replId: REPL_A, offset: 1000, connectedReplicas: 1 }))], [20, heard(bAdvert, B_ADDR)]])).state;
}

function status(state: CoreState, now: number, holdsVip: boolean | null = true, quorum: Pick<CoreQuorumConfig, 'backend' | 'prefer'> = NO_QUORUM) {
  return buildStatus({
    state, now, wallNow: Date.parse('2026-11-22T12:00:00Z'),
    node: { name: 'a', address: A_ADDR, priority: 100 }, vip: '10.77.0.100/24 on eth0', holdsVip,
    estimate: { redisFailureMs: 1100, redisCrashMs: 100, hostLossMs: 3600, resignMs: 700 }, maxLagBytes: 1000, adverts: { sent: 3 }, quorum,
  });
}

describe('status', () => {
  it('a healthy master with a live backup is ok, with every section filled', () => {
    const r = status(masterA(), 100);
    expect(r.verdict).toBe('ok');
    expect(r.problems).toEqual([]);
    expect(r.node).toMatchObject({ name: 'a', state: 'MASTER', epoch: 0, holdsVip: true, priority: { configured: 100, effective: 100 } });
    expect(r.peer).toMatchObject({ name: 'b', state: 'BACKUP', live: true, lastAdvertAgoMs: 80 });
    expect(r.replication.lagBytes).toBe(100);
    expect(r.redis).toMatchObject({ role: 'master', offset: 1000, connectedReplicas: 1, healthy: true });
    expect(r.lastTransition.reason).toMatch(/adopted/);
    expect(r.lastTransition.at).toBe('2026-11-22T11:59:59.920Z');
    expect(VERDICT_EXIT[r.verdict]).toBe(0);
  });

  it('a silent peer is critical (no failover possible)', () => {
    const r = status(masterA(), 60_000);
    expect(r.verdict).toBe('critical');
    expect(r.problems[0]).toMatch(/no advert from peer b for 59980 ms/);
  });

  it('maintenance and lag are warnings; the held-back action is shown', () => {
    let s = step(masterA(), { type: 'maintenance-requested', requestId: 'm', on: true, user: 'root' }, 100, aCfg).state;
    s = step(s, heard(advert({ ...bAdvert, redis: { ...bAdvert.redis, offset: -5000 }, maintenanceGen: 1, flags: { fault: false, resigning: false, maintenance: true, switchingOver: false, holdsVip: false } }), B_ADDR), 150, aCfg).state;
    const r = status(s, 200);
    expect(r.verdict).toBe('warning');
    expect(r.problems.join('; ')).toMatch(/maintenance is on.*; replication lag 6000 bytes exceeds 1000/);
  });

  it('a master whose Redis fails in maintenance is critical and says what is held back', () => {
    let s = step(masterA(), { type: 'maintenance-requested', requestId: 'm', on: true, user: 'root' }, 100, aCfg).state;
    s = step(s, fail, 200, aCfg).state;
    s = step(s, fail, 300, aCfg).state;
    const r = status(s, 400);
    expect(r.verdict).toBe('critical');
    expect(r.maintenance.heldBack).toMatch(/local Redis failed 2 checks/);
    expect(r.problems.join('; ')).toMatch(/MASTER but its Redis fails/);
  });

  it('a backup whose Redis holds writes the master lacks is critical and says why it does not follow', () => {
    const etcdB = { ...aCfg, nodeName: 'b', priority: 90, peerRedis: { host: A_ADDR, port: 6379 }, quorum: { backend: 'etcd', prefer: 'safety', retryMs: 500, fenceLeadMs: 530 } } as const;
    let s = last(run(etcdB, [[0, { type: 'started' }], [10, ok({ ...masterSnap(), role: 'replica', masterHost: A_ADDR, masterPort: 6379, linkUp: true })]])).state;
    s = { ...s, health: { ...s.health, redis: masterSnap({ replId: 'b'.repeat(40), replId2: REPL_A, offset: 1500, secondOffset: 1001 }) } };
    // a took the role with its Redis where b's forked from it: b's holds 500 bytes more.
    s = step(s, heard(advert({ state: 'MASTER', epoch: 1, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 1000, secondOffset: -1 } })), 100, etcdB).state;
    const r = status(s, 200, false, { backend: 'etcd', prefer: 'safety' });
    expect(r.verdict).toBe('critical');
    expect(r.problems.join('; ')).toMatch(/local Redis does not follow a: .*older point of the local .*500 bytes written since/);
  });

  it('a VIP in the wrong place is critical', () => {
    expect(status(masterA(), 100, false).problems).toContain('this node is MASTER but does not hold the VIP');
  });

  describe('with a quorum', () => {
    const etcd = { backend: 'etcd', prefer: 'safety' } as const;
    const quorum = { backend: 'etcd', prefer: 'safety', retryMs: 500, fenceLeadMs: 530 } as const;
    const bCfg = { ...aCfg, nodeName: 'b', priority: 90, quorum };

    it('a backup waiting for the key says who holds it, and why it is not master', () => {
      const backup = last(run(bCfg, [[0, { type: 'started' }], [10, ok({ ...masterSnap(), role: 'replica', masterHost: A_ADDR, masterPort: 6379, linkUp: true })],
        [20, heard(advert({ state: 'MASTER', epoch: 1 }))]])).state;
      const asked = step(backup, { type: 'timer-fired', timer: 'master-down' }, 5000, bCfg).state;
      const refused = step(asked, { type: 'quorum-answered', epoch: 2, answer: { outcome: 'held-by-other', holder: { node: 'a', epoch: 1 }, detail: 'held by a' } }, 5010, bCfg).state;
      const r = status(refused, 5100, false, etcd);
      expect(r.quorum).toMatchObject({ backend: 'etcd', held: false, holder: { node: 'a', epoch: 1 }, waiting: { kind: 'takeover' } });
      expect(r.whyNotMaster).toMatch(/waiting for the leader key to take over .*held by a \(epoch 1\)/);
      const unreachable = step(refused, { type: 'quorum-answered', epoch: 2, answer: { outcome: 'unreachable', detail: 'deadline exceeded' } }, 5600, bCfg).state;
      expect(status(unreachable, 5700, false, etcd).problems).toContain('etcd unreachable (deadline exceeded): no promotion possible');
    });

    it('a master shows its lease; without etcd the mode in force is shown', () => {
      const m = { ...masterA(), quorum: { ...masterA().quorum, held: { epoch: 0, validUntilAtMs: 3000 } } };
      expect(status(m, 1000, true, etcd).quorum).toMatchObject({ held: true, epoch: 0, validForMs: 2000 });
      expect(status(m, 1000).quorum).toMatchObject({ backend: 'none', prefer: 'availability' });
      expect(status(m, 1000).whyNotMaster).toBeNull();
    });

    it('a forced failover waiting for the key is shown, with what it overrode', () => {
      const held = { ...backupB(), takeoverHeld: { reason: 'no master advert from a', blocker: 'this replica was 5000 bytes behind a', sinceMs: 5000 } };
      expect(status(held, 5100, false, etcd).whyNotMaster).toBe('this replica was 5000 bytes behind a; `redis-ha failover --accept-data-loss` overrides it');
      const forced = step(held, { type: 'failover-requested', requestId: 'f1', user: 'root(uid 0)', pid: 1, acceptDataLoss: true }, 6000, quorumB).state;
      const r = status(forced, 6500, false, etcd);
      expect(r.forcedFailover).toEqual({ requestId: 'f1', user: 'root(uid 0)', overrode: 'this replica was 5000 bytes behind a', runningMs: 500 });
      expect(r.problems).toContain('forced failover f1 by root(uid 0) in progress');
      expect(formatStatus(r)).toMatch(/^forced failover +f1 running for 500 ms \(by root\(uid 0\)\), overriding: this replica was 5000 bytes behind a$/m);
    });

    it('a fence that could not be set is critical', () => {
      const m = { ...masterA(), quorum: { ...masterA().quorum, fence: { writes: 'refused' as const, ok: false, detail: 'timeout' } } };
      expect(status(m, 100, true, etcd).problems).toContain("the local Redis's write fence could not be set (refused): timeout");
    });
  });
});
