import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, FrameType, RELAY_STATUS_PATHS, concatBytes, decodeBase58, decodeFrames, encodeFrame, type RelayFrame } from '@relaycast/protocol';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  FAKE_TRACKER_KEY,
  connectViewerViaTracker,
  startFakeTracker,
  type FakeTracker,
  type SignaledViewer,
  type TrackerConnection,
} from '../testing/fake-tracker.js';
import { loadOrCreateKeypair, type RelayKeypair } from '../keypair.js';
import { deferred, serveBytes, startTestOrigin, testBytes, type TestOrigin } from '../testing/origin-server.js';
import { TestSession, testPayer, testTracker } from '../testing/payments.js';
import { startRelay, type RelayNode } from './relay-node.js';
import { eventually } from '../testing/transport-compliance.js';

const silent = pino({ level: 'silent' });

function collectFrames(viewer: SignaledViewer): RelayFrame[] {
  const frames: RelayFrame[] = [];
  for (const data of viewer.early.splice(0)) frames.push(...decodeFrames(new Uint8Array(data)));
  viewer.dc.onmessage = (e: MessageEvent) => {
    for (const f of decodeFrames(new Uint8Array(e.data as ArrayBuffer))) frames.push(f);
  };
  return frames;
}

function send(viewer: SignaledViewer, frame: RelayFrame): void {
  viewer.dc.send(encodeFrame(frame));
}

function dataOf(frames: RelayFrame[], requestId: number): Uint8Array {
  return concatBytes(frames.flatMap((f) => (f.type === FrameType.DATA && f.requestId === requestId ? [f.chunk] : [])));
}

function ended(frames: RelayFrame[], requestId: number): boolean {
  return frames.some((f) => f.requestId === requestId && (f.type === FrameType.END || f.type === FrameType.ABSENT || f.type === FrameType.ERROR));
}

describe('startRelay', () => {
  let dir: string;
  let keypair: RelayKeypair;
  let origin: TestOrigin;
  let tracker: FakeTracker;
  const cleanups: (() => unknown)[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-relay-node-'));
    ({ keypair } = await loadOrCreateKeypair(join(dir, 'relay.json')));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function start(extra: Partial<Parameters<typeof startRelay>[0]> = {}): Promise<{ relay: RelayNode; conn: TrackerConnection }> {
    origin = await startTestOrigin();
    cleanups.push(() => origin.close());
    tracker = await startFakeTracker();
    cleanups.push(() => tracker.close());
    const relay = await startRelay({
      trackerUrl: tracker.url,
      allowedOrigins: [`${origin.base}/media/`],
      keypair,
      bindAddress: '127.0.0.1',
      region: 'test-1',
      capacity: 7,
      logger: silent,
      signal: AbortSignal.timeout(10_000),
      ...extra,
    });
    cleanups.push(() => relay.close());
    return { relay, conn: tracker.connections[0] as TrackerConnection };
  }

  it('registers, serves a viewer signaled through the tracker from the origin, and reports it', { timeout: 30_000 }, async () => {
    const { relay, conn } = await start();
    expect(relay.relayId).toBe(keypair.relayId);
    expect(conn.signatureValid).toBe(true);
    expect(conn.messages[0]).toMatchObject({ type: 'register', relayId: keypair.relayId, capacity: 7, load: 0, region: 'test-1', pricePerGiB: '0' });

    const body = testBytes(200_000, 7);
    origin.route('/media/seg0.ts', serveBytes(body));
    const viewer = await connectViewerViaTracker(conn, 'viewer-00000001', 'c1');
    cleanups.push(() => viewer.close());
    const frames = collectFrames(viewer);
    send(viewer, { type: FrameType.REQUEST, requestId: 1, url: origin.url('/media/seg0.ts') });
    send(viewer, { type: FrameType.REQUEST, requestId: 2, url: origin.url('/private/x.ts') });
    await eventually(() => ended(frames, 1) && ended(frames, 2), 'both requests to end');
    expect(frames.find((f) => f.requestId === 1 && f.type === FrameType.RESPONSE)).toMatchObject({ offset: 0, totalBytes: body.byteLength });
    expect(Buffer.from(dataOf(frames, 1)).equals(Buffer.from(body))).toBe(true);
    expect(frames.find((f) => f.requestId === 2)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.ORIGIN_NOT_ALLOWED });

    const stats = relay.stats();
    expect(stats).toMatchObject({
      relayId: keypair.relayId,
      registered: true,
      viewers: 1,
      peers: 1,
      requests: 2,
      completed: 1,
      bytesServed: body.byteLength,
      errors: 1,
    });

    // The viewer leaving frees its peer.
    viewer.close();
    await eventually(() => relay.stats().peers === 0 && relay.stats().viewers === 0, 'the peer to be released');
  });

  it('closes gracefully: refuses new requests, finishes the in-flight one, then drops tracker and peers', { timeout: 30_000 }, async () => {
    const { relay, conn } = await start({ shutdownGraceMs: 10_000 });
    const gate = deferred();
    const body = testBytes(300_000, 3);
    origin.route('/media/slow.ts', serveBytes(body, { chunkBytes: 50_000, gate: gate.promise }));
    const viewer = await connectViewerViaTracker(conn, 'viewer-00000002', 'c1');
    cleanups.push(() => viewer.close());
    const frames = collectFrames(viewer);
    send(viewer, { type: FrameType.REQUEST, requestId: 1, url: origin.url('/media/slow.ts') });
    await eventually(() => frames.some((f) => f.type === FrameType.DATA), 'the first DATA');

    const closed = relay.close();
    await eventually(() => conn.ws.readyState === conn.ws.CLOSED, 'the tracker socket to close');
    send(viewer, { type: FrameType.REQUEST, requestId: 2, url: origin.url('/media/slow.ts') });
    await eventually(() => ended(frames, 2), 'the refusal');
    expect(frames.find((f) => f.requestId === 2)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.RELAY_OVERLOADED });
    gate.resolve();
    await closed;
    await eventually(() => ended(frames, 1), 'the END of the in-flight request');
    expect(frames.find((f) => f.requestId === 1 && f.type === FrameType.END)).toEqual({ type: FrameType.END, requestId: 1, bytesSent: body.byteLength });
    expect(Buffer.from(dataOf(frames, 1)).equals(Buffer.from(body))).toBe(true);
    expect(relay.stats().peers).toBe(0);
  });

  it(
    'as a paid relay: challenges the channel, binds it, stores receipts received over it, refuses past the credit limit, and reports receipts/unpaid/paid on /status',
    { timeout: 30_000 },
    async () => {
      const payer = testPayer();
      const trackerKey = testTracker();
      const { relay, conn } = await start({
        acceptPayers: new Map([[payer.id, 'http://127.0.0.1:1/']]),
        receiptsDbPath: join(dir, 'paid', 'receipts.sqlite'),
        creditLimitBytes: 100_000,
        trustedTrackers: [trackerKey.id],
        statusPort: 0,
      });
      const body = testBytes(150_000, 9);
      origin.route('/media/seg1.ts', serveBytes(body));
      const url = origin.url('/media/seg1.ts');
      const session = new TestSession(payer, { scope: `${origin.base}/media/` });
      const viewer = await connectViewerViaTracker(conn, 'viewer-00000003', 'c1');
      cleanups.push(() => viewer.close());
      const frames = collectFrames(viewer);
      const relayKey = decodeBase58(relay.relayId);
      await eventually(() => frames.some((f) => f.type === FrameType.CHALLENGE), 'the CHALLENGE');
      const challenge = frames.find((f) => f.type === FrameType.CHALLENGE) as Extract<RelayFrame, { type: typeof FrameType.CHALLENGE }>;
      send(viewer, session.bindFrame(challenge.challenge, relayKey, trackerKey));
      await eventually(() => relay.stats().payments?.bindsAccepted === 1, 'the BIND');
      send(viewer, { type: FrameType.REQUEST, requestId: 1, url });
      await eventually(() => ended(frames, 1), 'the first request');
      send(viewer, { type: FrameType.REQUEST, requestId: 2, url });
      await eventually(() => ended(frames, 2), 'the refusal');
      expect(frames.find((f) => f.requestId === 2)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
      send(viewer, { type: FrameType.RECEIPT, requestId: 0, signedReceipt: session.signedReceipt(relayKey, body.byteLength) });
      await eventually(() => relay.stats().payments?.receiptsAccepted === 1, 'the receipt');
      send(viewer, { type: FrameType.REQUEST, requestId: 3, url });
      await eventually(() => ended(frames, 3), 'the third request');
      expect(frames.find((f) => f.requestId === 3 && f.type === FrameType.END)).toMatchObject({ bytesSent: body.byteLength });
      const status = (await (await fetch(`${relay.statusUrl ?? ''}${RELAY_STATUS_PATHS.status}`)).json()) as { payments: Record<string, unknown> };
      const receipted = ((BigInt(body.byteLength) * session.grant.pricePerGiB) >> 30n).toString();
      // Earned is what the settler credits: nothing until it has answered a redeem.
      expect(status.payments).toMatchObject({
        receipts: 1,
        receipted,
        earned: '0',
        shortfall: '0',
        paid: '0',
        unpaid: '0',
        pending: '0',
        bindsAccepted: 1,
        receiptsAccepted: 1,
      });
      // The relay trusts the configured tracker key and the one its tracker announced.
      expect(status.payments['trustedTrackers']).toEqual([trackerKey.id, FAKE_TRACKER_KEY]);
      await expect(relay.redeem(AbortSignal.timeout(1_000))).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    },
  );

  it('refuses a config without allowed origins', async () => {
    await expect(startRelay({ trackerUrl: 'ws://127.0.0.1:1', allowedOrigins: [], keypair, logger: silent })).rejects.toMatchObject({
      code: ErrorCode.CONFIG_INVALID,
    });
  });

  it('gives up starting with RC_ERR_ABORTED when its signal aborts before any registration', async () => {
    const down = await startFakeTracker();
    await down.close();
    await expect(
      startRelay({ trackerUrl: down.url, allowedOrigins: ['http://127.0.0.1:1/media/'], keypair, logger: silent, signal: AbortSignal.timeout(300) }),
    ).rejects.toMatchObject({ code: ErrorCode.ABORTED });
  });
});
