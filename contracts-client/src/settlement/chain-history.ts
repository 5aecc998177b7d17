import type { ConfirmedSignatureInfo, Connection, PublicKey, VersionedTransactionResponse } from '@solana/web3.js';
import { HISTORY_PAGE_SIZE } from '../constants.js';
import { runStep } from '../setup/step.js';

export interface ChainCallOptions {
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}

/**
 * Walks an address's confirmed history newest first, one RPC page at a time, and stops when
 * `visit` returns false, when an entry is older than `minSlot`, or after `maxEntries`. Resolves
 * false only in the last case: the walk was cut short and callers must not conclude "absent".
 */
export async function walkHistory(
  connection: Connection,
  address: PublicKey,
  o: ChainCallOptions & { minSlot?: number; maxEntries: number },
  visit: (entry: ConfirmedSignatureInfo) => Promise<boolean>,
): Promise<boolean> {
  let before: string | undefined;
  let seen = 0;
  for (;;) {
    const page = await runStep('read history', o.timeoutMs, o.signal, () =>
      connection.getSignaturesForAddress(address, { limit: HISTORY_PAGE_SIZE, before }, 'confirmed'),
    );
    for (const entry of page) {
      if (o.minSlot !== undefined && entry.slot < o.minSlot) return true;
      if (++seen > o.maxEntries) return false;
      if (!(await visit(entry))) return true;
    }
    if (page.length < HISTORY_PAGE_SIZE) return true;
    before = page[page.length - 1]!.signature;
  }
}

export function readTransaction(connection: Connection, signature: string, o: ChainCallOptions): Promise<VersionedTransactionResponse | null> {
  return runStep('read transaction', o.timeoutMs, o.signal, () =>
    connection.getTransaction(signature, { commitment: 'confirmed', maxSupportedTransactionVersion: 0 }),
  );
}

/** Memo texts of a transaction's top-level Memo instructions. */
export function memoTexts(tx: VersionedTransactionResponse, memoProgram: PublicKey): string[] {
  const msg = tx.transaction.message;
  const keys = msg.staticAccountKeys;
  const out: string[] = [];
  for (const ix of msg.compiledInstructions) {
    if (keys[ix.programIdIndex]?.equals(memoProgram) === true) out.push(Buffer.from(ix.data).toString('utf8'));
  }
  return out;
}

/** True when `key` signed the transaction. */
export function signedBy(tx: VersionedTransactionResponse, key: PublicKey): boolean {
  const msg = tx.transaction.message;
  return msg.staticAccountKeys.some((k, i) => i < msg.header.numRequiredSignatures && k.equals(key));
}
