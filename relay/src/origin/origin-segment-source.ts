import { ErrorCode, RelaycastError, throwIfAborted, type ByteRange } from '@relaycast/protocol';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import {
  DEFAULT_CACHE_KEY_QUERY,
  DEFAULT_LIVE_POLLING_ENABLED,
  DEFAULT_MAX_INFLIGHT_DOWNLOADS,
  DEFAULT_MAX_ORIGIN_RATE_KEYS,
  DEFAULT_MAX_SEGMENT_BYTES,
  DEFAULT_ORIGIN_CHANNEL_BURST_BYTES,
  DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC,
  DEFAULT_ORIGIN_RELAY_BURST_BYTES,
  DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC,
} from '../constants.js';
import { InflightSegment, type InflightHead } from './inflight-segment.js';
import { LivePrefetcher, type LivePrefetcherOptions } from './live-prefetcher.js';
import { OriginFetcher } from './origin-fetcher.js';
import { createOriginPolicy, type OriginPolicy } from './origin-policy.js';
import { OriginRateLimiter } from './origin-rate.js';
import { SegmentCache, type CachedSegment } from './segment-cache.js';
import type { SegmentRequest, SegmentSource, SegmentStream } from '../serve/segment-source.js';

/** The live prefetcher's tuning, passed through as it is (documented there). */
type LiveTuning = Pick<
  LivePrefetcherOptions,
  'liveViewerIdleMs' | 'maxFollowedPlaylists' | 'prefetchSegments' | 'livePollMinMs' | 'livePollMaxMs' | 'advertiseTtlMs'
>;

export interface OriginSourceOptions extends LiveTuning {
  /**
   * URL prefixes the relay may fetch from, e.g. `https://cdn.example/media/`. Scheme, host and port
   * must match exactly; the path matches by prefix on a segment boundary. Required; an invalid
   * entry throws RC_ERR_CONFIG_INVALID.
   */
  allowedOrigins: string[];
  /** Sent to origins as `x-relaycast-relay-id`. Default: not sent. */
  relayId?: string | undefined;
  /** Segment cache capacity. Default: DEFAULT_CACHE_MAX_BYTES. */
  cacheMaxBytes?: number | undefined;
  /** Largest segment downloaded (and buffer bound of one download). Default: DEFAULT_MAX_SEGMENT_BYTES (32 MiB). */
  maxSegmentBytes?: number | undefined;
  /** Time the origin has to send response headers. Default: DEFAULT_ORIGIN_TIMEOUT_MS (10 s). */
  originTimeoutMs?: number | undefined;
  /** Longest silence between two body chunks from the origin. Default: DEFAULT_ORIGIN_BODY_TIMEOUT_MS (15 s). */
  originBodyTimeoutMs?: number | undefined;
  /** Redirect hops followed, each checked against the allowlist. Default: DEFAULT_MAX_REDIRECTS (3). */
  maxRedirects?: number | undefined;
  /** Concurrent origin downloads; opens beyond get RC_ERR_RELAY_OVERLOADED. Default: DEFAULT_MAX_INFLIGHT_DOWNLOADS (32). */
  maxInflightDownloads?: number | undefined;
  /** Follow live playlists named by requests and prefetch their newest segments. Default: DEFAULT_LIVE_POLLING_ENABLED (true). */
  livePollingEnabled?: boolean | undefined;
  /**
   * How a segment URL's query string takes part in the cache key.
   *  - 'ignore': scheme + host + port + path only. One segment requested with per-viewer query tokens
   *    (signed URLs) is fetched once and served to all, and `?cb=N` can neither pull a segment from
   *    the origin again nor evict the cache. The origin is asked with the URL of the request that
   *    missed (its query included, so a signed URL's token reaches the origin); every later request
   *    for the same path is served those bytes until they leave the cache, whatever its own query
   *    says. Origins that choose content by query (`seg.ts?bitrate=…`) need 'keep'.
   *  - 'keep': the whole URL (query included) is the key, as before. UNSAFE on an open relay: every
   *    new query string is a cache miss, so a viewer can pull a whole segment from the origin per
   *    1-byte request and push real content out of the cache; only the origin-fetch rates bound it.
   * Default: DEFAULT_CACHE_KEY_QUERY.
   */
  cacheKeyQuery?: CacheKeyQuery | undefined;
  /** Relay-wide origin bytes per second (token bucket); 0 = unlimited. Default: DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC. */
  originRelayBytesPerSec?: number | undefined;
  /** Relay-wide burst. Default: DEFAULT_ORIGIN_RELAY_BURST_BYTES. */
  originRelayBurstBytes?: number | undefined;
  /** Origin bytes per second one request `originKey` (a channel or session) may cause; 0 = unlimited. Default: DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC. */
  originChannelBytesPerSec?: number | undefined;
  /** Burst of one `originKey`. Default: DEFAULT_ORIGIN_CHANNEL_BURST_BYTES. */
  originChannelBurstBytes?: number | undefined;
  /** Parent logger. Default: no logging. */
  logger?: Logger | undefined;
  /** undici dispatcher replacing the own keep-alive Agent (tests); must not follow redirects. Default: own Agent. */
  dispatcher?: Dispatcher | undefined;
}

export const CACHE_KEY_QUERY_MODES = ['ignore', 'keep'] as const;
export type CacheKeyQuery = (typeof CACHE_KEY_QUERY_MODES)[number];

/** The cache (and coalescing) key of an allowed, normalised URL under `mode`. */
export function segmentCacheKey(url: URL, mode: CacheKeyQuery): string {
  return mode === 'keep' ? url.href : url.origin + url.pathname;
}

/**
 * The relay's origin side: allowlist → cache → coalesced origin download, plus live prefetch.
 * Implements the SegmentSource seam the channel server consumes.
 */
export function createOriginSegmentSource(options: OriginSourceOptions): SegmentSource {
  return new OriginSegmentSource(options);
}

class OriginSegmentSource implements SegmentSource {
  private readonly policy: OriginPolicy;
  private readonly fetcher: OriginFetcher;
  private readonly cache: SegmentCache;
  private readonly prefetcher: LivePrefetcher;
  private readonly inflight = new Map<string, InflightSegment>();
  private readonly maxSegmentBytes: number;
  private readonly maxInflight: number;
  private readonly log: Logger | undefined;
  private readonly keyMode: CacheKeyQuery;
  private readonly rate: OriginRateLimiter;
  private originBytes = 0;
  private closed = false;

  constructor(options: OriginSourceOptions) {
    this.log = options.logger?.child({ component: 'origin-source' });
    this.keyMode = options.cacheKeyQuery ?? DEFAULT_CACHE_KEY_QUERY;
    if (!(CACHE_KEY_QUERY_MODES as readonly string[]).includes(this.keyMode)) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `cacheKeyQuery must be one of ${CACHE_KEY_QUERY_MODES.join(', ')}`);
    }
    this.rate = new OriginRateLimiter({
      relayBytesPerSec: options.originRelayBytesPerSec ?? DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC,
      relayBurstBytes: options.originRelayBurstBytes ?? DEFAULT_ORIGIN_RELAY_BURST_BYTES,
      keyBytesPerSec: options.originChannelBytesPerSec ?? DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC,
      keyBurstBytes: options.originChannelBurstBytes ?? DEFAULT_ORIGIN_CHANNEL_BURST_BYTES,
      maxKeys: DEFAULT_MAX_ORIGIN_RATE_KEYS,
    });
    this.policy = createOriginPolicy(options.allowedOrigins);
    this.maxSegmentBytes = options.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES;
    if (!Number.isSafeInteger(this.maxSegmentBytes) || this.maxSegmentBytes <= 0) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'maxSegmentBytes must be a positive integer');
    }
    this.maxInflight = options.maxInflightDownloads ?? DEFAULT_MAX_INFLIGHT_DOWNLOADS;
    if (!Number.isSafeInteger(this.maxInflight) || this.maxInflight <= 0) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'maxInflightDownloads must be a positive integer');
    }
    this.cache = new SegmentCache({ maxBytes: options.cacheMaxBytes });
    this.fetcher = new OriginFetcher({
      policy: this.policy,
      relayId: options.relayId,
      originTimeoutMs: options.originTimeoutMs,
      originBodyTimeoutMs: options.originBodyTimeoutMs,
      maxRedirects: options.maxRedirects,
      dispatcher: options.dispatcher,
      logger: options.logger,
    });
    this.prefetcher = new LivePrefetcher({
      fetcher: this.fetcher,
      policy: this.policy,
      enabled: options.livePollingEnabled ?? DEFAULT_LIVE_POLLING_ENABLED,
      liveViewerIdleMs: options.liveViewerIdleMs,
      maxFollowedPlaylists: options.maxFollowedPlaylists,
      prefetchSegments: options.prefetchSegments,
      livePollMinMs: options.livePollMinMs,
      livePollMaxMs: options.livePollMaxMs,
      advertiseTtlMs: options.advertiseTtlMs,
      logger: options.logger,
      isCachedOrInflight: (href) => {
        const key = segmentCacheKey(new URL(href), this.keyMode);
        return this.cache.has(key) || this.inflight.has(key);
      },
      prefetch: (url) => this.prefetch(url),
    });
  }

  async open(request: SegmentRequest, options: { signal: AbortSignal; maxChunkBytes: number }): Promise<SegmentStream> {
    const { signal, maxChunkBytes } = options;
    throwIfAborted(signal);
    if (this.closed) throw new RelaycastError(ErrorCode.ABORTED, 'segment source is closed');
    if (!Number.isSafeInteger(maxChunkBytes) || maxChunkBytes <= 0) {
      throw new RelaycastError(ErrorCode.INTERNAL, 'maxChunkBytes must be a positive integer');
    }
    // Every URL of the request passes the allowlist before anything else happens.
    const url = this.policy.check(request.url);
    const playlistUrl = request.playlistUrl === undefined ? undefined : this.policy.check(request.playlistUrl);
    const range = checkRange(request.range);
    if (playlistUrl !== undefined) this.prefetcher.touch(playlistUrl);

    const key = segmentCacheKey(url, this.keyMode);
    const cached = this.cache.get(key);
    if (cached !== undefined) return fromCache(cached, range, maxChunkBytes, signal);

    let download = this.inflight.get(key);
    if (download === undefined) {
      // Only a request that starts a download costs origin bytes; so only it is checked and charged.
      if (request.allowOriginFetch === false) {
        throw new RelaycastError(ErrorCode.ORIGIN_BUDGET, 'origin fetch credit of this channel is used up (cache misses refused)', {
          details: { scope: 'credit' },
        });
      }
      this.rate.checkStart(request.originKey);
      download = this.startDownload(url, key, { originKey: request.originKey, onOriginBytes: request.onOriginBytes });
    }
    const head = await raceAbort(download.head, signal);
    return fromDownload(download, head, range, maxChunkBytes, signal);
  }

  advertisedStreams(): string[] {
    return this.prefetcher.advertisedStreams();
  }

  /** Cache figures for the relay's status (`cache` in /status). */
  stats(): {
    segments: number;
    bytes: number;
    maxBytes: number;
    downloadsInFlight: number;
    keyQuery: CacheKeyQuery;
    originBytes: number;
    originRate: ReturnType<OriginRateLimiter['stats']>;
  } {
    return {
      segments: this.cache.size,
      bytes: this.cache.bytes,
      maxBytes: this.cache.maxBytes,
      downloadsInFlight: this.inflight.size,
      keyQuery: this.keyMode,
      originBytes: this.originBytes,
      originRate: this.rate.stats(),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.prefetcher.close();
    const reason = new RelaycastError(ErrorCode.ABORTED, 'segment source closed');
    for (const download of [...this.inflight.values()]) download.abort(reason);
    this.inflight.clear();
    await this.fetcher.close();
    this.cache.clear();
  }

  private prefetch(url: URL): void {
    // Prefetch never takes the last download slots: viewers waiting now come first.
    if (this.closed || this.inflight.size >= Math.ceil(this.maxInflight / 2)) return;
    const key = segmentCacheKey(url, this.keyMode);
    if (this.cache.has(key) || this.inflight.has(key)) return;
    // Nobody waits for a prefetch: it yields to the relay-wide origin rate instead of overdrawing it.
    if (!this.rate.relayCanStart()) return;
    this.startDownload(url, key, undefined);
  }

  /** `by` is the request that missed (undefined for a prefetch): its key and callback get the origin bytes. */
  private startDownload(
    url: URL,
    key: string,
    by: { originKey: string | undefined; onOriginBytes: ((bytes: number) => void) | undefined } | undefined,
  ): InflightSegment {
    if (this.inflight.size >= this.maxInflight) {
      throw new RelaycastError(ErrorCode.RELAY_OVERLOADED, `${this.maxInflight} origin downloads already in flight`);
    }
    const isPrefetch = by === undefined;
    const onOriginBytes = by?.onOriginBytes;
    const download: InflightSegment = new InflightSegment({
      url,
      fetcher: this.fetcher,
      maxBytes: this.maxSegmentBytes,
      logger: this.log,
      onBytes: (bytes) => {
        this.originBytes += bytes;
        this.rate.charge(by?.originKey, bytes);
        if (onOriginBytes === undefined) return;
        try {
          onOriginBytes(bytes);
        } catch (err) {
          // The caller's accounting failing must not fail a download other readers share.
          this.log?.warn({ err: (err as Error).message }, 'onOriginBytes callback threw');
        }
      },
      onComplete: (segment) => {
        if (!this.closed) this.cache.set(key, segment);
      },
      onSettled: () => {
        if (this.inflight.get(key) === download) this.inflight.delete(key);
      },
    });
    this.inflight.set(key, download);
    this.log?.debug({ origin: url.origin, prefetch: isPrefetch }, 'origin download started');
    return download;
  }
}

interface Span {
  start: number;
  end: number | undefined;
  ranged: boolean;
}

function checkRange(range: ByteRange | undefined): Span {
  if (range === undefined) return { start: 0, end: undefined, ranged: false };
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end <= start))) {
    throw new RelaycastError(ErrorCode.RANGE_NOT_SATISFIABLE, 'invalid byte range', { details: { start, end } });
  }
  return { start, end, ranged: true };
}

/**
 * HTTP semantics: a range must start inside the resource; an end past the size is clamped.
 * Throws RC_ERR_RANGE_NOT_SATISFIABLE otherwise.
 */
function clampToSize(span: Span, totalBytes: number): Span {
  if (span.ranged && span.start >= totalBytes) {
    throw new RelaycastError(ErrorCode.RANGE_NOT_SATISFIABLE, `range starts at ${span.start}, resource has ${totalBytes} bytes`, {
      details: { start: span.start, totalBytes },
    });
  }
  return { ...span, end: Math.min(span.end ?? totalBytes, totalBytes) };
}

function fromCache(segment: CachedSegment, span: Span, maxChunkBytes: number, signal: AbortSignal): SegmentStream {
  const totalBytes = segment.bytes.byteLength;
  const { start, end } = clampToSize(span, totalBytes);
  return {
    offset: start,
    totalBytes,
    digest: segment.digest,
    fromCache: true,
    chunks: sliceChunks(segment.bytes, start, end ?? totalBytes, maxChunkBytes, signal),
  };
}

function fromDownload(download: InflightSegment, head: InflightHead, span: Span, maxChunkBytes: number, signal: AbortSignal): SegmentStream {
  const clamped = head.totalBytes === undefined ? span : clampToSize(span, head.totalBytes);
  return {
    offset: clamped.start,
    totalBytes: head.totalBytes,
    digest: undefined,
    fromCache: false,
    chunks: download.read(clamped.start, clamped.end, clamped.ranged, maxChunkBytes, signal),
  };
}

async function* sliceChunks(bytes: Uint8Array, start: number, end: number, maxChunkBytes: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
  for (let pos = start; pos < end; pos += maxChunkBytes) {
    throwIfAborted(signal);
    // Views into the cached copy: read-only for consumers, and no copy on the hot path.
    yield bytes.subarray(pos, Math.min(end, pos + maxChunkBytes));
  }
}

function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new RelaycastError(ErrorCode.ABORTED, 'open aborted', { cause: signal.reason }));
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
