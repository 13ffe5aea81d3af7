/**
 * The virtual IP as a side effect: put it on an interface, take it off, tell the
 * segment where it lives now.
 *
 * Everything goes through iproute2 and reads the kernel's real state back
 * (`ip -j addr show`), so `claim` and `release` are idempotent and the reconcile loop
 * can repair drift (a VIP deleted by hand) by calling them again. The reconcile loop's
 * own question (`isPresent`) is answered in-process where it can be. Announcing is
 * gratuitous ARP for IPv4 (iputils `arping -U`, an ARP Announcement in RFC 5227 §2.3
 * terms) and unsolicited Neighbor Advertisements for IPv6 (`ndptool`, RFC 4861
 * §7.2.6). Only the first packet is waited for; the rest of the train runs in the
 * background on timers and is cancelled by `release()`/`stop()`, because a late
 * announcement after we gave the address away would pull traffic back from the peer
 * that now holds it.
 *
 * What receivers do with the announcements (measured on Linux 6.x, default sysctls):
 * an EXISTING neighbour entry for the VIP is moved to the new MAC by a gratuitous ARP
 * and by an unsolicited NA (ndptool sets the Override flag), which is what matters for
 * clients already talking to the VIP. A host that has no entry yet does not create
 * one (IPv4 needs `arp_accept=1`; IPv6 needs `accept_untracked_na=1` and
 * `forwarding=1`, i.e. RFC 9131 router behaviour); it resolves the VIP normally on
 * first use, which reaches the new holder anyway.
 */

import { networkInterfaces } from 'node:os';
import { addressBytes, ipFamily } from '../net/address.js';
import type { Config } from '../config/types.js';
import type { Logger } from '../logger.js';
import { errorMessage, EXIT_CONFIG, FatalError, VipError } from '../errors.js';
import { DEFAULT_TIMEOUT_MS, ProgramMissingError, startCommand, type RunningCommand, type RunResult } from './exec.js';
import { NFT_NO_SUCH_TABLE, refusalRuleset, refusalTable } from './vip-refusal.js';

/** The VIP as one small effect interface; the runtime depends on this, tests may fake it. */
export interface VipManager {
  /** Whether the kernel has the VIP on the interface right now. */
  isPresent(): Promise<boolean>;
  /** Adds the VIP if missing, then announces it. `changed: false` when it was already there. */
  claim(): Promise<{ changed: boolean }>;
  /** Cancels pending announcements and removes the VIP if present. */
  release(): Promise<{ changed: boolean }>;
  /** Sends the announcement train; resolves after the first packet, never throws for a failed packet. */
  announce(): Promise<void>;
  /**
   * Keeps the VIP but refuses every connection to it with a TCP reset until `release()`
   * (or `claim()`) ends the refusal. Optional: without it the core releases at once.
   */
  refuse?(): Promise<void>;
  /** Cancels announcements still pending (shutdown). Optional so simple fakes need not implement it. */
  stop?(): void;
}

/** Construction options of {@link LinuxVip}: `Config.vip` (less the refresh, which the core drives) plus the logger. */
export interface LinuxVipOptions extends Omit<Config['vip'], 'garpRefreshMs' | 'faultHoldMs'> {
  readonly logger: Logger;
  /**
   * TESTS ONLY: run every command as `ip netns exec <netns> ...` so a test can drive a VIP
   * inside a network namespace it created (Node cannot `setns()` itself). The daemon always
   * runs in the host's namespace and never sets this.
   */
  readonly netns?: string;
  /** Bound on each `ip`/`arping`/`ndptool` run; default {@link DEFAULT_TIMEOUT_MS}. */
  readonly commandTimeoutMs?: number;
  /**
   * Hold the VIP on a kernel lease (`valid_lft`/`preferred_lft`, whole seconds), renewed
   * every third of it while this adapter holds the address: a daemon that freezes or
   * dies loses the VIP by itself when the lifetime runs out (a dead-man's switch for
   * clients that reach Redis through the VIP). Null or absent: a permanent address.
   */
  readonly lifetimeS?: number | null;
  /**
   * The port `refuse()` resets connections to (`redis.port`); null or absent: this
   * adapter cannot refuse (`vip.fault_hold_ms: 0`), and `nft` is not needed.
   */
  readonly refusePort?: number | null;
}

/**
 * How long `announce()` waits on the first `arping` before returning. iputils arping
 * 20221126 takes its interval in whole seconds and lingers one interval after its last
 * packet waiting for replies an announcement never gets, so `arping -c 1` sends at once
 * but exits after ~1 s. Every way it can fail to send (no such device, interface down,
 * VIP not assigned so `bind` fails) exits within milliseconds, before sending, and is
 * logged as a warning whenever it comes: the wait only orders that warning before the
 * claim's result. It was 100 ms; with etcd the new master's fence is eased (writes
 * accepted) by the effect after the claim, so those 100 ms were 100 ms of `NOREPLICAS`
 * on every takeover (lab: the fence eased 110 ms after the claim began). 20 ms covers
 * the spawn of `arping` on an idle host; on a loaded one the advert saying we hold the
 * VIP may leave before the first announcement, and the old master, ending its hold, may
 * drop the address a few ms before clients move (their connects then wait a timeout
 * instead of being reset).
 */
export const ARPING_SETTLE_MS = 20;

/** Longest Linux interface name (IFNAMSIZ 16 minus the NUL). */
const IFNAME_MAX_LENGTH = 15;

/** `ip addr add` lost a race: the address appeared between our check and our add. */
const ADDRESS_EXISTS = /address already assigned|file exists/i;
/** `ip addr del` lost a race: the address vanished between our check and our delete. */
const ADDRESS_GONE = /address not found|cannot assign requested address/i;
/** iproute2's answer for an unknown device. */
const DEVICE_MISSING = /does not exist|cannot find device/i;
/** What `ip netns exec` prints when the program is not installed (tests only). */
const NETNS_EXEC_ENOENT = /exec of "[^"]*" failed: No such file or directory/;

/** The parts of `ip -j addr show` we read. */
interface IpLink {
  readonly ifname?: string;
  readonly addr_info?: ReadonlyArray<{ readonly family?: string; readonly local?: string; readonly prefixlen?: number }>;
}

/**
 * {@link VipManager} for Linux: iproute2 for the address, iputils `arping` (IPv4) or
 * libndp's `ndptool` (IPv6) for announcements.
 */
export class LinuxVip implements VipManager {
  private readonly opts: LinuxVipOptions;
  private readonly log: Logger;
  private readonly vipBytes: string;
  private readonly timeoutMs: number;
  /** Timers of announcement packets not sent yet. */
  private readonly pendingTimers = new Set<NodeJS.Timeout>();
  /** Announcement processes still running (arping lingers ~1 s after sending). */
  private readonly runningPackets = new Set<RunningCommand>();
  /** Packets cancelled by `stop()`: their non-zero exit is expected, not worth a warning. */
  private readonly cancelledPackets = new WeakSet<RunningCommand>();
  private prefixWarned = false;
  /** Renews the VIP's kernel lifetime while held (with `lifetimeS`). */
  private keeper: NodeJS.Timeout | null = null;
  /** A refusal table this process set is (or may be) in place (`refuse()`). */
  private refusing = false;

  /** Validates `opts`; a bad value is a {@link FatalError} (the config schema should have caught it). */
  constructor(opts: LinuxVipOptions) {
    validate(opts);
    this.opts = opts;
    this.timeoutMs = opts.commandTimeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.vipBytes = (addressBytes(opts.address) ?? []).join('.');
    this.log = opts.logger.child({ vip: `${opts.address}/${opts.prefixLength}`, interface: opts.interface });
  }

  /** True while announcement packets are scheduled or their processes still run. */
  get announcing(): boolean {
    return this.pendingTimers.size > 0 || this.runningPackets.size > 0;
  }

  /**
   * Checks that the programs this adapter needs are installed; throws
   * {@link ProgramMissingError} naming the Debian package otherwise. For start-up and
   * `check-config`, so a missing `arping` is found before the first failover.
   */
  async checkTools(): Promise<void> {
    await this.exec('ip', ['-V']);
    if (this.opts.refusePort != null) await this.exec('nft', ['--version']);
    if (this.opts.family === 4) await this.exec('arping', ['-V']);
    else await this.exec('ndptool', ['--help']);
  }

  /**
   * Asked every `reconcile.interval_ms`: answered in-process when it can be (see
   * {@link presentInProcess}), else by `ip`.
   * @throws VipError `VIP_INTERFACE_MISSING` or `VIP_QUERY_FAILED`.
   */
  async isPresent(): Promise<boolean> {
    return this.presentInProcess() ?? (await this.findPrefixes()).length > 0;
  }

  /**
   * The kernel's addresses read in this process (getifaddrs(3) through
   * `os.networkInterfaces()`, ~0.1 ms) instead of by running `ip` (~3 ms of CPU for this
   * process and the child each time: the reconcile loop's spawn every 2 s was a quarter of
   * an idle daemon's CPU, README "Footprint"). `null` when only `ip` can tell: libuv lists
   * only interfaces that are up and running and have an address, so a down or missing
   * interface, and the VIP under another prefix length (which `findPrefixes` warns about),
   * go to `ip`. Never inside a test's `netns`: this process's namespace is another.
   */
  private presentInProcess(): boolean | null {
    if (this.opts.netns !== undefined) return null;
    const iface = this.opts.interface;
    let listed = false;
    for (const [name, addresses] of Object.entries(networkInterfaces())) {
      // An address added with `label eth0:x` is listed under its label.
      if (name !== iface && !name.startsWith(`${iface}:`)) continue;
      listed ||= name === iface;
      for (const info of addresses ?? []) {
        if ((addressBytes(info.address) ?? []).join('.') !== this.vipBytes) continue;
        return info.cidr !== null && info.cidr.endsWith(`/${this.opts.prefixLength}`) ? true : null;
      }
    }
    return listed ? false : null;
  }

  /**
   * Idempotent: adds `ADDR/PREFIX` unless the kernel answers that it is there, then announces it.
   * The kernel's answer is per prefix for IPv4: a copy under another prefix (an operator's
   * /32) stays beside ours (`release()` removes every copy); IPv6 answers for any prefix.
   * IPv6 is added with `nodad`: Duplicate Address Detection would leave the VIP
   * "tentative" (unusable) for about a second after a failover, and the one other
   * holder it could detect is the peer we are taking over from.
   * @throws VipError `VIP_ADD_FAILED` (with ip's stderr), `VIP_INTERFACE_MISSING`.
   */
  async claim(): Promise<{ changed: boolean }> {
    // A hold this process set that is still in place (a node master again that fast).
    if (this.refusing) await this.clearRefusal();
    // No look first: on a failover every `ip` run is ~10 ms before the gratuitous ARP
    // leaves, and the kernel's "exists" answer says the same as a query would.
    const cidr = `${this.opts.address}/${this.opts.prefixLength}`;
    const args = ['addr', 'add', cidr, 'dev', this.opts.interface];
    if (this.opts.family === 6) args.push('nodad');
    args.push(...this.lifetimeArgs());
    const res = await this.ip(args, 'VIP_ADD_FAILED');
    if (res.code !== 0) {
      if (ADDRESS_EXISTS.test(res.stderr)) {
        // Already there (ours from before, or found at start-up): the state we want.
        this.log.debug({ stderr: res.stderr.trim() }, 'vip already present');
        if (this.opts.lifetimeS != null) {
          await this.renewLifetime();
          this.keepLifetime();
        }
        return { changed: false };
      }
      if (DEVICE_MISSING.test(res.stderr)) throw this.interfaceMissing(res.stderr);
      throw new VipError(
        'VIP_ADD_FAILED',
        `ip ${args.join(' ')} failed (exit ${res.code}): ${res.stderr.trim() || 'no error output'}`,
      );
    }
    this.log.info({ lifetimeS: this.opts.lifetimeS ?? 'forever' }, 'vip added');
    this.keepLifetime();
    await this.announce();
    return { changed: true };
  }

  /**
   * Keeps renewing the lifetime of a VIP found in place at start-up (a restart in place):
   * the core decides within one listen window whether it stays; until then it must not
   * lapse under a new process. No-op without `lifetimeS`.
   */
  async keepFound(): Promise<void> {
    if (this.opts.lifetimeS == null) return;
    await this.renewLifetime();
    this.keepLifetime();
  }

  private lifetimeArgs(): string[] {
    const l = this.opts.lifetimeS;
    return l == null ? [] : ['valid_lft', String(l), 'preferred_lft', String(l)];
  }

  /** Starts renewing the lifetime every third of it (idempotent). */
  private keepLifetime(): void {
    const l = this.opts.lifetimeS;
    if (l == null || this.keeper !== null) return;
    this.keeper = setInterval(() => void this.renewLifetime(), Math.max(200, (l * 1000) / 3));
    this.keeper.unref();
  }

  private stopLifetime(): void {
    if (this.keeper !== null) clearInterval(this.keeper);
    this.keeper = null;
  }

  /** `ip addr change` with a fresh lifetime for each copy of the address; failures are logged, never thrown. */
  private async renewLifetime(): Promise<void> {
    try {
      for (const prefix of await this.findPrefixes()) {
        const args = ['addr', 'change', `${this.opts.address}/${prefix}`, 'dev', this.opts.interface, ...this.lifetimeArgs()];
        const res = await this.ip(args, 'VIP_ADD_FAILED');
        if (res.code !== 0) this.log.warn({ stderr: res.stderr.trim() }, 'vip lifetime not renewed');
      }
    } catch (error) {
      this.log.warn({ err: error }, 'vip lifetime not renewed');
    }
  }

  /**
   * Idempotent: cancels pending announcements first (so none leaves after the peer has
   * taken the address), then deletes every instance of the address on the interface:
   * IPv4 lets the same address sit there twice with different prefixes, and a leftover
   * copy would keep answering ARP for it.
   * @throws VipError `VIP_DEL_FAILED` (with ip's stderr), `VIP_INTERFACE_MISSING`.
   */
  async release(): Promise<{ changed: boolean }> {
    this.stop();
    this.stopLifetime();
    const prefixes = await this.findPrefixes();
    let changed = false;
    for (const prefix of prefixes) {
      const args = ['addr', 'del', `${this.opts.address}/${prefix}`, 'dev', this.opts.interface];
      const res = await this.ip(args, 'VIP_DEL_FAILED');
      if (res.code === 0) {
        changed = true;
        continue;
      }
      if (ADDRESS_GONE.test(res.stderr)) {
        this.log.debug({ stderr: res.stderr.trim() }, 'vip vanished while releasing');
        continue;
      }
      throw new VipError(
        'VIP_DEL_FAILED',
        `ip ${args.join(' ')} failed (exit ${res.code}): ${res.stderr.trim() || 'no error output'}`,
      );
    }
    if (changed) this.log.info('vip removed');
    if (this.refusing) await this.clearRefusal();
    return { changed };
  }

  /**
   * Keeps the VIP but resets every TCP connection to it on `refusePort` (an nftables
   * table, `vip-refusal.ts`) until `release()`, `claim()` or `clearRefusal()`.
   * @throws VipError `VIP_REFUSE_FAILED` (no port configured, or nft failed).
   */
  async refuse(): Promise<void> {
    const port = this.opts.refusePort;
    if (port == null) throw new VipError('VIP_REFUSE_FAILED', 'no port to refuse connections on (vip.fault_hold_ms is 0)');
    // Set first: a table half made by a failed run is still removed by the release.
    this.refusing = true;
    const res = await this.run('nft', [refusalRuleset(this.opts.address, this.opts.family, port)], 'VIP_REFUSE_FAILED');
    if (res.code !== 0) {
      throw new VipError('VIP_REFUSE_FAILED', `nft could not add table ${refusalTable(this.opts.address)} (exit ${res.code}): ${res.stderr.trim() || 'no error output'}`);
    }
    this.log.info({ port }, 'vip refusing connections');
  }

  /**
   * Removes the refusal table of this VIP if it is there (this process's, or one left by a
   * daemon that died during a hold: run at start-up and by `redis-ha release-vip`).
   * Failures are logged, never thrown: with the VIP gone the rule matches nothing.
   */
  async clearRefusal(): Promise<void> {
    if (this.opts.refusePort == null) return;
    const table = refusalTable(this.opts.address);
    try {
      const res = await this.run('nft', ['delete', 'table', 'inet', table], 'VIP_REFUSE_FAILED');
      const gone = res.code === 0 || NFT_NO_SUCH_TABLE.test(res.stderr);
      if (res.code === 0) this.log.info({ table }, 'vip refusal removed');
      else if (!gone) this.log.warn({ table, stderr: res.stderr.trim() }, 'vip refusal not removed');
      if (gone) this.refusing = false;
    } catch (error) {
      this.log.warn({ err: error, table }, 'vip refusal not removed');
    }
  }

  /**
   * Sends `garpCount` announcements `garpIntervalMs` apart; a new call replaces a train
   * still running. The first packet leaves at once and the call resolves after it (for
   * arping: after it has got past every check that precedes sending, see
   * {@link ARPING_SETTLE_MS}); the others follow on timers. Failures are logged as
   * warnings, never thrown: the address is already ours, and a missed announcement only
   * delays clients until their neighbour entries expire.
   */
  async announce(): Promise<void> {
    this.stop();
    const { garpCount, garpIntervalMs } = this.opts;
    if (garpCount <= 0) return;
    this.log.debug(
      { count: garpCount, intervalMs: garpIntervalMs, tool: this.opts.family === 4 ? 'arping' : 'ndptool' },
      'vip announce',
    );

    const first = this.sendPacket(1);
    for (let seq = 2; seq <= garpCount; seq++) {
      const timer = setTimeout(() => {
        this.pendingTimers.delete(timer);
        void this.sendPacket(seq);
      }, (seq - 1) * garpIntervalMs);
      this.pendingTimers.add(timer);
    }

    if (this.opts.family === 6) {
      // ndptool sends and exits in milliseconds: wait for its real outcome.
      await first;
      return;
    }
    let settle: NodeJS.Timeout | undefined;
    await Promise.race([first, new Promise<void>((resolve) => (settle = setTimeout(resolve, ARPING_SETTLE_MS)))]);
    clearTimeout(settle);
  }

  /** Cancels scheduled announcements and terminates running ones. Idempotent. */
  /** Stops everything this adapter runs by itself (announcements, lifetime renewals): the daemon is exiting. */
  close(): void {
    this.stop();
    this.stopLifetime();
  }

  stop(): void {
    for (const timer of this.pendingTimers) clearTimeout(timer);
    this.pendingTimers.clear();
    for (const packet of this.runningPackets) {
      this.cancelledPackets.add(packet);
      packet.cancel();
    }
  }

  /**
   * One announcement packet, as its own short-lived process: iputils arping cannot
   * space packets less than a second apart (`-i` takes whole seconds, and `-i 0`
   * never exits), so the schedule lives here instead.
   *
   * IPv4 `arping -q -U -c 1 -I IF -s VIP VIP`: a broadcast ARP request with sender and
   * target protocol address both the VIP, i.e. an RFC 5227 §2.3 announcement, sent as a
   * request rather than a reply (`-A`) for the reasons in RFC 5227 §3. `-s VIP` makes arping bind to the VIP, so it
   * refuses to announce an address this host does not hold.
   *
   * IPv6 `ndptool -t na -U -i IF -T VIP send`: an unsolicited NA to all-nodes with the
   * Override flag and our link-layer address, as RFC 4861 §7.2.6 describes (which also
   * suggests at most MAX_NEIGHBOR_ADVERTISEMENT = 3 of them).
   */
  private sendPacket(seq: number): Promise<void> {
    const { address, interface: ifname, family } = this.opts;
    const [cmd, args] =
      family === 4
        ? (['arping', ['-q', '-U', '-c', '1', '-I', ifname, '-s', address, address]] as const)
        : (['ndptool', ['-t', 'na', '-U', '-i', ifname, '-T', address, 'send']] as const);
    const packet = this.start(cmd, args);
    this.runningPackets.add(packet);
    return packet.result
      .then(
        (res) => {
          if (res.code !== 0 && !this.cancelledPackets.has(packet)) {
            this.log.warn({ tool: cmd, seq, code: res.code, stderr: res.stderr.trim() }, 'vip announce failed');
          }
        },
        (err: unknown) => {
          this.log.warn({ tool: cmd, seq, err: errorMessage(err) }, 'vip announce failed');
        },
      )
      .finally(() => this.runningPackets.delete(packet));
  }

  /** The VIP's prefix lengths as the kernel has them on the interface (empty: absent). */
  private async findPrefixes(): Promise<number[]> {
    const ifname = this.opts.interface;
    const res = await this.ip(['-j', 'addr', 'show', 'dev', ifname], 'VIP_QUERY_FAILED');
    if (res.code !== 0) {
      if (DEVICE_MISSING.test(res.stderr)) throw this.interfaceMissing(res.stderr);
      throw new VipError('VIP_QUERY_FAILED', `ip -j addr show dev ${ifname} failed (exit ${res.code}): ${res.stderr.trim()}`);
    }
    let links: IpLink[];
    try {
      links = JSON.parse(res.stdout) as IpLink[];
    } catch (err) {
      throw new VipError('VIP_QUERY_FAILED', `ip -j addr show dev ${ifname} printed unreadable JSON`, { cause: err });
    }
    const family = this.opts.family === 4 ? 'inet' : 'inet6';
    const prefixes: number[] = [];
    for (const link of Array.isArray(links) ? links : []) {
      for (const info of link.addr_info ?? []) {
        // Compare bytes, not strings: fd00:0::0100 and fd00::100 are one address.
        if (info.family !== family || info.local === undefined || info.prefixlen === undefined) continue;
        if ((addressBytes(info.local) ?? []).join('.') === this.vipBytes) prefixes.push(info.prefixlen);
      }
    }
    if (prefixes.length > 0 && !prefixes.includes(this.opts.prefixLength) && !this.prefixWarned) {
      // Once per adapter: the reconcile loop asks every few seconds.
      this.prefixWarned = true;
      this.log.warn({ found: prefixes, configured: this.opts.prefixLength }, 'vip present with another prefix length');
    }
    return prefixes;
  }

  /** Runs `ip`, turning a timeout or spawn failure into a VipError with `code`. */
  private interfaceMissing(stderr: string): VipError {
    return new VipError(
      'VIP_INTERFACE_MISSING',
      `interface "${this.opts.interface}" does not exist, so VIP ${this.opts.address} cannot be managed on it (ip: ${stderr.trim()})`,
    );
  }

  private ip(args: string[], code: string): Promise<RunResult> {
    return this.run('ip', args, code);
  }

  /** Runs `cmd`; a failure to run it at all (other than a missing program) is a VipError `code`. */
  private async run(cmd: string, args: string[], code: string): Promise<RunResult> {
    try {
      return await this.exec(cmd, args);
    } catch (err) {
      if (err instanceof FatalError) throw err;
      throw new VipError(code, `${cmd} ${args.join(' ')}: ${errorMessage(err)}`, { cause: err });
    }
  }

  private async exec(cmd: string, args: readonly string[]): Promise<RunResult> {
    return this.start(cmd, args).result;
  }

  /** Starts `cmd`, inside `netns` when a test asked for one. */
  private start(cmd: string, args: readonly string[]): RunningCommand {
    const opts = { timeoutMs: this.timeoutMs };
    if (this.opts.netns === undefined) return startCommand(cmd, args, opts);
    const inner = startCommand('ip', ['netns', 'exec', this.opts.netns, cmd, ...args], opts);
    // `ip netns exec` reports a missing program as an exit status; make it the same error as outside.
    const result = inner.result.then((res) => {
      if (res.code !== 0 && NETNS_EXEC_ENOENT.test(res.stderr)) throw new ProgramMissingError(cmd);
      return res;
    });
    return { pid: inner.pid, result, cancel: () => inner.cancel() };
  }
}

function validate(o: LinuxVipOptions): void {
  const problems: string[] = [];
  const family = ipFamily(o.address);
  if (family === 0) problems.push(`vip.address: "${o.address}" is not an IP address`);
  else if (family !== o.family) problems.push(`vip.family: ${o.family} does not match address ${o.address} (IPv${family})`);
  const maxPrefix = o.family === 4 ? 32 : 128;
  if (!Number.isInteger(o.prefixLength) || o.prefixLength < 1 || o.prefixLength > maxPrefix) {
    problems.push(`vip.prefix_length: expected 1..${maxPrefix}, got ${o.prefixLength}`);
  }
  // A leading '-' would be read by ip/arping as an option.
  if (o.interface.length === 0 || o.interface.length > IFNAME_MAX_LENGTH || /[\s/:]|^-/.test(o.interface)) {
    problems.push(`vip.interface: "${o.interface}" is not a valid interface name`);
  }
  if (!Number.isInteger(o.garpCount) || o.garpCount < 0) problems.push(`vip.garp_count: expected an integer >= 0, got ${o.garpCount}`);
  if (!Number.isFinite(o.garpIntervalMs) || o.garpIntervalMs < 0) {
    problems.push(`vip.garp_interval_ms: expected >= 0, got ${o.garpIntervalMs}`);
  }
  if (problems.length > 0) throw new FatalError('VIP_CONFIG_INVALID', `invalid VIP settings: ${problems.join('; ')}`, EXIT_CONFIG);
}
