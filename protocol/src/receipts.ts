import { utf8Decode, utf8Encode } from './bytes.js';
import { ED25519_PUBLIC_KEY_BYTES, ED25519_SIGNATURE_BYTES } from './constants.js';
import { ErrorCode, RelaycastError } from './errors.js';

/**
 * Session grants and micropayment receipts: compact, canonical binary encodings (big-endian, fixed
 * field order, no optional fields), so a signature covers exactly one byte string and relays,
 * settlement services and SDKs in any language agree on it. Layouts are in docs/PAYMENTS.md.
 *
 * A grant is signed by the platform's settlement service (its `payer` key): "the holder of
 * `sessionKey` may spend up to `budget` of `mint` at `pricePerGiB`, for streams under `scope`,
 * until `expiresAtMs`". A receipt is signed by the session key: "relay R delivered me
 * `cumulativeBytes` verified bytes in total, worth `cumulativeAmount`"; each newer receipt
 * (higher sequence) supersedes the older ones for that (session, relay).
 *
 * Grant version 2 adds issuedAtMs, maxBytesPerSec and a user tag (the settler's plausibility and
 * per-user budgets need them); version 1 grants are no longer decoded. The signing domain string is
 * unchanged: the version byte inside the body already separates the two layouts.
 */
export const GRANT_VERSION = 2;
/** Version byte of the receipt layout; other versions are refused. */
export const RECEIPT_VERSION = 1;
/** Signed bytes start with these, so a grant signature can never be replayed as anything else. */
export const GRANT_SIGNING_DOMAIN = 'relaycast-grant-v1\0';
/** Prefix of the bytes a session key signs for a receipt. */
export const RECEIPT_SIGNING_DOMAIN = 'relaycast-receipt-v1\0';
/** Size of a grant's random nonce (its id, which receipts name). */
export const GRANT_NONCE_BYTES = 16;
/** Opaque user tag the settler puts in a grant (per-user budgets, distinct reporters). */
export const GRANT_USER_BYTES = 16;
/** Longest stream scope (a URL prefix). */
export const MAX_GRANT_SCOPE_BYTES = 512;
/** Base units per GiB are priced per 2^30 bytes. */
export const BYTES_PER_GIB = 1n << 30n;
const MAX_U64 = (1n << 64n) - 1n;

/** The platform's permission for one viewer session to pay relays (see the layout note above). */
export interface SessionGrant {
  version: typeof GRANT_VERSION;
  /** Ed25519 public key generated in the viewer's page; it signs the receipts. */
  sessionKey: Uint8Array;
  /** Ed25519 public key of the settlement service that signs the grant and pays. */
  payer: Uint8Array;
  /** SPL mint the relay is paid in. */
  mint: Uint8Array;
  /** Token base units per GiB (2^30 bytes) delivered. */
  pricePerGiB: bigint;
  /**
   * The most the WHOLE grant may be paid, in base units, summed over every relay that serves the
   * session (the one meaning of budget in the SDK, relays and the settler; docs/PAYMENTS.md).
   */
  budget: bigint;
  /** Unix time (ms) the settler issued the grant; the settler's plausibility check starts here. */
  issuedAtMs: number;
  /** Unix time (ms) after which the grant no longer binds, on the checker's own clock. */
  expiresAtMs: number;
  /** Highest delivery rate (bytes/s) the settler deems plausible for this grant; positive. */
  maxBytesPerSec: number;
  /** Opaque 16-byte user tag chosen by the settler (per-user budgets, distinct reporters). */
  user: Uint8Array;
  /** Stream URL prefix the grant covers (e.g. `https://cdn.example.com/hls/`). */
  scope: string;
  /** Random id of this grant; receipts name it. */
  nonce: Uint8Array;
}

/** A grant with the payer's signature (encodeSignedGrant / decodeSignedGrant). */
export interface SignedGrant {
  grant: SessionGrant;
  /** Ed25519 signature by `grant.payer` over grantSigningBytes(grant). */
  signature: Uint8Array;
}

/** A viewer's running total for one relay under one grant: what the relay redeems with the settler. */
export interface Receipt {
  version: typeof RECEIPT_VERSION;
  /** The grant this receipt spends (its nonce) and the session key that signs it. */
  grantNonce: Uint8Array;
  sessionKey: Uint8Array;
  /** Ed25519 public key of the relay that delivered the bytes (its relay id, decoded). */
  relay: Uint8Array;
  /** Strictly increasing per (session, relay); a receipt with a lower or equal sequence is stale. */
  sequence: number;
  /** Verified bytes this relay delivered to this session, in total. */
  cumulativeBytes: number;
  /** amountForBytes(cumulativeBytes, grant.pricePerGiB), in base units. */
  cumulativeAmount: bigint;
  /**
   * Unix time (ms) the viewer signed it. Chosen by the viewer, so informational only: expiry is
   * decided by the checker's own clock, never by this field.
   */
  timestampMs: number;
}

/** A receipt with the session key's signature (encodeSignedReceipt / decodeSignedReceipt). */
export interface SignedReceipt {
  receipt: Receipt;
  /** Ed25519 signature by `receipt.sessionKey` over receiptSigningBytes(receipt). */
  signature: Uint8Array;
}

/**
 * What `bytes` are worth at `pricePerGiB`: floor(bytes × price / 2^30). Applied to the cumulative
 * byte count (never summed per chunk), so rounding never accumulates: a relay loses less than one
 * base unit in total per session.
 */
export function amountForBytes(bytes: number, pricePerGiB: bigint): bigint {
  if (!Number.isSafeInteger(bytes) || bytes < 0) throw invalid('bytes must be a non-negative safe integer');
  return (BigInt(bytes) * pricePerGiB) / BYTES_PER_GIB;
}

function invalid(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.RECEIPT_MALFORMED, message);
}

const GRANT_BODY_FIXED = 1 + 32 + 32 + 32 + 8 + 8 + 8 + 8 + 8 + GRANT_USER_BYTES + GRANT_NONCE_BYTES + 2;
const RECEIPT_BODY_BYTES = 1 + GRANT_NONCE_BYTES + 32 + 32 + 8 + 8 + 8 + 8;
/** Largest signed grant: fixed fields, the longest scope, the signature. */
export const MAX_SIGNED_GRANT_BYTES = GRANT_BODY_FIXED + MAX_GRANT_SCOPE_BYTES + ED25519_SIGNATURE_BYTES;
/** Size of an encoded signed receipt (177 bytes): receipts have no variable-length field. */
export const SIGNED_RECEIPT_BYTES = RECEIPT_BODY_BYTES + ED25519_SIGNATURE_BYTES;

class Writer {
  readonly bytes: Uint8Array<ArrayBuffer>;
  private readonly view: DataView;
  private at = 0;
  constructor(size: number) {
    this.bytes = new Uint8Array(size);
    this.view = new DataView(this.bytes.buffer);
  }
  u8(v: number): void {
    this.view.setUint8(this.at++, v);
  }
  u16(v: number): void {
    this.view.setUint16(this.at, v);
    this.at += 2;
  }
  u64(v: bigint): void {
    this.view.setBigUint64(this.at, v);
    this.at += 8;
  }
  raw(b: Uint8Array): void {
    this.bytes.set(b, this.at);
    this.at += b.byteLength;
  }
}

class Reader {
  private readonly view: DataView;
  private at = 0;
  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  private need(n: number): void {
    if (this.at + n > this.bytes.byteLength) throw invalid('truncated');
  }
  u8(): number {
    this.need(1);
    return this.view.getUint8(this.at++);
  }
  u16(): number {
    this.need(2);
    const v = this.view.getUint16(this.at);
    this.at += 2;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.at);
    this.at += 8;
    return v;
  }
  safeU64(name: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalid(`${name} exceeds the safe integer range`);
    return Number(v);
  }
  raw(n: number): Uint8Array {
    this.need(n);
    const out = this.bytes.slice(this.at, this.at + n);
    this.at += n;
    return out;
  }
  end(): void {
    if (this.at !== this.bytes.byteLength) throw invalid('trailing bytes');
  }
}

function key(b: Uint8Array, name: string): void {
  if (!(b instanceof Uint8Array) || b.byteLength !== ED25519_PUBLIC_KEY_BYTES) throw invalid(`${name} must be 32 bytes`);
}

function u64(v: bigint, name: string): void {
  if (typeof v !== 'bigint' || v < 0n || v > MAX_U64) throw invalid(`${name} must be a u64`);
}

function safeUint(v: number, name: string): void {
  if (!Number.isSafeInteger(v) || v < 0) throw invalid(`${name} must be a non-negative safe integer`);
}

function checkGrant(g: SessionGrant): Uint8Array {
  if (g.version !== GRANT_VERSION) throw invalid(`unsupported grant version ${String(g.version)}`);
  key(g.sessionKey, 'sessionKey');
  key(g.payer, 'payer');
  key(g.mint, 'mint');
  u64(g.pricePerGiB, 'pricePerGiB');
  u64(g.budget, 'budget');
  safeUint(g.issuedAtMs, 'issuedAtMs');
  safeUint(g.expiresAtMs, 'expiresAtMs');
  if (g.issuedAtMs > g.expiresAtMs) throw invalid('issuedAtMs is after expiresAtMs');
  safeUint(g.maxBytesPerSec, 'maxBytesPerSec');
  if (g.maxBytesPerSec === 0) throw invalid('maxBytesPerSec must be positive');
  if (!(g.user instanceof Uint8Array) || g.user.byteLength !== GRANT_USER_BYTES) throw invalid(`user must be ${GRANT_USER_BYTES} bytes`);
  if (!(g.nonce instanceof Uint8Array) || g.nonce.byteLength !== GRANT_NONCE_BYTES) throw invalid(`nonce must be ${GRANT_NONCE_BYTES} bytes`);
  const scope = utf8Encode(g.scope);
  if (scope.byteLength === 0 || scope.byteLength > MAX_GRANT_SCOPE_BYTES) throw invalid(`scope must be 1-${MAX_GRANT_SCOPE_BYTES} bytes`);
  return scope;
}

function grantBody(g: SessionGrant, extra: number): Writer {
  const scope = checkGrant(g);
  const w = new Writer(GRANT_BODY_FIXED + scope.byteLength + extra);
  w.u8(g.version);
  w.raw(g.sessionKey);
  w.raw(g.payer);
  w.raw(g.mint);
  w.u64(g.pricePerGiB);
  w.u64(g.budget);
  w.u64(BigInt(g.issuedAtMs));
  w.u64(BigInt(g.expiresAtMs));
  w.u64(BigInt(g.maxBytesPerSec));
  w.raw(g.user);
  w.raw(g.nonce);
  w.u16(scope.byteLength);
  w.raw(scope);
  return w;
}

function withDomain(domain: string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const d = utf8Encode(domain);
  const out = new Uint8Array(d.byteLength + body.byteLength);
  out.set(d, 0);
  out.set(body, d.byteLength);
  return out;
}

/** The exact bytes the payer signs for a grant. */
export function grantSigningBytes(grant: SessionGrant): Uint8Array<ArrayBuffer> {
  return withDomain(GRANT_SIGNING_DOMAIN, grantBody(grant, 0).bytes);
}

/** The wire form of a signed grant; throws RC_ERR_RECEIPT_MALFORMED for a field out of range. */
export function encodeSignedGrant(sg: SignedGrant): Uint8Array<ArrayBuffer> {
  if (!(sg.signature instanceof Uint8Array) || sg.signature.byteLength !== ED25519_SIGNATURE_BYTES) throw invalid('signature must be 64 bytes');
  const w = grantBody(sg.grant, ED25519_SIGNATURE_BYTES);
  w.raw(sg.signature);
  return w.bytes;
}

/** Decodes a signed grant (the signature is NOT checked here: see verifySignedGrant in protocol/node). */
export function decodeSignedGrant(bytes: Uint8Array): SignedGrant {
  if (bytes.byteLength > MAX_SIGNED_GRANT_BYTES) throw invalid('grant too large');
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== GRANT_VERSION) throw invalid(`unsupported grant version ${version}`);
  const sessionKey = r.raw(32);
  const payer = r.raw(32);
  const mint = r.raw(32);
  const pricePerGiB = r.u64();
  const budget = r.u64();
  const issuedAtMs = r.safeU64('issuedAtMs');
  const expiresAtMs = r.safeU64('expiresAtMs');
  if (issuedAtMs > expiresAtMs) throw invalid('issuedAtMs is after expiresAtMs');
  const maxBytesPerSec = r.safeU64('maxBytesPerSec');
  if (maxBytesPerSec === 0) throw invalid('maxBytesPerSec must be positive');
  const user = r.raw(GRANT_USER_BYTES);
  const nonce = r.raw(GRANT_NONCE_BYTES);
  const scopeLen = r.u16();
  if (scopeLen === 0 || scopeLen > MAX_GRANT_SCOPE_BYTES) throw invalid(`scope must be 1-${MAX_GRANT_SCOPE_BYTES} bytes`);
  let scope: string;
  try {
    scope = utf8Decode(r.raw(scopeLen));
  } catch {
    throw invalid('scope is not valid UTF-8');
  }
  const signature = r.raw(ED25519_SIGNATURE_BYTES);
  r.end();
  return {
    grant: { version: GRANT_VERSION, sessionKey, payer, mint, pricePerGiB, budget, issuedAtMs, expiresAtMs, maxBytesPerSec, user, scope, nonce },
    signature,
  };
}

function receiptBody(rc: Receipt, extra: number): Writer {
  if (rc.version !== RECEIPT_VERSION) throw invalid(`unsupported receipt version ${String(rc.version)}`);
  if (!(rc.grantNonce instanceof Uint8Array) || rc.grantNonce.byteLength !== GRANT_NONCE_BYTES) throw invalid('grantNonce must be 16 bytes');
  key(rc.sessionKey, 'sessionKey');
  key(rc.relay, 'relay');
  safeUint(rc.sequence, 'sequence');
  safeUint(rc.cumulativeBytes, 'cumulativeBytes');
  u64(rc.cumulativeAmount, 'cumulativeAmount');
  safeUint(rc.timestampMs, 'timestampMs');
  const w = new Writer(RECEIPT_BODY_BYTES + extra);
  w.u8(rc.version);
  w.raw(rc.grantNonce);
  w.raw(rc.sessionKey);
  w.raw(rc.relay);
  w.u64(BigInt(rc.sequence));
  w.u64(BigInt(rc.cumulativeBytes));
  w.u64(rc.cumulativeAmount);
  w.u64(BigInt(rc.timestampMs));
  return w;
}

/** The exact bytes the session key signs for a receipt. */
export function receiptSigningBytes(receipt: Receipt): Uint8Array<ArrayBuffer> {
  return withDomain(RECEIPT_SIGNING_DOMAIN, receiptBody(receipt, 0).bytes);
}

/** The wire form of a signed receipt (SIGNED_RECEIPT_BYTES); throws RC_ERR_RECEIPT_MALFORMED for a field out of range. */
export function encodeSignedReceipt(sr: SignedReceipt): Uint8Array<ArrayBuffer> {
  if (!(sr.signature instanceof Uint8Array) || sr.signature.byteLength !== ED25519_SIGNATURE_BYTES) throw invalid('signature must be 64 bytes');
  const w = receiptBody(sr.receipt, ED25519_SIGNATURE_BYTES);
  w.raw(sr.signature);
  return w.bytes;
}

/** Decodes a signed receipt (the signature is NOT checked here). */
export function decodeSignedReceipt(bytes: Uint8Array): SignedReceipt {
  if (bytes.byteLength !== SIGNED_RECEIPT_BYTES) throw invalid(`a signed receipt is ${SIGNED_RECEIPT_BYTES} bytes`);
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== RECEIPT_VERSION) throw invalid(`unsupported receipt version ${version}`);
  const receipt: Receipt = {
    version: RECEIPT_VERSION,
    grantNonce: r.raw(GRANT_NONCE_BYTES),
    sessionKey: r.raw(32),
    relay: r.raw(32),
    sequence: r.safeU64('sequence'),
    cumulativeBytes: r.safeU64('cumulativeBytes'),
    cumulativeAmount: r.u64(),
    timestampMs: r.safeU64('timestampMs'),
  };
  const signature = r.raw(ED25519_SIGNATURE_BYTES);
  r.end();
  return { receipt, signature };
}

function bytesSame(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** What checkReceipt holds a receipt against. */
export interface ReceiptCheckContext {
  /** The relay checking (or redeeming) the receipt: it must be the one named in it. */
  relay: Uint8Array;
  /** The newest receipt already accepted for this (session, relay), if any. */
  previous?: Receipt | undefined;
}

/**
 * Everything about one receipt except signatures (those need crypto: protocol/node): it spends this
 * grant, names this relay, claims exactly what its bytes are worth, stays within the grant's budget
 * (a cheap upper bound: the budget is for all relays together, which only the settler can sum), and
 * supersedes `previous` without going backwards. Relays and the settlement service run this same
 * function. Throws RC_ERR_RECEIPT_*.
 *
 * Expiry is not checked here: `timestampMs` is the viewer's word. The relay checks the grant's
 * expiry on its own clock at bind/request time; the settler by its redeem window and plausibility.
 */
export function checkReceipt(receipt: Receipt, grant: SessionGrant, ctx: ReceiptCheckContext): void {
  if (!bytesSame(receipt.grantNonce, grant.nonce) || !bytesSame(receipt.sessionKey, grant.sessionKey)) {
    throw new RelaycastError(ErrorCode.RECEIPT_NO_GRANT, 'receipt does not belong to this grant');
  }
  if (!bytesSame(receipt.relay, ctx.relay)) throw new RelaycastError(ErrorCode.RECEIPT_WRONG_RELAY, 'receipt names another relay');
  if (receipt.cumulativeAmount !== amountForBytes(receipt.cumulativeBytes, grant.pricePerGiB)) {
    throw new RelaycastError(ErrorCode.RECEIPT_AMOUNT, 'cumulativeAmount is not what cumulativeBytes are worth at the grant price');
  }
  if (receipt.cumulativeAmount > grant.budget) throw new RelaycastError(ErrorCode.RECEIPT_OVER_BUDGET, 'receipt exceeds the grant budget');
  const prev = ctx.previous;
  if (prev !== undefined && (receipt.sequence <= prev.sequence || receipt.cumulativeBytes < prev.cumulativeBytes)) {
    throw new RelaycastError(ErrorCode.RECEIPT_STALE, 'receipt does not supersede the newest one', {
      details: { sequence: receipt.sequence, newestSequence: prev.sequence },
    });
  }
}
