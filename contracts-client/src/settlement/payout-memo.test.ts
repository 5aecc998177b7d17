import { encodeBase58 } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { formatPayoutMemo, parsePayoutMemo } from './payout-memo.js';

const relay = encodeBase58(new Uint8Array(32).fill(7));
const root = 'ab'.repeat(32);

describe('payout memo', () => {
  it('round-trips', () => {
    const memo = { relay, cumulativePaid: 18_446_744_073_709_551_615n, merkleRoot: root };
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
});
