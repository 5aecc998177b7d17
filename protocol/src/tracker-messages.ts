import { utf8Decode, utf8Encode, utf8Length } from './bytes.js';
import {
  CHALLENGE_NONCE_BYTES,
  ED25519_SIGNATURE_BYTES,
  MAX_ADVERTISED_STREAMS,
  MAX_CANDIDATE_BYTES,
  MAX_ERROR_CODE_BYTES,
  MAX_ERROR_MESSAGE_BYTES,
  MAX_SDP_BYTES,
  MAX_SHORTLIST_SIZE,
  MAX_SWARM_ID_BYTES,
  MAX_TRACKER_MESSAGE_BYTES,
  REGISTER_SIGNING_DOMAIN,
} from './constants.js';
import { SIGNED_ASSIGNMENT_BYTES } from './assignments.js';
import { decodePublicKey } from './base58.js';
import { ErrorCode, RelaycastError } from './errors.js';
import { fromBase64 } from './bytes.js';
import { MAX_SIGNED_GRANT_BYTES } from './receipts.js';

/**
 * Tracker WebSocket messages: JSON text frames, one message per frame, versioned by the WebSocket
 * subprotocol (TRACKER_SUBPROTOCOL). Every decoder checks the size first, then every field's type,
 * range and length; unknown fields are ignored so minor additions stay compatible.
 */

/** Ids: relays are base58 ed25519 keys; viewers get an opaque id from the tracker. */
const PEER_ID_PATTERN = /^[A-Za-z0-9_-]{8,64}$/;
const CONNECTION_ID_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;
const REGION_PATTERN = /^[a-z0-9-]{0,32}$/;
const ERROR_CODE_PATTERN = /^[A-Z0-9_]{1,64}$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/;
/** Segment URLs in reports; the whole message stays under MAX_TRACKER_MESSAGE_BYTES. */
const MAX_REPORT_URL_BYTES = 2048;

/** WebRTC signaling relayed by the tracker between a viewer and a relay (SDP and ICE candidates). */
export type SignalPayload =
  | { kind: 'offer'; sdp: string }
  | { kind: 'answer'; sdp: string }
  | { kind: 'candidate'; candidate: string; sdpMid?: string | undefined }
  | { kind: 'end-of-candidates' };

/**
 * How viewers can reach a relay, from the tracker's reachability test (see docs/NAT.md):
 * `public` answered from its own address, `mapped` answered through a port mapping on its router,
 * `needs-turn` did not answer unsolicited traffic, so viewers behind NAT reach it through TURN.
 */
export type Reachability = 'public' | 'mapped' | 'needs-turn';
/** Every Reachability value, for validation. */
export const REACHABILITY_VALUES: readonly Reachability[] = ['public', 'mapped', 'needs-turn'];

/** How a relay's UDP port is opened on its home router. */
export type PortMappingKind = 'none' | 'upnp' | 'nat-pmp' | 'failed';
const PORT_MAPPING_KINDS: readonly PortMappingKind[] = ['none', 'upnp', 'nat-pmp', 'failed'];

/** A relay's own view of its network, sent with `register` and `heartbeat`. */
export interface NatReport {
  portMapping: PortMappingKind;
  /** Public IP address as STUN or the gateway reported it. */
  publicAddress?: string | undefined;
  /** External UDP port of the mapping, when there is one. */
  mappedPort?: number | undefined;
}

/** One relay in a shortlist. */
export interface RelayDescriptor {
  relayId: string;
  region: string;
  /** Result of the tracker's reachability test; absent while untested. */
  reachability?: Reachability | undefined;
  /**
   * base64 signed assignment (assignments.ts, 169 bytes) of this connection's session to this relay;
   * present once the connection has a bound session (after an accepted `session`).
   */
  assignment?: string | undefined;
}

/** Domain of the session key's proof in a `session` message. */
export const TRACKER_SESSION_SIGNING_DOMAIN = 'relaycast-tracker-session-v1\0';
/** Most entries in one `assignments` message. */
export const MAX_ASSIGNMENTS_PER_MESSAGE = 2 * MAX_SHORTLIST_SIZE;

// Server → client
/** Tracker → any peer, first on every connection: its peer id and the nonce a relay signs to register. */
export interface HelloMessage {
  type: 'hello';
  /** Id the tracker gives this connection; viewers use it as their peer id. */
  peerId: string;
  /** Fresh random nonce (base64, 32 bytes) a relay signs to register. */
  nonce: string;
  heartbeatIntervalMs: number;
  /**
   * STUN servers for this peer's WebRTC connections. No TURN here: TURN credentials are handed out
   * on need only, per relay, in an `ice` answer to `turn`. Absent: none configured.
   */
  iceServers?: IceServer[] | undefined;
  /**
   * Pre-warm: the shortlist of the swarm the connection's URL asked for (see PrewarmRequest),
   * exactly what a `join` would have answered; the tracker counted it as that join. Absent when the
   * URL asked for none, or the tracker refused it (then an `error` with `ref: "prewarm"` follows).
   */
  shortlist?: HelloShortlist | undefined;
}

/** The shortlist a `hello` carries for a pre-warmed connection: a `shortlist` message's fields. */
export interface HelloShortlist {
  /** The swarm the URL asked for. */
  swarmId: string;
  /** Relays for it, best first; may be empty. */
  relays: RelayDescriptor[];
}

/**
 * What a viewer asks for in its tracker WebSocket URL's query (`?swarmId=…&region=…&count=…`), so
 * the tracker answers with the shortlist in `hello` instead of after a `join` round trip: a `join`
 * message's fields, validated exactly as `join` is.
 */
export type PrewarmRequest = Omit<JoinMessage, 'type'>;

/**
 * Longest pre-warm query (the URL part after `?`, percent-encoded) the tracker reads: a swarm id
 * of MAX_SWARM_ID_BYTES percent-encoded (3 bytes per byte at worst) plus region and count. Longer
 * is refused with RC_ERR_MESSAGE_TOO_LARGE.
 */
export const MAX_PREWARM_QUERY_BYTES = 3 * MAX_SWARM_ID_BYTES + 256;

/** An ICE server as RTCConfiguration takes it. */
export interface IceServer {
  /** `stun:`, `turn:` or `turns:` URLs. */
  urls: string[];
  username?: string | undefined;
  credential?: string | undefined;
}
/** Tracker → relay: the registration was accepted. */
export interface RegisteredMessage {
  type: 'registered';
  relayId: string;
  /** base58 Ed25519 public key the tracker signs assignments with; relays trust it for BIND. */
  trackerKey: string;
}

/**
 * Tracker → viewer, in answer to an accepted `session`: signed assignments for every relay already
 * handed to this connection (later shortlists carry them in RelayDescriptor.assignment).
 */
export interface AssignmentsMessage {
  type: 'assignments';
  assignments: Array<{ relayId: string; /** base64 signed assignment, 169 bytes. */ assignment: string }>;
}

/**
 * Tracker → viewer, in answer to `turn`: ICE servers with short-lived TURN REST credentials (username
 * `"<expiry unix s>:<peer id>"`, credential base64(HMAC-SHA1(secret, username))) for the connection to
 * `relayId` only.
 */
export interface IceMessage {
  type: 'ice';
  relayId: string;
  iceServers: IceServer[];
}
/** Tracker → viewer, in answer to `join`: relays for the swarm, best first. */
export interface ShortlistMessage {
  type: 'shortlist';
  swarmId: string;
  relays: RelayDescriptor[];
}
/** Tracker → any peer: a message was refused; `code` is an `RC_ERR_*` code. */
export interface ErrorMessage {
  type: 'error';
  code: string;
  message: string;
  /** Type of the message that caused the error, when there was one. */
  ref?: string | undefined;
}

// Client → server
/** Relay → tracker, after `hello`: proves the relay key (a signature over the hello nonce) and advertises capacity, price and streams. */
export interface RegisterMessage {
  type: 'register';
  relayId: string;
  /** base64 ed25519 signature by relayId over REGISTER_SIGNING_DOMAIN + nonce. */
  signature: string;
  capacity: number;
  load: number;
  region: string;
  /** Advertised price in token base units per GiB (decimal string: u64 does not fit a JSON number). */
  pricePerGiB: string;
  streams: string[];
  nat?: NatReport | undefined;
}
/** Relay → tracker, every `heartbeatIntervalMs`: current load and streams; a relay silent for the tracker's heartbeat timeout is evicted. */
export interface HeartbeatMessage {
  type: 'heartbeat';
  capacity: number;
  load: number;
  streams: string[];
  nat?: NatReport | undefined;
}
/** Viewer → tracker: asks for relays of a swarm (the master playlist URL without query). */
export interface JoinMessage {
  type: 'join';
  swarmId: string;
  region?: string | undefined;
  /** How many relays the viewer wants (1-MAX_SHORTLIST_SIZE). */
  count?: number | undefined;
}

/**
 * A viewer's evidence that a relay served bytes that are not the origin's: the segment URL and the
 * SHA-256 the origin published (or, under the audit policy, of the origin's copy) against the
 * SHA-256 of what the relay delivered. The tracker lowers the relay's health (see tracker/src/reputation.ts).
 */
export interface ReportMessage {
  type: 'report';
  relayId: string;
  reason: 'integrity';
  url: string;
  /** Lowercase hex SHA-256 of the origin's bytes. */
  expectedSha256: string;
  /** Lowercase hex SHA-256 of the relay's bytes; differs from expectedSha256. */
  receivedSha256: string;
}

/**
 * Viewer → tracker: proves the connection holds a grant's session key. `grant` is the base64 signed
 * grant; `proof` the base64 64-byte signature by grant.sessionKey over
 * trackerSessionSigningBytes(this connection's hello nonce). Sent again after every reconnect.
 */
export interface SessionMessage {
  type: 'session';
  grant: string;
  proof: string;
}

/** Viewer → tracker: asks TURN credentials for its connection to `relayId` (a relay handed to it). */
export interface TurnMessage {
  type: 'turn';
  relayId: string;
}

/** Signaling in either direction: `to` when sent to the tracker, `from` when the tracker delivers it. */
export interface SignalMessage {
  type: 'signal';
  to?: string | undefined;
  from?: string | undefined;
  /** Chosen by the viewer; identifies one peer connection between the two peers. */
  connectionId: string;
  signal: SignalPayload;
}

/**
 * Result of the reachability test the tracker ran against a relay: it opened a WebRTC connection
 * to the relay without revealing its own candidates, so only unsolicited traffic could succeed.
 */
export interface ReachabilityMessage {
  type: 'reachability';
  reachability: Reachability;
  /** `ip:port` the tracker reached the relay at, when it did. */
  address?: string | undefined;
}

/** Every message the tracker sends, discriminated by `type`. */
export type TrackerServerMessage =
  HelloMessage | RegisteredMessage | ShortlistMessage | SignalMessage | ErrorMessage | ReachabilityMessage | AssignmentsMessage | IceMessage;
/** Every message relays and viewers send the tracker, discriminated by `type`. */
export type TrackerClientMessage = RegisterMessage | HeartbeatMessage | JoinMessage | SignalMessage | ReportMessage | SessionMessage | TurnMessage;
/** Any tracker message, either direction. */
export type TrackerMessage = TrackerServerMessage | TrackerClientMessage;

function bad(message: string, field?: string): RelaycastError {
  return new RelaycastError(ErrorCode.MESSAGE_FIELD, message, field === undefined ? {} : { details: { field } });
}

type Obj = Record<string, unknown>;

function str(o: Obj, key: string, maxBytes: number, pattern?: RegExp): string {
  const v = o[key];
  if (typeof v !== 'string') throw bad(`${key} must be a string`, key);
  if (utf8Length(v) > maxBytes) throw bad(`${key} longer than ${maxBytes} bytes`, key);
  if (pattern !== undefined && !pattern.test(v)) throw bad(`${key} has an invalid format`, key);
  return v;
}

function optStr(o: Obj, key: string, maxBytes: number, pattern?: RegExp): string | undefined {
  return o[key] === undefined ? undefined : str(o, key, maxBytes, pattern);
}

function uint(o: Obj, key: string, max: number): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > max) throw bad(`${key} must be an integer in 0..${max}`, key);
  return v;
}

function peerId(o: Obj, key: string): string {
  return str(o, key, 64, PEER_ID_PATTERN);
}

function relayId(o: Obj, key: string): string {
  const v = str(o, key, 44);
  decodePublicKey(v); // throws on anything that is not a 32-byte base58 key
  return v;
}

function streams(o: Obj): string[] {
  const v = o['streams'];
  if (!Array.isArray(v) || v.length > MAX_ADVERTISED_STREAMS) throw bad(`streams must be an array of at most ${MAX_ADVERTISED_STREAMS}`, 'streams');
  return v.map((s, i) => {
    if (typeof s !== 'string' || s.length === 0 || utf8Length(s) > MAX_SWARM_ID_BYTES) throw bad(`streams[${i}] must be a non-empty string`, 'streams');
    return s;
  });
}

const ICE_URL_PATTERN = /^(stun|stuns|turn|turns):[^\s]{1,250}$/;
const MAX_ICE_SERVERS = 4;
const MAX_ICE_URLS = 4;

function iceServers(v: unknown): IceServer[] {
  if (!Array.isArray(v) || v.length > MAX_ICE_SERVERS) throw bad(`iceServers must be an array of at most ${MAX_ICE_SERVERS}`, 'iceServers');
  return v.map((e) => {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw bad('iceServers entries must be objects', 'iceServers');
    const x = e as Obj;
    const urls = x['urls'];
    if (!Array.isArray(urls) || urls.length === 0 || urls.length > MAX_ICE_URLS || !urls.every((u) => typeof u === 'string' && ICE_URL_PATTERN.test(u))) {
      throw bad(`iceServers urls must be 1-${MAX_ICE_URLS} stun:/turn: URLs`, 'iceServers');
    }
    return { urls: urls as string[], username: optStr(x, 'username', 256), credential: optStr(x, 'credential', 256) };
  });
}

const IP_PATTERN = /^[0-9a-fA-F.:]{2,45}$/;
const ADDRESS_PATTERN = /^[0-9a-fA-F.:[\]]{2,47}:\d{1,5}$/;

function natReport(v: unknown): NatReport {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad('nat must be an object', 'nat');
  const o = v as Obj;
  const kind = o['portMapping'];
  if (!PORT_MAPPING_KINDS.includes(kind as PortMappingKind)) throw bad(`nat.portMapping must be one of ${PORT_MAPPING_KINDS.join(', ')}`, 'nat');
  const report: NatReport = { portMapping: kind as PortMappingKind };
  const addr = optStr(o, 'publicAddress', 45, IP_PATTERN);
  if (addr !== undefined) report.publicAddress = addr;
  if (o['mappedPort'] !== undefined) {
    const port = uint(o, 'mappedPort', 65535);
    if (port === 0) throw bad('nat.mappedPort must be 1-65535', 'nat');
    report.mappedPort = port;
  }
  return report;
}

function optNat(o: Obj): { nat?: NatReport } {
  return o['nat'] === undefined ? {} : { nat: natReport(o['nat']) };
}

function reachability(o: Obj, key: string): Reachability {
  const v = o[key];
  if (!REACHABILITY_VALUES.includes(v as Reachability)) throw bad(`${key} must be one of ${REACHABILITY_VALUES.join(', ')}`, key);
  return v as Reachability;
}

function swarmId(o: Obj): string {
  const v = str(o, 'swarmId', MAX_SWARM_ID_BYTES);
  if (v.length === 0) throw bad('swarmId is empty', 'swarmId');
  return v;
}

function signalPayload(o: Obj): SignalPayload {
  const s = o['signal'];
  if (typeof s !== 'object' || s === null || Array.isArray(s)) throw bad('signal must be an object', 'signal');
  const p = s as Obj;
  switch (p['kind']) {
    case 'offer':
    case 'answer':
      return { kind: p['kind'], sdp: str(p, 'sdp', MAX_SDP_BYTES) };
    case 'candidate':
      return {
        kind: 'candidate',
        candidate: str(p, 'candidate', MAX_CANDIDATE_BYTES),
        sdpMid: optStr(p, 'sdpMid', 64),
      };
    case 'end-of-candidates':
      return { kind: 'end-of-candidates' };
    default:
      throw bad('signal.kind must be offer, answer, candidate or end-of-candidates', 'signal.kind');
  }
}

function parseJson(data: string | Uint8Array): Obj {
  const size = typeof data === 'string' ? utf8Length(data) : data.byteLength;
  if (size > MAX_TRACKER_MESSAGE_BYTES) {
    throw new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, `message of ${size} bytes exceeds ${MAX_TRACKER_MESSAGE_BYTES}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(typeof data === 'string' ? data : utf8Decode(data));
  } catch {
    throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'message is not valid JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'message must be a JSON object');
  }
  return parsed as Obj;
}

function unknownType(o: Obj): RelaycastError {
  const t = typeof o['type'] === 'string' ? o['type'].slice(0, 32) : typeof o['type'];
  return new RelaycastError(ErrorCode.MESSAGE_TYPE, `unknown message type: ${t}`);
}

function decodeSignal(o: Obj, direction: 'to' | 'from'): SignalMessage {
  const msg: SignalMessage = {
    type: 'signal',
    connectionId: str(o, 'connectionId', 64, CONNECTION_ID_PATTERN),
    signal: signalPayload(o),
  };
  const v = o[direction];
  // Relays are addressed by base58 key and viewers by tracker-issued id; both fit PEER_ID_PATTERN.
  if (typeof v !== 'string' || !PEER_ID_PATTERN.test(v)) throw bad(`${direction} must be a peer id`, direction);
  msg[direction] = v;
  return msg;
}

function decodeJoin(o: Obj): JoinMessage {
  return {
    type: 'join',
    swarmId: swarmId(o),
    region: optStr(o, 'region', 32, REGION_PATTERN),
    count: o['count'] === undefined ? undefined : Math.max(1, uint(o, 'count', MAX_SHORTLIST_SIZE)),
  };
}

const PREWARM_KEYS = ['swarmId', 'region', 'count'] as const;

/**
 * Reads a pre-warm request from a tracker WebSocket URL's query (with or without the leading `?`).
 * Undefined when it names no `swarmId` (relays, and viewers that do not pre-warm); other parameters
 * are ignored. Otherwise the fields are checked exactly as a `join` message's (RC_ERR_MESSAGE_FIELD);
 * `count` must be a decimal integer; a parameter given twice is refused; a query longer than
 * MAX_PREWARM_QUERY_BYTES is RC_ERR_MESSAGE_TOO_LARGE. Returns the `join` it stands for.
 */
export function decodePrewarmQuery(query: string): JoinMessage | undefined {
  const q = query.startsWith('?') ? query.slice(1) : query;
  if (utf8Length(q) > MAX_PREWARM_QUERY_BYTES) {
    throw new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, `pre-warm query of ${utf8Length(q)} bytes exceeds ${MAX_PREWARM_QUERY_BYTES}`);
  }
  const params = new URLSearchParams(q);
  if (!params.has('swarmId')) return undefined;
  const o: Obj = {};
  for (const key of PREWARM_KEYS) {
    const values = params.getAll(key);
    if (values.length > 1) throw bad(`${key} is given more than once`, key);
    const v = values[0];
    if (v === undefined) continue;
    // A count that is not plain decimal stays a string, which the join rules refuse.
    o[key] = key === 'count' && /^(0|[1-9][0-9]{0,6})$/.test(v) ? Number(v) : v;
  }
  return decodeJoin(o);
}

/**
 * The query (without `?`) that asks a tracker to pre-warm: `swarmId`, then `region` and `count` when
 * given, form-encoded. It checks nothing: the tracker judges (decodePrewarmQuery) and answers a
 * refusal with an `error` (`ref: "prewarm"`) after its `hello`.
 */
export function encodePrewarmQuery(request: PrewarmRequest): string {
  const params = new URLSearchParams();
  params.set('swarmId', request.swarmId);
  if (request.region !== undefined) params.set('region', request.region);
  if (request.count !== undefined) params.set('count', String(request.count));
  return params.toString();
}

function shortlistFields(o: Obj): HelloShortlist {
  const relays = o['relays'];
  if (!Array.isArray(relays) || relays.length > MAX_SHORTLIST_SIZE) throw bad('relays must be an array', 'relays');
  return {
    swarmId: swarmId(o),
    relays: relays.map((r) => {
      if (typeof r !== 'object' || r === null) throw bad('relay entry must be an object', 'relays');
      const e = r as Obj;
      const d: RelayDescriptor = { relayId: relayId(e, 'relayId'), region: str(e, 'region', 32, REGION_PATTERN) };
      if (e['reachability'] !== undefined) d.reachability = reachability(e, 'reachability');
      if (e['assignment'] !== undefined) d.assignment = assignmentField(e, 'assignment');
      return d;
    }),
  };
}

/** Decodes a message a client sends to the tracker. */
export function decodeTrackerClientMessage(data: string | Uint8Array): TrackerClientMessage {
  const o = parseJson(data);
  switch (o['type']) {
    case 'register':
      return {
        type: 'register',
        relayId: relayId(o, 'relayId'),
        signature: signature(o),
        capacity: uint(o, 'capacity', 1_000_000),
        load: uint(o, 'load', 1_000_000),
        region: str(o, 'region', 32, REGION_PATTERN),
        pricePerGiB: priceU64(o, 'pricePerGiB'),
        streams: streams(o),
        ...optNat(o),
      };
    case 'heartbeat':
      return { type: 'heartbeat', capacity: uint(o, 'capacity', 1_000_000), load: uint(o, 'load', 1_000_000), streams: streams(o), ...optNat(o) };
    case 'join':
      return decodeJoin(o);
    case 'signal':
      return decodeSignal(o, 'to');
    case 'session':
      return {
        type: 'session',
        grant: base64Field(o, 'grant', 1, MAX_SIGNED_GRANT_BYTES),
        proof: base64Field(o, 'proof', ED25519_SIGNATURE_BYTES, ED25519_SIGNATURE_BYTES),
      };
    case 'turn':
      return { type: 'turn', relayId: relayId(o, 'relayId') };
    case 'report': {
      if (o['reason'] !== 'integrity') throw bad('reason must be integrity', 'reason');
      const expectedSha256 = str(o, 'expectedSha256', 64, HEX_SHA256);
      const receivedSha256 = str(o, 'receivedSha256', 64, HEX_SHA256);
      if (expectedSha256 === receivedSha256) throw bad('a report needs two different digests', 'receivedSha256');
      return {
        type: 'report',
        relayId: relayId(o, 'relayId'),
        reason: 'integrity',
        url: str(o, 'url', MAX_REPORT_URL_BYTES, /^https?:\/\//),
        expectedSha256,
        receivedSha256,
      };
    }
    default:
      throw unknownType(o);
  }
}

const MAX_U64 = 2n ** 64n - 1n;

/** A u64 as a canonical decimal string (no sign, no leading zeros, at most 2^64 - 1). */
function priceU64(o: Obj, key: string): string {
  const v = str(o, key, 20, /^(0|[1-9][0-9]{0,19})$/);
  if (BigInt(v) > MAX_U64) throw bad(`${key} exceeds the u64 range`, key);
  return v;
}

/** A base64 field whose bytes must be `min`-`max` long. */
function base64Field(o: Obj, key: string, min: number, max: number): string {
  const v = str(o, key, Math.ceil(max / 3) * 4);
  const bytes = fromBase64(v);
  if (bytes === undefined || bytes.byteLength < min || bytes.byteLength > max) {
    throw bad(min === max ? `${key} must be ${min} bytes of base64` : `${key} must be ${min}-${max} bytes of base64`, key);
  }
  return v;
}

function assignmentField(o: Obj, key: string): string {
  return base64Field(o, key, SIGNED_ASSIGNMENT_BYTES, SIGNED_ASSIGNMENT_BYTES);
}

function signature(o: Obj): string {
  const v = str(o, 'signature', 128);
  const bytes = fromBase64(v);
  if (bytes === undefined || bytes.byteLength !== ED25519_SIGNATURE_BYTES) throw bad('signature must be 64 bytes of base64', 'signature');
  return v;
}

/** Decodes a message the tracker sends to a client. */
export function decodeTrackerServerMessage(data: string | Uint8Array): TrackerServerMessage {
  const o = parseJson(data);
  switch (o['type']) {
    case 'hello': {
      const nonce = str(o, 'nonce', 64);
      const bytes = fromBase64(nonce);
      if (bytes === undefined || bytes.byteLength !== CHALLENGE_NONCE_BYTES) throw bad('nonce must be 32 bytes of base64', 'nonce');
      const hello: HelloMessage = { type: 'hello', peerId: peerId(o, 'peerId'), nonce, heartbeatIntervalMs: uint(o, 'heartbeatIntervalMs', 3_600_000) };
      if (o['iceServers'] !== undefined) hello.iceServers = iceServers(o['iceServers']);
      if (o['shortlist'] !== undefined) {
        const sl = o['shortlist'];
        if (typeof sl !== 'object' || sl === null || Array.isArray(sl)) throw bad('shortlist must be an object', 'shortlist');
        hello.shortlist = shortlistFields(sl as Obj);
      }
      return hello;
    }
    case 'registered':
      return { type: 'registered', relayId: relayId(o, 'relayId'), trackerKey: relayId(o, 'trackerKey') };
    case 'assignments': {
      const list = o['assignments'];
      if (!Array.isArray(list) || list.length > MAX_ASSIGNMENTS_PER_MESSAGE) {
        throw bad(`assignments must be an array of at most ${MAX_ASSIGNMENTS_PER_MESSAGE}`, 'assignments');
      }
      return {
        type: 'assignments',
        assignments: list.map((a) => {
          if (typeof a !== 'object' || a === null || Array.isArray(a)) throw bad('assignments entries must be objects', 'assignments');
          const e = a as Obj;
          return { relayId: relayId(e, 'relayId'), assignment: assignmentField(e, 'assignment') };
        }),
      };
    }
    case 'ice':
      return { type: 'ice', relayId: relayId(o, 'relayId'), iceServers: iceServers(o['iceServers']) };
    case 'shortlist':
      return { type: 'shortlist', ...shortlistFields(o) };
    case 'signal':
      return decodeSignal(o, 'from');
    case 'reachability':
      return { type: 'reachability', reachability: reachability(o, 'reachability'), address: optStr(o, 'address', 53, ADDRESS_PATTERN) };
    case 'error':
      return {
        type: 'error',
        code: str(o, 'code', MAX_ERROR_CODE_BYTES, ERROR_CODE_PATTERN),
        message: str(o, 'message', MAX_ERROR_MESSAGE_BYTES),
        ref: optStr(o, 'ref', 32),
      };
    default:
      throw unknownType(o);
  }
}

/** Serialises a tracker message; throws RC_ERR_MESSAGE_TOO_LARGE rather than sending what peers would refuse. */
export function encodeTrackerMessage(msg: TrackerMessage): string {
  const text = JSON.stringify(msg);
  if (utf8Length(text) > MAX_TRACKER_MESSAGE_BYTES) {
    throw new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, `message of ${utf8Length(text)} bytes exceeds ${MAX_TRACKER_MESSAGE_BYTES}`);
  }
  return text;
}

/** The exact bytes a relay signs to register: domain separator then the tracker's raw nonce. */
export function registrationSigningBytes(nonce: Uint8Array): Uint8Array {
  const domain = utf8Encode(REGISTER_SIGNING_DOMAIN);
  const out = new Uint8Array(domain.byteLength + nonce.byteLength);
  out.set(domain, 0);
  out.set(nonce, domain.byteLength);
  return out;
}

/**
 * The exact bytes a viewer's session key signs in a `session` message: domain separator then the
 * connection's raw hello nonce (32 bytes), so the proof is good for this connection only.
 */
export function trackerSessionSigningBytes(nonce: Uint8Array): Uint8Array<ArrayBuffer> {
  if (!(nonce instanceof Uint8Array) || nonce.byteLength !== CHALLENGE_NONCE_BYTES) throw bad(`nonce must be ${CHALLENGE_NONCE_BYTES} bytes`, 'nonce');
  const domain = utf8Encode(TRACKER_SESSION_SIGNING_DOMAIN);
  const out = new Uint8Array(domain.byteLength + nonce.byteLength);
  out.set(domain, 0);
  out.set(nonce, domain.byteLength);
  return out;
}

/**
 * Swarm id of a stream: its master playlist URL without query or fragment.
 * Throws RC_ERR_CONFIG_INVALID when the URL is not absolute and parseable.
 */
export function swarmIdFromUrl(masterPlaylistUrl: string): string {
  let u: URL;
  try {
    u = new URL(masterPlaylistUrl);
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'master playlist URL must be an absolute URL', { cause: err });
  }
  u.search = '';
  u.hash = '';
  return u.toString();
}
