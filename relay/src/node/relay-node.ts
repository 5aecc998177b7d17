import { DEFAULT_LOG_LEVEL } from '@relaycast/cli-kit';
import { DATA_CHANNEL_LABEL, ErrorCode, RelaycastError, decodePublicKey, encodeBase58 } from '@relaycast/protocol';
import { pino, type Logger } from 'pino';
import { ChannelServer, type ChannelServerOptions, type ChannelServerStats } from '../serve/channel-server.js';
import { DEFAULT_PORT_MAPPING_TIMEOUT_MS, MAX_REPORTED_LOAD, PORT_MAPPING_UPNP_GRACE_MS, DEFAULT_SHUTDOWN_GRACE_MS } from '../constants.js';
import { PortMapping, type PortMappingOptions } from '../nat/port-mapping.js';
import { createUpnpGatewayFinder } from '../nat/upnp-gateway.js';
import { createPmpGatewayFinder } from '../nat/pmp-gateway.js';
import { preferredGateway } from '../nat/preferred-gateway.js';
import { RelayNat, type RelayNatStatus } from '../nat/relay-nat.js';
import { startAutoRedeem, type AutoRedeem } from '../payments/auto-redeem.js';
import { createRelayMetrics } from './relay-metrics.js';
import { RELAY_SETTINGS, type RelaySettingsOptions } from './relay-settings.js';
import { PaymentGate, type PaymentGateStats } from '../payments/payment-gate.js';
import { ReceiptStore } from '../payments/receipt-store.js';
import { Redeemer } from '../payments/redeemer.js';
import { NodeDataChannelTransport } from '../transport/node-datachannel-transport.js';
import { startStatusServer, type StatusServer } from './status-server.js';
import { createOriginSegmentSource, type OriginSourceOptions } from '../origin/origin-segment-source.js';
import type { SegmentSource } from '../serve/segment-source.js';
import { TrackerClient, type OfferStats, type RelaySigner, type TrackerClientOptions } from '../tracker/tracker-client.js';
import type { RelayPeer, RelayTransport } from '../transport/transport.js';

/**
 * Options of `startRelay`. The settings an operator also sets from the command line (tracker URL,
 * allowed origins, capacity, limits, payments...) are declared once in relay-settings.ts, with
 * their bounds and defaults; the rest are for code that embeds or tests the relay.
 */
export interface RelayNodeOptions extends RelaySettingsOptions {
  /** The relay identity (see loadOrCreateKeypair). Required. */
  keypair: RelaySigner;
  /** Further port-mapping options (timeouts, another gateway finder for tests); the lease is `mapPortTtlMs`. Default: PortMapping's defaults and a UPnP finder. */
  portMapping?: Partial<Omit<PortMappingOptions, 'port' | 'logger' | 'ttlMs'>> | undefined;
  /** Further origin-side options (timeouts, live prefetch). Default: the origin source's defaults. */
  origin?: Partial<Omit<OriginSourceOptions, 'allowedOrigins' | 'relayId' | 'logger' | OriginSettingKeys>> | undefined;
  /** Further channel-server options (per-channel limits, water marks). Default: the channel server's defaults. */
  channel?: Partial<Omit<ChannelServerOptions, 'source' | 'logger' | 'maxUploadBytesPerSec'>> | undefined;
  /** Further tracker-client options (reconnect backoff). Default: the tracker client's defaults. */
  tracker?:
    | Partial<
        Omit<TrackerClientOptions, 'trackerUrl' | 'keypair' | 'transport' | 'advertise' | 'onPeer' | 'logger' | 'maxPendingPeers' | 'maxPendingPeersPerViewer'>
      >
    | undefined;
  /** Replaces the WebRTC transport (tests, other stacks). Default: a NodeDataChannelTransport from the options above. */
  transport?: RelayTransport | undefined;
  /** Replaces the origin segment source (tests compose a faulty one over createRelayOriginSource). Default: createRelayOriginSource(options). */
  source?: SegmentSource | undefined;
  /** Resolve only after the first tracker registration. Default: true. */
  waitForRegistration?: boolean | undefined;
  /** Aborts startup (the wait for the first registration) with RC_ERR_ABORTED. Default: none. */
  signal?: AbortSignal | undefined;
  /** Time graceful shutdown waits for in-flight segments. Default: DEFAULT_SHUTDOWN_GRACE_MS. */
  shutdownGraceMs?: number | undefined;
  /** Parent logger. Default: pino at the CLI kit's DEFAULT_LOG_LEVEL to stdout. */
  logger?: Logger | undefined;
  /** Further payment-gate options (payment frame rate, sessions kept). Default: the gate's defaults. */
  paymentGate?: { paymentFramesPerSec?: number | undefined; paymentFrameBurst?: number | undefined; maxSessions?: number | undefined } | undefined;
}

/** Origin-source options that are relay settings (relay-settings.ts), set at the top level of RelayNodeOptions. */
type OriginSettingKeys =
  'cacheMaxBytes' | 'cacheKeyQuery' | 'originRelayBytesPerSec' | 'originRelayBurstBytes' | 'originChannelBytesPerSec' | 'originChannelBurstBytes';

/** Payment figures of one payer (amounts in token base units, as decimal strings). */
export interface PayerPaymentStats {
  payer: string;
  /** (session, grant) pairs with a stored receipt. */
  receipts: number;
  /** Σ newest receipts' amounts: what viewers signed for. */
  receipted: string;
  /** Σ what the payer's settler credits (its last answer per receipt). */
  earned: string;
  /** Σ shortfalls the settler reported (receipted but not credited), and by reason code. */
  shortfall: string;
  shortfallByCode: Record<string, string>;
  /** Receipts the settler refused outright, by code. */
  refusedByCode: Record<string, number>;
  /** Σ confirmed payouts. */
  paid: string;
  /** earned − paid. */
  unpaid: string;
  /** Σ payouts recorded but not yet confirmed. */
  pending: string;
}

/** Payment figures of a paid relay (amounts in token base units, as decimal strings). */
export interface RelayPaymentStats extends PaymentGateStats {
  /** (session, grant) pairs with a stored receipt, all payers. */
  receipts: number;
  receipted: string;
  earned: string;
  shortfall: string;
  paid: string;
  unpaid: string;
  pending: string;
  /** The same per payer, with shortfalls and refusals by code. */
  byPayer: PayerPaymentStats[];
  /** Tracker keys (base58) whose assignments bind sessions now. */
  trustedTrackers: string[];
}

export interface RelayStats extends ChannelServerStats {
  relayId: string;
  /** Registered with the tracker right now. */
  registered: boolean;
  /** Viewer data channels open (same as `channels`). */
  viewers: number;
  /** WebRTC peers open, negotiating ones included. */
  peers: number;
  /** Peers still negotiating. */
  pendingPeers: number;
  /** Viewers' offers refused by code (RC_ERR_OFFER_LIMIT ...) and pending peers displaced for another viewer. */
  offers: OfferStats;
  /** Viewers' ICE candidates dropped by the candidate policy (loopback, link-local, private without --allow-private-candidates ...). */
  remoteCandidatesDropped: number;
  /** Streams advertised to the tracker. */
  streams: string[];
  /** The segment source's own figures when it reports any (cache size, hits, downloads). */
  cache?: unknown;
  /** Current relay-wide upload cap (0 = unlimited). */
  maxUploadBytesPerSec: number;
  /** Receipts and payouts, when the relay accepts payers. */
  payments?: RelayPaymentStats;
  /** Reachability, port mapping, public address and a hint for the operator. */
  nat: RelayNatStatus;
}

export interface RelayNode {
  readonly relayId: string;
  /** URL of the local status interface when `statusPort` was given. */
  readonly statusUrl: string | undefined;
  stats(): RelayStats;
  /** Changes the relay-wide upload cap while running; 0 lifts it. */
  setMaxUploadBytesPerSec(bytesPerSec: number): void;
  /** Redeems once now (needs acceptPayers and rpcUrl); RC_ERR_CONFIG_INVALID otherwise. */
  redeem(signal: AbortSignal): ReturnType<Redeemer['redeem']>;
  /** Graceful: stops taking viewers and requests, lets in-flight ones finish (up to the grace period), then closes everything. */
  close(): Promise<void>;
}

/** The relay settings checked by the table (the same check as the CLI's) and defaulted; then what only startRelay needs. */
function checkOptions(o: RelayNodeOptions): RelaySettings {
  const settings = RELAY_SETTINGS.resolve(o);
  const bad = (message: string): never => {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, message);
  };
  if (o.shutdownGraceMs !== undefined && (!Number.isSafeInteger(o.shutdownGraceMs) || o.shutdownGraceMs < 0))
    bad('shutdownGraceMs must be a non-negative integer');
  if (settings.acceptPayers !== undefined && settings.acceptPayers.size > 0 && settings.receiptsDbPath === undefined)
    bad('receiptsDbPath is required when the relay accepts payers');
  return settings;
}

type RelaySettings = ReturnType<typeof RELAY_SETTINGS.resolve>;

/**
 * The relay's origin segment source, from its settings: what startRelay serves unless `source`
 * replaces it. Exported so a test relay can wrap it (relay/src/testing/faulty-relay-cli.ts).
 */
export function createRelayOriginSource(options: Omit<RelayNodeOptions, 'keypair'>, relayId: string, logger: Logger): SegmentSource {
  const s = RELAY_SETTINGS.resolve(options);
  return createOriginSegmentSource({
    ...options.origin,
    allowedOrigins: s.allowedOrigins,
    relayId,
    cacheMaxBytes: s.cacheMaxBytes,
    cacheKeyQuery: s.cacheKeyQuery,
    originRelayBytesPerSec: s.originBytesPerSec,
    originRelayBurstBytes: s.originBurstBytes,
    originChannelBytesPerSec: s.channelOriginBytesPerSec,
    originChannelBurstBytes: s.channelOriginBurstBytes,
    logger,
  });
}

function paymentStats(store: ReceiptStore, gate: PaymentGate, payers: Iterable<string>): RelayPaymentStats {
  const byPayer = [...new Set([...payers, ...store.payers()])].map((payer) => {
    const t = store.totals(payer);
    return { ...t, unpaid: t.earned > t.paid ? t.earned - t.paid : 0n };
  });
  const sum = (k: 'receipted' | 'earned' | 'shortfall' | 'paid' | 'unpaid' | 'pending'): string => byPayer.reduce((a, p) => a + p[k], 0n).toString();
  return {
    ...gate.stats(),
    receipts: byPayer.reduce((a, p) => a + p.receipts, 0),
    receipted: sum('receipted'),
    earned: sum('earned'),
    shortfall: sum('shortfall'),
    paid: sum('paid'),
    unpaid: sum('unpaid'),
    pending: sum('pending'),
    byPayer: byPayer.map((p) => ({
      payer: p.payer,
      receipts: p.receipts,
      receipted: p.receipted.toString(),
      earned: p.earned.toString(),
      shortfall: p.shortfall.toString(),
      shortfallByCode: Object.fromEntries(Object.entries(p.shortfallByCode).map(([k, v]) => [k, v.toString()])),
      refusedByCode: p.refusedByCode,
      paid: p.paid.toString(),
      unpaid: p.unpaid.toString(),
      pending: p.pending.toString(),
    })),
    trustedTrackers: gate.trustedTrackers().map((k) => encodeBase58(k)),
  };
}

/** Starts a relay: origin source, WebRTC transport, channel server and tracker registration. */
export async function startRelay(options: RelayNodeOptions): Promise<RelayNode> {
  const s = checkOptions(options);
  const relayId = options.keypair.relayId;
  // Components get `base` and add their own `component`; only this file's lines say 'relay-node'.
  const base = (options.logger ?? pino({ level: DEFAULT_LOG_LEVEL })).child({ relayId });
  const log = base.child({ component: 'relay-node' });
  const source = options.source ?? createRelayOriginSource(options, relayId, base);
  let transport: RelayTransport;
  let channels: ChannelServer;
  let store: ReceiptStore | undefined;
  let gate: PaymentGate | undefined;
  let redeemer: Redeemer | undefined;
  const payers = s.acceptPayers ?? new Map<string, string>();
  const mapping =
    s.mapPort && s.rtcPort !== undefined
      ? new PortMapping({
          findGateway: preferredGateway(
            [createUpnpGatewayFinder({ description: `relaycast relay ${relayId}` }), createPmpGatewayFinder({ description: `relaycast relay ${relayId}` })],
            PORT_MAPPING_UPNP_GRACE_MS,
          ),
          ...options.portMapping,
          ttlMs: s.mapPortTtlMs,
          port: s.rtcPort,
          logger: base,
        })
      : undefined;
  const nat = new RelayNat({
    rtcPort: s.rtcPort,
    bindAddress: s.bindAddress,
    mapping,
    trackerHost: new URL(s.trackerUrl).hostname.replace(/^\[|\]$/g, ''),
    onChange: () => tracker?.heartbeatNow(),
    logger: base,
  });
  try {
    if (payers.size > 0) {
      const relayKey = decodePublicKey(relayId);
      store = ReceiptStore.open({ path: s.receiptsDbPath as string, relayId }, relayKey);
      gate = new PaymentGate({
        ...options.paymentGate,
        relayKey,
        acceptedPayers: [...payers.keys()],
        store,
        creditLimitBytes: s.creditLimitBytes,
        unboundCreditBytes: s.unboundCreditBytes,
        trustedTrackers: (s.trustedTrackers ?? []).map((k) => decodePublicKey(k)),
        logger: base,
      });
      if (s.rpcUrl !== undefined) {
        redeemer = new Redeemer({
          store,
          payers,
          rpcUrl: s.rpcUrl,
          signer: { relayId, publicKey: relayKey, sign: (m) => options.keypair.sign(m) },
          logger: base,
        });
      }
    }
    transport =
      options.transport ??
      new NodeDataChannelTransport({
        iceServers: () => nat.iceServerUrls(),
        bindAddress: s.bindAddress,
        portRangeBegin: s.rtcPort,
        portRangeEnd: s.rtcPort,
        maxPeers: s.maxPeers,
        allowPrivateCandidates: s.allowPrivateCandidates,
        logger: base,
      });
    channels = new ChannelServer({ ...options.channel, source, payments: gate, maxUploadBytesPerSec: s.maxUploadBytesPerSec, logger: base });
  } catch (err) {
    store?.close();
    await source.close();
    throw err;
  }
  const capacity = s.capacity;
  let accepting = true;
  let tracker: TrackerClient | undefined;

  const onPeer = (peer: RelayPeer): void => {
    if (!accepting) return peer.close();
    let open = 0;
    peer.onDataChannel((channel) => {
      if (channel.label !== DATA_CHANNEL_LABEL) {
        log.debug({ label: channel.label }, 'closing a data channel with an unknown label');
        channel.close();
        return;
      }
      open++;
      channels.serve(channel);
      // A viewer that closed its channel is done with the peer; free the slot.
      channel.onClose(() => {
        if (--open === 0) peer.close();
      });
    });
  };

  // Mapped before registering, so the tracker tests (and viewers get) the mapped address.
  await nat.start(options.signal ?? new AbortController().signal);
  tracker = new TrackerClient({
    ...options.tracker,
    maxPendingPeers: s.maxPendingPeers,
    maxPendingPeersPerViewer: s.maxPendingPeersPerViewer,
    onHello: (hello) => nat.setIceServers(hello.iceServers),
    onReachability: (msg) => nat.setReachability(msg),
    // The tracker that sends viewers here signs their assignments: its key binds sessions.
    onRegistered: (msg) => gate?.learnTrackerKey(decodePublicKey(msg.trackerKey)),
    extraCandidates: () => nat.extraCandidates(),
    trackerUrl: s.trackerUrl,
    keypair: options.keypair,
    transport,
    logger: base,
    onPeer,
    advertise: () => ({
      capacity,
      load: Math.min(transport.peerCount, MAX_REPORTED_LOAD),
      region: s.region,
      pricePerGiB: s.pricePerGiB.toString(),
      streams: source.advertisedStreams(),
      nat: nat.report(),
    }),
  });

  // What start-up has taken so far, given back when a later step fails.
  const releaseAfterFailedStart = async (): Promise<void> => {
    tracker?.close();
    await transport.close();
    await nat.close(AbortSignal.timeout(DEFAULT_PORT_MAPPING_TIMEOUT_MS));
    await source.close();
    store?.close();
  };
  const started = tracker.start(options.signal);
  if (options.waitForRegistration ?? true) {
    try {
      await started;
    } catch (err) {
      await releaseAfterFailedStart();
      throw err;
    }
  } else {
    started.catch(() => undefined);
  }
  let status: StatusServer | undefined;
  if (s.statusPort !== undefined) {
    const metricsRegistry = createRelayMetrics(() => node.stats());
    try {
      status = await startStatusServer(
        {
          stats: () => node.stats(),
          metrics: () => metricsRegistry.metrics(),
          setMaxUploadBytesPerSec: (n) => node.setMaxUploadBytesPerSec(n),
        },
        { port: s.statusPort },
      );
    } catch (err) {
      await releaseAfterFailedStart();
      throw err;
    }
  }
  const auto: AutoRedeem | undefined =
    redeemer === undefined ? undefined : startAutoRedeem(redeemer, { thresholdBaseUnits: s.redeemThreshold, intervalMs: s.redeemIntervalMs, logger: base });
  log.info(
    { allowedOrigins: s.allowedOrigins, capacity, statusUrl: status?.url, acceptPayers: [...payers.keys()], redeems: redeemer !== undefined },
    'relay started',
  );

  let closing: Promise<void> | undefined;
  const node: RelayNode = {
    relayId,
    statusUrl: status?.url,
    setMaxUploadBytesPerSec(bytesPerSec: number): void {
      channels.setMaxUploadBytesPerSec(bytesPerSec);
      log.info({ maxUploadBytesPerSec: bytesPerSec }, 'upload cap changed');
    },
    stats(): RelayStats {
      const s = channels.stats();
      const withStats = source as SegmentSource & { stats?: () => unknown };
      return {
        ...s,
        relayId,
        registered: tracker.registered,
        viewers: s.channels,
        peers: transport.peerCount,
        pendingPeers: tracker.pendingPeers,
        offers: tracker.offerStats(),
        remoteCandidatesDropped: transport.remoteCandidatesDropped ?? 0,
        streams: source.advertisedStreams(),
        maxUploadBytesPerSec: channels.maxUploadBytesPerSec,
        ...(typeof withStats.stats === 'function' ? { cache: withStats.stats() } : {}),
        ...(store !== undefined && gate !== undefined ? { payments: paymentStats(store, gate, payers.keys()) } : {}),
        nat: nat.status(),
      };
    },
    redeem(signal: AbortSignal) {
      if (redeemer === undefined)
        return Promise.reject(new RelaycastError(ErrorCode.CONFIG_INVALID, 'this relay redeems nothing: it needs accepted payers and an RPC URL'));
      return redeemer.redeem(signal);
    },
    close(): Promise<void> {
      closing ??= (async () => {
        accepting = false;
        tracker.close();
        channels.stopAccepting();
        const grace = AbortSignal.timeout(options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
        const drained = (await channels.drain(grace)) && (await channels.flush(grace));
        if (!drained) log.warn({ activeRequests: channels.stats().activeRequests }, 'grace period over; cutting in-flight requests');
        // The transport waits for queued bytes (END frames included) to leave before cutting connections.
        await transport.close();
        channels.close();
        await nat.close(AbortSignal.timeout(DEFAULT_PORT_MAPPING_TIMEOUT_MS));
        await auto?.stop();
        store?.close();
        await source.close();
        await status?.close();
        log.info('relay stopped');
      })();
      return closing;
    },
  };
  return node;
}
