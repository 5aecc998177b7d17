import { ErrorCode, RelaycastError } from '@relaycast/protocol';

export interface OriginRequest {
  url: string;
  /** First byte wanted. */
  start: number;
  /** Exclusive end, or undefined for the rest of the resource. */
  end: number | undefined;
}

/** What the origin's status line and headers say about the body that follows. */
export interface OriginHead {
  /** 206: the body is the range in `firstByte`..`endByte`; 200: the whole resource. */
  status: 200 | 206;
  /** Offset in the resource of the first body byte (0 for a 200). */
  firstByte: number;
  /** Exclusive offset after the last body byte, when known. */
  endByte: number | undefined;
  /** Size of the whole resource, when known. */
  totalBytes: number | undefined;
}

export interface OriginResponse {
  head: OriginHead;
  body: ReadableStream<Uint8Array> | null;
}

const CONTENT_RANGE = /^bytes (\d+)-(\d+)\/(\d+|\*)$/;

/**
 * Sends one GET, with `Range: bytes=start-(end-1)` when `start > 0` or `end` is set, and reads the
 * head. Rejects with RC_ERR_ABORTED, RC_ERR_ORIGIN_UNREACHABLE (network), RC_ERR_SEGMENT_UNAVAILABLE
 * (404/410), RC_ERR_RANGE_NOT_SATISFIABLE (416) or RC_ERR_ORIGIN_HTTP (any other status, or a 206
 * without a usable Content-Range). Whether the body fits what was asked is the caller's decision.
 */
export async function openOrigin(fetchImpl: typeof fetch, req: OriginRequest, signal: AbortSignal): Promise<OriginResponse> {
  const headers: Record<string, string> = {};
  if (req.start > 0 || req.end !== undefined) headers['range'] = `bytes=${req.start}-${req.end === undefined ? '' : req.end - 1}`;
  let res: Response;
  try {
    res = await fetchImpl(req.url, { headers, signal });
  } catch (err) {
    if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'origin fetch aborted', { cause: err });
    throw new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, `origin fetch failed: ${String(err)}`, { cause: err, details: { url: req.url } });
  }
  const fail = (code: ErrorCode, message: string): never => {
    res.body?.cancel().catch(() => undefined);
    throw new RelaycastError(code, message, { details: { url: req.url, status: res.status } });
  };
  // A transfer coding changes what Content-Length counts; sizes are then unknown, not wrong.
  const encoding = res.headers.get('content-encoding');
  const sizesTrusted = encoding === null || encoding === 'identity';
  if (res.status === 206) {
    const m = CONTENT_RANGE.exec(res.headers.get('content-range') ?? '');
    if (m === null) return fail(ErrorCode.ORIGIN_HTTP, 'origin answered 206 without a usable Content-Range');
    const firstByte = Number(m[1]);
    const last = Number(m[2]);
    const totalBytes = m[3] === '*' ? undefined : Number(m[3]);
    if (last < firstByte || (totalBytes !== undefined && last >= totalBytes)) return fail(ErrorCode.ORIGIN_HTTP, 'origin sent an impossible Content-Range');
    return { head: { status: 206, firstByte, endByte: last + 1, totalBytes }, body: res.body };
  }
  if (res.status === 200) {
    const len = res.headers.get('content-length');
    const n = len === null || !/^\d+$/.test(len) || !sizesTrusted ? undefined : Number(len);
    return { head: { status: 200, firstByte: 0, endByte: n, totalBytes: n }, body: res.body };
  }
  if (res.status === 416) return fail(ErrorCode.RANGE_NOT_SATISFIABLE, 'origin refused the range');
  if (res.status === 404 || res.status === 410) return fail(ErrorCode.SEGMENT_UNAVAILABLE, `origin answered ${res.status}`);
  return fail(ErrorCode.ORIGIN_HTTP, `origin answered ${res.status}`);
}

/**
 * Reads `body` chunk by chunk into `onChunk` until it ends or `onChunk` returns false; always
 * releases the body. Network failures become RC_ERR_ORIGIN_UNREACHABLE (RC_ERR_ABORTED after an
 * abort); whatever `onChunk` throws passes through unchanged.
 */
export async function readBody(body: ReadableStream<Uint8Array> | null, signal: AbortSignal, onChunk: (chunk: Uint8Array) => boolean): Promise<void> {
  if (body === null) return;
  const reader = body.getReader();
  try {
    for (;;) {
      let next: ReadableStreamReadResult<Uint8Array>;
      try {
        next = await reader.read();
      } catch (err) {
        if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'origin fetch aborted', { cause: err });
        throw new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, 'origin body failed', { cause: err });
      }
      if (next.done) return;
      if (next.value.byteLength > 0 && !onChunk(next.value)) return;
    }
  } finally {
    reader.cancel().catch(() => undefined);
  }
}
