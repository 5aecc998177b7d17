import { bytesEqual, utf8Encode } from './bytes.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './constants.js';
import { ErrorCode, RelaycastError } from './errors.js';
import type { SessionGrant } from './receipts.js';

/**
 * Assignments: the tracker's signed statement "I sent session `sessionKey` to relay `relay` at
 * `issuedAtMs`". A relay binds a paid channel only with one naming itself and the channel's session
 * key, and the settler pays a receipt only with one, so a relay is paid only for sessions the
 * tracker actually sent to it (issue 14, finding 1). Layout (big-endian, docs/PAYMENTS.md):
 *
 *   version u8 = 1 | tracker 32 | sessionKey 32 | relay 32 | issuedAtMs u64 | sig 64   (169 bytes)
 *
 * The signature is by `tracker` over ASSIGNMENT_SIGNING_DOMAIN || body (everything before sig).
 */
export const ASSIGNMENT_VERSION = 1;
/** Prefix of the bytes a tracker signs for an assignment, so the signature cannot be replayed as anything else. */
export const ASSIGNMENT_SIGNING_DOMAIN = 'relaycast-assignment-v1\0';
const ASSIGNMENT_BODY_BYTES = 1 + 32 + 32 + 32 + 8;
/** Size of an encoded signed assignment (169 bytes): body and signature. */
export const SIGNED_ASSIGNMENT_BYTES = ASSIGNMENT_BODY_BYTES + ED25519_SIGNATURE_BYTES;
/**
 * How long before a grant's issue time an assignment may be dated: the tracker may have assigned
 * relays to the connection before the viewer fetched its grant, and clocks differ a little.
 */
export const ASSIGNMENT_EARLY_SLACK_MS = 5 * 60_000;

/**
 * A tracker's statement that it handed `relay` to the viewer session `sessionKey`: what lets a paid
 * relay accept that session's BIND, and the settler credit the relay's receipts of it.
 */
export interface Assignment {
  version: typeof ASSIGNMENT_VERSION;
  /** Ed25519 public key of the tracker that signs the assignment. */
  tracker: Uint8Array;
  /** The viewer session's key (the grant's sessionKey). */
  sessionKey: Uint8Array;
  /** The relay's id (Ed25519 public key), decoded. */
  relay: Uint8Array;
  /** Unix time (ms) on the tracker's clock when it made the assignment. */
  issuedAtMs: number;
}

/** An assignment with the tracker's signature (encodeSignedAssignment / decodeSignedAssignment). */
export interface SignedAssignment {
  assignment: Assignment;
  /** Ed25519 signature by `assignment.tracker` over assignmentSigningBytes(assignment). */
  signature: Uint8Array;
}

function invalid(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.ASSIGNMENT_INVALID, message);
}

function checkKey(b: Uint8Array, name: string): void {
  if (!(b instanceof Uint8Array) || b.byteLength !== ED25519_PUBLIC_KEY_BYTES) throw invalid(`${name} must be 32 bytes`);
}

function body(a: Assignment, extra: number): { bytes: Uint8Array<ArrayBuffer>; view: DataView } {
  if (a.version !== ASSIGNMENT_VERSION) throw invalid(`unsupported assignment version ${String(a.version)}`);
  checkKey(a.tracker, 'tracker');
  checkKey(a.sessionKey, 'sessionKey');
  checkKey(a.relay, 'relay');
  if (!Number.isSafeInteger(a.issuedAtMs) || a.issuedAtMs < 0) throw invalid('issuedAtMs must be a non-negative safe integer');
  const bytes = new Uint8Array(ASSIGNMENT_BODY_BYTES + extra);
  const view = new DataView(bytes.buffer);
  bytes[0] = a.version;
  bytes.set(a.tracker, 1);
  bytes.set(a.sessionKey, 33);
  bytes.set(a.relay, 65);
  view.setBigUint64(97, BigInt(a.issuedAtMs));
  return { bytes, view };
}

/** The exact bytes the tracker signs for an assignment. */
export function assignmentSigningBytes(a: Assignment): Uint8Array<ArrayBuffer> {
  const domain = utf8Encode(ASSIGNMENT_SIGNING_DOMAIN);
  const b = body(a, 0).bytes;
  const out = new Uint8Array(domain.byteLength + b.byteLength);
  out.set(domain, 0);
  out.set(b, domain.byteLength);
  return out;
}

/** The fixed-size wire form (SIGNED_ASSIGNMENT_BYTES); throws RC_ERR_ASSIGNMENT_INVALID for a field out of range. */
export function encodeSignedAssignment(sa: SignedAssignment): Uint8Array<ArrayBuffer> {
  if (!(sa.signature instanceof Uint8Array) || sa.signature.byteLength !== ED25519_SIGNATURE_BYTES) throw invalid('signature must be 64 bytes');
  const { bytes } = body(sa.assignment, ED25519_SIGNATURE_BYTES);
  bytes.set(sa.signature, ASSIGNMENT_BODY_BYTES);
  return bytes;
}

/** Decodes a signed assignment (the signature is NOT checked here: verifyAssignmentSignature in protocol/node). */
export function decodeSignedAssignment(bytes: Uint8Array): SignedAssignment {
  if (!(bytes instanceof Uint8Array) || bytes.byteLength !== SIGNED_ASSIGNMENT_BYTES) throw invalid(`a signed assignment is ${SIGNED_ASSIGNMENT_BYTES} bytes`);
  const version = bytes[0];
  if (version !== ASSIGNMENT_VERSION) throw invalid(`unsupported assignment version ${String(version)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const issued = view.getBigUint64(97);
  if (issued > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid('issuedAtMs exceeds the safe integer range');
  return {
    assignment: {
      version: ASSIGNMENT_VERSION,
      tracker: bytes.slice(1, 33),
      sessionKey: bytes.slice(33, 65),
      relay: bytes.slice(65, 97),
      issuedAtMs: Number(issued),
    },
    signature: bytes.slice(ASSIGNMENT_BODY_BYTES, SIGNED_ASSIGNMENT_BYTES),
  };
}

/** What checkAssignment holds an assignment against. */
export interface AssignmentCheckContext {
  /** The session key the assignment must name (the bound grant's sessionKey). */
  sessionKey: Uint8Array;
  /** The relay the assignment must name (the relay checking, or the relay redeeming). */
  relay: Uint8Array;
  /** Tracker keys whose assignments are accepted; empty = none is. */
  trustedTrackers: readonly Uint8Array[];
  /** When given, issuedAtMs must fall in [grant.issuedAtMs − ASSIGNMENT_EARLY_SLACK_MS, grant.expiresAtMs]. */
  grant?: SessionGrant | undefined;
}

/**
 * Everything about an assignment except its signature (that needs crypto: protocol/node): a trusted
 * tracker made it, for this session key and this relay, within the grant's lifetime. Throws
 * RC_ERR_ASSIGNMENT_INVALID.
 */
export function checkAssignment(a: Assignment, ctx: AssignmentCheckContext): void {
  if (!ctx.trustedTrackers.some((t) => bytesEqual(t, a.tracker))) throw invalid('assignment signed by a tracker this party does not trust');
  if (!bytesEqual(a.sessionKey, ctx.sessionKey)) throw invalid('assignment names another session key');
  if (!bytesEqual(a.relay, ctx.relay)) throw invalid('assignment names another relay');
  const g = ctx.grant;
  if (g !== undefined && (a.issuedAtMs < g.issuedAtMs - ASSIGNMENT_EARLY_SLACK_MS || a.issuedAtMs > g.expiresAtMs)) {
    throw invalid('assignment dated outside the grant lifetime');
  }
}
