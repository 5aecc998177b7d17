import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { ConnectionManager } from './connection-manager.js';
import { DEFAULT_MAX_RELAYS, DEFAULT_STARTUP_RELAY_WAIT_MS } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import type { RTCPeerConnectionConstructor } from './relay-connection.js';
import { SdkStats, type FallbackReason, type SdkStatsSnapshot } from './sdk-stats.js';
import { SegmentLoader, type LoadOptions, type LoadRequest, type LoadResult } from './segment-loader.js';
import { ViewerTrackerClient, type WebSocketConstructor } from './tracker-client.js';
import { TypedEmitter } from './typed-emitter.js';

export interface RelaycastClientOptions {
  /** Tracker WebSocket URL. Default: none (origin only: the SDK then behaves like plain HTTP). */
  trackerUrl?: string | undefined;
  /** Swarm id: the master playlist URL without query (see swarmIdFromUrl). Required. */
  swarmId: string;
  /** WebSocket implementation. Default: globalThis.WebSocket (pass `ws` in Node). */
  WebSocket?: WebSocketConstructor | undefined;
  /** RTCPeerConnection implementation. Default: globalThis.RTCPeerConnection (node-datachannel's polyfill in Node). */
  RTCPeerConnection?: RTCPeerConnectionConstructor | undefined;
  /** Passed to every RTCPeerConnection. Default: {} (no STUN/TURN). */
  rtcConfiguration?: RTCConfiguration | undefined;
  /** fetch for the origin. Default: globalThis.fetch. */
  fetch?: typeof fetch | undefined;
  /** Warm relay connections (1-3). Default: DEFAULT_MAX_RELAYS (2). */
  maxRelays?: number | undefined;
  /** Relay time-to-first-byte deadline. Default: DEFAULT_TTFB_TIMEOUT_MS (1.5 s). */
  ttfbTimeoutMs?: number | undefined;
  /** Longest silence mid-transfer before falling back. Default: DEFAULT_STALL_TIMEOUT_MS (2 s). */
  stallTimeoutMs?: number | undefined;
  /** WebRTC setup deadline per relay. Default: DEFAULT_CONNECT_TIMEOUT_MS (10 s). */
  connectTimeoutMs?: number | undefined;
  /**
   * Before any relay is connected, a load waits up to this long for the first relays to come up
   * (once per client): a short startup delay instead of fetching the first segments from the origin.
   * Default: DEFAULT_STARTUP_RELAY_WAIT_MS (1.5 s).
   */
  startupRelayWaitMs?: number | undefined;
  /** Region hint for relay selection. Default: none. */
  region?: string | undefined;
  /** Logger with pino's call shape. Default: silent. */
  logger?: SdkLogger | undefined;
}

export interface RelaycastClientEvents {
  'relay-connected': (relayId: string) => void;
  'relay-disconnected': (relayId: string, reason: RelaycastError) => void;
  fallback: (info: { url: string; relayId: string | undefined; reason: FallbackReason; bytesFromRelay: number }) => void;
  'segment-loaded': (info: { url: string; result: LoadResult }) => void;
}

/**
 * The player-agnostic SDK: one per stream being played. Joins the tracker, keeps relays warm,
 * and loads segments from them with origin fallback, counting where every byte came from.
 */
export class RelaycastClient extends TypedEmitter<RelaycastClientEvents> {
  private readonly stats = new SdkStats();
  private readonly tracker: ViewerTrackerClient | undefined;
  private readonly manager: ConnectionManager | undefined;
  private readonly loader: SegmentLoader;
  private closed = false;
  private starting: Promise<void> | undefined;
  private readonly startupRelayWaitMs: number;

  constructor(options: RelaycastClientOptions) {
    super();
    const log = options.logger ?? silentLogger;
    this.startupRelayWaitMs = options.startupRelayWaitMs ?? DEFAULT_STARTUP_RELAY_WAIT_MS;
    if (options.trackerUrl !== undefined) {
      this.tracker = new ViewerTrackerClient({ trackerUrl: options.trackerUrl, WebSocket: options.WebSocket, logger: log });
      this.manager = new ConnectionManager({
        tracker: this.tracker,
        swarmId: options.swarmId,
        maxRelays: options.maxRelays ?? DEFAULT_MAX_RELAYS,
        region: options.region,
        logger: log,
        connection: {
          RTCPeerConnection: options.RTCPeerConnection,
          rtcConfiguration: options.rtcConfiguration,
          connectTimeoutMs: options.connectTimeoutMs,
        },
      });
      this.manager.on('relay-connected', (id) => this.emit('relay-connected', id));
      this.manager.on('relay-disconnected', (id, reason) => this.emit('relay-disconnected', id, reason));
    }
    this.loader = new SegmentLoader({
      manager: this.manager,
      stats: this.stats,
      fetch: options.fetch,
      ttfbTimeoutMs: options.ttfbTimeoutMs,
      stallTimeoutMs: options.stallTimeoutMs,
      logger: log,
      onFallback: (info) => this.emit('fallback', info),
    });
  }

  /** Connected relay ids. */
  get relays(): string[] {
    return this.manager?.connectedRelayIds ?? [];
  }

  /**
   * Connects to the tracker and warms relay connections. Resolves once that first attempt is over,
   * with or without relays: playback never waits on the relay network.
   */
  start(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new RelaycastError(ErrorCode.ABORTED, 'client is closed'));
    this.starting ??= this.warmUp(signal);
    return this.starting;
  }

  private async warmUp(signal: AbortSignal | undefined): Promise<void> {
    if (this.tracker === undefined || this.manager === undefined) return;
    this.tracker.connect();
    try {
      await this.tracker.whenReady(AbortSignal.any([AbortSignal.timeout(5_000), ...(signal ? [signal] : [])]));
      await this.manager.start(signal);
    } catch (err) {
      if (signal?.aborted === true) throw err;
      // Tracker unreachable: keep retrying in the background, serve from the origin meanwhile.
    }
  }

  /** Loads a segment (or byte range) from a relay, falling back to the origin. */
  async loadSegment(request: LoadRequest, options?: LoadOptions): Promise<LoadResult> {
    if (this.starting !== undefined && this.relays.length === 0) await this.awaitStartup(options?.signal);
    const result = await this.loader.load(request, options);
    this.emit('segment-loaded', { url: request.url, result });
    return result;
  }

  /** Waits (once) for the first relays, bounded by startupRelayWaitMs and the caller's signal. */
  private async awaitStartup(signal: AbortSignal | undefined): Promise<void> {
    const starting = this.starting;
    if (starting === undefined) return;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      starting,
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.startupRelayWaitMs);
        signal?.addEventListener('abort', () => resolve(), { once: true });
      }),
    ]);
    clearTimeout(timer);
    // Only the first loads wait: later ones must never be held up by a relay network that is down.
    this.starting = undefined;
  }

  getStats(): SdkStatsSnapshot {
    return this.stats.snapshot();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.manager?.close();
    this.tracker?.close();
  }
}
