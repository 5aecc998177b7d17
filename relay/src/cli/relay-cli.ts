import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { pino } from 'pino';
import {
  DEFAULT_CREDIT_LIMIT_BYTES,
  DEFAULT_LOG_LEVEL,
  DEFAULT_MAX_PENDING_PEERS,
  DEFAULT_MAX_PENDING_PEERS_PER_VIEWER,
  DEFAULT_ORIGIN_CHANNEL_BURST_BYTES,
  DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC,
  DEFAULT_ORIGIN_RELAY_BURST_BYTES,
  DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC,
  DEFAULT_UNBOUND_CREDIT_BYTES,
} from '../constants.js';
import { decodePublicKey } from '@relaycast/protocol';
import { loadKeypair, loadOrCreateKeypair } from '../keypair.js';
import { parseSegmentFault } from '../testing/faulty-segment-source.js';
import { formatRelayStatus, readRelayStatus } from './status-command.js';
import { ReceiptStore } from '../payments/receipt-store.js';
import { Redeemer } from '../payments/redeemer.js';
import { parseAcceptedPayers, parseCliArgs, receiptsDbPath, type RedeemConfig, type StatusConfig } from './relay-config.js';
import { startRelay, type RelayNode } from '../node/relay-node.js';
import type { CacheKeyQuery } from '../origin/origin-segment-source.js';

const USAGE = `Usage: relaycast-relay start [options]
       relaycast-relay status --status-port N [--rpc-url URL --accept-payer PAYER=URL] [--json]
       relaycast-relay redeem --keypair FILE --rpc-url URL --accept-payer PAYER=URL [--db FILE]

  --tracker URL                   tracker WebSocket URL, ws:// or wss:// (required)
  --allow-origin PREFIX           origin URL prefix the relay may fetch from; repeatable (required)
  --keypair FILE                  Solana CLI keypair file; created (mode 0600) if missing (required)
  --config FILE                   JSON file with the same settings in camelCase
                                  (tracker, allowOrigin [array], keypair, region, capacity,
                                  pricePerGib, cacheMaxBytes, bindAddress, rtcPort, statusPort,
                                  maxUploadBytesPerSec, logLevel, acceptPayer [array], rpcUrl, db,
                                  creditLimitBytes, redeemThreshold, redeemIntervalMs, logFormat,
                                  unboundCreditBytes, trustedTracker [array],
                                  cacheKeyQuery, originBytesPerSec, originBurstBytes,
                                  channelOriginBytesPerSec, channelOriginBurstBytes,
                                  allowPrivateCandidates [boolean], maxPendingPeers,
                                  maxPendingPeersPerViewer)
                                  Precedence: flags > RELAYCAST_<NAME> environment variables
                                  (RELAYCAST_TRACKER, RELAYCAST_STATUS_PORT, lists comma-separated;
                                  RELAYCAST_CONFIG names the file) > the config file > defaults
  --region R                      region label advertised to the tracker ([a-z0-9-], <= 32)
  --capacity N                    concurrent viewers advertised (default 100)
  --price-per-gib N               advertised price, token base units per GiB (default 0)
  --cache-max-bytes N             segment cache size in bytes (default 268435456)
  --bind-address ADDR             IP address WebRTC binds to (127.0.0.1 on loopback; default all)
  --rtc-port N                    one UDP port for all viewers (default: ephemeral ports)
  --map-port                      map --rtc-port on the home router (UPnP IGD or NAT-PMP), renew
                                  it, remove it on exit (default: off)
  --map-port-ttl-ms N             lease asked of the router, renewed at half (default 600000)
  --status-port N                 local status interface on 127.0.0.1: GET /status, GET /metrics
                                  (Prometheus), PUT /limits (0 = any free port)
  --max-upload-bytes-per-sec N    cap on the relay's total upload; 0 = unlimited (default 0)
  --log-level L                   fatal|error|warn|info|debug|trace|silent (default ${DEFAULT_LOG_LEVEL})
  --log-format F                  json (default: one object per line) or pretty (for terminals)
  --test-fault MODE[:N]           TEST ONLY: corrupt every N-th segment served (flip|truncate|extend)
  --accept-payer PAYER=URL        accept grants of this payer (base58) and redeem at its settlement
                                  service URL; repeatable (default: none, a free relay)
  --rpc-url URL                   Solana JSON-RPC URL for payouts (default: none, no automatic redemption)
  --db FILE                       receipt database (default: relay-receipts.sqlite beside the keypair)
  --credit-limit-bytes N          unreceipted bytes a paying session may owe (default ${DEFAULT_CREDIT_LIMIT_BYTES})
  --unbound-credit-bytes N        bytes a channel may take before it binds to a paid session with
                                  its session key's proof (default ${DEFAULT_UNBOUND_CREDIT_BYTES})
  --trusted-tracker KEY           tracker key (base58) whose assignments bind sessions, besides the
                                  key the relay's tracker announces; repeatable (default: none)
  --redeem-threshold N            redeem when owed at least N token base units (default 1000000)
  --redeem-interval-ms N          how often the threshold is checked (default 60000)
  --cache-key-query ignore|keep   query strings in the segment cache key: ignore (default: one entry
                                  per path, fetched once with the first requester's URL, so per-viewer
                                  tokens and ?cb=N neither refetch nor evict) or keep (one entry per
                                  full URL; UNSAFE: every new query pulls the segment again)
  --origin-bytes-per-sec N        relay-wide origin fetch rate, bytes/s; 0 = unlimited (default ${DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC})
  --origin-burst-bytes N          relay-wide origin burst (default ${DEFAULT_ORIGIN_RELAY_BURST_BYTES})
  --channel-origin-bytes-per-sec N
                                  origin bytes one channel's cache misses may cause per second;
                                  over it, misses get RC_ERR_ORIGIN_BUDGET; 0 = unlimited (default ${DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC})
  --channel-origin-burst-bytes N  one channel's origin burst (default ${DEFAULT_ORIGIN_CHANNEL_BURST_BYTES})
  --allow-private-candidates      accept viewers' ICE candidates in private ranges (10/8, 172.16/12,
                                  192.168/16, 100.64/10, fc00::/7), for office LANs (default: off;
                                  loopback only when --bind-address is loopback; link-local never)
  --max-pending-peers N           viewers negotiating a connection at once (default ${DEFAULT_MAX_PENDING_PEERS})
  --max-pending-peers-per-viewer N
                                  connections one viewer may negotiate at once; more offers get
                                  RC_ERR_OFFER_LIMIT (default ${DEFAULT_MAX_PENDING_PEERS_PER_VIEWER})
  -h, --help                      show this text

status: asks the running relay (started with --status-port) for viewers, cache, served bytes,
receipts and unpaid amounts, and with --rpc-url and --accept-payer its token balance.

redeem: redeems once from every --accept-payer and prints JSON (payouts, amount, balance);
exit 0 when every payer answered, 1 otherwise.

Logs are JSON lines on stdout (stderr for redeem). SIGINT/SIGTERM stop the relay gracefully.
`;

function fail(err: unknown): never {
  const text = isRelaycastError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`relaycast-relay: ${text}\n`);
  if (isRelaycastError(err, ErrorCode.CONFIG_INVALID)) process.stderr.write('Run "relaycast-relay --help" for usage.\n');
  process.exit(1);
}

async function main(): Promise<void> {
  // Signals during startup abort it; afterwards they close the relay. A second signal forces exit.
  const startup = new AbortController();
  let relay: RelayNode | undefined;
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    startup.abort();
    if (relay !== undefined) void relay.close().then(() => process.exit(0), fail);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let parsed;
  try {
    parsed = await parseCliArgs(process.argv.slice(2), startup.signal);
  } catch (err) {
    fail(err);
  }
  if (parsed.command === 'help') {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (parsed.command === 'redeem') return redeemOnce(parsed.config, startup.signal);
  if (parsed.command === 'status') return showStatus(parsed.config, startup.signal);
  const config = parsed.config;
  // Pretty output is for people at a terminal; collectors get one JSON object per line.
  const logger =
    config.logFormat === 'pretty'
      ? pino({ level: config.logLevel ?? DEFAULT_LOG_LEVEL }, pino.transport({ target: 'pino-pretty', options: { destination: 1, colorize: process.stdout.isTTY === true } }))
      : pino({ level: config.logLevel ?? DEFAULT_LOG_LEVEL });
  try {
    const { keypair, created } = await loadOrCreateKeypair(config.keypair, { logger, signal: startup.signal });
    if (created) logger.info({ relayId: keypair.relayId, path: config.keypair }, 'created a new relay keypair (keep this file safe: it is the relay wallet)');
    relay = await startRelay({
      trackerUrl: config.tracker,
      allowedOrigins: config.allowOrigin,
      keypair,
      region: config.region,
      capacity: config.capacity,
      pricePerGiB: config.pricePerGib,
      cacheMaxBytes: config.cacheMaxBytes,
      bindAddress: config.bindAddress,
      rtcPort: config.rtcPort,
      mapPort: config.mapPort,
      portMapping: config.mapPortTtlMs === undefined ? undefined : { ttlMs: config.mapPortTtlMs },
      statusPort: config.statusPort,
      maxUploadBytesPerSec: config.maxUploadBytesPerSec,
      testFault: config.testFault === undefined ? undefined : parseSegmentFault(config.testFault),
      acceptPayers: config.acceptPayer === undefined ? undefined : parseAcceptedPayers(config.acceptPayer),
      receiptsDbPath: receiptsDbPath(config),
      rpcUrl: config.rpcUrl,
      creditLimitBytes: config.creditLimitBytes,
      unboundCreditBytes: config.unboundCreditBytes,
      trustedTrackers: config.trustedTracker,
      redeemThreshold: config.redeemThreshold === undefined ? undefined : BigInt(config.redeemThreshold),
      redeemIntervalMs: config.redeemIntervalMs,
      origin: {
        cacheKeyQuery: config.cacheKeyQuery as CacheKeyQuery | undefined, // validated by resolveConfig
        originRelayBytesPerSec: config.originBytesPerSec,
        originRelayBurstBytes: config.originBurstBytes,
        originChannelBytesPerSec: config.channelOriginBytesPerSec,
        originChannelBurstBytes: config.channelOriginBurstBytes,
      },
      tracker: { maxPendingPeers: config.maxPendingPeers, maxPendingPeersPerViewer: config.maxPendingPeersPerViewer },
      allowPrivateCandidates: config.allowPrivateCandidates,
      signal: startup.signal,
      logger,
    });
    logger.info({ relayId: relay.relayId, tracker: config.tracker }, 'relay registered and serving');
    if (stopping) void relay.close().then(() => process.exit(0), fail);
  } catch (err) {
    if (stopping && isRelaycastError(err, ErrorCode.ABORTED)) process.exit(0);
    fail(err);
  }
}

/** `relaycast-relay status`: the running relay's figures (and balance), as text or JSON. */
async function showStatus(config: StatusConfig, signal: AbortSignal): Promise<void> {
  try {
    const report = await readRelayStatus({
      statusPort: config.statusPort,
      rpcUrl: config.rpcUrl,
      payers: config.acceptPayer === undefined ? undefined : parseAcceptedPayers(config.acceptPayer),
      signal,
    });
    process.stdout.write(config.json ? `${JSON.stringify(report)}\n` : formatRelayStatus(report));
    process.exit(0);
  } catch (err) {
    fail(err);
  }
}

/** `relaycast-relay redeem`: one redemption from every payer, the result as JSON on stdout. */
async function redeemOnce(config: RedeemConfig, signal: AbortSignal): Promise<void> {
  // stdout carries the JSON result; logs go to stderr.
  const logger = pino({ level: config.logLevel ?? 'warn' }, pino.destination(2));
  let store: ReceiptStore | undefined;
  try {
    const keypair = await loadKeypair(config.keypair, { logger, signal });
    const relayKey = decodePublicKey(keypair.relayId);
    store = ReceiptStore.open({ path: receiptsDbPath(config), relayId: keypair.relayId }, relayKey);
    const redeemer = new Redeemer({
      store,
      payers: parseAcceptedPayers(config.acceptPayer),
      rpcUrl: config.rpcUrl,
      signer: { relayId: keypair.relayId, publicKey: relayKey, sign: (m) => keypair.sign(m) },
      logger,
    });
    const result = await redeemer.redeem(signal);
    store.close();
    process.stdout.write(`${JSON.stringify({ relayId: keypair.relayId, ...result })}\n`);
    process.exit(result.payers.every((p) => p.error === undefined) ? 0 : 1);
  } catch (err) {
    store?.close();
    fail(err);
  }
}

await main();
