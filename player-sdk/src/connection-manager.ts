import { ErrorCode, RelaycastError, type RelayDescriptor, type SignalMessage } from '@relaycast/protocol';
import { DEFAULT_MAX_RELAYS, DEFAULT_MAX_REQUESTS_PER_RELAY, DEFAULT_RELAY_BACKOFF_MS, DEFAULT_SHORTLIST_SIZE, MAX_RELAYS_LIMIT } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { RelayConnection, type RelayConnectionOptions } from './relay-connection.js';
import type { ViewerTrackerClient } from './tracker-client.js';
import type { FallbackReason } from './sdk-stats.js';
import { TypedEmitter } from './typed-emitter.js';

/** Consecutive time-outs after which a relay connection is dropped. */
const STRIKES_BEFORE_DROP = 2;

export interface ConnectionManagerOptions {
  /** Tracker session used for joins and signaling. Required. */
  tracker: ViewerTrackerClient;
  /** Swarm to join (master playlist URL without query). Required. */
  swarmId: string;
  /** Warm relay connections to keep (1-3). Default: DEFAULT_MAX_RELAYS (2). */
  maxRelays?: number | undefined;
  /** Relays asked for per join. Default: DEFAULT_SHORTLIST_SIZE (5). */
  shortlistSize?: number | undefined;
  /** Region hint for the tracker. Default: none. */
  region?: string | undefined;
  /** A failed relay is not retried for this long. Default: DEFAULT_RELAY_BACKOFF_MS (30 s). */
  relayBackoffMs?: number | undefined;
  /** Requests in flight per relay before it counts as busy. Default: DEFAULT_MAX_REQUESTS_PER_RELAY (6). */
  maxRequestsPerRelay?: number | undefined;
  /** WebRTC settings for each connection. */
  connection: Omit<RelayConnectionOptions, 'relayId' | 'sendSignal' | 'logger'>;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

interface ManagerEvents {
  'relay-connected': (relayId: string) => void;
  'relay-disconnected': (relayId: string, reason: RelaycastError) => void;
}

/**
 * Keeps up to `maxRelays` warm data channels from the tracker's shortlist, replaces those that
 * fail, and picks the relay for each request (fewest in flight, then fastest measured).
 */
export class ConnectionManager extends TypedEmitter<ManagerEvents> {
  private readonly connections = new Map<string, RelayConnection>();
  private readonly byConnectionId = new Map<string, RelayConnection>();
  private readonly backoffUntil = new Map<string, number>();
  private readonly strikes = new Map<string, number>();
  private shortlist: RelayDescriptor[] = [];
  private filling: Promise<void> | undefined;
  private closed = false;
  private lastJoinAt = -Infinity;
  private readonly maxRelays: number;
  private readonly log: SdkLogger;
  private readonly onSignal = (msg: SignalMessage): void => {
    void this.byConnectionId.get(msg.connectionId)?.handleSignal(msg.signal);
  };
  private readonly onTrackerConnected = (): void => {
    // Fresh tracker session (first connect or after a restart): refill from a new shortlist.
    this.lastJoinAt = -Infinity;
    this.refill();
  };

  constructor(private readonly options: ConnectionManagerOptions) {
    super();
    this.maxRelays = Math.min(MAX_RELAYS_LIMIT, Math.max(1, options.maxRelays ?? DEFAULT_MAX_RELAYS));
    this.log = options.logger ?? silentLogger;
    options.tracker.on('signal', this.onSignal);
    options.tracker.on('connected', this.onTrackerConnected);
  }

  /** Connected relays, for stats and tests. */
  get connectedRelayIds(): string[] {
    return [...this.connections.values()].filter((c) => c.isOpen).map((c) => c.relayId);
  }

  /** Fills the warm set; resolves when the attempt is over (with or without relays). */
  start(signal?: AbortSignal): Promise<void> {
    return this.fill(signal);
  }

  /** Best open relay for a new request, or undefined. */
  pick(exclude?: ReadonlySet<string>): RelayConnection | undefined {
    const max = this.options.maxRequestsPerRelay ?? DEFAULT_MAX_REQUESTS_PER_RELAY;
    let best: RelayConnection | undefined;
    for (const c of this.connections.values()) {
      if (!c.isOpen || c.activeRequests >= max || exclude?.has(c.relayId) === true) continue;
      if (
        best === undefined ||
        c.activeRequests < best.activeRequests ||
        (c.activeRequests === best.activeRequests && c.throughputBytesPerMs > best.throughputBytesPerMs)
      ) {
        best = c;
      }
    }
    return best;
  }

  /**
   * Reports a failed request. A closed channel or a protocol error drops the relay at once; time-outs
   * drop it after STRIKES_BEFORE_DROP in a row (a briefly slow relay keeps its warm connection, a
   * dead one, whose channel may take ICE's consent timeout to close, is dropped quickly).
   */
  reportFailure(relayId: string, reason: FallbackReason): void {
    const conn = this.connections.get(relayId);
    if (conn === undefined) return;
    const strikes = (this.strikes.get(relayId) ?? 0) + 1;
    this.strikes.set(relayId, strikes);
    const timeout = reason === 'ttfb-timeout' || reason === 'stall';
    if (!timeout || strikes >= STRIKES_BEFORE_DROP) {
      conn.close(new RelaycastError(ErrorCode.RELAY_ERROR, `relay dropped after ${reason}`));
    }
  }

  reportSuccess(relayId: string): void {
    this.strikes.delete(relayId);
  }

  close(): void {
    this.closed = true;
    this.options.tracker.off('signal', this.onSignal);
    this.options.tracker.off('connected', this.onTrackerConnected);
    for (const c of [...this.connections.values()]) c.close();
    this.connections.clear();
  }

  private refill(): void {
    if (!this.closed) void this.fill();
  }

  private fill(signal?: AbortSignal): Promise<void> {
    this.filling ??= this.doFill(signal).finally(() => {
      this.filling = undefined;
    });
    return this.filling;
  }

  private async doFill(signal?: AbortSignal): Promise<void> {
    if (this.closed || this.connections.size >= this.maxRelays) return;
    const now = Date.now();
    let candidates = this.freshCandidates(now);
    // Re-join for a fresh shortlist when ours is used up, at most every few seconds.
    if (candidates.length < this.maxRelays - this.connections.size && now - this.lastJoinAt > 3_000) {
      this.lastJoinAt = now;
      try {
        this.shortlist = await this.options.tracker.join(this.options.swarmId, {
          region: this.options.region,
          count: this.options.shortlistSize ?? DEFAULT_SHORTLIST_SIZE,
          signal,
        });
      } catch (err) {
        this.log.debug({ code: (err as RelaycastError).code }, 'join failed');
      }
      candidates = this.freshCandidates(Date.now());
    }
    const wanted = candidates.slice(0, this.maxRelays - this.connections.size);
    await Promise.all(wanted.map((d) => this.connect(d.relayId, signal)));
  }

  private freshCandidates(now: number): RelayDescriptor[] {
    return this.shortlist.filter((d) => !this.connections.has(d.relayId) && (this.backoffUntil.get(d.relayId) ?? 0) <= now);
  }

  private async connect(relayId: string, signal?: AbortSignal): Promise<void> {
    const conn = new RelayConnection({
      ...this.options.connection,
      relayId,
      sendSignal: (to, id, s) => this.options.tracker.sendSignal(to, id, s),
      logger: this.log,
    });
    this.connections.set(relayId, conn);
    this.byConnectionId.set(conn.connectionId, conn);
    conn.onClose((reason) => {
      this.byConnectionId.delete(conn.connectionId);
      this.strikes.delete(relayId);
      if (this.connections.get(relayId) === conn) this.connections.delete(relayId);
      if (this.closed) return;
      this.backoffUntil.set(relayId, Date.now() + (this.options.relayBackoffMs ?? DEFAULT_RELAY_BACKOFF_MS));
      this.emit('relay-disconnected', relayId, reason);
      this.refill();
    });
    try {
      await conn.connect(signal);
      this.log.info({ relayId }, 'relay connected');
      this.emit('relay-connected', relayId);
    } catch (err) {
      this.log.debug({ relayId, code: (err as RelaycastError).code }, 'relay connection failed');
    }
  }
}
