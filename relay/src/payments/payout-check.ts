import { ErrorCode, RelaycastError, encodeBase58 } from '@relaycast/protocol';
import { MEMO_PROGRAM_IDS, parsePayoutMemo } from '@relaycast/protocol/settlement';
import { TOKEN_2022_PROGRAM_ID, TOKEN_PROGRAM_ID, decodeTransferCheckedInstruction, getAssociatedTokenAddressSync } from '@solana/spl-token';
import { PublicKey, Transaction } from '@solana/web3.js';

/** SPL Memo v2 and v1: the memo may be either (both exist on every cluster). */
const MEMO_PROGRAMS = MEMO_PROGRAM_IDS.map((k) => new PublicKey(k));
const TOKEN_PROGRAMS = [TOKEN_PROGRAM_ID, TOKEN_2022_PROGRAM_ID];

/** What the relay's own accounting says a payout must be. */
export interface PayoutExpectation {
  /** The relay: owner of the destination account; never a signer. */
  relay: PublicKey;
  /** The payer's key (its treasury owner, GET /v1/info `payer`): the fee payer, whose signature is the transaction id. */
  payer: PublicKey;
  /** The mint of the payer's grants. */
  mint: PublicKey;
  /**
   * Σ credited by this payer's settler − paid to date: what the relay is owed. A payout moves at
   * most this (exactly this normally; less only when the settler's outstanding payout was built
   * before its latest credits, and the rest follows in the next one).
   */
  amount: bigint;
  /** Confirmed payouts of this payer so far (the memo must say paidToDate + amount). */
  paidToDate: bigint;
  /** The payer's treasury token account, when its settler told it (GET /v1/info). */
  treasuryTokenAccount?: PublicKey | undefined;
  /** The mint's decimals, when known. */
  decimals?: number | undefined;
  /** The settler's merkleRoot field; the memo must carry the same. */
  merkleRoot?: string | undefined;
}

export interface CheckedPayout {
  transaction: Transaction;
  /** The transaction id: base58 of the fee payer's signature. */
  signature: string;
  amount: bigint;
  cumulativePaid: bigint;
  /** The treasury owner that signed the transfer. */
  owner: PublicKey;
}

function mismatch(message: string, details?: Record<string, unknown>): RelaycastError {
  return new RelaycastError(ErrorCode.PAYOUT_MISMATCH, `payout refused: ${message}`, details === undefined ? {} : { details });
}

/**
 * Checks a settler's payout transaction against the relay's own accounting before the relay records
 * and (re)submits it: the payer's treasury owner is the fee payer and has signed everything (the
 * relay signs nothing and pays no fee), exactly [transferChecked, memo], the transfer moves the
 * grant mint from the treasury (never from the relay) into the relay's associated token account, at
 * most what the settler credits minus what it paid (normally exactly that), and the memo commits to
 * the new paid-to-date total. Throws RC_ERR_PAYOUT_MISMATCH otherwise.
 */
export function checkPayoutTransaction(wire: Uint8Array, exp: PayoutExpectation): CheckedPayout {
  let tx: Transaction;
  try {
    tx = Transaction.from(wire);
  } catch (err) {
    throw mismatch(`not a legacy transaction: ${(err as Error).message}`);
  }
  if (tx.feePayer === undefined || !tx.feePayer.equals(exp.payer)) {
    throw mismatch('the payer (treasury owner) is not the fee payer', { feePayer: tx.feePayer?.toBase58(), expected: exp.payer.toBase58() });
  }
  if (tx.instructions.length !== 2) throw mismatch(`expected exactly transferChecked + memo, got ${tx.instructions.length} instructions`);
  const [transfer, memo] = tx.instructions as [Transaction['instructions'][number], Transaction['instructions'][number]];

  const tokenProgram = TOKEN_PROGRAMS.find((p) => p.equals(transfer.programId));
  if (tokenProgram === undefined) throw mismatch('first instruction is not an SPL Token instruction', { programId: transfer.programId.toBase58() });
  let decoded: ReturnType<typeof decodeTransferCheckedInstruction>;
  try {
    decoded = decodeTransferCheckedInstruction(transfer, tokenProgram);
  } catch (err) {
    throw mismatch(`first instruction is not transferChecked: ${(err as Error).message}`);
  }
  const { source, mint, destination, owner, multiSigners } = decoded.keys;
  if (multiSigners.length > 0) throw mismatch('transfer uses a multisig owner');
  if (!mint.pubkey.equals(exp.mint)) throw mismatch('wrong mint', { mint: mint.pubkey.toBase58(), expected: exp.mint.toBase58() });
  const ownAccount = getAssociatedTokenAddressSync(exp.mint, exp.relay, true, tokenProgram);
  if (!destination.pubkey.equals(ownAccount))
    throw mismatch('destination is not the relay’s associated token account', { destination: destination.pubkey.toBase58() });
  // Whatever else is true, a payout must never spend from the relay itself.
  if (owner.pubkey.equals(exp.relay) || source.pubkey.equals(ownAccount)) throw mismatch('transfer spends from the relay');
  if (exp.treasuryTokenAccount !== undefined && !source.pubkey.equals(exp.treasuryTokenAccount)) {
    throw mismatch('source is not the payer’s treasury account', { source: source.pubkey.toBase58() });
  }
  if (exp.decimals !== undefined && decoded.data.decimals !== exp.decimals) throw mismatch('wrong decimals', { decimals: decoded.data.decimals });
  const amount = decoded.data.amount;
  if (amount <= 0n) throw mismatch('the payout moves nothing');
  if (amount > exp.amount) {
    throw mismatch('amount exceeds what the settler credits minus what it paid', { amount: amount.toString(), expected: exp.amount.toString() });
  }

  if (!MEMO_PROGRAMS.some((p) => p.equals(memo.programId))) throw mismatch('second instruction is not a memo', { programId: memo.programId.toBase58() });
  if (memo.keys.some((k) => k.isWritable)) throw mismatch('memo names writable accounts');
  const m = parsePayoutMemo(memo.data.toString('utf8'));
  if (m === undefined) throw mismatch('memo is not a relaycast payout memo');
  const cumulativePaid = m.cumulativePaid;
  if (m.relay !== exp.relay.toBase58()) throw mismatch('memo names another relay', { relay: m.relay });
  if (cumulativePaid !== exp.paidToDate + amount) {
    throw mismatch('memo paid total differs from paid to date + amount', { paid: cumulativePaid.toString(), expected: (exp.paidToDate + amount).toString() });
  }
  if (exp.merkleRoot !== undefined && m.merkleRoot !== exp.merkleRoot) throw mismatch('memo root differs from the settler’s merkleRoot');

  // The relay is no signer at all; every signature the message needs is there and verifies.
  if (tx.signatures.some((s) => s.publicKey.equals(exp.relay))) throw mismatch('the relay is asked to sign');
  if (!tx.signatures.some((s) => s.publicKey.equals(owner.pubkey) && s.signature != null)) throw mismatch('the treasury owner has not signed');
  if (!tx.verifySignatures(true)) throw mismatch('the transaction is not fully signed, or a signature does not verify');
  const feePayerSig = tx.signature;
  if (feePayerSig === null) throw mismatch('the fee payer has not signed');
  return { transaction: tx, signature: encodeBase58(feePayerSig), amount, cumulativePaid, owner: owner.pubkey };
}
