import { ErrorCode, RelaycastError, bytesEqual, concatBytes, toRelaycastError, type ByteRange } from '@relaycast/protocol';
import type { ConnectionManager } from './connection-manager.js';
import { DEFAULT_MAX_SEGMENT_BYTES, DEFAULT_STALL_TIMEOUT_MS, DEFAULT_TTFB_TIMEOUT_MS } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { openOrigin, readBody, type OriginHead } from './origin-fetch.js';
import type { RelayConnection } from './relay-connection.js';
import type { FallbackReason, SdkStats } from './stats.js';

export interface LoadRequest {
  /** Absolute segment URL. */
  url: string;
  /** Half-open byte range `[start, end)`; undefined loads the whole segment. */
  range?: ByteRange | undefined;
  /** Media playlist the segment belongs to (lets relays follow live streams). */
  playlistUrl?: string | undefined;
}

export interface LoadOptions {
  /** Aborts the load (relay CANCEL, origin fetch aborted); the promise rejects with RC_ERR_ABORTED. Default: none. */
  signal?: AbortSignal | undefined;
  /**
   * Called with each new run of bytes, in order, whatever the source. A byte is passed once, with
   * one exception: after `onRestart` everything starts again from the first byte (see there).
   * `loaded` counts the bytes passed so far (since the last restart); `total` is the expected size
   * of the request when known. Default: none.
   */
  onProgress?: ((chunk: Uint8Array, loaded: number, total: number | undefined) => void) | undefined;
  /**
   * Called when bytes already passed to onProgress must be thrown away: the relay's bytes could not
   * be joined to the origin's (the origin reports another size, answers another range, or ignores
   * the Range and its first bytes differ from the relay's). The loader then delivers the request
   * again from its first byte, from the origin only, and the result says `restarted: true`.
   * Default: none (a caller that only uses the final `data` needs nothing).
   */
  onRestart?: (() => void) | undefined;
  /** Relay time-to-first-byte deadline for this request (e.g. from the buffer level). Default: the loader's ttfbTimeoutMs. */
  ttfbTimeoutMs?: number | undefined;
  /** Longest silence mid-transfer from the relay for this request. Default: the loader's stallTimeoutMs. */
  stallTimeoutMs?: number | undefined;
}

export interface LoadResult {
  /** The requested bytes, exactly. */
  data: Uint8Array;
  /** Bytes of `data` that came from a relay (a prefix of it). */
  bytesFromRelay: number;
  /** Bytes of `data` that came from the origin (the rest). */
  bytesFromOrigin: number;
  /** Relay that served bytes of `data`, if any. */
  relayId?: string | undefined;
  /** Why the origin had to serve (part of) the bytes; undefined when the relay served everything. */
  fallbackReason?: FallbackReason | undefined;
  /** True when relay bytes were discarded and the request was delivered again from the start (see onRestart). */
  restarted: boolean;
  /** From the call to the first byte delivered, from whichever source. */
  ttfbMs: number;
  durationMs: number;
  /** Size of the whole resource when a source told it. */
  totalBytes?: number | undefined;
}

export interface SegmentLoaderOptions {
  /** Relay connections. Default: none (origin only). */
  manager?: ConnectionManager | undefined;
  /** Counters the loader updates. Required. */
  stats: SdkStats;
  /** fetch implementation for the origin. Default: globalThis.fetch. */
  fetch?: typeof fetch | undefined;
  /** Relay time-to-first-byte deadline. Default: DEFAULT_TTFB_TIMEOUT_MS (1.5 s). */
  ttfbTimeoutMs?: number | undefined;
  /** Longest silence in the middle of a relay transfer. Default: DEFAULT_STALL_TIMEOUT_MS (2 s). */
  stallTimeoutMs?: number | undefined;
  /** Largest segment accepted from any source. Default: DEFAULT_MAX_SEGMENT_BYTES (64 MiB). */
  maxSegmentBytes?: number | undefined;
  /** Called on every fallback to the origin. Default: none. */
  onFallback?: ((info: FallbackInfo) => void) | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

export interface FallbackInfo {
  url: string;
  relayId: string | undefined;
  reason: FallbackReason;
  /** Relay bytes kept; the origin is asked for the rest. */
  bytesFromRelay: number;
}

interface RelayAttempt {
  received: number;
  totalBytes: number | undefined;
  failure: FallbackReason | undefined;
  firstByteAt: number | undefined;
}

/** What one load has delivered so far. */
class Delivery {
  readonly chunks: Uint8Array[] = [];
  loaded = 0;
  expected: number | undefined;

  constructor(
    readonly rangeStart: number,
    readonly rangeEnd: number | undefined,
    private readonly maxBytes: number,
    private readonly onProgress: LoadOptions['onProgress'],
  ) {
    this.expected = rangeEnd === undefined ? undefined : rangeEnd - rangeStart;
  }

  /** The resource size became known: the expected length may shrink (a range past the end is clamped). */
  learnTotal(total: number | undefined): void {
    if (total === undefined) return;
    const end = Math.min(this.rangeEnd ?? total, total);
    this.expected = Math.max(0, end - this.rangeStart);
  }

  push(chunk: Uint8Array): void {
    if (this.loaded + chunk.byteLength > this.maxBytes) {
      throw new RelaycastError(ErrorCode.SEGMENT_TOO_LARGE, `segment exceeds ${this.maxBytes} bytes`);
    }
    this.chunks.push(chunk);
    this.loaded += chunk.byteLength;
    this.onProgress?.(chunk, this.loaded, this.expected);
  }

  reset(): void {
    this.chunks.length = 0;
    this.loaded = 0;
  }
}

/**
 * Loads one segment: from a relay under a time-to-first-byte deadline and a stall timeout, then,
 * if the relay fails at any point, from the origin with an HTTP Range that resumes after the bytes
 * the relay already delivered. Bytes reach `onProgress` as they arrive; the loader never joins
 * bytes of two different versions of a resource (see LoadOptions.onRestart).
 */
export class SegmentLoader {
  private readonly fetchImpl: typeof fetch;
  private readonly log: SdkLogger;

  constructor(private readonly options: SegmentLoaderOptions) {
    const f = options.fetch ?? (globalThis.fetch as typeof fetch | undefined);
    if (f === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'no fetch implementation available');
    // Browsers' fetch throws "Illegal invocation" when called with another `this`.
    this.fetchImpl = f.bind(globalThis);
    this.log = options.logger ?? silentLogger;
  }

  /**
   * Rejects with RC_ERR_ABORTED, RC_ERR_RANGE_NOT_SATISFIABLE (bad range), RC_ERR_SEGMENT_TOO_LARGE,
   * or the origin's error (RC_ERR_ORIGIN_*, RC_ERR_SEGMENT_UNAVAILABLE) when the origin fails too.
   */
  async load(req: LoadRequest, opts: LoadOptions = {}): Promise<LoadResult> {
    const signal = opts.signal ?? new AbortController().signal;
    if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'load aborted');
    const rangeStart = req.range?.start ?? 0;
    const rangeEnd = req.range?.end;
    if (!Number.isSafeInteger(rangeStart) || rangeStart < 0 || (rangeEnd !== undefined && (!Number.isSafeInteger(rangeEnd) || rangeEnd <= rangeStart))) {
      throw new RelaycastError(ErrorCode.RANGE_NOT_SATISFIABLE, 'range must be integers with 0 <= start < end', { details: { range: req.range } });
    }
    const started = performance.now();
    const out = new Delivery(rangeStart, rangeEnd, this.options.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES, opts.onProgress);

    const conn = this.options.manager?.pick();
    let attempt: RelayAttempt | undefined;
    if (conn !== undefined) {
      attempt = await this.fromRelay(conn, req, signal, opts, out);
      if (attempt.failure === undefined) {
        this.options.stats.segmentLoaded();
        return {
          data: concatBytes(out.chunks),
          bytesFromRelay: attempt.received,
          bytesFromOrigin: 0,
          relayId: conn.relayId,
          restarted: false,
          ttfbMs: (attempt.firstByteAt ?? performance.now()) - started,
          durationMs: performance.now() - started,
          totalBytes: attempt.totalBytes,
        };
      }
    }

    const reason: FallbackReason = attempt?.failure ?? 'no-relay';
    const relayId = conn?.relayId;
    this.options.stats.fallback(reason, relayId);
    this.options.onFallback?.({ url: req.url, relayId, reason, bytesFromRelay: attempt?.received ?? 0 });
    this.log.debug({ relayId, reason, bytesFromRelay: attempt?.received ?? 0 }, 'falling back to origin');

    const origin = await this.fromOrigin(req, signal, out, attempt, relayId, opts.onRestart);
    this.options.stats.segmentLoaded();
    const fromRelay = origin.restarted ? 0 : (attempt?.received ?? 0);
    return {
      data: concatBytes(out.chunks),
      bytesFromRelay: fromRelay,
      bytesFromOrigin: out.loaded - fromRelay,
      relayId: fromRelay > 0 ? relayId : undefined,
      fallbackReason: reason,
      restarted: origin.restarted,
      ttfbMs: ((origin.restarted ? undefined : attempt?.firstByteAt) ?? origin.firstByteAt ?? performance.now()) - started,
      durationMs: performance.now() - started,
      totalBytes: origin.totalBytes ?? attempt?.totalBytes,
    };
  }

  private async fromRelay(conn: RelayConnection, req: LoadRequest, signal: AbortSignal, opts: LoadOptions, out: Delivery): Promise<RelayAttempt> {
    const manager = this.options.manager as ConnectionManager;
    const relayId = conn.relayId;
    const attempt: RelayAttempt = { received: 0, totalBytes: undefined, failure: undefined, firstByteAt: undefined };
    const controller = new AbortController();
    const onCallerAbort = (): void => controller.abort();
    signal.addEventListener('abort', onCallerAbort, { once: true });
    // An exception from the caller's onProgress (or the size cap) ends the load; it must not be
    // mistaken for a relay failure nor thrown into the data channel's event handler.
    let fatal: unknown;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = (ms: number, why: FallbackReason): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        attempt.failure = why;
        controller.abort();
      }, ms);
    };
    arm(opts.ttfbTimeoutMs ?? this.options.ttfbTimeoutMs ?? DEFAULT_TTFB_TIMEOUT_MS, 'ttfb-timeout');
    const stallMs = opts.stallTimeoutMs ?? this.options.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
    const started = performance.now();
    this.options.stats.relayRequest(relayId);
    try {
      await conn.request(req, {
        signal: controller.signal,
        onResponse: (r) => {
          attempt.totalBytes = r.totalBytes;
          out.learnTotal(r.totalBytes);
        },
        onData: (chunk) => {
          if (fatal !== undefined || controller.signal.aborted) return;
          attempt.firstByteAt ??= performance.now();
          try {
            out.push(chunk);
          } catch (err) {
            fatal = err;
            controller.abort();
            return;
          }
          attempt.received += chunk.byteLength;
          this.options.stats.relayBytes(relayId, chunk.byteLength);
          arm(stallMs, 'stall');
        },
      });
      clearTimeout(timer);
      const wantEnd = Math.min(req.range?.end ?? Infinity, attempt.totalBytes ?? Infinity);
      if (wantEnd !== Infinity && (req.range?.start ?? 0) + attempt.received < wantEnd) {
        // A relay that ends early is treated like one that stalled: the origin supplies the rest.
        attempt.failure = 'relay-error';
      } else {
        conn.recordTransfer(attempt.received, (attempt.firstByteAt ?? started) - started, performance.now() - started);
        manager.reportSuccess(relayId);
      }
    } catch (err) {
      clearTimeout(timer);
      if (fatal !== undefined) throw fatal;
      if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'load aborted', { cause: signal.reason });
      const e = toRelaycastError(err);
      attempt.failure ??=
        e.code === ErrorCode.SEGMENT_UNAVAILABLE ? 'absent' : e.code === ErrorCode.CHANNEL_CLOSED ? 'channel-closed' : 'relay-error';
    } finally {
      signal.removeEventListener('abort', onCallerAbort);
    }
    // ABSENT says nothing bad about the relay: it just lacks that segment.
    if (attempt.failure !== undefined && attempt.failure !== 'absent') manager.reportFailure(relayId, attempt.failure);
    return attempt;
  }

  /**
   * Fetches what the relay did not deliver. The origin's answer must continue the relay's bytes:
   * a 206 starting exactly at the resume point, for a resource of the size the relay reported. A 200
   * (Range ignored) is usable when its first bytes equal what the relay sent; they are skipped. Any
   * other answer discards the relay's bytes and delivers everything from the origin (one new request
   * at most, or the same 200 body).
   */
  private async fromOrigin(
    req: LoadRequest,
    signal: AbortSignal,
    out: Delivery,
    attempt: RelayAttempt | undefined,
    relayId: string | undefined,
    onRestart: (() => void) | undefined,
  ): Promise<{ restarted: boolean; totalBytes: number | undefined; firstByteAt: number | undefined }> {
    const stats = this.options.stats;
    let restarted = false;
    let firstByteAt: number | undefined;
    let held = out.loaded;
    const restart = (): void => {
      // Only relay bytes are ever held when a restart is decided: origin bytes come after the check.
      if (relayId !== undefined && held > 0) stats.relayBytesDiscarded(relayId, held);
      this.log.info({ url: req.url, discarded: out.loaded }, 'relay and origin bytes do not join: restarting from the origin');
      out.reset();
      held = 0;
      restarted = true;
      onRestart?.();
    };
    const deliver = (chunk: Uint8Array): void => {
      firstByteAt ??= performance.now();
      out.push(chunk);
      stats.originBytes(chunk.byteLength);
    };

    for (let round = 0; ; round++) {
      const resumeAt = out.rangeStart + held;
      const { head, body } = await openOrigin(this.fetchImpl, { url: req.url, start: resumeAt, end: out.rangeEnd }, signal);
      const relayTotal = attempt?.totalBytes;
      const sizeDiffers = held > 0 && relayTotal !== undefined && head.totalBytes !== undefined && relayTotal !== head.totalBytes;
      const wrongRange = head.status === 206 && (head.firstByte !== resumeAt || !endFits(head, out.rangeEnd));
      if (wrongRange && held === 0) {
        body?.cancel().catch(() => undefined);
        throw new RelaycastError(ErrorCode.ORIGIN_HTTP, 'origin answered a different range than asked', {
          details: { url: req.url, asked: resumeAt, got: head.firstByte, end: head.endByte },
        });
      }
      if (sizeDiffers || wrongRange) {
        restart();
        if (head.status === 206) {
          body?.cancel().catch(() => undefined);
          if (round > 0) throw new RelaycastError(ErrorCode.ORIGIN_HTTP, 'origin answers do not fit together', { details: { url: req.url } });
          continue;
        }
      }
      if (head.status === 200 && head.totalBytes !== undefined && out.rangeStart >= head.totalBytes && out.rangeStart > 0) {
        body?.cancel().catch(() => undefined);
        throw new RelaycastError(ErrorCode.RANGE_NOT_SATISFIABLE, 'range starts past the end of the resource', {
          details: { url: req.url, start: out.rangeStart, totalBytes: head.totalBytes },
        });
      }
      out.learnTotal(head.totalBytes);
      const end = Math.min(out.rangeEnd ?? Infinity, head.totalBytes ?? Infinity);
      // Resource offsets: bytes before `compareFrom` are dropped, [compareFrom, deliverFrom) must
      // equal what the relay sent (only a 200 body covers them), the rest is delivered.
      const compareFrom = out.rangeStart;
      let deliverFrom = out.rangeStart + held;
      let pos = head.firstByte;
      const prefix: Uint8Array[] = [];
      const checkPrefix = (): void => {
        const same = bytesEqual(concatBytes(prefix), concatBytes(out.chunks));
        const originPrefix = prefix.splice(0);
        if (same) return;
        restart();
        deliverFrom = out.rangeStart;
        for (const c of originPrefix) deliver(c);
      };
      await readBody(body, signal, (raw) => {
        let chunk = raw;
        const chunkStart = pos;
        pos += chunk.byteLength;
        if (pos <= compareFrom) return true;
        if (chunkStart < compareFrom) chunk = chunk.subarray(compareFrom - chunkStart);
        let at = Math.max(chunkStart, compareFrom);
        if (at < deliverFrom) {
          const n = Math.min(chunk.byteLength, deliverFrom - at);
          prefix.push(chunk.subarray(0, n));
          chunk = chunk.subarray(n);
          at += n;
          if (at === deliverFrom) checkPrefix();
        }
        if (at + chunk.byteLength > end) chunk = chunk.subarray(0, Math.max(0, end - at));
        if (chunk.byteLength > 0) deliver(chunk);
        return pos < end;
      });
      // A 200 body that ended inside the relay's part: the resource is shorter than what the relay sent.
      if (prefix.length > 0 || pos < deliverFrom) {
        prefix.length = 0;
        if (!restarted) {
          restart();
          if (round > 0) throw new RelaycastError(ErrorCode.ORIGIN_HTTP, 'origin answers do not fit together', { details: { url: req.url } });
          continue;
        }
      }
      const wanted = end === Infinity ? head.endByte : Math.min(end, head.endByte ?? end);
      if (wanted !== undefined && pos < wanted) {
        throw new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, 'origin body ended early', {
          details: { url: req.url, expectedEnd: wanted, receivedEnd: pos },
        });
      }
      return { restarted, totalBytes: head.totalBytes, firstByteAt };
    }
  }
}

/** A 206 must reach the asked end, or the resource's end when the range runs past it. */
function endFits(head: OriginHead, rangeEnd: number | undefined): boolean {
  if (head.endByte === undefined) return false;
  if (rangeEnd === undefined) return head.totalBytes === undefined || head.endByte === head.totalBytes;
  return head.endByte === (head.totalBytes === undefined ? rangeEnd : Math.min(rangeEnd, head.totalBytes));
}
