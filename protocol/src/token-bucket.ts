/**
 * Token bucket: `ratePerSec` sustained, `burst` at once. Pure (time is injected), so the tracker,
 * the relay, the settler and the chain share one rate limit for network inputs. `take` refuses
 * when too few tokens are left; `charge` takes them anyway, into debt, for costs only known after
 * the fact (bytes of a download as they arrive), so the debt is paid back before the next start.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, t - this.last) / 1000) * this.ratePerSec);
    this.last = t;
  }

  /** Takes `n` tokens (default 1); false, and nothing taken, when fewer are left. */
  take(n = 1): boolean {
    this.refill();
    if (this.tokens < n) return false;
    this.tokens -= n;
    return true;
  }

  /** Takes `n` tokens whatever is left: the balance may go below zero. */
  charge(n: number): void {
    this.refill();
    this.tokens -= n;
  }

  /** Tokens left now (negative while in debt). */
  get balance(): number {
    this.refill();
    return this.tokens;
  }

  /** Full again: indistinguishable from a fresh bucket, so a table may forget it. */
  get full(): boolean {
    return this.balance >= this.burst;
  }
}
