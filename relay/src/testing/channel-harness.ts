/**
 * Test kit for the channel server, shared by its tests and the payment tests: a fake segment source
 * and a viewer speaking the frame protocol over a real node-datachannel pair. Not exported from the
 * package: tests import it by path.
 */
import { ErrorCode, FrameType, RelaycastError, concatBytes, decodeFrames, encodeFrame, type RelayFrame } from '@relaycast/protocol';
import type { SegmentRequest, SegmentSource, SegmentStream } from '../serve/segment-source.js';
import { withTimeout, type ConnectedPair } from './transport-compliance.js';

// ---------- a fake segment source ----------

export interface FakeSegment {
  bytes: Uint8Array;
  /** Delay before each chunk, in ms (a slow origin). */
  chunkDelayMs?: number;
  fromCache?: boolean;
  /**
   * A cache miss: opening it starts an origin download of the whole segment, reported through the
   * request's onOriginBytes, and refused with RC_ERR_ORIGIN_BUDGET when allowOriginFetch is false.
   */
  originMiss?: boolean;
}

export interface FakeSource extends SegmentSource {
  opened: SegmentRequest[];
  /** Streams whose consumer went away (aborted or stopped iterating). */
  released: number;
  /** Origin bytes the `originMiss` segments were fetched with. */
  originBytes: number;
}

export function fakeSource(segments: Record<string, FakeSegment>): FakeSource {
  const source: FakeSource = {
    opened: [],
    released: 0,
    originBytes: 0,
    async open(request, { signal, maxChunkBytes }): Promise<SegmentStream> {
      source.opened.push(request);
      if (request.url.endsWith('/absent.ts')) throw new RelaycastError(ErrorCode.SEGMENT_UNAVAILABLE, 'origin answered 404');
      if (request.url.endsWith('/broken.ts')) throw new RelaycastError(ErrorCode.ORIGIN_HTTP, 'origin answered 502');
      const seg = segments[request.url];
      if (seg === undefined) throw new RelaycastError(ErrorCode.ORIGIN_NOT_ALLOWED, 'not allowed');
      if (seg.originMiss === true) {
        if (request.allowOriginFetch === false) throw new RelaycastError(ErrorCode.ORIGIN_BUDGET, 'origin credit used up');
        source.originBytes += seg.bytes.byteLength;
        request.onOriginBytes?.(seg.bytes.byteLength);
      }
      const start = request.range?.start ?? 0;
      const end = request.range?.end ?? seg.bytes.byteLength;
      if (start > end || end > seg.bytes.byteLength) throw new RelaycastError(ErrorCode.RANGE_NOT_SATISFIABLE, 'bad range');
      const body = seg.bytes.subarray(start, end);
      async function* chunks(): AsyncGenerator<Uint8Array> {
        let finished = false;
        try {
          for (let o = 0; o < body.byteLength; o += maxChunkBytes) {
            if (seg?.chunkDelayMs) await new Promise((r) => setTimeout(r, seg.chunkDelayMs));
            if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'aborted');
            yield body.subarray(o, o + maxChunkBytes);
          }
          finished = true;
        } finally {
          if (!finished) source.released++;
        }
      }
      return { offset: start, totalBytes: seg.bytes.byteLength, fromCache: seg.fromCache ?? false, chunks: chunks() };
    },
    advertisedStreams: () => [],
    close: async () => undefined,
  };
  return source;
}

// ---------- a viewer speaking the frame protocol over a real node-datachannel pair ----------

export class FrameViewer {
  readonly frames: RelayFrame[] = [];
  private seen = 0;
  private waiters: (() => void)[] = [];
  readonly closed: Promise<void>;

  constructor(readonly pair: ConnectedPair) {
    pair.viewer.dc.onmessage = (e: MessageEvent) => {
      for (const f of decodeFrames(new Uint8Array(e.data as ArrayBuffer))) this.frames.push(f);
      for (const w of this.waiters.splice(0)) w();
    };
    this.closed = new Promise((resolve) => pair.viewer.dc.addEventListener('close', () => resolve()));
  }

  send(frame: RelayFrame): void {
    this.pair.viewer.dc.send(encodeFrame(frame));
  }

  sendRaw(bytes: Uint8Array): void {
    this.pair.viewer.dc.send(bytes.slice());
  }

  /** Waits for a frame matching `pred` (searching every frame received so far). */
  async waitFor(pred: (f: RelayFrame) => boolean, what: string): Promise<RelayFrame> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const found = this.frames.find(pred);
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await withTimeout(new Promise<void>((r) => this.waiters.push(r)), 15_000, what).catch(() => undefined);
    }
  }

  /** Frames of one request, waiting until its final frame (END, ABSENT or ERROR). */
  async complete(requestId: number): Promise<RelayFrame[]> {
    await this.waitFor(
      (f) => f.requestId === requestId && (f.type === FrameType.END || f.type === FrameType.ABSENT || f.type === FrameType.ERROR),
      `the end of request ${requestId}`,
    );
    return this.frames.filter((f) => f.requestId === requestId);
  }

  dataOf(requestId: number): Uint8Array {
    return concatBytes(this.frames.flatMap((f) => (f.type === FrameType.DATA && f.requestId === requestId ? [f.chunk] : [])));
  }

  countNew(): number {
    const n = this.frames.length - this.seen;
    this.seen = this.frames.length;
    return n;
  }
}
