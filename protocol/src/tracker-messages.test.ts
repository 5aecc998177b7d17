import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeBase58 } from './base58.js';
import { toBase64, utf8Encode } from './bytes.js';
import {
  CHALLENGE_NONCE_BYTES,
  ED25519_SIGNATURE_BYTES,
  MAX_ADVERTISED_STREAMS,
  MAX_CANDIDATE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_SDP_BYTES,
  MAX_SHORTLIST_SIZE,
  MAX_SWARM_ID_BYTES,
  MAX_TRACKER_MESSAGE_BYTES,
  REGISTER_SIGNING_DOMAIN,
} from './constants.js';
import { ErrorCode, RelaycastError } from './errors.js';
import { SIGNED_ASSIGNMENT_BYTES } from './assignments.js';
import { MAX_SIGNED_GRANT_BYTES } from './receipts.js';
import {
  MAX_ASSIGNMENTS_PER_MESSAGE,
  MAX_PREWARM_QUERY_BYTES,
  TRACKER_SESSION_SIGNING_DOMAIN,
  decodePrewarmQuery,
  encodePrewarmQuery,
  decodeTrackerClientMessage,
  decodeTrackerServerMessage,
  encodeTrackerMessage,
  registrationSigningBytes,
  trackerSessionSigningBytes,
  swarmIdFromUrl,
  type TrackerClientMessage,
  type TrackerMessage,
  type TrackerServerMessage,
} from './tracker-messages.js';
import { expectRelaycastError, withoutStackTraces } from './testing/errors.js';

const expectMessageError = (fn: () => unknown, code: string = 'RC_ERR_MESSAGE_'): RelaycastError => expectRelaycastError(fn, code);

const FUZZ_RUNS = 10_000;

// ---------------------------------------------------------------------------------------------
// Generators
// ---------------------------------------------------------------------------------------------

const relayIdArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(encodeBase58);
const viewerIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{8,64}$/);
const peerIdArb = fc.oneof(viewerIdArb, relayIdArb);
const connectionIdArb = fc.stringMatching(/^[A-Za-z0-9_-]{1,64}$/);
const regionArb = fc.stringMatching(/^[a-z0-9-]{0,32}$/);
const signatureArb = fc.uint8Array({ minLength: 64, maxLength: 64 }).map(toBase64);
const nonceArb = fc.uint8Array({ minLength: 32, maxLength: 32 }).map(toBase64);
const countArb = fc.integer({ min: 1, max: 1_000_000 });
const priceArb = fc.oneof(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String), fc.constantFrom('0', '1', '18446744073709551615'));
/** Any UTF-16 code units, lone surrogates included (JSON.stringify escapes them). */
const anyUnits = (maxLength: number, minLength = 0): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ unit: 'binary', minLength, maxLength }),
    fc.string({ unit: fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c)), minLength, maxLength }),
  );
const streamArb = anyUnits(40, 1);
const streamsArb = fc.array(streamArb, { maxLength: 8 });
const swarmIdArb = anyUnits(80, 1);

const signalPayloadArb = fc.oneof(
  fc.record({ kind: fc.constant('offer' as const), sdp: anyUnits(300) }),
  fc.record({ kind: fc.constant('answer' as const), sdp: anyUnits(300) }),
  fc.record({
    kind: fc.constant('candidate' as const),
    candidate: anyUnits(100),
    sdpMid: fc.option(fc.string({ unit: 'binary-ascii', maxLength: 64 }), { nil: undefined }),
  }),
  fc.constant({ kind: 'end-of-candidates' as const }),
);

const natArb = fc.option(
  fc.record(
    {
      portMapping: fc.constantFrom('none' as const, 'upnp' as const, 'nat-pmp' as const, 'failed' as const),
      publicAddress: fc.ipV4(),
      mappedPort: fc.integer({ min: 1, max: 65535 }),
    },
    { requiredKeys: ['portMapping'] },
  ),
  { nil: undefined },
);
const reachabilityArb = fc.constantFrom('public' as const, 'mapped' as const, 'needs-turn' as const);

const registerArb = fc.record({
  nat: natArb,
  type: fc.constant('register' as const),
  relayId: relayIdArb,
  signature: signatureArb,
  capacity: countArb,
  load: countArb,
  region: regionArb,
  pricePerGiB: priceArb,
  streams: streamsArb,
});
const heartbeatArb = fc.record({ type: fc.constant('heartbeat' as const), capacity: countArb, load: countArb, streams: streamsArb, nat: natArb });
const joinArb = fc.record({
  type: fc.constant('join' as const),
  swarmId: swarmIdArb,
  region: fc.option(regionArb, { nil: undefined }),
  count: fc.option(fc.integer({ min: 1, max: MAX_SHORTLIST_SIZE }), { nil: undefined }),
});
const signalToArb = fc.record({ type: fc.constant('signal' as const), to: peerIdArb, connectionId: connectionIdArb, signal: signalPayloadArb });
const signalFromArb = fc.record({ type: fc.constant('signal' as const), from: peerIdArb, connectionId: connectionIdArb, signal: signalPayloadArb });

const assignmentArb = fc.uint8Array({ minLength: SIGNED_ASSIGNMENT_BYTES, maxLength: SIGNED_ASSIGNMENT_BYTES }).map(toBase64);
const sessionArb = fc.record({
  type: fc.constant('session' as const),
  grant: fc.uint8Array({ minLength: 1, maxLength: MAX_SIGNED_GRANT_BYTES }).map(toBase64),
  proof: signatureArb,
});
const turnArb = fc.record({ type: fc.constant('turn' as const), relayId: relayIdArb });

const clientMessageArb: fc.Arbitrary<TrackerClientMessage> = fc.oneof(registerArb, heartbeatArb, joinArb, signalToArb, sessionArb, turnArb);

const helloShortlistArb = fc.record({
  swarmId: swarmIdArb,
  relays: fc.array(fc.record({ relayId: relayIdArb, region: regionArb, reachability: reachabilityArb }, { requiredKeys: ['relayId', 'region'] }), {
    maxLength: MAX_SHORTLIST_SIZE,
  }),
});
const helloArb = fc.record(
  {
    type: fc.constant('hello' as const),
    peerId: viewerIdArb,
    nonce: nonceArb,
    heartbeatIntervalMs: fc.integer({ min: 0, max: 3_600_000 }),
    shortlist: helloShortlistArb,
  },
  { requiredKeys: ['type', 'peerId', 'nonce', 'heartbeatIntervalMs'] },
);
const registeredArb = fc.record({ type: fc.constant('registered' as const), relayId: relayIdArb, trackerKey: relayIdArb });
const shortlistArb = fc.record({
  type: fc.constant('shortlist' as const),
  swarmId: swarmIdArb,
  relays: fc.array(
    fc.record({ relayId: relayIdArb, region: regionArb, reachability: reachabilityArb, assignment: assignmentArb }, { requiredKeys: ['relayId', 'region'] }),
    { maxLength: MAX_SHORTLIST_SIZE },
  ),
});
const assignmentsArb = fc.record({
  type: fc.constant('assignments' as const),
  assignments: fc.array(fc.record({ relayId: relayIdArb, assignment: assignmentArb }), { maxLength: MAX_ASSIGNMENTS_PER_MESSAGE }),
});
const iceServerArb = fc.record(
  {
    urls: fc.array(fc.constantFrom('stun:stun.example:3478', 'turn:turn.example:3478?transport=udp', 'turns:turn.example:5349'), {
      minLength: 1,
      maxLength: 4,
    }),
    username: fc.string({ unit: 'binary-ascii', maxLength: 64 }),
    credential: fc.string({ unit: 'binary-ascii', maxLength: 64 }),
  },
  { requiredKeys: ['urls'] },
);
const iceArb = fc.record({ type: fc.constant('ice' as const), relayId: relayIdArb, iceServers: fc.array(iceServerArb, { maxLength: 4 }) });
const reachabilityMsgArb = fc.record({
  type: fc.constant('reachability' as const),
  reachability: reachabilityArb,
  address: fc.option(
    fc.tuple(fc.ipV4(), fc.integer({ min: 1, max: 65535 })).map(([ip, port]) => `${ip}:${port}`),
    { nil: undefined },
  ),
});
const errorArb = fc.record({
  type: fc.constant('error' as const),
  code: fc.oneof(fc.constantFrom(...Object.values(ErrorCode)), fc.stringMatching(/^[A-Z0-9_]{1,64}$/)),
  message: anyUnits(200),
  ref: fc.option(fc.string({ unit: 'binary-ascii', maxLength: 32 }), { nil: undefined }),
});

const serverMessageArb: fc.Arbitrary<TrackerServerMessage> = fc.oneof(
  helloArb,
  registeredArb,
  shortlistArb,
  signalFromArb,
  errorArb,
  reachabilityMsgArb,
  assignmentsArb,
  iceArb,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/**
 * Decoder contract for untrusted input: a decoded message (which survives encode + decode unchanged)
 * or a RelaycastError with an RC_ERR_MESSAGE_* code, and never anything else.
 */
function checkOutcome<T extends TrackerMessage>(decode: (data: string | Uint8Array) => T, data: string | Uint8Array): T | undefined {
  let msg: T;
  try {
    msg = decode(data);
  } catch (err) {
    if (err instanceof RelaycastError && err.code.startsWith('RC_ERR_MESSAGE_')) return undefined;
    throw new Error(`decoder threw something other than an RC_ERR_MESSAGE_* error: ${String(err)}`, { cause: err });
  }
  const text = encodeTrackerMessage(msg);
  const again = decode(text);
  if (encodeTrackerMessage(again) !== text) throw new Error('decoded message does not re-encode to the same text');
  return msg;
}

const both = (data: string | Uint8Array): void => {
  checkOutcome(decodeTrackerClientMessage, data);
  checkOutcome(decodeTrackerServerMessage, data);
};

const validRegister = {
  type: 'register',
  relayId: encodeBase58(new Uint8Array(32).fill(7)),
  signature: toBase64(new Uint8Array(64).fill(1)),
  capacity: 100,
  load: 3,
  region: 'eu-west',
  pricePerGiB: '1000',
  streams: ['https://a.example/live/master.m3u8'],
};

const enc = (o: unknown): string => JSON.stringify(o);

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

describe('tracker messages: round trip', () => {
  it('every client message type', () => {
    fc.assert(
      fc.property(clientMessageArb, (msg) => {
        const text = encodeTrackerMessage(msg);
        expect(decodeTrackerClientMessage(text)).toEqual(msg);
        expect(decodeTrackerClientMessage(utf8Encode(text))).toEqual(msg);
      }),
      { numRuns: 2_000 },
    );
  });

  it('every server message type', () => {
    fc.assert(
      fc.property(serverMessageArb, (msg) => {
        const text = encodeTrackerMessage(msg);
        expect(decodeTrackerServerMessage(text)).toEqual(msg);
        expect(decodeTrackerServerMessage(utf8Encode(text))).toEqual(msg);
      }),
      { numRuns: 2_000 },
    );
  });

  it('one fixed example of each message', () => {
    const relayId = encodeBase58(new Uint8Array(32).fill(9));
    const client: TrackerClientMessage[] = [
      validRegister as TrackerClientMessage,
      { type: 'heartbeat', capacity: 0, load: 0, streams: [] },
      { type: 'join', swarmId: 'https://a.example/master.m3u8' },
      { type: 'join', swarmId: 's', region: 'us-east-1', count: 16 },
      { type: 'signal', to: relayId, connectionId: 'c1', signal: { kind: 'offer', sdp: 'v=0\r\n' } },
      { type: 'signal', to: 'viewer-0123', connectionId: 'c_1-2', signal: { kind: 'answer', sdp: 'v=0' } },
      { type: 'signal', to: relayId, connectionId: 'c', signal: { kind: 'candidate', candidate: 'candidate:1 1 UDP 1 127.0.0.1 5000 typ host', sdpMid: '0' } },
      { type: 'signal', to: relayId, connectionId: 'c', signal: { kind: 'end-of-candidates' } },
      { type: 'session', grant: toBase64(new Uint8Array(300).fill(2)), proof: toBase64(new Uint8Array(64)) },
      { type: 'turn', relayId },
    ];
    for (const m of client) expect(decodeTrackerClientMessage(encodeTrackerMessage(m))).toEqual(m);
    const server: TrackerServerMessage[] = [
      { type: 'hello', peerId: 'AAAAAAAAAAAAAAAAAAAAAA', nonce: toBase64(new Uint8Array(32)), heartbeatIntervalMs: 5000 },
      { type: 'registered', relayId, trackerKey: relayId },
      { type: 'shortlist', swarmId: 's', relays: [{ relayId, region: 'eu', reachability: 'needs-turn', assignment: toBase64(new Uint8Array(169)) }] },
      { type: 'assignments', assignments: [] },
      { type: 'assignments', assignments: [{ relayId, assignment: toBase64(new Uint8Array(169).fill(3)) }] },
      { type: 'ice', relayId, iceServers: [{ urls: ['turn:t.example:3478'], username: '1700000000:peer', credential: 'abc=' }] },
      { type: 'shortlist', swarmId: 's', relays: [] },
      { type: 'shortlist', swarmId: 's', relays: [{ relayId, region: '' }] },
      { type: 'signal', from: relayId, connectionId: 'c', signal: { kind: 'end-of-candidates' } },
      { type: 'error', code: ErrorCode.RATE_LIMITED, message: 'slow down' },
      { type: 'error', code: ErrorCode.MESSAGE_FIELD, message: '', ref: 'join' },
    ];
    for (const m of server) expect(decodeTrackerServerMessage(encodeTrackerMessage(m))).toEqual(m);
  });

  it('drops unknown fields and keeps only the fields of the message type', () => {
    const m = decodeTrackerClientMessage(enc({ type: 'join', swarmId: 's', extra: { deep: [1, 2] }, relayId: 'x' }));
    expect(m).toEqual({ type: 'join', swarmId: 's' });
    expect(Object.keys(m).sort()).toEqual(['count', 'region', 'swarmId', 'type']);
  });

  it('join count 0 is read as 1', () => {
    expect(decodeTrackerClientMessage(enc({ type: 'join', swarmId: 's', count: 0 }))).toMatchObject({ count: 1 });
  });

  it('a client signal carries `to` only and a server signal `from` only', () => {
    const payload = { connectionId: 'c', signal: { kind: 'end-of-candidates' } };
    const relayId = encodeBase58(new Uint8Array(32).fill(1));
    expect(decodeTrackerClientMessage(enc({ type: 'signal', to: relayId, from: relayId, ...payload }))).toEqual({
      type: 'signal',
      to: relayId,
      ...payload,
    });
    expect(decodeTrackerServerMessage(enc({ type: 'signal', to: relayId, from: relayId, ...payload }))).toEqual({
      type: 'signal',
      from: relayId,
      ...payload,
    });
    expectMessageError(() => decodeTrackerClientMessage(enc({ type: 'signal', from: relayId, ...payload })), ErrorCode.MESSAGE_FIELD);
    expectMessageError(() => decodeTrackerServerMessage(enc({ type: 'signal', to: relayId, ...payload })), ErrorCode.MESSAGE_FIELD);
  });

  it('each side refuses the other side’s message types', () => {
    for (const t of ['hello', 'registered', 'shortlist', 'error', 'assignments', 'ice']) {
      expectMessageError(() => decodeTrackerClientMessage(enc({ type: t })), ErrorCode.MESSAGE_TYPE);
    }
    for (const t of ['register', 'heartbeat', 'join', 'session', 'turn']) {
      expectMessageError(() => decodeTrackerServerMessage(enc({ type: t })), ErrorCode.MESSAGE_TYPE);
    }
    for (const t of [undefined, null, 1, 'REGISTER', '', ['join'], { type: 'join' }]) {
      expectMessageError(() => decodeTrackerClientMessage(enc({ type: t, swarmId: 's' })), ErrorCode.MESSAGE_TYPE);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Field validation
// ---------------------------------------------------------------------------------------------

describe('tracker messages: field validation', () => {
  const register = (fields: Record<string, unknown>): string => enc({ ...validRegister, ...fields });

  it('accepts the valid register fixture', () => {
    expect(decodeTrackerClientMessage(register({}))).toEqual(validRegister);
  });

  it('rejects wrong field types', () => {
    const wrong: Record<string, unknown[]> = {
      relayId: [undefined, null, 1, [], {}, true],
      signature: [undefined, null, 1, [], {}],
      capacity: [undefined, null, '1', -1, 1.5, 1_000_001, Number.MAX_SAFE_INTEGER, true, []],
      load: [undefined, '1', -1, 0.1, 1e7],
      region: [undefined, null, 1, 'EU', 'eu west', 'é', 'a'.repeat(33)],
      pricePerGiB: [undefined, 1000, '', '01', '-1', '1.5', '1e3', ' 1', '0x10', '1'.repeat(21)],
      streams: [undefined, null, 'a', {}, [1], [''], [null], new Array(MAX_ADVERTISED_STREAMS + 1).fill('s'), ['x'.repeat(MAX_SWARM_ID_BYTES + 1)]],
    };
    for (const [field, values] of Object.entries(wrong)) {
      for (const v of values) {
        const e = expectMessageError(() => decodeTrackerClientMessage(register({ [field]: v })), ErrorCode.MESSAGE_FIELD);
        if (field !== 'relayId') expect(e.details).toEqual({ field });
      }
    }
    expect(decodeTrackerClientMessage(register({ streams: new Array(MAX_ADVERTISED_STREAMS).fill('s') }))).toMatchObject({ type: 'register' });
    expect(decodeTrackerClientMessage(register({ streams: ['x'.repeat(MAX_SWARM_ID_BYTES)] }))).toMatchObject({ type: 'register' });
  });

  it('pricePerGiB must fit a u64', () => {
    expect(decodeTrackerClientMessage(register({ pricePerGiB: '18446744073709551615' }))).toMatchObject({ pricePerGiB: '18446744073709551615' });
    for (const p of ['18446744073709551616', '99999999999999999999']) {
      expectMessageError(() => decodeTrackerClientMessage(register({ pricePerGiB: p })), ErrorCode.MESSAGE_FIELD);
    }
  });

  it('rejects relay ids that are not base58 32-byte keys', () => {
    const bad = [
      '',
      'short',
      '0'.repeat(32), // '0' is not in the alphabet
      'O'.repeat(32),
      'I'.repeat(32),
      'l'.repeat(32),
      '1'.repeat(31),
      '1'.repeat(33), // 33 zero bytes
      '1'.repeat(45),
      encodeBase58(new Uint8Array(31).fill(255)),
      encodeBase58(new Uint8Array(33).fill(255)),
      `${encodeBase58(new Uint8Array(32).fill(3)).slice(0, -1)}!`,
      'ñ'.repeat(32),
    ];
    for (const relayId of bad) {
      expectMessageError(() => decodeTrackerClientMessage(register({ relayId })), ErrorCode.MESSAGE_FIELD);
      expectMessageError(() => decodeTrackerServerMessage(enc({ type: 'registered', relayId })), ErrorCode.MESSAGE_FIELD);
      expectMessageError(
        () => decodeTrackerServerMessage(enc({ type: 'shortlist', swarmId: 's', relays: [{ relayId, region: '' }] })),
        ErrorCode.MESSAGE_FIELD,
      );
    }
    expect(decodeTrackerClientMessage(register({ relayId: '1'.repeat(32) }))).toMatchObject({ relayId: '1'.repeat(32) });
  });

  it('rejects signatures that are not 64 bytes of strict base64', () => {
    for (const n of [0, 1, 32, 63, 65, 96]) {
      expectMessageError(() => decodeTrackerClientMessage(register({ signature: toBase64(new Uint8Array(n)) })), ErrorCode.MESSAGE_FIELD);
    }
    const good = toBase64(new Uint8Array(ED25519_SIGNATURE_BYTES).fill(0xfe));
    for (const signature of [
      good.slice(0, -2),
      `${good}=`,
      good.replace(/=+$/, ''),
      `${good.slice(0, 10)}*${good.slice(11)}`,
      Buffer.from(new Uint8Array(64)).toString('base64url') + '-',
    ]) {
      expectMessageError(() => decodeTrackerClientMessage(register({ signature })), ErrorCode.MESSAGE_FIELD);
    }
    expectMessageError(() => decodeTrackerClientMessage(register({ signature: 'A'.repeat(129) })), ErrorCode.MESSAGE_FIELD);
  });

  it('validates hello', () => {
    const hello = { type: 'hello', peerId: 'abcdefgh', nonce: toBase64(new Uint8Array(CHALLENGE_NONCE_BYTES)), heartbeatIntervalMs: 1000 };
    expect(decodeTrackerServerMessage(enc(hello))).toEqual(hello);
    for (const nonce of [toBase64(new Uint8Array(31)), toBase64(new Uint8Array(33)), 'not base64', 1, undefined]) {
      expectMessageError(() => decodeTrackerServerMessage(enc({ ...hello, nonce })), ErrorCode.MESSAGE_FIELD);
    }
    for (const peerId of ['short', 'x'.repeat(65), 'has space!', 'ünïcode1', 12345678]) {
      expectMessageError(() => decodeTrackerServerMessage(enc({ ...hello, peerId })), ErrorCode.MESSAGE_FIELD);
    }
    for (const heartbeatIntervalMs of [-1, 3_600_001, 1.5, '1000', null]) {
      expectMessageError(() => decodeTrackerServerMessage(enc({ ...hello, heartbeatIntervalMs })), ErrorCode.MESSAGE_FIELD);
    }
  });

  it('validates the pre-warm shortlist in hello like a shortlist message', () => {
    const relayId = encodeBase58(new Uint8Array(32).fill(9));
    const hello = { type: 'hello', peerId: 'abcdefgh', nonce: toBase64(new Uint8Array(CHALLENGE_NONCE_BYTES)), heartbeatIntervalMs: 1000 };
    const shortlist = { swarmId: 's', relays: [{ relayId, region: 'eu', reachability: 'public' }] };
    expect(decodeTrackerServerMessage(enc({ ...hello, shortlist }))).toEqual({ ...hello, shortlist });
    const bad: unknown[] = [
      null,
      [],
      's',
      { relays: [] },
      { swarmId: '', relays: [] },
      { swarmId: 's' },
      { swarmId: 's', relays: Array.from({ length: MAX_SHORTLIST_SIZE + 1 }, () => ({ relayId, region: 'eu' })) },
      { swarmId: 's', relays: [{ relayId: 'nope', region: 'eu' }] },
      { swarmId: 's', relays: [{ relayId, region: 'EU' }] },
      { swarmId: 's', relays: [{ relayId, region: 'eu', reachability: 'maybe' }] },
      { swarmId: 's', relays: [{ relayId, region: 'eu', assignment: toBase64(new Uint8Array(10)) }] },
    ];
    for (const sl of bad) expectMessageError(() => decodeTrackerServerMessage(enc({ ...hello, shortlist: sl })), ErrorCode.MESSAGE_FIELD);
  });

  it('validates join', () => {
    for (const swarmId of ['', undefined, 1, 'x'.repeat(MAX_SWARM_ID_BYTES + 1), 'é'.repeat(MAX_SWARM_ID_BYTES / 2 + 1)]) {
      expectMessageError(() => decodeTrackerClientMessage(enc({ type: 'join', swarmId })), ErrorCode.MESSAGE_FIELD);
    }
    for (const count of [-1, MAX_SHORTLIST_SIZE + 1, 1.5, '3', null]) {
      expectMessageError(() => decodeTrackerClientMessage(enc({ type: 'join', swarmId: 's', count })), ErrorCode.MESSAGE_FIELD);
    }
    for (const region of ['EU', 'x'.repeat(33), 5, null]) {
      expectMessageError(() => decodeTrackerClientMessage(enc({ type: 'join', swarmId: 's', region })), ErrorCode.MESSAGE_FIELD);
    }
  });

  it('validates signal', () => {
    const to = encodeBase58(new Uint8Array(32).fill(5));
    const base = { type: 'signal', to, connectionId: 'c', signal: { kind: 'offer', sdp: 'v=0' } };
    expect(decodeTrackerClientMessage(enc(base))).toEqual(base);
    for (const connectionId of ['', 'x'.repeat(65), 'a b', 'a.b', 1, undefined]) {
      expectMessageError(() => decodeTrackerClientMessage(enc({ ...base, connectionId })), ErrorCode.MESSAGE_FIELD);
    }
    for (const t of ['', 'short', 'x'.repeat(65), 'with space', 1, undefined]) {
      expectMessageError(() => decodeTrackerClientMessage(enc({ ...base, to: t })), ErrorCode.MESSAGE_FIELD);
    }
    const badSignals: unknown[] = [
      undefined,
      null,
      'offer',
      [],
      [{ kind: 'offer', sdp: 'x' }],
      {},
      { kind: 'OFFER', sdp: 'x' },
      { kind: 'offer' },
      { kind: 'offer', sdp: 1 },
      { kind: 'answer', sdp: 'x'.repeat(MAX_SDP_BYTES + 1) },
      { kind: 'candidate' },
      { kind: 'candidate', candidate: 'x'.repeat(MAX_CANDIDATE_BYTES + 1) },
      { kind: 'candidate', candidate: 'c', sdpMid: 0 },
      { kind: 'candidate', candidate: 'c', sdpMid: 'x'.repeat(65) },
    ];
    for (const signal of badSignals) {
      expectMessageError(() => decodeTrackerClientMessage(enc({ ...base, signal })), ErrorCode.MESSAGE_FIELD);
    }
    // The SDP limit: 6 KiB of SDP fits in an 8 KiB message.
    const sdp = 'x'.repeat(MAX_SDP_BYTES);
    expect(decodeTrackerClientMessage(enc({ ...base, signal: { kind: 'offer', sdp } }))).toMatchObject({ signal: { sdp } });
  });

  it('validates shortlist and error', () => {
    const relayId = encodeBase58(new Uint8Array(32).fill(2));
    const entry = { relayId, region: 'eu' };
    for (const relays of [
      undefined,
      null,
      {},
      'x',
      [null],
      [1],
      [[]],
      [{ relayId }],
      [{ ...entry, region: 'EU' }],
      new Array(MAX_SHORTLIST_SIZE + 1).fill(entry),
    ]) {
      expectMessageError(() => decodeTrackerServerMessage(enc({ type: 'shortlist', swarmId: 's', relays })), ErrorCode.MESSAGE_FIELD);
    }
    expectMessageError(() => decodeTrackerServerMessage(enc({ type: 'shortlist', swarmId: '', relays: [] })), ErrorCode.MESSAGE_FIELD);
    const err = { type: 'error', code: 'RC_ERR_X', message: 'm' };
    for (const code of ['', 'lower', 'A'.repeat(65), 1, undefined]) {
      expectMessageError(() => decodeTrackerServerMessage(enc({ ...err, code })), ErrorCode.MESSAGE_FIELD);
    }
    expectMessageError(() => decodeTrackerServerMessage(enc({ ...err, message: 'm'.repeat(MAX_ERROR_MESSAGE_BYTES + 1) })), ErrorCode.MESSAGE_FIELD);
    expectMessageError(() => decodeTrackerServerMessage(enc({ ...err, message: undefined })), ErrorCode.MESSAGE_FIELD);
    expectMessageError(() => decodeTrackerServerMessage(enc({ ...err, ref: 'r'.repeat(33) })), ErrorCode.MESSAGE_FIELD);
    expectMessageError(() => decodeTrackerServerMessage(enc({ ...err, ref: 5 })), ErrorCode.MESSAGE_FIELD);
  });

  it('validates registered, session, turn, assignments, ice and shortlist assignments', () => {
    const relayId = encodeBase58(new Uint8Array(32).fill(2));
    const a = toBase64(new Uint8Array(SIGNED_ASSIGNMENT_BYTES).fill(1));
    const server = (o: unknown) => expectMessageError(() => decodeTrackerServerMessage(enc(o)), ErrorCode.MESSAGE_FIELD);
    const client = (o: unknown) => expectMessageError(() => decodeTrackerClientMessage(enc(o)), ErrorCode.MESSAGE_FIELD);
    // registered: trackerKey is required and a 32-byte base58 key.
    for (const trackerKey of [undefined, '', 'x', 5, encodeBase58(new Uint8Array(31).fill(2))]) server({ type: 'registered', relayId, trackerKey });
    // An assignment is exactly 169 bytes of canonical base64, in shortlists and in `assignments`.
    for (const assignment of [5, '', toBase64(new Uint8Array(168)), toBase64(new Uint8Array(170)), `${a.slice(0, -1)}!`]) {
      server({ type: 'shortlist', swarmId: 's', relays: [{ relayId, region: 'eu', assignment }] });
      server({ type: 'assignments', assignments: [{ relayId, assignment }] });
    }
    for (const assignments of [
      undefined,
      null,
      {},
      [null],
      [[]],
      [{ relayId }],
      [{ assignment: a }],
      new Array(MAX_ASSIGNMENTS_PER_MESSAGE + 1).fill({ relayId, assignment: a }),
    ]) {
      server({ type: 'assignments', assignments });
    }
    // The largest `assignments` message and a full shortlist with assignments and a long swarm id fit.
    const full = { type: 'assignments' as const, assignments: new Array(MAX_ASSIGNMENTS_PER_MESSAGE).fill({ relayId, assignment: a }) };
    expect(decodeTrackerServerMessage(encodeTrackerMessage(full))).toEqual(full);
    const list = {
      type: 'shortlist' as const,
      swarmId: 'h'.repeat(MAX_SWARM_ID_BYTES),
      relays: new Array(MAX_SHORTLIST_SIZE).fill({ relayId, region: 'r'.repeat(32), reachability: 'needs-turn', assignment: a }),
    };
    expect(decodeTrackerServerMessage(encodeTrackerMessage(list))).toEqual(list);
    // ice: a relay id and 0-4 servers.
    server({ type: 'ice', relayId, iceServers: undefined });
    server({ type: 'ice', iceServers: [] });
    server({ type: 'ice', relayId, iceServers: [{ urls: ['http://x'] }] });
    server({ type: 'ice', relayId, iceServers: new Array(5).fill({ urls: ['turn:x'] }) });
    // session: a grant of 1..MAX_SIGNED_GRANT_BYTES bytes and a 64-byte proof, both canonical base64.
    const session = { type: 'session', grant: toBase64(new Uint8Array(200)), proof: toBase64(new Uint8Array(64)) };
    expect(decodeTrackerClientMessage(enc(session))).toEqual(session);
    for (const grant of [undefined, 1, '', toBase64(new Uint8Array(MAX_SIGNED_GRANT_BYTES + 1)), 'AB=']) client({ ...session, grant });
    for (const proof of [undefined, '', toBase64(new Uint8Array(63)), toBase64(new Uint8Array(65))]) client({ ...session, proof });
    // turn: a relay id.
    for (const r of [undefined, 'x', 7]) client({ type: 'turn', relayId: r });
    // Each direction refuses the other's new types.
    expectMessageError(() => decodeTrackerServerMessage(enc(session)), ErrorCode.MESSAGE_TYPE);
    expectMessageError(() => decodeTrackerClientMessage(enc(full)), ErrorCode.MESSAGE_TYPE);
    expectMessageError(() => decodeTrackerClientMessage(enc({ type: 'ice', relayId, iceServers: [] })), ErrorCode.MESSAGE_TYPE);
    expectMessageError(() => decodeTrackerServerMessage(enc({ type: 'turn', relayId })), ErrorCode.MESSAGE_TYPE);
  });

  it('trackerSessionSigningBytes is the domain then the 32-byte hello nonce', () => {
    const nonce = new Uint8Array(CHALLENGE_NONCE_BYTES).fill(4);
    expect(trackerSessionSigningBytes(nonce)).toEqual(new Uint8Array([...utf8Encode(TRACKER_SESSION_SIGNING_DOMAIN), ...nonce]));
    expect(TRACKER_SESSION_SIGNING_DOMAIN).toBe('relaycast-tracker-session-v1\0');
    expectMessageError(() => trackerSessionSigningBytes(nonce.subarray(1)), ErrorCode.MESSAGE_FIELD);
  });

  it('rejects non-objects and invalid JSON as malformed', () => {
    for (const text of ['', ' ', 'null', '1', '"join"', '[]', '[{"type":"join"}]', 'true', '{', '{"type":"join",}', "{'type':'join'}", 'undefined', 'NaN']) {
      expectMessageError(() => decodeTrackerClientMessage(text), ErrorCode.MESSAGE_MALFORMED);
      expectMessageError(() => decodeTrackerServerMessage(text), ErrorCode.MESSAGE_MALFORMED);
    }
  });

  it('rejects non-UTF-8 bytes as malformed', () => {
    const prefix = utf8Encode('{"type":"join","swarmId":"');
    const suffix = utf8Encode('"}');
    for (const bad of [[0x80], [0xff], [0xc3], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xe2, 0x82]]) {
      const bytes = Uint8Array.from([...prefix, ...bad, ...suffix]);
      expectMessageError(() => decodeTrackerClientMessage(bytes), ErrorCode.MESSAGE_MALFORMED);
      expectMessageError(() => decodeTrackerServerMessage(bytes), ErrorCode.MESSAGE_MALFORMED);
    }
    expect(decodeTrackerClientMessage(Uint8Array.from([...prefix, 0xc3, 0xa9, ...suffix]))).toEqual({ type: 'join', swarmId: 'é' });
  });

  it('treats a leading BOM the same in text and bytes (not JSON: malformed)', () => {
    const text = '\uFEFF{"type":"join","swarmId":"s"}';
    expectMessageError(() => decodeTrackerClientMessage(text), ErrorCode.MESSAGE_MALFORMED);
    expectMessageError(() => decodeTrackerClientMessage(utf8Encode(text)), ErrorCode.MESSAGE_MALFORMED);
  });

  it('survives deeply nested JSON', () => {
    const deep = `${'['.repeat(3000)}${']'.repeat(3000)}`;
    expectMessageError(() => decodeTrackerClientMessage(deep), ErrorCode.MESSAGE_MALFORMED);
    expectMessageError(() => decodeTrackerClientMessage(`{"type":"join","swarmId":${deep}}`), ErrorCode.MESSAGE_FIELD);
    const deepObj = `${'{"a":'.repeat(1200)}1${'}'.repeat(1200)}`;
    expectMessageError(() => decodeTrackerClientMessage(`{"type":"join","swarmId":"s","region":${deepObj}}`), ErrorCode.MESSAGE_FIELD);
  });
});

// ---------------------------------------------------------------------------------------------
// Size limit
// ---------------------------------------------------------------------------------------------

describe('tracker messages: size limit', () => {
  /** A valid join padded (through an ignored field) to exactly `bytes` UTF-8 bytes. */
  function paddedJoin(bytes: number, unit = 'x', unitBytes = 1): string {
    const shell = enc({ type: 'join', swarmId: 's', pad: '' });
    const room = bytes - utf8Encode(shell).byteLength;
    const units = Math.floor(room / unitBytes);
    const text = enc({ type: 'join', swarmId: 's', pad: unit.repeat(units) + 'x'.repeat(room - units * unitBytes) });
    expect(utf8Encode(text).byteLength).toBe(bytes);
    return text;
  }

  it('accepts exactly MAX_TRACKER_MESSAGE_BYTES and refuses one byte more, as text and as bytes', () => {
    for (const [unit, unitBytes] of [
      ['x', 1],
      ['é', 2],
      ['€', 3],
      ['😀', 4],
    ] as const) {
      const fits = paddedJoin(MAX_TRACKER_MESSAGE_BYTES, unit, unitBytes);
      expect(decodeTrackerClientMessage(fits)).toEqual({ type: 'join', swarmId: 's' });
      expect(decodeTrackerClientMessage(utf8Encode(fits))).toEqual({ type: 'join', swarmId: 's' });
      const over = paddedJoin(MAX_TRACKER_MESSAGE_BYTES + 1, unit, unitBytes);
      expectMessageError(() => decodeTrackerClientMessage(over), ErrorCode.MESSAGE_TOO_LARGE);
      expectMessageError(() => decodeTrackerClientMessage(utf8Encode(over)), ErrorCode.MESSAGE_TOO_LARGE);
      expectMessageError(() => decodeTrackerServerMessage(over), ErrorCode.MESSAGE_TOO_LARGE);
    }
  });

  it('counts lone surrogates in text as the 3 bytes they are sent as', () => {
    // Raw (unescaped) lone surrogates are legal in a JS string given to JSON.parse.
    const shell = '{"type":"join","swarmId":"s","pad":""}';
    const room = MAX_TRACKER_MESSAGE_BYTES + 1 - shell.length; // one byte over
    const unit = '\uD800é'; // 3 + 2 bytes as UTF-8
    const pad = unit.repeat(Math.floor(room / 5)) + 'x'.repeat(room % 5);
    const text = `{"type":"join","swarmId":"s","pad":"${pad}"}`;
    expect(new TextEncoder().encode(text).byteLength).toBe(MAX_TRACKER_MESSAGE_BYTES + 1);
    expectMessageError(() => decodeTrackerClientMessage(text), ErrorCode.MESSAGE_TOO_LARGE);
  });

  it('encodeTrackerMessage refuses to produce an oversized message', () => {
    expectMessageError(() => encodeTrackerMessage({ type: 'error', code: 'X', message: 'm'.repeat(MAX_TRACKER_MESSAGE_BYTES) }), ErrorCode.MESSAGE_TOO_LARGE);
    expectMessageError(
      () => encodeTrackerMessage({ type: 'heartbeat', capacity: 1, load: 1, streams: new Array(64).fill('é'.repeat(200)) }),
      ErrorCode.MESSAGE_TOO_LARGE,
    );
  });

  it('fuzz: messages around the limit are decoded or refused as too large by size alone', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: MAX_TRACKER_MESSAGE_BYTES - 8, max: MAX_TRACKER_MESSAGE_BYTES + 8 }),
        fc.constantFrom(['x', 1], ['é', 2], ['€', 3], ['😀', 4]),
        (size, [unit, unitBytes]) => {
          const text = paddedJoin(size, unit, unitBytes);
          if (size > MAX_TRACKER_MESSAGE_BYTES) expectMessageError(() => decodeTrackerClientMessage(text), ErrorCode.MESSAGE_TOO_LARGE);
          else expect(decodeTrackerClientMessage(text)).toEqual({ type: 'join', swarmId: 's' });
        },
      ),
      { numRuns: 200 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Fuzzing
// ---------------------------------------------------------------------------------------------

describe('tracker messages: decoder fuzzing', () => {
  withoutStackTraces();

  it('random strings', () => {
    fc.assert(
      fc.property(fc.oneof(anyUnits(200), fc.string({ unit: 'grapheme', maxLength: 100 })), (text) => both(text)),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('random bytes (mostly not UTF-8)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => both(bytes)),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('random JSON values and arbitrary values stringified', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.json({ maxDepth: 3 }),
          fc.anything({ maxDepth: 2 }).map((v) => JSON.stringify(v) ?? 'undefined'),
          fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })).map(enc),
        ),
        (text) => both(text),
      ),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('objects with a known type and random field values', () => {
    const types = ['register', 'heartbeat', 'join', 'signal', 'hello', 'registered', 'shortlist', 'error', 'session', 'turn', 'assignments', 'ice'];
    const fields = [
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
      'peerId',
      'nonce',
      'heartbeatIntervalMs',
      'relays',
      'code',
      'message',
      'ref',
      'trackerKey',
      'grant',
      'proof',
      'assignments',
      'assignment',
      'iceServers',
      'shortlist',
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...types),
        fc.dictionary(
          fc.constantFrom(...fields),
          fc.oneof(
            fc.jsonValue({ maxDepth: 1 }),
            fc.record(
              {
                kind: fc.constantFrom('offer', 'answer', 'candidate', 'end-of-candidates', 'x'),
                sdp: fc.jsonValue({ maxDepth: 0 }),
                candidate: fc.jsonValue({ maxDepth: 0 }),
                sdpMid: fc.jsonValue({ maxDepth: 0 }),
              },
              { requiredKeys: [] },
            ),
          ),
          { maxKeys: 8 },
        ),
        (type, body) => both(enc({ ...body, type })),
      ),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('valid messages with one field replaced, removed or retyped', () => {
    fc.assert(
      fc.property(
        fc.oneof(clientMessageArb, serverMessageArb),
        fc.nat(),
        fc.oneof(fc.constant(undefined), fc.jsonValue({ maxDepth: 2 }), fc.anything({ maxDepth: 2 })),
        (msg, pick, value) => {
          const o = JSON.parse(encodeTrackerMessage(msg)) as Record<string, unknown>;
          const keys = Object.keys(o);
          const key = keys[pick % keys.length]!;
          if (value === undefined) delete o[key];
          else o[key] = value;
          const text = JSON.stringify(o) ?? '';
          both(text);
          both(utf8Encode(text));
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('valid messages with characters mutated, inserted or deleted', () => {
    fc.assert(
      fc.property(
        fc.oneof(clientMessageArb, serverMessageArb),
        fc.array(fc.tuple(fc.nat(), fc.constantFrom('replace', 'insert', 'delete'), fc.string({ unit: 'binary', minLength: 1, maxLength: 2 })), {
          minLength: 1,
          maxLength: 4,
        }),
        (msg, edits) => {
          let text = encodeTrackerMessage(msg);
          for (const [at, op, s] of edits) {
            const i = at % (text.length + 1);
            if (op === 'insert') text = text.slice(0, i) + s + text.slice(i);
            else if (op === 'delete') text = text.slice(0, i) + text.slice(i + s.length);
            else text = text.slice(0, i) + s + text.slice(i + 1);
          }
          both(text);
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('valid messages as bytes with bytes mutated', () => {
    fc.assert(
      fc.property(
        fc.oneof(clientMessageArb, serverMessageArb),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 3 }),
        (msg, edits) => {
          const bytes = utf8Encode(encodeTrackerMessage(msg));
          for (const [at, v] of edits) bytes[at % bytes.byteLength] = v;
          both(bytes);
        },
      ),
      { numRuns: FUZZ_RUNS },
    );
  });

  it('messages just over the size limit, whatever they contain', () => {
    fc.assert(
      fc.property(fc.oneof(clientMessageArb, serverMessageArb), fc.integer({ min: 1, max: 64 }), (msg, extra) => {
        const text = encodeTrackerMessage(msg);
        const over = `${text.slice(0, -1)},"pad":"${'p'.repeat(Math.max(0, MAX_TRACKER_MESSAGE_BYTES - utf8Encode(text).byteLength - 9 + extra))}"}`;
        expect(utf8Encode(over).byteLength).toBe(Math.max(MAX_TRACKER_MESSAGE_BYTES + extra, utf8Encode(text).byteLength + 9));
        expectMessageError(() => decodeTrackerClientMessage(over), ErrorCode.MESSAGE_TOO_LARGE);
        expectMessageError(() => decodeTrackerServerMessage(utf8Encode(over)), ErrorCode.MESSAGE_TOO_LARGE);
      }),
      { numRuns: 1_000 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Signing bytes and swarm ids
// ---------------------------------------------------------------------------------------------

describe('tracker messages: helpers', () => {
  it('registrationSigningBytes is the UTF-8 domain followed by the raw nonce', () => {
    const nonce = Uint8Array.from({ length: CHALLENGE_NONCE_BYTES }, (_, i) => i);
    const bytes = registrationSigningBytes(nonce);
    expect(REGISTER_SIGNING_DOMAIN).toBe('relaycast-register-v1:');
    expect(Buffer.from(bytes).toString('hex')).toBe(Buffer.concat([Buffer.from('relaycast-register-v1:', 'utf8'), Buffer.from(nonce)]).toString('hex'));
    expect(bytes.byteLength).toBe(22 + 32);
  });

  it('swarmIdFromUrl drops query and fragment and normalises the URL', () => {
    expect(swarmIdFromUrl('https://cdn.example/live/master.m3u8?token=abc#t=1')).toBe('https://cdn.example/live/master.m3u8');
    expect(swarmIdFromUrl('HTTPS://CDN.example:443/a/../b/master.m3u8')).toBe('https://cdn.example/b/master.m3u8');
    expect(swarmIdFromUrl('http://cdn.example:8080/m.m3u8?')).toBe('http://cdn.example:8080/m.m3u8');
    for (const bad of ['not a url', '/relative/master.m3u8', 'master.m3u8', '']) {
      let thrown: unknown;
      try {
        swarmIdFromUrl(bad);
      } catch (err) {
        thrown = err;
      }
      expect(thrown).toBeInstanceOf(RelaycastError);
      expect((thrown as RelaycastError).code).toBe(ErrorCode.CONFIG_INVALID);
    }
  });
});

describe('tracker messages: NAT reports and reachability', () => {
  const relayId = encodeBase58(new Uint8Array(32).fill(9));
  it('refuses malformed nat reports and reachability values with RC_ERR_MESSAGE_FIELD', () => {
    const heartbeat = (nat: unknown): string => JSON.stringify({ type: 'heartbeat', capacity: 1, load: 0, streams: [], nat });
    for (const nat of [
      null,
      1,
      [],
      {},
      { portMapping: 'manual' },
      { portMapping: 'upnp', mappedPort: 0 },
      { portMapping: 'upnp', mappedPort: 70000 },
      { portMapping: 'none', publicAddress: 'evil.example' },
    ]) {
      expectMessageError(() => decodeTrackerClientMessage(heartbeat(nat)), ErrorCode.MESSAGE_FIELD);
    }
    for (const reachability of ['direct', '', null, 1]) {
      expectMessageError(() => decodeTrackerServerMessage(JSON.stringify({ type: 'reachability', reachability })), ErrorCode.MESSAGE_FIELD);
      expectMessageError(
        () => decodeTrackerServerMessage(JSON.stringify({ type: 'shortlist', swarmId: 's', relays: [{ relayId, region: '', reachability }] })),
        ErrorCode.MESSAGE_FIELD,
      );
    }
    expectMessageError(
      () => decodeTrackerServerMessage(JSON.stringify({ type: 'reachability', reachability: 'public', address: 'host.example:1' })),
      ErrorCode.MESSAGE_FIELD,
    );
  });

  it('keeps nat reports and reachability through a round trip', () => {
    const hb = {
      type: 'heartbeat' as const,
      capacity: 1,
      load: 0,
      streams: [],
      nat: { portMapping: 'upnp' as const, publicAddress: '203.0.113.7', mappedPort: 40000 },
    };
    expect(decodeTrackerClientMessage(encodeTrackerMessage(hb))).toEqual(hb);
    const r = { type: 'reachability' as const, reachability: 'mapped' as const, address: '203.0.113.7:40000' };
    expect(decodeTrackerServerMessage(encodeTrackerMessage(r))).toEqual(r);
  });
});

describe('pre-warm query', () => {
  withoutStackTraces();

  it('encodes a join request and decodes it back as that join; no swarmId is no pre-warm', () => {
    const swarmId = 'https://cdn.example/live/master.m3u8?x=1&y=2#f';
    const q = encodePrewarmQuery({ swarmId, region: 'eu-west', count: 5 });
    expect(q).toBe(`swarmId=${encodeURIComponent(swarmId)}&region=eu-west&count=5`);
    expect(decodePrewarmQuery(q)).toEqual({ type: 'join', swarmId, region: 'eu-west', count: 5 });
    expect(decodePrewarmQuery(`?${q}`)).toEqual({ type: 'join', swarmId, region: 'eu-west', count: 5 });
    expect(decodePrewarmQuery(encodePrewarmQuery({ swarmId: 's' }))).toEqual({ type: 'join', swarmId: 's', region: undefined, count: undefined });
    for (const none of ['', '?', 'region=eu&count=3', 'token=abc', 'swarmid=s']) expect(decodePrewarmQuery(none)).toBeUndefined();
    // Unknown parameters are ignored, like unknown fields of a message; count 0 is 1 as in join.
    expect(decodePrewarmQuery('swarmId=s&v=2&count=0')).toEqual({ type: 'join', swarmId: 's', region: undefined, count: 1 });
  });

  it('refuses what a join refuses, plus repeated parameters and a count that is not plain decimal', () => {
    const bad = [
      'swarmId=',
      `swarmId=${'x'.repeat(MAX_SWARM_ID_BYTES + 1)}`,
      `swarmId=${encodeURIComponent('é'.repeat(MAX_SWARM_ID_BYTES / 2 + 1))}`,
      'swarmId=s&swarmId=t',
      'swarmId=s&region=a&region=b',
      'swarmId=s&count=1&count=2',
      'swarmId=s&region=EU',
      `swarmId=s&region=${'x'.repeat(33)}`,
      `swarmId=s&count=${MAX_SHORTLIST_SIZE + 1}`,
      'swarmId=s&count=-1',
      'swarmId=s&count=1.5',
      'swarmId=s&count=03',
      'swarmId=s&count=',
      'swarmId=s&count=0x3',
    ];
    for (const q of bad) expectMessageError(() => decodePrewarmQuery(q), ErrorCode.MESSAGE_FIELD);
  });

  it('bounds the query: MAX_PREWARM_QUERY_BYTES passes the size check, one byte more is RC_ERR_MESSAGE_TOO_LARGE', () => {
    const head = 'swarmId=s&pad=';
    expect(decodePrewarmQuery(head + 'p'.repeat(MAX_PREWARM_QUERY_BYTES - head.length))).toEqual({
      type: 'join',
      swarmId: 's',
      region: undefined,
      count: undefined,
    });
    expectMessageError(() => decodePrewarmQuery(head + 'p'.repeat(MAX_PREWARM_QUERY_BYTES - head.length + 1)), ErrorCode.MESSAGE_TOO_LARGE);
    // The longest swarm id a join takes, percent-encoded at 3 bytes a byte, fits.
    const longest = String.fromCharCode(1).repeat(MAX_SWARM_ID_BYTES);
    expect(decodePrewarmQuery(encodePrewarmQuery({ swarmId: longest, region: 'x'.repeat(32), count: 16 }))?.swarmId).toBe(longest);
  });

  it('fuzz: every join round-trips through the query (a lone surrogate, which no URL holds, becomes U+FFFD)', () => {
    const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
    expect(decodePrewarmQuery(encodePrewarmQuery({ swarmId: 'a\uD800b' }))?.swarmId).toBe('a\uFFFDb');
    fc.assert(
      fc.property(
        joinArb.filter((j) => !loneSurrogate.test(j.swarmId)),
        (join) => {
          const { type: _type, ...req } = join;
          expect(decodePrewarmQuery(encodePrewarmQuery(req))).toEqual(join);
        },
      ),
      { numRuns: 2_000 },
    );
  });

  it('fuzz: random and damaged queries decode to a valid join or an RC_ERR_MESSAGE_* error, nothing else', () => {
    const valid = encodePrewarmQuery({ swarmId: 'https://a.example/m.m3u8', region: 'eu', count: 3 });
    const damaged = fc
      .tuple(fc.nat({ max: valid.length }), fc.nat({ max: 8 }), anyUnits(8))
      .map(([at, del, ins]) => valid.slice(0, at) + ins + valid.slice(at + del));
    const randomQuery = fc
      .array(fc.tuple(fc.constantFrom('swarmId', 'region', 'count', 'x', ''), fc.oneof(anyUnits(40), fc.integer().map(String))), { maxLength: 5 })
      .map((pairs) => pairs.map(([k, v]) => `${k}=${v}`).join('&'));
    fc.assert(
      fc.property(fc.oneof(anyUnits(200), randomQuery, damaged), (q) => {
        let join;
        try {
          join = decodePrewarmQuery(q);
        } catch (err) {
          if (err instanceof RelaycastError && err.code.startsWith('RC_ERR_MESSAGE_')) return;
          throw err;
        }
        // Whatever came through is a join the message decoder takes as it is.
        if (join !== undefined) expect(decodeTrackerClientMessage(encodeTrackerMessage(join))).toEqual(join);
      }),
      { numRuns: FUZZ_RUNS },
    );
  });
});
