import { decodePublicKey, encodeBase58 } from '@relaycast/protocol';

/**
 * The memo every payout carries: `relaycast:v1 relay=<base58> paid=<cumulative> root=<hex>`.
 * `paid` is the relay's paid-to-date total once the payout lands (not the payout's amount), so the
 * newest confirmed memo alone gives the total and the ledger can be rebuilt from the chain.
 */
export interface PayoutMemo {
  relay: string;
  cumulativePaid: bigint;
  /** Merkle root (hex) over the relay's newest receipts the payout settles. */
  merkleRoot: string;
}

const MEMO_RE = /^relaycast:v1 relay=([1-9A-HJ-NP-Za-km-z]{32,44}) paid=(0|[1-9][0-9]{0,19}) root=([0-9a-f]{64})$/;
const MAX_U64 = (1n << 64n) - 1n;

export function formatPayoutMemo(m: PayoutMemo): string {
  return `relaycast:v1 relay=${m.relay} paid=${m.cumulativePaid.toString()} root=${m.merkleRoot}`;
}

/** Parses a payout memo; undefined for anything else (other memos on the same account are not ours). */
export function parsePayoutMemo(text: string): PayoutMemo | undefined {
  const m = MEMO_RE.exec(text);
  if (m === null) return undefined;
  const paid = BigInt(m[2]!);
  if (paid > MAX_U64) return undefined;
  try {
    // Canonical base58 only: the same relay must always produce the same ledger key.
    if (encodeBase58(decodePublicKey(m[1]!)) !== m[1]) return undefined;
  } catch {
    return undefined;
  }
  return { relay: m[1]!, cumulativePaid: paid, merkleRoot: m[3]! };
}
