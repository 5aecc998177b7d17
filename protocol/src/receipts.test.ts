import { generateKeyPairSync, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrorCode, isRelaycastError } from './errors.js';
import { rawPublicKey } from './node/ed25519.js';
import { createHash } from 'node:crypto';
import { merkleRoot, receiptLeaf, signGrant, signReceipt, verifyGrantSignature, verifyReceiptSignature } from './node/payments.js';
import {
  GRANT_SIGNING_DOMAIN,
  MAX_SIGNED_GRANT_BYTES,
  SIGNED_RECEIPT_BYTES,
  amountForBytes,
  encodeSignedGrant as encodeGrant,
  grantSigningBytes,
  checkReceipt,
  decodeSignedGrant,
  decodeSignedReceipt,
  encodeSignedGrant,
  encodeSignedReceipt,
  type Receipt,
  type SessionGrant,
} from './receipts.js';
import { FrameType, decodeFrame, encodeFrame } from './relay-frames.js';

const keypair = () => generateKeyPairSync('ed25519').privateKey;
const payerKey = keypair();
const sessionKey = keypair();
const relay = new Uint8Array(randomBytes(32));
const GiB = 2 ** 30;

const grant: SessionGrant = {
  version: 2,
  sessionKey: rawPublicKey(sessionKey),
  payer: rawPublicKey(payerKey),
  mint: new Uint8Array(randomBytes(32)),
  pricePerGiB: 1_000_000n,
  budget: 5_000_000n,
  issuedAtMs: Date.now(),
  expiresAtMs: Date.now() + 3_600_000,
  maxBytesPerSec: 2_500_000,
  user: new Uint8Array(randomBytes(16)),
  scope: 'https://cdn.example.com/hls/',
  nonce: new Uint8Array(randomBytes(16)),
};

function receipt(over: Partial<Receipt> = {}): Receipt {
  const bytes = over.cumulativeBytes ?? 3 * GiB + 12_345;
  return {
    version: 1,
    grantNonce: grant.nonce,
    sessionKey: grant.sessionKey,
    relay,
    sequence: 7,
    cumulativeBytes: bytes,
    cumulativeAmount: amountForBytes(bytes, grant.pricePerGiB),
    timestampMs: Date.now(),
    ...over,
  };
}

function code(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isRelaycastError(err) ? err.code : 'not a RelaycastError';
  }
  return undefined;
}

describe('grants and receipts', () => {
  it('round-trip through their signed encodings and verify only untampered', () => {
    const sg = signGrant(grant, payerKey);
    const back = decodeSignedGrant(encodeSignedGrant(sg));
    expect(back).toEqual(sg);
    expect(verifyGrantSignature(back)).toBe(true);
    expect(verifyGrantSignature({ ...back, grant: { ...back.grant, budget: back.grant.budget + 1n } })).toBe(false);

    const sr = signReceipt(receipt(), sessionKey);
    const wire = encodeSignedReceipt(sr);
    expect(wire.byteLength).toBe(SIGNED_RECEIPT_BYTES);
    const decoded = decodeSignedReceipt(wire);
    expect(decoded).toEqual(sr);
    expect(verifyReceiptSignature(decoded)).toBe(true);
    // Every single-bit flip of the wire bytes breaks the signature or the decoding.
    for (let i = 0; i < wire.byteLength; i++) {
      const t = wire.slice();
      t[i] = (t[i] as number) ^ 0x01;
      let ok = false;
      try {
        ok = verifyReceiptSignature(decodeSignedReceipt(t));
      } catch (err) {
        expect(isRelaycastError(err, ErrorCode.RECEIPT_MALFORMED)).toBe(true);
      }
      expect(ok, `flip at byte ${i}`).toBe(false);
    }
  });

  it('prices the cumulative bytes with a floor, so rounding never accumulates', () => {
    expect(amountForBytes(GiB, 1_000_000n)).toBe(1_000_000n);
    expect(amountForBytes(GiB - 1, 1_000_000n)).toBe(999_999n);
    expect(amountForBytes(0, 1_000_000n)).toBe(0n);
    // Summing per-chunk amounts would lose up to 1 unit per chunk; the cumulative rule loses < 1 in total.
    const chunks = Array.from({ length: 1000 }, () => 1_000);
    const perChunk = chunks.reduce((a, b) => a + amountForBytes(b, 1_000_000n), 0n);
    expect(perChunk).toBe(0n);
    expect(amountForBytes(1_000_000, 1_000_000n)).toBe(931n);
  });

  it('checkReceipt refuses each kind of bad receipt with its own code', () => {
    const ctx = { relay };
    expect(code(() => checkReceipt(receipt(), grant, ctx))).toBeUndefined();
    expect(code(() => checkReceipt(receipt({ grantNonce: new Uint8Array(16) }), grant, ctx))).toBe(ErrorCode.RECEIPT_NO_GRANT);
    expect(code(() => checkReceipt(receipt({ sessionKey: rawPublicKey(keypair()) }), grant, ctx))).toBe(ErrorCode.RECEIPT_NO_GRANT);
    expect(code(() => checkReceipt(receipt({ relay: new Uint8Array(32) }), grant, ctx))).toBe(ErrorCode.RECEIPT_WRONG_RELAY);
    expect(code(() => checkReceipt(receipt({ cumulativeAmount: amountForBytes(3 * GiB + 12_345, grant.pricePerGiB) + 1n }), grant, ctx))).toBe(
      ErrorCode.RECEIPT_AMOUNT,
    );
    expect(code(() => checkReceipt(receipt({ cumulativeBytes: 6 * GiB }), grant, ctx))).toBe(ErrorCode.RECEIPT_OVER_BUDGET);
    // The viewer chooses timestampMs: it decides nothing (expiry is the checker's clock's business).
    expect(code(() => checkReceipt(receipt({ timestampMs: grant.expiresAtMs + 1 }), grant, ctx))).toBeUndefined();
    expect(code(() => checkReceipt(receipt({ timestampMs: 0 }), grant, ctx))).toBeUndefined();
    const previous = receipt();
    expect(code(() => checkReceipt(receipt({ sequence: 7 }), grant, { relay, previous }))).toBe(ErrorCode.RECEIPT_STALE);
    expect(code(() => checkReceipt(receipt({ sequence: 8, cumulativeBytes: 1 }), grant, { relay, previous }))).toBe(ErrorCode.RECEIPT_STALE);
    expect(code(() => checkReceipt(receipt({ sequence: 8, cumulativeBytes: 4 * GiB }), grant, { relay, previous }))).toBeUndefined();
  });

  it('ride the data channel in BIND and RECEIPT frames', () => {
    const sg = encodeSignedGrant(signGrant({ ...grant, scope: 's'.repeat(512) }, payerKey));
    expect(sg.byteLength).toBe(MAX_SIGNED_GRANT_BYTES);
    const sr = encodeSignedReceipt(signReceipt(receipt(), sessionKey));
    const proof = new Uint8Array(64).fill(7);
    expect(decodeFrame(encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: sg, proof }))).toEqual({
      type: FrameType.BIND,
      requestId: 0,
      signedGrant: sg,
      signedAssignment: undefined,
      proof,
    });
    expect(decodeFrame(encodeFrame({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: sr }))).toEqual({
      type: FrameType.RECEIPT,
      requestId: 0,
      signedReceipt: sr,
    });
    expect(code(() => encodeFrame({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: new Uint8Array(2000) }))).toBe(ErrorCode.FRAME_FIELD);
  });

  it('grant v2 has the documented layout, and v1 grants and inconsistent fields are refused', () => {
    const sg = signGrant(grant, payerKey);
    const wire = encodeGrant(sg);
    const scope = new TextEncoder().encode(grant.scope);
    expect(wire.byteLength).toBe(1 + 32 * 3 + 8 * 5 + 16 + 16 + 2 + scope.byteLength + 64);
    const view = new DataView(wire.buffer);
    expect(wire[0]).toBe(2);
    expect(wire.subarray(1, 33)).toEqual(grant.sessionKey);
    expect(wire.subarray(33, 65)).toEqual(grant.payer);
    expect(wire.subarray(65, 97)).toEqual(grant.mint);
    expect(view.getBigUint64(97)).toBe(grant.pricePerGiB);
    expect(view.getBigUint64(105)).toBe(grant.budget);
    expect(Number(view.getBigUint64(113))).toBe(grant.issuedAtMs);
    expect(Number(view.getBigUint64(121))).toBe(grant.expiresAtMs);
    expect(Number(view.getBigUint64(129))).toBe(grant.maxBytesPerSec);
    expect(wire.subarray(137, 153)).toEqual(grant.user);
    expect(wire.subarray(153, 169)).toEqual(grant.nonce);
    expect(view.getUint16(169)).toBe(scope.byteLength);
    expect(wire.subarray(171, 171 + scope.byteLength)).toEqual(scope);
    // Signed bytes: the unchanged domain string, then the body (everything before the signature).
    const domain = new TextEncoder().encode(GRANT_SIGNING_DOMAIN);
    expect(grantSigningBytes(grant)).toEqual(new Uint8Array(Buffer.concat([domain, wire.subarray(0, wire.byteLength - 64)])));

    const v1 = wire.slice();
    v1[0] = 1;
    expect(code(() => decodeSignedGrant(v1))).toBe(ErrorCode.RECEIPT_MALFORMED);
    const zeroRate = wire.slice();
    new DataView(zeroRate.buffer).setBigUint64(129, 0n);
    expect(code(() => decodeSignedGrant(zeroRate))).toBe(ErrorCode.RECEIPT_MALFORMED);
    const issuedLate = wire.slice();
    new DataView(issuedLate.buffer).setBigUint64(113, BigInt(grant.expiresAtMs + 1));
    expect(code(() => decodeSignedGrant(issuedLate))).toBe(ErrorCode.RECEIPT_MALFORMED);
    for (const bad of [
      { maxBytesPerSec: 0 },
      { maxBytesPerSec: 1.5 },
      { user: new Uint8Array(15) },
      { issuedAtMs: grant.expiresAtMs + 1 },
      { issuedAtMs: -1 },
    ]) {
      expect(code(() => encodeGrant({ grant: { ...grant, ...bad }, signature: sg.signature }))).toBe(ErrorCode.RECEIPT_MALFORMED);
    }
    // Every field is covered by the payer's signature.
    for (const tampered of [{ issuedAtMs: grant.issuedAtMs - 1 }, { maxBytesPerSec: grant.maxBytesPerSec + 1 }, { user: new Uint8Array(16) }]) {
      expect(verifyGrantSignature({ ...sg, grant: { ...sg.grant, ...tampered } })).toBe(false);
    }
  });

  it('decoders throw only RC_ERR_RECEIPT_MALFORMED on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 800 }), (bytes) => {
        for (const decode of [decodeSignedGrant, decodeSignedReceipt]) {
          const c = code(() => decode(bytes));
          if (c !== undefined) expect(c).toBe(ErrorCode.RECEIPT_MALFORMED);
        }
      }),
      { numRuns: 2_000 },
    );
  });

  it('Merkle roots are order-independent and change with any receipt', () => {
    const leaves = [1, 2, 3].map((n) => receiptLeaf(signReceipt(receipt({ sequence: n }), sessionKey)));
    const root = merkleRoot(leaves);
    expect(merkleRoot([...leaves].reverse())).toEqual(root);
    expect(merkleRoot(leaves.slice(0, 2))).not.toEqual(root);
    expect(merkleRoot([])).toEqual(new Uint8Array(32));
    expect(merkleRoot([leaves[0] as Uint8Array])).toEqual(leaves[0]);
  });

  it('Merkle roots are RFC 6962 style: an odd node is promoted, never paired with itself', () => {
    const leaves = [1, 2, 3].map((n) => receiptLeaf(signReceipt(receipt({ sequence: n }), sessionKey)));
    const [a, b, c] = [...leaves].sort(Buffer.compare) as [Uint8Array, Uint8Array, Uint8Array];
    const node = (l: Uint8Array, r: Uint8Array): Uint8Array => new Uint8Array(createHash('sha256').update(Uint8Array.of(1)).update(l).update(r).digest());
    expect(merkleRoot(leaves)).toEqual(node(node(a, b), c));
    // Two different leaf lists (the odd one duplicated) no longer share a root.
    expect(merkleRoot([a, b, c, c])).not.toEqual(merkleRoot([a, b, c]));
    expect(merkleRoot([a, a])).not.toEqual(merkleRoot([a]));
    // Leaf hashes are SHA-256(0x00 || signed receipt).
    const sr = signReceipt(receipt(), sessionKey);
    expect(receiptLeaf(sr)).toEqual(new Uint8Array(createHash('sha256').update(Uint8Array.of(0)).update(encodeSignedReceipt(sr)).digest()));
  });
});
