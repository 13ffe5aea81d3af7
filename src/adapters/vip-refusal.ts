/**
 * The nftables table that refuses connections to a VIP a master keeps while its peer
 * takes over (`refuse-vip`, `vip.fault_hold_ms`): one table per VIP, named after the
 * address, whose input chain resets every TCP connection to VIP:port before any socket
 * sees it (so a Redis that restarts meanwhile cannot take a write through the VIP).
 * Pure: the text of the commands; `vip.ts` runs them.
 */
import { addressBytes } from '../net/address.js';

/** What `nft delete table` says when the table is not there: the state we want. */
export const NFT_NO_SUCH_TABLE = /No such file or directory/i;

/** The table of this VIP: `redis_ha_hold_` and the address's bytes in hex (one per VIP on a host). */
export function refusalTable(address: string): string {
  const bytes = addressBytes(address);
  if (bytes === null) throw new Error(`not an IP address: ${address}`);
  return `redis_ha_hold_${bytes.map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

/** The one `nft` argument that creates the table with its rule (declarative, one statement per line). */
export function refusalRuleset(address: string, family: 4 | 6, port: number): string {
  const match = family === 4 ? 'ip daddr' : 'ip6 daddr';
  return [
    `table inet ${refusalTable(address)} {`,
    'chain input {',
    // Before the usual filter chains (priority 0): the reset does not depend on them.
    'type filter hook input priority -10; policy accept',
    `${match} ${address} tcp dport ${port} reject with tcp reset`,
    '}',
    '}',
  ].join('\n');
}
