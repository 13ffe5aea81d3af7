/**
 * `src/net/address.ts`, the one address parser: table tests for every spelling the
 * configuration, the transport and the Redis adapter meet (IPv4, IPv6 upper case, zero
 * compressed, leading zeros, IPv4-mapped, zone ids), and fast-check properties against
 * Node itself: the parser accepts exactly what `net.isIP()` accepts, and the canonical
 * spelling is the one WHATWG URL (and `ip addr`) prints.
 */
import { isIP } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addressBytes,
  canonicalIp,
  ipFamily,
  isMulticastAddress,
  isUnspecifiedAddress,
  parseIp,
  sameAddress,
} from '../../src/net/address.js';

const RUNS = 2_000;

describe('parseIp', () => {
  it.each([
    ['192.0.2.1', 4, [192, 0, 2, 1], null],
    ['0.0.0.0', 4, [0, 0, 0, 0], null],
    ['::1', 6, [...Array(15).fill(0), 1], null],
    ['FD00::0100', 6, [0xfd, 0, ...Array(12).fill(0), 1, 0], null],
    ['::ffff:192.0.2.1', 6, [...Array(10).fill(0), 0xff, 0xff, 192, 0, 2, 1], null],
    ['fe80::1%eth0', 6, [0xfe, 0x80, ...Array(13).fill(0), 1], 'eth0'],
    ['1:2:3:4:5:6:7::', 6, [0, 1, 0, 2, 0, 3, 0, 4, 0, 5, 0, 6, 0, 7, 0, 0], null],
  ] as const)('%s', (text, family, bytes, zone) => {
    expect(parseIp(text)).toEqual({ family, bytes, zone });
  });

  it.each([
    '', '1.2.3', '1.2.3.256', '01.2.3.4', '1.2.3.4%eth0', ' 1.2.3.4', 'fd00:::1', 'x::1', '1:2:3:4:5:6:7:8:9',
    '1:2:3:4:5:6:7:1.2.3.4', '1.2.3.4::', '::ffff:01.2.3.4', '00000::1', 'fe80::1%', 'fe80::1%a b', 'fe80::1%eth0%x',
    '1::2::3', ':1', '1:', 'host.example', '[::1]',
  ])('rejects %j, as net.isIP does', (text) => {
    expect(parseIp(text)).toBeNull();
    expect(ipFamily(text)).toBe(0);
    expect(addressBytes(text)).toBeNull();
    expect(isIP(text)).toBe(0);
  });
});

describe('canonicalIp', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1'],
    ['FD00:0:0::11', 'fd00::11'],
    ['fd00::0100', 'fd00::100'],
    ['fd00:0200:0:0:0:0:0:0100', 'fd00:200::100'],
    ['0000:0000::0001', '::1'],
    ['::', '::'],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0'], // one zero group is not compressed (RFC 5952 §4.2.2)
    ['1::2:3:4:5:6:7', '1:0:2:3:4:5:6:7'],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3'], // the longest run
    ['1:0:0:0:2:0:0:0', '1::2:0:0:0'], // the first of equal runs (§4.2.3)
    ['2001:DB8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
    ['::FFFF:192.0.2.1', '::ffff:192.0.2.1'], // IPv4-mapped in mixed notation (§5)
    ['::ffff:c000:0201', '::ffff:192.0.2.1'],
    ['::192.0.2.1', '::c000:201'], // the deprecated IPv4-compatible form is plain IPv6
    ['FE80::0001%eth0', 'fe80::1%eth0'], // the zone id is kept as written
    ['fe80::1%ETH0', 'fe80::1%ETH0'],
    ['redis.example', 'redis.example'], // not an address: unchanged
    ['', ''],
  ])('%s → %s', (text, canonical) => {
    expect(canonicalIp(text)).toBe(canonical);
  });
});

describe('sameAddress', () => {
  it.each([
    ['192.0.2.1', '192.0.2.1', true],
    ['192.0.2.1', '192.0.2.2', false],
    ['fd00::1', 'FD00:0:0:0:0:0:0:0001', true],
    ['::ffff:192.0.2.1', '192.0.2.1', true], // a dual-stack socket's view of an IPv4 peer
    ['192.0.2.1', '::FFFF:c000:201', true],
    ['::192.0.2.1', '192.0.2.1', false], // IPv4-compatible is not IPv4-mapped
    ['fe80::1%eth0', 'fe80::1%eth0', true],
    ['fe80::1%eth0', 'fe80::1', false],
    ['fe80::1%eth0', 'fe80::1%eth1', false],
    ['Redis.Example', 'redis.example', true],
    ['redis.example', '192.0.2.1', false],
    ['0.0.0.0', '::', false],
  ])('%s vs %s → %s', (a, b, same) => {
    expect(sameAddress(a, b)).toBe(same);
    expect(sameAddress(b, a)).toBe(same);
  });
});

describe('isMulticastAddress / isUnspecifiedAddress', () => {
  it.each([
    ['224.0.0.18', true, false],
    ['239.255.255.255', true, false],
    ['223.255.255.255', false, false],
    ['240.0.0.1', false, false],
    ['ff02::12', true, false],
    ['FF05::1:3', true, false],
    ['fe80::1', false, false],
    ['::ffff:224.0.0.18', false, false], // the family decides
    ['0.0.0.0', false, true],
    ['::', false, true],
    ['0:0:0:0:0:0:0:0', false, true],
    ['::%eth0', false, true],
    ['::ffff:0.0.0.0', false, false],
    ['ff.example', false, false], // not an address
    ['', false, false],
  ])('%s: multicast %s, unspecified %s', (text, multicast, unspecified) => {
    expect(isMulticastAddress(text)).toBe(multicast);
    expect(isUnspecifiedAddress(text)).toBe(unspecified);
  });
});

/** IPv6-ish text: groups (some upper case, some padded), `::`, a dotted quad, a zone; valid or not. */
const ipv6ish = fc
  .tuple(
    fc.array(fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), maxLength: 5 }), fc.constant('0'), fc.constant('FFFF')), { minLength: 0, maxLength: 9 }),
    fc.option(fc.nat({ max: 9 })),
    fc.option(fc.tuple(fc.nat({ max: 300 }), fc.nat({ max: 255 }), fc.nat({ max: 255 }), fc.nat({ max: 255 }))),
    fc.option(fc.constantFrom('eth0', 'ETH0', 'lo', '25eth0', '', 'a b')),
  )
  .map(([groups, gapAt, quad, zone]) => {
    const parts = groups.map((g, i) => (i % 3 === 1 ? g.toUpperCase() : g));
    if (gapAt !== null) parts.splice(Math.min(gapAt, parts.length), 0, '');
    let text = parts.join(':');
    if (gapAt !== null && !text.includes('::')) text = text === '' ? '::' : text.startsWith(':') ? `:${text}` : `${text}::`;
    if (quad !== null) text = `${text}${text.endsWith(':') ? '' : ':'}${quad.join('.')}`;
    return zone === null ? text : `${text}%${zone}`;
  });
/** Valid IPv6 text in any RFC 4291 spelling: words biased to zero, padded or not, upper or lower case, any zero run as `::`, maybe a dotted quad. */
const ipv6Valid = fc
  .tuple(
    fc.array(fc.oneof(fc.constant(0), fc.constant(0), fc.nat({ max: 0xffff })), { minLength: 8, maxLength: 8 }),
    fc.boolean(),
    fc.boolean(),
    fc.boolean(),
    fc.nat({ max: 7 }),
  )
  .map(([words, pad, upper, quad, gapAt]) => {
    let groups = words.map((w) => (pad ? w.toString(16).padStart(4, '0') : w.toString(16)));
    if (upper) groups = groups.map((g) => g.toUpperCase());
    if (quad) groups.splice(6, 2, [words[6]! >> 8, words[6]! & 0xff, words[7]! >> 8, words[7]! & 0xff].join('.'));
    // Compress the zero run starting at gapAt, if there is one (not necessarily the longest).
    let end = gapAt;
    while (end < groups.length && words[end] === 0 && !(quad && end >= 6)) end++;
    if (end === gapAt) return groups.join(':');
    return `${groups.slice(0, gapAt).join(':')}::${groups.slice(end).join(':')}`;
  });
const ipv4ish = fc
  .array(fc.oneof(fc.nat({ max: 300 }).map(String), fc.constantFrom('01', '00', '')), { minLength: 3, maxLength: 5 })
  .map((parts) => parts.join('.'));

describe('against Node', () => {
  it('accepts exactly what net.isIP accepts, with the same family', () => {
    fc.assert(
      fc.property(fc.oneof(ipv6ish, ipv6Valid, ipv4ish, fc.string()), (text) => {
        expect(ipFamily(text)).toBe(isIP(text));
      }),
      { numRuns: RUNS },
    );
  });

  it('spells IPv6 as WHATWG URL does (outside the IPv4-mapped range and zone ids), and canonically twice', () => {
    let compared = 0;
    fc.assert(
      fc.property(fc.oneof(ipv6Valid, ipv6ish), (text) => {
        const ip = parseIp(text);
        if (ip === null) return;
        const canonical = canonicalIp(text);
        expect(canonicalIp(canonical)).toBe(canonical);
        expect(parseIp(canonical)).toEqual(ip);
        if (ip.zone === null && !canonical.startsWith('::ffff:')) {
          expect(canonical).toBe(new URL(`http://[${text}]/`).hostname.slice(1, -1));
          compared++;
        }
      }),
      { numRuns: RUNS },
    );
    expect(compared).toBeGreaterThan(RUNS / 4);
  });
});
