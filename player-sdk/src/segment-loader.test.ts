import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, FrameType, RelaycastError, type ResponseFrame } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectionManager } from './connection-manager.js';
import type { RelayConnection, RelayRequest, RelayRequestHandlers } from './relay-connection.js';
import { SdkStats } from './stats.js';
import { SegmentLoader } from './segment-loader.js';

/**
 * The loader's fallback logic against a real HTTP origin. The relay side is a scripted stand-in for
 * RelayConnection (said here on purpose): real relays over WebRTC are covered by the end-to-end
 * tests in test/; here each failure mode is produced exactly, at a chosen byte.
 */
const BODY = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31 + 7) % 251));
let server: Server;
let base: string;
const ranges: (string | undefined)[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    ranges.push(req.headers.range);
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m === null) {
      res.writeHead(200, { 'content-length': BODY.length }).end(BODY);
      return;
    }
    const start = Number(m[1]);
    const end = m[2] === '' ? BODY.length - 1 : Number(m[2]);
    res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${BODY.length}` }).end(BODY.subarray(start, end + 1));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

type Script = (req: RelayRequest, h: RelayRequestHandlers) => Promise<number>;

/** Streams `bytes` of the body from `offset` in 16 KiB chunks, then resolves like an END frame. */
async function stream(h: RelayRequestHandlers, offset: number, bytes: Buffer, total = BODY.length): Promise<number> {
  const response: ResponseFrame = { type: FrameType.RESPONSE, requestId: 1, offset, totalBytes: total };
  h.onResponse(response);
  for (let i = 0; i < bytes.length; i += 16_384) {
    await new Promise((r) => setImmediate(r));
    if (h.signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'cancelled');
    h.onData(new Uint8Array(bytes.subarray(i, i + 16_384)));
  }
  return bytes.length;
}

function hangUntilAborted(h: RelayRequestHandlers): Promise<number> {
  return new Promise((_, reject) => h.signal.addEventListener('abort', () => reject(new RelaycastError(ErrorCode.ABORTED, 'cancelled'))));
}

function setup(script: Script | undefined) {
  const failures: string[] = [];
  const signals: AbortSignal[] = [];
  const conn = {
    relayId: 'relayA',
    activeRequests: 0,
    throughputBytesPerMs: 0,
    request: (req: RelayRequest, h: RelayRequestHandlers) => {
      signals.push(h.signal);
      return (script as Script)(req, h);
    },
    recordTransfer: () => undefined,
  } as unknown as RelayConnection;
  const manager = {
    pick: () => (script === undefined ? undefined : conn),
    reportFailure: (_id: string, reason: string) => failures.push(reason),
    reportSuccess: () => undefined,
  } as unknown as ConnectionManager;
  const stats = new SdkStats();
  const loader = new SegmentLoader({ manager, stats, ttfbTimeoutMs: 150, stallTimeoutMs: 150 });
  return { loader, stats, failures, signals };
}

async function load(loader: SegmentLoader, range?: { start: number; end?: number }, signal?: AbortSignal) {
  const seen: Uint8Array[] = [];
  const result = await loader.load({ url: `${base}/seg.ts`, range }, { signal, onProgress: (chunk) => seen.push(chunk) });
  // Every byte reaches onProgress exactly once, in order.
  expect(Buffer.compare(Buffer.concat(seen), Buffer.from(result.data))).toBe(0);
  return result;
}

describe('SegmentLoader', () => {
  it('serves from the relay when it delivers', async () => {
    const { loader, stats } = setup((_req, h) => stream(h, 0, BODY));
    ranges.length = 0;
    const r = await load(loader);
    expect(Buffer.compare(Buffer.from(r.data), BODY)).toBe(0);
    expect(r.bytesFromRelay).toBe(BODY.length);
    expect(r.fallbackReason).toBeUndefined();
    expect(ranges).toEqual([]);
    expect(stats.snapshot().relayShare).toBe(1);
  });

  it('falls back to the origin when the first byte misses the deadline, and cancels the relay request', async () => {
    const { loader, stats, failures, signals } = setup((_req, h) => hangUntilAborted(h));
    ranges.length = 0;
    const r = await load(loader);
    expect(Buffer.compare(Buffer.from(r.data), BODY)).toBe(0);
    expect(r.fallbackReason).toBe('ttfb-timeout');
    expect(signals[0]?.aborted).toBe(true);
    expect(ranges).toEqual([undefined]);
    expect(failures).toEqual(['ttfb-timeout']);
    expect(stats.snapshot().fallbacks.byReason['ttfb-timeout']).toBe(1);
  });

  it('resumes from the origin with a Range after a stall mid-transfer', async () => {
    const { loader } = setup(async (_req, h) => {
      await stream(h, 0, BODY.subarray(0, 50_000));
      return hangUntilAborted(h);
    });
    ranges.length = 0;
    const r = await load(loader);
    expect(Buffer.compare(Buffer.from(r.data), BODY)).toBe(0);
    expect(r.fallbackReason).toBe('stall');
    expect(r.bytesFromRelay).toBe(50_000);
    expect(r.bytesFromOrigin).toBe(BODY.length - 50_000);
    expect(ranges).toEqual(['bytes=50000-']);
  });

  it('resumes after the channel closes mid-transfer', async () => {
    const { loader } = setup(async (_req, h) => {
      await stream(h, 0, BODY.subarray(0, 32_768));
      throw new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'gone');
    });
    ranges.length = 0;
    const r = await load(loader);
    expect(Buffer.compare(Buffer.from(r.data), BODY)).toBe(0);
    expect(r.fallbackReason).toBe('channel-closed');
    expect(ranges).toEqual(['bytes=32768-']);
  });

  it('treats a relay that ends early as failed and fetches the rest', async () => {
    const { loader } = setup((_req, h) => stream(h, 0, BODY.subarray(0, 10_000)));
    ranges.length = 0;
    const r = await load(loader);
    expect(Buffer.compare(Buffer.from(r.data), BODY)).toBe(0);
    expect(r.fallbackReason).toBe('relay-error');
    expect(ranges).toEqual(['bytes=10000-']);
  });

  it('goes to the origin on ABSENT without blaming the relay', async () => {
    const { loader, failures } = setup(() => Promise.reject(new RelaycastError(ErrorCode.SEGMENT_UNAVAILABLE, 'absent')));
    const r = await load(loader);
    expect(Buffer.compare(Buffer.from(r.data), BODY)).toBe(0);
    expect(r.fallbackReason).toBe('absent');
    expect(failures).toEqual([]);
  });

  it('keeps a requested range half-open when resuming', async () => {
    const { loader } = setup(async (req, h) => {
      await stream(h, req.range?.start ?? 0, BODY.subarray(1_000, 4_000));
      return hangUntilAborted(h);
    });
    ranges.length = 0;
    const r = await load(loader, { start: 1_000, end: 11_000 });
    expect(Buffer.compare(Buffer.from(r.data), BODY.subarray(1_000, 11_000))).toBe(0);
    expect(ranges).toEqual(['bytes=4000-10999']);
  });

  it('loads from the origin when no relay is connected', async () => {
    const { loader, stats } = setup(undefined);
    const r = await load(loader);
    expect(Buffer.compare(Buffer.from(r.data), BODY)).toBe(0);
    expect(r.fallbackReason).toBe('no-relay');
    expect(stats.snapshot().bytesFromOrigin).toBe(BODY.length);
  });

  it('rejects with RC_ERR_ABORTED and cancels the relay request when the caller aborts', async () => {
    const { loader, signals } = setup((_req, h) => hangUntilAborted(h));
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    await expect(load(loader, undefined, controller.signal)).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    expect(signals[0]?.aborted).toBe(true);
  });
});
