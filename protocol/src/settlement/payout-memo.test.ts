import { describe, expect, it } from 'vitest';
import { encodeBase58 } from '../base58.js';
import { ErrorCode } from '../errors.js';
import { PAYOUT_MEMO_PREFIX, formatPayoutMemo, parsePayoutMemo } from './payout-memo.js';

const relay = encodeBase58(new Uint8Array(32).fill(7));
const root = 'ab'.repeat(32);

describe('payout memo', () => {
  it('is the v1 text, and round-trips', () => {
    const memo = { relay, cumulativePaid: 18_446_744_073_709_551_615n, merkleRoot: root };
    expect(formatPayoutMemo(memo)).toBe(`relaycast:v1 relay=${relay} paid=18446744073709551615 root=${root}`);
    expect(formatPayoutMemo(memo).startsWith(`${PAYOUT_MEMO_PREFIX} `)).toBe(true);
    expect(parsePayoutMemo(formatPayoutMemo(memo))).toEqual(memo);
  });

  it('refuses anything that is not exactly a v1 payout memo', () => {
    const good = formatPayoutMemo({ relay, cumulativePaid: 5n, merkleRoot: root });
    for (const text of [
      '',
      `${good} `,
      good.replace('v1', 'v2'),
      good.replace('paid=5', 'paid=05'),
      good.replace('paid=5', 'paid=18446744073709551616'),
      good.replace(root, root.toUpperCase()),
      good.replace(root, root.slice(2)),
      good.replace(relay, `1${relay}`),
      good.replace(relay, 'x'.repeat(40)),
    ]) {
      expect(parsePayoutMemo(text), text).toBeUndefined();
    }
  });

  it('will not format a memo that would not parse back', () => {
    for (const memo of [
      { relay: `1${relay}`, cumulativePaid: 5n, merkleRoot: root },
      { relay, cumulativePaid: -1n, merkleRoot: root },
      { relay, cumulativePaid: 1n << 64n, merkleRoot: root },
      { relay, cumulativePaid: 5n, merkleRoot: root.toUpperCase() },
    ]) {
      expect(() => formatPayoutMemo(memo)).toThrow(expect.objectContaining({ code: ErrorCode.MESSAGE_FIELD }));
    }
  });
});
