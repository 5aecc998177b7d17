import {
  DATA_CHANNEL_LABEL,
  ErrorCode,
  FrameType,
  RelaycastError,
  decodeFrames,
  encodeFrame,
  toRelaycastError,
  type RelayFrame,
  type ResponseFrame,
  type SignalPayload,
  type ByteRange,
} from '@relaycast/protocol';
import { DEFAULT_CONNECT_TIMEOUT_MS, MAX_PENDING_CANDIDATES } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { randomId } from './random-id.js';

export type RTCPeerConnectionConstructor = new (config?: RTCConfiguration) => RTCPeerConnection;

export interface RelayConnectionOptions {
  /** Relay id (base58 public key) from the shortlist. Required. */
  relayId: string;
  /** Sends a signaling payload to the relay through the tracker. Required. */
  sendSignal: (to: string, connectionId: string, signal: SignalPayload) => boolean;
  /** RTCPeerConnection implementation. Default: globalThis.RTCPeerConnection. */
  RTCPeerConnection?: RTCPeerConnectionConstructor | undefined;
  /** Passed to every RTCPeerConnection (ICE servers; `bindAddress` with node-datachannel in Node). Default: {}. */
  rtcConfiguration?: RTCConfiguration | undefined;
  /** Offer to open data channel. Default: DEFAULT_CONNECT_TIMEOUT_MS (10 s). */
  connectTimeoutMs?: number | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

export interface RelayRequest {
  url: string;
  range?: ByteRange | undefined;
  playlistUrl?: string | undefined;
}

export interface RelayRequestHandlers {
  signal: AbortSignal;
  onResponse: (response: ResponseFrame) => void;
  onData: (chunk: Uint8Array) => void;
}

interface ActiveRequest {
  handlers: RelayRequestHandlers;
  received: number;
  responded: boolean;
  expectedOffset: number;
  resolve: (bytes: number) => void;
  reject: (err: RelaycastError) => void;
}

/** Smoothing of the per-relay throughput and TTFB estimates. */
const EWMA_ALPHA = 0.3;

/**
 * One WebRTC data channel to one relay, with requests multiplexed by id. Everything the relay
 * sends is checked against what was asked; a violation closes the connection (the relay is
 * then someone else's problem: the manager replaces it).
 */
export class RelayConnection {
  readonly relayId: string;
  readonly connectionId = randomId();
  private readonly pc: RTCPeerConnection;
  private channel: RTCDataChannel | undefined;
  private readonly requests = new Map<number, ActiveRequest>();
  private nextRequestId = 1;
  private closed = false;
  private open = false;
  private remoteDescriptionSet = false;
  private readonly earlyCandidates: RTCIceCandidateInit[] = [];
  private readonly closeListeners: ((reason: RelaycastError) => void)[] = [];
  private readonly log: SdkLogger;
  /** Bytes/ms estimate from completed transfers (0 until measured). */
  throughputBytesPerMs = 0;
  ttfbMs = 0;

  constructor(private readonly options: RelayConnectionOptions) {
    this.relayId = options.relayId;
    this.log = options.logger ?? silentLogger;
    const PC = options.RTCPeerConnection ?? (globalThis.RTCPeerConnection as RTCPeerConnectionConstructor | undefined);
    if (PC === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'no RTCPeerConnection implementation available');
    this.pc = new PC(options.rtcConfiguration ?? {});
  }

  get isOpen(): boolean {
    return this.open && !this.closed;
  }

  get activeRequests(): number {
    return this.requests.size;
  }

  onClose(listener: (reason: RelaycastError) => void): void {
    if (this.closed) queueMicrotask(() => listener(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'connection closed')));
    else this.closeListeners.push(listener);
  }

  /** Creates the offer, signals it, and resolves when the data channel opens. */
  async connect(signal?: AbortSignal): Promise<void> {
    const channel = this.pc.createDataChannel(DATA_CHANNEL_LABEL, { ordered: true });
    channel.binaryType = 'arraybuffer';
    this.channel = channel;
    channel.addEventListener('message', (ev: MessageEvent) => this.onMessage(ev.data));
    channel.addEventListener('close', () => this.close(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'data channel closed')));
    this.pc.addEventListener('icecandidate', (ev: RTCPeerConnectionIceEvent) => {
      const c = ev.candidate;
      if (c === null || c.candidate === '') this.signal({ kind: 'end-of-candidates' });
      else this.signal({ kind: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid ?? undefined });
    });
    this.pc.addEventListener('connectionstatechange', () => {
      if (this.pc.connectionState === 'failed' || this.pc.connectionState === 'closed') {
        this.close(new RelaycastError(ErrorCode.CHANNEL_CLOSED, `peer connection ${this.pc.connectionState}`));
      }
    });
    const opened = new Promise<void>((resolve, reject) => {
      const timeout = AbortSignal.timeout(this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
      const abort = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
      const onAbort = (): void => reject(new RelaycastError(timeout.aborted ? ErrorCode.TIMEOUT : ErrorCode.ABORTED, 'relay connection not established'));
      abort.addEventListener('abort', onAbort, { once: true });
      channel.addEventListener('open', () => {
        abort.removeEventListener('abort', onAbort);
        resolve();
      });
      this.onClose((reason) => reject(reason));
    });
    try {
      const offer = await this.pc.createOffer();
      await this.pc.setLocalDescription(offer);
      const sdp = this.pc.localDescription?.sdp ?? offer.sdp;
      if (sdp === undefined || !this.signal({ kind: 'offer', sdp })) {
        throw new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'cannot send the offer: tracker not connected');
      }
      await opened;
      this.open = true;
    } catch (err) {
      const e = toRelaycastError(err);
      this.close(e);
      throw e;
    }
  }

  /** Signaling from the relay, routed here by connection id. */
  async handleSignal(payload: SignalPayload): Promise<void> {
    if (this.closed) return;
    try {
      if (payload.kind === 'answer') {
        await this.pc.setRemoteDescription({ type: 'answer', sdp: payload.sdp });
        this.remoteDescriptionSet = true;
        for (const c of this.earlyCandidates.splice(0)) await this.pc.addIceCandidate(c);
      } else if (payload.kind === 'candidate') {
        // mDNS candidates cannot resolve here and would stall ICE.
        if (/\s[0-9a-f-]+\.local\s/i.test(payload.candidate)) return;
        const init: RTCIceCandidateInit = { candidate: payload.candidate, sdpMid: payload.sdpMid ?? '0' };
        if (this.remoteDescriptionSet) await this.pc.addIceCandidate(init);
        else if (this.earlyCandidates.length < MAX_PENDING_CANDIDATES) this.earlyCandidates.push(init);
      }
    } catch (err) {
      this.log.debug({ relayId: this.relayId, err: String(err) }, 'signal rejected');
    }
  }

  /**
   * Requests a segment (or range). Resolves with the byte count at END; rejects with
   * RC_ERR_SEGMENT_UNAVAILABLE (ABSENT), RC_ERR_RELAY_ERROR (ERROR frame, relay's code in details),
   * RC_ERR_CHANNEL_CLOSED or RC_ERR_ABORTED. Aborting sends CANCEL.
   */
  request(req: RelayRequest, handlers: RelayRequestHandlers): Promise<number> {
    if (!this.isOpen || this.channel === undefined) {
      return Promise.reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'relay connection is not open'));
    }
    const requestId = this.nextRequestId;
    this.nextRequestId = this.nextRequestId >= 0xffff_ffff ? 1 : this.nextRequestId + 1;
    const channel = this.channel;
    return new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.requests.delete(requestId)) return;
        if (channel.readyState === 'open') channel.send(encodeFrame({ type: FrameType.CANCEL, requestId }));
        reject(new RelaycastError(ErrorCode.ABORTED, 'request aborted'));
      };
      const done = (fn: () => void): void => {
        handlers.signal.removeEventListener('abort', onAbort);
        this.requests.delete(requestId);
        fn();
      };
      this.requests.set(requestId, {
        handlers,
        received: 0,
        responded: false,
        expectedOffset: req.range?.start ?? 0,
        resolve: (n) => done(() => resolve(n)),
        reject: (e) => done(() => reject(e)),
      });
      if (handlers.signal.aborted) return onAbort();
      handlers.signal.addEventListener('abort', onAbort, { once: true });
      try {
        channel.send(encodeFrame({ type: FrameType.REQUEST, requestId, url: req.url, range: req.range, playlistUrl: req.playlistUrl }));
      } catch (err) {
        this.requests.get(requestId)?.reject(toRelaycastError(err, ErrorCode.CHANNEL_CLOSED));
      }
    });
  }

  /** Feeds a completed transfer into this relay's speed estimates. */
  recordTransfer(bytes: number, ttfbMs: number, durationMs: number): void {
    const rate = bytes / Math.max(1, durationMs);
    this.throughputBytesPerMs = this.throughputBytesPerMs === 0 ? rate : this.throughputBytesPerMs * (1 - EWMA_ALPHA) + rate * EWMA_ALPHA;
    this.ttfbMs = this.ttfbMs === 0 ? ttfbMs : this.ttfbMs * (1 - EWMA_ALPHA) + ttfbMs * EWMA_ALPHA;
  }

  close(reason: RelaycastError = new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'connection closed')): void {
    if (this.closed) return;
    this.closed = true;
    this.open = false;
    for (const r of [...this.requests.values()]) r.reject(reason);
    this.requests.clear();
    try {
      this.channel?.close();
      this.pc.close();
    } catch {
      // closing twice is harmless
    }
    for (const l of this.closeListeners.splice(0)) l(reason);
  }

  private signal(payload: SignalPayload): boolean {
    return this.options.sendSignal(this.relayId, this.connectionId, payload);
  }

  private onMessage(data: unknown): void {
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else return this.violation('non-binary message from relay');
    let frames: RelayFrame[];
    try {
      frames = decodeFrames(bytes);
    } catch (err) {
      return this.violation(`malformed frame: ${toRelaycastError(err).code}`);
    }
    for (const frame of frames) this.onFrame(frame);
  }

  private onFrame(frame: RelayFrame): void {
    if (frame.type === FrameType.ERROR && frame.requestId === 0) {
      return this.close(new RelaycastError(ErrorCode.RELAY_ERROR, `relay closed the channel: ${frame.code}`, { details: { code: frame.code } }));
    }
    const req = this.requests.get(frame.requestId);
    if (req === undefined) return; // late frames of a cancelled request
    switch (frame.type) {
      case FrameType.RESPONSE:
        if (req.responded || frame.offset !== req.expectedOffset) return this.violation('unexpected RESPONSE');
        req.responded = true;
        req.handlers.onResponse(frame);
        return;
      case FrameType.DATA:
        if (!req.responded) return this.violation('DATA before RESPONSE');
        req.received += frame.chunk.byteLength;
        req.handlers.onData(frame.chunk);
        return;
      case FrameType.END:
        if (!req.responded || frame.bytesSent !== req.received) return this.violation('END does not match the bytes received');
        req.resolve(req.received);
        return;
      case FrameType.ABSENT:
        req.reject(new RelaycastError(ErrorCode.SEGMENT_UNAVAILABLE, 'relay does not have the segment'));
        return;
      case FrameType.ERROR:
        req.reject(new RelaycastError(ErrorCode.RELAY_ERROR, `relay error ${frame.code}: ${frame.message}`, { details: { code: frame.code } }));
        return;
      default:
        return this.violation(`relay sent frame type ${frame.type}`);
    }
  }

  private violation(what: string): void {
    this.log.warn({ relayId: this.relayId, what }, 'relay protocol violation');
    this.close(new RelaycastError(ErrorCode.RELAY_ERROR, `relay protocol violation: ${what}`));
  }
}
