/**
 * The persisted state: round trip, fresh node, old files, and anything else refused
 * loudly with the field, what was expected and what was found (never read as epoch 0).
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { loadState, parseState, saveState, stateWriter, type PersistedState } from '../../src/adapters/state-file.js';
import { EPOCH_CEILING } from '../../src/core/epoch.js';

const dir = await mkdtemp(join(tmpdir(), 'rh-state-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

const FRESH: PersistedState = { epoch: 0, knownEpoch: 0, bootTimeMs: 0, maintenance: { on: false, gen: 0 }, switchoverIds: [], peer: null };

describe('state file', () => {
  it('a missing file is a fresh node with epoch 0', async () => {
    expect(await loadState(join(dir, 'none.json'))).toEqual(FRESH);
  });

  it('round-trips every field atomically', async () => {
    const p = join(dir, 'deep', 'state.json');
    const state: PersistedState = {
      epoch: 7, knownEpoch: 9, bootTimeMs: 1234, maintenance: { on: true, gen: 3 }, switchoverIds: ['sw-1', 'sw-2'],
      peer: { nodeName: 'b', bootTimeMs: 1_700_000_000_000, seq: 42 },
    };
    await saveState(p, state);
    expect(await loadState(p)).toEqual(state);
  });

  it('reads a file written before maintenance, switchover ids and the peer run existed', async () => {
    const p = join(dir, 'old.json');
    await writeFile(p, '{"epoch":2,"knownEpoch":2,"bootEpoch":5}\n');
    // An older file: no maintenance, and the boot time under its earlier name.
    expect(await loadState(p)).toEqual({ ...FRESH, epoch: 2, knownEpoch: 2, bootTimeMs: 5 });
  });

  it.each([
    ['not json', '{', /not JSON/],
    ['a list', '[]', /the file: expected a JSON object, found \[\]/],
    ['a number', '42', /the file: expected a JSON object, found 42/],
    ['a string', '"x"', /found "x"/],
    ['true', 'true', /found true/],
    ['null', 'null', /found null/],
    ['negative epoch', '{"epoch": -1}', /epoch: expected an integer in 0\.\.2147483647, found -1/],
    ['string epoch', '{"epoch": "3"}', /epoch: expected an integer .* found "3"/],
    ['fractional epoch', '{"knownEpoch": 1.5}', /knownEpoch: .* found 1\.5/],
    ['epoch above the ceiling', `{"knownEpoch": ${EPOCH_CEILING + 1}}`, /knownEpoch: expected an integer in 0\.\.2147483647, found 2147483648/],
    ['epoch null', '{"epoch": null}', /epoch: .* found null/],
    ['bad maintenance', '{"maintenance": {"on": "yes", "gen": 1}}', /maintenance\.on: expected true or false, found "yes"/],
    ['maintenance a list', '{"maintenance": []}', /maintenance: expected a JSON object/],
    ['bad switchover id', '{"switchoverIds": ["ok", "not ok"]}', /switchoverIds\[1\]: expected a request id/],
    ['switchover ids not a list', '{"switchoverIds": "sw-1"}', /switchoverIds: expected a list/],
    ['peer without a name', '{"peer": {"bootTimeMs": 1, "seq": 1}}', /peer\.nodeName: expected a node name, found nothing/],
    ['peer with a bidi name', '{"peer": {"nodeName": "a\\u202eb", "bootTimeMs": 1, "seq": 1}}', /peer\.nodeName/],
    ['peer seq too large', '{"peer": {"nodeName": "b", "bootTimeMs": 1, "seq": 4294967296}}', /peer\.seq: expected an integer in 0\.\.4294967295/],
  ])('refuses %s with the field, the expected form and what was found', async (_label, text, message) => {
    const p = join(dir, 'bad.json');
    await writeFile(p, text);
    const error = await loadState(p).then(() => null, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'STATE_CORRUPT' });
    expect(String((error as Error).message)).toMatch(/state file .* is not valid: .*move it away/);
    expect(String((error as Error).message)).toMatch(message);
  });

  it('random content never crashes the loader: it is read or refused with a message (property)', () => {
    const json = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc.record({
        epoch: fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(null)),
        knownEpoch: fc.oneof(fc.nat(), fc.constant(-1)),
        maintenance: fc.oneof(fc.record({ on: fc.boolean(), gen: fc.nat() }), fc.jsonValue()),
        switchoverIds: fc.oneof(fc.array(fc.string()), fc.jsonValue()),
        peer: fc.oneof(fc.record({ nodeName: fc.string(), bootTimeMs: fc.nat(), seq: fc.nat() }), fc.jsonValue()),
      }, { requiredKeys: [] }).map((v) => JSON.stringify(v)),
      fc.string(),
    );
    fc.assert(fc.property(json, (text) => {
      let parsed: PersistedState | null = null;
      try {
        parsed = parseState(text);
      } catch (error) {
        expect(error).toBeInstanceOf(Error);
        expect((error as Error).message.length).toBeGreaterThan(0);
        return;
      }
      // What is read is in range: nothing the daemon would choke on later.
      expect(parsed.epoch).toBeLessThanOrEqual(EPOCH_CEILING);
      expect(parsed.knownEpoch).toBeLessThanOrEqual(EPOCH_CEILING);
      expect(Number.isSafeInteger(parsed.maintenance.gen)).toBe(true);
    }), { numRuns: 2000 });
  });

  it('the writer: a write that fails (the directory is not there) does not block later ones, which carry everything', async () => {
    // Not a permission trick (root ignores modes): the state directory's path is a file.
    const base = join(dir, 'flaky');
    await writeFile(base, 'not a directory');
    const path = join(base, 'state.json');
    const write = stateWriter(path, FRESH);
    await expect(write({ epoch: 3, knownEpoch: 3 })).rejects.toThrow(/EEXIST|ENOTDIR/);
    // The disk is back: the retry (and any later write) lands, with the epoch of the failed one.
    await rm(base);
    await mkdir(base);
    await write({ maintenance: { on: true, gen: 1 } });
    expect(await loadState(path)).toMatchObject({ epoch: 3, knownEpoch: 3, maintenance: { on: true, gen: 1 } });
    expect(JSON.parse(await readFile(path, 'utf8'))).toMatchObject({ epoch: 3 });
  });
});
