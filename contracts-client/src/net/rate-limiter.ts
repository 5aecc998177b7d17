import { TokenBucket, addressPrefix } from '@relaycast/protocol';

/**
 * The rate-limit key of a client address: its IPv6 /64 (one subscriber's whole prefix, which it can
 * rotate through freely) or its IPv4 /32. IPv4-mapped IPv6 addresses count as IPv4.
 */
export function addressRange(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  return addressPrefix(address, { ipv4: 32, ipv6: 64 }) ?? 'unknown';
}

/**
 * Token buckets per key (a client address, an address range, a relay key) that rotating keys
 * cannot reset; the settler's and the embedded chain's request limits both use it. A table
 * keyed by client that forgets its oldest entry when full lets an attacker with many addresses
 * push its own limited entry out and start fresh. Here an entry is dropped only once it has
 * refilled to the full burst, when forgetting it changes nothing; while the table is full of
 * still-limited entries, new keys share one overflow bucket, so a flood of fresh keys is limited
 * as one client and the limited entries stay.
 */
export class KeyedRateLimiter {
  readonly #perSec: number;
  readonly #burst: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, TokenBucket>();
  readonly #overflow: TokenBucket;
  #lastSweep = -Infinity;

  constructor(perSec: number, burst: number, maxEntries: number, now: () => number = Date.now) {
    this.#perSec = perSec;
    this.#burst = Math.max(burst, perSec);
    this.#maxEntries = maxEntries;
    this.#now = now;
    this.#overflow = new TokenBucket(perSec, this.#burst, now);
  }

  get size(): number {
    return this.#buckets.size;
  }

  /** Drops the entries that refilled (at most once per 100 ms: a sweep is O(table)). */
  #sweep(now: number): void {
    if (now - this.#lastSweep < 100) return;
    this.#lastSweep = now;
    for (const [key, b] of this.#buckets) if (b.full) this.#buckets.delete(key);
  }

  /** Takes `n` tokens for `key`; false (nothing taken) when it has fewer. */
  allow(key: string, n = 1): boolean {
    let b = this.#buckets.get(key);
    if (b === undefined) {
      const now = this.#now();
      if (this.#buckets.size >= this.#maxEntries) this.#sweep(now);
      if (this.#buckets.size >= this.#maxEntries) {
        b = this.#overflow;
      } else {
        b = new TokenBucket(this.#perSec, this.#burst, this.#now);
        this.#buckets.set(key, b);
      }
    }
    return b.take(n);
  }
}
