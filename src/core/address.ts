/**
 * Address comparison for the election tie-break: with equal epoch and priority the
 * node with the higher primary address wins (RFC 5798 §6.4.3, "the primary IP
 * address of the sender is greater than the local primary IP address").
 * Pure string arithmetic; no DNS, no sockets.
 */

/** Expands an IPv4 or IPv6 literal to a fixed-width byte array; `null` if it is neither. */
export function addressBytes(address: string): number[] | null {
  const v4 = parseIpv4(address);
  if (v4) return v4;
  return parseIpv6(address);
}

/** Negative, zero or positive as `a` sorts below, equal to or above `b`; non-IPs sort as strings. */
export function compareAddresses(a: string, b: string): number {
  const ba = addressBytes(a);
  const bb = addressBytes(b);
  if (ba && bb && ba.length === bb.length) {
    for (let i = 0; i < ba.length; i++) {
      const d = (ba[i] ?? 0) - (bb[i] ?? 0);
      if (d !== 0) return d;
    }
    return 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

function parseIpv4(s: string): number[] | null {
  const parts = s.split('.');
  if (parts.length !== 4) return null;
  const out: number[] = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return null;
    const n = Number(p);
    if (n > 255) return null;
    out.push(n);
  }
  return out;
}

function parseIpv6(s: string): number[] | null {
  const addr = s.split('%')[0] ?? '';
  if (!addr.includes(':')) return null;
  const halves = addr.split('::');
  if (halves.length > 2) return null;
  const groups = (h: string | undefined): string[] => (h ? h.split(':') : []);
  const head = groups(halves[0]);
  const tail = groups(halves[1]);
  // An embedded IPv4 tail (::ffff:10.0.0.1) counts as two groups.
  const last = tail.length ? tail : head;
  const v4 = last.length ? parseIpv4(last[last.length - 1] ?? '') : null;
  if (v4) {
    last.pop();
    last.push(((v4[0]! << 8) | v4[1]!).toString(16), ((v4[2]! << 8) | v4[3]!).toString(16));
  }
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const all = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...tail];
  const out: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return null;
    const n = parseInt(g, 16);
    out.push(n >> 8, n & 0xff);
  }
  return out;
}
