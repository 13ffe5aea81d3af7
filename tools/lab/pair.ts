/**
 * The two-node pair lab the end-to-end tests and the demo run against: hosts `a` and
 * `b` each run a real Redis and a real redis-ha daemon (`dist/cli/main.js run`), host
 * `c` is the client that writes through the VIP. It starts the way an operator's
 * existing pair looks (b already `replicaof a`), with the keepalived recipe's numbers:
 * group 51, priorities 100/90, no preemption, the VIP `<subnet>.100/24` on eth0.
 *
 * With `quorum: { backend: 'etcd' }` (or `etcdWitness: true`) host `c` also runs the
 * etcd witness (`etcd.ts`), started before the daemons and stopped at teardown;
 * `isolateFromEtcd(node)` cuts one node off it.
 *
 * Everything lives in one temp dir (configs, secrets mode 0600, daemon logs, audit
 * logs, state files, writer logs, a runtime dir per node, the witness's data) that
 * `teardown()` removes; set
 * `REDIS_HA_LAB_KEEP=1` to keep it for a post-mortem.
 *
 * Observations go through iproute2 and redis-cli inside the namespaces; every wait is
 * bounded and, when it runs out, names what it waited for and shows the daemons' last
 * log lines.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { execFile, type ChildProcess } from 'node:child_process';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import {
  parseFinalSet,
  parseOpLog,
  type OpRecord,
  type WriterMeta,
  type WriterProgress,
  type WriterSummary,
} from './analysis.js';
import { NODE_FLAGS } from '../../src/cli/node-flags.js';
import type { RawConfig } from '../../src/config/schema.js';
import { LabEtcd, labEtcdEndpoint, LAB_ETCD_CLIENT_PORT, LAB_ETCD_ELECTION_MS, LAB_ETCD_KEY_PREFIX, type LabEtcdGroup } from './etcd.js';
import { LabNetwork, pidAlive, registerCleanup, runOk, waitChildExit } from './netns.js';
import { LabRedis, LAB_REDIS_PORT, type CrashRestartOptions, type CrashRestartTiming, type LabRedisRole } from './redis-proc.js';

/** The two daemon hosts. */
export type PairNode = 'a' | 'b';
/** Every lab host: the two nodes and the client. */
export type PairHost = PairNode | 'c';
/** Timing profile of the daemons. */
export type LabProfile = 'default' | 'fast';

/** Any subset of `T`'s keys, at any depth (lists are replaced whole, never merged). */
export type DeepPartial<T> = {
  [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K];
};

/**
 * A lab daemon's configuration file, typed by the product's own file type (`RawConfig`,
 * snake_case keys as in the YAML): keys left out take the daemon's defaults. A key
 * renamed or removed in the product breaks the build of the lab, the benchmark and the
 * tests that pass overrides, not a lab run.
 */
export type LabConfig = DeepPartial<RawConfig>;

/** Group (virtual router) id, as in the keepalived recipe. */
export const LAB_GROUP_ID = 51;
/** UDP port of adverts. */
export const LAB_ADVERT_PORT = 5400;
/** Last octet of the VIP in the lab subnet. */
export const VIP_OCTET = 100;
/** Priorities of the recipe: a is the preferred master. */
export const PRIORITY_A = 100;
/** Priority of b, the recipe's backup. */
export const PRIORITY_B = 90;
/** Id of the lab's advert key. */
export const LAB_ADVERT_KEY_ID = 1;
/** Bytes of the advert HMAC secret (64 hex chars). */
const ADVERT_SECRET_BYTES = 32;
/** Environment variable the writer reads the password from. */
const WRITER_PASSWORD_ENV = 'REDIS_HA_LAB_PASSWORD';
/** Keep the lab's temp dir after teardown. */
const KEEP_ENV = 'REDIS_HA_LAB_KEEP';
const SECRET_FILE_MODE = 0o600;
/** Grace period for a daemon to exit on SIGTERM before SIGKILL. */
export const DAEMON_STOP_GRACE_MS = 10_000;
/** Grace period for the writer to flush its op log on SIGTERM. */
const WRITER_STOP_GRACE_MS = 10_000;
/** Bound on the initial replica sync of b. */
const INITIAL_SYNC_TIMEOUT_MS = 15_000;
/** Default polling period of `waitFor`. */
const WAIT_POLL_MS = 100;
/** Log lines shown when a wait runs out. */
const LOG_TAIL_LINES = 25;
/** Default writer rate, ops/s. */
export const LAB_WRITER_RATE_PER_SEC = 500;
/** nftables table of `blockReplication`. */
const REPLICATION_BLOCK_TABLE = 'rh_block_repl';
/** What nft says when asked to delete a table that is not there. */
const NFT_NO_SUCH_TABLE = /No such file or directory/;
/** Mode of a node's runtime directory (its control socket, restart-in-place marker). */
const RUN_DIR_MODE = 0o755;
/** Bound on one CLI run against a lab daemon (a switchover waits for both daemons). */
const CTL_TIMEOUT_MS = 60_000;
/** nftables table of `isolateFromEtcd`. */
const ETCD_ISOLATE_TABLE = 'rh_isolate_etcd';
/** The host the etcd witness runs on: the client's, as a pair's operator would put it. */
export const LAB_WITNESS_HOST = 'c';

/**
 * The lab daemons' quorum timings on the witness (QUORUM-DESIGN.md): a 2 s lease renewed
 * every 250 ms, 500 ms per call, and the witness's own election timeout. The timing
 * rule holds with room: 250 + 500 + 250 < 2000 - (ceil(2000 × 1 %) + health timeout).
 */
export const LAB_QUORUM_ETCD_TIMING = {
  lease_ttl_s: 2,
  renew_interval_ms: 250,
  call_timeout_ms: 500,
  election_timeout_ms: LAB_ETCD_ELECTION_MS,
} as const;

/** Set key of the first writer run; later runs append `:<n>`. */
export const DEFAULT_SET_KEY = 'ha:set';
/** Bound on sending one datagram from a namespace. */
const SEND_TIMEOUT_MS = 5_000;

/** Daemon timings of a profile. */
export interface ProfileTiming {
  readonly advertIntervalMs: number;
  readonly healthIntervalMs: number;
  readonly healthTimeoutMs: number;
  /** `promotion.peer_timeout_ms`; `null` leaves the daemon default. */
  readonly peerTimeoutMs: number | null;
}

/** The two profiles: the recipe's 1 s adverts, and a fast one for quick failovers. */
export const PROFILES: Readonly<Record<LabProfile, ProfileTiming>> = {
  default: { advertIntervalMs: 1000, healthIntervalMs: 500, healthTimeoutMs: 300, peerTimeoutMs: null },
  fast: { advertIntervalMs: 100, healthIntervalMs: 100, healthTimeoutMs: 100, peerTimeoutMs: 100 },
};

/** The quorum a lab's daemons are configured with (QUORUM-DESIGN.md). */
export type LabQuorum =
  | { readonly backend: 'etcd' }
  | { readonly backend: 'none'; readonly prefer: 'safety' | 'availability' };

/** The `quorum` section of a lab daemon's file. */
export type LabQuorumSection = NonNullable<LabConfig['quorum']>;

/** The `quorum` section for `quorum`, dialling the witness at `etcdEndpoint` when it is etcd. */
export function labQuorumSection(quorum: LabQuorum, etcdEndpoint: string | null): LabQuorumSection {
  if (quorum.backend === 'none') return { backend: 'none', prefer: quorum.prefer };
  if (etcdEndpoint === null) throw new Error('quorum backend etcd needs the witness endpoint');
  return { backend: 'etcd', etcd: { endpoints: etcdEndpoint, ...LAB_QUORUM_ETCD_TIMING } };
}

/** How to build a pair lab. */
export interface PairOptions {
  /** Short unique tag (names namespaces and links), e.g. `rhe1`. */
  readonly tag: string;
  /** `10.77.<n>`. */
  readonly subnet: string;
  readonly profile?: LabProfile;
  /** Deep-merged over the generated configuration of each node (`baseConfig`). */
  readonly daemon?: { readonly nodeA?: LabConfig; readonly nodeB?: LabConfig };
  /** `replica-of-a` (default): b starts as `replicaof a`; `both-masters`: two fresh masters. */
  readonly replication?: 'replica-of-a' | 'both-masters';
  /** Start the daemons (default true). */
  readonly startDaemons?: boolean;
  /** JS entry run as `node FLAGS ENTRY run --config FILE`; default `dist/cli/main.js` (see `daemonEntry`). */
  readonly daemonEntry?: string;
  /** Node.js flags of the daemons; default the product's own (`NODE_FLAGS`), as production runs them. */
  readonly nodeFlags?: readonly string[];
  /**
   * sysctls set in the a and b namespaces before anything starts, e.g.
   * `{ 'net.ipv4.conf.all.arp_announce': '2' }` when the product documents one as a
   * host prerequisite. None by default: the lab hosts are stock.
   */
  readonly nodeSysctls?: Readonly<Record<string, string>>;
  /**
   * The daemons' quorum; absent (the default): no `quorum` section at all, so the
   * daemon's own defaults apply. `etcd` starts the witness on `c` before the daemons
   * and points both daemons at it (`LAB_QUORUM_ETCD_TIMING`).
   */
  readonly quorum?: LabQuorum;
  /**
   * Start the etcd witness on `c` even though the daemons are not configured for it
   * (default: only with `quorum.backend: 'etcd'`).
   */
  readonly etcdWitness?: boolean;
}

/** A running writer in the client namespace. */
export interface WriterHandle {
  readonly pid: number;
  /** The writer's meta (wall-clock origin), once its first line has arrived. */
  meta(): WriterMeta | null;
  /** Latest progress line, or `null`. */
  progress(): WriterProgress | null;
  /** Converts a wall-clock time (`nowWallMs()`) to writer time; needs `meta()`. */
  toWriterMs(wallMs: number): number;
  /** SIGTERM, wait for the op log, parse it. */
  stop(): Promise<WriterResult>;
}

/** What a finished writer leaves. */
export interface WriterResult {
  readonly meta: WriterMeta;
  readonly ops: readonly OpRecord[];
  readonly summary: WriterSummary | null;
  readonly out: string;
  readonly stderr: string;
}

/** One parsed audit-log line; the schema belongs to the daemon. */
export type AuditRecord = Readonly<Record<string, unknown>>;

/** VIP holders and Redis roles at one moment. */
export interface PairStatus {
  readonly vipHolders: readonly string[];
  readonly roles: Readonly<Record<PairNode, LabRedisRole>>;
}

/** Wall-clock now in fractional ms, on the same scale as the writer's `startWallMs`. */
export function nowWallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Where `npm run build:tools` puts the compiled lab and benchmark (`tools/tsconfig.json`). */
export const TOOLS_BUILD_DIR = 'dist-tools';

/**
 * The repository root: this file is `tools/lab/pair.ts` (run from source by the tests)
 * or `dist-tools/tools/lab/pair.js` (the built lab and benchmark).
 */
export function repoRoot(): string {
  const twoUp = fileURLToPath(new URL('../..', import.meta.url));
  return basename(twoUp) === TOOLS_BUILD_DIR ? dirname(twoUp) : twoUp;
}

/** Path of the compiled daemon entry point. */
export function daemonEntry(): string {
  return join(repoRoot(), 'dist/cli/main.js');
}

/** Path of the compiled writer (built by `npm run build:tools`). */
export function writerEntry(): string {
  return join(repoRoot(), TOOLS_BUILD_DIR, 'tools/lab/writer.js');
}

/** Path of the compiled live demo (`scripts/lab.sh` runs it; built by `npm run build:tools`). */
export function demoEntry(): string {
  return join(repoRoot(), TOOLS_BUILD_DIR, 'tools/lab/demo.js');
}

function isMapping(value: unknown): value is Readonly<Record<string, unknown>> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function mergeMappings(base: Readonly<Record<string, unknown>>, override: Readonly<Record<string, unknown>>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) {
    // An optional key present but undefined overrides nothing.
    if (value === undefined) continue;
    const current = merged[key];
    merged[key] = isMapping(current) && isMapping(value) ? mergeMappings(current, value) : value;
  }
  return merged;
}

/** Deep-merges `override` into `base` (sections merge, values replace). */
export function mergeConfig(base: LabConfig, override: LabConfig | undefined): LabConfig {
  // Merging two subsets of RawConfig's keys gives a subset of them again.
  return override ? (mergeMappings(base, override) as LabConfig) : base;
}

/** Names of the shared secrets in the lab's directory. */
const ADVERT_KEY_FILE = 'advert.key';
const REDIS_PASSWORD_FILE = 'redis.password';

/** Where a node's files live in the lab's directory. */
export interface NodePaths {
  /** Its YAML configuration. */
  readonly config: string;
  readonly audit: string;
  readonly state: string;
  /**
   * Its runtime directory, as `/run/redis-ha` is on a host: the daemon keeps files next
   * to its control socket (the restart-in-place marker), so the two nodes must not
   * share one.
   */
  readonly runDir: string;
  readonly controlSocket: string;
  /** The daemon's stdout and stderr. */
  readonly daemonLog: string;
}

/** The paths of `node`'s files in the lab directory `dir`. */
export function nodePaths(dir: string, node: PairNode): NodePaths {
  const runDir = join(dir, `run-${node}`);
  return {
    config: join(dir, `node-${node}.yaml`),
    audit: join(dir, `audit-${node}.jsonl`),
    state: join(dir, `state-${node}.json`),
    runDir,
    controlSocket: join(runDir, 'control.sock'),
    daemonLog: join(dir, `daemon-${node}.log`),
  };
}

/** What a lab node's configuration is made of. */
export interface LabNodeParams {
  readonly node: PairNode;
  /** Both nodes' addresses. */
  readonly addresses: Readonly<Record<PairNode, string>>;
  /** The VIP, without prefix length. */
  readonly vip: string;
  /** The lab directory: shared secrets (`advert.key`, `redis.password`) and `nodePaths`. */
  readonly dir: string;
  readonly timing: ProfileTiming;
  /** The `quorum` section (`labQuorumSection`); absent: none written. */
  readonly quorum?: LabQuorumSection;
}

/**
 * A lab node's configuration file, before overrides: the keepalived recipe's numbers
 * (group 51, priorities 100/90, no preemption), the profile's timings, every file in
 * the lab directory.
 */
export function labNodeConfig(params: LabNodeParams): LabConfig {
  const { node, addresses, timing, dir } = params;
  const other = PairLab.other(node);
  const paths = nodePaths(dir, node);
  // The recovery block is off in the lab: tests chain faults seconds apart, each expecting
  // a takeover, and the block holds a second automatic one by design (it has its own tests,
  // test/core/takeover-gate.test.ts). A test of the block sets it through `daemon`.
  const promotion: LabConfig['promotion'] = { wait_for_sync: true, max_sync_wait_ms: 5000, recovery_block_ms: 0 };
  if (timing.peerTimeoutMs !== null) promotion.peer_timeout_ms = timing.peerTimeoutMs;
  const config: LabConfig = {
    node: {
      name: node,
      address: addresses[node],
      priority: node === 'a' ? PRIORITY_A : PRIORITY_B,
      preempt: false,
    },
    group: { id: LAB_GROUP_ID },
    peer: { address: addresses[other] },
    advert: {
      port: LAB_ADVERT_PORT,
      interval_ms: timing.advertIntervalMs,
      key_file: join(dir, ADVERT_KEY_FILE),
    },
    redis: { host: '127.0.0.1', port: LAB_REDIS_PORT, password_file: join(dir, REDIS_PASSWORD_FILE) },
    peer_redis: { host: addresses[other], port: LAB_REDIS_PORT },
    health: { interval_ms: timing.healthIntervalMs, timeout_ms: timing.healthTimeoutMs, fall: 2, rise: 2 },
    vip: { address: `${params.vip}/24`, interface: 'eth0', garp_count: 3, garp_interval_ms: 100 },
    promotion,
    audit: { path: paths.audit },
    state: { path: paths.state },
    control: { socket: paths.controlSocket },
    log: { level: 'debug' },
  };
  return params.quorum === undefined ? config : { ...config, quorum: params.quorum };
}

/** This environment without `REDIS_HA_*`: the YAML alone configures the lab daemons. */
function daemonEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && !name.startsWith('REDIS_HA_')) env[name] = value;
  }
  return env;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function tailLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n');
}

/** The pair lab. Build it with `startPair`. */
export class PairLab {
  readonly net: LabNetwork;
  readonly dir: string;
  readonly profile: LabProfile;
  readonly timing: ProfileTiming;
  /** VIP address without prefix. */
  readonly vip: string;
  readonly password: string;
  /** The advert key both daemons share, as the daemon loads it. */
  readonly advertKey: { readonly id: number; readonly secret: Buffer };
  private readonly advertKeyText: string;
  private readonly options: PairOptions;
  private readonly redisByNode = new Map<PairNode, LabRedis>();
  private readonly daemons = new Map<PairNode, ChildProcess>();
  private readonly writers = new Set<ChildProcess>();
  private witness: LabEtcd | null = null;
  private readonly etcdIsolated = new Set<PairNode>();
  private writerCount = 0;
  private tornDown = false;
  private unregister: () => void = () => {};

  private constructor(net: LabNetwork, dir: string, options: PairOptions) {
    this.net = net;
    this.dir = dir;
    this.options = options;
    this.profile = options.profile ?? 'default';
    this.timing = PROFILES[this.profile];
    this.vip = `${options.subnet}.${VIP_OCTET}`;
    this.password = randomBytes(12).toString('hex');
    // The key file holds the secret as text and the daemon uses that text's bytes as
    // the HMAC key (config/keys.ts), so the same goes for the copy kept here.
    this.advertKeyText = randomBytes(ADVERT_SECRET_BYTES).toString('hex');
    this.advertKey = { id: LAB_ADVERT_KEY_ID, secret: Buffer.from(this.advertKeyText, 'utf8') };
  }

  /** Builds the lab; see `startPair`. */
  static async start(options: PairOptions): Promise<PairLab> {
    const entry = options.daemonEntry ?? daemonEntry();
    if ((options.startDaemons ?? true) && !existsSync(entry)) {
      throw new Error(`${entry} is missing: run npm run build first`);
    }
    const lab = await PairLab.create(options);
    try {
      for (const node of ['a', 'b'] as const) {
        for (const [name, value] of Object.entries(options.nodeSysctls ?? {})) {
          await lab.net.execOk(node, ['sysctl', '-qw', `${name}=${value}`]);
        }
      }
      lab.writeFiles();
      if (lab.wantsWitness) await lab.startWitness();
      await lab.startRedis();
      if (options.startDaemons ?? true) {
        lab.startDaemon('a');
        lab.startDaemon('b');
      }
    } catch (error) {
      await lab.teardown();
      throw error;
    }
    return lab;
  }

  private static async create(options: PairOptions): Promise<PairLab> {
    const dir = mkdtempSync(join(tmpdir(), `redis-ha-pair-${options.tag}-`));
    let net: LabNetwork;
    try {
      net = await LabNetwork.create({ tag: options.tag, subnet: options.subnet, hosts: ['a', 'b', 'c'] });
    } catch (error) {
      rmSync(dir, { recursive: true, force: true });
      throw error;
    }
    const lab = new PairLab(net, dir, options);
    lab.unregister = registerCleanup(() => lab.teardown());
    return lab;
  }

  /** Whether this lab runs the etcd witness on `c`. */
  get wantsWitness(): boolean {
    return this.options.etcdWitness === true || this.options.quorum?.backend === 'etcd';
  }

  /** The group's etcd keys as the daemons name them (default prefix, `group-<id>`). */
  static readonly etcdGroup: LabEtcdGroup = { prefix: LAB_ETCD_KEY_PREFIX, clusterName: `group-${LAB_GROUP_ID}` };

  /** The etcd witness on `c`; throws when this lab has none. */
  etcd(): LabEtcd {
    if (this.witness === null) throw new Error('this lab has no etcd witness (quorum.backend etcd or etcdWitness)');
    return this.witness;
  }

  private async startWitness(): Promise<void> {
    this.witness = await LabEtcd.start({
      net: this.net,
      host: LAB_WITNESS_HOST,
      dir: join(this.dir, `etcd-${LAB_WITNESS_HOST}`),
      group: PairLab.etcdGroup,
    });
  }

  /** IPv4 address of a host. */
  address(host: PairHost): string {
    return this.net.address(host);
  }

  /** The other node. */
  static other(node: PairNode): PairNode {
    return node === 'a' ? 'b' : 'a';
  }

  /** The lab Redis of a node. */
  redis(node: PairNode): LabRedis {
    const redis = this.redisByNode.get(node);
    if (!redis) throw new Error(`no redis on ${node}`);
    return redis;
  }

  /** Path of a node's YAML config. */
  configPath(node: PairNode): string {
    return nodePaths(this.dir, node).config;
  }

  /** Path of a node's audit log. */
  auditPath(node: PairNode): string {
    return nodePaths(this.dir, node).audit;
  }

  /** A node's runtime directory (see `NodePaths.runDir`). */
  runDir(node: PairNode): string {
    return nodePaths(this.dir, node).runDir;
  }

  /** Path of a node's control socket, in its own runtime directory. */
  controlSocket(node: PairNode): string {
    return nodePaths(this.dir, node).controlSocket;
  }

  /**
   * Runs the built CLI for a node (`redis-ha <args>`, plus `--socket <its socket>` for
   * the commands that talk to the daemon), bounded by `timeoutMs`; resolves with the
   * exit status and output.
   */
  async ctl(node: PairNode, args: readonly string[], timeoutMs = CTL_TIMEOUT_MS): Promise<{ code: number; stdout: string; stderr: string }> {
    const entry = this.options.daemonEntry ?? daemonEntry();
    const talksToDaemon = ['status', 'switchover', 'maintenance'].includes(args[0] ?? '');
    const argv = talksToDaemon ? [entry, ...args, '--socket', this.controlSocket(node)] : [entry, ...args];
    return new Promise((resolve) => {
      execFile(process.execPath, argv, { timeout: timeoutMs, env: daemonEnv() },
        (error, stdout, stderr) => {
          const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
          resolve({ code, stdout, stderr: error !== null && typeof error.code !== 'number' ? `${stderr}${error.message}` : stderr });
        });
    });
  }

  /** Path of a node's daemon log (stdout and stderr). */
  daemonLogPath(node: PairNode): string {
    return nodePaths(this.dir, node).daemonLog;
  }

  /** The generated configuration of a node, before overrides. */
  baseConfig(node: PairNode): LabConfig {
    return labNodeConfig({
      node,
      addresses: { a: this.address('a'), b: this.address('b') },
      vip: this.vip,
      dir: this.dir,
      timing: this.timing,
      ...(this.options.quorum === undefined
        ? {}
        : { quorum: labQuorumSection(this.options.quorum, labEtcdEndpoint(this.address(LAB_WITNESS_HOST))) }),
    });
  }

  private writeFiles(): void {
    writeFileSync(join(this.dir, ADVERT_KEY_FILE), `${this.advertKey.id} ${this.advertKeyText}\n`, {
      mode: SECRET_FILE_MODE,
    });
    writeFileSync(join(this.dir, REDIS_PASSWORD_FILE), this.password, { mode: SECRET_FILE_MODE });
    for (const node of ['a', 'b'] as const) {
      mkdirSync(this.runDir(node), { mode: RUN_DIR_MODE });
      const override = node === 'a' ? this.options.daemon?.nodeA : this.options.daemon?.nodeB;
      writeFileSync(this.configPath(node), stringify(mergeConfig(this.baseConfig(node), override)), {
        mode: SECRET_FILE_MODE,
      });
    }
  }

  private async startRedis(): Promise<void> {
    const bothMasters = this.options.replication === 'both-masters';
    for (const node of ['a', 'b'] as const) {
      const dir = join(this.dir, `redis-${node}`);
      mkdirSync(dir, { mode: 0o700 });
      const replicaOf = node === 'b' && !bothMasters ? this.address('a') : null;
      this.redisByNode.set(node, await LabRedis.start({ net: this.net, host: node, password: this.password, replicaOf, dir }));
    }
    if (!bothMasters) {
      await this.waitFor(
        'b replicating a with the link up',
        async () => (await this.redis('b').info())?.['master_link_status'] === 'up',
        INITIAL_SYNC_TIMEOUT_MS,
      );
    }
  }

  // -- daemons ------------------------------------------------------------------

  /**
   * Starts a node's daemon (`node NODE_FLAGS dist/cli/main.js run --config FILE`) in its namespace;
   * `env` adds variables (e.g. NOTIFY_SOCKET and WATCHDOG_USEC, as systemd sets them).
   */
  startDaemon(node: PairNode, options: { env?: Readonly<Record<string, string>> } = {}): void {
    const running = this.daemons.get(node);
    if (running && running.exitCode === null && running.signalCode === null) {
      throw new Error(`daemon ${node} is already running (pid ${running.pid})`);
    }
    const entry = this.options.daemonEntry ?? daemonEntry();
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build first`);
    const fd = openSync(this.daemonLogPath(node), 'a');
    try {
      const flags = this.options.nodeFlags ?? NODE_FLAGS;
      const child = this.net.spawn(node, [process.execPath, ...flags, entry, 'run', '--config', this.configPath(node)], {
        stdio: ['ignore', fd, fd],
        env: { ...daemonEnv(), ...options.env },
        replaceEnv: true,
      });
      this.daemons.set(node, child);
    } finally {
      closeSync(fd);
    }
  }

  /** Whether a node's daemon process is running. */
  daemonRunning(node: PairNode): boolean {
    const child = this.daemons.get(node);
    return !!child && child.exitCode === null && child.signalCode === null && child.pid !== undefined && pidAlive(child.pid);
  }

  /** PID of a node's daemon, or `null`. */
  daemonPid(node: PairNode): number | null {
    const child = this.daemons.get(node);
    return child && child.exitCode === null && child.signalCode === null ? (child.pid ?? null) : null;
  }

  /**
   * Sends `signal` to a node's daemon and waits (bounded) for it to exit; SIGKILL
   * after the grace period. Resolves with how it ended and how long it took.
   */
  async stopDaemon(
    node: PairNode,
    signal: NodeJS.Signals = 'SIGTERM',
    graceMs = DAEMON_STOP_GRACE_MS,
  ): Promise<{ code: number | null; signal: NodeJS.Signals | null; elapsedMs: number; forced: boolean }> {
    const child = this.daemons.get(node);
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) {
      return { code: child?.exitCode ?? null, signal: child?.signalCode ?? null, elapsedMs: 0, forced: false };
    }
    const started = Date.now();
    process.kill(child.pid, signal);
    await waitChildExit(child, graceMs);
    let forced = false;
    if (child.exitCode === null && child.signalCode === null) {
      forced = true;
      process.kill(child.pid, 'SIGKILL');
      await waitChildExit(child, graceMs);
    }
    return { code: child.exitCode, signal: child.signalCode, elapsedMs: Date.now() - started, forced };
  }

  /** The daemon's log so far (pino JSON lines plus anything on stderr). */
  daemonLog(node: PairNode): string {
    const path = this.daemonLogPath(node);
    return existsSync(path) ? readFileSync(path, 'utf8') : '';
  }

  /** Parsed audit-log records of a node (unparsable lines skipped). */
  auditRecords(node: PairNode): AuditRecord[] {
    const path = this.auditPath(node);
    if (!existsSync(path)) return [];
    const records: AuditRecord[] = [];
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      if (!line.trim()) continue;
      try {
        const parsed: unknown = JSON.parse(line);
        if (typeof parsed === 'object' && parsed !== null) records.push(parsed as AuditRecord);
      } catch {
        // A torn last line while the daemon writes.
      }
    }
    return records;
  }

  // -- observations ---------------------------------------------------------------

  /** Hosts whose eth0 carries the VIP right now. */
  async vipHolders(): Promise<string[]> {
    const holders: string[] = [];
    for (const host of this.net.hosts) {
      const out = await runOk(['ip', '-n', host.ns, '-j', 'addr', 'show', 'dev', 'eth0']);
      const links = JSON.parse(out) as Array<{ addr_info?: Array<{ local?: string }> }>;
      if (links.some((link) => link.addr_info?.some((a) => a.local === this.vip))) holders.push(host.name);
    }
    return holders;
  }

  /** A node's Redis role, or `down`. */
  async redisRole(node: PairNode): Promise<LabRedisRole> {
    return this.redis(node).role();
  }

  /** A node's `INFO replication`, or `null` when down. */
  async redisInfo(node: PairNode): Promise<Record<string, string> | null> {
    return this.redis(node).info('replication');
  }

  /** VIP holders and both roles. */
  async status(): Promise<PairStatus> {
    const [vipHolders, a, b] = await Promise.all([this.vipHolders(), this.redisRole('a'), this.redisRole('b')]);
    return { vipHolders, roles: { a, b } };
  }

  /**
   * Whether `node` is the settled master: the VIP on it alone, its Redis a master and
   * the other's Redis replicating it with the link up.
   */
  async isSettledMaster(node: PairNode): Promise<boolean> {
    const holders = await this.vipHolders();
    if (holders.length !== 1 || holders[0] !== node) return false;
    if ((await this.redisRole(node)) !== 'master') return false;
    const info = await this.redisInfo(PairLab.other(node));
    return info?.['role'] === 'slave' && info['master_host'] === this.address(node) && info['master_link_status'] === 'up';
  }

  /**
   * Polls `predicate` until it holds; resolves with the elapsed ms. After `timeoutMs`
   * it throws an error naming `description`, the last predicate error, the current
   * status and the daemons' last log lines.
   */
  async waitFor(
    description: string,
    predicate: () => boolean | Promise<boolean>,
    timeoutMs: number,
    intervalMs = WAIT_POLL_MS,
  ): Promise<number> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    let lastError: unknown = null;
    for (;;) {
      try {
        if (await predicate()) return Date.now() - started;
        lastError = null;
      } catch (error) {
        lastError = error;
      }
      if (Date.now() >= deadline) break;
      await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
    }
    let status = '';
    try {
      status = JSON.stringify(await this.status());
    } catch (error) {
      status = `status unavailable: ${String(error)}`;
    }
    const logs = (['a', 'b'] as const)
      .map((node) => `--- daemon ${node} (last ${LOG_TAIL_LINES} lines)\n${tailLines(this.daemonLog(node), LOG_TAIL_LINES)}`)
      .join('\n');
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for: ${description}` +
        (lastError ? `\nlast error: ${String(lastError)}` : '') +
        `\nstatus: ${status}\n${logs}`,
    );
  }

  // -- faults -------------------------------------------------------------------------

  /** Signals a node's Redis by PID (default SIGKILL). */
  killRedis(node: PairNode, signal: NodeJS.Signals = 'SIGKILL'): void {
    this.redis(node).kill(signal);
  }

  /** Restarts a node's Redis with its start-up configuration (or `replicaOf` override). */
  async restartRedis(node: PairNode, options: { replicaOf?: string | null } = {}): Promise<void> {
    await this.redis(node).restart(options);
  }

  /**
   * SIGKILLs a node's Redis and starts it again `delayMs` after it exited, empty or
   * from the dump in its dir (`LabRedis.crashRestart`): a crashed Redis under systemd's
   * `Restart=always`.
   */
  async crashRestartRedis(node: PairNode, options: CrashRestartOptions): Promise<CrashRestartTiming> {
    return this.redis(node).crashRestart(options);
  }

  /**
   * Stops a replica's replication traffic to the other node's Redis (its acks and the
   * stream's TCP acknowledgements) with an nftables drop rule on its output hook; the
   * daemons' adverts (UDP) and local health checks are untouched. `unblockReplication`
   * removes it; the rule dies with the namespace anyway.
   */
  async blockReplication(replica: PairNode): Promise<void> {
    const master = this.address(PairLab.other(replica));
    const table = REPLICATION_BLOCK_TABLE;
    for (const argv of [
      ['nft', 'add', 'table', 'inet', table],
      ['nft', 'add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0; policy accept; }'],
      ['nft', 'add', 'rule', 'inet', table, 'out', 'ip', 'daddr', master, 'tcp', 'dport', String(LAB_REDIS_PORT), 'drop'],
    ]) {
      const r = await this.net.exec(replica, argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')} failed in ${replica}: ${r.stderr.trim() || `exit ${r.code}`}`);
    }
  }

  /**
   * Removes `blockReplication`'s rule; a table already gone is fine, any other failure
   * throws (replication left blocked would surface later as a misleading timeout).
   */
  async unblockReplication(replica: PairNode): Promise<void> {
    const argv = ['nft', 'delete', 'table', 'inet', REPLICATION_BLOCK_TABLE];
    const r = await this.net.exec(replica, argv);
    if (r.code !== 0 && !NFT_NO_SUCH_TABLE.test(r.stderr)) {
      throw new Error(`${argv.join(' ')} failed in ${replica}: ${r.stderr.trim() || `exit ${r.code}`}`);
    }
  }

  /** Cuts a host's link on the bridge. */
  async cutLink(host: PairHost): Promise<void> {
    await this.net.cutLink(host);
  }

  /** Restores a cut link. */
  async restoreLink(host: PairHost): Promise<void> {
    await this.net.restoreLink(host);
  }

  /**
   * Cuts `node` off the etcd witness, both ways, with nftables drop rules in its
   * namespace (packets to the witness's client port and from it vanish, as in a
   * partition; nothing is refused): the peer, the client and the VIP are untouched.
   * `restoreEtcd` removes them; they die with the namespace anyway.
   */
  async isolateFromEtcd(node: PairNode): Promise<void> {
    const etcd = this.etcd();
    if (this.etcdIsolated.has(node)) return;
    const table = ETCD_ISOLATE_TABLE;
    const port = String(LAB_ETCD_CLIENT_PORT);
    for (const argv of [
      ['nft', 'add', 'table', 'inet', table],
      ['nft', 'add', 'chain', 'inet', table, 'out', '{ type filter hook output priority 0; policy accept; }'],
      ['nft', 'add', 'chain', 'inet', table, 'in', '{ type filter hook input priority 0; policy accept; }'],
      ['nft', 'add', 'rule', 'inet', table, 'out', 'ip', 'daddr', etcd.address, 'tcp', 'dport', port, 'drop'],
      ['nft', 'add', 'rule', 'inet', table, 'in', 'ip', 'saddr', etcd.address, 'tcp', 'sport', port, 'drop'],
    ]) {
      const r = await this.net.exec(node, argv);
      if (r.code !== 0) throw new Error(`${argv.join(' ')} failed in ${node}: ${r.stderr.trim() || `exit ${r.code}`}`);
    }
    this.etcdIsolated.add(node);
  }

  /** Undoes `isolateFromEtcd(node)`; a table already gone is fine, any other failure throws. */
  async restoreEtcd(node: PairNode): Promise<void> {
    const argv = ['nft', 'delete', 'table', 'inet', ETCD_ISOLATE_TABLE];
    const r = await this.net.exec(node, argv);
    if (r.code !== 0 && !NFT_NO_SUCH_TABLE.test(r.stderr)) {
      throw new Error(`${argv.join(' ')} failed in ${node}: ${r.stderr.trim() || `exit ${r.code}`}`);
    }
    this.etcdIsolated.delete(node);
  }

  /**
   * Partitions a from b: each is silent to the other while both still reach c (the
   * client, and the etcd witness when there is one), the "hosts cut from each other"
   * fault of issue 11.
   */
  async partitionNodes(): Promise<void> {
    await this.net.partition('a', 'b');
  }

  /** Heals `partitionNodes`. */
  async healNodes(): Promise<void> {
    await this.net.heal('a', 'b');
  }

  /** Sends one UDP datagram from a host's namespace (e.g. a forged advert). */
  async sendDatagram(from: PairHost, toAddress: string, port: number, payload: Buffer): Promise<void> {
    const script =
      "import dgram from 'node:dgram';" +
      'const [host, port, hex] = process.argv.slice(1);' +
      "const s = dgram.createSocket('udp4');" +
      "s.send(Buffer.from(hex, 'hex'), Number(port), host, (e) => { s.close(); if (e) { console.error(e.message); process.exit(1); } });";
    await this.net.execOk(
      from,
      [process.execPath, '--input-type=module', '-e', script, toAddress, String(port), payload.toString('hex')],
      { timeoutMs: SEND_TIMEOUT_MS },
    );
  }

  // -- client -----------------------------------------------------------------------

  /** Starts the set-test writer in the client namespace, writing through the VIP. */
  startWriter(options: { ratePerSec?: number; concurrency?: number; connections?: number; pipeline?: number; key?: string; timeoutMs?: number } = {}): WriterHandle {
    const entry = writerEntry();
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run npm run build:tools first`);
    const run = ++this.writerCount;
    const out = join(this.dir, `writer-${run}.jsonl`);
    // Values restart at 1 in every run, so each run gets its own set.
    const key = options.key ?? (run === 1 ? DEFAULT_SET_KEY : `${DEFAULT_SET_KEY}:${run}`);
    const argv = [
      process.execPath,
      entry,
      '--host',
      this.vip,
      '--port',
      String(LAB_REDIS_PORT),
      '--password-env',
      WRITER_PASSWORD_ENV,
      '--rate',
      String(options.ratePerSec ?? LAB_WRITER_RATE_PER_SEC),
      '--concurrency',
      String(options.concurrency ?? 1),
      '--connections',
      String(options.connections ?? 1),
      '--pipeline',
      String(options.pipeline ?? 1),
      '--key',
      key,
      '--out',
      out,
      ...(options.timeoutMs === undefined ? [] : ['--timeout-ms', String(options.timeoutMs)]),
    ];
    const child = this.net.spawn('c', argv, { env: { [WRITER_PASSWORD_ENV]: this.password } });
    this.writers.add(child);
    child.once('exit', () => this.writers.delete(child));
    let meta: WriterMeta | null = null;
    let progress: WriterProgress | null = null;
    let summary: WriterSummary | null = null;
    let buffered = '';
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      let newline = buffered.indexOf('\n');
      while (newline >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        newline = buffered.indexOf('\n');
        if (!line.trim()) continue;
        const record = JSON.parse(line) as WriterMeta | WriterProgress | WriterSummary;
        if (record.type === 'meta') meta = record;
        else if (record.type === 'progress') progress = record;
        else summary = record;
      }
    });
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const pid = child.pid;
    if (pid === undefined) throw new Error('writer did not start');
    return {
      pid,
      meta: () => meta,
      progress: () => progress,
      toWriterMs: (wallMs: number) => {
        if (!meta) throw new Error('writer has not reported its start yet');
        return wallMs - meta.startWallMs;
      },
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGTERM');
        await waitChildExit(child, WRITER_STOP_GRACE_MS);
        if (child.exitCode !== 0) {
          throw new Error(`writer exited with ${child.exitCode ?? child.signalCode}: ${stderr.trim()}`);
        }
        const log = parseOpLog(readFileSync(out, 'utf8'));
        return { meta: log.meta, ops: log.ops, summary, out, stderr };
      },
    };
  }

  /** The members of a writer's set (default `ha:set`, the first run's) on a node's Redis, as numbers. */
  async readFinalSet(node: PairNode, key = DEFAULT_SET_KEY): Promise<Set<number>> {
    return parseFinalSet(await this.redis(node).smembers(key));
  }

  // -- teardown -----------------------------------------------------------------------

  /**
   * Stops the writer, the daemons (SIGTERM, then SIGKILL), both Redis servers and the
   * etcd witness (by PID), removes the network and the temp dir. Idempotent.
   */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    this.unregister();
    for (const writer of this.writers) {
      if (writer.pid !== undefined && writer.exitCode === null) {
        try {
          process.kill(writer.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    await Promise.all((['a', 'b'] as const).map((node) => this.stopDaemon(node, 'SIGTERM', DAEMON_STOP_GRACE_MS / 2)));
    for (const redis of this.redisByNode.values()) await redis.stop();
    await this.witness?.stop('SIGTERM');
    await this.net.teardown();
    if (process.env[KEEP_ENV] === '1') {
      process.stderr.write(`lab files kept in ${this.dir}\n`);
    } else {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

/**
 * Builds the pair lab: network (a, b, c), secrets and configs, the etcd witness on c
 * (with `quorum.backend: 'etcd'` or `etcdWitness`), Redis on a and b (b replicating a
 * unless `both-masters`), then the daemons (unless `startDaemons: false`).
 * Does not wait for the election: use `waitFor` with `isSettledMaster`.
 */
export function startPair(options: PairOptions): Promise<PairLab> {
  return PairLab.start(options);
}
