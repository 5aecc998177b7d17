import { BlockList, isIP } from 'node:net';
import { ErrorCode, MAX_URL_BYTES, RelaycastError } from '@relaycast/protocol';

/**
 * The relay's allowlist. The relay fetches only URLs under an operator-configured prefix, so it can
 * never be used as an open proxy (to reach internal services, or to launder arbitrary traffic).
 *
 * Checks are deliberately stricter than URL normalisation: anything that a server, a proxy or a
 * different URL parser could read differently from WHATWG (dot segments, encoded slashes,
 * backslashes, userinfo, control characters) is refused outright instead of being normalised.
 */
export interface OriginPolicy {
  /** Returns the normalised URL (fragment removed) or throws RC_ERR_ORIGIN_NOT_ALLOWED. */
  check(rawUrl: string): URL;
  /**
   * Whether the relay may open a connection to `address` (an IP the resolver gave for `hostname`,
   * an allowed host name) on `port`. Public unicast addresses always; loopback, private, link-local,
   * CGNAT, multicast, reserved and translation ranges only when the operator allowlisted that very
   * address and port as an IP literal (`http://127.0.0.1:8080/media/`), or loopback for a prefix
   * whose host is `localhost`. So DNS (rebinding included) can never steer the relay onto an
   * internal service the allowlist does not name.
   */
  allowsAddress(hostname: string, address: string, port: number): boolean;
  /** The normalised prefixes, for logs and status pages. */
  readonly prefixes: readonly string[];
}

interface Prefix {
  origin: string;
  path: string;
}

/**
 * Every IP range that is not ordinary public unicast. Embedding ranges (IPv4-mapped, NAT64, 6to4,
 * Teredo) are refused whole: they can carry an internal IPv4 address inside an IPv6 one.
 */
const SPECIAL_RANGES: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['0.0.0.0', 8, 'ipv4'], // "this network"; 0.0.0.0 reaches the local host
  ['10.0.0.0', 8, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // CGNAT
  ['127.0.0.0', 8, 'ipv4'],
  ['169.254.0.0', 16, 'ipv4'], // link-local, cloud metadata services
  ['172.16.0.0', 12, 'ipv4'],
  ['192.0.0.0', 24, 'ipv4'],
  ['192.0.2.0', 24, 'ipv4'],
  ['192.88.99.0', 24, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['198.18.0.0', 15, 'ipv4'],
  ['198.51.100.0', 24, 'ipv4'],
  ['203.0.113.0', 24, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'], // multicast
  ['240.0.0.0', 4, 'ipv4'], // reserved and broadcast
  ['::', 128, 'ipv6'],
  ['::1', 128, 'ipv6'],
  ['::ffff:0:0', 96, 'ipv6'], // IPv4-mapped
  ['::', 96, 'ipv6'], // IPv4-compatible (deprecated)
  ['64:ff9b::', 96, 'ipv6'], // NAT64
  ['64:ff9b:1::', 48, 'ipv6'],
  ['100::', 64, 'ipv6'], // discard
  ['2001::', 23, 'ipv6'], // IETF protocol assignments, Teredo
  ['2001:db8::', 32, 'ipv6'],
  ['2002::', 16, 'ipv6'], // 6to4
  ['fc00::', 7, 'ipv6'], // unique local
  ['fe80::', 10, 'ipv6'], // link-local
  ['fec0::', 10, 'ipv6'], // site-local (deprecated)
  ['ff00::', 8, 'ipv6'], // multicast
];
const LOOPBACK_RANGES: readonly [string, number, 'ipv4' | 'ipv6'][] = [
  ['127.0.0.0', 8, 'ipv4'],
  ['::1', 128, 'ipv6'],
];

/**
 * One BlockList per family: a list holding ::ffff:0:0/96 also matches every IPv4 address checked
 * as 'ipv4', which would make the whole public IPv4 internet "internal".
 */
function blockLists(ranges: readonly [string, number, 'ipv4' | 'ipv6'][]): Record<'ipv4' | 'ipv6', BlockList> {
  const lists = { ipv4: new BlockList(), ipv6: new BlockList() };
  for (const [net, prefix, family] of ranges) lists[family].addSubnet(net, prefix, family);
  return lists;
}

const SPECIAL = blockLists(SPECIAL_RANGES);
const LOOPBACK = blockLists(LOOPBACK_RANGES);

function family(address: string): 'ipv4' | 'ipv6' | undefined {
  const v = isIP(address);
  return v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined;
}

/** `address|port` with the address in WHATWG's canonical form, so ::1 and 0:0:0:0:0:0:0:1 compare equal. */
function endpointKey(address: string, port: number): string | undefined {
  const f = family(address);
  if (f === undefined) return undefined;
  const host = new URL(`http://${f === 'ipv6' ? `[${address}]` : address}/`).hostname;
  return `${host}|${port}`;
}

function defaultPort(url: URL): number {
  return url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
}

function isLocalhostName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}

const SCHEME_AUTHORITY = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/s;
// C0 controls, space and DEL: the WHATWG parser silently strips some of these (tab, newline), which
// would let "/me\tdia/" or "/media/.\n./" mean something other than what was checked.
const FORBIDDEN_CHARS = /[\u0000-\u0020\u007f\\]/;
const ENCODED_SEPARATOR = /%(2f|5c|00)/i;
const PERCENT_ESCAPE = /%([0-9a-f]{2})/gi;
/** Decoding rounds looked through: `%25` nests one level per round (`%25252e` is three). */
const MAX_DECODE_ROUNDS = 4;

/** Builds the policy; an invalid prefix throws RC_ERR_CONFIG_INVALID. */
export function createOriginPolicy(allowedOrigins: readonly string[]): OriginPolicy {
  const prefixes: Prefix[] = allowedOrigins.map((raw) => {
    const reason = inspect(raw);
    if (reason !== undefined) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `allowed origin prefix is invalid: ${reason}`, {
        details: { prefix: raw },
      });
    }
    const url = new URL(raw);
    if (url.search !== '' || url.hash !== '' || raw.includes('?') || raw.includes('#')) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'allowed origin prefix must not carry a query or fragment', {
        details: { prefix: raw },
      });
    }
    return { origin: url.origin, path: url.pathname };
  });
  // Internal addresses the operator named outright: those, and only on the port named.
  const explicitEndpoints = new Set<string>();
  for (const raw of allowedOrigins) {
    const url = new URL(raw);
    const literal = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const key = endpointKey(literal, defaultPort(url));
    if (key !== undefined) explicitEndpoints.add(key);
  }

  return {
    prefixes: prefixes.map((p) => p.origin + p.path),
    allowsAddress(hostname: string, address: string, port: number): boolean {
      const f = family(address);
      if (f === undefined) return false;
      if (!SPECIAL[f].check(address, f)) return true;
      const key = endpointKey(address, port);
      if (key !== undefined && explicitEndpoints.has(key)) return true;
      return isLocalhostName(hostname) && LOOPBACK[f].check(address, f);
    },
    check(rawUrl: string): URL {
      const reason = inspect(rawUrl);
      if (reason !== undefined) throw notAllowed(rawUrl, reason);
      const url = new URL(rawUrl);
      url.hash = '';
      if (!prefixes.some((p) => matches(p, url))) throw notAllowed(rawUrl, 'not under an allowed origin prefix');
      return url;
    },
  };
}

function matches(prefix: Prefix, url: URL): boolean {
  // `origin` is scheme + lowercased host + port with the default port dropped, so
  // http://a:80/ and http://A/ compare equal while http://a:8080/ does not.
  if (url.origin !== prefix.origin) return false;
  const path = url.pathname;
  if (prefix.path.endsWith('/')) return path.startsWith(prefix.path);
  // A prefix without a trailing slash still only matches on a path-segment boundary:
  // "/media" allows "/media" and "/media/x", never "/media-evil".
  return path === prefix.path || path.startsWith(prefix.path + '/');
}

/** Returns why `raw` is unacceptable, or undefined when it passes every syntactic check. */
function inspect(raw: string): string | undefined {
  if (raw.length === 0) return 'empty URL';
  if (Buffer.byteLength(raw, 'utf8') > MAX_URL_BYTES) return `URL longer than ${MAX_URL_BYTES} bytes`;
  if (FORBIDDEN_CHARS.test(raw)) return 'URL contains a backslash, whitespace or control character';
  const m = SCHEME_AUTHORITY.exec(raw);
  if (m === null) return 'URL must be absolute (scheme://host/...)';
  const scheme = (m[1] as string).toLowerCase();
  const authority = m[2] as string;
  const rest = m[3] as string;
  if (scheme !== 'http' && scheme !== 'https') return 'only http and https are allowed';
  if (authority.includes('@')) return 'userinfo is not allowed';
  if (authority.length === 0) return 'missing host';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'URL does not parse';
  }
  if (url.username !== '' || url.password !== '') return 'userinfo is not allowed';
  const rawPath = rest.split(/[?#]/, 1)[0] as string;
  if (ENCODED_SEPARATOR.test(rawPath)) return 'encoded slash, backslash or NUL in the path';
  for (const segment of rawPath.split('/')) {
    // Servlet containers read "..;x" (path parameters) as "..": compare what comes before the ';'.
    const decoded = (segment.split(';', 1)[0] as string).replace(/%2e/gi, '.');
    if (decoded === '.' || decoded === '..') return 'dot segments are not allowed in the path';
    const nested = nestedEncoding(segment);
    if (nested !== undefined) return nested;
  }
  return undefined;
}

/**
 * A proxy, CDN or application that percent-decodes once more than the origin's own router turns
 * `%252e%252e` into `..` and `%252f` into `/` after the allowlist matched the path. So the segment
 * is decoded again and again (also `%25%32%65` → `%2e` → `.`), and any round that yields a slash,
 * backslash, NUL or a dot segment refuses the URL. One decoding round is what every server does and
 * is checked above; this reports the rounds after it.
 */
function nestedEncoding(segment: string): string | undefined {
  let current = segment;
  for (let round = 1; round <= MAX_DECODE_ROUNDS && current.includes('%'); round++) {
    const next = current.replace(PERCENT_ESCAPE, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    if (next === current) return undefined;
    current = next;
    if (round === 1) continue; // the first round's result is what the checks above already refuse
    if (/[/\\\u0000]/.test(current)) return 'double-encoded slash, backslash or NUL in the path';
    const head = current.split(';', 1)[0] as string;
    if (head === '.' || head === '..') return 'double-encoded dot segment in the path';
  }
  // Deeper than the rounds looked through: refused rather than guessed at.
  if (/%(25|2e|2f|5c|00)/i.test(current)) return 'percent-encoding nested too deeply in the path';
  return undefined;
}

function notAllowed(rawUrl: string, reason: string): RelaycastError {
  return new RelaycastError(ErrorCode.ORIGIN_NOT_ALLOWED, `origin not allowed: ${reason}`, {
    // Without the query (signed URLs carry tokens there) and cut short so logs stay bounded.
    details: { url: rawUrl.split(/[?#]/, 1)[0]?.slice(0, 256) },
  });
}
