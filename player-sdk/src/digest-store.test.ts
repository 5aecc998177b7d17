import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DigestStore, type DigestProblem, type DigestStoreOptions } from './digest-store.js';
import { delay, sha256Hex, startOrigin, testBytes, withDigestSidecar, type TestOrigin } from './testing/loopback-network.js';

/**
 * The digest store against real HTTP origins: the loopback kit's file origin (404 → present), and
 * a scripted one whose sidecar answers 503, hangs, or serves a truncated file, as a live origin
 * can for a moment. Retry knobs are scaled down (100 ms → 800 ms) to keep the tests short.
 */
const SEGMENT = testBytes(1_000);
const FILES = withDigestSidecar({ 'seg1.ts': SEGMENT });
const SIDECAR = FILES['/media.m3u8.digests.json'] as Uint8Array;
const DIGEST = sha256Hex(SEGMENT);

type Mode = 'ok' | '404' | '503' | 'hang' | 'truncated';

interface ScriptedOrigin {
  base: string;
  mode: Mode;
  /** performance.now() of every sidecar request. */
  hits: number[];
  close(): Promise<void>;
}

async function startScriptedOrigin(): Promise<ScriptedOrigin> {
  const hanging = new Set<ServerResponse>();
  const origin = { base: '', mode: 'ok' as Mode, hits: [] as number[] };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/media.m3u8.digests.json') {
      res.writeHead(404).end();
      return;
    }
    origin.hits.push(performance.now());
    switch (origin.mode) {
      case 'ok':
        res.writeHead(200, { 'content-length': SIDECAR.byteLength }).end(SIDECAR);
        return;
      case '404':
        res.writeHead(404).end();
        return;
      case '503':
        res.writeHead(503).end();
        return;
      case 'hang':
        hanging.add(res);
        res.on('close', () => hanging.delete(res));
        return;
      case 'truncated': {
        // A file read while it was being rewritten in place: its length is honest, its JSON is cut.
        const cut = SIDECAR.subarray(0, Math.floor(SIDECAR.byteLength / 2));
        res.writeHead(200, { 'content-length': cut.byteLength }).end(cut);
        return;
      }
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  origin.base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(origin, {
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

let scripted: ScriptedOrigin;
let files: TestOrigin;

beforeAll(async () => {
  scripted = await startScriptedOrigin();
  files = await startOrigin(FILES);
});

afterAll(async () => {
  await scripted.close();
  await files.close();
});

afterEach(() => {
  scripted.mode = 'ok';
  scripted.hits.length = 0;
  files.requests.length = 0;
  files.files.set('/media.m3u8.digests.json', SIDECAR);
});

const signal = new AbortController().signal;

function store(extra: Partial<DigestStoreOptions> = {}): { store: DigestStore; problems: DigestProblem[] } {
  const problems: DigestProblem[] = [];
  const s = new DigestStore({
    fetch: globalThis.fetch,
    retryMinMs: 100,
    retryMaxMs: 800,
    digestWaitMs: 300,
    timeoutMs: 250,
    onMissing: (p) => problems.push(p),
    ...extra,
  });
  return { store: s, problems };
}

/** Looks up seg1.ts every `everyMs` until it resolves or `withinMs` passes; returns the time it took (ms) or undefined. */
async function pollUntilFound(s: DigestStore, base: string, withinMs: number, everyMs = 20): Promise<number | undefined> {
  const started = performance.now();
  while (performance.now() - started < withinMs) {
    if ((await s.lookup(`${base}/seg1.ts`, `${base}/media.m3u8`, signal)) === DIGEST) return performance.now() - started;
    await delay(everyMs);
  }
  return undefined;
}

describe('DigestStore: a sidecar that is missing or fails', () => {
  it('live: a 404 sidecar that then appears is picked up within the backoff', async () => {
    const { store: s, problems } = store();
    s.notePlaylist(`${files.base}/media.m3u8`, { live: true, targetDurationMs: 2_000 });
    files.files.delete('/media.m3u8.digests.json');
    expect(await s.lookup(`${files.base}/seg1.ts`, `${files.base}/media.m3u8`, signal)).toBeUndefined();
    expect(problems.at(-1)).toMatchObject({ cause: 'absent', sidecarUrl: `${files.base}/media.m3u8.digests.json` });
    files.files.set('/media.m3u8.digests.json', SIDECAR);
    // First retry is due 100 ms after the failed fetch started (the next would be 200 ms).
    const took = await pollUntilFound(s, files.base, 1_000);
    expect(took).toBeDefined();
    expect(took as number).toBeLessThan(250);
  });

  it('VOD (or unknown): a 404 sidecar is not asked for again before absentRetryMs', async () => {
    const { store: s, problems } = store({ absentRetryMs: 600 });
    files.files.delete('/media.m3u8.digests.json');
    expect(await s.lookup(`${files.base}/seg1.ts`, `${files.base}/media.m3u8`, signal)).toBeUndefined();
    files.files.set('/media.m3u8.digests.json', SIDECAR);
    const took = await pollUntilFound(s, files.base, 1_500);
    expect(took as number).toBeGreaterThan(450);
    expect(problems.every((p) => p.cause === 'absent')).toBe(true);
    expect(files.requests.filter((r) => r.path === '/media.m3u8.digests.json')).toHaveLength(2);
  });

  it('a playlist that turns out to be live is not held to the 30 s absent wait', async () => {
    const { store: s } = store({ absentRetryMs: 30_000 });
    files.files.delete('/media.m3u8.digests.json');
    expect(await s.lookup(`${files.base}/seg1.ts`, `${files.base}/media.m3u8`, signal)).toBeUndefined();
    files.files.set('/media.m3u8.digests.json', SIDECAR);
    s.notePlaylist(`${files.base}/media.m3u8`, { live: true, targetDurationMs: 2_000 });
    expect(await pollUntilFound(s, files.base, 1_000)).toBeDefined();
  });

  it('503: retried soon, for VOD too, and the digest is found once the origin recovers', async () => {
    const { store: s, problems } = store({ absentRetryMs: 30_000 });
    scripted.mode = '503';
    expect(await s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal)).toBeUndefined();
    expect(problems.at(-1)).toMatchObject({ cause: 'failed', detail: 'origin answered 503' });
    scripted.mode = 'ok';
    const took = await pollUntilFound(s, scripted.base, 1_000);
    expect(took as number).toBeLessThan(250);
  });

  it('a truncated sidecar (read mid-rewrite) is malformed, not absent, and retried soon', async () => {
    const invalid: unknown[] = [];
    const { store: s, problems } = store({ absentRetryMs: 30_000, onInvalidSidecar: (e) => invalid.push(e) });
    s.notePlaylist(`${scripted.base}/media.m3u8`, { live: true, targetDurationMs: 2_000 });
    scripted.mode = 'truncated';
    expect(await s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal)).toBeUndefined();
    expect(problems.at(-1)).toMatchObject({ cause: 'malformed', detail: 'sidecar is not JSON' });
    expect(invalid).toHaveLength(1);
    scripted.mode = 'ok';
    const took = await pollUntilFound(s, scripted.base, 1_000);
    expect(took as number).toBeLessThan(250);
  });

  it('a hanging sidecar fetch times out; the lookup gives up within digestWaitMs and the retry follows', async () => {
    const { store: s, problems } = store({ digestWaitMs: 150, timeoutMs: 250 });
    s.notePlaylist(`${scripted.base}/media.m3u8`, { live: true, targetDurationMs: 2_000 });
    scripted.mode = 'hang';
    const t0 = performance.now();
    expect(await s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal)).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(250);
    expect(problems.at(-1)).toMatchObject({ cause: 'failed', detail: 'sidecar fetch still in flight' });
    await delay(200);
    expect(await s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal)).toBeUndefined();
    // The first fetch timed out; that lookup was due for a retry and started another, which hangs too.
    expect(problems.at(-1)).toMatchObject({ cause: 'failed', detail: 'sidecar fetch still in flight' });
    expect(scripted.hits).toHaveLength(2);
    scripted.mode = 'ok';
    // The backoff counts from the start of the failed fetch: the next retry is due as soon as the
    // hanging one times out (within 250 ms), and it finds the digest.
    expect(await pollUntilFound(s, scripted.base, 1_000)).toBeLessThan(250 + 50);
    expect(scripted.hits).toHaveLength(3);
  });

  it('live: the fetch time limit is at most one target duration', async () => {
    const { store: s, problems } = store({ digestWaitMs: 400, timeoutMs: 5_000 });
    s.notePlaylist(`${scripted.base}/media.m3u8`, { live: true, targetDurationMs: 200 });
    scripted.mode = 'hang';
    expect(await s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal)).toBeUndefined();
    expect(problems.at(-1)).toMatchObject({ cause: 'failed', detail: 'timed out after 200 ms' });
  });

  it('the retry interval doubles up to the cap and resets after a success', async () => {
    const { store: s } = store({ retryMinMs: 100, retryMaxMs: 400 });
    s.notePlaylist(`${scripted.base}/media.m3u8`, { live: true, targetDurationMs: 10_000 });
    scripted.mode = '503';
    const keepAsking = async (ms: number): Promise<void> => {
      const until = performance.now() + ms;
      while (performance.now() < until) {
        await s.lookup(`${scripted.base}/seg2.ts`, `${scripted.base}/media.m3u8`, signal);
        await delay(10);
      }
    };
    await keepAsking(1_700);
    const gaps = scripted.hits.slice(1).map((t, i) => t - (scripted.hits[i] as number));
    // 100, 200, 400, 400, 400 ms (each within the 10 ms polling step).
    expect(gaps.length).toBeGreaterThanOrEqual(4);
    const expected = [100, 200, 400, 400, 400];
    gaps.slice(0, 5).forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual((expected[i] as number) - 5);
      expect(gap).toBeLessThan((expected[i] as number) + 90);
    });
    // A success resets the backoff: the next failure is retried after 100 ms again.
    scripted.mode = 'ok';
    expect(await pollUntilFound(s, scripted.base, 1_000, 10)).toBeDefined();
    scripted.mode = '503';
    scripted.hits.length = 0;
    // seg2.ts is not listed: the store refetches (rate-limited), which now fails.
    await keepAsking(600);
    const again = scripted.hits.slice(1).map((t, i) => t - (scripted.hits[i] as number));
    expect(again[0]).toBeGreaterThanOrEqual(95);
    expect(again[0]).toBeLessThan(160);
  });

  it('live, target duration known: the first retry is at most half a target duration and none is longer than one', async () => {
    const { store: s } = store({ retryMinMs: 500, retryMaxMs: 4_000 });
    s.notePlaylist(`${scripted.base}/media.m3u8`, { live: true, targetDurationMs: 300 });
    scripted.mode = '503';
    const until = performance.now() + 1_200;
    while (performance.now() < until) {
      await s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal);
      await delay(10);
    }
    const gaps = scripted.hits.slice(1).map((t, i) => t - (scripted.hits[i] as number));
    expect(gaps[0]).toBeLessThan(150 + 60);
    for (const gap of gaps) expect(gap).toBeLessThan(300 + 60);
  });

  it('keeps the digests of the last good sidecar through a failed refresh', async () => {
    const { store: s, problems } = store();
    s.notePlaylist(`${scripted.base}/media.m3u8`, { live: true, targetDurationMs: 2_000 });
    expect(await s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal)).toBe(DIGEST);
    scripted.mode = '503';
    // seg9.ts is not listed: a refresh runs and fails.
    expect(await s.lookup(`${scripted.base}/seg9.ts`, `${scripted.base}/media.m3u8`, signal)).toBeUndefined();
    expect(problems.at(-1)?.cause).toBe('failed');
    expect(await s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal)).toBe(DIGEST);
  });

  it('reports no-playlist, and unlisted for a segment the sidecar lacks', async () => {
    const { store: s, problems } = store({ digestWaitMs: 100 });
    expect(await s.lookup(`${scripted.base}/seg1.ts`, undefined, signal)).toBeUndefined();
    expect(await s.lookup(`${scripted.base}/seg9.ts`, `${scripted.base}/media.m3u8`, signal)).toBeUndefined();
    expect(problems.map((p) => p.cause)).toEqual(['no-playlist', 'unlisted']);
  });

  it("the store's signal aborts fetches in flight; a lookup's signal aborts only its wait", async () => {
    const stop = new AbortController();
    const { store: s, problems } = store({ signal: stop.signal, digestWaitMs: 2_000, timeoutMs: 5_000 });
    scripted.mode = 'hang';
    const mine = new AbortController();
    const first = s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, mine.signal);
    await delay(50);
    mine.abort();
    await expect(first).rejects.toMatchObject({ code: 'RC_ERR_ABORTED' });
    const second = s.lookup(`${scripted.base}/seg1.ts`, `${scripted.base}/media.m3u8`, signal);
    await delay(50);
    const t0 = performance.now();
    stop.abort();
    expect(await second).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(100);
    expect(problems.at(-1)?.cause).toBe('failed');
    expect(scripted.hits).toHaveLength(1);
  });

  it('keeps at most MAX_SIDECARS_CACHED sidecars', async () => {
    const { store: s } = store();
    for (let i = 0; i < 100; i++) s.notePlaylist(`${scripted.base}/p${i}/media.m3u8`, { live: true, targetDurationMs: 2_000 });
    for (let i = 0; i < 40; i++) await s.lookup(`${scripted.base}/q${i}/seg1.ts`, `${scripted.base}/q${i}/media.m3u8`, signal);
    expect((s as unknown as { sidecars: Map<string, unknown> }).sidecars.size).toBe(16);
  });
});
