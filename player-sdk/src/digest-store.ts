import {
  ErrorCode,
  MAX_DIGEST_SIDECAR_BYTES,
  RelaycastError,
  concatBytes,
  deadline,
  decodeDigestSidecar,
  digestSidecarUrl,
  toRelaycastError,
  utf8Decode,
} from '@relaycast/protocol';
import {
  DEFAULT_DIGEST_ABSENT_RETRY_MS,
  DEFAULT_DIGEST_REFETCH_MS,
  DEFAULT_DIGEST_WAIT_MS,
  DEFAULT_SIDECAR_RETRY_MAX_MS,
  DEFAULT_SIDECAR_RETRY_MIN_MS,
  DEFAULT_SIDECAR_TIMEOUT_MS,
  MAX_SIDECARS_CACHED,
} from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { openOrigin, readBody } from './origin-fetch.js';

/**
 * Why a lookup found no digest:
 *  - `absent`: the origin answered 404/410 for the sidecar;
 *  - `failed`: the sidecar fetch failed (network error, an HTTP status other than 404/410, a time-out, a body cut short) or did not finish within the lookup's wait;
 *  - `malformed`: the sidecar could not be decoded (a truncated read mid-rewrite, invalid JSON or content);
 *  - `unlisted`: the sidecar is there but did not list the segment within the wait;
 *  - `no-playlist`: the load named no (usable) media playlist URL.
 */
export type DigestProblemCause = 'absent' | 'failed' | 'malformed' | 'unlisted' | 'no-playlist';

/** One lookup that found no digest: what `onMissing` receives. */
export interface DigestProblem {
  cause: DigestProblemCause;
  /** The sidecar URL, when the load named a media playlist. */
  sidecarUrl: string | undefined;
  /** Short human-readable detail: `HTTP 503`, `timed out after 2000 ms`, the decoder's message… */
  detail: string;
}

/** What the player knows of a media playlist; it paces the retries of its sidecar. */
export interface PlaylistInfo {
  /** True for a playlist that is still growing (no EXT-X-ENDLIST). */
  live: boolean;
  /** Its EXT-X-TARGETDURATION, ms, when known. */
  targetDurationMs?: number | undefined;
}

export interface DigestStoreOptions {
  /** fetch for the origin (sidecars always come from the origin, never from relays). Required. */
  fetch: typeof fetch;
  /** A digest missing from a sidecar (a live segment newer than the last rewrite) is waited for this long at most, ms; also bounds how long a lookup waits for a sidecar fetch. Default: DEFAULT_DIGEST_WAIT_MS (2 s). */
  digestWaitMs?: number | undefined;
  /** A sidecar is refetched for a missing digest at most this often, ms. Default: DEFAULT_DIGEST_REFETCH_MS (250 ms). */
  refetchIntervalMs?: number | undefined;
  /** A sidecar the origin answered 404/410 for is asked for again after this, ms, unless its playlist is live (then the retry backoff applies). Default: DEFAULT_DIGEST_ABSENT_RETRY_MS (30 s). */
  absentRetryMs?: number | undefined;
  /** First retry after a failed or malformed sidecar (or an absent one of a live playlist), ms, doubling per failure in a row; capped at half the target duration for the first. Default: DEFAULT_SIDECAR_RETRY_MIN_MS (500 ms). */
  retryMinMs?: number | undefined;
  /** Largest retry interval, ms; on a live playlist with a known target duration also at most that duration. Default: DEFAULT_SIDECAR_RETRY_MAX_MS (4 s). */
  retryMaxMs?: number | undefined;
  /** Time limit of one sidecar fetch, ms; on a live playlist with a known target duration at most that duration. Default: DEFAULT_SIDECAR_TIMEOUT_MS (5 s). */
  timeoutMs?: number | undefined;
  /** Aborts every sidecar fetch in flight and keeps new ones from starting (the client's close). Default: none. */
  signal?: AbortSignal | undefined;
  /** Called when a sidecar exists but is invalid (RC_ERR_DIGEST_SIDECAR_INVALID). Default: none. */
  onInvalidSidecar?: ((err: RelaycastError) => void) | undefined;
  /** Called on every lookup that found no digest, with the cause. Default: none. */
  onMissing?: ((problem: DigestProblem) => void) | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

/** The outcome of the latest fetch of a sidecar; `new` before the first one. */
type SidecarState = 'new' | 'ok' | 'absent' | 'failed' | 'malformed';

interface Sidecar {
  /** Absolute segment URL → lowercase hex SHA-256, from the latest sidecar that decoded; undefined before one did. */
  digests: Map<string, string> | undefined;
  state: SidecarState;
  /** What went wrong with the latest fetch (empty when it succeeded). */
  detail: string;
  /** When the latest fetch started and ended (performance.now()). */
  startedAt: number;
  fetchedAt: number;
  /** Fetches in a row that did not succeed (the retry backoff's exponent). */
  failures: number;
  /** Earliest start of the next fetch after a failure (performance.now()). */
  retryAt: number;
  refreshing: Promise<void> | undefined;
  playlist: PlaylistInfo | undefined;
}

type FetchOutcome = { state: 'ok'; digests: Map<string, string> } | { state: 'absent' | 'failed' | 'malformed'; detail: string };

/**
 * The origin's published segment digests, by media playlist. Each sidecar is fetched once and
 * refreshed only when a segment is missing from it (live playlists run ahead of their sidecar by
 * up to one rewrite), and never more often than refetchIntervalMs. A fetch that fails (network,
 * HTTP error, time-out) or returns something that does not decode (a read caught mid-rewrite) is
 * transient: it is retried after retryMinMs, doubling up to retryMaxMs, reset by a success. A 404
 * is final for absentRetryMs, except on a live playlist, where the sidecar may simply not be
 * written yet: there it backs off like a failure. On a live playlist with a known target duration
 * every retry comes within one target duration. The digests of the last good sidecar are kept
 * through failures. At most MAX_SIDECARS_CACHED sidecars are kept (least recently used dropped).
 */
export class DigestStore {
  private readonly sidecars = new Map<string, Sidecar>();
  private readonly log: SdkLogger;

  constructor(private readonly options: DigestStoreOptions) {
    this.log = options.logger ?? silentLogger;
  }

  /**
   * Tells the store what the player knows of the media playlist `playlistUrl` (live or not, target
   * duration): it decides how soon a missing or failed sidecar is asked for again.
   */
  notePlaylist(playlistUrl: string, info: PlaylistInfo): void {
    const key = sidecarKey(playlistUrl);
    if (key === undefined) return;
    const entry = this.entry(key);
    const previous = entry.playlist;
    entry.playlist = { live: info.live, targetDurationMs: validMs(info.targetDurationMs) };
    // A playlist that just turned out to be live: a 404 under the VOD rule must not hold it back.
    if (previous?.live !== true && info.live && entry.state === 'absent') entry.retryAt = Math.min(entry.retryAt, entry.startedAt + this.backoff(entry));
  }

  /**
   * SHA-256 (lowercase hex) the origin publishes for `segmentUrl`, or undefined when it publishes
   * none for it (no playlist URL, no sidecar, invalid sidecar, segment not listed in time); each
   * undefined is reported to `onMissing` with its cause. Waits at most digestWaitMs.
   * `within` (the startup policy's race): waits at most `within.waitMs` instead and reports nothing,
   * since a load that then goes to the origin did not lack its digest.
   * Rejects only with RC_ERR_ABORTED.
   */
  async lookup(segmentUrl: string, playlistUrl: string | undefined, signal: AbortSignal, within?: { waitMs: number }): Promise<string | undefined> {
    const quiet = within !== undefined;
    const key = playlistUrl === undefined ? undefined : sidecarKey(playlistUrl);
    if (key === undefined) return quiet ? undefined : this.miss({ cause: 'no-playlist', sidecarUrl: undefined, detail: 'no media playlist URL' });
    const waitMs = within?.waitMs ?? this.options.digestWaitMs ?? DEFAULT_DIGEST_WAIT_MS;
    const refetchMs = this.options.refetchIntervalMs ?? DEFAULT_DIGEST_REFETCH_MS;
    const deadline = performance.now() + waitMs;
    const entry = this.entry(key);
    // While a sidecar fails, one lookup waits for one fetch at most: the load goes on without it.
    let fetched = false;
    for (;;) {
      const digest = entry.digests?.get(segmentUrl);
      if (digest !== undefined) return digest;
      const now = performance.now();
      if (entry.refreshing !== undefined) {
        if (!(await this.waitFor(entry.refreshing, deadline, signal))) return this.missFor(key, entry, true, quiet);
        fetched = true;
        continue;
      }
      if (fetched && entry.state !== 'ok') return this.missFor(key, entry, false, quiet);
      if (now >= deadline && entry.state !== 'new') return this.missFor(key, entry, false, quiet);
      // A sidecar that decoded but lacks the segment: refetch (rate-limited) until the deadline.
      // One that failed: ask again once its retry is due, waiting for it only when it is due within
      // refetchIntervalMs (a lookup must not miss a retry by a hair, nor hold a load for long).
      const nextAt = this.dueAt(entry, now);
      if (nextAt <= now) {
        this.refresh(key, entry);
        continue;
      }
      if ((entry.state !== 'ok' && nextAt - now > refetchMs) || nextAt >= deadline) return this.missFor(key, entry, false, quiet);
      await sleep(nextAt - now, signal);
    }
  }

  /**
   * The digest of `segmentUrl` when it is at hand now. When it is not, starts the sidecar fetch that
   * would bring it (if one is due under the same rules as `lookup`), so a later load finds it, and
   * returns undefined without waiting. Reports nothing to `onMissing`: a load that chose not to wait
   * (the startup policy) is not a relay load that lacked its digest.
   */
  peek(segmentUrl: string, playlistUrl: string | undefined): string | undefined {
    const key = playlistUrl === undefined ? undefined : sidecarKey(playlistUrl);
    if (key === undefined) return undefined;
    const entry = this.entry(key);
    const digest = entry.digests?.get(segmentUrl);
    if (digest !== undefined) return digest;
    const now = performance.now();
    if (entry.refreshing === undefined && this.dueAt(entry, now) <= now) this.refresh(key, entry);
    return undefined;
  }

  /** When the next fetch of a sidecar may start: at once when new; after the refetch interval when it decoded; at its retry time when it failed. */
  private dueAt(entry: Sidecar, now: number): number {
    if (entry.state === 'new') return now;
    if (entry.state === 'ok') return entry.fetchedAt + (this.options.refetchIntervalMs ?? DEFAULT_DIGEST_REFETCH_MS);
    return entry.retryAt;
  }

  /** The entry of `key`, created (evicting the least recently used) when missing and moved to the recent end. */
  private entry(key: string): Sidecar {
    let entry = this.sidecars.get(key);
    if (entry !== undefined) {
      this.sidecars.delete(key);
    } else {
      while (this.sidecars.size >= MAX_SIDECARS_CACHED) this.sidecars.delete(this.sidecars.keys().next().value as string);
      entry = {
        digests: undefined,
        state: 'new',
        detail: '',
        startedAt: -Infinity,
        fetchedAt: -Infinity,
        failures: 0,
        retryAt: -Infinity,
        refreshing: undefined,
        playlist: undefined,
      };
    }
    this.sidecars.set(key, entry);
    return entry;
  }

  private missFor(key: string, entry: Sidecar, pending: boolean, quiet: boolean): undefined {
    if (quiet) return undefined;
    // A fetch that did not finish within the wait is a failed one for this load, whatever came before.
    if (pending) return this.miss({ cause: 'failed', sidecarUrl: key, detail: 'sidecar fetch still in flight' });
    if (entry.state === 'ok' || entry.state === 'new') return this.miss({ cause: 'unlisted', sidecarUrl: key, detail: 'segment not listed in the sidecar' });
    return this.miss({ cause: entry.state, sidecarUrl: key, detail: entry.detail });
  }

  private miss(problem: DigestProblem): undefined {
    this.options.onMissing?.(problem);
    return undefined;
  }

  /** Retry interval after `entry.failures` failures in a row (at least 1). */
  private backoff(entry: Sidecar): number {
    const target = entry.playlist?.live === true ? entry.playlist.targetDurationMs : undefined;
    let min = this.options.retryMinMs ?? DEFAULT_SIDECAR_RETRY_MIN_MS;
    let max = this.options.retryMaxMs ?? DEFAULT_SIDECAR_RETRY_MAX_MS;
    if (target !== undefined) {
      min = Math.min(min, target / 2);
      max = Math.min(max, target);
    }
    return Math.min(max, min * 2 ** Math.min(30, Math.max(0, entry.failures - 1)));
  }

  /** Starts a fetch of one sidecar (lookups join it through `entry.refreshing`); it never rejects. */
  private refresh(key: string, entry: Sidecar): void {
    const e = entry;
    e.startedAt = performance.now();
    const target = e.playlist?.live === true ? e.playlist.targetDurationMs : undefined;
    const timeoutMs = Math.min(this.options.timeoutMs ?? DEFAULT_SIDECAR_TIMEOUT_MS, target ?? Infinity);
    e.refreshing = this.fetchSidecar(key, timeoutMs).then((outcome) => {
      e.fetchedAt = performance.now();
      e.refreshing = undefined;
      if (outcome.state === 'ok') {
        e.state = 'ok';
        e.detail = '';
        e.digests = outcome.digests;
        e.failures = 0;
        return;
      }
      // The digests of the last good sidecar stay: a failed refresh does not unpublish them.
      e.state = outcome.state;
      e.detail = outcome.detail;
      e.failures++;
      const final = outcome.state === 'absent' && e.playlist?.live !== true;
      e.retryAt = e.startedAt + (final ? (this.options.absentRetryMs ?? DEFAULT_DIGEST_ABSENT_RETRY_MS) : this.backoff(e));
    });
  }

  /** Waits for `p` until `deadline` (performance.now()); false when the deadline came first. */
  private async waitFor(p: Promise<void>, deadline: number, signal: AbortSignal): Promise<boolean> {
    const left = deadline - performance.now();
    if (left <= 0) return false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), left)));
    try {
      return await abortable(Promise.race([p.then(() => true), timeout]), signal);
    } finally {
      clearTimeout(timer);
    }
  }

  private async fetchSidecar(url: string, timeoutMs: number): Promise<FetchOutcome> {
    // Its own deadline: a lookup that gives up must not cancel a fetch other lookups share. A timer
    // and controller of our own, not AbortSignal.any over AbortSignal.timeout: in CI a hung sidecar
    // fetch built that way was never aborted, and the playlist's digests stayed "in flight" for good.
    const stop = this.options.signal;
    const limit = deadline(stop, timeoutMs, 'sidecar fetch');
    const signal = limit.signal;
    try {
      const { head, body } = await openOrigin(this.options.fetch, { url, start: 0, end: undefined }, signal);
      const parts: Uint8Array[] = [];
      let size = 0;
      await readBody(body, signal, (chunk) => {
        size += chunk.byteLength;
        if (size > MAX_DIGEST_SIDECAR_BYTES) throw new RelaycastError(ErrorCode.DIGEST_SIDECAR_INVALID, `sidecar over ${MAX_DIGEST_SIDECAR_BYTES} bytes`);
        parts.push(chunk);
        return true;
      });
      if (head.endByte !== undefined && size < head.endByte) {
        throw new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, `sidecar body ended after ${size} of ${head.endByte} bytes`);
      }
      const sidecar = decodeDigestSidecar(utf8Decode(concatBytes(parts)));
      const digests = new Map<string, string>();
      for (const [uri, digest] of Object.entries(sidecar.segments)) {
        try {
          digests.set(new URL(uri, url).href, digest);
        } catch {
          // A URI that does not resolve names no segment we could be asked for.
        }
      }
      return { state: 'ok', digests };
    } catch (err) {
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.DIGEST_SIDECAR_INVALID) {
        // Possibly a read caught mid-rewrite (an origin that does not replace it atomically): transient, never "absent".
        this.log.warn({ url, code: e.code, reason: e.message }, 'segment digest sidecar is invalid; retrying soon');
        this.options.onInvalidSidecar?.(e);
        return { state: 'malformed', detail: e.message };
      }
      if (e.code === ErrorCode.SEGMENT_UNAVAILABLE) {
        this.log.debug({ url, code: e.code }, 'no segment digest sidecar');
        return { state: 'absent', detail: e.message };
      }
      const detail = signal.aborted && stop?.aborted !== true ? `timed out after ${timeoutMs} ms` : e.message;
      this.log.debug({ url, code: e.code, detail }, 'segment digest sidecar fetch failed; retrying soon');
      return { state: 'failed', detail };
    } finally {
      limit.clear();
    }
  }
}

function sidecarKey(playlistUrl: string): string | undefined {
  try {
    return digestSidecarUrl(playlistUrl);
  } catch {
    return undefined;
  }
}

function validMs(ms: number | undefined): number | undefined {
  return ms !== undefined && Number.isFinite(ms) && ms > 0 ? ms : undefined;
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
