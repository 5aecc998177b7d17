import {
  BYTES_PER_GIB,
  ErrorCode,
  RelaycastError,
  bytesEqual,
  checkAssignment,
  checkReceipt,
  decodeSignedAssignment,
  decodeSignedGrant,
  decodeSignedReceipt,
  fromBase64,
  isRelaycastError,
  type SessionGrant,
  type SignedAssignment,
  type SignedGrant,
  type SignedReceipt,
} from '@relaycast/protocol';
import { verifyAssignmentSignature, verifyGrantSignature, verifyReceiptSignature } from '@relaycast/protocol/node';
import type { CreditedItem, RedeemItem, RejectedItem, ShortfallCode } from '@relaycast/protocol/settlement';
import type { SettlementLedger } from './settlement-ledger.js';

export interface IntakeContext {
  /** Relay id (base58) and raw key of the authenticated relay. */
  relay: string;
  relayKey: Uint8Array;
  /** This settler's payer key and mint: grants from anyone else are not ours to pay. */
  payer: Uint8Array;
  mint: Uint8Array;
  /** Tracker keys whose assignments make a receipt payable. */
  trustedTrackers: readonly Uint8Array[];
  /** Bytes credited on top of maxBytesPerSec × the grant's age. */
  plausibleBurstBytes: number;
  /** A grant expired longer ago than this is no longer credited. */
  redeemWindowMs: number;
  /** The settler's clock: expiry, the redeem window and plausibility are decided by it alone. */
  nowMs: number;
}

export interface IntakeResult {
  rejected: RejectedItem[];
  credited: CreditedItem[];
}

interface VerifiedItem {
  index: number;
  grant: SignedGrant;
  receipt: SignedReceipt;
  bytes: Uint8Array;
}

function decodeB64(text: string, code: ErrorCode = ErrorCode.RECEIPT_MALFORMED): Uint8Array {
  const bytes = fromBase64(text);
  if (bytes === undefined) throw new RelaycastError(code, 'not base64');
  return bytes;
}

/**
 * Everything that needs no ledger, cheapest first: decoding, the grant is ours, the assignment is
 * present and names this session, this relay and a tracker we trust, the receipt's fields agree
 * with the grant; only then the three Ed25519 verifications (grant by us, assignment by the
 * tracker, receipt by the session key).
 */
function verifyItem(item: RedeemItem, index: number, ctx: IntakeContext): VerifiedItem {
  const grant = decodeSignedGrant(decodeB64(item.grant));
  if (!bytesEqual(grant.grant.payer, ctx.payer) || !bytesEqual(grant.grant.mint, ctx.mint)) {
    throw new RelaycastError(ErrorCode.PAYER_UNKNOWN, 'grant was not issued by this settler');
  }
  const bytes = decodeB64(item.receipt);
  const receipt = decodeSignedReceipt(bytes);
  if (item.assignment === undefined)
    throw new RelaycastError(ErrorCode.ASSIGNMENT_MISSING, 'a receipt is paid only with the tracker’s assignment of this session to this relay');
  let assignment: SignedAssignment;
  try {
    assignment = decodeSignedAssignment(decodeB64(item.assignment, ErrorCode.ASSIGNMENT_INVALID));
  } catch (err) {
    throw isRelaycastError(err) && err.code === ErrorCode.ASSIGNMENT_INVALID
      ? err
      : new RelaycastError(ErrorCode.ASSIGNMENT_INVALID, 'assignment does not decode', { cause: err });
  }
  checkAssignment(assignment.assignment, {
    sessionKey: grant.grant.sessionKey,
    relay: ctx.relayKey,
    trustedTrackers: [...ctx.trustedTrackers],
    grant: grant.grant,
  });
  // Field checks without the stored receipt (cheap); the ledger step repeats it with `previous`.
  checkReceipt(receipt.receipt, grant.grant, { relay: ctx.relayKey });
  if (!verifyGrantSignature(grant)) throw new RelaycastError(ErrorCode.GRANT_SIGNATURE, 'grant signature is not the payer’s');
  if (!verifyAssignmentSignature(assignment)) throw new RelaycastError(ErrorCode.ASSIGNMENT_INVALID, 'assignment signature is not the tracker’s');
  if (!verifyReceiptSignature(receipt)) throw new RelaycastError(ErrorCode.RECEIPT_SIGNATURE, 'receipt signature is not its session key’s');
  return { index, grant, receipt, bytes };
}

/**
 * The most a grant may have been paid by `nowMs`, over all relays: what `maxBytesPerSec` delivers
 * from issue to min(now, expiry) plus the burst allowance, at the grant's price; never above budget.
 */
export function plausibleAmount(g: SessionGrant, nowMs: number, burstBytes: number): bigint {
  const elapsedMs = BigInt(Math.max(0, Math.min(nowMs, g.expiresAtMs) - g.issuedAtMs));
  const bytes = (BigInt(g.maxBytesPerSec) * elapsedMs) / 1_000n + BigInt(burstBytes);
  const amount = (bytes * g.pricePerGiB) / BYTES_PER_GIB;
  return amount < g.budget ? amount : g.budget;
}

function credit(index: number, credited: bigint, claimed: bigint, why: () => ShortfallCode): CreditedItem {
  return {
    index,
    credited: credited.toString(),
    ...(credited < claimed ? { shortfall: { code: why(), amount: (claimed - credited).toString() } } : {}),
  };
}

/**
 * Verifies every item and, in one ledger transaction, stores each valid receipt as the newest of
 * its (relay, session, grant) and credits it within the grant's cap (its budget, lowered to the
 * plausible amount on the settler's clock). Resending the stored receipt re-evaluates its credit:
 * a receipt implausible at first becomes creditable as the grant ages. A grant expired longer
 * than the redeem window ago is credited nothing more and nothing of it is stored. Refused items
 * store nothing. Returns the refused items and what every accepted one is credited.
 */
export function takeInReceipts(ledger: SettlementLedger, items: readonly RedeemItem[], ctx: IntakeContext): IntakeResult {
  const rejected: RejectedItem[] = [];
  const credited: CreditedItem[] = [];
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
          const same = prev !== undefined && bytesEqual(prev.signed, v.bytes);
          if (!same && prev !== undefined) {
            checkReceipt(r, grant, { relay: ctx.relayKey, previous: decodeSignedReceipt(prev.signed).receipt });
          }
          if (ctx.nowMs > grant.expiresAtMs + ctx.redeemWindowMs) {
            credited.push(credit(v.index, prev?.credited ?? 0n, r.cumulativeAmount, () => ErrorCode.REDEEM_WINDOW_CLOSED));
            continue;
          }
          const cap = plausibleAmount(grant, ctx.nowMs, ctx.plausibleBurstBytes);
          const out = ledger.storeReceipt(ctx.relay, grant, { ...r, signed: v.bytes }, ctx.nowMs, cap);
          credited.push(
            credit(v.index, out.credited, r.cumulativeAmount, () =>
              cap < grant.budget && r.cumulativeAmount > cap - out.others ? ErrorCode.RECEIPT_IMPLAUSIBLE : ErrorCode.GRANT_BUDGET_SPENT,
            ),
          );
        } catch (err) {
          refuse(v.index, err);
        }
      }
    });
  } catch (err) {
    if (isRelaycastError(err)) throw err;
    throw new RelaycastError(ErrorCode.RECEIPT_STORE, 'cannot store receipts in the settler ledger', { cause: err });
  }
  return { rejected: rejected.sort((a, b) => a.index - b.index), credited: credited.sort((a, b) => a.index - b.index) };
}
