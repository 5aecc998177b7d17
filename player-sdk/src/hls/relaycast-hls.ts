import Hls, { type FragmentLoaderContext, type HlsConfig, type LevelDetails } from 'hls.js';
import { swarmIdFromUrl } from '@relaycast/protocol';
import { DEFAULT_MAX_TTFB_TIMEOUT_MS, DEFAULT_MIN_TTFB_TIMEOUT_MS, DEFAULT_RELAYS_AT_LATEST_MS, TTFB_SHARE_OF_BUFFER } from '../constants.js';
import { PlaybackMonitor, type PlaybackStatsSnapshot } from '../playback-monitor.js';
import { RelaycastClient, type RelaycastClientEvents, type RelaycastClientOptions, type RelaycastClientStats } from '../relaycast-client.js';
import { SdkStats } from '../stats.js';
import { TypedEmitter } from '../typed-emitter.js';
import { createFragmentLoaderClass } from './fragment-loader.js';

/**
 * Options of `new RelaycastHls(...)`: those of `RelaycastClient` except `swarmId` (taken from the
 * manifest URL hls.js loads) and `ttfbTimeoutMs` (here it follows the buffer level, between the two below).
 * `startup.relaysAtStart` defaults to false here: relay connections begin at the first frame (the
 * media element's first `playing`), or DEFAULT_RELAYS_AT_LATEST_MS (3 s) after the manifest started
 * loading when that comes first, so their setup never competes with startup.
 */
export interface RelaycastHlsOptions extends Omit<RelaycastClientOptions, 'swarmId' | 'ttfbTimeoutMs'> {
  /** Relay time-to-first-byte deadline with an empty buffer (startup, after a stall), ms. Default: DEFAULT_MIN_TTFB_TIMEOUT_MS (400). */
  minTtfbTimeoutMs?: number | undefined;
  /** Relay time-to-first-byte deadline however full the buffer is, ms. Default: DEFAULT_MAX_TTFB_TIMEOUT_MS (3,000). */
  maxTtfbTimeoutMs?: number | undefined;
}

/** `RelaycastHls.getStats()`: the client's stats plus what the viewer felt (startup, rebuffering). */
export interface RelaycastHlsStats extends RelaycastClientStats {
  /** Startup time and rebuffering, measured on the media element hls.js is attached to. */
  playback: PlaybackStatsSnapshot;
  /** Relays with an open data channel. */
  relays: string[];
}

const EMPTY_STATS: RelaycastClientStats = { ...new SdkStats().snapshot(), payments: undefined };

/**
 * The hls.js adapter: replaces only `fLoader`. Usage:
 *
 * ```js
 * const relaycast = new RelaycastHls({ trackerUrl });
 * const hls = new Hls({ ...relaycast.hlsConfig() });
 * relaycast.attach(hls);
 * ```
 *
 * The swarm id comes from the manifest hls.js loads, and rebuffering from the media element it
 * attaches, so nothing else needs to be passed. Each manifest gets its own `RelaycastClient`, whose
 * events (`relay-connected`, `relay-disconnected`, `fallback`, `segment-loaded`, `integrity-failure`,
 * `error`) are forwarded to this object's listeners.
 */
export class RelaycastHls extends TypedEmitter<RelaycastClientEvents> {
  private client: RelaycastClient | undefined;
  private monitor: PlaybackMonitor | undefined;
  private media: HTMLMediaElement | undefined;
  private hls: Hls | undefined;
  /** Lets the current client's relays connect; set until it ran. */
  private releaseRelays: (() => void) | undefined;

  constructor(private readonly options: RelaycastHlsOptions) {
    super();
  }

  /** The hls.js config fragment to spread into `new Hls({...})`. */
  hlsConfig(): Partial<HlsConfig> {
    return {
      fLoader: createFragmentLoaderClass({
        client: () => this.client,
        DefaultLoader: Hls.DefaultConfig.loader as never,
        ttfbTimeoutMs: () => this.ttfbDeadline(),
        bufferAheadMs: () => this.bufferAheadMs(),
        playlist: (frag) => this.playlistInfo(frag),
      }),
    };
  }

  /**
   * Hooks into `hls`: call it before `loadSource`. A client starts on each `MANIFEST_LOADING`,
   * rebuffering is watched from `MEDIA_ATTACHED`, and `DESTROYING` destroys this adapter too.
   */
  attach(hls: Hls): void {
    this.hls = hls;
    hls.on(Hls.Events.MANIFEST_LOADING, (_e, data) => this.startClient(data.url));
    hls.on(Hls.Events.MEDIA_ATTACHED, (_e, data) => {
      this.monitor?.detach();
      this.media = data.media;
      this.monitor = new PlaybackMonitor(data.media);
      if (this.releaseRelays !== undefined) data.media.addEventListener('playing', this.releaseRelays, { once: true });
    });
    hls.on(Hls.Events.DESTROYING, () => void this.destroy());
  }

  /** A plain JSON snapshot; all zeros before the first manifest loads. */
  getStats(): RelaycastHlsStats {
    return {
      ...(this.client?.getStats() ?? EMPTY_STATS),
      playback: this.monitor?.snapshot() ?? { startupMs: undefined, rebufferCount: 0, rebufferMs: 0 },
      relays: this.client?.relays ?? [],
    };
  }

  /** Closes the current client (tracker session, relay connections) and stops watching the media element. */
  async destroy(): Promise<void> {
    this.monitor?.detach();
    this.monitor = undefined;
    const client = this.client;
    this.client = undefined;
    await client?.close();
  }

  private startClient(manifestUrl: string): void {
    const swarmId = swarmIdFromUrl(manifestUrl);
    void this.client?.close();
    const client = new RelaycastClient({ ...this.options, startup: { relaysAtStart: false, ...this.options.startup }, swarmId });
    this.client = client;
    this.deferRelays(client);
    client.on('relay-connected', (id) => this.emit('relay-connected', id));
    client.on('relay-disconnected', (id, reason) => this.emit('relay-disconnected', id, reason));
    client.on('fallback', (info) => this.emit('fallback', info));
    client.on('segment-loaded', (info) => this.emit('segment-loaded', info));
    client.on('integrity-failure', (err) => this.emit('integrity-failure', err));
    client.on('error', (err) => this.emit('error', err));
    void client.start();
  }

  /** Connects the client's relays at the first frame, or after DEFAULT_RELAYS_AT_LATEST_MS (a paused player, a slow start). */
  private deferRelays(client: RelaycastClient): void {
    const previous = this.releaseRelays;
    if (previous !== undefined) this.media?.removeEventListener('playing', previous);
    const release = (): void => {
      clearTimeout(timer);
      this.media?.removeEventListener('playing', release);
      if (this.releaseRelays === release) this.releaseRelays = undefined;
      client.connectRelays();
    };
    const timer = setTimeout(release, DEFAULT_RELAYS_AT_LATEST_MS);
    this.releaseRelays = release;
    this.media?.addEventListener('playing', release, { once: true });
  }

  /** Live or not, and the target duration (ms), of the media playlist `frag` came from, once hls.js loaded it. */
  private playlistInfo(frag: FragmentLoaderContext['frag']): { live: boolean; targetDurationMs: number | undefined } | undefined {
    const hls = this.hls;
    if (hls === undefined) return undefined;
    const type = String(frag.type);
    // Read defensively: a hint must never cost a fragment (an hls.js without these lists, a level gone).
    const tracks = (type === 'audio' ? hls.audioTracks : type === 'subtitle' ? hls.subtitleTracks : hls.levels) as
      readonly ({ details?: LevelDetails | undefined } | undefined)[] | undefined;
    const details = tracks?.[frag.level]?.details;
    if (details === undefined || typeof details.live !== 'boolean') return undefined;
    const target = Number(details.targetduration);
    return { live: details.live, targetDurationMs: target > 0 ? target * 1000 : undefined };
  }

  /**
   * The more video is buffered, the longer a relay may take before the origin steps in: waiting
   * costs nothing while the buffer covers it, and relay bytes are what the platform pays less for.
   */
  private ttfbDeadline(): number {
    const min = this.options.minTtfbTimeoutMs ?? DEFAULT_MIN_TTFB_TIMEOUT_MS;
    const max = this.options.maxTtfbTimeoutMs ?? DEFAULT_MAX_TTFB_TIMEOUT_MS;
    const ahead = this.bufferAheadMs();
    if (ahead === undefined) return min;
    return Math.round(Math.min(max, Math.max(min, ahead * TTFB_SHARE_OF_BUFFER)));
  }

  /** Media buffered ahead of the playhead, ms (0 before anything is buffered); undefined before hls.js attached a media element. */
  private bufferAheadMs(): number | undefined {
    const media = this.media;
    if (media === undefined) return undefined;
    let ahead = 0;
    for (let i = 0; i < media.buffered.length; i++) {
      if (media.buffered.start(i) <= media.currentTime + 0.1 && media.buffered.end(i) > media.currentTime) {
        ahead = media.buffered.end(i) - media.currentTime;
      }
    }
    return Math.round(ahead * 1000);
  }
}
