import { createHash } from 'node:crypto';
import { ErrorCode, isRelaycastError, toHex } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createOriginSegmentSource, type OriginSourceOptions } from './origin-segment-source.js';
import { deferred, serveBytes, sleep, startTestOrigin, testBytes, type TestOrigin } from '../testing/origin-server.js';
import type { SegmentSource, SegmentStream } from '../serve/segment-source.js';

let origin: TestOrigin;
let other: TestOrigin;
let source: SegmentSource;
const CHUNK = 64 * 1024 - 10;

function makeSource(extra: Partial<OriginSourceOptions> = {}): SegmentSource {
  source = createOriginSegmentSource({
    allowedOrigins: [origin.url('/media/')],
    relayId: 'relay-test',
    originTimeoutMs: 2000,
    originBodyTimeoutMs: 2000,
    livePollingEnabled: false,
    ...extra,
  });
  return source;
}

function open(url: string, extra: { range?: { start: number; end?: number }; maxChunkBytes?: number; signal?: AbortSignal } = {}): Promise<SegmentStream> {
  return source.open({ url, range: extra.range }, { signal: extra.signal ?? new AbortController().signal, maxChunkBytes: extra.maxChunkBytes ?? CHUNK });
}

async function collect(stream: SegmentStream): Promise<{ bytes: Uint8Array; sizes: number[] }> {
  const parts: Uint8Array[] = [];
  for await (const c of stream.chunks) parts.push(Uint8Array.from(c));
  return { bytes: Buffer.concat(parts), sizes: parts.map((p) => p.byteLength) };
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    if (isRelaycastError(err)) return err.code;
    throw err;
  }
  return 'resolved';
}

/** Large typed arrays compare by digest: vitest's element-wise equality is far too slow for them. */
function expectSame(actual: Uint8Array, expected: Uint8Array): void {
  expect(actual.byteLength).toBe(expected.byteLength);
  expect(toHex(sha256(actual))).toBe(toHex(sha256(expected)));
}

function sha256(bytes: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha256').update(bytes).digest());
}

beforeEach(async () => {
  origin = await startTestOrigin();
  other = await startTestOrigin();
});

afterEach(async () => {
  await source?.close();
  await origin.close();
  await other.close();
});

describe('allowlist before network', () => {
  it.each([
    '/private/a.ts',
    '/media-evil/a.ts',
    '/media/../private/a.ts',
    '/media/%2e%2e/private/a.ts',
    '/media/..%2fprivate%2fa.ts',
    '/media\\..\\private/a.ts',
  ])('refuses %s with zero requests at the origin', async (path) => {
    makeSource();
    origin.route('/private/a.ts', serveBytes(testBytes(10)));
    expect(await codeOf(open(origin.url(path)))).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
    expect(origin.count()).toBe(0);
  });

  it('refuses userinfo, other ports and IPv6 hosts not in the list with zero requests', async () => {
    makeSource();
    const port = origin.port;
    for (const url of [
      `http://user:pw@127.0.0.1:${port}/media/a.ts`,
      other.url('/media/a.ts'),
      `http://[::1]:${port}/media/a.ts`,
      `http://localhost:${port}/media/a.ts`,
    ]) {
      expect(await codeOf(open(url))).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
    }
    expect(origin.count() + other.count()).toBe(0);
  });

  it('refuses a disallowed playlist URL before polling it', async () => {
    makeSource({ livePollingEnabled: true });
    origin.route('/media/a.ts', serveBytes(testBytes(10)));
    const request = { url: origin.url('/media/a.ts'), playlistUrl: other.url('/media/live.m3u8') };
    const err = await codeOf(source.open(request, { signal: new AbortController().signal, maxChunkBytes: CHUNK }));
    expect(err).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
    await sleep(50);
    expect(other.count()).toBe(0);
    expect(origin.count()).toBe(0);
    expect(source.advertisedStreams()).toEqual([]);
  });

  it('follows a redirect that stays on the list', async () => {
    makeSource();
    const body = testBytes(5000);
    origin.route('/media/old.ts', (_req, res) => void res.writeHead(302, { location: '/media/new.ts' }).end());
    origin.route('/media/new.ts', serveBytes(body));
    const { bytes } = await collect(await open(origin.url('/media/old.ts')));
    expectSame(bytes, body);
    expect(origin.count('/media/new.ts')).toBe(1);
  });

  it('refuses redirects off the list without contacting the target', async () => {
    makeSource();
    origin.route('/media/to-private.ts', (_req, res) => void res.writeHead(302, { location: '/private/secret.ts' }).end());
    origin.route('/media/to-dotdot.ts', (_req, res) => void res.writeHead(301, { location: '/media/../private/secret.ts' }).end());
    origin.route('/media/to-other.ts', (_req, res) => void res.writeHead(307, { location: other.url('/media/a.ts') }).end());
    origin.route('/media/to-file.ts', (_req, res) => void res.writeHead(308, { location: 'file:///etc/passwd' }).end());
    origin.route('/media/to-userinfo.ts', (_req, res) => void res.writeHead(302, { location: `http://u:p@127.0.0.1:${origin.port}/media/a.ts` }).end());
    for (const p of ['/media/to-private.ts', '/media/to-dotdot.ts', '/media/to-other.ts', '/media/to-file.ts', '/media/to-userinfo.ts']) {
      expect(await codeOf(open(origin.url(p)))).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
    }
    expect(origin.count('/private/secret.ts')).toBe(0);
    expect(origin.count('/media/a.ts')).toBe(0);
    expect(other.count()).toBe(0);
  });
});

describe('coalescing and streaming', () => {
  it('serves 10 concurrent readers from exactly one origin request, streaming while it downloads', async () => {
    makeSource();
    const body = testBytes(600_000, 7);
    const gate = deferred();
    let originFinished = false;
    origin.route('/media/seg.ts', serveBytes(body, { chunkBytes: 50_000, delayMs: 5, gate: gate.promise, onFinished: () => (originFinished = true) }));

    // Five readers join before the first byte, then read the first chunk while the origin is held.
    const early = await Promise.all(Array.from({ length: 5 }, () => open(origin.url('/media/seg.ts'))));
    const firstChunks = await Promise.all(
      early.map(async (s) => {
        const it = s.chunks[Symbol.asyncIterator]();
        const first = await it.next();
        return { it, first: first.value as Uint8Array };
      }),
    );
    expect(originFinished).toBe(false);
    for (const { first } of firstChunks) expectSame(first, body.subarray(0, first.byteLength));
    for (const s of early) {
      expect(s.fromCache).toBe(false);
      expect(s.totalBytes).toBe(body.byteLength);
      expect(s.digest).toBeUndefined();
    }

    // Five more join mid-download; then the origin proceeds.
    const late = await Promise.all(Array.from({ length: 5 }, () => open(origin.url('/media/seg.ts'))));
    gate.resolve();

    const earlyBytes = await Promise.all(
      firstChunks.map(async ({ it, first }) => {
        const parts = [Uint8Array.from(first)];
        for (let r = await it.next(); r.done !== true; r = await it.next()) parts.push(Uint8Array.from(r.value));
        return Buffer.concat(parts);
      }),
    );
    const lateBytes = await Promise.all(late.map(async (s) => (await collect(s)).bytes));
    for (const b of [...earlyBytes, ...lateBytes]) expectSame(b, body);
    expect(origin.count('/media/seg.ts')).toBe(1);
  });

  it('slices chunks to maxChunkBytes, per reader', async () => {
    makeSource();
    const body = testBytes(100_000);
    origin.route('/media/a.ts', serveBytes(body));
    const [small, large] = await Promise.all([
      open(origin.url('/media/a.ts'), { maxChunkBytes: 1000 }),
      open(origin.url('/media/a.ts'), { maxChunkBytes: 30_000 }),
    ]);
    const a = await collect(small);
    const b = await collect(large);
    expectSame(a.bytes, body);
    expectSame(b.bytes, body);
    expect(Math.max(...a.sizes)).toBeLessThanOrEqual(1000);
    expect(Math.max(...b.sizes)).toBeLessThanOrEqual(30_000);
    const cached = await collect(await open(origin.url('/media/a.ts'), { maxChunkBytes: 777 }));
    expect(Math.max(...cached.sizes)).toBeLessThanOrEqual(777);
  });

  it('gives every reader a typed error when the origin dies mid-body', async () => {
    makeSource();
    const body = testBytes(200_000);
    origin.route('/media/dies.ts', serveBytes(body, { chunkBytes: 20_000, delayMs: 5, dieAfterBytes: 100_000 }));
    const streams = await Promise.all(Array.from({ length: 3 }, () => open(origin.url('/media/dies.ts'))));
    const codes = await Promise.all(streams.map((s) => codeOf(collect(s))));
    expect(codes).toEqual([ErrorCode.ORIGIN_UNREACHABLE, ErrorCode.ORIGIN_UNREACHABLE, ErrorCode.ORIGIN_UNREACHABLE]);
    // Nothing partial was cached: the next open goes to the origin again.
    origin.route('/media/dies.ts', serveBytes(body));
    expectSame((await collect(await open(origin.url('/media/dies.ts')))).bytes, body);
    expect(origin.count('/media/dies.ts')).toBe(2);
  });

  it('keeps downloading into the cache when every reader leaves', async () => {
    makeSource();
    const body = testBytes(300_000);
    origin.route('/media/left.ts', serveBytes(body, { chunkBytes: 30_000, delayMs: 5 }));
    const ac = new AbortController();
    const stream = await open(origin.url('/media/left.ts'), { signal: ac.signal });
    for await (const _ of stream.chunks) break;
    const stream2 = await open(origin.url('/media/left.ts'), { signal: ac.signal });
    ac.abort();
    expect(await codeOf(collect(stream2))).toBe(ErrorCode.ABORTED);
    await expect.poll(async () => (await open(origin.url('/media/left.ts'))).fromCache, { timeout: 5000 }).toBe(true);
    expect(origin.count('/media/left.ts')).toBe(1);
  });

  it('rejects an open whose signal aborts while waiting for the origin', async () => {
    makeSource();
    origin.route('/media/slow.ts', async (_req, res) => {
      await sleep(300);
      await serveBytes(testBytes(10))(_req, res);
    });
    const ac = new AbortController();
    const p = open(origin.url('/media/slow.ts'), { signal: ac.signal });
    setTimeout(() => ac.abort(), 20);
    expect(await codeOf(p)).toBe(ErrorCode.ABORTED);
  });

  it('aborts in-flight downloads on close', async () => {
    makeSource();
    const gate = deferred();
    origin.route('/media/held.ts', serveBytes(testBytes(100_000), { chunkBytes: 10_000, gate: gate.promise }));
    const stream = await open(origin.url('/media/held.ts'));
    const done = codeOf(collect(stream));
    await source.close();
    expect(await done).toBe(ErrorCode.ABORTED);
    expect(await codeOf(open(origin.url('/media/held.ts')))).toBe(ErrorCode.ABORTED);
    gate.resolve();
  });
});

describe('cache', () => {
  it('serves a second open from cache with the digest and no origin request', async () => {
    makeSource();
    const body = testBytes(10_000);
    origin.route('/media/c.ts?v=1', serveBytes(body));
    const first = await open(origin.url('/media/c.ts?v=1'));
    await collect(first);
    const second = await open(origin.url('/media/c.ts?v=1'));
    expect(second.fromCache).toBe(true);
    expect(second.totalBytes).toBe(body.byteLength);
    expect(second.digest).toEqual(sha256(body));
    expectSame((await collect(second)).bytes, body);
    expect(origin.count('/media/c.ts?v=1')).toBe(1);
    // By default the query is not part of the key (see 'cache key policy' below).
    origin.route('/media/c.ts?v=2', serveBytes(body));
    expect((await open(origin.url('/media/c.ts?v=2'))).fromCache).toBe(true);
    expect(origin.count('/media/c.ts?v=2')).toBe(0);
  });

  it('evicts the least recently used segment by bytes', async () => {
    makeSource({ cacheMaxBytes: 8000 }); // entries up to 1000 bytes, ~8 of 1000 bytes fit
    for (let i = 0; i < 9; i++) origin.route(`/media/s${i}.ts`, serveBytes(testBytes(1000, i + 1)));
    for (let i = 0; i < 8; i++) await collect(await open(origin.url(`/media/s${i}.ts`)));
    expect((await open(origin.url('/media/s0.ts'))).fromCache).toBe(true); // s0 becomes most recent
    await collect(await open(origin.url('/media/s8.ts'))); // evicts s1
    expect((await open(origin.url('/media/s0.ts'))).fromCache).toBe(true);
    expect((await open(origin.url('/media/s8.ts'))).fromCache).toBe(true);
    const s1 = await open(origin.url('/media/s1.ts'));
    expect(s1.fromCache).toBe(false);
    await collect(s1);
    expect(origin.count('/media/s1.ts')).toBe(2);
  });

  it('streams but does not cache a segment larger than the per-entry fraction', async () => {
    makeSource({ cacheMaxBytes: 8000 });
    const body = testBytes(1001);
    origin.route('/media/big.ts', serveBytes(body));
    expectSame((await collect(await open(origin.url('/media/big.ts')))).bytes, body);
    expectSame((await collect(await open(origin.url('/media/big.ts')))).bytes, body);
    expect(origin.count('/media/big.ts')).toBe(2);
  });
});

describe('ranges', () => {
  it('slices a range from the cached segment and from an in-flight download', async () => {
    makeSource();
    const body = testBytes(100_000);
    const gate = deferred();
    origin.route('/media/r.ts', serveBytes(body, { chunkBytes: 10_000, gate: gate.promise }));
    const inflight = await open(origin.url('/media/r.ts'), { range: { start: 25_000, end: 60_000 } });
    expect(inflight.offset).toBe(25_000);
    gate.resolve();
    expectSame((await collect(inflight)).bytes, body.subarray(25_000, 60_000));
    // The ranged reader ends before the download does; a whole read ends with it complete.
    await collect(await open(origin.url('/media/r.ts')));

    const cached = await open(origin.url('/media/r.ts'), { range: { start: 99_000 } });
    expect(cached.fromCache).toBe(true);
    expect(cached.offset).toBe(99_000);
    expectSame((await collect(cached)).bytes, body.subarray(99_000));

    const clamped = await open(origin.url('/media/r.ts'), { range: { start: 99_990, end: 200_000 } });
    expectSame((await collect(clamped)).bytes, body.subarray(99_990));
    expect(origin.count('/media/r.ts')).toBe(1);
  });

  it('answers a range starting at or beyond the size with RC_ERR_RANGE_NOT_SATISFIABLE', async () => {
    makeSource();
    origin.route('/media/r.ts', serveBytes(testBytes(1000)));
    expect(await codeOf(open(origin.url('/media/r.ts'), { range: { start: 1000 } }))).toBe(ErrorCode.RANGE_NOT_SATISFIABLE);
    expect(await codeOf(open(origin.url('/media/r.ts'), { range: { start: 5000, end: 6000 } }))).toBe(ErrorCode.RANGE_NOT_SATISFIABLE);
  });

  it('reports an unsatisfiable range from the stream when the size was unknown at open', async () => {
    makeSource();
    origin.route('/media/chunked.ts', serveBytes(testBytes(1000), { contentLength: false }));
    const stream = await open(origin.url('/media/chunked.ts'), { range: { start: 5000 } });
    expect(stream.totalBytes).toBeUndefined();
    expect(await codeOf(collect(stream))).toBe(ErrorCode.RANGE_NOT_SATISFIABLE);
  });
});

describe('origin failures', () => {
  it('answers 404 with RC_ERR_SEGMENT_UNAVAILABLE', async () => {
    makeSource();
    expect(await codeOf(open(origin.url('/media/nothing.ts')))).toBe(ErrorCode.SEGMENT_UNAVAILABLE);
    expect(origin.count('/media/nothing.ts')).toBe(1);
  });

  it('refuses an oversized segment announced by Content-Length', async () => {
    makeSource({ maxSegmentBytes: 50_000 });
    origin.route('/media/huge.ts', serveBytes(testBytes(50_001)));
    expect(await codeOf(open(origin.url('/media/huge.ts')))).toBe(ErrorCode.SEGMENT_TOO_LARGE);
  });

  it('aborts an oversized chunked download once it passes maxSegmentBytes', async () => {
    makeSource({ maxSegmentBytes: 50_000 });
    let originFinished = false;
    origin.route(
      '/media/huge.ts',
      serveBytes(testBytes(2_000_000), { contentLength: false, chunkBytes: 10_000, delayMs: 2, onFinished: () => (originFinished = true) }),
    );
    const stream = await open(origin.url('/media/huge.ts'));
    expect(await codeOf(collect(stream))).toBe(ErrorCode.SEGMENT_TOO_LARGE);
    await sleep(100);
    expect(originFinished).toBe(false);
  });
});

describe('cache key policy (query strings)', () => {
  it("fetches a segment once whatever query strings viewers add, with the first requester's URL, and keeps the cache", async () => {
    makeSource();
    const real = testBytes(40_000, 7);
    const seg = testBytes(100_000, 9);
    origin.route('/media/real.ts', serveBytes(real));
    origin.route('/media/seg.ts', serveBytes(seg));
    await collect(await open(origin.url('/media/real.ts')));
    for (let n = 1; n <= 25; n++) {
      const { bytes } = await collect(await open(origin.url(`/media/seg.ts?cb=${n}`), { range: { start: n, end: n + 1 } }));
      expect([...bytes]).toEqual([...seg.subarray(n, n + 1)]);
    }
    expect(origin.count()).toBe(2);
    expect(origin.count('/media/seg.ts?cb=1')).toBe(1);
    // The real segment is still cached: no second request, and served whole.
    const again = await open(origin.url('/media/real.ts?token=other-viewer'));
    expect(again.fromCache).toBe(true);
    expectSame((await collect(again)).bytes, real);
    expect(origin.count('/media/real.ts')).toBe(1);
  });

  it('coalesces concurrent requests with different tokens into one origin request', async () => {
    makeSource();
    const seg = testBytes(300_000, 3);
    const gate = deferred();
    origin.route('/media/tok.ts', serveBytes(seg, { chunkBytes: 50_000, gate: gate.promise }));
    const streams = await Promise.all([1, 2, 3].map((n) => open(origin.url(`/media/tok.ts?token=viewer${n}`))));
    gate.resolve();
    for (const s of streams) expectSame((await collect(s)).bytes, seg);
    expect(origin.count()).toBe(1);
    expect(origin.count('/media/tok.ts?token=viewer1')).toBe(1);
  });

  it("'keep' makes every query a distinct entry (the unsafe mode, for origins that choose content by query)", async () => {
    makeSource({ cacheKeyQuery: 'keep' });
    origin.route('/media/q.ts', serveBytes(testBytes(1000)));
    for (const n of [1, 2, 3]) await collect(await open(origin.url(`/media/q.ts?v=${n}`)));
    await collect(await open(origin.url('/media/q.ts?v=1')));
    expect(origin.count()).toBe(3);
  });

  it('refuses an unknown mode', () => {
    expect(() => makeSource({ cacheKeyQuery: 'strip' as never })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });
});

describe('origin-fetch accounting and rates', () => {
  function openAs(
    url: string,
    originKey: string,
    extra: { onOriginBytes?: (n: number) => void; allowOriginFetch?: boolean; range?: { start: number; end?: number } } = {},
  ): Promise<SegmentStream> {
    return source.open({ url, originKey, ...extra }, { signal: new AbortController().signal, maxChunkBytes: CHUNK });
  }

  it('reports the bytes a cache miss fetched to the request that started it, and 0 to joins and hits', async () => {
    makeSource();
    const seg = testBytes(200_000, 5);
    const gate = deferred();
    origin.route('/media/a.ts', serveBytes(seg, { chunkBytes: 40_000, gate: gate.promise }));
    let first = 0;
    let joined = 0;
    let hit = 0;
    const s1 = await openAs(origin.url('/media/a.ts'), 'ch1', { onOriginBytes: (n) => (first += n), range: { start: 0, end: 1 } });
    const s2 = await openAs(origin.url('/media/a.ts?x=1'), 'ch2', { onOriginBytes: (n) => (joined += n) });
    gate.resolve();
    await collect(s1);
    await collect(s2);
    await collect(await openAs(origin.url('/media/a.ts'), 'ch3', { onOriginBytes: (n) => (hit += n) }));
    // A 1-byte range still fetched (and is charged) the whole segment.
    expect(first).toBe(seg.byteLength);
    expect(joined).toBe(0);
    expect(hit).toBe(0);
    expect((source as unknown as { stats(): { originBytes: number } }).stats().originBytes).toBe(seg.byteLength);
  });

  it('refuses the next cache miss of a channel over its origin rate with RC_ERR_ORIGIN_BUDGET; hits and other channels are served', async () => {
    makeSource({ originChannelBytesPerSec: 1000, originChannelBurstBytes: 10_000 });
    for (const n of [1, 2, 3]) origin.route(`/media/s${n}.ts`, serveBytes(testBytes(50_000, n)));
    await collect(await openAs(origin.url('/media/s1.ts'), 'greedy'));
    expect(await codeOf(openAs(origin.url('/media/s2.ts'), 'greedy'))).toBe(ErrorCode.ORIGIN_BUDGET);
    expect(origin.count('/media/s2.ts')).toBe(0);
    // A cached segment costs the origin nothing: still served to the same channel.
    expect((await openAs(origin.url('/media/s1.ts'), 'greedy')).fromCache).toBe(true);
    // Another channel has its own bucket.
    expectSame((await collect(await openAs(origin.url('/media/s2.ts'), 'honest'))).bytes, testBytes(50_000, 2));
  });

  it('refuses cache misses once the relay-wide origin rate is in debt, and skips nothing cached', async () => {
    makeSource({ originRelayBytesPerSec: 1000, originRelayBurstBytes: 10_000, originChannelBytesPerSec: 0 });
    for (const n of [1, 2]) origin.route(`/media/r${n}.ts`, serveBytes(testBytes(50_000, n)));
    await collect(await openAs(origin.url('/media/r1.ts'), 'a'));
    expect(await codeOf(openAs(origin.url('/media/r2.ts'), 'b'))).toBe(ErrorCode.ORIGIN_BUDGET);
    expect((await openAs(origin.url('/media/r1.ts'), 'b')).fromCache).toBe(true);
    expect(origin.count('/media/r2.ts')).toBe(0);
  });

  it('lets a channel fetch again once its debt is paid back', async () => {
    makeSource({ originChannelBytesPerSec: 100_000, originChannelBurstBytes: 1_000 });
    origin.route('/media/p1.ts', serveBytes(testBytes(10_000, 1)));
    origin.route('/media/p2.ts', serveBytes(testBytes(10_000, 2)));
    await collect(await openAs(origin.url('/media/p1.ts'), 'k'));
    expect(await codeOf(openAs(origin.url('/media/p2.ts'), 'k'))).toBe(ErrorCode.ORIGIN_BUDGET);
    await sleep(150); // 9,000 bytes of debt at 100,000 bytes/s
    expectSame((await collect(await openAs(origin.url('/media/p2.ts'), 'k'))).bytes, testBytes(10_000, 2));
  });

  it('allowOriginFetch: false refuses a miss with RC_ERR_ORIGIN_BUDGET but serves hits and joins', async () => {
    makeSource();
    const seg = testBytes(100_000, 4);
    const gate = deferred();
    origin.route('/media/c.ts', serveBytes(seg, { chunkBytes: 20_000, gate: gate.promise }));
    origin.route('/media/d.ts', serveBytes(seg));
    expect(await codeOf(openAs(origin.url('/media/d.ts'), 'broke', { allowOriginFetch: false }))).toBe(ErrorCode.ORIGIN_BUDGET);
    expect(origin.count('/media/d.ts')).toBe(0);
    const starter = await openAs(origin.url('/media/c.ts'), 'payer');
    const join = await openAs(origin.url('/media/c.ts'), 'broke', { allowOriginFetch: false });
    gate.resolve();
    expectSame((await collect(join)).bytes, seg);
    await collect(starter);
    expect((await openAs(origin.url('/media/c.ts'), 'broke', { allowOriginFetch: false })).fromCache).toBe(true);
  });
});
