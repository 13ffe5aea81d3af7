/**
 * What the end-to-end tests on a `PairLab` share: the root guard, the writer through the
 * VIP and its analysis, waits on the pair and on the leader key, the audit trail since a
 * mark, and a write sent to one node's Redis directly. Not a test file itself.
 */
import { existsSync } from 'node:fs';
import { describe, expect } from 'vitest';
import { acknowledgedBetween, analyseSetTest, unavailabilityWindow, type SetTestReport } from '../../tools/lab/analysis.js';
import { isRoot } from '../../tools/lab/netns.js';
import { LAB_REDIS_PORT } from '../../tools/lab/redis-proc.js';
import { daemonEntry, PairLab, type AuditRecord, type PairNode, type WriterHandle } from '../../tools/lab/pair.js';

/** The window before a fault whose acknowledged writes asynchronous replication may lose. */
export const REPLICATION_LAG_ALLOWANCE_MS = 1_000;
/** How long the leader key may take to show its holder. */
export const KEY_TIMEOUT_MS = 15_000;
/** Poll period of `expectStableMaster`. */
const WATCH_POLL_MS = 250;

/** `describe` as root, `describe.skip` otherwise (said loudly: the lab needs network namespaces). */
export function describeAsRoot(file: string): typeof describe | typeof describe.skip {
  if (isRoot()) return describe;
  console.warn(`SKIPPING ${file}: the lab needs root (network namespaces)`);
  return describe.skip;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function fmt(ms: number | null | undefined): string {
  return ms === null || ms === undefined ? 'n/a' : `${Math.round(ms)} ms`;
}

export function requireBuild(): void {
  if (!existsSync(daemonEntry())) throw new Error(`${daemonEntry()} is missing: run npm run build`);
}

export async function startWriting(lab: PairLab): Promise<WriterHandle> {
  const writer = lab.startWriter();
  await lab.waitFor('the writer to start', () => writer.progress() !== null, 15_000);
  return writer;
}

/** Waits until the writer has had a write acknowledged since `afterWallMs`. */
export async function waitWritesFlow(lab: PairLab, writer: WriterHandle, afterWallMs: number, timeoutMs: number): Promise<number> {
  const after = writer.toWriterMs(afterWallMs);
  return lab.waitFor('acknowledged writes through the VIP again', () => (writer.progress()?.lastOkMs ?? -1) > after, timeoutMs);
}

/** Waits until `node` holds the group's leader key in etcd. */
export async function waitKeyHeldBy(lab: PairLab, node: PairNode, timeoutMs = KEY_TIMEOUT_MS): Promise<number> {
  return lab.waitFor(`${node} holding the leader key`, async () => (await lab.etcd().leader())?.record?.node === node, timeoutMs);
}

/** Asserts `node` stays the settled master (VIP on it alone, the other replicating it) for `watchMs`. */
export async function expectStableMaster(lab: PairLab, node: PairNode, watchMs: number): Promise<void> {
  const until = Date.now() + watchMs;
  while (Date.now() < until) {
    expect(await lab.vipHolders()).toEqual([node]);
    expect(await lab.redisRole(node)).toBe('master');
    expect(await lab.redisRole(PairLab.other(node))).toBe('replica');
    await sleep(WATCH_POLL_MS);
  }
}

/** How many audit records each node has written so far (for `auditSince`). */
export function auditMark(lab: PairLab): Record<PairNode, number> {
  return { a: lab.auditRecords('a').length, b: lab.auditRecords('b').length };
}

/** Audit records a node wrote after `mark` (taken with `auditMark`). */
export function auditSince(lab: PairLab, node: PairNode, mark: Record<PairNode, number>): AuditRecord[] {
  return lab.auditRecords(node).slice(mark[node]);
}

export function events(records: readonly AuditRecord[], event: string): AuditRecord[] {
  return records.filter((r) => r['event'] === event);
}

/**
 * Whether a node's Redis acknowledges a write sent to it directly on 127.0.0.1 in its
 * namespace (not through the VIP), and its reply (NOREPLICAS, READONLY, ...).
 */
/** Runs a redis-cli command on `node`'s own Redis (not through the VIP): its output, and the reply as text. */
export async function redisDirect(lab: PairLab, node: PairNode, args: readonly string[]): Promise<{ ok: boolean; out: string; reply: string }> {
  const argv = ['redis-cli', '--no-auth-warning', '-h', '127.0.0.1', '-p', String(LAB_REDIS_PORT), ...args];
  const r = await lab.net.exec(node, argv, { timeoutMs: 2_000, env: { REDISCLI_AUTH: lab.password } });
  const reply = `${r.stdout}${r.stderr}`.trim() || (r.timedOut ? '(timed out)' : `(exit ${r.code})`);
  return { ok: r.code === 0, out: r.stdout.trim(), reply };
}

export async function directWrite(lab: PairLab, node: PairNode): Promise<{ accepted: boolean; reply: string }> {
  const r = await redisDirect(lab, node, ['SET', 'ha:quorum-probe', String(Date.now())]);
  return { accepted: r.ok && r.out === 'OK', reply: r.reply };
}

/**
 * Stops the writer and analyses its set against `master`'s final set; `ackedLastSecond`:
 * writes acknowledged in the replication-lag window before the fault.
 */
export async function finish(lab: PairLab, writer: WriterHandle, master: PairNode, faultWall: number) {
  const result = await writer.stop();
  const finalSet = await lab.readFinalSet(master, result.meta.key);
  const report = analyseSetTest(result.ops, finalSet);
  const faultMs = faultWall - result.meta.startWallMs;
  const window = unavailabilityWindow(result.ops, faultMs);
  const ackedLastSecond = acknowledgedBetween(result.ops, faultMs - REPLICATION_LAG_ALLOWANCE_MS, faultMs);
  return { result, finalSet, report, window, ackedLastSecond };
}

export function describeWrites(report: SetTestReport): string {
  return (
    `attempted ${report.attempted}, acknowledged ${report.acknowledged}, failed ${report.failed}, ` +
    `unknown ${report.unknown}; LOST ${report.lost.length}` +
    (report.lost.length ? ` (values ${report.lost.slice(0, 20).join(',')})` : '')
  );
}
