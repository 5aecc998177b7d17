/**
 * Stable error codes. Callers match on `code`, never on message text; every code is listed in
 * docs/ERRORS.md, and a unit test keeps the two in step.
 */
export const ErrorCode = {
  // Wire formats (protocol/)
  FRAME_TRUNCATED: 'RC_ERR_FRAME_TRUNCATED',
  FRAME_TOO_LARGE: 'RC_ERR_FRAME_TOO_LARGE',
  FRAME_VERSION: 'RC_ERR_FRAME_VERSION',
  FRAME_TYPE: 'RC_ERR_FRAME_TYPE',
  FRAME_FIELD: 'RC_ERR_FRAME_FIELD',
  MESSAGE_TOO_LARGE: 'RC_ERR_MESSAGE_TOO_LARGE',
  MESSAGE_MALFORMED: 'RC_ERR_MESSAGE_MALFORMED',
  MESSAGE_TYPE: 'RC_ERR_MESSAGE_TYPE',
  MESSAGE_FIELD: 'RC_ERR_MESSAGE_FIELD',
  // Tracker
  RATE_LIMITED: 'RC_ERR_RATE_LIMITED',
  REGISTRATION_SIGNATURE: 'RC_ERR_REGISTRATION_SIGNATURE',
  REGISTRATION_DUPLICATE: 'RC_ERR_REGISTRATION_DUPLICATE',
  NOT_REGISTERED: 'RC_ERR_NOT_REGISTERED',
  SIGNAL_NOT_ALLOWED: 'RC_ERR_SIGNAL_NOT_ALLOWED',
  PEER_UNKNOWN: 'RC_ERR_PEER_UNKNOWN',
  SWARM_FULL: 'RC_ERR_SWARM_FULL',
  TRACKER_FULL: 'RC_ERR_TRACKER_FULL',
  // Relay
  ORIGIN_NOT_ALLOWED: 'RC_ERR_ORIGIN_NOT_ALLOWED',
  ORIGIN_HTTP: 'RC_ERR_ORIGIN_HTTP',
  ORIGIN_UNREACHABLE: 'RC_ERR_ORIGIN_UNREACHABLE',
  SEGMENT_TOO_LARGE: 'RC_ERR_SEGMENT_TOO_LARGE',
  RANGE_NOT_SATISFIABLE: 'RC_ERR_RANGE_NOT_SATISFIABLE',
  RELAY_OVERLOADED: 'RC_ERR_RELAY_OVERLOADED',
  REQUEST_DUPLICATE: 'RC_ERR_REQUEST_DUPLICATE',
  KEYPAIR_INVALID: 'RC_ERR_KEYPAIR_INVALID',
  CONFIG_INVALID: 'RC_ERR_CONFIG_INVALID',
  // Shared by clients
  TIMEOUT: 'RC_ERR_TIMEOUT',
  ABORTED: 'RC_ERR_ABORTED',
  CHANNEL_CLOSED: 'RC_ERR_CHANNEL_CLOSED',
  TRACKER_UNAVAILABLE: 'RC_ERR_TRACKER_UNAVAILABLE',
  NO_RELAY: 'RC_ERR_NO_RELAY',
  RELAY_ERROR: 'RC_ERR_RELAY_ERROR',
  SEGMENT_UNAVAILABLE: 'RC_ERR_SEGMENT_UNAVAILABLE',
  INTERNAL: 'RC_ERR_INTERNAL',
  // Relay origin side (appended)
  PLAYLIST_INVALID: 'RC_ERR_PLAYLIST_INVALID',
  DIGEST_SIDECAR_INVALID: 'RC_ERR_DIGEST_SIDECAR_INVALID',
  // Integrity (appended)
  SEGMENT_INTEGRITY: 'RC_ERR_SEGMENT_INTEGRITY',
  REPORT_REFUSED: 'RC_ERR_REPORT_REFUSED',
  // Chain and Solana setup (appended)
  CHAIN_STATE_INVALID: 'RC_ERR_CHAIN_STATE_INVALID',
  CHAIN_LISTEN_FAILED: 'RC_ERR_CHAIN_LISTEN_FAILED',
  CHAIN_REQUEST_FAILED: 'RC_ERR_CHAIN_REQUEST_FAILED',
  // Payments (appended)
  RECEIPT_MALFORMED: 'RC_ERR_RECEIPT_MALFORMED',
  RECEIPT_SIGNATURE: 'RC_ERR_RECEIPT_SIGNATURE',
  RECEIPT_STALE: 'RC_ERR_RECEIPT_STALE',
  RECEIPT_WRONG_RELAY: 'RC_ERR_RECEIPT_WRONG_RELAY',
  RECEIPT_AMOUNT: 'RC_ERR_RECEIPT_AMOUNT',
  RECEIPT_OVER_BUDGET: 'RC_ERR_RECEIPT_OVER_BUDGET',
  RECEIPT_NO_GRANT: 'RC_ERR_RECEIPT_NO_GRANT',
  RECEIPT_STORE: 'RC_ERR_RECEIPT_STORE',
  GRANT_SIGNATURE: 'RC_ERR_GRANT_SIGNATURE',
  GRANT_EXPIRED: 'RC_ERR_GRANT_EXPIRED',
  GRANT_SCOPE: 'RC_ERR_GRANT_SCOPE',
  GRANT_REFUSED: 'RC_ERR_GRANT_REFUSED',
  PAYER_UNKNOWN: 'RC_ERR_PAYER_UNKNOWN',
  CREDIT_EXCEEDED: 'RC_ERR_CREDIT_EXCEEDED',
  PAYOUT_MISMATCH: 'RC_ERR_PAYOUT_MISMATCH',
  SETTLEMENT_UNAVAILABLE: 'RC_ERR_SETTLEMENT_UNAVAILABLE',
  // Settlement service (appended)
  REDEEM_SIGNATURE: 'RC_ERR_REDEEM_SIGNATURE',
  REDEEM_CLOCK_SKEW: 'RC_ERR_REDEEM_CLOCK_SKEW',
  PAYOUT_ACCOUNT_MISSING: 'RC_ERR_PAYOUT_ACCOUNT_MISSING',
  // Relay reachability (appended)
  NAT_NO_GATEWAY: 'RC_ERR_NAT_NO_GATEWAY',
  NAT_MAPPING_FAILED: 'RC_ERR_NAT_MAPPING_FAILED',
  // STUN public-address discovery (appended)
  STUN_MALFORMED: 'RC_ERR_STUN_MALFORMED',
  STUN_ERROR_RESPONSE: 'RC_ERR_STUN_ERROR_RESPONSE',
  STUN_TIMEOUT: 'RC_ERR_STUN_TIMEOUT',
  // Trust: identity, proofs and bounds (appended)
  ASSIGNMENT_MISSING: 'RC_ERR_ASSIGNMENT_MISSING',
  ASSIGNMENT_INVALID: 'RC_ERR_ASSIGNMENT_INVALID',
  BIND_PROOF: 'RC_ERR_BIND_PROOF',
  SESSION_INVALID: 'RC_ERR_SESSION_INVALID',
  GRANT_UNAUTHENTICATED: 'RC_ERR_GRANT_UNAUTHENTICATED',
  GRANT_LIVE_EXISTS: 'RC_ERR_GRANT_LIVE_EXISTS',
  USER_BUDGET_EXHAUSTED: 'RC_ERR_USER_BUDGET_EXHAUSTED',
  RECEIPT_IMPLAUSIBLE: 'RC_ERR_RECEIPT_IMPLAUSIBLE',
  GRANT_BUDGET_SPENT: 'RC_ERR_GRANT_BUDGET_SPENT',
  REDEEM_WINDOW_CLOSED: 'RC_ERR_REDEEM_WINDOW_CLOSED',
  RELAY_NOT_ADMITTED: 'RC_ERR_RELAY_NOT_ADMITTED',
  ADDRESS_RANGE_LIMIT: 'RC_ERR_ADDRESS_RANGE_LIMIT',
  OFFER_LIMIT: 'RC_ERR_OFFER_LIMIT',
  TURN_REFUSED: 'RC_ERR_TURN_REFUSED',
  KEY_PERMISSIONS: 'RC_ERR_KEY_PERMISSIONS',
  HOST_REFUSED: 'RC_ERR_HOST_REFUSED',
  ORIGIN_BUDGET: 'RC_ERR_ORIGIN_BUDGET',
} as const;

/** One of the stable `RC_ERR_*` codes (the values of the ErrorCode object; docs/ERRORS.md says what each means). */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const KNOWN_CODES: ReadonlySet<string> = new Set(Object.values(ErrorCode));

/** True when `code` is one of the stable codes above (peers may send unknown ones). */
export function isErrorCode(code: string): code is ErrorCode {
  return KNOWN_CODES.has(code);
}

/** The optional parts of a RelaycastError. */
export interface RelaycastErrorOptions {
  /** Underlying error, kept for diagnosis. */
  cause?: unknown;
  /** Structured, non-secret context (URL, field name, limits). */
  details?: Record<string, unknown>;
}

/** The one base error of the project: every thrown error that crosses a package boundary is one. */
export class RelaycastError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: RelaycastErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RelaycastError';
    this.code = code;
    this.details = options.details;
  }

  toJSON(): { code: ErrorCode; message: string; details?: Record<string, unknown> } {
    return this.details === undefined ? { code: this.code, message: this.message } : { code: this.code, message: this.message, details: this.details };
  }
}

/** Narrowing helper: `isRelaycastError(e, ErrorCode.TIMEOUT)`. */
export function isRelaycastError(err: unknown, code?: ErrorCode): err is RelaycastError {
  return err instanceof RelaycastError && (code === undefined || err.code === code);
}

/** Wraps any thrown value so callers always see a RelaycastError. */
export function toRelaycastError(err: unknown, fallback: ErrorCode = ErrorCode.INTERNAL): RelaycastError {
  if (err instanceof RelaycastError) return err;
  if (isAbortError(err)) return new RelaycastError(ErrorCode.ABORTED, 'operation aborted', { cause: err });
  const message = err instanceof Error ? err.message : String(err);
  return new RelaycastError(fallback, message, { cause: err });
}

/** True for an abort: a DOM `AbortError` or `TimeoutError`, or RC_ERR_ABORTED. Callers treat it as expected, never as a failure to report. */
export function isAbortError(err: unknown): boolean {
  return (
    (err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError')) || (err instanceof RelaycastError && err.code === ErrorCode.ABORTED)
  );
}

/** Throws RC_ERR_ABORTED when `signal` is aborted; the standard first line of an async operation. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new RelaycastError(ErrorCode.ABORTED, 'operation aborted', { cause: signal.reason });
  }
}
