import type { AddressInfo } from 'node:net';
import {
  ErrorCode,
  RelaycastError,
  TRACKER_SUBPROTOCOL,
  decodePrewarmQuery,
  decodeTrackerClientMessage,
  encodeBase58,
  encodeTrackerMessage,
  toBase64,
  type JoinMessage,
  type TrackerServerMessage,
} from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { NodeWebSocket, until } from './testing/loopback-network.js';
import { ViewerTrackerClient } from './tracker-client.js';

/** A tracker stub whose answers each test scripts. */
async function stubTracker(onMessage: (ws: WebSocket, msg: ReturnType<typeof decodeTrackerClientMessage>) => void) {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has(TRACKER_SUBPROTOCOL) ? TRACKER_SUBPROTOCOL : false) });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  let connections = 0;
  wss.on('connection', (ws) => {
    connections++;
    send(ws, { type: 'hello', peerId: `viewer-${connections}-xyz`, nonce: toBase64(new Uint8Array(32)), heartbeatIntervalMs: 5_000 });
    ws.on('message', (data: Buffer) => onMessage(ws, decodeTrackerClientMessage(new Uint8Array(data))));
  });
  return {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    connections: () => connections,
    dropAll: () => wss.clients.forEach((c) => c.terminate()),
    close: () =>
      new Promise<void>((r) => {
        wss.clients.forEach((c) => c.terminate());
        wss.close(() => r());
      }),
  };
}

function send(ws: WebSocket, msg: TrackerServerMessage): void {
  ws.send(encodeTrackerMessage(msg));
}

const RELAY = encodeBase58(new Uint8Array(32).fill(7));
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function client(url: string, opts: { joinTimeoutMs?: number } = {}): ViewerTrackerClient {
  const c = new ViewerTrackerClient({ trackerUrl: url, WebSocket: NodeWebSocket, reconnectMinMs: 50, reconnectMaxMs: 200, ...opts });
  cleanups.push(() => c.close());
  c.connect();
  return c;
}

describe('ViewerTrackerClient', () => {
  it('joins and gets the shortlist; signals go out with `to` and come back as events', async () => {
    const seen: unknown[] = [];
    const t = await stubTracker((ws, msg) => {
      seen.push(msg);
      if (msg.type === 'join') send(ws, { type: 'shortlist', swarmId: msg.swarmId, relays: [{ relayId: RELAY, region: 'eu' }] });
      if (msg.type === 'signal') send(ws, { type: 'signal', from: RELAY, connectionId: msg.connectionId, signal: { kind: 'answer', sdp: 'v=0' } });
    });
    cleanups.push(t.close);
    const c = client(t.url);
    expect(await c.join('https://o.example/master.m3u8', { region: 'eu', count: 99 })).toEqual([{ relayId: RELAY, region: 'eu' }]);
    const signals: unknown[] = [];
    c.on('signal', (m) => signals.push(m));
    expect(c.sendSignal(RELAY, 'conn1', { kind: 'offer', sdp: 'v=0' })).toBe(true);
    await until(() => signals.length === 1, 5_000, 'answer');
    expect(signals[0]).toMatchObject({ from: RELAY, connectionId: 'conn1', signal: { kind: 'answer' } });
    // count is clamped to what the protocol allows.
    expect(seen[0]).toMatchObject({ type: 'join', region: 'eu', count: 16 });
    expect(seen[1]).toMatchObject({ type: 'signal', to: RELAY, connectionId: 'conn1' });
  });

  it('times out a join the tracker never answers, and honours abort', async () => {
    const t = await stubTracker(() => undefined);
    cleanups.push(t.close);
    const c = client(t.url, { joinTimeoutMs: 200 });
    await expect(c.join('s', {})).rejects.toMatchObject({ code: ErrorCode.TIMEOUT });
    const ac = new AbortController();
    const pending = c.join('s', { signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toMatchObject({ code: ErrorCode.ABORTED });
  });

  it('rejects a refused join and reports the tracker error as an event', async () => {
    const t = await stubTracker((ws, msg) => {
      if (msg.type === 'join') send(ws, { type: 'error', code: 'RC_ERR_SWARM_FULL', message: 'full', ref: 'join' });
    });
    cleanups.push(t.close);
    const c = client(t.url);
    const errors: unknown[] = [];
    c.on('error', (e) => errors.push(e.details));
    await expect(c.join('s', {})).rejects.toMatchObject({ code: ErrorCode.TRACKER_UNAVAILABLE });
    expect(errors).toEqual([{ code: 'RC_ERR_SWARM_FULL', ref: 'join' }]);
  });

  it('reconnects after the socket drops and says so with events', async () => {
    const t = await stubTracker(() => undefined);
    cleanups.push(t.close);
    const c = client(t.url);
    await c.whenReady(AbortSignal.timeout(5_000));
    const events: string[] = [];
    c.on('connected', () => events.push('connected'));
    c.on('disconnected', () => events.push('disconnected'));
    t.dropAll();
    await until(() => events.join() === 'disconnected,connected', 5_000, 'reconnect');
    expect(t.connections()).toBe(2);
    expect(c.isReady).toBe(true);
  });

  it('keeps retrying an unreachable tracker without throwing, and fails joins meanwhile', async () => {
    const c = client('ws://127.0.0.1:9/', { joinTimeoutMs: 300 });
    let failures = 0;
    c.on('connect-failed', () => failures++);
    await until(() => failures >= 2, 5_000, 'two failed attempts');
    await expect(c.join('s', {})).rejects.toMatchObject({ code: ErrorCode.TRACKER_UNAVAILABLE });
  });

  it('asks TURN once per relay at a time, resolves with the `ice` answer, and rejects a refusal with RC_ERR_TURN_REFUSED', async () => {
    const turns: string[] = [];
    let refuse = false;
    const t = await stubTracker((ws, msg) => {
      if (msg.type !== 'turn') return;
      turns.push(msg.relayId);
      if (refuse) send(ws, { type: 'error', code: ErrorCode.TURN_REFUSED, message: 'no', ref: 'turn' });
      else send(ws, { type: 'ice', relayId: msg.relayId, iceServers: [{ urls: ['turn:t.example:3478'], username: 'u', credential: 'c' }] });
    });
    cleanups.push(t.close);
    const c = client(t.url);
    await c.whenReady();
    const [a, b] = await Promise.all([c.requestTurn(RELAY), c.requestTurn(RELAY)]);
    expect(a).toEqual([{ urls: ['turn:t.example:3478'], username: 'u', credential: 'c' }]);
    expect(b).toEqual(a);
    expect(turns).toEqual([RELAY]);
    refuse = true;
    await expect(c.requestTurn(RELAY)).rejects.toMatchObject({ code: ErrorCode.TURN_REFUSED });
  });

  it("keeps only STUN from hello, and proves the session over each connection's nonce", async () => {
    const sessions: { grant: string; proof: string }[] = [];
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has(TRACKER_SUBPROTOCOL) ? TRACKER_SUBPROTOCOL : false) });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    let n = 0;
    wss.on('connection', (ws) => {
      n++;
      const iceServers = [{ urls: ['stun:s.example:3478', 'turn:t.example:3478'] }, { urls: ['turns:t.example:5349'], username: 'u', credential: 'c' }];
      send(ws, { type: 'hello', peerId: `viewer-${n}-xyz`, nonce: toBase64(new Uint8Array(32).fill(n)), heartbeatIntervalMs: 5_000, iceServers });
      ws.on('message', (data: Buffer) => {
        const msg = decodeTrackerClientMessage(new Uint8Array(data));
        if (msg.type === 'session') sessions.push(msg);
      });
    });
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          wss.clients.forEach((x) => x.terminate());
          wss.close(() => r());
        }),
    );
    const c = client(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
    await c.whenReady();
    expect(c.iceServers).toEqual([{ urls: ['stun:s.example:3478'] }]);
    const signed: Uint8Array[] = [];
    c.setSession({
      grant: new Uint8Array([1, 2, 3]),
      sessionKey: new Uint8Array(32),
      sign: async (m) => (signed.push(m), new Uint8Array(64).fill(signed.length)),
    });
    await until(() => sessions.length === 1, 5_000, 'the session');
    wss.clients.forEach((x) => x.terminate());
    await until(() => sessions.length === 2, 5_000, 'the session after the reconnect');
    expect(sessions.map((x) => x.grant)).toEqual([toBase64(new Uint8Array([1, 2, 3])), toBase64(new Uint8Array([1, 2, 3]))]);
    // Each proof signs that connection's nonce (hello 1, then hello 2).
    expect(signed.map((m) => m[m.byteLength - 1])).toEqual([1, 2]);
  });

  /**
   * A stub that pre-warms like the tracker (docs/PROTOCOL.md 2.13): it reads the join from the URL
   * with the protocol's own decoder, answers with the shortlist in hello, or with a plain hello and
   * an `error` (ref prewarm) when the decoder refuses it.
   */
  async function prewarmTracker() {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, handleProtocols: (p) => (p.has(TRACKER_SUBPROTOCOL) ? TRACKER_SUBPROTOCOL : false) });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    const seen = { queries: [] as (JoinMessage | undefined)[], messages: [] as string[], connections: 0 };
    wss.on('connection', (ws, req) => {
      seen.connections++;
      const hello = { type: 'hello' as const, peerId: `viewer-${seen.connections}-xyz`, nonce: toBase64(new Uint8Array(32)), heartbeatIntervalMs: 5_000 };
      try {
        const join = decodePrewarmQuery(new URL(req.url ?? '/', 'http://x').search);
        seen.queries.push(join);
        send(ws, join === undefined ? hello : { ...hello, shortlist: { swarmId: join.swarmId, relays: [{ relayId: RELAY, region: 'eu' }] } });
      } catch (err) {
        send(ws, hello);
        send(ws, { type: 'error', code: (err as { code: string }).code, message: 'refused', ref: 'prewarm' });
      }
      ws.on('message', (data: Buffer) => {
        const msg = decodeTrackerClientMessage(new Uint8Array(data));
        seen.messages.push(msg.type);
        if (msg.type === 'join') send(ws, { type: 'shortlist', swarmId: msg.swarmId, relays: [] });
      });
    });
    cleanups.push(
      () =>
        new Promise<void>((r) => {
          wss.clients.forEach((x) => x.terminate());
          wss.close(() => r());
        }),
    );
    return { url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/`, seen, dropAll: () => wss.clients.forEach((x) => x.terminate()) };
  }

  it('pre-warms: every connection carries the join in its URL, the shortlist comes with hello, and no join message is sent', async () => {
    const t = await prewarmTracker();
    const c = new ViewerTrackerClient({ trackerUrl: t.url, WebSocket: NodeWebSocket, reconnectMinMs: 50, reconnectMaxMs: 200 });
    cleanups.push(() => c.close());
    const swarmId = 'https://o.example/live/master.m3u8';
    c.prewarm({ swarmId, region: 'eu', count: 4 });
    c.connect();
    await c.whenReady(AbortSignal.timeout(5_000));
    expect(t.seen.queries).toEqual([{ type: 'join', swarmId, region: 'eu', count: 4 }]);
    expect(c.takeHelloShortlist('https://other.example/master.m3u8')).toBeUndefined();
    expect(c.takeHelloShortlist(swarmId)).toEqual([{ relayId: RELAY, region: 'eu' }]);
    expect(c.takeHelloShortlist(swarmId)).toBeUndefined(); // taken once
    // The relay handed with hello may be signaled at once.
    expect(c.sendSignal(RELAY, 'c1', { kind: 'offer', sdp: 'v=0' })).toBe(true);
    await until(() => t.seen.messages.length === 1, 5_000, 'the offer');
    // A reconnect pre-warms again.
    t.dropAll();
    await until(() => t.seen.connections === 2 && c.isReady, 5_000, 'the reconnect');
    expect(t.seen.queries[1]).toEqual({ type: 'join', swarmId, region: 'eu', count: 4 });
    expect(c.takeHelloShortlist(swarmId)).toEqual([{ relayId: RELAY, region: 'eu' }]);
    expect(t.seen.messages).toEqual(['signal']);
  });

  it('a pre-warm the tracker refuses (bad swarm id) is a typed error event; the socket stays up and a join still works', async () => {
    const t = await prewarmTracker();
    const c = new ViewerTrackerClient({ trackerUrl: t.url, WebSocket: NodeWebSocket, reconnectMinMs: 50, reconnectMaxMs: 200 });
    cleanups.push(() => c.close());
    const errors: RelaycastError[] = [];
    c.on('error', (e) => errors.push(e));
    const disconnects: string[] = [];
    c.on('disconnected', () => disconnects.push('x'));
    c.prewarm({ swarmId: 'x'.repeat(3_000) });
    c.connect();
    await c.whenReady(AbortSignal.timeout(5_000));
    await until(() => errors.length === 1, 5_000, 'the refusal');
    expect(errors[0]).toBeInstanceOf(RelaycastError);
    expect(errors[0]).toMatchObject({ code: ErrorCode.TRACKER_UNAVAILABLE, details: { code: ErrorCode.MESSAGE_FIELD, ref: 'prewarm' } });
    expect(c.takeHelloShortlist('x'.repeat(3_000))).toBeUndefined();
    expect(c.isReady).toBe(true);
    expect(await c.join('https://o.example/master.m3u8', {})).toEqual([]);
    expect(disconnects).toEqual([]);
    expect(t.seen.connections).toBe(1);
  });

  it('leaves the URL alone without a pre-warm, and skips one too long for any tracker', async () => {
    const t = await prewarmTracker();
    const plain = client(t.url);
    await plain.whenReady(AbortSignal.timeout(5_000));
    const huge = new ViewerTrackerClient({ trackerUrl: t.url, WebSocket: NodeWebSocket });
    cleanups.push(() => huge.close());
    huge.prewarm({ swarmId: '\u0001'.repeat(4_000) });
    huge.connect();
    await huge.whenReady(AbortSignal.timeout(5_000));
    expect(t.seen.queries).toEqual([undefined, undefined]);
  });
});
