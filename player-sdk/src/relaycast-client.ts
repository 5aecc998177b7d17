import { ErrorCode, RelaycastError, bytesEqual, isAbortError, toRelaycastError } from '@relaycast/protocol';
import { ConnectionManager } from './connection-manager.js';
import { DEFAULT_MAX_RELAYS, GRANT_RENEW_BEFORE_MS, MAX_RECEIPT_ACCOUNTS } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import type { RTCPeerConnectionConstructor } from './relay-connection.js';
import { SdkStats, type SdkStatsSnapshot } from './stats.js';
import { DigestStore } from './digest-store.js';
import { SegmentLoader, type FallbackInfo, type IntegrityFailure, type LoadOptions, type LoadRequest, type LoadResult } from './segment-loader.js';
import { SegmentVerifier, type IntegrityOptions } from './segment-verifier.js';
import { resolveStartupOptions, type StartupOptions } from './startup-policy.js';
import { obtainGrant, type PaymentsOptions } from './grant-source.js';
import { ReceiptSigner, type ReceiptTotals } from './receipt-signer.js';
import { createSessionSigner } from './session-key.js';
import { ViewerTrackerClient, type WebSocketConstructor } from './tracker-client.js';
import { TypedEmitter } from './typed-emitter.js';

/** Options of `new RelaycastClient(...)`: only `swarmId` is required; without `trackerUrl` everything comes from the origin. */
export interface RelaycastClientOptions {
  /** Tracker WebSocket URL. Default: none (origin only: the SDK then behaves like plain HTTP). */
  trackerUrl?: string | undefined;
  /** Swarm id: the master playlist URL without query (see swarmIdFromUrl). Required. */
  swarmId: string;
  /** WebSocket implementation. Default: globalThis.WebSocket (pass `ws`'s WebSocket in Node). */
  WebSocket?: WebSocketConstructor | undefined;
  /** RTCPeerConnection implementation. Default: globalThis.RTCPeerConnection (node-datachannel's polyfill in Node). */
  RTCPeerConnection?: RTCPeerConnectionConstructor | undefined;
  /** Passed (copied) to every RTCPeerConnection; the tracker adds its STUN and, per relay, TURN servers. Default: `{}`. */
  rtcConfiguration?: RTCConfiguration | undefined;
  /** fetch for the origin. Default: globalThis.fetch. */
  fetch?: typeof fetch | undefined;
  /** Warm relay connections, clamped to 1-3. Default: DEFAULT_MAX_RELAYS (2). */
  maxRelays?: number | undefined;
  /** Relay time-to-first-byte deadline; loadSegment can override it per request. Default: DEFAULT_TTFB_TIMEOUT_MS (1.5 s). */
  ttfbTimeoutMs?: number | undefined;
  /** Longest silence mid-transfer before falling back. Default: DEFAULT_STALL_TIMEOUT_MS (2 s). */
  stallTimeoutMs?: number | undefined;
  /** WebRTC setup deadline per relay. Default: DEFAULT_CONNECT_TIMEOUT_MS (10 s). */
  connectTimeoutMs?: number | undefined;
  /**
   * The startup policy: loads with less than `lowBufferMs` buffered never wait for a relay (origin at
   * once, or a relay/origin race); loads with more are the relays'. Takes effect for loads that say
   * how much is buffered (`LoadOptions.bufferAheadMs`; the hls.js adapter always does). Nothing ever
   * waits for the first relay to connect. Default: see StartupOptions.
   */
  startup?: StartupOptions | undefined;
  /** Region hint for relay selection. Default: none. */
  region?: string | undefined;
  /**
   * How relay bytes are verified: every relay segment is checked against the SHA-256 the origin
   * publishes in `<media playlist>.digests.json`; this sets the policy for segments without one.
   * Default: `{ noDigestPolicy: 'refuse' }` (no digest, no relay).
   */
  integrity?: IntegrityOptions | undefined;
  /**
   * Micropayments: the SDK makes a session key in the page, obtains the platform's signed grant
   * for it, and signs running-total receipts for the verified bytes each relay delivered (see
   * docs/PAYMENTS.md). Default: none (no receipts; relays that require payment serve up to their
   * credit limit, then refuse, and the origin takes over).
   */
  payments?: PaymentsOptions | undefined;
  /** Logger with pino's call shape. Default: silent. */
  logger?: SdkLogger | undefined;
}

/** getStats() of a client: the SDK's counters plus payment totals. */
export interface RelaycastClientStats extends SdkStatsSnapshot {
  /** Receipt totals of the current grant; undefined without payments (or before a grant arrived). */
  payments: ReceiptTotals | undefined;
}

/** The `segment-loaded` event's argument: a `loadSegment` call that resolved. */
export interface SegmentLoadedInfo {
  /** The segment URL that was requested. */
  url: string;
  /** What `loadSegment` resolved with. */
  result: LoadResult;
}

/**
 * The events of `RelaycastClient` and `RelaycastHls` (`on(name, listener)`), by name with their
 * listener's signature. A listener that throws does not disturb delivery.
 */
export interface RelaycastClientEvents {
  /** A relay's data channel opened; `relayId` is its base58 public key. */
  'relay-connected': (relayId: string) => void;
  /** An open relay connection closed; `reason.details.violation` is set when the relay broke the protocol. */
  'relay-disconnected': (relayId: string, reason: RelaycastError) => void;
  /** A request (or its rest) went to the origin instead of a relay. */
  fallback: (info: FallbackInfo) => void;
  /** A `loadSegment` call resolved. */
  'segment-loaded': (info: SegmentLoadedInfo) => void;
  /**
   * A relay's bytes failed verification (RC_ERR_SEGMENT_INTEGRITY, evidence in `details`): they were
   * discarded and replaced by the origin's, the relay was dropped for good and reported to the
   * tracker, and none of its bytes for that segment count as verified (payable).
   */
  'integrity-failure': (err: RelaycastError) => void;
  /**
   * Something went wrong that playback survives or the caller also sees: a load that failed on the
   * origin too (the loadSegment promise rejects as well; aborts are not errors), a relay that broke
   * the protocol (it is dropped), the tracker refusing a message.
   */
  error: (err: RelaycastError) => void;
}

/**
 * The player-agnostic SDK: one per stream being played. Joins the tracker, keeps relays warm, and
 * loads segments from them with origin fallback, counting where every byte came from. A dead or
 * missing tracker never breaks playback: loads then go to the origin.
 */
export class RelaycastClient extends TypedEmitter<RelaycastClientEvents> {
  private readonly stats = new SdkStats();
  private readonly tracker: ViewerTrackerClient | undefined;
  private readonly manager: ConnectionManager | undefined;
  private readonly loader: SegmentLoader;
  private readonly digests: DigestStore;
  private closed = false;
  private starting: Promise<void> | undefined;
  private readonly closeController = new AbortController();
  private readonly fetchImpl: typeof fetch;
  private receipts: ReceiptSigner | undefined;
  /** The grant before the last renewal: channels bound to it keep receipting under it until replaced. */
  private previousReceipts: ReceiptSigner | undefined;
  /** Relays that sent a CHALLENGE (paid relays): only their verified bytes are receipted. Bounded. */
  private readonly paidRelays = new Set<string>();
  /** Connections with a BIND being signed, so one challenge gets one answer per grant. */
  private readonly binding = new Set<string>();
  private grantTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly log: SdkLogger;
  private readonly payments: PaymentsOptions | undefined;
  private readonly swarmId: string;

  constructor(options: RelaycastClientOptions) {
    super();
    if (typeof options.swarmId !== 'string' || options.swarmId.length === 0) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'swarmId is required');
    }
    const log = options.logger ?? silentLogger;
    // Resolved (and validated) once: the manager and the loader read the same settings.
    const startup = resolveStartupOptions(options.startup);
    this.log = log;
    this.payments = options.payments;
    this.swarmId = options.swarmId;
    if (options.trackerUrl !== undefined) {
      this.tracker = new ViewerTrackerClient({ trackerUrl: options.trackerUrl, WebSocket: options.WebSocket, logger: log });
      this.tracker.on('error', (err) => this.emit('error', err));
      this.tracker.on('assignment', (relayId) => void this.bind(relayId));
      this.manager = new ConnectionManager({
        tracker: this.tracker,
        swarmId: options.swarmId,
        maxRelays: options.maxRelays ?? DEFAULT_MAX_RELAYS,
        region: options.region,
        stats: this.stats,
        held: !startup.relaysAtStart,
        logger: log,
        onPaymentError: (err) => this.emit('error', err),
        onChallenge: (relayId) => {
          if (!this.paidRelays.has(relayId) && this.paidRelays.size >= MAX_RECEIPT_ACCOUNTS)
            this.paidRelays.delete(this.paidRelays.values().next().value as string);
          this.paidRelays.add(relayId);
          void this.bind(relayId);
        },
        connection: {
          RTCPeerConnection: options.RTCPeerConnection,
          rtcConfiguration: options.rtcConfiguration,
          connectTimeoutMs: options.connectTimeoutMs,
        },
      });
      this.manager.on('relay-connected', (id) => {
        // A paid relay's CHALLENGE may have come in before the channel counted as open.
        void this.bind(id);
        this.stats.relayReachability(id, this.manager?.reachability(id));
        void this.manager
          ?.connection(id)
          ?.networkPath()
          .then((path) => this.stats.relayPath(id, path));
        this.emit('relay-connected', id);
      });
      this.manager.on('relay-disconnected', (id, reason) => {
        this.emit('relay-disconnected', id, reason);
        if (reason.details?.['violation'] !== undefined) this.emit('error', reason);
      });
    }
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (fetchImpl === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'no fetch implementation available');
    // Browsers' fetch throws "Illegal invocation" when called with another `this`.
    const boundFetch = fetchImpl.bind(globalThis);
    this.fetchImpl = boundFetch;
    let lastCause: string | undefined;
    const digests = new DigestStore({
      fetch: boundFetch,
      digestWaitMs: options.integrity?.digestWaitMs,
      signal: this.closeController.signal,
      logger: log,
      onInvalidSidecar: (err) => this.emit('error', err),
      onMissing: (problem) => {
        this.stats.digestUnavailable(problem.cause, problem.sidecarUrl, problem.detail);
        // Said once per change of cause, so a stream that lost its digests does not go quiet.
        if (problem.cause !== lastCause) log.warn({ ...problem }, 'no segment digest for a relay load');
        lastCause = problem.cause;
      },
    });
    this.digests = digests;
    this.loader = new SegmentLoader({
      manager: this.manager,
      stats: this.stats,
      fetch: boundFetch,
      verifier: new SegmentVerifier(digests, this.stats, options.integrity),
      onIntegrityFailure: (failure) => this.onIntegrityFailure(failure),
      // Free relays (no CHALLENGE) get no receipts, and their bytes spend nothing of the budget.
      onVerifiedBytes: (relayId, bytes) => {
        if (!this.paidRelays.has(relayId)) return;
        // Bytes of a channel still bound to the previous grant are that grant's to pay.
        const bound = this.manager?.connection(relayId)?.boundGrant;
        const prev = this.previousReceipts;
        const signer = prev !== undefined && bound !== undefined && bytesEqual(bound, prev.grant.grant.nonce) ? prev : this.receipts;
        void signer?.credit(relayId, bytes);
      },
      ttfbTimeoutMs: options.ttfbTimeoutMs,
      stallTimeoutMs: options.stallTimeoutMs,
      startup,
      logger: log,
      onFallback: (info) => this.emit('fallback', info),
    });
  }

  /**
   * Makes a fresh session key and obtains a grant for it, then schedules the next renewal before
   * expiry. A new grant starts new running totals, and a new key makes it a new session for relays.
   * Failures are `error` events: playback goes on (relays that require payment fall away).
   */
  private async renewGrant(): Promise<void> {
    const payments = this.payments as PaymentsOptions;
    const stop = this.closeController.signal;
    try {
      const signer = await createSessionSigner();
      const scope = payments.scope ?? directoryOf(this.swarmId);
      const grant = await obtainGrant(payments, signer.publicKey, scope, this.fetchImpl, stop);
      if (stop.aborted) return;
      this.previousReceipts = this.receipts;
      this.receipts = new ReceiptSigner(signer, grant, (relayId, frame) => this.manager?.sendReceipt(relayId, frame) ?? false, this.log);
      // The same session key proves itself to the tracker (which then signs our assignments)
      // and to each paid relay (BIND, once the assignment for that relay is here).
      this.tracker?.setSession({ grant: this.receipts.grantBytes, sessionKey: signer.publicKey, sign: (m) => signer.sign(m) });
      for (const id of this.relays) {
        // A relay binds each channel to one session for good: a channel bound to the previous
        // grant is replaced (once idle) by a new one, which binds the new session.
        if (this.manager?.connection(id)?.boundGrant !== undefined) this.manager.recycle(id);
        else void this.bind(id);
      }
      this.log.info({ keyImpl: signer.implementation, expiresAtMs: grant.grant.expiresAtMs }, 'session grant obtained');
      const renewInMs = grant.grant.expiresAtMs - Date.now() - GRANT_RENEW_BEFORE_MS;
      if (renewInMs > 0) this.grantTimer = setTimeout(() => void this.renewGrant(), Math.min(renewInMs, 2 ** 31 - 1));
    } catch (err) {
      const e = toRelaycastError(err);
      if (!isAbortError(e)) this.emit('error', e);
    }
  }

  /**
   * Answers a paid relay's CHALLENGE with BIND once grant, challenge and the tracker's assignment
   * for that relay are all here (called whenever one of them arrives). One BIND per channel: after
   * a grant renewal the channel is replaced instead (see renewGrant). Receipts signed while the
   * channel was unbound follow the BIND.
   */
  private async bind(relayId: string): Promise<void> {
    const receipts = this.receipts;
    const conn = this.manager?.connection(relayId);
    const challenge = conn?.challenge;
    if (receipts === undefined || conn === undefined || challenge === undefined) return;
    const nonce = receipts.grant.grant.nonce;
    // Bound already (to this grant; or to a previous one, and then the channel is being replaced).
    if (conn.boundGrant !== undefined) return;
    const assignment = this.tracker?.assignmentFor(relayId);
    if (assignment === undefined) return; // the tracker's `assignments` will call again
    const key = conn.connectionId;
    if (this.binding.has(key)) return;
    this.binding.add(key);
    try {
      const frame = await receipts.bindFrame(challenge, relayId, assignment);
      // The grant may have been renewed, or the connection replaced, while signing.
      if (this.receipts !== receipts || this.manager?.connection(relayId) !== conn) return;
      if (conn.sendBind(frame, nonce)) await receipts.flush(relayId);
    } catch (err) {
      this.log.warn({ relayId, err: String(err) }, 'cannot bind the relay channel');
    } finally {
      this.binding.delete(key);
    }
    // A grant that arrived while signing: the channel, still unbound, binds the newer one.
    if (this.receipts !== receipts && conn.boundGrant === undefined) void this.bind(relayId);
  }

  private onIntegrityFailure(failure: IntegrityFailure): void {
    const err = new RelaycastError(ErrorCode.SEGMENT_INTEGRITY, 'relay bytes do not match the origin', { details: { ...failure } });
    this.manager?.ban(failure.relayId, err);
    this.tracker?.reportIntegrity({
      relayId: failure.relayId,
      url: failure.url,
      expectedSha256: failure.expectedSha256,
      receivedSha256: failure.receivedSha256,
    });
    this.emit('integrity-failure', err);
  }

  /** Relays with an open data channel. */
  get relays(): string[] {
    return this.manager?.connectedRelayIds ?? [];
  }

  /**
   * Connects to the tracker and warms relay connections. Resolves once that first attempt is over,
   * with or without relays (never rejects for want of relays: playback never waits on the relay
   * network); rejects only with RC_ERR_ABORTED when `signal` aborts or the client is closed.
   * Without a trackerUrl it resolves at once. Calling it again returns the same attempt.
   */
  start(signal?: AbortSignal): Promise<void> {
    if (this.closed) return Promise.reject(new RelaycastError(ErrorCode.ABORTED, 'client is closed'));
    this.stats.started();
    this.starting ??= this.warmUp();
    if (signal === undefined) return this.starting;
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => reject(new RelaycastError(ErrorCode.ABORTED, 'start aborted', { cause: signal.reason }));
      if (signal.aborted) return onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      (this.starting as Promise<void>).then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async warmUp(): Promise<void> {
    if (this.payments !== undefined) void this.renewGrant();
    if (this.tracker === undefined || this.manager === undefined) return;
    const tracker = this.tracker;
    const stop = this.closeController.signal;
    // The first attempt decides: hello, or a failure (refused, unreachable, no hello in time).
    const reached = await new Promise<boolean>((resolve) => {
      const finish = (ok: boolean): void => {
        tracker.off('connected', onConnected);
        tracker.off('connect-failed', onFailed);
        stop.removeEventListener('abort', onFailed);
        resolve(ok);
      };
      const onConnected = (): void => finish(true);
      const onFailed = (): void => finish(false);
      tracker.on('connected', onConnected);
      tracker.on('connect-failed', onFailed);
      stop.addEventListener('abort', onFailed, { once: true });
      tracker.connect();
      if (tracker.isReady) finish(true);
    });
    // Unreachable: the tracker client keeps reconnecting in the background (and the manager fills
    // the warm set once it is back); loads use the origin meanwhile.
    if (reached) await this.manager.start(stop);
  }

  /**
   * Lets relay connections begin when the client was made with `startup.relaysAtStart: false`
   * (the hls.js adapter calls it at the first frame). Does nothing otherwise, or when called again.
   */
  connectRelays(): void {
    this.manager?.release();
  }

  /**
   * Loads a segment (or byte range): from a relay, falling back to the origin (see SegmentLoader).
   * Rejects with RC_ERR_ABORTED when `options.signal` aborts, else only when the origin fails too.
   */
  async loadSegment(request: LoadRequest, options: LoadOptions = {}): Promise<LoadResult> {
    if (this.closed) throw new RelaycastError(ErrorCode.ABORTED, 'client is closed');
    if (request.playlistUrl !== undefined && request.live !== undefined) {
      this.digests.notePlaylist(request.playlistUrl, { live: request.live, targetDurationMs: request.targetDurationMs });
    }
    let result: LoadResult;
    try {
      result = await this.loader.load(request, options);
    } catch (err) {
      const e = toRelaycastError(err);
      if (!isAbortError(e)) this.emit('error', e);
      throw e;
    }
    this.emit('segment-loaded', { url: request.url, result });
    return result;
  }

  /** A plain JSON snapshot of where bytes came from, fallbacks, integrity and payments (see RelaycastClientStats). */
  getStats(): RelaycastClientStats {
    return { ...this.stats.snapshot(), payments: this.receipts?.totals() };
  }

  /** Closes the tracker session and every relay connection. Loads in flight keep going from the origin when they must. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.grantTimer);
    this.closeController.abort();
    this.manager?.close();
    this.tracker?.close();
  }
}

/** "https://cdn/x/master.m3u8" → "https://cdn/x/": the default grant scope of a stream. */
function directoryOf(url: string): string {
  const slash = url.lastIndexOf('/');
  return slash < 0 ? url : url.slice(0, slash + 1);
}
