/**
 * The convict schema of the configuration file: every key, its default, its range,
 * its documentation and its `REDIS_HA_<SECTION>_<KEY>` environment override. It is the
 * one place the file's shape is written: `RawConfig` is its type, `schemaItems()` its
 * key list (for the loader, `check-config` and the test that holds the example file
 * to it), and `Config` is checked against it (`shape.ts`). A section may hold one level
 * of subsections (`quorum.etcd`); `schemaItems()` lists those by their dotted path.
 *
 * Convict's built-in formats report problems as `a.b: must be an integer: value was 20`;
 * ours are custom formats (registered once, by `registerFormats()`) whose messages
 * already read `expected <form>, got <value>`, so the loader only has to prefix the
 * key. Each schema item carries its own parameters (`min`, `max`, `unit`, `values`,
 * `optional`), which convict hands to the format's validator. Nothing here reads
 * files or the environment: `buildSchema(env)` only notes which keys an environment
 * variable overrides, so a bad override is reported as `got "20" (from REDIS_HA_...)`.
 */
import convict from 'convict';
import { keysProblem } from '../adapters/quorum/transactions.js';
import { addressBytes, canonicalIp, ipFamily, isMulticastAddress, isUnspecifiedAddress } from '../net/address.js';
import { DEFAULT_FAULT_VIP_HOLD_MS } from '../core/timing.js';

/**
 * The configuration as convict holds it: YAML spelling, before secrets are read. Derived
 * from `SCHEMA` (each key's type is the type of its default), so the schema is the one
 * place a key is written; `Config` is held to it by `ConfigShapeCheck` (`load.ts`).
 */
export type RawConfig = RawOf<typeof SCHEMA>;

/** A Redis endpoint as written in the file (`redis` and `peer_redis` sections). */
export type RawRedis = RawConfig['redis'];

/**
 * What a configuration file may hold: any section, any key of it (the schema's defaults
 * fill the rest). For code that writes configuration files (the lab).
 */
export type RawConfigFile = FileOf<RawConfig>;

/**
 * A section's values: an item holds its default's type (without the `null` of a
 * required key), a subsection its own values.
 */
type RawOf<T> = { -readonly [K in keyof T]: T[K] extends { readonly default: infer D } ? Exclude<D, null> : RawOf<T[K]> };

/** Any subset of a section's keys and subsections (the file's values are never objects). */
type FileOf<T> = { [K in keyof T]?: T[K] extends object ? FileOf<T[K]> : T[K] };

/** pino level names accepted by `log.level`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How a planned switchover moves the master (see `src/adapters/redis/switchover/`). */
export const SWITCHOVER_METHODS = ['auto', 'failover', 'pause'] as const;
export type SwitchoverMethod = (typeof SWITCHOVER_METHODS)[number];

/** `quorum.backend`: who decides that a node may be master (issue 11). */
export const QUORUM_BACKENDS = ['none', 'etcd'] as const;
export type QuorumBackend = (typeof QUORUM_BACKENDS)[number];

/** `quorum.prefer`: what a pair without a quorum gives up in a partition. */
export const QUORUM_PREFERENCES = ['safety', 'availability'] as const;
export type QuorumPreference = (typeof QUORUM_PREFERENCES)[number];

/**
 * `timing.profile`: the defaults of the timing keys (`profiles.ts` holds the table).
 * `default` is the shipped defaults; `fast` and `lan-fast` detect a lost host sooner and
 * fail over spuriously on a lossy or loaded link.
 */
export const TIMING_PROFILES = ['default', 'fast', 'lan-fast'] as const;
export type TimingProfile = (typeof TIMING_PROFILES)[number];

/** Prefix of every environment override; `REDIS_HA_ADVERT_INTERVAL_MS` sets `advert.interval_ms`. */
export const ENV_PREFIX = 'REDIS_HA_';

/** Longest value shown verbatim in a problem message; longer ones are cut. */
const MAX_SHOWN_CHARS = 80;

/** Longest `node.name`: it travels in every advert and every audit line. */
export const NODE_NAME_MAX_CHARS = 64;

/** Linux IFNAMSIZ is 16 bytes including the terminating NUL. */
const IFNAME_MAX_BYTES = 15;

/**
 * Shortest VIP prefix. The prefix only sets the on-link route the kernel adds with the
 * address (and, for IPv4, its broadcast address); a VIP whose prefix claims more than a
 * /8 (IPv4) or a /16 (IPv6) as one link is a typo (`/1` for `/31`), never a real LAN:
 * the largest private IPv4 block is 10.0.0.0/8, and IPv6 links are /64 (RFC 4291 §2.5.4).
 */
export const VIP_MIN_PREFIX: Readonly<Record<4 | 6, number>> = { 4: 8, 6: 16 };

/** Characters never shown raw in a message: controls, format (bidi) characters, line and paragraph separators. */
const UNSHOWABLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/** `U+202E (a format character)` for a character a message must not print raw. */
function describeChar(char: string): string {
  const code = `U+${(char.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, '0')}`;
  return /\p{Cc}/u.test(char) ? `the control character ${code}` : `the invisible format character ${code}`;
}

/**
 * Names of our convict formats. Prefixed so they cannot clash with another
 * library's formats in convict's process-wide registry.
 */
export const FORMAT = {
  integer: 'redis-ha-integer',
  boolean: 'redis-ha-boolean',
  nodeName: 'redis-ha-node-name',
  ipAddress: 'redis-ha-ip-address',
  cidr: 'redis-ha-cidr',
  interfaceName: 'redis-ha-interface-name',
  path: 'redis-ha-path',
  host: 'redis-ha-host',
  username: 'redis-ha-username',
  groupName: 'redis-ha-group-name',
  oneOf: 'redis-ha-one-of',
  etcdEndpoints: 'redis-ha-etcd-endpoints',
  etcdPrefix: 'redis-ha-etcd-prefix',
  etcdClusterName: 'redis-ha-etcd-cluster-name',
  etcdUsername: 'redis-ha-etcd-username',
} as const;

/**
 * Parameters our formats read from a schema item. Convict passes the item itself to
 * the validator, so these live next to `default` and `doc`.
 */
export interface ItemParams {
  readonly format?: convict.SchemaObj['format'];
  readonly env?: string;
  /** Integers: inclusive range; `max` absent means unbounded. */
  readonly min?: number;
  readonly max?: number;
  /** Integers: `'ms'` words the expectation as "an integer number of milliseconds". */
  readonly unit?: 'ms';
  /** Integers: a noun replacing "an integer", e.g. "a port number". */
  readonly noun?: string;
  /** `''` is accepted (it means "not set"; the key's doc says what happens then). */
  readonly optional?: boolean;
  /** `ipAddress`: multicast group addresses are accepted too. */
  readonly multicast?: boolean;
  /** `oneOf`: the accepted values. */
  readonly values?: readonly string[];
  /** A YAML list of strings is accepted too, and joined with commas (`etcdEndpoints`). */
  readonly list?: boolean;
  /** Set by `buildSchema()` when an environment variable overrides this key. */
  readonly envValue?: string;
  /** Set by `buildSchema()` to a number's source text in the file, which problems quote. */
  readonly writtenValue?: string;
}

/**
 * Thrown by our validators. Convict appends `: value was <json>` to a message when the
 * error has a truthy `value` property, which it assigns itself; our messages already
 * say what was given, so this error ignores that assignment.
 */
class FormatProblem extends Error {
  get value(): undefined {
    return undefined;
  }

  set value(_ignored: unknown) {
    // Deliberately empty: see the class comment.
  }
}

/** Describes a value the way problem messages quote it: `20`, `"20"`, `a list`, `nothing`. */
export function describeValue(value: unknown): string {
  if (value === undefined || value === null) return 'nothing';
  if (typeof value === 'string') {
    const shown = value.length > MAX_SHOWN_CHARS ? `${value.slice(0, MAX_SHOWN_CHARS)}...` : value;
    // JSON escapes C0 controls only; DEL, C1 and bidi overrides would reach the terminal raw.
    return JSON.stringify(shown).replace(UNSHOWABLE, (c) => `\\u${(c.codePointAt(0) ?? 0).toString(16).padStart(4, '0')}`);
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) return 'a list';
  if (ArrayBuffer.isView(value)) return 'binary data';
  if (value instanceof Date) return `a date (${value.toISOString()})`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** One of our formats: what it expects (in words) and whether a value fits. */
interface FormatSpec {
  readonly name: string;
  /** Noun phrase completing "expected ...". */
  expected(item: ItemParams): string;
  /** `true` when the value fits; `false` or a reason (shown in parentheses) when not. */
  check(value: unknown, item: ItemParams): true | false | string;
  /** Converts strings (from the environment or a quoted YAML scalar) before validation. */
  coerce?(value: string): unknown;
}

const INTEGER_TEXT = /^\s*[+-]?\d+\s*$/;
const TRUE_WORDS = new Set(['true', 'yes', 'on', '1']);
const FALSE_WORDS = new Set(['false', 'no', 'off', '0']);
const NODE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. */
const HOST_NAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/**
 * An RFC 1123 host name whose last label is not all digits (RFC 3696 §2), so a
 * mistyped address such as 192.0.2.300 is not taken for a name.
 */
function isHostName(value: string): boolean {
  const last = value.replace(/\.$/, '').split('.').at(-1) ?? '';
  return HOST_NAME.test(value) && !/^\d+$/.test(last);
}

function describeInteger(item: ItemParams): string {
  const noun = item.noun ?? (item.unit === 'ms' ? 'an integer number of milliseconds' : 'an integer');
  const min = item.min ?? 0;
  return item.max === undefined ? `${noun} of ${min} or more` : `${noun} from ${min} to ${item.max}`;
}

/** Checks a unicast (or, with `multicast`, group) IP address without prefix. */
function checkIpAddress(value: unknown, item: ItemParams): true | false | string {
  if (typeof value !== 'string' || ipFamily(value) === 0) return false;
  if (isUnspecifiedAddress(value)) return 'the unspecified address';
  if (value === '255.255.255.255') return 'the broadcast address';
  if (!item.multicast && isMulticastAddress(value)) return 'a multicast address';
  return true;
}

/** Splits `address/prefix`; `null` when the text has no valid shape. */
export function parseCidr(text: string): { address: string; prefixLength: number; family: 4 | 6 } | null {
  const match = /^([^/\s]+)\/(\d{1,3})$/.exec(text);
  if (!match || match[1] === undefined || match[2] === undefined) return null;
  const family = ipFamily(match[1]);
  if (family === 0) return null;
  return { address: canonicalIp(match[1]), prefixLength: Number(match[2]), family };
}

/**
 * An interface name as the kernel takes it (dev_valid_name(): 1 to IFNAMSIZ-1 bytes, not
 * "." or "..", no "/", ":" or white space), narrowed like systemd's ifname_valid() to
 * printable ASCII without "%" (the IPv6 zone separator), and without a leading "-",
 * which `ip` would read as an option (`vip.interface: -h` passed check-config and
 * failed at run).
 */
export function checkInterfaceName(name: string): true | false | string {
  const hidden = name.match(UNSHOWABLE)?.[0];
  if (hidden !== undefined) return `it contains ${describeChar(hidden)}`;
  if (name === '') return false;
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > IFNAME_MAX_BYTES) return `${bytes} bytes, more than the kernel's ${IFNAME_MAX_BYTES}`;
  if (name === '.' || name === '..') return false;
  if (name.startsWith('-')) return 'it starts with "-", which ip would read as an option';
  if (/[^\x21-\x7e]/.test(name)) return 'only printable ASCII characters are accepted';
  if (/[/:%]/.test(name)) return false;
  return true;
}

/** IPv4 loopback 127.0.0.0/8 (RFC 1122 §3.2.1.3) and IPv6 ::1 (RFC 4291 §2.5.3). */
function isLoopback(bytes: readonly number[]): boolean {
  return bytes.length === 4 ? bytes[0] === 127 : bytes.slice(0, 15).every((b) => b === 0) && bytes[15] === 1;
}

/** Whether the host part of `bytes` under `prefixLength` is all `bit` (0: the network address, 1: broadcast). */
function hostPartIs(bytes: readonly number[], prefixLength: number, bit: 0 | 1): boolean {
  return bytes.every((byte, i) => {
    const hostBits = Math.min(8, Math.max(0, (i + 1) * 8 - prefixLength));
    const mask = (1 << hostBits) - 1;
    return (byte & mask) === (bit === 1 ? mask : 0);
  });
}

/**
 * A VIP fit to be claimed: a unicast address that is not loopback, with a prefix from
 * {@link VIP_MIN_PREFIX} to the address's length and, for IPv4, neither the network nor
 * the broadcast address of that prefix (prefixes up to /30; /31 and /32 have neither).
 */
function checkVip(cidr: { address: string; prefixLength: number; family: 4 | 6 }): true | false | string {
  const maxPrefix = cidr.family === 4 ? 32 : 128;
  const minPrefix = VIP_MIN_PREFIX[cidr.family];
  if (cidr.prefixLength < minPrefix || cidr.prefixLength > maxPrefix) {
    return `the prefix length must be from ${minPrefix} to ${maxPrefix} for IPv${cidr.family}`;
  }
  const address = checkIpAddress(cidr.address, {});
  if (address !== true) return address;
  const bytes = addressBytes(cidr.address) ?? [];
  if (isLoopback(bytes)) return 'a loopback address';
  if (cidr.family === 6 && bytes.slice(0, 12).every((b, i) => b === (i < 10 ? 0 : 0xff))) {
    return 'an IPv4-mapped address: write the IPv4 address';
  }
  if (cidr.family === 4 && cidr.prefixLength <= 30) {
    if (hostPartIs(bytes, cidr.prefixLength, 0)) return `the network address of its /${cidr.prefixLength}`;
    if (hostPartIs(bytes, cidr.prefixLength, 1)) return `the broadcast address of its /${cidr.prefixLength}`;
  }
  return true;
}

/** `http(s)://host:port`, nothing more: no user, path, query or trailing "/" (the etcd client takes exactly this). */
const ETCD_ENDPOINT = /^(https?):\/\/(\[[^\]\s]*\]|[^\s/:?#@[\]]+):(\d{1,5})$/;

/** The endpoints of `quorum.etcd.endpoints`, or why they cannot be. */
export type EtcdEndpoints =
  | { readonly ok: true; readonly endpoints: readonly string[]; readonly scheme: 'http' | 'https' | null }
  | { readonly ok: false; readonly reason: string };

/**
 * Splits and checks a comma-separated list of etcd client URLs: each
 * `http://host:port` or `https://host:port` (a host name, an IPv4 address or an IPv6
 * address in brackets; a port from 1 to 65535), all of one scheme. `""` gives no
 * endpoints (whether that is allowed depends on `quorum.backend`).
 */
export function parseEtcdEndpoints(text: string): EtcdEndpoints {
  if (text.trim() === '') return { ok: true, endpoints: [], scheme: null };
  const endpoints: string[] = [];
  const schemes = new Set<string>();
  for (const [index, raw] of text.split(',').entries()) {
    const entry = raw.trim();
    if (entry === '') return { ok: false, reason: `entry ${index + 1} is empty` };
    const match = ETCD_ENDPOINT.exec(entry);
    const [, scheme = '', host = '', port = ''] = match ?? [];
    if (match === null) return { ok: false, reason: `${describeValue(entry)} is not http(s)://host:port` };
    const bare = host.startsWith('[') ? host.slice(1, -1) : host;
    if (host.startsWith('[') ? ipFamily(bare) !== 6 : ipFamily(bare) === 0 && !isHostName(bare)) {
      return { ok: false, reason: `${describeValue(entry)} has no valid host` };
    }
    if (Number(port) < 1 || Number(port) > 65535) return { ok: false, reason: `${describeValue(entry)} has no valid port` };
    schemes.add(scheme);
    endpoints.push(entry);
  }
  if (schemes.size > 1) return { ok: false, reason: 'it mixes http:// and https://' };
  return { ok: true, endpoints, scheme: schemes.has('https') ? 'https' : 'http' };
}

/** A placeholder that passes `keysProblem`, to check one of its two arguments alone. */
const GOOD_PREFIX = '/';
const GOOD_CLUSTER_NAME = 'group-1';

const FORMATS: readonly FormatSpec[] = [
  {
    name: FORMAT.integer,
    expected: describeInteger,
    check: (value, item) =>
      typeof value === 'number' &&
      Number.isInteger(value) &&
      value >= (item.min ?? 0) &&
      (item.max === undefined || value <= item.max),
    coerce: (value) => (INTEGER_TEXT.test(value) ? Number(value) : value),
  },
  {
    name: FORMAT.boolean,
    expected: () => 'true or false',
    check: (value) => typeof value === 'boolean',
    coerce: (value) => {
      const word = value.trim().toLowerCase();
      if (TRUE_WORDS.has(word)) return true;
      if (FALSE_WORDS.has(word)) return false;
      return value;
    },
  },
  {
    name: FORMAT.nodeName,
    expected: () =>
      `a node name of 1 to ${NODE_NAME_MAX_CHARS} letters, digits, ".", "_" or "-" (starting with a letter or digit)`,
    check: (value) => {
      if (typeof value !== 'string') return false;
      // Named, so a name that looks right on screen but carries a hidden character is explained.
      const hidden = value.match(UNSHOWABLE)?.[0];
      if (hidden !== undefined) return `it contains ${describeChar(hidden)}`;
      return value.length <= NODE_NAME_MAX_CHARS && NODE_NAME.test(value);
    },
  },
  {
    name: FORMAT.ipAddress,
    expected: (item) =>
      item.multicast
        ? 'an IPv4 or IPv6 address such as 192.0.2.12, or a multicast group such as 224.0.0.18'
        : 'an IPv4 or IPv6 address such as 192.0.2.11 (no prefix length)',
    check: checkIpAddress,
  },
  {
    name: FORMAT.cidr,
    expected: () =>
      `an address with its prefix length, such as 192.0.2.100/24 or fd00::100/64 (prefix /${VIP_MIN_PREFIX[4]} to /32 for IPv4, /${VIP_MIN_PREFIX[6]} to /128 for IPv6)`,
    check: (value) => {
      if (typeof value !== 'string') return false;
      const cidr = parseCidr(value);
      if (cidr === null) return value.includes('/') ? false : 'the prefix length is missing';
      return checkVip(cidr);
    },
  },
  {
    name: FORMAT.interfaceName,
    expected: (item) =>
      `a network interface name of 1 to ${IFNAME_MAX_BYTES} printable ASCII characters without "/", ":", "%" or spaces, not starting with "-"${item.optional ? ', or ""' : ''}`,
    check: (value, item) => {
      if (typeof value !== 'string') return false;
      if (item.optional === true && value === '') return true;
      return checkInterfaceName(value);
    },
  },
  {
    name: FORMAT.path,
    expected: (item) => `an absolute file path${item.optional ? ', or "" for none' : ''}`,
    check: (value, item) =>
      typeof value === 'string' &&
      ((item.optional === true && value === '') || (value.startsWith('/') && !value.includes('\0'))),
  },
  {
    name: FORMAT.host,
    expected: (item) => `a host name or IP address${item.optional ? ', or ""' : ''}`,
    check: (value, item) =>
      typeof value === 'string' &&
      ((item.optional === true && value === '') || ipFamily(value) !== 0 || isHostName(value)),
  },
  {
    name: FORMAT.username,
    expected: () => 'a Redis ACL user name without spaces, or "" for the default user',
    check: (value) => typeof value === 'string' && !/\s/.test(value),
  },
  {
    name: FORMAT.groupName,
    expected: (item) => `a Unix group name${item.optional ? ', or "" for none' : ''}`,
    check: (value, item) =>
      typeof value === 'string' && ((item.optional === true && value === '') || /^[a-z_][a-z0-9_.-]{0,31}\$?$/i.test(value)),
  },
  {
    name: FORMAT.oneOf,
    expected: (item) => `one of ${(item.values ?? []).join(', ')}`,
    check: (value, item) => typeof value === 'string' && (item.values ?? []).includes(value),
  },
  {
    name: FORMAT.etcdEndpoints,
    expected: () =>
      'etcd client URLs separated by commas, such as https://192.0.2.20:2379,https://192.0.2.21:2379 ' +
      '(http:// or https://, each with host and port, all of one scheme), or ""',
    check: (value) => {
      if (typeof value !== 'string') return false;
      const parsed = parseEtcdEndpoints(value);
      return parsed.ok ? true : parsed.reason;
    },
  },
  {
    name: FORMAT.etcdPrefix,
    expected: () => 'an etcd key prefix starting with "/", without white space, such as /redis-ha',
    check: (value) => {
      if (typeof value !== 'string') return false;
      const hidden = value.match(UNSHOWABLE)?.[0];
      if (hidden !== undefined) return `it contains ${describeChar(hidden)}`;
      return keysProblem(value, GOOD_CLUSTER_NAME) ?? true;
    },
  },
  {
    name: FORMAT.etcdClusterName,
    expected: () => 'a cluster name of letters, digits, ".", "_" or "-" (starting with a letter or digit), or "" for group-<group.id>',
    check: (value) => typeof value === 'string' && (value === '' || (keysProblem(GOOD_PREFIX, value) ?? true)),
  },
  {
    name: FORMAT.etcdUsername,
    expected: () => 'an etcd user name without white space, or "" for none',
    check: (value) => typeof value === 'string' && !/[\s\p{Cc}\p{Cf}]/u.test(value),
  },
];

const FORMATS_BY_NAME = new Map(FORMATS.map((spec) => [spec.name, spec]));

/**
 * "expected <form>" for a schema item, as problem messages word it. Also used by the
 * loader for values it rejects before convict sees them (a mapping where a number goes).
 */
export function expectedForm(item: ItemParams): string {
  const spec = typeof item.format === 'string' ? FORMATS_BY_NAME.get(item.format) : undefined;
  return spec ? spec.expected(item) : 'a value';
}

/** The problem text (without the key) for a value that does not fit a schema item. */
export function problemText(item: ItemParams, value: unknown, reason?: string): string {
  const shown =
    item.envValue !== undefined
      ? `${JSON.stringify(item.envValue)} (from ${item.env})`
      : typeof value === 'number' && item.writtenValue !== undefined
        ? item.writtenValue
        : describeValue(value);
  const required = (value === null || value === undefined) && item.envValue === undefined ? ' (this key is required)' : '';
  return `expected ${expectedForm(item)}, got ${shown}${reason ? ` (${reason})` : ''}${required}`;
}

let formatsRegistered = false;

/**
 * Registers our formats with convict. Convict's format registry is process-wide, so
 * this runs once; calling it again does nothing.
 */
export function registerFormats(): void {
  if (formatsRegistered) return;
  for (const spec of FORMATS) {
    convict.addFormat({
      name: spec.name,
      validate(value: unknown, item: ItemParams): void {
        const verdict = spec.check(value, item);
        if (verdict === true) return;
        throw new FormatProblem(problemText(item, value, verdict === false ? undefined : verdict));
      },
      ...(spec.coerce ? { coerce: spec.coerce } : {}),
    });
  }
  formatsRegistered = true;
}

type Item<T> = convict.SchemaObj<T> & ItemParams & { doc: string; env: string };

function integerMs(doc: string, env: string, def: number, min: number, max: number): Item<number> {
  return { doc, env, default: def, format: FORMAT.integer, unit: 'ms', min, max };
}

function integer(doc: string, env: string, def: number, min: number, max: number): Item<number> {
  return { doc, env, default: def, format: FORMAT.integer, min, max };
}

function port(doc: string, env: string, def: number): Item<number> {
  return { doc, env, default: def, format: FORMAT.integer, noun: 'a port number', min: 1, max: 65535 };
}

function bool(doc: string, env: string, def: boolean): Item<boolean> {
  return { doc, env, default: def, format: FORMAT.boolean };
}

function text(doc: string, env: string, def: string | null, format: string, params: ItemParams = {}): Item<string> {
  return { doc, env, default: def, format, ...params };
}

/** One of `values`; the item's type is their union, so `RawConfig` and `Config` carry it. */
function oneOf<T extends string>(doc: string, env: string, def: NoInfer<T>, values: readonly T[]): Item<T> {
  return { doc, env, default: def, format: FORMAT.oneOf, values };
}

/** Longest millisecond setting we accept: an hour, far below setTimeout's 2^31-1 ms overflow. */
const HOUR_MS = 3_600_000;
/** Longest pause in a promotion or demotion: ten minutes. */
const TEN_MINUTES_MS = 600_000;
const MINUTE_MS = 60_000;
/**
 * Shortest advert interval: 20 ms, for a dedicated link (`timing.profile: lan-fast`; keepalived's
 * BFD defaults detect a lost peer in ~50 ms). The u16 wire field and the timers go lower; the
 * master-down interval (3 × 20 ms + skew) is then about the scale of a GC pause or a busy host.
 */
export const ADVERT_MIN_INTERVAL_MS = 20;
/** Shortest health-check interval (the lan-fast profile's 20 ms). */
export const HEALTH_MIN_INTERVAL_MS = 20;
/** Shortest stall threshold: the lan-fast profile's master-down interval is about 60 ms. */
export const STALL_MIN_THRESHOLD_MS = 20;

function redisSection(section: 'redis' | 'peer_redis', peer: boolean) {
  const env = `${ENV_PREFIX}${section.toUpperCase()}_`;
  return {
    host: text(
      peer
        ? "Host of the peer's Redis as seen from this node; \"\" means peer.address."
        : 'Host of the local Redis, as this daemon reaches it.',
      `${env}HOST`,
      peer ? '' : '127.0.0.1',
      FORMAT.host,
      { optional: peer },
    ),
    port: port(peer ? "Port of the peer's Redis." : 'Port of the local Redis.', `${env}PORT`, 6379),
    username: text(
      peer
        ? 'ACL user for the peer\'s Redis; "" means the same as redis.username.'
        : 'ACL user (Redis 6+); "" for the default user.',
      `${env}USERNAME`,
      '',
      FORMAT.username,
    ),
    password_file: text(
      peer
        ? `File holding the peer's Redis password; "" means the local Redis password. ${ENV_PREFIX}PEER_REDIS_PASSWORD overrides it.`
        : `File holding the Redis password (one line); "" for none. ${ENV_PREFIX}REDIS_PASSWORD overrides it.`,
      `${env}PASSWORD_FILE`,
      '',
      FORMAT.path,
      { optional: true },
    ),
    tls: bool('Connect with TLS.', `${env}TLS`, false),
    tls_insecure: bool('With tls, skip certificate verification (self-signed labs only).', `${env}TLS_INSECURE`, false),
  };
}

/**
 * The schema, section by section: the one description of the file (`RawConfig` is its
 * type). Required keys have a `null` default, which their format rejects.
 */
const SCHEMA = {
  node: {
    name: text(
      'Unique name of this node; carried in adverts and the audit log.',
      'REDIS_HA_NODE_NAME',
      null,
      FORMAT.nodeName,
    ),
    address: text(
      "This node's own address: the source of adverts and the tie-break between equal priorities.",
      'REDIS_HA_NODE_ADDRESS',
      null,
      FORMAT.ipAddress,
    ),
    priority: integer('Election priority, 1..254; higher wins (RFC 5798 §5.2.4).', 'REDIS_HA_NODE_PRIORITY', 100, 1, 254),
    preempt: bool('Take the master role back from a lower-priority master.', 'REDIS_HA_NODE_PREEMPT', false),
    preempt_delay_ms: integerMs(
      'With preempt, how long this node must be healthy and hear a lower master before taking over.',
      'REDIS_HA_NODE_PREEMPT_DELAY_MS',
      0,
      0,
      HOUR_MS,
    ),
  },
  group: {
    id: integer('Group (virtual router) id; adverts of other groups are ignored.', 'REDIS_HA_GROUP_ID', 51, 1, 255),
  },
  peer: {
    address: text(
      "The other node's address (unicast), or a multicast group address.",
      'REDIS_HA_PEER_ADDRESS',
      null,
      FORMAT.ipAddress,
      { multicast: true },
    ),
  },
  timing: {
    profile: oneOf(
      'Defaults of the timing keys (advert.interval_ms, health.interval_ms, health.timeout_ms, promotion.peer_timeout_ms, stall.threshold_ms): default (the shipped values), fast (100 ms adverts), lan-fast (20 ms adverts, a dedicated loss-free link only). A key set in the file or the environment wins over its profile.',
      'REDIS_HA_TIMING_PROFILE',
      'default',
      TIMING_PROFILES,
    ),
  },
  advert: {
    port: port('UDP port adverts are sent to and received on.', 'REDIS_HA_ADVERT_PORT', 5400),
    interval_ms: integerMs('Interval between adverts.', 'REDIS_HA_ADVERT_INTERVAL_MS', 1000, ADVERT_MIN_INTERVAL_MS, MINUTE_MS),
    key_file: text(
      'Key file, "<id> <secret>" per line; the first key signs, all verify. REDIS_HA_ADVERT_KEY overrides it.',
      'REDIS_HA_ADVERT_KEY_FILE',
      '/etc/redis-ha/advert.key',
      FORMAT.path,
    ),
    multicast_interface: text(
      'Interface for multicast adverts (only with a multicast peer.address); "" lets the kernel choose.',
      'REDIS_HA_ADVERT_MULTICAST_INTERFACE',
      '',
      FORMAT.interfaceName,
      { optional: true },
    ),
  },
  redis: redisSection('redis', false),
  peer_redis: redisSection('peer_redis', true),
  health: {
    interval_ms: integerMs('Time between health checks of the local Redis.', 'REDIS_HA_HEALTH_INTERVAL_MS', 500, HEALTH_MIN_INTERVAL_MS, MINUTE_MS),
    timeout_ms: integerMs('Time a health check may take before it counts as failed.', 'REDIS_HA_HEALTH_TIMEOUT_MS', 300, 10, MINUTE_MS),
    fall: integer('Consecutive failed checks before FAULT.', 'REDIS_HA_HEALTH_FALL', 2, 1, 100),
    rise: integer('Consecutive good checks before leaving FAULT.', 'REDIS_HA_HEALTH_RISE', 2, 1, 100),
  },
  vip: {
    address: text('The virtual address with its prefix length.', 'REDIS_HA_VIP_ADDRESS', null, FORMAT.cidr),
    interface: text('Interface the VIP is added to.', 'REDIS_HA_VIP_INTERFACE', null, FORMAT.interfaceName),
    garp_count: integer('Gratuitous ARP / unsolicited NA packets sent on each claim.', 'REDIS_HA_VIP_GARP_COUNT', 3, 0, 100),
    garp_interval_ms: integerMs('Time between those packets.', 'REDIS_HA_VIP_GARP_INTERVAL_MS', 200, 0, 10_000),
    garp_refresh_ms: integerMs(
      'Re-announce the VIP this often while master; 0 turns the refresh off.',
      'REDIS_HA_VIP_GARP_REFRESH_MS',
      10_000,
      0,
      HOUR_MS,
    ),
    fault_hold_ms: integerMs(
      'When the master finds its Redis gone (connection refused), keep the VIP this long, refusing every connection to it on redis.port with a TCP reset (nftables), so clients retry at once until the peer announces the VIP instead of waiting out a connect timeout; 0 releases it at once.',
      'REDIS_HA_VIP_FAULT_HOLD_MS',
      DEFAULT_FAULT_VIP_HOLD_MS,
      0,
      2_000,
    ),
  },
  promotion: {
    wait_for_sync: bool(
      'Before REPLICAOF NO ONE, catch up with a still-reachable peer master.',
      'REDIS_HA_PROMOTION_WAIT_FOR_SYNC',
      true,
    ),
    max_sync_wait_ms: integerMs(
      'Upper bound on that catch-up; promotion goes ahead (audited) when it runs out.',
      'REDIS_HA_PROMOTION_MAX_SYNC_WAIT_MS',
      5000,
      0,
      TEN_MINUTES_MS,
    ),
    peer_timeout_ms: integerMs(
      "Connect/command timeout for the peer's Redis during promotion.",
      'REDIS_HA_PROMOTION_PEER_TIMEOUT_MS',
      100,
      10,
      MINUTE_MS,
    ),
    pre_delay_ms: integerMs(
      'Blind pause before promoting (the classic recipe\'s "sleep 15"); 0 = off.',
      'REDIS_HA_PROMOTION_PRE_DELAY_MS',
      0,
      0,
      TEN_MINUTES_MS,
    ),
    sync_delay_ms: integerMs(
      'Pause between REPLICAOF peer and REPLICAOF NO ONE (the classic "sleep 10"); 0 = off.',
      'REDIS_HA_PROMOTION_SYNC_DELAY_MS',
      0,
      0,
      TEN_MINUTES_MS,
    ),
    max_lag_bytes: integer(
      'An automatic takeover (the master silent or FAULT) is held back when this replica was further behind the master than this many bytes when it last heard it (what the takeover would lose); 2^50 = never held.',
      'REDIS_HA_PROMOTION_MAX_LAG_BYTES',
      1024 * 1024,
      0,
      2 ** 50,
    ),
    recovery_block_ms: integerMs(
      'After an automatic takeover, no other automatic takeover in the pair for this long (orchestrator\'s RecoveryPeriodBlockSeconds): a master whose Redis hangs again and again moves at most once; 0 = off.',
      'REDIS_HA_PROMOTION_RECOVERY_BLOCK_MS',
      60_000,
      0,
      24 * HOUR_MS,
    ),
  },
  demotion: {
    delay_ms: integerMs(
      'Pause between releasing the VIP and REPLICAOF <master>; 0 = off.',
      'REDIS_HA_DEMOTION_DELAY_MS',
      0,
      0,
      TEN_MINUTES_MS,
    ),
  },
  reconcile: {
    interval_ms: integerMs(
      'How often desired and actual VIP/Redis state are compared and repaired.',
      'REDIS_HA_RECONCILE_INTERVAL_MS',
      2000,
      100,
      TEN_MINUTES_MS,
    ),
  },
  control: {
    socket: text('Unix socket the CLI talks to the daemon through.', 'REDIS_HA_CONTROL_SOCKET', '/run/redis-ha/control.sock', FORMAT.path),
    group: text(
      'Group that owns the control socket (mode 0660) and may run switchover and maintenance; "" for none (root and the daemon user only).',
      'REDIS_HA_CONTROL_GROUP',
      '',
      FORMAT.groupName,
      { optional: true },
    ),
  },
  switchover: {
    timeout_ms: integerMs(
      'Default bound on the write pause and catch-up of a planned switchover (redis-ha switchover --timeout).',
      'REDIS_HA_SWITCHOVER_TIMEOUT_MS',
      5000,
      100,
      TEN_MINUTES_MS,
    ),
    method: oneOf(
      'auto: Redis FAILOVER on 6.2 and newer, CLIENT PAUSE otherwise; failover or pause to force one.',
      'REDIS_HA_SWITCHOVER_METHOD',
      'auto',
      SWITCHOVER_METHODS,
    ),
    max_lag_bytes: integer(
      'A switchover is refused (without --force) when the replica is further behind than this many bytes.',
      'REDIS_HA_SWITCHOVER_MAX_LAG_BYTES',
      16 * 1024 * 1024,
      0,
      2 ** 40,
    ),
    max_ack_age_s: integer(
      "A switchover is refused (without --force) when the replica's last acknowledgement is older than this (seconds, Redis INFO lag=).",
      'REDIS_HA_SWITCHOVER_MAX_ACK_AGE_S',
      2,
      0,
      3600,
    ),
  },
  metrics: {
    enabled: bool('Serve Prometheus metrics over HTTP (/metrics).', 'REDIS_HA_METRICS_ENABLED', false),
    listen: text('Address the metrics endpoint binds; loopback by default.', 'REDIS_HA_METRICS_LISTEN', '127.0.0.1', FORMAT.ipAddress),
    port: port('Port of the metrics endpoint.', 'REDIS_HA_METRICS_PORT', 9405),
  },
  stall: {
    threshold_ms: integerMs(
      'An event-loop stall longer than this (VM pause, SIGSTOP) makes the daemon re-verify the peer and Redis before acting on timers that fired late.',
      'REDIS_HA_STALL_THRESHOLD_MS',
      1000,
      STALL_MIN_THRESHOLD_MS,
      MINUTE_MS,
    ),
  },
  quorum: {
    backend: oneOf(
      'none: the pair decides alone (see prefer); etcd: a node is master only while it holds the leader key in etcd.',
      'REDIS_HA_QUORUM_BACKEND',
      'none',
      QUORUM_BACKENDS,
    ),
    prefer: oneOf(
      'With backend none: safety (an isolated master, or one that lost its replica, refuses writes) or availability (both sides of a partition may serve writes; one side\'s are lost at the heal).',
      'REDIS_HA_QUORUM_PREFER',
      'availability',
      QUORUM_PREFERENCES,
    ),
    etcd: {
      endpoints: {
        ...text(
          'etcd client URLs, comma-separated (a YAML list works too): http(s)://host:port, all of one scheme. Required with backend etcd.',
          'REDIS_HA_QUORUM_ETCD_ENDPOINTS',
          '',
          FORMAT.etcdEndpoints,
        ),
        list: true,
      },
      prefix: text('Prefix of the etcd keys; the leader key is <prefix>/<cluster_name>/leader.', 'REDIS_HA_QUORUM_ETCD_PREFIX', '/redis-ha', FORMAT.etcdPrefix),
      cluster_name: text(
        'Name of this pair in etcd (one leader key per pair); "" means group-<group.id>.',
        'REDIS_HA_QUORUM_ETCD_CLUSTER_NAME',
        '',
        FORMAT.etcdClusterName,
      ),
      username: text('etcd user (etcd\'s own authentication); "" for none.', 'REDIS_HA_QUORUM_ETCD_USERNAME', '', FORMAT.etcdUsername),
      password_file: text(
        'File holding the etcd user\'s password (one line, mode 0600); required with username.',
        'REDIS_HA_QUORUM_ETCD_PASSWORD_FILE',
        '',
        FORMAT.path,
        { optional: true },
      ),
      ca_file: text(
        'PEM file of the CA that signed the etcd servers\' certificates; required with https:// endpoints.',
        'REDIS_HA_QUORUM_ETCD_CA_FILE',
        '',
        FORMAT.path,
        { optional: true },
      ),
      cert_file: text(
        'PEM client certificate for etcd (--client-cert-auth); with key_file.',
        'REDIS_HA_QUORUM_ETCD_CERT_FILE',
        '',
        FORMAT.path,
        { optional: true },
      ),
      key_file: text(
        'PEM private key of cert_file (mode 0600); with cert_file.',
        'REDIS_HA_QUORUM_ETCD_KEY_FILE',
        '',
        FORMAT.path,
        { optional: true },
      ),
      lease_ttl_s: integer(
        'TTL of the leader key\'s lease, whole seconds: a dead master\'s key is gone this long (plus etcd\'s expiry check) after its last renewal.',
        'REDIS_HA_QUORUM_ETCD_LEASE_TTL_S',
        3,
        1,
        60,
      ),
      renew_interval_ms: integerMs('Time between lease renewals (keepalives).', 'REDIS_HA_QUORUM_ETCD_RENEW_INTERVAL_MS', 500, 50, 30_000),
      call_timeout_ms: integerMs('Deadline of each etcd call.', 'REDIS_HA_QUORUM_ETCD_CALL_TIMEOUT_MS', 500, 50, 30_000),
      election_timeout_ms: integerMs(
        "The etcd cluster's --election-timeout (etcd's default 1000), for the timing rule: an etcd leader election must not lapse the lease.",
        'REDIS_HA_QUORUM_ETCD_ELECTION_TIMEOUT_MS',
        1000,
        50,
        MINUTE_MS,
      ),
    },
  },
  audit: {
    path: text('Append-only JSON-lines audit log.', 'REDIS_HA_AUDIT_PATH', '/var/log/redis-ha/audit.jsonl', FORMAT.path),
    // Issue 10, item 6: a keyed (HMAC) audit chain; read by AuditLog.fromConfig (src/adapters/audit.ts).
    key_file: text(
      'File holding the audit chain key (one line, a secret of at least 128 bits as an advert key, mode 0600); records are then keyed with HMAC-SHA256. "" for an unkeyed chain.',
      'REDIS_HA_AUDIT_KEY_FILE',
      '',
      FORMAT.path,
      { optional: true },
    ),
  },
  state: {
    path: text('JSON file holding the promotion epoch across restarts.', 'REDIS_HA_STATE_PATH', '/var/lib/redis-ha/state.json', FORMAT.path),
  },
  log: {
    level: oneOf('Log level.', 'REDIS_HA_LOG_LEVEL', 'info', LOG_LEVELS),
  },
} satisfies Readonly<Record<string, Readonly<Record<string, SchemaItem | Readonly<Record<string, SchemaItem>>>>>>;

/** A schema item as the loader sees it: convict's fields plus our parameters. */
export type SchemaItem = convict.SchemaObj & ItemParams & { readonly doc: string; readonly env: string };

/** Whether a schema node is an item (it has a default) rather than a subsection. */
function isItem(node: object): node is SchemaItem {
  return 'default' in node;
}

/**
 * Section path -> key name -> schema item, for the loader's structural checks and
 * `check-config`. A subsection is listed under its dotted path (`quorum.etcd`), after
 * its section; a section's own map holds its items only (see `schemaSubsections()`).
 */
export function schemaItems(): ReadonlyMap<string, ReadonlyMap<string, SchemaItem>> {
  const sections = new Map<string, Map<string, SchemaItem>>();
  const walk = (path: string, body: object): void => {
    const items = new Map<string, SchemaItem>();
    sections.set(path, items);
    for (const [key, node] of Object.entries(body) as [string, object][]) {
      if (isItem(node)) items.set(key, node);
      else walk(`${path}.${key}`, node);
    }
  };
  for (const [section, body] of Object.entries(SCHEMA)) walk(section, body);
  return sections;
}

/** Section path -> the names of its subsections (`quorum` -> `etcd`); sections without any are absent. */
export function schemaSubsections(): ReadonlyMap<string, readonly string[]> {
  const subsections = new Map<string, string[]>();
  for (const path of schemaItems().keys()) {
    const dot = path.lastIndexOf('.');
    if (dot < 0) continue;
    const parent = path.slice(0, dot);
    subsections.set(parent, [...(subsections.get(parent) ?? []), path.slice(dot + 1)]);
  }
  return subsections;
}

/**
 * The schema to hand to convict for one load. Items whose environment variable is set
 * in `env` carry its raw text (`envValue`), and numbers in the file their source text
 * (`writtenValue`, from `written`: `section.key` -> text), so a bad value is quoted as
 * written; `defaults` (`section.key` -> value) replaces the defaults of those keys (the
 * timing profile's, `profiles.ts`). Registers our formats first (convict refuses unknown
 * format names).
 */
export function buildSchema(
  env: NodeJS.ProcessEnv,
  written: ReadonlyMap<string, string> = new Map(),
  defaults: ReadonlyMap<string, unknown> = new Map(),
): convict.Schema<RawConfig> {
  registerFormats();
  const schema: Record<string, unknown> = {};
  for (const [path, keys] of schemaItems()) {
    let target = schema;
    for (const part of path.split('.')) target = (target[part] ??= {}) as Record<string, unknown>;
    for (const [key, item] of keys) {
      const envValue = env[item.env];
      const writtenValue = written.get(`${path}.${key}`);
      const profileDefault = defaults.get(`${path}.${key}`);
      target[key] = {
        ...item,
        ...(profileDefault === undefined ? {} : { default: profileDefault }),
        ...(envValue === undefined ? {} : { envValue }),
        ...(writtenValue === undefined ? {} : { writtenValue }),
      };
    }
  }
  return schema as unknown as convict.Schema<RawConfig>;
}
