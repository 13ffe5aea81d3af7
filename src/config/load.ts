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
import { isTimingProfile, PROFILE_KEYS, profileValues, type ProfileKey } from './profiles.js';
import { describeFsError, readPublicFile, readSecretFile as readSecretFileText } from './secret-file.js';
import {
  buildSchema,
  describeValue,
  parseCidr,
  parseEtcdEndpoints,
  problemText,
  schemaItems,
  schemaSubsections,
  type RawConfig,
  type RawRedis,
  type SchemaItem,
} from './schema.js';
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
  'quorum.etcd': { password: 'the file named by quorum.etcd.password_file' },
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

/** The source text of every number in a section or subsection (`section: { key: <number> }`). */
function writtenNumbers(doc: Document, text: string): WrittenNumbers {
  const written = new Map<string, string>();
  const walk = (map: unknown, path: string): void => {
    if (!isMap(map)) return;
    for (const item of map.items) {
      const value = item.value;
      if (!isScalar(item.key)) continue;
      const name = path === '' ? String(item.key.value) : `${path}.${String(item.key.value)}`;
      if (isMap(value)) walk(value, name);
      else if (path !== '' && isScalar(value) && typeof value.value === 'number' && value.range != null) {
        written.set(name, text.slice(value.range[0], value.range[1]));
      }
    }
  };
  walk(doc.contents, '');
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

  // The profile moves the defaults of its keys, so it is read before convict fills them
  // in; a name that is no profile leaves the shipped defaults and convict reports it
  // (once: see below).
  const requested = env[PROFILE_ENV] ?? (isMapping(document['timing']) ? document['timing']['profile'] : undefined);
  const profile = isTimingProfile(requested) ? requested : 'default';
  const given = givenKeys(document, env);
  const profileDefaults = new Map<string, number>(Object.entries(profileValues(profile)));
  const config = convict<RawConfig>(buildSchema(env, written, profileDefaults), { env, args: [] });
  config.load(document);
  try {
    config.validate({ allowed: 'strict', output: () => undefined });
  } catch (error) {
    reportConvictErrors(errorMessage(error), problems, bad);
  }
  // With no valid profile, the profile keys the operator left unset have no known value:
  // the shipped defaults convict filled in are not what was asked for (`timing: { profile:
  // fsat }` with `health: { interval_ms: 100 }` meant fast's 100 ms timeout, not the
  // default's 300). The checks that read them would report what nobody wrote: skip them.
  if (bad.has('timing.profile')) {
    for (const key of PROFILE_KEYS) if (!given.has(key)) bad.add(key);
  }
  const props = config.getProperties();

  const shown = (key: string, value: number): string =>
    !given.has(key) && profile !== 'default' && profileDefaults.has(key)
      ? `${value} (from timing.profile ${profile})`
      : shownNumber(key, value, env, written);
  checkCrossFields(props, problems, bad, shown);
  const secrets = readSecrets(props, env, problems, bad);

  if (problems.length > 0 || secrets === null) throw new ConfigError(problems, source);
  const overrides = PROFILE_KEYS.filter((key) => given.has(key));
  return deepFreeze(toConfig(props, secrets, source, overrides));
}

/** The environment variable of `timing.profile`. */
const PROFILE_ENV = 'REDIS_HA_TIMING_PROFILE';

/**
 * The keys (`section.key`, `quorum.etcd.key`) the operator set: present in the document
 * with a value (an empty `key:` means the default, and `prepareDocument` drops it), or
 * named by a set `REDIS_HA_*` variable. Convict keeps no record of where a value came
 * from, so this is how a profile's default is told from a value given.
 */
function givenKeys(document: Mapping, env: NodeJS.ProcessEnv): ReadonlySet<string> {
  const given = new Set<string>();
  for (const [path, keys] of schemaItems()) {
    let section: unknown = document;
    for (const part of path.split('.')) section = isMapping(section) ? section[part] : undefined;
    for (const [key, item] of keys) {
      const inFile = isMapping(section) && Object.hasOwn(section, key);
      if (inFile || env[item.env] !== undefined) given.add(`${path}.${key}`);
    }
  }
  return given;
}

/**
 * Shape checks convict cannot make (it crashes on a mapping where a value goes, and
 * reports a section replaced by a scalar as a pile of missing keys), and secrets
 * written into the file. Returns the document to hand to convict, or `null` when the
 * top level is not a mapping at all. An empty value (`priority:`) means the default.
 */
function prepareDocument(raw: unknown, problems: string[], bad: Set<string>): Mapping | null {
  if (raw === null || raw === undefined) return {};
  const sections = topLevelSections();
  if (!isMapping(raw)) {
    problems.push(`(top level): expected a mapping of sections (${sections.join(', ')}), got ${describeValue(raw)}`);
    return null;
  }
  const document: Mapping = {};
  for (const [section, body] of Object.entries(raw)) {
    if (!sections.includes(section)) {
      if (RESERVED_NAMES.has(section)) {
        problems.push(`${section}: unknown section, expected one of ${sections.join(', ')}`);
        continue;
      }
      // A dotted name would reach convict as a path into another section.
      if (section.includes('.')) {
        problems.push(`${JSON.stringify(section)}: unknown section (${DOTTED_NAME}), expected one of ${sections.join(', ')}`);
        continue;
      }
      document[section] = body; // convict reports unknown sections (allowed: 'strict')
      continue;
    }
    const kept = prepareSection(section, body, problems, bad);
    if (kept !== undefined) document[section] = kept;
  }
  return document;
}

/** Why a dotted name (`quorum.etcd:` or `etcd.endpoints:` as one key) is no key. */
const DOTTED_NAME = 'a dotted name: write each part as a nested key';

/** The sections of the file, without the subsections (`quorum`, not `quorum.etcd`). */
function topLevelSections(): string[] {
  return [...schemaItems().keys()].filter((path) => !path.includes('.'));
}

/** What a section (or subsection) at `path` may hold: its keys, then its subsections. */
function childrenOf(path: string): string[] {
  return [...(schemaItems().get(path)?.keys() ?? []), ...(schemaSubsections().get(path) ?? [])];
}

/**
 * One section or subsection of the document, as `prepareDocument` hands it on; `undefined`
 * when it is empty (all defaults) or not a mapping (reported, and its keys marked bad).
 */
function prepareSection(path: string, body: unknown, problems: string[], bad: Set<string>): Mapping | undefined {
  if (body === null || body === undefined) return undefined;
  const items = schemaItems().get(path) ?? new Map<string, SchemaItem>();
  const subsections = schemaSubsections().get(path) ?? [];
  if (!isMapping(body)) {
    problems.push(`${path}: expected a mapping of keys (${childrenOf(path).join(', ')}), got ${describeValue(body)}`);
    for (const [sectionPath, keys] of schemaItems()) {
      if (sectionPath !== path && !sectionPath.startsWith(`${path}.`)) continue;
      for (const key of keys.keys()) bad.add(`${sectionPath}.${key}`);
    }
    return undefined;
  }
  const kept: Mapping = {};
  for (const [key, value] of Object.entries(body)) {
    const name = `${path}.${key}`;
    const homes = MISPLACED_SECRETS[path];
    const secretHome = homes !== undefined && Object.hasOwn(homes, key) ? homes[key] : undefined;
    if (secretHome !== undefined) {
      problems.push(`${name}: expected no secrets in the configuration file (put it in ${secretHome}), got a secret (not shown)`);
      bad.add(name);
      continue;
    }
    if (subsections.includes(key)) {
      const sub = prepareSection(name, value, problems, bad);
      if (sub !== undefined) kept[key] = sub;
      continue;
    }
    const item = items.get(key);
    if (item === undefined && RESERVED_NAMES.has(key)) {
      problems.push(`${name}: unknown key, expected one of ${childrenOf(path).join(', ')}`);
      continue;
    }
    if (item === undefined && key.includes('.')) {
      problems.push(`${path}.${JSON.stringify(key)}: unknown key (${DOTTED_NAME}), expected one of ${childrenOf(path).join(', ')}`);
      continue;
    }
    if (item !== undefined && (value === null || value === undefined)) continue;
    if (item?.list === true && Array.isArray(value) && value.every((entry) => typeof entry === 'string')) {
      kept[key] = value.join(',');
      continue;
    }
    if (item !== undefined && typeof value === 'object') {
      problems.push(`${name}: ${problemText(item, value)}`);
      bad.add(name);
      continue;
    }
    kept[key] = value;
  }
  return kept;
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
      // The deepest known (sub)section the undeclared path lies in, if any.
      const parts = undeclared[1].split('.');
      let depth = parts.length - 1;
      while (depth > 0 && !sections.has(parts.slice(0, depth).join('.'))) depth--;
      const section = parts.slice(0, depth).join('.');
      const wrong = parts[depth] ?? '';
      const name = depth === 0 ? wrong : `${section}.${wrong}`;
      if (reportedUnknown.has(name) || bad.has(name)) continue;
      reportedUnknown.add(name);
      const choices = depth === 0 ? topLevelSections() : childrenOf(section);
      const guess = suggest(wrong, choices);
      problems.push(
        `${name}: unknown ${depth === 0 ? 'section' : 'key'}, expected one of ${choices.join(', ')}` +
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
  const dot = key.lastIndexOf('.');
  const item = schemaItems().get(key.slice(0, dot))?.get(key.slice(dot + 1));
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

  if (valid('quorum.backend') && props.quorum.backend === 'etcd') checkEtcdFields(props.quorum.etcd, valid, fail);
}

/**
 * The etcd settings that only make sense together, checked when `quorum.backend` is etcd
 * (with backend none they are type-checked only: an unused etcd section may be half done).
 */
function checkEtcdFields(
  etcd: RawConfig['quorum']['etcd'],
  valid: (...keys: string[]) => boolean,
  fail: (key: string, text: string) => void,
): void {
  const key = (name: keyof RawConfig['quorum']['etcd']): string => `quorum.etcd.${name}`;
  const parsed = valid(key('endpoints')) ? parseEtcdEndpoints(etcd.endpoints) : null;
  if (parsed?.ok === true && parsed.endpoints.length === 0) {
    fail(
      key('endpoints'),
      `expected at least one etcd client URL such as https://192.0.2.20:2379 (required when quorum.backend is etcd), got ${describeValue(etcd.endpoints)}`,
    );
  }
  const scheme = parsed?.ok === true ? parsed.scheme : null;
  const tlsFiles = (['ca_file', 'cert_file', 'key_file'] as const).filter((name) => valid(key(name)) && etcd[name] !== '');
  if (scheme === 'https' && valid(key('ca_file')) && etcd.ca_file === '') {
    fail(key('ca_file'), "expected the PEM file of the CA that signed the etcd servers' certificates (required with https:// endpoints), got \"\"");
  }
  if (scheme === 'http') {
    // TLS material with plain-text endpoints is a half-done setup: the password would cross the network in clear.
    for (const name of tlsFiles) {
      fail(key(name), `expected "" with http:// endpoints (TLS files are used with https:// only), got ${describeValue(etcd[name])}`);
    }
  }
  if (valid(key('cert_file'), key('key_file')) && (etcd.cert_file === '') !== (etcd.key_file === '')) {
    if (etcd.key_file === '') {
      fail(key('key_file'), `expected the private key of quorum.etcd.cert_file (a client certificate needs its key), got ""`);
    } else {
      fail(key('cert_file'), `expected the client certificate of quorum.etcd.key_file (a client key needs its certificate), got ""`);
    }
  }
  if (valid(key('username'), key('password_file'))) {
    if (etcd.username !== '' && etcd.password_file === '') {
      fail(
        key('password_file'),
        `expected the file holding the password of etcd user ${describeValue(etcd.username)} (required with quorum.etcd.username), got ""`,
      );
    } else if (etcd.username === '' && etcd.password_file !== '') {
      fail(key('username'), `expected the etcd user whose password quorum.etcd.password_file holds, got ""`);
    }
  }
}

/** Passwords and advert keys, read once the keys naming them are known to be valid. */
interface Secrets {
  readonly redisPassword: string | null;
  readonly peerRedisPassword: string | null;
  readonly advertKeys: readonly AdvertKey[];
  /** With backend etcd and a user: the password of `quorum.etcd.password_file`. */
  readonly etcdPassword: string | null;
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
  const etcd = readEtcdFiles(props, env, problems, bad);
  return ok && etcd.ok ? { redisPassword, peerRedisPassword, advertKeys, etcdPassword: etcd.password } : null;
}

/** PEM headers the etcd files must hold: a certificate, and a private key of any type (PKCS#8, RSA, EC). */
const PEM_CERTIFICATE = { pattern: /-----BEGIN CERTIFICATE-----/, shown: '-----BEGIN CERTIFICATE-----' } as const;
const PEM_PRIVATE_KEY = { pattern: /-----BEGIN (?:[A-Z0-9]+ )?PRIVATE KEY-----/, shown: '-----BEGIN PRIVATE KEY-----' } as const;

/**
 * The files of the etcd section, with backend etcd only (the daemon reads them then, and
 * the etcd client again at each connection): the password (secret-file rule, one line),
 * the client key (secret-file rule, a PEM private key), the CA bundle and the client
 * certificate (readable regular files holding a PEM certificate).
 */
function readEtcdFiles(
  props: RawConfig,
  env: NodeJS.ProcessEnv,
  problems: string[],
  bad: Set<string>,
): { readonly ok: boolean; readonly password: string | null } {
  const etcd = props.quorum.etcd;
  if (bad.has('quorum.backend') || props.quorum.backend !== 'etcd') return { ok: true, password: null };
  let ok = true;
  const usable = (name: string, path: string): boolean => !bad.has(`quorum.etcd.${name}`) && path !== '';

  let password: string | null = null;
  if (usable('password_file', etcd.password_file)) {
    password = readSecretFile('quorum.etcd.password_file', etcd.password_file, 'the etcd password', env, problems) ?? null;
    if (password === null) ok = false;
  }
  const pem = (name: string, path: string, what: string, block: typeof PEM_CERTIFICATE | typeof PEM_PRIVATE_KEY, secret: boolean): void => {
    if (!usable(name, path)) return;
    const key = `quorum.etcd.${name}`;
    const read = secret ? readSecretFileText(key, path, what, env) : readPublicFile(key, path, what);
    problems.push(...read.problems);
    if (read.text === null || read.problems.length > 0) {
      ok = false;
    } else if (!block.pattern.test(read.text)) {
      problems.push(`${key}: expected a ${what} in PEM form ("${block.shown}"), got ${JSON.stringify(path)} (no such block in it)`);
      ok = false;
    }
  };
  pem('ca_file', etcd.ca_file, "CA certificate of the etcd servers", PEM_CERTIFICATE, false);
  pem('cert_file', etcd.cert_file, 'client certificate for etcd', PEM_CERTIFICATE, false);
  pem('key_file', etcd.key_file, 'client key for etcd', PEM_PRIVATE_KEY, true);
  return { ok, password };
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
  // The profile's keys the file or the environment set (they win over the profile).
  timing: { converted: [], added: ['overrides'] },
  // The comma-separated text becomes a list; "" user becomes null; the password is read from
  // password_file (with backend etcd; the path is kept). cluster_name "" also becomes
  // group-<group.id>, with the same type, so it is not listed.
  'quorum.etcd': { converted: ['endpoints', 'username'], added: ['password'] },
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

/** The endpoints of a validated `quorum.etcd.endpoints`. */
function etcdEndpoints(text: string): readonly string[] {
  const parsed = parseEtcdEndpoints(text);
  if (!parsed.ok) throw new Error(`quorum.etcd.endpoints passed validation but does not parse: ${parsed.reason}`);
  return parsed.endpoints;
}

function nullIfEmpty(value: string): string | null {
  return value === '' ? null : value;
}

/** The camelCase view; only called on a configuration without problems. */
function toConfig(props: RawConfig, secrets: Secrets, source: string | null, overrides: readonly ProfileKey[]): Config {
  const vip = parseCidr(props.vip.address);
  if (vip === null) throw new Error(`vip.address ${props.vip.address} passed validation but does not parse`);
  const peerAddress = canonicalIp(props.peer.address);
  return {
    source,
    timing: { profile: props.timing.profile, overrides },
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
    quorum: {
      backend: props.quorum.backend,
      prefer: props.quorum.prefer,
      etcd: {
        ...camelize(props.quorum.etcd),
        endpoints: etcdEndpoints(props.quorum.etcd.endpoints),
        clusterName: props.quorum.etcd.cluster_name === '' ? `group-${props.group.id}` : props.quorum.etcd.cluster_name,
        username: nullIfEmpty(props.quorum.etcd.username),
        password: secrets.etcdPassword,
      },
    },
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
