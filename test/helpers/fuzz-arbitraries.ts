/**
 * Input generators shared by the fuzz suites: well-formed wire values to start from, and the
 * damage done to them (mutation, truncation, splicing) that real attackers and broken peers send.
 */
import {
  ErrorCode,
  FRAME_VERSION,
  FrameType,
  GRANT_NONCE_BYTES,
  GRANT_USER_BYTES,
  GRANT_VERSION,
  MAX_GRANT_SCOPE_BYTES,
  MAX_URL_BYTES,
  RECEIPT_VERSION,
  SIGNED_ASSIGNMENT_BYTES,
  SHA256_BYTES,
  concatBytes,
  encodeBase58,
  encodeSignedGrant,
  encodeSignedReceipt,
  toBase64,
  type RelayFrame,
} from '@relaycast/protocol';
import fc from 'fast-check';

const MAX_U32 = 0xffff_ffff;

export const requestIdArb = fc.oneof(fc.integer({ min: 0, max: MAX_U32 }), fc.constantFrom(0, 1, MAX_U32));
const safeUintArb = fc.oneof(fc.nat(), fc.maxSafeNat(), fc.constantFrom(0, 1, Number.MAX_SAFE_INTEGER));

/** Strings with every kind of code unit a peer can put on the wire, lone surrogates included. */
export function anyString(maxLength: number, minLength = 0): fc.Arbitrary<string> {
  return fc.oneof(
    fc.string({ minLength, maxLength }),
    fc.string({ unit: 'binary', minLength, maxLength }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), minLength, maxLength }),
  );
}

/**
 * URLs an attacker would try against a relay's allowlist: under `allowedPrefix`, or beside it, with
 * dot segments, encodings, userinfo, other hosts and schemes mixed in.
 */
export function hostileUrlArb(allowedPrefix: string): fc.Arbitrary<string> {
  const u = new URL(allowedPrefix);
  const piece = fc.oneof(
    fc.stringMatching(/^[a-z0-9._-]{1,12}$/),
    fc.constantFrom('..', '.', '%2e%2e', '%2E.', '.%2e', '%2f', '%5c', '%00', '%252e%252e', '\\', '..\\', ';', '%', '%zz', '@', '#', '?x=1', '', 'seg000.ts'),
  );
  const path = fc.array(piece, { maxLength: 6 }).map((parts) => parts.join('/'));
  const host = fc.constantFrom(
    u.host,
    u.hostname,
    `${u.hostname}:1`,
    'localhost',
    `localhost:${u.port}`,
    '[::1]',
    `[::1]:${u.port}`,
    `[::ffff:127.0.0.1]:${u.port}`,
    `[::ffff:7f00:1]:${u.port}`,
    `0x7f.1:${u.port}`,
    `2130706433:${u.port}`,
    `0177.0.0.1:${u.port}`,
    `127.1:${u.port}`,
    `0.0.0.0:${u.port}`,
    `169.254.169.254`,
    `10.0.0.1:${u.port}`,
    `user:pw@${u.host}`,
    `${u.host}@evil.example`,
    `evil.example#@${u.host}`,
    `${u.host}.evil.example`,
    `${u.hostname}%2e:${u.port}`,
  );
  const scheme = fc.constantFrom('http', 'https', 'HTTP', 'ftp', 'file', 'gopher', 'ws');
  return fc.oneof(
    path.map((p) => `${allowedPrefix}${p}`),
    fc.tuple(scheme, host, path).map(([s, h, p]) => `${s}://${h}${u.pathname}${p}`),
    fc.tuple(scheme, host, path).map(([s, h, p]) => `${s}://${h}/${p}`),
    anyString(64, 1),
  );
}

function boundedUrlArb(urlArb: fc.Arbitrary<string>): fc.Arbitrary<string> {
  return urlArb.filter((s) => s.length > 0 && Buffer.byteLength(s) <= MAX_URL_BYTES);
}

/** REQUEST frames (what viewers send), with URLs drawn from `urlArb`. */
export function requestFrameArb(urlArb: fc.Arbitrary<string>): fc.Arbitrary<RelayFrame> {
  const range = fc.oneof(
    fc.constant(undefined),
    safeUintArb.map((start) => ({ start })),
    fc.tuple(fc.nat({ max: 1 << 20 }), fc.integer({ min: 1, max: 1 << 20 })).map(([start, len]) => ({ start, end: start + len })),
  );
  return fc.record({
    type: fc.constant(FrameType.REQUEST),
    requestId: requestIdArb,
    url: boundedUrlArb(urlArb),
    range,
    playlistUrl: fc.option(boundedUrlArb(urlArb), { nil: undefined }),
  });
}

const key32 = fc.uint8Array({ minLength: 32, maxLength: 32 });
const u64Arb = fc.oneof(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.constantFrom(0n, 1n, (1n << 64n) - 1n));

/** Signed grants as the settlement service encodes them (signatures are random: decoding does not check them). */
export const signedGrantBytesArb: fc.Arbitrary<Uint8Array> = fc
  .record({
    sessionKey: key32,
    payer: key32,
    mint: key32,
    pricePerGiB: u64Arb,
    budget: u64Arb,
    times: fc.tuple(fc.maxSafeNat(), fc.maxSafeNat()).map(([a, b]) => [Math.min(a, b), Math.max(a, b)] as const),
    maxBytesPerSec: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
    user: fc.uint8Array({ minLength: GRANT_USER_BYTES, maxLength: GRANT_USER_BYTES }),
    scope: fc.string({ minLength: 1, maxLength: 120 }).filter((t) => Buffer.byteLength(t) <= MAX_GRANT_SCOPE_BYTES),
    nonce: fc.uint8Array({ minLength: GRANT_NONCE_BYTES, maxLength: GRANT_NONCE_BYTES }),
    signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  })
  .map(({ signature, times: [issuedAtMs, expiresAtMs], ...g }) =>
    encodeSignedGrant({ grant: { version: GRANT_VERSION, issuedAtMs, expiresAtMs, ...g }, signature }),
  );

/** Signed receipts as the SDK encodes them. */
export const signedReceiptBytesArb: fc.Arbitrary<Uint8Array> = fc
  .record({
    grantNonce: fc.uint8Array({ minLength: GRANT_NONCE_BYTES, maxLength: GRANT_NONCE_BYTES }),
    sessionKey: key32,
    relay: key32,
    sequence: fc.maxSafeNat(),
    cumulativeBytes: fc.maxSafeNat(),
    cumulativeAmount: u64Arb,
    timestampMs: fc.maxSafeNat(),
    signature: fc.uint8Array({ minLength: 64, maxLength: 64 }),
  })
  .map(({ signature, ...r }) => encodeSignedReceipt({ receipt: { version: RECEIPT_VERSION, ...r }, signature }));

/** Every frame type with valid field values (small payloads, so a run covers many shapes). */
export function anyFrameArb(urlArb: fc.Arbitrary<string> = anyString(40, 1)): fc.Arbitrary<RelayFrame> {
  return fc.oneof(
    requestFrameArb(urlArb),
    fc
      .record({
        type: fc.constant(FrameType.RESPONSE),
        requestId: requestIdArb,
        offset: fc.nat({ max: 1 << 24 }),
        extra: fc.option(fc.nat({ max: 1 << 24 }), { nil: undefined }),
        digest: fc.option(fc.uint8Array({ minLength: SHA256_BYTES, maxLength: SHA256_BYTES }), { nil: undefined }),
      })
      .map(({ extra, ...f }) => ({ ...f, totalBytes: extra === undefined ? undefined : f.offset + extra })),
    fc.record({ type: fc.constant(FrameType.DATA), requestId: requestIdArb, chunk: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
    fc.record({ type: fc.constant(FrameType.END), requestId: requestIdArb, bytesSent: safeUintArb }),
    fc.record({ type: fc.constant(FrameType.ABSENT), requestId: requestIdArb }),
    fc.record({ type: fc.constant(FrameType.CANCEL), requestId: requestIdArb }),
    fc.record({
      type: fc.constant(FrameType.ERROR),
      requestId: requestIdArb,
      code: fc.oneof(fc.constantFrom(...Object.values(ErrorCode)), fc.stringMatching(/^[A-Z0-9_]{1,64}$/)),
      message: fc.string({ maxLength: 40 }),
    }),
    fc.record({ type: fc.constant(FrameType.CHALLENGE), requestId: fc.constant(0 as const), challenge: fc.uint8Array({ minLength: 32, maxLength: 32 }) }),
    fc.record({
      type: fc.constant(FrameType.BIND),
      requestId: fc.constant(0 as const),
      signedGrant: fc.oneof(signedGrantBytesArb, fc.uint8Array({ minLength: 1, maxLength: 64 })),
      signedAssignment: fc.option(fc.uint8Array({ minLength: SIGNED_ASSIGNMENT_BYTES, maxLength: SIGNED_ASSIGNMENT_BYTES }), { nil: undefined }),
      proof: fc.uint8Array({ minLength: 64, maxLength: 64 }),
    }),
    fc.record({
      type: fc.constant(FrameType.RECEIPT),
      requestId: requestIdArb,
      signedReceipt: fc.oneof(signedReceiptBytesArb, fc.uint8Array({ minLength: 1, maxLength: 64 })),
    }),
  );
}

/** A frame header with any length prefix, version and type, then `payload`. */
export function rawFrame(type: number, requestId: number, payload: Uint8Array, version = FRAME_VERSION, bodyLength?: number): Uint8Array {
  const out = new Uint8Array(10 + payload.byteLength);
  const view = new DataView(out.buffer);
  view.setUint32(0, bodyLength ?? 6 + payload.byteLength);
  out[4] = version;
  out[5] = type;
  view.setUint32(6, requestId);
  out.set(payload, 10);
  return out;
}

/** Damage applied to well-formed bytes: byte edits, truncation, insertion, splicing with garbage. */
export function damagedBytesArb(valid: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> {
  return fc.oneof(
    fc.tuple(valid, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 })).map(([bytes, edits]) => {
      const out = bytes.slice();
      if (out.byteLength > 0) for (const [at, v] of edits) out[at % out.byteLength] = v;
      return out;
    }),
    fc.tuple(valid, fc.nat()).map(([bytes, n]) => bytes.slice(0, bytes.byteLength === 0 ? 0 : n % bytes.byteLength)),
    fc.tuple(valid, fc.nat(), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([bytes, at, junk]) => {
      const pos = bytes.byteLength === 0 ? 0 : at % bytes.byteLength;
      return concatBytes([bytes.subarray(0, pos), junk, bytes.subarray(pos)]);
    }),
    fc.tuple(valid, valid).map(([a, b]) => concatBytes([a, b])),
    // Length prefix rewritten: the classic "claims more than it carries" and "claims 4 GiB".
    fc.tuple(valid, fc.oneof(fc.nat({ max: 200 }), fc.constantFrom(0x7fff_ffff, MAX_U32, 65_532, 65_533, 65_536))).map(([bytes, len]) => {
      const out = bytes.byteLength >= 4 ? bytes.slice() : new Uint8Array(4);
      new DataView(out.buffer).setUint32(0, len);
      return out;
    }),
  );
}

/** Wholly random bytes and plausible headers over random bodies. */
export const randomFrameBytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.uint8Array({ maxLength: 128 }),
  fc
    .tuple(fc.integer({ min: 0, max: 11 }), requestIdArb, fc.uint8Array({ maxLength: 96 }), fc.constantFrom(FRAME_VERSION, FRAME_VERSION, 0, 2))
    .map(([type, id, payload, version]) => rawFrame(type, id, payload, version)),
);

// ---------------------------------------------------------------------------------------------
// Tracker messages
// ---------------------------------------------------------------------------------------------

const TRACKER_FIELDS = [
  'type',
  'relayId',
  'signature',
  'capacity',
  'load',
  'region',
  'pricePerGiB',
  'streams',
  'swarmId',
  'count',
  'to',
  'from',
  'connectionId',
  'signal',
  'reason',
  'url',
  'expectedSha256',
  'receivedSha256',
  'peerId',
  'nonce',
  'heartbeatIntervalMs',
  'relays',
  'code',
  'message',
  'ref',
  '__proto__',
  'constructor',
  'toString',
] as const;
const TRACKER_TYPES = ['register', 'heartbeat', 'join', 'signal', 'report', 'hello', 'registered', 'shortlist', 'error', 'leave', '', 'toString', '__proto__'];

const relayIdArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(encodeBase58);
const hexArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'));

/** Field values of the right kind (so deep validation paths run) and of every wrong kind. */
const trackerValueArb: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  relayIdArb,
  hexArb,
  fc.uint8Array({ minLength: 64, maxLength: 64 }).map(toBase64),
  fc.stringMatching(/^[A-Za-z0-9_-]{1,70}$/),
  fc.constantFrom(0, 1, -1, 1.5, 1_000_000, 1_000_001, Number.MAX_SAFE_INTEGER, 1e308, '18446744073709551616', 'https://a.example/s.ts'),
  fc.record({
    kind: fc.constantFrom('offer', 'answer', 'candidate', 'end-of-candidates', 'x'),
    sdp: fc.oneof(fc.string({ maxLength: 64 }), fc.jsonValue({ maxDepth: 0 })),
    candidate: fc.oneof(fc.string({ maxLength: 64 }), fc.jsonValue({ maxDepth: 0 })),
    sdpMid: fc.oneof(fc.string({ maxLength: 70 }), fc.jsonValue({ maxDepth: 0 })),
  }),
  fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.record({ relayId: relayIdArb, region: fc.string({ maxLength: 8 }) })), { maxLength: 70 }),
);

/** JSON objects shaped like tracker messages: a known or unknown type and any mix of known fields. */
export const trackerObjectArb: fc.Arbitrary<Record<string, unknown>> = fc
  .tuple(
    fc.oneof(fc.constantFrom(...TRACKER_TYPES), fc.jsonValue({ maxDepth: 1 })),
    fc.dictionary(fc.constantFrom(...TRACKER_FIELDS), trackerValueArb, { maxKeys: 10 }),
  )
  .map(([type, fields]) => ({ ...fields, type }));

/** Text a tracker socket may receive: messages-like JSON, damaged JSON, random text, deep nesting. */
export const trackerTextArb: fc.Arbitrary<string> = fc.oneof(
  trackerObjectArb.map((o) => JSON.stringify(o)),
  fc
    .tuple(
      trackerObjectArb.map((o) => JSON.stringify(o)),
      fc.array(fc.tuple(fc.nat(), anyString(2, 1)), { minLength: 1, maxLength: 3 }),
    )
    .map(([text, edits]) => {
      let out = text;
      for (const [at, s] of edits) {
        const i = at % (out.length + 1);
        out = out.slice(0, i) + s + out.slice(i + 1);
      }
      return out;
    }),
  anyString(200),
  fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
  fc.integer({ min: 1, max: 5000 }).map((depth) => '['.repeat(depth) + ']'.repeat(depth)),
  fc.integer({ min: 1, max: 3000 }).map((depth) => '{"type":"join","swarmId":' + '{"a":'.repeat(depth) + '1' + '}'.repeat(depth) + '}'),
);
