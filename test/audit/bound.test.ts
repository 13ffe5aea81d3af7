/**
 * `flattenBounded`: what it keeps and how it says what it cut, and (fast-check) that
 * whatever it is given it returns, serialises, and stays within its limits.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ARGS_LIMITS, capString, flattenBounded, RECORD_LIMITS, type BoundLimits } from '../../src/audit/bound.js';

describe('flattenBounded', () => {
  it('flattens nested objects and arrays into path: scalar entries, scalars of the top level first', () => {
    const r = flattenBounded({ nested: { a: [1, 'x'], b: { c: true }, e: {}, f: [] }, timeoutMs: 2000, force: true, gone: undefined, n: null }, ARGS_LIMITS);
    expect(r.value).toEqual({ timeoutMs: 2000, force: true, n: null, 'nested.a[0]': 1, 'nested.a[1]': 'x', 'nested.b.c': true, 'nested.e': '{}', 'nested.f': '[]' });
    expect(Object.keys(r.value).slice(0, 3)).toEqual(['timeoutMs', 'force', 'n']);
    expect(r.cut).toBeNull();
  });

  it('summarises containers below maxDepth and counts them', () => {
    // maxDepth 3: three path segments; a container there is summarised.
    const r = flattenBounded({ a: { b: { c: { d: 1 } }, list: [[1, 2]] } }, ARGS_LIMITS);
    expect(r.value).toEqual({ 'a.b.c': '[object, 1 keys]', 'a.list[0]': '[array, 2 items]' });
    expect(r.cut).toEqual({ deeper: 2 });
  });

  it('caps strings, paths, entries and bytes, and says so', () => {
    const limits: BoundLimits = { maxDepth: 3, maxEntries: 4, maxStringChars: 10, maxBytes: 1000 };
    expect(flattenBounded({ s: 'y'.repeat(20) }, limits)).toEqual({ value: { s: `${'y'.repeat(10)}…` }, cut: { strings: 1 } });
    expect(flattenBounded({ ['k'.repeat(20)]: 1 }, limits)).toEqual({ value: { [`${'k'.repeat(10)}…`]: 1 }, cut: { strings: 1 } });
    expect(flattenBounded({ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6 }, limits)).toEqual({ value: { a: 1, b: 2, c: 3, d: 4 }, cut: { entries: 2 } });
    const bytes = flattenBounded({ a: 'x'.repeat(8), b: 'x'.repeat(8), c: 'x'.repeat(8) }, { ...limits, maxBytes: 40 });
    expect(bytes.value).toEqual({ a: 'x'.repeat(8), b: 'x'.repeat(8) });
    expect(bytes.cut).toEqual({ bytes: 1 });
  });

  it('survives cycles, BigInts, non-finite numbers, throwing getters and a __proto__ key', () => {
    const cyclic: Record<string, unknown> = { name: 'c' };
    cyclic.self = cyclic;
    const hostile = Object.defineProperty({}, 'boom', { enumerable: true, get: () => { throw new Error('no'); } });
    const proto = JSON.parse('{"__proto__":{"polluted":1}}') as Record<string, unknown>;
    const r = flattenBounded({ cyclic, big: 10n ** 30n, inf: Infinity, nan: NaN, hostile, proto }, ARGS_LIMITS);
    expect(r.value).toMatchObject({ big: '1000000000000000000000000000000', inf: 'Infinity', nan: 'NaN', 'cyclic.name': 'c', 'cyclic.self.name': 'c', hostile: '[unreadable]', 'proto.__proto__.polluted': 1 });
    expect(r.cut).toEqual({ deeper: 1 });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('writes a scalar or an array at the top level under "" and "[i]"', () => {
    expect(flattenBounded('x', ARGS_LIMITS).value).toEqual({ '': 'x' });
    expect(flattenBounded([1, [2]], ARGS_LIMITS).value).toEqual({ '[0]': 1, '[1][0]': 2 });
  });

  it('never cuts a surrogate pair in half', () => {
    expect(capString('ab😀cd', 3)).toBe('ab…');
    expect(capString('ab😀cd', 4)).toBe('ab😀…');
  });

  it('whatever the input, returns JSON within maxBytes and maxEntries', () => {
    const deep = fc.integer({ min: 1, max: 5_000 }).map((n) => JSON.parse(`${'{"a":'.repeat(n)}1${'}'.repeat(n)}`) as unknown);
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.jsonValue(), deep), fc.constantFrom(ARGS_LIMITS, RECORD_LIMITS), (value, limits) => {
        const r = flattenBounded(value, limits);
        const text = JSON.stringify(r.value);
        expect(Buffer.byteLength(text)).toBeLessThanOrEqual(limits.maxBytes * 3); // UTF-8: at most 3 bytes per UTF-16 unit
        expect(text.length).toBeLessThanOrEqual(limits.maxBytes);
        expect(Object.keys(r.value).length).toBeLessThanOrEqual(limits.maxEntries);
      }),
      { numRuns: 2_000 },
    );
  });
});
