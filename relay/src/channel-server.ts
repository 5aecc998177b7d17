import {
  ErrorCode,
  FRAME_HEADER_BYTES,
  FrameType,
  MAX_CHUNK_BYTES,
  RelaycastError,
  decodeFrames,
  encodeFrame,
  isAbortError,
  toRelaycastError,
  type RelayFrame,
  type RequestFrame,
} from '@relaycast/protocol';
import type { Logger } from 'pino';
import {
  DEFAULT_CHANNEL_HIGH_WATER_BYTES,
  DEFAULT_CHANNEL_LOW_WATER_BYTES,
  DEFAULT_MAX_REQUESTS_PER_CHANNEL,
} from './constants.js';
import type { RelayCounters } from './relay-counters.js';
import type { SegmentSource } from './segment-source.js';
import type { RelayDataChannel } from './transport.js';
import type { UploadLimiter } from './upload-limiter.js';

export interface ChannelServerOptions {
  /** Where segments come from. Required. */
  source: SegmentSource;
  /** Counters shared by every channel of the relay. Required. */
  counters: RelayCounters;
  /** Concurrent requests per channel; more get RC_ERR_RELAY_OVERLOADED. Default: DEFAULT_MAX_REQUESTS_PER_CHANNEL (8). */
  maxRequests?: number | undefined;
  /** Producing pauses while more than this is queued in the channel. Default: DEFAULT_CHANNEL_HIGH_WATER_BYTES (1 MiB). */
  highWaterBytes?: number | undefined;
  /** Producing resumes when the queue falls to this. Default: DEFAULT_CHANNEL_LOW_WATER_BYTES (256 KiB). */
  lowWaterBytes?: number | undefined;
  /** Relay-wide upload cap. Default: none. */
  uploadLimiter?: UploadLimiter | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

/** Handle on one served channel. */
export interface ChannelSession {
  readonly activeRequests: number;
  /** Resolves when every in-flight request has finished (or the channel closed). */
  drain(): Promise<void>;
  close(): void;
}

/**
 * Serves one viewer's data channel: decodes frames, answers REQUESTs from the segment source with
 * RESPONSE/DATA/END (or ABSENT/ERROR), honours CANCEL, and never queues more than the high-water
 * mark in the channel, so a slow viewer only slows itself.
 */
export function serveChannel(channel: RelayDataChannel, options: ChannelServerOptions): ChannelSession {
  return new ChannelServer(channel, options);
}

class ChannelServer implements ChannelSession {
  private readonly active = new Map<number, { controller: AbortController; done: Promise<void> }>();
  private readonly maxRequests: number;
  private readonly highWater: number;
  private readonly lowWater: number;
  private readonly log: Logger | undefined;
  private lowWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly channel: RelayDataChannel,
    private readonly options: ChannelServerOptions,
  ) {
    this.maxRequests = options.maxRequests ?? DEFAULT_MAX_REQUESTS_PER_CHANNEL;
    this.highWater = options.highWaterBytes ?? DEFAULT_CHANNEL_HIGH_WATER_BYTES;
    this.lowWater = options.lowWaterBytes ?? DEFAULT_CHANNEL_LOW_WATER_BYTES;
    this.log = options.logger?.child({ component: 'channel-server' });
    options.counters.activeChannels++;
    channel.setBufferedAmountLowThreshold(this.lowWater);
    channel.onBufferedAmountLow(() => this.wakeWriters());
    channel.onMessage((message) => this.onMessage(message));
    channel.onClose(() => this.onClosed());
  }

  get activeRequests(): number {
    return this.active.size;
  }

  async drain(): Promise<void> {
    await Promise.all([...this.active.values()].map((r) => r.done));
  }

  close(): void {
    this.channel.close();
    this.onClosed();
  }

  private onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    this.options.counters.activeChannels--;
    for (const { controller } of this.active.values()) controller.abort(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'channel closed'));
    this.wakeWriters();
  }

  private onMessage(message: Uint8Array): void {
    if (this.closed) return;
    let frames: RelayFrame[];
    try {
      frames = decodeFrames(message);
    } catch (err) {
      return this.violation(toRelaycastError(err));
    }
    for (const frame of frames) {
      if (frame.type === FrameType.REQUEST) this.onRequest(frame);
      else if (frame.type === FrameType.CANCEL) this.active.get(frame.requestId)?.controller.abort(new RelaycastError(ErrorCode.ABORTED, 'cancelled by viewer'));
      else return this.violation(new RelaycastError(ErrorCode.FRAME_TYPE, `viewers may not send frame type ${frame.type}`));
    }
  }

  /** A broken frame means the stream can no longer be trusted: report, then drop only this channel. */
  private violation(err: RelaycastError): void {
    this.options.counters.protocolViolations++;
    this.log?.debug({ code: err.code }, 'closing channel after protocol violation');
    this.sendFrame({ type: FrameType.ERROR, requestId: 0, code: err.code, message: err.message });
    this.onClosed();
    // Give the error frame a moment to leave before the channel goes.
    setTimeout(() => this.channel.close(), 50).unref?.();
  }

  private onRequest(frame: RequestFrame): void {
    const id = frame.requestId;
    if (this.active.has(id)) {
      this.sendError(id, new RelaycastError(ErrorCode.REQUEST_DUPLICATE, `request ${id} is already active`));
      return;
    }
    if (this.active.size >= this.maxRequests) {
      this.sendError(id, new RelaycastError(ErrorCode.RELAY_OVERLOADED, `at most ${this.maxRequests} concurrent requests per channel`));
      return;
    }
    const controller = new AbortController();
    const done = this.serve(frame, controller.signal).finally(() => this.active.delete(id));
    this.active.set(id, { controller, done });
  }

  private async serve(frame: RequestFrame, signal: AbortSignal): Promise<void> {
    const { requestId } = frame;
    const counters = this.options.counters;
    counters.requests++;
    const maxChunkBytes = Math.min(MAX_CHUNK_BYTES, (this.channel.maxMessageSize || MAX_CHUNK_BYTES + FRAME_HEADER_BYTES) - FRAME_HEADER_BYTES);
    try {
      const stream = await this.options.source.open(
        { url: frame.url, range: frame.range, playlistUrl: frame.playlistUrl },
        { signal, maxChunkBytes },
      );
      if (stream.fromCache) counters.cacheHits++;
      this.sendFrame({ type: FrameType.RESPONSE, requestId, offset: stream.offset, totalBytes: stream.totalBytes, digest: stream.digest });
      let sent = 0;
      for await (const chunk of stream.chunks) {
        await this.writable(signal);
        await this.options.uploadLimiter?.take(chunk.byteLength, signal);
        if (signal.aborted) throw signal.reason;
        if (!this.sendFrame({ type: FrameType.DATA, requestId, chunk })) {
          throw new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'channel closed while sending');
        }
        sent += chunk.byteLength;
        counters.bytesServed += chunk.byteLength;
      }
      this.sendFrame({ type: FrameType.END, requestId, bytesSent: sent });
    } catch (err) {
      if (signal.aborted || this.closed) return; // cancelled or gone: nobody is listening
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.SEGMENT_UNAVAILABLE) {
        counters.absent++;
        this.sendFrame({ type: FrameType.ABSENT, requestId });
      } else if (!isAbortError(e)) {
        this.sendError(requestId, e);
      }
    }
  }

  private sendError(requestId: number, err: RelaycastError): void {
    const counters = this.options.counters;
    counters.errorsByCode[err.code] = (counters.errorsByCode[err.code] ?? 0) + 1;
    this.log?.debug({ requestId, code: err.code }, 'request failed');
    this.sendFrame({ type: FrameType.ERROR, requestId, code: err.code, message: err.message });
  }

  private sendFrame(frame: RelayFrame): boolean {
    if (this.closed) return false;
    return this.channel.send(encodeFrame(frame));
  }

  /** Waits until the channel's queue is below the high-water mark (backpressure). */
  private async writable(signal: AbortSignal): Promise<void> {
    while (!this.closed && !signal.aborted && this.channel.bufferedAmount > this.highWater) {
      await new Promise<void>((resolve) => {
        this.lowWaiters.push(resolve);
        signal.addEventListener('abort', () => resolve(), { once: true });
      });
    }
  }

  private wakeWriters(): void {
    const waiters = this.lowWaiters;
    this.lowWaiters = [];
    for (const w of waiters) w();
  }
}
