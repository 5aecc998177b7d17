import { decodePublicKey, encodeBase58 } from '../base58.js';
import { ErrorCode, RelaycastError } from '../errors.js';
import { MAX_U64 } from './json-fields.js';

/** The SPL Memo program (v2) the settler's payouts use; present on every cluster. */
export const MEMO_PROGRAM_ID = 'MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr';
/** The SPL Memo program v1, also on every cluster: a relay accepts a payout memo from either. */
export const MEMO_V1_PROGRAM_ID = 'Memo1UhkJRfHyvLMcVucJwxXeuD728EqVDDwQDxFMNo';
/** The memo programs a payout memo is accepted from. */
export const MEMO_PROGRAM_IDS: readonly string[] = [MEMO_PROGRAM_ID, MEMO_V1_PROGRAM_ID];

/** First word of every payout memo (and its version). */
export const PAYOUT_MEMO_PREFIX = 'relaycast:v1';
/** A payout memo: relay (base58 key), paid (u64 decimal, at most 20 digits), root (64 hex). */
export const PAYOUT_MEMO_PATTERN = /^relaycast:v1 relay=([1-9A-HJ-NP-Za-km-z]{32,44}) paid=(0|[1-9][0-9]{0,19}) root=([0-9a-f]{64})$/;

/**
 * The memo every payout carries: `relaycast:v1 relay=<base58> paid=<cumulative> root=<hex>`.
 * `paid` is the relay's paid-to-date total once the payout lands (not the payout's amount), so the
 * newest confirmed memo alone gives the total and the settler's ledger can be rebuilt from the chain.
 */
export interface PayoutMemo {
  /** The relay paid, canonical base58. */
  relay: string;
  cumulativePaid: bigint;
  /** Merkle root (hex) over the relay's newest receipts the payout settles. */
  merkleRoot: string;
}

function isCanonicalKey(text: string): boolean {
  try {
    return encodeBase58(decodePublicKey(text)) === text;
  } catch {
    return false;
  }
}

/** The memo text of a payout; RC_ERR_MESSAGE_FIELD when a field would not parse back. */
export function formatPayoutMemo(m: PayoutMemo): string {
  const text = `${PAYOUT_MEMO_PREFIX} relay=${m.relay} paid=${m.cumulativePaid.toString()} root=${m.merkleRoot}`;
  if (parsePayoutMemo(text) === undefined) {
    throw new RelaycastError(ErrorCode.MESSAGE_FIELD, 'payout memo needs a canonical base58 relay, a u64 paid total and a 64-hex root', {
      details: { relay: m.relay, cumulativePaid: m.cumulativePaid.toString(), merkleRoot: m.merkleRoot },
    });
  }
  return text;
}

/** Parses a payout memo; undefined for anything else (other memos on the same account are not ours). */
export function parsePayoutMemo(text: string): PayoutMemo | undefined {
  const m = PAYOUT_MEMO_PATTERN.exec(text);
  if (m === null) return undefined;
  const paid = BigInt(m[2]!);
  if (paid > MAX_U64) return undefined;
  // Canonical base58 only: the same relay must always produce the same ledger key.
  if (!isCanonicalKey(m[1]!)) return undefined;
  return { relay: m[1]!, cumulativePaid: paid, merkleRoot: m[3]! };
}
