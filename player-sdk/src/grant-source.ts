import { ErrorCode, RelaycastError, decodeSignedGrant, encodeBase58, type SignedGrant } from '@relaycast/protocol';
import { decodeSettlerError, signedGrantOf, type GrantRequestBody } from '@relaycast/protocol/settlement';
import { DEFAULT_GRANT_TIMEOUT_MS } from './constants.js';

/** How the SDK obtains the platform's signed grant for its session key. */
export interface PaymentsOptions {
  /**
   * The platform's grant endpoint (its settlement service's `POST /v1/grants`, or a route of its own
   * web app that forwards there after checking the user's login). Called with credentials, so the
   * platform's session cookie decides. Required unless `getGrant` is given.
   */
  grantUrl?: string | undefined;
  /** Custom way to obtain a signed grant (raw bytes) for `sessionKey`. Default: POST to grantUrl. */
  getGrant?: ((request: GrantRequestBody, signal: AbortSignal) => Promise<Uint8Array>) | undefined;
  /** URL prefix the grant should cover. Default: the directory of the master playlist (swarm id). */
  scope?: string | undefined;
  /** Time limit of one grant request. Default: DEFAULT_GRANT_TIMEOUT_MS (10 s). */
  timeoutMs?: number | undefined;
}

/** Fetches and checks a grant: it must name our session key and not be expired. */
export async function obtainGrant(
  options: PaymentsOptions,
  sessionKey: Uint8Array,
  scope: string,
  fetchImpl: typeof fetch,
  signal: AbortSignal,
): Promise<SignedGrant> {
  const request: GrantRequestBody = { sessionKey: encodeBase58(sessionKey), scope };
  const timeout = AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs ?? DEFAULT_GRANT_TIMEOUT_MS)]);
  let bytes: Uint8Array;
  if (options.getGrant !== undefined) {
    bytes = await options.getGrant(request, timeout);
  } else if (options.grantUrl !== undefined) {
    let res: Response;
    try {
      res = await fetchImpl(options.grantUrl, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request),
        credentials: 'include',
        signal: timeout,
      });
    } catch (err) {
      if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'grant request aborted', { cause: err });
      throw new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, 'grant endpoint unreachable', { cause: err });
    }
    const body: unknown = await res.json().catch(() => undefined);
    if (!res.ok) {
      const code = res.status === 403 ? ErrorCode.GRANT_REFUSED : ErrorCode.SETTLEMENT_UNAVAILABLE;
      throw new RelaycastError(code, `grant endpoint answered ${res.status}`, { details: { status: res.status, serverCode: decodeSettlerError(body)?.code } });
    }
    const decoded = signedGrantOf(body);
    if (decoded === undefined) throw new RelaycastError(ErrorCode.RECEIPT_MALFORMED, 'grant endpoint answered without a base64 grant');
    bytes = decoded;
  } else {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'payments need grantUrl or getGrant');
  }
  const grant = decodeSignedGrant(bytes);
  if (encodeBase58(grant.grant.sessionKey) !== request.sessionKey) throw new RelaycastError(ErrorCode.RECEIPT_NO_GRANT, 'grant names another session key');
  if (grant.grant.expiresAtMs <= Date.now()) throw new RelaycastError(ErrorCode.GRANT_EXPIRED, 'grant already expired');
  return grant;
}
