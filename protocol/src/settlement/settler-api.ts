import { fromBase64, utf8Length } from '../bytes.js';
import { ErrorCode, RelaycastError } from '../errors.js';
import { MAX_GRANT_SCOPE_BYTES, MAX_SIGNED_GRANT_BYTES } from '../receipts.js';
import { base64, bad, list, object, objectField, parseObject, publicKey, signatureId, str, u64, uint } from './json-fields.js';
import { SETTLER_MAX_BODY_BYTES } from './redeem.js';

/*
 * The settlement service's HTTP API besides redeem (docs/PAYMENTS.md "Settlement service HTTP
 * API"): its paths, `GET /v1/info`, the relay status and payout listing, `POST /v1/grants`, and the
 * error body every refusal carries. Bodies are JSON; u64 amounts are decimal strings.
 */

/** Paths, relative to the settler's base URL (a base may carry a path prefix: resolve without the leading slash). */
export const SETTLER_PATHS = {
  health: '/healthz',
  info: '/v1/info',
  grants: '/v1/grants',
  redeem: '/v1/redeem',
} as const;

/**
 * `path` (one of SETTLER_PATHS, relayStatusPath, relayPayoutsPath) under the settler's base URL,
 * keeping a path prefix the base carries: `https://pay.example/settler` → `.../settler/v1/info`.
 */
export function settlerEndpoint(baseUrl: string, path: string): URL {
  return new URL(path.replace(/^\//, ''), baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`);
}

/** `GET` the relay's totals. */
export function relayStatusPath(relay: string): string {
  return `/v1/relays/${relay}`;
}

/** `GET` the relay's confirmed payouts. */
export function relayPayoutsPath(relay: string): string {
  return `/v1/relays/${relay}/payouts`;
}

const RELAY_PATH = /^\/v1\/relays\/([^/]{1,64})(\/payouts)?$/;

/**
 * Which relay path `pathname` names; undefined when it is none. RC_ERR_MESSAGE_FIELD when the
 * relay segment is not a canonical base58 key.
 */
export function matchRelayPath(pathname: string): { relay: string; resource: 'status' | 'payouts' } | undefined {
  const m = RELAY_PATH.exec(pathname);
  if (m === null) return undefined;
  return { relay: publicKey({ relay: m[1] }, 'relay'), resource: m[2] === undefined ? 'status' : 'payouts' };
}

/** Trusted tracker keys /v1/info lists at most. */
export const MAX_INFO_TRACKERS = 256;

/**
 * `GET /v1/info`: the payer's payment terms (what a relay needs to check payouts) and its grant
 * policy. The policy fields are optional to a reader: a relay needs only the first four.
 */
export interface SettlerInfo {
  /** Treasury owner key, base58: signs grants and pays payout fees. */
  payer: string;
  mint: string;
  decimals: number;
  /** The treasury's token account, base58: payouts come from it. */
  treasuryTokenAccount: string;
  /** u64 decimal, base units per GiB. */
  pricePerGiB?: string | undefined;
  /** u64 decimal, a grant's budget when the authorisation hook names none. */
  defaultBudget?: string | undefined;
  grantTtlMs?: number | undefined;
  /** 'open', 'jwt' or 'custom'. */
  grantAuth?: string | undefined;
  /** u64 decimal, Σ budgets one user may be issued per budget period. */
  userBudget?: string | undefined;
  budgetPeriodMs?: number | undefined;
  maxBytesPerSec?: number | undefined;
  plausibleBurstBytes?: number | undefined;
  redeemWindowMs?: number | undefined;
  /** base58 keys of the trackers whose assignments the settler accepts. */
  trustedTrackers?: string[] | undefined;
}

/** Decodes the parsed JSON of `GET /v1/info`. */
export function decodeSettlerInfo(json: unknown): SettlerInfo {
  const o = object(json, 'settler info');
  const info: SettlerInfo = {
    payer: publicKey(o, 'payer'),
    mint: publicKey(o, 'mint'),
    decimals: uint(o, 'decimals', 255),
    treasuryTokenAccount: publicKey(o, 'treasuryTokenAccount'),
  };
  for (const key of ['pricePerGiB', 'defaultBudget', 'userBudget'] as const) if (o[key] !== undefined) info[key] = u64(o, key);
  for (const key of ['grantTtlMs', 'budgetPeriodMs', 'maxBytesPerSec', 'plausibleBurstBytes', 'redeemWindowMs'] as const)
    if (o[key] !== undefined) info[key] = uint(o, key);
  if (o['grantAuth'] !== undefined) info.grantAuth = str(o, 'grantAuth', 32);
  if (o['trustedTrackers'] !== undefined) {
    info.trustedTrackers = list(o, 'trustedTrackers', MAX_INFO_TRACKERS).map((k) => publicKey({ trustedTrackers: k }, 'trustedTrackers'));
  }
  return info;
}

/** `GET /v1/relays/:relay`: u64 decimals; `pending` is the outstanding payout, if any. */
export interface RelayStatusResponse {
  owed: string;
  cumulativePaid: string;
  pending: null | { signature: string; amount: string };
}

/** Decodes the parsed JSON of `GET /v1/relays/:relay`; RC_ERR_MESSAGE_MALFORMED or RC_ERR_MESSAGE_FIELD when it does not fit. */
export function decodeRelayStatusResponse(json: unknown): RelayStatusResponse {
  const o = object(json, 'relay status');
  let pending: RelayStatusResponse['pending'] = null;
  if (o['pending'] !== null) {
    const p = objectField(o, 'pending');
    pending = { signature: signatureId(p, 'signature'), amount: u64(p, 'amount') };
  }
  return { owed: u64(o, 'owed'), cumulativePaid: u64(o, 'cumulativePaid'), pending };
}

/** Payouts `GET /v1/relays/:relay/payouts` lists at most (the newest). */
export const RELAY_PAYOUTS_LISTED = 100;

/**
 * `GET /v1/relays/:relay/payouts`: the relay's confirmed payouts, newest last. A relay whose redeem
 * answer was lost (the settler submits payouts itself) learns their ids here and checks each on
 * chain by id before counting it.
 */
export interface RelayPayoutsResponse {
  payouts: { signature: string; amount: string; cumulativePaid: string }[];
}

/** Decodes the parsed JSON of `GET /v1/relays/:relay/payouts`; RC_ERR_MESSAGE_MALFORMED or RC_ERR_MESSAGE_FIELD when it does not fit. */
export function decodeRelayPayoutsResponse(json: unknown): RelayPayoutsResponse {
  const o = object(json, 'payout list');
  return {
    payouts: list(o, 'payouts', RELAY_PAYOUTS_LISTED).map((v) => {
      const p = object(v, 'payout');
      return { signature: signatureId(p, 'signature'), amount: u64(p, 'amount'), cumulativePaid: u64(p, 'cumulativePaid') };
    }),
  };
}

/** `POST /v1/grants` body. */
export interface GrantRequestBody {
  /** base58 Ed25519 session key. */
  sessionKey: string;
  /** Absolute http(s) URL prefix the grant covers, 1-MAX_GRANT_SCOPE_BYTES bytes. */
  scope: string;
}

/**
 * Decodes a grant request: RC_ERR_MESSAGE_MALFORMED unless a JSON object with string `sessionKey`
 * and `scope`; RC_ERR_MESSAGE_FIELD for a key that is not canonical base58 or a scope that is not
 * an absolute http(s) URL of 1-MAX_GRANT_SCOPE_BYTES bytes.
 */
export function decodeGrantRequest(raw: Uint8Array): GrantRequestBody {
  const o = parseObject(raw, SETTLER_MAX_BODY_BYTES, 'grant request');
  if (typeof o['sessionKey'] !== 'string' || typeof o['scope'] !== 'string') {
    throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'body must be { sessionKey: base58, scope: URL prefix }');
  }
  const sessionKey = publicKey(o, 'sessionKey');
  const scope = o['scope'];
  if (scope === '' || utf8Length(scope) > MAX_GRANT_SCOPE_BYTES) throw bad(`scope must be 1-${MAX_GRANT_SCOPE_BYTES} bytes`, 'scope');
  let url: URL;
  try {
    url = new URL(scope);
  } catch {
    throw bad('scope must be an absolute URL', 'scope');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw bad('scope must be an http(s) URL', 'scope');
  return { sessionKey, scope };
}

/** `POST /v1/grants` answer: the signed grant and its terms, readable without decoding it. */
export interface GrantResponse {
  /** base64 signed grant. */
  grant: string;
  issuedAtMs: number;
  expiresAtMs: number;
  maxBytesPerSec: number;
  /** u64 decimal. */
  pricePerGiB: string;
  /** u64 decimal. */
  budget: string;
  mint: string;
  payer: string;
}

/** Decodes the parsed JSON of a `POST /v1/grants` answer; RC_ERR_MESSAGE_MALFORMED or RC_ERR_MESSAGE_FIELD when it does not fit. */
export function decodeGrantResponse(json: unknown): GrantResponse {
  const o = object(json, 'grant answer');
  return {
    grant: base64(o, 'grant', 1, MAX_SIGNED_GRANT_BYTES),
    issuedAtMs: uint(o, 'issuedAtMs'),
    expiresAtMs: uint(o, 'expiresAtMs'),
    maxBytesPerSec: uint(o, 'maxBytesPerSec'),
    pricePerGiB: u64(o, 'pricePerGiB'),
    budget: u64(o, 'budget'),
    mint: publicKey(o, 'mint'),
    payer: publicKey(o, 'payer'),
  };
}

/**
 * The signed grant's bytes from a grant answer, reading `grant` alone: a platform's own route in
 * front of the settler may answer `{ grant }` without the terms. Undefined unless base64.
 */
export function signedGrantOf(json: unknown): Uint8Array | undefined {
  const grant = (json as { grant?: unknown } | null | undefined)?.grant;
  return typeof grant === 'string' ? fromBase64(grant) : undefined;
}

/** Every refusal's body (with the code's HTTP status); the message names no internals. */
export interface SettlerErrorBody {
  error: { code: string; message: string };
}

/**
 * The `{ error: { code, message } }` of a refusal; undefined for any other body. The code is any
 * string here: whether this version knows it is isErrorCode's call.
 */
export function decodeSettlerError(json: unknown): SettlerErrorBody['error'] | undefined {
  const e = (json as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (typeof e !== 'object' || e === null || typeof e.code !== 'string' || typeof e.message !== 'string') return undefined;
  return { code: e.code, message: e.message };
}
