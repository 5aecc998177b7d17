import { getTransactionDecoder, getTransactionEncoder } from '@solana/kit';
import { Keypair, PublicKey, SystemProgram, Transaction, TransactionInstruction, TransactionMessage, VersionedTransaction } from '@solana/web3.js';
import { MEMO_PROGRAM_ID } from '@relaycast/protocol/settlement';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkWireTransaction } from './wire-check.js';

const payer = Keypair.generate();
const blockhash = Keypair.generate().publicKey.toBase58();
const instructions = [
  SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: Keypair.generate().publicKey, lamports: 1 }),
  new TransactionInstruction({ programId: new PublicKey(MEMO_PROGRAM_ID), keys: [], data: Buffer.from('memo') }),
];
const legacy = (() => {
  const tx = new Transaction({ feePayer: payer.publicKey, recentBlockhash: blockhash }).add(...instructions);
  tx.sign(payer);
  return Uint8Array.from(tx.serialize());
})();
const v0 = (() => {
  const tx = new VersionedTransaction(new TransactionMessage({ payerKey: payer.publicKey, recentBlockhash: blockhash, instructions }).compileToV0Message());
  tx.sign([payer]);
  return tx.serialize();
})();

describe('checkWireTransaction', () => {
  it('accepts legacy and v0 transactions', () => {
    expect(checkWireTransaction(legacy)).toBeUndefined();
    expect(checkWireTransaction(v0)).toBeUndefined();
  });

  it('refuses trailing bytes, truncation, unknown versions and alias lengths', () => {
    expect(checkWireTransaction(Uint8Array.of(...legacy, 0))).toBeDefined();
    expect(checkWireTransaction(legacy.subarray(0, legacy.byteLength - 1))).toBeDefined();
    const v1 = v0.slice();
    v1[1 + 64] = 0x81;
    expect(checkWireTransaction(v1)).toBeDefined();
    // 0x81 0x00 encodes 1 like 0x01 does: Solana's decoder refuses the alias.
    expect(checkWireTransaction(Uint8Array.of(0x81, 0x00, ...legacy.subarray(1)))).toBeDefined();
  });

  it('whatever it accepts, kit decodes and re-encodes to the same bytes (so litesvm gets exactly what was sent)', () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        (useV0, edits, cut) => {
          const base = useV0 ? v0 : legacy;
          const w = base.slice();
          for (const [at, value] of edits) w[at % w.byteLength] = value;
          const input = cut % 5 === 0 ? w.subarray(0, cut % w.byteLength) : w;
          if (checkWireTransaction(input) !== undefined) return;
          const reencoded = getTransactionEncoder().encode(getTransactionDecoder().decode(input));
          expect(Buffer.from(reencoded).equals(Buffer.from(input))).toBe(true);
        },
      ),
      { numRuns: 2_000 },
    );
  });
});
