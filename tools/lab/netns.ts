/**
 * Network-namespace lab primitives: one Linux bridge in the root namespace, one
 * namespace per host (`<tag>-<host>`), each joined to the bridge by a veth pair whose
 * namespace end is `eth0` with `<subnet>.<10+i>/24`. Everything is built with
 * iproute2 alone (this kernel has no tc actions, no VLAN filtering, no dummy links),
 * lives in 10.77.0.0/16 and is torn down idempotently: on `teardown()`, on
 * SIGINT/SIGTERM through the cleanup registry, and best-effort synchronously on exit.
 *
 * Faults:
 *  - `cutLink(host)` sets the bridge-side veth down: the host keeps its address and
 *    carrier-less `eth0`, like a pulled cable on the switch side.
 *  - `partition(x, y)` makes x and y silent to each other while both still reach every
 *    other host. Each side routes the other's address into a private sink veth with a
 *    permanent neighbour entry (sends succeed and vanish, as on a real network), and
 *    strict reverse-path filtering drops whatever arrives from the other side on
 *    `eth0` (including traffic to a VIP it holds). Deleting the sink removes its route.
 *  - `addLoss(x, y, percent)` drops that share of the packets x and y send each other,
 *    at random, with an nftables `numgen random` rule on each side's input hook
 *    (matched on the sender's address, so unicast and multicast alike). This kernel has
 *    no netem and no tc actions, so `tc` cannot do it; `lossSupport()` says whether
 *    the `nft` tool is there. The rules live in the namespaces and die with them.
 *
 * Processes run through `ip netns exec NS argv...`, which execs the command in place,
 * so the PID of the spawned child is the PID of the real process.
 */
import { execFile, execFileSync, spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

/** Longest Linux interface name (IFNAMSIZ - 1). */
export const MAX_IFNAME_LENGTH = 15;
/** Host addresses are `<subnet>.<HOST_OCTET_BASE + index>`. */
export const HOST_OCTET_BASE = 10;
/** Prefix length of every lab subnet. */
export const LAB_PREFIX_LENGTH = 24;
/** Every lab subnet must sit inside 10.77.0.0/16. */
const LAB_SUBNET_PATTERN = /^10\.77\.(\d{1,3})$/;
/** Tags become part of interface names, so they stay short and plain. */
const TAG_PATTERN = /^[a-z][a-z0-9]{0,7}$/;
const HOST_PATTERN = /^[a-z][a-z0-9]{0,7}$/;
/** Default bound on one lab command. */
export const DEFAULT_EXEC_TIMEOUT_MS = 10_000;
/** Output cap for one command (SMEMBERS of a large set is several MB). */
const EXEC_MAX_BUFFER_BYTES = 256 * 1024 * 1024;
/** Name of the partition sink veth inside a namespace (and its peer). */
const SINK_IFNAME = 'rhsink0';
const SINK_PEER_IFNAME = 'rhsink1';
/** Locally administered MAC nobody owns: frames sent to it through the sink are dropped. */
const SINK_MAC = '02:00:00:00:00:01';
/** How long teardown waits for a killed child to go away before moving on. */
const CHILD_EXIT_WAIT_MS = 3_000;
/** Bound on all registered cleanups when a signal arrives. */
const SIGNAL_CLEANUP_BOUND_MS = 20_000;
/** nftables table holding the packet-loss rule inside a namespace. */
const LOSS_TABLE = 'redis_ha_lab_loss';

/** What a lab network is made of. */
export interface LabNetworkSpec {
  /** Short and unique per lab (e.g. `rhe1`): names the namespaces, bridge and veths. */
  readonly tag: string;
  /** First three octets of the /24, inside 10.77.0.0/16, e.g. `10.77.3`. */
  readonly subnet: string;
  /** Host names, e.g. `['a', 'b', 'c']`; host i gets `<subnet>.<10+i>`. */
  readonly hosts: readonly string[];
}

/** One host of a lab network. */
export interface LabHost {
  readonly name: string;
  /** Namespace name, `<tag>-<name>`. */
  readonly ns: string;
  /** IPv4 address on the host's `eth0`, without prefix. */
  readonly address: string;
  /** The veth end in the root namespace, enslaved to the bridge. */
  readonly bridgePort: string;
}

/** Result of a command that ran to completion (any exit status). */
export interface ExecResult {
  /** Exit status; `null` when killed by a signal (for example on timeout). */
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly timedOut: boolean;
}

/** Options of `run`, `exec` and friends. */
export interface ExecOptions {
  /** Kill the command (SIGKILL) after this long. */
  readonly timeoutMs?: number;
  /** Extra environment variables (merged over the current environment). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Options of `LabNetwork.spawn`. */
export interface SpawnOptions {
  /** Extra environment variables, merged over the current environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Use `env` as the whole environment instead of merging. */
  readonly replaceEnv?: boolean;
  /** Passed to `child_process.spawn`; default: ignore stdin, pipe stdout and stderr. */
  readonly stdio?: StdioOptions;
}

/** A lab command failed (non-zero status or timeout). */
export class LabCommandError extends Error {
  readonly result: ExecResult;
  constructor(argv: readonly string[], result: ExecResult) {
    const why = result.timedOut ? 'timed out' : `exited with ${result.code}`;
    super(`lab command ${why}: ${argv.join(' ')}${result.stderr ? `\n${result.stderr.trim()}` : ''}`);
    this.name = 'LabCommandError';
    this.result = result;
  }
}

/** Whether this process runs as root (namespaces and links need CAP_NET_ADMIN). */
export function isRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Runs a command in the root namespace; resolves with its result whatever the status. */
export function run(argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
  const [file, ...args] = argv;
  if (file === undefined) return Promise.reject(new Error('run: empty argv'));
  return new Promise((resolve) => {
    execFile(
      file,
      args,
      {
        timeout: options.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS,
        killSignal: 'SIGKILL',
        maxBuffer: EXEC_MAX_BUFFER_BYTES,
        env: options.env ? { ...process.env, ...options.env } : process.env,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        if (!error) {
          resolve({ code: 0, stdout, stderr, timedOut: false });
          return;
        }
        const failure = error as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
        const code = typeof failure.code === 'number' ? failure.code : null;
        resolve({
          code: code ?? (failure.signal ? null : 127),
          stdout: stdout ?? '',
          stderr: (stderr ?? '') || failure.message,
          timedOut: failure.killed === true && failure.signal === 'SIGKILL',
        });
      },
    );
  });
}

/** Like `run`, but rejects with `LabCommandError` unless the status is 0. */
export async function runOk(argv: readonly string[], options: ExecOptions = {}): Promise<string> {
  const result = await run(argv, options);
  if (result.code !== 0) throw new LabCommandError(argv, result);
  return result.stdout;
}

// ---------------------------------------------------------------------------------
// Cleanup registry: whatever a lab builds registers its teardown here, so that an
// interrupted run (Ctrl-C in the demo, SIGTERM from a runner) still cleans up.

type AsyncCleanup = () => Promise<void>;
type SyncCleanup = () => void;

const asyncCleanups = new Map<number, AsyncCleanup>();
const syncCleanups = new Map<number, SyncCleanup>();
let nextCleanupId = 1;
let signalHandlersInstalled = false;
let exitHandlerInstalled = false;

/**
 * Registers a teardown. `sync` is a best-effort synchronous fallback run from the
 * process `exit` handler when the async one never ran. Returns the unregister function.
 */
export function registerCleanup(cleanup: AsyncCleanup, sync?: SyncCleanup): () => void {
  const id = nextCleanupId++;
  asyncCleanups.set(id, cleanup);
  if (sync) syncCleanups.set(id, sync);
  if (!exitHandlerInstalled) {
    exitHandlerInstalled = true;
    process.on('exit', () => {
      for (const fn of syncCleanups.values()) {
        try {
          fn();
        } catch {
          // Exit path: nothing left to report to.
        }
      }
      syncCleanups.clear();
    });
  }
  return () => {
    asyncCleanups.delete(id);
    syncCleanups.delete(id);
  };
}

/** Runs every registered cleanup (newest first), bounded in time; never rejects. */
export async function runCleanups(boundMs = SIGNAL_CLEANUP_BOUND_MS): Promise<void> {
  const pending = [...asyncCleanups.entries()].reverse();
  asyncCleanups.clear();
  const all = (async () => {
    for (const [id, fn] of pending) {
      try {
        await fn();
      } catch (error) {
        process.stderr.write(`lab cleanup failed: ${String(error)}\n`);
      }
      syncCleanups.delete(id);
    }
  })();
  let timer: NodeJS.Timeout | undefined;
  const bound = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, boundMs);
  });
  await Promise.race([all, bound]);
  if (timer) clearTimeout(timer);
}

/**
 * Installs SIGINT/SIGTERM handlers that run the cleanups and exit with 128+signal.
 * For command-line tools (the demo); test runners tear down in their own hooks.
 */
export function installSignalCleanup(): void {
  if (signalHandlersInstalled) return;
  signalHandlersInstalled = true;
  const handle = (signal: NodeJS.Signals, code: number): void => {
    process.stderr.write(`\n${signal}: tearing the lab down...\n`);
    void runCleanups().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => handle('SIGINT', 130));
  process.once('SIGTERM', () => handle('SIGTERM', 143));
}

// ---------------------------------------------------------------------------------

function validateSpec(spec: LabNetworkSpec): void {
  if (!TAG_PATTERN.test(spec.tag)) throw new Error(`lab tag must match ${TAG_PATTERN}: ${spec.tag}`);
  const match = LAB_SUBNET_PATTERN.exec(spec.subnet);
  if (!match || Number(match[1]) > 255) {
    throw new Error(`lab subnet must be 10.77.<n> with n <= 255: ${spec.subnet}`);
  }
  if (spec.hosts.length === 0 || spec.hosts.length > 50) throw new Error('a lab has 1..50 hosts');
  const seen = new Set<string>();
  for (const host of spec.hosts) {
    if (!HOST_PATTERN.test(host)) throw new Error(`lab host name must match ${HOST_PATTERN}: ${host}`);
    if (seen.has(host)) throw new Error(`duplicate lab host: ${host}`);
    seen.add(host);
  }
}

/** Bridge-side veth of host number `index`; the namespace end is `<tag>n<index>` until renamed. */
function bridgePortName(tag: string, index: number): string {
  return `${tag}v${index}`;
}

function checkIfName(name: string): string {
  if (name.length > MAX_IFNAME_LENGTH) throw new Error(`interface name too long: ${name}`);
  return name;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a PID still names a live (non-zombie) process. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3 (after the parenthesised comm) is the state; Z = zombie.
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z';
  } catch {
    return false;
  }
}

/** A lab network: bridge, namespaces, veths, and the processes spawned inside. */
export class LabNetwork {
  readonly tag: string;
  readonly subnet: string;
  readonly bridge: string;
  private readonly hostsByName: Map<string, LabHost>;
  private readonly children = new Set<ChildProcess>();
  private readonly partitions = new Set<string>();
  private readonly losses = new Set<string>();
  private tornDown = false;
  private unregister: () => void = () => {};

  private constructor(spec: LabNetworkSpec) {
    this.tag = spec.tag;
    this.subnet = spec.subnet;
    this.bridge = checkIfName(`${spec.tag}br`);
    this.hostsByName = new Map(
      spec.hosts.map((name, index) => [
        name,
        {
          name,
          ns: `${spec.tag}-${name}`,
          address: `${spec.subnet}.${HOST_OCTET_BASE + index}`,
          bridgePort: checkIfName(bridgePortName(spec.tag, index)),
        },
      ]),
    );
  }

  /**
   * Builds the network. Leftovers of an earlier run with the same tag are removed
   * first; on any failure the half-built network is torn down before rethrowing.
   */
  static async create(spec: LabNetworkSpec): Promise<LabNetwork> {
    validateSpec(spec);
    if (!isRoot()) throw new Error('the lab needs root (network namespaces)');
    const net = new LabNetwork(spec);
    net.unregister = registerCleanup(
      () => net.teardown(),
      () => net.teardownSync(),
    );
    try {
      await net.removeLeftovers();
      await runOk(['ip', 'link', 'add', net.bridge, 'type', 'bridge']);
      // Forward at once: no STP, no forwarding delay on new ports.
      await runOk(['ip', 'link', 'set', net.bridge, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
      await runOk(['ip', 'link', 'set', net.bridge, 'up']);
      let index = 0;
      for (const host of net.hostsByName.values()) {
        const peerTmp = checkIfName(`${net.tag}n${index}`);
        await runOk(['ip', 'netns', 'add', host.ns]);
        await runOk(['ip', 'link', 'add', host.bridgePort, 'type', 'veth', 'peer', 'name', peerTmp]);
        await runOk(['ip', 'link', 'set', peerTmp, 'netns', host.ns]);
        await runOk(['ip', '-n', host.ns, 'link', 'set', peerTmp, 'name', 'eth0']);
        await runOk(['ip', '-n', host.ns, 'addr', 'add', `${host.address}/${LAB_PREFIX_LENGTH}`, 'dev', 'eth0']);
        await runOk(['ip', '-n', host.ns, 'link', 'set', 'lo', 'up']);
        await runOk(['ip', '-n', host.ns, 'link', 'set', 'eth0', 'up']);
        await runOk(['ip', 'link', 'set', host.bridgePort, 'master', net.bridge]);
        await runOk(['ip', 'link', 'set', host.bridgePort, 'up']);
        index++;
      }
    } catch (error) {
      await net.teardown();
      throw error;
    }
    return net;
  }

  /** All hosts, in creation order. */
  get hosts(): readonly LabHost[] {
    return [...this.hostsByName.values()];
  }

  /** The named host; throws for an unknown name. */
  host(name: string): LabHost {
    const host = this.hostsByName.get(name);
    if (!host) throw new Error(`no lab host ${name} in ${this.tag}`);
    return host;
  }

  /** IPv4 address of the named host. */
  address(name: string): string {
    return this.host(name).address;
  }

  /** Runs `argv` inside the host's namespace; resolves with the result whatever the status. */
  exec(host: string, argv: readonly string[], options: ExecOptions = {}): Promise<ExecResult> {
    return run(['ip', 'netns', 'exec', this.host(host).ns, ...argv], options);
  }

  /** Like `exec`, but rejects unless the status is 0; resolves with stdout. */
  execOk(host: string, argv: readonly string[], options: ExecOptions = {}): Promise<string> {
    return runOk(['ip', 'netns', 'exec', this.host(host).ns, ...argv], options);
  }

  /**
   * Starts a long-running process in the host's namespace. The child's PID is the real
   * process (`ip netns exec` execs); teardown SIGKILLs it if it is still running.
   */
  spawn(host: string, argv: readonly string[], options: SpawnOptions = {}): ChildProcess {
    if (this.tornDown) throw new Error(`lab ${this.tag} is torn down`);
    const child = spawn('ip', ['netns', 'exec', this.host(host).ns, ...argv], {
      stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
      env: options.replaceEnv ? { ...options.env } : { ...process.env, ...options.env },
    });
    if (child.pid === undefined) {
      // spawn failed synchronously (ENOENT etc.); the 'error' event carries why.
      child.on('error', () => {});
      throw new Error(`could not spawn in ${host}: ${argv.join(' ')}`);
    }
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    return child;
  }

  /** Cuts the host off the bridge (its bridge-side veth goes down). */
  async cutLink(host: string): Promise<void> {
    await runOk(['ip', 'link', 'set', this.host(host).bridgePort, 'down']);
  }

  /** Restores a cut link. */
  async restoreLink(host: string): Promise<void> {
    await runOk(['ip', 'link', 'set', this.host(host).bridgePort, 'up']);
  }

  /** Whether the host's bridge-side veth is up. */
  async linkUp(host: string): Promise<boolean> {
    const out = await runOk(['ip', '-j', 'link', 'show', 'dev', this.host(host).bridgePort]);
    const links = JSON.parse(out) as Array<{ flags?: string[] }>;
    return links[0]?.flags?.includes('UP') ?? false;
  }

  /**
   * Makes `x` and `y` unable to reach each other while both still reach every other
   * host. One partition per host at a time (the sink is per namespace).
   */
  async partition(x: string, y: string): Promise<void> {
    const key = this.partitionKey(x, y);
    if (this.partitions.has(key)) return;
    for (const [from, to] of [
      [x, y],
      [y, x],
    ] as const) {
      const ns = this.host(from).ns;
      const target = this.address(to);
      await runOk(['ip', '-n', ns, 'link', 'add', SINK_IFNAME, 'type', 'veth', 'peer', 'name', SINK_PEER_IFNAME]);
      await runOk(['ip', '-n', ns, 'link', 'set', SINK_IFNAME, 'up']);
      await runOk(['ip', '-n', ns, 'link', 'set', SINK_PEER_IFNAME, 'up']);
      await runOk(['ip', '-n', ns, 'route', 'add', `${target}/32`, 'dev', SINK_IFNAME]);
      await runOk(['ip', '-n', ns, 'neigh', 'replace', target, 'lladdr', SINK_MAC, 'dev', SINK_IFNAME, 'nud', 'permanent']);
      // Strict RPF: a packet from `to` arriving on eth0 has its reverse route on the sink.
      await this.execOk(from, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.conf.eth0.rp_filter=1']);
    }
    this.partitions.add(key);
  }

  /** Undoes `partition(x, y)`. */
  async heal(x: string, y: string): Promise<void> {
    const key = this.partitionKey(x, y);
    for (const host of [x, y]) {
      // Deleting one end of the sink pair deletes both, and the route through it.
      await run(['ip', '-n', this.host(host).ns, 'link', 'del', SINK_IFNAME]);
      await this.exec(host, ['sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.eth0.rp_filter=0']);
    }
    this.partitions.delete(key);
  }

  /**
   * Whether `addLoss` works here: the `nft` tool runs and the kernel takes a
   * `numgen random` rule (tried in a throw-away table of a lab namespace).
   */
  async lossSupport(): Promise<{ readonly ok: boolean; readonly reason: string }> {
    const probe = this.hosts[0];
    if (!probe) return { ok: false, reason: 'no lab host to probe in' };
    const table = `${LOSS_TABLE}_probe`;
    const added = await this.exec(probe.name, ['nft', 'add', 'table', 'inet', table]);
    if (added.code !== 0) {
      return { ok: false, reason: `nft (package nftables) unavailable or refused: ${added.stderr.trim() || `exit ${added.code}`}` };
    }
    try {
      const chain = await this.exec(probe.name, [
        'nft', 'add', 'chain', 'inet', table, 'in', '{ type filter hook input priority 0; policy accept; }',
      ]);
      const rule = await this.exec(probe.name, [
        'nft', 'add', 'rule', 'inet', table, 'in', 'ip', 'saddr', '10.77.255.254', 'numgen', 'random', 'mod', '100', '<', '1', 'drop',
      ]);
      if (chain.code !== 0 || rule.code !== 0) {
        return { ok: false, reason: `the kernel refused an nftables numgen rule: ${(chain.stderr + rule.stderr).trim()}` };
      }
      return { ok: true, reason: 'nftables numgen random drop on the input hook' };
    } finally {
      await this.exec(probe.name, ['nft', 'delete', 'table', 'inet', table]);
    }
  }

  /**
   * Drops `percent` % of the packets `x` and `y` send each other, at random, in both
   * directions (each side drops that share of what arrives from the other); traffic
   * with every other host is untouched. Throws when nftables is unavailable.
   */
  async addLoss(x: string, y: string, percent: number): Promise<void> {
    const key = this.partitionKey(x, y);
    if (!Number.isInteger(percent) || percent < 1 || percent > 100) throw new Error(`loss percent must be 1..100: ${percent}`);
    if (this.losses.has(key)) return;
    this.losses.add(key);
    for (const [at, from] of [
      [x, y],
      [y, x],
    ] as const) {
      const rules =
        `table inet ${LOSS_TABLE} {\n` +
        `  chain in {\n` +
        `    type filter hook input priority 0; policy accept;\n` +
        `    ip saddr ${this.address(from)} numgen random mod 100 < ${percent} counter drop\n` +
        `  }\n` +
        `}\n`;
      await this.nftScript(at, rules);
    }
  }

  /** Packets dropped so far by `addLoss` on each side, by receiving host. */
  async lossDropped(x: string, y: string): Promise<Record<string, number>> {
    const dropped: Record<string, number> = {};
    for (const host of [x, y]) {
      const result = await this.exec(host, ['nft', 'list', 'table', 'inet', LOSS_TABLE]);
      const match = /counter packets (\d+)/.exec(result.stdout);
      dropped[host] = match ? Number(match[1]) : 0;
    }
    return dropped;
  }

  /** Undoes `addLoss(x, y)`; idempotent. */
  async clearLoss(x: string, y: string): Promise<void> {
    const key = this.partitionKey(x, y);
    for (const host of [x, y]) await this.exec(host, ['nft', 'delete', 'table', 'inet', LOSS_TABLE]);
    this.losses.delete(key);
  }

  private async nftScript(host: string, script: string): Promise<void> {
    const argv = ['ip', 'netns', 'exec', this.host(host).ns, 'nft', '-f', '-'];
    const [file, ...args] = argv;
    await new Promise<void>((resolve, reject) => {
      const child = execFile(file ?? 'ip', args, { timeout: DEFAULT_EXEC_TIMEOUT_MS, killSignal: 'SIGKILL' }, (error, _stdout, stderr) => {
        if (error) reject(new Error(`nft in ${host} failed: ${String(stderr).trim() || error.message}`));
        else resolve();
      });
      child.stdin?.end(script);
    });
  }

  private partitionKey(x: string, y: string): string {
    this.host(x);
    this.host(y);
    if (x === y) throw new Error('cannot partition a host from itself');
    return [x, y].sort().join('|');
  }

  /** Names of every lab namespace currently present for this tag. */
  async namespaces(): Promise<string[]> {
    const out = await runOk(['ip', '-j', 'netns', 'list']);
    const list = out.trim() ? (JSON.parse(out) as Array<{ name: string }>) : [];
    return list.map((n) => n.name).filter((name) => name.startsWith(`${this.tag}-`));
  }

  /** Names of every root-namespace link that belongs to this tag (bridge, veths). */
  async links(): Promise<string[]> {
    const out = await runOk(['ip', '-j', 'link', 'show']);
    const list = JSON.parse(out) as Array<{ ifname: string }>;
    return list.map((l) => l.ifname).filter((name) => name.startsWith(this.tag) && this.isOurLinkName(name));
  }

  private isOurLinkName(name: string): boolean {
    const rest = name.slice(this.tag.length);
    return rest === 'br' || /^[vn]\d+$/.test(rest);
  }

  private async removeLeftovers(): Promise<void> {
    for (const ns of await this.namespaces()) await run(['ip', 'netns', 'del', ns]);
    for (const link of await this.links()) await run(['ip', 'link', 'del', link]);
  }

  /**
   * Kills the processes spawned here (SIGKILL, by PID), deletes the veths, the
   * namespaces and the bridge, and checks nothing is left. Safe to call repeatedly.
   */
  async teardown(): Promise<void> {
    if (this.tornDown) return;
    this.tornDown = true;
    this.unregister();
    const waits: Promise<void>[] = [];
    for (const child of this.children) {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
        waits.push(waitChildExit(child, CHILD_EXIT_WAIT_MS));
      }
    }
    await Promise.all(waits);
    this.children.clear();
    // Deleting the root-side veth removes the pair now; a namespace delete alone
    // leaves its veths to a deferred kernel cleanup.
    for (const host of this.hostsByName.values()) await run(['ip', 'link', 'del', host.bridgePort]);
    for (const host of this.hostsByName.values()) await run(['ip', 'netns', 'del', host.ns]);
    await run(['ip', 'link', 'del', this.bridge]);
    await this.removeLeftovers();
  }

  /** Synchronous best-effort teardown for the process `exit` handler. */
  teardownSync(): void {
    if (this.tornDown) return;
    this.tornDown = true;
    for (const child of this.children) {
      if (child.pid !== undefined && child.exitCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
    }
    const quiet = { stdio: 'ignore' as const, timeout: DEFAULT_EXEC_TIMEOUT_MS };
    for (const argv of [
      ...this.hosts.map((h) => ['link', 'del', h.bridgePort]),
      ...this.hosts.map((h) => ['netns', 'del', h.ns]),
      ['link', 'del', this.bridge],
    ]) {
      try {
        execFileSync('ip', argv, quiet);
      } catch {
        // Already gone.
      }
    }
  }
}

/** Resolves when the child has exited, or after `boundMs`, whichever comes first. */
export function waitChildExit(child: ChildProcess, boundMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, boundMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Polls until `predicate` holds or `timeoutMs` passes; resolves with whether it held. */
export async function pollUntil(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
  }
}
