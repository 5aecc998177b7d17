import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { eventually } from '../testing/transport-compliance.js';
import { startAutoRedeem } from './auto-redeem.js';
import type { Redeemer } from './redeemer.js';

/** A stand-in with the three methods auto-redeem uses. */
function fakeRedeemer(state: { owed: bigint; pending: boolean; calls: number; hang?: boolean }): Redeemer {
  return {
    owed: () => ({ total: state.owed, byPayer: new Map() }),
    hasPending: () => state.pending,
    redeem: (signal: AbortSignal) => {
      state.calls++;
      if (state.hang !== true) {
        state.owed = 0n;
        state.pending = false;
        return Promise.resolve({ payers: [], amount: '0' });
      }
      return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new RelaycastError(ErrorCode.ABORTED, 'aborted')), { once: true }));
    },
  } as unknown as Redeemer;
}

describe('startAutoRedeem', () => {
  it('redeems only at or past the threshold, or when a recorded payout is unsettled', async () => {
    const state = { owed: 99n, pending: false, calls: 0 };
    const auto = startAutoRedeem(fakeRedeemer(state), { thresholdBaseUnits: 100n, intervalMs: 20 });
    try {
      await new Promise((r) => setTimeout(r, 150));
      expect(state.calls).toBe(0);
      state.owed = 100n;
      await eventually(() => state.calls === 1, 'a redemption at the threshold', 5_000);
      state.pending = true;
      await eventually(() => state.calls === 2, 'a redemption for an unsettled payout', 5_000);
      await new Promise((r) => setTimeout(r, 100));
      expect(state.calls).toBe(2);
    } finally {
      await auto.stop();
    }
  });

  it('runs one redemption at a time and aborts it on stop', async () => {
    const state = { owed: 500n, pending: false, calls: 0, hang: true };
    const auto = startAutoRedeem(fakeRedeemer(state), { thresholdBaseUnits: 1n, intervalMs: 10 });
    await eventually(() => state.calls === 1, 'the first redemption', 5_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(state.calls).toBe(1);
    await auto.stop();
  });
});
