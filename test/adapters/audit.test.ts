/** The audit log: ordered JSON lines, one per record, and reopening after rotation. */
import { mkdtemp, readFile, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditLog } from '../../src/adapters/audit.js';
import { silentLogger } from '../../src/daemon/logger.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rh-audit-'));
  dirs.push(d);
  return d;
}

const lines = async (p: string) => (await readFile(p, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('AuditLog', () => {
  it('appends records in order, each a JSON line with time, node and event', async () => {
    const path = join(await tmp(), 'sub', 'audit.jsonl');
    const log = new AuditLog(path, 'a', silentLogger(), () => new Date('2026-01-01T00:00:00Z'));
    await log.open();
    for (let i = 0; i < 50; i++) void log.append('transition', { i, from: 'BACKUP', to: 'MASTER' });
    await log.close();
    const recs = await lines(path);
    expect(recs).toHaveLength(50);
    expect(recs.map((r) => r.i)).toEqual([...Array(50).keys()]);
    expect(recs[0]).toMatchObject({ time: '2026-01-01T00:00:00.000Z', node: 'a', event: 'transition', from: 'BACKUP' });
  });

  it('keeps appending to an existing file and reopens a rotated one', async () => {
    const d = await tmp();
    const path = join(d, 'audit.jsonl');
    const first = new AuditLog(path, 'a', silentLogger());
    await first.append('one');
    await first.close();
    const second = new AuditLog(path, 'a', silentLogger());
    await second.open();
    await second.append('two');
    await rename(path, `${path}.1`);
    await second.reopen();
    await second.append('three');
    await second.close();
    expect((await lines(`${path}.1`)).map((r) => r.event)).toEqual(['one', 'two']);
    expect((await lines(path)).map((r) => r.event)).toEqual(['three']);
  });
});
