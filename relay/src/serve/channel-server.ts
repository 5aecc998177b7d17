import {
  ErrorCode,
  FRAME_HEADER_BYTES,
  FrameType,
  MAX_CHUNK_BYTES,
  RelaycastError,
  decodeFrames,
  encodeDataFrame,
  encodeFrame,
  toRelaycastError,
  type RelayFrame,
  type RequestFrame,
} from '@relaycast/protocol';
import type { Logger } from 'pino';
import {
  DEFAULT_CHANNEL_HARD_LIMIT_BYTES,
  DEFAULT_CHANNEL_HIGH_WATER_BYTES,
  DEFAULT_CHANNEL_LOW_WATER_BYTES,
  DEFAULT_MAX_REQUESTS_PER_CHANNEL,
  DEFAULT_MAX_UPLOAD_BYTES_PER_SEC,
} from '../constants.js';
import type { ChannelPaymentGate, ChannelPayments } from './channel-payments.js';
import type { SegmentSource } from './segment-source.js';
import type { RelayDataChannel } from '../transport/transport.js';
import { UploadLimiter } from './upload-limiter.js';

export interface ChannelServerOptions {
  /** Where segments come from. Required. */
  source: SegmentSource;
  /** Concurrent requests per channel; more get RC_ERR_RELAY_OVERLOADED. Default: DEFAULT_MAX_REQUESTS_PER_CHANNEL (8). */
  maxRequestsPerChannel?: number | undefined;
  /** DATA frames wait while more than this is queued in the channel. Default: DEFAULT_CHANNEL_HIGH_WATER_BYTES (1 MiB). */
  highWaterBytes?: number | undefined;
  /** bufferedAmountLow threshold that resumes DATA frames. Default: DEFAULT_CHANNEL_LOW_WATER_BYTES (256 KiB). */
  lowWaterBytes?: number | undefined;
  /** A channel whose queue exceeds this is closed (a viewer flooding requests it never reads). Default: DEFAULT_CHANNEL_HARD_LIMIT_BYTES (8 MiB). */
  hardLimitBytes?: number | undefined;
  /** Upload cap shared by every channel of this server (the relay), in bytes per second; 0 = unlimited. Default: DEFAULT_MAX_UPLOAD_BYTES_PER_SEC. */
  maxUploadBytesPerSec?: number | undefined;
  /** CHALLENGE/BIND/RECEIPT handling and the credit limits (a paid relay). Default: none (a free relay: BIND and RECEIPT are ignored, no CHALLENGE is sent). */
  payments?: ChannelPaymentGate | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

/** Counters of one channel server (the whole relay's viewer side). */
export interface ChannelServerStats {
  /** Viewer channels open now. */
  channels: number;
  /** Requests being served now. */
  activeRequests: number;
  /** REQUEST frames accepted (duplicates, overload and shutdown refusals not included). */
  requests: number;
  /** Requests that reached END. */
  completed: number;
  /** Requests served from a complete cached copy. */
  cacheHits: number;
  /** DATA payload bytes handed to viewer channels. */
  bytesServed: number;
  /** Requests answered ABSENT. */
  absent: number;
  /** Requests stopped by CANCEL or by their channel closing. */
  cancelled: number;
  /** ERROR frames sent for requests (refusals included). */
  errors: number;
  /** The same, by error code. */
  errorsByCode: Record<string, number>;
  /** Channels closed for a protocol violation. */
  protocolViolations: number;
}

/** Handle on one served viewer channel. */
export interface ChannelSession {
  readonly activeRequests: number;
  readonly isOpen: boolean;
  /** Aborts every request of this channel and closes it. */
  close(): void;
}

function checkPositiveInt(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a positive integer`);
}

/**
 * The relay's viewer-facing protocol engine. One instance per relay serves every viewer data
 * channel: it owns the relay-wide upload cap and counters, while each channel gets its own send
 * loop so a slow viewer only ever slows itself.
 */
export class ChannelServer {
  readonly options: Readonly<Required<Omit<ChannelServerOptions, 'logger' | 'payments'>>>;
  readonly payments: ChannelPaymentGate | undefined;
  private readonly limiter: UploadLimiter;
  private readonly sessions = new Set<ServedChannel>();
  private readonly counters: Omit<ChannelServerStats, 'channels' | 'activeRequests'> = {
    requests: 0,
    completed: 0,
    cacheHits: 0,
    bytesServed: 0,
    absent: 0,
    cancelled: 0,
    errors: 0,
    errorsByCode: {},
    protocolViolations: 0,
  };
  private accepting = true;
  private nextChannelId = 0;
  readonly log: Logger | undefined;

  constructor(options: ChannelServerOptions) {
    this.options = {
      source: options.source,
      maxRequestsPerChannel: options.maxRequestsPerChannel ?? DEFAULT_MAX_REQUESTS_PER_CHANNEL,
      highWaterBytes: options.highWaterBytes ?? DEFAULT_CHANNEL_HIGH_WATER_BYTES,
      lowWaterBytes: options.lowWaterBytes ?? DEFAULT_CHANNEL_LOW_WATER_BYTES,
      hardLimitBytes: options.hardLimitBytes ?? DEFAULT_CHANNEL_HARD_LIMIT_BYTES,
      maxUploadBytesPerSec: options.maxUploadBytesPerSec ?? DEFAULT_MAX_UPLOAD_BYTES_PER_SEC,
    };
    const o = this.options;
    checkPositiveInt(o.maxRequestsPerChannel, 'maxRequestsPerChannel');
    checkPositiveInt(o.highWaterBytes, 'highWaterBytes');
    checkPositiveInt(o.hardLimitBytes, 'hardLimitBytes');
    if (!Number.isSafeInteger(o.lowWaterBytes) || o.lowWaterBytes < 0 || o.lowWaterBytes >= o.highWaterBytes) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'lowWaterBytes must be a non-negative integer below highWaterBytes');
    }
    if (o.hardLimitBytes < o.highWaterBytes) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'hardLimitBytes must not be below highWaterBytes');
    if (!Number.isSafeInteger(o.maxUploadBytesPerSec) || o.maxUploadBytesPerSec < 0) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'maxUploadBytesPerSec must be a non-negative integer');
    }
    this.limiter = new UploadLimiter(o.maxUploadBytesPerSec);
    this.payments = options.payments;
    this.log = options.logger?.child({ component: 'channel-server' });
  }

  /** Current relay-wide upload cap in bytes per second (0 = unlimited). */
  get maxUploadBytesPerSec(): number {
    return this.limiter.rate;
  }

  /** Changes the relay-wide upload cap while serving; 0 lifts it. */
  setMaxUploadBytesPerSec(bytesPerSec: number): void {
    this.limiter.setRate(bytesPerSec);
  }

  /** Starts serving `channel` until it closes. */
  serve(channel: RelayDataChannel): ChannelSession {
    const session = new ServedChannel(channel, this, this.counters, this.limiter, `ch${++this.nextChannelId}`);
    if (session.isOpen) {
      this.sessions.add(session);
      session.onClosed(() => this.sessions.delete(session));
    }
    return session;
  }

  get isAccepting(): boolean {
    return this.accepting;
  }

  /** New REQUESTs are refused with RC_ERR_RELAY_OVERLOADED from now on (graceful shutdown). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /** Resolves true once no request is active on any channel, or false when `signal` aborts first. */
  async drain(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      const pending = [...this.sessions].flatMap((s) => s.requestPromises());
      if (pending.length === 0) return true;
      if (signal.aborted) return false;
      const aborted = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
      await Promise.race([Promise.allSettled(pending), aborted]);
    }
  }

  /**
   * Resolves true once every channel has handed its queued bytes to the network, or false when
   * `signal` aborts first: closing a peer drops what it still buffers, END frames included.
   */
  async flush(signal: AbortSignal): Promise<boolean> {
    while ([...this.sessions].some((s) => s.bufferedAmount > 0)) {
      if (signal.aborted) return false;
      await new Promise((resolve) => setTimeout(resolve, FLUSH_POLL_MS));
    }
    return true;
  }

  /** Aborts every request and closes every channel. */
  close(): void {
    this.accepting = false;
    for (const s of [...this.sessions]) s.close();
  }

  stats(): ChannelServerStats {
    let activeRequests = 0;
    for (const s of this.sessions) activeRequests += s.activeRequests;
    return { ...this.counters, errorsByCode: { ...this.counters.errorsByCode }, channels: this.sessions.size, activeRequests };
  }
}

interface ActiveRequest {
  controller: AbortController;
  done: Promise<void>;
}

/** One DATA frame waiting for its turn on the channel. */
interface SendTurn {
  frame: Uint8Array;
  payloadBytes: number;
  signal: AbortSignal;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Re-check interval while waiting for bufferedAmountLow, in case a stack misses the event. */
const LOW_WATER_POLL_MS = 1_000;
/**
 * A send loop yields to the event loop after this many bytes: with a fast network and a cached
 * segment, every step is a microtask and would otherwise starve other channels' messages and timers.
 */
const YIELD_EVERY_BYTES = 256 * 1024;
/** Poll interval of flush(): bufferedAmountLow only fires above a threshold, not at zero. */
const FLUSH_POLL_MS = 20;
/** Longest wait for an ERROR frame to leave before a violating channel is closed. */
const VIOLATION_FLUSH_MS = 1_000;

class ServedChannel implements ChannelSession {
  private readonly active = new Map<number, ActiveRequest>();
  /**
   * DATA frames of this channel's requests. Each request has at most one frame queued and goes to
   * the back after sending it, so FIFO order is round-robin: one large request cannot starve the
   * others, and a request whose source is slow does not hold a place.
   */
  private readonly queue: SendTurn[] = [];
  private pumping = false;
  private lowWaiter: (() => void) | undefined;
  private readonly closeController = new AbortController();
  private readonly closeCallbacks: (() => void)[] = [];
  private readonly log: Logger | undefined;
  private readonly maxChunkBytes: number;
  private readonly payments: ChannelPayments | undefined;

  constructor(
    private readonly channel: RelayDataChannel,
    private readonly server: ChannelServer,
    private readonly counters: Omit<ChannelServerStats, 'channels' | 'activeRequests'>,
    private readonly limiter: UploadLimiter,
    /** This channel's key for the segment source's per-channel origin-fetch rate. */
    private readonly channelId: string,
  ) {
    this.log = server.log;
    this.payments = server.payments?.openChannel();
    const mms = channel.maxMessageSize;
    this.maxChunkBytes = mms > FRAME_HEADER_BYTES ? Math.min(MAX_CHUNK_BYTES, mms - FRAME_HEADER_BYTES) : MAX_CHUNK_BYTES;
    channel.setBufferedAmountLowThreshold(server.options.lowWaterBytes);
    channel.onBufferedAmountLow(() => this.wakeWriter());
    channel.onMessage((message) => this.onMessage(message));
    channel.onClose(() => this.shutdown());
    if (!channel.isOpen) this.shutdown();
    // A paid relay challenges first thing: the viewer's BIND must sign this channel's challenge.
    else if (this.payments !== undefined) this.sendControl({ type: FrameType.CHALLENGE, requestId: 0, challenge: this.payments.challenge });
  }

  get activeRequests(): number {
    return this.active.size;
  }

  get isOpen(): boolean {
    return !this.closeController.signal.aborted;
  }

  get bufferedAmount(): number {
    return this.isOpen ? this.channel.bufferedAmount : 0;
  }

  requestPromises(): Promise<void>[] {
    return [...this.active.values()].map((r) => r.done);
  }

  onClosed(cb: () => void): void {
    if (!this.isOpen) queueMicrotask(cb);
    else this.closeCallbacks.push(cb);
  }

  close(): void {
    this.shutdown();
    this.channel.close();
  }

  /** Stops everything on this channel: requests abort, queued frames are dropped. */
  private shutdown(): void {
    if (!this.isOpen) return;
    this.closeController.abort(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'channel closed'));
    for (const { controller } of this.active.values()) controller.abort(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'channel closed'));
    for (const turn of this.queue.splice(0)) turn.reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'channel closed'));
    this.payments?.close();
    this.wakeWriter();
    for (const cb of this.closeCallbacks.splice(0)) cb();
  }

  private onMessage(message: Uint8Array): void {
    if (!this.isOpen) return;
    let frames: RelayFrame[];
    try {
      frames = decodeFrames(message);
    } catch (err) {
      return this.violation(toRelaycastError(err, ErrorCode.FRAME_FIELD));
    }
    for (const frame of frames) {
      if (frame.type === FrameType.REQUEST) {
        if (frame.requestId === 0) return this.violation(new RelaycastError(ErrorCode.FRAME_FIELD, 'request id 0 is reserved for channel errors'));
        this.onRequest(frame);
      } else if (frame.type === FrameType.CANCEL) {
        this.active.get(frame.requestId)?.controller.abort(new RelaycastError(ErrorCode.ABORTED, 'cancelled by viewer'));
      } else if (frame.type === FrameType.BIND || frame.type === FrameType.RECEIPT) {
        if (frame.requestId !== 0) return this.violation(new RelaycastError(ErrorCode.FRAME_FIELD, 'payment frames use request id 0'));
        // A free relay requires nothing, so it ignores payment frames rather than refuse paying viewers.
        const refusal = this.payments?.onFrame(frame);
        if (refusal?.code === ErrorCode.RATE_LIMITED) return this.violation(refusal);
        if (refusal !== undefined) this.sendControl({ type: FrameType.ERROR, requestId: 0, code: refusal.code, message: refusal.message });
      } else {
        return this.violation(new RelaycastError(ErrorCode.FRAME_TYPE, `viewers may not send frame type ${frame.type}`));
      }
    }
  }

  /** A frame that breaks the protocol means the stream cannot be trusted: report it, then drop only this channel. */
  private violation(err: RelaycastError): void {
    this.counters.protocolViolations++;
    this.log?.debug({ code: err.code }, 'closing viewer channel after a protocol violation');
    this.sendControl({ type: FrameType.ERROR, requestId: 0, code: err.code, message: err.message });
    this.shutdown();
    // Closing at once could drop the ERROR frame that explains why; let it leave first (bounded).
    const deadline = Date.now() + VIOLATION_FLUSH_MS;
    const finish = (): void => {
      if (this.channel.bufferedAmount > 0 && this.channel.isOpen && Date.now() < deadline) setTimeout(finish, 10).unref();
      else setTimeout(() => this.channel.close(), 20).unref();
    };
    finish();
  }

  private onRequest(frame: RequestFrame): void {
    const id = frame.requestId;
    if (this.active.has(id)) {
      this.sendRequestError(id, new RelaycastError(ErrorCode.REQUEST_DUPLICATE, `request ${id} is already active on this channel`));
      return;
    }
    if (!this.server.isAccepting) {
      this.sendRequestError(id, new RelaycastError(ErrorCode.RELAY_OVERLOADED, 'relay is shutting down'));
      return;
    }
    const max = this.server.options.maxRequestsPerChannel;
    if (this.active.size >= max) {
      this.sendRequestError(id, new RelaycastError(ErrorCode.RELAY_OVERLOADED, `at most ${max} concurrent requests per channel`));
      return;
    }
    const admission = this.payments?.admit(frame.url);
    if (admission?.refusal !== undefined) {
      this.sendRequestError(id, admission.refusal);
      return;
    }
    this.counters.requests++;
    const controller = new AbortController();
    const entry: ActiveRequest = { controller, done: Promise.resolve() };
    this.active.set(id, entry);
    entry.done = this.serveRequest(frame, controller.signal, admission?.allowOriginFetch ?? true).finally(() => {
      if (this.active.get(id) === entry) this.active.delete(id);
    });
  }

  private async serveRequest(frame: RequestFrame, signal: AbortSignal, allowOriginFetch: boolean): Promise<void> {
    const { requestId } = frame;
    const payments = this.payments;
    try {
      const stream = await this.server.options.source.open(
        {
          url: frame.url,
          range: frame.range,
          playlistUrl: frame.playlistUrl,
          originKey: this.channelId,
          allowOriginFetch,
          // A cache miss this request started costs the relay the whole segment from the origin: it counts against this channel's credit.
          onOriginBytes: payments === undefined ? undefined : (n) => payments.originFetched(n),
        },
        { signal, maxChunkBytes: this.maxChunkBytes },
      );
      if (signal.aborted) throw signal.reason;
      if (stream.fromCache) this.counters.cacheHits++;
      this.sendControl({ type: FrameType.RESPONSE, requestId, offset: stream.offset, totalBytes: stream.totalBytes, digest: stream.digest });
      let sent = 0;
      for await (const chunk of stream.chunks) {
        // The source promises chunks of at most maxChunkBytes; split anyway rather than send a frame the viewer refuses.
        for (let offset = 0; offset < chunk.byteLength; offset += this.maxChunkBytes) {
          // Concurrent requests admitted together must not run a channel's debt past its hard limit.
          const over = payments?.exceeded();
          if (over !== undefined) throw over;
          const piece = chunk.subarray(offset, offset + this.maxChunkBytes);
          await this.sendData(encodeDataFrame(requestId, piece), piece.byteLength, signal);
          sent += piece.byteLength;
        }
      }
      if (signal.aborted) throw signal.reason;
      this.sendControl({ type: FrameType.END, requestId, bytesSent: sent });
      this.counters.completed++;
    } catch (err) {
      if (signal.aborted || !this.isOpen) {
        // Cancelled by the viewer or the channel went away: nobody is waiting for an answer.
        this.counters.cancelled++;
        return;
      }
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.SEGMENT_UNAVAILABLE) {
        this.counters.absent++;
        this.sendControl({ type: FrameType.ABSENT, requestId });
      } else {
        this.sendRequestError(requestId, e);
      }
    }
  }

  private sendRequestError(requestId: number, err: RelaycastError): void {
    this.counters.errors++;
    this.counters.errorsByCode[err.code] = (this.counters.errorsByCode[err.code] ?? 0) + 1;
    this.log?.debug({ requestId, code: err.code }, 'request failed');
    this.sendControl({ type: FrameType.ERROR, requestId, code: err.code, message: err.message });
  }

  /**
   * RESPONSE/END/ABSENT/ERROR are small and at most a few per request, so they skip the DATA queue
   * (keeping their order relative to the request's own DATA frames). Only a viewer that floods
   * requests without reading can pile them up: past the hard limit its channel is dropped.
   */
  private sendControl(frame: RelayFrame): void {
    if (!this.isOpen) return;
    if (this.channel.bufferedAmount > this.server.options.hardLimitBytes) {
      this.log?.debug('closing a viewer channel that does not read its responses');
      this.close();
      return;
    }
    if (!this.channel.send(encodeFrame(frame))) this.shutdown();
  }

  /** Queues one DATA frame and resolves once it has been handed to the channel. */
  private sendData(frame: Uint8Array, payloadBytes: number, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (!this.isOpen) return Promise.reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'channel closed'));
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        const i = this.queue.indexOf(turn);
        if (i >= 0) this.queue.splice(i, 1);
        reject(signal.reason);
      };
      const turn: SendTurn = {
        frame,
        payloadBytes,
        signal,
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: (err) => {
          signal.removeEventListener('abort', onAbort);
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.queue.push(turn);
      void this.pump();
    });
  }

  /** This channel's send loop: one frame at a time, only below the high-water mark, within the upload cap. */
  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    let sinceYield = 0;
    try {
      while (this.isOpen && this.queue.length > 0) {
        if (this.channel.bufferedAmount > this.server.options.highWaterBytes) {
          await this.waitLow();
          continue;
        }
        const turn = this.queue.shift() as SendTurn;
        if (turn.signal.aborted) continue;
        try {
          // The request's signal also aborts when the channel closes.
          await this.limiter.take(turn.payloadBytes, turn.signal);
        } catch (err) {
          turn.reject(turn.signal.aborted ? turn.signal.reason : err);
          continue;
        }
        if (turn.signal.aborted) continue;
        if (!this.channel.send(turn.frame)) {
          turn.reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'channel closed while sending'));
          this.shutdown();
          break;
        }
        this.counters.bytesServed += turn.payloadBytes;
        this.payments?.served(turn.payloadBytes);
        turn.resolve();
        sinceYield += turn.frame.byteLength;
        if (sinceYield >= YIELD_EVERY_BYTES) {
          sinceYield = 0;
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private waitLow(): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, LOW_WATER_POLL_MS);
      const self = this;
      function done(): void {
        clearTimeout(timer);
        if (self.lowWaiter === done) self.lowWaiter = undefined;
        resolve();
      }
      this.lowWaiter = done;
    });
  }

  private wakeWriter(): void {
    this.lowWaiter?.();
  }
}
