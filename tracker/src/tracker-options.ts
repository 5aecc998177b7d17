import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import type { Logger } from 'pino';
import {
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
  /** Relays remembered as handed to one viewer (its signaling allow-list), oldest forgotten first. Default: DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER (64). */
  maxAssignedRelaysPerViewer: number;
  /** Outgoing bytes queued on one socket before it is closed as a slow consumer (4004). Default: DEFAULT_MAX_SEND_BUFFER_BYTES (1 MiB). */
  maxSendBufferBytes: number;
}

/** STUN/TURN servers handed to every peer in `hello` (see ice-servers.ts). */
export interface IceOptions {
  /** `stun:host:port` URLs. Default: none. */
  stunUrls: string[];
  /** `turn:`/`turns:` URLs of a TURN server using the TURN REST shared-secret scheme (coturn `use-auth-secret`). Default: none. */
  turnUrls: string[];
  /** The secret shared with the TURN server; credentials are derived from it per peer. Required with turnUrls. Default: none. */
  turnSecret: string | undefined;
  /** Lifetime of a TURN credential. Default: DEFAULT_TURN_CREDENTIAL_TTL_MS (24 h). */
  turnCredentialTtlMs: number;
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
  /** Reporting viewers remembered per relay. Default: DEFAULT_MAX_REPORTERS_PER_RELAY (64). */
  maxViewersPerRelay: number;
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
    ),
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
  };
  const ice: IceOptions = {
    stunUrls: options.ice?.stunUrls ?? [],
    turnUrls: options.ice?.turnUrls ?? [],
    turnSecret: options.ice?.turnSecret,
    turnCredentialTtlMs: positiveInt('ice.turnCredentialTtlMs', options.ice?.turnCredentialTtlMs ?? DEFAULT_TURN_CREDENTIAL_TTL_MS),
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
  return {
    reachability,
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
