import { ErrorCode, RelaycastError, concatBytes, decodePublicKey, encodeBase58, fromBase64, utf8Encode } from '@relaycast/protocol';
import { signEd25519, verifyEd25519 } from '@relaycast/protocol/node';
import type { KeyObject } from 'node:crypto';
import { MAX_REDEEM_ITEMS, REDEEM_MAX_CLOCK_SKEW_MS, REDEEM_SIGNING_DOMAIN } from '../constants.js';

/*
 * The settlement HTTP API's request and response types (docs/PAYMENTS.md "Settlement service HTTP
 * API", trust spec 1.6), in one place for the settler and the relay's settler client.
 */

/** One `POST /v1/redeem` body item, still encoded (each is decoded and checked on its own). */
export interface RedeemItem {
  /** base64 signed grant. */
  grant: string;
  /** base64 signed receipt (the newest of this session for this relay). */
  receipt: string;
  /**
   * base64 signed assignment (169 bytes): the tracker's word that it sent this session to this
   * relay. Required; an item without one is refused with RC_ERR_ASSIGNMENT_MISSING.
   */
  assignment?: string;
}

/** The JSON body of `POST /v1/redeem`, signed by the relay key (header x-relaycast-signature). */
export interface RedeemBody {
  /** Relay id, canonical base58. */
  relay: string;
  /** The relay's clock, Unix ms; within REDEEM_MAX_CLOCK_SKEW_MS of the settler's. */
  requestedAtMs: number;
  /** At most MAX_REDEEM_ITEMS. */
  items: RedeemItem[];
}

/** An item the settler refused (nothing stored for it), by its index in the request. */
export interface RejectedItem {
  index: number;
  code: ErrorCode;
}

/** Why the settler credits less than a receipt claims. */
export type ShortfallCode = typeof ErrorCode.GRANT_BUDGET_SPENT | typeof ErrorCode.RECEIPT_IMPLAUSIBLE | typeof ErrorCode.REDEEM_WINDOW_CLOSED;

/** What the settler credits for an accepted item's (relay, session, grant). */
export interface CreditedItem {
  index: number;
  /** u64 decimal: cumulative base units credited for this (relay, session, grant). */
  credited: string;
  /** Present when credited < the receipt's cumulativeAmount: amount = the difference (u64 decimal). */
  shortfall?: { code: ShortfallCode; amount: string };
}

/**
 * The answer to `POST /v1/redeem` (HTTP 200). `credited` lists every accepted item (possibly none);
 * `rejected` appears when some were refused. `signature` is the payout's transaction id: the
 * treasury owner (fee payer) signature.
 */
export type RedeemResponse =
  | { status: 'nothing-owed'; cumulativePaid: string; credited: CreditedItem[]; rejected?: RejectedItem[] }
  | {
      status: 'payout';
      /** base64 legacy wire transaction, fully signed by the treasury owner (fee payer); the settler has submitted it. */
      transaction: string;
      signature: string;
      amount: string;
      cumulativePaid: string;
      merkleRoot: string;
      lastValidBlockHeight: number;
      credited: CreditedItem[];
      rejected?: RejectedItem[];
    };

/** `GET /v1/relays/:relay`. */
export interface RelayStatusResponse {
  owed: string;
  cumulativePaid: string;
  pending: null | { signature: string; amount: string };
}

/**
 * `GET /v1/relays/:relay/payouts`: the relay's confirmed payouts, newest last (at most
 * RELAY_PAYOUTS_LISTED). A relay whose redeem answer was lost (the settler submits payouts itself)
 * learns their ids here and checks each on chain by id before counting it.
 */
export interface RelayPayoutsResponse {
  payouts: { signature: string; amount: string; cumulativePaid: string }[];
}

export const RELAY_PAYOUTS_LISTED = 100;

/** `POST /v1/grants` body; the answer is GrantResponse (grant-issuer.ts), errors `{ error: { code, message } }`. */
export interface GrantRequestBody {
  /** base58 Ed25519 session key. */
  sessionKey: string;
  /** http(s) URL prefix. */
  scope: string;
}

export interface RedeemRequest {
  /** Relay id, canonical base58. */
  relay: string;
  relayKey: Uint8Array;
  requestedAtMs: number;
  items: RedeemItem[];
}

/** What the relay key signs: the domain, then the exact body bytes sent. */
export function redeemSigningBytes(rawBody: Uint8Array): Uint8Array {
  return concatBytes([utf8Encode(REDEEM_SIGNING_DOMAIN), rawBody]);
}

/** The `x-relaycast-signature` header value for a body (relays and tests). */
export function signRedeemBody(rawBody: Uint8Array, relayKey: KeyObject): string {
  return Buffer.from(signEd25519(relayKey, redeemSigningBytes(rawBody))).toString('base64');
}

function field(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.MESSAGE_FIELD, message);
}

/**
 * Parses and authenticates a redeem request: JSON shape, the relay key's signature over the raw
 * body, and requestedAtMs within the allowed clock skew (a captured request cannot be replayed
 * later; within the window a replay changes nothing, redeeming is idempotent).
 */
export function authenticateRedeem(rawBody: Uint8Array, signatureHeader: string | undefined, nowMs: number): RedeemRequest {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(rawBody).toString('utf8'));
  } catch {
    throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'body is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'body must be a JSON object');
  const body = parsed as Record<string, unknown>;
  if (typeof body['relay'] !== 'string') throw field('relay must be a base58 public key');
  const relayKey = decodePublicKey(body['relay']);
  const relay = encodeBase58(relayKey);
  if (relay !== body['relay']) throw field('relay is not canonical base58');
  const sig = typeof signatureHeader === 'string' ? fromBase64(signatureHeader) : undefined;
  if (sig === undefined || !verifyEd25519(relayKey, redeemSigningBytes(rawBody), sig)) {
    throw new RelaycastError(ErrorCode.REDEEM_SIGNATURE, 'x-relaycast-signature is not the relay key’s signature of this body');
  }
  const requestedAtMs = body['requestedAtMs'];
  if (typeof requestedAtMs !== 'number' || !Number.isSafeInteger(requestedAtMs) || requestedAtMs < 0) throw field('requestedAtMs must be Unix ms');
  if (Math.abs(requestedAtMs - nowMs) > REDEEM_MAX_CLOCK_SKEW_MS) {
    throw new RelaycastError(ErrorCode.REDEEM_CLOCK_SKEW, `requestedAtMs is more than ${REDEEM_MAX_CLOCK_SKEW_MS} ms from the settler's clock`, {
      details: { requestedAtMs, settlerNowMs: nowMs },
    });
  }
  const items = body['items'];
  if (!Array.isArray(items) || items.length > MAX_REDEEM_ITEMS) throw field(`items must be an array of at most ${MAX_REDEEM_ITEMS}`);
  const out: RedeemItem[] = [];
  for (const it of items as unknown[]) {
    const o = it as Record<string, unknown> | null;
    if (typeof o !== 'object' || o === null || typeof o['grant'] !== 'string' || typeof o['receipt'] !== 'string') {
      throw field('each item must be { grant: base64, receipt: base64, assignment: base64 }');
    }
    if (o['assignment'] !== undefined && typeof o['assignment'] !== 'string') throw field('assignment must be base64');
    out.push({ grant: o['grant'], receipt: o['receipt'], ...(typeof o['assignment'] === 'string' ? { assignment: o['assignment'] } : {}) });
  }
  return { relay, relayKey, requestedAtMs, items: out };
}
