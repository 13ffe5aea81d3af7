/**
 * The VIP interface's link state and the one kernel setting the VIP depends on.
 *
 * Link: like keepalived's interface tracking, a node whose VIP interface has lost its
 * carrier is in no position to serve: the runtime reports it as a failed health check, so
 * after `fall` checks the node goes to FAULT and releases the VIP. Without that, a master
 * whose cable was pulled keeps the VIP and, when the link returns, its kernel's ARP
 * traffic (sourced from the VIP) pulls clients back to it for up to an advert interval
 * before it hears the newer master and steps down (found by the link-cut e2e test).
 *
 * arp_announce: with the default 0, Linux may use any local address, the VIP included, as
 * the sender of its own ARP requests, which rewrites neighbours' entries for the VIP.
 * 2 makes it use the interface's primary address for the target's subnet, so only the
 * deliberate gratuitous ARP ever announces the VIP.
 */
import { readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { errorMessage } from '../errors.js';

/** What `/sys/class/net/<if>` says about the link. */
export interface LinkState {
  readonly up: boolean;
  readonly detail: string;
}

/** Linux operstates in which the interface can carry traffic ("unknown": no carrier reporting, e.g. some virtual NICs). */
const USABLE_OPERSTATES = new Set(['up', 'unknown']);
/** RFC-less but documented in ip-sysctl.rst: "use the best local address for this target". */
export const ARP_ANNOUNCE_BEST_LOCAL = 2;

/**
 * Reads the interface's operational state; a missing interface is down. Read
 * synchronously: it is read with every health check (10 times a second in the fast
 * profile), a sysfs attribute is generated from memory without waiting on a device,
 * and the promise API's round trip through the thread pool cost 15 times the read.
 */
export async function readLinkState(iface: string, sysfs = '/sys/class/net'): Promise<LinkState> {
  try {
    const operstate = readFileSync(`${sysfs}/${iface}/operstate`, 'utf8').trim();
    if (USABLE_OPERSTATES.has(operstate)) return { up: true, detail: `interface ${iface} ${operstate}` };
    return { up: false, detail: `interface ${iface} is ${operstate} (no carrier or administratively down)` };
  } catch (error) {
    return { up: false, detail: `interface ${iface} not found (${(error as NodeJS.ErrnoException).code ?? 'error'})` };
  }
}

/**
 * Makes sure ARP requests from this host never use the VIP as their sender: sets
 * `net.ipv4.conf.<if>.arp_announce` to 2 unless `all` or the interface already has 2 or
 * more (the kernel uses the maximum). Returns what it did, or a warning when it could not
 * (e.g. /proc/sys read-only under systemd's ProtectKernelTunables: set it with sysctl.d).
 */
export async function ensureArpAnnounce(iface: string, procSys = '/proc/sys/net/ipv4/conf'): Promise<{ changed: boolean; warning: string | null }> {
  const read = async (scope: string): Promise<number> => Number((await readFile(`${procSys}/${scope}/arp_announce`, 'utf8')).trim());
  try {
    const effective = Math.max(await read('all'), await read(iface));
    if (effective >= ARP_ANNOUNCE_BEST_LOCAL) return { changed: false, warning: null };
    await writeFile(`${procSys}/${iface}/arp_announce`, `${ARP_ANNOUNCE_BEST_LOCAL}\n`);
    return { changed: true, warning: null };
  } catch (error) {
    return {
      changed: false,
      warning: `could not set net.ipv4.conf.${iface}.arp_announce=2 (${errorMessage(error)}): this host's own ARP ` +
        'requests may announce the VIP while it is being released; set it in /etc/sysctl.d/',
    };
  }
}
