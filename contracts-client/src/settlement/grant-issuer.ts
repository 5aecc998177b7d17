import { randomBytes, type KeyObject } from 'node:crypto';
import {
  ErrorCode,
  GRANT_NONCE_BYTES,
  GRANT_USER_BYTES,
  GRANT_VERSION,
  RelaycastError,
  decodePublicKey,
  encodeBase58,
  encodeSignedGrant,
  MAX_GRANT_SCOPE_BYTES,
  toHex,
} from '@relaycast/protocol';
import { signGrant } from '@relaycast/protocol/node';
import { userTag } from './grant-auth.js';
import type { SettlementLedger } from './settlement-ledger.js';
import type { GrantDecision } from './settler-options.js';

export interface GrantTerms {
  payerKey: KeyObject;
  payer: Uint8Array;
  mint: Uint8Array;
  pricePerGiB: bigint;
  defaultBudget: bigint;
  grantTtlMs: number;
  /** Written into every grant: the settler's plausibility bound. */
  maxBytesPerSec: number;
  /** Σ budgets per user within `budgetPeriodMs`. */
  userBudget: bigint;
  budgetPeriodMs: number;
}

export interface GrantResponse {
  grant: string;
  issuedAtMs: number;
  expiresAtMs: number;
  maxBytesPerSec: number;
  pricePerGiB: string;
  budget: string;
  mint: string;
  payer: string;
}

function field(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.MESSAGE_FIELD, message);
}

/** Parses `{ sessionKey, scope }`: a base58 Ed25519 key and an absolute http(s) URL prefix. */
export function parseGrantRequest(rawBody: Uint8Array): { sessionKey: Uint8Array; scope: string } {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(rawBody).toString('utf8'));
  } catch {
    throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'body is not JSON');
  }
  const o = body as Record<string, unknown> | null;
  if (typeof o !== 'object' || o === null || typeof o['sessionKey'] !== 'string' || typeof o['scope'] !== 'string') {
    throw new RelaycastError(ErrorCode.MESSAGE_MALFORMED, 'body must be { sessionKey: base58, scope: URL prefix }');
  }
  const sessionKey = decodePublicKey(o['sessionKey']);
  const scope = o['scope'];
  if (scope === '' || Buffer.byteLength(scope, 'utf8') > MAX_GRANT_SCOPE_BYTES) throw field(`scope must be 1-${MAX_GRANT_SCOPE_BYTES} bytes`);
  let url: URL;
  try {
    url = new URL(scope);
  } catch {
    throw field('scope must be an absolute URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw field('scope must be an http(s) URL');
  return { sessionKey, scope };
}

/**
 * Signs a grant for one session with the treasury owner's key, on the hook's terms, after the
 * ledger recorded it within the user's budget and as the session key's only live grant.
 */
export function issueGrant(
  req: { sessionKey: Uint8Array; scope: string },
  decision: GrantDecision,
  terms: GrantTerms,
  ledger: SettlementLedger,
  nowMs: number,
): GrantResponse {
  const budget = decision.budget ?? terms.defaultBudget;
  const ttlMs = decision.ttlMs ?? terms.grantTtlMs;
  if (typeof budget !== 'bigint' || budget < 0n || budget >= 1n << 64n || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new RelaycastError(ErrorCode.INTERNAL, 'authorisation hook returned an invalid budget or ttlMs');
  }
  if (decision.user !== undefined && (typeof decision.user !== 'string' || decision.user === '')) {
    throw new RelaycastError(ErrorCode.INTERNAL, 'authorisation hook returned an invalid user');
  }
  // No user named (open mode): every grant is its own user, so only the grant budget bounds it.
  const user = decision.user === undefined ? new Uint8Array(randomBytes(GRANT_USER_BYTES)) : userTag(terms.payer, decision.user);
  const nonce = new Uint8Array(randomBytes(GRANT_NONCE_BYTES));
  ledger.reserveGrant(
    { nonce, sessionKey: req.sessionKey, userTag: toHex(user), budget, issuedAtMs: nowMs, expiresAtMs: nowMs + ttlMs },
    { userBudget: terms.userBudget, periodMs: terms.budgetPeriodMs },
  );
  const signed = signGrant(
    {
      version: GRANT_VERSION,
      sessionKey: req.sessionKey,
      payer: terms.payer,
      mint: terms.mint,
      pricePerGiB: terms.pricePerGiB,
      budget,
      issuedAtMs: nowMs,
      expiresAtMs: nowMs + ttlMs,
      maxBytesPerSec: terms.maxBytesPerSec,
      user,
      scope: req.scope,
      nonce,
    },
    terms.payerKey,
  );
  return {
    grant: Buffer.from(encodeSignedGrant(signed)).toString('base64'),
    issuedAtMs: nowMs,
    expiresAtMs: signed.grant.expiresAtMs,
    maxBytesPerSec: terms.maxBytesPerSec,
    pricePerGiB: terms.pricePerGiB.toString(),
    budget: budget.toString(),
    mint: encodeBase58(terms.mint),
    payer: encodeBase58(terms.payer),
  };
}
