/**
 * The logger type every layer takes: pino's, named here so that adapters can log without
 * importing the daemon (the daemon sits above them). The daemon creates the one root
 * logger (`src/daemon/logger.ts`); every component receives a child of it.
 */
export type { Logger } from 'pino';
