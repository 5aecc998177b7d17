import type { KeyObject } from 'node:crypto';
import { fromBase64, toBase64 } from '../bytes.js';
import { redeemSigningBytes } from '../settlement/redeem.js';
import { signEd25519, verifyEd25519 } from './ed25519.js';

/** The REDEEM_SIGNATURE_HEADER value for a redeem body: base64 of the relay key's signature. */
export function signRedeemBody(rawBody: Uint8Array, relayKey: KeyObject): string {
  return toBase64(signEd25519(relayKey, redeemSigningBytes(rawBody)));
}

/** True when `header` is the base64 signature by `relayKey` (raw 32 bytes) over redeemSigningBytes(rawBody). */
export function verifyRedeemSignature(relayKey: Uint8Array, rawBody: Uint8Array, header: string | undefined): boolean {
  const sig = header === undefined ? undefined : fromBase64(header);
  return sig !== undefined && verifyEd25519(relayKey, redeemSigningBytes(rawBody), sig);
}
