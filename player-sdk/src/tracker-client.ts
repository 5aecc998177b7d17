import {
  ErrorCode,
  MAX_PREWARM_QUERY_BYTES,
  MAX_SHORTLIST_SIZE,
  RelaycastError,
  TRACKER_SUBPROTOCOL,
  bytesEqual,
  decodeSignedAssignment,
  encodeBase58,
  decodeTrackerServerMessage,
  encodePrewarmQuery,
  encodeTrackerMessage,
  fromBase64,
  toBase64,
  trackerSessionSigningBytes,
  type HelloShortlist,
  type PrewarmRequest,
  type RelayDescriptor,
  type SignalMessage,
  type IceServer,
  type ReportMessage,
  type SignalPayload,
  type TrackerClientMessage,
} from '@relaycast/protocol';
import {
  DEFAULT_HELLO_TIMEOUT_MS,
  DEFAULT_JOIN_TIMEOUT_MS,
  DEFAULT_RECONNECT_MAX_MS,
  DEFAULT_RECONNECT_MIN_MS,
  DEFAULT_TURN_TIMEOUT_MS,
  MAX_ASSIGNMENTS_KEPT,
} from './constants.js';
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
  /**
   * The socket is open and the tracker said hello (also after every reconnect). A pre-warmed hello's
   * shortlist is waiting in takeHelloShortlist() by then.
   */
  connected: () => void;
  disconnected: () => void;
  /** A connection attempt ended before the tracker said hello (unreachable, refused, no hello in time). */
  'connect-failed': () => void;
  /** The tracker refused something (its error message, as a RelaycastError with the tracker's code in details). */
  error: (err: RelaycastError) => void;
  /** A signed assignment of the current session to `relayId` arrived (in `assignments` or a shortlist). */
  assignment: (relayId: string) => void;
}

/**
 * The viewer session the tracker is told about: the signed grant and the session key that signs
 * the proof (the same key that signs BIND proofs and receipts; its private half stays in the page).
 */
export interface TrackerSession {
  /** Signed grant bytes, as the settler issued them. */
  grant: Uint8Array;
  /** The grant's session key (raw 32 bytes): assignments must name it. */
  sessionKey: Uint8Array;
  sign(message: Uint8Array): Promise<Uint8Array>;
}

interface PendingTurn {
  resolve: (servers: IceServer[]) => void;
  reject: (err: RelaycastError) => void;
}

interface PendingJoin {
  resolve: (relays: RelayDescriptor[]) => void;
  reject: (err: RelaycastError) => void;
}

/**
 * The viewer's tracker session: join → shortlist, signaling both ways, reconnect with backoff.
 * Losing the tracker never breaks playback; it only means no new relays until it is back.
 *
 * Pre-warm (docs/PROTOCOL.md 2.13): with a request set by prewarm(), every connection (reconnects
 * too) carries that join in its URL and the tracker answers with the shortlist in `hello`
 * (takeHelloShortlist()), without a join round trip. A tracker that refuses it says so with an
 * `error` event (`details.ref` "prewarm") and keeps the connection; one that does not know pre-warm
 * sends a plain hello. Either way the caller then joins as before.
 */
export class ViewerTrackerClient extends TypedEmitter<TrackerEvents> {
  private ws: WebSocket | undefined;
  private ready = false;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;
  private iceServersFromTracker: readonly IceServer[] = [];
  /** Raw nonce of the current connection's hello: the session proof signs it. */
  private helloNonce: Uint8Array | undefined;
  private session: TrackerSession | undefined;
  /** Signed assignments (raw 169 bytes) of the current session, by relay id; bounded. */
  private readonly assignmentsByRelay = new Map<string, Uint8Array>();
  private readonly turns = new Map<string, PendingTurn[]>();
  private readonly joins = new Map<string, PendingJoin[]>();
  /** The join each connection's URL carries (pre-warm); undefined: none. */
  private prewarmRequest: PrewarmRequest | undefined;
  /** The current connection's hello shortlist, until taken. */
  private helloShortlist: HelloShortlist | undefined;
  private readonly log: SdkLogger;
  private readonly WS: WebSocketConstructor;

  constructor(private readonly options: ViewerTrackerClientOptions) {
    super();
    this.log = options.logger ?? silentLogger;
    const WS = options.WebSocket ?? globalThis.WebSocket;
    if (WS === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'no WebSocket implementation available');
    this.WS = WS;
  }

  get isReady(): boolean {
    return this.ready;
  }

  /** STUN servers the tracker handed out in its latest hello (TURN comes per relay, from requestTurn). */
  get iceServers(): readonly IceServer[] {
    return this.iceServersFromTracker;
  }

  /**
   * Sets the viewer session to prove to the tracker: sent in a `session` message now if connected,
   * and again after every reconnect (each connection has its own hello nonce). A session with
   * another key forgets the assignments of the previous one.
   */
  setSession(session: TrackerSession): void {
    if (this.session === undefined || !bytesEqual(this.session.sessionKey, session.sessionKey)) this.assignmentsByRelay.clear();
    this.session = session;
    void this.sendSession();
  }

  /** The tracker's signed assignment of the current session to `relayId` (raw bytes), if it sent one. */
  assignmentFor(relayId: string): Uint8Array | undefined {
    return this.assignmentsByRelay.get(relayId);
  }

  /**
   * Asks the tracker for TURN credentials for the connection to `relayId` (a relay it handed us).
   * Resolves with the `ice` answer's servers; rejects with RC_ERR_TURN_REFUSED (refused),
   * RC_ERR_TIMEOUT (no answer in DEFAULT_TURN_TIMEOUT_MS), RC_ERR_TRACKER_UNAVAILABLE (not
   * connected, or the connection dropped) or RC_ERR_ABORTED.
   */
  requestTurn(relayId: string, signal?: AbortSignal): Promise<IceServer[]> {
    const timeout = AbortSignal.timeout(DEFAULT_TURN_TIMEOUT_MS);
    const abort = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        this.removeTurn(relayId, entry);
        reject(new RelaycastError(timeout.aborted ? ErrorCode.TIMEOUT : ErrorCode.ABORTED, 'no TURN credentials'));
      };
      const entry: PendingTurn = {
        resolve: (servers) => {
          abort.removeEventListener('abort', onAbort);
          resolve(servers);
        },
        reject: (err) => {
          abort.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      if (abort.aborted) return onAbort();
      abort.addEventListener('abort', onAbort, { once: true });
      const list = this.turns.get(relayId) ?? [];
      list.push(entry);
      this.turns.set(relayId, list);
      // One question per relay at a time: the tracker rate-limits `turn`.
      if (list.length === 1 && !this.send({ type: 'turn', relayId })) {
        this.removeTurn(relayId, entry);
        entry.reject(new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'tracker not connected'));
      }
    });
  }

  /**
   * Sets the join that every later connection carries in its URL (pre-warm), or none. Takes effect
   * at the next connection: call it before connect().
   */
  prewarm(request: PrewarmRequest | undefined): void {
    this.prewarmRequest = request;
  }

  /**
   * The relays the current connection's hello brought for `swarmId` (a pre-warm), once: later calls
   * return undefined until the next hello brings another. Undefined when the hello had none for it.
   */
  takeHelloShortlist(swarmId: string): RelayDescriptor[] | undefined {
    const s = this.helloShortlist;
    if (s === undefined || s.swarmId !== swarmId) return undefined;
    this.helloShortlist = undefined;
    return s.relays;
  }

  /** The tracker URL with the pre-warm query when there is one (and it is within what a tracker reads). */
  private connectUrl(): string {
    const req = this.prewarmRequest;
    if (req === undefined) return this.options.trackerUrl;
    const query = encodePrewarmQuery(req);
    // A tracker would refuse it as too large: join the usual way instead.
    if (query.length > MAX_PREWARM_QUERY_BYTES) return this.options.trackerUrl;
    try {
      const url = new URL(this.options.trackerUrl);
      for (const [k, v] of new URLSearchParams(query)) url.searchParams.set(k, v);
      return url.toString();
    } catch {
      return this.options.trackerUrl;
    }
  }

  /** Opens the socket (once; later drops reconnect by themselves with backoff and jitter until close()). */
  connect(): void {
    if (this.stopped || this.ws !== undefined) return;
    let ws: WebSocket;
    try {
      ws = new this.WS(this.connectUrl(), TRACKER_SUBPROTOCOL);
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
    this.settleTurns(undefined, { err: new RelaycastError(ErrorCode.ABORTED, 'tracker client closed') });
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

  /** Proves the session key to the tracker over this connection's nonce (again after each hello). */
  private async sendSession(): Promise<void> {
    const session = this.session;
    const nonce = this.helloNonce;
    const ws = this.ws;
    if (session === undefined || nonce === undefined || !this.ready) return;
    let proof: Uint8Array;
    try {
      proof = await session.sign(trackerSessionSigningBytes(nonce));
    } catch (err) {
      this.log.warn({ err: String(err) }, 'signing the tracker session proof failed');
      return;
    }
    // The connection or the session changed while signing: the newer one sends its own proof.
    if (this.ws !== ws || this.helloNonce !== nonce || this.session !== session) return;
    this.send({ type: 'session', grant: toBase64(session.grant), proof: toBase64(proof) });
  }

  /** Keeps an assignment that decodes and names the current session and that relay. */
  private keepAssignment(relayId: string, base64: string): void {
    const session = this.session;
    const bytes = fromBase64(base64);
    if (session === undefined || bytes === undefined) return;
    try {
      const a = decodeSignedAssignment(bytes).assignment;
      // The relay checks the tracker's signature; here only that it is ours and for that relay.
      if (!bytesEqual(a.sessionKey, session.sessionKey) || encodeBase58(a.relay) !== relayId) return;
    } catch {
      return;
    }
    const had = this.assignmentsByRelay.get(relayId);
    if (had !== undefined && bytesEqual(had, bytes)) return;
    this.assignmentsByRelay.delete(relayId);
    if (this.assignmentsByRelay.size >= MAX_ASSIGNMENTS_KEPT) this.assignmentsByRelay.delete(this.assignmentsByRelay.keys().next().value as string);
    this.assignmentsByRelay.set(relayId, bytes);
    this.emit('assignment', relayId);
  }

  private removeTurn(relayId: string, entry: PendingTurn): void {
    const list = this.turns.get(relayId)?.filter((e) => e !== entry) ?? [];
    if (list.length === 0) this.turns.delete(relayId);
    else this.turns.set(relayId, list);
  }

  private settleTurns(relayId: string | undefined, outcome: { servers: IceServer[] } | { err: RelaycastError }): void {
    const ids = relayId === undefined ? [...this.turns.keys()] : [relayId];
    for (const id of ids) {
      const list = this.turns.get(id) ?? [];
      this.turns.delete(id);
      for (const t of list) {
        if ('servers' in outcome) t.resolve(outcome.servers);
        else t.reject(outcome.err);
      }
    }
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
        // STUN only: a tracker that still hands out TURN here gets it ignored (TURN is per relay, on need).
        this.iceServersFromTracker = (msg.iceServers ?? [])
          .map((s) => ({ ...s, urls: s.urls.filter((u) => !/^turns?:/i.test(u)) }))
          .filter((s) => s.urls.length > 0);
        this.helloNonce = fromBase64(msg.nonce);
        this.helloShortlist = msg.shortlist;
        for (const d of msg.shortlist?.relays ?? []) if (d.assignment !== undefined) this.keepAssignment(d.relayId, d.assignment);
        this.ready = true;
        this.attempt = 0;
        this.emit('connected');
        void this.sendSession();
        return;
      case 'assignments':
        for (const a of msg.assignments) this.keepAssignment(a.relayId, a.assignment);
        return;
      case 'ice':
        this.settleTurns(msg.relayId, { servers: msg.iceServers });
        return;
      case 'shortlist': {
        for (const d of msg.relays) if (d.assignment !== undefined) this.keepAssignment(d.relayId, d.assignment);
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
        // The error does not say which relay; a refusal answers every pending question.
        if (msg.ref === 'turn')
          this.settleTurns(undefined, {
            err: new RelaycastError(ErrorCode.TURN_REFUSED, `tracker refused TURN: ${msg.code} ${msg.message}`, { details: { code: msg.code } }),
          });
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
    this.helloNonce = undefined;
    this.helloShortlist = undefined;
    this.failJoins(new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'tracker connection closed'));
    this.settleTurns(undefined, { err: new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'tracker connection closed') });
    if (wasReady) this.emit('disconnected');
    else this.emit('connect-failed');
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const base = Math.min(
      this.options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS,
      (this.options.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS) * 2 ** this.attempt,
    );
    this.attempt++;
    this.reconnectTimer = setTimeout(() => this.connect(), base / 2 + Math.random() * (base / 2));
  }
}
