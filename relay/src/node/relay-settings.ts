import { isIP } from 'node:net';
import {
  bool,
  configInvalid,
  defineSettings,
  durationMs,
  enumOf,
  int,
  listOf,
  text,
  toList,
  u64,
  url,
  valueType,
  type SettingsOptions,
  type ValueType,
} from '@relaycast/cli-kit';
import { decodePublicKey } from '@relaycast/protocol';
import {
  DEFAULT_CACHE_KEY_QUERY,
  DEFAULT_CACHE_MAX_BYTES,
  DEFAULT_CAPACITY,
  DEFAULT_CREDIT_LIMIT_BYTES,
  DEFAULT_MAX_PEERS,
  DEFAULT_MAX_PENDING_PEERS,
  DEFAULT_MAX_PENDING_PEERS_PER_VIEWER,
  DEFAULT_MAX_UPLOAD_BYTES_PER_SEC,
  DEFAULT_ORIGIN_CHANNEL_BURST_BYTES,
  DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC,
  DEFAULT_ORIGIN_RELAY_BURST_BYTES,
  DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC,
  DEFAULT_PORT_MAPPING_TTL_MS,
  DEFAULT_PRICE_PER_GIB,
  DEFAULT_RECEIPTS_DB_FILE,
  DEFAULT_REDEEM_INTERVAL_MS,
  DEFAULT_REDEEM_THRESHOLD,
  DEFAULT_REGION,
  DEFAULT_UNBOUND_CREDIT_BYTES,
  MAX_REPORTED_LOAD,
} from '../constants.js';
import { CACHE_KEY_QUERY_MODES } from '../origin/origin-segment-source.js';

/** A base58 ed25519 public key (a tracker's, a payer's). */
const base58Key: ValueType<string> = text({
  metavar: 'KEY',
  expected: 'a base58 public key',
  check: (s) => {
    try {
      decodePublicKey(s);
      return true;
    } catch {
      return false;
    }
  },
});

const settlerUrl = url({ protocols: ['http:', 'https:'] });

/**
 * `--accept-payer PAYER=SETTLER_URL` (repeatable): payer id → its settlement service. A config
 * file gives the same strings in an array; `startRelay` takes the map.
 */
const acceptedPayers: ValueType<ReadonlyMap<string, string>> = valueType({
  multiple: true,
  metavar: 'PAYER=URL',
  parse(raw, name) {
    const pairs = raw instanceof Map ? [...(raw as Map<unknown, unknown>)].map(([p, u]) => `${String(p)}=${String(u)}`) : toList(raw, name);
    const out = new Map<string, string>();
    for (const v of pairs) {
      const s = String(v);
      const at = s.indexOf('=');
      if (at < 0) throw configInvalid(`${name} "${s}": expected PAYER=SETTLER_URL`, { setting: name });
      const payer = base58Key.parse(s.slice(0, at), `${name} "${s}": the payer`);
      const u = settlerUrl.parse(s.slice(at + 1), `${name} "${s}": the settler URL`);
      if (out.has(payer)) throw configInvalid(`${name}: payer ${payer} is given twice`, { setting: name });
      out.set(payer, u);
    }
    return out;
  },
  format: (m) => (m.size === 0 ? 'none' : [...m].map(([p, u]) => `${p}=${u}`).join(', ')),
});

/**
 * Every setting of a relay, declared once: its flag, environment variable (RELAYCAST_ + the flag),
 * config-file key (the key below, also `startRelay`'s option name), type and bounds, default and
 * help. `relaycast-relay start` reads them (cli/relay-config.ts adds the CLI's own: keypair file,
 * logs); `startRelay` checks its options and takes its defaults from here. A new setting is one
 * entry here plus its use in relay-node.ts.
 */
export const RELAY_SETTINGS = defineSettings(
  {
    trackerUrl: { type: url({ protocols: ['ws:', 'wss:'] }), flag: 'tracker', required: true, help: 'tracker WebSocket URL' },
    allowedOrigins: {
      type: listOf(url({ protocols: ['http:', 'https:'], metavar: 'PREFIX' }), { min: 1 }),
      flag: 'allow-origin',
      required: true,
      help: 'origin URL prefix the relay may fetch from (a relay only fetches from origins it is told to)',
    },
    region: {
      type: text({ pattern: /^[a-z0-9-]{0,32}$/, expected: 'at most 32 characters of [a-z0-9-]', allowEmpty: true, metavar: 'R' }),
      flag: 'region',
      default: DEFAULT_REGION,
      defaultText: 'none',
      group: 'Advertised to the tracker',
      help: 'region label',
    },
    capacity: {
      type: int({ max: MAX_REPORTED_LOAD }),
      flag: 'capacity',
      default: DEFAULT_CAPACITY,
      group: 'Advertised to the tracker',
      help: 'concurrent viewers',
    },
    pricePerGiB: {
      type: u64(),
      flag: 'price-per-gib',
      default: DEFAULT_PRICE_PER_GIB,
      group: 'Advertised to the tracker',
      help: 'price in token base units per GiB',
    },
    bindAddress: {
      type: text({ metavar: 'ADDR', expected: 'an IP address', check: (s) => isIP(s) !== 0 }),
      flag: 'bind-address',
      defaultText: 'all interfaces',
      group: 'Network',
      help: 'IP address WebRTC binds to (127.0.0.1 on loopback)',
    },
    rtcPort: { type: int({ min: 1, max: 65_535 }), flag: 'rtc-port', defaultText: 'ephemeral ports', group: 'Network', help: 'one UDP port for all viewers' },
    mapPort: {
      type: bool(),
      flag: 'map-port',
      default: false,
      group: 'Network',
      help: 'map --rtc-port on the home router (UPnP IGD or NAT-PMP), renew it, remove it on exit',
    },
    mapPortTtlMs: {
      type: durationMs({ min: 2_000, max: 7 * 86_400_000 }),
      flag: 'map-port-ttl-ms',
      default: DEFAULT_PORT_MAPPING_TTL_MS,
      group: 'Network',
      help: 'lease asked of the router, renewed at half',
    },
    allowPrivateCandidates: {
      type: bool(),
      flag: 'allow-private-candidates',
      default: false,
      group: 'Network',
      help:
        "accept viewers' ICE candidates in private ranges (10/8, 172.16/12, 192.168/16, 100.64/10, fc00::/7), for office LANs " +
        '(loopback only when --bind-address is loopback; link-local never)',
    },
    maxPeers: {
      type: int({ min: 1, max: 100_000 }),
      flag: 'max-peers',
      default: DEFAULT_MAX_PEERS,
      group: 'Network',
      help: 'WebRTC peers open at once, connected or negotiating; more offers get RC_ERR_RELAY_OVERLOADED (raise it with --capacity)',
    },
    maxPendingPeers: {
      type: int({ min: 1, max: 100_000 }),
      flag: 'max-pending-peers',
      default: DEFAULT_MAX_PENDING_PEERS,
      group: 'Network',
      help: 'viewers negotiating a connection at once',
    },
    maxPendingPeersPerViewer: {
      type: int({ min: 1 }),
      flag: 'max-pending-peers-per-viewer',
      default: DEFAULT_MAX_PENDING_PEERS_PER_VIEWER,
      group: 'Network',
      help: 'connections one viewer may negotiate at once; more offers get RC_ERR_OFFER_LIMIT',
    },
    statusPort: {
      type: int({ max: 65_535 }),
      flag: 'status-port',
      defaultText: 'none',
      group: 'Operations',
      help: 'local status interface on 127.0.0.1: GET /status, GET /metrics (Prometheus), PUT /limits (0 = any free port)',
    },
    maxUploadBytesPerSec: {
      type: int(),
      flag: 'max-upload-bytes-per-sec',
      unit: 'bytes/s',
      default: DEFAULT_MAX_UPLOAD_BYTES_PER_SEC,
      group: 'Operations',
      help: "cap on the relay's total upload; 0 = unlimited",
    },
    cacheMaxBytes: { type: int(), flag: 'cache-max-bytes', unit: 'bytes', default: DEFAULT_CACHE_MAX_BYTES, group: 'Origin', help: 'segment cache size' },
    cacheKeyQuery: {
      type: enumOf(CACHE_KEY_QUERY_MODES),
      flag: 'cache-key-query',
      default: DEFAULT_CACHE_KEY_QUERY,
      group: 'Origin',
      help:
        "query strings in the segment cache key: ignore (one entry per path, fetched once with the first requester's URL, " +
        'so per-viewer tokens and ?cb=N neither refetch nor evict) or keep (one entry per full URL; UNSAFE: every new query pulls the segment again)',
    },
    originBytesPerSec: {
      type: int(),
      flag: 'origin-bytes-per-sec',
      unit: 'bytes/s',
      default: DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC,
      group: 'Origin',
      help: 'relay-wide origin fetch rate; 0 = unlimited',
    },
    originBurstBytes: {
      type: int(),
      flag: 'origin-burst-bytes',
      unit: 'bytes',
      default: DEFAULT_ORIGIN_RELAY_BURST_BYTES,
      group: 'Origin',
      help: 'relay-wide origin burst',
    },
    channelOriginBytesPerSec: {
      type: int(),
      flag: 'channel-origin-bytes-per-sec',
      unit: 'bytes/s',
      default: DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC,
      group: 'Origin',
      help: "origin bytes one channel's cache misses may cause per second; over it, misses get RC_ERR_ORIGIN_BUDGET; 0 = unlimited",
    },
    channelOriginBurstBytes: {
      type: int(),
      flag: 'channel-origin-burst-bytes',
      unit: 'bytes',
      default: DEFAULT_ORIGIN_CHANNEL_BURST_BYTES,
      group: 'Origin',
      help: "one channel's origin burst",
    },
    acceptPayers: {
      type: acceptedPayers,
      flag: 'accept-payer',
      defaultText: 'none, a free relay',
      group: 'Payments',
      help: 'accept grants of this payer (base58) and redeem at its settlement service URL',
    },
    rpcUrl: {
      type: url({ protocols: ['http:', 'https:'] }),
      flag: 'rpc-url',
      defaultText: 'none, no automatic redemption',
      group: 'Payments',
      help: 'Solana JSON-RPC URL for payouts',
    },
    receiptsDbPath: {
      type: text({ metavar: 'FILE' }),
      flag: 'db',
      defaultText: `${DEFAULT_RECEIPTS_DB_FILE} beside the keypair`,
      group: 'Payments',
      help: 'receipt database (SQLite)',
    },
    creditLimitBytes: {
      type: int({ min: 1 }),
      flag: 'credit-limit-bytes',
      unit: 'bytes',
      default: DEFAULT_CREDIT_LIMIT_BYTES,
      group: 'Payments',
      help: 'unreceipted bytes a paying session may owe before its requests are refused',
    },
    unboundCreditBytes: {
      type: int({ min: 1 }),
      flag: 'unbound-credit-bytes',
      unit: 'bytes',
      default: DEFAULT_UNBOUND_CREDIT_BYTES,
      group: 'Payments',
      help: "bytes a channel may take before it binds to a paid session with its session key's proof",
    },
    trustedTrackers: {
      type: listOf(base58Key),
      flag: 'trusted-tracker',
      defaultText: "none: only the key the relay's tracker announces",
      group: 'Payments',
      help: 'tracker key (base58) whose assignments bind sessions',
    },
    redeemThreshold: {
      type: u64(),
      flag: 'redeem-threshold',
      default: DEFAULT_REDEEM_THRESHOLD,
      group: 'Payments',
      help: 'redeem when owed at least this many token base units (all payers); needs --rpc-url',
    },
    redeemIntervalMs: {
      type: durationMs({ min: 100 }),
      flag: 'redeem-interval-ms',
      default: DEFAULT_REDEEM_INTERVAL_MS,
      group: 'Payments',
      help: 'how often the threshold is checked',
    },
  },
  {
    envPrefix: 'RELAYCAST_',
    groups: ['', 'Advertised to the tracker', 'Network', 'Origin', 'Payments', 'Operations'],
    checks: [
      (v, name) => {
        if (v.mapPort === true && v.rtcPort === undefined) throw configInvalid(`${name('mapPort')} needs ${name('rtcPort')} (the one UDP port to map)`);
        if (v.mapPortTtlMs !== undefined && v.mapPort !== true) throw configInvalid(`${name('mapPortTtlMs')} needs ${name('mapPort')}`);
        // A rate of 0 is unlimited and needs no burst; any other rate needs one.
        if (v.originBurstBytes === 0 && v.originBytesPerSec !== 0)
          throw configInvalid(`${name('originBurstBytes')} must be positive (or ${name('originBytesPerSec')} 0)`);
        if (v.channelOriginBurstBytes === 0 && v.channelOriginBytesPerSec !== 0) {
          throw configInvalid(`${name('channelOriginBurstBytes')} must be positive (or ${name('channelOriginBytesPerSec')} 0)`);
        }
      },
    ],
  },
);

/** The settings `startRelay` takes, typed from the table. */
export type RelaySettingsOptions = SettingsOptions<typeof RELAY_SETTINGS.spec>;
