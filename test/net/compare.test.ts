/** Address parsing edge cases. */
import { describe, expect, it } from 'vitest';
import { addressBytes } from '../../src/net/address.js';

describe('addressBytes', () => {
  it.each(['', '1.2.3', '1.2.3.256', 'fd00:::1', 'x::1', '1:2:3:4:5:6:7:8:9'])('rejects %j', (s) => {
    expect(addressBytes(s)).toBeNull();
  });
});
