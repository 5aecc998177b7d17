import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OriginFetcher } from './origin-fetcher.js';
import { createOriginPolicy } from './origin-policy.js';
import { serveBytes, startTestOrigin, testBytes, type TestOrigin } from './origin-test-server.js';

let origin: TestOrigin;
let fetcher: OriginFetcher;
const signal = new AbortController().signal;

async function errorOf(p: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> | undefined }> {
  try {
    await p;
  } catch (err) {
    if (isRelaycastError(err)) return { code: err.code, details: err.details };
    throw err;
  }
  throw new Error('expected a rejection');
}

async function readAll(body: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of body) parts.push(c);
  return Buffer.concat(parts);
}

beforeEach(async () => {
  origin = await startTestOrigin();
  fetcher = new OriginFetcher({
    policy: createOriginPolicy([origin.url('/media/')]),
    relayId: 'relay-123',
    originTimeoutMs: 300,
    originBodyTimeoutMs: 300,
  });
});

afterEach(async () => {
  await fetcher.close();
  await origin.close();
});

describe('OriginFetcher', () => {
  it('sends GET with identity encoding and the relay id header', async () => {
    const body = testBytes(1000);
    origin.route('/media/a.ts', serveBytes(body));
    const res = await fetcher.get(new URL(origin.url('/media/a.ts')), { signal, maxBytes: 10_000 });
    expect(res.contentLength).toBe(1000);
    expect(await readAll(res.body)).toEqual(Buffer.from(body));
    const headers = origin.lastHeaders('/media/a.ts');
    expect(headers?.['x-relaycast-relay-id']).toBe('relay-123');
    expect(headers?.['accept-encoding']).toBe('identity');
  });

  it('maps 404 and 410 to RC_ERR_SEGMENT_UNAVAILABLE and 500 to RC_ERR_ORIGIN_HTTP with the status', async () => {
    origin.route('/media/gone.ts', (_req, res) => void res.writeHead(410).end());
    origin.route('/media/err.ts', (_req, res) => void res.writeHead(500).end('boom'));
    const url = (p: string): URL => new URL(origin.url(p));
    expect((await errorOf(fetcher.get(url('/media/missing.ts'), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.SEGMENT_UNAVAILABLE);
    expect((await errorOf(fetcher.get(url('/media/gone.ts'), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.SEGMENT_UNAVAILABLE);
    const e = await errorOf(fetcher.get(url('/media/err.ts'), { signal, maxBytes: 100 }));
    expect(e.code).toBe(ErrorCode.ORIGIN_HTTP);
    expect(e.details?.['status']).toBe(500);
  });

  it('refuses an encoded body and a partial response', async () => {
    origin.route('/media/gz.ts', serveBytes(testBytes(10), { extraHeaders: { 'content-encoding': 'gzip' } }));
    origin.route('/media/partial.ts', serveBytes(testBytes(10), { status: 206 }));
    expect((await errorOf(fetcher.get(new URL(origin.url('/media/gz.ts')), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.ORIGIN_HTTP);
    expect((await errorOf(fetcher.get(new URL(origin.url('/media/partial.ts')), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.ORIGIN_HTTP);
  });

  it('times out waiting for headers with RC_ERR_TIMEOUT', async () => {
    origin.route('/media/hang.ts', () => undefined);
    const e = await errorOf(fetcher.get(new URL(origin.url('/media/hang.ts')), { signal, maxBytes: 100 }));
    expect(e.code).toBe(ErrorCode.TIMEOUT);
  });

  it('times out when the body stalls with RC_ERR_TIMEOUT', async () => {
    origin.route('/media/stall.ts', (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write(Buffer.alloc(10));
    });
    const res = await fetcher.get(new URL(origin.url('/media/stall.ts')), { signal, maxBytes: 1000 });
    expect((await errorOf(readAll(res.body))).code).toBe(ErrorCode.TIMEOUT);
  });

  it('maps a refused connection to RC_ERR_ORIGIN_UNREACHABLE', async () => {
    const dead = await startTestOrigin();
    const deadUrl = dead.url('/media/a.ts');
    await dead.close();
    const f = new OriginFetcher({ policy: createOriginPolicy([dead.url('/media/')]) });
    try {
      expect((await errorOf(f.get(new URL(deadUrl), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.ORIGIN_UNREACHABLE);
    } finally {
      await f.close();
    }
  });

  it('maps an abort to RC_ERR_ABORTED', async () => {
    origin.route('/media/hang.ts', () => undefined);
    const ac = new AbortController();
    const p = fetcher.get(new URL(origin.url('/media/hang.ts')), { signal: ac.signal, maxBytes: 100 });
    setTimeout(() => ac.abort(), 20);
    expect((await errorOf(p)).code).toBe(ErrorCode.ABORTED);
  });

  it('refuses a Content-Length above maxBytes with RC_ERR_SEGMENT_TOO_LARGE', async () => {
    origin.route('/media/big.ts', serveBytes(testBytes(2000)));
    const e = await errorOf(fetcher.get(new URL(origin.url('/media/big.ts')), { signal, maxBytes: 1000 }));
    expect(e.code).toBe(ErrorCode.SEGMENT_TOO_LARGE);
  });

  it('gives up after maxRedirects hops with RC_ERR_ORIGIN_HTTP', async () => {
    origin.route('/media/loop.ts', (_req, res) => void res.writeHead(302, { location: '/media/loop.ts' }).end());
    const e = await errorOf(fetcher.get(new URL(origin.url('/media/loop.ts')), { signal, maxBytes: 100 }));
    expect(e.code).toBe(ErrorCode.ORIGIN_HTTP);
    expect(origin.count('/media/loop.ts')).toBe(4); // the request and 3 redirects
  });
});
