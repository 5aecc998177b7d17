import { ErrorCode, RelaycastError, throwIfAborted, type ByteRange } from '@relaycast/protocol';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import {
  DEFAULT_LIVE_POLLING_ENABLED,
  DEFAULT_MAX_INFLIGHT_DOWNLOADS,
  DEFAULT_MAX_SEGMENT_BYTES,
} from './constants.js';
import { InflightSegment, type InflightHead } from './inflight-segment.js';
import { LivePrefetcher } from './live-prefetcher.js';
import { OriginFetcher } from './origin-fetcher.js';
import { createOriginPolicy, type OriginPolicy } from './origin-policy.js';
import { SegmentCache, type CachedSegment } from './segment-cache.js';
import type { SegmentRequest, SegmentSource, SegmentStream } from './segment-source.js';

export interface OriginSourceOptions {
  /**
   * URL prefixes the relay may fetch from, e.g. `https://cdn.example/media/`. Scheme, host and port
   * must match exactly; the path matches by prefix on a segment boundary. Required; an invalid
   * entry throws RC_ERR_CONFIG_INVALID.
   */
  allowedOrigins: string[];
  /** Sent to origins as `x-relaycast-relay-id`. Default: not sent. */
  relayId?: string | undefined;
  /** Segment cache capacity. Default: DEFAULT_CACHE_MAX_BYTES (256 MiB). */
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
  /** A live playlist is followed this long after its last viewer request. Default: DEFAULT_LIVE_VIEWER_IDLE_MS (30 s). */
  liveViewerIdleMs?: number | undefined;
  /** Live playlists followed at once. Default: DEFAULT_MAX_FOLLOWED_PLAYLISTS (32). */
  maxFollowedPlaylists?: number | undefined;
  /** Newest segments of a live playlist kept prefetched. Default: DEFAULT_PREFETCH_SEGMENTS (3). */
  prefetchSegments?: number | undefined;
  /** Lower bound of the live poll interval. Default: DEFAULT_LIVE_POLL_MIN_MS (500 ms). */
  livePollMinMs?: number | undefined;
  /** Upper bound of the live poll interval. Default: DEFAULT_LIVE_POLL_MAX_MS (10 s). */
  livePollMaxMs?: number | undefined;
  /** How long a requested playlist stays advertised. Default: DEFAULT_ADVERTISE_TTL_MS (5 min). */
  advertiseTtlMs?: number | undefined;
  /** Parent logger. Default: no logging. */
  logger?: Logger | undefined;
  /** undici dispatcher replacing the own keep-alive Agent (tests); must not follow redirects. Default: own Agent. */
  dispatcher?: Dispatcher | undefined;
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
  private closed = false;

  constructor(options: OriginSourceOptions) {
    this.log = options.logger?.child({ component: 'origin-source' });
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
      isCachedOrInflight: (key) => this.cache.has(key) || this.inflight.has(key),
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

    const key = url.href;
    const cached = this.cache.get(key);
    if (cached !== undefined) return fromCache(cached, range, maxChunkBytes, signal);

    const download = this.inflight.get(key) ?? this.startDownload(url, false);
    const head = await raceAbort(download.head, signal);
    return fromDownload(download, head, range, maxChunkBytes, signal);
  }

  advertisedStreams(): string[] {
    return this.prefetcher.advertisedStreams();
  }

  /** Cache figures for the relay's status (`cache` in /status). */
  stats(): { segments: number; bytes: number; maxBytes: number; downloadsInFlight: number } {
    return { segments: this.cache.size, bytes: this.cache.bytes, maxBytes: this.cache.maxBytes, downloadsInFlight: this.inflight.size };
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
    if (this.cache.has(url.href) || this.inflight.has(url.href)) return;
    this.startDownload(url, true);
  }

  private startDownload(url: URL, isPrefetch: boolean): InflightSegment {
    if (this.inflight.size >= this.maxInflight) {
      throw new RelaycastError(ErrorCode.RELAY_OVERLOADED, `${this.maxInflight} origin downloads already in flight`);
    }
    const key = url.href;
    const download: InflightSegment = new InflightSegment({
      url,
      fetcher: this.fetcher,
      maxBytes: this.maxSegmentBytes,
      logger: this.log,
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
