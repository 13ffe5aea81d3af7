/**
 * How a replication snapshot, an address or an unfinished catch-up reads in `detail`,
 * and the comparisons of snapshots the role changes make. Pure.
 */
import type { HostPort, RedisSnapshot } from '../../core/types.js';

/** A server's `INFO replication` snapshot plus the raw fields read with it. */
export interface LocalState {
  readonly snapshot: RedisSnapshot;
  readonly fields: Map<string, string>;
}

/** `host:port`, with brackets around an IPv6 host. */
export function formatHostPort(target: HostPort): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

/** One phrase for a replication snapshot, as `detail` shows it. */
export function describeSnapshot(s: RedisSnapshot): string {
  if (s.role === 'master') return `role master, offset ${s.offset}, ${s.connectedReplicas} replica(s)`;
  const link = s.linkUp ? 'link up' : s.syncInProgress ? 'full sync in progress' : 'link down';
  return `role replica of ${s.masterHost ?? '?'}:${s.masterPort ?? '?'}, ${link}, offset ${s.offset}`;
}

/** Whether `s` is a replica pointed at `target` (link up or not). */
export function replicatesFrom(s: RedisSnapshot, target: HostPort): boolean {
  return s.role === 'replica' && s.masterHost === target.host && s.masterPort === target.port;
}

/** Two run_ids name the same server process; an unknown (empty) run_id matches nothing. */
export function sameServer(a: string | undefined, b: string | undefined): boolean {
  return a !== undefined && a !== '' && a === b;
}

/**
 * How far a catch-up that did not finish got, for `detail`. During a full sync the
 * stream offset says nothing yet (the snapshot carries the data), so the transfer
 * progress is given instead of a byte distance.
 */
export function behind(state: LocalState | null, target: RedisSnapshot): string {
  if (state === null) return '';
  const { snapshot, fields } = state;
  if (snapshot.syncInProgress) {
    const read = fields.get('master_sync_read_bytes');
    const total = Number(fields.get('master_sync_total_bytes') ?? -1);
    // Diskless sync streams the snapshot without announcing its size (total 0 or -1).
    const size = total > 0 ? ` of ${total}` : '';
    return ` (full sync still in progress${read !== undefined ? `: ${read}${size} snapshot bytes received` : ''})`;
  }
  // Offsets only compare within one history: before its first sync the replica still counts its own.
  if (snapshot.replId !== target.replId) {
    return ` (not synced with the peer yet, link ${snapshot.linkUp ? 'up' : 'down'}; peer at offset ${target.offset})`;
  }
  const distance = Math.max(0, target.offset - snapshot.offset);
  return ` (${distance} bytes behind (offset ${snapshot.offset} of ${target.offset})${snapshot.linkUp ? '' : ', link down'})`;
}
