/**
 * Hardening issue, part 1: every protocol/ decoder under fast-check with FUZZ_RUNS generated inputs
 * (10,000 in CI, RC_FUZZ_RUNS to change): no crash, only typed errors, nothing retained per input,
 * and no allocation a length field asks for beyond the input's own size.
 * Grants and receipts (payments) are decoders too. The protocol package's unit tests check field-by-field rules; this suite checks the contract
 * every caller relies on, from outside the package, with the same inputs the relay and tracker see.
 */
import {
  DIGEST_SIDECAR_SUFFIX,
  DIGEST_SIDECAR_VERSION,
  ErrorCode,
  FrameType,
  MAX_DIGEST_SIDECAR_BYTES,
  MAX_FRAME_BYTES,
  MAX_SIGNED_GRANT_BYTES,
  MAX_TRACKER_MESSAGE_BYTES,
  SIGNED_RECEIPT_BYTES,
  decodeBase58,
  decodeDigestSidecar,
  decodeFrame,
  decodeFrameAt,
  decodeFrames,
  decodePublicKey,
  decodeSignedGrant,
  decodeSignedReceipt,
  decodeTrackerClientMessage,
  decodeTrackerServerMessage,
  digestSidecarUrl,
  encodeBase58,
  encodeDigestSidecar,
  encodeFrame,
  encodeSignedGrant,
  encodeSignedReceipt,
  encodeTrackerMessage,
  fromBase64,
  swarmIdFromUrl,
  toBase64,
  utf8Encode,
  type RelayFrame,
} from '@relaycast/protocol';
import { formatKeypairText, parseKeypairText, secretKeyFromSeed } from '@relaycast/protocol/node';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectRelaycastError, withoutStackTraces } from '@relaycast/protocol/testing';
import {
  anyFrameArb,
  anyString,
  damagedBytesArb,
  randomFrameBytesArb,
  rawFrame,
  signedGrantBytesArb,
  signedReceiptBytesArb,
  trackerTextArb,
} from './helpers/fuzz-arbitraries.js';
import { MAX_FUZZ_HEAP_GROWTH_BYTES, forceGc, fuzzParams, fuzzProperty, fuzzTimeoutMs, heapProbe, typedOutcome } from './helpers/fuzz.js';

const FRAME_ERRORS = ['RC_ERR_FRAME_'];
const MESSAGE_ERRORS = ['RC_ERR_MESSAGE_'];

/** Bytes of binary payload a decoded frame holds (chunks, digests and strings as UTF-8). */
function payloadBytes(frame: RelayFrame): number {
  switch (frame.type) {
    case FrameType.REQUEST:
      return utf8Encode(frame.url).byteLength + (frame.playlistUrl === undefined ? 0 : utf8Encode(frame.playlistUrl).byteLength);
    case FrameType.RESPONSE:
      return frame.digest?.byteLength ?? 0;
    case FrameType.DATA:
      return frame.chunk.byteLength;
    case FrameType.ERROR:
      return utf8Encode(frame.code).byteLength + utf8Encode(frame.message).byteLength;
    case FrameType.CHALLENGE:
      return frame.challenge.byteLength;
    case FrameType.BIND:
      return frame.signedGrant.byteLength + (frame.signedAssignment?.byteLength ?? 0) + frame.proof.byteLength;
    case FrameType.RECEIPT:
      return frame.signedReceipt.byteLength;
    default:
      return 0;
  }
}

/**
 * The frame decoders' contract on untrusted bytes: frames that re-encode to exactly the input
 * (canonical, nothing invented) and hold no more payload than the input carried, or RC_ERR_FRAME_*.
 */
function checkFrames(bytes: Uint8Array): void {
  const one = typedOutcome(() => decodeFrame(bytes), FRAME_ERRORS);
  if (one !== undefined) {
    expect(Buffer.compare(Buffer.from(encodeFrame(one)), Buffer.from(bytes))).toBe(0);
    expect(payloadBytes(one)).toBeLessThanOrEqual(bytes.byteLength);
  }
  const many = typedOutcome(() => decodeFrames(bytes), FRAME_ERRORS);
  if (many !== undefined) {
    const again = Buffer.concat(many.map((f) => encodeFrame(f)));
    expect(Buffer.compare(again, Buffer.from(bytes))).toBe(0);
  }
  // A frame read in the middle of a larger message: any offset, valid or not.
  typedOutcome(() => decodeFrameAt(bytes, bytes.byteLength === 0 ? 0 : bytes[0]! % (bytes.byteLength + 2)), FRAME_ERRORS);
}

describe('fuzz: relay data-channel frames', () => {
  withoutStackTraces();

  it(
    'random bytes and random bodies behind plausible headers',
    async () => {
      const heap = heapProbe();
      await fc.assert(
        fuzzProperty(randomFrameBytesArb, (bytes) => {
          checkFrames(bytes);
          heap.tick();
        }),
        fuzzParams(),
      );
      expect(heap.samples).toBeGreaterThan(0);
      expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);
    },
    fuzzTimeoutMs(1_500),
  );

  it(
    'valid frames and sequences, damaged',
    async () => {
      const valid = fc.array(anyFrameArb(), { minLength: 1, maxLength: 4 }).map((frames) => Buffer.concat(frames.map((f) => encodeFrame(f))));
      const heap = heapProbe();
      await fc.assert(
        fuzzProperty(damagedBytesArb(valid.map((b) => new Uint8Array(b))), (bytes) => {
          checkFrames(bytes);
          heap.tick();
        }),
        fuzzParams(),
      );
      expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);
    },
    fuzzTimeoutMs(3_000),
  );

  it(
    'rejects length prefixes beyond the frame before allocating what they claim',
    async () => {
      // Each input claims up to 4 GiB in a handful of bytes. Decoding FUZZ_RUNS of them must leave
      // memory where it was: the claim is compared with the buffer and MAX_FRAME_BYTES first.
      forceGc();
      const before = process.memoryUsage();
      let peakArrayBuffers = before.arrayBuffers;
      await fc.assert(
        fuzzProperty(
          fc.tuple(fc.integer({ min: MAX_FRAME_BYTES - 3, max: 0xffff_ffff }), fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 32 })),
          ([claimed, type, payload]) => {
            const bytes = rawFrame(type, 1, payload, 1, claimed);
            expectRelaycastError(() => decodeFrame(bytes), ErrorCode.FRAME_TOO_LARGE);
            expectRelaycastError(() => decodeFrames(bytes), ErrorCode.FRAME_TOO_LARGE);
            peakArrayBuffers = Math.max(peakArrayBuffers, process.memoryUsage().arrayBuffers);
          },
        ),
        fuzzParams({ numRuns: Math.min(fuzzParams().numRuns ?? 0, 20_000) }),
      );
      // Far below one claimed frame (the smallest claim is 64 KiB, most are gigabytes).
      expect(peakArrayBuffers - before.arrayBuffers).toBeLessThan(MAX_FRAME_BYTES);
    },
    fuzzTimeoutMs(1_000),
  );

  it(
    'claims that fit the frame cap but not the buffer are truncation, and strings never exceed their caps',
    async () => {
      await fc.assert(
        fuzzProperty(fc.tuple(fc.integer({ min: 6, max: MAX_FRAME_BYTES - 4 }), fc.uint8Array({ maxLength: 64 })), ([claimed, payload]) => {
          const bytes = rawFrame(FrameType.DATA, 1, payload, 1, claimed);
          if (claimed > 6 + payload.byteLength) expectRelaycastError(() => decodeFrame(bytes), ErrorCode.FRAME_TRUNCATED);
          else checkFrames(bytes);
          // A REQUEST whose u16 URL length says 65,535 in a frame that carries a few bytes.
          const req = rawFrame(FrameType.REQUEST, 1, Uint8Array.from([0, 0xff, 0xff, ...payload]));
          expectRelaycastError(() => decodeFrame(req), 'RC_ERR_FRAME_');
        }),
        fuzzParams(),
      );
    },
    fuzzTimeoutMs(1_000),
  );
});

function checkTracker(data: string | Uint8Array): void {
  for (const decode of [decodeTrackerClientMessage, decodeTrackerServerMessage]) {
    const msg = typedOutcome(() => decode(data), MESSAGE_ERRORS);
    if (msg !== undefined) {
      // What a decoder accepts, the encoder writes back and the decoder reads the same way.
      const text = encodeTrackerMessage(msg);
      expect(encodeTrackerMessage(decode(text))).toBe(text);
      expect(utf8Encode(text).byteLength).toBeLessThanOrEqual(MAX_TRACKER_MESSAGE_BYTES);
    }
  }
}

describe('fuzz: tracker messages', () => {
  withoutStackTraces();

  it(
    'message-shaped JSON, damaged JSON, random text and deep nesting, as text and as bytes',
    async () => {
      const heap = heapProbe();
      await fc.assert(
        fuzzProperty(fc.tuple(trackerTextArb, fc.boolean()), ([text, asBytes]) => {
          checkTracker(asBytes ? utf8Encode(text) : text);
          heap.tick();
        }),
        fuzzParams(),
      );
      expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);
    },
    fuzzTimeoutMs(3_000),
  );

  it(
    'random bytes, invalid UTF-8 included',
    async () => {
      await fc.assert(
        fuzzProperty(fc.uint8Array({ maxLength: 256 }), (bytes) => checkTracker(bytes)),
        fuzzParams(),
      );
    },
    fuzzTimeoutMs(1_000),
  );

  it(
    'refuses anything over the size cap before parsing it, whatever it holds',
    async () => {
      await fc.assert(
        fuzzProperty(fc.tuple(fc.integer({ min: 1, max: 64 * 1024 }), fc.constantFrom('[', '{"a":', 'x', '€', '"')), ([extra, unit]) => {
          const text = unit.repeat(Math.ceil((MAX_TRACKER_MESSAGE_BYTES + extra) / utf8Encode(unit).byteLength));
          expectRelaycastError(() => decodeTrackerClientMessage(text), ErrorCode.MESSAGE_TOO_LARGE);
          expectRelaycastError(() => decodeTrackerServerMessage(utf8Encode(text)), ErrorCode.MESSAGE_TOO_LARGE);
        }),
        fuzzParams({ numRuns: Math.min(fuzzParams().numRuns ?? 0, 2_000) }),
      );
    },
    fuzzTimeoutMs(2_000),
  );
});

describe('fuzz: segment digest sidecars', () => {
  withoutStackTraces();
  const hex = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));
  const uri = fc.oneof(fc.string({ minLength: 1, maxLength: 40 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'hasOwnProperty', 'seg000.ts'));
  const sidecarArb = fc.record({
    version: fc.oneof(fc.constant(DIGEST_SIDECAR_VERSION), fc.jsonValue({ maxDepth: 0 })),
    algorithm: fc.oneof(fc.constant('sha256'), fc.jsonValue({ maxDepth: 0 })),
    playlist: fc.oneof(fc.string({ minLength: 1, maxLength: 20 }), fc.jsonValue({ maxDepth: 0 })),
    segments: fc.oneof(fc.dictionary(uri, fc.oneof(hex, hex, fc.jsonValue({ maxDepth: 0 })), { maxKeys: 6 }), fc.jsonValue({ maxDepth: 2 })),
  });

  it(
    'only sidecars or RC_ERR_DIGEST_SIDECAR_INVALID, and every accepted entry survives a round trip',
    async () => {
      const heap = heapProbe();
      await fc.assert(
        fuzzProperty(
          fc.oneof(
            sidecarArb.map((s) => JSON.stringify(s)),
            anyString(120),
            fc.json({ maxDepth: 3 }),
          ),
          (text) => {
            const sidecar = typedOutcome(() => decodeDigestSidecar(text), [ErrorCode.DIGEST_SIDECAR_INVALID]);
            if (sidecar !== undefined) {
              const parsed = JSON.parse(text) as { segments: Record<string, unknown> };
              // Nothing the origin published is dropped, whatever the segment is called.
              expect(Object.keys(sidecar.segments).sort()).toEqual(Object.keys(parsed.segments).sort());
              for (const [k, v] of Object.entries(parsed.segments)) expect(Object.getOwnPropertyDescriptor(sidecar.segments, k)?.value).toBe(v);
              expect(decodeDigestSidecar(encodeDigestSidecar(sidecar))).toEqual(sidecar);
            }
            heap.tick();
          },
        ),
        fuzzParams(),
      );
      expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);
    },
    fuzzTimeoutMs(2_000),
  );

  it('refuses an oversized sidecar before parsing it', () => {
    const text = '['.repeat(MAX_DIGEST_SIDECAR_BYTES + 1);
    expectRelaycastError(() => decodeDigestSidecar(text), ErrorCode.DIGEST_SIDECAR_INVALID);
  });
});

describe('fuzz: signed grants and receipts', () => {
  withoutStackTraces();
  const RECEIPT_ERRORS = [ErrorCode.RECEIPT_MALFORMED];

  it(
    'only grants and receipts that re-encode to the input, or RC_ERR_RECEIPT_MALFORMED',
    async () => {
      const heap = heapProbe();
      const bytesArb = fc.oneof(
        damagedBytesArb(signedGrantBytesArb),
        damagedBytesArb(signedReceiptBytesArb),
        signedGrantBytesArb,
        signedReceiptBytesArb,
        fc.uint8Array({ maxLength: MAX_SIGNED_GRANT_BYTES + 8 }),
      );
      await fc.assert(
        fuzzProperty(bytesArb, (bytes) => {
          const grant = typedOutcome(() => decodeSignedGrant(bytes), RECEIPT_ERRORS);
          if (grant !== undefined) expect(Buffer.compare(Buffer.from(encodeSignedGrant(grant)), Buffer.from(bytes))).toBe(0);
          const receipt = typedOutcome(() => decodeSignedReceipt(bytes), RECEIPT_ERRORS);
          if (receipt !== undefined) {
            expect(bytes.byteLength).toBe(SIGNED_RECEIPT_BYTES);
            expect(Buffer.compare(Buffer.from(encodeSignedReceipt(receipt)), Buffer.from(bytes))).toBe(0);
          }
          heap.tick();
        }),
        fuzzParams(),
      );
      expect(heap.maxGrowthBytes).toBeLessThan(MAX_FUZZ_HEAP_GROWTH_BYTES);
    },
    fuzzTimeoutMs(2_000),
  );

  it('refuses oversized grants before reading them', () => {
    for (const n of [MAX_SIGNED_GRANT_BYTES + 1, 64 * 1024, 1024 * 1024]) {
      expectRelaycastError(() => decodeSignedGrant(new Uint8Array(n).fill(1)), ErrorCode.RECEIPT_MALFORMED);
      expectRelaycastError(() => decodeSignedReceipt(new Uint8Array(n).fill(1)), ErrorCode.RECEIPT_MALFORMED);
    }
  });
});

describe('fuzz: Solana keypair files', () => {
  withoutStackTraces();

  it(
    'only checked 64-byte secrets, or RC_ERR_KEYPAIR_INVALID',
    async () => {
      const valid = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((seed) => formatKeypairText(secretKeyFromSeed(seed)));
      const text = fc.oneof(
        valid,
        fc.tuple(valid, fc.nat(), fc.string({ minLength: 1, maxLength: 3 })).map(([t, at, s]) => t.slice(0, at % t.length) + s + t.slice((at % t.length) + 1)),
        fc
          .array(fc.oneof(fc.integer({ min: -1, max: 256 }), fc.double(), fc.string({ maxLength: 2 })), { minLength: 60, maxLength: 66 })
          .map((a) => JSON.stringify(a)),
        fc.json({ maxDepth: 2 }),
        anyString(80),
      );
      await fc.assert(
        fuzzProperty(text, (t) => {
          const secret = typedOutcome(() => parseKeypairText(t), [ErrorCode.KEYPAIR_INVALID]);
          if (secret !== undefined) expect(formatKeypairText(secret)).toBe(JSON.stringify(JSON.parse(t)));
        }),
        // Every valid input costs three ed25519 key derivations (~3 ms on a busy machine): a local
        // file format does not need the nightly's 200,000.
        fuzzParams({ numRuns: Math.min(fuzzParams().numRuns ?? 0, 20_000) }),
      );
    },
    fuzzTimeoutMs(3_000),
  );
});

describe('fuzz: base58, base64 and URL helpers', () => {
  withoutStackTraces();
  const base58Chars = fc.string({ unit: fc.constantFrom(...'123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0OIl+/= é'.split('')), maxLength: 60 });

  it(
    'base58: canonical bytes or RC_ERR_MESSAGE_FIELD; public keys are 32 bytes or RC_ERR_MESSAGE_FIELD',
    async () => {
      await fc.assert(
        fuzzProperty(fc.oneof(base58Chars, anyString(50), fc.uint8Array({ minLength: 32, maxLength: 32 }).map(encodeBase58)), (text) => {
          const bytes = typedOutcome(() => decodeBase58(text), [ErrorCode.MESSAGE_FIELD]);
          if (bytes !== undefined) expect(encodeBase58(bytes)).toBe(text);
          const key = typedOutcome(() => decodePublicKey(text), [ErrorCode.MESSAGE_FIELD]);
          if (key !== undefined) {
            expect(key.byteLength).toBe(32);
            expect(encodeBase58(key)).toBe(text);
          }
        }),
        fuzzParams(),
      );
    },
    fuzzTimeoutMs(1_000),
  );

  it(
    'base64: canonical bytes or undefined, never an exception',
    async () => {
      const b64Chars = fc.string({
        unit: fc.constantFrom(...'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_ é'.split('')),
        maxLength: 96,
      });
      await fc.assert(
        fuzzProperty(fc.oneof(b64Chars, anyString(40), fc.uint8Array({ maxLength: 70 }).map(toBase64)), (text) => {
          const bytes = fromBase64(text);
          if (bytes !== undefined) expect(toBase64(bytes)).toBe(text);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeoutMs(1_000),
  );

  it(
    'swarm ids and sidecar URLs: a URL without query and fragment, or RC_ERR_CONFIG_INVALID',
    async () => {
      await fc.assert(
        fuzzProperty(fc.oneof(fc.webUrl({ withQueryParameters: true, withFragments: true }), anyString(60)), (text) => {
          const id = typedOutcome(() => swarmIdFromUrl(text), [ErrorCode.CONFIG_INVALID]);
          if (id !== undefined) expect(swarmIdFromUrl(id)).toBe(id);
          const sidecar = typedOutcome(() => digestSidecarUrl(text), [ErrorCode.CONFIG_INVALID]);
          if (sidecar !== undefined) expect(sidecar.endsWith(DIGEST_SIDECAR_SUFFIX) && !sidecar.includes('?')).toBe(true);
        }),
        fuzzParams(),
      );
    },
    fuzzTimeoutMs(1_000),
  );
});
