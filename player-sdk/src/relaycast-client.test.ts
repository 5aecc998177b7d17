import { ErrorCode, FrameType, type RelaycastError } from '@relaycast/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  LOOPBACK_RTC,
  NodeRTCPeerConnection,
  startLoopbackNetwork,
  testBytes,
  until,
  type LoopbackNetwork,
  type RelayBehaviour,
  type TestOrigin,
  type TestRelay,
  type TestTracker,
} from './testing/loopback-network.js';
import { RelaycastClient, type RelaycastClientOptions } from './relaycast-client.js';
import type { LoadRequest, LoadResult } from './segment-loader.js';

/**
 * The SDK core end to end inside this package: real RTCPeerConnections (node-datachannel's polyfill)
 * on 127.0.0.1, a `ws` tracker stub, scripted relays that answer with protocol frames, and an HTTP
 * origin with Range support.
 */
const SEGMENT = testBytes(300_000);
const SEGMENT_V2 = testBytes(280_000, 99);
let net: LoopbackNetwork;
let origin: TestOrigin;
let tracker: TestTracker;
/** Clients made without the loopback network's tracker: closed after each test too. */
const clients: RelaycastClient[] = [];

beforeAll(async () => {
  net = await startLoopbackNetwork({ '/seg.ts': SEGMENT });
  ({ origin, tracker } = net);
});

afterAll(() => net.close());

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await net.reset();
  origin.ignoreRange = false;
  origin.files.set('/seg.ts', SEGMENT);
  tracker.turnRequests.length = 0;
});

function newClient(options: Partial<RelaycastClientOptions> = {}): RelaycastClient {
  return net.client({
    ttfbTimeoutMs: 1_500,
    stallTimeoutMs: 400,
    // These tests are about transport and fallback: relay bytes pass unchecked (audit of 0%).
    // Verification has its own tests below, with published digests.
    integrity: { noDigestPolicy: 'audit', auditFraction: 0 },
    ...options,
  });
}

/** A client connected to one scripted relay. */
async function withRelay(behaviour: RelayBehaviour, options: Partial<RelaycastClientOptions> = {}): Promise<{ client: RelaycastClient; relay: TestRelay }> {
  const relay = tracker.addRelay(behaviour);
  const client = newClient(options);
  await client.start();
  expect(client.relays).toEqual([relay.relayId]);
  return { client, relay };
}

/** Loads and checks that onProgress saw every byte exactly once, in order. */
async function load(client: RelaycastClient, req: Partial<LoadRequest> = {}, opts: { signal?: AbortSignal; ttfbTimeoutMs?: number } = {}): Promise<LoadResult> {
  const seen: Uint8Array[] = [];
  let lastLoaded = 0;
  const result = await client.loadSegment(
    { url: `${origin.base}/seg.ts`, ...req },
    {
      ...opts,
      onProgress: (chunk, loaded) => {
        seen.push(chunk.slice());
        lastLoaded = loaded;
      },
    },
  );
  expect(Buffer.concat(seen).equals(Buffer.from(result.data))).toBe(true);
  expect(lastLoaded).toBe(result.data.byteLength);
  return result;
}

const same = (a: Uint8Array, b: Uint8Array): boolean => Buffer.from(a).equals(Buffer.from(b));
const serveAll: RelayBehaviour = (ctx) => ctx.serve(SEGMENT);
const hang: RelayBehaviour = () => undefined;
/** What the tracker stub answers to `turn`: short-lived TURN REST credentials for one relay. */
const TURN = { urls: ['turn:turn.test:3478'], username: '1999999999:viewer', credential: 'c3VwZXI=' };

describe('RelaycastClient over real WebRTC', () => {
  it('serves a segment from the relay, bytes identical, nothing from the origin', async () => {
    const { client, relay } = await withRelay(serveAll);
    const r = await load(client, { playlistUrl: `${origin.base}/media.m3u8` });
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r).toMatchObject({ bytesFromRelay: SEGMENT.byteLength, bytesFromOrigin: 0, relayId: relay.relayId, restarted: false });
    expect(r.fallbackReason).toBeUndefined();
    expect(relay.requests[0]).toMatchObject({ url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/media.m3u8` });
    // The only origin request: the digest sidecar (absent here, so the bytes go unchecked).
    expect(origin.requests).toEqual([{ path: '/media.m3u8.digests.json', range: undefined }]);
    const stats = client.getStats();
    expect(stats).toMatchObject({ bytesFromRelays: SEGMENT.byteLength, bytesFromOrigin: 0, relayShare: 1, segments: 1 });
    // Host candidates on loopback: the bytes travel directly, not through TURN.
    expect(stats.perRelay[relay.relayId]).toEqual({
      bytes: SEGMENT.byteLength,
      requests: 1,
      failures: 0,
      bytesVerified: 0,
      integrityFailures: 0,
      path: 'direct',
      setupMs: expect.any(Number) as number,
    });
    // One setup, opened at the first attempt.
    expect(stats.setup).toMatchObject({ attempts: 1, opened: 1, failed: 0 });
    expect(stats.startup.firstRelayByteMs).toBeGreaterThanOrEqual(stats.perRelay[relay.relayId]?.setupMs ?? Infinity);
    expect(stats.integrity).toEqual({ failures: 0, verifiedBytes: 0, unverifiedBytes: SEGMENT.byteLength, audits: 0, segmentsWithoutDigest: 1 });
    expect(stats.fallbacks.count).toBe(0);
  });

  it('passes a byte range to the relay and returns exactly that range', async () => {
    const { client, relay } = await withRelay(serveAll);
    const r = await load(client, { range: { start: 1_000, end: 51_000 } });
    expect(same(r.data, SEGMENT.subarray(1_000, 51_000))).toBe(true);
    expect(relay.requests[0]?.range).toEqual({ start: 1_000, end: 51_000 });
    expect(r.bytesFromRelay).toBe(50_000);
    expect(origin.requests).toEqual([]);
  });

  it('falls back to the origin when the first byte misses the deadline, and cancels the relay request', async () => {
    const { client, relay } = await withRelay(hang);
    const r = await load(client, {}, { ttfbTimeoutMs: 200 });
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r).toMatchObject({ fallbackReason: 'ttfb-timeout', bytesFromRelay: 0, bytesFromOrigin: SEGMENT.byteLength });
    expect(origin.requests).toEqual([{ path: '/seg.ts', range: undefined }]);
    const stats = client.getStats();
    expect(stats.fallbacks.byReason['ttfb-timeout']).toBe(1);
    expect(stats.perRelay[relay.relayId]).toMatchObject({ requests: 1, failures: 1, bytes: 0 });
    await until(() => relay.cancels.includes(relay.requests[0]!.requestId), 5_000, 'CANCEL at the relay');
  });

  it('resumes from the origin with a Range after a stall mid-transfer', async () => {
    const { client } = await withRelay((ctx) => ctx.serve(SEGMENT, { limit: 50_000, end: false }));
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r).toMatchObject({ fallbackReason: 'stall', bytesFromRelay: 50_000, bytesFromOrigin: SEGMENT.byteLength - 50_000, restarted: false });
    expect(origin.requests).toEqual([{ path: '/seg.ts', range: 'bytes=50000-' }]);
    expect(client.getStats()).toMatchObject({ bytesFromRelays: 50_000, bytesFromOrigin: SEGMENT.byteLength - 50_000 });
  });

  it('keeps a requested range half-open when resuming', async () => {
    const { client } = await withRelay((ctx) => ctx.serve(SEGMENT, { limit: 3_000, end: false }));
    const r = await load(client, { range: { start: 1_000, end: 11_000 } });
    expect(same(r.data, SEGMENT.subarray(1_000, 11_000))).toBe(true);
    expect(origin.requests).toEqual([{ path: '/seg.ts', range: 'bytes=4000-10999' }]);
  });

  it('goes to the origin on ABSENT without dropping the relay', async () => {
    const { client, relay } = await withRelay((ctx) => ctx.send({ type: FrameType.ABSENT, requestId: ctx.request.requestId }));
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r.fallbackReason).toBe('absent');
    expect(origin.requests).toEqual([{ path: '/seg.ts', range: undefined }]);
    expect(client.getStats().fallbacks.byReason.absent).toBe(1);
    expect(client.relays).toEqual([relay.relayId]);
  });

  it('goes to the origin on an ERROR frame', async () => {
    const { client } = await withRelay((ctx) =>
      ctx.send({ type: FrameType.ERROR, requestId: ctx.request.requestId, code: 'RC_ERR_ORIGIN_HTTP', message: 'upstream 500' }),
    );
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r.fallbackReason).toBe('relay-error');
  });

  it('resumes from the origin when the relay channel closes mid-transfer', async () => {
    const disconnected: string[] = [];
    const { client, relay } = await withRelay(async (ctx) => {
      await ctx.serve(SEGMENT, { limit: 40_000, end: false });
      ctx.closeChannel();
    });
    client.on('relay-disconnected', (id) => disconnected.push(id));
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r.fallbackReason).toBe('channel-closed');
    // Whatever reached the viewer before the close is kept; the origin is asked for the rest only.
    expect(r.bytesFromRelay).toBeGreaterThan(0);
    expect(r.bytesFromRelay + r.bytesFromOrigin).toBe(SEGMENT.byteLength);
    expect(origin.requests).toEqual([{ path: '/seg.ts', range: `bytes=${r.bytesFromRelay}-` }]);
    await until(() => disconnected.includes(relay.relayId), 5_000, 'relay-disconnected');
  });

  it('treats a protocol violation as a relay error: closes the connection, reports it, and still delivers', async () => {
    const errors: RelaycastError[] = [];
    const { client, relay } = await withRelay(async (ctx) => {
      await ctx.serve(SEGMENT, { limit: 20_000, end: false });
      ctx.send({ type: FrameType.END, requestId: ctx.request.requestId, bytesSent: 99_999 });
    });
    client.on('error', (e) => errors.push(e));
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r.fallbackReason).toBe('relay-error');
    expect(origin.requests[0]?.range).toBe(`bytes=${r.bytesFromRelay}-`);
    await until(() => !client.relays.includes(relay.relayId), 5_000, 'relay dropped');
    expect(errors.some((e) => e.code === ErrorCode.RELAY_ERROR && e.details?.['violation'] !== undefined)).toBe(true);
  });

  it('rejects with RC_ERR_ABORTED when the caller aborts, and the relay receives CANCEL', async () => {
    const { client, relay } = await withRelay(hang);
    const controller = new AbortController();
    const pending = load(client, {}, { signal: controller.signal });
    await until(() => relay.requests.length === 1, 5_000, 'REQUEST at the relay');
    controller.abort();
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    await until(() => relay.cancels.includes(relay.requests[0]!.requestId), 5_000, 'CANCEL at the relay');
    expect(origin.requests).toEqual([]);
  });

  it('skips the bytes it already has when the origin ignores the Range (200), after checking they match', async () => {
    origin.ignoreRange = true;
    const { client } = await withRelay((ctx) => ctx.serve(SEGMENT, { limit: 50_000, end: false }));
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r).toMatchObject({ restarted: false, bytesFromRelay: 50_000, bytesFromOrigin: SEGMENT.byteLength - 50_000 });
  });

  it('restarts from the origin when the relay had another version of the segment (size differs)', async () => {
    origin.files.set('/seg.ts', SEGMENT_V2);
    let restarts = 0;
    const { client, relay } = await withRelay((ctx) => ctx.serve(SEGMENT, { limit: 50_000, end: false }));
    const seen: Uint8Array[] = [];
    const r = await client.loadSegment(
      { url: `${origin.base}/seg.ts` },
      {
        onProgress: (chunk) => seen.push(chunk.slice()),
        onRestart: () => {
          restarts++;
          seen.length = 0;
        },
      },
    );
    expect(same(r.data, SEGMENT_V2)).toBe(true);
    expect(Buffer.concat(seen).equals(Buffer.from(SEGMENT_V2))).toBe(true);
    expect(restarts).toBe(1);
    expect(r).toMatchObject({ restarted: true, bytesFromRelay: 0, bytesFromOrigin: SEGMENT_V2.byteLength, relayId: undefined });
    expect(origin.requests.map((q) => q.range)).toEqual(['bytes=50000-', undefined]);
    const stats = client.getStats();
    expect(stats).toMatchObject({ bytesFromRelays: 0, bytesDiscarded: 50_000, bytesFromOrigin: SEGMENT_V2.byteLength });
    expect(stats.perRelay[relay.relayId]?.bytes).toBe(0);
  });

  it('restarts when the origin ignores the Range and its first bytes differ from the relay', async () => {
    const other = testBytes(SEGMENT.byteLength, 3);
    origin.files.set('/seg.ts', other);
    origin.ignoreRange = true;
    const { client } = await withRelay((ctx) => ctx.serve(SEGMENT, { limit: 50_000, end: false }));
    let restarts = 0;
    const r = await client.loadSegment({ url: `${origin.base}/seg.ts` }, { onRestart: () => restarts++ });
    expect(same(r.data, other)).toBe(true);
    expect(r.restarted).toBe(true);
    expect(restarts).toBe(1);
    // The same 200 body served the restart: no second request.
    expect(origin.requests).toHaveLength(1);
  });

  it('replaces a relay whose connection closed with the next one on the shortlist', async () => {
    const a = tracker.addRelay(serveAll);
    const b = tracker.addRelay(serveAll);
    const client = newClient();
    const events: string[] = [];
    client.on('relay-connected', (id) => events.push(`up ${id === a.relayId ? 'a' : 'b'}`));
    client.on('relay-disconnected', (id) => events.push(`down ${id === a.relayId ? 'a' : 'b'}`));
    await client.start();
    expect(client.relays).toEqual([a.relayId]);
    a.closeAll();
    await until(() => client.relays.length === 1 && client.relays[0] === b.relayId, 15_000, 'replacement relay');
    expect(events).toEqual(['up a', 'down a', 'up b']);
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r.relayId).toBe(b.relayId);
  });

  it('re-joins the tracker for a fresh shortlist when its list is used up', async () => {
    const a = tracker.addRelay(serveAll);
    const client = newClient();
    await client.start();
    expect(client.relays).toEqual([a.relayId]);
    const joins = tracker.joins.length;
    // A relay that registers later appears only in a new shortlist; the failed one is backed off.
    const b = tracker.addRelay(serveAll);
    a.closeAll();
    await until(() => client.relays[0] === b.relayId, 15_000, 'relay from a fresh shortlist');
    expect(tracker.joins.length).toBeGreaterThan(joins);
  });

  it("adds the tracker's STUN servers to the page's own, and asks no TURN for a relay not known to need it", async () => {
    const seen: RTCConfiguration[] = [];
    const Recording = class extends NodeRTCPeerConnection {
      constructor(config?: RTCConfiguration) {
        seen.push(JSON.parse(JSON.stringify(config ?? {})) as RTCConfiguration);
        super({ ...config, iceServers: [] }); // loopback only: nothing may leave the machine
      }
    };
    // A hello that still carries TURN: the SDK keeps only STUN from it.
    tracker.iceServers = [{ urls: ['stun:stun.test:3478'] }, { urls: ['turn:turn.test:3478'], username: '1999999999:viewer', credential: 'c3VwZXI=' }];
    tracker.turnServers = [TURN];
    try {
      const relay = tracker.addRelay(serveAll);
      const client = newClient({
        RTCPeerConnection: Recording as unknown as RelaycastClientOptions['RTCPeerConnection'],
        rtcConfiguration: { ...LOOPBACK_RTC, iceServers: [{ urls: 'stun:page.test:3478' }] },
      });
      await client.start();
      expect(client.relays).toEqual([relay.relayId]);
      expect(seen[0]?.iceServers).toEqual([{ urls: 'stun:page.test:3478' }, { urls: ['stun:stun.test:3478'] }]);
      expect(tracker.turnRequests).toEqual([]);
    } finally {
      tracker.iceServers = undefined;
      tracker.turnServers = undefined;
    }
  });

  it('asks the tracker for TURN before connecting to a needs-turn relay, and uses it for that connection', async () => {
    const seen: RTCConfiguration[] = [];
    const Recording = class extends NodeRTCPeerConnection {
      constructor(config?: RTCConfiguration) {
        seen.push(JSON.parse(JSON.stringify(config ?? {})) as RTCConfiguration);
        super({ ...config, iceServers: [] });
      }
    };
    tracker.iceServers = [{ urls: ['stun:stun.test:3478'] }];
    tracker.turnServers = [TURN];
    try {
      const relay = tracker.addRelay(serveAll);
      relay.reachability = 'needs-turn';
      const client = newClient({ RTCPeerConnection: Recording as unknown as RelaycastClientOptions['RTCPeerConnection'] });
      await client.start();
      expect(client.relays).toEqual([relay.relayId]);
      expect(tracker.turnRequests).toEqual([relay.relayId]);
      expect(seen[0]?.iceServers).toEqual([{ urls: ['stun:stun.test:3478'] }, TURN]);
    } finally {
      tracker.iceServers = undefined;
      tracker.turnServers = undefined;
    }
  });

  it('connects without TURN when the tracker refuses it (RC_ERR_TURN_REFUSED)', async () => {
    const errors: RelaycastError[] = [];
    const relay = tracker.addRelay(serveAll);
    relay.reachability = 'needs-turn';
    const client = newClient();
    client.on('error', (e) => errors.push(e));
    await client.start();
    // On loopback the relay is reachable anyway: the refusal only cost the question.
    expect(tracker.turnRequests).toEqual([relay.relayId]);
    expect(client.relays).toEqual([relay.relayId]);
    expect(errors.map((e) => e.details?.['code'])).toContain('RC_ERR_TURN_REFUSED');
  });

  it('goes direct to a relay the tracker reached, and asks for TURN only after that direct attempt failed', async () => {
    const seen: RTCConfiguration[] = [];
    const Recording = class extends NodeRTCPeerConnection {
      constructor(config?: RTCConfiguration) {
        seen.push(JSON.parse(JSON.stringify(config ?? {})) as RTCConfiguration);
        super({ ...config, iceServers: [] });
        // The first (direct) attempt never opens, as behind a firewall: without the relay's answer
        // it cannot answer the relay's checks. (Closing it on a timer raced an opening on loopback.)
        if (seen.length === 1) this.setRemoteDescription = () => Promise.reject(new Error('answer blocked by the test'));
      }
    };
    tracker.iceServers = [{ urls: ['stun:stun.test:3478'] }];
    tracker.turnServers = [TURN];
    try {
      const relay = tracker.addRelay(serveAll);
      relay.reachability = 'public';
      const client = newClient({ RTCPeerConnection: Recording as unknown as RelaycastClientOptions['RTCPeerConnection'] });
      await client.start();
      await until(() => client.relays.length === 1, 10_000, 'the retry to connect');
      expect(seen[0]?.iceServers).toEqual([{ urls: ['stun:stun.test:3478'] }]);
      expect(seen[1]?.iceServers).toEqual([{ urls: ['stun:stun.test:3478'] }, TURN]);
      expect(tracker.turnRequests).toEqual([relay.relayId]);
      expect(client.getStats().perRelay[relay.relayId]?.reachability).toBe('public');
    } finally {
      tracker.iceServers = undefined;
      tracker.turnServers = undefined;
    }
  });

  it('spreads concurrent requests over the warm relays', async () => {
    const slow: RelayBehaviour = (ctx) => ctx.serve(SEGMENT, { chunkBytes: 8_192 });
    const a = tracker.addRelay(slow);
    const b = tracker.addRelay(slow);
    const client = newClient({ maxRelays: 2 });
    await client.start();
    expect(new Set(client.relays)).toEqual(new Set([a.relayId, b.relayId]));
    const [r1, r2] = await Promise.all([load(client), load(client)]);
    expect(new Set([r1.relayId, r2.relayId])).toEqual(new Set([a.relayId, b.relayId]));
  });

  it('reconnects to the tracker after the socket drops and joins again; relay connections stay', async () => {
    const { client, relay } = await withRelay(serveAll);
    const joins = tracker.joins.length;
    tracker.dropViewers();
    await until(() => tracker.joins.length > joins, 10_000, 'a new join');
    expect(client.relays).toEqual([relay.relayId]);
    const r = await load(client);
    expect(r.relayId).toBe(relay.relayId);
  });

  it('start() resolves, and loads use the origin, when no relay answers', async () => {
    const relay = tracker.addRelay(serveAll);
    relay.silent = true;
    const client = newClient({ connectTimeoutMs: 500 });
    await client.start();
    expect(client.relays).toEqual([]);
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r.fallbackReason).toBe('no-relay');
  });
});

describe('RelaycastClient without a usable tracker', () => {
  it('loads from the origin only when no tracker is configured', async () => {
    const client = new RelaycastClient({ swarmId: `${origin.base}/master.m3u8` });
    clients.push(client);
    await client.start();
    const r = await load(client, { range: { start: 10, end: 20_010 } });
    expect(same(r.data, SEGMENT.subarray(10, 20_010))).toBe(true);
    expect(r).toMatchObject({ fallbackReason: 'no-relay', bytesFromOrigin: 20_000, bytesFromRelay: 0 });
    expect(origin.requests).toEqual([{ path: '/seg.ts', range: 'bytes=10-20009' }]);
    expect(client.getStats()).toMatchObject({ bytesFromOrigin: 20_000, relayShare: 0, segments: 1 });
    expect(client.getStats().fallbacks.byReason['no-relay']).toBe(1);
  });

  it('start() resolves and loads use the origin when the tracker is unreachable', async () => {
    const client = newClient({ trackerUrl: 'ws://127.0.0.1:9/' });
    await client.start(AbortSignal.timeout(15_000));
    const r = await load(client);
    expect(same(r.data, SEGMENT)).toBe(true);
    expect(r.fallbackReason).toBe('no-relay');
  });

  it('rejects with the origin error (and emits it) when the origin fails too', async () => {
    const client = new RelaycastClient({ swarmId: `${origin.base}/master.m3u8` });
    clients.push(client);
    const errors: string[] = [];
    client.on('error', (e) => errors.push(e.code));
    await expect(client.loadSegment({ url: `${origin.base}/missing.ts` })).rejects.toMatchObject({ code: ErrorCode.SEGMENT_UNAVAILABLE });
    expect(errors).toEqual([ErrorCode.SEGMENT_UNAVAILABLE]);
  });
});
