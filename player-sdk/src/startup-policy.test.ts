import { ErrorCode, FrameType } from '@relaycast/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  delay,
  startLoopbackNetwork,
  testBytes,
  until,
  withDigestSidecar,
  type LoopbackNetwork,
  type RelayBehaviour,
  type TestOrigin,
  type TestTracker,
} from './testing/loopback-network.js';
import type { RelaycastClient, RelaycastClientOptions } from './relaycast-client.js';
import { planLoad, resolveStartupOptions } from './startup-policy.js';

const DEFAULTS = resolveStartupOptions();

describe('planLoad', () => {
  const ready = { relayReady: true };

  it('lets relays serve alone when the buffer covers the wait, or when the player does not say', () => {
    expect(planLoad({ ...ready, bufferAheadMs: DEFAULTS.lowBufferMs }, DEFAULTS)).toEqual({ source: 'relay' });
    expect(planLoad({ ...ready, bufferAheadMs: undefined }, DEFAULTS)).toEqual({ source: 'relay' });
    expect(planLoad({ relayReady: false, bufferAheadMs: 30_000 }, DEFAULTS)).toEqual({ source: 'relay' });
  });

  it('goes to the origin at once with a low buffer and no relay', () => {
    expect(planLoad({ relayReady: false, bufferAheadMs: 0 }, DEFAULTS)).toEqual({ source: 'origin' });
    expect(planLoad({ relayReady: false, bufferAheadMs: DEFAULTS.lowBufferMs - 1 }, DEFAULTS)).toEqual({ source: 'origin' });
  });

  it('races with a low buffer, the origin joining sooner the emptier the buffer', () => {
    expect(planLoad({ ...ready, bufferAheadMs: 0 }, DEFAULTS)).toEqual({ source: 'race', originAfterMs: 0 });
    expect(planLoad({ ...ready, bufferAheadMs: 2_000 }, resolveStartupOptions({ lowBufferMs: 4_000, hedgeDelayMs: 300 }))).toEqual({
      source: 'race',
      originAfterMs: 150,
    });
    expect(planLoad({ ...ready, bufferAheadMs: -5 }, DEFAULTS)).toEqual({ source: 'race', originAfterMs: 0 });
  });

  it('is off with lowBufferMs 0, and refuses options out of bounds with a typed error', () => {
    expect(planLoad({ relayReady: false, bufferAheadMs: 0 }, resolveStartupOptions({ lowBufferMs: 0 }))).toEqual({ source: 'relay' });
    for (const bad of [{ lowBufferMs: -1 }, { lowBufferMs: 60_001 }, { hedgeDelayMs: Number.NaN }, { hedgeDelayMs: 5_001 }]) {
      expect(() => resolveStartupOptions(bad)).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    }
  });
});

/**
 * The policy through the whole client: real RTCPeerConnections on 127.0.0.1 to scripted relays, an
 * HTTP origin that publishes digests. `fetch` is wrapped only to slow the origin where a test says so.
 */
describe('startup policy over real WebRTC', () => {
  const SEGMENT = testBytes(400_000, 3);
  let net: LoopbackNetwork;
  let origin: TestOrigin;
  let tracker: TestTracker;
  let originDelayMs = 0;
  /** Origin segment bodies trickle: each chunk this long after the previous one. */
  let originChunkDelayMs = 0;
  const slowFetch: typeof fetch = async (input, init) => {
    const segment = !String(input instanceof Request ? input.url : input).endsWith('.json');
    if (originDelayMs > 0 && segment) await delay(originDelayMs);
    const res = await fetch(input, init);
    if (!segment || originChunkDelayMs === 0 || res.body === null) return res;
    const slow = new TransformStream<Uint8Array, Uint8Array>({ transform: async (chunk, c) => (await delay(originChunkDelayMs), c.enqueue(chunk)) });
    return new Response(res.body.pipeThrough(slow, { signal: init?.signal ?? undefined }), { status: res.status, headers: res.headers });
  };

  beforeAll(async () => {
    net = await startLoopbackNetwork(withDigestSidecar({ 'seg.ts': SEGMENT }));
    ({ origin, tracker } = net);
  });
  afterAll(() => net.close());
  afterEach(async () => {
    await net.reset();
    originDelayMs = 0;
    originChunkDelayMs = 0;
  });

  const segUrl = (): string => `${origin.base}/seg.ts`;
  const segRequests = (): number => origin.requests.filter((r) => r.path === '/seg.ts').length;
  const newClient = (options: Partial<RelaycastClientOptions> = {}): RelaycastClient => net.client({ fetch: slowFetch, ...options });
  /** A client with one relay connected and the playlist's digests at hand (one relay load done). */
  const warmClient = async (behaviour: RelayBehaviour): Promise<RelaycastClient> => {
    let first = true;
    tracker.addRelay((ctx) => {
      if (first) {
        first = false;
        return ctx.serve(SEGMENT);
      }
      return behaviour(ctx);
    });
    const client = newClient();
    await client.start();
    const warm = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 60_000 });
    expect(warm.bytesFromRelay).toBe(SEGMENT.byteLength);
    origin.requests.length = 0;
    return client;
  };

  it('a low-buffer load never waits for a relay that is still connecting: the origin serves at once', async () => {
    const relay = tracker.addRelay((ctx) => ctx.serve(SEGMENT));
    relay.silent = true; // never answers the offer: a relay that is slow to connect
    const client = newClient({ connectTimeoutMs: 5_000 });
    void client.start();
    const t0 = performance.now();
    const r = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 0 });
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(Buffer.from(r.data).equals(Buffer.from(SEGMENT))).toBe(true);
    expect(r).toMatchObject({ bytesFromOrigin: SEGMENT.byteLength, bytesFromRelay: 0, fallbackReason: 'startup' });
    expect(segRequests()).toBe(1);
    expect(client.getStats().fallbacks.byReason.startup).toBe(1);
  });

  it('a relay that answers within its head start serves alone: the origin is never asked', async () => {
    const client = await warmClient((ctx) => ctx.serve(SEGMENT));
    const r = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 1_490 });
    expect(r).toMatchObject({ bytesFromRelay: SEGMENT.byteLength, bytesFromOrigin: 0 });
    expect(segRequests()).toBe(0);
    expect(client.getStats().startup).toMatchObject({ races: 1, originJoined: 0, originWon: 0 });
    expect(client.getStats().integrity.verifiedBytes).toBe(2 * SEGMENT.byteLength);
  });

  it("a race spends the relay's head start on the digest first: fetched in time, the relay serves alone", async () => {
    tracker.addRelay((ctx) => ctx.serve(SEGMENT));
    const client = newClient({ startup: { lowBufferMs: 4_000, hedgeDelayMs: 2_000 } });
    await client.start();
    expect(client.relays.length).toBe(1);
    const r = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 3_000 });
    expect(r).toMatchObject({ bytesFromRelay: SEGMENT.byteLength, bytesFromOrigin: 0 });
    expect(origin.requests).toEqual([{ path: '/media.m3u8.digests.json', range: undefined }]);
    expect(client.getStats().integrity.verifiedBytes).toBe(SEGMENT.byteLength);
  });

  it('a race whose digest is not at hand with an empty buffer goes to the origin alone, and fetches the sidecar for the next load', async () => {
    tracker.addRelay((ctx) => ctx.serve(SEGMENT));
    const client = newClient();
    await client.start();
    const r = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 0 });
    expect(r).toMatchObject({ bytesFromRelay: 0, bytesFromOrigin: SEGMENT.byteLength, fallbackReason: 'startup' });
    await until(() => origin.requests.some((q) => q.path === '/media.m3u8.digests.json'), 5_000, 'the sidecar fetch');
    // Not a relay load that lacked its digest: nothing counted as unavailable.
    expect(client.getStats().digestsUnavailable).toEqual({ absent: 0, failed: 0, malformed: 0, unlisted: 0, 'no-playlist': 0 });
  });

  it('relaysAtStart false: no relay connection until connectRelays(); a load whose buffer covers it waits for the relay then set up', async () => {
    const relay = tracker.addRelay((ctx) => ctx.serve(SEGMENT));
    const client = newClient({ startup: { relaysAtStart: false } });
    await client.start();
    expect(client.relays).toEqual([]);
    expect(relay.peers.size).toBe(0);
    // With little buffer it goes to the origin at once.
    const early = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 500 });
    expect(early).toMatchObject({ bytesFromRelay: 0, fallbackReason: 'startup' });
    // With a full buffer it waits for a relay: the one connectRelays() now sets up serves it.
    const later = client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 30_000, ttfbTimeoutMs: 5_000 });
    await delay(50);
    client.connectRelays();
    expect(await later).toMatchObject({ bytesFromRelay: SEGMENT.byteLength, bytesFromOrigin: 0, relayId: relay.relayId });
    expect(client.getStats().setup).toMatchObject({ attempts: 1, opened: 1 });
  });

  it('a slow relay loses the race: the origin serves the whole segment, asked once, and the relay is cancelled', async () => {
    const client = await warmClient(async (ctx) => {
      await delay(1_000);
      await ctx.serve(SEGMENT);
    });
    const r = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 1_000 });
    expect(Buffer.from(r.data).equals(Buffer.from(SEGMENT))).toBe(true);
    expect(r).toMatchObject({ bytesFromOrigin: SEGMENT.byteLength, bytesFromRelay: 0, fallbackReason: 'hedge', restarted: false });
    expect(origin.requests.filter((q) => q.path === '/seg.ts')).toEqual([{ path: '/seg.ts', range: undefined }]);
    const stats = client.getStats();
    expect(stats.startup).toMatchObject({ races: 1, originJoined: 1, originWon: 1 });
    // Losing a race is not held against the relay, and none of its bytes were taken.
    const relayStats = Object.values(stats.perRelay)[0];
    expect(relayStats).toMatchObject({ failures: 0, bytes: SEGMENT.byteLength });
    await delay(1_200);
    expect(client.relays.length).toBe(1);
  });

  it('aborting a load whose race the origin won rejects with RC_ERR_ABORTED while the body is still coming', async () => {
    const client = await warmClient(async (ctx) => {
      await delay(1_000);
      await ctx.serve(SEGMENT);
    });
    originChunkDelayMs = 300;
    const controller = new AbortController();
    let got = 0;
    const load = client.loadSegment(
      { url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` },
      { bufferAheadMs: 0, signal: controller.signal, onProgress: (c) => void (got += c.byteLength) },
    );
    await until(() => got > 0, 5_000, 'the first origin bytes');
    controller.abort();
    await expect(load).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    const at = got;
    await delay(700);
    expect(got).toBe(at);
    expect(got).toBeLessThan(SEGMENT.byteLength);
  });

  it('a relay whose first byte beats a slow origin wins: the origin request is dropped, the bytes verified', async () => {
    originDelayMs = 400;
    const client = await warmClient(async (ctx) => {
      await delay(100);
      await ctx.serve(SEGMENT);
    });
    const r = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 0 });
    expect(r).toMatchObject({ bytesFromRelay: SEGMENT.byteLength, bytesFromOrigin: 0 });
    expect(r.fallbackReason).toBeUndefined();
    // The origin was asked (both started at once) but its answer never read: it served nothing.
    expect(client.getStats()).toMatchObject({ bytesFromOrigin: 0, startup: { races: 1, originJoined: 1, originWon: 0 } });
  });

  it('a relay that fails before its first byte hands over to the origin request already on its way', async () => {
    originDelayMs = 500;
    const client = await warmClient(async (ctx) => {
      await delay(100);
      ctx.send({ type: FrameType.ABSENT, requestId: ctx.request.requestId });
    });
    const r = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 0 });
    expect(Buffer.from(r.data).equals(Buffer.from(SEGMENT))).toBe(true);
    expect(r).toMatchObject({ bytesFromOrigin: SEGMENT.byteLength, bytesFromRelay: 0, fallbackReason: 'absent' });
    expect(segRequests()).toBe(1);
  });

  it('a relay that corrupts a raced segment is caught: the origin copy replaces it', async () => {
    const bad = Uint8Array.from(SEGMENT);
    bad[1234] = (bad[1234] as number) ^ 0xff;
    const client = await warmClient((ctx) => ctx.serve(bad));
    const failures: string[] = [];
    client.on('integrity-failure', (e) => failures.push(e.code));
    const r = await client.loadSegment({ url: segUrl(), playlistUrl: `${origin.base}/media.m3u8` }, { bufferAheadMs: 1_000 });
    expect(Buffer.from(r.data).equals(Buffer.from(SEGMENT))).toBe(true);
    expect(r).toMatchObject({ bytesFromRelay: 0, fallbackReason: 'integrity', restarted: true });
    expect(failures).toEqual([ErrorCode.SEGMENT_INTEGRITY]);
    expect(client.getStats().integrity.verifiedBytes).toBe(SEGMENT.byteLength); // the warm-up load only
  });
});
