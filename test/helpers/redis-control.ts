/**
 * Builds `RedisControl` adapters for tests against real redis-server processes, and
 * closes them (and stops every server) after each test.
 */
import { afterEach } from 'vitest';
import { RedisControl, type RedisControlOptions } from '../../src/adapters/redis/index.js';
import type { RedisEndpoint } from '../../src/config/types.js';
import { silentLogger } from '../../src/daemon/logger.js';
import { stopAllRedisServers, type RedisServer } from './redis-server.js';

const controls: RedisControl[] = [];

/** Registers the per-test cleanup; call once at the top of a test file. */
export function closeControlsAfterEach(): void {
  afterEach(async () => {
    await Promise.all(controls.splice(0).map((control) => control.close()));
    await stopAllRedisServers();
  });
}

/** A plain-TCP endpoint for a server. */
export function endpoint(server: { host: string; port: number }, password: string | null = null): RedisEndpoint {
  return { host: server.host, port: server.port, password, username: null, tls: false, tlsInsecure: false };
}

export const hostPort = (server: RedisServer): { host: string; port: number } => ({ host: server.host, port: server.port });

export interface ControlSetup {
  local: RedisEndpoint;
  peer?: RedisEndpoint;
  /** How the peer reaches the local Redis; default the local endpoint's host and port. */
  self?: { host: string; port: number };
  timeoutMs?: number;
  waitForSync?: boolean;
  maxSyncWaitMs?: number;
  /** `demotion.delayMs`; default 0. */
  demotionDelayMs?: number;
}

/** A `RedisControl` with test-friendly bounds, closed after the test. */
export function makeControl(setup: ControlSetup): RedisControl {
  const options: RedisControlOptions = {
    local: setup.local,
    peer: setup.peer ?? endpoint({ host: '127.0.0.1', port: 1 }),
    self: setup.self ?? { host: setup.local.host, port: setup.local.port },
    health: { timeoutMs: setup.timeoutMs ?? 1_000 },
    promotion: {
      waitForSync: setup.waitForSync ?? true,
      maxSyncWaitMs: setup.maxSyncWaitMs ?? 120_000,
      peerTimeoutMs: 1_000,
      preDelayMs: 0,
      syncDelayMs: 0,
      maxLagBytes: 1024 * 1024,
      recoveryBlockMs: 0,
    },
    demotion: { delayMs: setup.demotionDelayMs ?? 0 },
    logger: silentLogger(),
  };
  const control = new RedisControl(options);
  controls.push(control);
  return control;
}
