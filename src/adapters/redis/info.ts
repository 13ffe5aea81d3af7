/**
 * Parsers for Redis `INFO` output: the generic `key:value` section format, and the
 * `INFO replication` view the decision core consumes (`RedisSnapshot`).
 *
 * Pure: no I/O. The adapter (`health.ts`, `local.ts`, `switchover/`) fetches the text; this
 * file only reads it, so every oddity of the format is tested without a server.
 * Garbage (no `role:` line, non-numeric offsets) is an error rather than a
 * half-filled snapshot: the core compares offsets across nodes, and a silently
 * defaulted `0` would look like a valid, very stale history.
 */
import { REPLICA_FENCE_MAX_LAG_S } from '../../core/timing.js';
import type { RedisSnapshot } from '../../core/types.js';
import { RedisControlError } from '../../errors.js';

/** Error code for INFO text that cannot be read as a replication snapshot. */
export const INFO_PARSE_FAILED = 'REDIS_INFO_PARSE_FAILED';

/** What Redis reports for `master_replid2` when there is no second history (PSYNC2). */
const NO_REPLID = '0000000000000000000000000000000000000000';

/**
 * Reads any `INFO` output into a map of field to raw string value. Section headers
 * (`# Replication`) and blank lines are skipped; a value may itself contain `:`
 * (IPv6 `master_host`), so only the first colon splits.
 */
export function parseInfoFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const rawLine of text.split('\n')) {
    const line = rawLine.replace(/\r$/, '');
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

function fail(message: string): never {
  throw new RedisControlError(INFO_PARSE_FAILED, `cannot parse INFO replication: ${message}`);
}

function integerField(fields: Map<string, string>, key: string): number | undefined {
  const raw = fields.get(key);
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw)) fail(`${key} is not an integer: ${JSON.stringify(raw)}`);
  return Number(raw);
}

/**
 * Parses `INFO replication` into a `RedisSnapshot`.
 *
 * `role:slave` becomes `replica`. For a replica, `offset` is `slave_repl_offset`
 * (what it has applied from its master) when present, else `master_repl_offset`
 * (older servers). Master-only and replica-only fields get neutral values on the
 * other role (`masterHost: null`, `linkUp: false`).
 *
 * @throws RedisControlError (`REDIS_INFO_PARSE_FAILED`) when there is no known
 *   `role`, no `master_repl_offset`, or a numeric field is not an integer.
 */
export function parseReplicationInfo(text: string): RedisSnapshot {
  const fields = parseInfoFields(text);
  const rawRole = fields.get('role');
  if (rawRole === undefined) fail('no role field');
  if (rawRole !== 'master' && rawRole !== 'slave') fail(`unknown role ${JSON.stringify(rawRole)}`);
  const role = rawRole === 'master' ? 'master' : 'replica';

  const masterOffset = integerField(fields, 'master_repl_offset');
  if (masterOffset === undefined) fail('no master_repl_offset field');
  const replicaOffset = integerField(fields, 'slave_repl_offset');
  const secondOffset = integerField(fields, 'second_repl_offset') ?? -1;
  const connectedReplicas = integerField(fields, 'connected_slaves') ?? 0;
  const replId = fields.get('master_replid') ?? fail('no master_replid field');

  if (role === 'master') {
    const goodReplicas = parseReplicaEntries(text).filter((r) => r.state === 'online' && r.lagS < REPLICA_FENCE_MAX_LAG_S).length;
    return {
      role,
      replId,
      replId2: fields.get('master_replid2') ?? NO_REPLID,
      offset: masterOffset,
      secondOffset,
      masterHost: null,
      masterPort: null,
      linkUp: false,
      syncInProgress: false,
      connectedReplicas,
      goodReplicas,
    };
  }
  const masterHost = fields.get('master_host');
  if (masterHost === undefined || masterHost === '') fail('replica without master_host');
  const masterPort = integerField(fields, 'master_port');
  if (masterPort === undefined) fail('replica without master_port');
  return {
    role,
    replId,
    replId2: fields.get('master_replid2') ?? NO_REPLID,
    offset: replicaOffset ?? masterOffset,
    secondOffset,
    masterHost,
    masterPort,
    linkUp: fields.get('master_link_status') === 'up',
    syncInProgress: fields.get('master_sync_in_progress') === '1',
    connectedReplicas,
  };
}

/** One `slaveN:` line of a master's `INFO replication`: a connected replica as the master sees it. */
export interface ReplicaEntry {
  /** N of `slaveN`. */
  readonly index: number;
  /**
   * The replica's source address as the master sees it (or its `replica-announce-ip`),
   * which is not necessarily the address other hosts reach it on.
   */
  readonly ip: string;
  /** The port it listens on (`REPLCONF listening-port`, or `replica-announce-port`). */
  readonly port: number;
  /** `online` once it is streaming; `wait_bgsave` or `send_bulk` during a full sync. */
  readonly state: string;
  /** The replication offset it last acknowledged (`REPLCONF ACK`, about once a second). */
  readonly offset: number;
  /** Seconds since its last `REPLCONF ACK`. */
  readonly lagS: number;
}

/**
 * Reads the `slaveN:ip=...,port=...,state=...,offset=...,lag=...` lines of a master's
 * `INFO replication`, ordered by N; no such lines (a replica, or a master without
 * replicas) is an empty list. An IPv6 `ip` keeps its colons (only `,` and the first
 * `=` of each part split).
 *
 * @throws RedisControlError (`REDIS_INFO_PARSE_FAILED`) when a `slaveN` line lacks
 *   `ip`, `state`, `port`, `offset` or `lag`, or a number is not an integer.
 */
export function parseReplicaEntries(text: string): ReplicaEntry[] {
  const entries: ReplicaEntry[] = [];
  for (const [key, value] of parseInfoFields(text)) {
    const index = /^slave(\d+)$/.exec(key)?.[1];
    if (index === undefined) continue;
    const attributes = new Map<string, string>();
    for (const part of value.split(',')) {
      const eq = part.indexOf('=');
      if (eq <= 0) fail(`${key} has a part without name=value: ${JSON.stringify(part)}`);
      attributes.set(part.slice(0, eq), part.slice(eq + 1));
    }
    const attribute = (name: string): string => {
      const raw = attributes.get(name);
      if (raw === undefined || raw === '') fail(`${key} has no ${name}`);
      return raw;
    };
    const integer = (name: string): number => {
      const raw = attribute(name);
      if (!/^-?\d+$/.test(raw)) fail(`${key} ${name} is not an integer: ${JSON.stringify(raw)}`);
      return Number(raw);
    };
    entries.push({
      index: Number(index),
      ip: attribute('ip'),
      port: integer('port'),
      state: attribute('state'),
      offset: integer('offset'),
      lagS: integer('lag'),
    });
  }
  return entries.sort((a, b) => a.index - b.index);
}
