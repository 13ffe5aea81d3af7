/**
 * The logger type every module may import without importing the daemon: pino's.
 * The root logger is created once, in `src/daemon/logger.ts`; components take children.
 */
export type { Logger } from 'pino';
