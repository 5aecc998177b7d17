import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  ASSIGNMENT_VERSION,
  CHALLENGE_NONCE_BYTES,
  bytesEqual,
  decodeSignedGrant,
  encodeSignedAssignment,
  ErrorCode,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_SHORTLIST_SIZE,
  MAX_TRACKER_MESSAGE_BYTES,
  RelaycastError,
  decodePublicKey,
  decodePrewarmQuery,
  decodeTrackerClientMessage,
  encodeTrackerMessage,
  fromBase64,
  registrationSigningBytes,
  toBase64,
  toRelaycastError,
  type HeartbeatMessage,
  type HelloMessage,
  type HelloShortlist,
  type JoinMessage,
  type NatReport,
  type Reachability,
  type RegisterMessage,
  type ReportMessage,
  type SessionMessage,
  type ShortlistMessage,
  type SignalMessage,
  type TrackerServerMessage,
  type TurnMessage,
} from '@relaycast/protocol';
import { signAssignment, verifyEd25519, verifyGrantSignature, verifyTrackerSessionProof } from '@relaycast/protocol/node';
import type { Logger } from 'pino';
import {
  CLOSE_HEARTBEAT_TIMEOUT,
  CLOSE_POLICY_VIOLATION,
  CLOSE_REGISTRATION_REFUSED,
  CLOSE_REPLACED,
  CLOSE_SLOW_CONSUMER,
  CLOSE_TRY_AGAIN_LATER,
  DEFAULT_SHORTLIST_SIZE,
  SESSION_REQUESTS_PER_MINUTE,
} from './constants.js';
import { TokenBucket } from '@relaycast/protocol';
import { RelayRegistry, type RegisteredRelay } from './relay-registry.js';
import { helloIceServers, turnServersFor } from './ice-servers.js';
import { RangeTable, SlidingWindow, addressRange } from './address-range.js';
import { ReputationBook } from './reputation.js';
import type { TrackerMetrics } from './tracker-metrics.js';
import { rankRelays } from './selection.js';
import { SwarmRegistry } from './swarm-registry.js';
import type { StartProbe } from './reachability-probe.js';
import { ReachabilityTester, type ProbeTarget, type ReachabilityVerdict } from './reachability-tester.js';
import type { ResolvedTrackerOptions } from './tracker-options.js';

/** The part of a ws WebSocket the hub uses; keeps the protocol logic independent of the transport. */
export interface PeerSocket {
  readonly readyState: number;
  readonly bufferedAmount: number;
  send(data: string): void;
  close(code: number, reason: string): void;
  terminate(): void;
  ping(): void;
}

/** WebSocket.OPEN. */
const OPEN = 1;

/**
 * Shape of `GET /status` and `Tracker.status()`. Relays' addresses (reachableAddress,
 * nat.publicAddress, nat.mappedPort) are only in the full view: `Tracker.status()` in-process, or
 * `/status` with the configured status token. Everyone else gets them redacted (a relay is often a
 * home connection; issue 14 finding 10).
 */
export interface TrackerStatus {
  /** base58 public key the tracker signs assignments with. */
  trackerKey: string;
  relays: {
    relayId: string;
    region: string;
    capacity: number;
    load: number;
    streams: string[];
    /** 1 minus the penalties of viewers' integrity reports in the window (see reputation.ts). */
    health: number;
    /** Viewers whose integrity reports against this relay still count. */
    reporters: number;
    pricePerGiB: string;
    lastSeenMsAgo: number;
    /** Outcome of the reachability test; absent while untested. */
    reachability?: Reachability | undefined;
    /** `ip:port` the test reached the relay at. */
    reachableAddress?: string | undefined;
    /** What the relay reports about its own network. */
    nat?: NatReport | undefined;
  }[];
  /** Connections that have joined at least one swarm. */
  viewers: number;
  /** Swarms with at least one viewer. */
  swarms: number;
  /** Open WebSocket connections of any role. */
  connections: number;
}

/** Callbacks the transport calls for one accepted socket. */
export interface ConnectionHandle {
  readonly peerId: string;
  message(data: Uint8Array | string, isBinary: boolean): void;
  pong(): void;
  closed(): void;
}

type Role = 'unknown' | 'relay' | 'viewer';

/** A viewer's proven grant: what `session` bound to the connection. */
interface BoundSession {
  sessionKey: Uint8Array;
  /** The grant's user tag, hex: reports are counted per user. */
  user: string;
  /** Unix ms; past it the session no longer counts (reports refused, no assignments). */
  expiresAtMs: number;
}

interface Connection {
  readonly peerId: string;
  readonly socket: PeerSocket;
  readonly ip: string;
  /** IPv4 /24 or IPv6 /48 of `ip` (address-range.ts). */
  readonly range: string;
  readonly nonce: Uint8Array;
  /** Viewer-sized at first; replaced by a relay-sized one once the connection registers. */
  bucket: TokenBucket;
  role: Role;
  relayId: string | undefined;
  dropped: number;
  alive: boolean;
  /** Viewer: relays handed to it, oldest first; the only relays it may signal and be signaled by. */
  readonly assigned: Set<string>;
  /** Viewer: swarms it belongs to, oldest first. */
  readonly swarms: Set<string>;
  /** Viewer: the session its last accepted `session` bound. */
  session: BoundSession | undefined;
  /** Viewer: base64 assignment per relay for the bound session, so repeated joins sign nothing. */
  readonly assignments: Map<string, string>;
  /** Viewer: `session` messages (each costs two signature checks and up to 16 signatures). */
  readonly sessionRequests: TokenBucket;
  /** Viewer: offers forwarded within the pending window. */
  readonly offers: SlidingWindow;
  /** Viewer: relays newly handed to it (per-minute budget). */
  readonly handouts: TokenBucket;
  /** Viewer: `turn` requests (per-minute budget). */
  readonly turnRequests: TokenBucket;
}

/** Url-safe random id (22 chars), matching the protocol's peer id pattern. */
function newPeerId(): string {
  return randomBytes(16).toString('base64url');
}

function truncateUtf8(text: string, maxBytes: number): string {
  // Our messages are ASCII almost always; cutting by characters at a quarter keeps any UTF-8 under the cap.
  return Buffer.byteLength(text) <= maxBytes ? text : text.slice(0, Math.floor(maxBytes / 4));
}

/**
 * Protocol state of a tracker: connections, relay registry, swarms, signaling allow-lists. It never
 * throws into the transport: every bad message becomes an `error` reply.
 */
export class TrackerHub {
  private readonly connections = new Map<string, Connection>();
  private readonly perIp = new Map<string, number>();
  private readonly relays = new RelayRegistry();
  private readonly swarms: SwarmRegistry;
  private readonly reputation: ReputationBook;
  private readonly reachability: ReachabilityTester | undefined;
  /** "range relayId" → offers forwarded to that relay from that range within the pending window. */
  private readonly offersByRange: RangeTable<SlidingWindow>;
  /** Range → its `turn` requests budget. */
  private readonly turnByRange: RangeTable<TokenBucket>;
  /** Range → its joins budget (`join` messages and pre-warms together). */
  private readonly joinsByRange: RangeTable<TokenBucket>;
  /** Relay ids admitted under `allowlist` admission; replaced by setRelayAllowlist. */
  private relayAllowlist: ReadonlySet<string>;
  /** Counters for `/metrics`; set by the server. */
  metrics: TrackerMetrics | undefined;

  constructor(
    private readonly options: ResolvedTrackerOptions,
    private readonly log: Logger,
    private readonly now: () => number = () => performance.now(),
    startProbe?: StartProbe,
  ) {
    this.swarms = new SwarmRegistry(options.limits.maxViewersPerSwarm);
    this.reputation = new ReputationBook(options.reputation, now);
    this.relayAllowlist = options.trust.relayAllowlist;
    const { maxTrackedRanges, maxPendingOffersPerRange, pendingOfferWindowMs } = options.limits;
    this.offersByRange = new RangeTable(maxTrackedRanges, () => new SlidingWindow(maxPendingOffersPerRange, pendingOfferWindowMs));
    const perRange = options.ice.turnRequestsPerRangePerMinute;
    this.turnByRange = new RangeTable(maxTrackedRanges, () => new TokenBucket(perRange / 60, perRange, now));
    const joinsPerRange = options.limits.maxJoinsPerRangePerMinute;
    this.joinsByRange = new RangeTable(maxTrackedRanges, () => new TokenBucket(joinsPerRange / 60, joinsPerRange, now));
    if (startProbe !== undefined && options.reachability.enabled) {
      this.reachability = new ReachabilityTester(
        options.reachability,
        startProbe,
        (target, from, connectionId, signal) => {
          const conn = this.connections.get(target.connectionId);
          if (conn !== undefined) this.send(conn, { type: 'signal', from, connectionId, signal });
        },
        (target, verdict) => this.onReachability(target, verdict),
        log.child({ component: 'reachability' }),
      );
    }
  }

  get connectionCount(): number {
    return this.connections.size;
  }

  /**
   * Takes a freshly upgraded socket. Over a connection cap the socket gets RC_ERR_TRACKER_FULL and
   * is closed (an error frame tells a browser client why, which a refused upgrade cannot).
   *
   * `query` is the upgrade URL's query. When it asks for a swarm (a pre-warm, decodePrewarmQuery),
   * the connection joins that swarm before its `hello`, exactly as a `join` message would (same
   * validation, same limits: the connection's message budget, the per-range joins budget, the
   * per-connection handouts, swarm caps), and `hello` carries the shortlist. A refused pre-warm gets
   * a plain `hello` and then an `error` with `ref: "prewarm"`; the connection stays open.
   */
  accept(socket: PeerSocket, ip: string, query?: string): ConnectionHandle | undefined {
    const { maxConnections, maxConnectionsPerIp } = this.options.limits;
    const fromIp = this.perIp.get(ip) ?? 0;
    if (this.connections.size >= maxConnections || fromIp >= maxConnectionsPerIp) {
      const message = this.connections.size >= maxConnections ? 'tracker is at its connection limit' : 'too many connections from this address';
      this.log.warn({ ip, connections: this.connections.size }, message);
      socket.send(encodeTrackerMessage({ type: 'error', code: ErrorCode.TRACKER_FULL, message }));
      socket.close(CLOSE_TRY_AGAIN_LATER, 'tracker full');
      return undefined;
    }
    const { rateLimitPerSec, rateLimitBurst, maxPendingOffersPerViewer, pendingOfferWindowMs, maxRelaysHandedPerMinute } = this.options.limits;
    const turnPerMin = this.options.ice.turnRequestsPerConnectionPerMinute;
    const conn: Connection = {
      peerId: newPeerId(),
      socket,
      ip,
      range: addressRange(ip),
      nonce: randomBytes(CHALLENGE_NONCE_BYTES),
      bucket: new TokenBucket(rateLimitPerSec, rateLimitBurst, this.now),
      role: 'unknown',
      relayId: undefined,
      dropped: 0,
      alive: true,
      assigned: new Set(),
      swarms: new Set(),
      session: undefined,
      assignments: new Map(),
      sessionRequests: new TokenBucket(SESSION_REQUESTS_PER_MINUTE / 60, SESSION_REQUESTS_PER_MINUTE, this.now),
      offers: new SlidingWindow(maxPendingOffersPerViewer, pendingOfferWindowMs),
      handouts: new TokenBucket(maxRelaysHandedPerMinute / 60, maxRelaysHandedPerMinute, this.now),
      turnRequests: new TokenBucket(turnPerMin / 60, turnPerMin, this.now),
    };
    this.connections.set(conn.peerId, conn);
    this.perIp.set(ip, fromIp + 1);
    const hello: HelloMessage = {
      type: 'hello',
      peerId: conn.peerId,
      nonce: toBase64(conn.nonce),
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      iceServers: helloIceServers(this.options.ice),
    };
    let refused: RelaycastError | undefined;
    if (query !== undefined && query.length > 0) {
      try {
        const shortlist = this.prewarm(conn, query);
        if (shortlist !== undefined) {
          hello.shortlist = shortlist;
          // The size cap holds for hello too: a swarm id of escaped characters with TURN-less ICE
          // servers and 16 relays could pass it. Then the viewer joins the usual way.
          if (Buffer.byteLength(JSON.stringify(hello)) > MAX_TRACKER_MESSAGE_BYTES) {
            hello.shortlist = undefined;
            throw new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, 'the shortlist does not fit in hello; send `join`');
          }
        }
      } catch (err) {
        refused = toRelaycastError(err);
        if (refused.code === ErrorCode.INTERNAL) this.log.error({ err, peerId: conn.peerId }, 'pre-warm failed');
        else this.log.debug({ peerId: conn.peerId, code: refused.code }, 'pre-warm refused');
      }
    }
    this.send(conn, hello);
    if (refused !== undefined) this.sendError(conn, refused, 'prewarm');
    return {
      peerId: conn.peerId,
      message: (data, isBinary) => this.onMessage(conn, data, isBinary),
      pong: () => {
        conn.alive = true;
      },
      closed: () => this.onClosed(conn),
    };
  }

  /** Evicts relays silent for the heartbeat timeout and closes their sockets. */
  evictSilentRelays(): void {
    const deadline = this.now() - this.options.heartbeatTimeoutMs;
    for (const relay of this.relays.stale(deadline)) {
      this.log.warn({ relayId: relay.relayId }, 'evicting silent relay');
      this.relays.remove(relay.relayId, relay.connectionId);
      this.connections.get(relay.connectionId)?.socket.close(CLOSE_HEARTBEAT_TIMEOUT, 'heartbeat timeout');
    }
  }

  /** Terminates sockets that did not answer the previous ping, then pings the rest. */
  pingAll(): void {
    for (const conn of this.connections.values()) {
      if (!conn.alive) {
        this.log.debug({ peerId: conn.peerId }, 'terminating socket that missed a pong');
        conn.socket.terminate();
        continue;
      }
      conn.alive = false;
      conn.socket.ping();
    }
  }

  /** Starts a close handshake on every socket. */
  closeAll(code: number, reason: string): void {
    this.reachability?.close();
    for (const conn of this.connections.values()) conn.socket.close(code, reason);
  }

  /** Drops every socket still open, without a handshake. */
  terminateAll(): void {
    for (const conn of this.connections.values()) conn.socket.terminate();
  }

  /**
   * Replaces the relay allowlist (allowlist admission only): relays registered now and no longer
   * listed get RC_ERR_RELAY_NOT_ADMITTED and are closed (4001). Returns how many were closed.
   */
  setRelayAllowlist(relayIds: ReadonlySet<string>): number {
    this.relayAllowlist = relayIds;
    let closed = 0;
    for (const relay of this.relays.all()) {
      if (relayIds.has(relay.relayId)) continue;
      const conn = this.connections.get(relay.connectionId);
      this.relays.remove(relay.relayId, relay.connectionId);
      if (conn !== undefined)
        this.refuseRegistration(conn, new RelaycastError(ErrorCode.RELAY_NOT_ADMITTED, "this relay was removed from the tracker's allowlist"));
      closed++;
    }
    return closed;
  }

  /** The public key assignments are signed with (base58). */
  get trackerKey(): string {
    return this.options.trust.trackerKey;
  }

  /**
   * Whether an `Authorization` header value presents the configured status token (constant time).
   * False when no token is configured: then nobody sees addresses over HTTP.
   */
  statusTokenPresented(authorization: string | undefined): boolean {
    const token = this.options.statusToken;
    if (token === undefined || authorization === undefined) return false;
    const presented = Buffer.from(authorization);
    const expected = Buffer.from(`Bearer ${token}`);
    return presented.byteLength === expected.byteLength && timingSafeEqual(presented, expected);
  }

  /** The status; with `addresses` false, every relay's addresses are left out (see TrackerStatus). */
  status(addresses = true): TrackerStatus {
    const now = this.now();
    let viewers = 0;
    for (const c of this.connections.values()) if (c.swarms.size > 0) viewers++;
    return {
      trackerKey: this.options.trust.trackerKey,
      relays: this.relays.all().map((r) => ({
        relayId: r.relayId,
        region: r.region,
        capacity: r.capacity,
        load: r.load,
        streams: [...r.streams],
        health: this.reputation.health(r.relayId),
        reporters: this.reputation.reporters(r.relayId),
        pricePerGiB: r.pricePerGiB,
        lastSeenMsAgo: Math.max(0, Math.round(now - r.lastSeenAt)),
        reachability: r.reachability,
        reachableAddress: addresses ? r.reachableAddress : undefined,
        nat: r.nat === undefined || addresses ? r.nat : { portMapping: r.nat.portMapping },
      })),
      viewers,
      swarms: this.swarms.size,
      connections: this.connections.size,
    };
  }

  private send(conn: Connection, msg: TrackerServerMessage): void {
    if (conn.socket.readyState !== OPEN) return;
    if (conn.socket.bufferedAmount > this.options.limits.maxSendBufferBytes) {
      // A peer that does not read would make us buffer without bound; drop it instead.
      this.log.warn({ peerId: conn.peerId, bufferedBytes: conn.socket.bufferedAmount }, 'closing slow consumer');
      conn.socket.close(CLOSE_SLOW_CONSUMER, 'slow consumer');
      return;
    }
    conn.socket.send(encodeTrackerMessage(msg));
  }

  private sendError(conn: Connection, err: RelaycastError, ref?: string): void {
    this.metrics?.errors.inc({ code: err.code });
    this.send(conn, { type: 'error', code: err.code, message: truncateUtf8(err.message, MAX_ERROR_MESSAGE_BYTES), ref });
  }

  private onClosed(conn: Connection): void {
    if (!this.connections.delete(conn.peerId)) return;
    const n = (this.perIp.get(conn.ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(conn.ip);
    else this.perIp.set(conn.ip, n);
    if (conn.relayId !== undefined && this.relays.remove(conn.relayId, conn.peerId)) {
      this.log.info({ relayId: conn.relayId }, 'relay left');
    }
    for (const swarmId of conn.swarms) this.swarms.leave(swarmId, conn.peerId);
  }

  private onMessage(conn: Connection, data: Uint8Array | string, isBinary: boolean): void {
    // Frames that arrive while a close is under way (refused registration, eviction) are not served.
    if (conn.socket.readyState !== OPEN) return;
    if (!conn.bucket.take()) {
      conn.dropped++;
      if (conn.dropped > this.options.limits.maxDroppedMessages) {
        this.log.warn({ peerId: conn.peerId, ip: conn.ip }, 'closing connection that keeps exceeding its rate limit');
        conn.socket.close(CLOSE_POLICY_VIOLATION, 'rate limit');
        return;
      }
      this.sendError(conn, new RelaycastError(ErrorCode.RATE_LIMITED, `more than ${this.options.limits.rateLimitPerSec} messages per second; message dropped`));
      return;
    }
    let ref: string | undefined;
    try {
      if (isBinary) throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'tracker messages are JSON text frames');
      const msg = decodeTrackerClientMessage(data);
      ref = msg.type;
      this.metrics?.messages.inc({ type: msg.type });
      switch (msg.type) {
        case 'register':
          return this.onRegister(conn, msg);
        case 'heartbeat':
          return this.onHeartbeat(conn, msg);
        case 'join':
          return this.onJoin(conn, msg);
        case 'signal':
          return this.onSignal(conn, msg);
        case 'report':
          return this.onReport(conn, msg);
        case 'session':
          return this.onSession(conn, msg);
        case 'turn':
          return this.onTurn(conn, msg);
      }
    } catch (err) {
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.INTERNAL) this.log.error({ err, peerId: conn.peerId }, 'message handler failed');
      else this.log.debug({ peerId: conn.peerId, code: e.code, ref }, 'message refused');
      this.sendError(conn, e, ref);
    }
  }

  private onRegister(conn: Connection, msg: RegisterMessage): void {
    if (conn.role === 'viewer' || conn.session !== undefined) {
      throw new RelaycastError(ErrorCode.MESSAGE_TYPE, 'a viewer connection cannot register as a relay');
    }
    if (conn.relayId !== undefined && conn.relayId !== msg.relayId) {
      throw new RelaycastError(ErrorCode.REGISTRATION_DUPLICATE, 'this connection is registered as another relay');
    }
    const signature = fromBase64(msg.signature) ?? new Uint8Array(0);
    if (!verifyEd25519(decodePublicKey(msg.relayId), registrationSigningBytes(conn.nonce), signature)) {
      this.log.warn({ relayId: msg.relayId, ip: conn.ip }, 'registration refused: bad signature');
      this.sendError(conn, new RelaycastError(ErrorCode.REGISTRATION_SIGNATURE, 'signature does not prove the relay key'), 'register');
      conn.socket.close(CLOSE_REGISTRATION_REFUSED, 'registration refused');
      return;
    }
    // Admission and the per-range cap come after the signature: only a key holder learns either.
    if (this.options.trust.relayAdmission === 'allowlist' && !this.relayAllowlist.has(msg.relayId)) {
      this.log.warn({ relayId: msg.relayId, ip: conn.ip }, 'registration refused: relay not on the allowlist');
      this.refuseRegistration(conn, new RelaycastError(ErrorCode.RELAY_NOT_ADMITTED, "this relay is not on the tracker's allowlist"));
      return;
    }
    const { maxRelaysPerRange } = this.options.limits;
    let inRange = 0;
    for (const r of this.relays.all()) if (r.range === conn.range && r.relayId !== msg.relayId) inRange++;
    if (inRange >= maxRelaysPerRange) {
      this.log.warn({ relayId: msg.relayId, range: conn.range, inRange }, 'registration refused: address range at its relay cap');
      this.refuseRegistration(
        conn,
        new RelaycastError(ErrorCode.ADDRESS_RANGE_LIMIT, `already ${maxRelaysPerRange} relays registered from this address range`),
      );
      return;
    }
    if (conn.role !== 'relay') {
      const { relayRateLimitPerSec, relayRateLimitBurst } = this.options.limits;
      conn.bucket = new TokenBucket(relayRateLimitPerSec, relayRateLimitBurst, this.now);
    }
    conn.role = 'relay';
    conn.relayId = msg.relayId;
    const earlier = this.relays.get(msg.relayId);
    const previous = this.relays.upsert({
      relayId: msg.relayId,
      region: msg.region,
      capacity: msg.capacity,
      load: msg.load,
      // Reports are kept by relay id in the reputation book, so reconnecting does not reset them.
      health: 1,
      streams: msg.streams,
      pricePerGiB: msg.pricePerGiB,
      lastSeenAt: this.now(),
      connectionId: conn.peerId,
      range: conn.range,
      nat: msg.nat,
      // A new connection may come from a new address or router: test again, keep the old verdict meanwhile.
      reachability: earlier?.reachability,
      reachableAddress: earlier?.reachableAddress,
      testedAt: undefined,
    });
    if (previous !== undefined && previous.connectionId !== conn.peerId) {
      this.log.info({ relayId: msg.relayId }, 'relay re-registered; closing its older connection');
      this.connections.get(previous.connectionId)?.socket.close(CLOSE_REPLACED, 'replaced by a newer registration');
    } else if (previous === undefined) {
      this.log.info({ relayId: msg.relayId, region: msg.region, capacity: msg.capacity }, 'relay registered');
    }
    this.send(conn, { type: 'registered', relayId: msg.relayId, trackerKey: this.options.trust.trackerKey });
    this.reachability?.schedule({ relayId: msg.relayId, connectionId: conn.peerId, nat: msg.nat });
  }

  private refuseRegistration(conn: Connection, err: RelaycastError): void {
    this.sendError(conn, err, 'register');
    // A connection that was this relay's live one before (re-registering) leaves the registry too.
    if (conn.relayId !== undefined) this.relays.remove(conn.relayId, conn.peerId);
    conn.socket.close(CLOSE_REGISTRATION_REFUSED, 'registration refused');
  }

  private onReachability(target: ProbeTarget, verdict: ReachabilityVerdict): void {
    const relay = this.relays.get(target.relayId);
    if (relay === undefined || relay.connectionId !== target.connectionId) return;
    relay.reachability = verdict.reachability;
    relay.reachableAddress = verdict.address;
    relay.testedAt = this.now();
    this.metrics?.reachability.inc({ result: verdict.reachability });
    const conn = this.connections.get(relay.connectionId);
    if (conn !== undefined) this.send(conn, { type: 'reachability', reachability: verdict.reachability, address: verdict.address });
  }

  /** The registry entry this connection is currently the live connection of, if any. */
  private liveRelay(conn: Connection): RegisteredRelay | undefined {
    const relay = conn.relayId === undefined ? undefined : this.relays.get(conn.relayId);
    return relay !== undefined && relay.connectionId === conn.peerId ? relay : undefined;
  }

  private onHeartbeat(conn: Connection, msg: HeartbeatMessage): void {
    const relay = this.liveRelay(conn);
    if (relay === undefined) throw new RelaycastError(ErrorCode.NOT_REGISTERED, 'heartbeat from a connection that is not a registered relay');
    relay.capacity = msg.capacity;
    relay.load = msg.load;
    relay.streams = msg.streams;
    relay.lastSeenAt = this.now();
    // Only the mapping decides how the relay is reached (the public address is informative).
    const mappingChanged = msg.nat?.portMapping !== relay.nat?.portMapping || msg.nat?.mappedPort !== relay.nat?.mappedPort;
    relay.nat = msg.nat;
    if (mappingChanged) relay.retestWanted = true;
    const { retestMs, minRetestMs } = this.options.reachability;
    const age = relay.testedAt === undefined ? undefined : this.now() - relay.testedAt;
    // Untested: scheduled again (a no-op while queued or probing; a relay the full queue turned away
    // gets its turn this way). A relay flapping its report cannot keep the probe slots busy: one
    // retest per minRetestMs.
    if (age === undefined || age > retestMs || (relay.retestWanted === true && age >= minRetestMs)) {
      relay.retestWanted = false;
      this.reachability?.schedule({ relayId: relay.relayId, connectionId: relay.connectionId, nat: relay.nat });
    }
  }

  private onJoin(conn: Connection, msg: JoinMessage): void {
    this.send(conn, this.join(conn, msg));
  }

  /**
   * A pre-warm: the join the upgrade URL's query asks for, charged like a `join` message (one token
   * of the connection's message budget, then everything join() charges). Undefined when the query
   * asks for none; throws what a `join` would be refused with.
   */
  private prewarm(conn: Connection, query: string): HelloShortlist | undefined {
    const msg = decodePrewarmQuery(query);
    if (msg === undefined) return undefined;
    if (!conn.bucket.take()) throw new RelaycastError(ErrorCode.RATE_LIMITED, `more than ${this.options.limits.rateLimitPerSec} messages per second`);
    this.metrics?.messages.inc({ type: 'prewarm' });
    const { swarmId, relays } = this.join(conn, msg);
    return { swarmId, relays };
  }

  /**
   * Everything a join does, for a `join` message and for a pre-warm alike: the per-range joins
   * budget, swarm membership and caps, ranking, the per-connection handouts budget, the signaling
   * allow-list. Returns the shortlist to send.
   */
  private join(conn: Connection, msg: JoinMessage): ShortlistMessage {
    if (conn.role === 'relay') throw new RelaycastError(ErrorCode.MESSAGE_TYPE, 'a relay connection cannot join a swarm');
    const { maxSwarmsPerViewer, maxAssignedRelaysPerViewer, maxRelaysHandedPerMinute, maxJoinsPerRangePerMinute } = this.options.limits;
    // Per range, not per connection: a fresh connection would otherwise bring a fresh budget.
    if (!this.joinsByRange.get(conn.range).take()) {
      throw new RelaycastError(ErrorCode.RATE_LIMITED, `more than ${maxJoinsPerRangePerMinute} joins per minute from this address range`);
    }
    if (conn.swarms.has(msg.swarmId)) {
      conn.swarms.delete(msg.swarmId); // re-insert below as the newest
    } else {
      this.swarms.join(msg.swarmId, conn.peerId); // throws SWARM_FULL before any state changes
      while (conn.swarms.size >= maxSwarmsPerViewer) {
        const oldest = conn.swarms.values().next().value as string;
        conn.swarms.delete(oldest);
        this.swarms.leave(oldest, conn.peerId);
      }
    }
    conn.swarms.add(msg.swarmId);
    conn.role = 'viewer';
    const candidates = this.relays.all().map((r) => ({ ...r, health: this.reputation.health(r.relayId) }));
    const ranked = rankRelays(candidates, {
      swarmId: msg.swarmId,
      region: msg.region,
      count: Math.min(msg.count ?? DEFAULT_SHORTLIST_SIZE, MAX_SHORTLIST_SIZE),
      minHealth: this.options.minHealth,
    });
    // Relays already handed to this connection cost nothing; each new one takes from the
    // per-minute budget, so one connection cannot walk through the whole relay list (finding 8).
    const handed = ranked.filter((r) => conn.assigned.has(r.relayId) || conn.handouts.take());
    if (handed.length === 0 && ranked.length > 0) {
      throw new RelaycastError(ErrorCode.RATE_LIMITED, `more than ${maxRelaysHandedPerMinute} relays handed to this connection in a minute`);
    }
    for (const r of handed) {
      conn.assigned.delete(r.relayId); // re-insert as the newest
      conn.assigned.add(r.relayId);
    }
    while (conn.assigned.size > maxAssignedRelaysPerViewer) {
      const oldest = conn.assigned.values().next().value as string;
      conn.assigned.delete(oldest);
      conn.assignments.delete(oldest);
    }
    this.metrics?.shortlists.inc();
    const session = this.boundSession(conn);
    return {
      type: 'shortlist',
      swarmId: msg.swarmId,
      relays: handed.map((r) => ({
        relayId: r.relayId,
        region: r.region,
        reachability: r.reachability,
        assignment: session === undefined ? undefined : this.assignmentFor(conn, session, r.relayId),
      })),
    };
  }

  /** The connection's session, unless none was bound or its grant has expired (tracker's clock). */
  private boundSession(conn: Connection): BoundSession | undefined {
    const s = conn.session;
    if (s === undefined) return undefined;
    if (s.expiresAtMs <= Date.now()) {
      conn.session = undefined;
      return undefined;
    }
    return s;
  }

  /** The connection's assignment of its session to `relayId`, signed once per session and relay. */
  private assignmentFor(conn: Connection, session: BoundSession, relayId: string): string {
    let a = conn.assignments.get(relayId);
    if (a === undefined) {
      a = this.assignment(session, relayId);
      conn.assignments.set(relayId, a);
    }
    return a;
  }

  /** base64 signed assignment "session → relay, now" (protocol assignments.ts). */
  private assignment(session: BoundSession, relayId: string): string {
    const signed = signAssignment(
      {
        version: ASSIGNMENT_VERSION,
        tracker: this.options.trust.publicKey,
        sessionKey: session.sessionKey,
        relay: decodePublicKey(relayId),
        issuedAtMs: Date.now(),
      },
      this.options.trust.privateKey,
    );
    return toBase64(encodeSignedAssignment(signed));
  }

  /**
   * Binds a grant's session to this connection: the grant is signed by a payer the tracker trusts,
   * not expired on the tracker's clock, and the connection holds its session key (a signature over
   * this connection's hello nonce, so a grant seen elsewhere cannot be replayed). Then every relay
   * already handed to the connection gets its assignment.
   */
  private onSession(conn: Connection, msg: SessionMessage): void {
    if (conn.role === 'relay') throw new RelaycastError(ErrorCode.MESSAGE_TYPE, 'a relay connection cannot bind a viewer session');
    if (!conn.sessionRequests.take()) {
      throw new RelaycastError(ErrorCode.RATE_LIMITED, `more than ${SESSION_REQUESTS_PER_MINUTE} session messages per minute on this connection`);
    }
    const refuse = (why: string): RelaycastError => new RelaycastError(ErrorCode.SESSION_INVALID, why);
    const grantBytes = fromBase64(msg.grant);
    const proof = fromBase64(msg.proof);
    if (grantBytes === undefined || proof === undefined) throw refuse('grant and proof must be base64');
    let signed;
    try {
      signed = decodeSignedGrant(grantBytes);
    } catch (err) {
      throw refuse(`grant does not decode: ${toRelaycastError(err).message}`);
    }
    const { grant } = signed;
    if (!this.options.trust.trustedPayers.some((p) => bytesEqual(p, grant.payer))) throw refuse('grant is not from a payer this tracker trusts');
    if (grant.expiresAtMs <= Date.now()) throw refuse('grant has expired');
    if (!verifyGrantSignature(signed)) throw refuse('grant signature does not verify');
    if (!verifyTrackerSessionProof(grant.sessionKey, conn.nonce, proof)) throw refuse("proof is not the session key's signature over this connection's nonce");
    const session: BoundSession = { sessionKey: grant.sessionKey, user: Buffer.from(grant.user).toString('hex'), expiresAtMs: grant.expiresAtMs };
    conn.session = session;
    conn.assignments.clear();
    conn.role = 'viewer';
    this.send(conn, {
      type: 'assignments',
      assignments: [...conn.assigned].map((relayId) => ({ relayId, assignment: this.assignmentFor(conn, session, relayId) })),
    });
  }

  /**
   * TURN on need: credentials only for a relay handed to this connection, valid for minutes,
   * within a per-connection and a per-range budget (issue 14 finding 4).
   */
  private onTurn(conn: Connection, msg: TurnMessage): void {
    const refuse = (why: string): RelaycastError => new RelaycastError(ErrorCode.TURN_REFUSED, why);
    if (conn.role !== 'viewer' || !conn.assigned.has(msg.relayId)) throw refuse('that relay was not handed to this connection');
    const { ice } = this.options;
    if (ice.turnUrls.length === 0 || ice.turnSecret === undefined) throw refuse('this tracker has no TURN server');
    if (!conn.turnRequests.take()) throw refuse(`more than ${ice.turnRequestsPerConnectionPerMinute} TURN requests per minute from this connection`);
    if (!this.turnByRange.get(conn.range).take())
      throw refuse(`more than ${ice.turnRequestsPerRangePerMinute} TURN requests per minute from this address range`);
    const iceServers = turnServersFor(conn.peerId, ice, Date.now());
    if (iceServers === undefined) throw refuse('this tracker has no TURN server');
    this.send(conn, { type: 'ice', relayId: msg.relayId, iceServers });
  }

  /**
   * Counts a viewer's integrity report against a relay, only from a connection with a bound session
   * (a grant of a trusted payer, proven key) that was handed that relay, i.e. whose session the
   * tracker assigned to it. The reputation book counts users, not connections, needs several users
   * before health moves, and caps reporters per address range (issue 14 finding 3).
   */
  private onReport(conn: Connection, msg: ReportMessage): void {
    if (conn.role !== 'viewer') throw new RelaycastError(ErrorCode.REPORT_REFUSED, 'only viewers report relays');
    const session = this.boundSession(conn);
    if (session === undefined) {
      this.metrics?.reports.inc({ outcome: 'anonymous' });
      throw new RelaycastError(ErrorCode.REPORT_REFUSED, 'reports count only from a viewer with a bound session (send `session` first)');
    }
    if (!conn.assigned.has(msg.relayId)) throw new RelaycastError(ErrorCode.REPORT_REFUSED, 'that relay was not handed to this viewer');
    const outcome = this.reputation.report(msg.relayId, session.user, conn.range);
    this.metrics?.reports.inc({ outcome });
    const health = this.reputation.health(msg.relayId);
    this.log.warn(
      {
        relayId: msg.relayId,
        viewer: conn.peerId,
        user: session.user,
        url: msg.url,
        expectedSha256: msg.expectedSha256,
        receivedSha256: msg.receivedSha256,
        outcome,
        health,
      },
      'integrity report',
    );
    if (outcome === 'quota-exhausted') {
      throw new RelaycastError(ErrorCode.REPORT_REFUSED, 'this user has already reported that relay as much as counts');
    }
    if (outcome === 'range-limit') {
      throw new RelaycastError(ErrorCode.ADDRESS_RANGE_LIMIT, 'enough users from this address range already reported that relay');
    }
  }

  private onSignal(conn: Connection, msg: SignalMessage): void {
    const to = msg.to as string; // the decoder guarantees `to` on client messages
    let target: Connection | undefined;
    let from: string;
    if (conn.role === 'viewer') {
      if (!conn.assigned.has(to)) throw new RelaycastError(ErrorCode.SIGNAL_NOT_ALLOWED, 'that relay was not handed to this viewer');
      const relay = this.relays.get(to);
      target = relay === undefined ? undefined : this.connections.get(relay.connectionId);
      from = conn.peerId;
      if (msg.signal.kind === 'offer' && target !== undefined) this.admitOffer(conn, to);
    } else if (conn.role === 'relay') {
      const self = this.liveRelay(conn);
      if (self === undefined) throw new RelaycastError(ErrorCode.NOT_REGISTERED, 'this connection is no longer the registered relay');
      if (this.reachability?.isProbe(to) === true) {
        this.reachability.deliver(to, msg.connectionId, msg.signal);
        return;
      }
      target = this.connections.get(to);
      if (target !== undefined && (target.role !== 'viewer' || !target.assigned.has(self.relayId))) {
        throw new RelaycastError(ErrorCode.SIGNAL_NOT_ALLOWED, 'that viewer was not handed this relay');
      }
      from = self.relayId;
    } else {
      throw new RelaycastError(ErrorCode.SIGNAL_NOT_ALLOWED, 'join a swarm or register before signaling');
    }
    if (target === undefined) throw new RelaycastError(ErrorCode.PEER_UNKNOWN, 'signaling target is not connected');
    this.metrics?.signalsForwarded.inc();
    this.send(target, { type: 'signal', from, connectionId: msg.connectionId, signal: msg.signal });
  }

  /**
   * An offer makes the relay hold a pending peer until it connects or its connect timeout passes
   * (the pending window). Offers that never connect must not fill a relay's pending slots (finding
   * 8): each viewer connection has a few pending at once, each address range a share of one relay's.
   */
  private admitOffer(conn: Connection, relayId: string): void {
    const now = this.now();
    const { maxPendingOffersPerViewer, maxPendingOffersPerRange } = this.options.limits;
    if (conn.offers.count(now) >= maxPendingOffersPerViewer) {
      throw new RelaycastError(ErrorCode.OFFER_LIMIT, `${maxPendingOffersPerViewer} offers from this connection are still pending`);
    }
    const byRange = this.offersByRange.get(`${conn.range} ${relayId}`);
    if (!byRange.tryAdd(now)) {
      throw new RelaycastError(ErrorCode.ADDRESS_RANGE_LIMIT, `${maxPendingOffersPerRange} offers from this address range to that relay are still pending`);
    }
    conn.offers.tryAdd(now);
  }
}
