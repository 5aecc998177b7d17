import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ErrorCode, RELAY_ID_HEADER, RelaycastError, isRelaycastError, throwIfAborted } from '@relaycast/protocol';
import type { Logger } from 'pino';
import { Agent, buildConnector, type Dispatcher } from 'undici';
import {
  DEFAULT_MAX_REDIRECTS,
  DEFAULT_ORIGIN_BODY_TIMEOUT_MS,
  DEFAULT_ORIGIN_CONNECT_TIMEOUT_MS,
  DEFAULT_ORIGIN_CONNECTIONS_PER_HOST,
  DEFAULT_ORIGIN_KEEP_ALIVE_MS,
  DEFAULT_ORIGIN_MAX_HOSTS,
  DEFAULT_ORIGIN_TIMEOUT_MS,
} from '../constants.js';
import type { OriginPolicy } from './origin-policy.js';

export interface OriginFetcherOptions {
  /** Allowlist every URL and every redirect hop is checked against. Required. */
  policy: OriginPolicy;
  /** Sent as `x-relaycast-relay-id` so origins can attribute requests. Default: not sent. */
  relayId?: string | undefined;
  /** Time the origin has to send response headers. Default: DEFAULT_ORIGIN_TIMEOUT_MS (10 s). */
  originTimeoutMs?: number | undefined;
  /** Longest silence between body chunks. Default: DEFAULT_ORIGIN_BODY_TIMEOUT_MS (15 s). */
  originBodyTimeoutMs?: number | undefined;
  /** Time to open a connection (own agent only). Default: DEFAULT_ORIGIN_CONNECT_TIMEOUT_MS (5 s). */
  originConnectTimeoutMs?: number | undefined;
  /** Redirect hops followed, each checked against the allowlist. Default: DEFAULT_MAX_REDIRECTS (3). */
  maxRedirects?: number | undefined;
  /** Keep-alive connections per origin host (own agent only). Default: DEFAULT_ORIGIN_CONNECTIONS_PER_HOST (8). */
  connectionsPerHost?: number | undefined;
  /**
   * undici dispatcher to use instead of the fetcher's own keep-alive Agent (tests). It must not
   * follow redirects itself. It is not closed by `close()`. Default: an own Agent.
   */
  dispatcher?: Dispatcher | undefined;
  /**
   * Resolves an origin host name to every address it has (own agent only). Whatever it returns is
   * checked with `policy.allowsAddress` before a connection is opened. Default: `node:dns` lookup
   * (the system resolver, /etc/hosts included) with `all: true`.
   */
  resolveHost?: ((hostname: string) => Promise<ResolvedAddress[]>) | undefined;
  /** Parent logger. Default: no logging. */
  logger?: Logger | undefined;
}

export interface ResolvedAddress {
  address: string;
  family: number;
}

/** An origin response whose status was accepted (2xx); the body has not been read yet. */
export interface OriginResponse {
  /** URL that finally answered (after redirects). */
  url: URL;
  status: number;
  /** From Content-Length, when the origin sent one. */
  contentLength: number | undefined;
  /** Body chunks. Throws a RelaycastError on failure; breaking out of it releases the connection. */
  body: AsyncIterable<Uint8Array>;
}

const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

/**
 * GETs allowed URLs from origins over a bounded keep-alive pool, following redirects by hand so
 * every hop passes the allowlist before any byte is sent to it, and maps every failure to a
 * RelaycastError code.
 */
export class OriginFetcher {
  private readonly policy: OriginPolicy;
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly headers: Record<string, string>;
  private readonly headersTimeoutMs: number;
  private readonly bodyTimeoutMs: number;
  private readonly maxRedirects: number;
  private readonly log: Logger | undefined;

  constructor(options: OriginFetcherOptions) {
    this.policy = options.policy;
    this.headersTimeoutMs = positive(options.originTimeoutMs ?? DEFAULT_ORIGIN_TIMEOUT_MS, 'originTimeoutMs');
    this.bodyTimeoutMs = positive(options.originBodyTimeoutMs ?? DEFAULT_ORIGIN_BODY_TIMEOUT_MS, 'originBodyTimeoutMs');
    this.maxRedirects = options.maxRedirects ?? DEFAULT_MAX_REDIRECTS;
    if (!Number.isInteger(this.maxRedirects) || this.maxRedirects < 0) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'maxRedirects must be a non-negative integer');
    }
    this.log = options.logger?.child({ component: 'origin-fetcher' });
    this.headers = { 'accept-encoding': 'identity', 'user-agent': 'relaycast-relay' };
    if (options.relayId !== undefined) this.headers[RELAY_ID_HEADER] = options.relayId;
    if (options.dispatcher !== undefined) {
      this.dispatcher = options.dispatcher;
      this.ownsDispatcher = false;
    } else {
      const connectTimeoutMs = positive(options.originConnectTimeoutMs ?? DEFAULT_ORIGIN_CONNECT_TIMEOUT_MS, 'originConnectTimeoutMs');
      // An Agent without the redirect interceptor never follows redirects on its own.
      this.dispatcher = new Agent({
        connections: positive(options.connectionsPerHost ?? DEFAULT_ORIGIN_CONNECTIONS_PER_HOST, 'connectionsPerHost'),
        maxOrigins: DEFAULT_ORIGIN_MAX_HOSTS,
        keepAliveTimeout: DEFAULT_ORIGIN_KEEP_ALIVE_MS,
        connect: guardedConnector(this.policy, options.resolveHost ?? resolveAll, connectTimeoutMs, this.log),
        headersTimeout: this.headersTimeoutMs,
        bodyTimeout: this.bodyTimeoutMs,
      });
      this.ownsDispatcher = true;
    }
  }

  /**
   * GETs `url` (already checked against the policy by the caller or not: it is checked again).
   * Resolves once an accepted status and headers arrived. Rejects with RC_ERR_ORIGIN_NOT_ALLOWED,
   * RC_ERR_SEGMENT_UNAVAILABLE (404/410), RC_ERR_ORIGIN_HTTP, RC_ERR_ORIGIN_UNREACHABLE,
   * RC_ERR_TIMEOUT, RC_ERR_SEGMENT_TOO_LARGE (Content-Length above `maxBytes`) or RC_ERR_ABORTED.
   */
  async get(url: URL, options: { signal: AbortSignal; maxBytes: number }): Promise<OriginResponse> {
    const { signal, maxBytes } = options;
    let current = this.policy.check(url.href);
    for (let hop = 0; ; hop++) {
      throwIfAborted(signal);
      let res: Dispatcher.ResponseData;
      try {
        res = await this.dispatcher.request({
          origin: current.origin,
          path: current.pathname + current.search,
          method: 'GET',
          headers: this.headers,
          signal,
          headersTimeout: this.headersTimeoutMs,
          bodyTimeout: this.bodyTimeoutMs,
        });
      } catch (err) {
        throw mapError(err, signal, current);
      }
      const status = res.statusCode;
      if (REDIRECT_STATUSES.has(status)) {
        discard(res.body);
        const location = header(res.headers, 'location');
        if (location === undefined) {
          throw new RelaycastError(ErrorCode.ORIGIN_HTTP, `origin answered ${status} without a Location`, { details: { status } });
        }
        if (hop >= this.maxRedirects) {
          throw new RelaycastError(ErrorCode.ORIGIN_HTTP, `more than ${this.maxRedirects} redirects`, { details: { status } });
        }
        let next: URL;
        try {
          next = new URL(location, current);
        } catch {
          throw new RelaycastError(ErrorCode.ORIGIN_HTTP, 'origin redirected to an invalid URL', { details: { status } });
        }
        // The same check as for viewer input: the redirect target is never contacted unless allowed.
        current = this.policy.check(next.href);
        this.log?.debug({ hop: hop + 1, status }, 'following origin redirect');
        continue;
      }
      if (status === 404 || status === 410) {
        discard(res.body);
        throw new RelaycastError(ErrorCode.SEGMENT_UNAVAILABLE, `origin answered ${status}`, { details: { status } });
      }
      if (status < 200 || status > 299 || status === 206) {
        // 206 is refused too: without a Range request a partial body would poison the cache.
        discard(res.body);
        throw new RelaycastError(ErrorCode.ORIGIN_HTTP, `origin answered ${status}`, { details: { status } });
      }
      const encoding = header(res.headers, 'content-encoding');
      if (encoding !== undefined && encoding.toLowerCase() !== 'identity') {
        // Viewers verify digests of the identity bytes; an encoded body would never match.
        discard(res.body);
        throw new RelaycastError(ErrorCode.ORIGIN_HTTP, 'origin sent an encoded body although identity was asked', {
          details: { status, contentEncoding: encoding.slice(0, 64) },
        });
      }
      const contentLength = parseContentLength(header(res.headers, 'content-length'));
      if (contentLength !== undefined && contentLength > maxBytes) {
        discard(res.body);
        throw new RelaycastError(ErrorCode.SEGMENT_TOO_LARGE, `origin resource of ${contentLength} bytes exceeds ${maxBytes}`, {
          details: { contentLength, maxBytes },
        });
      }
      return { url: current, status, contentLength, body: this.readBody(res.body, signal, current) };
    }
  }

  /** GETs a small text resource (a playlist) whole, at most `maxBytes`. */
  async getText(url: URL, options: { signal: AbortSignal; maxBytes: number }): Promise<{ url: URL; text: string }> {
    const res = await this.get(url, options);
    const parts: Uint8Array[] = [];
    let total = 0;
    for await (const chunk of res.body) {
      total += chunk.byteLength;
      if (total > options.maxBytes) {
        throw new RelaycastError(ErrorCode.SEGMENT_TOO_LARGE, `origin resource exceeds ${options.maxBytes} bytes`, {
          details: { maxBytes: options.maxBytes },
        });
      }
      parts.push(chunk);
    }
    return { url: res.url, text: Buffer.concat(parts).toString('utf8') };
  }

  /** Closes the own agent (aborting its connections); an injected dispatcher is left to its owner. */
  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.destroy().catch(() => undefined);
  }

  private async *readBody(body: Dispatcher.ResponseData['body'], signal: AbortSignal, url: URL): AsyncGenerator<Uint8Array> {
    try {
      for await (const chunk of body) {
        const buf = chunk as Buffer;
        yield new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
      }
    } catch (err) {
      throw mapError(err, signal, url);
    } finally {
      // Leaving early (size limit, abort) must release the socket instead of waiting for the rest.
      if (!body.destroyed) body.destroy();
    }
  }
}

async function resolveAll(hostname: string): Promise<ResolvedAddress[]> {
  return dnsLookup(hostname, { all: true, verbatim: true });
}

/**
 * undici connector that resolves host names itself, checks every address against the policy and
 * connects to a checked address, so what was checked is what gets contacted (no second lookup a
 * rebinding DNS server could answer differently). IP literals are not resolved: the URL check
 * already required the allowlist to name them.
 */
function guardedConnector(
  policy: OriginPolicy,
  resolveHost: (hostname: string) => Promise<ResolvedAddress[]>,
  timeoutMs: number,
  log: Logger | undefined,
): buildConnector.connector {
  const connect = buildConnector({ timeout: timeoutMs });
  return (options, callback) => {
    const hostname = options.hostname.startsWith('[') ? options.hostname.slice(1, -1) : options.hostname;
    if (isIP(hostname) !== 0) return connect(options, callback);
    const port = Number(options.port) || (options.protocol === 'https:' ? 443 : 80);
    let settled = false;
    const finish = (err: Error | null, address?: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err !== null || address === undefined) return callback(err ?? new Error('no address'), null);
      // `host` keeps the name, so TLS still sends it as SNI and checks the certificate against it.
      connect({ ...options, hostname: address, host: options.host ?? `${options.hostname}:${port}` }, callback);
    };
    // The system resolver has no deadline of its own; the connect timeout covers the lookup too.
    const timer = setTimeout(
      () => finish(new RelaycastError(ErrorCode.TIMEOUT, `resolving ${hostname.slice(0, 64)} took over ${timeoutMs} ms`, { details: { hostname } })),
      timeoutMs,
    );
    resolveHost(hostname).then(
      (addresses) => {
        const refused = addresses.find((a) => !policy.allowsAddress(hostname, a.address, port));
        if (addresses.length === 0) return finish(new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, `${hostname.slice(0, 64)} has no address`));
        if (refused !== undefined) {
          log?.warn({ hostname, address: refused.address }, 'origin host name resolves to an address the allowlist does not name');
          return finish(
            new RelaycastError(ErrorCode.ORIGIN_NOT_ALLOWED, 'origin not allowed: host name resolves to an internal address', {
              details: { hostname, address: refused.address },
            }),
          );
        }
        finish(null, (addresses[0] as ResolvedAddress).address);
      },
      (err: unknown) => finish(err instanceof Error ? err : new Error(String(err))),
    );
  };
}

function discard(body: Dispatcher.ResponseData['body']): void {
  // Small bodies are drained so the keep-alive connection can be reused; big ones are cut.
  body.dump({ limit: 64 * 1024 }).catch(() => undefined);
}

function header(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function parseContentLength(value: string | undefined): number | undefined {
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

function positive(value: number, name: string): number {
  if (!Number.isFinite(value) || value <= 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be positive`);
  return value;
}

/** Maps undici/network failures to the relay's codes. Origin URLs go to details, never credentials (none are allowed). */
export function mapError(err: unknown, signal: AbortSignal | undefined, url: URL): RelaycastError {
  if (isRelaycastError(err)) return err;
  if (signal?.aborted === true) return new RelaycastError(ErrorCode.ABORTED, 'origin request aborted', { cause: err });
  const code = (err as { code?: unknown } | null)?.code;
  const details = { origin: url.origin };
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new RelaycastError(ErrorCode.TIMEOUT, `origin timed out (${code})`, { cause: err, details });
  }
  if (code === 'UND_ERR_ABORTED' || code === 'UND_ERR_ABORT' || (err instanceof Error && err.name === 'AbortError')) {
    return new RelaycastError(ErrorCode.ABORTED, 'origin request aborted', { cause: err });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, `origin unreachable: ${message}`, { cause: err, details });
}
