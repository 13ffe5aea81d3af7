/**
 * leader-last's value (`served-record.ts`): encoded as one JSON object an operator can
 * read, parsed back exactly, and anything else refused with a reason, never a throw.
 */
import { describe, expect, test } from 'vitest';
import { encodeServedRecord, parseServedRecord, SERVED_RECORD_FORMAT } from '../../../src/adapters/quorum/served-record.js';

const REPL = 'ab'.repeat(20);

describe('the served record', () => {
  test('round trip', () => {
    const value = encodeServedRecord({ node: 'node-a', epoch: 3, replId: REPL });
    expect(JSON.parse(value.toString())).toEqual({ format: SERVED_RECORD_FORMAT, node: 'node-a', epoch: 3, replId: REPL });
    expect(parseServedRecord(value)).toEqual({ ok: true, record: { node: 'node-a', epoch: 3, replId: REPL } });
  });

  test.each([
    ['not JSON', 'x', 'value is not JSON'],
    ['an array', '[]', 'value is not a JSON object'],
    ['a leader record', '{"format":"redis-ha-leader/1","node":"a","epoch":1}', 'value has fields [epoch,format,node], expected [epoch,format,node,replId]'],
    ['another format', `{"format":"x","node":"a","epoch":1,"replId":"${REPL}"}`, `format is not ${SERVED_RECORD_FORMAT}`],
    ['a short replId', `{"format":"${SERVED_RECORD_FORMAT}","node":"a","epoch":1,"replId":"abc"}`, 'replId is not 40 lower-case hexadecimal digits'],
    ['a negative epoch', `{"format":"${SERVED_RECORD_FORMAT}","node":"a","epoch":-1,"replId":"${REPL}"}`, 'epoch -1 is not a non-negative safe integer'],
    ['a string epoch', `{"format":"${SERVED_RECORD_FORMAT}","node":"a","epoch":"1","replId":"${REPL}"}`, 'node, epoch or replId has the wrong type'],
  ])('%s is refused with a reason', (_name, value, reason) => {
    expect(parseServedRecord(Buffer.from(value))).toEqual({ ok: false, reason });
  });

  test('what cannot be parsed back is not encoded', () => {
    expect(() => encodeServedRecord({ node: 'a b', epoch: 1, replId: REPL })).toThrow(RangeError);
    expect(() => encodeServedRecord({ node: 'a', epoch: 1, replId: 'XYZ' })).toThrow(/replId/);
  });
});
