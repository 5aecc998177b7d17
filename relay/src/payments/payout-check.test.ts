import { ErrorCode, encodeBase58 } from '@relaycast/protocol';
import { MEMO_PROGRAM_ID, formatPayoutMemo } from '@relaycast/protocol/settlement';
import { TOKEN_PROGRAM_ID, createTransferCheckedInstruction, getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Keypair, PublicKey, SystemProgram, Transaction, TransactionInstruction } from '@solana/web3.js';
import { describe, expect, it } from 'vitest';
import { checkPayoutTransaction, type PayoutExpectation } from './payout-check.js';

const MEMO = new PublicKey(MEMO_PROGRAM_ID);
const ROOT = 'ab'.repeat(32);
const relay = Keypair.generate();
const treasury = Keypair.generate();
const mint = Keypair.generate().publicKey;
const otherMint = Keypair.generate().publicKey;
const treasuryAccount = getAssociatedTokenAddressSync(mint, treasury.publicKey);
const relayAccount = getAssociatedTokenAddressSync(mint, relay.publicKey);
const BLOCKHASH = Keypair.generate().publicKey.toBase58();

interface Build {
  feePayer?: PublicKey;
  source?: PublicKey;
  mint?: PublicKey;
  destination?: PublicKey;
  owner?: Keypair;
  amount?: bigint;
  decimals?: number;
  memo?: string;
  extra?: TransactionInstruction[];
  /** Further signers (a fee payer other than the owner). */
  cosigners?: Keypair[];
  dropMemo?: boolean;
  memoFirst?: boolean;
  sign?: boolean;
}

const expectation: PayoutExpectation = {
  relay: relay.publicKey,
  payer: treasury.publicKey,
  mint,
  amount: 1_500n,
  paidToDate: 1_000n,
  treasuryTokenAccount: treasuryAccount,
  decimals: 6,
  merkleRoot: ROOT,
};

function build(b: Build = {}): Uint8Array {
  const owner = b.owner ?? treasury;
  const tx = new Transaction({ feePayer: b.feePayer ?? treasury.publicKey, blockhash: BLOCKHASH, lastValidBlockHeight: 100 });
  const transfer = createTransferCheckedInstruction(
    b.source ?? treasuryAccount,
    b.mint ?? mint,
    b.destination ?? relayAccount,
    owner.publicKey,
    b.amount ?? 1_500n,
    b.decimals ?? 6,
    [],
    TOKEN_PROGRAM_ID,
  );
  const memo = new TransactionInstruction({
    programId: MEMO,
    keys: [],
    data: Buffer.from(b.memo ?? formatPayoutMemo({ relay: relay.publicKey.toBase58(), cumulativePaid: 2500n, merkleRoot: ROOT }), 'utf8'),
  });
  const list = b.dropMemo === true ? [transfer] : b.memoFirst === true ? [memo, transfer] : [transfer, memo];
  tx.add(...list, ...(b.extra ?? []));
  if (b.sign !== false) tx.partialSign(owner, ...(b.cosigners ?? []));
  return new Uint8Array(tx.serialize({ requireAllSignatures: false, verifySignatures: false }));
}

function refusal(wire: Uint8Array, exp: PayoutExpectation = expectation): string | undefined {
  try {
    checkPayoutTransaction(wire, exp);
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe('checkPayoutTransaction', () => {
  it('accepts the payout the relay expects', () => {
    const checked = checkPayoutTransaction(build(), expectation);
    expect(checked.amount).toBe(1_500n);
    expect(checked.cumulativePaid).toBe(2_500n);
    expect(checked.owner.equals(treasury.publicKey)).toBe(true);
    // The id is the treasury owner's fee-payer signature, known before anything is sent.
    expect(checked.signature).toBe(encodeBase58(checked.transaction.signature as Buffer));
    // Without the optional facts it still holds.
    expect(refusal(build(), { relay: relay.publicKey, payer: treasury.publicKey, mint, amount: 1_500n, paidToDate: 1_000n })).toBeUndefined();
  });

  it('accepts a payout below what is owed (the settler’s outstanding one, built before its latest credits) when its memo adds up', () => {
    const checked = checkPayoutTransaction(
      build({ amount: 1_200n, memo: formatPayoutMemo({ relay: relay.publicKey.toBase58(), cumulativePaid: 2200n, merkleRoot: ROOT }) }),
      expectation,
    );
    expect(checked).toMatchObject({ amount: 1_200n, cumulativePaid: 2_200n });
  });

  it('refuses any transaction whose fee payer, instructions, destination, mint, amount, source or memo differ', () => {
    const stranger = Keypair.generate();
    const cases: [string, Uint8Array, PayoutExpectation?][] = [
      ['fee payer', build({ feePayer: stranger.publicKey, cosigners: [stranger] })],
      ['the relay as fee payer (the old model: the relay would pay the fee)', build({ feePayer: relay.publicKey, cosigners: [relay] })],
      ['the relay as fee payer, unsigned', build({ feePayer: relay.publicKey })],
      ['destination', build({ destination: getAssociatedTokenAddressSync(mint, stranger.publicKey) })],
      ['mint', build({ mint: otherMint, destination: getAssociatedTokenAddressSync(otherMint, relay.publicKey) })],
      ['amount above', build({ amount: 1_501n })],
      ['amount below, memo not adding up', build({ amount: 1_499n })],
      ['decimals', build({ decimals: 9 })],
      ['source', build({ source: getAssociatedTokenAddressSync(mint, stranger.publicKey), owner: stranger })],
      ['spends from the relay', build({ source: relayAccount, owner: relay, destination: relayAccount }), { ...expectation, treasuryTokenAccount: undefined }],
      ['extra instruction', build({ extra: [SystemProgram.transfer({ fromPubkey: treasury.publicKey, toPubkey: stranger.publicKey, lamports: 1 })] })],
      ['asks the relay to sign', build({ extra: [SystemProgram.transfer({ fromPubkey: relay.publicKey, toPubkey: stranger.publicKey, lamports: 1 })] })],
      ['no memo', build({ dropMemo: true })],
      ['memo first', build({ memoFirst: true })],
      ['memo paid total', build({ memo: formatPayoutMemo({ relay: relay.publicKey.toBase58(), cumulativePaid: 1500n, merkleRoot: ROOT }) })],
      ['memo relay', build({ memo: formatPayoutMemo({ relay: stranger.publicKey.toBase58(), cumulativePaid: 2500n, merkleRoot: ROOT }) })],
      ['memo root', build({ memo: formatPayoutMemo({ relay: relay.publicKey.toBase58(), cumulativePaid: 2500n, merkleRoot: 'cd'.repeat(32) }) })],
      ['memo text', build({ memo: 'hello' })],
      ['unsigned by the treasury', build({ sign: false })],
      ['not a transaction', new Uint8Array([1, 2, 3])],
      [
        'nothing owed',
        build({ amount: 0n, memo: formatPayoutMemo({ relay: relay.publicKey.toBase58(), cumulativePaid: 1000n, merkleRoot: ROOT }) }),
        { ...expectation, amount: 0n },
      ],
    ];
    for (const [name, wire, exp] of cases) expect(refusal(wire, exp), name).toBe(ErrorCode.PAYOUT_MISMATCH);
  });

  it('refuses a treasury signature that does not cover the message', () => {
    const wire = build();
    // Change the memo's root after signing (still a well-formed memo; the root is not checked here).
    wire[wire.byteLength - 1] = (wire[wire.byteLength - 1] as number) ^ 0x01;
    expect(refusal(wire, { ...expectation, merkleRoot: undefined })).toBe(ErrorCode.PAYOUT_MISMATCH);
    expect(refusal(build(), { ...expectation, merkleRoot: undefined })).toBeUndefined();
  });
});
