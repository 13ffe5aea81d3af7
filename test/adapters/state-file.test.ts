/** The persisted epochs: round trip, fresh node, and a corrupt file refused loudly. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadState, saveState } from '../../src/adapters/state-file.js';

const dir = await mkdtemp(join(tmpdir(), 'rh-state-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('state file', () => {
  it('a missing file is a fresh node with epoch 0', async () => {
    expect(await loadState(join(dir, 'none.json'))).toEqual({ epoch: 0, knownEpoch: 0, bootTimeMs: 0, maintenance: { on: false, gen: 0 } });
  });

  it('round-trips epochs atomically', async () => {
    const p = join(dir, 'deep', 'state.json');
    const state = { epoch: 7, knownEpoch: 9, bootTimeMs: 1234, maintenance: { on: true, gen: 3 } };
    await saveState(p, state);
    expect(await loadState(p)).toEqual(state);
  });

  it('reads a file written before maintenance existed as maintenance off', async () => {
    const p = join(dir, 'old.json');
    await writeFile(p, '{"epoch":2,"knownEpoch":2,"bootEpoch":5}\n');
    // An older file: no maintenance, and the boot time under its earlier name.
    expect(await loadState(p)).toEqual({ epoch: 2, knownEpoch: 2, bootTimeMs: 5, maintenance: { on: false, gen: 0 } });
  });

  it.each([['not json', '{'], ['negative epoch', '{"epoch": -1}'], ['string epoch', '{"epoch": "3"}'], ['bad maintenance', '{"maintenance": {"on": "yes", "gen": 1}}']])(
    'refuses a corrupt file (%s) with advice', async (_label, text) => {
      const p = join(dir, 'bad.json');
      await writeFile(p, text);
      await expect(loadState(p)).rejects.toThrow(/state file .* is not valid .*move it away/);
    });
});
