import { ErrorCode, RELAY_ID_HEADER, isRelaycastError } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OriginFetcher } from './origin-fetcher.js';
import { createOriginPolicy } from './origin-policy.js';
import { serveBytes, startTestOrigin, testBytes, type TestOrigin } from '../testing/origin-server.js';

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
    expect(headers?.[RELAY_ID_HEADER]).toBe('relay-123');
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

describe('OriginFetcher: host names that resolve to internal addresses', () => {
  const resolvingTo =
    (table: Record<string, string[]>) =>
    async (hostname: string): Promise<{ address: string; family: number }[]> =>
      (table[hostname] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

  it('refuses an allowlisted name that resolves to loopback the allowlist does not name, before connecting', async () => {
    origin.route('/media/a.ts', serveBytes(testBytes(10)));
    const f = new OriginFetcher({
      policy: createOriginPolicy([`http://cdn.test:${origin.port}/media/`]),
      resolveHost: resolvingTo({ 'cdn.test': ['127.0.0.1'] }),
    });
    try {
      const e = await errorOf(f.get(new URL(`http://cdn.test:${origin.port}/media/a.ts`), { signal, maxBytes: 100 }));
      expect(e.code).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
      expect(e.details?.['address']).toBe('127.0.0.1');
      expect(origin.count()).toBe(0);
    } finally {
      await f.close();
    }
  });

  it('refuses a name with any internal address among public ones', async () => {
    const f = new OriginFetcher({
      policy: createOriginPolicy(['https://cdn.test/media/']),
      resolveHost: resolvingTo({ 'cdn.test': ['93.184.216.34', '169.254.169.254'] }),
    });
    try {
      expect((await errorOf(f.get(new URL('https://cdn.test/media/a.ts'), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
    } finally {
      await f.close();
    }
  });

  it('refuses a redirect from the explicitly allowed loopback origin to a name resolving to another loopback port', async () => {
    const other = await startTestOrigin();
    other.route('/media/secret.ts', serveBytes(testBytes(10)));
    origin.route('/media/away.ts', (_req, res) => void res.writeHead(302, { location: `http://internal.test:${other.port}/media/secret.ts` }).end());
    const f = new OriginFetcher({
      policy: createOriginPolicy([origin.url('/media/'), `http://internal.test:${other.port}/media/`]),
      resolveHost: resolvingTo({ 'internal.test': ['127.0.0.1'] }),
    });
    try {
      expect((await errorOf(f.get(new URL(origin.url('/media/away.ts')), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
      expect(origin.count('/media/away.ts')).toBe(1);
      expect(other.count()).toBe(0);
    } finally {
      await f.close();
      await other.close();
    }
  });

  it('follows a name to an internal address and port the allowlist names as a literal', async () => {
    const body = testBytes(100);
    origin.route('/media/a.ts', serveBytes(body));
    origin.route('/media/r.ts', (_req, res) => void res.writeHead(302, { location: `http://alias.test:${origin.port}/media/a.ts` }).end());
    const f = new OriginFetcher({
      policy: createOriginPolicy([origin.url('/media/'), `http://alias.test:${origin.port}/media/`]),
      resolveHost: resolvingTo({ 'alias.test': ['127.0.0.1'] }),
    });
    try {
      const res = await f.get(new URL(origin.url('/media/r.ts')), { signal, maxBytes: 1000 });
      expect(res.url.host).toBe(`alias.test:${origin.port}`);
      expect(await readAll(res.body)).toEqual(Buffer.from(body));
      // The origin saw the name, not the address, in the Host header.
      expect(origin.lastHeaders('/media/a.ts')?.host).toBe(`alias.test:${origin.port}`);
    } finally {
      await f.close();
    }
  });

  it('keeps an allowlisted localhost origin working through the system resolver', async () => {
    const body = testBytes(50);
    origin.route('/media/a.ts', serveBytes(body));
    const f = new OriginFetcher({ policy: createOriginPolicy([`http://localhost:${origin.port}/media/`]) });
    try {
      const res = await f.get(new URL(`http://localhost:${origin.port}/media/a.ts`), { signal, maxBytes: 1000 });
      expect(await readAll(res.body)).toEqual(Buffer.from(body));
    } finally {
      await f.close();
    }
  });

  it('gives a resolver that never answers the connect timeout, as RC_ERR_TIMEOUT', async () => {
    const f = new OriginFetcher({
      policy: createOriginPolicy(['http://slow.test/media/']),
      originConnectTimeoutMs: 100,
      resolveHost: () => new Promise(() => undefined),
    });
    try {
      expect((await errorOf(f.get(new URL('http://slow.test/media/a.ts'), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.TIMEOUT);
    } finally {
      await f.close();
    }
  });

  it('maps a name that does not resolve to RC_ERR_ORIGIN_UNREACHABLE', async () => {
    const f = new OriginFetcher({ policy: createOriginPolicy(['http://nowhere.test/media/']), resolveHost: resolvingTo({}) });
    try {
      expect((await errorOf(f.get(new URL('http://nowhere.test/media/a.ts'), { signal, maxBytes: 100 }))).code).toBe(ErrorCode.ORIGIN_UNREACHABLE);
    } finally {
      await f.close();
    }
  });
});
