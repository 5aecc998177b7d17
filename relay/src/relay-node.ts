import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { pino, type Logger } from 'pino';
import { serveChannel, type ChannelSession } from './channel-server.js';
import {
  DEFAULT_CAPACITY,
  DEFAULT_LOG_LEVEL,
  DEFAULT_PRICE_PER_GIB,
  DEFAULT_REGION,
  DEFAULT_SHUTDOWN_GRACE_MS,
} from './constants.js';
import type { RelayKeypair } from './keypair.js';
import { NodeDataChannelTransport } from './node-datachannel-transport.js';
import { createOriginSegmentSource, type OriginSourceOptions } from './origin-segment-source.js';
import { createRelayCounters, type RelayCounters } from './relay-counters.js';
import { RelayTrackerClient } from './relay-tracker-client.js';
import type { SegmentSource } from './segment-source.js';
import type { RelayTransport } from './transport.js';
import { UploadLimiter } from './upload-limiter.js';

export interface RelayNodeOptions {
  /** Tracker WebSocket URL. Required. */
  trackerUrl: string;
  /** Origin URL prefixes the relay may fetch from. Required, at least one. */
  allowedOrigins: string[];
  /** The relay's identity (see loadOrCreateKeypair). Required. */
  keypair: RelayKeypair;
  /** Region label advertised to the tracker ([a-z0-9-], ≤ 32). Default: DEFAULT_REGION (''). */
  region?: string | undefined;
  /** Concurrent viewer sessions advertised. Default: DEFAULT_CAPACITY (100). */
  capacity?: number | undefined;
  /** Advertised price, token base units per GiB. Default: DEFAULT_PRICE_PER_GIB ('0'). */
  pricePerGiB?: string | undefined;
  /** Segment cache size. Default: the origin source's (256 MiB). */
  cacheMaxBytes?: number | undefined;
  /** Address ICE binds to ('127.0.0.1' on loopback). Default: all interfaces. */
  bindAddress?: string | undefined;
  /** Single UDP port for every viewer (ICE UDP mux). Default: ephemeral ports. */
  rtcPort?: number | undefined;
  /** Relay-wide upload cap in bytes per second. Default: unlimited. */
  maxUploadBytesPerSec?: number | undefined;
  /** Extra origin-side options (timeouts, live prefetch). Default: the origin source's defaults. */
  origin?: Partial<Omit<OriginSourceOptions, 'allowedOrigins' | 'relayId' | 'logger' | 'cacheMaxBytes'>> | undefined;
  /** Replaces the WebRTC transport (tests, alternative stacks). Default: NodeDataChannelTransport. */
  transport?: RelayTransport | undefined;
  /** Replaces the origin segment source (tests). Default: createOriginSegmentSource. */
  source?: SegmentSource | undefined;
  /** Time graceful shutdown waits for in-flight segments. Default: DEFAULT_SHUTDOWN_GRACE_MS (5 s). */
  shutdownGraceMs?: number | undefined;
  /** Parent logger. Default: pino at DEFAULT_LOG_LEVEL. */
  logger?: Logger | undefined;
}

export interface RelayStats extends RelayCounters {
  relayId: string;
  peers: number;
  streams: string[];
}

export interface RelayNode {
  readonly relayId: string;
  stats(): RelayStats;
  /** Graceful: stops taking viewers, finishes in-flight segments (up to the grace period), closes everything. */
  close(): Promise<void>;
}

/** Starts a relay: origin source, WebRTC transport, channel servers and tracker registration. */
export async function startRelay(options: RelayNodeOptions, signal?: AbortSignal): Promise<RelayNode> {
  const log = (options.logger ?? pino({ level: DEFAULT_LOG_LEVEL })).child({ component: 'relay', relayId: options.keypair.relayId });
  if (options.allowedOrigins.length === 0) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'at least one allowed origin is required (a relay is never an open proxy)');
  }
  const counters = createRelayCounters();
  const source =
    options.source ??
    createOriginSegmentSource({
      ...options.origin,
      allowedOrigins: options.allowedOrigins,
      relayId: options.keypair.relayId,
      cacheMaxBytes: options.cacheMaxBytes,
      logger: log,
    });
  const transport =
    options.transport ??
    new NodeDataChannelTransport({
      bindAddress: options.bindAddress,
      portRangeBegin: options.rtcPort,
      portRangeEnd: options.rtcPort,
      logger: log,
    });
  const limiter = options.maxUploadBytesPerSec ? new UploadLimiter(options.maxUploadBytesPerSec) : undefined;
  const sessions = new Set<ChannelSession>();
  const capacity = options.capacity ?? DEFAULT_CAPACITY;
  let accepting = true;

  const tracker = new RelayTrackerClient({
    trackerUrl: options.trackerUrl,
    keypair: options.keypair,
    transport,
    logger: log,
    advertise: () => ({
      capacity,
      load: Math.min(transport.peerCount, capacity),
      region: options.region ?? DEFAULT_REGION,
      pricePerGiB: options.pricePerGiB ?? DEFAULT_PRICE_PER_GIB,
      streams: source.advertisedStreams(),
    }),
    onPeer: (peer) => {
      if (!accepting) return peer.close();
      peer.onDataChannel((channel) => {
        const session = serveChannel(channel, { source, counters, uploadLimiter: limiter, logger: log });
        sessions.add(session);
        channel.onClose(() => sessions.delete(session));
      });
    },
  });

  await tracker.start(signal).catch(async (err: unknown) => {
    tracker.close();
    await transport.close();
    await source.close();
    throw err;
  });

  let closing: Promise<void> | undefined;
  return {
    relayId: options.keypair.relayId,
    stats: () => ({ ...counters, errorsByCode: { ...counters.errorsByCode }, relayId: options.keypair.relayId, peers: transport.peerCount, streams: source.advertisedStreams() }),
    close() {
      closing ??= (async () => {
        accepting = false;
        tracker.close();
        const grace = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
        await Promise.race([
          Promise.all([...sessions].map((s) => s.drain())),
          new Promise((resolve) => setTimeout(resolve, grace).unref()),
        ]);
        for (const s of sessions) s.close();
        await transport.close();
        await source.close();
        log.info('relay stopped');
      })();
      return closing;
    },
  };
}
