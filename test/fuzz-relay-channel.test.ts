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
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ErrorCode,
  FrameType,
  decodeFrames,
  encodeBase58,
  encodeFrame,
  isErrorCode,
  type RelayFrame,
} from '@relaycast/protocol';
import { rawPublicKey } from '@relaycast/protocol/node';
import { ChannelServer, PaymentGate, ReceiptStore, createOriginSegmentSource, type RelayDataChannel, type SegmentSource } from '@relaycast/relay';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withoutStackTraces } from '../protocol/src/test-support.js';
import { TestSession, testPayer } from '../relay/src/payments/payment-test-kit.js';
import {
  damagedBytesArb,
  hostileUrlArb,
  randomFrameBytesArb,
  requestFrameArb,
  requestIdArb,
  signedGrantBytesArb,
  signedReceiptBytesArb,
} from './helpers/fuzz-arbitraries.js';
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

/**
 * What the relay sent on one channel: decodable frames of the relay-to-viewer kinds, errors with
 * known, non-internal codes, and, when it closed the channel, an ERROR on request id 0 last.
 * Returns true when the channel was closed for a violation.
 */
function checkChannel(channel: MemoryChannel, sessionOpen: boolean): boolean {
  for (const f of channel.sent) {
    if (f instanceof Error) throw new Error(`relay sent an undecodable frame: ${f.message}`);
    expect([FrameType.RESPONSE, FrameType.DATA, FrameType.END, FrameType.ABSENT, FrameType.ERROR]).toContain(f.type);
    if (f.type === FrameType.ERROR) {
      expect(isErrorCode(f.code), f.code).toBe(true);
      expect(f.code).not.toBe(ErrorCode.INTERNAL);
    }
  }
  if (channel.closedAt === undefined && sessionOpen) return false;
  const last = channel.sent.at(-1);
  expect(last !== undefined && !(last instanceof Error) && last.type === FrameType.ERROR && last.requestId === 0).toBe(true);
  return true;
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
        if (checkChannel(channel, session.isOpen)) violations++;
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
  it('with payments: grants, receipts and damaged payment frames get typed answers, and memory stays bounded', async () => {
    // A paid relay: the payment gate (grant and receipt checks, credit limit, SQLite receipt store)
    // sits between the channel and the origin side.
    const relayKey = rawPublicKey(generateKeyPairSync('ed25519').privateKey);
    const dir = await mkdtemp(join(tmpdir(), 'rc-fuzz-pay-'));
    const store = ReceiptStore.open({ path: join(dir, 'receipts.sqlite'), relayId: encodeBase58(relayKey) }, relayKey);
    const payer = testPayer();
    const stranger = testPayer();
    const gate = new PaymentGate({ relayKey, acceptedPayers: [payer.id], store, paymentFramesPerSec: 1_000_000, paymentFrameBurst: 1_000_000 });
    const paid = new ChannelServer({ source, payments: gate });
    // Honest sessions, one of a payer the relay does not accept, an expired one and one scoped elsewhere.
    const sessions = [
      ...Array.from({ length: 6 }, () => new TestSession(payer, { scope: prefix })),
      new TestSession(stranger, { scope: prefix }),
      new TestSession(payer, { scope: prefix, expiresAtMs: Date.now() - 1 }),
      new TestSession(payer),
    ];
    const otherRelay = rawPublicKey(generateKeyPairSync('ed25519').privateKey);
    type Action =
      | { kind: 'grant'; session: number }
      | { kind: 'receipt'; session: number; bytes: number; tamper: 'none' | 'relay' | 'amount' | 'sequence' | 'signer' }
      | { kind: 'raw'; frame: Uint8Array };
    const payment = (frameBytes: Uint8Array, type: number): Uint8Array =>
      encodeFrame(type === FrameType.GRANT ? { type: FrameType.GRANT, requestId: 0, signedGrant: frameBytes } : { type: FrameType.RECEIPT, requestId: 0, signedReceipt: frameBytes });
    const actionArb: fc.Arbitrary<Action> = fc.oneof(
      fc.record({ kind: fc.constant('grant' as const), session: fc.nat({ max: sessions.length - 1 }) }),
      fc.record({
        kind: fc.constant('receipt' as const),
        session: fc.nat({ max: sessions.length - 1 }),
        bytes: fc.oneof(fc.nat({ max: 64 * 1024 * 1024 }), fc.maxSafeNat()),
        tamper: fc.constantFrom('none', 'none', 'relay', 'amount', 'sequence', 'signer'),
      }),
      fc.record({
        kind: fc.constant('raw' as const),
        frame: damagedBytesArb(fc.oneof(signedGrantBytesArb.map((b) => payment(b, FrameType.GRANT)), signedReceiptBytesArb.map((b) => payment(b, FrameType.RECEIPT)))),
      }),
    );
    const request = requestFrameArb(urlArb()).map((f) => encodeFrame(f) as Uint8Array);
    const step = fc.oneof({ weight: 3, arbitrary: actionArb }, { weight: 2, arbitrary: request.map((frame): Action => ({ kind: 'raw', frame })) });
    const heap = heapProbe();
    let violations = 0;
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 5 }), async (steps) => {
          const channel = new MemoryChannel();
          const session = paid.serve(channel);
          for (const a of steps) {
            if (a.kind === 'raw') channel.deliver(a.frame);
            else if (a.kind === 'grant') channel.deliver(payment((sessions[a.session] as TestSession).signedGrant(), FrameType.GRANT));
            else {
              const ts = sessions[a.session] as TestSession;
              const over =
                a.tamper === 'relay' ? { relay: otherRelay }
                : a.tamper === 'amount' ? { cumulativeAmount: BigInt(a.bytes) + 1n }
                : a.tamper === 'sequence' ? { sequence: 0 }
                : {};
              const signer = a.tamper === 'signer' ? (sessions[(a.session + 1) % sessions.length] as TestSession).key : ts.key;
              channel.deliver(payment(ts.signedReceipt(relayKey, a.bytes, over, signer), FrameType.RECEIPT));
            }
          }
          await paid.drain(AbortSignal.timeout(10_000));
          if (checkChannel(channel, session.isOpen)) violations++;
          session.close();
          checkOriginSawOnlyAllowed();
          heap.tick();
        }),
        fuzzParams(),
      );
      const stats = gate.stats();
      expect(stats.grantsAccepted).toBeGreaterThan(0);
      expect(stats.receiptsAccepted).toBeGreaterThan(0);
      expect(Object.keys(stats.refusedByCode).every((code) => isErrorCode(code) && code !== ErrorCode.INTERNAL)).toBe(true);
      expect(violations).toBeGreaterThan(0);
      expect(paid.stats()).toMatchObject({ channels: 0, activeRequests: 0 });
      expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);
    } finally {
      paid.close();
      store.close();
      await rm(dir, { recursive: true, force: true });
    }
  }, fuzzTimeoutMs(20_000));
});
