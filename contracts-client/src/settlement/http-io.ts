import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, RelaycastError, toRelaycastError } from '@relaycast/protocol';

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

/** Reads the whole body, refusing (RC_ERR_MESSAGE_TOO_LARGE) past `maxBytes` before buffering more. */
export function readBody(req: IncomingMessage, maxBytes: number, signal: AbortSignal): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tooLarge = (): RelaycastError => new RelaycastError(ErrorCode.MESSAGE_TOO_LARGE, `request body exceeds ${maxBytes} bytes`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(tooLarge());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const onAbort = (): void => {
      cleanup();
      reject(new RelaycastError(ErrorCode.ABORTED, 'request aborted'));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size > maxBytes) {
        cleanup();
        reject(tooLarge());
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks));
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(new RelaycastError(ErrorCode.ABORTED, 'request failed while reading', { cause: err }));
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      signal.removeEventListener('abort', onAbort);
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
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
