/**
 * The network prefix an IP address belongs to, as a canonical string key, for limits counted per
 * address range rather than per address (one host, or one customer of an ISP or cloud, holds a
 * whole IPv4 /24 or IPv6 /48-/64 and can rotate through it freely). IPv4-mapped IPv6
 * (`::ffff:a.b.c.d`, what a dual-stack socket reports for IPv4 peers) counts as IPv4; a zone
 * (`%eth0`) is ignored. Pure string work (no node:net), so browsers and Node share it.
 *
 * Keys: IPv4 `a.b.c.d` for /32, else `a.b.c.0/24` (masked); IPv6 the first `bits / 16` groups
 * (lowercase hex, no leading zeros) then `::/bits`. `undefined` for anything that is not an address.
 */
export interface PrefixBits {
  /** IPv4 prefix length: 8, 16, 24 or 32. */
  ipv4: 8 | 16 | 24 | 32;
  /** IPv6 prefix length: a multiple of 16 from 16 to 128. */
  ipv6: 16 | 32 | 48 | 64 | 80 | 96 | 112 | 128;
}

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function ipv4Octets(text: string): number[] | undefined {
  const m = V4.exec(text);
  if (m === null) return undefined;
  const octets = m.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : undefined;
}

/** The eight 16-bit groups of an IPv6 address (a trailing dotted quad allowed), or undefined. */
function ipv6Groups(ip: string): number[] | undefined {
  let text = ip.toLowerCase();
  const quad = /(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/.exec(text);
  if (quad !== null) {
    const o = ipv4Octets(quad[1]!);
    if (o === undefined) return undefined;
    text = `${text.slice(0, quad.index)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] === '' ? [] : halves[0]!.split(':');
  const tail = halves.length === 2 ? (halves[1] === '' ? [] : halves[1]!.split(':')) : [];
  const fill = 8 - head.length - tail.length;
  if (fill < 0 || (halves.length === 1 && fill !== 0) || (halves.length === 2 && fill === 0)) return undefined;
  const groups = [...head, ...Array<string>(fill).fill('0'), ...tail];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.map((g) => parseInt(g, 16));
}

/**
 * The key of the `bits` prefix `ip` belongs to (format above), for limits per address range;
 * undefined when `ip` is not an IPv4 or IPv6 address.
 */
export function addressPrefix(ip: string, bits: PrefixBits): string | undefined {
  const zoneless = ip.split('%')[0] ?? ip;
  const mapped = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i.exec(zoneless);
  const octets = ipv4Octets(mapped?.[1] ?? zoneless);
  if (octets !== undefined) {
    if (bits.ipv4 === 32) return octets.join('.');
    const kept = bits.ipv4 / 8;
    return `${octets.map((o, i) => (i < kept ? o : 0)).join('.')}/${bits.ipv4}`;
  }
  const groups = ipv6Groups(zoneless);
  if (groups === undefined) return undefined;
  return `${groups
    .slice(0, bits.ipv6 / 16)
    .map((g) => g.toString(16))
    .join(':')}::/${bits.ipv6}`;
}
