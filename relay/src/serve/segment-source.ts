import type { ByteRange } from '@relaycast/protocol';

/**
 * The seam between the relay's origin side (allowlist, fetch, cache, coalescing, live prefetch)
 * and its viewer side (data-channel server). The viewer side only ever sees this interface.
 */
export interface SegmentRequest {
  /** Absolute segment URL as the viewer sent it. */
  url: string;
  /** Half-open byte range; undefined means the whole segment. */
  range?: ByteRange | undefined;
  /** Media playlist the segment belongs to (lets the source follow live playlists). */
  playlistUrl?: string | undefined;
  /**
   * Opaque key of who asked (the channel server passes its channel or session id). Origin downloads
   * this request starts count against that key's origin-fetch rate; a key over its rate gets
   * RC_ERR_ORIGIN_BUDGET for the next cache miss. Default: only the relay-wide rate applies.
   */
  originKey?: string | undefined;
  /**
   * False refuses a cache miss that would start a new origin download with RC_ERR_ORIGIN_BUDGET
   * (the channel server sets it when the channel's or session's origin credit is used up). Cache
   * hits and joining a download already in flight are still served. Default: true.
   */
  allowOriginFetch?: boolean | undefined;
  /**
   * Called with the origin bytes this request caused, in bytes of the response body as received
   * (identity encoding, no headers), as they arrive: only when this request's cache miss started the
   * download (a cache hit or a join of someone else's download never calls it; that download's
   * bytes were caused, and reported, by whoever started it). The download completes into the cache
   * even after the request ends, so calls may continue after `chunks` finished or was abandoned.
   * The sum of the calls is the whole resource (≤ maxSegmentBytes), whatever range was asked.
   * Default: none.
   */
  onOriginBytes?: ((bytes: number) => void) | undefined;
}

export interface SegmentStream {
  /** Offset in the resource of the first byte `chunks` yields (the range start, or 0). */
  offset: number;
  /** Size of the whole resource when known (from cache or the origin's Content-Length). */
  totalBytes?: number | undefined;
  /** SHA-256 of the whole resource when already known (cached and complete). */
  digest?: Uint8Array | undefined;
  /** True when served from a complete cached copy, false when streamed from an in-flight origin fetch. */
  fromCache: boolean;
  /**
   * Bytes of the requested range in order, each chunk at most `maxChunkBytes` as given to `open`.
   * Streams while the origin download is still in flight. Throws a RelaycastError if the origin
   * fails mid-way. Breaking out of the loop (or aborting the signal) releases everything.
   */
  chunks: AsyncIterable<Uint8Array>;
}

export interface SegmentSource {
  /**
   * Opens a segment for one viewer request.
   * Rejects with RelaycastError:
   *  - RC_ERR_ORIGIN_NOT_ALLOWED when the URL is outside the allowlist (no outgoing request is made);
   *  - RC_ERR_SEGMENT_UNAVAILABLE when the origin answers 404/410 (the channel answers ABSENT);
   *  - RC_ERR_ORIGIN_HTTP / RC_ERR_ORIGIN_UNREACHABLE / RC_ERR_TIMEOUT for other origin failures;
   *  - RC_ERR_RANGE_NOT_SATISFIABLE for a range outside the resource;
   *  - RC_ERR_SEGMENT_TOO_LARGE when the segment exceeds the configured maximum;
   *  - RC_ERR_ORIGIN_BUDGET when a cache miss would start an origin download while the relay-wide
   *    or the request's `originKey` origin-fetch rate is exhausted, or `allowOriginFetch` is false;
   *  - RC_ERR_ABORTED when `signal` aborts.
   */
  open(request: SegmentRequest, options: { signal: AbortSignal; maxChunkBytes: number }): Promise<SegmentStream>;
  /** Stream ids (swarm/playlist URLs) this source holds warm, advertised to the tracker. */
  advertisedStreams(): string[];
  /** Stops prefetch timers and closes origin connections. */
  close(): Promise<void>;
}
