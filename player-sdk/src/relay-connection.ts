import {
  DATA_CHANNEL_LABEL,
  ErrorCode,
  FrameType,
  RelaycastError,
  decodeFrames,
  encodeFrame,
  toRelaycastError,
  type BindFrame,
  type ByteRange,
  type ReceiptFrame,
  type RelayFrame,
  type ResponseFrame,
  type SignalPayload,
} from '@relaycast/protocol';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_MAX_REQUESTS_PER_RELAY, MAX_PENDING_CANDIDATES } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import { randomId } from './random-id.js';

/** How a relay connection's bytes travel: straight between the peers, or through a TURN server. */
export type NetworkPath = 'direct' | 'relayed';

/** The RTCPeerConnection constructor the SDK needs: the browser's, or node-datachannel's polyfill in Node. */
export type RTCPeerConnectionConstructor = new (config?: RTCConfiguration) => RTCPeerConnection;

export interface RelayConnectionOptions {
  /** Relay id (base58 public key) from the shortlist. Required. */
  relayId: string;
  /** Sends a signaling payload to the relay through the tracker; false when it could not be sent. Required. */
  sendSignal: (to: string, connectionId: string, signal: SignalPayload) => boolean;
  /** RTCPeerConnection implementation. Default: globalThis.RTCPeerConnection. */
  RTCPeerConnection?: RTCPeerConnectionConstructor | undefined;
  /** Passed (copied) to every RTCPeerConnection: ICE servers; `bindAddress` with node-datachannel in Node. Default: {}. */
  rtcConfiguration?: RTCConfiguration | undefined;
  /** Offer to open data channel. Default: DEFAULT_CONNECT_TIMEOUT_MS (10 s). */
  connectTimeoutMs?: number | undefined;
  /** Requests in flight on this channel; more are refused with RC_ERR_RELAY_OVERLOADED. Default: DEFAULT_MAX_REQUESTS_PER_RELAY (6). */
  maxConcurrentRequests?: number | undefined;
  /** Called when the relay refuses a BIND or receipt (RC_ERR_GRANT_*, RC_ERR_RECEIPT_*, RC_ERR_BIND_PROOF, ...). Default: none. */
  onPaymentError?: ((err: RelaycastError) => void) | undefined;
  /** Called once when the relay's CHALLENGE arrives (a paid relay; a free one sends none). Default: none. */
  onChallenge?: ((relayId: string) => void) | undefined;
  /** Logger. Default: silent. */
  logger?: SdkLogger | undefined;
}

/**
 * How long after the answer is applied our ICE candidates are held back when ICE has not connected
 * by then (ms). Our candidates normally go to the relay only once ICE is connected (see
 * `sendLocalSignal`); this bound keeps a relay that can only reach us by checking our candidates
 * (no direct path from us to it, TURN permissions) working, one hold later.
 */
const CANDIDATE_HOLD_MS = 300;

/** An SDP without its `a=candidate` and `a=end-of-candidates` lines, and the candidate lines removed. */
function splitCandidates(sdp: string): { sdp: string; candidates: string[] } {
  const candidates: string[] = [];
  const kept = sdp.split(/\r?\n/).filter((line) => {
    if (line.startsWith('a=candidate:')) {
      candidates.push(line.slice(2));
      return false;
    }
    return line !== 'a=end-of-candidates';
  });
  return { sdp: candidates.length === 0 && !sdp.includes('a=end-of-candidates') ? sdp : kept.join('\r\n'), candidates };
}

/** The SDP's first `a=mid:` value (the bundle's media id candidates belong to); '0' when absent. */
function firstMid(sdp: string): string {
  return /^a=mid:(\S+)/m.exec(sdp)?.[1] ?? '0';
}

/**
 * node-datachannel sometimes refuses an answer that arrives within a few milliseconds of the offer
 * ("remote candidate without ICE transport": its ICE transport is set up on its own thread). The
 * description is not applied when refused, so it is tried again a few times, briefly.
 */
const ANSWER_ATTEMPTS = 5;
const ANSWER_RETRY_MS = 30;

/** ERROR frames on the channel (requestId 0) that concern payment, not the connection. */
const PAYMENT_CODES: ReadonlySet<string> = new Set([
  ErrorCode.RECEIPT_MALFORMED,
  ErrorCode.RECEIPT_SIGNATURE,
  ErrorCode.RECEIPT_STALE,
  ErrorCode.RECEIPT_WRONG_RELAY,
  ErrorCode.RECEIPT_AMOUNT,
  ErrorCode.RECEIPT_OVER_BUDGET,
  ErrorCode.RECEIPT_NO_GRANT,
  ErrorCode.RECEIPT_STORE,
  ErrorCode.GRANT_SIGNATURE,
  ErrorCode.GRANT_EXPIRED,
  ErrorCode.GRANT_SCOPE,
  ErrorCode.PAYER_UNKNOWN,
  ErrorCode.RATE_LIMITED,
  ErrorCode.ASSIGNMENT_MISSING,
  ErrorCode.ASSIGNMENT_INVALID,
  ErrorCode.BIND_PROOF,
]);

export interface RelayRequest {
  /** Absolute segment URL. */
  url: string;
  /** Half-open byte range; undefined asks for the whole resource. */
  range?: ByteRange | undefined;
  /** Media playlist the segment belongs to. */
  playlistUrl?: string | undefined;
}

export interface RelayRequestHandlers {
  /** Aborting sends CANCEL and rejects the request with RC_ERR_ABORTED. */
  signal: AbortSignal;
  /** The relay's RESPONSE, already checked against the request. */
  onResponse: (response: ResponseFrame) => void;
  /** Each DATA chunk, in order, already checked to fit the request. */
  onData: (chunk: Uint8Array) => void;
}

interface ActiveRequest {
  handlers: RelayRequestHandlers;
  received: number;
  responded: boolean;
  expectedOffset: number;
  /** Most DATA bytes the request may carry (range length, else what the RESPONSE's size leaves). */
  maxBytes: number;
  resolve: (bytes: number) => void;
  reject: (err: RelaycastError) => void;
}

/** Smoothing of the per-relay throughput and TTFB estimates. */
const EWMA_ALPHA = 0.3;
const MAX_REQUEST_ID = 0xffff_ffff;
/** mDNS host candidates cannot resolve here and make some stacks wait seconds on them. */
const MDNS_CANDIDATE = /\s[0-9a-z-]+\.local\s/i;

/**
 * One WebRTC data channel to one relay, with requests multiplexed by a u32 id. Everything the relay
 * sends is checked against what was asked (offset, size, END byte count); a violation closes the
 * connection with RC_ERR_RELAY_ERROR (`details.violation`), and the manager replaces the relay.
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
  private offerSent = false;
  /** The peer connection is libdatachannel's (node-datachannel's polyfill): candidates are held (see sendLocalSignal). */
  private holdCandidates = false;
  /** Our ICE candidates may go to the relay (offer sent; when held: ICE connected, or CANDIDATE_HOLD_MS after the answer). */
  private candidatesReleased = false;
  private candidateHoldTimer: ReturnType<typeof setTimeout> | undefined;
  private remoteDescriptionSet = false;
  private readonly earlyRemoteCandidates: RTCIceCandidateInit[] = [];
  private readonly earlyLocalSignals: SignalPayload[] = [];
  private readonly closeListeners: ((reason: RelaycastError) => void)[] = [];
  private readonly log: SdkLogger;
  private readonly maxConcurrent: number;
  private closeReason: RelaycastError | undefined;
  private challengeBytes: Uint8Array | undefined;
  /** Nonce of the grant this channel was last bound to with BIND (receipts only follow a BIND). */
  private boundGrantNonce: Uint8Array | undefined;
  /** Bytes per ms from completed transfers (0 until measured). */
  throughputBytesPerMs = 0;
  /** Time to first byte from completed transfers, ms (0 until measured). */
  ttfbMs = 0;

  constructor(private readonly options: RelayConnectionOptions) {
    this.relayId = options.relayId;
    this.log = options.logger ?? silentLogger;
    this.maxConcurrent = options.maxConcurrentRequests ?? DEFAULT_MAX_REQUESTS_PER_RELAY;
    const PC = options.RTCPeerConnection ?? globalThis.RTCPeerConnection;
    if (PC === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'no RTCPeerConnection implementation available');
    // A copy: some implementations (node-datachannel's polyfill) write defaults into the object.
    this.pc = new PC({ ...(options.rtcConfiguration ?? {}) });
  }

  get isOpen(): boolean {
    return this.open && !this.closed;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  get activeRequests(): number {
    return this.requests.size;
  }

  /** The relay's CHALLENGE for this channel (undefined: none yet, or a free relay). */
  get challenge(): Uint8Array | undefined {
    return this.challengeBytes;
  }

  /** Nonce of the grant the channel was bound to by our last BIND (undefined: not bound). */
  get boundGrant(): Uint8Array | undefined {
    return this.boundGrantNonce;
  }

  /** Called once when the connection closes, with the reason (immediately, async, if already closed). */
  onClose(listener: (reason: RelaycastError) => void): void {
    if (this.closed) {
      const reason = this.closeReason ?? new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'connection closed');
      queueMicrotask(() => listener(reason));
    } else this.closeListeners.push(listener);
  }

  /**
   * Creates the offer, signals it, and resolves when the data channel opens. Rejects (and closes the
   * connection) with RC_ERR_TIMEOUT after connectTimeoutMs, RC_ERR_ABORTED on abort,
   * RC_ERR_TRACKER_UNAVAILABLE when the offer cannot be sent, RC_ERR_CHANNEL_CLOSED if it closes first.
   */
  async connect(signal?: AbortSignal): Promise<void> {
    if (this.closed || this.channel !== undefined) throw new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'connect() may be called once');
    const timeout = AbortSignal.timeout(this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    const abort = signal === undefined ? timeout : AbortSignal.any([signal, timeout]);
    let onAbort: (() => void) | undefined;
    try {
      const channel = this.pc.createDataChannel(DATA_CHANNEL_LABEL, { ordered: true });
      channel.binaryType = 'arraybuffer';
      this.channel = channel;
      channel.addEventListener('message', (ev: MessageEvent) => this.onMessage(ev.data));
      channel.addEventListener('close', () => this.close(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'data channel closed')));
      channel.addEventListener('error', () => this.close(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'data channel failed')));
      this.pc.addEventListener('icecandidate', (ev: RTCPeerConnectionIceEvent) => {
        const c = ev.candidate;
        if (c === null || c.candidate === '') this.sendLocalSignal({ kind: 'end-of-candidates' });
        else this.sendLocalSignal({ kind: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid ?? undefined });
      });
      let iceConnected = false;
      this.pc.addEventListener('connectionstatechange', () => {
        const state = this.pc.connectionState;
        if (state === 'connected') this.releaseCandidates();
        if (state === 'failed' || state === 'closed') {
          // During setup, say which stage failed: ICE never connected, or DTLS/SCTP after it did.
          // libdatachannel goes from failed to closed at once, so the polyfill often reports only 'closed'.
          const details = this.open ? undefined : { setupCause: iceConnected ? 'dtls' : 'ice' };
          this.close(new RelaycastError(ErrorCode.CHANNEL_CLOSED, `peer connection ${state}`, { details }));
        }
      });
      this.pc.addEventListener('iceconnectionstatechange', () => {
        const state = this.pc.iceConnectionState;
        if (state === 'connected' || state === 'completed') {
          iceConnected = true;
          this.releaseCandidates();
        }
      });
      const opened = new Promise<void>((resolve, reject) => {
        onAbort = () => reject(new RelaycastError(timeout.aborted ? ErrorCode.TIMEOUT : ErrorCode.ABORTED, 'relay connection not established'));
        if (abort.aborted) onAbort();
        abort.addEventListener('abort', onAbort, { once: true });
        channel.addEventListener('open', () => resolve(), { once: true });
        this.onClose(reject);
      });
      // A close before `await opened` below must not surface as an unhandled rejection; the await still sees it.
      opened.catch(() => undefined);
      const offer = await this.pc.createOffer();
      // node-datachannel's polyfill (libdatachannel) has already applied its offer when createOffer
      // returns, a browser's RTCPeerConnection has not; applying it again only makes libdatachannel
      // log "Unexpected local description". That is also how libdatachannel is recognised here.
      this.holdCandidates = this.pc.signalingState === 'have-local-offer';
      if (!this.holdCandidates) await this.pc.setLocalDescription(offer);
      const localSdp = this.pc.localDescription?.sdp ?? offer.sdp;
      // Held candidates never travel inside the offer either: each is also an icecandidate event.
      const sdp = localSdp === undefined || !this.holdCandidates ? localSdp : splitCandidates(localSdp).sdp;
      if (sdp === undefined || !this.options.sendSignal(this.relayId, this.connectionId, { kind: 'offer', sdp })) {
        throw new RelaycastError(ErrorCode.TRACKER_UNAVAILABLE, 'cannot send the offer: tracker not connected');
      }
      this.offerSent = true;
      // Candidates gathered while the offer was being made go out after it, never before.
      if (!this.holdCandidates) this.releaseCandidates();
      await opened;
      if (this.closed) throw this.closeReason ?? new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'connection closed');
      this.open = true;
    } catch (err) {
      const e = toRelaycastError(err);
      this.close(e);
      throw e;
    } finally {
      if (onAbort !== undefined) abort.removeEventListener('abort', onAbort);
    }
  }

  /** Signaling from the relay, routed here by connection id. */
  async handleSignal(payload: SignalPayload): Promise<void> {
    if (this.closed) return;
    try {
      if (payload.kind === 'answer') {
        if (this.remoteDescriptionSet) return;
        this.remoteDescriptionSet = true;
        // With libdatachannel the answer's own candidates are added after it, like trickled ones: ICE
        // must not be able to connect while it is still applying the answer (see sendLocalSignal).
        const answer = this.holdCandidates ? splitCandidates(payload.sdp) : { sdp: payload.sdp, candidates: [] };
        const mid = firstMid(payload.sdp);
        for (const candidate of answer.candidates) {
          if (this.earlyRemoteCandidates.length < MAX_PENDING_CANDIDATES) this.earlyRemoteCandidates.unshift({ candidate, sdpMid: mid });
        }
        for (let attempt = 1; ; attempt++) {
          try {
            await this.pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
            break;
          } catch (err) {
            if (attempt >= ANSWER_ATTEMPTS || this.closed) throw err;
            await new Promise((r) => setTimeout(r, ANSWER_RETRY_MS));
          }
        }
        for (const c of this.earlyRemoteCandidates.splice(0)) await this.pc.addIceCandidate(c);
        if (!this.closed && !this.candidatesReleased) {
          this.candidateHoldTimer = setTimeout(() => this.releaseCandidates(), CANDIDATE_HOLD_MS);
        }
      } else if (payload.kind === 'candidate') {
        if (MDNS_CANDIDATE.test(` ${payload.candidate} `)) return;
        const init: RTCIceCandidateInit = { candidate: payload.candidate, sdpMid: payload.sdpMid ?? '0' };
        if (this.remoteDescriptionSet && this.earlyRemoteCandidates.length === 0) await this.pc.addIceCandidate(init);
        else if (this.earlyRemoteCandidates.length < MAX_PENDING_CANDIDATES) this.earlyRemoteCandidates.push(init);
      }
    } catch (err) {
      this.log.debug({ relayId: this.relayId, kind: payload.kind, err: String(err) }, 'relay signal rejected');
      if (payload.kind === 'answer') this.close(new RelaycastError(ErrorCode.RELAY_ERROR, 'relay sent an unusable answer'));
    }
  }

  /**
   * Requests a segment (or range). Resolves with the DATA byte count at END. Rejects with
   * RC_ERR_SEGMENT_UNAVAILABLE (ABSENT), RC_ERR_RELAY_ERROR (ERROR frame with the relay's code in
   * `details.code`, or a protocol violation, which also closes the connection), RC_ERR_CHANNEL_CLOSED
   * (the channel closed first), RC_ERR_RELAY_OVERLOADED (too many in flight here) or RC_ERR_ABORTED.
   * Aborting sends CANCEL.
   */
  request(req: RelayRequest, handlers: RelayRequestHandlers): Promise<number> {
    const channel = this.channel;
    if (!this.isOpen || channel === undefined) {
      return Promise.reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'relay connection is not open'));
    }
    if (this.requests.size >= this.maxConcurrent) {
      return Promise.reject(new RelaycastError(ErrorCode.RELAY_OVERLOADED, 'too many requests in flight on this relay'));
    }
    if (handlers.signal.aborted) return Promise.reject(new RelaycastError(ErrorCode.ABORTED, 'request aborted'));
    let requestId = this.nextRequestId;
    while (this.requests.has(requestId)) requestId = requestId >= MAX_REQUEST_ID ? 1 : requestId + 1;
    this.nextRequestId = requestId >= MAX_REQUEST_ID ? 1 : requestId + 1;
    const start = req.range?.start ?? 0;
    return new Promise<number>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.requests.has(requestId)) return;
        this.requests.delete(requestId);
        this.trySend(encodeFrame({ type: FrameType.CANCEL, requestId }));
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
        expectedOffset: start,
        maxBytes: req.range?.end === undefined ? Number.MAX_SAFE_INTEGER : req.range.end - start,
        resolve: (n) => done(() => resolve(n)),
        reject: (e) => done(() => reject(e)),
      });
      handlers.signal.addEventListener('abort', onAbort, { once: true });
      let frame: Uint8Array;
      try {
        frame = encodeFrame({ type: FrameType.REQUEST, requestId, url: req.url, range: req.range, playlistUrl: req.playlistUrl });
      } catch (err) {
        // A URL too long for the wire is the caller's problem, not the relay's.
        this.requests.get(requestId)?.reject(toRelaycastError(err));
        return;
      }
      if (!this.trySend(frame)) {
        this.requests.get(requestId)?.reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'cannot send on the data channel'));
      }
    });
  }

  /** Feeds a completed transfer into this relay's speed estimates. */
  recordTransfer(bytes: number, ttfbMs: number, durationMs: number): void {
    const rate = bytes / Math.max(1, durationMs);
    this.throughputBytesPerMs = this.throughputBytesPerMs === 0 ? rate : this.throughputBytesPerMs * (1 - EWMA_ALPHA) + rate * EWMA_ALPHA;
    this.ttfbMs = this.ttfbMs === 0 ? ttfbMs : this.ttfbMs * (1 - EWMA_ALPHA) + ttfbMs * EWMA_ALPHA;
  }

  /** Closes the peer connection; pending requests reject with `reason` (default RC_ERR_CHANNEL_CLOSED). */
  close(reason: RelaycastError = new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'connection closed')): void {
    if (this.closed) return;
    this.closed = true;
    this.open = false;
    this.closeReason = reason;
    clearTimeout(this.candidateHoldTimer);
    // Pending requests see CHANNEL_CLOSED, or RELAY_ERROR when the relay's misbehaviour closed it,
    // so the loader can tell "the link went away" from "the relay broke the protocol".
    const requestError =
      reason.code === ErrorCode.CHANNEL_CLOSED || reason.code === ErrorCode.RELAY_ERROR
        ? reason
        : new RelaycastError(ErrorCode.CHANNEL_CLOSED, `connection closed: ${reason.message}`, { cause: reason });
    for (const r of [...this.requests.values()]) r.reject(requestError);
    this.requests.clear();
    try {
      this.channel?.close();
    } catch {
      // closing twice is harmless
    }
    try {
      this.pc.close();
    } catch {
      // closing twice is harmless
    }
    for (const l of this.closeListeners.splice(0)) l(reason);
  }

  /**
   * Our ICE candidates go to the relay after the offer. With libdatachannel (node-datachannel's
   * polyfill: the SDK in Node) they go only once our ICE agent is connected (or CANDIDATE_HOLD_MS
   * after the answer was applied). Until then the relay cannot send ICE checks, so:
   *  - ICE cannot connect while libdatachannel (node-datachannel, the SDK in Node) is still applying
   *    the answer. libdatachannel 0.24 hands the answer to its ICE agent before it stores the
   *    answer's fingerprint, and starts DTLS as soon as ICE connects; when the relay's checks had
   *    already arrived, ICE connected at once, the relay's certificate was checked against no
   *    fingerprint and refused (`unknown CA`) — 1-5 % of setups on a loaded machine.
   *  - our agent connects first (its check, the relay's triggered check after it), so our DTLS
   *    server is up before the relay, the DTLS client (a=setup:active), sends its ClientHello.
   *    When the relay connected first (it checked our candidates from the offer before we had the
   *    answer), libdatachannel dropped that ClientHello and the handshake waited for the DTLS
   *    retransmit timer: the ~1 s setups.
   * The relay learns our address from our checks (a peer-reflexive candidate) meanwhile. The
   * price is libjuice's pacing of the relay's triggered check (50 ms). A browser has neither
   * problem (libwebrtc keeps an early ClientHello and checks the certificate once it has the
   * fingerprint), so it trickles at once: setups measured with Chromium, p50 20 ms against 69 ms.
   */
  private sendLocalSignal(payload: SignalPayload): void {
    if (this.closed) return;
    if (this.offerSent && this.candidatesReleased) this.options.sendSignal(this.relayId, this.connectionId, payload);
    else if (this.earlyLocalSignals.length < MAX_PENDING_CANDIDATES) this.earlyLocalSignals.push(payload);
  }

  private releaseCandidates(): void {
    if (this.candidatesReleased || this.closed || !this.offerSent) return;
    this.candidatesReleased = true;
    clearTimeout(this.candidateHoldTimer);
    for (const s of this.earlyLocalSignals.splice(0)) this.options.sendSignal(this.relayId, this.connectionId, s);
  }

  private trySend(frame: Uint8Array): boolean {
    const channel = this.channel;
    if (channel === undefined || channel.readyState !== 'open') return false;
    try {
      channel.send(frame as Uint8Array<ArrayBuffer>);
      return true;
    } catch {
      return false;
    }
  }

  private onMessage(data: unknown): void {
    if (this.closed) return;
    let bytes: Uint8Array;
    if (data instanceof ArrayBuffer) bytes = new Uint8Array(data);
    else if (ArrayBuffer.isView(data)) bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    else return this.violation('non-binary message');
    let frames: RelayFrame[];
    try {
      frames = decodeFrames(bytes);
    } catch (err) {
      return this.violation(`malformed frame (${toRelaycastError(err).code})`);
    }
    for (const frame of frames) {
      if (this.closed) return;
      this.onFrame(frame);
    }
  }

  /**
   * Which way the bytes flow, from the selected ICE candidate pair: 'relayed' when either end is a
   * TURN relay candidate, else 'direct'. Undefined when the WebRTC stack does not report it.
   */
  async networkPath(): Promise<NetworkPath | undefined> {
    try {
      const report = await this.pc.getStats();
      const all: Record<string, unknown>[] = [];
      report.forEach((s: Record<string, unknown>) => all.push(s));
      const selectedId = all.find((s) => s['type'] === 'transport' && typeof s['selectedCandidatePairId'] === 'string')?.['selectedCandidatePairId'];
      const pair =
        all.find((s) => s['type'] === 'candidate-pair' && s['id'] === selectedId) ??
        all.find((s) => s['type'] === 'candidate-pair' && s['state'] === 'succeeded' && s['nominated'] === true);
      if (pair === undefined) return undefined;
      const typeOf = (id: unknown): unknown => all.find((s) => s['id'] === id)?.['candidateType'];
      const local = typeOf(pair['localCandidateId']);
      const remote = typeOf(pair['remoteCandidateId']);
      if (local === undefined && remote === undefined) return undefined;
      return local === 'relay' || remote === 'relay' ? 'relayed' : 'direct';
    } catch {
      return undefined;
    }
  }

  /**
   * Sends BIND (answering this channel's CHALLENGE, for the grant whose nonce is `grantNonce`).
   * False when the channel is not open or the relay sent no challenge (nothing is queued).
   */
  sendBind(frame: BindFrame, grantNonce: Uint8Array): boolean {
    if (!this.open || this.closed || this.challengeBytes === undefined) return false;
    if (!this.trySend(encodeFrame(frame))) return false;
    this.boundGrantNonce = grantNonce;
    return true;
  }

  /** Sends a RECEIPT; false when the channel is not open or not bound by a BIND yet (nothing is queued). */
  sendReceipt(frame: ReceiptFrame): boolean {
    if (!this.open || this.closed || this.boundGrantNonce === undefined) return false;
    return this.trySend(encodeFrame(frame));
  }

  private onFrame(frame: RelayFrame): void {
    if (frame.type === FrameType.ERROR && frame.requestId === 0 && PAYMENT_CODES.has(frame.code)) {
      // A refused grant or receipt is the payment layer's business: requests go on (the relay's
      // credit limit decides when they stop) and the caller hears of it.
      this.log.warn({ relayId: this.relayId, code: frame.code, message: frame.message }, 'relay refused a bind or receipt');
      this.options.onPaymentError?.(new RelaycastError(frame.code as ErrorCode, `relay refused: ${frame.message}`, { details: { relayId: this.relayId } }));
      return;
    }
    if (frame.type === FrameType.ERROR && frame.requestId === 0) {
      return this.close(
        new RelaycastError(ErrorCode.RELAY_ERROR, `relay closed the channel: ${frame.code} ${frame.message}`, { details: { code: frame.code } }),
      );
    }
    if (frame.type === FrameType.CHALLENGE) {
      // One challenge per channel: a second one could make us sign proofs at the relay's pace.
      if (this.challengeBytes !== undefined) return this.violation('second CHALLENGE');
      this.challengeBytes = frame.challenge;
      this.options.onChallenge?.(this.relayId);
      return;
    }
    if (frame.type === FrameType.REQUEST || frame.type === FrameType.CANCEL || frame.type === FrameType.BIND || frame.type === FrameType.RECEIPT) {
      return this.violation(`relay sent frame type ${frame.type}`);
    }
    const req = this.requests.get(frame.requestId);
    // Frames of a request this side already cancelled or finished may still be in flight.
    if (req === undefined) return;
    switch (frame.type) {
      case FrameType.RESPONSE: {
        if (req.responded) return this.violation('second RESPONSE');
        if (frame.offset !== req.expectedOffset) return this.violation(`RESPONSE offset ${frame.offset}, asked ${req.expectedOffset}`);
        if (frame.totalBytes !== undefined) req.maxBytes = Math.min(req.maxBytes, frame.totalBytes - frame.offset);
        req.responded = true;
        req.handlers.onResponse(frame);
        return;
      }
      case FrameType.DATA:
        if (!req.responded) return this.violation('DATA before RESPONSE');
        if (req.received + frame.chunk.byteLength > req.maxBytes) return this.violation('more DATA than the request allows');
        req.received += frame.chunk.byteLength;
        req.handlers.onData(frame.chunk);
        return;
      case FrameType.END:
        if (!req.responded || frame.bytesSent !== req.received) return this.violation(`END says ${frame.bytesSent} bytes, ${req.received} arrived`);
        req.resolve(req.received);
        return;
      case FrameType.ABSENT:
        if (req.responded) return this.violation('ABSENT after RESPONSE');
        req.reject(new RelaycastError(ErrorCode.SEGMENT_UNAVAILABLE, 'relay does not have the segment'));
        return;
      case FrameType.ERROR:
        req.reject(new RelaycastError(ErrorCode.RELAY_ERROR, `relay error ${frame.code}: ${frame.message}`, { details: { code: frame.code } }));
        return;
    }
  }

  private violation(what: string): void {
    this.log.warn({ relayId: this.relayId, what }, 'relay protocol violation');
    this.close(new RelaycastError(ErrorCode.RELAY_ERROR, `relay protocol violation: ${what}`, { details: { violation: what } }));
  }
}
