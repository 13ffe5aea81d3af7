/** Address ordering for the equal-priority tie-break (RFC 5798 §6.4.3). */
import { describe, expect, it } from 'vitest';
import { addressBytes, compareAddresses } from '../../src/net/address.js';

describe('compareAddresses', () => {
  it.each([
    ['10.77.0.12', '10.77.0.11', 1],
    ['10.77.0.9', '10.77.0.11', -1],
    ['192.0.2.1', '192.0.2.1', 0],
    ['fd00::12', 'fd00::11', 1],
    ['fd00::1', 'fd00:0:0:0:0:0:0:1', 0],
    ['::ffff:10.0.0.2', '::ffff:10.0.0.1', 1],
  ])('%s vs %s → sign %i', (a, b, sign) => {
    expect(Math.sign(compareAddresses(a, b))).toBe(sign);
  });

  it('numeric, not lexical: 10.77.0.100 > 10.77.0.20', () => {
    expect(compareAddresses('10.77.0.100', '10.77.0.20')).toBeGreaterThan(0);
  });

  it.each(['', '1.2.3', '1.2.3.256', 'fd00:::1', 'x::1', '1:2:3:4:5:6:7:8:9'])('rejects %j', (s) => {
    expect(addressBytes(s)).toBeNull();
  });
});
