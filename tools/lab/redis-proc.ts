/**
 * A real `redis-server` inside a lab namespace, configured the way an operator's pair
 * would be (password, `masterauth`, port 6379, listening on every address so a VIP
 * added later is served) minus persistence (`--save ''`, no AOF): a restarted server
 * comes back empty, which is the nastiest case for a failover manager.
 *
 * The test process cannot reach into a namespace with ioredis, so queries go through
 * `redis-cli` run with `ip netns exec`; that is plenty for assertions.
 */
import type { ChildProcess } from 'node:child_process';
import { chmodSync, closeSync, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pidAlive, pollUntil, waitChildExit, type LabNetwork } from './netns.js';

/** Port every lab Redis listens on. */
export const LAB_REDIS_PORT = 6379;
/** Bound on waiting for a fresh server to answer PING. */
export const REDIS_READY_TIMEOUT_MS = 10_000;
/** Bound on one `redis-cli` call. */
export const REDIS_CLI_TIMEOUT_MS = 5_000;
/** Grace period after SIGTERM before `stop()` escalates to SIGKILL. */
const REDIS_STOP_GRACE_MS = 5_000;
const READY_POLL_MS = 50;
/** Mode of files holding the lab password. */
const SECRET_FILE_MODE = 0o600;

/**
 * The file a lab Redis loads at start-up when present (Redis's default `dbfilename`):
 * written by `SAVE`, and by every full sync the server received as a replica
 * (`rdb-del-sync-files` is off by default, even with persistence off).
 */
export const LAB_REDIS_DUMP_FILE = 'dump.rdb';

/**
 * What a server restarted by `crashRestart` loads: `empty`, nothing (its dump file is
 * removed first: a host without persistence whose server was never a replica); `dump`,
 * the dump file in its dir, an older copy of its data (`SAVE` it first).
 */
export type LabRedisRestartData = 'empty' | 'dump';

/** How `crashRestart` brings a server back. */
export interface CrashRestartOptions {
  /** Pause between the killed process's exit and the new start (systemd's `RestartSec`, 100 ms by default). */
  readonly delayMs: number;
  readonly data: LabRedisRestartData;
  /** Overrides the start-up `replicaof` (`null`: come back as a master, as a crashed master does). */
  readonly replicaOf?: string | null;
}

/** When a crash-restart's steps happened, in ms after the SIGKILL. */
export interface CrashRestartTiming {
  /** The killed process had exited. */
  readonly exitedMs: number;
  /** The new process was spawned. */
  readonly spawnedMs: number;
  /** The new process answered PING. */
  readonly readyMs: number;
}

/** A role as the lab sees it: `down` when the server did not answer. */
export type LabRedisRole = 'master' | 'replica' | 'down';

/** How to start a lab Redis. */
export interface LabRedisOptions {
  readonly net: LabNetwork;
  /** Lab host (namespace) to run in. */
  readonly host: string;
  /** `requirepass` and `masterauth`. */
  readonly password: string;
  /** Start as a replica of this address (port 6379). */
  readonly replicaOf?: string | null;
  /** Working directory; a fresh temp dir when absent (removed by `cleanup()`). */
  readonly dir?: string;
}

/**
 * The lab server's configuration file. A file (mode 0600) rather than argv keeps the
 * password out of `ps`.
 */
export function redisConfigText(dir: string, password: string, replicaOf: string | null): string {
  const lines = [
    `port ${LAB_REDIS_PORT}`,
    // Every address, IPv6 optional: the VIP is added to eth0 later and must be served.
    'bind * -::*',
    'protected-mode no',
    `requirepass "${password}"`,
    `masterauth "${password}"`,
    'save ""',
    'appendonly no',
    `dir "${dir}"`,
    'daemonize no',
    `logfile "${join(dir, 'redis.log')}"`,
    // Lab speed-up: the default 5 s wait before a diskless full sync would dominate
    // every replica (re)start.
    'repl-diskless-sync-delay 0',
  ];
  if (replicaOf) lines.push(`replicaof ${replicaOf} ${LAB_REDIS_PORT}`);
  return `${lines.join('\n')}\n`;
}

/** Parses `INFO` output into key/value pairs (section headers and blanks dropped). */
export function parseInfo(text: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    if (!line || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

/** One `redis-server` in a namespace. */
export class LabRedis {
  readonly host: string;
  readonly dir: string;
  private readonly net: LabNetwork;
  private readonly password: string;
  private readonly ownsDir: boolean;
  private replicaOf: string | null;
  private child: ChildProcess | null = null;

  private constructor(options: LabRedisOptions) {
    this.net = options.net;
    this.host = options.host;
    this.password = options.password;
    this.replicaOf = options.replicaOf ?? null;
    this.ownsDir = options.dir === undefined;
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), `redis-ha-lab-${options.net.tag}-${options.host}-`));
  }

  /** Starts the server and waits until it answers PING. */
  static async start(options: LabRedisOptions): Promise<LabRedis> {
    const redis = new LabRedis(options);
    await redis.spawn();
    return redis;
  }

  private async spawn(): Promise<void> {
    const configFile = join(this.dir, 'redis.conf');
    writeFileSync(configFile, redisConfigText(this.dir, this.password, this.replicaOf), { mode: SECRET_FILE_MODE });
    chmodSync(configFile, SECRET_FILE_MODE);
    const logFd = openSync(join(this.dir, 'stdout.log'), 'a');
    try {
      this.child = this.net.spawn(this.host, ['redis-server', configFile], { stdio: ['ignore', logFd, logFd] });
    } finally {
      closeSync(logFd);
    }
    await this.waitReady();
  }

  /** PID of the running server, or `null` when it is not running. */
  get pid(): number | null {
    const child = this.child;
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return null;
    return child.pid;
  }

  /** Whether the server process is alive. */
  get running(): boolean {
    const pid = this.pid;
    return pid !== null && pidAlive(pid);
  }

  /** Sends `signal` to the server's PID (no-op when not running). */
  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    const pid = this.pid;
    if (pid === null) return;
    try {
      process.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** Waits (bounded) until the process has exited. */
  async waitExit(timeoutMs = REDIS_STOP_GRACE_MS): Promise<boolean> {
    const child = this.child;
    if (!child) return true;
    await waitChildExit(child, timeoutMs);
    return child.exitCode !== null || child.signalCode !== null;
  }

  /** SIGTERM, then SIGKILL if it has not exited within the grace period. */
  async stop(): Promise<void> {
    if (this.pid === null) return;
    this.kill('SIGTERM');
    if (!(await this.waitExit(REDIS_STOP_GRACE_MS))) {
      this.kill('SIGKILL');
      await this.waitExit(REDIS_STOP_GRACE_MS);
    }
  }

  /**
   * Starts the server again with the same configuration and port (stopping it first if
   * it runs). `replicaOf` overrides the start-up `--replicaof` (`null`: start as master).
   */
  async restart(options: { replicaOf?: string | null } = {}): Promise<void> {
    await this.stop();
    if (options.replicaOf !== undefined) this.replicaOf = options.replicaOf;
    await this.spawn();
  }

  /**
   * SIGKILLs the server and starts it again `delayMs` after it exited, from the same
   * dir and port, as systemd's `Restart=always` does: with `data: 'empty'` it comes back
   * with nothing, with `data: 'dump'` from the dump file left in its dir (throws when
   * there is none). Resolves once the new process answers PING.
   */
  async crashRestart(options: CrashRestartOptions): Promise<CrashRestartTiming> {
    const started = performance.now();
    this.kill('SIGKILL');
    if (!(await this.waitExit(REDIS_STOP_GRACE_MS))) {
      throw new Error(`redis in ${this.host} did not exit within ${REDIS_STOP_GRACE_MS} ms of SIGKILL`);
    }
    const exitedMs = performance.now() - started;
    const dump = join(this.dir, LAB_REDIS_DUMP_FILE);
    if (options.data === 'empty') rmSync(dump, { force: true });
    else if (!existsSync(dump)) throw new Error(`redis in ${this.host}: no ${dump} to restart from (SAVE first)`);
    if (options.replicaOf !== undefined) this.replicaOf = options.replicaOf;
    if (options.delayMs > 0) await new Promise((resolve) => setTimeout(resolve, options.delayMs));
    const spawnedMs = performance.now() - started;
    await this.spawn();
    return { exitedMs, spawnedMs, readyMs: performance.now() - started };
  }

  /** Waits until PING answers PONG; throws after `timeoutMs`. */
  async waitReady(timeoutMs = REDIS_READY_TIMEOUT_MS): Promise<void> {
    const ok = await pollUntil(
      async () => {
        if (this.pid === null) throw new Error(`redis in ${this.host} exited during start-up (see ${this.dir})`);
        return (await this.tryCli(['PING'], 1_000)) === 'PONG';
      },
      timeoutMs,
      READY_POLL_MS,
    );
    if (!ok) throw new Error(`redis in ${this.host} did not answer PING within ${timeoutMs} ms (see ${this.dir})`);
  }

  /** Runs `redis-cli` against this server from inside its namespace; rejects on failure. */
  async cli(args: readonly string[], timeoutMs = REDIS_CLI_TIMEOUT_MS): Promise<string> {
    const out = await this.net.execOk(this.host, this.cliArgv(args), { timeoutMs, env: this.cliEnv() });
    return out.trim();
  }

  /** Like `cli` but resolves `null` instead of rejecting (server down, timeout). */
  async tryCli(args: readonly string[], timeoutMs = REDIS_CLI_TIMEOUT_MS): Promise<string | null> {
    const result = await this.net.exec(this.host, this.cliArgv(args), { timeoutMs, env: this.cliEnv() });
    if (result.code !== 0) return null;
    const out = result.stdout.trim();
    // redis-cli exits 0 on a connection failure in some modes; it prints this instead.
    if (out.startsWith('Could not connect') || out.startsWith('Error:')) return null;
    return out;
  }

  private cliArgv(args: readonly string[]): string[] {
    return ['redis-cli', '--no-auth-warning', '-h', '127.0.0.1', '-p', String(LAB_REDIS_PORT), ...args];
  }

  /** `REDISCLI_AUTH` keeps the password off argv (same effect as `-a`). */
  private cliEnv(): Record<string, string> {
    return { REDISCLI_AUTH: this.password };
  }

  /** `INFO <section>` as key/value pairs, or `null` when the server did not answer. */
  async info(section = 'replication'): Promise<Record<string, string> | null> {
    const out = await this.tryCli(['INFO', section]);
    return out === null ? null : parseInfo(out);
  }

  /** The server's role (`slave` reported as `replica`), or `down`. */
  async role(): Promise<LabRedisRole> {
    const info = await this.info('replication');
    if (!info || !info['role']) return 'down';
    return info['role'] === 'master' ? 'master' : 'replica';
  }

  /** `SAVE`: writes the dump file (`LAB_REDIS_DUMP_FILE`) into its dir now; rejects on failure. */
  async save(): Promise<void> {
    const reply = await this.cli(['SAVE']);
    if (reply !== 'OK') throw new Error(`SAVE on redis in ${this.host} answered ${reply}`);
  }

  /** `DBSIZE` (the number of keys), or `null` when the server did not answer. */
  async dbSize(): Promise<number | null> {
    const out = await this.tryCli(['DBSIZE']);
    const count = out === null ? NaN : Number(out);
    return Number.isInteger(count) ? count : null;
  }

  /** Members of a set, as strings. */
  async smembers(key: string): Promise<string[]> {
    const out = await this.cli(['SMEMBERS', key], REDIS_CLI_TIMEOUT_MS * 4);
    return out ? out.split('\n').filter((line) => line.length > 0) : [];
  }

  /** Stops the server and removes its temp dir (when it created one). */
  async cleanup(): Promise<void> {
    await this.stop();
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}
