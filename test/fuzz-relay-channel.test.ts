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
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BIND_CHALLENGE_BYTES,
  DATA_CHANNEL_LABEL,
  ErrorCode,
  FrameType,
  SIGNED_ASSIGNMENT_BYTES,
  decodeFrames,
  encodeBase58,
  encodeFrame,
  isErrorCode,
  type BindFrame,
  type RelayFrame,
} from '@relaycast/protocol';
import { rawPublicKey } from '@relaycast/protocol/node';
import { ChannelServer, PaymentGate, ReceiptStore, createOriginSegmentSource, type RelayDataChannel, type SegmentSource } from '@relaycast/relay';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withoutStackTraces } from '@relaycast/protocol/testing';
import { TestSession, testPayer, testTracker } from '@relaycast/relay/testing';
import {
  damagedBytesArb,
  hostileUrlArb,
  randomFrameBytesArb,
  requestFrameArb,
  requestIdArb,
  signedGrantBytesArb,
  signedReceiptBytesArb,
} from './helpers/fuzz-arbitraries.js';
import { FUZZ_RUNS, MAX_FUZZ_HEAP_GROWTH_BYTES, fuzzParams, fuzzTimeoutMs, heapProbe } from './helpers/fuzz.js';

/** A data channel held in memory: what the relay sends is decoded and kept; the network drains at once. */
class MemoryChannel implements RelayDataChannel {
  readonly label = DATA_CHANNEL_LABEL;
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
 * What the relay sent on one channel: decodable frames of the relay-to-viewer kinds (a paid relay's
 * CHALLENGE first, and only then), errors with known, non-internal codes, and, when it closed the
 * channel, an ERROR on request id 0 last.
 * Returns true when the channel was closed for a violation.
 */
function checkChannel(channel: MemoryChannel, sessionOpen: boolean, paid = false): boolean {
  for (const [i, f] of channel.sent.entries()) {
    if (f instanceof Error) throw new Error(`relay sent an undecodable frame: ${f.message}`);
    if (f.type === FrameType.CHALLENGE) {
      // A paid relay challenges once, first thing; a free relay never does.
      expect(paid && i === 0, 'CHALLENGE only as the first frame of a paid channel').toBe(true);
      continue;
    }
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
          '#EXTM3U',
          '#EXT-X-TARGETDURATION:1',
          '#EXT-X-MEDIA-SEQUENCE:1',
          '#EXTINF:1,',
          '../other/a.ts',
          '#EXTINF:1,',
          `http://localhost:${port}/media/b.ts`,
          '#EXTINF:1,',
          'http://127.0.0.1:1/c.ts',
          '#EXTINF:1,',
          '%2e%2e/other/d.ts',
          '#EXTINF:1,',
          'seg000.ts',
          '',
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
      expect(
        r.path
          .split(/[?#]/, 1)[0]
          ?.split('/')
          .some((s) => s === '..' || s.toLowerCase() === '%2e%2e'),
        r.path,
      ).toBe(false);
    }
  }

  function urlArb(): fc.Arbitrary<string> {
    return fc.oneof(
      hostileUrlArb(prefix),
      fc.constantFrom('seg000.ts', 'r-out', 'r-up', 'r-ip', 'r-in', 'live.m3u8', 'missing.ts').map((p) => prefix + p),
    );
  }

  it(
    'answers only with typed frames, closes only with a reason, and never fetches outside the allowlist',
    async () => {
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
    },
    fuzzTimeoutMs(10_000),
  );
  it(
    'with payments: challenges, binds, receipts and damaged payment frames get typed answers, and memory stays bounded',
    async () => {
      // A paid relay: the payment gate (CHALLENGE/BIND with proof and tracker assignment, receipt
      // checks, credit limits, SQLite receipt store) sits between the channel and the origin side.
      const relayKey = rawPublicKey(generateKeyPairSync('ed25519').privateKey);
      const dir = await mkdtemp(join(tmpdir(), 'rc-fuzz-pay-'));
      const store = ReceiptStore.open({ path: join(dir, 'receipts.sqlite'), relayId: encodeBase58(relayKey) }, relayKey);
      const payer = testPayer();
      const stranger = testPayer();
      // The relay's tracker (trusted, as --trusted-tracker or the key learned from `registered`) and one it never heard of.
      const tracker = testTracker();
      const foreignTracker = testTracker();
      const gate = new PaymentGate({
        relayKey,
        acceptedPayers: [payer.id],
        store,
        trustedTrackers: [tracker.publicKey],
        paymentFramesPerSec: 1_000_000,
        paymentFrameBurst: 1_000_000,
      });
      const paid = new ChannelServer({ source, payments: gate });
      // Honest sessions, one of a payer the relay does not accept, an expired one and one scoped elsewhere.
      const sessions = [
        ...Array.from({ length: 6 }, () => new TestSession(payer, { scope: prefix })),
        new TestSession(stranger, { scope: prefix }),
        new TestSession(payer, { scope: prefix, issuedAtMs: Date.now() - 3_600_000, expiresAtMs: Date.now() - 1 }),
        new TestSession(payer),
      ];
      const otherRelay = rawPublicKey(generateKeyPairSync('ed25519').privateKey);
      // How a BIND is made: honest, or with the one thing wrong a thief, a confused SDK or a replay would get wrong.
      const bindVariants = [
        'valid',
        'valid',
        'valid',
        'other-challenge', // a proof another channel's challenge got (a replayed BIND)
        'other-key', // someone who saw the grant but holds another session's key
        'other-relay', // a proof (and assignment) made for another relay
        'no-assignment',
        'foreign-assignment', // signed by a tracker this relay does not trust
        'assignment-other-session', // the tracker's assignment of another session
        'assignment-other-relay', // the tracker sent this session to another relay
      ] as const;
      type BindVariant = (typeof bindVariants)[number];
      type Action =
        | { kind: 'bind'; session: number; variant: BindVariant }
        // A valid BIND for this channel with one byte changed after encoding.
        | { kind: 'bind-flip'; session: number; at: number; xor: number }
        | { kind: 'receipt'; session: number | 'bound'; bytes: number; tamper: 'none' | 'relay' | 'amount' | 'sequence' | 'signer' }
        | { kind: 'raw'; frame: Uint8Array };
      const sessionArb = fc.nat({ max: sessions.length - 1 });
      // BIND frames built from random fields (random proofs and assignments, grants of random payers), then damaged.
      const randomBindBytesArb = fc
        .record({
          signedGrant: signedGrantBytesArb,
          signedAssignment: fc.option(fc.uint8Array({ minLength: SIGNED_ASSIGNMENT_BYTES, maxLength: SIGNED_ASSIGNMENT_BYTES }), { nil: undefined }),
          proof: fc.uint8Array({ minLength: 64, maxLength: 64 }),
        })
        .map((f) => encodeFrame({ type: FrameType.BIND, requestId: 0, ...f }) as Uint8Array);
      const receiptFrame = (signedReceipt: Uint8Array): Uint8Array => encodeFrame({ type: FrameType.RECEIPT, requestId: 0, signedReceipt });
      const actionArb: fc.Arbitrary<Action> = fc.oneof(
        { weight: 3, arbitrary: fc.record({ kind: fc.constant('bind' as const), session: sessionArb, variant: fc.constantFrom(...bindVariants) }) },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant('bind-flip' as const), session: sessionArb, at: fc.nat(), xor: fc.integer({ min: 1, max: 255 }) }),
        },
        {
          weight: 3,
          arbitrary: fc.record({
            kind: fc.constant('receipt' as const),
            session: fc.oneof(fc.constant('bound' as const), sessionArb),
            bytes: fc.oneof(fc.nat({ max: 64 * 1024 * 1024 }), fc.maxSafeNat()),
            tamper: fc.constantFrom('none', 'none', 'relay', 'amount', 'sequence', 'signer'),
          }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant('raw' as const),
            frame: damagedBytesArb(fc.oneof(randomBindBytesArb, signedReceiptBytesArb.map(receiptFrame))),
          }),
        },
      );
      const request = requestFrameArb(urlArb()).map((f) => encodeFrame(f) as Uint8Array);
      const step = fc.oneof({ weight: 3, arbitrary: actionArb }, { weight: 2, arbitrary: request.map((frame): Action => ({ kind: 'raw', frame })) });

      function bindFrame(channelChallenge: Uint8Array, i: number, variant: BindVariant): BindFrame {
        const ts = sessions[i] as TestSession;
        const other = sessions[(i + 1) % sessions.length] as TestSession;
        switch (variant) {
          case 'valid':
            return ts.bindFrame(channelChallenge, relayKey, tracker);
          case 'other-challenge':
            return ts.bindFrame(new Uint8Array(randomBytes(BIND_CHALLENGE_BYTES)), relayKey, tracker);
          case 'other-key':
            return ts.bindFrame(channelChallenge, relayKey, tracker, { proofKey: other.key });
          case 'other-relay':
            return ts.bindFrame(channelChallenge, otherRelay, tracker);
          case 'no-assignment':
            return ts.bindFrame(channelChallenge, relayKey, tracker, { assignment: null });
          case 'foreign-assignment':
            return ts.bindFrame(channelChallenge, relayKey, foreignTracker);
          case 'assignment-other-session':
            return ts.bindFrame(channelChallenge, relayKey, tracker, { assignment: other.assignment(tracker, relayKey) });
          case 'assignment-other-relay':
            return ts.bindFrame(channelChallenge, relayKey, tracker, { assignment: ts.assignment(tracker, otherRelay) });
        }
      }

      const heap = heapProbe();
      let violations = 0;
      try {
        await fc.assert(
          fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 5 }), async (steps) => {
            const channel = new MemoryChannel();
            const session = paid.serve(channel);
            // The relay challenged the channel as it opened: the only frame so far.
            const first = channel.sent[0];
            if (first === undefined || first instanceof Error || first.type !== FrameType.CHALLENGE) throw new Error('a paid relay must send CHALLENGE first');
            const challenge = first.challenge;
            let bound = 0;
            for (const a of steps) {
              if (a.kind === 'raw') channel.deliver(a.frame);
              else if (a.kind === 'bind') {
                bound = a.session;
                channel.deliver(encodeFrame(bindFrame(challenge, a.session, a.variant)));
              } else if (a.kind === 'bind-flip') {
                const bytes = encodeFrame(bindFrame(challenge, a.session, 'valid')).slice();
                const at = a.at % bytes.byteLength;
                bytes[at] = (bytes[at] as number) ^ a.xor;
                channel.deliver(bytes);
              } else {
                const i = a.session === 'bound' ? bound : a.session;
                const ts = sessions[i] as TestSession;
                const over =
                  a.tamper === 'relay'
                    ? { relay: otherRelay }
                    : a.tamper === 'amount'
                      ? { cumulativeAmount: BigInt(a.bytes) + 1n }
                      : a.tamper === 'sequence'
                        ? { sequence: 0 }
                        : {};
                const signer = a.tamper === 'signer' ? (sessions[(i + 1) % sessions.length] as TestSession).key : ts.key;
                channel.deliver(receiptFrame(ts.signedReceipt(relayKey, a.bytes, over, signer)));
              }
            }
            await paid.drain(AbortSignal.timeout(10_000));
            if (checkChannel(channel, session.isOpen, true)) violations++;
            session.close();
            checkOriginSawOnlyAllowed();
            heap.tick();
          }),
          fuzzParams(),
        );
        const stats = gate.stats();
        expect(stats.bindsAccepted).toBeGreaterThan(0);
        expect(stats.receiptsAccepted).toBeGreaterThan(0);
        expect(Object.keys(stats.refusedByCode).every((code) => isErrorCode(code) && code !== ErrorCode.INTERNAL)).toBe(true);
        if (FUZZ_RUNS >= 2_000) {
          // Enough inputs that every kind of bad BIND and receipt came up: each was refused for its own reason.
          expect(Object.keys(stats.refusedByCode)).toEqual(
            expect.arrayContaining([
              ErrorCode.BIND_PROOF,
              ErrorCode.ASSIGNMENT_MISSING,
              ErrorCode.ASSIGNMENT_INVALID,
              ErrorCode.PAYER_UNKNOWN,
              ErrorCode.GRANT_EXPIRED,
              ErrorCode.RECEIPT_NO_GRANT,
              ErrorCode.RECEIPT_SIGNATURE,
            ]),
          );
        }
        // Only sessions that bound are kept (credit follows a session across channels): never the
        // stranger's or the expired one, whatever was sent.
        expect(stats.sessions).toBeGreaterThan(0);
        expect(stats.sessions).toBeLessThanOrEqual(sessions.length - 2);
        expect(violations).toBeGreaterThan(0);
        expect(paid.stats()).toMatchObject({ channels: 0, activeRequests: 0 });
        expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);
      } finally {
        paid.close();
        store.close();
        await rm(dir, { recursive: true, force: true });
      }
    },
    fuzzTimeoutMs(20_000),
  );
});
