import { randomBytes, type KeyObject } from 'node:crypto';
import { ErrorCode, MAX_SHORTLIST_SIZE, RelaycastError, decodePublicKey, encodeBase58, isRelaycastError } from '@relaycast/protocol';
import { checkSecretKey, privateKeyFromSeed, rawPublicKey } from '@relaycast/protocol/node';
import {
  bool,
  configInvalid,
  defineSettings,
  durationMs,
  enumOf,
  float,
  int,
  listOf,
  text,
  valueType,
  type Setting,
  type SettingsCheck,
  type SettingsInput,
  type ValueType,
} from '@relaycast/cli-kit';
import type { Logger } from 'pino';
import {
  DEFAULT_MAX_PENDING_OFFERS_PER_RANGE,
  DEFAULT_MAX_PENDING_OFFERS_PER_VIEWER,
  DEFAULT_MAX_RELAYS_HANDED_PER_MINUTE,
  DEFAULT_MAX_JOINS_PER_RANGE_PER_MINUTE,
  DEFAULT_MAX_RELAYS_PER_RANGE,
  DEFAULT_MAX_REPORTERS_PER_RANGE,
  DEFAULT_MAX_TRACKED_RANGES,
  DEFAULT_MIN_REPORTERS,
  DEFAULT_PENDING_OFFER_WINDOW_MS,
  DEFAULT_TURN_REQUESTS_PER_CONNECTION_PER_MINUTE,
  DEFAULT_TURN_REQUESTS_PER_RANGE_PER_MINUTE,
  DEFAULT_CLOSE_GRACE_MS,
  DEFAULT_HARD_MAX_PAYLOAD_BYTES,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_FACTOR,
  DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_MAX_DROPPED_MESSAGES,
  DEFAULT_MAX_PENALTY_PER_VIEWER,
  DEFAULT_MAX_REPORTED_RELAYS,
  DEFAULT_MAX_REPORTERS_PER_RELAY,
  DEFAULT_MAX_SEND_BUFFER_BYTES,
  DEFAULT_MAX_SWARMS_PER_VIEWER,
  DEFAULT_MAX_VIEWERS_PER_SWARM,
  DEFAULT_MIN_HEALTH,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_RATE_LIMIT_BURST,
  DEFAULT_RATE_LIMIT_PER_SEC,
  DEFAULT_RELAY_RATE_LIMIT_BURST,
  DEFAULT_RELAY_RATE_LIMIT_PER_SEC,
  DEFAULT_REPORT_PENALTY,
  DEFAULT_REPORT_WINDOW_MS,
  DEFAULT_TRACKER_HOST,
  DEFAULT_TURN_CREDENTIAL_TTL_MS,
  DEFAULT_TRACKER_PORT,
  DEFAULT_REACHABILITY_MAX_CONCURRENT,
  DEFAULT_REACHABILITY_MAX_QUEUED,
  DEFAULT_REACHABILITY_MIN_RETEST_MS,
  DEFAULT_REACHABILITY_RETEST_MS,
  DEFAULT_REACHABILITY_TIMEOUT_MS,
} from './constants.js';
import type { ReachabilityOptions } from './reachability-tester.js';

export type { ReachabilityOptions };

/** Resource limits of one tracker. Every map, queue and buffer it keeps is bounded by one of these. */
export interface TrackerLimits {
  /** Open WebSocket connections in total; beyond it new ones get RC_ERR_TRACKER_FULL and are closed. Default: DEFAULT_MAX_CONNECTIONS (20,000). */
  maxConnections: number;
  /** Open WebSocket connections per remote IP; beyond it new ones get RC_ERR_TRACKER_FULL and are closed. Default: DEFAULT_MAX_CONNECTIONS_PER_IP (256). */
  maxConnectionsPerIp: number;
  /** WebSocket frames above this close that socket (ws `maxPayload`, close code 1009). Default: DEFAULT_HARD_MAX_PAYLOAD_BYTES (64 KiB). */
  hardMaxPayloadBytes: number;
  /** Sustained messages per second per connection (token bucket refill). Default: DEFAULT_RATE_LIMIT_PER_SEC (50). */
  rateLimitPerSec: number;
  /** Messages per connection accepted at once (token bucket size). Default: DEFAULT_RATE_LIMIT_BURST (100). */
  rateLimitBurst: number;
  /**
   * Sustained messages per second of a registered relay's connection: every viewer's answer and
   * ICE candidates go through it, so it needs far more than a viewer. Default: DEFAULT_RELAY_RATE_LIMIT_PER_SEC (1,000).
   */
  relayRateLimitPerSec: number;
  /** Burst of a registered relay's connection. Default: DEFAULT_RELAY_RATE_LIMIT_BURST (2,000). */
  relayRateLimitBurst: number;
  /** Rate-limited messages over a connection's lifetime after which it is closed (1008). Default: DEFAULT_MAX_DROPPED_MESSAGES (500). */
  maxDroppedMessages: number;
  /** Viewers per swarm; a join beyond it gets RC_ERR_SWARM_FULL. Default: DEFAULT_MAX_VIEWERS_PER_SWARM (10,000). */
  maxViewersPerSwarm: number;
  /** Swarms one viewer connection belongs to at once; joining another leaves the oldest. Default: DEFAULT_MAX_SWARMS_PER_VIEWER (8). */
  maxSwarmsPerViewer: number;
  /**
   * Relays remembered as handed to one viewer (its signaling allow-list; reports and `turn` are
   * accepted only for these), oldest forgotten first; at most MAX_SHORTLIST_SIZE (16).
   * Default: DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER (16).
   */
  maxAssignedRelaysPerViewer: number;
  /**
   * Relays newly handed to one viewer connection per minute (token bucket, this also the burst); a
   * join past it gets RC_ERR_RATE_LIMITED. Default: DEFAULT_MAX_RELAYS_HANDED_PER_MINUTE (32).
   */
  maxRelaysHandedPerMinute: number;
  /**
   * Joins (a `join` message or a pre-warm in the connection's URL) per address range (IPv4 /24,
   * IPv6 /48) per minute, all connections together (token bucket, this also the burst); one more
   * gets RC_ERR_RATE_LIMITED. Default: DEFAULT_MAX_JOINS_PER_RANGE_PER_MINUTE (1,200).
   */
  maxJoinsPerRangePerMinute: number;
  /**
   * Offers one viewer connection may have pending (forwarded within pendingOfferWindowMs); one more
   * gets RC_ERR_OFFER_LIMIT. Default: DEFAULT_MAX_PENDING_OFFERS_PER_VIEWER (8).
   */
  maxPendingOffersPerViewer: number;
  /**
   * Offers pending to one relay from one address range (IPv4 /24, IPv6 /48), all connections
   * together; one more gets RC_ERR_ADDRESS_RANGE_LIMIT. Default: DEFAULT_MAX_PENDING_OFFERS_PER_RANGE (32).
   */
  maxPendingOffersPerRange: number;
  /** How long a forwarded offer counts as pending (the relay's own connect timeout). Default: DEFAULT_PENDING_OFFER_WINDOW_MS (20 s). */
  pendingOfferWindowMs: number;
  /**
   * Registered relays per address range (IPv4 /24, IPv6 /48); one more registration gets
   * RC_ERR_ADDRESS_RANGE_LIMIT and is closed (4001). Default: DEFAULT_MAX_RELAYS_PER_RANGE (8).
   */
  maxRelaysPerRange: number;
  /** Address ranges the per-range rate tables remember, least recently seen forgotten first. Default: DEFAULT_MAX_TRACKED_RANGES (100,000). */
  maxTrackedRanges: number;
  /** Outgoing bytes queued on one socket before it is closed as a slow consumer (4004). Default: DEFAULT_MAX_SEND_BUFFER_BYTES (1 MiB). */
  maxSendBufferBytes: number;
}

/**
 * ICE servers: STUN for everyone in `hello`; TURN only on need, as the answer to a `turn` request
 * about a relay handed to that connection (see ice-servers.ts and docs/NAT.md).
 */
export interface IceOptions {
  /** `stun:host:port` URLs. Default: none. */
  stunUrls: string[];
  /** `turn:`/`turns:` URLs of a TURN server using the TURN REST shared-secret scheme (coturn `use-auth-secret`). Default: none. */
  turnUrls: string[];
  /** The secret shared with the TURN server; credentials are derived from it per peer. Required with turnUrls. Default: none. */
  turnSecret: string | undefined;
  /** Lifetime of a TURN credential, at most 1 h. Default: DEFAULT_TURN_CREDENTIAL_TTL_MS (10 min). */
  turnCredentialTtlMs: number;
  /** `turn` requests per connection per minute (token bucket, this also the burst). Default: DEFAULT_TURN_REQUESTS_PER_CONNECTION_PER_MINUTE (6). */
  turnRequestsPerConnectionPerMinute: number;
  /** `turn` requests per address range (IPv4 /24, IPv6 /48) per minute. Default: DEFAULT_TURN_REQUESTS_PER_RANGE_PER_MINUTE (60). */
  turnRequestsPerRangePerMinute: number;
}

/**
 * Who the tracker trusts and how it proves what it hands out (issue 14): its own signing key,
 * the payers whose grants bind viewer sessions, and which relays may register.
 */
export interface TrustOptions {
  /**
   * The tracker's ed25519 secret key, 64 bytes (seed ‖ public key, the Solana CLI keypair layout;
   * the CLI reads it from `--key FILE`). It signs assignments; relays and the settler trust its
   * public key. Default: a fresh ephemeral key (assignments stop verifying after a restart).
   */
  secretKey: Uint8Array | undefined;
  /** Base58 keys of the settlement services whose grants bind a viewer session. Default: none (every `session` refused). */
  trustedPayers: string[];
  /** `open`: any relay key may register; `allowlist`: only the keys in relayAllowlist. Default: 'open'. */
  relayAdmission: 'open' | 'allowlist';
  /** Base58 relay ids admitted under `allowlist` (the CLI reads `--relay-allowlist FILE`). Default: none. */
  relayAllowlist: string[];
}

/** TrustOptions after checking, with the key material ready to sign. */
export interface ResolvedTrust {
  privateKey: KeyObject;
  /** Raw 32-byte public key. */
  publicKey: Uint8Array;
  /** Base58 public key, as `registered.trackerKey` and `/status` show it. */
  trackerKey: string;
  /** True when no key was configured and a fresh one was made for this process. */
  ephemeral: boolean;
  trustedPayers: Uint8Array[];
  relayAdmission: 'open' | 'allowlist';
  relayAllowlist: ReadonlySet<string>;
}

/** How viewers' integrity reports lower a relay's health (see reputation.ts). */
export interface ReputationOptions {
  /** Health (0..1) taken off a relay per counted report. Default: DEFAULT_REPORT_PENALTY (0.5). */
  reportPenalty: number;
  /**
   * Most one viewer connection can take off one relay's health within the window: below
   * 1 - minHealth, so one viewer alone can never stop a relay being handed out.
   * Default: DEFAULT_MAX_PENALTY_PER_VIEWER (0.5).
   */
  maxPenaltyPerViewer: number;
  /** Reports older than this no longer count, so a fixed relay recovers. Default: DEFAULT_REPORT_WINDOW_MS (10 min). */
  windowMs: number;
  /** Relays with reports remembered at most (least recently reported forgotten first). Default: DEFAULT_MAX_REPORTED_RELAYS (10,000). */
  maxRelays: number;
  /** Reporting users remembered per relay. Default: DEFAULT_MAX_REPORTERS_PER_RELAY (64). */
  maxViewersPerRelay: number;
  /**
   * Distinct users (grant user tags) that must have reported a relay within the window before its
   * health drops at all; at least 1. Default: DEFAULT_MIN_REPORTERS (3).
   */
  minReporters: number;
  /** Reporting users per relay counted from one address range (IPv4 /24, IPv6 /48). Default: DEFAULT_MAX_REPORTERS_PER_RANGE (1). */
  maxReportersPerRange: number;
}

export interface TrackerOptions {
  /** Interface to bind. Default: DEFAULT_TRACKER_HOST ('127.0.0.1'). */
  host?: string | undefined;
  /** TCP port for HTTP and WebSocket; 0 picks a free one. Default: DEFAULT_TRACKER_PORT (0). */
  port?: number | undefined;
  /** Heartbeat interval told to relays in `hello`. Default: DEFAULT_HEARTBEAT_INTERVAL_MS (5000). */
  heartbeatIntervalMs?: number | undefined;
  /** A relay silent this long is evicted and its socket closed (4003). Default: DEFAULT_HEARTBEAT_TIMEOUT_FACTOR (3) × heartbeatIntervalMs. */
  heartbeatTimeoutMs?: number | undefined;
  /** WebSocket ping interval; a socket that has not answered the previous ping is terminated. Default: DEFAULT_PING_INTERVAL_MS (15,000). */
  pingIntervalMs?: number | undefined;
  /** Relays whose health (0..1) is below this are not handed out. Default: DEFAULT_MIN_HEALTH (0.2). */
  minHealth?: number | undefined;
  /** Wait for close handshakes at shutdown before terminating sockets. Default: DEFAULT_CLOSE_GRACE_MS (1000). */
  closeGraceMs?: number | undefined;
  /** Resource limits; each field missing takes its default (see TrackerLimits). Default: all defaults. */
  limits?: Partial<TrackerLimits> | undefined;
  /** Integrity-report scoring; each field missing takes its default (see ReputationOptions). Default: all defaults. */
  reputation?: Partial<ReputationOptions> | undefined;
  /** STUN/TURN servers for peers; each field missing takes its default (see IceOptions). Default: none. */
  ice?: Partial<IceOptions> | undefined;
  /**
   * Reachability tests of relays (a WebRTC probe from the tracker that withholds its own
   * candidates; see docs/NAT.md); each field missing takes its default (see ReachabilityOptions).
   * Default: enabled.
   */
  reachability?: Partial<ReachabilityOptions> | undefined;
  /** Tracker key, trusted payers, relay admission; each field missing takes its default (see TrustOptions). */
  trust?: Partial<TrustOptions> | undefined;
  /**
   * Bearer token that shows relays' addresses in `GET /status` (`Authorization: Bearer <token>`),
   * at least 16 characters. Without it (or without the header) addresses are redacted for everyone.
   * Default: none.
   */
  statusToken?: string | undefined;
  /** Parent logger; the tracker logs through `logger.child({ component: 'tracker' })`. Default: a silent logger. */
  logger?: Logger | undefined;
}

export interface ResolvedTrackerOptions {
  host: string;
  port: number;
  heartbeatIntervalMs: number;
  heartbeatTimeoutMs: number;
  pingIntervalMs: number;
  minHealth: number;
  closeGraceMs: number;
  limits: TrackerLimits;
  reputation: ReputationOptions;
  ice: IceOptions;
  reachability: ReachabilityOptions;
  trust: ResolvedTrust;
  statusToken: string | undefined;
}

function invalid(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.CONFIG_INVALID, message);
}

/** Prefix of the tracker bin's environment variables: RELAYCAST_TRACKER_PORT for --port. */
export const TRACKER_ENV_PREFIX = 'RELAYCAST_TRACKER_';
const TABLE_OPTIONS = { envPrefix: TRACKER_ENV_PREFIX } as const;
const POSITIVE = { min: 1 } as const;

// The settings tables below are the one declaration of every tracker setting: its option key, the
// bin's flag and environment variable, type, bounds, default and help. resolveTrackerOptions checks a
// startTracker() options object against them, and the bin's parser, USAGE and the README's flags
// are made from them (cli.ts). The interfaces above are the same fields as types for callers.

/** startTracker's top-level settings. */
export const TRACKER_SETTINGS = defineSettings(
  {
    port: { type: int({ max: 65_535 }), flag: 'port', default: DEFAULT_TRACKER_PORT, help: 'TCP port of HTTP and WebSocket; 0 = any free port' },
    host: { type: text({ metavar: 'ADDR' }), flag: 'host', default: DEFAULT_TRACKER_HOST, help: 'interface to bind' },
    // hello.heartbeatIntervalMs must stay within what clients decode (at most one hour).
    heartbeatIntervalMs: {
      type: durationMs({ min: 1, max: 3_600_000 }),
      flag: 'heartbeat-interval-ms',
      default: DEFAULT_HEARTBEAT_INTERVAL_MS,
      help: 'heartbeat interval told to relays',
    },
    heartbeatTimeoutMs: {
      type: durationMs(POSITIVE),
      flag: 'heartbeat-timeout-ms',
      defaultText: `${DEFAULT_HEARTBEAT_TIMEOUT_FACTOR} × --heartbeat-interval-ms`,
      help: 'relays silent this long are evicted and their socket closed (4003)',
    },
    pingIntervalMs: {
      type: durationMs(POSITIVE),
      flag: 'ping-interval-ms',
      default: DEFAULT_PING_INTERVAL_MS,
      help: 'WebSocket ping interval; a socket that has not answered the previous ping is cut',
    },
    minHealth: {
      type: float({ min: 0, max: 1 }),
      flag: 'min-health',
      default: DEFAULT_MIN_HEALTH,
      help: 'relays whose health is below this are not handed out',
    },
    closeGraceMs: {
      type: durationMs(),
      flag: 'close-grace-ms',
      default: DEFAULT_CLOSE_GRACE_MS,
      help: 'wait for close handshakes at shutdown before cutting sockets',
    },
    statusToken: {
      type: text({ pattern: /^\S{16,256}$/, expected: '16-256 characters without spaces', secret: true, metavar: 'TOKEN' }),
      flag: 'status-token',
      env: 'RELAYCAST_STATUS_TOKEN',
      help: "shows relays' addresses in /status to `Authorization: Bearer TOKEN` (prefer the environment: flags show in `ps`); without it /status never shows them",
    },
  },
  TABLE_OPTIONS,
);

/** TrackerLimits: every map, queue and buffer of a tracker is bounded by one of these. */
export const LIMIT_SETTINGS = defineSettings(
  {
    maxConnections: {
      type: int(POSITIVE),
      flag: 'max-connections',
      default: DEFAULT_MAX_CONNECTIONS,
      help: 'open WebSocket connections in all; more get RC_ERR_TRACKER_FULL',
    },
    maxConnectionsPerIp: {
      type: int(POSITIVE),
      flag: 'max-connections-per-ip',
      default: DEFAULT_MAX_CONNECTIONS_PER_IP,
      help: 'open WebSocket connections per remote IP; more get RC_ERR_TRACKER_FULL',
    },
    hardMaxPayloadBytes: {
      type: int(POSITIVE),
      flag: 'hard-max-payload-bytes',
      default: DEFAULT_HARD_MAX_PAYLOAD_BYTES,
      unit: 'bytes',
      help: 'a WebSocket frame above this closes its socket (1009)',
    },
    rateLimitPerSec: {
      type: int(POSITIVE),
      flag: 'rate-limit-per-sec',
      default: DEFAULT_RATE_LIMIT_PER_SEC,
      help: 'sustained messages per second per connection',
    },
    rateLimitBurst: { type: int(POSITIVE), flag: 'rate-limit-burst', default: DEFAULT_RATE_LIMIT_BURST, help: 'messages per connection accepted at once' },
    relayRateLimitPerSec: {
      type: int(POSITIVE),
      flag: 'relay-rate-limit-per-sec',
      default: DEFAULT_RELAY_RATE_LIMIT_PER_SEC,
      help: "sustained messages per second of a registered relay's connection (every viewer's answer and candidates go through it)",
    },
    relayRateLimitBurst: {
      type: int(POSITIVE),
      flag: 'relay-rate-limit-burst',
      default: DEFAULT_RELAY_RATE_LIMIT_BURST,
      help: "burst of a registered relay's connection",
    },
    maxDroppedMessages: {
      type: int(POSITIVE),
      flag: 'max-dropped-messages',
      default: DEFAULT_MAX_DROPPED_MESSAGES,
      help: "rate-limited messages over a connection's lifetime after which it is closed (1008)",
    },
    maxViewersPerSwarm: {
      type: int(POSITIVE),
      flag: 'max-viewers-per-swarm',
      default: DEFAULT_MAX_VIEWERS_PER_SWARM,
      help: 'viewers per swarm; more get RC_ERR_SWARM_FULL',
    },
    maxSwarmsPerViewer: {
      type: int(POSITIVE),
      flag: 'max-swarms-per-viewer',
      default: DEFAULT_MAX_SWARMS_PER_VIEWER,
      help: 'swarms one viewer connection belongs to at once; joining another leaves the oldest',
    },
    maxAssignedRelaysPerViewer: {
      type: int({ min: 1, max: MAX_SHORTLIST_SIZE }),
      flag: 'max-assigned-relays-per-viewer',
      default: DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER,
      help: 'relays remembered as handed to one viewer (its signaling allow-list), oldest forgotten first',
    },
    maxRelaysHandedPerMinute: {
      type: int({ min: 1, max: 10_000 }),
      flag: 'max-relays-handed-per-minute',
      default: DEFAULT_MAX_RELAYS_HANDED_PER_MINUTE,
      help: 'relays newly handed to one viewer connection per minute; a join past it gets RC_ERR_RATE_LIMITED',
    },
    maxJoinsPerRangePerMinute: {
      type: int({ min: 1, max: 1_000_000 }),
      flag: 'max-joins-per-range-per-minute',
      default: DEFAULT_MAX_JOINS_PER_RANGE_PER_MINUTE,
      help: 'joins (or pre-warms in the connection URL) per IPv4 /24 or IPv6 /48 per minute; one more gets RC_ERR_RATE_LIMITED',
    },
    maxPendingOffersPerViewer: {
      type: int({ min: 1, max: 1_000 }),
      flag: 'max-pending-offers-per-viewer',
      default: DEFAULT_MAX_PENDING_OFFERS_PER_VIEWER,
      help: 'offers one viewer connection may have pending; one more gets RC_ERR_OFFER_LIMIT',
    },
    maxPendingOffersPerRange: {
      type: int({ min: 1, max: 100_000 }),
      flag: 'max-pending-offers-per-range',
      default: DEFAULT_MAX_PENDING_OFFERS_PER_RANGE,
      help: 'offers pending to one relay from one IPv4 /24 or IPv6 /48; one more gets RC_ERR_ADDRESS_RANGE_LIMIT',
    },
    pendingOfferWindowMs: {
      type: durationMs({ min: 1, max: 600_000 }),
      flag: 'pending-offer-window-ms',
      default: DEFAULT_PENDING_OFFER_WINDOW_MS,
      help: "how long a forwarded offer counts as pending: the relays' connect timeout",
    },
    maxRelaysPerRange: {
      type: int({ min: 1, max: 1_000_000 }),
      flag: 'max-relays-per-range',
      default: DEFAULT_MAX_RELAYS_PER_RANGE,
      help: 'registered relays per IPv4 /24 or IPv6 /48; one more is refused (4001)',
    },
    maxTrackedRanges: {
      type: int({ min: 1, max: 10_000_000 }),
      flag: 'max-tracked-ranges',
      default: DEFAULT_MAX_TRACKED_RANGES,
      help: 'address ranges the per-range tables remember, least recently seen forgotten first',
    },
    maxSendBufferBytes: {
      type: int(POSITIVE),
      flag: 'max-send-buffer-bytes',
      default: DEFAULT_MAX_SEND_BUFFER_BYTES,
      unit: 'bytes',
      help: 'outgoing bytes queued on one socket before it is closed as a slow consumer (4004)',
    },
  },
  { ...TABLE_OPTIONS },
);

/** A fraction in (0, 1]. */
const fraction = valueType<number>({
  metavar: 'X',
  accepts: '(0, 1]',
  parse(raw, name) {
    const n = float({ min: 0, max: 1 }).parse(raw, name);
    if (n === 0) throw configInvalid(`${name} must be in (0, 1] (got 0)`, { setting: name });
    return n;
  },
});

/** ReputationOptions: how viewers' integrity reports lower a relay's health (reputation.ts). */
export const REPUTATION_SETTINGS = defineSettings(
  {
    reportPenalty: { type: fraction, flag: 'report-penalty', default: DEFAULT_REPORT_PENALTY, help: 'health taken off a relay per counted report' },
    maxPenaltyPerViewer: {
      type: fraction,
      flag: 'max-penalty-per-viewer',
      default: DEFAULT_MAX_PENALTY_PER_VIEWER,
      help: 'most one viewer connection takes off one relay within the window',
    },
    windowMs: { type: durationMs(POSITIVE), flag: 'report-window-ms', default: DEFAULT_REPORT_WINDOW_MS, help: 'reports older than this no longer count' },
    maxRelays: {
      type: int(POSITIVE),
      flag: 'max-reported-relays',
      default: DEFAULT_MAX_REPORTED_RELAYS,
      help: 'relays with reports remembered, least recently reported forgotten first',
    },
    maxViewersPerRelay: {
      type: int(POSITIVE),
      flag: 'max-reporters-per-relay',
      default: DEFAULT_MAX_REPORTERS_PER_RELAY,
      help: 'reporting users remembered per relay',
    },
    minReporters: {
      type: int({ min: 1, max: 1_000 }),
      flag: 'min-reporters',
      default: DEFAULT_MIN_REPORTERS,
      help: 'distinct users who must report a relay before its health drops',
    },
    maxReportersPerRange: {
      type: int({ min: 1, max: 1_000 }),
      flag: 'max-reporters-per-range',
      default: DEFAULT_MAX_REPORTERS_PER_RANGE,
      help: 'reporting users per relay counted per IPv4 /24 or IPv6 /48',
    },
  },
  {
    ...TABLE_OPTIONS,
    checks: [
      (v, name) => {
        const min = v.minReporters ?? DEFAULT_MIN_REPORTERS;
        const max = v.maxViewersPerRelay ?? DEFAULT_MAX_REPORTERS_PER_RELAY;
        if (min > max) throw configInvalid(`${name('minReporters')} (${min}) must not exceed ${name('maxViewersPerRelay')} (${max})`);
      },
    ],
  },
);

/** An ICE server URL of the given schemes (`stun:host:port`), as handed to browsers. */
function iceUrl(scheme: 'stun' | 'turn'): ValueType<string> {
  return text({ metavar: 'URL', pattern: new RegExp(`^${scheme}s?:\\S{1,250}$`), expected: `a ${scheme}: or ${scheme}s: URL` });
}
/** Browsers slow down ICE gathering past a few servers: stun and turn together. */
const MAX_ICE_URLS = 4;

/** STUN and TURN URLs together are bounded; named in the caller's style (flags for the bin, keys for startTracker). */
export const ICE_URL_COUNT: SettingsCheck<{ stunUrls: Setting<string[]>; turnUrls: Setting<string[]> }> = (v, name) => {
  if ((v.stunUrls?.length ?? 0) + (v.turnUrls?.length ?? 0) > MAX_ICE_URLS)
    throw configInvalid(`at most ${MAX_ICE_URLS} ICE server URLs in all (${name('stunUrls')} and ${name('turnUrls')})`);
};

/** IceOptions: STUN for everyone in hello, TURN only on need (ice-servers.ts, docs/NAT.md). */
export const ICE_SETTINGS = defineSettings(
  {
    stunUrls: {
      type: listOf(iceUrl('stun')),
      flag: 'stun',
      default: [] as string[],
      help: 'STUN server handed to every peer in hello, e.g. stun:stun.example.com:3478',
    },
    turnUrls: {
      type: listOf(iceUrl('turn')),
      flag: 'turn',
      default: [] as string[],
      help: "TURN server, handed out only on a viewer's `turn` request for a relay it was given; needs the shared secret (coturn use-auth-secret; harden coturn as docs/NAT.md says)",
    },
    // From the environment only: flags show up in `ps`. The bin leaves it out of its flags.
    turnSecret: {
      type: valueType<string>({
        metavar: 'SECRET',
        // Not trimmed, unlike text(): the TURN server derives credentials from every byte of it.
        parse(raw, name) {
          if (typeof raw !== 'string' || raw.length < 16) throw configInvalid(`${name} must be at least 16 characters`, { setting: name });
          return raw;
        },
      }),
      flag: 'turn-secret',
      env: 'RELAYCAST_TURN_SECRET',
      help: 'the secret shared with the TURN server',
    },
    turnCredentialTtlMs: {
      type: durationMs({ min: 60_000, max: 3_600_000 }),
      flag: 'turn-credential-ttl-ms',
      default: DEFAULT_TURN_CREDENTIAL_TTL_MS,
      help: 'TURN credential lifetime',
    },
    turnRequestsPerConnectionPerMinute: {
      type: int({ min: 1, max: 1_000 }),
      flag: 'turn-requests-per-minute',
      default: DEFAULT_TURN_REQUESTS_PER_CONNECTION_PER_MINUTE,
      help: 'TURN requests per viewer connection per minute',
    },
    turnRequestsPerRangePerMinute: {
      type: int({ min: 1, max: 100_000 }),
      flag: 'turn-requests-per-range-per-minute',
      default: DEFAULT_TURN_REQUESTS_PER_RANGE_PER_MINUTE,
      help: 'TURN requests per IPv4 /24 or IPv6 /48 per minute',
    },
  },
  {
    ...TABLE_OPTIONS,
    checks: [
      ICE_URL_COUNT,
      (v, name) => {
        if ((v.turnUrls?.length ?? 0) > 0 && v.turnSecret === undefined)
          throw configInvalid(`${name('turnUrls')} need ${name('turnSecret')} (at least 16 characters), shared with the TURN server`);
      },
    ],
  },
);

/** ReachabilityOptions: the tracker's WebRTC probe of registering relays (docs/NAT.md). */
export const REACHABILITY_SETTINGS = defineSettings(
  {
    enabled: { type: bool(), flag: 'reachability-test', default: true, help: 'probe every registering relay (off: they all rank as untested)' },
    timeoutMs: {
      type: durationMs({ min: 100, max: 120_000 }),
      flag: 'reachability-timeout-ms',
      default: DEFAULT_REACHABILITY_TIMEOUT_MS,
      help: "how long a relay's reachability probe may take",
    },
    maxConcurrent: {
      type: int({ min: 1, max: 64 }),
      flag: 'reachability-max-concurrent',
      default: DEFAULT_REACHABILITY_MAX_CONCURRENT,
      help: 'probes at once',
    },
    maxQueued: {
      type: int(POSITIVE),
      flag: 'reachability-max-queued',
      default: DEFAULT_REACHABILITY_MAX_QUEUED,
      help: 'probes waiting for a slot; more are retried at a later heartbeat',
    },
    retestMs: {
      type: durationMs(POSITIVE),
      flag: 'reachability-retest-ms',
      default: DEFAULT_REACHABILITY_RETEST_MS,
      help: 'age after which a relay is tested again',
    },
    minRetestMs: {
      type: durationMs(POSITIVE),
      flag: 'reachability-min-retest-ms',
      default: DEFAULT_REACHABILITY_MIN_RETEST_MS,
      help: 'least time between two tests of one relay whose port mapping changes',
    },
  },
  TABLE_OPTIONS,
);

/** A base58 ed25519 public key (a payer's, a relay's). */
const publicKeyText = text({ metavar: 'KEY', check: (s) => isPublicKey(s), expected: 'a base58 ed25519 public key' });

function isPublicKey(s: string): boolean {
  try {
    decodePublicKey(s);
    return true;
  } catch (err) {
    if (isRelaycastError(err)) return false;
    throw err;
  }
}

/**
 * The settings of TrustOptions that are values; the signing key and the relay allowlist are key
 * material and id lists, checked in resolveTrust (the bin reads them from files).
 */
export const TRUST_SETTINGS = defineSettings(
  {
    trustedPayers: {
      type: listOf(publicKeyText, { max: 64 }),
      flag: 'trusted-payer',
      default: [] as string[],
      help: 'base58 key of a settler whose grants bind viewer sessions (none: every session is refused, so no integrity report counts)',
    },
    relayAdmission: {
      type: enumOf(['open', 'allowlist'] as const),
      flag: 'relay-admission',
      default: 'open',
      help: 'open: any relay key registers; allowlist: only the listed ones',
    },
  },
  TABLE_OPTIONS,
);

// The interfaces above and these tables describe the same fields: one added to either alone fails
// to compile here.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Fields<T> = { [K in keyof T]?: T[K] | undefined };
const TABLES_MATCH_INTERFACES: [
  Same<Fields<TrackerLimits>, SettingsInput<typeof LIMIT_SETTINGS.spec>>,
  Same<Fields<ReputationOptions>, SettingsInput<typeof REPUTATION_SETTINGS.spec>>,
  Same<Fields<IceOptions>, SettingsInput<typeof ICE_SETTINGS.spec>>,
  Same<Fields<ReachabilityOptions>, SettingsInput<typeof REACHABILITY_SETTINGS.spec>>,
  Same<Fields<Pick<TrustOptions, 'trustedPayers' | 'relayAdmission'>>, SettingsInput<typeof TRUST_SETTINGS.spec>>,
  Same<Fields<Omit<TrackerOptions, 'limits' | 'reputation' | 'ice' | 'reachability' | 'trust' | 'logger'>>, SettingsInput<typeof TRACKER_SETTINGS.spec>>,
] = [true, true, true, true, true, true];
void TABLES_MATCH_INTERFACES;

/** Its settings, or a configuration error naming the option as `group.key`. */
function resolveGroup<T>(group: string, resolve: () => T): T {
  try {
    return resolve();
  } catch (err) {
    if (isRelaycastError(err, ErrorCode.CONFIG_INVALID))
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${group}.${err.message}`, { details: err.details });
    throw err;
  }
}

/** Applies defaults and checks ranges; throws RC_ERR_CONFIG_INVALID naming the bad option. */
export function resolveTrackerOptions(options: TrackerOptions): ResolvedTrackerOptions {
  const top = TRACKER_SETTINGS.resolve(options);
  const limits: TrackerLimits = resolveGroup('limits', () => LIMIT_SETTINGS.resolve(options.limits ?? {}));
  const reputation: ReputationOptions = resolveGroup('reputation', () => REPUTATION_SETTINGS.resolve(options.reputation ?? {}));
  const iceValues = resolveGroup('ice', () => ICE_SETTINGS.resolve(options.ice ?? {}));
  const ice: IceOptions = { ...iceValues, turnSecret: iceValues.turnSecret };
  const reachability: ReachabilityOptions = resolveGroup('reachability', () => REACHABILITY_SETTINGS.resolve(options.reachability ?? {}));
  const heartbeatTimeoutMs = top.heartbeatTimeoutMs ?? top.heartbeatIntervalMs * DEFAULT_HEARTBEAT_TIMEOUT_FACTOR;
  return {
    ...top,
    statusToken: top.statusToken,
    heartbeatTimeoutMs,
    limits,
    reputation,
    ice,
    reachability,
    trust: resolveTrust(options.trust ?? {}),
  };
}

/** Checks the trust settings and makes the signing key (a fresh one when none is configured). */
function resolveTrust(t: Partial<TrustOptions>): ResolvedTrust {
  const { trustedPayers, relayAdmission: admission } = resolveGroup('trust', () => TRUST_SETTINGS.resolve(t));
  let secret = t.secretKey;
  const ephemeral = secret === undefined;
  if (secret === undefined) {
    const seed = randomBytes(32);
    secret = new Uint8Array(64);
    secret.set(seed, 0);
    secret.set(rawPublicKey(privateKeyFromSeed(seed)), 32);
    seed.fill(0);
  }
  try {
    checkSecretKey(secret);
  } catch (err) {
    throw invalid(`trust.secretKey: ${(err as Error).message}`);
  }
  const privateKey = privateKeyFromSeed(secret.subarray(0, 32));
  const publicKey = secret.slice(32, 64);
  if (ephemeral) secret.fill(0);
  const allowlist = t.relayAllowlist ?? [];
  if (admission === 'open' && allowlist.length > 0) throw invalid("trust.relayAllowlist needs trust.relayAdmission 'allowlist'");
  if (allowlist.length > 1_000_000) throw invalid('at most 1,000,000 relays in trust.relayAllowlist');
  for (const id of allowlist) if (!isPublicKey(id)) throw invalid(`trust.relayAllowlist: "${id.slice(0, 60)}" is not a base58 ed25519 public key`);
  return {
    privateKey,
    publicKey,
    trackerKey: encodeBase58(publicKey),
    ephemeral,
    trustedPayers: trustedPayers.map((p) => decodePublicKey(p)),
    relayAdmission: admission,
    relayAllowlist: new Set(allowlist),
  };
}
