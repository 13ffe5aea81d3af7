/**
 * Starts real `redis-server` processes for adapter tests: a free port, a private
 * temporary directory, no persistence, optionally a password (requirepass plus
 * masterauth, so servers of one test can replicate from each other).
 *
 * Every server started here is tracked: `stopAllRedisServers()` (register it in
 * `afterEach`/`afterAll`) stops what a failed test left running, and a process
 * `exit` hook SIGKILLs any survivor by PID. Processes are only ever signalled by
 * their own PID, never by name: other suites may run their own redis-servers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

/** Where Debian installs the server. */
export const REDIS_SERVER_BIN = process.env['REDIS_SERVER_BIN'] ?? '/usr/bin/redis-server';

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 5;

export interface RedisServerOptions {
  /** Address to bind; default 127.0.0.1. */
  readonly bind?: string;
  /** Fixed port; default a free one. */
  readonly port?: number;
  /** Sets requirepass, and masterauth unless `masterauth` is false. */
  readonly password?: string;
  /** With `password`: also set masterauth (default true). False leaves it to the code under test. */
  readonly masterauth?: boolean;
  /** More `--name value` arguments for redis-server. */
  readonly args?: readonly string[];
}

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly password: string | null;
  /** PID of the current process (changes on `restart()`). */
  readonly pid: number;
  /** The server's log file (kept across `restart()`). */
  readonly logFile: string;
  /** Its private directory (`--dir`, and the working directory: a relative `cluster-config-file` lands here). */
  readonly dir: string;
  /** A new ioredis client (authenticated); closed by `stop()`. */
  client(): Redis;
  /** Stops the process (SIGCONT, SIGTERM, then SIGKILL) and removes its directory. */
  stop(): Promise<void>;
  /** Sends a signal to the process, e.g. SIGSTOP/SIGCONT to simulate a hang. */
  signal(sig: NodeJS.Signals): void;
  /**
   * Stops and starts the server again on the same port (the dataset is lost: no
   * persistence); `args`, when given, replace the extra arguments from then on (e.g. a
   * restart with `--cluster-enabled yes`).
   */
  restart(args?: readonly string[]): Promise<void>;
}

const live = new Set<ChildProcess>();
const servers = new Set<RedisServer>();

process.once('exit', () => {
  for (const child of live) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }
});

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return true;
  return Promise.race([
    new Promise<boolean>((resolve) => child.once('exit', () => resolve(true))),
    sleep(timeoutMs).then(() => exited(child)),
  ]);
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || exited(child)) {
    live.delete(child);
    return;
  }
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(child.pid as number, sig);
    } catch {
      // Exited meanwhile.
    }
  };
  // A SIGSTOPped server would never act on SIGTERM.
  signal('SIGCONT');
  signal('SIGTERM');
  if (!(await waitForExit(child, STOP_TIMEOUT_MS))) {
    signal('SIGKILL');
    await waitForExit(child, STOP_TIMEOUT_MS);
  }
  live.delete(child);
}

async function answersPing(host: string, port: number, password: string | null): Promise<boolean> {
  const probe = new Redis({
    host,
    port,
    password: password ?? undefined,
    lazyConnect: true,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    disableClientInfo: true,
  });
  probe.on('error', () => undefined);
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

function spawnServer(dir: string, host: string, port: number, options: RedisServerOptions): ChildProcess {
  const args = [
    '--port', String(port),
    '--bind', host,
    '--dir', dir,
    '--logfile', join(dir, 'redis.log'),
    '--save', '',
    '--appendonly', 'no',
    '--daemonize', 'no',
    // The default 5 s wait for more replicas would only slow every full sync down.
    '--repl-diskless-sync-delay', '0',
  ];
  if (options.password !== undefined) {
    args.push('--requirepass', options.password);
    if (options.masterauth !== false) args.push('--masterauth', options.password);
  }
  args.push(...(options.args ?? []));
  const child = spawn(REDIS_SERVER_BIN, args, { stdio: 'ignore', cwd: dir });
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

/** Starts the server and waits for PONG; throws with the server log when it does not come up. */
async function launch(
  dir: string,
  host: string,
  port: number,
  options: RedisServerOptions,
): Promise<{ child: ChildProcess; error: string | null }> {
  const child = spawnServer(dir, host, port, options);
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited(child)) break;
    if (await answersPing(host, port, options.password ?? null)) return { child, error: null };
    await sleep(50);
  }
  await kill(child);
  const log = await readFile(join(dir, 'redis.log'), 'utf8').catch(() => '');
  return { child, error: `redis-server on ${host}:${port} did not come up:\n${log.slice(-2_000)}` };
}

/** Starts a `redis-server` and waits until it answers PING. */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  const host = options.bind ?? '127.0.0.1';
  const password = options.password ?? null;
  const dir = await mkdtemp(join(tmpdir(), 'redis-ha-test-'));
  let child: ChildProcess | null = null;
  let port = 0;
  let lastError = '';
  for (let attempt = 0; attempt < PORT_ATTEMPTS && child === null; attempt++) {
    port = options.port ?? (await freePort(host));
    const started = await launch(dir, host, port, options);
    if (started.error === null) child = started.child;
    else lastError = started.error;
    // A fixed port that is taken will not free itself.
    if (options.port !== undefined) break;
  }
  if (child === null) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(lastError);
  }

  let current: ChildProcess = child;
  let launchOptions: RedisServerOptions = options;
  const clients = new Set<Redis>();
  let stopped = false;
  const server: RedisServer = {
    host,
    port,
    password,
    logFile: join(dir, 'redis.log'),
    dir,
    get pid(): number {
      return current.pid as number;
    },
    client(): Redis {
      const client = new Redis({ host, port, password: password ?? undefined, disableClientInfo: true });
      client.on('error', () => undefined);
      clients.add(client);
      return client;
    },
    signal(sig: NodeJS.Signals): void {
      if (current.pid !== undefined && !exited(current)) process.kill(current.pid, sig);
    },
    async restart(args?: readonly string[]): Promise<void> {
      await kill(current);
      if (args !== undefined) launchOptions = { ...launchOptions, args };
      const started = await launch(dir, host, port, launchOptions);
      if (started.error !== null) throw new Error(started.error);
      current = started.child;
    },
    async stop(): Promise<void> {
      if (stopped) return;
      stopped = true;
      servers.delete(server);
      for (const client of clients) client.disconnect();
      clients.clear();
      await kill(current);
      await rm(dir, { recursive: true, force: true });
    },
  };
  servers.add(server);
  return server;
}

/** Stops every server started by this helper that is still running; for `afterEach`/`afterAll`. */
export async function stopAllRedisServers(): Promise<void> {
  await Promise.all([...servers].map((server) => server.stop()));
}
