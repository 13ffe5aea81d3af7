/**
 * The control handler: who may do what, argument checks, the audit record of every
 * request (written by the real core), and that requests reach the loop as events (a
 * recording stub stands in for the runtime; the socket itself is tested in test/adapters/control-socket.test.ts).
 */
import { describe, expect, it } from 'vitest';
import type { Caller } from '../../src/adapters/control-socket.js';
import { controlHandler, newRequestId } from '../../src/daemon/control.js';
import { createLogger } from '../../src/daemon/logger.js';
import type { RequestEvent, RequestReply } from '../../src/daemon/runtime.js';
import type { StatusReport } from '../../src/daemon/status.js';
import { initialState, step } from '../../src/core/step.js';
import { coreConfig } from '../core/fixtures.js';

const root: Caller = {
  credentials: { pid: 4242, uid: 0, gid: 0, user: 'root', groups: [0] },
  credentialError: null, authorized: true, description: 'root (uid 0, pid 4242)',
};
const nobody: Caller = {
  credentials: { pid: 777, uid: 65534, gid: 65534, user: 'nobody', groups: [65534] },
  credentialError: null, authorized: false, description: 'nobody (uid 65534, pid 777)',
};
const unknown: Caller = { credentials: null, credentialError: 'addon missing', authorized: false, description: 'unknown caller (addon missing)' };

function harness(answer: RequestReply = { ok: true, detail: 'done', data: {} }) {
  const events: RequestEvent[] = [];
  const records: { event: string; data: Record<string, unknown> }[] = [];
  const handler = controlHandler({
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
      for (const a of r.actions) if (a.type === 'audit') records.push({ event: a.event, data: { ...a.data } });
    },
    logger: createLogger('fatal'),
  });
  return { handler, events, records };
}

describe('control handler', () => {
  it('status is open to anyone who can reach the socket, and is audited', async () => {
    const h = harness();
    const reply = await h.handler({ command: 'status', args: {} }, nobody);
    expect(reply).toMatchObject({ ok: true, status: { verdict: 'ok' } });
    expect(h.records[0]).toMatchObject({ event: 'control-request', data: { command: 'status', user: 'nobody', uid: 65534, pid: 777, outcome: 'ok' } });
    expect(typeof h.records[0]?.data.durationMs).toBe('number');
  });

  it.each([['switchover', {}], ['maintenance', { on: true }]] as const)('%s is denied to an unauthorised user and to unknown credentials', async (command, args) => {
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
