import {
  ErrorCode,
  MAX_SHORTLIST_SIZE,
  RelaycastError,
  TRACKER_SUBPROTOCOL,
  decodeTrackerServerMessage,
  encodeTrackerMessage,
  type RelayDescriptor,
  type SignalMessage,
  type IceServer,
  type ReportMessage,
  type SignalPayload,
  type TrackerClientMessage,
} from '@relaycast/protocol';
import { DEFAULT_HELLO_TIMEOUT_MS, DEFAULT_JOIN_TIMEOUT_MS, DEFAULT_RECONNECT_MAX_MS, DEFAULT_RECONNECT_MIN_MS } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { TypedEmitter } from './typed-emitter.js';

/** The subset of the WebSocket constructor the SDK needs: the browser's, or `ws` in Node. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocket;

export interface ViewerTrackerClientOptions {
  /** Tracker WebSocket URL. Required. */
  trackerUrl: string;
  /** WebSocket implementation. Default: globalThis.WebSocket. */
  WebSocket?: WebSocketConstructor | undefined;
  /** A join must be answered within this. Default: DEFAULT_JOIN_TIMEOUT_MS (5 s). */
  joinTimeoutMs?: number | undefined;
  /** The tracker must say hello within this after the socket is created. Default: DEFAULT_HELLO_TIMEOUT_MS (10 s). */
  helloTimeoutMs?: number | undefined;
  /** First reconnect delay (doubles, with jitter). Default: DEFAULT_RECONNECT_MIN_MS (500 ms). */
  reconnectMinMs?: number | undefined;
  /** Longest reconnect delay. Default: DEFAULT_RECONNECT_MAX_MS (15 s). */
  reconnectMaxMs?: number | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

export interface TrackerEvents {
  /** A signaling message from a relay. */
  signal: (msg: SignalMessage) => void;
  /** The socket is open and the tracker said hello (also after every reconnect). */
  connected: () => void;
  disconnected: () => void;
  /** A connection attempt ended before the tracker said hello (unreachable, refused, no hello in time). */
  'connect-failed': () => void;
  /** The tracker refused something (its error message, as a RelaycastError with the tracker's code in details). */
  error: (err: RelaycastError) => void;
}

interface PendingJoin {
  resolve: (relays: RelayDescriptor[]) => void;
  reject: (err: RelaycastError) => void;
}

/**
 * The viewer's tracker session: join → shortlist, signaling both ways, reconnect with backoff.
 * Losing the tracker never breaks playback; it only means no new relays until it is back.
 */
export class ViewerTrackerClient extends TypedEmitter<TrackerEvents> {
  private ws: WebSocket | undefined;
  private ready = false;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private iceServersFromTracker: readonly IceServer[] = [];
  private readonly joins = new Map<string, PendingJoin[]>();
  private readonly log: SdkLogger;
  private readonly WS: WebSocketConstructor;

  constructor(private readonly options: ViewerTrackerClientOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    const WS = options.WebSocket ?? (globalThis.WebSocket as WebSocketConstructor | undefined);
    if (WS === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'no WebSocket implementation available');
    this.WS = WS;
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** STUN/TURN servers the tracker handed out in its latest hello (TURN credentials are time-limited). */
  get iceServers(): readonly IceServer[] {
    return this.iceServersFromTracker;
  }

  /** Opens the socket (once; later drops reconnect by themselves with backoff and jitter until close()). */
  connect(): void {
    if (this.stopped || this.ws !== undefined) return;
    let ws: WebSocket;
    try {
      ws = new this.WS(this.options.trackerUrl, TRACKER_SUBPROTOCOL);
    } catch (err) {
      this.log.warn({ err: String(err) }, 'cannot open tracker socket');
      this.emit('connect-failed');
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    ws.binaryType = 'arraybuffer';
    ws.addEventListener('message', (ev: MessageEvent) => {
      if (this.ws === ws) this.onMessage(ev.data);
    });
    ws.addEventListener('close', () => this.onClose(ws));
    // 'error' is always followed by 'close', which does the work.
    ws.addEventListener('error', () => undefined);
    // A socket that opens but never hears hello (a proxy that swallows it, a wedged tracker) would
    // otherwise hold the client in limbo until the OS gives up on TCP.
    clearTimeout(this.helloTimer);
    this.helloTimer = setTimeout(() => {
      if (this.ws === ws && !this.ready) {
        this.log.warn({}, 'tracker said no hello in time');
        this.dropSocket(ws);
      }
    }, this.options.helloTimeoutMs ?? DEFAULT_HELLO_TIMEOUT_MS);
  }

  /** Resolves once the tracker has said hello; rejects with RC_ERR_ABORTED on abort or after close(). */
  whenReady(signal?: AbortSignal): Promise<void> {
    if (this.ready) return Promise.resolve();
    if (this.stopped || signal?.aborted === true) return Promise.reject(new RelaycastError(ErrorCode.ABORTED, 'waiting for the tracker was aborted'));
    return new Promise((resolve, reject) => {
      const onConnected = (): void => {
        cleanup();
        resolve();
      };
      const onAbort = (): void => {
        cleanup();
        reject(new RelaycastError(ErrorCode.ABORTED, 'waiting for the tracker was aborted'));
      };
      const cleanup = (): void => {
        this.off('connected', onConnected);
        signal?.removeEventListener('abort', onAbort);
      };
      this.on('connected', onConnected);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Joins a swarm and returns the tracker's ranked shortlist. Waits for the tracker if it is not
   * connected yet. Rejects with RC_ERR_TIMEOUT (no shortlist within joinTimeoutMs),
   * RC_ERR_TRACKER_UNAVAILABLE (not reachable, connection lost, or the tracker refused the join) or
   * RC_ERR_ABORTED.
   */
  async join(swarmId: string, opts: { region?: string | undefined; count?: number | undefined; signal?: AbortSignal | undefined }): Promise<RelayDescriptor[]> {
    const timeout = AbortSignal.timeout(this.options.joinTimeoutMs ?? DEFAULT_JOIN_TIMEOUT_MS);
    const signal = opts.signal === undefined ? timeout : AbortSignal.any([opts.signal, timeout]);
    await this.whenReady(signal).catch(() => {
      if (opts.signal?.aborted === true) throw new RelaycastError(ErrorCode.ABORTED, 'join aborted');
      throw new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'tracker not reachable');
    });
    return new Promise((resolve, reject) => {
      const entry: PendingJoin = {
        resolve: (relays) => {
          signal.removeEventListener('abort', onAbort);
          resolve(relays);
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      const onAbort = (): void => {
        this.removeJoin(swarmId, entry);
        reject(new RelaycastError(timeout.aborted ? ErrorCode.TIMEOUT : ErrorCode.ABORTED, 'join got no shortlist'));
      };
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      const list = this.joins.get(swarmId) ?? [];
      list.push(entry);
      this.joins.set(swarmId, list);
      const count = opts.count === undefined ? undefined : Math.min(MAX_SHORTLIST_SIZE, Math.max(1, Math.floor(opts.count)));
      if (!this.send({ type: 'join', swarmId, region: opts.region, count })) {
        entry.reject(new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'tracker not connected'));
        this.removeJoin(swarmId, entry);
      }
    });
  }

  sendSignal(to: string, connectionId: string, signal: SignalPayload): boolean {
    return this.send({ type: 'signal', to, connectionId, signal });
  }

  /** Reports a relay whose bytes failed verification; false when the tracker is not reachable now (the report is dropped). */
  reportIntegrity(report: Omit<ReportMessage, 'type' | 'reason'>): boolean {
    return this.send({ type: 'report', reason: 'integrity', ...report });
  }

  close(): void {
    this.stopped = true;
    clearTimeout(this.reconnectTimer);
    clearTimeout(this.helloTimer);
    try {
      this.ws?.close(1000);
    } catch {
      // already closing
    }
    this.ws = undefined;
    this.ready = false;
    this.failJoins(new RelaycastError(ErrorCode.ABORTED, 'tracker client closed'));
  }

  private send(msg: TrackerClientMessage): boolean {
    const ws = this.ws;
    if (ws === undefined || ws.readyState !== 1 || !this.ready) return false;
    try {
      ws.send(encodeTrackerMessage(msg));
      return true;
    } catch (err) {
      // Oversized SDP (encode refuses it) or a socket closing under us: the caller treats both as "not sent".
      this.log.debug({ err: String(err) }, 'tracker send failed');
      return false;
    }
  }

  /** Forgets a socket that is of no use and lets the close path schedule a reconnect. */
  private dropSocket(ws: WebSocket): void {
    try {
      ws.close(4000, 'no hello');
    } catch {
      // already closing
    }
    this.onClose(ws);
  }

  private removeJoin(swarmId: string, entry: PendingJoin): void {
    const list = this.joins.get(swarmId)?.filter((e) => e !== entry) ?? [];
    if (list.length === 0) this.joins.delete(swarmId);
    else this.joins.set(swarmId, list);
  }

  private failJoins(err: RelaycastError): void {
    const all = [...this.joins.values()].flat();
    this.joins.clear();
    for (const j of all) j.reject(err);
  }

  private onMessage(data: unknown): void {
    let msg;
    try {
      msg = decodeTrackerServerMessage(typeof data === 'string' ? data : new Uint8Array(data as ArrayBuffer));
    } catch (err) {
      this.log.warn({ code: (err as RelaycastError).code }, 'ignoring malformed tracker message');
      return;
    }
    switch (msg.type) {
      case 'hello':
        if (this.ready) return;
        clearTimeout(this.helloTimer);
        this.iceServersFromTracker = msg.iceServers ?? [];
        this.ready = true;
        this.attempt = 0;
        this.emit('connected');
        return;
      case 'shortlist': {
        const list = this.joins.get(msg.swarmId);
        this.joins.delete(msg.swarmId);
        for (const j of list ?? []) j.resolve(msg.relays);
        return;
      }
      case 'signal':
        this.emit('signal', msg);
        return;
      case 'error': {
        this.log.warn({ code: msg.code, ref: msg.ref }, 'tracker error');
        const err = new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, `tracker refused ${msg.ref ?? 'a message'}: ${msg.code} ${msg.message}`, {
          details: { code: msg.code, ref: msg.ref },
        });
        if (msg.ref === 'join') this.failJoins(err);
        this.emit('error', err);
        return;
      }
      case 'registered':
        return;
    }
  }

  private onClose(ws: WebSocket): void {
    if (this.ws !== ws) return;
    clearTimeout(this.helloTimer);
    this.ws = undefined;
    const wasReady = this.ready;
    this.ready = false;
    this.failJoins(new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'tracker connection closed'));
    if (wasReady) this.emit('disconnected');
    else this.emit('connect-failed');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const base = Math.min(this.options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS, (this.options.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS) * 2 ** this.attempt);
    this.attempt++;
    this.reconnectTimer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }
}
