import type { ServerResponse } from 'node:http';
import { ErrorCode, toRelaycastError, type RelaycastError } from '@relaycast/protocol';

/** HTTP status for each code the settler answers with; anything else is a 500. */
const STATUS: Partial<Record<ErrorCode, number>> = {
  [ErrorCode.MESSAGE_MALFORMED]: 400,
  [ErrorCode.MESSAGE_FIELD]: 400,
  [ErrorCode.RECEIPT_MALFORMED]: 400,
  [ErrorCode.REDEEM_SIGNATURE]: 401,
  [ErrorCode.REDEEM_CLOCK_SKEW]: 401,
  [ErrorCode.GRANT_REFUSED]: 403,
  [ErrorCode.GRANT_UNAUTHENTICATED]: 401,
  [ErrorCode.GRANT_LIVE_EXISTS]: 409,
  [ErrorCode.USER_BUDGET_EXHAUSTED]: 403,
  [ErrorCode.ADDRESS_RANGE_LIMIT]: 429,
  [ErrorCode.MESSAGE_TYPE]: 404,
  [ErrorCode.PAYOUT_ACCOUNT_MISSING]: 409,
  [ErrorCode.MESSAGE_TOO_LARGE]: 413,
  [ErrorCode.RATE_LIMITED]: 429,
  [ErrorCode.CHAIN_REQUEST_FAILED]: 502,
  [ErrorCode.ABORTED]: 503,
  [ErrorCode.TIMEOUT]: 504,
};

export function httpStatusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** `{ error: { code, message } }` with the code's status; details are not sent (they may name internals). */
export function sendError(res: ServerResponse, err: unknown, headers: Record<string, string> = {}): RelaycastError {
  const e = toRelaycastError(err);
  const message = e.code === ErrorCode.INTERNAL ? 'internal error' : e.message;
  // A refused oversized body is not read to its end: close the connection instead of draining it.
  const extra: Record<string, string> = e.code === ErrorCode.MESSAGE_TOO_LARGE ? { connection: 'close' } : {};
  sendJson(res, httpStatusOf(e.code), { error: { code: e.code, message } }, { ...headers, ...extra });
  return e;
}
