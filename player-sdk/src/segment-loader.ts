import { ErrorCode, RelaycastError, bytesEqual, concatBytes, toRelaycastError, type ByteRange } from '@relaycast/protocol';
import type { ConnectionManager } from './connection-manager.js';
import { DEFAULT_MAX_SEGMENT_BYTES, DEFAULT_STALL_TIMEOUT_MS, DEFAULT_TTFB_TIMEOUT_MS } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { openOrigin, readBody, type OriginHead, type OriginResponse } from './origin-fetch.js';
import type { RelayConnection } from './relay-connection.js';
import { sha256Hex, type SegmentCheck, type SegmentVerifier } from './segment-verifier.js';
import { planLoad, resolveStartupOptions, type ResolvedStartupOptions, type StartupOptions } from './startup-policy.js';
import type { FallbackReason, SdkStats } from './stats.js';

/** One segment (or byte range of it) to load: the first argument of `RelaycastClient.loadSegment`. */
export interface LoadRequest {
  /** Absolute segment URL. */
  url: string;
  /** Half-open byte range `[start, end)`; undefined loads the whole segment. */
  range?: ByteRange | undefined;
  /** Media playlist the segment belongs to (lets relays follow live streams). */
  playlistUrl?: string | undefined;
  /**
   * Whether that media playlist is live (still growing, no EXT-X-ENDLIST). A digest sidecar of a
   * live playlist that is missing, fails or does not decode is asked for again within a target
   * duration, backing off; otherwise a missing one (404) is asked for again only after 30 s.
   * Default: unknown (the last value given for the playlist, else treated as not live).
   */
  live?: boolean | undefined;
  /** That media playlist's EXT-X-TARGETDURATION, ms: paces those retries (see `live`). Default: unknown. */
  targetDurationMs?: number | undefined;
}

/** Per-request options of `RelaycastClient.loadSegment`: cancellation, progress and deadline overrides. */
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
  /**
   * Media the player has buffered ahead of its playhead, ms. Below the startup policy's
   * `lowBufferMs` the load never waits for a relay (see StartupOptions). Default: unknown (relays
   * serve alone, under the time-to-first-byte deadline).
   */
  bufferAheadMs?: number | undefined;
}

/** A loaded segment: its bytes, and which source delivered how many of them. */
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
  /** From the call to the last byte, ms. */
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
  /** When loads with a low buffer skip or race relays. Default: see StartupOptions. */
  startup?: StartupOptions | undefined;
  /** Called on every fallback to the origin. Default: none. */
  onFallback?: ((info: FallbackInfo) => void) | undefined;
  /** Decides how relay bytes are checked (digest, audit, refuse). Default: none (relay bytes are trusted; tests of transport only). */
  verifier?: SegmentVerifier | undefined;
  /** Called with relay bytes that passed verification and were delivered: what receipts pay for. Default: none. */
  onVerifiedBytes?: ((relayId: string, bytes: number) => void) | undefined;
  /** Called when a relay's bytes failed verification and the origin's copy confirmed it. Default: none. */
  onIntegrityFailure?: ((info: IntegrityFailure) => void) | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

/** Evidence that a relay served bytes that are not the origin's. */
export interface IntegrityFailure {
  /** The segment URL. */
  url: string;
  /** The relay that served the wrong bytes. */
  relayId: string;
  /** SHA-256 (hex) the origin published, or of the origin's copy under `audit`. */
  expectedSha256: string;
  /** SHA-256 (hex) of what was assembled from the relay's bytes. */
  receivedSha256: string;
}

/** A request (or its rest) that went to the origin instead of a relay: the `fallback` event's argument. */
export interface FallbackInfo {
  /** The segment URL. */
  url: string;
  /** The relay that was asked first; undefined when none was (reason `no-relay` or `no-digest`). */
  relayId: string | undefined;
  /** Why the origin served. */
  reason: FallbackReason;
  /** Relay bytes kept; the origin is asked for the rest. */
  bytesFromRelay: number;
}

interface Mismatch {
  expectedSha256: string;
  receivedSha256: string;
  /** Audit: the origin's copy, delivered instead of a new fetch. */
  originCopy: Uint8Array[] | undefined;
}

interface RelayAttempt {
  received: number;
  totalBytes: number | undefined;
  failure: FallbackReason | undefined;
  firstByteAt: number | undefined;
}

/** How a race (startup policy) follows a relay attempt. */
interface RaceHooks {
  /** The relay's first byte is in: the origin loses. */
  onFirstByte(): void;
  /** Receives the function that cancels the relay attempt as the race's loser. */
  bindCancel(cancel: () => void): void;
}

/**
 * What one load has assembled so far. With `holdBack` on (relay bytes that still have to pass
 * verification), the newest chunk is kept from onProgress until `release()`: a consumer that
 * uses progress data can never complete a segment before its digest matched.
 */
class Delivery {
  readonly chunks: Uint8Array[] = [];
  loaded = 0;
  expected: number | undefined;
  holdBack = false;
  private emitted = 0;
  private pending: Uint8Array | undefined;

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
    if (!this.holdBack) return this.emit(chunk);
    const previous = this.pending;
    this.pending = chunk;
    if (previous !== undefined) this.emit(previous);
  }

  /** Hands the held-back chunk over (verification passed, or nothing needed checking). */
  release(): void {
    const held = this.pending;
    this.pending = undefined;
    if (held !== undefined) this.emit(held);
  }

  reset(): void {
    this.chunks.length = 0;
    this.loaded = 0;
    this.emitted = 0;
    this.pending = undefined;
  }

  private emit(chunk: Uint8Array): void {
    this.emitted += chunk.byteLength;
    this.onProgress?.(chunk, this.emitted, this.expected);
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
  private readonly startup: ResolvedStartupOptions;

  constructor(private readonly options: SegmentLoaderOptions) {
    this.startup = resolveStartupOptions(options.startup);
    const f = options.fetch ?? globalThis.fetch;
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

    const manager = this.options.manager;
    const verifier = this.options.verifier;
    let relayReady = manager?.pick() !== undefined;
    let plan = planLoad({ bufferAheadMs: opts.bufferAheadMs, relayReady }, this.startup);
    if (plan.source === 'relay' && !relayReady && manager?.settingUp === true && opts.bufferAheadMs !== undefined) {
      // The buffer can afford it: wait for the relay being set up, within the first-byte deadline.
      await manager.waitForRelay(opts.ttfbTimeoutMs ?? this.options.ttfbTimeoutMs ?? DEFAULT_TTFB_TIMEOUT_MS, signal);
      if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'load aborted', { cause: signal.reason });
      relayReady = manager.pick() !== undefined;
      plan = planLoad({ bufferAheadMs: opts.bufferAheadMs, relayReady }, this.startup);
    }
    // Without a relay no digest is needed: its sidecar is not fetched next to a startup load.
    let known: SegmentCheck | undefined =
      manager === undefined || verifier === undefined ? { kind: 'none' } : relayReady ? verifier.checkNow(req.url, req.range, req.playlistUrl) : undefined;
    let originAfterMs = plan.source === 'race' ? plan.originAfterMs : 0;
    if (known === undefined && verifier !== undefined && relayReady) {
      if (plan.source === 'relay') {
        known = await verifier.checkFor(req.url, req.range, req.playlistUrl, signal);
      } else if (plan.source === 'race' && originAfterMs > 0) {
        // The relay's head start is spent on its digest first: the race never waits longer.
        const t0 = performance.now();
        known = await verifier.checkWithin(req.url, req.range, req.playlistUrl, originAfterMs, signal);
        originAfterMs = Math.max(0, Math.round(originAfterMs - (performance.now() - t0)));
      }
    }
    // A race without its digest in time is an origin load.
    const source = plan.source === 'race' && known === undefined ? 'origin' : plan.source;
    // Picked after the (possibly waiting) digest lookup, so concurrent loads see each other's requests in flight.
    const conn = source === 'origin' || known === undefined || known.kind === 'refuse' ? undefined : manager?.pick();
    const check: SegmentCheck = known ?? { kind: 'none' };
    let attempt: RelayAttempt | undefined;
    let reason: FallbackReason = source === 'origin' ? 'startup' : known?.kind === 'refuse' ? 'no-digest' : 'no-relay';
    let restarted = false;
    let raceWinner: OriginResponse | undefined;
    if (conn !== undefined) {
      out.holdBack = check.kind !== 'none';
      if (source === 'race') {
        ({ attempt, origin: raceWinner } = await this.race(conn, req, signal, opts, out, originAfterMs));
      } else {
        attempt = await this.fromRelay(conn, req, signal, opts, out);
      }
      if (attempt.failure === undefined) {
        const bad = await this.check(check, req, out, signal);
        if (bad === undefined) {
          this.creditRelay(check, conn.relayId, attempt.received);
          out.release();
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
        attempt.failure = 'integrity';
        await this.replaceFromOrigin(req, signal, out, conn.relayId, attempt.received, bad, opts.onRestart);
        this.fallbackNotice(req, conn.relayId, 'integrity', 0);
        return this.finish(out, started, attempt, 0, 'integrity', true, undefined, attempt.totalBytes);
      }
      reason = attempt.failure;
    }

    const relayId = conn?.relayId;
    this.fallbackNotice(req, relayId, reason, attempt?.received ?? 0);
    const origin = await this.fromOrigin(req, signal, out, attempt, relayId, opts.onRestart, true, raceWinner);
    restarted ||= origin.restarted;
    let fromRelay = origin.restarted ? 0 : (attempt?.received ?? 0);
    if (fromRelay > 0 && relayId !== undefined) {
      // The relay's part was joined to the origin's: check the whole before handing it over.
      // (An audit compares whole relay answers only: a joined one is delivered unchecked.)
      const bad = check.kind === 'digest' ? await this.check(check, req, out, signal) : undefined;
      if (bad === undefined) this.creditRelay(check.kind === 'digest' ? check : { kind: 'none' }, relayId, fromRelay);
      else {
        await this.replaceFromOrigin(req, signal, out, relayId, fromRelay, bad, opts.onRestart);
        fromRelay = 0;
        restarted = true;
      }
    }
    return this.finish(out, started, attempt, fromRelay, reason, restarted, origin.firstByteAt, origin.totalBytes ?? attempt?.totalBytes, relayId);
  }

  private finish(
    out: Delivery,
    started: number,
    attempt: RelayAttempt | undefined,
    fromRelay: number,
    reason: FallbackReason,
    restarted: boolean,
    originFirstByteAt: number | undefined,
    totalBytes: number | undefined,
    relayId?: string,
  ): LoadResult {
    out.release();
    if (reason === 'startup' || reason === 'hedge') this.options.stats.startupOriginBytes(out.loaded - fromRelay);
    this.options.stats.segmentLoaded();
    return {
      data: concatBytes(out.chunks),
      bytesFromRelay: fromRelay,
      bytesFromOrigin: out.loaded - fromRelay,
      relayId: fromRelay > 0 ? relayId : undefined,
      fallbackReason: reason,
      restarted,
      ttfbMs: ((restarted ? undefined : attempt?.firstByteAt) ?? originFirstByteAt ?? performance.now()) - started,
      durationMs: performance.now() - started,
      totalBytes,
    };
  }

  private fallbackNotice(req: LoadRequest, relayId: string | undefined, reason: FallbackReason, bytesFromRelay: number): void {
    // Losing a race is no failure of the relay: with an empty buffer both start at once.
    this.options.stats.fallback(reason, reason === 'hedge' ? undefined : relayId);
    this.options.onFallback?.({ url: req.url, relayId, reason, bytesFromRelay });
    this.log.debug({ relayId, reason, bytesFromRelay }, 'falling back to origin');
  }

  /** Relay bytes that ended up delivered: verified ones are the only ones a relay may be paid for. */
  private creditRelay(check: SegmentCheck, relayId: string, bytes: number): void {
    if (check.kind === 'digest' || check.kind === 'audit') {
      this.options.stats.relayBytesVerified(relayId, bytes);
      this.options.onVerifiedBytes?.(relayId, bytes);
    } else {
      this.options.stats.relayBytesUnverified(bytes);
    }
  }

  /**
   * Checks what `out` holds against the digest, or (audit) against the origin's copy, which is
   * kept for delivery when they differ. Returns undefined when the bytes pass.
   */
  private async check(check: SegmentCheck, req: LoadRequest, out: Delivery, signal: AbortSignal): Promise<Mismatch | undefined> {
    if (check.kind === 'digest') {
      const received = await sha256Hex(out.chunks);
      return received === check.sha256 ? undefined : { expectedSha256: check.sha256, receivedSha256: received, originCopy: undefined };
    }
    if (check.kind !== 'audit') return undefined;
    this.options.stats.audited();
    let copy: Uint8Array[];
    try {
      copy = await this.originCopy(req, signal);
    } catch (err) {
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.ABORTED) throw e;
      // The audit could not run; the relay's bytes go through unchecked rather than failing playback.
      this.log.warn({ url: req.url, code: e.code }, 'audit fetch from the origin failed');
      return undefined;
    }
    if (bytesEqual(concatBytes(copy), concatBytes(out.chunks))) return undefined;
    return { expectedSha256: await sha256Hex(copy), receivedSha256: await sha256Hex(out.chunks), originCopy: copy };
  }

  /** The origin's bytes for exactly the request (for an audit). */
  private async originCopy(req: LoadRequest, signal: AbortSignal): Promise<Uint8Array[]> {
    const copy: Uint8Array[] = [];
    const sink = new Delivery(req.range?.start ?? 0, req.range?.end, this.options.maxSegmentBytes ?? DEFAULT_MAX_SEGMENT_BYTES, (c) => copy.push(c));
    await this.fromOrigin(req, signal, sink, undefined, undefined, undefined, false);
    return copy;
  }

  /**
   * A relay's bytes failed: throws away everything delivered, gets the origin's copy (the audit's,
   * or a fresh fetch), and reports the relay only when the origin's bytes are not what the relay
   * sent (a stale sidecar is the origin's fault, not the relay's).
   */
  private async replaceFromOrigin(
    req: LoadRequest,
    signal: AbortSignal,
    out: Delivery,
    relayId: string,
    relayBytes: number,
    bad: Mismatch,
    onRestart: (() => void) | undefined,
  ): Promise<void> {
    const stats = this.options.stats;
    stats.relayBytesDiscarded(relayId, relayBytes);
    if (out.loaded > relayBytes) stats.originBytesDiscarded(out.loaded - relayBytes);
    out.reset();
    out.holdBack = false;
    onRestart?.();
    if (bad.originCopy !== undefined) {
      for (const c of bad.originCopy) {
        out.push(c);
        stats.originBytes(c.byteLength);
      }
    } else {
      await this.fromOrigin(req, signal, out, undefined, undefined, onRestart);
    }
    const originSha256 = bad.originCopy !== undefined ? bad.expectedSha256 : await sha256Hex(out.chunks);
    if (originSha256 === bad.receivedSha256) {
      this.log.warn({ url: req.url, relayId }, "the origin's bytes do not match its published digest: sidecar stale, relay not blamed");
      return;
    }
    stats.integrityFailure(relayId);
    this.log.warn({ url: req.url, relayId, expectedSha256: bad.expectedSha256, receivedSha256: bad.receivedSha256 }, 'relay bytes failed verification');
    this.options.onIntegrityFailure?.({ url: req.url, relayId, expectedSha256: bad.expectedSha256, receivedSha256: bad.receivedSha256 });
  }

  /**
   * A relay attempt the origin joins after `originAfterMs` without a relay byte. The first byte
   * wins: a relay byte aborts the origin's request (its body is never read), the origin's answer
   * cancels the relay's request (none of its bytes were taken). When the relay fails before its
   * first byte, the origin's request already on its way is the one used: the origin is asked once.
   * Returns the relay's attempt and, when the origin won, its opened answer (to be read from the start).
   */
  private async race(
    conn: RelayConnection,
    req: LoadRequest,
    signal: AbortSignal,
    opts: LoadOptions,
    out: Delivery,
    originAfterMs: number,
  ): Promise<{ attempt: RelayAttempt; origin: OriginResponse | undefined }> {
    const stats = this.options.stats;
    stats.race(false);
    let relayFirst = false;
    let cancelRelay: (() => void) | undefined;
    let originController: AbortController | undefined;
    let opened: Promise<OriginResponse | undefined> | undefined;
    let won: OriginResponse | undefined;
    const startOrigin = (): void => {
      if (relayFirst || signal.aborted) return;
      stats.race(true);
      const controller = new AbortController();
      originController = controller;
      const onAbort = (): void => controller.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      opened = openOrigin(this.fetchImpl, { url: req.url, start: out.rangeStart, end: out.rangeEnd }, controller.signal).then(
        (o) => {
          if (relayFirst) {
            signal.removeEventListener('abort', onAbort);
            o.body?.cancel().catch(() => undefined);
            return undefined;
          }
          // The caller's abort stays tied to this request: its body is what the load reads now.
          won = o;
          stats.raceWonByOrigin();
          cancelRelay?.();
          return o;
        },
        () => {
          // The origin failing in a race leaves the relay to finish; a later fallback asks again.
          signal.removeEventListener('abort', onAbort);
          return undefined;
        },
      );
    };
    const timer = setTimeout(startOrigin, originAfterMs);
    let attempt: RelayAttempt;
    try {
      attempt = await this.fromRelay(conn, req, signal, opts, out, {
        onFirstByte: () => {
          relayFirst = true;
          clearTimeout(timer);
          originController?.abort();
        },
        bindCancel: (cancel) => (cancelRelay = cancel),
      });
    } finally {
      clearTimeout(timer);
    }
    // The relay failed before its first byte while the origin's answer was on its way: use it.
    if (attempt.failure !== undefined && won === undefined && !relayFirst && opened !== undefined) await opened;
    return { attempt, origin: won };
  }

  private async fromRelay(
    conn: RelayConnection,
    req: LoadRequest,
    signal: AbortSignal,
    opts: LoadOptions,
    out: Delivery,
    race?: RaceHooks,
  ): Promise<RelayAttempt> {
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
    race?.bindCancel(() => {
      clearTimeout(timer);
      attempt.failure ??= 'hedge';
      controller.abort();
    });
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
          if (attempt.firstByteAt === undefined) {
            attempt.firstByteAt = performance.now();
            race?.onFirstByte();
          }
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
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- rethrows what the output threw, unchanged
      if (fatal !== undefined) throw fatal;
      if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'load aborted', { cause: signal.reason });
      const e = toRelaycastError(err);
      attempt.failure ??= e.code === ErrorCode.SEGMENT_UNAVAILABLE ? 'absent' : e.code === ErrorCode.CHANNEL_CLOSED ? 'channel-closed' : 'relay-error';
    } finally {
      signal.removeEventListener('abort', onCallerAbort);
    }
    // ABSENT says nothing bad about the relay (it lacks that segment), nor does losing a race.
    if (attempt.failure !== undefined && attempt.failure !== 'absent' && attempt.failure !== 'hedge') manager.reportFailure(relayId, attempt.failure);
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
    /** False for an audit copy: those bytes are compared, not delivered. */
    counted = true,
    /** The origin's answer to the same request, already open (it won a race): read instead of asking again. */
    opened?: OriginResponse,
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
      if (counted) stats.originBytes(chunk.byteLength);
    };

    for (let round = 0; ; round++) {
      const resumeAt = out.rangeStart + held;
      const { head, body } =
        round === 0 && opened !== undefined && resumeAt === out.rangeStart
          ? opened
          : await openOrigin(this.fetchImpl, { url: req.url, start: resumeAt, end: out.rangeEnd }, signal);
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
