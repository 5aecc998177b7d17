import {
  ErrorCode,
  MAX_DIGEST_SIDECAR_BYTES,
  RelaycastError,
  concatBytes,
  decodeDigestSidecar,
  digestSidecarUrl,
  toRelaycastError,
  utf8Decode,
} from '@relaycast/protocol';
import {
  DEFAULT_DIGEST_ABSENT_RETRY_MS,
  DEFAULT_DIGEST_REFETCH_MS,
  DEFAULT_DIGEST_WAIT_MS,
  DEFAULT_SIDECAR_TIMEOUT_MS,
  MAX_SIDECARS_CACHED,
} from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { openOrigin, readBody } from './origin-fetch.js';

export interface DigestStoreOptions {
  /** fetch for the origin (sidecars always come from the origin, never from relays). Required. */
  fetch: typeof fetch;
  /** A digest missing from a sidecar (a live segment newer than the last rewrite) is waited for this long at most. Default: DEFAULT_DIGEST_WAIT_MS (2 s). */
  digestWaitMs?: number | undefined;
  /** A sidecar is refetched for a missing digest at most this often. Default: DEFAULT_DIGEST_REFETCH_MS (250 ms). */
  refetchIntervalMs?: number | undefined;
  /** A sidecar that was absent or invalid is asked for again after this. Default: DEFAULT_DIGEST_ABSENT_RETRY_MS (30 s). */
  absentRetryMs?: number | undefined;
  /** Time limit of one sidecar fetch. Default: DEFAULT_SIDECAR_TIMEOUT_MS (5 s). */
  timeoutMs?: number | undefined;
  /** Called when a sidecar exists but is invalid (RC_ERR_DIGEST_SIDECAR_INVALID). Default: none. */
  onInvalidSidecar?: ((err: RelaycastError) => void) | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

interface Sidecar {
  /** Absolute segment URL → lowercase hex SHA-256; undefined when the origin publishes none (404, invalid). */
  digests: Map<string, string> | undefined;
  fetchedAt: number;
  refreshing: Promise<void> | undefined;
}

/**
 * The origin's published segment digests, by media playlist. Each sidecar is fetched once and
 * refreshed only when a segment is missing from it (live playlists run ahead of their sidecar by
 * up to one rewrite), and never more often than refetchIntervalMs.
 */
export class DigestStore {
  private readonly sidecars = new Map<string, Sidecar>();
  private readonly log: SdkLogger;

  constructor(private readonly options: DigestStoreOptions) {
    this.log = options.logger ?? silentLogger;
  }

  /**
   * SHA-256 (lowercase hex) the origin publishes for `segmentUrl`, or undefined when it publishes
   * none for it (no playlist URL, no sidecar, invalid sidecar, segment not listed in time).
   * Rejects only with RC_ERR_ABORTED.
   */
  async lookup(segmentUrl: string, playlistUrl: string | undefined, signal: AbortSignal): Promise<string | undefined> {
    if (playlistUrl === undefined) return undefined;
    let key: string;
    try {
      key = digestSidecarUrl(playlistUrl);
    } catch {
      return undefined;
    }
    const waitMs = this.options.digestWaitMs ?? DEFAULT_DIGEST_WAIT_MS;
    const refetchMs = this.options.refetchIntervalMs ?? DEFAULT_DIGEST_REFETCH_MS;
    const deadline = performance.now() + waitMs;
    let entry = this.sidecars.get(key);
    if (
      entry === undefined ||
      (entry.digests === undefined && performance.now() - entry.fetchedAt >= (this.options.absentRetryMs ?? DEFAULT_DIGEST_ABSENT_RETRY_MS))
    ) {
      entry = await this.refresh(key, signal);
    }
    for (;;) {
      if (entry.digests === undefined) return undefined;
      const digest = entry.digests.get(segmentUrl);
      if (digest !== undefined) return digest;
      const now = performance.now();
      if (now >= deadline) return undefined;
      const wait = entry.fetchedAt + refetchMs - now;
      if (wait > 0) await sleep(Math.min(wait, deadline - now), signal);
      else entry = await this.refresh(key, signal);
    }
  }

  /** Fetches (or joins the fetch in flight of) one sidecar; never rejects except with RC_ERR_ABORTED. */
  private async refresh(key: string, signal: AbortSignal): Promise<Sidecar> {
    let entry = this.sidecars.get(key);
    if (entry === undefined) {
      while (this.sidecars.size >= MAX_SIDECARS_CACHED) this.sidecars.delete(this.sidecars.keys().next().value as string);
      entry = { digests: undefined, fetchedAt: -Infinity, refreshing: undefined };
      this.sidecars.set(key, entry);
    }
    const e = entry;
    e.refreshing ??= this.fetchSidecar(key).then(
      (digests) => {
        e.digests = digests;
        e.fetchedAt = performance.now();
        e.refreshing = undefined;
      },
      () => {
        e.fetchedAt = performance.now();
        e.refreshing = undefined;
      },
    );
    await abortable(e.refreshing, signal);
    return e;
  }

  private async fetchSidecar(url: string): Promise<Map<string, string> | undefined> {
    // Its own deadline: a lookup that gives up must not cancel a fetch other lookups share.
    const signal = AbortSignal.timeout(this.options.timeoutMs ?? DEFAULT_SIDECAR_TIMEOUT_MS);
    try {
      const { body } = await openOrigin(this.options.fetch, { url, start: 0, end: undefined }, signal);
      const parts: Uint8Array[] = [];
      let size = 0;
      await readBody(body, signal, (chunk) => {
        size += chunk.byteLength;
        if (size > MAX_DIGEST_SIDECAR_BYTES) throw new RelaycastError(ErrorCode.DIGEST_SIDECAR_INVALID, `sidecar over ${MAX_DIGEST_SIDECAR_BYTES} bytes`);
        parts.push(chunk);
        return true;
      });
      const sidecar = decodeDigestSidecar(utf8Decode(concatBytes(parts)));
      const digests = new Map<string, string>();
      for (const [uri, digest] of Object.entries(sidecar.segments)) {
        try {
          digests.set(new URL(uri, url).href, digest);
        } catch {
          // A URI that does not resolve names no segment we could be asked for.
        }
      }
      return digests;
    } catch (err) {
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.DIGEST_SIDECAR_INVALID) {
        this.log.warn({ url, code: e.code, reason: e.message }, 'segment digest sidecar is invalid; treating the stream as unsigned');
        this.options.onInvalidSidecar?.(e);
      } else {
        this.log.debug({ url, code: e.code }, 'no segment digest sidecar');
      }
      return undefined;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return abortable(new Promise<void>((resolve) => (timer = setTimeout(resolve, ms))), signal).finally(() => clearTimeout(timer));
}

function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new RelaycastError(ErrorCode.ABORTED, 'aborted', { cause: signal.reason }));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new RelaycastError(ErrorCode.ABORTED, 'aborted', { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
