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
  toBase64,
  toHex,
} from '@relaycast/protocol';
import { signGrant } from '@relaycast/protocol/node';
import { decodeGrantRequest, type GrantResponse } from '@relaycast/protocol/settlement';
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

/** A `POST /v1/grants` body decoded (decodeGrantRequest), with the session key's bytes. */
export function parseGrantRequest(rawBody: Uint8Array): { sessionKey: Uint8Array; scope: string } {
  const body = decodeGrantRequest(rawBody);
  return { sessionKey: decodePublicKey(body.sessionKey), scope: body.scope };
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
    grant: toBase64(encodeSignedGrant(signed)),
    issuedAtMs: nowMs,
    expiresAtMs: signed.grant.expiresAtMs,
    maxBytesPerSec: terms.maxBytesPerSec,
    pricePerGiB: terms.pricePerGiB.toString(),
    budget: budget.toString(),
    mint: encodeBase58(terms.mint),
    payer: encodeBase58(terms.payer),
  };
}
