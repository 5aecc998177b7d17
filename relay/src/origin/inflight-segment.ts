import { createHash } from 'node:crypto';
import { ErrorCode, RelaycastError, throwIfAborted, toRelaycastError } from '@relaycast/protocol';
import type { Logger } from 'pino';
import type { OriginFetcher } from './origin-fetcher.js';
import type { CachedSegment } from './segment-cache.js';

export interface InflightSegmentOptions {
  /** Normalised URL to download (already allowed by the policy). */
  url: URL;
  fetcher: OriginFetcher;
  /** Largest body accepted; also the bound of this download's buffer. */
  maxBytes: number;
  /** Called synchronously with the complete segment, before `onSettled`. */
  onComplete: (segment: CachedSegment) => void;
  /** Called synchronously once the download finished, failed or was aborted. */
  onSettled: () => void;
  /** Called with every body chunk's size as it arrives from the origin (origin-fetch accounting). Default: none. */
  onBytes?: ((bytes: number) => void) | undefined;
  logger?: Logger | undefined;
}

/** What is known once the origin's headers arrived. */
export interface InflightHead {
  totalBytes: number | undefined;
}

const INITIAL_CAPACITY_BYTES = 256 * 1024;

/**
 * One origin download shared by every concurrent reader of the same URL (request coalescing).
 *
 * Bytes land in one buffer bounded by `maxBytes`; each reader walks it from its own offset and waits
 * when it catches up with the download, so readers stream while the download is in flight and a
 * slow reader never slows the origin side (nor other readers). Readers leaving do not stop the
 * download: it completes into the cache, because live viewers and prefetch ask for the same
 * segments moments apart, and the number of downloads in flight is bounded by the caller.
 * `abort()` (relay shutdown) stops it.
 */
export class InflightSegment {
  /** Resolves when the origin accepted the request; rejects with the origin error. */
  readonly head: Promise<InflightHead>;
  private resolveHead!: (head: InflightHead) => void;
  private rejectHead!: (err: RelaycastError) => void;
  private readonly controller = new AbortController();
  private readonly hash = createHash('sha256');
  private buf: Uint8Array = new Uint8Array(0);
  private received = 0;
  private totalBytes: number | undefined;
  private done = false;
  /** Set once complete or failed; nothing changes after it. */
  private settled = false;
  private error: RelaycastError | undefined;
  private readonly waiters = new Set<() => void>();
  private readonly log: Logger | undefined;

  constructor(private readonly options: InflightSegmentOptions) {
    this.log = options.logger;
    this.head = new Promise<InflightHead>((resolve, reject) => {
      this.resolveHead = resolve;
      this.rejectHead = reject;
    });
    // A prefetch has no reader awaiting `head`: its failure must not become an unhandled rejection.
    this.head.catch(() => undefined);
    void this.run();
  }

  /** Bytes downloaded so far. */
  get receivedBytes(): number {
    return this.received;
  }

  /** Stops the download; every reader gets RC_ERR_ABORTED (or `reason`). */
  abort(reason?: RelaycastError): void {
    if (this.settled) return;
    this.controller.abort(reason ?? new RelaycastError(ErrorCode.ABORTED, 'segment download aborted'));
  }

  /**
   * Yields bytes `[start, end)` (end clamped to the resource size) as they arrive, in chunks of at
   * most `maxChunkBytes`. Chunks are views into the shared buffer: read-only. `ranged` makes a start
   * at or beyond the final size RC_ERR_RANGE_NOT_SATISFIABLE (a whole-resource read of an empty body
   * is fine).
   */
  async *read(start: number, end: number | undefined, ranged: boolean, maxChunkBytes: number, signal: AbortSignal): AsyncGenerator<Uint8Array> {
    let pos = start;
    for (;;) {
      throwIfAborted(signal);
      if (this.error !== undefined) throw this.error;
      const limit = end ?? Number.POSITIVE_INFINITY;
      if (pos >= limit) return;
      if (pos < this.received) {
        const stop = Math.min(this.received, limit, pos + maxChunkBytes);
        const chunk = this.buf.subarray(pos, stop);
        pos = stop;
        yield chunk;
        continue;
      }
      if (this.done) {
        if (ranged && start >= this.received) {
          throw new RelaycastError(ErrorCode.RANGE_NOT_SATISFIABLE, `range starts at ${start}, resource has ${this.received} bytes`, {
            details: { start, totalBytes: this.received },
          });
        }
        return;
      }
      await this.waitForProgress(signal);
    }
  }

  private waitForProgress(signal: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        this.waiters.delete(wake);
        reject(new RelaycastError(ErrorCode.ABORTED, 'read aborted', { cause: signal.reason }));
      };
      const wake = (): void => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      };
      if (signal.aborted) {
        onAbort();
        return;
      }
      this.waiters.add(wake);
      signal.addEventListener('abort', onAbort, { once: true });
    });
  }

  private notify(): void {
    if (this.waiters.size === 0) return;
    const waiters = [...this.waiters];
    this.waiters.clear();
    for (const wake of waiters) wake();
  }

  private async run(): Promise<void> {
    const { url, fetcher, maxBytes } = this.options;
    const signal = this.controller.signal;
    try {
      const res = await fetcher.get(url, { signal, maxBytes });
      this.totalBytes = res.contentLength;
      // With a Content-Length the buffer is exact (and already checked against maxBytes), so the
      // finished segment needs no copy; without one it grows by doubling up to maxBytes.
      this.buf = new Uint8Array(this.totalBytes ?? Math.min(INITIAL_CAPACITY_BYTES, maxBytes));
      this.resolveHead({ totalBytes: this.totalBytes });
      for await (const chunk of res.body) {
        // Counted as soon as it arrived: these bytes left the origin whatever happens to them next.
        this.options.onBytes?.(chunk.byteLength);
        const next = this.received + chunk.byteLength;
        if (next > maxBytes) {
          throw new RelaycastError(ErrorCode.SEGMENT_TOO_LARGE, `origin resource exceeds ${maxBytes} bytes`, { details: { maxBytes } });
        }
        if (this.totalBytes !== undefined && next > this.totalBytes) {
          throw new RelaycastError(ErrorCode.ORIGIN_HTTP, 'origin sent more bytes than its Content-Length', {
            details: { contentLength: this.totalBytes },
          });
        }
        if (next > this.buf.byteLength) this.grow(next, maxBytes);
        this.buf.set(chunk, this.received);
        this.hash.update(chunk);
        this.received = next;
        // With a Content-Length the last byte completes the segment: it is cached before readers
        // see that byte, so a reader that finished always finds the segment cached afterwards.
        if (this.received === this.totalBytes) this.complete();
        this.notify();
      }
      if (this.totalBytes !== undefined && this.received !== this.totalBytes) {
        throw new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, 'origin closed the body before its Content-Length', {
          details: { contentLength: this.totalBytes, received: this.received },
        });
      }
      this.complete();
    } catch (err) {
      if (!this.settled) {
        const reason: unknown = signal.aborted ? signal.reason : err;
        this.error = toRelaycastError(reason, ErrorCode.ORIGIN_UNREACHABLE);
        this.rejectHead(this.error);
        this.log?.debug({ code: this.error.code, origin: url.origin }, 'segment download failed');
      }
    } finally {
      this.settle();
    }
  }

  private complete(): void {
    if (this.settled) return;
    if (this.buf.byteLength !== this.received) this.buf = this.buf.slice(0, this.received);
    this.done = true;
    this.options.onComplete({ bytes: this.buf, digest: new Uint8Array(this.hash.digest()) });
    this.settle();
  }

  private settle(): void {
    if (this.settled) return;
    this.settled = true;
    this.options.onSettled();
    this.notify();
  }

  private grow(needed: number, maxBytes: number): void {
    let capacity = Math.max(this.buf.byteLength, 1);
    while (capacity < needed) capacity *= 2;
    const next = new Uint8Array(Math.min(capacity, maxBytes));
    next.set(this.buf.subarray(0, this.received));
    this.buf = next;
  }
}
