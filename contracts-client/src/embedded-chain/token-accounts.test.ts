import { describe, expect, it } from 'vitest';
import { uiTokenAmount } from './token-accounts.js';

describe('uiTokenAmount', () => {
  it('formats base units exactly with the mint decimals', () => {
    expect(uiTokenAmount(1_500_000n, 6).uiAmountString).toBe('1.5');
    expect(uiTokenAmount(7n, 6).uiAmountString).toBe('0.000007');
    expect(uiTokenAmount(0n, 0).uiAmountString).toBe('0');
    expect(uiTokenAmount(18_446_744_073_709_551_615n, 9).uiAmountString).toBe('18446744073.709551615');
    expect(uiTokenAmount(42n, 2)).toEqual({ amount: '42', decimals: 2, uiAmount: 0.42, uiAmountString: '0.42' });
  });
});
