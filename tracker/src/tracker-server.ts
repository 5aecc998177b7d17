import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  CHALLENGE_NONCE_BYTES,
  ErrorCode,
  MAX_SHORTLIST_SIZE,
  RelaycastError,
  TRACKER_SUBPROTOCOL,
  decodePublicKey,
  decodeTrackerClientMessage,
  encodeTrackerMessage,
  fromBase64,
  registrationSigningBytes,
  toBase64,
  toRelaycastError,
  type JoinMessage,
  type RegisterMessage,
  type SignalMessage,
  type TrackerServerMessage,
  type HeartbeatMessage,
} from '@relaycast/protocol';
import { verifyEd25519 } from '@relaycast/protocol/node';
import { pino, type Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import {
  DEFAULT_HARD_MAX_PAYLOAD_BYTES,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_FACTOR,
  DEFAULT_LOG_LEVEL,
  DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_IP,
  DEFAULT_MAX_DROPPED_MESSAGES,
  DEFAULT_MAX_SWARMS_PER_VIEWER,
  DEFAULT_MAX_VIEWERS_PER_SWARM,
  DEFAULT_MIN_HEALTH,
  DEFAULT_PING_INTERVAL_MS,
  DEFAULT_RATE_LIMIT_BURST,
  DEFAULT_RATE_LIMIT_PER_SEC,
  DEFAULT_SHORTLIST_SIZE,
  DEFAULT_TRACKER_HOST,
  DEFAULT_TRACKER_PORT,
} from './constants.js';
import { handleHttp } from './http-routes.js';
import { TokenBucket } from './rate-limiter.js';
import { RelayRegistry } from './relay-registry.js';
import { rankRelays } from './selection.js';

export interface TrackerOptions {
  /** Interface to bind. Default: DEFAULT_TRACKER_HOST ('127.0.0.1'). */
  host?: string | undefined;
  /** TCP port for HTTP and WebSocket; 0 picks a free one. Default: DEFAULT_TRACKER_PORT (8000). */
  port?: number | undefined;
  /** Heartbeat interval told to relays. Default: DEFAULT_HEARTBEAT_INTERVAL_MS (5 s). */
  heartbeatIntervalMs?: number | undefined;
  /** A relay silent this long is evicted. Default: 3 × heartbeatIntervalMs. */
  heartbeatTimeoutMs?: number | undefined;
  /** WebSocket frames above this close the socket (ws `maxPayload`). Default: 64 KiB. */
  hardMaxPayloadBytes?: number | undefined;
  /** Open connections in total. Default: DEFAULT_MAX_CONNECTIONS (20,000). */
  maxConnections?: number | undefined;
  /** Open connections per remote IP. Default: DEFAULT_MAX_CONNECTIONS_PER_IP (256). */
  maxConnectionsPerIp?: number | undefined;
  /** Sustained messages per second per connection. Default: DEFAULT_RATE_LIMIT_PER_SEC (50). */
  rateLimitPerSec?: number | undefined;
  /** Burst of messages per connection. Default: DEFAULT_RATE_LIMIT_BURST (100). */
  rateLimitBurst?: number | undefined;
  /** Rate-limited messages after which a connection is closed. Default: DEFAULT_MAX_DROPPED_MESSAGES (500). */
  maxDroppedMessages?: number | undefined;
  /** Viewers per swarm. Default: DEFAULT_MAX_VIEWERS_PER_SWARM (10,000). */
  maxViewersPerSwarm?: number | undefined;
  /** Swarms one viewer connection may join. Default: DEFAULT_MAX_SWARMS_PER_VIEWER (8). */
  maxSwarmsPerViewer?: number | undefined;
  /** Relays below this health are not handed out. Default: DEFAULT_MIN_HEALTH (0.2). */
  minHealth?: number | undefined;
  /** WebSocket ping interval for dropping dead sockets. Default: DEFAULT_PING_INTERVAL_MS (15 s). */
  pingIntervalMs?: number | undefined;
  /** Parent logger. Default: pino at DEFAULT_LOG_LEVEL to stdout. */
  logger?: Logger | undefined;
}

export interface TrackerStatus {
  relays: {
    relayId: string;
    region: string;
    capacity: number;
    load: number;
    streams: string[];
    health: number;
    pricePerGiB: string;
    lastSeenMsAgo: number;
  }[];
  viewers: number;
  swarms: number;
  connections: number;
}

export interface Tracker {
  /** WebSocket URL relays and viewers connect to. */
  readonly url: string;
  /** Base URL of the HTTP endpoints. */
  readonly httpUrl: string;
  readonly port: number;
  status(): TrackerStatus;
  close(): Promise<void>;
}

type Role = 'unknown' | 'relay' | 'viewer';

interface Connection {
  readonly peerId: string;
  readonly ws: WebSocket;
  readonly ip: string;
  readonly nonce: Uint8Array;
  readonly bucket: TokenBucket;
  role: Role;
  relayId: string | undefined;
  dropped: number;
  alive: boolean;
  /** Viewer: relays handed to it, oldest first; the only relays it may signal. */
  readonly assigned: Set<string>;
  readonly swarms: Set<string>;
}

/** Starts a tracker: relay registry, selection, signaling hand-off, /healthz and /status. */
export async function startTracker(options: TrackerOptions = {}): Promise<Tracker> {
  const log = (options.logger ?? pino({ level: DEFAULT_LOG_LEVEL })).child({ component: 'tracker' });
  const heartbeatIntervalMs = options.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_INTERVAL_MS;
  const heartbeatTimeoutMs = options.heartbeatTimeoutMs ?? heartbeatIntervalMs * DEFAULT_HEARTBEAT_TIMEOUT_FACTOR;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const maxPerIp = options.maxConnectionsPerIp ?? DEFAULT_MAX_CONNECTIONS_PER_IP;
  const ratePerSec = options.rateLimitPerSec ?? DEFAULT_RATE_LIMIT_PER_SEC;
  const burst = options.rateLimitBurst ?? DEFAULT_RATE_LIMIT_BURST;
  const maxDropped = options.maxDroppedMessages ?? DEFAULT_MAX_DROPPED_MESSAGES;
  const maxViewersPerSwarm = options.maxViewersPerSwarm ?? DEFAULT_MAX_VIEWERS_PER_SWARM;
  const maxSwarmsPerViewer = options.maxSwarmsPerViewer ?? DEFAULT_MAX_SWARMS_PER_VIEWER;
  const minHealth = options.minHealth ?? DEFAULT_MIN_HEALTH;

  const registry = new RelayRegistry();
  const connections = new Map<string, Connection>();
  const perIp = new Map<string, number>();
  const swarms = new Map<string, Set<string>>();

  const status = (): TrackerStatus => {
    const now = performance.now();
    return {
      relays: registry.all().map((r) => ({
        relayId: r.relayId,
        region: r.region,
        capacity: r.capacity,
        load: r.load,
        streams: [...r.streams],
        health: r.health,
        pricePerGiB: r.pricePerGiB,
        lastSeenMsAgo: Math.round(now - r.lastSeenAt),
      })),
      viewers: [...connections.values()].filter((c) => c.role === 'viewer').length,
      swarms: swarms.size,
      connections: connections.size,
    };
  };

  const http: Server = createServer((req, res) => handleHttp(req, res, status));
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.hardMaxPayloadBytes ?? DEFAULT_HARD_MAX_PAYLOAD_BYTES,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(TRACKER_SUBPROTOCOL) ? TRACKER_SUBPROTOCOL : false),
  });

  http.on('upgrade', (req: IncomingMessage, socket, head) => {
    const ip = req.socket.remoteAddress ?? 'unknown';
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    const refuse = (code: number, reason: string): void => {
      socket.end(`HTTP/1.1 ${code} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
    };
    if (!offered.includes(TRACKER_SUBPROTOCOL)) return refuse(400, 'Bad Request');
    if (connections.size >= maxConnections || (perIp.get(ip) ?? 0) >= maxPerIp) return refuse(503, 'Service Unavailable');
    wss.handleUpgrade(req, socket, head, (ws) => onConnection(ws, ip));
  });

  const send = (conn: Connection, msg: TrackerServerMessage): void => {
    if (conn.ws.readyState !== conn.ws.OPEN) return;
    conn.ws.send(encodeTrackerMessage(msg));
  };

  const sendError = (conn: Connection, err: RelaycastError, ref?: string): void => {
    send(conn, { type: 'error', code: err.code, message: err.message.slice(0, 512), ref });
  };

  function onConnection(ws: WebSocket, ip: string): void {
    const conn: Connection = {
      peerId: randomUUID().replaceAll('-', ''),
      ws,
      ip,
      nonce: randomBytes(CHALLENGE_NONCE_BYTES),
      bucket: new TokenBucket(ratePerSec, burst),
      role: 'unknown',
      relayId: undefined,
      dropped: 0,
      alive: true,
      assigned: new Set(),
      swarms: new Set(),
    };
    connections.set(conn.peerId, conn);
    perIp.set(ip, (perIp.get(ip) ?? 0) + 1);
    ws.on('pong', () => {
      conn.alive = true;
    });
    ws.on('message', (data, isBinary) => onMessage(conn, data as Buffer, isBinary));
    ws.on('close', () => onClose(conn));
    ws.on('error', (err) => log.debug({ peerId: conn.peerId, err: err.message }, 'socket error'));
    send(conn, { type: 'hello', peerId: conn.peerId, nonce: toBase64(conn.nonce), heartbeatIntervalMs });
  }

  function onClose(conn: Connection): void {
    if (!connections.delete(conn.peerId)) return;
    const n = (perIp.get(conn.ip) ?? 1) - 1;
    if (n <= 0) perIp.delete(conn.ip);
    else perIp.set(conn.ip, n);
    if (conn.relayId !== undefined && registry.remove(conn.relayId, conn.peerId)) {
      log.info({ relayId: conn.relayId }, 'relay left');
    }
    for (const swarmId of conn.swarms) {
      const members = swarms.get(swarmId);
      members?.delete(conn.peerId);
      if (members?.size === 0) swarms.delete(swarmId);
    }
  }

  function onMessage(conn: Connection, data: Buffer, isBinary: boolean): void {
    if (!conn.bucket.take()) {
      conn.dropped++;
      if (conn.dropped > maxDropped) {
        log.warn({ peerId: conn.peerId, ip: conn.ip }, 'closing connection that keeps exceeding its rate limit');
        conn.ws.close(1008, 'rate limit');
        return;
      }
      // Answer the first drop of each burst only, so a flood cannot turn us into an amplifier.
      if (conn.dropped === 1 || conn.dropped % burst === 0) {
        sendError(conn, new RelaycastError(ErrorCode.RATE_LIMITED, `more than ${ratePerSec} messages per second`));
      }
      return;
    }
    let ref: string | undefined;
    try {
      if (isBinary) throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'tracker messages are JSON text frames');
      const msg = decodeTrackerClientMessage(data);
      ref = msg.type;
      switch (msg.type) {
        case 'register':
          return onRegister(conn, msg);
        case 'heartbeat':
          return onHeartbeat(conn, msg);
        case 'join':
          return onJoin(conn, msg);
        case 'signal':
          return onSignal(conn, msg);
      }
    } catch (err) {
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.INTERNAL) log.error({ err: e, peerId: conn.peerId }, 'message handler failed');
      sendError(conn, e, ref);
    }
  }

  function onRegister(conn: Connection, msg: RegisterMessage): void {
    if (conn.role === 'viewer') throw new RelaycastError(ErrorCode.MESSAGE_TYPE, 'a viewer connection cannot register as a relay');
    if (conn.relayId !== undefined && conn.relayId !== msg.relayId) {
      throw new RelaycastError(ErrorCode.REGISTRATION_DUPLICATE, 'this connection is registered as another relay');
    }
    const signature = fromBase64(msg.signature) ?? new Uint8Array(0);
    if (!verifyEd25519(decodePublicKey(msg.relayId), registrationSigningBytes(conn.nonce), signature)) {
      log.warn({ relayId: msg.relayId, ip: conn.ip }, 'registration refused: bad signature');
      sendError(conn, new RelaycastError(ErrorCode.REGISTRATION_SIGNATURE, 'signature does not prove the relay key'), 'register');
      conn.ws.close(4001, 'registration refused');
      return;
    }
    conn.role = 'relay';
    conn.relayId = msg.relayId;
    const previous = registry.upsert({
      relayId: msg.relayId,
      region: msg.region,
      capacity: msg.capacity,
      load: msg.load,
      health: registry.get(msg.relayId)?.health ?? 1,
      streams: msg.streams,
      pricePerGiB: msg.pricePerGiB,
      lastSeenAt: performance.now(),
      connectionId: conn.peerId,
    });
    if (previous !== undefined && previous.connectionId !== conn.peerId) {
      connections.get(previous.connectionId)?.ws.close(4002, 'replaced by a newer registration');
    }
    log.info({ relayId: msg.relayId, region: msg.region, capacity: msg.capacity }, 'relay registered');
    send(conn, { type: 'registered', relayId: msg.relayId });
  }

  function onHeartbeat(conn: Connection, msg: HeartbeatMessage): void {
    const relay = conn.relayId === undefined ? undefined : registry.get(conn.relayId);
    if (relay === undefined || relay.connectionId !== conn.peerId) {
      throw new RelaycastError(ErrorCode.NOT_REGISTERED, 'heartbeat before registration');
    }
    relay.capacity = msg.capacity;
    relay.load = msg.load;
    relay.streams = msg.streams;
    relay.lastSeenAt = performance.now();
  }

  function onJoin(conn: Connection, msg: JoinMessage): void {
    if (conn.role === 'relay') throw new RelaycastError(ErrorCode.MESSAGE_TYPE, 'a relay connection cannot join a swarm');
    conn.role = 'viewer';
    if (!conn.swarms.has(msg.swarmId)) {
      if (conn.swarms.size >= maxSwarmsPerViewer) {
        throw new RelaycastError(ErrorCode.SWARM_FULL, `a connection may join at most ${maxSwarmsPerViewer} swarms`);
      }
      let members = swarms.get(msg.swarmId);
      if (members === undefined) {
        members = new Set();
        swarms.set(msg.swarmId, members);
      }
      if (members.size >= maxViewersPerSwarm) throw new RelaycastError(ErrorCode.SWARM_FULL, 'swarm is full');
      members.add(conn.peerId);
      conn.swarms.add(msg.swarmId);
    }
    const ranked = rankRelays(registry.all(), {
      swarmId: msg.swarmId,
      region: msg.region,
      count: Math.min(msg.count ?? DEFAULT_SHORTLIST_SIZE, MAX_SHORTLIST_SIZE),
      minHealth,
    });
    for (const r of ranked) {
      conn.assigned.delete(r.relayId); // re-insert as newest
      conn.assigned.add(r.relayId);
    }
    while (conn.assigned.size > DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER) {
      conn.assigned.delete(conn.assigned.values().next().value as string);
    }
    send(conn, { type: 'shortlist', swarmId: msg.swarmId, relays: ranked.map((r) => ({ relayId: r.relayId, region: r.region })) });
  }

  function onSignal(conn: Connection, msg: SignalMessage): void {
    const to = msg.to as string;
    let target: Connection | undefined;
    if (conn.role === 'viewer') {
      if (!conn.assigned.has(to)) throw new RelaycastError(ErrorCode.SIGNAL_NOT_ALLOWED, 'that relay was not handed to this viewer');
      const relay = registry.get(to);
      target = relay === undefined ? undefined : connections.get(relay.connectionId);
    } else if (conn.role === 'relay') {
      target = connections.get(to);
      if (target !== undefined && (target.role !== 'viewer' || !target.assigned.has(conn.relayId as string))) {
        throw new RelaycastError(ErrorCode.SIGNAL_NOT_ALLOWED, 'that viewer was not handed this relay');
      }
    } else {
      throw new RelaycastError(ErrorCode.SIGNAL_NOT_ALLOWED, 'join a swarm or register before signaling');
    }
    if (target === undefined) throw new RelaycastError(ErrorCode.PEER_UNKNOWN, 'signaling target is not connected');
    const from = conn.role === 'relay' ? (conn.relayId as string) : conn.peerId;
    send(target, { type: 'signal', from, connectionId: msg.connectionId, signal: msg.signal });
  }

  const evictTimer = setInterval(() => {
    const deadline = performance.now() - heartbeatTimeoutMs;
    for (const relay of registry.stale(deadline)) {
      log.warn({ relayId: relay.relayId }, 'evicting silent relay');
      registry.remove(relay.relayId, relay.connectionId);
      connections.get(relay.connectionId)?.ws.close(4003, 'heartbeat timeout');
    }
  }, Math.max(50, Math.min(heartbeatIntervalMs, heartbeatTimeoutMs) / 2));
  evictTimer.unref();

  const pingTimer = setInterval(() => {
    for (const conn of connections.values()) {
      if (!conn.alive) {
        conn.ws.terminate();
        continue;
      }
      conn.alive = false;
      conn.ws.ping();
    }
  }, options.pingIntervalMs ?? DEFAULT_PING_INTERVAL_MS);
  pingTimer.unref();

  const host = options.host ?? DEFAULT_TRACKER_HOST;
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(
        new RelaycastError(
          ErrorCode.CONFIG_INVALID,
          err.code === 'EADDRINUSE' ? `port ${options.port ?? DEFAULT_TRACKER_PORT} is already in use` : `cannot listen: ${err.message}`,
          { cause: err },
        ),
      );
    };
    http.once('error', onError);
    http.listen(options.port ?? DEFAULT_TRACKER_PORT, host, () => {
      http.off('error', onError);
      resolve();
    });
  }).catch((err: unknown) => {
    clearInterval(evictTimer);
    clearInterval(pingTimer);
    throw err;
  });
  const port = (http.address() as AddressInfo).port;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  log.info({ port, host }, 'tracker listening');

  let closing: Promise<void> | undefined;
  return {
    url: `ws://${hostForUrl}:${port}/`,
    httpUrl: `http://${hostForUrl}:${port}`,
    port,
    status,
    close() {
      closing ??= (async () => {
        clearInterval(evictTimer);
        clearInterval(pingTimer);
        for (const conn of connections.values()) conn.ws.close(1001, 'tracker shutting down');
        await new Promise<void>((resolve) => wss.close(() => resolve()));
        http.closeAllConnections();
        await new Promise<void>((resolve) => http.close(() => resolve()));
        log.info('tracker stopped');
      })();
      return closing;
    },
  };
}
