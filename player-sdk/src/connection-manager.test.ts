import type { AddressInfo } from 'node:net';
import {
  ErrorCode,
  RelaycastError,
  TRACKER_SUBPROTOCOL,
  decodePrewarmQuery,
  decodeTrackerClientMessage,
  encodeTrackerMessage,
  toBase64,
  type JoinMessage,
  type TrackerServerMessage,
} from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { ConnectionManager, setupFailureCause } from './connection-manager.js';
import { SETUP_FAILURE_CAUSES, SdkStats } from './stats.js';
import { LOOPBACK_RTC, NodeRTCPeerConnection, NodeWebSocket, TestRelay, until } from './testing/loopback-network.js';
import { ViewerTrackerClient } from './tracker-client.js';

const SWARM = 'https://o.example/live/master.m3u8';

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function send(ws: WebSocket, msg: TrackerServerMessage): void {
  if (ws.readyState === 1) ws.send(encodeTrackerMessage(msg));
}

/**
 * A tracker stub with scripted relays (real node-datachannel peers on loopback). With `prewarm` it
 * answers a URL that carries a join like the tracker does (docs/PROTOCOL.md 2.13): the shortlist in
 * hello, or a plain hello and an `error` (ref prewarm) when the protocol's decoder refuses the query.
 * Without, it ignores the query, like a tracker that predates pre-warm.
 */
async function stubTracker(opts: { prewarm: boolean; relays: number; silent?: number }) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has(TRACKER_SUBPROTOCOL) ? TRACKER_SUBPROTOCOL : false) });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const relays: TestRelay[] = [];
  for (let i = 0; i < opts.relays; i++) {
    const relay: TestRelay = new TestRelay(
      () => undefined,
      (viewer, connectionId, signal) => send(viewer as unknown as WebSocket, { type: 'signal', from: relay.relayId, connectionId, signal }),
    );
    relay.silent = i < (opts.silent ?? 0);
    relays.push(relay);
  }
  const seen = { queries: [] as (JoinMessage | undefined)[], messages: [] as string[], offers: [] as string[], connections: 0 };
  const descriptors = (count: number | undefined) => relays.slice(0, count ?? 5).map((r) => ({ relayId: r.relayId, region: 'eu' }));
  wss.on('connection', (ws, req) => {
    seen.connections++;
    const hello = { type: 'hello' as const, peerId: `viewer-${seen.connections}-xyz`, nonce: toBase64(new Uint8Array(32)), heartbeatIntervalMs: 5_000 };
    let refused: string | undefined;
    let join: JoinMessage | undefined;
    try {
      join = opts.prewarm ? decodePrewarmQuery(new URL(req.url ?? '/', 'http://x').search) : undefined;
    } catch (err) {
      refused = (err as RelaycastError).code;
    }
    seen.queries.push(join);
    send(ws, join === undefined ? hello : { ...hello, shortlist: { swarmId: join.swarmId, relays: descriptors(join.count) } });
    if (refused !== undefined) send(ws, { type: 'error', code: refused, message: 'refused', ref: 'prewarm' });
    ws.on('message', (data: Buffer) => {
      let msg;
      try {
        msg = decodeTrackerClientMessage(new Uint8Array(data));
      } catch (err) {
        seen.messages.push('refused');
        return send(ws, { type: 'error', code: (err as RelaycastError).code, message: 'refused', ref: 'join' });
      }
      seen.messages.push(msg.type);
      if (msg.type === 'join') send(ws, { type: 'shortlist', swarmId: msg.swarmId, relays: descriptors(msg.count) });
      // A retry after a failed direct attempt asks for TURN first: none here.
      if (msg.type === 'turn') send(ws, { type: 'error', code: ErrorCode.TURN_REFUSED, message: 'no TURN here', ref: 'turn' });
      if (msg.type === 'signal') {
        if (msg.signal.kind === 'offer') seen.offers.push(msg.to as string);
        void relays.find((r) => r.relayId === msg.to)?.onSignal(ws as never, msg.connectionId, msg.signal);
      }
    });
  });
  cleanups.push(
    () =>
      new Promise<void>((r) => {
        for (const relay of relays) relay.closeAll();
        wss.clients.forEach((c) => c.terminate());
        wss.close(() => r());
      }),
  );
  return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, relays, seen };
}

function viewer(url: string, swarmId: string, opts: { maxRelays?: number; connectTimeoutMs?: number; prewarm?: boolean } = {}) {
  const tracker = new ViewerTrackerClient({ trackerUrl: url, WebSocket: NodeWebSocket, reconnectMinMs: 50, reconnectMaxMs: 200 });
  const stats = new SdkStats();
  const manager = new ConnectionManager({
    tracker,
    swarmId,
    maxRelays: opts.maxRelays ?? 2,
    shortlistSize: 3,
    region: 'eu',
    prewarm: opts.prewarm,
    relayBackoffMs: 60_000,
    refillRetryMinMs: 60_000,
    stats,
    connection: { RTCPeerConnection: NodeRTCPeerConnection, rtcConfiguration: LOOPBACK_RTC, connectTimeoutMs: opts.connectTimeoutMs },
  });
  cleanups.push(() => {
    manager.close();
    tracker.close();
  });
  return { tracker, manager, stats };
}

/** What RelaycastClient does: connect, and once the tracker said hello, fill the warm set. */
async function connectAndStart(v: ReturnType<typeof viewer>): Promise<void> {
  v.tracker.connect();
  await v.tracker.whenReady(AbortSignal.timeout(5_000));
  await v.manager.start(AbortSignal.timeout(15_000));
}

describe('ConnectionManager: pre-warm', () => {
  it('offers to the relays of a pre-warmed hello with no join round trip', async () => {
    const t = await stubTracker({ prewarm: true, relays: 3 });
    const v = viewer(t.url, SWARM);
    await connectAndStart(v);
    expect(v.manager.connectedRelayIds.sort()).toEqual([t.relays[0]?.relayId, t.relays[1]?.relayId].sort());
    expect(t.seen.queries).toEqual([{ type: 'join', swarmId: SWARM, region: 'eu', count: 3 }]);
    // Only offers and candidates went to the tracker: no join.
    expect(t.seen.messages).not.toContain('join');
    expect(t.seen.offers.sort()).toEqual([t.relays[0]?.relayId, t.relays[1]?.relayId].sort());
    const s = v.stats.snapshot();
    expect(s.setup).toMatchObject({ attempts: 2, opened: 2, failed: 0 });
    for (const id of v.manager.connectedRelayIds) expect(s.perRelay[id]?.setupMs).toBeGreaterThanOrEqual(0);
  });

  it('joins as before when the tracker ignores the pre-warm (plain hello), or when pre-warm is off', async () => {
    const old = await stubTracker({ prewarm: false, relays: 2 });
    const a = viewer(old.url, SWARM);
    await connectAndStart(a);
    expect(a.manager.connectedRelayIds).toHaveLength(2);
    expect(old.seen.messages.filter((m) => m === 'join')).toHaveLength(1);

    const t = await stubTracker({ prewarm: true, relays: 2 });
    const b = viewer(t.url, SWARM, { prewarm: false });
    await connectAndStart(b);
    expect(t.seen.queries).toEqual([undefined]);
    expect(t.seen.messages.filter((m) => m === 'join')).toHaveLength(1);
  });

  it('a bad swarm id in the URL is refused with a typed error; the socket stays up, the manager falls back to join, the tracker serves others', async () => {
    const t = await stubTracker({ prewarm: true, relays: 1 });
    const bad = viewer(t.url, 'x'.repeat(3_000));
    const errors: RelaycastError[] = [];
    bad.tracker.on('error', (e) => errors.push(e));
    await connectAndStart(bad);
    await until(() => errors.length >= 2, 5_000, 'the refusals');
    expect(errors[0]).toMatchObject({ code: ErrorCode.TRACKER_UNAVAILABLE, details: { code: ErrorCode.MESSAGE_FIELD, ref: 'prewarm' } });
    // The join the manager falls back to is refused the same way (the swarm id is bad), on the same socket.
    expect(errors[1]).toMatchObject({ details: { code: ErrorCode.MESSAGE_FIELD, ref: 'join' } });
    expect(bad.tracker.isReady).toBe(true);
    expect(bad.manager.connectedRelayIds).toEqual([]);
    expect(t.seen.connections).toBe(1);
    const good = viewer(t.url, SWARM);
    await connectAndStart(good);
    expect(good.manager.connectedRelayIds).toEqual([t.relays[0]?.relayId]);
  });
});

describe('ConnectionManager: setup stats', () => {
  it('counts every failed attempt, the quick retry included, by cause, per relay and in total', async () => {
    const t = await stubTracker({ prewarm: true, relays: 2, silent: 1 });
    const v = viewer(t.url, SWARM, { connectTimeoutMs: 400 });
    await connectAndStart(v);
    const silent = t.relays[0]?.relayId as string;
    const good = t.relays[1]?.relayId as string;
    expect(v.manager.connectedRelayIds).toEqual([good]);
    const s = v.stats.snapshot();
    // The silent relay: first attempt and its one quick retry, both timed out.
    expect(s.setup).toEqual({
      attempts: 3,
      opened: 1,
      failed: 2,
      failedByCause: { timeout: 2, signaling: 0, ice: 0, dtls: 0, failed: 0, closed: 0, other: 0 },
    });
    expect(s.perRelay[silent]).toMatchObject({ setupFailures: 2 });
    expect(s.perRelay[silent]?.setupMs).toBeUndefined();
    expect(s.perRelay[good]?.setupMs).toBeGreaterThanOrEqual(0);
    expect(s.perRelay[good]?.setupFailures).toBeUndefined();
  });

  it('does not count attempts its own close() cut short as failures', async () => {
    const t = await stubTracker({ prewarm: true, relays: 1, silent: 1 });
    const v = viewer(t.url, SWARM, { maxRelays: 1, connectTimeoutMs: 5_000 });
    v.tracker.connect();
    // Closed while the offer waits for an answer that never comes.
    await until(() => t.seen.offers.length === 1, 5_000, 'the offer');
    v.manager.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(v.stats.snapshot().setup).toMatchObject({ attempts: 1, opened: 0, failed: 0 });
  });

  it('SdkStats: every cause present from the start, snapshots are copies', () => {
    const stats = new SdkStats();
    const empty = stats.snapshot().setup;
    expect(empty).toEqual({ attempts: 0, opened: 0, failed: 0, failedByCause: Object.fromEntries(SETUP_FAILURE_CAUSES.map((c) => [c, 0])) });
    stats.setupAttempt();
    stats.setupFailed('r1', 'dtls');
    stats.setupAttempt();
    stats.setupOpened('r1', 42);
    const s = stats.snapshot();
    expect(s.setup).toMatchObject({ attempts: 2, opened: 1, failed: 1, failedByCause: { dtls: 1 } });
    expect(s.perRelay['r1']).toMatchObject({ setupMs: 42, setupFailures: 1 });
    s.setup.failedByCause.dtls = 99;
    expect(stats.snapshot().setup.failedByCause.dtls).toBe(1);
    expect(empty.failedByCause.dtls).toBe(0);
  });

  it('maps what a relay connection rejects with to a cause', () => {
    const e = (code: ErrorCode, message = 'x', details?: Record<string, unknown>) =>
      new RelaycastError(code, message, details === undefined ? {} : { details });
    expect(setupFailureCause(e(ErrorCode.TIMEOUT))).toBe('timeout');
    expect(setupFailureCause(e(ErrorCode.TRACKER_UNAVAILABLE, 'cannot send the offer'))).toBe('signaling');
    expect(setupFailureCause(e(ErrorCode.RELAY_ERROR, 'relay sent an unusable answer'))).toBe('signaling');
    expect(setupFailureCause(e(ErrorCode.RELAY_ERROR, 'violation', { violation: 'x' }))).toBe('other');
    expect(setupFailureCause(e(ErrorCode.CHANNEL_CLOSED, 'peer connection failed'))).toBe('failed');
    expect(setupFailureCause(e(ErrorCode.CHANNEL_CLOSED, 'peer connection failed', { setupCause: 'dtls' }))).toBe('dtls');
    expect(setupFailureCause(e(ErrorCode.CHANNEL_CLOSED, 'peer connection failed', { setupCause: 'ice' }))).toBe('ice');
    expect(setupFailureCause(e(ErrorCode.CHANNEL_CLOSED, 'x', { setupCause: 'not-a-cause' }))).toBe('closed');
    expect(setupFailureCause(e(ErrorCode.CHANNEL_CLOSED, 'data channel closed'))).toBe('closed');
    expect(setupFailureCause(e(ErrorCode.ABORTED))).toBe('closed');
    expect(setupFailureCause(e(ErrorCode.CONFIG_INVALID))).toBe('other');
    expect(setupFailureCause(new Error('boom'))).toBe('other');
  });
});
