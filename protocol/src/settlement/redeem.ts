import { concatBytes, utf8Encode, utf8Length } from '../bytes.js';
import { ErrorCode, RelaycastError } from '../errors.js';
import { base64, bad, errorCode, hex32, list, object, objectField, parseObject, publicKey, signatureId, u64, uint, type Obj } from './json-fields.js';

/*
 * `POST /v1/redeem` (docs/PAYMENTS.md "Settlement service HTTP API"): a relay hands the settler its
 * newest receipts, signed with the relay key, and gets back what the settler credits and, when
 * something is owed, the payout transaction the settler has submitted.
 */

/** Signed bytes of a redeem request start with this, so the relay key's signature means nothing else. */
export const REDEEM_SIGNING_DOMAIN = 'relaycast-redeem-v1\0';
/** Header carrying the relay's base64 signature over redeemSigningBytes(raw body). */
export const REDEEM_SIGNATURE_HEADER = 'x-relaycast-signature';
/**
 * Items in one redeem request. SETTLER_MAX_BODY_BYTES usually binds first (an item is about 870
 * bytes of JSON with a typical grant, 1.5 KB with a 512-byte scope): a sender sends the items that
 * fit (redeemItemsFitting) and the rest in the next request.
 */
export const MAX_REDEEM_ITEMS = 1_000;
/** Largest request body the settler reads (redeem and grant requests alike). */
export const SETTLER_MAX_BODY_BYTES = 256 * 1024;
/** A redeem request's requestedAtMs may be this far from the settler's clock either way. */
export const REDEEM_MAX_CLOCK_SKEW_MS = 5 * 60 * 1_000;
/** A Solana transaction's largest wire size (one packet): bounds the payout a relay accepts. */
export const MAX_PAYOUT_TRANSACTION_BYTES = 1_232;

/** One redeem item, still encoded: the settler decodes and checks each on its own. */
export interface RedeemItem {
  /** base64 signed grant. */
  grant: string;
  /** base64 signed receipt (the newest of this session for this relay). */
  receipt: string;
  /**
   * base64 signed assignment (169 bytes): the tracker's word that it sent this session to this
   * relay. The settler refuses an item without one (RC_ERR_ASSIGNMENT_MISSING).
   */
  assignment?: string | undefined;
}

/** The JSON body of `POST /v1/redeem`, signed by the relay key (header REDEEM_SIGNATURE_HEADER). */
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
  /** An RC_ERR_* code (a newer settler may send one this version does not know). */
  code: string;
}

/** Why the settler credits less than a receipt claims (what this version's settler sends). */
export type ShortfallCode = typeof ErrorCode.GRANT_BUDGET_SPENT | typeof ErrorCode.RECEIPT_IMPLAUSIBLE | typeof ErrorCode.REDEEM_WINDOW_CLOSED;

/** What the settler credits for an accepted item's (relay, session, grant). */
export interface CreditedItem {
  index: number;
  /** u64 decimal: cumulative base units credited for this (relay, session, grant). */
  credited: string;
  /** Present when `credited` is below the receipt's cumulativeAmount: amount = the difference (u64 decimal). */
  shortfall?: { code: string; amount: string } | undefined;
}

/**
 * The answer to `POST /v1/redeem` (HTTP 200). `credited` lists every accepted item (possibly none);
 * `rejected` appears when some were refused. u64 amounts are decimal strings.
 */
export type RedeemResponse =
  | { status: 'nothing-owed'; cumulativePaid: string; credited: CreditedItem[]; rejected?: RejectedItem[] | undefined }
  | {
      status: 'payout';
      /** base64 legacy wire transaction, fully signed by the treasury owner (fee payer); the settler has submitted it. */
      transaction: string;
      /** The transaction id: base58 of the treasury owner's fee-payer signature. */
      signature: string;
      amount: string;
      cumulativePaid: string;
      /** Hex Merkle root over the receipts the payout settles; the payout memo carries it too. */
      merkleRoot: string;
      lastValidBlockHeight: number;
      credited: CreditedItem[];
      rejected?: RejectedItem[] | undefined;
    };

/** What the relay key signs: the domain, then the exact body bytes sent. */
export function redeemSigningBytes(rawBody: Uint8Array): Uint8Array {
  return concatBytes([utf8Encode(REDEEM_SIGNING_DOMAIN), rawBody]);
}

function itemJson(i: RedeemItem): RedeemItem {
  return { grant: i.grant, receipt: i.receipt, ...(i.assignment === undefined ? {} : { assignment: i.assignment }) };
}

/** The exact body bytes to sign and send; checked as the settler will decode them. */
export function encodeRedeemBody(body: RedeemBody): Uint8Array {
  const raw = utf8Encode(JSON.stringify({ relay: body.relay, requestedAtMs: body.requestedAtMs, items: body.items.map(itemJson) }));
  decodeRedeemBody(raw);
  return raw;
}

/**
 * How many of `body.items`, from the first, one request carries: at most MAX_REDEEM_ITEMS and what
 * keeps the encoded body within SETTLER_MAX_BODY_BYTES. The rest go in the next request.
 */
export function redeemItemsFitting(body: RedeemBody): number {
  let size = utf8Length(JSON.stringify({ relay: body.relay, requestedAtMs: body.requestedAtMs, items: [] }));
  let n = 0;
  for (const item of body.items) {
    if (n === MAX_REDEEM_ITEMS) break;
    // encodeRedeemBody's JSON: the items joined by commas inside the brackets.
    size += utf8Length(JSON.stringify(itemJson(item))) + (n === 0 ? 0 : 1);
    if (size > SETTLER_MAX_BODY_BYTES) break;
    n++;
  }
  return n;
}

function redeemItem(v: unknown, i: number): RedeemItem {
  const o = v as Obj | null;
  if (typeof o !== 'object' || o === null || Array.isArray(o) || typeof o['grant'] !== 'string' || typeof o['receipt'] !== 'string') {
    throw bad(`items[${i}] must be { grant: base64, receipt: base64, assignment: base64 }`, 'items');
  }
  if (o['assignment'] !== undefined && typeof o['assignment'] !== 'string') throw bad(`items[${i}].assignment must be base64`, 'items');
  return { grant: o['grant'], receipt: o['receipt'], ...(typeof o['assignment'] === 'string' ? { assignment: o['assignment'] } : {}) };
}

/**
 * Decodes a redeem request body: at most SETTLER_MAX_BODY_BYTES, a JSON object, `relay` a canonical
 * base58 key, `requestedAtMs` Unix ms, at most MAX_REDEEM_ITEMS items. Items are checked for shape
 * only: the settler decodes each grant, receipt and assignment itself and refuses a bad one alone
 * (with its code, in `rejected`) instead of the whole request. The signature and the clock are the
 * settler's checks (protocol/node verifyRedeemSignature, REDEEM_MAX_CLOCK_SKEW_MS).
 */
export function decodeRedeemBody(raw: Uint8Array): RedeemBody {
  const o = parseObject(raw, SETTLER_MAX_BODY_BYTES, 'redeem body');
  const relay = publicKey(o, 'relay');
  const requestedAtMs = uint(o, 'requestedAtMs');
  const items = list(o, 'items', MAX_REDEEM_ITEMS).map(redeemItem);
  return { relay, requestedAtMs, items };
}

/** Refuses (RC_ERR_REDEEM_CLOCK_SKEW) a request stamped more than REDEEM_MAX_CLOCK_SKEW_MS from `nowMs`. */
export function checkRedeemClock(requestedAtMs: number, nowMs: number): void {
  if (Math.abs(requestedAtMs - nowMs) > REDEEM_MAX_CLOCK_SKEW_MS) {
    throw new RelaycastError(ErrorCode.REDEEM_CLOCK_SKEW, `requestedAtMs is more than ${REDEEM_MAX_CLOCK_SKEW_MS} ms from the settler's clock`, {
      details: { requestedAtMs, settlerNowMs: nowMs },
    });
  }
}

function rejectedList(o: Obj): RejectedItem[] | undefined {
  if (o['rejected'] === undefined) return undefined;
  return list(o, 'rejected', MAX_REDEEM_ITEMS).map((v) => {
    const r = object(v, 'rejected item');
    return { index: uint(r, 'index', MAX_REDEEM_ITEMS - 1), code: errorCode(r, 'code') };
  });
}

function creditedList(o: Obj): CreditedItem[] {
  return list(o, 'credited', MAX_REDEEM_ITEMS).map((v) => {
    const c = object(v, 'credited item');
    const item: CreditedItem = { index: uint(c, 'index', MAX_REDEEM_ITEMS - 1), credited: u64(c, 'credited') };
    if (c['shortfall'] !== undefined) {
      const sf = objectField(c, 'shortfall');
      item.shortfall = { code: errorCode(sf, 'code'), amount: u64(sf, 'amount') };
    }
    return item;
  });
}

/** Decodes the parsed JSON of a `POST /v1/redeem` answer (HTTP 200), every field checked. */
export function decodeRedeemResponse(json: unknown): RedeemResponse {
  const o = object(json, 'redeem answer');
  const credited = creditedList(o);
  const rejected = rejectedList(o);
  const tail = rejected === undefined ? {} : { rejected };
  switch (o['status']) {
    case 'nothing-owed':
      return { status: 'nothing-owed', cumulativePaid: u64(o, 'cumulativePaid'), credited, ...tail };
    case 'payout':
      return {
        status: 'payout',
        transaction: base64(o, 'transaction', 1, MAX_PAYOUT_TRANSACTION_BYTES),
        signature: signatureId(o, 'signature'),
        amount: u64(o, 'amount'),
        cumulativePaid: u64(o, 'cumulativePaid'),
        merkleRoot: hex32(o, 'merkleRoot'),
        lastValidBlockHeight: uint(o, 'lastValidBlockHeight'),
        credited,
        ...tail,
      };
    default:
      throw bad('status must be nothing-owed or payout', 'status');
  }
}
