import { ErrorCode, RelaycastError, concatBytes, toRelaycastError, type ByteRange } from '@relaycast/protocol';
import type { ConnectionManager } from './connection-manager.js';
import { DEFAULT_MAX_SEGMENT_BYTES, DEFAULT_STALL_TIMEOUT_MS, DEFAULT_TTFB_TIMEOUT_MS } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { fetchFromOrigin } from './origin-fetch.js';
import type { RelayConnection } from './relay-connection.js';
import type { FallbackReason, SdkStats } from './sdk-stats.js';

export interface LoadRequest {
  /** Absolute segment URL. */
  url: string;
  /** Half-open byte range; undefined loads the whole segment. */
  range?: ByteRange | undefined;
  /** Media playlist the segment belongs to (lets relays follow live streams). */
  playlistUrl?: string | undefined;
}

export interface LoadOptions {
  signal?: AbortSignal | undefined;
  /**
   * Called with every new byte run, in order, exactly once per byte, whatever the source.
   * `total` is the expected size of the request when known.
   */
  onProgress?: ((chunk: Uint8Array, loaded: number, total: number | undefined) => void) | undefined;
  /** Overrides the relay time-to-first-byte deadline for this request (e.g. from buffer level). */
  ttfbTimeoutMs?: number | undefined;
}

export interface LoadResult {
  data: Uint8Array;
  bytesFromRelay: number;
  bytesFromOrigin: number;
  /** Relay that served (part of) the bytes. */
  relayId?: string | undefined;
  /** Why the origin had to serve (part of) the bytes. */
  fallbackReason?: FallbackReason | undefined;
  /** Time to the first byte from whichever source delivered first. */
  ttfbMs: number;
  durationMs: number;
  /** Size of the whole resource when a source told it. */
  totalBytes?: number | undefined;
}

export interface SegmentLoaderOptions {
  /** Relay connections; undefined = origin only. */
  manager?: ConnectionManager | undefined;
  /** Counters the loader updates. Required. */
  stats: SdkStats;
  /** fetch implementation for the origin. Default: globalThis.fetch. */
  fetch?: typeof fetch | undefined;
  /** Relay time-to-first-byte deadline. Default: DEFAULT_TTFB_TIMEOUT_MS (1.5 s). */
  ttfbTimeoutMs?: number | undefined;
  /** Longest silence in the middle of a relay transfer. Default: DEFAULT_STALL_TIMEOUT_MS (2 s). */
  stallTimeoutMs?: number | undefined;
  /** Largest segment accepted. Default: DEFAULT_MAX_SEGMENT_BYTES (64 MiB). */
  maxSegmentBytes?: number | undefined;
  /** Called on every fallback to the origin. */
  onFallback?: ((info: { url: string; relayId: string | undefined; reason: FallbackReason; bytesFromRelay: number }) => void) | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

interface RelayAttempt {
  received: number;
  totalBytes: number | undefined;
  failure: FallbackReason | undefined;
  error: RelaycastError | undefined;
  firstByteAt: number | undefined;
}

/**
 * Loads one segment: from a relay under a time-to-first-byte deadline and a stall timeout, then,
 * if the relay fails at any point, from the origin with an HTTP Range that resumes after the bytes
 * the relay already delivered. Bytes reach `onProgress` as they arrive and never twice.
 */
export class SegmentLoader {
  private readonly fetchImpl: typeof fetch;
  private readonly log: SdkLogger;

  constructor(private readonly options: SegmentLoaderOptions) {
    const f = options.fetch ?? globalThis.fetch;
    this.fetchImpl = f.bind(globalThis);
    this.log = options.logger ?? silentLogger;
  }

  async load(req: LoadRequest, opts: LoadOptions = {}): Promise<LoadResult> {
    const signal = opts.signal ?? new AbortController().signal;
    if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'load aborted');
    const started = performance.now();
    const chunks: Uint8Array[] = [];
    const maxBytes = this.options.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES;
    const rangeStart = req.range?.start ?? 0;
    let loaded = 0;
    let expected: number | undefined = req.range?.end === undefined ? undefined : req.range.end - rangeStart;
    const deliver = (chunk: Uint8Array): void => {
      chunks.push(chunk);
      loaded += chunk.byteLength;
      opts.onProgress?.(chunk, loaded, expected);
    };

    const conn = this.options.manager?.pick();
    let attempt: RelayAttempt | undefined;
    let reason: FallbackReason | undefined = conn === undefined ? 'no-relay' : undefined;
    if (conn !== undefined) {
      attempt = await this.fromRelay(conn, req, signal, opts.ttfbTimeoutMs, maxBytes, (total) => {
        if (expected === undefined && total !== undefined) expected = total - rangeStart;
      }, deliver);
      if (attempt.failure === undefined) {
        this.options.stats.segmentLoaded();
        return {
          data: concatBytes(chunks),
          bytesFromRelay: attempt.received,
          bytesFromOrigin: 0,
          relayId: conn.relayId,
          ttfbMs: (attempt.firstByteAt ?? performance.now()) - started,
          durationMs: performance.now() - started,
          totalBytes: attempt.totalBytes,
        };
      }
      reason = attempt.failure;
    }

    const relayId = conn?.relayId;
    const fromRelay = attempt?.received ?? 0;
    this.options.stats.fallback(reason as FallbackReason, relayId);
    this.options.onFallback?.({ url: req.url, relayId, reason: reason as FallbackReason, bytesFromRelay: fromRelay });
    this.log.debug({ relayId, reason, fromRelay }, 'falling back to origin');

    let originFirstByteAt: number | undefined;
    let fromOrigin = 0;
    const { totalBytes } = await fetchFromOrigin(
      this.fetchImpl,
      { url: req.url, start: rangeStart + fromRelay, end: req.range?.end },
      {
        signal,
        maxBytes,
        onData: (chunk) => {
          originFirstByteAt ??= performance.now();
          fromOrigin += chunk.byteLength;
          this.options.stats.originBytes(chunk.byteLength);
          deliver(chunk);
        },
      },
    ).catch((err: unknown) => {
      throw toRelaycastError(err, ErrorCode.ORIGIN_UNREACHABLE);
    });
    if (fromRelay > 0 && attempt?.totalBytes !== undefined && totalBytes !== undefined && attempt.totalBytes !== totalBytes) {
      // The relay's bytes belong to another version of the resource: nothing good can be assembled.
      throw new RelaycastError(ErrorCode.RELAY_ERROR, 'relay and origin disagree on the segment size', {
        details: { relay: attempt.totalBytes, origin: totalBytes },
      });
    }
    this.options.stats.segmentLoaded();
    return {
      data: concatBytes(chunks),
      bytesFromRelay: fromRelay,
      bytesFromOrigin: fromOrigin,
      relayId: fromRelay > 0 ? relayId : undefined,
      fallbackReason: reason,
      ttfbMs: (attempt?.firstByteAt ?? originFirstByteAt ?? performance.now()) - started,
      durationMs: performance.now() - started,
      totalBytes: totalBytes ?? attempt?.totalBytes,
    };
  }

  private async fromRelay(
    conn: RelayConnection,
    req: LoadRequest,
    signal: AbortSignal,
    ttfbTimeoutMs: number | undefined,
    maxBytes: number,
    onTotal: (total: number | undefined) => void,
    deliver: (chunk: Uint8Array) => void,
  ): Promise<RelayAttempt> {
    const manager = this.options.manager as ConnectionManager;
    const relayId = conn.relayId;
    const attempt: RelayAttempt = { received: 0, totalBytes: undefined, failure: undefined, error: undefined, firstByteAt: undefined };
    const controller = new AbortController();
    const onCallerAbort = (): void => controller.abort();
    signal.addEventListener('abort', onCallerAbort, { once: true });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms: number, why: FallbackReason): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        attempt.failure = why;
        controller.abort();
      }, ms);
    };
    arm(ttfbTimeoutMs ?? this.options.ttfbTimeoutMs ?? DEFAULT_TTFB_TIMEOUT_MS, 'ttfb-timeout');
    const stallMs = this.options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    const started = performance.now();
    this.options.stats.relayRequest(relayId);
    try {
      await conn.request(req, {
        signal: controller.signal,
        onResponse: (r) => {
          attempt.totalBytes = r.totalBytes;
          onTotal(r.totalBytes);
        },
        onData: (chunk) => {
          if (attempt.received + chunk.byteLength > maxBytes) {
            attempt.failure = 'relay-error';
            controller.abort();
            return;
          }
          attempt.firstByteAt ??= performance.now();
          attempt.received += chunk.byteLength;
          this.options.stats.relayBytes(relayId, chunk.byteLength);
          deliver(chunk);
          arm(stallMs, 'stall');
        },
      });
      clearTimeout(timer);
      const wantEnd = req.range?.end ?? attempt.totalBytes;
      if (wantEnd !== undefined && (req.range?.start ?? 0) + attempt.received < wantEnd) {
        // A relay that ends early is treated like one that stalled: the origin supplies the rest.
        attempt.failure = 'relay-error';
      } else {
        conn.recordTransfer(attempt.received, (attempt.firstByteAt ?? started) - started, performance.now() - started);
        manager.reportSuccess(relayId);
      }
    } catch (err) {
      clearTimeout(timer);
      if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'load aborted');
      const e = toRelaycastError(err);
      attempt.error = e;
      attempt.failure ??=
        e.code === ErrorCode.SEGMENT_UNAVAILABLE ? 'absent' : e.code === ErrorCode.CHANNEL_CLOSED ? 'channel-closed' : 'relay-error';
    } finally {
      signal.removeEventListener('abort', onCallerAbort);
    }
    if (attempt.failure !== undefined && attempt.failure !== 'absent') {
      manager.reportFailure(relayId, attempt.failure);
    }
    return attempt;
  }
}
