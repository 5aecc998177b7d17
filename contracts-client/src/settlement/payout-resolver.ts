import type { Connection } from '@solana/web3.js';
import type { Logger } from 'pino';
import { runStep } from '../setup/step.js';
import type { ChainCallOptions } from './chain-history.js';
import type { PayoutRecord, SettlementLedger } from './settlement-ledger.js';

/** `unknown`: expired and not found, but the node's history no longer reaches the payout's slot. */
export type PayoutOutcome = 'confirmed' | 'void' | 'pending' | 'unknown';

/**
 * Settles the fate of an outstanding payout from the chain, by its id alone. The treasury owner
 * is the fee payer, so the payout's id (its signature) is the transaction id:
 * getSignatureStatuses([id], { searchTransactionHistory: true }) finds it however much else
 * touched the relay's or the treasury's accounts since (no history scan anyone can flood).
 * Confirmed and succeeded: confirmed (paid-to-date moves). Confirmed and failed: void (its error
 * read with getTransaction, for the log). Not found while the finalized block height, read BEFORE
 * the lookup so a payout landing meanwhile is still found, is past lastValidBlockHeight: it can
 * never land, void — but only if the node still holds history back to the payout's blockhash slot
 * (getFirstAvailableBlock); otherwise "not found" proves nothing and the payout stays pending
 * (`unknown`) rather than risk paying twice.
 */
export async function resolvePayout(
  connection: Connection,
  ledger: SettlementLedger,
  p: PayoutRecord,
  o: ChainCallOptions & { nowMs: number; log?: Logger },
): Promise<PayoutOutcome> {
  const height = await runStep('read block height', o.timeoutMs, o.signal, () => connection.getBlockHeight('finalized'));
  const status = (await runStep('read payout status', o.timeoutMs, o.signal, () => connection.getSignatureStatuses([p.id], { searchTransactionHistory: true })))
    .value[0];
  if (status !== null && status !== undefined && (status.confirmationStatus === 'confirmed' || status.confirmationStatus === 'finalized')) {
    if (status.err !== null) {
      const tx = await runStep('read failed payout', o.timeoutMs, o.signal, () =>
        connection.getTransaction(p.id, { commitment: 'confirmed', maxSupportedTransactionVersion: 0 }),
      ).catch(() => null);
      o.log?.warn(
        { payout: p.id, relay: p.relay, err: status.err, logs: tx?.meta?.logMessages?.slice(-5) },
        'payout landed and failed; it is void and will be rebuilt',
      );
      ledger.markVoid(p.id, o.nowMs, p.id);
      return 'void';
    }
    ledger.markConfirmed(p.id, p.id, o.nowMs);
    return 'confirmed';
  }
  if (status === null && height > p.lastValidBlockHeight) {
    const first = await runStep('read first available block', o.timeoutMs, o.signal, () => connection.getFirstAvailableBlock());
    if (first <= p.createdSlot) {
      ledger.markVoid(p.id, o.nowMs);
      return 'void';
    }
    o.log?.error(
      { payout: p.id, relay: p.relay, createdSlot: p.createdSlot, firstAvailableBlock: first },
      'payout expired unfound, but the RPC node no longer holds history back to its slot: it stays pending (use an RPC node with full transaction history)',
    );
    return 'unknown';
  }
  return 'pending';
}
