import { ErrorCode, MAX_ADVERTISED_STREAMS, isRelaycastError } from '@relaycast/protocol';
import type { Logger } from 'pino';
import {
  DEFAULT_ADVERTISE_TTL_MS,
  DEFAULT_LIVE_POLL_MAX_MS,
  DEFAULT_LIVE_POLL_MIN_MS,
  DEFAULT_LIVE_VIEWER_IDLE_MS,
  DEFAULT_MAX_FOLLOWED_PLAYLISTS,
  DEFAULT_MAX_PLAYLIST_BYTES,
  DEFAULT_PREFETCH_SEGMENTS,
} from '../constants.js';
import { parseMediaPlaylist } from '@relaycast/origin-tools';
import type { OriginFetcher } from './origin-fetcher.js';
import type { OriginPolicy } from './origin-policy.js';

export interface LivePrefetcherOptions {
  /** Fetches playlists (allowlist and redirects included). Required. */
  fetcher: OriginFetcher;
  /** Every segment URL found in a playlist is checked against it before being prefetched. Required. */
  policy: OriginPolicy;
  /** Starts a reader-less download of an allowed segment through the coalescing path. Required. */
  prefetch: (url: URL) => void;
  /** True when the normalised URL is cached or already downloading. Required. */
  isCachedOrInflight: (key: string) => boolean;
  /** Follow live playlists at all. Default: DEFAULT_LIVE_POLLING_ENABLED (true). */
  enabled?: boolean | undefined;
  /** A playlist is followed this long after its last viewer request. Default: DEFAULT_LIVE_VIEWER_IDLE_MS (30 s). */
  liveViewerIdleMs?: number | undefined;
  /** Playlists followed at once; the least recently requested is dropped. Default: DEFAULT_MAX_FOLLOWED_PLAYLISTS (32). */
  maxFollowedPlaylists?: number | undefined;
  /** Newest segments kept prefetched. Default: DEFAULT_PREFETCH_SEGMENTS (3). */
  prefetchSegments?: number | undefined;
  /** Lower bound of the poll interval (targetDuration / 2). Default: DEFAULT_LIVE_POLL_MIN_MS (500 ms). */
  livePollMinMs?: number | undefined;
  /** Upper bound of the poll interval, also the retry interval after a failed poll. Default: DEFAULT_LIVE_POLL_MAX_MS (10 s). */
  livePollMaxMs?: number | undefined;
  /** A requested playlist stays advertised this long after its last request. Default: DEFAULT_ADVERTISE_TTL_MS (5 min). */
  advertiseTtlMs?: number | undefined;
  /** Largest playlist downloaded. Default: DEFAULT_MAX_PLAYLIST_BYTES (1 MiB). */
  maxPlaylistBytes?: number | undefined;
  /** Parent logger. Default: no logging. */
  logger?: Logger | undefined;
}

interface Followed {
  url: URL;
  lastViewerAt: number;
  timer: NodeJS.Timeout | undefined;
  controller: AbortController;
}

/**
 * Follows live media playlists that viewers are watching and prefetches their newest segments, so
 * the relay's cache is hot before viewers ask. A playlist is fetched when first requested; with
 * EXT-X-ENDLIST (VOD) or as a master playlist it is remembered as static and never polled again;
 * otherwise it is polled every targetDuration / 2 until no viewer asked for it for
 * `liveViewerIdleMs`.
 */
export class LivePrefetcher {
  private readonly o: Required<Omit<LivePrefetcherOptions, 'logger'>>;
  private readonly log: Logger | undefined;
  private readonly followed = new Map<string, Followed>();
  /** Playlists known not to need polling (VOD, master); bounded LRU. */
  private readonly staticPlaylists = new Map<string, true>();
  /** Last viewer request per playlist, for advertising; bounded LRU. */
  private readonly recent = new Map<string, number>();
  private closed = false;

  constructor(options: LivePrefetcherOptions) {
    this.o = {
      fetcher: options.fetcher,
      policy: options.policy,
      prefetch: options.prefetch,
      isCachedOrInflight: options.isCachedOrInflight,
      enabled: options.enabled ?? true,
      liveViewerIdleMs: options.liveViewerIdleMs ?? DEFAULT_LIVE_VIEWER_IDLE_MS,
      maxFollowedPlaylists: options.maxFollowedPlaylists ?? DEFAULT_MAX_FOLLOWED_PLAYLISTS,
      prefetchSegments: options.prefetchSegments ?? DEFAULT_PREFETCH_SEGMENTS,
      livePollMinMs: options.livePollMinMs ?? DEFAULT_LIVE_POLL_MIN_MS,
      livePollMaxMs: options.livePollMaxMs ?? DEFAULT_LIVE_POLL_MAX_MS,
      advertiseTtlMs: options.advertiseTtlMs ?? DEFAULT_ADVERTISE_TTL_MS,
      maxPlaylistBytes: options.maxPlaylistBytes ?? DEFAULT_MAX_PLAYLIST_BYTES,
    };
    this.log = options.logger?.child({ component: 'live-prefetcher' });
  }

  /** Records a viewer request that named `playlistUrl` (already allowed by the policy). */
  touch(playlistUrl: URL): void {
    if (this.closed) return;
    const key = playlistUrl.href;
    const now = Date.now();
    touchLru(this.recent, key, now, MAX_ADVERTISED_STREAMS);
    if (!this.o.enabled || this.o.maxFollowedPlaylists <= 0) return;
    if (this.staticPlaylists.has(key)) {
      touchLru(this.staticPlaylists, key, true, this.o.maxFollowedPlaylists * 8);
      return;
    }
    const existing = this.followed.get(key);
    if (existing !== undefined) {
      existing.lastViewerAt = now;
      this.followed.delete(key);
      this.followed.set(key, existing);
      return;
    }
    while (this.followed.size >= this.o.maxFollowedPlaylists) {
      const oldest = this.followed.values().next().value as Followed;
      this.stop(oldest);
    }
    const entry: Followed = { url: playlistUrl, lastViewerAt: now, timer: undefined, controller: new AbortController() };
    this.followed.set(key, entry);
    void this.poll(entry);
  }

  /**
   * Playlists being followed, then recently requested ones (most recent first), at most
   * MAX_ADVERTISED_STREAMS. Queries are dropped: they often carry viewers' signed tokens, which must
   * not travel to the tracker, and stream ids (like swarm ids) are URLs without query.
   */
  advertisedStreams(): string[] {
    const out = new Set<string>();
    for (const entry of this.followed.values()) out.add(withoutQuery(entry.url));
    const cutoff = Date.now() - this.o.advertiseTtlMs;
    const recent = [...this.recent].reverse();
    for (const [key, at] of recent) {
      if (out.size >= MAX_ADVERTISED_STREAMS) break;
      if (at >= cutoff) out.add(withoutQuery(new URL(key)));
    }
    return [...out].slice(0, MAX_ADVERTISED_STREAMS);
  }

  /** True while `playlistUrl` (normalised href) is being polled. */
  isFollowing(key: string): boolean {
    return this.followed.has(key);
  }

  close(): void {
    this.closed = true;
    for (const entry of [...this.followed.values()]) this.stop(entry);
    this.staticPlaylists.clear();
    this.recent.clear();
  }

  private stop(entry: Followed): void {
    if (entry.timer !== undefined) clearTimeout(entry.timer);
    entry.timer = undefined;
    entry.controller.abort();
    if (this.followed.get(entry.url.href) === entry) this.followed.delete(entry.url.href);
  }

  private async poll(entry: Followed): Promise<void> {
    entry.timer = undefined;
    if (this.closed || this.followed.get(entry.url.href) !== entry) return;
    if (Date.now() - entry.lastViewerAt > this.o.liveViewerIdleMs) {
      this.log?.debug({ playlist: withoutQuery(entry.url) }, 'no viewers left: stop following playlist');
      this.stop(entry);
      return;
    }
    let nextMs = this.o.livePollMaxMs;
    try {
      const { url, text } = await this.o.fetcher.getText(entry.url, {
        signal: entry.controller.signal,
        maxBytes: this.o.maxPlaylistBytes,
      });
      const playlist = parseMediaPlaylist(text, url);
      if (playlist.endList || playlist.isMaster) {
        this.stop(entry);
        touchLru(this.staticPlaylists, entry.url.href, true, this.o.maxFollowedPlaylists * 8);
        return;
      }
      this.prefetchNewest(playlist.segments.map((s) => s.url));
      if (playlist.targetDurationSec > 0) nextMs = (playlist.targetDurationSec * 1000) / 2;
    } catch (err) {
      if (entry.controller.signal.aborted) return;
      // A failed poll keeps the follow alive (origins hiccup); the idle rule still ends it.
      this.log?.debug({ playlist: withoutQuery(entry.url), code: isRelaycastError(err) ? err.code : ErrorCode.INTERNAL }, 'playlist poll failed');
    }
    if (this.closed || this.followed.get(entry.url.href) !== entry) return;
    const delay = Math.min(this.o.livePollMaxMs, Math.max(this.o.livePollMinMs, nextMs));
    entry.timer = setTimeout(() => void this.poll(entry), delay);
    entry.timer.unref();
  }

  private prefetchNewest(segmentUrls: string[]): void {
    const newest = this.o.prefetchSegments > 0 ? segmentUrls.slice(-this.o.prefetchSegments) : [];
    for (const raw of newest) {
      let url: URL;
      try {
        // A playlist may list segments anywhere: the allowlist applies to them like to viewer input.
        url = this.o.policy.check(raw);
      } catch {
        continue;
      }
      if (!this.o.isCachedOrInflight(url.href)) this.o.prefetch(url);
    }
  }
}

function touchLru<V>(map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value as string);
}

function withoutQuery(url: URL): string {
  return url.origin + url.pathname;
}
