import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Connection } from '@solana/web3.js';
import { relayStatusPath } from '@relaycast/protocol/settlement';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settler } from './settler.js';
import {
  TREASURY_FUNDS,
  confirmPayout,
  getJson,
  itemFor,
  newRelay,
  newViewer,
  redeemAt,
  requestGrant,
  startPaymentWorld,
  startTestSettler,
  tokenBalance,
  type PaymentWorld,
} from '../testing/settlement-world.js';

/** A chain whose blockhashes expire after ~2 s (40 slots of 50 ms), so a payout can outlive its window. */
describe('settler: a payout whose blockhash expired unlanded', () => {
  let w: PaymentWorld;
  let settler: Settler;

  beforeAll(async () => {
    w = await startPaymentWorld({ slotMs: 50, blockhashValiditySlots: 40 });
    settler = await startTestSettler(w);
  }, 60_000);

  afterAll(async () => {
    await settler?.close();
    await w?.close();
  });

  it('is voided and rebuilt with a fresh blockhash; the stale one cannot land and the relay is paid once', async () => {
    const relay = await newRelay(w);
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer);
    const items = [itemFor(w, viewer, grant, relay.keypair.publicKey, 1, 4_000)];
    // The settler's sends are lost (its RPC drops them): the payout is recorded and never lands.
    const realSend = Connection.prototype.sendRawTransaction;
    Connection.prototype.sendRawTransaction = () => Promise.reject(new Error('network down'));
    let stale;
    try {
      stale = (await redeemAt(settler, relay, items)).body;
      if (stale.status !== 'payout') throw new Error(JSON.stringify(stale));
      while ((await w.connection.getBlockHeight('finalized')) <= stale.lastValidBlockHeight) await new Promise((r) => setTimeout(r, 50));
    } finally {
      Connection.prototype.sendRawTransaction = realSend;
    }

    const fresh = (await redeemAt(settler, relay, items)).body;
    if (fresh.status !== 'payout') throw new Error(JSON.stringify(fresh));
    expect(fresh.signature).not.toBe(stale.signature);
    expect(fresh.lastValidBlockHeight).toBeGreaterThan(stale.lastValidBlockHeight);
    expect([fresh.amount, fresh.cumulativePaid]).toEqual([stale.amount, stale.cumulativePaid]);

    await expect(confirmPayout(w, stale)).rejects.toThrow();
    await confirmPayout(w, fresh);
    const relayAta = getAssociatedTokenAddressSync(w.mint.mint, relay.keypair.publicKey);
    expect(await tokenBalance(w, relayAta)).toBe(BigInt(fresh.amount));
    expect(await tokenBalance(w, w.treasuryTokenAccount)).toBe(TREASURY_FUNDS - BigInt(fresh.amount));
    await expect
      .poll(async () => (await redeemAt(settler, relay, items)).body)
      .toEqual({ status: 'nothing-owed', cumulativePaid: fresh.amount, credited: [{ index: 0, credited: fresh.amount }] });
    expect((await getJson(`${settler.url}${relayStatusPath(relay.id)}`)).body).toEqual({ owed: '0', cumulativePaid: fresh.amount, pending: null });
  });
});
