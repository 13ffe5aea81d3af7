/**
 * sd_notify over a real Unix datagram socket (a python3 listener stands in for systemd):
 * the messages and their fields, the abstract namespace, the environment handling, the
 * watchdog interval, and that a dead socket never throws.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { systemdNotifier } from '../../src/adapters/sd-notify.js';
import { createLogger } from '../../src/daemon/logger.js';
import { startNotifyListener } from '../helpers/notify-listener.js';

const dir = mkdtempSync(join(tmpdir(), 'rh-notify-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const logger = createLogger('fatal');

async function until(cond: () => boolean, timeoutMs = 5_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond() && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  expect(cond()).toBe(true);
}

describe('sd_notify', () => {
  it('sends READY, STATUS (deduplicated), WATCHDOG and STOPPING to $NOTIFY_SOCKET', async () => {
    const path = join(dir, 'notify.sock');
    const listener = await startNotifyListener(path);
    try {
      const env: NodeJS.ProcessEnv = { NOTIFY_SOCKET: path, WATCHDOG_USEC: '4000000', WATCHDOG_PID: String(process.pid) };
      const n = systemdNotifier(logger, env);
      expect(n.enabled).toBe(true);
      expect(n.watchdogIntervalMs).toBe(2000);
      expect(env.NOTIFY_SOCKET).toBeUndefined();
      n.ready('MASTER, VIP held');
      n.status('MASTER, VIP held');
      n.status('BACKUP\nsecond line');
      n.watchdog();
      n.stopping('stopping');
      await until(() => listener.messages.length >= 4);
      const [ready, status, wd, stop] = listener.messages;
      expect(ready?.fields).toEqual({ READY: '1', STATUS: 'MASTER, VIP held', MAINPID: String(process.pid) });
      expect(status?.fields).toEqual({ STATUS: 'BACKUP second line' });
      expect(wd?.fields).toEqual({ WATCHDOG: '1' });
      expect(stop?.fields).toEqual({ STOPPING: '1', STATUS: 'stopping' });
      expect(listener.messages).toHaveLength(4);
    } finally {
      await listener.stop();
    }
  });

  it('reaches a socket in the abstract namespace', async () => {
    const path = `@redis-ha-test-${process.pid}`;
    const listener = await startNotifyListener(path);
    try {
      systemdNotifier(logger, { NOTIFY_SOCKET: path }).ready('up');
      await until(() => listener.with('READY').length === 1);
    } finally {
      await listener.stop();
    }
  });

  it('is a no-op without $NOTIFY_SOCKET, and has no watchdog for another pid', () => {
    const n = systemdNotifier(logger, {});
    expect(n.enabled).toBe(false);
    n.ready('x');
    expect(systemdNotifier(logger, { NOTIFY_SOCKET: '/nonexistent', WATCHDOG_USEC: '1000000', WATCHDOG_PID: '1' }).watchdogIntervalMs).toBeNull();
  });

  it('never throws when the socket is gone', () => {
    const n = systemdNotifier(logger, { NOTIFY_SOCKET: join(dir, 'missing.sock') });
    expect(() => n.ready('x')).not.toThrow();
    expect(() => n.watchdog()).not.toThrow();
  });
});
