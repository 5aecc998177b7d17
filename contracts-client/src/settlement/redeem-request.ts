import { ErrorCode, RelaycastError, decodePublicKey } from '@relaycast/protocol';
import { verifyRedeemSignature } from '@relaycast/protocol/node';
import { REDEEM_SIGNATURE_HEADER, checkRedeemClock, decodeRedeemBody, type RedeemItem } from '@relaycast/protocol/settlement';

/** A redeem request the relay key has signed, decoded (the wire format: @relaycast/protocol/settlement). */
export interface RedeemRequest {
  /** Relay id, canonical base58. */
  relay: string;
  relayKey: Uint8Array;
  requestedAtMs: number;
  items: RedeemItem[];
}

/**
 * Decodes and authenticates a redeem request: the body's shape (cheap) first, then the relay key's
 * signature over the raw body, then requestedAtMs within the allowed clock skew (a captured request
 * cannot be replayed later; within the window a replay changes nothing, redeeming is idempotent).
 */
export function authenticateRedeem(rawBody: Uint8Array, signatureHeader: string | undefined, nowMs: number): RedeemRequest {
  const body = decodeRedeemBody(rawBody);
  const relayKey = decodePublicKey(body.relay);
  if (!verifyRedeemSignature(relayKey, rawBody, signatureHeader)) {
    throw new RelaycastError(ErrorCode.REDEEM_SIGNATURE, `${REDEEM_SIGNATURE_HEADER} is not the relay key’s signature of this body`);
  }
  checkRedeemClock(body.requestedAtMs, nowMs);
  return { relay: body.relay, relayKey, requestedAtMs: body.requestedAtMs, items: body.items };
}
