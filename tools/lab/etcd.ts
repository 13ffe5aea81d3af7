/**
 * The lab's etcd witness: one real member of Debian's `etcd` (3.4) inside a lab
 * namespace (the client host `c` of the pair lab), the third vote of a pair as issue 11
 * describes it. It listens on the host's lab address and on 127.0.0.1 inside the
 * namespace, on etcd's usual ports (a namespace has its own port space, so they are
 * free), with the fast raft timings the adapter tests use (heartbeat 50 ms, election
 * 250 ms: etcd then grants a 1 s lease as 1 s; see ../shared/notes/quorum-facts.md).
 * Its data dir and log live in the directory it is given (the pair lab's), so a
 * restart keeps its data, as a restarted witness host would.
 *
 * The test process runs in the root namespace, which has no route into 10.77.0.0/16,
 * so every read goes through `etcdctl` (Debian's `etcd-client`, API v3) run with
 * `ip netns exec`, as the lab reads Redis through `redis-cli`. The member is only ever
 * signalled by its own PID (`ip netns exec` execs, so the spawned child is etcd).
 */
import type { ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { leaderKeys } from '../../src/adapters/quorum/transactions.js';
import { parseLeaderRecord, type LeaderRecord } from '../../src/adapters/quorum/record.js';
import { pidAlive, pollUntil, waitChildExit, type ExecResult, type LabNetwork } from './netns.js';

/** Where Debian installs the server (`etcd-server`). */
export const LAB_ETCD_BIN = '/usr/bin/etcd';
/** The client (`etcd-client`), found on PATH. */
export const LAB_ETCDCTL_BIN = 'etcdctl';
/** Client port of the witness, on its lab address and on 127.0.0.1 in its namespace. */
export const LAB_ETCD_CLIENT_PORT = 2379;
/** Peer port; a single member only needs it on loopback. */
export const LAB_ETCD_PEER_PORT = 2380;
/** Raft heartbeat; etcd refuses an election timeout under 5 × this. */
export const LAB_ETCD_HEARTBEAT_MS = 50;
/** Raft election timeout: what the daemons' `quorum.etcd.election_timeout_ms` must say. */
export const LAB_ETCD_ELECTION_MS = 250;
/** The daemon's default key prefix (`quorum.etcd.prefix`). */
export const LAB_ETCD_KEY_PREFIX = '/redis-ha';
/** Bound on a (re)start until the member answers its health check. */
export const LAB_ETCD_READY_TIMEOUT_MS = 20_000;
/** Grace period after SIGTERM before `stop()` escalates to SIGKILL. */
const ETCD_STOP_GRACE_MS = 5_000;
/** Bound on one `etcdctl` run (dial and command timeouts are set below it). */
const ETCDCTL_TIMEOUT_MS = 5_000;
/** etcdctl's own dial and command timeouts, so an unreachable member fails fast. */
const ETCDCTL_DIAL_TIMEOUT = '1s';
const ETCDCTL_COMMAND_TIMEOUT = '2s';
const READY_POLL_MS = 100;
/** Mode of the data dir (etcd warns about anything looser). */
const DATA_DIR_MODE = 0o700;

/** How to start a witness. */
export interface LabEtcdOptions {
  readonly net: LabNetwork;
  /** Lab host (namespace) it runs in, e.g. `c`. */
  readonly host: string;
  /** Its directory (created if missing): `data/` and `etcd.log`. */
  readonly dir: string;
  /** The group whose leader key `leader()` reads by default. */
  readonly group?: LabEtcdGroup;
}

/** Names a group's keys as the daemon does (`quorum.etcd.prefix`, `cluster_name`). */
export interface LabEtcdGroup {
  readonly prefix: string;
  readonly clusterName: string;
}

/** One key as `etcdctl get -w json` shows it. */
export interface LabEtcdKey {
  readonly key: string;
  readonly value: string;
  /** Lease id in decimal, as etcdctl prints it ('0': no lease); kept as text (int64). */
  readonly lease: string;
  readonly modRevision: number;
  readonly createRevision: number;
}

/** The group's leader key: the raw key, and its record when the value is one. */
export interface LabLeaderKey extends LabEtcdKey {
  /** The parsed record, or `null` when the value is not a leader record (see `problem`). */
  readonly record: LeaderRecord | null;
  readonly problem: string | null;
}

/** The client URL of a witness on the lab host with `address`. */
export function labEtcdEndpoint(address: string): string {
  return `http://${address}:${LAB_ETCD_CLIENT_PORT}`;
}

/** This environment without etcd's own variables: flags alone configure the member. */
function etcdEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('ETCD_') && !name.startsWith('ETCDCTL_')) env[name] = value;
  }
  return env;
}

/** The one `kvs` entry of `etcdctl get -w json` output, or null when the key is absent. */
export function parseEtcdctlGet(stdout: string): LabEtcdKey | null {
  const parsed = JSON.parse(stdout) as {
    kvs?: Array<{ key?: string; value?: string; mod_revision?: number; create_revision?: number }>;
  };
  const kv = parsed.kvs?.[0];
  if (kv === undefined) return null;
  // Lease ids are int64 and often above 2^53: read the digits, not the parsed number.
  const lease = /"lease":(\d+)/.exec(stdout)?.[1] ?? '0';
  return {
    key: Buffer.from(kv.key ?? '', 'base64').toString('utf8'),
    value: Buffer.from(kv.value ?? '', 'base64').toString('utf8'),
    lease,
    modRevision: kv.mod_revision ?? 0,
    createRevision: kv.create_revision ?? 0,
  };
}

/** One etcd member in a lab namespace. Build it with `LabEtcd.start`. */
export class LabEtcd {
  readonly host: string;
  /** Lab address of its host (what the daemons dial). */
  readonly address: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly clientPort = LAB_ETCD_CLIENT_PORT;
  private readonly net: LabNetwork;
  private readonly group: LabEtcdGroup | null;
  private child: ChildProcess | null = null;
  private frozen = false;

  private constructor(options: LabEtcdOptions) {
    this.net = options.net;
    this.host = options.host;
    this.address = options.net.address(options.host);
    this.dir = options.dir;
    this.dataDir = join(options.dir, 'data');
    this.logFile = join(options.dir, 'etcd.log');
    this.group = options.group ?? null;
  }

  /** Creates its directory, starts the member and waits until it is healthy. */
  static async start(options: LabEtcdOptions): Promise<LabEtcd> {
    const etcd = new LabEtcd(options);
    mkdirSync(etcd.dataDir, { recursive: true, mode: DATA_DIR_MODE });
    await etcd.start();
    return etcd;
  }

  /** The client URL the daemons use: `http://<host address>:2379`. */
  endpoint(): string {
    return labEtcdEndpoint(this.address);
  }

  /** PID of the running member, or `null`. */
  get pid(): number | null {
    const child = this.child;
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return null;
    return child.pid;
  }

  /** Whether the member process is alive (frozen counts as alive). */
  get running(): boolean {
    const pid = this.pid;
    return pid !== null && pidAlive(pid);
  }

  /** Whether `freeze()` stopped it and no `thaw()` (or stop) has continued it since. */
  get isFrozen(): boolean {
    return this.frozen && this.running;
  }

  /**
   * Starts the member (a no-op when it runs) on its ports and data dir, and waits until
   * it answers its health check; throws with the log's tail after the bound.
   */
  async start(): Promise<void> {
    if (this.running) return;
    const local = `http://127.0.0.1:${this.clientPort}`;
    const peer = `http://127.0.0.1:${LAB_ETCD_PEER_PORT}`;
    const name = `witness-${this.host}`;
    const args = [
      LAB_ETCD_BIN,
      '--name', name,
      '--data-dir', this.dataDir,
      '--listen-client-urls', `${this.endpoint()},${local}`,
      '--advertise-client-urls', this.endpoint(),
      '--listen-peer-urls', peer,
      '--initial-advertise-peer-urls', peer,
      '--initial-cluster', `${name}=${peer}`,
      '--initial-cluster-token', `redis-ha-lab-${this.net.tag}`,
      '--initial-cluster-state', 'new',
      '--heartbeat-interval', String(LAB_ETCD_HEARTBEAT_MS),
      '--election-timeout', String(LAB_ETCD_ELECTION_MS),
      '--logger', 'zap',
      '--log-outputs', 'stderr',
      '--log-level', 'info',
      // Fewer WAL and snapshot files kept in the lab's directory.
      '--max-wals', '2',
      '--max-snapshots', '1',
    ];
    const logFd = openSync(this.logFile, 'a');
    try {
      this.child = this.net.spawn(this.host, args, { stdio: ['ignore', logFd, logFd], env: etcdEnv(), replaceEnv: true });
    } finally {
      closeSync(logFd);
    }
    this.frozen = false;
    const ready = await pollUntil(
      async () => {
        if (this.pid === null) throw new Error(`etcd in ${this.host} exited during start-up (see ${this.logFile})`);
        return this.healthy();
      },
      LAB_ETCD_READY_TIMEOUT_MS,
      READY_POLL_MS,
    );
    if (!ready) {
      await this.stop('SIGKILL');
      throw new Error(`etcd in ${this.host} was not healthy within ${LAB_ETCD_READY_TIMEOUT_MS} ms (see ${this.logFile})`);
    }
  }

  /**
   * Ends the member by PID: `SIGTERM` (default) waits out the grace period and then
   * SIGKILLs; `SIGKILL` at once. A frozen member is continued first so that a SIGTERM
   * can act. Resolves once it has exited; a no-op when it is not running.
   */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || this.pid === null) return;
    if (signal === 'SIGTERM') {
      this.signal('SIGCONT');
      this.signal('SIGTERM');
      await waitChildExit(child, ETCD_STOP_GRACE_MS);
    }
    if (child.exitCode === null && child.signalCode === null) {
      this.signal('SIGKILL');
      await waitChildExit(child, ETCD_STOP_GRACE_MS);
    }
    this.frozen = false;
  }

  /** SIGKILL, as a crashed witness host; `start()` brings it back with its data. */
  kill(): Promise<void> {
    return this.stop('SIGKILL');
  }

  /** SIGSTOP: the member keeps its sockets but answers nothing (a VM pause). */
  freeze(): void {
    this.signal('SIGSTOP');
    this.frozen = true;
  }

  /** SIGCONT after `freeze()`. */
  thaw(): void {
    this.signal('SIGCONT');
    this.frozen = false;
  }

  /** Stops it (SIGTERM) and starts it again on the same data dir; waits until healthy. */
  async restart(): Promise<void> {
    await this.stop('SIGTERM');
    await this.start();
  }

  /** Whether the member answers `etcdctl endpoint health` on 127.0.0.1 inside its namespace. */
  async healthy(): Promise<boolean> {
    const result = await this.etcdctlAt(this.host, `http://127.0.0.1:${this.clientPort}`, ['endpoint', 'health']);
    return result.code === 0;
  }

  /**
   * Runs `etcdctl <args>` against `endpoint()` from `from`'s namespace (API v3, short
   * dial and command timeouts); resolves with the result whatever the status.
   */
  etcdctl(from: string, args: readonly string[], timeoutMs = ETCDCTL_TIMEOUT_MS): Promise<ExecResult> {
    return this.etcdctlAt(from, this.endpoint(), args, timeoutMs);
  }

  /** Whether a health check from `from`'s namespace reaches the member on its lab address. */
  async reachableFrom(from: string): Promise<boolean> {
    return (await this.etcdctl(from, ['endpoint', 'health'])).code === 0;
  }

  /** Reads one key (from the witness's own namespace); `null` when absent. Throws when etcd does not answer. */
  async get(key: string): Promise<LabEtcdKey | null> {
    const result = await this.etcdctl(this.host, ['get', key, '-w', 'json']);
    if (result.code !== 0) throw new Error(`etcdctl get ${key} failed: ${result.stderr.trim() || `exit ${result.code}`}`);
    return parseEtcdctlGet(result.stdout);
  }

  /**
   * The group's leader key (`<prefix>/<cluster>/leader`, named as the daemon names it),
   * or `null` when nobody holds it. Throws when etcd does not answer.
   */
  async leader(group: LabEtcdGroup | null = this.group): Promise<LabLeaderKey | null> {
    if (group === null) throw new Error('leader(): no group given and none configured for this witness');
    const key = await this.get(leaderKeys(group.prefix, group.clusterName).leader.toString('utf8'));
    if (key === null) return null;
    const parsed = parseLeaderRecord(Buffer.from(key.value, 'utf8'));
    return parsed.ok ? { ...key, record: parsed.record, problem: null } : { ...key, record: null, problem: parsed.reason };
  }

  private etcdctlAt(from: string, endpoint: string, args: readonly string[], timeoutMs = ETCDCTL_TIMEOUT_MS): Promise<ExecResult> {
    const argv = [
      LAB_ETCDCTL_BIN,
      `--endpoints=${endpoint}`,
      `--dial-timeout=${ETCDCTL_DIAL_TIMEOUT}`,
      `--command-timeout=${ETCDCTL_COMMAND_TIMEOUT}`,
      ...args,
    ];
    return this.net.exec(from, argv, { timeoutMs, env: { ETCDCTL_API: '3' } });
  }

  private signal(signal: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === null) return;
    try {
      process.kill(pid, signal);
    } catch {
      // Exited meanwhile.
    }
  }
}
