import { utf8Decode, utf8Encode } from './bytes.js';
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
import { SIGNED_ASSIGNMENT_BYTES } from './assignments.js';
import { ErrorCode, RelaycastError } from './errors.js';
import { MAX_SIGNED_GRANT_BYTES } from './receipts.js';

/**
 * Relay data-channel frames.
 *
 * Every frame is `u32 bodyLength | u8 version | u8 type | u32 requestId | payload`, big-endian.
 * The length prefix makes frames self-delimiting, so several may share one data-channel message
 * and a reader never depends on in-band markers. Offsets and sizes are u64 on the wire but must
 * fit a JavaScript safe integer. The full layout is in docs/PROTOCOL.md.
 */
export const FrameType = {
  REQUEST: 1,
  RESPONSE: 2,
  DATA: 3,
  END: 4,
  ABSENT: 5,
  ERROR: 6,
  CANCEL: 7,
  // 8 was GRANT (a grant presented without proof of the session key, issue 14 finding 6): retired,
  // decoding it is RC_ERR_FRAME_TYPE. The number is never reused.
  /** Viewer → relay, requestId 0: a signed running-total receipt (receipts.ts), only after BIND. */
  RECEIPT: 9,
  /** Relay → viewer, requestId 0: 32 random bytes, sent by a paid relay first thing on a new channel. */
  CHALLENGE: 10,
  /** Viewer → relay, requestId 0: grant + assignment + the session key's signature over the challenge. */
  BIND: 11,
} as const;
/** A frame's type byte (the values of the FrameType object). */
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

/** Half-open byte range `[start, end)`; `end` undefined means "to the end of the resource". */
export interface ByteRange {
  start: number;
  end?: number | undefined;
}

/** Viewer → relay: asks for a segment, or a byte range of it. */
export interface RequestFrame {
  type: typeof FrameType.REQUEST;
  requestId: number;
  /** Absolute segment URL; must fall under one of the relay's allowed origins. */
  url: string;
  range?: ByteRange | undefined;
  /** Media playlist the segment belongs to: lets the relay follow live playlists viewers watch. */
  playlistUrl?: string | undefined;
}

/** Relay → viewer: the request is served; DATA frames follow, then END. */
export interface ResponseFrame {
  type: typeof FrameType.RESPONSE;
  requestId: number;
  /** Offset in the resource of the first DATA byte (equals the requested range start). */
  offset: number;
  /** Size of the whole resource when known. */
  totalBytes?: number | undefined;
  /** SHA-256 of the whole resource when known. */
  digest?: Uint8Array | undefined;
}

/** Relay → viewer: the next bytes of a served request, in order (at most MAX_CHUNK_BYTES). */
export interface DataFrame {
  type: typeof FrameType.DATA;
  requestId: number;
  chunk: Uint8Array;
}

/** Relay → viewer: a served request is complete. */
export interface EndFrame {
  type: typeof FrameType.END;
  requestId: number;
  /** Number of DATA bytes sent for this request; the receiver checks it against what arrived. */
  bytesSent: number;
}

/** Relay → viewer: the relay does not have the segment; the viewer asks the origin. */
export interface AbsentFrame {
  type: typeof FrameType.ABSENT;
  requestId: number;
}

/** Relay → viewer: a request (or, with requestId 0, the channel) failed; `code` is an `RC_ERR_*` code. */
export interface ErrorFrame {
  type: typeof FrameType.ERROR;
  /** 0 when the error concerns the channel rather than one request. */
  requestId: number;
  code: string;
  message: string;
}

/** Viewer → relay: stop sending a request's bytes. */
export interface CancelFrame {
  type: typeof FrameType.CANCEL;
  requestId: number;
}

/** RECEIPT carries its signed bytes opaquely; receipts.ts decodes and checks them. */
export interface ReceiptFrame {
  type: typeof FrameType.RECEIPT;
  requestId: number;
  signedReceipt: Uint8Array;
}

/** Relay → viewer: what a paid relay sends first on a new channel; the viewer answers with BIND. */
export interface ChallengeFrame {
  type: typeof FrameType.CHALLENGE;
  requestId: 0;
  /** BIND_CHALLENGE_BYTES random bytes, fresh per channel. */
  challenge: Uint8Array;
}

/**
 * Binds a channel to a session. Payload:
 *
 * ```
 * u16 grantLen | signedGrant | u16 assignmentLen (0 or 169) | signedAssignment | proof 64
 * ```
 *
 * Grant and assignment travel opaquely (receipts.ts, assignments.ts
 * decode and check them); `proof` is the session key's signature over
 * bindSigningBytes(challenge, relayKey), which shows the key holder controls this very channel.
 */
export interface BindFrame {
  type: typeof FrameType.BIND;
  requestId: 0;
  signedGrant: Uint8Array;
  /** Absent when the viewer has none yet (the relay then refuses to bind: RC_ERR_ASSIGNMENT_MISSING). */
  signedAssignment?: Uint8Array | undefined;
  proof: Uint8Array;
}

/** Any relay data-channel frame, discriminated by `type`. */
export type RelayFrame =
  ChallengeFrame | BindFrame | ReceiptFrame | RequestFrame | ResponseFrame | DataFrame | EndFrame | AbsentFrame | ErrorFrame | CancelFrame;

const MAX_U32 = 0xffff_ffff;
const REQUEST_HAS_RANGE = 1;
const REQUEST_HAS_RANGE_END = 2;
const REQUEST_HAS_PLAYLIST = 4;
const RESPONSE_HAS_TOTAL = 1;
const RESPONSE_HAS_DIGEST = 2;
const ERROR_CODE_PATTERN = /^[A-Z0-9_]+$/;
/** RECEIPT payloads: a signed receipt is SIGNED_RECEIPT_BYTES (177); 1 KiB bounds it with room for a later version. */
const MAX_PAYMENT_PAYLOAD_BYTES = 1024;
/** Size of a CHALLENGE's random payload. */
export const BIND_CHALLENGE_BYTES = 32;
/** Signed by the session key in a BIND proof, so the signature can never be replayed as anything else. */
export const BIND_SIGNING_DOMAIN = 'relaycast-bind-v1\0';
const BIND_PROOF_BYTES = 64;
/** Largest BIND payload: both length prefixes, the largest grant, an assignment and the proof. */
export const MAX_BIND_PAYLOAD_BYTES = 2 + MAX_SIGNED_GRANT_BYTES + 2 + SIGNED_ASSIGNMENT_BYTES + BIND_PROOF_BYTES;

/**
 * What the session key signs in BIND: `"relaycast-bind-v1\0" || challenge(32) || relay(32)`. The
 * challenge ties the proof to one channel, the relay key to one relay (a relay cannot replay a proof
 * it received to another relay that happened to pick the same challenge).
 */
export function bindSigningBytes(challenge: Uint8Array, relayKey: Uint8Array): Uint8Array<ArrayBuffer> {
  if (!(challenge instanceof Uint8Array) || challenge.byteLength !== BIND_CHALLENGE_BYTES) throw fieldError(`challenge must be ${BIND_CHALLENGE_BYTES} bytes`);
  if (!(relayKey instanceof Uint8Array) || relayKey.byteLength !== 32) throw fieldError('relay key must be 32 bytes');
  const domain = utf8Encode(BIND_SIGNING_DOMAIN);
  const out = new Uint8Array(domain.byteLength + BIND_CHALLENGE_BYTES + 32);
  out.set(domain, 0);
  out.set(challenge, domain.byteLength);
  out.set(relayKey, domain.byteLength + BIND_CHALLENGE_BYTES);
  return out;
}

function fieldError(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.FRAME_FIELD, message);
}

function checkRequestId(id: number): void {
  if (!Number.isInteger(id) || id < 0 || id > MAX_U32) throw fieldError('requestId must be a u32');
}

function checkSafeUint(value: number, name: string): void {
  if (!Number.isSafeInteger(value) || value < 0) throw fieldError(`${name} must be a non-negative safe integer`);
}

function checkUrl(url: string, name: string): Uint8Array {
  const bytes = utf8Encode(url);
  if (bytes.byteLength === 0 || bytes.byteLength > MAX_URL_BYTES) {
    throw fieldError(`${name} must be 1-${MAX_URL_BYTES} bytes`);
  }
  return bytes;
}

/** Grows a frame body without reallocating: sizes are computed up front by each encoder. */
class FrameWriter {
  readonly bytes: Uint8Array<ArrayBuffer>;
  private readonly view: DataView;
  private offset = 0;

  constructor(type: FrameType, requestId: number, payloadBytes: number) {
    checkRequestId(requestId);
    const total = FRAME_HEADER_BYTES + payloadBytes;
    if (total > MAX_FRAME_BYTES) {
      throw new RelaycastError(ErrorCode.FRAME_TOO_LARGE, `frame of ${total} bytes exceeds ${MAX_FRAME_BYTES}`);
    }
    this.bytes = new Uint8Array(total);
    this.view = new DataView(this.bytes.buffer);
    this.u32(total - 4);
    this.u8(FRAME_VERSION);
    this.u8(type);
    this.u32(requestId);
  }

  u8(v: number): void {
    this.view.setUint8(this.offset, v);
    this.offset += 1;
  }

  u16(v: number): void {
    this.view.setUint16(this.offset, v);
    this.offset += 2;
  }

  u32(v: number): void {
    this.view.setUint32(this.offset, v);
    this.offset += 4;
  }

  u64(v: number): void {
    this.view.setBigUint64(this.offset, BigInt(v));
    this.offset += 8;
  }

  raw(b: Uint8Array): void {
    this.bytes.set(b, this.offset);
    this.offset += b.byteLength;
  }

  shortString(b: Uint8Array): void {
    this.u16(b.byteLength);
    this.raw(b);
  }
}

/** Encodes one frame. Throws RC_ERR_FRAME_FIELD / RC_ERR_FRAME_TOO_LARGE on values that would not decode. */
export function encodeFrame(frame: RelayFrame): Uint8Array<ArrayBuffer> {
  switch (frame.type) {
    case FrameType.REQUEST: {
      const url = checkUrl(frame.url, 'url');
      const playlist = frame.playlistUrl === undefined ? undefined : checkUrl(frame.playlistUrl, 'playlistUrl');
      let flags = 0;
      let size = 1 + 2 + url.byteLength;
      if (frame.range !== undefined) {
        checkSafeUint(frame.range.start, 'range.start');
        flags |= REQUEST_HAS_RANGE;
        size += 8;
        if (frame.range.end !== undefined) {
          checkSafeUint(frame.range.end, 'range.end');
          if (frame.range.end <= frame.range.start) throw fieldError('range.end must exceed range.start');
          flags |= REQUEST_HAS_RANGE_END;
          size += 8;
        }
      }
      if (playlist !== undefined) {
        flags |= REQUEST_HAS_PLAYLIST;
        size += 2 + playlist.byteLength;
      }
      const w = new FrameWriter(frame.type, frame.requestId, size);
      w.u8(flags);
      w.shortString(url);
      if (frame.range !== undefined) {
        w.u64(frame.range.start);
        if (frame.range.end !== undefined) w.u64(frame.range.end);
      }
      if (playlist !== undefined) w.shortString(playlist);
      return w.bytes;
    }
    case FrameType.RESPONSE: {
      checkSafeUint(frame.offset, 'offset');
      let flags = 0;
      let size = 1 + 8;
      if (frame.totalBytes !== undefined) {
        checkSafeUint(frame.totalBytes, 'totalBytes');
        if (frame.offset > frame.totalBytes) throw fieldError('offset beyond totalBytes');
        flags |= RESPONSE_HAS_TOTAL;
        size += 8;
      }
      if (frame.digest !== undefined) {
        if (frame.digest.byteLength !== SHA256_BYTES) throw fieldError('digest must be 32 bytes');
        flags |= RESPONSE_HAS_DIGEST;
        size += SHA256_BYTES;
      }
      const w = new FrameWriter(frame.type, frame.requestId, size);
      w.u8(flags);
      w.u64(frame.offset);
      if (frame.totalBytes !== undefined) w.u64(frame.totalBytes);
      if (frame.digest !== undefined) w.raw(frame.digest);
      return w.bytes;
    }
    case FrameType.DATA: {
      if (frame.chunk.byteLength === 0 || frame.chunk.byteLength > MAX_CHUNK_BYTES) {
        throw fieldError(`data chunk must be 1-${MAX_CHUNK_BYTES} bytes`);
      }
      const w = new FrameWriter(frame.type, frame.requestId, frame.chunk.byteLength);
      w.raw(frame.chunk);
      return w.bytes;
    }
    case FrameType.END: {
      checkSafeUint(frame.bytesSent, 'bytesSent');
      const w = new FrameWriter(frame.type, frame.requestId, 8);
      w.u64(frame.bytesSent);
      return w.bytes;
    }
    case FrameType.ABSENT:
    case FrameType.CANCEL:
      return new FrameWriter(frame.type, frame.requestId, 0).bytes;
    case FrameType.RECEIPT: {
      const body = frame.signedReceipt;
      if (!(body instanceof Uint8Array) || body.byteLength === 0 || body.byteLength > MAX_PAYMENT_PAYLOAD_BYTES) {
        throw fieldError(`payment payload must be 1-${MAX_PAYMENT_PAYLOAD_BYTES} bytes`);
      }
      const w = new FrameWriter(frame.type, frame.requestId, body.byteLength);
      w.raw(body);
      return w.bytes;
    }
    case FrameType.CHALLENGE: {
      if (frame.requestId !== 0) throw fieldError('CHALLENGE requestId must be 0');
      if (!(frame.challenge instanceof Uint8Array) || frame.challenge.byteLength !== BIND_CHALLENGE_BYTES)
        throw fieldError(`challenge must be ${BIND_CHALLENGE_BYTES} bytes`);
      const w = new FrameWriter(frame.type, 0, BIND_CHALLENGE_BYTES);
      w.raw(frame.challenge);
      return w.bytes;
    }
    case FrameType.BIND: {
      if (frame.requestId !== 0) throw fieldError('BIND requestId must be 0');
      const grant = frame.signedGrant;
      if (!(grant instanceof Uint8Array) || grant.byteLength === 0 || grant.byteLength > MAX_SIGNED_GRANT_BYTES) {
        throw fieldError(`signedGrant must be 1-${MAX_SIGNED_GRANT_BYTES} bytes`);
      }
      const assignment = frame.signedAssignment;
      if (assignment !== undefined && (!(assignment instanceof Uint8Array) || assignment.byteLength !== SIGNED_ASSIGNMENT_BYTES)) {
        throw fieldError(`signedAssignment must be ${SIGNED_ASSIGNMENT_BYTES} bytes`);
      }
      if (!(frame.proof instanceof Uint8Array) || frame.proof.byteLength !== BIND_PROOF_BYTES) throw fieldError(`proof must be ${BIND_PROOF_BYTES} bytes`);
      const assignmentBytes = assignment?.byteLength ?? 0;
      const w = new FrameWriter(frame.type, 0, 2 + grant.byteLength + 2 + assignmentBytes + BIND_PROOF_BYTES);
      w.u16(grant.byteLength);
      w.raw(grant);
      w.u16(assignmentBytes);
      if (assignment !== undefined) w.raw(assignment);
      w.raw(frame.proof);
      return w.bytes;
    }
    case FrameType.ERROR: {
      const code = utf8Encode(frame.code);
      if (code.byteLength === 0 || code.byteLength > MAX_ERROR_CODE_BYTES || !ERROR_CODE_PATTERN.test(frame.code)) {
        throw fieldError('error code must be 1-64 characters of [A-Z0-9_]');
      }
      // Messages are for humans: truncate rather than refuse, so an error can always be reported.
      let message = utf8Encode(frame.message);
      if (message.byteLength > MAX_ERROR_MESSAGE_BYTES) {
        message = utf8Encode(truncateUtf8(frame.message, MAX_ERROR_MESSAGE_BYTES));
      }
      const w = new FrameWriter(frame.type, frame.requestId, 2 + code.byteLength + 2 + message.byteLength);
      w.shortString(code);
      w.shortString(message);
      return w.bytes;
    }
    default:
      throw new RelaycastError(ErrorCode.FRAME_TYPE, 'unknown frame type');
  }
}

function truncateUtf8(text: string, maxBytes: number): string {
  let out = text.slice(0, maxBytes);
  // Never end on the first half of a surrogate pair: it would be sent as U+FFFD.
  const dropsDanglingHalf = (s: string): boolean => {
    const last = s.charCodeAt(s.length - 1);
    return last >= 0xd800 && last <= 0xdbff;
  };
  while (out.length > 0 && (utf8Encode(out).byteLength > maxBytes || dropsDanglingHalf(out))) out = out.slice(0, -1);
  return out;
}

/** Bounds-checked reader over one frame body; every read past the end is RC_ERR_FRAME_TRUNCATED. */
class FrameReader {
  private readonly view: DataView;
  offset: number;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.offset = start;
  }

  private need(n: number): void {
    if (this.offset + n > this.end) throw new RelaycastError(ErrorCode.FRAME_TRUNCATED, 'frame ends inside a field');
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }

  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.offset);
    this.offset += 2;
    return v;
  }

  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.offset);
    this.offset += 4;
    return v;
  }

  u64(name: string): number {
    this.need(8);
    const v = this.view.getBigUint64(this.offset);
    this.offset += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw fieldError(`${name} exceeds the safe integer range`);
    return Number(v);
  }

  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.slice(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  string(maxBytes: number, name: string): string {
    const len = this.u16();
    if (len > maxBytes) throw fieldError(`${name} longer than ${maxBytes} bytes`);
    const raw = this.raw(len);
    try {
      return utf8Decode(raw);
    } catch {
      throw fieldError(`${name} is not valid UTF-8`);
    }
  }

  rest(): Uint8Array {
    return this.raw(this.end - this.offset);
  }

  finish(): void {
    if (this.offset !== this.end) throw fieldError('trailing bytes after frame payload');
  }
}

/**
 * Decodes the frame that starts at `offset` of `bytes` and returns it with the offset just past it.
 * Validates every field; throws a RelaycastError with an RC_ERR_FRAME_* code on any defect.
 */
export function decodeFrameAt(bytes: Uint8Array, offset = 0): { frame: RelayFrame; next: number } {
  if (!Number.isSafeInteger(offset) || offset < 0) throw fieldError('offset must be a non-negative integer');
  if (bytes.byteLength - offset < 4) throw new RelaycastError(ErrorCode.FRAME_TRUNCATED, 'missing length prefix');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bodyLength = view.getUint32(offset);
  if (bodyLength + 4 > MAX_FRAME_BYTES) {
    throw new RelaycastError(ErrorCode.FRAME_TOO_LARGE, `frame of ${bodyLength + 4} bytes exceeds ${MAX_FRAME_BYTES}`);
  }
  if (bodyLength < FRAME_HEADER_BYTES - 4) throw new RelaycastError(ErrorCode.FRAME_TRUNCATED, 'frame shorter than its header');
  const end = offset + 4 + bodyLength;
  if (end > bytes.byteLength) throw new RelaycastError(ErrorCode.FRAME_TRUNCATED, 'frame shorter than its length prefix');
  const r = new FrameReader(bytes, offset + 4, end);
  const version = r.u8();
  if (version !== FRAME_VERSION) {
    throw new RelaycastError(ErrorCode.FRAME_VERSION, `unsupported frame version ${version}`, { details: { version } });
  }
  const type = r.u8();
  const requestId = r.u32();
  let frame: RelayFrame;
  switch (type) {
    case FrameType.REQUEST: {
      const flags = r.u8();
      if ((flags & ~(REQUEST_HAS_RANGE | REQUEST_HAS_RANGE_END | REQUEST_HAS_PLAYLIST)) !== 0) throw fieldError('unknown request flags');
      if ((flags & REQUEST_HAS_RANGE_END) !== 0 && (flags & REQUEST_HAS_RANGE) === 0) throw fieldError('range end without start');
      const url = r.string(MAX_URL_BYTES, 'url');
      if (url.length === 0) throw fieldError('url is empty');
      let range: ByteRange | undefined;
      if ((flags & REQUEST_HAS_RANGE) !== 0) {
        const start = r.u64('range.start');
        range = { start };
        if ((flags & REQUEST_HAS_RANGE_END) !== 0) {
          const rangeEnd = r.u64('range.end');
          if (rangeEnd <= start) throw fieldError('range.end must exceed range.start');
          range.end = rangeEnd;
        }
      }
      let playlistUrl: string | undefined;
      if ((flags & REQUEST_HAS_PLAYLIST) !== 0) {
        playlistUrl = r.string(MAX_URL_BYTES, 'playlistUrl');
        if (playlistUrl.length === 0) throw fieldError('playlistUrl is empty');
      }
      frame = { type, requestId, url, range, playlistUrl };
      break;
    }
    case FrameType.RESPONSE: {
      const flags = r.u8();
      if ((flags & ~(RESPONSE_HAS_TOTAL | RESPONSE_HAS_DIGEST)) !== 0) throw fieldError('unknown response flags');
      const offsetField = r.u64('offset');
      const totalBytes = (flags & RESPONSE_HAS_TOTAL) !== 0 ? r.u64('totalBytes') : undefined;
      if (totalBytes !== undefined && offsetField > totalBytes) throw fieldError('offset beyond totalBytes');
      const digest = (flags & RESPONSE_HAS_DIGEST) !== 0 ? r.raw(SHA256_BYTES) : undefined;
      frame = { type, requestId, offset: offsetField, totalBytes, digest };
      break;
    }
    case FrameType.DATA: {
      const chunk = r.rest();
      if (chunk.byteLength === 0) throw fieldError('empty data chunk');
      frame = { type, requestId, chunk };
      break;
    }
    case FrameType.END:
      frame = { type, requestId, bytesSent: r.u64('bytesSent') };
      break;
    case FrameType.ABSENT:
    case FrameType.CANCEL:
      frame = { type, requestId };
      break;
    case FrameType.RECEIPT: {
      const body = r.rest();
      if (body.byteLength === 0 || body.byteLength > MAX_PAYMENT_PAYLOAD_BYTES)
        throw fieldError(`payment payload must be 1-${MAX_PAYMENT_PAYLOAD_BYTES} bytes`);
      frame = { type, requestId, signedReceipt: body };
      break;
    }
    case FrameType.CHALLENGE: {
      if (requestId !== 0) throw fieldError('CHALLENGE requestId must be 0');
      const challenge = r.raw(BIND_CHALLENGE_BYTES);
      frame = { type, requestId: 0, challenge };
      break;
    }
    case FrameType.BIND: {
      if (requestId !== 0) throw fieldError('BIND requestId must be 0');
      const grantLen = r.u16();
      if (grantLen === 0 || grantLen > MAX_SIGNED_GRANT_BYTES) throw fieldError(`signedGrant must be 1-${MAX_SIGNED_GRANT_BYTES} bytes`);
      const signedGrant = r.raw(grantLen);
      const assignmentLen = r.u16();
      if (assignmentLen !== 0 && assignmentLen !== SIGNED_ASSIGNMENT_BYTES) throw fieldError(`signedAssignment must be 0 or ${SIGNED_ASSIGNMENT_BYTES} bytes`);
      const signedAssignment = assignmentLen === 0 ? undefined : r.raw(assignmentLen);
      const proof = r.raw(BIND_PROOF_BYTES);
      frame = { type, requestId: 0, signedGrant, signedAssignment, proof };
      break;
    }
    case FrameType.ERROR: {
      const code = r.string(MAX_ERROR_CODE_BYTES, 'code');
      if (!ERROR_CODE_PATTERN.test(code)) throw fieldError('error code must be [A-Z0-9_]+');
      const message = r.string(MAX_ERROR_MESSAGE_BYTES, 'message');
      frame = { type, requestId, code, message };
      break;
    }
    default:
      throw new RelaycastError(ErrorCode.FRAME_TYPE, `unknown frame type ${type}`, { details: { type } });
  }
  r.finish();
  return { frame, next: end };
}

/** Decodes a buffer that must hold exactly one frame. */
export function decodeFrame(bytes: Uint8Array): RelayFrame {
  const { frame, next } = decodeFrameAt(bytes, 0);
  if (next !== bytes.byteLength) throw fieldError('trailing bytes after frame');
  return frame;
}

/** Decodes a data-channel message holding one or more whole frames. */
export function decodeFrames(bytes: Uint8Array, maxFrames = 64): RelayFrame[] {
  const frames: RelayFrame[] = [];
  let offset = 0;
  while (offset < bytes.byteLength) {
    if (frames.length >= maxFrames) throw new RelaycastError(ErrorCode.FRAME_TOO_LARGE, 'too many frames in one message');
    const { frame, next } = decodeFrameAt(bytes, offset);
    frames.push(frame);
    offset = next;
  }
  if (frames.length === 0) throw new RelaycastError(ErrorCode.FRAME_TRUNCATED, 'empty message');
  return frames;
}

/**
 * Builds a DATA frame around `chunk` without an intermediate copy of the chunk into a frame object;
 * the relay's hot path calls this for every 64 KiB it sends.
 */
export function encodeDataFrame(requestId: number, chunk: Uint8Array): Uint8Array<ArrayBuffer> {
  return encodeFrame({ type: FrameType.DATA, requestId, chunk });
}
