import { addressPrefix } from '@relaycast/protocol';

/**
 * The address range a peer's IP belongs to, for per-range caps (relays, pending offers, reporters,
 * TURN requests): IPv4 /24 and IPv6 /48. One host, or one customer of a cloud or ISP, usually holds
 * a whole /24 or /48 (an IPv6 end site gets at least a /56, often a /48), so counting per address
 * would let one party rotate addresses freely; counting per range does not. IPv4-mapped IPv6
 * (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers) counts as its IPv4 range.
 * Anything unparseable is its own range (the literal string), so it is still capped.
 */
export function addressRange(ip: string): string {
  return addressPrefix(ip, { ipv4: 24, ipv6: 48 }) ?? ip.split('%')[0] ?? ip;
}

/**
 * Counts per range with a bound on the ranges remembered, for the sliding-window and rate limits
 * of network inputs. When full, the least recently touched range is forgotten first (an attacker
 * rotating through more ranges than this only forgets its own oldest entries fastest).
 */
export class RangeTable<V> {
  private readonly entries = new Map<string, V>();

  constructor(
    private readonly maxRanges: number,
    private readonly create: () => V,
  ) {}

  get size(): number {
    return this.entries.size;
  }

  /** The entry of `range`, created when missing; marks it most recently used. */
  get(range: string): V {
    let v = this.entries.get(range);
    if (v === undefined) {
      v = this.create();
      while (this.entries.size >= this.maxRanges) this.entries.delete(this.entries.keys().next().value as string);
    } else {
      this.entries.delete(range);
    }
    this.entries.set(range, v);
    return v;
  }

  peek(range: string): V | undefined {
    return this.entries.get(range);
  }

  delete(range: string): void {
    this.entries.delete(range);
  }
}

/**
 * Event times within a sliding window, at most `max` kept: `tryAdd` records an event unless `max`
 * events already happened within the last `windowMs`. Bounded by construction.
 */
export class SlidingWindow {
  private readonly times: number[] = [];

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  count(now: number): number {
    const cutoff = now - this.windowMs;
    while (this.times.length > 0 && (this.times[0] as number) <= cutoff) this.times.shift();
    return this.times.length;
  }

  tryAdd(now: number): boolean {
    if (this.count(now) >= this.max) return false;
    this.times.push(now);
    return true;
  }
}
