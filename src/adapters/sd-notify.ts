/**
 * The systemd notification protocol (sd_notify(3)): newline-separated `KEY=value`
 * assignments in one datagram to the Unix socket named by `$NOTIFY_SOCKET`
 * (an `@` prefix is the abstract namespace). Node cannot send Unix datagrams, so the
 * datagram goes through the small Node-API addon in `native/peercred/`
 * (`sendDatagram`); no `systemd-notify` process is spawned per message.
 *
 * Without `$NOTIFY_SOCKET` (not under systemd, or `Type=exec`) every call is a no-op.
 * The variable is removed from the environment once read, as `sd_notify(unset=1)`
 * does, so the tools the daemon runs (`ip`, `arping`) never talk to systemd. Sending
 * never throws: a failure is logged at most once a minute and the daemon goes on.
 *
 * Watchdog: with `$WATCHDOG_USEC` set (and `$WATCHDOG_PID`, if set, naming this
 * process), `watchdogIntervalMs` is half the timeout, as systemd.service(5) advises.
 */
import { createRequire } from 'node:module';
import type { Logger } from '../logger.js';
import { PEER_CRED_ADDON_PATH } from './peer-cred.js';

/** A failed send is logged at most this often. */
const FAILURE_LOG_INTERVAL_MS = 60_000;
/** The longest STATUS= text sent (systemctl shows one line). */
const MAX_STATUS_CHARS = 200;

/** Sends one datagram to a Unix socket path; the default uses the native addon. */
export type DatagramSender = (path: string, payload: Buffer) => void;

/** What the daemon tells its service manager. */
export interface Notifier {
  /** True when a `$NOTIFY_SOCKET` was given. */
  readonly enabled: boolean;
  /** Half of `$WATCHDOG_USEC` in ms, or `null` when no watchdog is configured for this process. */
  readonly watchdogIntervalMs: number | null;
  /** `READY=1` with a status line: start-up is complete. */
  ready(status: string): void;
  /** `STATUS=`: the one-line state `systemctl status` shows. */
  status(text: string): void;
  /** `WATCHDOG=1`: the main loop is alive. */
  watchdog(): void;
  /** `STOPPING=1`: shutting down. */
  stopping(status: string): void;
}

/** Builds the notifier from the environment; `send` is injectable for tests. */
export function systemdNotifier(logger: Logger, env: NodeJS.ProcessEnv = process.env, send?: DatagramSender): Notifier {
  const socket = env.NOTIFY_SOCKET;
  const usec = Number(env.WATCHDOG_USEC);
  const watchdogPid = env.WATCHDOG_PID === undefined ? null : Number(env.WATCHDOG_PID);
  const watchdogIntervalMs =
    Number.isFinite(usec) && usec > 0 && (watchdogPid === null || watchdogPid === process.pid) ? usec / 2000 : null;
  delete env.NOTIFY_SOCKET;
  delete env.WATCHDOG_USEC;
  delete env.WATCHDOG_PID;
  if (socket === undefined || socket === '') {
    return { enabled: false, watchdogIntervalMs: null, ready: noop, status: noop, watchdog: noop, stopping: noop };
  }
  const sender = send ?? addonSender();
  let lastFailureLog = -Infinity;
  let lastStatus = '';
  const notify = (assignments: readonly string[]): void => {
    try {
      sender(socket, Buffer.from(assignments.join('\n'), 'utf8'));
    } catch (error) {
      const now = Date.now();
      if (now - lastFailureLog >= FAILURE_LOG_INTERVAL_MS) {
        lastFailureLog = now;
        logger.warn({ err: error, socket, message: assignments[0] }, 'sd_notify failed');
      }
    }
  };
  const statusLine = (text: string): string => `STATUS=${oneLine(text)}`;
  return {
    enabled: true,
    watchdogIntervalMs,
    ready: (status) => {
      lastStatus = oneLine(status);
      notify(['READY=1', statusLine(status), `MAINPID=${process.pid}`]);
    },
    status: (text) => {
      const line = oneLine(text);
      if (line === lastStatus) return;
      lastStatus = line;
      notify([statusLine(text)]);
    },
    watchdog: () => notify(['WATCHDOG=1']),
    stopping: (status) => notify(['STOPPING=1', statusLine(status)]),
  };
}

function noop(): void {}

function oneLine(text: string): string {
  const flat = text.replace(/[\r\n]+/g, ' ');
  return flat.length > MAX_STATUS_CHARS ? `${flat.slice(0, MAX_STATUS_CHARS - 1)}…` : flat;
}

/** `sendDatagram` from the native addon; a missing addon surfaces as a (logged) send failure. */
function addonSender(): DatagramSender {
  return (path, payload) => {
    const addon = createRequire(import.meta.url)(PEER_CRED_ADDON_PATH) as { sendDatagram?: unknown };
    if (typeof addon.sendDatagram !== 'function') {
      throw new Error(`${PEER_CRED_ADDON_PATH} has no sendDatagram(): rebuild it with npm run build:native`);
    }
    (addon.sendDatagram as (p: string, b: Buffer) => number)(path, payload);
  };
}
