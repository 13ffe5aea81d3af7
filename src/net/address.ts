/**
 * IP addresses as text: the one parser, canonical spelling, comparison and
 * classification (multicast, unspecified) every layer uses, so that the configuration
 * check, the advert transport, the Redis bind check and the switchover's replica match
 * agree on what "the same address" means. Pure string arithmetic: no DNS, no sockets,
 * no Node modules, so the core may use it too.
 *
 * Accepted spellings are exactly Node's `net.isIP()` ones: IPv4 dotted quads without
 * leading zeros; IPv6 in any RFC 4291 §2.2 form (upper or lower case, leading zeros,
 * `::` for one or more zero groups, a trailing dotted quad) with an optional zone id
 * (`fe80::1%eth0`).
 */

/** An IP address taken apart. */
export interface IpAddress {
  readonly family: 4 | 6;
  /** 4 bytes (IPv4) or 16 (IPv6), network order. */
  readonly bytes: readonly number[];
  /** IPv6 zone id as written (interface names are case-sensitive), or `null`. */
  readonly zone: string | null;
}

/** Groups in an IPv6 address (RFC 4291 §2.2). */
const IPV6_GROUPS = 8;
/** A dotted-quad octet as Node accepts it: 0..255, no leading zero. */
const IPV4_OCTET = /^(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]\d|\d)$/;
const IPV6_GROUP = /^[0-9a-fA-F]{1,4}$/;
/** Characters Node's `isIP` accepts in a zone id. */
const ZONE_ID = /^[0-9a-zA-Z.:-]+$/;
/** The IPv4-mapped prefix ::ffff:0:0/96 (RFC 4291 §2.5.5.2), as its first 12 bytes. */
const V4_MAPPED_PREFIX = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff] as const;
/** First byte of every IPv6 multicast address, ff00::/8 (RFC 4291 §2.7). */
const IPV6_MULTICAST_FIRST_BYTE = 0xff;
/** IPv4 multicast is 224.0.0.0/4 (RFC 5771): first octets 224..239. */
const IPV4_MULTICAST_FIRST = 224;
const IPV4_MULTICAST_LAST = 239;

function parseIpv4(text: string): number[] | null {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((part) => IPV4_OCTET.test(part))) return null;
  return parts.map(Number);
}

function parseIpv6(text: string): { bytes: number[]; zone: string | null } | null {
  const percent = text.indexOf('%');
  const zone = percent === -1 ? null : text.slice(percent + 1);
  if (zone !== null && !ZONE_ID.test(zone)) return null;
  const address = percent === -1 ? text : text.slice(0, percent);
  const halves = address.split('::');
  if (halves.length > 2) return null;
  const head = halves[0] === '' ? [] : (halves[0] ?? '').split(':');
  const tail = halves.length === 2 && halves[1] !== '' ? (halves[1] ?? '').split(':') : [];
  // A dotted quad may stand for the last two groups (::ffff:192.0.2.1), and only there:
  // not before a trailing "::".
  const last = halves.length === 2 ? tail : head;
  const quad = last.at(-1)?.includes('.') ? parseIpv4(last.at(-1) ?? '') : undefined;
  if (quad === null) return null;
  if (quad !== undefined) last.pop();
  const groups = head.length + tail.length + (quad === undefined ? 0 : 2);
  if (halves.length === 1 ? groups !== IPV6_GROUPS : groups > IPV6_GROUPS - 1) return null;
  if (![...head, ...tail].every((group) => IPV6_GROUP.test(group))) return null;
  const words = [
    ...head.map((g) => parseInt(g, 16)),
    ...Array<number>(IPV6_GROUPS - groups).fill(0),
    ...tail.map((g) => parseInt(g, 16)),
  ];
  const bytes = words.flatMap((word) => [word >> 8, word & 0xff]);
  return { bytes: quad === undefined ? bytes : [...bytes, ...quad], zone };
}

/** Takes an IP address apart; `null` for anything `net.isIP()` would reject. */
export function parseIp(text: string): IpAddress | null {
  if (!text.includes(':')) {
    const bytes = parseIpv4(text);
    return bytes === null ? null : { family: 4, bytes, zone: null };
  }
  const v6 = parseIpv6(text);
  return v6 === null ? null : { family: 6, ...v6 };
}

/** 4 or 6 for an IP address, 0 for anything else (like `net.isIP()`). */
export function ipFamily(text: string): 0 | 4 | 6 {
  return parseIp(text)?.family ?? 0;
}

/** The address's bytes (4 or 16; an IPv6 zone id dropped), or `null` when it is not an IP address. */
export function addressBytes(text: string): number[] | null {
  const ip = parseIp(text);
  return ip === null ? null : [...ip.bytes];
}

function isV4Mapped(ip: IpAddress): boolean {
  return ip.family === 6 && V4_MAPPED_PREFIX.every((byte, i) => ip.bytes[i] === byte);
}

/**
 * The RFC 5952 spelling of an IP address, which is also what `ip addr` prints: IPv6 in
 * lower case without leading zeros, the longest run of two or more zero groups (the
 * first of equal runs) as `::`, an IPv4-mapped address as `::ffff:192.0.2.1` (§5), the
 * zone id kept as written. Anything that is not an IP address (a host name) comes back
 * unchanged.
 */
export function canonicalIp(text: string): string {
  const ip = parseIp(text);
  if (ip === null) return text;
  if (ip.family === 4) return ip.bytes.join('.');
  const zone = ip.zone === null ? '' : `%${ip.zone}`;
  if (isV4Mapped(ip)) return `::ffff:${ip.bytes.slice(12).join('.')}${zone}`;
  const words = Array.from({ length: IPV6_GROUPS }, (_, i) => ((ip.bytes[2 * i] ?? 0) << 8) | (ip.bytes[2 * i + 1] ?? 0));
  let bestStart = -1;
  let bestLength = 1; // RFC 5952 §4.2.2: a single zero group is not compressed.
  for (let start = 0; start < IPV6_GROUPS; start++) {
    let length = 0;
    while (start + length < IPV6_GROUPS && words[start + length] === 0) length++;
    if (length > bestLength) {
      bestStart = start;
      bestLength = length;
    }
    start += length;
  }
  const hex = (from: number, to: number): string => words.slice(from, to).map((word) => word.toString(16)).join(':');
  const text6 = bestStart === -1 ? hex(0, IPV6_GROUPS) : `${hex(0, bestStart)}::${hex(bestStart + bestLength, IPV6_GROUPS)}`;
  return `${text6}${zone}`;
}

/**
 * Whether two addresses name the same host address: equal bytes, an IPv4-mapped IPv6
 * address equal to its IPv4 address (what a dual-stack socket reports for an IPv4
 * peer), and equal zone ids. Two non-addresses (host names) compare without regard to
 * case; a name never equals an address (resolve it first).
 */
export function sameAddress(a: string, b: string): boolean {
  const x = parseIp(a);
  const y = parseIp(b);
  if (x === null || y === null) return x === null && y === null && a.toLowerCase() === b.toLowerCase();
  const unmapped = (ip: IpAddress): readonly number[] => (isV4Mapped(ip) ? ip.bytes.slice(12) : ip.bytes);
  const bx = unmapped(x);
  const by = unmapped(y);
  return x.zone === y.zone && bx.length === by.length && bx.every((byte, i) => byte === by[i]);
}

/**
 * Whether an address is a multicast group: 224.0.0.0/4 (RFC 5771) or ff00::/8 (RFC 4291
 * §2.7). An IPv4-mapped IPv6 address is not (the family decides, as it does for the
 * socket). `false` for anything that is not an IP address.
 */
export function isMulticastAddress(text: string): boolean {
  const ip = parseIp(text);
  if (ip === null) return false;
  const first = ip.bytes[0] ?? 0;
  return ip.family === 6 ? first === IPV6_MULTICAST_FIRST_BYTE : first >= IPV4_MULTICAST_FIRST && first <= IPV4_MULTICAST_LAST;
}

/** Whether an address is the unspecified (wildcard) address, 0.0.0.0 or :: in any spelling. */
export function isUnspecifiedAddress(text: string): boolean {
  const ip = parseIp(text);
  return ip !== null && ip.bytes.every((byte) => byte === 0);
}
