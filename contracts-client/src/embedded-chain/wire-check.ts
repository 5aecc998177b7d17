/**
 * Strict structural check of a serialized transaction, run before any bytes reach litesvm.
 * litesvm's native binding deserializes with `unwrap()`: bytes its Rust decoder rejects abort the
 * whole process (found by fuzzing the chain's sendTransaction). This accepts exactly the layouts
 * that decoder accepts — canonical short_vec lengths, legacy or v0 messages, no trailing bytes —
 * plus the cheap consistency rules a cluster's sanitize step applies, so anything else is
 * answered with an invalid-params error instead.
 */

const SIGNATURE_BYTES = 64;
const KEY_BYTES = 32;

class Reader {
  offset = 0;
  constructor(readonly bytes: Uint8Array) {}

  u8(): number {
    if (this.offset >= this.bytes.byteLength) throw new Error('truncated');
    return this.bytes[this.offset++]!;
  }

  skip(n: number): void {
    if (this.offset + n > this.bytes.byteLength) throw new Error('truncated');
    this.offset += n;
  }

  /** Solana's compact-u16 ("short_vec" length): 1-3 bytes, no alias encodings, at most 0xffff. */
  shortU16(): number {
    let value = 0;
    for (let i = 0; i < 3; i++) {
      const b = this.u8();
      value |= (b & 0x7f) << (7 * i);
      if ((b & 0x80) === 0) {
        if (i > 0 && b === 0) throw new Error('non-canonical length');
        if (value > 0xffff) throw new Error('length overflow');
        return value;
      }
    }
    throw new Error('length overflow');
  }
}

/** undefined when `wire` is a well-formed legacy or v0 transaction; otherwise why it is not. */
export function checkWireTransaction(wire: Uint8Array): string | undefined {
  const r = new Reader(wire);
  try {
    const signatureCount = r.shortU16();
    r.skip(signatureCount * SIGNATURE_BYTES);
    const prefix = r.u8();
    let numRequiredSignatures: number;
    const versioned = (prefix & 0x80) !== 0;
    if (versioned) {
      if ((prefix & 0x7f) !== 0) return `unsupported transaction version ${prefix & 0x7f}`;
      numRequiredSignatures = r.u8();
    } else {
      numRequiredSignatures = prefix;
    }
    const numReadonlySigned = r.u8();
    const numReadonlyUnsigned = r.u8();
    const keyCount = r.shortU16();
    r.skip(keyCount * KEY_BYTES);
    r.skip(KEY_BYTES); // recent blockhash
    const instructions: { program: number; accounts: number[] }[] = [];
    const ixCount = r.shortU16();
    for (let i = 0; i < ixCount; i++) {
      const program = r.u8();
      const accounts: number[] = [];
      const n = r.shortU16();
      for (let j = 0; j < n; j++) accounts.push(r.u8());
      r.skip(r.shortU16());
      instructions.push({ program, accounts });
    }
    let lookedUp = 0;
    if (versioned) {
      const lookups = r.shortU16();
      for (let i = 0; i < lookups; i++) {
        r.skip(KEY_BYTES);
        const writable = r.shortU16();
        r.skip(writable);
        const readonly = r.shortU16();
        r.skip(readonly);
        lookedUp += writable + readonly;
      }
    }
    if (r.offset !== wire.byteLength) return 'trailing bytes after the transaction';
    if (signatureCount !== numRequiredSignatures) return 'signature count does not match the message header';
    if (numRequiredSignatures === 0 || numRequiredSignatures > keyCount) return 'invalid message header';
    if (numReadonlySigned >= numRequiredSignatures || numReadonlyUnsigned > keyCount - numRequiredSignatures) return 'invalid message header';
    const totalKeys = keyCount + lookedUp;
    if (totalKeys > 256) return 'too many account keys';
    for (const ix of instructions) {
      // Program ids must be static keys and never the fee payer.
      if (ix.program === 0 || ix.program >= keyCount) return 'instruction program index out of range';
      if (ix.accounts.some((a) => a >= totalKeys)) return 'instruction account index out of range';
    }
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
