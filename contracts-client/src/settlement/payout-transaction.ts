import { encodeBase58 } from '@relaycast/protocol';
import { createTransferCheckedInstruction } from '@solana/spl-token';
import { PublicKey, Transaction, TransactionInstruction, type Keypair } from '@solana/web3.js';
import { MEMO_PROGRAM_ID } from '../constants.js';
import { formatPayoutMemo } from './payout-memo.js';

export interface PayoutPlan {
  treasury: Keypair;
  treasuryTokenAccount: PublicKey;
  mint: PublicKey;
  decimals: number;
  /** SPL Token or Token-2022, whichever owns the mint. */
  tokenProgramId: PublicKey;
  relay: PublicKey;
  relayTokenAccount: PublicKey;
  amount: bigint;
  cumulativePaid: bigint;
  merkleRoot: string;
  blockhash: string;
  lastValidBlockHeight: number;
}

export interface BuiltPayout {
  /** Legacy wire bytes: treasury signature present, the relay's (fee payer) slot still empty. */
  transaction: Uint8Array;
  /** The treasury owner's signature, base58: the payout's id. */
  id: string;
}

const MEMO_PROGRAM = new PublicKey(MEMO_PROGRAM_ID);

/**
 * The payout transaction of docs/PAYMENTS.md: exactly transferChecked (treasury account → the
 * relay's associated token account) and the payout memo, relay as fee payer, partially signed by
 * the treasury owner. The memo lists no signer accounts: the treasury's signature already covers
 * the whole message, and the relay can check the instruction list is exactly this.
 */
export function buildPayoutTransaction(p: PayoutPlan): BuiltPayout {
  const tx = new Transaction({ feePayer: p.relay, blockhash: p.blockhash, lastValidBlockHeight: p.lastValidBlockHeight });
  tx.add(
    createTransferCheckedInstruction(p.treasuryTokenAccount, p.mint, p.relayTokenAccount, p.treasury.publicKey, p.amount, p.decimals, [], p.tokenProgramId),
    new TransactionInstruction({
      programId: MEMO_PROGRAM,
      keys: [],
      data: Buffer.from(formatPayoutMemo({ relay: p.relay.toBase58(), cumulativePaid: p.cumulativePaid, merkleRoot: p.merkleRoot }), 'utf8'),
    }),
  );
  tx.partialSign(p.treasury);
  const sig = tx.signatures.find((s) => s.publicKey.equals(p.treasury.publicKey))?.signature;
  if (sig === null || sig === undefined) throw new Error('treasury signature missing after partialSign');
  return {
    transaction: new Uint8Array(tx.serialize({ requireAllSignatures: false, verifySignatures: false })),
    id: encodeBase58(sig),
  };
}
