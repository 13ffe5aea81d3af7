/**
 * The one pino root logger. Components take `logger.child({ component: 'x' })`;
 * messages are constant strings, data goes in fields. JSON on stdout, which
 * journald stores as is.
 */
import { pino } from 'pino';
import type { Logger } from '../logger.js';

export type { Logger };

/** Creates the root logger at `level`, writing JSON lines to stdout (or `destination`). */
export function createLogger(level: string, destination?: NodeJS.WritableStream): Logger {
  return pino(
    {
      level,
      base: { pid: process.pid },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

/** A logger that drops everything, for tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
