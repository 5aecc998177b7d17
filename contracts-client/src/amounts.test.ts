import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { formatDecimalAmount, parseDecimalAmount } from './amounts.js';

describe('decimal amounts', () => {
  it('parses and formats exactly, beyond 2^53', () => {
    expect(parseDecimalAmount('1.5', 9)).toBe(1_500_000_000n);
    expect(parseDecimalAmount('0.000001', 6)).toBe(1n);
    expect(parseDecimalAmount('18446744073.709551615', 9)).toBe(18_446_744_073_709_551_615n);
    expect(formatDecimalAmount(18_446_744_073_709_551_615n, 9)).toBe('18446744073.709551615');
    expect(formatDecimalAmount(parseDecimalAmount('42', 0), 0)).toBe('42');
  });

  it('refuses signs, exponents and excess decimals with a typed error', () => {
    for (const bad of ['-1', '1e3', '0.1234567', '', 'abc']) {
      let caught: unknown;
      try {
        parseDecimalAmount(bad, 6);
      } catch (err) {
        caught = err;
      }
      expect(isRelaycastError(caught, ErrorCode.CONFIG_INVALID)).toBe(true);
    }
  });
});
