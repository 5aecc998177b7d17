import { createHash, type KeyObject } from 'node:crypto';
import {
  encodeSignedReceipt,
  grantSigningBytes,
  receiptSigningBytes,
  type Receipt,
  type SessionGrant,
  type SignedGrant,
  type SignedReceipt,
} from '../receipts.js';
import { publicKeyFromRaw, signEd25519, verifyEd25519 } from './ed25519.js';

/** Signing and verification of grants and receipts with node:crypto (relays, settlement service, tests). */
export function signGrant(grant: SessionGrant, payerKey: KeyObject): SignedGrant {
  return { grant, signature: signEd25519(payerKey, grantSigningBytes(grant)) };
}

export function verifyGrantSignature(sg: SignedGrant): boolean {
  return verifyEd25519(sg.grant.payer, grantSigningBytes(sg.grant), sg.signature);
}

export function signReceipt(receipt: Receipt, sessionKey: KeyObject): SignedReceipt {
  return { receipt, signature: signEd25519(sessionKey, receiptSigningBytes(receipt)) };
}

/**
 * Verifies a receipt's signature. Pass the session's KeyObject when verifying many receipts of one
 * session: importing the raw key costs about as much as the verification itself.
 */
export function verifyReceiptSignature(sr: SignedReceipt, sessionKey?: KeyObject): boolean {
  return verifyEd25519(sessionKey ?? sr.receipt.sessionKey, receiptSigningBytes(sr.receipt), sr.signature);
}

/** KeyObject for a raw session key, for verifyReceiptSignature's fast path. */
export function sessionKeyObject(raw: Uint8Array): KeyObject {
  return publicKeyFromRaw(raw);
}

const sha256 = (...parts: Uint8Array[]): Uint8Array => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** Merkle leaf of a receipt: SHA-256 of its signed encoding. */
export function receiptLeaf(sr: SignedReceipt): Uint8Array {
  return sha256(Uint8Array.of(0), encodeSignedReceipt(sr));
}

/**
 * Merkle root over leaves sorted bytewise (so any party holding the same receipts gets the same
 * root, whatever order it read them in). Leaves and inner nodes are domain-separated (0x00 / 0x01
 * prefixes) against second-preimage tricks; an odd node is paired with itself. Empty: 32 zero bytes.
 */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return new Uint8Array(32);
  let level = [...leaves].sort(compareBytes);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const a = level[i] as Uint8Array;
      const b = level[i + 1] ?? a;
      next.push(sha256(Uint8Array.of(1), a, b));
    }
    level = next;
  }
  return level[0] as Uint8Array;
}

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
  return a.byteLength - b.byteLength;
}
