import {
  ErrorCode,
  RelaycastError,
  bytesEqual,
  checkReceipt,
  decodeSignedGrant,
  decodeSignedReceipt,
  fromBase64,
  isRelaycastError,
  type SignedGrant,
  type SignedReceipt,
} from '@relaycast/protocol';
import { verifyGrantSignature, verifyReceiptSignature } from '@relaycast/protocol/node';
import type { RedeemItem } from './redeem-request.js';
import type { SettlementLedger } from './settlement-ledger.js';

/** An item the settler refused, by its index in the request. */
export interface RejectedItem {
  index: number;
  code: ErrorCode;
}

export interface IntakeContext {
  /** Relay id (base58) and raw key of the authenticated relay. */
  relay: string;
  relayKey: Uint8Array;
  /** This settler's payer key and mint: grants from anyone else are not ours to pay. */
  payer: Uint8Array;
  mint: Uint8Array;
  nowMs: number;
}

interface VerifiedItem {
  index: number;
  grant: SignedGrant;
  receipt: SignedReceipt;
  bytes: Uint8Array;
}

function decodeB64(text: string): Uint8Array {
  const bytes = fromBase64(text);
  if (bytes === undefined) throw new RelaycastError(ErrorCode.RECEIPT_MALFORMED, 'not base64');
  return bytes;
}

/** Everything that needs no ledger: decoding and the three keys (grant by us, for our mint, receipt by its session key). */
function verifyItem(item: RedeemItem, index: number, ctx: IntakeContext): VerifiedItem {
  const grant = decodeSignedGrant(decodeB64(item.grant));
  if (!bytesEqual(grant.grant.payer, ctx.payer) || !bytesEqual(grant.grant.mint, ctx.mint)) {
    throw new RelaycastError(ErrorCode.PAYER_UNKNOWN, 'grant was not issued by this settler');
  }
  if (!verifyGrantSignature(grant)) throw new RelaycastError(ErrorCode.GRANT_SIGNATURE, 'grant signature is not the payer’s');
  const bytes = decodeB64(item.receipt);
  const receipt = decodeSignedReceipt(bytes);
  if (!verifyReceiptSignature(receipt)) throw new RelaycastError(ErrorCode.RECEIPT_SIGNATURE, 'receipt signature is not its session key’s');
  return { index, grant, receipt, bytes };
}

/**
 * Verifies every item and stores the valid ones as the newest receipt of their (relay, session,
 * grant), all in one ledger transaction. checkReceipt (shared with relays) runs against the stored
 * newest receipt; resending exactly the stored receipt is accepted and changes nothing (relays
 * send their newest receipts on every redeem). Returns the refused items with their codes.
 */
export function takeInReceipts(ledger: SettlementLedger, items: readonly RedeemItem[], ctx: IntakeContext): RejectedItem[] {
  const rejected: RejectedItem[] = [];
  const refuse = (index: number, err: unknown): void => {
    if (!isRelaycastError(err)) throw err;
    rejected.push({ index, code: err.code });
  };
  const verified: VerifiedItem[] = [];
  items.forEach((item, index) => {
    try {
      verified.push(verifyItem(item, index, ctx));
    } catch (err) {
      refuse(index, err);
    }
  });
  try {
    ledger.transaction(() => {
      for (const v of verified) {
        const { grant } = v.grant;
        const r = v.receipt.receipt;
        try {
          const prev = ledger.newestReceipt(ctx.relay, r.sessionKey, r.grantNonce);
          if (prev !== undefined && bytesEqual(prev.signed, v.bytes)) continue;
          checkReceipt(r, grant, {
            relay: ctx.relayKey,
            previous: prev === undefined ? undefined : decodeSignedReceipt(prev.signed).receipt,
          });
          ledger.storeReceipt(ctx.relay, grant, { ...r, signed: v.bytes }, ctx.nowMs);
        } catch (err) {
          refuse(v.index, err);
        }
      }
    });
  } catch (err) {
    if (isRelaycastError(err)) throw err;
    throw new RelaycastError(ErrorCode.RECEIPT_STORE, 'cannot store receipts in the settler ledger', { cause: err });
  }
  return rejected.sort((a, b) => a.index - b.index);
}
