import { randomBytes, type KeyObject } from 'node:crypto';
import { ErrorCode, MAX_SHORTLIST_SIZE, RelaycastError, decodePublicKey, encodeBase58, isRelaycastError } from '@relaycast/protocol';
import { checkSecretKey, privateKeyFromSeed, rawPublicKey } from '@relaycast/protocol/node';
import type { Logger } from 'pino';
import {
  DEFAULT_MAX_PENDING_OFFERS_PER_RANGE,
  DEFAULT_MAX_PENDING_OFFERS_PER_VIEWER,
  DEFAULT_MAX_RELAYS_HANDED_PER_MINUTE,
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

function positiveInt(name: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) throw invalid(`${name} must be an integer in 1..${max}`);
  return value;
}

/** Applies defaults and checks ranges; throws RC_ERR_CONFIG_INVALID naming the bad option. */
export function resolveTrackerOptions(options: TrackerOptions): ResolvedTrackerOptions {
  const port = options.port ?? DEFAULT_TRACKER_PORT;
  if (!Number.isSafeInteger(port) || port < 0 || port > 65_535) throw invalid('port must be an integer in 0..65535');
  // hello.heartbeatIntervalMs must stay within what clients decode (at most one hour).
  const heartbeatIntervalMs = positiveInt('heartbeatIntervalMs', options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS, 3_600_000);
  const heartbeatTimeoutMs = positiveInt(
    'heartbeatTimeoutMs',
    options.heartbeatTimeoutMs ?? heartbeatIntervalMs * DEFAULT_HEARTBEAT_TIMEOUT_FACTOR,
  );
  const minHealth = options.minHealth ?? DEFAULT_MIN_HEALTH;
  if (!(minHealth >= 0 && minHealth <= 1)) throw invalid('minHealth must be in 0..1');
  const closeGraceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;
  if (!Number.isSafeInteger(closeGraceMs) || closeGraceMs < 0) throw invalid('closeGraceMs must be a non-negative integer');
  const l = options.limits ?? {};
  const limits: TrackerLimits = {
    maxConnections: positiveInt('limits.maxConnections', l.maxConnections ?? DEFAULT_MAX_CONNECTIONS),
    maxConnectionsPerIp: positiveInt('limits.maxConnectionsPerIp', l.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP),
    hardMaxPayloadBytes: positiveInt('limits.hardMaxPayloadBytes', l.hardMaxPayloadBytes ?? DEFAULT_HARD_MAX_PAYLOAD_BYTES),
    rateLimitPerSec: positiveInt('limits.rateLimitPerSec', l.rateLimitPerSec ?? DEFAULT_RATE_LIMIT_PER_SEC),
    rateLimitBurst: positiveInt('limits.rateLimitBurst', l.rateLimitBurst ?? DEFAULT_RATE_LIMIT_BURST),
    relayRateLimitPerSec: positiveInt('limits.relayRateLimitPerSec', l.relayRateLimitPerSec ?? DEFAULT_RELAY_RATE_LIMIT_PER_SEC),
    relayRateLimitBurst: positiveInt('limits.relayRateLimitBurst', l.relayRateLimitBurst ?? DEFAULT_RELAY_RATE_LIMIT_BURST),
    maxDroppedMessages: positiveInt('limits.maxDroppedMessages', l.maxDroppedMessages ?? DEFAULT_MAX_DROPPED_MESSAGES),
    maxViewersPerSwarm: positiveInt('limits.maxViewersPerSwarm', l.maxViewersPerSwarm ?? DEFAULT_MAX_VIEWERS_PER_SWARM),
    maxSwarmsPerViewer: positiveInt('limits.maxSwarmsPerViewer', l.maxSwarmsPerViewer ?? DEFAULT_MAX_SWARMS_PER_VIEWER),
    maxAssignedRelaysPerViewer: positiveInt(
      'limits.maxAssignedRelaysPerViewer',
      l.maxAssignedRelaysPerViewer ?? DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER,
      MAX_SHORTLIST_SIZE,
    ),
    maxRelaysHandedPerMinute: positiveInt('limits.maxRelaysHandedPerMinute', l.maxRelaysHandedPerMinute ?? DEFAULT_MAX_RELAYS_HANDED_PER_MINUTE, 10_000),
    maxPendingOffersPerViewer: positiveInt('limits.maxPendingOffersPerViewer', l.maxPendingOffersPerViewer ?? DEFAULT_MAX_PENDING_OFFERS_PER_VIEWER, 1_000),
    maxPendingOffersPerRange: positiveInt('limits.maxPendingOffersPerRange', l.maxPendingOffersPerRange ?? DEFAULT_MAX_PENDING_OFFERS_PER_RANGE, 100_000),
    pendingOfferWindowMs: positiveInt('limits.pendingOfferWindowMs', l.pendingOfferWindowMs ?? DEFAULT_PENDING_OFFER_WINDOW_MS, 600_000),
    maxRelaysPerRange: positiveInt('limits.maxRelaysPerRange', l.maxRelaysPerRange ?? DEFAULT_MAX_RELAYS_PER_RANGE, 1_000_000),
    maxTrackedRanges: positiveInt('limits.maxTrackedRanges', l.maxTrackedRanges ?? DEFAULT_MAX_TRACKED_RANGES, 10_000_000),
    maxSendBufferBytes: positiveInt('limits.maxSendBufferBytes', l.maxSendBufferBytes ?? DEFAULT_MAX_SEND_BUFFER_BYTES),
  };
  const r = options.reputation ?? {};
  const fraction = (name: string, v: number): number => {
    if (!(v > 0 && v <= 1)) throw invalid(`${name} must be in (0, 1]`);
    return v;
  };
  const reputation: ReputationOptions = {
    reportPenalty: fraction('reputation.reportPenalty', r.reportPenalty ?? DEFAULT_REPORT_PENALTY),
    maxPenaltyPerViewer: fraction('reputation.maxPenaltyPerViewer', r.maxPenaltyPerViewer ?? DEFAULT_MAX_PENALTY_PER_VIEWER),
    windowMs: positiveInt('reputation.windowMs', r.windowMs ?? DEFAULT_REPORT_WINDOW_MS),
    maxRelays: positiveInt('reputation.maxRelays', r.maxRelays ?? DEFAULT_MAX_REPORTED_RELAYS),
    maxViewersPerRelay: positiveInt('reputation.maxViewersPerRelay', r.maxViewersPerRelay ?? DEFAULT_MAX_REPORTERS_PER_RELAY),
    minReporters: positiveInt('reputation.minReporters', r.minReporters ?? DEFAULT_MIN_REPORTERS, 1_000),
    maxReportersPerRange: positiveInt('reputation.maxReportersPerRange', r.maxReportersPerRange ?? DEFAULT_MAX_REPORTERS_PER_RANGE, 1_000),
  };
  if (reputation.minReporters > reputation.maxViewersPerRelay) throw invalid('reputation.minReporters must not exceed reputation.maxViewersPerRelay');
  const ice: IceOptions = {
    stunUrls: options.ice?.stunUrls ?? [],
    turnUrls: options.ice?.turnUrls ?? [],
    turnSecret: options.ice?.turnSecret,
    turnCredentialTtlMs: positiveInt('ice.turnCredentialTtlMs', options.ice?.turnCredentialTtlMs ?? DEFAULT_TURN_CREDENTIAL_TTL_MS, 3_600_000),
    turnRequestsPerConnectionPerMinute: positiveInt(
      'ice.turnRequestsPerConnectionPerMinute',
      options.ice?.turnRequestsPerConnectionPerMinute ?? DEFAULT_TURN_REQUESTS_PER_CONNECTION_PER_MINUTE,
      1_000,
    ),
    turnRequestsPerRangePerMinute: positiveInt(
      'ice.turnRequestsPerRangePerMinute',
      options.ice?.turnRequestsPerRangePerMinute ?? DEFAULT_TURN_REQUESTS_PER_RANGE_PER_MINUTE,
      100_000,
    ),
  };
  for (const u of ice.stunUrls) if (!/^stuns?:\S{1,250}$/.test(u)) throw invalid(`ice.stunUrls: "${u}" is not a stun: URL`);
  for (const u of ice.turnUrls) if (!/^turns?:\S{1,250}$/.test(u)) throw invalid(`ice.turnUrls: "${u}" is not a turn: URL`);
  if (ice.stunUrls.length + ice.turnUrls.length > 4) throw invalid('at most 4 ICE server URLs in all');
  if (ice.turnUrls.length > 0 && (ice.turnSecret === undefined || ice.turnSecret.length < 16)) {
    throw invalid('ice.turnUrls need ice.turnSecret (at least 16 characters), shared with the TURN server');
  }
  const ra = options.reachability ?? {};
  const reachability: ReachabilityOptions = {
    enabled: ra.enabled ?? true,
    timeoutMs: positiveInt('reachability.timeoutMs', ra.timeoutMs ?? DEFAULT_REACHABILITY_TIMEOUT_MS),
    maxConcurrent: positiveInt('reachability.maxConcurrent', ra.maxConcurrent ?? DEFAULT_REACHABILITY_MAX_CONCURRENT, 64),
    maxQueued: positiveInt('reachability.maxQueued', ra.maxQueued ?? DEFAULT_REACHABILITY_MAX_QUEUED),
    retestMs: positiveInt('reachability.retestMs', ra.retestMs ?? DEFAULT_REACHABILITY_RETEST_MS),
    minRetestMs: positiveInt('reachability.minRetestMs', ra.minRetestMs ?? DEFAULT_REACHABILITY_MIN_RETEST_MS),
  };
  const statusToken = options.statusToken;
  if (statusToken !== undefined && (statusToken.length < 16 || statusToken.length > 256 || /\s/.test(statusToken))) {
    throw invalid('statusToken must be 16-256 characters without spaces');
  }
  return {
    reachability,
    trust: resolveTrust(options.trust ?? {}),
    statusToken,
    host: options.host ?? DEFAULT_TRACKER_HOST,
    port,
    heartbeatIntervalMs,
    heartbeatTimeoutMs,
    pingIntervalMs: positiveInt('pingIntervalMs', options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS),
    minHealth,
    closeGraceMs,
    limits,
    reputation,
    ice,
  };
}

function base58Key(name: string, value: string): Uint8Array {
  try {
    return decodePublicKey(value);
  } catch (err) {
    if (isRelaycastError(err)) throw invalid(`${name}: "${value.slice(0, 60)}" is not a base58 ed25519 public key`);
    throw err;
  }
}

/** Checks the trust settings and makes the signing key (a fresh one when none is configured). */
function resolveTrust(t: Partial<TrustOptions>): ResolvedTrust {
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
  const payers = t.trustedPayers ?? [];
  if (payers.length > 64) throw invalid('at most 64 trust.trustedPayers');
  const admission = t.relayAdmission ?? 'open';
  if (admission !== 'open' && admission !== 'allowlist') throw invalid("trust.relayAdmission must be 'open' or 'allowlist'");
  const allowlist = t.relayAllowlist ?? [];
  if (admission === 'open' && allowlist.length > 0) throw invalid("trust.relayAllowlist needs trust.relayAdmission 'allowlist'");
  if (allowlist.length > 1_000_000) throw invalid('at most 1,000,000 relays in trust.relayAllowlist');
  for (const id of allowlist) base58Key('trust.relayAllowlist', id);
  return {
    privateKey,
    publicKey,
    trackerKey: encodeBase58(publicKey),
    ephemeral,
    trustedPayers: payers.map((p) => base58Key('trust.trustedPayers', p)),
    relayAdmission: admission,
    relayAllowlist: new Set(allowlist),
  };
}
