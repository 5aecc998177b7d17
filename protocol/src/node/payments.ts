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
import { assignmentSigningBytes, type Assignment, type SignedAssignment } from '../assignments.js';
import { bindSigningBytes } from '../relay-frames.js';
import { trackerSessionSigningBytes } from '../tracker-messages.js';
import { publicKeyFromRaw, signEd25519, verifyEd25519 } from './ed25519.js';

/** Signing and verification of grants and receipts with node:crypto (relays, settlement service, tests). */
export function signGrant(grant: SessionGrant, payerKey: KeyObject): SignedGrant {
  return { grant, signature: signEd25519(payerKey, grantSigningBytes(grant)) };
}

/** True when the grant is signed by its own `payer` key (whether that payer is trusted is the caller's check). */
export function verifyGrantSignature(sg: SignedGrant): boolean {
  return verifyEd25519(sg.grant.payer, grantSigningBytes(sg.grant), sg.signature);
}

/** Signs a receipt with the session's private key (for Node callers: tests, tools; the SDK signs in the page). */
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

/** The tracker signs what it hands out: "session `sessionKey` was sent to `relay` at `issuedAtMs`". */
export function signAssignment(assignment: Assignment, trackerKey: KeyObject): SignedAssignment {
  return { assignment, signature: signEd25519(trackerKey, assignmentSigningBytes(assignment)) };
}

/** True when `sa.assignment.tracker` signed it; whether that tracker is trusted is checkAssignment's job. */
export function verifyAssignmentSignature(sa: SignedAssignment): boolean {
  return verifyEd25519(sa.assignment.tracker, assignmentSigningBytes(sa.assignment), sa.signature);
}

/** The session key's proof for a BIND frame: its signature over bindSigningBytes(challenge, relay). */
export function signBindProof(challenge: Uint8Array, relay: Uint8Array, sessionKey: KeyObject): Uint8Array {
  return signEd25519(sessionKey, bindSigningBytes(challenge, relay));
}

/** Never throws: a malformed key, challenge or proof is simply not valid. */
export function verifyBindProof(sessionKey: Uint8Array | KeyObject, challenge: Uint8Array, relay: Uint8Array, proof: Uint8Array): boolean {
  let message: Uint8Array;
  try {
    message = bindSigningBytes(challenge, relay);
  } catch {
    return false;
  }
  return verifyEd25519(sessionKey, message, proof);
}

/** The session key's proof for the tracker `session` message, over the connection's hello nonce. */
export function signTrackerSessionProof(nonce: Uint8Array, sessionKey: KeyObject): Uint8Array {
  return signEd25519(sessionKey, trackerSessionSigningBytes(nonce));
}

/** Never throws: a malformed key, nonce or proof is simply not valid. */
export function verifyTrackerSessionProof(sessionKey: Uint8Array | KeyObject, nonce: Uint8Array, proof: Uint8Array): boolean {
  let message: Uint8Array;
  try {
    message = trackerSessionSigningBytes(nonce);
  } catch {
    return false;
  }
  return verifyEd25519(sessionKey, message, proof);
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

/** Merkle leaf of a receipt: SHA-256(0x00 || its signed encoding) (RFC 6962 leaf hash). */
export function receiptLeaf(sr: SignedReceipt): Uint8Array {
  return sha256(Uint8Array.of(0), encodeSignedReceipt(sr));
}

/**
 * Merkle root over leaves sorted bytewise (so any party holding the same receipts gets the same
 * root, whatever order it read them in), RFC 6962 style: leaves (already hashed with the 0x00
 * prefix by receiptLeaf) and inner nodes SHA-256(0x01 || left || right) are domain-separated, and
 * an odd node at the end of a level is promoted unchanged. Pairing it with itself instead would give
 * [a, b, c] and [a, b, c, c] the same root. Empty: 32 zero bytes.
 */
export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return new Uint8Array(32);
  let level = [...leaves].sort(compareBytes);
  while (level.length > 1) {
    const next: Uint8Array[] = [];
    for (let i = 0; i < level.length; i += 2) {
      const a = level[i] as Uint8Array;
      const b = level[i + 1];
      next.push(b === undefined ? a : sha256(Uint8Array.of(1), a, b));
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
