import { Connection, Keypair, LAMPORTS_PER_SOL, SystemProgram, Transaction, sendAndConfirmTransaction } from '@solana/web3.js';
import { afterEach, describe, expect, it } from 'vitest';
import { startEmbeddedChain, type EmbeddedChain } from './chain-server.js';

/** What the settler's resolution by id relies on: old signatures found with searchTransactionHistory, and the history's reach. */
describe('embedded chain: signature statuses of old transactions', () => {
  let chain: EmbeddedChain | undefined;
  afterEach(async () => {
    await chain?.close();
    chain = undefined;
  });

  async function funded(c: Connection): Promise<Keypair> {
    const payer = Keypair.generate();
    await c.confirmTransaction(await c.requestAirdrop(payer.publicKey, LAMPORTS_PER_SOL), 'confirmed');
    return payer;
  }
  const send = (c: Connection, payer: Keypair, lamports: number): Promise<string> =>
    sendAndConfirmTransaction(
      c,
      new Transaction().add(SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: Keypair.generate().publicKey, lamports: 1_000_000 + lamports })),
      [payer],
    );

  it('finds a signature older than the status cache only with searchTransactionHistory, as a node does', async () => {
    chain = await startEmbeddedChain({ port: 0, slotMs: 5 });
    const c = new Connection(chain.rpcUrl, 'confirmed');
    const signature = await send(c, await funded(c), 1_000);
    const slot = (await c.getSignatureStatus(signature)).value?.slot ?? 0;
    while ((await c.getSlot()) < slot + 310) await new Promise((r) => setTimeout(r, 50));
    expect((await c.getSignatureStatus(signature)).value).toBeNull();
    const found = (await c.getSignatureStatuses([signature], { searchTransactionHistory: true })).value[0];
    expect(found).toMatchObject({ slot, err: null, confirmationStatus: 'finalized' });
    expect((await c.getTransaction(signature, { maxSupportedTransactionVersion: 0 }))?.meta?.err).toBeNull();
    expect(await c.getFirstAvailableBlock()).toBe(0);
  });

  it('getFirstAvailableBlock / minimumLedgerSlot move past what the bounded history forgot', async () => {
    chain = await startEmbeddedChain({ port: 0, slotMs: 20, maxHistoryTransactions: 3 });
    const c = new Connection(chain.rpcUrl, 'confirmed');
    const payer = await funded(c);
    // The airdrop is a history record too: airdrop, first, second fill it.
    const first = await send(c, payer, 1_000);
    await send(c, payer, 1_001);
    expect(await c.getFirstAvailableBlock()).toBe(0);
    await send(c, payer, 1_002);
    await send(c, payer, 1_003);
    const firstSlot = (await c.getSignatureStatuses([first], { searchTransactionHistory: true })).value[0];
    expect(firstSlot).toBeNull();
    expect(await c.getFirstAvailableBlock()).toBeGreaterThan(0);
    expect(await c.getMinimumLedgerSlot()).toBe(await c.getFirstAvailableBlock());
  });
});
