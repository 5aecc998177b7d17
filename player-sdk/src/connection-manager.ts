import {
  ErrorCode,
  MAX_SHORTLIST_SIZE,
  RelaycastError,
  type IceServer,
  type ReceiptFrame,
  type RelayDescriptor,
  type SignalMessage,
} from '@relaycast/protocol';
import {
  DEFAULT_MAX_RELAYS,
  DEFAULT_MAX_REQUESTS_PER_RELAY,
  DEFAULT_REFILL_RETRY_MAX_MS,
  DEFAULT_REFILL_RETRY_MIN_MS,
  DEFAULT_REJOIN_INTERVAL_MS,
  DEFAULT_RELAY_BACKOFF_MS,
  DEFAULT_SHORTLIST_SIZE,
  MAX_BANNED_RELAYS,
  MAX_RELAYS_LIMIT,
} from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { RelayConnection, type RelayConnectionOptions } from './relay-connection.js';
import { SETUP_FAILURE_CAUSES, type FallbackReason, type SdkStats, type SetupFailureCause } from './stats.js';
import type { ViewerTrackerClient } from './tracker-client.js';
import { TypedEmitter } from './typed-emitter.js';

/** Consecutive time-outs after which a relay connection is dropped. */
const STRIKES_BEFORE_DROP = 2;
/** Delay before the one quick retry of a relay whose first connection attempt failed. */
const QUICK_RETRY_MS = 200;
/** Relays remembered as backed off before expired entries are pruned. */
const MAX_BACKOFF_ENTRIES = 64;
/** A connection being replaced is closed once idle, checked this often, and at the latest after RECYCLE_MAX_WAIT_MS. */
const RECYCLE_POLL_MS = 100;
const RECYCLE_MAX_WAIT_MS = 10_000;

/** Adds to a per-relay set kept at MAX_BACKOFF_ENTRIES, forgetting the oldest entry first. */
function addBounded(set: Set<string>, relayId: string): void {
  if (!set.has(relayId) && set.size >= MAX_BACKOFF_ENTRIES) set.delete(set.values().next().value as string);
  set.add(relayId);
}

export interface ConnectionManagerOptions {
  /** Tracker session used for joins and signaling. Required. */
  tracker: ViewerTrackerClient;
  /** Swarm to join (master playlist URL without query). Required. */
  swarmId: string;
  /** Warm relay connections to keep, clamped to 1-MAX_RELAYS_LIMIT (3). Default: DEFAULT_MAX_RELAYS (2). */
  maxRelays?: number | undefined;
  /** Relays asked for per join. Default: DEFAULT_SHORTLIST_SIZE (5). */
  shortlistSize?: number | undefined;
  /** Region hint for the tracker. Default: none. */
  region?: string | undefined;
  /**
   * Ask for the first shortlist in the tracker URL, so it comes with `hello` and offers start without
   * a join round trip (docs/PROTOCOL.md 2.13; every reconnect too). Default: true.
   */
  prewarm?: boolean | undefined;
  /** Make no connection attempt until `release()` (the tracker session and shortlist still come). Default: false. */
  held?: boolean | undefined;
  /** Where setup attempts, successes, failures by cause and per-relay setup times are counted. Default: none. */
  stats?: SdkStats | undefined;
  /** A relay whose connection failed or closed is not retried for this long. Default: DEFAULT_RELAY_BACKOFF_MS (30 s). */
  relayBackoffMs?: number | undefined;
  /** Joins for a fresh shortlist are at least this far apart. Default: DEFAULT_REJOIN_INTERVAL_MS (3 s). */
  rejoinIntervalMs?: number | undefined;
  /** First delay before trying again while short of relays (doubles). Default: DEFAULT_REFILL_RETRY_MIN_MS (1 s). */
  refillRetryMinMs?: number | undefined;
  /** Longest delay between such tries. Default: DEFAULT_REFILL_RETRY_MAX_MS (30 s). */
  refillRetryMaxMs?: number | undefined;
  /** Requests in flight per relay; a full relay is not picked. Default: DEFAULT_MAX_REQUESTS_PER_RELAY (6). */
  maxRequestsPerRelay?: number | undefined;
  /** WebRTC settings for each connection. Default: {} (globalThis.RTCPeerConnection, no ICE servers). */
  connection?: Omit<RelayConnectionOptions, 'relayId' | 'sendSignal' | 'logger' | 'maxConcurrentRequests'> | undefined;
  /** Called when a relay refuses a BIND or receipt. Default: none. */
  onPaymentError?: ((err: RelaycastError) => void) | undefined;
  /** Called when a relay's CHALLENGE arrives on its channel (it is a paid relay). Default: none. */
  onChallenge?: ((relayId: string) => void) | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

export interface ConnectionManagerEvents {
  'relay-connected': (relayId: string) => void;
  /** An open connection closed; `reason.details.violation` is set when the relay broke the protocol. */
  'relay-disconnected': (relayId: string, reason: RelaycastError) => void;
}

/**
 * Keeps up to `maxRelays` warm data channels from the tracker's shortlist, replaces those that
 * close or fail with the next shortlisted relay (re-joining for a fresh shortlist when the list is
 * used up), keeps failed relays out for a while, and picks the relay for each request.
 */
export class ConnectionManager extends TypedEmitter<ConnectionManagerEvents> {
  /** Open and connecting connections, by relay id. */
  private readonly connections = new Map<string, RelayConnection>();
  private readonly byConnectionId = new Map<string, RelayConnection>();
  private readonly backoffUntil = new Map<string, number>();
  private readonly strikes = new Map<string, number>();
  /** Relays whose first connection attempt failed and that were retried quickly once already. */
  private readonly retriedOnce = new Set<string>();
  /** Relays whose direct (TURN-less) attempt failed: later attempts ask the tracker for TURN. Bounded like the backoff table. */
  private readonly turnNeeded = new Set<string>();
  /** Relays whose connection waits for the tracker's TURN credentials (counted as connecting). */
  private readonly preparing = new Set<string>();
  /** Relays whose connection is being replaced by a fresh one (recycle): no backoff when it closes. */
  private readonly recycling = new Set<string>();
  private quickRetries = 0;
  /** Relays caught serving bad bytes: never used again by this client. */
  private readonly banned = new Set<string>();
  private shortlist: RelayDescriptor[] = [];
  private pumping = false;
  private pumpAgain = false;
  private closed = false;
  private lastJoinAt = -Infinity;
  private joinNow = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryDelayMs: number;
  private readonly waiters = new Set<() => void>();
  /** No connection attempts until `release()` (the startup policy's deferRelays). */
  private held: boolean;
  private readonly maxRelays: number;
  private readonly log: SdkLogger;
  private readonly onSignal = (msg: SignalMessage): void => {
    const conn = this.byConnectionId.get(msg.connectionId);
    // Only the relay this connection was opened to may steer it.
    if (conn !== undefined && conn.relayId === msg.from) void conn.handleSignal(msg.signal);
  };
  private readonly onTrackerConnected = (): void => {
    // A fresh tracker session (first connect or after a drop) knows nothing of this viewer: join
    // again even with a full warm set, so the tracker counts us and may hand us relays later. A
    // pre-warmed hello was that join already: its relays are used at once.
    if (!this.adoptHelloShortlist()) this.joinNow = true;
    void this.pump();
  };

  constructor(private readonly options: ConnectionManagerOptions) {
    super();
    this.maxRelays = Math.min(MAX_RELAYS_LIMIT, Math.max(1, Math.floor(options.maxRelays ?? DEFAULT_MAX_RELAYS)));
    this.retryDelayMs = options.refillRetryMinMs ?? DEFAULT_REFILL_RETRY_MIN_MS;
    this.log = options.logger ?? silentLogger;
    this.held = options.held === true;
    options.tracker.on('signal', this.onSignal);
    options.tracker.on('connected', this.onTrackerConnected);
    if (options.prewarm !== false) {
      options.tracker.prewarm({ swarmId: options.swarmId, region: options.region, count: this.shortlistSize() });
    }
  }

  private shortlistSize(): number {
    return Math.min(MAX_SHORTLIST_SIZE, Math.max(1, Math.floor(this.options.shortlistSize ?? DEFAULT_SHORTLIST_SIZE)));
  }

  /** Takes the shortlist a pre-warmed hello brought for our swarm, as the answer of a join made now. */
  private adoptHelloShortlist(): boolean {
    const relays = this.options.tracker.takeHelloShortlist(this.options.swarmId);
    if (relays === undefined) return false;
    this.shortlist = relays;
    this.lastJoinAt = Date.now();
    this.joinNow = false;
    return true;
  }

  /** Lets connection attempts begin (see ConnectionManagerOptions.held); later calls do nothing. */
  release(): void {
    if (!this.held) return;
    this.held = false;
    void this.pump();
  }

  /** A relay may open soon: attempts are held or in progress. */
  get settingUp(): boolean {
    if (this.closed) return false;
    return this.held || this.pumping || this.preparing.size > 0 || [...this.connections.values()].some((c) => !c.isOpen);
  }

  /** Resolves when a relay opens, after `ms`, or when `signal` aborts, whichever comes first; never rejects. */
  waitForRelay(ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.off('relay-connected', done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.on('relay-connected', done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Relays with an open data channel. */
  get connectedRelayIds(): string[] {
    return [...this.connections.values()].filter((c) => c.isOpen).map((c) => c.relayId);
  }

  /**
   * Whether a connection to this relay goes without TURN: it is not known to need it ('needs-turn'
   * from the tracker's test) and no direct attempt to it has failed. TURN is asked on need only.
   */
  private expectsDirect(relayId: string): boolean {
    return this.reachability(relayId) !== 'needs-turn' && !this.turnNeeded.has(relayId);
  }

  /** The tracker's reachability verdict for a shortlisted relay (undefined: untested or unknown). */
  reachability(relayId: string): RelayDescriptor['reachability'] {
    return this.shortlist.find((d) => d.relayId === relayId)?.reachability;
  }

  /** The open connection to a relay, if any (for tests and diagnostics). */
  connection(relayId: string): RelayConnection | undefined {
    const c = this.connections.get(relayId);
    return c?.isOpen === true ? c : undefined;
  }

  /**
   * Starts filling the warm set and resolves when `maxRelays` are open or nothing more can be tried
   * right now (no candidates, every attempt settled), or when `signal` aborts. Never rejects: no
   * relay at all is a normal state (loads go to the origin).
   */
  async start(signal?: AbortSignal): Promise<void> {
    // The tracker may have said hello before this manager listened.
    if (this.options.tracker.isReady) this.adoptHelloShortlist();
    void this.pump();
    await this.whenSettled(this.maxRelays, signal);
  }

  /**
   * Resolves once at least `minOpen` relays are open, or no join or connection attempt is in
   * progress, or `signal` aborts.
   */
  whenSettled(minOpen: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const check = (): void => {
        if (this.closed || signal?.aborted === true || this.connectedRelayIds.length >= minOpen || this.idle()) {
          this.waiters.delete(check);
          signal?.removeEventListener('abort', check);
          resolve();
        }
      };
      this.waiters.add(check);
      signal?.addEventListener('abort', check, { once: true });
      check();
    });
  }

  /**
   * Best open relay for a new request: fewest requests in flight, then highest measured throughput,
   * then lowest time to first byte. Undefined when none is open and below its request limit.
   */
  pick(exclude?: ReadonlySet<string>): RelayConnection | undefined {
    const max = this.options.maxRequestsPerRelay ?? DEFAULT_MAX_REQUESTS_PER_RELAY;
    let best: RelayConnection | undefined;
    for (const c of this.connections.values()) {
      if (!c.isOpen || c.activeRequests >= max || exclude?.has(c.relayId) === true) continue;
      if (best === undefined || better(c, best)) best = c;
    }
    return best;
  }

  /**
   * Reports a failed request. A relay is dropped after STRIKES_BEFORE_DROP failures in a row: one
   * slow answer or one upstream error (the origin behind the relay failing) keeps a warm connection,
   * a dead relay, whose channel may take ICE's consent timeout to close, goes quickly. Protocol
   * violations and closed channels need no report: the connection is closed already. ABSENT is not
   * a failure: the relay is healthy, it just lacks that segment.
   */
  reportFailure(relayId: string, reason: FallbackReason): void {
    if (reason === 'absent' || reason === 'no-relay') return;
    const conn = this.connections.get(relayId);
    if (conn === undefined || conn.isClosed) return;
    const strikes = (this.strikes.get(relayId) ?? 0) + 1;
    this.strikes.set(relayId, strikes);
    if (strikes >= STRIKES_BEFORE_DROP) {
      conn.close(new RelaycastError(ErrorCode.RELAY_ERROR, `relay dropped after ${strikes} failed requests (last: ${reason})`, { details: { reason } }));
    }
  }

  /** Sends a RECEIPT to a relay's open, bound connection; false when there is none. */
  sendReceipt(relayId: string, frame: ReceiptFrame): boolean {
    return this.connections.get(relayId)?.sendReceipt(frame) ?? false;
  }

  /**
   * Replaces a relay's connection with a fresh one as soon as it has no request in flight (at the
   * latest after RECYCLE_MAX_WAIT_MS). A renewed grant has a new session key, and a relay binds each
   * channel to one session for good: the new session needs a new channel.
   */
  recycle(relayId: string): void {
    const conn = this.connections.get(relayId);
    if (conn === undefined || conn.isClosed || this.recycling.has(relayId)) return;
    this.recycling.add(relayId);
    const deadline = Date.now() + RECYCLE_MAX_WAIT_MS;
    const closeWhenIdle = (): void => {
      if (this.closed || conn.isClosed) return;
      if (conn.activeRequests > 0 && Date.now() < deadline) {
        setTimeout(closeWhenIdle, RECYCLE_POLL_MS);
        return;
      }
      conn.close(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'replaced by a channel for the renewed grant'));
    };
    closeWhenIdle();
  }

  /** Closes the relay's connection and never uses it again (its bytes failed verification). */
  ban(relayId: string, reason: RelaycastError): void {
    if (this.banned.size >= MAX_BANNED_RELAYS) this.banned.delete(this.banned.values().next().value as string);
    this.banned.add(relayId);
    this.connections.get(relayId)?.close(reason);
  }

  reportSuccess(relayId: string): void {
    this.strikes.delete(relayId);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.options.tracker.off('signal', this.onSignal);
    this.options.tracker.off('connected', this.onTrackerConnected);
    for (const c of [...this.connections.values()]) c.close();
    this.connections.clear();
    this.byConnectionId.clear();
    this.notify();
  }

  private idle(): boolean {
    if (this.pumping || this.quickRetries > 0 || this.preparing.size > 0) return false;
    for (const c of this.connections.values()) if (!c.isOpen) return false;
    return true;
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /**
   * Tops the warm set up: launches connections to fresh shortlisted relays, joining for a new
   * shortlist when ours is used up. One pump runs at a time; a request for another while it awaits
   * the tracker makes it go round again, so a relay closing mid-join is still replaced.
   */
  private async pump(): Promise<void> {
    if (this.closed || this.held) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    try {
      do {
        this.pumpAgain = false;
        await this.pumpOnce();
      } while (this.pumpAgain && !this.closed);
    } finally {
      this.pumping = false;
    }
    this.scheduleRetry();
    this.notify();
  }

  private async pumpOnce(): Promise<void> {
    const need = (): number => this.maxRelays - this.connections.size - this.preparing.size;
    if (need() <= 0 && !this.joinNow) return;
    let candidates = this.freshCandidates(Date.now());
    const rejoinMs = this.options.rejoinIntervalMs ?? DEFAULT_REJOIN_INTERVAL_MS;
    const shortOfCandidates = candidates.length < need() && Date.now() - this.lastJoinAt >= rejoinMs;
    if ((this.joinNow || shortOfCandidates) && this.options.tracker.isReady) {
      this.joinNow = false;
      this.lastJoinAt = Date.now();
      try {
        this.shortlist = await this.options.tracker.join(this.options.swarmId, {
          region: this.options.region,
          count: this.shortlistSize(),
        });
      } catch (err) {
        this.log.debug({ code: (err as RelaycastError).code }, 'join failed');
      }
      if (this.closed) return;
      candidates = this.freshCandidates(Date.now());
    }
    for (const d of candidates.slice(0, Math.max(0, need()))) this.launch(d.relayId);
  }

  /** While short of relays, tries again later with a doubling delay (new shortlist, expired backoffs). */
  private scheduleRetry(): void {
    if (this.closed || this.retryTimer !== undefined || this.connections.size + this.preparing.size >= this.maxRelays) return;
    const delay = this.retryDelayMs;
    this.retryDelayMs = Math.min(this.options.refillRetryMaxMs ?? DEFAULT_REFILL_RETRY_MAX_MS, delay * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.pump();
    }, delay);
  }

  private freshCandidates(now: number): RelayDescriptor[] {
    return this.shortlist.filter(
      (d) =>
        !this.connections.has(d.relayId) && !this.preparing.has(d.relayId) && !this.banned.has(d.relayId) && (this.backoffUntil.get(d.relayId) ?? 0) <= now,
    );
  }

  /**
   * Connects to a relay: directly (the page's ICE servers and the tracker's STUN), or, for a relay
   * the tracker found 'needs-turn' or whose direct attempt failed, after asking the tracker for TURN
   * credentials for this one connection. Without them (refused, no answer) it tries anyway.
   */
  private launch(relayId: string): void {
    if (this.expectsDirect(relayId)) return this.openConnection(relayId, []);
    this.preparing.add(relayId);
    void this.options.tracker
      .requestTurn(relayId)
      .then(
        (servers) => servers,
        (err: unknown) => {
          this.log.debug({ relayId, code: (err as RelaycastError).code }, 'no TURN credentials for this relay');
          return [] as IceServer[];
        },
      )
      .then((turn) => {
        this.preparing.delete(relayId);
        if (this.closed) return;
        this.openConnection(relayId, turn);
        this.notify();
      });
  }

  private openConnection(relayId: string, turn: readonly IceServer[]): void {
    const stats = this.options.stats;
    stats?.setupAttempt();
    let conn: RelayConnection;
    try {
      const base = this.options.connection?.rtcConfiguration ?? {};
      // The page's own ICE servers first, then the tracker's STUN, then TURN asked for this relay.
      const iceServers = [...(base.iceServers ?? []), ...this.options.tracker.iceServers, ...turn];
      conn = new RelayConnection({
        ...this.options.connection,
        rtcConfiguration: iceServers.length === 0 ? base : { ...base, iceServers },
        relayId,
        maxConcurrentRequests: this.options.maxRequestsPerRelay,
        onPaymentError: this.options.onPaymentError,
        onChallenge: this.options.onChallenge,
        sendSignal: (to, id, s) => this.options.tracker.sendSignal(to, id, s),
        logger: this.log,
      });
    } catch (err) {
      this.log.warn({ code: (err as RelaycastError).code }, 'cannot create a relay connection');
      stats?.setupFailed(relayId, 'other');
      this.backoffUntil.set(relayId, Date.now() + (this.options.relayBackoffMs ?? DEFAULT_RELAY_BACKOFF_MS));
      return;
    }
    this.connections.set(relayId, conn);
    this.byConnectionId.set(conn.connectionId, conn);
    let wasOpen = false;
    conn.onClose((reason) => {
      this.byConnectionId.delete(conn.connectionId);
      this.strikes.delete(relayId);
      if (this.connections.get(relayId) === conn) this.connections.delete(relayId);
      if (this.closed) return;
      if (this.recycling.delete(relayId)) {
        // Replaced on purpose: connect again shortly (the same short pause as a quick retry lets
        // the old peer connection finish closing), counted as an attempt in progress.
        this.backoffUntil.set(relayId, Date.now() + QUICK_RETRY_MS);
        this.quickRetries++;
        setTimeout(() => {
          this.quickRetries--;
          void this.pump();
        }, QUICK_RETRY_MS + 10);
        if (wasOpen) this.emit('relay-disconnected', relayId, reason);
        this.notify();
        return;
      }
      // A direct attempt that never opened: the next one asks the tracker for TURN.
      if (!wasOpen && this.expectsDirect(relayId)) addBounded(this.turnNeeded, relayId);
      // A direct first attempt that never opened gets one quick retry, through TURN: the next
      // attempt takes another path. Nothing else is retried early: a setup that fails is a finding
      // (see the setup stats), not noise to hide. Later failures, or drops after opening, back off in full.
      const quick = !wasOpen && this.turnNeeded.has(relayId) && !this.retriedOnce.has(relayId);
      if (quick) addBounded(this.retriedOnce, relayId);
      this.backoffUntil.set(relayId, Date.now() + (quick ? QUICK_RETRY_MS : (this.options.relayBackoffMs ?? DEFAULT_RELAY_BACKOFF_MS)));
      if (quick) {
        // Counts as an attempt in progress, so start() waits for the retry rather than settling.
        this.quickRetries++;
        setTimeout(() => {
          this.quickRetries--;
          void this.pump();
        }, QUICK_RETRY_MS + 10);
      }
      if (this.backoffUntil.size > MAX_BACKOFF_ENTRIES) this.pruneBackoff();
      if (wasOpen) this.emit('relay-disconnected', relayId, reason);
      this.notify();
      void this.pump();
    });
    const setupStart = performance.now();
    conn.connect().then(
      () => {
        wasOpen = true;
        stats?.setupOpened(relayId, Math.round(performance.now() - setupStart));
        this.retryDelayMs = this.options.refillRetryMinMs ?? DEFAULT_REFILL_RETRY_MIN_MS;
        this.log.info({ relayId }, 'relay connected');
        this.emit('relay-connected', relayId);
        this.notify();
      },
      (err: unknown) => {
        this.log.debug({ relayId, code: (err as RelaycastError).code }, 'relay connection failed');
        // Attempts cut short by our own close() are not failures of the relay or the network.
        if (!this.closed) stats?.setupFailed(relayId, setupFailureCause(err));
      },
    );
  }

  /** Keeps the backoff table bounded: expired entries go. */
  private pruneBackoff(): void {
    const now = Date.now();
    for (const [id, until] of this.backoffUntil) if (until <= now) this.backoffUntil.delete(id);
  }
}

/**
 * The cause of a failed connection attempt, from what RelayConnection.connect() rejects with: a
 * `details.setupCause` it names is taken as it is; otherwise RC_ERR_TIMEOUT is `timeout`,
 * RC_ERR_TRACKER_UNAVAILABLE (offer not sent) and RC_ERR_RELAY_ERROR without a violation (unusable
 * answer) `signaling`, a peer connection that reached `failed` is `failed` (ICE and DTLS not told
 * apart), any other close before opening `closed`, the rest `other`.
 */
export function setupFailureCause(err: unknown): SetupFailureCause {
  if (!(err instanceof RelaycastError)) return 'other';
  const named = err.details?.['setupCause'];
  if (typeof named === 'string' && (SETUP_FAILURE_CAUSES as readonly string[]).includes(named)) return named as SetupFailureCause;
  switch (err.code) {
    case ErrorCode.TIMEOUT:
      return 'timeout';
    case ErrorCode.TRACKER_UNAVAILABLE:
      return 'signaling';
    case ErrorCode.RELAY_ERROR:
      return err.details?.['violation'] === undefined && err.details?.['code'] === undefined ? 'signaling' : 'other';
    case ErrorCode.CHANNEL_CLOSED:
      return /peer connection failed/.test(err.message) ? 'failed' : 'closed';
    case ErrorCode.ABORTED:
      return 'closed';
    default:
      return 'other';
  }
}

function better(a: RelayConnection, b: RelayConnection): boolean {
  if (a.activeRequests !== b.activeRequests) return a.activeRequests < b.activeRequests;
  if (a.throughputBytesPerMs !== b.throughputBytesPerMs) return a.throughputBytesPerMs > b.throughputBytesPerMs;
  // 0 means "not measured yet", not "instant".
  if (a.ttfbMs === 0 || a.ttfbMs === b.ttfbMs) return false;
  return b.ttfbMs === 0 || a.ttfbMs < b.ttfbMs;
}
