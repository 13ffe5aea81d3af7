/**
 * The control handler: who may do what, argument checks, the audit record of every
 * request (written by the real core, and by a real audit log for the bounds), which
 * requests are summarised, and that requests reach the loop as events (a recording
 * stub stands in for the runtime; the socket itself is tested in test/adapters/control-socket.test.ts).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/adapters/audit.js';
import { verifyAuditFiles } from '../../src/audit/verify.js';
import type { Caller } from '../../src/adapters/control-socket.js';
import { controlHandler, newRequestId, REFUSED_AUDIT_INTERVAL_MS, STATUS_AUDIT_INTERVAL_MS } from '../../src/daemon/control.js';
import { createLogger, silentLogger } from '../../src/daemon/logger.js';
import type { RequestEvent, RequestReply } from '../../src/daemon/runtime.js';
import type { StatusReport } from '../../src/daemon/status.js';
import { initialState, step } from '../../src/core/step.js';
import { REPL_A, advert, coreConfig, fired, heard, last, ok, replicaSnap, run } from '../core/fixtures.js';

const root: Caller = {
  credentials: { pid: 4242, uid: 0, gid: 0, user: 'root', groups: [0] },
  credentialError: null, authorized: true, description: 'root (uid 0, pid 4242)',
};
const nobody: Caller = {
  credentials: { pid: 777, uid: 65534, gid: 65534, user: 'nobody', groups: [65534] },
  credentialError: null, authorized: false, description: 'nobody (uid 65534, pid 777)',
};
const unknown: Caller = { credentials: null, credentialError: 'addon missing', authorized: false, description: 'unknown caller (addon missing)' };

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

function harness(
  answer: RequestReply = { ok: true, detail: 'done', data: {} },
  options: { now?: () => number; log?: AuditLog } = {},
) {
  const events: RequestEvent[] = [];
  const records: { event: string; data: Record<string, unknown> }[] = [];
  const handler = controlHandler({
    ...(options.now ? { now: options.now } : {}),
    nodeName: 'a',
    defaultTimeoutMs: 5000,
    request: async (event) => {
      events.push(event);
      return answer;
    },
    status: async () => ({ verdict: 'ok' }) as unknown as StatusReport,
    // The core turns the handler's record into its audit action, as in the daemon.
    record: async (record) => {
      const r = step(initialState(0, { epoch: 0, knownEpoch: 0 }), { type: 'control-handled', record }, 0, coreConfig());
      for (const a of r.actions) {
        if (a.type !== 'audit') continue;
        records.push({ event: a.event, data: { ...a.data } });
        await options.log?.append(a.event, a.data ?? {});
      }
    },
    logger: createLogger('fatal'),
  });
  return { handler, events, records };
}

describe('control handler', () => {
  it('status is open to anyone who can reach the socket, and is audited (summarised)', async () => {
    const h = harness();
    const reply = await h.handler({ command: 'status', args: {} }, nobody);
    expect(reply).toMatchObject({ ok: true, status: { verdict: 'ok' } });
    expect(h.records[0]).toMatchObject({ event: 'control-request', data: { command: 'status', user: 'nobody', uid: 65534, pid: 777, outcome: 'ok', calls: 1 } });
    expect(typeof h.records[0]?.data.durationMs).toBe('number');
  });

  it('status is recorded once per uid per interval, the next record counting the calls held back', async () => {
    let now = 0;
    const h = harness(undefined, { now: () => now });
    for (let i = 0; i < 5; i++) await h.handler({ command: 'status', args: {} }, nobody);
    await h.handler({ command: 'status', args: {} }, root); // another uid: its own record
    expect(h.records.map((r) => [r.data.user, r.data.calls])).toEqual([['nobody', 1], ['root', 1]]);
    now += STATUS_AUDIT_INTERVAL_MS;
    await h.handler({ command: 'status', args: {} }, nobody);
    expect(h.records.map((r) => [r.data.user, r.data.calls])).toEqual([['nobody', 1], ['root', 1], ['nobody', 5]]);
  });

  it('every state-changing request of an authorized caller is recorded; refusals of an unauthorized one are summarised', async () => {
    let now = 0;
    const h = harness(undefined, { now: () => now });
    for (let i = 0; i < 3; i++) await h.handler({ command: 'maintenance', args: { on: i % 2 === 0 } }, root);
    expect(h.records.filter((r) => r.data.user === 'root')).toHaveLength(3);
    expect(h.records.every((r) => r.data.calls === undefined)).toBe(true);
    for (let i = 0; i < 50; i++) await h.handler({ command: i % 2 ? 'switchover' : 'reboot', args: {} }, nobody);
    expect(h.records.filter((r) => r.data.user === 'nobody').map((r) => [r.data.command, r.data.outcome, r.data.calls])).toEqual([['reboot', 'error', 1]]);
    now += REFUSED_AUDIT_INTERVAL_MS;
    await h.handler({ command: 'switchover', args: {} }, nobody);
    expect(h.records.at(-1)?.data).toMatchObject({ command: 'switchover', outcome: 'denied', user: 'nobody', calls: 50 });
  });

  it('a request with deeply nested args leaves a complete, bounded audit record', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rh-control-audit-'));
    dirs.push(dir);
    const path = join(dir, 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger());
    const h = harness({ ok: true, detail: 'done', data: {} }, { log });
    // As the socket parses them: JSON.parse takes any depth, JSON.stringify does not.
    const deep = JSON.parse(`{"timeoutMs":2000,"x":${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}}`) as Record<string, unknown>;
    const wide = { pad: 'x'.repeat(60_000), ...Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`k${i}`, i])) };
    await h.handler({ command: 'switchover', args: deep }, root);
    await h.handler({ command: 'switchover', args: deep }, nobody);
    await h.handler({ command: 'x'.repeat(60_000), args: wide }, root);
    await h.handler({ command: 'status', args: wide }, root);
    await log.close();
    const text = await readFile(path, 'utf8');
    const lines = text.trim().split('\n');
    expect(lines).toHaveLength(4);
    for (const line of lines) expect(Buffer.byteLength(line)).toBeLessThan(4096);
    const recs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    for (const r of recs) {
      expect(r).toMatchObject({ event: 'control-request', user: expect.any(String), uid: expect.any(Number), pid: expect.any(Number), outcome: expect.any(String) });
      expect(typeof r.command).toBe('string');
      expect(r.recordCut).toBeUndefined(); // bounded by the handler, not rescued by the log
    }
    expect(recs[0]).toMatchObject({ command: 'switchover', user: 'root', uid: 0, pid: 4242, outcome: 'ok', args: { timeoutMs: 2000, 'x.a.a': '[object, 1 keys]' }, argsCut: { deeper: 1 } });
    expect(recs[1]).toMatchObject({ command: 'switchover', user: 'nobody', uid: 65534, outcome: 'denied' });
    expect(recs[2]).toMatchObject({ command: `${'x'.repeat(64)}…`, outcome: 'error', argsCut: { strings: 1 } });
    expect(recs[3]).toMatchObject({ command: 'status', outcome: 'ok', calls: 1 });
    expect((await verifyAuditFiles([path])).ok).toBe(true);
  });

  it.each([['switchover', {}], ['maintenance', { on: true }], ['failover', { acceptDataLoss: true }], ['failover', {}]] as const)('%s %o is denied to an unauthorised user and to unknown credentials', async (command, args) => {
    for (const caller of [nobody, unknown]) {
      const h = harness();
      const reply = await h.handler({ command, args }, caller);
      expect(reply).toMatchObject({ ok: false, outcome: 'denied' });
      expect(String(reply.error)).toMatch(/may not run/);
      expect(h.events).toEqual([]);
      expect(h.records[0]?.data).toMatchObject({ command, outcome: 'denied', caller: caller.description });
    }
  });

  it('switchover goes to the loop as an event with the user, and its outcome is audited', async () => {
    const h = harness({ ok: true, detail: 'b is master (epoch 3)', data: { pausedMs: 9 } });
    const reply = await h.handler({ command: 'switchover', args: { timeoutMs: 2000, force: true } }, root);
    expect(h.events).toHaveLength(1);
    expect(h.events[0]).toMatchObject({ type: 'switchover-requested', timeoutMs: 2000, force: true, user: 'root(uid 0)', origin: 'local' });
    expect(reply).toMatchObject({ ok: true, outcome: 'ok-forced', detail: 'b is master (epoch 3)', pausedMs: 9 });
    expect(h.records[0]?.data).toMatchObject({ command: 'switchover', outcome: 'ok-forced', user: 'root', requestId: reply.requestId });
  });

  it('failover goes to the loop as an event with the caller and acceptDataLoss; its outcome is audited', async () => {
    const h = harness({ ok: true, detail: 'this node is MASTER (epoch 3)', data: { outcome: 'taken-over', epoch: 3 } });
    const reply = await h.handler({ command: 'failover', args: { acceptDataLoss: true } }, root);
    expect(h.events).toEqual([{ type: 'failover-requested', requestId: reply.requestId, user: 'root(uid 0)', pid: 4242, acceptDataLoss: true }]);
    expect(reply).toMatchObject({ ok: true, outcome: 'taken-over', epoch: 3, acceptDataLoss: true, detail: 'this node is MASTER (epoch 3)' });
    expect(h.records[0]?.data).toMatchObject({ command: 'failover', outcome: 'taken-over', user: 'root', uid: 0, pid: 4242, args: { acceptDataLoss: true } });
  });

  it('failover without acceptDataLoss is a dry run, audited as one', async () => {
    const h = harness({ ok: false, detail: 'nothing changed: ...', data: { outcome: 'dry-run', lagBytes: 5000 } });
    const reply = await h.handler({ command: 'failover', args: {} }, root);
    expect(h.events[0]).toMatchObject({ type: 'failover-requested', acceptDataLoss: false });
    expect(reply).toMatchObject({ ok: false, outcome: 'dry-run', lagBytes: 5000 });
    expect(h.records[0]?.data).toMatchObject({ command: 'failover', outcome: 'dry-run', detail: 'nothing changed: ...' });
  });

  it('failover through the real core: the takeover-forced record names the caller and the blocker; the request record its outcome', async () => {
    const config = coreConfig({ promotionMaxLagBytes: 1000 });
    let state = last(run(config, [
      [0, { type: 'started' }],
      [10, ok(replicaSnap({ offset: 1000 }))],
      [20, heard(advert({ state: 'MASTER', epoch: 1, redis: { role: 'master', replId: REPL_A, replId2: '', offset: 6000, secondOffset: -1 } }))],
      [5000, fired('master-down')],
    ])).state;
    const records: { event: string; data: Record<string, unknown> }[] = [];
    const handler = controlHandler({
      nodeName: 'b', defaultTimeoutMs: 5000,
      request: async (event) => {
        const r = step(state, event, 6000, config);
        state = r.state;
        for (const a of r.actions) if (a.type === 'audit') records.push({ event: a.event, data: { ...a.data } });
        const answer = r.actions.find((a) => a.type === 'reply');
        return answer?.type === 'reply' ? { ok: answer.ok, detail: answer.detail, data: answer.data } : { ok: false, detail: 'pending', data: {} };
      },
      status: async () => ({ verdict: 'ok' }) as unknown as StatusReport,
      record: async (record) => {
        for (const a of step(state, { type: 'control-handled', record }, 6000, config).actions) {
          if (a.type === 'audit') records.push({ event: a.event, data: { ...a.data } });
        }
      },
      logger: createLogger('fatal'),
    });
    const dry = await handler({ command: 'failover', args: {} }, root);
    expect(dry).toMatchObject({ ok: false, outcome: 'dry-run', lagBytes: 5000 });
    expect(String(dry.detail)).toMatch(/held back now: this replica was 5000 bytes behind a/);
    expect(state.role).toBe('BACKUP');
    const forced = await handler({ command: 'failover', args: { acceptDataLoss: true } }, root);
    expect(forced).toMatchObject({ ok: false, detail: 'pending' }); // the core answers once Redis is promoted
    expect(state.role).toBe('MASTER');
    expect(records.map((r) => r.event)).toEqual(['control-request', 'takeover-forced', 'transition', 'control-request']);
    expect(records[1]?.data).toMatchObject({ user: 'root(uid 0)', pid: 4242, overrode: expect.stringMatching(/5000 bytes behind a/), lagBytes: 5000 });
    expect(records[3]?.data).toMatchObject({ command: 'failover', user: 'root', uid: 0, pid: 4242, args: { acceptDataLoss: true } });
  });

  it('a refused switchover is audited as refused', async () => {
    const h = harness({ ok: false, detail: 'refused: peer b is FAULT', data: { outcome: 'refused' } });
    const reply = await h.handler({ command: 'switchover', args: {} }, root);
    expect(reply).toMatchObject({ ok: false, outcome: 'refused' });
    expect(h.events[0]).toMatchObject({ timeoutMs: 5000, force: false });
    expect(h.records[0]?.data).toMatchObject({ outcome: 'refused', detail: 'refused: peer b is FAULT' });
  });

  it.each([
    ['switchover', { timeoutMs: 0 }, /timeoutMs: expected an integer/],
    ['switchover', { timeoutMs: 'soon' }, /timeoutMs/],
    ['switchover', { force: 'yes' }, /force: expected true or false/],
    ['failover', { acceptDataLoss: 'yes' }, /acceptDataLoss: expected true or false, got "yes"/],
    ['maintenance', {}, /on: expected true or false, got undefined/],
    ['reboot', {}, /unknown command "reboot"/],
  ] as const)('%s %o is rejected with a clear error', async (command, args, why) => {
    const h = harness();
    const reply = await h.handler({ command, args }, root);
    expect(reply.ok).toBe(false);
    expect(String(reply.error)).toMatch(why);
    expect(h.events).toEqual([]);
    expect(h.records).toHaveLength(1);
  });

  it('request ids are unique and safe for the wire', () => {
    const ids = new Set(Array.from({ length: 100 }, () => newRequestId('node a/ü')));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9._-]{1,64}$/);
  });
});
