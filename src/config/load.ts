/**
 * Loads the configuration: YAML (or JSON) text -> convict validation with environment
 * overrides -> cross-field checks -> secrets -> the deep-frozen `Config`.
 *
 * Every stage collects problems instead of stopping at the first, and the caller gets
 * one `ConfigError` listing all of them, each worded `<key>: expected <form>, got
 * <value>` so an operator can fix the whole file in one pass (like `keepalived -t`).
 *
 * Secrets never appear in the YAML file: the Redis passwords come from files named by
 * `redis.password_file` / `peer_redis.password_file` or from `REDIS_HA_REDIS_PASSWORD`
 * / `REDIS_HA_PEER_REDIS_PASSWORD`; the advert keys from `advert.key_file` or
 * `REDIS_HA_ADVERT_KEY`. An environment variable wins over the file it replaces (and
 * the file is then not read), as every `REDIS_HA_*` override wins over the YAML.
 */
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import convict from 'convict';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { ConfigError, errorMessage } from '../errors.js';
import { canonicalIp, ipFamily, isMulticastAddress } from '../net/address.js';
import { readKeyFile, SECRET_EXPECTED, secretWeakness } from './keys.js';
import { describeFsError, readSecretFile as readSecretFileText } from './secret-file.js';
import { buildSchema, describeValue, parseCidr, problemText, schemaItems, type RawConfig, type RawRedis } from './schema.js';
import { camelize, type Agrees, type ShapeProblems } from './shape.js';
import type { AdvertKey, Config, RedisEndpoint } from './types.js';

/** Environment variable holding the local Redis password (wins over `redis.password_file`). */
export const REDIS_PASSWORD_ENV = 'REDIS_HA_REDIS_PASSWORD';
/** Environment variable holding the peer's Redis password (wins over `peer_redis.password_file`). */
export const PEER_REDIS_PASSWORD_ENV = 'REDIS_HA_PEER_REDIS_PASSWORD';
/** Environment variable holding a single advert secret, used as key id 1 (wins over `advert.key_file`). */
export const ADVERT_KEY_ENV = 'REDIS_HA_ADVERT_KEY';
/** The key id an `REDIS_HA_ADVERT_KEY` secret gets. */
const ENV_ADVERT_KEY_ID = 1;

/** Keys that look like secrets, and where the secret belongs instead. */
const MISPLACED_SECRETS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  redis: { password: `the file named by redis.password_file, or the environment variable ${REDIS_PASSWORD_ENV}` },
  peer_redis: {
    password: `the file named by peer_redis.password_file, or the environment variable ${PEER_REDIS_PASSWORD_ENV}`,
  },
  advert: {
    key: `the file named by advert.key_file, or the environment variable ${ADVERT_KEY_ENV}`,
    secret: `the file named by advert.key_file, or the environment variable ${ADVERT_KEY_ENV}`,
  },
};

type Mapping = Record<string, unknown>;

/**
 * Names that would set an object's prototype if copied by assignment (the YAML parser
 * keeps them as plain keys); reported as unknown here, never handed on.
 */
const RESERVED_NAMES: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !ArrayBuffer.isView(value) && !(value instanceof Date);
}

/**
 * Reads, parses and validates the configuration file at `path`, applying `REDIS_HA_*`
 * overrides from `env` and reading the secrets it names.
 *
 * @throws ConfigError listing every problem found (exit status 78).
 */
export function loadConfig(path: string, env: NodeJS.ProcessEnv = process.env): Config {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError([`${path}: expected a readable configuration file, got an error (${describeFsError(error)})`], path);
  }
  // Editors on some systems save a byte-order mark; it is not part of the document.
  const parsed = parseConfigText(text.replace(/^\uFEFF/, ''), path);
  if (!parsed.ok) throw new ConfigError(parsed.problems, path);
  return buildConfig(parsed.value, env, path, parsed.written);
}

/**
 * `section.key` -> the source text of each number in the file, as the operator wrote it.
 * A problem quotes that rather than the parsed value, which JavaScript may spell
 * otherwise (`1e+23` for `100000000000000000000000`, `Infinity` for `1e999`, `16` for
 * `0x10`).
 */
export type WrittenNumbers = ReadonlyMap<string, string>;

/** The source text of every number one level down (`section: { key: <number> }`). */
function writtenNumbers(doc: Document, text: string): WrittenNumbers {
  const written = new Map<string, string>();
  if (!isMap(doc.contents)) return written;
  for (const section of doc.contents.items) {
    if (!isScalar(section.key) || !isMap(section.value)) continue;
    for (const item of section.value.items) {
      const value = item.value;
      if (!isScalar(item.key) || !isScalar(value) || typeof value.value !== 'number' || value.range == null) continue;
      written.set(`${String(section.key.value)}.${String(item.key.value)}`, text.slice(value.range[0], value.range[1]));
    }
  }
  return written;
}

/**
 * Parses YAML, or JSON when the file name ends in `.json` or the text starts with `{`
 * (JSON is parsed strictly, with the same parser, so errors carry line and column).
 */
export function parseConfigText(
  text: string,
  source: string,
):
  | { readonly ok: true; readonly value: unknown; readonly written: WrittenNumbers }
  | { readonly ok: false; readonly problems: readonly string[] } {
  const json = extname(source).toLowerCase() === '.json' || /^\s*\{/.test(text);
  const language = json ? 'JSON' : 'YAML';
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    prettyErrors: false,
    lineCounter,
    uniqueKeys: true,
    schema: json ? 'json' : 'core',
  });
  const problems = [...doc.errors, ...doc.warnings].map((error) => {
    const { line, col } = lineCounter.linePos(error.pos[0]);
    return `${source}:${line}:${col}: ${language} syntax error: ${error.message}`;
  });
  if (problems.length > 0) return { ok: false, problems };
  if (json) {
    // The YAML parser forgives some JSON mistakes (a trailing comma); JSON.parse does not.
    const strict = strictJsonProblem(text, source);
    if (strict !== null) return { ok: false, problems: [strict] };
  }
  try {
    return { ok: true, value: doc.toJS({ maxAliasCount: 100 }), written: writtenNumbers(doc, text) };
  } catch (error) {
    // Unresolved aliases and alias bombs only surface when the document is converted.
    return { ok: false, problems: [`${source}: ${language} error: ${errorMessage(error)}`] };
  }
}

/** `JSON.parse`'s complaint about `text`, worded like the YAML ones, or `null` when it parses. */
function strictJsonProblem(text: string, source: string): string | null {
  try {
    JSON.parse(text);
    return null;
  } catch (error) {
    const message = errorMessage(error);
    const position = /at position (\d+)/.exec(message)?.[1];
    // V8 sometimes quotes the whole text back ('"{...}" is not valid JSON'): drop that.
    const reason = message.replace(/ in JSON at position \d+.*$/, '').replace(/, ".*" is not valid JSON$/s, '');
    let at = '';
    if (position !== undefined) {
      const before = text.slice(0, Number(position)).split('\n');
      at = `:${before.length}:${(before.at(-1)?.length ?? 0) + 1}`;
    }
    return `${source}${at}: JSON syntax error: ${reason}`;
  }
}

/**
 * Validates an already-parsed document (an object shaped like the YAML file) exactly
 * as `loadConfig` does. `source` names the file in the result and in errors; `null`
 * for configurations built in code. `written` holds the numbers' source text, which
 * problems quote (`parseConfigText` gives it).
 *
 * @throws ConfigError listing every problem found.
 */
export function buildConfig(
  raw: unknown,
  env: NodeJS.ProcessEnv = process.env,
  source: string | null = null,
  written: WrittenNumbers = new Map(),
): Config {
  const problems: string[] = [];
  /** Keys already reported: convict and the cross-field checks stay quiet about them. */
  const bad = new Set<string>();

  const document = prepareDocument(raw, problems, bad);
  if (document === null) throw new ConfigError(problems, source);

  const config = convict<RawConfig>(buildSchema(env, written), { env, args: [] });
  config.load(document);
  try {
    config.validate({ allowed: 'strict', output: () => undefined });
  } catch (error) {
    reportConvictErrors(errorMessage(error), problems, bad);
  }
  const props = config.getProperties();

  checkCrossFields(props, problems, bad, (key, value) => shownNumber(key, value, env, written));
  const secrets = readSecrets(props, env, problems, bad);

  if (problems.length > 0 || secrets === null) throw new ConfigError(problems, source);
  return deepFreeze(toConfig(props, secrets, source));
}

/**
 * Shape checks convict cannot make (it crashes on a mapping where a value goes, and
 * reports a section replaced by a scalar as a pile of missing keys), and secrets
 * written into the file. Returns the document to hand to convict, or `null` when the
 * top level is not a mapping at all. An empty value (`priority:`) means the default.
 */
function prepareDocument(raw: unknown, problems: string[], bad: Set<string>): Mapping | null {
  if (raw === null || raw === undefined) return {};
  const sections = schemaItems();
  if (!isMapping(raw)) {
    problems.push(`(top level): expected a mapping of sections (${[...sections.keys()].join(', ')}), got ${describeValue(raw)}`);
    return null;
  }
  const document: Mapping = {};
  for (const [section, body] of Object.entries(raw)) {
    const items = sections.get(section);
    if (items === undefined && RESERVED_NAMES.has(section)) {
      problems.push(`${section}: unknown section, expected one of ${[...sections.keys()].join(', ')}`);
      continue;
    }
    if (items === undefined) {
      document[section] = body; // convict reports unknown sections (allowed: 'strict')
      continue;
    }
    if (body === null || body === undefined) continue;
    if (!isMapping(body)) {
      problems.push(`${section}: expected a mapping of keys (${[...items.keys()].join(', ')}), got ${describeValue(body)}`);
      for (const key of items.keys()) bad.add(`${section}.${key}`);
      continue;
    }
    const kept: Mapping = {};
    for (const [key, value] of Object.entries(body)) {
      const name = `${section}.${key}`;
      const homes = MISPLACED_SECRETS[section];
      const secretHome = homes !== undefined && Object.hasOwn(homes, key) ? homes[key] : undefined;
      if (secretHome !== undefined) {
        problems.push(`${name}: expected no secrets in the configuration file (put it in ${secretHome}), got a secret (not shown)`);
        bad.add(name);
        continue;
      }
      const item = items.get(key);
      if (item === undefined && RESERVED_NAMES.has(key)) {
        problems.push(`${name}: unknown key, expected one of ${[...items.keys()].join(', ')}`);
        continue;
      }
      if (item !== undefined && (value === null || value === undefined)) continue;
      if (item !== undefined && typeof value === 'object') {
        problems.push(`${name}: ${problemText(item, value)}`);
        bad.add(name);
        continue;
      }
      kept[key] = value;
    }
    document[section] = kept;
  }
  return document;
}

const UNDECLARED = /^configuration param '(.+)' not declared in the schema$/;
const MISSING = /^configuration param '(.+)' missing from config/;

/**
 * Turns convict's validation message (one problem per line) into ours. Our formats
 * already word their lines `<key>: expected ..., got ...`; convict's own lines for
 * unknown and missing keys are reworded here.
 */
function reportConvictErrors(message: string, problems: string[], bad: Set<string>): void {
  const sections = schemaItems();
  const reportedUnknown = new Set<string>();
  for (const line of message.split('\n')) {
    if (line === '') continue;
    const undeclared = UNDECLARED.exec(line);
    if (undeclared?.[1] !== undefined) {
      const [section = '', key] = undeclared[1].split('.');
      const items = sections.get(section);
      const name = items === undefined || key === undefined ? section : `${section}.${key}`;
      if (reportedUnknown.has(name) || bad.has(name)) continue;
      reportedUnknown.add(name);
      const choices = items === undefined ? [...sections.keys()] : [...items.keys()];
      const guess = suggest(items === undefined ? section : (key ?? ''), choices);
      problems.push(
        `${name}: unknown ${items === undefined ? 'section' : 'key'}, expected one of ${choices.join(', ')}` +
          (guess === null ? '' : ` (did you mean ${guess}?)`),
      );
      continue;
    }
    const missing = MISSING.exec(line);
    if (missing?.[1] !== undefined) {
      problems.push(`${missing[1]}: expected a value, got nothing (was its section replaced by a single value?)`);
      bad.add(missing[1]);
      continue;
    }
    const name = line.slice(0, line.indexOf(': '));
    if (bad.has(name)) continue;
    bad.add(name);
    problems.push(line);
  }
}

/** The known name closest to a misspelt one (`intervalMs`, `interval` -> `interval_ms`), if any is close. */
function suggest(wrong: string, choices: readonly string[]): string | null {
  const squash = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const choice of choices) {
    if (squash(choice) === squash(wrong)) return choice;
    const distance = editDistance(squash(wrong), squash(choice));
    if (distance < bestDistance) {
      best = choice;
      bestDistance = distance;
    }
  }
  // Short names are one typo away from many others: allow a third of the length, at least one.
  const near = Math.max(1, Math.floor(wrong.length / 3));
  const prefix = choices.find((choice) => wrong.length >= 3 && squash(choice).startsWith(squash(wrong)));
  return bestDistance <= near ? best : (prefix ?? null);
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** A number as the operator gave it: the environment override's text, the file's source text, or the value. */
function shownNumber(key: string, value: number, env: NodeJS.ProcessEnv, written: WrittenNumbers): string {
  const [section = '', name = ''] = key.split('.');
  const item = schemaItems().get(section)?.get(name);
  const fromEnv = item === undefined ? undefined : env[item.env];
  if (fromEnv !== undefined) return `${JSON.stringify(fromEnv)} (from ${item?.env})`;
  return written.get(key) ?? String(value);
}

/** Checks that involve more than one key; each runs only when its keys are valid on their own. */
function checkCrossFields(
  props: RawConfig,
  problems: string[],
  bad: Set<string>,
  shown: (key: string, value: number) => string,
): void {
  const valid = (...keys: string[]): boolean => keys.every((key) => !bad.has(key));
  const fail = (key: string, text: string): void => {
    problems.push(`${key}: ${text}`);
    bad.add(key);
  };
  const node = canonicalIp(props.node.address ?? '');
  const peer = canonicalIp(props.peer.address ?? '');
  const nodeFamily = ipFamily(node);

  if (valid('node.address', 'peer.address')) {
    if (node === peer) {
      fail('peer.address', `expected the other node's address, got ${JSON.stringify(props.peer.address)} (the same as node.address)`);
    } else if (ipFamily(peer) !== nodeFamily) {
      fail('peer.address', `expected an IPv${nodeFamily} address like node.address, got ${JSON.stringify(props.peer.address)}`);
    }
  }

  const vip = valid('vip.address') ? parseCidr(props.vip.address) : null;
  if (vip !== null && valid('node.address')) {
    if (vip.address === node) {
      fail('vip.address', `expected an address no node owns, got ${JSON.stringify(props.vip.address)} (it is node.address)`);
    } else if (vip.family !== nodeFamily) {
      fail('vip.address', `expected an IPv${nodeFamily} address like node.address, got ${JSON.stringify(props.vip.address)}`);
    }
  }
  if (vip !== null && valid('vip.address', 'peer.address') && vip.address === peer) {
    fail('vip.address', `expected an address no node owns, got ${JSON.stringify(props.vip.address)} (it is peer.address)`);
  }

  // A multicast group cannot be where the local Redis replicates from.
  if (valid('peer.address', 'peer_redis.host') && props.peer_redis.host === '' && isMulticastAddress(peer)) {
    fail(
      'peer_redis.host',
      `expected the peer's Redis host (required when peer.address is the multicast group ${peer}), got ""`,
    );
  }

  if (valid('redis.host', 'redis.port', 'peer_redis.host', 'peer_redis.port', 'peer.address', 'node.address')) {
    const peerHost = canonicalIp(props.peer_redis.host === '' ? peer : props.peer_redis.host);
    const selves = new Set([canonicalIp(props.redis.host), node]);
    if (selves.has(peerHost) && props.peer_redis.port === props.redis.port) {
      fail(
        'peer_redis.host',
        `expected the peer's Redis, got ${peerHost}:${props.peer_redis.port} (this node's own Redis: it would replicate from itself)`,
      );
    }
  }

  // A check that may outlast the interval would overlap the next one (or stretch the
  // cadence), and fall × interval would no longer bound the time to detect a dead
  // Redis. A timeout equal to the interval is fine: checks run one at a time and the
  // next starts as the previous one times out.
  if (valid('health.timeout_ms', 'health.interval_ms') && props.health.timeout_ms > props.health.interval_ms) {
    fail(
      'health.timeout_ms',
      `expected at most health.interval_ms (${shown('health.interval_ms', props.health.interval_ms)}), got ${shown('health.timeout_ms', props.health.timeout_ms)}`,
    );
  }
}

/** Passwords and advert keys, read once the keys naming them are known to be valid. */
interface Secrets {
  readonly redisPassword: string | null;
  readonly peerRedisPassword: string | null;
  readonly advertKeys: readonly AdvertKey[];
}

/** A non-empty environment variable, or `null` (an empty one counts as unset, as in shells). */
function envSecret(env: NodeJS.ProcessEnv, name: string): string | null {
  const value = env[name];
  return value === undefined || value === '' ? null : value;
}

/**
 * Reads a one-line secret file under the secret-file rule (`secret-file.ts`: a regular
 * file only its owner can access); `undefined` (after reporting) when that fails.
 */
function readSecretFile(key: string, path: string, what: string, env: NodeJS.ProcessEnv, problems: string[]): string | undefined {
  const read = readSecretFileText(key, path, `file holding ${what}`, env);
  problems.push(...read.problems);
  if (read.text === null || read.problems.length > 0) return undefined;
  // `echo secret > file` leaves a newline; it is not part of the secret.
  const secret = read.text.replace(/[\r\n]+$/, '');
  if (secret === '') {
    problems.push(`${key}: expected a file holding ${what}, got ${JSON.stringify(path)} (the file is empty)`);
    return undefined;
  }
  if (/[\r\n]/.test(secret)) {
    problems.push(`${key}: expected ${what} on one line, got ${JSON.stringify(path)} with several lines`);
    return undefined;
  }
  return secret;
}

function readSecrets(props: RawConfig, env: NodeJS.ProcessEnv, problems: string[], bad: Set<string>): Secrets | null {
  let ok = true;
  const password = (section: 'redis' | 'peer_redis', envName: string, what: string): string | null => {
    const fromEnv = envSecret(env, envName);
    if (fromEnv !== null) {
      if (/[\r\n]/.test(fromEnv)) {
        problems.push(`${envName}: expected ${what} on one line, got several lines (not shown)`);
        ok = false;
      }
      return fromEnv;
    }
    const key = `${section}.password_file`;
    const path = props[section].password_file;
    if (bad.has(key) || path === '') return null;
    const secret = readSecretFile(key, path, what, env, problems);
    if (secret === undefined) ok = false;
    return secret ?? null;
  };
  const redisPassword = password('redis', REDIS_PASSWORD_ENV, 'the Redis password');
  const peerRedisPassword = password('peer_redis', PEER_REDIS_PASSWORD_ENV, "the peer's Redis password") ?? redisPassword;

  let advertKeys: readonly AdvertKey[] = [];
  const envKey = envSecret(env, ADVERT_KEY_ENV);
  if (envKey !== null) {
    const weakness = /\s/.test(envKey) ? 'white space in it' : secretWeakness(envKey);
    if (weakness !== null) {
      problems.push(`${ADVERT_KEY_ENV}: expected ${SECRET_EXPECTED} without spaces, got ${weakness} (not shown)`);
      ok = false;
    } else {
      advertKeys = [Object.freeze({ id: ENV_ADVERT_KEY_ID, secret: Buffer.from(envKey, 'utf8') })];
    }
  } else if (!bad.has('advert.key_file')) {
    const result = readKeyFile(props.advert.key_file, env);
    if (result.ok) advertKeys = result.keys;
    else {
      problems.push(...result.problems);
      ok = false;
    }
  } else {
    ok = false;
  }
  return ok ? { redisPassword, peerRedisPassword, advertKeys } : null;
}

function endpoint(raw: RawRedis, host: string, password: string | null, username: string): RedisEndpoint {
  return {
    host,
    port: raw.port,
    password,
    username: nullIfEmpty(username),
    tls: raw.tls,
    tlsInsecure: raw.tls_insecure,
  };
}

/**
 * Where `Config` departs from the file, by file section: file keys it carries otherwise
 * (`converted`) and keys of its own (`added`). Every other key is the file's key in
 * camelCase with the file's type (`camelize`). `ConfigShapeCheck` holds `Config`'s type
 * to this table and the schema; `test/config/shape.test.ts` holds loaded values to it.
 */
export const CONFIG_DEPARTURES = {
  // "" (let the kernel choose) becomes null; the keys are read from key_file (or the environment).
  advert: { converted: ['multicast_interface'], added: ['keys'] },
  // The password is read from password_file (or the environment); "" user becomes null (peer: the local user).
  redis: { converted: ['password_file', 'username'], added: ['password'] },
  // peer_redis.host "" also becomes peer.address, with the same type, so it is not listed.
  peer_redis: { converted: ['password_file', 'username'], added: ['password'] },
  // address/prefix is split; the family follows from the address.
  vip: { converted: [], added: ['prefixLength', 'family'] },
  // "" (no group) becomes null.
  control: { converted: ['group'], added: [] },
} as const;

type DeparturesOf<T> = {
  [S in keyof T]: T[S] extends { converted: readonly (infer C)[]; added: readonly (infer A)[] } ? { converted: C; added: A } : never;
};

/**
 * Compiles only when `Config` (`types.ts`) has exactly the schema's sections and keys,
 * in camelCase and of the same types, but for `CONFIG_DEPARTURES` (and its own
 * `source`); otherwise tsc names each key that differs.
 */
export type ConfigShapeCheck = Agrees<ShapeProblems<RawConfig, Config, DeparturesOf<typeof CONFIG_DEPARTURES>, 'source'>>;

function nullIfEmpty(value: string): string | null {
  return value === '' ? null : value;
}

/** The camelCase view; only called on a configuration without problems. */
function toConfig(props: RawConfig, secrets: Secrets, source: string | null): Config {
  const vip = parseCidr(props.vip.address);
  if (vip === null) throw new Error(`vip.address ${props.vip.address} passed validation but does not parse`);
  const peerAddress = canonicalIp(props.peer.address);
  return {
    source,
    node: { ...camelize(props.node), address: canonicalIp(props.node.address) },
    group: camelize(props.group),
    peer: { address: peerAddress },
    advert: {
      ...camelize(props.advert),
      keys: secrets.advertKeys,
      multicastInterface: nullIfEmpty(props.advert.multicast_interface),
    },
    redis: endpoint(props.redis, canonicalIp(props.redis.host), secrets.redisPassword, props.redis.username),
    peerRedis: endpoint(
      props.peer_redis,
      props.peer_redis.host === '' ? peerAddress : canonicalIp(props.peer_redis.host),
      secrets.peerRedisPassword,
      // Like the password, the ACL user defaults to the local one: both nodes normally share it.
      props.peer_redis.username === '' ? props.redis.username : props.peer_redis.username,
    ),
    health: camelize(props.health),
    // The file's address/prefix, taken apart (and the address canonical).
    vip: { ...camelize(props.vip), address: vip.address, prefixLength: vip.prefixLength, family: vip.family },
    promotion: camelize(props.promotion),
    demotion: camelize(props.demotion),
    reconcile: camelize(props.reconcile),
    control: { ...camelize(props.control), group: nullIfEmpty(props.control.group) },
    switchover: camelize(props.switchover),
    metrics: camelize(props.metrics),
    stall: camelize(props.stall),
    audit: camelize(props.audit),
    state: camelize(props.state),
    log: camelize(props.log),
  };
}

/**
 * Freezes an object graph. Buffers (the advert secrets) are left as they are: the
 * language cannot freeze a typed array's contents.
 */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !ArrayBuffer.isView(value) && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
