import { isIPv4, isIPv6 } from 'node:net';

/**
 * The address range a peer's IP belongs to, for per-range caps (relays, pending offers, reporters,
 * TURN requests): IPv4 /24 and IPv6 /48. One host, or one customer of a cloud or ISP, usually holds
 * a whole /24 or /48 (an IPv6 end site gets at least a /56, often a /48), so counting per address
 * would let one party rotate addresses freely; counting per range does not. IPv4-mapped IPv6
 * (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers) counts as its IPv4 range.
 * Anything unparseable is its own range (the literal string), so it is still capped.
 */
export function addressRange(ip: string): string {
  const zoneless = ip.split('%')[0] ?? ip;
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(zoneless);
  const v4 = mapped?.[1] ?? zoneless;
  if (isIPv4(v4)) {
    const [a, b, c] = v4.split('.');
    return `${a}.${b}.${c}.0/24`;
  }
  if (isIPv6(zoneless)) {
    const groups = expandIPv6(zoneless);
    if (groups !== undefined) return `${groups.slice(0, 3).join(':')}::/48`;
  }
  return zoneless;
}

/** The eight 16-bit groups of an IPv6 address, as lowercase hex without leading zeros. */
function expandIPv6(ip: string): string[] | undefined {
  let text = ip.toLowerCase();
  // A trailing dotted quad (::ffff:1.2.3.4 handled above; ::1.2.3.4 and 64:ff9b::1.2.3.4 here).
  const quad = /(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (quad !== null) {
    const [, a, b, c, d] = quad.map(Number) as [number, number, number, number, number];
    text = `${text.slice(0, quad.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : (halves[0] ?? '').split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : (halves[1] ?? '').split(':')) : [];
  const fill = 8 - head.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0)) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill('0'), ...tail];
  return groups.map((g) => parseInt(g, 16).toString(16));
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
