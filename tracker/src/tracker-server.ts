import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { ErrorCode, RelaycastError, TRACKER_SUBPROTOCOL } from '@relaycast/protocol';
import { pino } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { CLOSE_GOING_AWAY } from './constants.js';
import { handleHttp } from './http-routes.js';
import { TrackerMetrics } from './tracker-metrics.js';
import { TrackerHub, type TrackerStatus } from './tracker-hub.js';
import { createWebRtcProbe } from './reachability-probe.js';
import { resolveTrackerOptions, type TrackerOptions } from './tracker-options.js';

export interface Tracker {
  /** WebSocket URL relays and viewers connect to (`ws://host:port/`). */
  readonly url: string;
  /** Base URL of the HTTP endpoints (`http://host:port`, no trailing slash). */
  readonly httpUrl: string;
  /** Port actually bound (useful with port 0). */
  readonly port: number;
  /** base58 public key the tracker signs assignments with. */
  readonly trackerKey: string;
  /**
   * Replaces the relay allowlist (`relayAdmission: 'allowlist'` only; the CLI does it on SIGHUP):
   * registered relays no longer listed are closed with RC_ERR_RELAY_NOT_ADMITTED. Returns how many.
   * Throws RC_ERR_CONFIG_INVALID under open admission or for an id that is not a relay key.
   */
  setRelayAllowlist(relayIds: readonly string[]): number;
  /** What `GET /status` returns with the status token: relays' addresses included. */
  status(): TrackerStatus;
  /** Closes every connection and the listener; idempotent. */
  close(): Promise<void>;
}

function toBytes(data: RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** Rejects an upgrade with a plain HTTP answer (used before any WebSocket exists). */
function refuseUpgrade(socket: Duplex, status: number, reason: string, body: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
}

function listen(http: Server, port: number, host: string, signal: AbortSignal | undefined): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      signal?.removeEventListener('abort', onAbort);
      const message =
        err.code === 'EADDRINUSE'
          ? `port ${port} on ${host} is already in use`
          : err.code === 'EACCES'
            ? `no permission to listen on port ${port}`
            : `cannot listen on ${host}:${port}: ${err.message}`;
      reject(new RelaycastError(ErrorCode.CONFIG_INVALID, message, { cause: err, details: { host, port } }));
    };
    const onAbort = (): void => {
      http.off('error', onError);
      http.close();
      reject(new RelaycastError(ErrorCode.ABORTED, 'tracker start aborted'));
    };
    if (signal?.aborted === true) return onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    http.once('error', onError);
    http.listen(port, host, () => {
      http.off('error', onError);
      signal?.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}

/**
 * Starts a tracker: one node:http server carrying the WebSocket protocol (subprotocol
 * TRACKER_SUBPROTOCOL only) and the HTTP endpoints `/healthz` and `/status`.
 * Rejects with RC_ERR_CONFIG_INVALID for bad options or a port that cannot be bound, and with
 * RC_ERR_ABORTED when `signal` aborts before the server listens.
 */
export async function startTracker(options: TrackerOptions = {}, signal?: AbortSignal): Promise<Tracker> {
  const resolved = resolveTrackerOptions(options);
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'tracker' });
  // Probes bind the tracker's own interface so they leave the way viewers' traffic would come in.
  const wildcard = resolved.host === '0.0.0.0' || resolved.host === '::';
  const probe = resolved.reachability.enabled ? createWebRtcProbe({ bindAddress: wildcard ? undefined : resolved.host }) : undefined;
  const hub = new TrackerHub(resolved, log, () => performance.now(), probe);
  const metrics = new TrackerMetrics(() => hub.status(false));
  hub.metrics = metrics;
  if (resolved.trust.ephemeral) {
    log.warn(
      { trackerKey: resolved.trust.trackerKey },
      'no tracker key configured: signing assignments with an ephemeral key (relays and settlers must trust it anew after a restart)',
    );
  } else {
    log.info({ trackerKey: resolved.trust.trackerKey }, 'tracker key loaded');
  }
  if (resolved.trust.trustedPayers.length === 0) log.warn('no trusted payer configured: every viewer session is refused, so no report counts');

  const http: Server = createServer((req, res) =>
    handleHttp(
      req,
      res,
      (r) => hub.status(hub.statusTokenPresented(r.headers.authorization)),
      () => metrics.text(),
    ),
  );
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: resolved.limits.hardMaxPayloadBytes,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(TRACKER_SUBPROTOCOL) ? TRACKER_SUBPROTOCOL : false),
  });

  http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => socket.destroy());
    const offered = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    // ws would complete a handshake without a subprotocol; an unversioned client must not get in.
    if (!offered.includes(TRACKER_SUBPROTOCOL)) {
      return refuseUpgrade(socket, 400, 'Bad Request', `WebSocket subprotocol ${TRACKER_SUBPROTOCOL} required\n`);
    }
    const ip = req.socket.remoteAddress ?? 'unknown';
    wss.handleUpgrade(req, socket, head, (ws: WebSocket) => {
      // The query may ask for a pre-warm (decodePrewarmQuery); the path is not looked at.
      const url = req.url ?? '';
      const q = url.indexOf('?');
      const handle = hub.accept(ws, ip, q < 0 ? undefined : url.slice(q + 1));
      if (handle === undefined) return;
      ws.on('message', (data: RawData, isBinary: boolean) => handle.message(toBytes(data), isBinary));
      ws.on('pong', () => handle.pong());
      ws.on('close', () => handle.closed());
      // ws emits 'close' after 'error' (e.g. a frame above maxPayload), which is where state is cleaned.
      ws.on('error', (err) => log.debug({ peerId: handle.peerId, err: err.message }, 'socket error'));
    });
  });

  const evictTimer = setInterval(() => hub.evictSilentRelays(), Math.max(20, Math.min(resolved.heartbeatIntervalMs, resolved.heartbeatTimeoutMs) / 2));
  evictTimer.unref();
  const pingTimer = setInterval(() => hub.pingAll(), resolved.pingIntervalMs);
  pingTimer.unref();

  try {
    await listen(http, resolved.port, resolved.host, signal);
  } catch (err) {
    clearInterval(evictTimer);
    clearInterval(pingTimer);
    wss.close();
    throw err;
  }
  const port = (http.address() as AddressInfo).port;
  const hostForUrl = resolved.host.includes(':') ? `[${resolved.host}]` : resolved.host;
  log.info({ host: resolved.host, port }, `tracker listening on ${resolved.host}:${port}`);

  let closing: Promise<void> | undefined;
  const close = async (): Promise<void> => {
    clearInterval(evictTimer);
    clearInterval(pingTimer);
    const httpClosed = new Promise<void>((resolve) => http.close(() => resolve()));
    hub.closeAll(CLOSE_GOING_AWAY, 'tracker shutting down');
    // Give peers a moment to answer the close handshake, then cut whoever did not.
    const deadline = Date.now() + resolved.closeGraceMs;
    while (hub.connectionCount > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    hub.terminateAll();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    http.closeAllConnections();
    await httpClosed;
    log.info('tracker stopped');
  };

  return {
    url: `ws://${hostForUrl}:${port}/`,
    httpUrl: `http://${hostForUrl}:${port}`,
    port,
    trackerKey: resolved.trust.trackerKey,
    setRelayAllowlist(relayIds) {
      if (resolved.trust.relayAdmission !== 'allowlist') throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'the relay allowlist needs allowlist admission');
      // Same checks as at start (base58 relay keys); resolveTrackerOptions throws RC_ERR_CONFIG_INVALID.
      resolveTrackerOptions({ trust: { relayAdmission: 'allowlist', relayAllowlist: [...relayIds] } });
      const closed = hub.setRelayAllowlist(new Set(relayIds));
      log.info({ relays: relayIds.length, closed }, 'relay allowlist replaced');
      return closed;
    },
    status: () => hub.status(),
    close() {
      closing ??= close();
      return closing;
    },
  };
}
