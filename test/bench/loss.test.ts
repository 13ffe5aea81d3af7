/**
 * The lab's packet-loss helper (`LabNetwork.addLoss`), which the benchmark's `loss`
 * fault uses: about the requested share of the datagrams b sends a is dropped, traffic
 * from the client is untouched, and `clearLoss` removes the rule. Root only, and
 * skipped loudly where nftables is not available (the bench then reports the fault as
 * unsupported with the same reason).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRoot, LabNetwork } from '../../tools/lab/netns.js';

const TAG = 'rhbloss';
const SUBNET = '10.77.62';
const DATAGRAMS = 400;
const LOSS_PERCENT = 30;

const root = isRoot();
if (!root) console.warn('SKIPPING test/bench/loss.test.ts: the lab needs root (network namespaces)');
const describeRoot = root ? describe : describe.skip;

/** Sends `count` UDP datagrams from `from` to `address:9` (nobody listens; the input hook sees them). */
async function sendDatagrams(net: LabNetwork, from: string, address: string, count: number): Promise<void> {
  const script =
    "import dgram from 'node:dgram';" +
    'const [host, n] = process.argv.slice(1);' +
    "const s = dgram.createSocket('udp4');" +
    'let left = Number(n);' +
    "const next = () => { if (left-- <= 0) { s.close(); return; } s.send(Buffer.from('x'), 9, host, () => setTimeout(next, 1)); };" +
    'next();';
  await net.execOk(from, [process.execPath, '--input-type=module', '-e', script, address, String(count)], { timeoutMs: 20_000 });
}

describeRoot('LabNetwork.addLoss', () => {
  let net: LabNetwork;
  let support: { ok: boolean; reason: string };

  beforeAll(async () => {
    net = await LabNetwork.create({ tag: TAG, subnet: SUBNET, hosts: ['a', 'b', 'c'] });
    support = await net.lossSupport();
    if (!support.ok) console.warn(`SKIPPING test/bench/loss.test.ts: ${support.reason}`);
  });

  afterAll(async () => {
    await net?.teardown();
  });

  it('drops about the requested share between a and b only, and clears', { timeout: 60_000 }, async (ctx) => {
    // A skip, not a pass: the reporter counts it and shows why (CI installs nftables).
    if (!support.ok) ctx.skip(`nftables unavailable: ${support.reason}`);
    await net.addLoss('a', 'b', LOSS_PERCENT);
    await sendDatagrams(net, 'b', net.address('a'), DATAGRAMS);
    const fromB = (await net.lossDropped('a', 'b'))['a'] ?? 0;
    // Binomial(400, 0.3): mean 120, sd ≈ 9; the bounds are ±5 sd.
    expect(fromB).toBeGreaterThan(75);
    expect(fromB).toBeLessThan(165);
    await sendDatagrams(net, 'c', net.address('a'), DATAGRAMS);
    expect((await net.lossDropped('a', 'b'))['a']).toBe(fromB);
    await net.clearLoss('a', 'b');
    expect(await net.lossDropped('a', 'b')).toEqual({ a: 0, b: 0 });
    const listed = await net.exec('a', ['nft', 'list', 'tables']);
    expect(listed.stdout).not.toContain('redis_ha_lab_loss');
  });
});
