import Hls, { type HlsConfig } from 'hls.js';
import { swarmIdFromUrl } from '@relaycast/protocol';
import { DEFAULT_MAX_TTFB_TIMEOUT_MS, DEFAULT_MIN_TTFB_TIMEOUT_MS, TTFB_SHARE_OF_BUFFER } from '../constants.js';
import { PlaybackMonitor, type PlaybackStatsSnapshot } from '../playback-monitor.js';
import { RelaycastClient, type RelaycastClientEvents, type RelaycastClientOptions, type RelaycastClientStats } from '../relaycast-client.js';
import { SdkStats } from '../stats.js';
import { TypedEmitter } from '../typed-emitter.js';
import { createFragmentLoaderClass } from './fragment-loader.js';

export interface RelaycastHlsOptions extends Omit<RelaycastClientOptions, 'swarmId' | 'ttfbTimeoutMs'> {
  /** Relay TTFB deadline when the buffer is empty (startup, after a stall). Default: DEFAULT_MIN_TTFB_TIMEOUT_MS (400 ms). */
  minTtfbTimeoutMs?: number | undefined;
  /** Relay TTFB deadline however full the buffer is. Default: DEFAULT_MAX_TTFB_TIMEOUT_MS (3 s). */
  maxTtfbTimeoutMs?: number | undefined;
}

export interface RelaycastHlsStats extends RelaycastClientStats {
  playback: PlaybackStatsSnapshot;
  /** Relays with an open data channel. */
  relays: string[];
}

const EMPTY_STATS: RelaycastClientStats = { ...new SdkStats().snapshot(), payments: undefined };

/**
 * The hls.js adapter: replaces only `fLoader`. Usage:
 *
 *   const relaycast = new RelaycastHls({ trackerUrl });
 *   const hls = new Hls({ ...relaycast.hlsConfig() });
 *   relaycast.attach(hls);
 *
 * The swarm id comes from the manifest hls.js loads, and rebuffering from the media element it
 * attaches, so nothing else needs to be passed.
 */
export class RelaycastHls extends TypedEmitter<RelaycastClientEvents> {
  private client: RelaycastClient | undefined;
  private monitor: PlaybackMonitor | undefined;
  private media: HTMLMediaElement | undefined;
  private hls: Hls | undefined;

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
      }),
    };
  }

  attach(hls: Hls): void {
    this.hls = hls;
    hls.on(Hls.Events.MANIFEST_LOADING, (_e, data) => this.startClient(data.url));
    hls.on(Hls.Events.MEDIA_ATTACHED, (_e, data) => {
      this.monitor?.detach();
      this.media = data.media;
      this.monitor = new PlaybackMonitor(data.media);
    });
    hls.on(Hls.Events.DESTROYING, () => void this.destroy());
  }

  getStats(): RelaycastHlsStats {
    return {
      ...(this.client?.getStats() ?? EMPTY_STATS),
      playback: this.monitor?.snapshot() ?? { startupMs: undefined, rebufferCount: 0, rebufferMs: 0 },
      relays: this.client?.relays ?? [],
    };
  }

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
    const client = new RelaycastClient({ ...this.options, swarmId });
    this.client = client;
    client.on('relay-connected', (id) => this.emit('relay-connected', id));
    client.on('relay-disconnected', (id, reason) => this.emit('relay-disconnected', id, reason));
    client.on('fallback', (info) => this.emit('fallback', info));
    client.on('segment-loaded', (info) => this.emit('segment-loaded', info));
    client.on('error', (err) => this.emit('error', err));
    void client.start();
  }

  /**
   * The more video is buffered, the longer a relay may take before the origin steps in: waiting
   * costs nothing while the buffer covers it, and relay bytes are what the platform pays less for.
   */
  private ttfbDeadline(): number {
    const min = this.options.minTtfbTimeoutMs ?? DEFAULT_MIN_TTFB_TIMEOUT_MS;
    const max = this.options.maxTtfbTimeoutMs ?? DEFAULT_MAX_TTFB_TIMEOUT_MS;
    const media = this.media;
    if (media === undefined) return min;
    let ahead = 0;
    for (let i = 0; i < media.buffered.length; i++) {
      if (media.buffered.start(i) <= media.currentTime + 0.1 && media.buffered.end(i) > media.currentTime) {
        ahead = media.buffered.end(i) - media.currentTime;
      }
    }
    return Math.round(Math.min(max, Math.max(min, ahead * 1000 * TTFB_SHARE_OF_BUFFER)));
  }
}
