import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bytesEqual, concatBytes, utf8Decode, utf8Encode } from './bytes.js';
import {
  FRAME_HEADER_BYTES,
  FRAME_VERSION,
  MAX_CHUNK_BYTES,
  MAX_ERROR_CODE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_FRAME_BYTES,
  MAX_URL_BYTES,
  SHA256_BYTES,
} from './constants.js';
import { ErrorCode, RelaycastError } from './errors.js';
import { SIGNED_ASSIGNMENT_BYTES } from './assignments.js';
import { MAX_SIGNED_GRANT_BYTES } from './receipts.js';
import {
  BIND_CHALLENGE_BYTES,
  BIND_SIGNING_DOMAIN,
  FrameType,
  MAX_BIND_PAYLOAD_BYTES,
  bindSigningBytes,
  decodeFrame,
  decodeFrameAt,
  decodeFrames,
  encodeDataFrame,
  encodeFrame,
  type RelayFrame,
} from './relay-frames.js';
import { expectRelaycastError, withoutStackTraces } from './testing/errors.js';

const expectFrameError = (fn: () => unknown, code: string = 'RC_ERR_FRAME_'): RelaycastError => expectRelaycastError(fn, code);

const FUZZ_RUNS = 10_000;
const MAX_U32 = 0xffff_ffff;

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const requestId = fc.integer({ min: 0, max: MAX_U32 });
const safeUint = fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER, 2 ** 32, 2 ** 32 - 1));

/** Well-formed Unicode (no lone surrogates) of at most `maxBytes` UTF-8 bytes and at least one character. */
function utf8String(maxChars: number, maxBytes: number): fc.Arbitrary<string> {
  return fc.string({ unit: 'binary', minLength: 1, maxLength: maxChars }).filter((s) => utf8Encode(s).byteLength <= maxBytes);
}

/** URLs: mostly short Unicode, sometimes ASCII right at the MAX_URL_BYTES limit. */
function urlArb(maxChars: number, nearLimit: boolean): fc.Arbitrary<string> {
  if (!nearLimit) return utf8String(maxChars, MAX_URL_BYTES);
  return fc.oneof(
    { weight: 8, arbitrary: utf8String(maxChars, MAX_URL_BYTES) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary-ascii', minLength: MAX_URL_BYTES - 4, maxLength: MAX_URL_BYTES }) },
  );
}

const rangeArb = fc.oneof(
  safeUint.map((start) => ({ start })),
  fc
    .tuple(fc.maxSafeNat(), fc.maxSafeNat())
    .filter(([a, b]) => a !== b)
    .map(([a, b]) => ({ start: Math.min(a, b), end: Math.max(a, b) })),
  fc.nat({ max: 1_000_000 }).chain((start) => fc.integer({ min: start + 1, max: start + 10_000_000 }).map((end) => ({ start, end }))),
);

function requestArb(maxUrlChars: number, nearLimit: boolean): fc.Arbitrary<RelayFrame> {
  return fc.record({
    type: fc.constant(FrameType.REQUEST),
    requestId,
    url: urlArb(maxUrlChars, nearLimit),
    range: fc.option(rangeArb, { nil: undefined }),
    playlistUrl: fc.option(urlArb(maxUrlChars, nearLimit), { nil: undefined }),
  });
}

const responseArb: fc.Arbitrary<RelayFrame> = fc
  .record({
    requestId,
    offset: safeUint,
    totalBytes: fc.option(safeUint, { nil: undefined }),
    digest: fc.option(fc.uint8Array({ minLength: SHA256_BYTES, maxLength: SHA256_BYTES }), { nil: undefined }),
  })
  .map(({ requestId: id, offset, totalBytes, digest }) => ({
    type: FrameType.RESPONSE,
    requestId: id,
    // offset may not exceed totalBytes: order them when both are present.
    offset: totalBytes === undefined ? offset : Math.min(offset, totalBytes),
    totalBytes: totalBytes === undefined ? undefined : Math.max(offset, totalBytes),
    digest,
  }));

function dataArb(maxBytes: number): fc.Arbitrary<RelayFrame> {
  return fc.record({
    type: fc.constant(FrameType.DATA),
    requestId,
    chunk: fc.uint8Array({ minLength: 1, maxLength: maxBytes }),
  });
}

const endArb: fc.Arbitrary<RelayFrame> = fc.record({ type: fc.constant(FrameType.END), requestId, bytesSent: safeUint });
const absentArb: fc.Arbitrary<RelayFrame> = fc.record({ type: fc.constant(FrameType.ABSENT), requestId });
const cancelArb: fc.Arbitrary<RelayFrame> = fc.record({ type: fc.constant(FrameType.CANCEL), requestId });

const challengeArb: fc.Arbitrary<RelayFrame> = fc.record({
  type: fc.constant(FrameType.CHALLENGE),
  requestId: fc.constant(0 as const),
  challenge: fc.uint8Array({ minLength: BIND_CHALLENGE_BYTES, maxLength: BIND_CHALLENGE_BYTES }),
});

function bindArb(maxGrantBytes: number): fc.Arbitrary<RelayFrame> {
  return fc.record({
    type: fc.constant(FrameType.BIND),
    requestId: fc.constant(0 as const),
    signedGrant: fc.uint8Array({ minLength: 1, maxLength: maxGrantBytes }),
    signedAssignment: fc.option(fc.uint8Array({ minLength: SIGNED_ASSIGNMENT_BYTES, maxLength: SIGNED_ASSIGNMENT_BYTES }), { nil: undefined }),
    proof: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  });
}

const receiptArb: fc.Arbitrary<RelayFrame> = fc.record({
  type: fc.constant(FrameType.RECEIPT),
  requestId,
  signedReceipt: fc.uint8Array({ minLength: 1, maxLength: 1024 }),
});

const errorCodeArb = fc.oneof(fc.constantFrom(...Object.values(ErrorCode)), fc.stringMatching(/^[A-Z0-9_]{1,64}$/));

function errorArb(maxMessageChars: number): fc.Arbitrary<RelayFrame> {
  return fc.record({
    type: fc.constant(FrameType.ERROR),
    requestId,
    code: errorCodeArb,
    message: fc.string({ unit: 'binary', maxLength: maxMessageChars }).filter((s) => utf8Encode(s).byteLength <= MAX_ERROR_MESSAGE_BYTES),
  });
}

/** Every frame type with arbitrary valid fields. `small` keeps frames short for the fuzz properties. */
function frameArb(small = false): fc.Arbitrary<RelayFrame> {
  return fc.oneof(
    requestArb(small ? 16 : 300, !small),
    responseArb,
    dataArb(small ? 48 : 4096),
    endArb,
    absentArb,
    errorArb(small ? 24 : 400),
    cancelArb,
    challengeArb,
    bindArb(small ? 24 : MAX_SIGNED_GRANT_BYTES),
    receiptArb,
  );
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/** Frames with byte fields turned into hex, so comparisons of 64 KiB chunks stay cheap. */
function norm(frame: RelayFrame): Record<string, unknown> {
  const out: Record<string, unknown> = { ...frame };
  for (const [k, v] of Object.entries(out)) {
    if (v instanceof Uint8Array) out[k] = `hex:${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`;
    if (v === undefined) delete out[k];
  }
  return out;
}

function expectSameFrame(actual: RelayFrame, expected: RelayFrame): void {
  expect(norm(actual)).toStrictEqual(norm(expected));
}

function expectSameBytes(actual: Uint8Array, expected: Uint8Array): void {
  if (!bytesEqual(actual, expected)) expect(Buffer.from(actual).toString('hex')).toBe(Buffer.from(expected).toString('hex'));
}

/** Like expectFrameError without `expect`: cheap enough for loops of a million calls. */
function assertFrameError(fn: () => unknown, code?: ErrorCode): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof RelaycastError)) throw new Error(`expected a RelaycastError, got ${String(err)}`, { cause: err });
    if (code !== undefined ? err.code !== code : !err.code.startsWith('RC_ERR_FRAME_')) {
      throw new Error(`expected ${code ?? 'RC_ERR_FRAME_*'}, got ${err.code}: ${err.message}`, { cause: err });
    }
    return;
  }
  throw new Error(`expected ${code ?? 'RC_ERR_FRAME_*'}, but nothing was thrown`);
}

/**
 * The decoder contract: either frames come back that re-encode to valid bytes (which decode and
 * re-encode to the same bytes again), or a RelaycastError with an RC_ERR_FRAME_* code is thrown,
 * and never anything else (no RangeError, TypeError...).
 */
function checkDecodeOutcome(decode: () => RelayFrame[]): RelayFrame[] | undefined {
  let frames: RelayFrame[];
  try {
    frames = decode();
  } catch (err) {
    if (!(err instanceof RelaycastError) || !err.code.startsWith('RC_ERR_FRAME_')) {
      throw new Error(`decoder threw something other than an RC_ERR_FRAME_* error: ${String(err)}`, { cause: err });
    }
    return undefined;
  }
  for (const frame of frames) {
    const again = encodeFrame(frame);
    if (!bytesEqual(encodeFrame(decodeFrame(again)), again)) throw new Error('re-encoded frame does not round-trip');
  }
  return frames;
}

/** Builds a raw frame by hand: u32 length | version | type | u32 requestId | payload. */
function rawFrame(type: number, id: number, payload: Uint8Array | number[], version = FRAME_VERSION): Uint8Array {
  const body = payload instanceof Uint8Array ? payload : Uint8Array.from(payload);
  const out = new Uint8Array(FRAME_HEADER_BYTES + body.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, out.byteLength - 4);
  view.setUint8(4, version);
  view.setUint8(5, type);
  view.setUint32(6, id);
  out.set(body, FRAME_HEADER_BYTES);
  return out;
}

function u64(n: number | bigint): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return [...b];
}

function u16String(text: string | Uint8Array): number[] {
  const b = typeof text === 'string' ? utf8Encode(text) : text;
  return [b.byteLength >> 8, b.byteLength & 0xff, ...b];
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

describe('relay frames: round trip', () => {
  it('encodes and decodes every frame type with arbitrary valid fields', () => {
    fc.assert(
      fc.property(frameArb(), (frame) => {
        const bytes = encodeFrame(frame);
        expect(bytes.byteLength).toBeLessThanOrEqual(MAX_FRAME_BYTES);
        const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
        expect(view.getUint32(0)).toBe(bytes.byteLength - 4);
        expect(bytes[4]).toBe(FRAME_VERSION);
        expect(bytes[5]).toBe(frame.type);
        expect(view.getUint32(6)).toBe(frame.requestId);
        expectSameFrame(decodeFrame(bytes), frame);
        const at = decodeFrameAt(bytes);
        expectSameFrame(at.frame, frame);
        expect(at.next).toBe(bytes.byteLength);
      }),
      { numRuns: 500 },
    );
  });

  it('round-trips each request variant: with/without range, range end and playlist', () => {
    const base = { type: FrameType.REQUEST, requestId: 7, url: 'https://cdn.example/v/seg-1.ts' } as const;
    const variants: RelayFrame[] = [
      { ...base },
      { ...base, range: { start: 0 } },
      { ...base, range: { start: 100 } },
      { ...base, range: { start: 100, end: 200 } },
      { ...base, playlistUrl: 'https://cdn.example/v/index.m3u8' },
      { ...base, range: { start: 5, end: 6 }, playlistUrl: 'https://cdn.example/v/index.m3u8' },
      { ...base, range: { start: Number.MAX_SAFE_INTEGER - 1, end: Number.MAX_SAFE_INTEGER } },
    ];
    for (const frame of variants) {
      const decoded = decodeFrame(encodeFrame(frame));
      expect(decoded).toEqual(frame);
    }
    // Flags byte: bit0 range, bit1 range end, bit2 playlist.
    expect(encodeFrame(variants[0]!)[10]).toBe(0);
    expect(encodeFrame(variants[1]!)[10]).toBe(1);
    expect(encodeFrame(variants[3]!)[10]).toBe(3);
    expect(encodeFrame(variants[4]!)[10]).toBe(4);
    expect(encodeFrame(variants[5]!)[10]).toBe(7);
  });

  it('round-trips each response variant: with/without total and digest', () => {
    const digest = new Uint8Array(SHA256_BYTES).fill(0xab);
    const variants: RelayFrame[] = [
      { type: FrameType.RESPONSE, requestId: 1, offset: 0 },
      { type: FrameType.RESPONSE, requestId: 1, offset: 10, totalBytes: 10 },
      { type: FrameType.RESPONSE, requestId: 1, offset: 0, digest },
      { type: FrameType.RESPONSE, requestId: 1, offset: 3, totalBytes: 1_000_000, digest },
    ];
    for (const frame of variants) expect(decodeFrame(encodeFrame(frame))).toEqual(frame);
    expect(encodeFrame(variants[0]!).byteLength).toBe(FRAME_HEADER_BYTES + 1 + 8);
    expect(encodeFrame(variants[1]!).byteLength).toBe(FRAME_HEADER_BYTES + 1 + 8 + 8);
    expect(encodeFrame(variants[2]!).byteLength).toBe(FRAME_HEADER_BYTES + 1 + 8 + 32);
    expect(encodeFrame(variants[3]!).byteLength).toBe(FRAME_HEADER_BYTES + 1 + 8 + 8 + 32);
  });

  it('round-trips DATA frames of 1..MAX_CHUNK_BYTES bytes, and encodeDataFrame matches encodeFrame', () => {
    fc.assert(
      fc.property(
        requestId,
        fc.oneof(fc.integer({ min: 1, max: 512 }), fc.integer({ min: MAX_CHUNK_BYTES - 16, max: MAX_CHUNK_BYTES })),
        fc.integer({ min: 0, max: 255 }),
        (id, size, fill) => {
          const chunk = new Uint8Array(size).fill(fill);
          chunk[0] = (fill + 1) & 0xff;
          const bytes = encodeDataFrame(id, chunk);
          expectSameBytes(bytes, encodeFrame({ type: FrameType.DATA, requestId: id, chunk }));
          expect(bytes.byteLength).toBe(FRAME_HEADER_BYTES + size);
          expectSameFrame(decodeFrame(bytes), { type: FrameType.DATA, requestId: id, chunk });
        },
      ),
      { numRuns: 200 },
    );
    const full = encodeDataFrame(1, new Uint8Array(MAX_CHUNK_BYTES));
    expect(full.byteLength).toBe(MAX_FRAME_BYTES);
  });

  it('decoded DATA chunks are copies, independent of the input buffer', () => {
    const bytes = encodeDataFrame(3, Uint8Array.from([1, 2, 3]));
    const frame = decodeFrame(bytes);
    bytes[FRAME_HEADER_BYTES] = 99;
    expect(frame).toEqual({ type: FrameType.DATA, requestId: 3, chunk: Uint8Array.from([1, 2, 3]) });
  });

  it('round-trips strings that start with U+FEFF (a BOM is data, not stripped)', () => {
    const frames: RelayFrame[] = [
      { type: FrameType.REQUEST, requestId: 1, url: '\uFEFFhttps://a.example/x.ts', playlistUrl: '\uFEFFp' },
      { type: FrameType.ERROR, requestId: 1, code: 'X', message: '\uFEFFhello' },
    ];
    for (const frame of frames) {
      const bytes = encodeFrame(frame);
      expect(decodeFrame(bytes)).toEqual(frame);
      expect(encodeFrame(decodeFrame(bytes))).toEqual(bytes);
    }
    // A URL made of a BOM alone is one character, not empty.
    const onlyBom: RelayFrame = { type: FrameType.REQUEST, requestId: 1, url: '\uFEFF' };
    expect(decodeFrame(encodeFrame(onlyBom))).toEqual(onlyBom);
  });

  it('decodes frames inside a larger buffer (non-zero byteOffset)', () => {
    fc.assert(
      fc.property(frameArb(true), fc.uint8Array({ maxLength: 16 }), fc.uint8Array({ maxLength: 16 }), (frame, before, after) => {
        const encoded = encodeFrame(frame);
        const big = concatBytes([before, encoded, after]);
        const view = big.subarray(before.byteLength, before.byteLength + encoded.byteLength);
        expectSameFrame(decodeFrame(view), frame);
        const at = decodeFrameAt(big, before.byteLength);
        expectSameFrame(at.frame, frame);
        expect(at.next).toBe(before.byteLength + encoded.byteLength);
      }),
      { numRuns: 500 },
    );
  });

  it('decodeFrames decodes concatenations of frames in order', () => {
    fc.assert(
      fc.property(fc.array(frameArb(true), { minLength: 1, maxLength: 64 }), (frames) => {
        const bytes = concatBytes(frames.map((f) => encodeFrame(f)));
        expect(decodeFrames(bytes).map(norm)).toStrictEqual(frames.map(norm));
        // decodeFrameAt walks the same frames.
        let offset = 0;
        for (const frame of frames) {
          const r = decodeFrameAt(bytes, offset);
          expectSameFrame(r.frame, frame);
          offset = r.next;
        }
        expect(offset).toBe(bytes.byteLength);
      }),
      { numRuns: 500 },
    );
  });

  it('decodeFrames caps the number of frames per message', () => {
    const one = encodeFrame({ type: FrameType.CANCEL, requestId: 1 });
    expect(decodeFrames(concatBytes(new Array<Uint8Array>(64).fill(one)))).toHaveLength(64);
    expectFrameError(() => decodeFrames(concatBytes(new Array<Uint8Array>(65).fill(one))), ErrorCode.FRAME_TOO_LARGE);
    expect(decodeFrames(concatBytes([one, one, one]), 3)).toHaveLength(3);
    expectFrameError(() => decodeFrames(concatBytes([one, one, one]), 2), ErrorCode.FRAME_TOO_LARGE);
  });

  it('decodeFrames refuses an empty message and a trailing partial frame', () => {
    expectFrameError(() => decodeFrames(new Uint8Array(0)), ErrorCode.FRAME_TRUNCATED);
    const one = encodeFrame({ type: FrameType.END, requestId: 1, bytesSent: 5 });
    expectFrameError(() => decodeFrames(concatBytes([one, one.subarray(0, 7)])), ErrorCode.FRAME_TRUNCATED);
    expectFrameError(() => decodeFrames(concatBytes([one, Uint8Array.from([0])])), ErrorCode.FRAME_TRUNCATED);
  });
});

// ---------------------------------------------------------------------------------------------
// Encoder validation
// ---------------------------------------------------------------------------------------------

describe('relay frames: encoder rejects invalid values', () => {
  const req = (fields: Record<string, unknown>): RelayFrame => ({ type: FrameType.REQUEST, requestId: 1, url: 'https://a.example/s.ts', ...fields });

  it('rejects empty and oversized URLs', () => {
    expectFrameError(() => encodeFrame(req({ url: '' })), ErrorCode.FRAME_FIELD);
    expectFrameError(() => encodeFrame(req({ url: 'a'.repeat(MAX_URL_BYTES + 1) })), ErrorCode.FRAME_FIELD);
    // Limit is in UTF-8 bytes: 683 × 3 bytes = 2049.
    expectFrameError(() => encodeFrame(req({ url: '€'.repeat(683) })), ErrorCode.FRAME_FIELD);
    expect(() => encodeFrame(req({ url: 'a'.repeat(MAX_URL_BYTES) }))).not.toThrow();
    expect(() => encodeFrame(req({ url: '€'.repeat(682) }))).not.toThrow();
    expectFrameError(() => encodeFrame(req({ playlistUrl: '' })), ErrorCode.FRAME_FIELD);
    expectFrameError(() => encodeFrame(req({ playlistUrl: 'p'.repeat(MAX_URL_BYTES + 1) })), ErrorCode.FRAME_FIELD);
  });

  it('rejects ranges whose end is not after their start', () => {
    expectFrameError(() => encodeFrame(req({ range: { start: 10, end: 10 } })), ErrorCode.FRAME_FIELD);
    expectFrameError(() => encodeFrame(req({ range: { start: 10, end: 9 } })), ErrorCode.FRAME_FIELD);
    expectFrameError(() => encodeFrame(req({ range: { start: 0, end: 0 } })), ErrorCode.FRAME_FIELD);
  });

  const badInts = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, Number.MAX_SAFE_INTEGER + 2, -0.5];

  it('rejects negative, fractional and unsafe integers in every numeric field', () => {
    for (const bad of badInts) {
      expectFrameError(() => encodeFrame(req({ range: { start: bad } })), ErrorCode.FRAME_FIELD);
      expectFrameError(() => encodeFrame(req({ range: { start: 0, end: bad } })), ErrorCode.FRAME_FIELD);
      expectFrameError(() => encodeFrame({ type: FrameType.RESPONSE, requestId: 1, offset: bad }), ErrorCode.FRAME_FIELD);
      expectFrameError(() => encodeFrame({ type: FrameType.RESPONSE, requestId: 1, offset: 0, totalBytes: bad }), ErrorCode.FRAME_FIELD);
      expectFrameError(() => encodeFrame({ type: FrameType.END, requestId: 1, bytesSent: bad }), ErrorCode.FRAME_FIELD);
    }
  });

  it('rejects request ids outside u32 for every frame type', () => {
    for (const bad of [-1, 1.5, 2 ** 32, Number.NaN, Number.MAX_SAFE_INTEGER]) {
      const frames: RelayFrame[] = [
        req({ requestId: bad }),
        { type: FrameType.RESPONSE, requestId: bad, offset: 0 },
        { type: FrameType.DATA, requestId: bad, chunk: new Uint8Array(1) },
        { type: FrameType.END, requestId: bad, bytesSent: 0 },
        { type: FrameType.ABSENT, requestId: bad },
        { type: FrameType.ERROR, requestId: bad, code: 'X', message: '' },
        { type: FrameType.CANCEL, requestId: bad },
      ];
      for (const f of frames) expectFrameError(() => encodeFrame(f), ErrorCode.FRAME_FIELD);
    }
    expect(() => encodeFrame({ type: FrameType.CANCEL, requestId: MAX_U32 })).not.toThrow();
    expect(() => encodeFrame({ type: FrameType.CANCEL, requestId: 0 })).not.toThrow();
  });

  it('rejects empty and oversized DATA chunks (65 KiB does not fit one frame)', () => {
    expectFrameError(() => encodeDataFrame(1, new Uint8Array(0)), ErrorCode.FRAME_FIELD);
    expectFrameError(() => encodeDataFrame(1, new Uint8Array(MAX_CHUNK_BYTES + 1)), ErrorCode.FRAME_FIELD);
    expectFrameError(() => encodeDataFrame(1, new Uint8Array(64 * 1024)), ErrorCode.FRAME_FIELD);
    expectFrameError(() => encodeDataFrame(1, new Uint8Array(65 * 1024)), ErrorCode.FRAME_FIELD);
  });

  it('rejects a RESPONSE whose offset is beyond totalBytes or whose digest is not 32 bytes', () => {
    expectFrameError(() => encodeFrame({ type: FrameType.RESPONSE, requestId: 1, offset: 11, totalBytes: 10 }), ErrorCode.FRAME_FIELD);
    for (const n of [0, 31, 33, 64]) {
      expectFrameError(() => encodeFrame({ type: FrameType.RESPONSE, requestId: 1, offset: 0, digest: new Uint8Array(n) }), ErrorCode.FRAME_FIELD);
    }
  });

  it('rejects bad error codes', () => {
    for (const code of ['', 'rc_err_lower', 'RC ERR', 'RC-ERR', 'É', 'A'.repeat(MAX_ERROR_CODE_BYTES + 1), 'RC_ERR\n']) {
      expectFrameError(() => encodeFrame({ type: FrameType.ERROR, requestId: 1, code, message: 'm' }), ErrorCode.FRAME_FIELD);
    }
    expect(() => encodeFrame({ type: FrameType.ERROR, requestId: 1, code: 'A'.repeat(MAX_ERROR_CODE_BYTES), message: '' })).not.toThrow();
  });

  it('rejects an unknown frame type', () => {
    for (const type of [0, 8, 12, 255, 'REQUEST']) {
      expectFrameError(() => encodeFrame({ type, requestId: 1 } as unknown as RelayFrame), ErrorCode.FRAME_TYPE);
    }
  });

  it('truncates long error messages at a UTF-8 character boundary instead of refusing them', () => {
    const cases = [
      'x'.repeat(5000),
      'é'.repeat(600), // 1200 bytes
      '€'.repeat(400), // 1200 bytes
      'a' + '😀'.repeat(600), // a surrogate pair straddles the cut
      '😀'.repeat(300),
    ];
    for (const message of cases) {
      const bytes = encodeFrame({ type: FrameType.ERROR, requestId: 1, code: 'X', message });
      const frame = decodeFrame(bytes);
      if (frame.type !== FrameType.ERROR) throw new Error('expected ERROR');
      expect(utf8Encode(frame.message).byteLength).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
      expect(utf8Encode(frame.message).byteLength).toBeGreaterThan(MAX_ERROR_MESSAGE_BYTES - 4);
      expect(message.startsWith(frame.message)).toBe(true);
      expect(frame.message).not.toContain('\uFFFD');
    }
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 250, maxLength: 1200 }), (message) => {
        const frame = decodeFrame(encodeFrame({ type: FrameType.ERROR, requestId: 2, code: 'E', message }));
        if (frame.type !== FrameType.ERROR) throw new Error('expected ERROR');
        expect(message.startsWith(frame.message)).toBe(true);
        expect(utf8Encode(frame.message).byteLength).toBeLessThanOrEqual(MAX_ERROR_MESSAGE_BYTES);
        if (utf8Encode(message).byteLength <= MAX_ERROR_MESSAGE_BYTES) expect(frame.message).toBe(message);
      }),
      { numRuns: 300 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Decoder validation (hand-built frames)
// ---------------------------------------------------------------------------------------------

describe('relay frames: decoder rejects malformed frames', () => {
  const validEnd = rawFrame(FrameType.END, 1, u64(5));

  it('rejects a wrong version', () => {
    for (const v of [0, 2, 255]) {
      const e = expectFrameError(() => decodeFrame(rawFrame(FrameType.END, 1, u64(5), v)), ErrorCode.FRAME_VERSION);
      expect(e.details).toEqual({ version: v });
    }
    expect(decodeFrame(validEnd)).toEqual({ type: FrameType.END, requestId: 1, bytesSent: 5 });
  });

  it('rejects unknown frame types', () => {
    // 8 is the retired GRANT frame (a grant without proof of the session key).
    for (const t of [0, 8, 12, 127, 255]) {
      const e = expectFrameError(() => decodeFrame(rawFrame(t, 1, [])), ErrorCode.FRAME_TYPE);
      expect(e.details).toEqual({ type: t });
    }
  });

  it('rejects a length prefix larger than the buffer', () => {
    const bytes = validEnd.slice();
    new DataView(bytes.buffer).setUint32(0, bytes.byteLength - 4 + 1);
    expectFrameError(() => decodeFrame(bytes), ErrorCode.FRAME_TRUNCATED);
    new DataView(bytes.buffer).setUint32(0, MAX_FRAME_BYTES - 4);
    expectFrameError(() => decodeFrame(bytes), ErrorCode.FRAME_TRUNCATED);
  });

  it('rejects a length prefix larger than MAX_FRAME_BYTES, even when the bytes are there', () => {
    for (const len of [MAX_FRAME_BYTES - 3, MAX_FRAME_BYTES, 0x7fff_ffff, 0xffff_ffff]) {
      const bytes = validEnd.slice();
      new DataView(bytes.buffer).setUint32(0, len);
      expectFrameError(() => decodeFrame(bytes), ErrorCode.FRAME_TOO_LARGE);
    }
    // A DATA frame one byte over the maximum, with every byte present.
    const over = new Uint8Array(MAX_FRAME_BYTES + 1);
    const view = new DataView(over.buffer);
    view.setUint32(0, MAX_FRAME_BYTES + 1 - 4);
    over[4] = FRAME_VERSION;
    over[5] = FrameType.DATA;
    expectFrameError(() => decodeFrame(over), ErrorCode.FRAME_TOO_LARGE);
  });

  it('rejects a length prefix shorter than the header, and a buffer shorter than the prefix', () => {
    for (const len of [0, 1, 5]) {
      const bytes = validEnd.slice();
      new DataView(bytes.buffer).setUint32(0, len);
      expectFrameError(() => decodeFrame(bytes), ErrorCode.FRAME_TRUNCATED);
    }
    for (let n = 0; n < 4; n++) expectFrameError(() => decodeFrame(validEnd.subarray(0, n)), ErrorCode.FRAME_TRUNCATED);
  });

  it('rejects trailing bytes after the frame and inside the frame body', () => {
    expectFrameError(() => decodeFrame(concatBytes([validEnd, Uint8Array.from([0])])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(concatBytes([validEnd, validEnd])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.END, 1, [...u64(5), 0])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.ABSENT, 1, [0])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.CANCEL, 1, [1, 2])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.RESPONSE, 1, [0, ...u64(0), 9])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.ERROR, 1, [...u16String('X'), ...u16String(''), 0])), ErrorCode.FRAME_FIELD);
  });

  it('rejects fields that end past the frame body', () => {
    expectFrameError(() => decodeFrame(rawFrame(FrameType.END, 1, [0, 0, 0])), ErrorCode.FRAME_TRUNCATED);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [])), ErrorCode.FRAME_TRUNCATED);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [0, 0, 5, 0x61])), ErrorCode.FRAME_TRUNCATED);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [1, ...u16String('u'), 0, 0])), ErrorCode.FRAME_TRUNCATED);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.RESPONSE, 1, [2, ...u64(0), 1, 2, 3])), ErrorCode.FRAME_TRUNCATED);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.ERROR, 1, u16String('X'))), ErrorCode.FRAME_TRUNCATED);
  });

  it('validates REQUEST fields', () => {
    const url = u16String('https://a.example/s.ts');
    expect(decodeFrame(rawFrame(FrameType.REQUEST, 1, [0, ...url]))).toMatchObject({ url: 'https://a.example/s.ts' });
    // Unknown flag bits, and a range end without a range start.
    for (const flags of [8, 16, 128, 0xff]) expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [flags, ...url])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [2, ...url, ...u64(1)])), ErrorCode.FRAME_FIELD);
    // Empty URL / playlist URL.
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [0, 0, 0])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [4, ...url, 0, 0])), ErrorCode.FRAME_FIELD);
    // URL longer than MAX_URL_BYTES.
    const long = u16String('a'.repeat(MAX_URL_BYTES + 1));
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [0, ...long])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [4, ...url, ...long])), ErrorCode.FRAME_FIELD);
    // Invalid UTF-8 (lone continuation byte, overlong, encoded surrogate).
    for (const bad of [[0x80], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xff]]) {
      expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [0, ...u16String(Uint8Array.from(bad))])), ErrorCode.FRAME_FIELD);
    }
    // Range end equal to / below the start.
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [3, ...url, ...u64(5), ...u64(5)])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [3, ...url, ...u64(5), ...u64(4)])), ErrorCode.FRAME_FIELD);
    // u64 beyond the safe-integer range.
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [1, ...url, ...u64(2n ** 53n)])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.REQUEST, 1, [3, ...url, ...u64(0), ...u64(2n ** 64n - 1n)])), ErrorCode.FRAME_FIELD);
    expect(decodeFrame(rawFrame(FrameType.REQUEST, 1, [1, ...url, ...u64(2n ** 53n - 1n)]))).toMatchObject({
      range: { start: Number.MAX_SAFE_INTEGER },
    });
  });

  it('validates RESPONSE, END and DATA fields', () => {
    expectFrameError(() => decodeFrame(rawFrame(FrameType.RESPONSE, 1, [4, ...u64(0)])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.RESPONSE, 1, [1, ...u64(11), ...u64(10)])), ErrorCode.FRAME_FIELD);
    expect(decodeFrame(rawFrame(FrameType.RESPONSE, 1, [1, ...u64(10), ...u64(10)]))).toMatchObject({ offset: 10, totalBytes: 10 });
    expectFrameError(() => decodeFrame(rawFrame(FrameType.RESPONSE, 1, [0, ...u64(2n ** 60n)])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.RESPONSE, 1, [1, ...u64(0), ...u64(2n ** 53n)])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.END, 1, u64(2n ** 63n))), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.DATA, 1, [])), ErrorCode.FRAME_FIELD);
  });

  it('validates ERROR fields', () => {
    expectFrameError(() => decodeFrame(rawFrame(FrameType.ERROR, 0, [...u16String(''), ...u16String('m')])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(FrameType.ERROR, 0, [...u16String('lower'), ...u16String('m')])), ErrorCode.FRAME_FIELD);
    expectFrameError(
      () => decodeFrame(rawFrame(FrameType.ERROR, 0, [...u16String('A'.repeat(MAX_ERROR_CODE_BYTES + 1)), ...u16String('m')])),
      ErrorCode.FRAME_FIELD,
    );
    expectFrameError(
      () => decodeFrame(rawFrame(FrameType.ERROR, 0, [...u16String('A'), ...u16String('m'.repeat(MAX_ERROR_MESSAGE_BYTES + 1))])),
      ErrorCode.FRAME_FIELD,
    );
    expectFrameError(() => decodeFrame(rawFrame(FrameType.ERROR, 0, [...u16String('A'), ...u16String(Uint8Array.from([0xc3]))])), ErrorCode.FRAME_FIELD);
    expect(decodeFrame(rawFrame(FrameType.ERROR, 0, [...u16String('RC_ERR_X'), ...u16String('')]))).toEqual({
      type: FrameType.ERROR,
      requestId: 0,
      code: 'RC_ERR_X',
      message: '',
    });
  });

  it('rejects offsets outside the buffer in decodeFrameAt with a RelaycastError', () => {
    for (const offset of [validEnd.byteLength, validEnd.byteLength + 10, validEnd.byteLength - 1]) {
      expectFrameError(() => decodeFrameAt(validEnd, offset), ErrorCode.FRAME_TRUNCATED);
    }
    for (const offset of [-1, -100, 0.5, Number.NaN]) expectFrameError(() => decodeFrameAt(validEnd, offset));
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing: the decoder either returns re-encodable frames or throws RC_ERR_FRAME_*
// ---------------------------------------------------------------------------------------------

const KNOWN_TYPES = new Set<number>(Object.values(FrameType));

describe('relay frames: CHALLENGE and BIND', () => {
  const challenge = Uint8Array.from({ length: 32 }, (_, i) => i);
  const grant = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
  const assignment = new Uint8Array(SIGNED_ASSIGNMENT_BYTES).fill(0xaa);
  const proof = new Uint8Array(64).fill(0x55);

  it('encode to the documented layouts', () => {
    expectSameBytes(encodeFrame({ type: FrameType.CHALLENGE, requestId: 0, challenge }), rawFrame(10, 0, challenge));
    expectSameBytes(
      encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: grant, signedAssignment: assignment, proof }),
      rawFrame(11, 0, [...u16String(grant), ...u16String(assignment), ...proof]),
    );
    expectSameBytes(encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: grant, proof }), rawFrame(11, 0, [...u16String(grant), 0, 0, ...proof]));
    expect(decodeFrame(rawFrame(11, 0, [...u16String(grant), 0, 0, ...proof]))).toEqual({
      type: FrameType.BIND,
      requestId: 0,
      signedGrant: grant,
      signedAssignment: undefined,
      proof,
    });
    // The largest BIND fits one frame.
    const big = encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: new Uint8Array(MAX_SIGNED_GRANT_BYTES), signedAssignment: assignment, proof });
    expect(big.byteLength).toBe(FRAME_HEADER_BYTES + MAX_BIND_PAYLOAD_BYTES);
  });

  it('bindSigningBytes is the domain, the challenge, then the relay key', () => {
    const relay = new Uint8Array(32).fill(9);
    expectSameBytes(bindSigningBytes(challenge, relay), concatBytes([utf8Encode(BIND_SIGNING_DOMAIN), challenge, relay]));
    expect(BIND_SIGNING_DOMAIN).toBe('relaycast-bind-v1\0');
    expectFrameError(() => bindSigningBytes(challenge.subarray(1), relay), ErrorCode.FRAME_FIELD);
    expectFrameError(() => bindSigningBytes(challenge, relay.subarray(1)), ErrorCode.FRAME_FIELD);
  });

  it('the encoder refuses fields that would not decode', () => {
    const bad: unknown[] = [
      { type: FrameType.CHALLENGE, requestId: 1, challenge },
      { type: FrameType.CHALLENGE, requestId: 0, challenge: challenge.subarray(1) },
      { type: FrameType.CHALLENGE, requestId: 0, challenge: new Uint8Array(33) },
      { type: FrameType.BIND, requestId: 3, signedGrant: grant, proof },
      { type: FrameType.BIND, requestId: 0, signedGrant: new Uint8Array(0), proof },
      { type: FrameType.BIND, requestId: 0, signedGrant: new Uint8Array(MAX_SIGNED_GRANT_BYTES + 1), proof },
      { type: FrameType.BIND, requestId: 0, signedGrant: grant, signedAssignment: new Uint8Array(0), proof },
      { type: FrameType.BIND, requestId: 0, signedGrant: grant, signedAssignment: new Uint8Array(168), proof },
      { type: FrameType.BIND, requestId: 0, signedGrant: grant, proof: new Uint8Array(63) },
    ];
    for (const f of bad) expectFrameError(() => encodeFrame(f as RelayFrame), ErrorCode.FRAME_FIELD);
  });

  it('the decoder is strict: requestId 0, exact sizes, no trailing bytes', () => {
    expectFrameError(() => decodeFrame(rawFrame(10, 1, challenge)), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(10, 0, challenge.subarray(1))), ErrorCode.FRAME_TRUNCATED);
    expectFrameError(() => decodeFrame(rawFrame(10, 0, [...challenge, 0])), ErrorCode.FRAME_FIELD);
    const body = [...u16String(grant), ...u16String(assignment), ...proof];
    expect(decodeFrame(rawFrame(11, 0, body))).toMatchObject({ type: FrameType.BIND });
    expectFrameError(() => decodeFrame(rawFrame(11, 7, body)), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(11, 0, [...body, 0])), ErrorCode.FRAME_FIELD);
    expectFrameError(() => decodeFrame(rawFrame(11, 0, body.slice(0, -1))), ErrorCode.FRAME_TRUNCATED);
    expectFrameError(() => decodeFrame(rawFrame(11, 0, [0, 0, 0, 0, ...proof])), ErrorCode.FRAME_FIELD); // empty grant
    const tooBig = MAX_SIGNED_GRANT_BYTES + 1;
    expectFrameError(() => decodeFrame(rawFrame(11, 0, [tooBig >> 8, tooBig & 0xff, ...new Uint8Array(tooBig), 0, 0, ...proof])), ErrorCode.FRAME_FIELD);
    for (const len of [1, 168, 170, 0xffff]) {
      expectFrameError(
        () => decodeFrame(rawFrame(11, 0, [...u16String(grant), len >> 8, len & 0xff, ...new Uint8Array(Math.min(len, 200)), ...proof])),
        ErrorCode.FRAME_FIELD,
      );
    }
  });
});

describe('relay frames: decoder fuzzing', () => {
  withoutStackTraces();

  it('random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 96 }), (bytes) => {
        checkDecodeOutcome(() => [decodeFrame(bytes)]);
        checkDecodeOutcome(() => decodeFrames(bytes));
      }),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('random bodies behind a plausible header (valid length, version, type)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 12 }), fc.oneof(requestId, fc.constant(0)), fc.uint8Array({ maxLength: 120 }), (type, id, payload) => {
        const frames = checkDecodeOutcome(() => [decodeFrame(rawFrame(type, id, payload))]);
        // A frame that decodes is canonical: it re-encodes to the very same bytes.
        if (frames !== undefined) expectSameBytes(encodeFrame(frames[0]!), rawFrame(type, id, payload));
      }),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('every truncation of a valid frame', () => {
    fc.assert(
      fc.property(frameArb(true), fc.nat(), (frame, cut) => {
        const bytes = encodeFrame(frame);
        for (let n = 0; n < bytes.byteLength; n++) {
          const cut = bytes.slice(0, n);
          assertFrameError(() => decodeFrame(cut), ErrorCode.FRAME_TRUNCATED);
        }
        // decodeFrames reads the same way; one cut per run keeps the property fast.
        assertFrameError(() => decodeFrames(bytes.subarray(0, cut % bytes.byteLength)), ErrorCode.FRAME_TRUNCATED);
        // Truncating the body while fixing up the length prefix: defect, never a crash.
        for (let n = FRAME_HEADER_BYTES; n < bytes.byteLength; n++) {
          const cut = bytes.slice(0, n);
          new DataView(cut.buffer).setUint32(0, n - 4);
          checkDecodeOutcome(() => [decodeFrame(cut)]);
        }
      }),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('valid frames with bytes mutated', () => {
    fc.assert(
      fc.property(frameArb(true), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }), (frame, mutations) => {
        const bytes = encodeFrame(frame).slice();
        for (const [at, value] of mutations) bytes[at % bytes.byteLength] = value;
        const frames = checkDecodeOutcome(() => [decodeFrame(bytes)]);
        if (frames !== undefined) expectSameBytes(encodeFrame(frames[0]!), bytes);
        checkDecodeOutcome(() => decodeFrames(bytes));
      }),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('single-byte mutations at every position of a valid frame', () => {
    fc.assert(
      fc.property(frameArb(true), fc.integer({ min: 0, max: 255 }), (frame, value) => {
        const original = encodeFrame(frame);
        for (let i = 0; i < original.byteLength; i++) {
          const bytes = original.slice();
          bytes[i] = value;
          const frames = checkDecodeOutcome(() => [decodeFrame(bytes)]);
          if (frames !== undefined && !bytesEqual(encodeFrame(frames[0]!), bytes)) throw new Error('decoded frame is not canonical');
        }
      }),
      { numRuns: 500 },
    );
  });

  it('concatenations with garbage, inserted or deleted bytes', () => {
    fc.assert(
      fc.property(
        fc.array(frameArb(true), { minLength: 1, maxLength: 4 }),
        fc.nat(),
        fc.uint8Array({ minLength: 1, maxLength: 8 }),
        fc.boolean(),
        (frames, at, garbage, insert) => {
          const bytes = concatBytes(frames.map((f) => encodeFrame(f)));
          const pos = at % bytes.byteLength;
          const mangled = insert
            ? concatBytes([bytes.subarray(0, pos), garbage, bytes.subarray(pos)])
            : concatBytes([bytes.subarray(0, pos), bytes.subarray(Math.min(bytes.byteLength, pos + garbage.byteLength))]);
          checkDecodeOutcome(() => decodeFrames(mangled));
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('wrong versions, unknown types and bad length prefixes on valid frames', () => {
    fc.assert(
      fc.property(
        frameArb(true),
        fc.integer({ min: 0, max: 255 }),
        fc.integer({ min: 0, max: 255 }),
        fc.nat({ max: MAX_U32 }),
        (frame, version, type, length) => {
          const bytes = encodeFrame(frame);
          const v = bytes.slice();
          v[4] = version;
          if (version !== FRAME_VERSION) assertFrameError(() => decodeFrame(v), ErrorCode.FRAME_VERSION);
          const t = bytes.slice();
          t[5] = type;
          if (!KNOWN_TYPES.has(type)) assertFrameError(() => decodeFrame(t), ErrorCode.FRAME_TYPE);
          else checkDecodeOutcome(() => [decodeFrame(t)]);
          const l = bytes.slice();
          new DataView(l.buffer).setUint32(0, length);
          if (length + 4 > MAX_FRAME_BYTES) assertFrameError(() => decodeFrame(l), ErrorCode.FRAME_TOO_LARGE);
          else if (length + 4 > bytes.byteLength) assertFrameError(() => decodeFrame(l), ErrorCode.FRAME_TRUNCATED);
          else checkDecodeOutcome(() => [decodeFrame(l)]);
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
  });
});

// Sanity check on the helper above: utf8Decode is what the decoder uses for strings.
describe('relay frames: string fields', () => {
  it('carry arbitrary well-formed Unicode byte-for-byte', () => {
    fc.assert(
      fc.property(utf8String(64, MAX_URL_BYTES), (url) => {
        const bytes = encodeFrame({ type: FrameType.REQUEST, requestId: 1, url });
        expect(utf8Decode(bytes.subarray(FRAME_HEADER_BYTES + 3))).toBe(url);
        expect(decodeFrame(bytes)).toMatchObject({ url });
      }),
      { numRuns: 500 },
    );
  });
});
