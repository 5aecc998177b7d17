import { encodeBase58 } from '@relaycast/protocol';
import { MEMO_PROGRAM_ID, formatPayoutMemo } from '@relaycast/protocol/settlement';
import { createTransferCheckedInstruction } from '@solana/spl-token';
import { PublicKey, Transaction, TransactionInstruction, type Keypair } from '@solana/web3.js';

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
  /** Legacy wire bytes, fully signed by the treasury owner (the fee payer and only signer). */
  transaction: Uint8Array;
  /** The treasury owner's signature, base58: the payout's id and its transaction id. */
  id: string;
}

const MEMO_PROGRAM = new PublicKey(MEMO_PROGRAM_ID);

/**
 * The payout transaction of docs/PAYMENTS.md: exactly transferChecked (treasury account → the
 * relay's associated token account) and the payout memo, signed by the treasury owner alone, who
 * is also the fee payer. So the transaction id (the fee payer's signature) is known the moment the
 * settler builds it, and the payout is found by that id, never by searching anyone's history.
 * The memo lists no signer accounts: the treasury's signature already covers the whole message,
 * and the relay can check the instruction list is exactly this.
 */
export function buildPayoutTransaction(p: PayoutPlan): BuiltPayout {
  const tx = new Transaction({ feePayer: p.treasury.publicKey, blockhash: p.blockhash, lastValidBlockHeight: p.lastValidBlockHeight });
  tx.add(
    createTransferCheckedInstruction(p.treasuryTokenAccount, p.mint, p.relayTokenAccount, p.treasury.publicKey, p.amount, p.decimals, [], p.tokenProgramId),
    new TransactionInstruction({
      programId: MEMO_PROGRAM,
      keys: [],
      data: Buffer.from(formatPayoutMemo({ relay: p.relay.toBase58(), cumulativePaid: p.cumulativePaid, merkleRoot: p.merkleRoot }), 'utf8'),
    }),
  );
  tx.sign(p.treasury);
  const sig = tx.signature;
  if (sig === null) throw new Error('treasury signature missing after sign');
  return { transaction: new Uint8Array(tx.serialize()), id: encodeBase58(sig) };
}
