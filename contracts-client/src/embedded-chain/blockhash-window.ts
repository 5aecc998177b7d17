import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/**
 * The recent-blockhash window of a real cluster: a blockhash issued at slot s stays usable while
 * the block height is at most s + validitySlots. litesvm itself only knows its latest blockhash, so
 * the chain runs litesvm with its blockhash check off and checks against this window instead.
 * Block height equals slot here (the embedded chain never skips a slot).
 */
export class BlockhashWindow {
  readonly #validitySlots: number;
  /** blockhash → slot it was issued at; Map keeps insertion (= slot) order, so the oldest come first. */
  readonly #issuedAt = new Map<string, number>();
  #newest: { blockhash: string; slot: number } | undefined;

  constructor(validitySlots: number) {
    if (!Number.isInteger(validitySlots) || validitySlots < 1)
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'blockhashValiditySlots must be a positive integer');
    this.#validitySlots = validitySlots;
  }

  /** Records the blockhash of a new slot and forgets those no slot in the window can accept. */
  push(blockhash: string, slot: number): void {
    this.#issuedAt.set(blockhash, slot);
    this.#newest = { blockhash, slot };
    for (const [hash, at] of this.#issuedAt) {
      if (at + this.#validitySlots >= slot) break;
      this.#issuedAt.delete(hash);
    }
  }

  /** The newest blockhash and the last block height at which it is still accepted. */
  latest(): { blockhash: string; lastValidBlockHeight: number } {
    if (this.#newest === undefined) throw new RelaycastError(ErrorCode.INTERNAL, 'blockhash window is empty');
    return { blockhash: this.#newest.blockhash, lastValidBlockHeight: this.#newest.slot + this.#validitySlots };
  }

  /** True when a transaction using `blockhash` may be processed at `slot`. */
  isValid(blockhash: string, slot: number): boolean {
    const at = this.#issuedAt.get(blockhash);
    return at !== undefined && slot <= at + this.#validitySlots;
  }

  get size(): number {
    return this.#issuedAt.size;
  }
}
