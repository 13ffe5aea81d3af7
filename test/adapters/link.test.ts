/** Link tracking and the arp_announce guard, against fake sysfs/procfs trees. */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureArpAnnounce, readLinkState } from '../../src/adapters/link.js';

const root = await mkdtemp(join(tmpdir(), 'rh-link-'));
afterAll(() => rm(root, { recursive: true, force: true }));

async function put(path: string, text: string): Promise<void> {
  await mkdir(join(root, path, '..'), { recursive: true });
  await writeFile(join(root, path), text);
}

describe('readLinkState', () => {
  it.each([
    ['up', true],
    ['unknown', true],
    ['down', false],
    ['lowerlayerdown', false],
  ])('operstate %s → up %s', async (state, up) => {
    await put(`net/eth0/operstate`, `${state}\n`);
    const r = await readLinkState('eth0', join(root, 'net'));
    expect(r.up).toBe(up);
    if (!up) expect(r.detail).toMatch(/interface eth0 is .*no carrier/);
  });

  it('a missing interface is down, and says so', async () => {
    expect(await readLinkState('nosuch0', join(root, 'net'))).toEqual({ up: false, detail: 'interface nosuch0 not found (ENOENT)' });
  });
});

describe('ensureArpAnnounce', () => {
  const conf = join(root, 'conf');
  it('sets 2 on the interface when the effective value is lower', async () => {
    await put('conf/all/arp_announce', '0\n');
    await put('conf/eth0/arp_announce', '0\n');
    expect(await ensureArpAnnounce('eth0', conf)).toEqual({ changed: true, warning: null });
    expect((await readFile(join(conf, 'eth0/arp_announce'), 'utf8')).trim()).toBe('2');
  });

  it('leaves a host that already has 2 on "all" alone', async () => {
    await put('conf/all/arp_announce', '2\n');
    await put('conf/eth1/arp_announce', '0\n');
    expect(await ensureArpAnnounce('eth1', conf)).toEqual({ changed: false, warning: null });
    expect((await readFile(join(conf, 'eth1/arp_announce'), 'utf8')).trim()).toBe('0');
  });

  it('warns with the fix when it cannot read or write the setting', async () => {
    const r = await ensureArpAnnounce('eth9', join(root, 'missing'));
    expect(r.changed).toBe(false);
    expect(r.warning).toMatch(/could not set net.ipv4.conf.eth9.arp_announce=2 .*sysctl.d/);
  });
});
