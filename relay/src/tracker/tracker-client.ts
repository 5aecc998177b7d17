import {
  ErrorCode,
  RelaycastError,
  TRACKER_SUBPROTOCOL,
  decodeTrackerServerMessage,
  encodeTrackerMessage,
  fromBase64,
  registrationSigningBytes,
  toBase64,
  toRelaycastError,
  type HelloMessage,
  type RegisterMessage,
  type ReachabilityMessage,
  type SignalMessage,
  type SignalPayload,
  type TrackerClientMessage,
  type TrackerServerMessage,
} from '@relaycast/protocol';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import {
  DEFAULT_MAX_PENDING_PEERS,
  DEFAULT_MAX_PENDING_PEERS_PER_VIEWER,
  DEFAULT_PEER_CONNECT_TIMEOUT_MS,
  DEFAULT_RECONNECT_MAX_MS,
  DEFAULT_RECONNECT_MIN_MS,
  DEFAULT_TRACKER_HANDSHAKE_TIMEOUT_MS,
  TRACKER_CLIENT_MAX_PAYLOAD_BYTES,
} from '../constants.js';
import type { RelayKeypair } from '../keypair.js';
import type { RelayPeer, RelayTransport } from '../transport/transport.js';

/**
 * What the relay reports about itself in `register` and `heartbeat`: the register message's own
 * fields (protocol/src/tracker-messages.ts), so the two cannot drift. `nat` is the relay's view
 * of its network (port mapping, public address); absent = not reported.
 */
export type RelayAdvertisement = Omit<RegisterMessage, 'type' | 'relayId' | 'signature'>;

/** The signing half of a relay identity (RelayKeypair satisfies it). */
export type RelaySigner = Pick<RelayKeypair, 'relayId' | 'sign'>;

export interface TrackerClientOptions {
  /** Tracker WebSocket URL (`ws://` or `wss://`). Required. */
  trackerUrl: string;
  /** The relay identity that signs the registration challenge. Required. */
  keypair: RelaySigner;
  /** Accepts viewers' offers. Required. */
  transport: RelayTransport;
  /** Current figures for `register` and `heartbeat`, read each time one is sent. Required. */
  advertise: () => RelayAdvertisement;
  /** Receives every accepted peer (the relay node serves its data channels). Required. */
  onPeer: (peer: RelayPeer, viewerPeerId: string) => void;
  /** Gets every `hello` (its ICE servers, for STUN discovery and the relay's own candidates). Default: none. */
  onHello?: ((hello: HelloMessage) => void) | undefined;
  /** Gets every accepted `registered` (its `trackerKey` signs the assignments viewers bind with). Default: none. */
  onRegistered?: ((msg: Extract<TrackerServerMessage, { type: 'registered' }>) => void) | undefined;
  /** Gets the tracker's reachability verdicts. Default: none. */
  onReachability?: ((msg: ReachabilityMessage) => void) | undefined;
  /** ICE candidate lines added to every answer (e.g. a port-mapped public address). Default: none. */
  extraCandidates?: (() => string[]) | undefined;
  /**
   * Peers still negotiating at once. When full, a new viewer's offer replaces the oldest pending
   * offer of the viewer holding the most slots (so one viewer's flood never keeps another viewer
   * out); an offer that would not be fairer than that is refused with RC_ERR_OFFER_LIMIT.
   * Default: DEFAULT_MAX_PENDING_PEERS.
   */
  maxPendingPeers?: number | undefined;
  /** Peers one viewer (tracker peer id) may have negotiating at once; more offers get RC_ERR_OFFER_LIMIT. Default: DEFAULT_MAX_PENDING_PEERS_PER_VIEWER. */
  maxPendingPeersPerViewer?: number | undefined;
  /** A peer without a data channel after this long is closed. Default: DEFAULT_PEER_CONNECT_TIMEOUT_MS (20 s). */
  peerConnectTimeoutMs?: number | undefined;
  /** First reconnect delay; doubles per failed attempt up to reconnectMaxMs, with jitter. Default: DEFAULT_RECONNECT_MIN_MS (500 ms). */
  reconnectMinMs?: number | undefined;
  /** Longest reconnect delay. Default: DEFAULT_RECONNECT_MAX_MS (15 s). */
  reconnectMaxMs?: number | undefined;
  /** Time the WebSocket handshake may take. Default: DEFAULT_TRACKER_HANDSHAKE_TIMEOUT_MS (10 s). */
  handshakeTimeoutMs?: number | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

interface PendingPeer {
  peer: RelayPeer;
  timer: NodeJS.Timeout;
  viewer: string;
}

/** Offers turned away or displaced, by reason code, for the relay's status. */
export interface OfferStats {
  /** Offers refused, by RelaycastError code (RC_ERR_OFFER_LIMIT, RC_ERR_RELAY_OVERLOADED, RC_ERR_MESSAGE_FIELD ...). */
  refused: Record<string, number>;
  /** Pending peers closed to make room for another viewer's offer. */
  displaced: number;
}

/**
 * Keeps the relay registered with its tracker: proves its key on every `hello`, heartbeats, turns
 * viewers' offers (relayed by the tracker) into peers, and reconnects with backoff whenever the
 * socket drops.
 */
export class TrackerClient {
  private ws: WebSocket | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private isRegistered = false;
  private registeredWaiters: (() => void)[] = [];
  private readonly pending = new Map<string, PendingPeer>();
  private readonly log: Logger | undefined;
  private readonly maxPending: number;
  private readonly maxPendingPerViewer: number;
  /** Pending peers per viewer peer id (entries removed at zero, so bounded by maxPending). */
  private readonly pendingByViewer = new Map<string, number>();
  private readonly offers: OfferStats = { refused: {}, displaced: 0 };

  constructor(private readonly options: TrackerClientOptions) {
    let url: URL;
    try {
      url = new URL(options.trackerUrl);
    } catch {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'tracker URL is not a valid URL');
    }
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'tracker URL must be ws:// or wss://');
    this.maxPending = options.maxPendingPeers ?? DEFAULT_MAX_PENDING_PEERS;
    this.maxPendingPerViewer = options.maxPendingPeersPerViewer ?? DEFAULT_MAX_PENDING_PEERS_PER_VIEWER;
    for (const [name, v] of [
      ['maxPendingPeers', this.maxPending],
      ['maxPendingPeersPerViewer', this.maxPendingPerViewer],
    ] as const) {
      if (!Number.isSafeInteger(v) || v < 1) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a positive integer`);
    }
    this.log = options.logger?.child({ component: 'tracker-client' });
  }

  /** True while the current connection is registered. */
  get registered(): boolean {
    return this.isRegistered;
  }

  /** Peers still negotiating. */
  get pendingPeers(): number {
    return this.pending.size;
  }

  /** Offers refused (by code) and pending peers displaced so far. */
  offerStats(): OfferStats {
    return { refused: { ...this.offers.refused }, displaced: this.offers.displaced };
  }

  /**
   * Connects (retrying with backoff) and resolves after the first successful registration.
   * Rejects with RC_ERR_ABORTED if `signal` aborts first; the client keeps retrying unless closed.
   */
  start(signal?: AbortSignal): Promise<void> {
    if (this.stopped) return Promise.reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'tracker client is closed'));
    if (this.ws === undefined && this.reconnectTimer === undefined) this.connect();
    return this.whenRegistered(signal);
  }

  /** Resolves when registered (now or after the next registration). */
  whenRegistered(signal?: AbortSignal): Promise<void> {
    if (this.isRegistered) return Promise.resolve();
    return new Promise((resolve, reject) => {
      if (signal?.aborted === true) return reject(new RelaycastError(ErrorCode.ABORTED, 'tracker registration aborted'));
      const onAbort = (): void => {
        this.registeredWaiters = this.registeredWaiters.filter((w) => w !== done);
        reject(new RelaycastError(ErrorCode.ABORTED, 'tracker registration aborted'));
      };
      const done = (): void => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.registeredWaiters.push(done);
    });
  }

  /** Sends a heartbeat now (after a load change) instead of waiting for the next tick. */
  heartbeatNow(): void {
    if (!this.isRegistered) return;
    const a = this.options.advertise();
    this.send({ type: 'heartbeat', capacity: a.capacity, load: a.load, streams: a.streams, nat: a.nat });
  }

  /** Stops reconnecting, closes negotiating peers and the socket. Accepted peers are the owner's. */
  close(): void {
    this.stopped = true;
    this.isRegistered = false;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    for (const { peer, timer } of this.pending.values()) {
      clearTimeout(timer);
      peer.close();
    }
    this.pending.clear();
    this.ws?.close(1000, 'relay shutting down');
    this.ws = undefined;
  }

  private connect(): void {
    this.reconnectTimer = undefined;
    if (this.stopped) return;
    const ws = new WebSocket(this.options.trackerUrl, TRACKER_SUBPROTOCOL, {
      maxPayload: TRACKER_CLIENT_MAX_PAYLOAD_BYTES,
      handshakeTimeout: this.options.handshakeTimeoutMs ?? DEFAULT_TRACKER_HANDSHAKE_TIMEOUT_MS,
    });
    this.ws = ws;
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      if (this.ws !== ws) return;
      if (isBinary) {
        this.log?.warn('ignoring a binary tracker message');
        return;
      }
      this.onMessage(data);
    });
    ws.on('close', (code) => {
      if (this.ws !== ws) return;
      this.ws = undefined;
      this.isRegistered = false;
      clearInterval(this.heartbeat);
      if (this.stopped) return;
      const min = this.options.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS;
      const max = this.options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS;
      const base = Math.min(max, min * 2 ** Math.min(this.attempt, 30));
      // Full jitter over the upper half: relays dropped by one tracker restart do not reconnect in lockstep.
      const delay = base / 2 + Math.random() * (base / 2);
      this.attempt++;
      this.log?.warn({ code, delayMs: Math.round(delay), attempt: this.attempt }, 'tracker connection lost; reconnecting');
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
    ws.on('error', (err) => this.log?.debug({ err: err.message }, 'tracker socket error'));
  }

  private send(msg: TrackerClientMessage): void {
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    try {
      this.ws.send(encodeTrackerMessage(msg));
    } catch (err) {
      this.log?.warn({ code: toRelaycastError(err).code, type: msg.type }, 'could not send a tracker message');
    }
  }

  private onMessage(data: Buffer): void {
    let msg: TrackerServerMessage;
    try {
      msg = decodeTrackerServerMessage(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    } catch (err) {
      this.log?.warn({ code: toRelaycastError(err).code }, 'ignoring a malformed tracker message');
      return;
    }
    switch (msg.type) {
      case 'hello': {
        const nonce = fromBase64(msg.nonce) as Uint8Array; // the decoder checked it is 32 bytes of base64
        const a = this.options.advertise();
        this.send({
          type: 'register',
          relayId: this.options.keypair.relayId,
          signature: toBase64(this.options.keypair.sign(registrationSigningBytes(nonce))),
          capacity: a.capacity,
          load: a.load,
          region: a.region,
          pricePerGiB: a.pricePerGiB,
          streams: a.streams,
          nat: a.nat,
        });
        this.options.onHello?.(msg);
        clearInterval(this.heartbeat);
        if (msg.heartbeatIntervalMs > 0) {
          this.heartbeat = setInterval(() => this.heartbeatNow(), msg.heartbeatIntervalMs);
          this.heartbeat.unref();
        }
        return;
      }
      case 'registered':
        if (msg.relayId !== this.options.keypair.relayId) {
          this.log?.warn({ relayId: msg.relayId }, 'tracker registered another relay id; ignoring');
          return;
        }
        this.attempt = 0;
        this.isRegistered = true;
        this.log?.info({ relayId: msg.relayId }, 'registered with tracker');
        this.options.onRegistered?.(msg);
        for (const w of this.registeredWaiters.splice(0)) w();
        return;
      case 'signal':
        this.onSignal(msg);
        return;
      case 'error':
        this.log?.warn({ code: msg.code, ref: msg.ref, message: msg.message }, 'tracker reported an error');
        return;
      case 'reachability':
        this.options.onReachability?.(msg);
        return;
      case 'shortlist':
        return;
    }
  }

  /**
   * Checks the pending-peer caps for a new offer from `viewer`, closing another viewer's oldest
   * pending peer when the relay-wide cap is full and that viewer holds more slots than `viewer`
   * would. Returns the refusal (RC_ERR_OFFER_LIMIT) when the offer may not be accepted.
   */
  private makeRoomFor(viewer: string): RelaycastError | undefined {
    const mine = this.pendingByViewer.get(viewer) ?? 0;
    if (mine >= this.maxPendingPerViewer) {
      return new RelaycastError(ErrorCode.OFFER_LIMIT, `viewer already has ${mine} connections negotiating with this relay`, {
        details: { scope: 'viewer', limit: this.maxPendingPerViewer },
      });
    }
    if (this.pending.size < this.maxPending) return undefined;
    let victim: { key: string; entry: PendingPeer } | undefined;
    let most = 0;
    // Map order is offer order: the first entry of the viewer with the most slots is its oldest.
    for (const [key, entry] of this.pending) {
      const n = this.pendingByViewer.get(entry.viewer) ?? 0;
      if (n > most) {
        most = n;
        victim = { key, entry };
      }
    }
    if (victim === undefined || most <= mine) {
      return new RelaycastError(ErrorCode.OFFER_LIMIT, `${this.pending.size} connections already negotiating with this relay`, {
        details: { scope: 'relay', limit: this.maxPending },
      });
    }
    this.offers.displaced++;
    this.log?.debug({ viewer: victim.entry.viewer, pendingOfViewer: most }, 'closing the oldest pending peer of the viewer holding the most slots');
    victim.entry.peer.close(); // its onClose settles it and frees the slot at once
    if (this.pending.get(victim.key) === victim.entry) {
      // A peer whose close does not call back synchronously still frees the slot now.
      clearTimeout(victim.entry.timer);
      this.pending.delete(victim.key);
      const left = most - 1;
      if (left <= 0) this.pendingByViewer.delete(victim.entry.viewer);
      else this.pendingByViewer.set(victim.entry.viewer, left);
    }
    return undefined;
  }

  private refuseOffer(err: RelaycastError, viewer: string): void {
    this.offers.refused[err.code] = (this.offers.refused[err.code] ?? 0) + 1;
    // Debug, not warn: a flood of refused offers must not become a flood of log lines.
    this.log?.debug({ code: err.code, viewer, pending: this.pending.size }, 'offer refused');
  }

  private onSignal(msg: SignalMessage): void {
    const from = msg.from;
    if (from === undefined) return;
    const key = `${from}/${msg.connectionId}`;
    const { signal } = msg;
    if (signal.kind === 'candidate') {
      this.pending.get(key)?.peer.addRemoteCandidate(signal.candidate, signal.sdpMid);
      return;
    }
    if (signal.kind !== 'offer') return; // an answer or end-of-candidates means nothing to a relay
    if (this.pending.has(key)) return;
    const refused = this.makeRoomFor(from);
    if (refused !== undefined) {
      this.refuseOffer(refused, from);
      return;
    }
    let peer: RelayPeer;
    try {
      peer = this.options.transport.acceptOffer(key, signal.sdp);
    } catch (err) {
      this.refuseOffer(toRelaycastError(err), from);
      return;
    }
    const timer = setTimeout(() => {
      this.log?.debug({ viewer: from }, 'peer did not connect in time');
      peer.close();
    }, this.options.peerConnectTimeoutMs ?? DEFAULT_PEER_CONNECT_TIMEOUT_MS);
    timer.unref();
    this.pending.set(key, { peer, timer, viewer: from });
    this.pendingByViewer.set(from, (this.pendingByViewer.get(from) ?? 0) + 1);
    const settle = (): void => {
      clearTimeout(timer);
      if (this.pending.get(key)?.peer !== peer) return;
      this.pending.delete(key);
      const left = (this.pendingByViewer.get(from) ?? 1) - 1;
      if (left <= 0) this.pendingByViewer.delete(from);
      else this.pendingByViewer.set(from, left);
    };
    peer.onClose(settle);

    // Candidates must not overtake the answer: a browser refuses candidates before its remote description.
    const sendSignal = (s: SignalPayload): void => this.send({ type: 'signal', to: from, connectionId: msg.connectionId, signal: s });
    let answered = false;
    const early: SignalPayload[] = [];
    let extrasSent = false;
    peer.onLocalCandidate((c) => {
      const out: SignalPayload[] = [];
      // Extra candidates go out with the first real one, whose m-line id they share.
      if (!extrasSent) {
        extrasSent = true;
        for (const candidate of this.options.extraCandidates?.() ?? []) out.push({ kind: 'candidate', candidate, sdpMid: c?.sdpMid ?? '0' });
      }
      out.push(c === undefined ? { kind: 'end-of-candidates' } : { kind: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid });
      for (const s of out) {
        if (answered) sendSignal(s);
        else early.push(s);
      }
    });
    peer.answer.then(
      (sdp) => {
        sendSignal({ kind: 'answer', sdp });
        answered = true;
        for (const s of early.splice(0)) sendSignal(s);
      },
      () => settle(),
    );
    // The owner subscribes to data channels; the first one to open ends the negotiation.
    this.options.onPeer(peer, from);
    peer.onDataChannel(() => settle());
  }
}
