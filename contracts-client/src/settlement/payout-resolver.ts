import { PublicKey, type Connection } from '@solana/web3.js';
import { runStep } from '../setup/step.js';
import { readTransaction, walkHistory, type ChainCallOptions } from './chain-history.js';
import { formatPayoutMemo } from './payout-memo.js';
import type { PayoutRecord, SettlementLedger } from './settlement-ledger.js';

export type PayoutOutcome = 'confirmed' | 'void' | 'pending';

/** Bounds the history scanned for one payout: only transactions since its blockhash can be it. */
const MAX_SCANNED_PER_RESOLVE = 10_000;

/**
 * Settles the fate of an outstanding payout from the chain. The settler cannot know the
 * transaction id in advance (it is the relay's fee-payer signature), so it looks for a confirmed
 * transaction carrying the treasury's signature (the payout id) in the history of the relay's token
 * account since the payout's blockhash slot. Found and succeeded: confirmed (paid-to-date moves).
 * Found and failed: void. Not found and the block height (read BEFORE the search, so a payout
 * landing meanwhile is still found) is past lastValidBlockHeight: void, it can never land.
 * Otherwise it is still pending and is returned to the relay unchanged.
 */
export async function resolvePayout(connection: Connection, ledger: SettlementLedger, p: PayoutRecord, o: ChainCallOptions & { nowMs: number }): Promise<PayoutOutcome> {
  const height = await runStep('read block height', o.timeoutMs, o.signal, () => connection.getBlockHeight('finalized'));
  const memo = formatPayoutMemo({ relay: p.relay, cumulativePaid: p.cumulativePaid, merkleRoot: p.merkleRoot });
  let landed: { signature: string; failed: boolean } | undefined;
  const complete = await walkHistory(connection, new PublicKey(p.relayTokenAccount), { ...o, minSlot: p.createdSlot, maxEntries: MAX_SCANNED_PER_RESOLVE }, async (entry) => {
    // The RPC's memo summary is a cheap filter; the signature check below is the real one.
    if (entry.memo === null || !entry.memo.includes(memo)) return true;
    const tx = await readTransaction(connection, entry.signature, o);
    if (tx === null || !tx.transaction.signatures.includes(p.id)) return true;
    landed = { signature: tx.transaction.signatures[0]!, failed: tx.meta?.err != null };
    return false;
  });
  if (landed !== undefined) {
    if (landed.failed) {
      ledger.markVoid(p.id, o.nowMs, landed.signature);
      return 'void';
    }
    ledger.markConfirmed(p.id, landed.signature, o.nowMs);
    return 'confirmed';
  }
  if (complete && height > p.lastValidBlockHeight) {
    ledger.markVoid(p.id, o.nowMs);
    return 'void';
  }
  return 'pending';
}
