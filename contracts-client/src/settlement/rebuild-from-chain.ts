import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { MEMO_PROGRAM_ID, parsePayoutMemo } from '@relaycast/protocol/settlement';
import { unpackAccount } from '@solana/spl-token';
import { PublicKey, type Connection } from '@solana/web3.js';
import { DEFAULT_REBUILD_MAX_TRANSACTIONS, DEFAULT_SETTLER_RPC_TIMEOUT_MS } from '../constants.js';
import { runStep } from '../setup/step.js';
import { memoTexts, readTransaction, signedBy, walkHistory } from './chain-history.js';

export interface RebuildOptions {
  /** Deadline of each RPC call. Default: 30,000. */
  timeoutMs?: number;
  /** Most transactions read. Default: 1,000,000. */
  maxTransactions?: number;
  /** Aborts the rebuild. Default: none. */
  signal?: AbortSignal;
}

/**
 * Paid-to-date per relay (base58 → base units) as the chain shows it: the highest `paid=` of the
 * payout memos in successful transactions on the treasury token account that the treasury's owner
 * signed (anyone can send a transaction mentioning the account, only the owner can sign ours).
 * Memos carry the cumulative total, so lost or reordered history pages cannot double-count.
 */
export async function rebuildPaidFromChain(connection: Connection, treasuryTokenAccount: PublicKey, o: RebuildOptions = {}): Promise<Map<string, bigint>> {
  const call = { timeoutMs: o.timeoutMs ?? DEFAULT_SETTLER_RPC_TIMEOUT_MS, signal: o.signal };
  const info = await runStep('read treasury account', call.timeoutMs, call.signal, () => connection.getAccountInfo(treasuryTokenAccount, 'confirmed'));
  if (info === null) throw new RelaycastError(ErrorCode.CHAIN_REQUEST_FAILED, `treasury token account ${treasuryTokenAccount.toBase58()} does not exist`);
  const owner = unpackAccount(treasuryTokenAccount, info, info.owner).owner;
  const memoProgram = new PublicKey(MEMO_PROGRAM_ID);
  const paid = new Map<string, bigint>();
  const complete = await walkHistory(
    connection,
    treasuryTokenAccount,
    { ...call, maxEntries: o.maxTransactions ?? DEFAULT_REBUILD_MAX_TRANSACTIONS },
    async (entry) => {
      if (entry.err !== null || entry.memo === null) return true;
      const tx = await readTransaction(connection, entry.signature, call);
      if (tx === null || tx.meta?.err != null || !signedBy(tx, owner)) return true;
      for (const text of memoTexts(tx, memoProgram)) {
        const memo = parsePayoutMemo(text);
        if (memo !== undefined && memo.cumulativePaid > (paid.get(memo.relay) ?? 0n)) paid.set(memo.relay, memo.cumulativePaid);
      }
      return true;
    },
  );
  // A partial total would let the settler pay some relays twice.
  if (!complete)
    throw new RelaycastError(
      ErrorCode.CHAIN_REQUEST_FAILED,
      `treasury history exceeds ${o.maxTransactions ?? DEFAULT_REBUILD_MAX_TRANSACTIONS} transactions; raise maxTransactions`,
    );
  return paid;
}
