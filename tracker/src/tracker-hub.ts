import { randomBytes } from 'node:crypto';
import {
  CHALLENGE_NONCE_BYTES,
  ErrorCode,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_SHORTLIST_SIZE,
  RelaycastError,
  decodePublicKey,
  decodeTrackerClientMessage,
  encodeTrackerMessage,
  fromBase64,
  registrationSigningBytes,
  toBase64,
  toRelaycastError,
  type HeartbeatMessage,
  type JoinMessage,
  type NatReport,
  type Reachability,
  type RegisterMessage,
  type ReportMessage,
  type SignalMessage,
  type TrackerServerMessage,
} from '@relaycast/protocol';
import { verifyEd25519 } from '@relaycast/protocol/node';
import type { Logger } from 'pino';
import {
  CLOSE_HEARTBEAT_TIMEOUT,
  CLOSE_POLICY_VIOLATION,
  CLOSE_REGISTRATION_REFUSED,
  CLOSE_REPLACED,
  CLOSE_SLOW_CONSUMER,
  CLOSE_TRY_AGAIN_LATER,
  DEFAULT_SHORTLIST_SIZE,
} from './constants.js';
import { TokenBucket } from '@relaycast/protocol';
import { RelayRegistry, type RegisteredRelay } from './relay-registry.js';
import { iceServersFor } from './ice-servers.js';
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

/** Shape of `GET /status` and `Tracker.status()`. */
export interface TrackerStatus {
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

interface Connection {
  readonly peerId: string;
  readonly socket: PeerSocket;
  readonly ip: string;
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
   */
  accept(socket: PeerSocket, ip: string): ConnectionHandle | undefined {
    const { maxConnections, maxConnectionsPerIp } = this.options.limits;
    const fromIp = this.perIp.get(ip) ?? 0;
    if (this.connections.size >= maxConnections || fromIp >= maxConnectionsPerIp) {
      const message =
        this.connections.size >= maxConnections ? 'tracker is at its connection limit' : 'too many connections from this address';
      this.log.warn({ ip, connections: this.connections.size }, message);
      socket.send(encodeTrackerMessage({ type: 'error', code: ErrorCode.TRACKER_FULL, message }));
      socket.close(CLOSE_TRY_AGAIN_LATER, 'tracker full');
      return undefined;
    }
    const { rateLimitPerSec, rateLimitBurst } = this.options.limits;
    const conn: Connection = {
      peerId: newPeerId(),
      socket,
      ip,
      nonce: randomBytes(CHALLENGE_NONCE_BYTES),
      bucket: new TokenBucket(rateLimitPerSec, rateLimitBurst, this.now),
      role: 'unknown',
      relayId: undefined,
      dropped: 0,
      alive: true,
      assigned: new Set(),
      swarms: new Set(),
    };
    this.connections.set(conn.peerId, conn);
    this.perIp.set(ip, fromIp + 1);
    this.send(conn, {
      type: 'hello',
      peerId: conn.peerId,
      nonce: toBase64(conn.nonce),
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      iceServers: iceServersFor(conn.peerId, this.options.ice, Date.now()),
    });
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

  status(): TrackerStatus {
    const now = this.now();
    let viewers = 0;
    for (const c of this.connections.values()) if (c.swarms.size > 0) viewers++;
    return {
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
        reachableAddress: r.reachableAddress,
        nat: r.nat,
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
      this.sendError(
        conn,
        new RelaycastError(ErrorCode.RATE_LIMITED, `more than ${this.options.limits.rateLimitPerSec} messages per second; message dropped`),
      );
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
      }
    } catch (err) {
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.INTERNAL) this.log.error({ err, peerId: conn.peerId }, 'message handler failed');
      else this.log.debug({ peerId: conn.peerId, code: e.code, ref }, 'message refused');
      this.sendError(conn, e, ref);
    }
  }

  private onRegister(conn: Connection, msg: RegisterMessage): void {
    if (conn.role === 'viewer') throw new RelaycastError(ErrorCode.MESSAGE_TYPE, 'a viewer connection cannot register as a relay');
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
    this.send(conn, { type: 'registered', relayId: msg.relayId });
    this.reachability?.schedule({ relayId: msg.relayId, connectionId: conn.peerId, nat: msg.nat });
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
    if (conn.role === 'relay') throw new RelaycastError(ErrorCode.MESSAGE_TYPE, 'a relay connection cannot join a swarm');
    const { maxSwarmsPerViewer, maxAssignedRelaysPerViewer } = this.options.limits;
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
    for (const r of ranked) {
      conn.assigned.delete(r.relayId); // re-insert as the newest
      conn.assigned.add(r.relayId);
    }
    while (conn.assigned.size > maxAssignedRelaysPerViewer) {
      conn.assigned.delete(conn.assigned.values().next().value as string);
    }
    this.metrics?.shortlists.inc();
    this.send(conn, {
      type: 'shortlist',
      swarmId: msg.swarmId,
      relays: ranked.map((r) => ({ relayId: r.relayId, region: r.region, reachability: r.reachability })),
    });
  }

  /**
   * Counts a viewer's integrity report against a relay it was handed (a viewer cannot smear relays
   * it never used); the reputation book caps what one viewer can do to one relay.
   */
  private onReport(conn: Connection, msg: ReportMessage): void {
    if (conn.role !== 'viewer') throw new RelaycastError(ErrorCode.REPORT_REFUSED, 'only viewers report relays');
    if (!conn.assigned.has(msg.relayId)) throw new RelaycastError(ErrorCode.REPORT_REFUSED, 'that relay was not handed to this viewer');
    const outcome = this.reputation.report(msg.relayId, conn.peerId);
    this.metrics?.reports.inc({ outcome });
    const health = this.reputation.health(msg.relayId);
    this.log.warn(
      { relayId: msg.relayId, viewer: conn.peerId, url: msg.url, expectedSha256: msg.expectedSha256, receivedSha256: msg.receivedSha256, outcome, health },
      'integrity report',
    );
    if (outcome === 'quota-exhausted') {
      throw new RelaycastError(ErrorCode.REPORT_REFUSED, 'this viewer has already reported that relay as much as counts');
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
}
