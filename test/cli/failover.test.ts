/**
 * `redis-ha failover` through the built CLI against a real control socket whose handler
 * answers as the daemon would (the daemon's side is tested in test/daemon/control.test.ts
 * and the core's in test/core/forced-failover.test.ts): the options it sends, what it
 * prints for each outcome, and its exit status (0 taken over; 1 refused, failed, not
 * run, no daemon, or commander's usage error).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ControlServer, type ControlRequest } from '../../src/adapters/control-socket.js';
import { silentLogger } from '../../src/daemon/logger.js';

const exec = promisify(execFile);
const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const dir = await mkdtemp(join(tmpdir(), 'rh-cli-failover-'));
afterAll(() => rm(dir, { recursive: true, force: true }));
const CLI_MS = 10_000;

const servers: ControlServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.stop();
});

/** A control socket answering every request with `reply`; returns its path and the requests it got. */
async function daemon(reply: Record<string, unknown>): Promise<{ path: string; requests: ControlRequest[] }> {
  const path = join(dir, `s${Math.random().toString(36).slice(2)}.sock`);
  const requests: ControlRequest[] = [];
  const server = new ControlServer({ path, group: null, logger: silentLogger(), handler: async (request) => {
    requests.push(request);
    return reply;
  } });
  await server.start();
  servers.push(server);
  return { path, requests };
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await exec(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH }, timeout: CLI_MS, killSignal: 'SIGKILL' });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const base = (path: string): string[] => ['failover', '--config', join(dir, 'absent.yaml'), '--socket', path];

describe('redis-ha failover', () => {
  it('without --accept-data-loss: asks for a dry run, prints what holds the takeover and what a forced one would do, exit 1', async () => {
    const d = await daemon({
      ok: false, outcome: 'dry-run', requestId: 'b-1', detail: 'nothing changed: ...', acceptDataLoss: false,
      heldBy: 'this replica was 5000 bytes behind a', wouldDo: 'take over as MASTER in epoch 2: promote the local Redis', lagBytes: 5000,
    });
    const r = await cli(base(d.path));
    expect(d.requests).toEqual([{ command: 'failover', args: { acceptDataLoss: false } }]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe([
      'failover NOT RUN: nothing changed (no --accept-data-loss)',
      '  held back now: this replica was 5000 bytes behind a',
      '  a forced takeover would: take over as MASTER in epoch 2: promote the local Redis',
      '  run `redis-ha failover --accept-data-loss` on this node to take over anyway',
      '',
    ].join('\n'));
  });

  it('with --accept-data-loss: asks for the forced takeover; done is exit 0 and names what it overrode', async () => {
    const d = await daemon({ ok: true, outcome: 'taken-over', detail: 'this node is MASTER (epoch 2)', overrode: 'the recovery block', durationMs: 850 });
    const r = await cli([...base(d.path), '--accept-data-loss']);
    expect(d.requests).toEqual([{ command: 'failover', args: { acceptDataLoss: true } }]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/forced failover requested \(data loss accepted\); waiting for the daemon/);
    expect(r.stdout).toBe('failover done: this node is MASTER (epoch 2) in 850 ms\n  overrode: the recovery block\n');
  });

  it.each([
    [{ ok: false, outcome: 'refused', detail: 'refused: a is heard as a healthy MASTER (epoch 1): use `redis-ha switchover`' }, 'stdout', /^failover REFUSED: refused: a is heard as a healthy MASTER/],
    [{ ok: false, outcome: 'no-leader-key', detail: 'forced failover failed: the leader key is held by a (epoch 1)' }, 'stdout', /^failover FAILED: forced failover failed: the leader key is held by a/],
    [{ ok: false, outcome: 'denied', error: 'nobody (uid 65534, pid 7) may not run failover' }, 'stderr', /\nredis-ha: failover: nobody .* may not run failover/],
  ] as const)('%o: exit 1 with the reason', async (reply, stream, text) => {
    const d = await daemon(reply);
    const r = await cli([...base(d.path), '--accept-data-loss']);
    expect(r.code).toBe(1);
    expect(r[stream]).toMatch(text);
  });

  it('--json prints the reply itself; the exit status is the same', async () => {
    const reply = { ok: false, outcome: 'dry-run', detail: 'nothing changed', heldBy: null, wouldDo: 'x' };
    const d = await daemon(reply);
    const r = await cli([...base(d.path), '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual(reply);
    expect(r.stderr).toBe('');
  });

  it('no daemon: exit 1 with the socket error', async () => {
    const r = await cli(base(join(dir, 'none.sock')));
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^redis-ha: .*none\.sock/);
  });

  it('an unknown option is a usage error and sends nothing', async () => {
    const d = await daemon({ ok: true });
    const r = await cli([...base(d.path), '--force']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/unknown option '--force'/);
    expect(d.requests).toEqual([]);
  });
});
