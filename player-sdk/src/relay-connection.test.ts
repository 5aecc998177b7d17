import { ErrorCode, FrameType, type ResponseFrame } from '@relaycast/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  LOOPBACK_RTC,
  NodeRTCPeerConnection,
  NodeWebSocket,
  TestTracker,
  testBytes,
  until,
  type RelayBehaviour,
  type TestRelay,
} from './testing/loopback-network.js';
import { RelayConnection, type RelayRequest } from './relay-connection.js';
import { ViewerTrackerClient } from './tracker-client.js';

/** One RelayConnection against a scripted relay over real node-datachannel peer connections. */
const RESOURCE = testBytes(120_000);
const URL_A = 'https://origin.example/a.ts';
let tracker: TestTracker;
let viewer: ViewerTrackerClient;
const open: RelayConnection[] = [];

beforeAll(async () => {
  tracker = await TestTracker.start();
  viewer = new ViewerTrackerClient({ trackerUrl: tracker.url, WebSocket: NodeWebSocket });
  viewer.connect();
  await viewer.whenReady(AbortSignal.timeout(5_000));
  // The stub forwards signaling for any relay; routing replies by connection id is the manager's
  // job, done here by hand.
  viewer.on('signal', (msg) => void open.find((c) => c.connectionId === msg.connectionId)?.handleSignal(msg.signal));
});

afterAll(async () => {
  viewer.close();
  await tracker.close();
});

afterEach(() => {
  for (const c of open.splice(0)) c.close();
  for (const r of tracker.relays.splice(0)) r.closeAll();
});

async function connectTo(behaviour: RelayBehaviour, connectTimeoutMs?: number): Promise<{ conn: RelayConnection; relay: TestRelay }> {
  const relay = tracker.addRelay(behaviour);
  // No retry: a setup that fails here is a failure (node-datachannel's lost setups under load were
  // the DTLS fingerprint race that RelayConnection now avoids, see its sendLocalSignal).
  const conn = new RelayConnection({
    relayId: relay.relayId,
    sendSignal: (to, id, s) => viewer.sendSignal(to, id, s),
    RTCPeerConnection: NodeRTCPeerConnection,
    rtcConfiguration: LOOPBACK_RTC,
    connectTimeoutMs,
  });
  open.push(conn);
  await conn.connect(AbortSignal.timeout(10_000));
  return { conn, relay };
}

async function fetchVia(conn: RelayConnection, req: RelayRequest, signal = new AbortController().signal) {
  const chunks: Uint8Array[] = [];
  let response: ResponseFrame | undefined;
  const bytes = await conn.request(req, { signal, onResponse: (r) => (response = r), onData: (c) => chunks.push(c.slice()) });
  return { bytes, response, data: Buffer.concat(chunks) };
}

const serveResource: RelayBehaviour = (ctx) => ctx.serve(RESOURCE, { chunkBytes: 4_096 });

describe('RelayConnection', () => {
  it('multiplexes concurrent requests by id, each with its own bytes', async () => {
    const other = testBytes(70_000, 5);
    const { conn, relay } = await connectTo((ctx) => ctx.serve(ctx.request.url === URL_A ? RESOURCE : other, { chunkBytes: 4_096 }));
    expect(conn.isOpen).toBe(true);
    const [a, b, c] = await Promise.all([
      fetchVia(conn, { url: URL_A }),
      fetchVia(conn, { url: 'https://origin.example/b.ts' }),
      fetchVia(conn, { url: URL_A, range: { start: 100, end: 5_100 } }),
    ]);
    expect(a.data.equals(Buffer.from(RESOURCE))).toBe(true);
    expect(b.data.equals(Buffer.from(other))).toBe(true);
    expect(c.data.equals(Buffer.from(RESOURCE.subarray(100, 5_100)))).toBe(true);
    expect(c.response).toMatchObject({ offset: 100, totalBytes: RESOURCE.byteLength });
    expect(new Set(relay.requests.map((r) => r.requestId)).size).toBe(3);
    expect(conn.activeRequests).toBe(0);
  });

  it('rejects pending requests with RC_ERR_CHANNEL_CLOSED when the channel closes', async () => {
    const { conn } = await connectTo(async (ctx) => {
      await ctx.serve(RESOURCE, { limit: 10_000, end: false });
      ctx.closeChannel();
    });
    const reasons: string[] = [];
    conn.onClose((r) => reasons.push(r.code));
    await expect(fetchVia(conn, { url: URL_A })).rejects.toMatchObject({ code: ErrorCode.CHANNEL_CLOSED });
    await until(() => reasons.length === 1, 5_000, 'close listener');
    expect(conn.isOpen).toBe(false);
    await expect(fetchVia(conn, { url: URL_A })).rejects.toMatchObject({ code: ErrorCode.CHANNEL_CLOSED });
  });

  it('closes the connection when RESPONSE does not start at the requested offset', async () => {
    const { conn } = await connectTo((ctx) => ctx.send({ type: FrameType.RESPONSE, requestId: ctx.request.requestId, offset: 0 }));
    await expect(fetchVia(conn, { url: URL_A, range: { start: 500 } })).rejects.toMatchObject({ code: ErrorCode.RELAY_ERROR });
    expect(conn.isClosed).toBe(true);
  });

  it('closes the connection when DATA runs past the requested range', async () => {
    const { conn } = await connectTo((ctx) => {
      ctx.send({ type: FrameType.RESPONSE, requestId: ctx.request.requestId, offset: 0 });
      ctx.send({ type: FrameType.DATA, requestId: ctx.request.requestId, chunk: new Uint8Array(11) });
    });
    await expect(fetchVia(conn, { url: URL_A, range: { start: 0, end: 10 } })).rejects.toMatchObject({ code: ErrorCode.RELAY_ERROR });
    expect(conn.isClosed).toBe(true);
  });

  it('closes the connection when END disagrees with the bytes received', async () => {
    const { conn } = await connectTo(async (ctx) => {
      await ctx.serve(RESOURCE, { limit: 1_000, end: false });
      ctx.send({ type: FrameType.END, requestId: ctx.request.requestId, bytesSent: 999 });
    });
    await expect(fetchVia(conn, { url: URL_A })).rejects.toMatchObject({ code: ErrorCode.RELAY_ERROR });
    expect(conn.isClosed).toBe(true);
  });

  it('maps ABSENT and ERROR frames to typed errors and keeps the connection', async () => {
    const { conn } = await connectTo((ctx) =>
      ctx.request.url === URL_A
        ? ctx.send({ type: FrameType.ABSENT, requestId: ctx.request.requestId })
        : ctx.send({ type: FrameType.ERROR, requestId: ctx.request.requestId, code: 'RC_ERR_ORIGIN_NOT_ALLOWED', message: 'no' }),
    );
    await expect(fetchVia(conn, { url: URL_A })).rejects.toMatchObject({ code: ErrorCode.SEGMENT_UNAVAILABLE });
    await expect(fetchVia(conn, { url: 'https://elsewhere.example/x.ts' })).rejects.toMatchObject({
      code: ErrorCode.RELAY_ERROR,
      details: { code: 'RC_ERR_ORIGIN_NOT_ALLOWED' },
    });
    expect(conn.isOpen).toBe(true);
  });

  it('sends CANCEL for an aborted request and ignores its late frames', async () => {
    const { conn, relay } = await connectTo((ctx) => ctx.serve(RESOURCE, { chunkBytes: 2_048 }));
    const controller = new AbortController();
    let got = 0;
    const pending = conn.request(
      { url: URL_A },
      {
        signal: controller.signal,
        onResponse: () => undefined,
        onData: (c) => {
          got += c.byteLength;
          if (got >= 4_096) controller.abort();
        },
      },
    );
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    await until(() => relay.cancels.length === 1, 5_000, 'CANCEL at the relay');
    expect(relay.cancels[0]).toBe(relay.requests[0]?.requestId);
    // The connection stays usable.
    const again = await fetchVia(conn, { url: URL_A, range: { start: 0, end: 1_000 } });
    expect(again.data.equals(Buffer.from(RESOURCE.subarray(0, 1_000)))).toBe(true);
  });

  it('keeps its ICE candidates out of the offer and back until the answer is applied', async () => {
    // The DTLS `unknown CA` race: if the relay can send ICE checks before the answer is applied,
    // libdatachannel's ICE may connect while it is still applying the answer and check the relay's
    // certificate against no fingerprint. The relay can only check addresses it was sent.
    const relay = tracker.addRelay(serveResource);
    const sent: { kind: string; sdp?: string; afterAnswer: boolean }[] = [];
    let answerApplied = false;
    const conn: RelayConnection = new RelayConnection({
      relayId: relay.relayId,
      sendSignal: (to, id, s) => {
        sent.push({ kind: s.kind, sdp: s.kind === 'offer' ? s.sdp : undefined, afterAnswer: answerApplied });
        return viewer.sendSignal(to, id, s);
      },
      RTCPeerConnection: NodeRTCPeerConnection,
      rtcConfiguration: LOOPBACK_RTC,
    });
    const handle = conn.handleSignal.bind(conn);
    conn.handleSignal = async (signal) => {
      await handle(signal);
      if (signal.kind === 'answer') answerApplied = true;
    };
    open.push(conn);
    await conn.connect(AbortSignal.timeout(10_000));
    const offer = sent.find((s) => s.kind === 'offer');
    expect(offer?.sdp).toBeDefined();
    expect(offer?.sdp).not.toMatch(/a=candidate:/);
    const candidates = sent.filter((s) => s.kind === 'candidate');
    expect(candidates.every((s) => s.afterAnswer)).toBe(true);
    // The channel works.
    const r = await fetchVia(conn, { url: URL_A, range: { start: 0, end: 1_000 } });
    expect(r.data.equals(Buffer.from(RESOURCE.subarray(0, 1_000)))).toBe(true);
  });

  it("refuses a relay whose certificate does not match its answer's fingerprint, and says DTLS failed", async () => {
    const relay = tracker.addRelay(serveResource);
    const conn = new RelayConnection({
      relayId: relay.relayId,
      sendSignal: (to, id, s) => viewer.sendSignal(to, id, s),
      RTCPeerConnection: NodeRTCPeerConnection,
      rtcConfiguration: LOOPBACK_RTC,
    });
    const handle = conn.handleSignal.bind(conn);
    // Another certificate's fingerprint: ICE connects, DTLS must not.
    conn.handleSignal = (signal) =>
      handle(signal.kind === 'answer' ? { ...signal, sdp: signal.sdp.replace(/(a=fingerprint:sha-256 )\S+/, `$1${'AB:'.repeat(31)}AB`) } : signal);
    open.push(conn);
    await expect(conn.connect(AbortSignal.timeout(10_000))).rejects.toMatchObject({
      code: ErrorCode.CHANNEL_CLOSED,
      details: { setupCause: 'dtls' },
    });
    expect(conn.isClosed).toBe(true);
  });

  it('opens 48 connections started 8 at a time, every one on its first attempt', async () => {
    const relay = tracker.addRelay(serveResource);
    let failed = 0;
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < 48) {
          next++;
          const conn = new RelayConnection({
            relayId: relay.relayId,
            sendSignal: (to, id, s) => viewer.sendSignal(to, id, s),
            RTCPeerConnection: NodeRTCPeerConnection,
            rtcConfiguration: LOOPBACK_RTC,
          });
          open.push(conn);
          try {
            await conn.connect(AbortSignal.timeout(10_000));
          } catch {
            failed++;
          }
          conn.close();
        }
      }),
    );
    expect(failed).toBe(0);
  }, 60_000);

  it('times out connection setup when the relay never answers', async () => {
    const relay = tracker.addRelay(() => undefined);
    relay.silent = true;
    const conn = new RelayConnection({
      relayId: relay.relayId,
      sendSignal: (to, id, s) => viewer.sendSignal(to, id, s),
      RTCPeerConnection: NodeRTCPeerConnection,
      rtcConfiguration: LOOPBACK_RTC,
      connectTimeoutMs: 300,
    });
    open.push(conn);
    await expect(conn.connect()).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
    expect(conn.isClosed).toBe(true);
  });
});
