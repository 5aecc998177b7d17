import { ErrorCode, RelaycastError } from '@relaycast/protocol';

export interface OriginFetchRequest {
  url: string;
  /** First byte wanted. */
  start: number;
  /** Exclusive end, or undefined for the rest of the resource. */
  end: number | undefined;
}

export interface OriginFetchResult {
  /** Size of the whole resource when the origin told it. */
  totalBytes: number | undefined;
}

/**
 * Fetches `[start, end)` from the origin and streams it to `onData`. Uses an HTTP Range when
 * `start > 0` or `end` is set; if the origin ignores the Range and answers 200, the unwanted
 * prefix is skipped and the body cut at `end`, so callers always get exactly the bytes asked for.
 */
export async function fetchFromOrigin(
  fetchImpl: typeof fetch,
  req: OriginFetchRequest,
  opts: { signal: AbortSignal; maxBytes: number; onData: (chunk: Uint8Array) => void },
): Promise<OriginFetchResult> {
  const headers: Record<string, string> = {};
  const ranged = req.start > 0 || req.end !== undefined;
  if (ranged) headers['range'] = `bytes=${req.start}-${req.end === undefined ? '' : req.end - 1}`;
  let res: Response;
  try {
    res = await fetchImpl(req.url, { headers, signal: opts.signal });
  } catch (err) {
    if (opts.signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'origin fetch aborted', { cause: err });
    throw new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, `origin fetch failed: ${String(err)}`, { cause: err });
  }
  let skip = 0;
  let totalBytes: number | undefined;
  if (res.status === 206) {
    const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(res.headers.get('content-range') ?? '');
    if (m === null || Number(m[1]) !== req.start) {
      throw new RelaycastError(ErrorCode.ORIGIN_HTTP, 'origin answered a different range than asked', { details: { status: 206 } });
    }
    totalBytes = m[3] === '*' ? undefined : Number(m[3]);
  } else if (res.status === 200) {
    skip = req.start;
    const len = res.headers.get('content-length');
    totalBytes = len === null ? undefined : Number(len);
  } else if (res.status === 416) {
    throw new RelaycastError(ErrorCode.RANGE_NOT_SATISFIABLE, 'origin refused the range', { details: { status: 416 } });
  } else if (res.status === 404 || res.status === 410) {
    throw new RelaycastError(ErrorCode.SEGMENT_UNAVAILABLE, `origin answered ${res.status}`, { details: { status: res.status } });
  } else {
    throw new RelaycastError(ErrorCode.ORIGIN_HTTP, `origin answered ${res.status}`, { details: { status: res.status } });
  }
  const want = req.end === undefined ? Infinity : req.end - req.start;
  if (want !== Infinity && want > opts.maxBytes) throw new RelaycastError(ErrorCode.SEGMENT_TOO_LARGE, 'segment exceeds maxBytes');
  if (res.body === null) return { totalBytes };
  const reader = res.body.getReader();
  let delivered = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let chunk = value;
      if (skip > 0) {
        const drop = Math.min(skip, chunk.byteLength);
        skip -= drop;
        chunk = chunk.subarray(drop);
      }
      if (delivered + chunk.byteLength > want) chunk = chunk.subarray(0, want - delivered);
      if (chunk.byteLength > 0) {
        delivered += chunk.byteLength;
        if (delivered > opts.maxBytes) throw new RelaycastError(ErrorCode.SEGMENT_TOO_LARGE, 'segment exceeds maxBytes');
        opts.onData(chunk);
      }
      if (delivered >= want) break;
    }
  } catch (err) {
    if (err instanceof RelaycastError) throw err;
    if (opts.signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'origin fetch aborted', { cause: err });
    throw new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, 'origin body failed', { cause: err });
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return { totalBytes };
}
