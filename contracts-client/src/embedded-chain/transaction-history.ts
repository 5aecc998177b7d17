import type { TransactionErrorJson } from './tx-errors.js';
import type { UiTokenAmount } from './token-accounts.js';

export interface TokenBalanceJson {
  accountIndex: number;
  mint: string;
  owner: string;
  programId: string;
  uiTokenAmount: UiTokenAmount;
}

export interface InnerInstructionsJson {
  index: number;
  instructions: { programIdIndex: number; accounts: number[]; data: string; stackHeight: number | null }[];
}

/**
 * One processed transaction as the chain keeps it: the signed wire bytes (so getTransaction can
 * render any encoding) plus the execution metadata a real cluster stores. Airdrops are kept as
 * status-only records (`wireBase64` absent): they have a signature status but no transaction body.
 * Plain JSON, so the same object is what the state file holds.
 */
export interface TransactionRecord {
  signature: string;
  slot: number;
  blockTime: number;
  /** Account keys of the message (static keys): the addresses getSignaturesForAddress indexes. */
  accountKeys: string[];
  wireBase64?: string;
  err: TransactionErrorJson | null;
  fee: number;
  preBalances: number[];
  postBalances: number[];
  preTokenBalances: TokenBalanceJson[];
  postTokenBalances: TokenBalanceJson[];
  logMessages: string[];
  innerInstructions: InnerInstructionsJson[];
  computeUnitsConsumed: number;
  /** getSignaturesForAddress's `memo` field, precomputed: "[len] text" per memo, "; "-joined. */
  memo: string | null;
}

export interface SignaturesQuery {
  limit: number;
  before?: string | undefined;
  until?: string | undefined;
}

/**
 * Bounded history: at most `maxTransactions` records; the oldest are forgotten first (a real RPC
 * node also has a finite ledger). The per-address index holds positions into one ordered list,
 * so forgetting is a single shift.
 */
export class TransactionHistory {
  readonly #max: number;
  readonly #bySignature = new Map<string, TransactionRecord>();
  /** address → signatures in processing order (oldest first). */
  readonly #byAddress = new Map<string, string[]>();
  readonly #order: string[] = [];
  /** Lowest slot whose transactions are all still kept (0 until the first record is forgotten). */
  #firstAvailableSlot = 0;

  constructor(maxTransactions: number) {
    this.#max = maxTransactions;
  }

  /**
   * What getFirstAvailableBlock / minimumLedgerSlot answer: below this slot, "not found" proves
   * nothing. A client deciding a transaction never landed must check it (a payout resolved by id).
   */
  get firstAvailableSlot(): number {
    return this.#firstAvailableSlot;
  }

  /** After a restore: everything before `slot` may be gone. */
  markForgottenBefore(slot: number): void {
    this.#firstAvailableSlot = Math.max(this.#firstAvailableSlot, slot);
  }

  get size(): number {
    return this.#order.length;
  }

  has(signature: string): boolean {
    return this.#bySignature.has(signature);
  }

  get(signature: string): TransactionRecord | undefined {
    return this.#bySignature.get(signature);
  }

  /** All records, oldest first (what the state file stores). */
  records(): TransactionRecord[] {
    return this.#order.map((s) => this.#bySignature.get(s)!);
  }

  add(record: TransactionRecord): void {
    if (this.#bySignature.has(record.signature)) return;
    this.#bySignature.set(record.signature, record);
    this.#order.push(record.signature);
    for (const key of new Set(record.accountKeys)) {
      let list = this.#byAddress.get(key);
      if (list === undefined) this.#byAddress.set(key, (list = []));
      list.push(record.signature);
    }
    while (this.#order.length > this.#max) this.#forgetOldest();
  }

  #forgetOldest(): void {
    const signature = this.#order.shift()!;
    const record = this.#bySignature.get(signature)!;
    this.#bySignature.delete(signature);
    // Other transactions of this slot may remain, but the slot is no longer complete.
    this.#firstAvailableSlot = Math.max(this.#firstAvailableSlot, record.slot + 1);
    for (const key of new Set(record.accountKeys)) {
      const list = this.#byAddress.get(key);
      if (list === undefined) continue;
      // The oldest overall is also the oldest of each of its addresses.
      if (list[0] === signature) list.shift();
      if (list.length === 0) this.#byAddress.delete(key);
    }
  }

  /** Signatures touching `address`, newest first, strictly older than `before`, stopping at (excluding) `until`. */
  signaturesForAddress(address: string, query: SignaturesQuery): TransactionRecord[] {
    const list = this.#byAddress.get(address) ?? [];
    let end = list.length - 1;
    if (query.before !== undefined) {
      const at = list.lastIndexOf(query.before);
      // An unknown `before` yields nothing, as on a cluster whose ledger lacks that signature.
      end = at < 0 ? -1 : at - 1;
    }
    const out: TransactionRecord[] = [];
    for (let i = end; i >= 0 && out.length < query.limit; i--) {
      const signature = list[i]!;
      if (signature === query.until) break;
      out.push(this.#bySignature.get(signature)!);
    }
    return out;
  }
}
