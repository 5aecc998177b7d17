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
  type SignalMessage,
  type TrackerClientMessage,
} from '@relaycast/protocol';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { DEFAULT_MAX_PENDING_PEERS, DEFAULT_PEER_CONNECT_TIMEOUT_MS, DEFAULT_RECONNECT_MAX_MS, DEFAULT_RECONNECT_MIN_MS } from './constants.js';
import type { RelayKeypair } from './keypair.js';
import type { RelayPeer, RelayTransport } from './transport.js';

export interface RelayAdvertisement {
  capacity: number;
  load: number;
  region: string;
  pricePerGiB: string;
  streams: string[];
}

export interface RelayTrackerClientOptions {
  /** Tracker WebSocket URL. Required. */
  trackerUrl: string;
  /** The relay identity that signs the registration challenge. Required. */
  keypair: RelayKeypair;
  /** Accepts viewers' offers. Required. */
  transport: RelayTransport;
  /** Current figures for register and heartbeat messages. Required. */
  advertise: () => RelayAdvertisement;
  /** Called with every accepted peer (the relay node attaches channel servers). Required. */
  onPeer: (peer: RelayPeer, viewerPeerId: string) => void;
  /** Peers still negotiating at once; more offers are refused. Default: DEFAULT_MAX_PENDING_PEERS (64). */
  maxPendingPeers?: number | undefined;
  /** A peer without a data channel after this long is closed. Default: DEFAULT_PEER_CONNECT_TIMEOUT_MS (20 s). */
  peerConnectTimeoutMs?: number | undefined;
  /** First reconnect delay; doubles up to reconnectMaxMs, with jitter. Default: DEFAULT_RECONNECT_MIN_MS (500 ms). */
  reconnectMinMs?: number | undefined;
  /** Longest reconnect delay. Default: DEFAULT_RECONNECT_MAX_MS (15 s). */
  reconnectMaxMs?: number | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

/**
 * Keeps the relay registered with its tracker: proves its key, heartbeats, answers viewers' offers
 * relayed by the tracker, and reconnects with backoff whenever the socket drops.
 */
export class RelayTrackerClient {
  private ws: WebSocket | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private stopped = false;
  private registeredOnce!: Promise<void>;
  private resolveRegistered!: () => void;
  private readonly pending = new Map<string, RelayPeer>();
  private readonly log: Logger | undefined;

  constructor(private readonly options: RelayTrackerClientOptions) {
    this.log = options.logger?.child({ component: 'tracker-client' });
    this.registeredOnce = new Promise((resolve) => (this.resolveRegistered = resolve));
  }

  /** Connects and resolves after the first successful registration (keeps retrying until then). */
  start(signal?: AbortSignal): Promise<void> {
    this.connect();
    if (signal === undefined) return this.registeredOnce;
    return new Promise((resolve, reject) => {
      const onAbort = (): void => reject(new RelaycastError(ErrorCode.ABORTED, 'tracker registration aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
      void this.registeredOnce.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  /** Sends a heartbeat now (after a load change) instead of waiting for the next tick. */
  heartbeatNow(): void {
    const a = this.options.advertise();
    this.send({ type: 'heartbeat', capacity: a.capacity, load: a.load, streams: a.streams });
  }

  close(): void {
    this.stopped = true;
    clearInterval(this.heartbeat);
    clearTimeout(this.reconnectTimer);
    for (const peer of this.pending.values()) peer.close();
    this.pending.clear();
    this.ws?.close(1000, 'relay shutting down');
  }

  private connect(): void {
    if (this.stopped) return;
    const ws = new WebSocket(this.options.trackerUrl, TRACKER_SUBPROTOCOL, { maxPayload: 64 * 1024, handshakeTimeout: 10_000 });
    this.ws = ws;
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      this.onMessage(data as Buffer);
    });
    ws.on('close', (code) => {
      clearInterval(this.heartbeat);
      if (this.ws !== ws) return;
      this.ws = undefined;
      if (this.stopped) return;
      const base = Math.min(this.options.reconnectMaxMs ?? DEFAULT_RECONNECT_MAX_MS, (this.options.reconnectMinMs ?? DEFAULT_RECONNECT_MIN_MS) * 2 ** this.attempt);
      const delay = base / 2 + Math.random() * (base / 2);
      this.attempt++;
      this.log?.warn({ code, delayMs: Math.round(delay) }, 'tracker connection lost; reconnecting');
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    });
    ws.on('error', (err) => this.log?.debug({ err: err.message }, 'tracker socket error'));
  }

  private send(msg: TrackerClientMessage): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(encodeTrackerMessage(msg));
  }

  private onMessage(data: Buffer): void {
    let msg;
    try {
      msg = decodeTrackerServerMessage(data);
    } catch (err) {
      this.log?.warn({ code: toRelaycastError(err).code }, 'ignoring malformed tracker message');
      return;
    }
    switch (msg.type) {
      case 'hello': {
        const nonce = fromBase64(msg.nonce) as Uint8Array;
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
        });
        clearInterval(this.heartbeat);
        this.heartbeat = setInterval(() => this.heartbeatNow(), msg.heartbeatIntervalMs);
        this.heartbeat.unref();
        return;
      }
      case 'registered':
        this.attempt = 0;
        this.log?.info({ relayId: msg.relayId }, 'registered with tracker');
        this.resolveRegistered();
        return;
      case 'signal':
        return this.onSignal(msg);
      case 'error':
        this.log?.warn({ code: msg.code, ref: msg.ref, message: msg.message }, 'tracker reported an error');
        return;
      case 'shortlist':
        return;
    }
  }

  private onSignal(msg: SignalMessage): void {
    const from = msg.from as string;
    const key = `${from}/${msg.connectionId}`;
    const { signal } = msg;
    if (signal.kind === 'offer') {
      if (this.pending.has(key)) return;
      if (this.pending.size >= (this.options.maxPendingPeers ?? DEFAULT_MAX_PENDING_PEERS)) {
        this.log?.warn('too many pending peers; refusing offer');
        return;
      }
      let peer: RelayPeer;
      try {
        peer = this.options.transport.acceptOffer(key, signal.sdp);
      } catch (err) {
        this.log?.warn({ code: toRelaycastError(err).code }, 'offer refused');
        return;
      }
      this.pending.set(key, peer);
      const timeout = setTimeout(() => peer.close(), this.options.peerConnectTimeoutMs ?? DEFAULT_PEER_CONNECT_TIMEOUT_MS);
      timeout.unref();
      const settle = (): void => {
        clearTimeout(timeout);
        if (this.pending.get(key) === peer) this.pending.delete(key);
      };
      peer.onDataChannel(settle);
      peer.onClose(settle);
      // Candidates must not overtake the answer: a browser refuses candidates before its remote description.
      let answered = false;
      const early: SignalMessage['signal'][] = [];
      const sendSignal = (s: SignalMessage['signal']): void => this.send({ type: 'signal', to: from, connectionId: msg.connectionId, signal: s });
      peer.onLocalCandidate((c) => {
        const s: SignalMessage['signal'] =
          c === undefined ? { kind: 'end-of-candidates' } : { kind: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid };
        if (answered) sendSignal(s);
        else early.push(s);
      });
      peer.answer.then(
        (sdp) => {
          sendSignal({ kind: 'answer', sdp });
          answered = true;
          for (const s of early.splice(0)) sendSignal(s);
        },
        () => undefined,
      );
      this.options.onPeer(peer, from);
    } else if (signal.kind === 'candidate') {
      this.pending.get(key)?.addRemoteCandidate(signal.candidate, signal.sdpMid);
    }
  }
}
