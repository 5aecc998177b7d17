import { decodeBase58, decodePublicKey, encodeBase58 } from '../base58.js';
import { fromBase64, utf8Decode, utf8Length } from '../bytes.js';
import { ED25519_SIGNATURE_BYTES } from '../constants.js';
import { ErrorCode, RelaycastError } from '../errors.js';

/*
 * Field readers shared by the settlement decoders (not exported from the package). Each throws
 * RC_ERR_MESSAGE_FIELD naming the field (`details.field`), like the tracker message decoders.
 */

export type Obj = Record<string, unknown>;

export const MAX_U64 = (1n << 64n) - 1n;
const U64_DECIMAL = /^(0|[1-9][0-9]{0,19})$/;
const BASE58 = /^[1-9A-HJ-NP-Za-km-z]+$/;
const ERROR_CODE = /^RC_ERR_[A-Z0-9_]{1,57}$/;

export function bad(message: string, field: string): RelaycastError {
  return new RelaycastError(ErrorCode.MESSAGE_FIELD, message, { details: { field } });
}

/** Parses a JSON object from bytes: RC_ERR_MESSAGE_TOO_LARGE past `maxBytes`, RC_ERR_MESSAGE_MALFORMED if not a JSON object. */
export function parseObject(raw: Uint8Array, maxBytes: number, what: string): Obj {
  if (raw.byteLength > maxBytes) throw new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, `${what} of ${raw.byteLength} bytes exceeds ${maxBytes}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8Decode(raw));
  } catch {
    throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, `${what} is not JSON`);
  }
  return object(parsed, what);
}

/** An already parsed value that must be a JSON object (RC_ERR_MESSAGE_MALFORMED otherwise). */
export function object(v: unknown, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, `${what} must be a JSON object`);
  return v as Obj;
}

/** A nested object field. */
export function objectField(o: Obj, key: string): Obj {
  const v = o[key];
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad(`${key} must be an object`, key);
  return v as Obj;
}

export function str(o: Obj, key: string, maxBytes: number): string {
  const v = o[key];
  if (typeof v !== 'string') throw bad(`${key} must be a string`, key);
  if (utf8Length(v) > maxBytes) throw bad(`${key} longer than ${maxBytes} bytes`, key);
  return v;
}

/** An array field of at most `max` entries. */
export function list(o: Obj, key: string, max: number): unknown[] {
  const v = o[key];
  if (!Array.isArray(v) || v.length > max) throw bad(`${key} must be an array of at most ${max}`, key);
  return v;
}

/** An integer in 0..max (at most 2^53 - 1). */
export function uint(o: Obj, key: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = o[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) throw bad(`${key} must be an integer in 0..${max}`, key);
  return v;
}

/** A u64 as JSON carries it: a canonical decimal string (u64 does not fit a JSON number). */
export function u64(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || !U64_DECIMAL.test(v) || BigInt(v) > MAX_U64) throw bad(`${key} must be a u64 decimal string`, key);
  return v;
}

/** A 32-byte public key in canonical base58 (one spelling per key: ledgers are keyed by it). */
export function publicKey(o: Obj, key: string): string {
  const v = str(o, key, 44);
  let canonical: string;
  try {
    canonical = encodeBase58(decodePublicKey(v));
  } catch {
    throw bad(`${key} must be a base58 public key`, key);
  }
  if (canonical !== v) throw bad(`${key} is not canonical base58`, key);
  return v;
}

/** A transaction id: base58 of a 64-byte Ed25519 signature. */
export function signatureId(o: Obj, key: string): string {
  const v = str(o, key, 90);
  if (!BASE58.test(v) || decodeBase58(v).byteLength !== ED25519_SIGNATURE_BYTES) throw bad(`${key} must be a base58 64-byte signature`, key);
  return v;
}

/** Canonical base64 of `min`-`max` bytes. */
export function base64(o: Obj, key: string, min: number, max: number): string {
  const v = str(o, key, Math.ceil(max / 3) * 4);
  const bytes = fromBase64(v);
  if (bytes === undefined || bytes.byteLength < min || bytes.byteLength > max) throw bad(`${key} must be ${min}-${max} bytes of base64`, key);
  return v;
}

export function hex32(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) throw bad(`${key} must be 64 lowercase hex digits`, key);
  return v;
}

/**
 * An error code string. Any `RC_ERR_*` is accepted, not only this version's: a newer peer may
 * send one this version does not know (isErrorCode tells them apart).
 */
export function errorCode(o: Obj, key: string): string {
  const v = o[key];
  if (typeof v !== 'string' || !ERROR_CODE.test(v)) throw bad(`${key} must be an RC_ERR_* code`, key);
  return v;
}
