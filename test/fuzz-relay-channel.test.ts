/**
 * Hardening issue, part 1: the relay's data-channel request handling under fast-check.
 *
 * Entry point: `ChannelServer.serve()` called directly with an in-memory channel, because opening a
 * WebRTC channel per input takes about a second here and every protocol violation closes the
 * channel (test/relay-target-allowlist.test.ts drives the real data channel of a relay process with
 * a sample of the same URLs). Everything behind the channel is real: the origin segment source
 * with its allowlist, fetcher, cache, coalescing and live prefetcher, against a real HTTP origin
 * on 127.0.0.1 that records every request it gets.
 *
 * Properties: the relay answers only with decodable frames and known, non-internal error codes;
 * a channel is closed only after an ERROR frame on request id 0 explains why; and the origin never
 * sees a request outside the allowlist, whatever URL, playlist or redirect was involved.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ErrorCode,
  FrameType,
  decodeFrames,
  encodeFrame,
  isErrorCode,
  type RelayFrame,
} from '@relaycast/protocol';
import { ChannelServer, createOriginSegmentSource, type RelayDataChannel, type SegmentSource } from '@relaycast/relay';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withoutStackTraces } from '../protocol/src/test-support.js';
import { damagedBytesArb, hostileUrlArb, randomFrameBytesArb, requestFrameArb, requestIdArb } from './helpers/fuzz-arbitraries.js';
import { MAX_FUZZ_HEAP_GROWTH_BYTES, fuzzParams, fuzzTimeoutMs, heapProbe } from './helpers/fuzz.js';

/** A data channel held in memory: what the relay sends is decoded and kept; the network drains at once. */
class MemoryChannel implements RelayDataChannel {
  readonly label = 'relaycast.1';
  readonly maxMessageSize = 256 * 1024;
  readonly sent: (RelayFrame | Error)[] = [];
  /** Index in `sent` at which close() was called, if it was. */
  closedAt: number | undefined;
  private messageCb: ((m: Uint8Array) => void) | undefined;
  private readonly closeCbs: (() => void)[] = [];
  get bufferedAmount(): number {
    return 0;
  }
  get isOpen(): boolean {
    return this.closedAt === undefined;
  }
  send(message: Uint8Array): boolean {
    if (!this.isOpen) return false;
    try {
      this.sent.push(...decodeFrames(message));
    } catch (err) {
      this.sent.push(err as Error);
    }
    return true;
  }
  setBufferedAmountLowThreshold(): void {}
  onBufferedAmountLow(): void {}
  onMessage(cb: (m: Uint8Array) => void): void {
    this.messageCb = cb;
  }
  onClose(cb: () => void): void {
    this.closeCbs.push(cb);
  }
  close(): void {
    if (this.closedAt !== undefined) return;
    this.closedAt = this.sent.length;
    for (const cb of this.closeCbs.splice(0)) cb();
  }
  deliver(bytes: Uint8Array): void {
    this.messageCb?.(bytes);
  }
}

interface SeenRequest {
  host: string;
  path: string;
}

describe('fuzz: relay data-channel request handling (handler entry point, real origin side)', () => {
  withoutStackTraces();
  let origin: Server;
  let port = 0;
  let prefix = '';
  const seen: SeenRequest[] = [];
  let source: SegmentSource;
  let server: ChannelServer;

  beforeAll(async () => {
    origin = createServer((req, res) => {
      const path = req.url ?? '';
      seen.push({ host: req.headers.host ?? '', path });
      const p = path.split('?')[0];
      if (p === '/media/seg000.ts') return void res.writeHead(200, { 'content-length': '70000' }).end(Buffer.alloc(70_000, 7));
      if (p === '/media/r-out') return void res.writeHead(302, { location: `http://localhost:${port}/media/seg000.ts` }).end();
      if (p === '/media/r-up') return void res.writeHead(302, { location: '/other/secret' }).end();
      if (p === '/media/r-ip') return void res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
      if (p === '/media/r-in') return void res.writeHead(301, { location: '/media/seg000.ts' }).end();
      if (p === '/media/live.m3u8') {
        // An origin playlist naming segments off the allowlist: the prefetcher must not follow them.
        const body = [
          '#EXTM3U', '#EXT-X-TARGETDURATION:1', '#EXT-X-MEDIA-SEQUENCE:1',
          '#EXTINF:1,', '../other/a.ts', '#EXTINF:1,', `http://localhost:${port}/media/b.ts`,
          '#EXTINF:1,', 'http://127.0.0.1:1/c.ts', '#EXTINF:1,', '%2e%2e/other/d.ts', '#EXTINF:1,', 'seg000.ts', '',
        ].join('\n');
        return void res.writeHead(200, { 'content-type': 'application/vnd.apple.mpegurl' }).end(body);
      }
      res.writeHead(404, { 'content-length': '0' }).end();
    });
    await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
    port = (origin.address() as AddressInfo).port;
    prefix = `http://127.0.0.1:${port}/media/`;
    source = createOriginSegmentSource({ allowedOrigins: [prefix], livePollMinMs: 500, originTimeoutMs: 2_000 });
    server = new ChannelServer({ source });
  });

  afterAll(async () => {
    server?.close();
    await source?.close();
    await new Promise<void>((resolve) => {
      origin?.closeAllConnections();
      origin?.close(() => resolve());
    });
  });

  /** Every origin request so far was for the allowed host and under the allowed path. */
  function checkOriginSawOnlyAllowed(): void {
    for (const r of seen.splice(0)) {
      expect(r.host, r.path).toBe(`127.0.0.1:${port}`);
      expect(r.path.startsWith('/media/'), r.path).toBe(true);
      expect(r.path.split(/[?#]/, 1)[0]?.split('/').some((s) => s === '..' || s.toLowerCase() === '%2e%2e'), r.path).toBe(false);
    }
  }

  function urlArb(): fc.Arbitrary<string> {
    return fc.oneof(
      hostileUrlArb(prefix),
      fc.constantFrom('seg000.ts', 'r-out', 'r-up', 'r-ip', 'r-in', 'live.m3u8', 'missing.ts').map((p) => prefix + p),
    );
  }

  it('answers only with typed frames, closes only with a reason, and never fetches outside the allowlist', async () => {
    const request = requestFrameArb(urlArb()).map((f) => encodeFrame(f) as Uint8Array);
    const cancel = requestIdArb.map((requestId) => encodeFrame({ type: FrameType.CANCEL, requestId }) as Uint8Array);
    const message = fc.oneof(
      { weight: 5, arbitrary: request },
      { weight: 1, arbitrary: cancel },
      { weight: 1, arbitrary: fc.array(fc.oneof(request, cancel), { minLength: 2, maxLength: 5 }).map((parts) => Buffer.concat(parts) as Uint8Array) },
      { weight: 2, arbitrary: damagedBytesArb(request) },
      { weight: 1, arbitrary: randomFrameBytesArb },
    );
    const heap = heapProbe();
    let answered = 0;
    let violations = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(message, { minLength: 1, maxLength: 4 }), async (messages) => {
        const channel = new MemoryChannel();
        const session = server.serve(channel);
        for (const m of messages) channel.deliver(m);
        // The channel server owns its requests; wait until it finished (or dropped) every one.
        await server.drain(AbortSignal.timeout(10_000));
        for (const f of channel.sent) {
          if (f instanceof Error) throw new Error(`relay sent an undecodable frame: ${f.message}`);
          expect([FrameType.RESPONSE, FrameType.DATA, FrameType.END, FrameType.ABSENT, FrameType.ERROR]).toContain(f.type);
          if (f.type === FrameType.ERROR) {
            expect(isErrorCode(f.code), f.code).toBe(true);
            expect(f.code).not.toBe(ErrorCode.INTERNAL);
          }
        }
        if (channel.closedAt !== undefined || !session.isOpen) {
          // Closed for a violation: the last frame sent explains it on request id 0.
          violations++;
          const last = channel.sent.at(-1);
          expect(last !== undefined && !(last instanceof Error) && last.type === FrameType.ERROR && last.requestId === 0).toBe(true);
        }
        answered += channel.sent.length;
        session.close();
        checkOriginSawOnlyAllowed();
        heap.tick();
      }),
      fuzzParams(),
    );
    // Give the live prefetcher a poll or two on the hostile playlist, then check the origin again.
    await new Promise((r) => setTimeout(r, 1_200));
    checkOriginSawOnlyAllowed();
    expect(server.stats().channels).toBe(0);
    expect(server.stats().activeRequests).toBe(0);
    expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);
    // The run reached both sides: requests that were served and channels closed for violations.
    expect(server.stats().completed).toBeGreaterThan(0);
    expect(violations).toBeGreaterThan(0);
    expect(answered).toBeGreaterThan(0);
  }, fuzzTimeoutMs(10_000));
});
