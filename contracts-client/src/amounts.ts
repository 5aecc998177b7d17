import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/** Decimals of SOL: 1 SOL = 10^9 lamports. */
export const SOL_DECIMALS = 9;

/**
 * Parses a decimal amount ("1.5") into base units with `decimals` places, exactly (no floats:
 * token amounts exceed 2^53). Throws RC_ERR_CONFIG_INVALID for anything else.
 */
export function parseDecimalAmount(text: string, decimals: number, what = 'amount'): bigint {
  const m = /^(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (m === null) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${what} must be a non-negative decimal number, got "${text}"`);
  const frac = m[2] ?? '';
  if (frac.length > decimals) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${what} has more than ${decimals} decimal places`);
  return BigInt(m[1]!) * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, '0') || '0');
}

/** Base units as an exact decimal string ("1.5"). */
export function formatDecimalAmount(amount: bigint, decimals: number): string {
  const digits = amount.toString().padStart(decimals + 1, '0');
  const whole = digits.slice(0, digits.length - decimals);
  const frac = digits.slice(digits.length - decimals).replace(/0+$/, '');
  return frac === '' ? whole : `${whole}.${frac}`;
}
