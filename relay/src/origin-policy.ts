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
  /** The normalised prefixes, for logs and status pages. */
  readonly prefixes: readonly string[];
}

interface Prefix {
  origin: string;
  path: string;
}

const SCHEME_AUTHORITY = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/([^/?#]*)(.*)$/s;
// C0 controls, space and DEL: the WHATWG parser silently strips some of these (tab, newline), which
// would let "/me\tdia/" or "/media/.\n./" mean something other than what was checked.
const FORBIDDEN_CHARS = /[\u0000-\u0020\u007f\\]/;
const ENCODED_SEPARATOR = /%(2f|5c|00)/i;

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

  return {
    prefixes: prefixes.map((p) => p.origin + p.path),
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
    const decoded = segment.replace(/%2e/gi, '.');
    if (decoded === '.' || decoded === '..') return 'dot segments are not allowed in the path';
  }
  return undefined;
}

function notAllowed(rawUrl: string, reason: string): RelaycastError {
  return new RelaycastError(ErrorCode.ORIGIN_NOT_ALLOWED, `origin not allowed: ${reason}`, {
    // Without the query (signed URLs carry tokens there) and cut short so logs stay bounded.
    details: { url: rawUrl.split(/[?#]/, 1)[0]?.slice(0, 256) },
  });
}
