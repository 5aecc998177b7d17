import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FragmentLoaderContext, HlsConfig, Loader, LoaderCallbacks, LoaderConfiguration, LoaderStats } from 'hls.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RelaycastClient } from '../relaycast-client.js';
import { createFragmentLoaderClass } from './fragment-loader.js';

/** The hls.js loader contract, checked in Node against a real origin (no relays, no browser). */
const BODY = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) % 256));
let server: Server;
let base: string;
const seen: IncomingHttpHeaders[] = [];
let slow = false;

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(req.headers);
    const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
    const body = m === null ? BODY : BODY.subarray(Number(m[1]), Number(m[2]) + 1);
    res.writeHead(m === null ? 200 : 206, {
      'content-length': body.length,
      ...(m === null ? {} : { 'content-range': `bytes ${m[1]}-${m[2]}/${BODY.length}` }),
    });
    if (!slow) return res.end(body);
    res.write(body.subarray(0, 1000));
    setTimeout(() => res.end(body.subarray(1000)), 2_000).unref();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => {
  server.closeAllConnections();
  server.close();
});

const LOADER_CONFIG = { timeout: 10_000, maxRetry: 0, retryDelay: 0, maxRetryDelay: 0 } as unknown as LoaderConfiguration;

class StubDefaultLoader implements Loader<FragmentLoaderContext> {
  static last: StubDefaultLoader | undefined;
  context: FragmentLoaderContext | null = null;
  stats = {} as LoaderStats;
  startAtLoad = -1;
  constructor() {
    StubDefaultLoader.last = this;
  }
  load(context: FragmentLoaderContext): void {
    this.context = context;
    this.startAtLoad = this.stats.loading.start;
  }
  abort(): void {}
  destroy(): void {}
}

function setup(client: RelaycastClient | undefined) {
  const Loader = createFragmentLoaderClass({ client: () => client, DefaultLoader: StubDefaultLoader, ttfbTimeoutMs: () => 1_000 });
  return new Loader({} as HlsConfig);
}

function context(url: string, extra: Partial<FragmentLoaderContext> = {}): FragmentLoaderContext {
  return {
    url,
    responseType: 'arraybuffer',
    type: 'media-fragment',
    frag: { sn: 3, baseurl: `${base}/index.m3u8` },
    part: null,
    ...extra,
  } as unknown as FragmentLoaderContext;
}

function callbacks() {
  return {
    onSuccess: vi.fn(),
    onError: vi.fn(),
    onTimeout: vi.fn(),
    onAbort: vi.fn(),
    onProgress: vi.fn(),
  } satisfies LoaderCallbacks<FragmentLoaderContext>;
}

describe('Relaycast fragment loader (hls.js contract)', () => {
  it('keeps one stats object, created in the constructor, and fills it with the real transfer', async () => {
    const client = new RelaycastClient({ swarmId: `${base}/master.m3u8` });
    const loader = setup(client);
    const stats = loader.stats;
    const cb = callbacks();
    loader.load(context(`${base}/seg3.ts`), LOADER_CONFIG, cb);
    await vi.waitFor(() => expect(cb.onSuccess).toHaveBeenCalledTimes(1));
    const [response, gotStats] = cb.onSuccess.mock.calls[0] as [{ data: ArrayBuffer }, LoaderStats];
    expect(gotStats).toBe(stats);
    expect(loader.stats).toBe(stats);
    expect(Buffer.compare(Buffer.from(response.data), BODY)).toBe(0);
    expect(stats.loaded).toBe(BODY.length);
    expect(stats.total).toBe(BODY.length);
    expect(stats.loading.start).toBeGreaterThan(0);
    expect(stats.loading.first).toBeGreaterThanOrEqual(stats.loading.start);
    expect(stats.loading.end).toBeGreaterThanOrEqual(stats.loading.first);
    expect(stats.aborted).toBe(false);
    await client.close();
  });

  it('treats rangeEnd as exclusive', async () => {
    const client = new RelaycastClient({ swarmId: `${base}/master.m3u8` });
    const loader = setup(client);
    const cb = callbacks();
    seen.length = 0;
    loader.load(context(`${base}/seg3.ts`, { rangeStart: 1000, rangeEnd: 3000 }), LOADER_CONFIG, cb);
    await vi.waitFor(() => expect(cb.onSuccess).toHaveBeenCalledTimes(1));
    const data = Buffer.from((cb.onSuccess.mock.calls[0]?.[0] as { data: ArrayBuffer }).data);
    expect(data.length).toBe(2000);
    expect(Buffer.compare(data, BODY.subarray(1000, 3000))).toBe(0);
    expect(seen[0]?.range).toBe('bytes=1000-2999');
    await client.close();
  });

  it('abort() marks the stats, reports once through onAbort, and can be called twice', async () => {
    slow = true;
    const client = new RelaycastClient({ swarmId: `${base}/master.m3u8` });
    const loader = setup(client);
    const cb = callbacks();
    loader.load(context(`${base}/seg3.ts`), LOADER_CONFIG, cb);
    await vi.waitFor(() => expect(loader.stats.loaded).toBeGreaterThan(0));
    loader.abort();
    loader.abort();
    expect(loader.stats.aborted).toBe(true);
    expect(cb.onAbort).toHaveBeenCalledTimes(1);
    expect(cb.onAbort.mock.calls[0]?.[0]).toBe(loader.stats);
    await new Promise((r) => setTimeout(r, 2_300));
    expect(cb.onSuccess).not.toHaveBeenCalled();
    expect(cb.onError).not.toHaveBeenCalled();
    slow = false;
    await client.close();
  });

  it('destroy() can be called twice and silences every callback', async () => {
    slow = true;
    const client = new RelaycastClient({ swarmId: `${base}/master.m3u8` });
    const loader = setup(client);
    const cb = callbacks();
    loader.load(context(`${base}/seg3.ts`), LOADER_CONFIG, cb);
    loader.destroy();
    expect(() => loader.destroy()).not.toThrow();
    await new Promise((r) => setTimeout(r, 2_300));
    expect(cb.onSuccess).not.toHaveBeenCalled();
    expect(cb.onError).not.toHaveBeenCalled();
    slow = false;
    await client.close();
  });

  it('hands init segments to the default loader with the same stats object and a reset start', () => {
    const client = new RelaycastClient({ swarmId: `${base}/master.m3u8` });
    const loader = setup(client);
    loader.stats.loading.start = 123;
    const ctx = context(`${base}/init.mp4`, { frag: { sn: 'initSegment', baseurl: `${base}/index.m3u8` } as never });
    loader.load(ctx, LOADER_CONFIG, callbacks());
    const delegate = StubDefaultLoader.last as StubDefaultLoader;
    expect(delegate.context).toBe(ctx);
    expect(delegate.stats).toBe(loader.stats);
    expect(delegate.startAtLoad).toBe(0);
    void client.close();
  });

  it('uses the default loader for everything while no client exists (plain hls.js)', () => {
    const loader = setup(undefined);
    const ctx = context(`${base}/seg1.ts`);
    loader.load(ctx, LOADER_CONFIG, callbacks());
    expect(StubDefaultLoader.last?.context).toBe(ctx);
  });
});
