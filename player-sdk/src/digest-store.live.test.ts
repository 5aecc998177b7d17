import { encodeDigestSidecar } from '@relaycast/protocol';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RelaycastClient } from './relaycast-client.js';
import type { LoadResult } from './segment-loader.js';
import { TestTracker, delay, loopbackClient, sha256Hex, testBytes, type TestOrigin } from './testing/loopback-network.js';

/**
 * A live viewer through the real SDK core (real node-datachannel connection to a scripted relay,
 * a real HTTP origin) while the origin's digest sidecar fails for 3 s: 503, then requests that
 * hang, then a truncated file. Relays must carry the stream again within two target durations
 * of the origin's recovery, and the stats must say why they were skipped meanwhile.
 */
const TARGET_MS = 1_000;
const SEGMENTS = Array.from({ length: 16 }, (_, i) => testBytes(50_000, i + 1));
/** The live edge: the sidecar lists the segments up to this one, as a live origin's rewrites do. */
let published = 0;
const sidecar = (): Uint8Array =>
  new TextEncoder().encode(
    encodeDigestSidecar({
      version: 1,
      algorithm: 'sha256',
      playlist: 'live.m3u8',
      segments: Object.fromEntries(SEGMENTS.slice(0, published + 1).map((b, i) => [`seg${i}.ts`, sha256Hex(b)])),
    }),
  );

type SidecarMode = 'ok' | '503' | 'hang' | 'truncated';
let mode: SidecarMode = 'ok';
let server: Server;
let base: string;
let tracker: TestTracker;

beforeAll(async () => {
  server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path === '/live.m3u8.digests.json') {
      if (mode === 'hang') return; // never answered: the SDK's time limit ends it
      if (mode === '503') return void res.writeHead(503).end();
      const full = sidecar();
      const body = mode === 'truncated' ? full.subarray(0, full.byteLength - 40) : full;
      return void res.writeHead(200, { 'content-length': body.byteLength, 'cache-control': 'no-store' }).end(body);
    }
    const m = /^\/seg(\d+)\.ts$/.exec(path);
    const body = m === null ? undefined : SEGMENTS[Number(m[1])];
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': body.byteLength, 'cache-control': 'no-store' }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  tracker = await TestTracker.start();
});

afterAll(async () => {
  await tracker.close();
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

describe('live digest sidecar outage', () => {
  it('relays carry the stream again within two target durations after the sidecar recovers; the stats say why they were skipped', async () => {
    tracker.addRelay((ctx) => {
      const m = /seg(\d+)\.ts$/.exec(ctx.request.url);
      return ctx.serve(SEGMENTS[Number(m?.[1])] as Uint8Array);
    });
    const client: RelaycastClient = loopbackClient(tracker, { base } as TestOrigin);
    try {
      await client.start();
      expect(client.relays).toHaveLength(1);
      const loads: { index: number; at: number; result: LoadResult }[] = [];
      const t0 = performance.now();
      const outageStart = 2 * TARGET_MS;
      const recovered = outageStart + 3 * TARGET_MS;
      // The sidecar's 3 s outage: 503, then hanging requests, then a truncated file.
      const script = (async () => {
        await delay(outageStart);
        mode = '503';
        await delay(TARGET_MS);
        mode = 'hang';
        await delay(TARGET_MS);
        mode = 'truncated';
        await delay(TARGET_MS);
        mode = 'ok';
      })();
      // A live player: one segment per target duration.
      for (let i = 0; i < SEGMENTS.length - 4; i++) {
        const due = t0 + i * TARGET_MS;
        if (performance.now() < due) await delay(due - performance.now());
        const at = performance.now() - t0;
        published = i;
        const result = await client.loadSegment({ url: `${base}/seg${i}.ts`, playlistUrl: `${base}/live.m3u8`, live: true, targetDurationMs: TARGET_MS });
        expect(result.data).toEqual(SEGMENTS[i]);
        loads.push({ index: i, at, result });
      }
      await script;
      const summary = loads.map((l) => `${l.index}@${Math.round(l.at)}ms:${l.result.fallbackReason ?? 'relay'}`);
      // Before the outage every segment came from the relay.
      expect(
        loads.filter((l) => l.at < outageStart - 100).every((l) => l.result.bytesFromRelay === l.result.data.byteLength),
        summary.join(' '),
      ).toBe(true);
      // During it at least one was refused for want of a digest.
      expect(
        loads.some((l) => l.result.fallbackReason === 'no-digest'),
        summary.join(' '),
      ).toBe(true);
      // From two target durations after the recovery on, the relay share is above 90% (here: every byte).
      const after = loads.filter((l) => l.at >= recovered + 2 * TARGET_MS);
      expect(after.length).toBeGreaterThanOrEqual(3);
      const relayBytes = after.reduce((n, l) => n + l.result.bytesFromRelay, 0);
      const allBytes = after.reduce((n, l) => n + l.result.data.byteLength, 0);
      expect(relayBytes / allBytes, summary.join(' ')).toBeGreaterThan(0.9);
      const stats = client.getStats();
      expect(stats.fallbacks.byReason['no-digest']).toBeGreaterThan(0);
      // Every no-digest fallback has a cause, and the causes are the outage's (never "absent").
      const u = stats.digestsUnavailable;
      expect(u.absent).toBe(0);
      expect(u.failed + u.malformed).toBeGreaterThanOrEqual(stats.fallbacks.byReason['no-digest']);
      expect(u.failed).toBeGreaterThan(0);
      expect(stats.lastDigestProblem?.sidecarUrl).toBe(`${base}/live.m3u8.digests.json`);
      console.log(`live sidecar outage: ${summary.join(' ')}; digestsUnavailable ${JSON.stringify(u)}`);
    } finally {
      mode = 'ok';
      await client.close();
    }
  }, 30_000);
});
