/**
 * Requests per client IP in fixed one-second windows, with a burst allowance carried over from
 * quiet windows. The table of clients is bounded: when full, the oldest entry is dropped (a
 * dropped client simply starts a fresh window).
 */
export class PerClientRateLimiter {
  readonly #perSec: number;
  readonly #burst: number;
  readonly #maxClients: number;
  readonly #now: () => number;
  readonly #clients = new Map<string, { windowStart: number; used: number; credit: number }>();

  constructor(perSec: number, burst: number, maxClients = 4_096, now: () => number = () => Date.now()) {
    this.#perSec = perSec;
    this.#burst = burst;
    this.#maxClients = maxClients;
    this.#now = now;
  }

  /** Counts `n` requests for `client`; false when that exceeds its allowance (nothing is counted then). */
  allow(client: string, n = 1): boolean {
    const now = this.#now();
    let entry = this.#clients.get(client);
    if (entry === undefined) {
      if (this.#clients.size >= this.#maxClients) this.#clients.delete(this.#clients.keys().next().value!);
      entry = { windowStart: now, used: 0, credit: this.#burst - this.#perSec };
      this.#clients.set(client, entry);
    } else if (now - entry.windowStart >= 1_000) {
      // Unused allowance of the closed window adds credit; what it borrowed beyond the rate is paid back.
      entry.credit = Math.min(this.#burst - this.#perSec, Math.max(0, entry.credit + this.#perSec - entry.used));
      entry.windowStart = now;
      entry.used = 0;
    }
    if (entry.used + n > this.#perSec + entry.credit) return false;
    entry.used += n;
    return true;
  }
}
