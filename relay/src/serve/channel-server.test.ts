import { randomBytes } from 'node:crypto';
import {
  DATA_CHANNEL_LABEL,
  ErrorCode,
  FRAME_HEADER_BYTES,
  FrameType,
  MAX_FRAME_BYTES,
  concatBytes,
  decodeFrames,
  encodeFrame,
  type RelayFrame,
} from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { ChannelServer } from './channel-server.js';
import { NodeDataChannelTransport } from '../transport/node-datachannel-transport.js';
import { FrameViewer, fakeSource } from '../testing/channel-harness.js';
import { connectViewer, eventually, withTimeout, type ConnectedPair } from '../testing/transport-compliance.js';
import type { RelayDataChannel } from '../transport/transport.js';

const SEG = 'https://origin.test/v/seg1.ts';
const SLOW = 'https://origin.test/v/slow.ts';
const BIG_A = 'https://origin.test/v/a.ts';
const BIG_B = 'https://origin.test/v/b.ts';

describe('ChannelServer over node-datachannel', () => {
  const transports: NodeDataChannelTransport[] = [];
  const pairs: ConnectedPair[] = [];
  const servers: ChannelServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close();
    for (const p of pairs.splice(0)) p.viewer.close();
    for (const t of transports.splice(0)) await t.close();
  });

  const segBytes = new Uint8Array(randomBytes(300_001));
  const bigA = new Uint8Array(randomBytes(2 * 1024 * 1024));
  const bigB = new Uint8Array(randomBytes(2 * 1024 * 1024));

  async function setup(options: Partial<ConstructorParameters<typeof ChannelServer>[0]> = {}, viewers = 1) {
    const source = fakeSource({
      [SEG]: { bytes: segBytes, fromCache: true },
      [SLOW]: { bytes: new Uint8Array(randomBytes(64 * 1024 * 100)), chunkDelayMs: 20 },
      [BIG_A]: { bytes: bigA },
      [BIG_B]: { bytes: bigB },
    });
    const server = new ChannelServer({ source, ...options });
    servers.push(server);
    const transport = new NodeDataChannelTransport({ bindAddress: '127.0.0.1' });
    transports.push(transport);
    const out: FrameViewer[] = [];
    for (let i = 0; i < viewers; i++) {
      const pair = await connectViewer(transport);
      pairs.push(pair);
      const v = new FrameViewer(pair);
      server.serve(pair.channel);
      out.push(v);
    }
    return { source, server, transport, viewers: out };
  }

  it('answers a request with RESPONSE, byte-identical DATA and END', { timeout: 30_000 }, async () => {
    const { server, viewers, source } = await setup();
    const [v] = viewers as [FrameViewer];
    v.send({ type: FrameType.REQUEST, requestId: 1, url: SEG, playlistUrl: 'https://origin.test/v/index.m3u8' });
    const frames = await v.complete(1);
    expect(frames[0]).toMatchObject({ type: FrameType.RESPONSE, offset: 0, totalBytes: segBytes.byteLength });
    const end = frames.at(-1);
    expect(end).toEqual({ type: FrameType.END, requestId: 1, bytesSent: segBytes.byteLength });
    expect(Buffer.from(v.dataOf(1)).equals(Buffer.from(segBytes))).toBe(true);
    for (const f of frames) if (f.type === FrameType.DATA) expect(f.chunk.byteLength + FRAME_HEADER_BYTES).toBeLessThanOrEqual(MAX_FRAME_BYTES);
    expect(source.opened[0]).toMatchObject({ url: SEG, range: undefined, playlistUrl: 'https://origin.test/v/index.m3u8' });
    // Each channel is its own key for the per-channel origin-fetch rate; a free relay never forbids a fetch.
    expect(source.opened[0]).toMatchObject({ originKey: expect.stringMatching(/^ch\d+$/), allowOriginFetch: true });
    const stats = server.stats();
    expect(stats).toMatchObject({ requests: 1, completed: 1, cacheHits: 1, bytesServed: segBytes.byteLength, errors: 0, channels: 1 });
  });

  it('serves a byte range from its offset', { timeout: 30_000 }, async () => {
    const { viewers } = await setup();
    const [v] = viewers as [FrameViewer];
    v.send({ type: FrameType.REQUEST, requestId: 7, url: SEG, range: { start: 1000, end: 150_000 } });
    const frames = await v.complete(7);
    expect(frames[0]).toMatchObject({ type: FrameType.RESPONSE, offset: 1000 });
    expect(frames.at(-1)).toEqual({ type: FrameType.END, requestId: 7, bytesSent: 149_000 });
    expect(Buffer.from(v.dataOf(7)).equals(Buffer.from(segBytes.subarray(1000, 150_000)))).toBe(true);
  });

  it('answers ABSENT when the origin has no such segment, and ERROR with the code for other failures', { timeout: 30_000 }, async () => {
    const { viewers, server } = await setup();
    const [v] = viewers as [FrameViewer];
    v.send({ type: FrameType.REQUEST, requestId: 2, url: 'https://origin.test/v/absent.ts' });
    v.send({ type: FrameType.REQUEST, requestId: 3, url: 'https://origin.test/v/broken.ts' });
    v.send({ type: FrameType.REQUEST, requestId: 4, url: SEG, range: { start: 400_000 } });
    expect(await v.complete(2)).toEqual([{ type: FrameType.ABSENT, requestId: 2 }]);
    expect(await v.complete(3)).toEqual([expect.objectContaining({ type: FrameType.ERROR, requestId: 3, code: ErrorCode.ORIGIN_HTTP })]);
    expect(await v.complete(4)).toEqual([expect.objectContaining({ type: FrameType.ERROR, requestId: 4, code: ErrorCode.RANGE_NOT_SATISFIABLE })]);
    expect(server.stats()).toMatchObject({ absent: 1, errors: 2, errorsByCode: { [ErrorCode.ORIGIN_HTTP]: 1, [ErrorCode.RANGE_NOT_SATISFIABLE]: 1 } });
  });

  it('stops a request on CANCEL and releases its source stream', { timeout: 30_000 }, async () => {
    const { viewers, source, server } = await setup();
    const [v] = viewers as [FrameViewer];
    v.send({ type: FrameType.REQUEST, requestId: 9, url: SLOW });
    await v.waitFor((f) => f.type === FrameType.DATA && f.requestId === 9, 'first DATA');
    v.send({ type: FrameType.CANCEL, requestId: 9 });
    await eventually(() => source.released === 1, 'the source stream to be released');
    await eventually(() => server.stats().activeRequests === 0, 'no active request');
    const dataAfterCancel = v.frames.filter((f) => f.requestId === 9).length;
    // The channel keeps working after a cancel, and request 9 stays silent.
    v.send({ type: FrameType.REQUEST, requestId: 10, url: SEG });
    await v.complete(10);
    expect(v.frames.filter((f) => f.requestId === 9)).toHaveLength(dataAfterCancel);
    expect(v.frames.some((f) => f.requestId === 9 && f.type === FrameType.END)).toBe(false);
    expect(v.dataOf(9).byteLength).toBeLessThan(64 * 1024 * 100);
    expect(server.stats().cancelled).toBe(1);
  });

  it('closes only the offending channel on a malformed frame; the other channel keeps working', { timeout: 30_000 }, async () => {
    const { viewers, server } = await setup({}, 2);
    const [bad, good] = viewers as [FrameViewer, FrameViewer];
    bad.sendRaw(new Uint8Array([0, 0, 0, 200, 1, 1, 0, 0, 0, 1])); // length prefix promises more than the message holds
    const err = await bad.waitFor((f) => f.type === FrameType.ERROR, 'a channel ERROR');
    expect(err).toMatchObject({ requestId: 0, code: ErrorCode.FRAME_TRUNCATED });
    await withTimeout(bad.closed, 15_000, 'the offending channel to close');
    good.send({ type: FrameType.REQUEST, requestId: 1, url: SEG });
    const frames = await good.complete(1);
    expect(frames.at(-1)?.type).toBe(FrameType.END);
    expect(server.stats().protocolViolations).toBe(1);
    await eventually(() => server.stats().channels === 1, 'one open channel');
  });

  it('closes a channel that sends a frame type only relays may send', { timeout: 30_000 }, async () => {
    const { viewers } = await setup();
    const [v] = viewers as [FrameViewer];
    v.send({ type: FrameType.END, requestId: 1, bytesSent: 0 });
    expect(await v.waitFor((f) => f.type === FrameType.ERROR, 'a channel ERROR')).toMatchObject({ requestId: 0, code: ErrorCode.FRAME_TYPE });
    await withTimeout(v.closed, 15_000, 'the channel to close');
  });

  it('refuses a duplicate active request id and too many concurrent requests', { timeout: 30_000 }, async () => {
    const { viewers } = await setup({ maxRequestsPerChannel: 2 });
    const [v] = viewers as [FrameViewer];
    v.send({ type: FrameType.REQUEST, requestId: 5, url: SLOW });
    v.send({ type: FrameType.REQUEST, requestId: 5, url: SEG });
    expect(await v.waitFor((f) => f.type === FrameType.ERROR && f.requestId === 5, 'duplicate error')).toMatchObject({
      code: ErrorCode.REQUEST_DUPLICATE,
    });
    v.send({ type: FrameType.REQUEST, requestId: 6, url: SLOW });
    v.send({ type: FrameType.REQUEST, requestId: 8, url: SEG });
    expect(await v.complete(8)).toEqual([expect.objectContaining({ type: FrameType.ERROR, code: ErrorCode.RELAY_OVERLOADED })]);
    // The first request 5 is unaffected by its duplicate.
    await v.waitFor((f) => f.type === FrameType.DATA && f.requestId === 5, 'DATA of request 5');
    v.send({ type: FrameType.CANCEL, requestId: 5 });
    v.send({ type: FrameType.CANCEL, requestId: 6 });
  });

  it('interleaves two large concurrent requests instead of serving one after the other', { timeout: 30_000 }, async () => {
    const { viewers } = await setup({ highWaterBytes: 128 * 1024, lowWaterBytes: 32 * 1024 });
    const [v] = viewers as [FrameViewer];
    // One message carrying both requests, so they start together whatever the network timing.
    v.sendRaw(
      concatBytes([encodeFrame({ type: FrameType.REQUEST, requestId: 1, url: BIG_A }), encodeFrame({ type: FrameType.REQUEST, requestId: 2, url: BIG_B })]),
    );
    await v.complete(1);
    await v.complete(2);
    expect(Buffer.from(v.dataOf(1)).equals(Buffer.from(bigA))).toBe(true);
    expect(Buffer.from(v.dataOf(2)).equals(Buffer.from(bigB))).toBe(true);
    // When the first request ends, the second must already be well under way (not queued behind it).
    const endOfFirst = v.frames.findIndex((f) => f.type === FrameType.END);
    const other = (v.frames[endOfFirst] as RelayFrame).requestId === 1 ? 2 : 1;
    const otherBefore = v.frames.slice(0, endOfFirst).filter((f) => f.type === FrameType.DATA && f.requestId === other).length;
    const otherTotal = v.frames.filter((f) => f.type === FrameType.DATA && f.requestId === other).length;
    expect(otherBefore).toBeGreaterThanOrEqual(otherTotal - 2);
  });

  it('refuses new requests once it stops accepting, and drains active ones', { timeout: 30_000 }, async () => {
    const { viewers, server } = await setup();
    const [v] = viewers as [FrameViewer];
    v.send({ type: FrameType.REQUEST, requestId: 1, url: BIG_A });
    await v.waitFor((f) => f.type === FrameType.RESPONSE, 'RESPONSE');
    server.stopAccepting();
    v.send({ type: FrameType.REQUEST, requestId: 2, url: SEG });
    expect(await v.complete(2)).toEqual([expect.objectContaining({ type: FrameType.ERROR, code: ErrorCode.RELAY_OVERLOADED })]);
    expect(await server.drain(AbortSignal.timeout(15_000))).toBe(true);
    expect((await v.complete(1)).at(-1)).toEqual({ type: FrameType.END, requestId: 1, bytesSent: bigA.byteLength });
  });
});

// ---------- deterministic backpressure with a channel whose queue the test controls ----------

class FakeChannel implements RelayDataChannel {
  readonly label = DATA_CHANNEL_LABEL;
  bufferedAmount = 0;
  isOpen = true;
  sent: Uint8Array[] = [];
  private threshold = 0;
  private low: (() => void)[] = [];
  private message: ((m: Uint8Array) => void) | undefined;
  private closeCbs: (() => void)[] = [];

  constructor(readonly maxMessageSize = 256 * 1024) {}

  send(m: Uint8Array): boolean {
    if (!this.isOpen) return false;
    this.sent.push(m);
    this.bufferedAmount += m.byteLength;
    return true;
  }
  /** The network takes `bytes` off the queue. */
  drain(bytes = Infinity): void {
    const before = this.bufferedAmount;
    this.bufferedAmount = Math.max(0, before - bytes);
    if (before > this.threshold && this.bufferedAmount <= this.threshold) for (const cb of this.low) cb();
  }
  deliver(frame: RelayFrame): void {
    this.message?.(encodeFrame(frame));
  }
  frames(): RelayFrame[] {
    return this.sent.flatMap((m) => decodeFrames(m));
  }
  setBufferedAmountLowThreshold(t: number): void {
    this.threshold = t;
  }
  onBufferedAmountLow(cb: () => void): void {
    this.low.push(cb);
  }
  onMessage(cb: (m: Uint8Array) => void): void {
    this.message = cb;
  }
  onClose(cb: () => void): void {
    this.closeCbs.push(cb);
  }
  close(): void {
    if (!this.isOpen) return;
    this.isOpen = false;
    for (const cb of this.closeCbs) cb();
  }
}

const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 20));

describe('ChannelServer backpressure', () => {
  const big = new Uint8Array(randomBytes(4 * 1024 * 1024));

  it('stops handing bytes to a channel whose viewer does not read, and resumes on bufferedAmountLow', async () => {
    const server = new ChannelServer({ source: fakeSource({ [BIG_A]: { bytes: big } }), highWaterBytes: 256 * 1024, lowWaterBytes: 64 * 1024 });
    const ch = new FakeChannel();
    server.serve(ch);
    ch.deliver({ type: FrameType.REQUEST, requestId: 1, url: BIG_A });
    for (let i = 0; i < 10; i++) await tick();
    // One frame may cross the mark: the check happens before each send.
    expect(ch.bufferedAmount).toBeLessThanOrEqual(256 * 1024 + MAX_FRAME_BYTES);
    expect(ch.bufferedAmount).toBeGreaterThan(256 * 1024);
    const stalledAt = ch.sent.length;
    ch.drain(100 * 1024); // still above the low-water mark: nothing more must be sent
    for (let i = 0; i < 5; i++) await tick();
    expect(ch.sent.length).toBe(stalledAt);
    while (!ch.frames().some((f) => f.type === FrameType.END)) {
      ch.drain();
      await tick();
      expect(ch.bufferedAmount).toBeLessThanOrEqual(256 * 1024 + MAX_FRAME_BYTES);
    }
    const data = concatBytes(ch.frames().flatMap((f) => (f.type === FrameType.DATA ? [f.chunk] : [])));
    expect(Buffer.from(data).equals(Buffer.from(big))).toBe(true);
    server.close();
  });

  it('a stalled channel does not hold back another channel', async () => {
    const server = new ChannelServer({ source: fakeSource({ [BIG_A]: { bytes: big } }), highWaterBytes: 256 * 1024, lowWaterBytes: 64 * 1024 });
    const stalled = new FakeChannel();
    const flowing = new FakeChannel();
    server.serve(stalled);
    server.serve(flowing);
    stalled.deliver({ type: FrameType.REQUEST, requestId: 1, url: BIG_A });
    flowing.deliver({ type: FrameType.REQUEST, requestId: 1, url: BIG_A });
    while (!flowing.frames().some((f) => f.type === FrameType.END)) {
      flowing.drain();
      await tick();
    }
    expect(stalled.frames().some((f) => f.type === FrameType.END)).toBe(false);
    expect(server.stats()).toMatchObject({ completed: 1, activeRequests: 1, channels: 2 });
    server.close();
    expect(server.stats()).toMatchObject({ channels: 0, activeRequests: 0 });
  });

  it('serves concurrent requests of one channel round-robin', async () => {
    const server = new ChannelServer({
      source: fakeSource({ [BIG_A]: { bytes: big }, [BIG_B]: { bytes: big } }),
      highWaterBytes: 128 * 1024,
      lowWaterBytes: 0,
    });
    const ch = new FakeChannel();
    server.serve(ch);
    ch.deliver({ type: FrameType.REQUEST, requestId: 1, url: BIG_A });
    ch.deliver({ type: FrameType.REQUEST, requestId: 2, url: BIG_B });
    while (ch.frames().filter((f) => f.type === FrameType.END).length < 2) {
      ch.drain();
      await tick();
    }
    const order = ch.frames().flatMap((f) => (f.type === FrameType.DATA ? [f.requestId] : []));
    const perRequest = big.byteLength / (64 * 1024 - FRAME_HEADER_BYTES);
    // Strict alternation while both are active: no request gets two turns in a row.
    const both = order.slice(0, 2 * Math.floor(perRequest));
    for (let i = 1; i < both.length; i++) expect(both[i]).not.toBe(both[i - 1]);
    server.close();
  });

  it('keeps every message within the peer maxMessageSize', async () => {
    const server = new ChannelServer({ source: fakeSource({ [BIG_A]: { bytes: big.subarray(0, 100_000) } }) });
    const ch = new FakeChannel(16 * 1024);
    server.serve(ch);
    ch.deliver({ type: FrameType.REQUEST, requestId: 3, url: BIG_A });
    while (!ch.frames().some((f) => f.type === FrameType.END)) await tick();
    expect(Math.max(...ch.sent.map((m) => m.byteLength))).toBeLessThanOrEqual(16 * 1024);
    const data = concatBytes(ch.frames().flatMap((f) => (f.type === FrameType.DATA ? [f.chunk] : [])));
    expect(Buffer.from(data).equals(Buffer.from(big.subarray(0, 100_000)))).toBe(true);
    server.close();
  });

  it('drops a channel that floods requests without reading', async () => {
    const server = new ChannelServer({
      source: fakeSource({}),
      highWaterBytes: 1024,
      lowWaterBytes: 0,
      hardLimitBytes: 4096,
    });
    const ch = new FakeChannel();
    server.serve(ch);
    for (let id = 1; id < 500 && ch.isOpen; id++) ch.deliver({ type: FrameType.REQUEST, requestId: id, url: 'https://origin.test/x/absent.ts' });
    await eventually(() => !ch.isOpen, 'the flooding channel to close', 5_000);
    expect(ch.bufferedAmount).toBeLessThan(4096 + 1024);
  });

  it('rejects inconsistent options with RC_ERR_CONFIG_INVALID', () => {
    const source = fakeSource({});
    for (const bad of [{ maxRequestsPerChannel: 0 }, { highWaterBytes: 100, lowWaterBytes: 100 }, { maxUploadBytesPerSec: -1 }]) {
      expect(() => new ChannelServer({ source, ...bad })).toThrowError(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    }
  });
});
