/**
 * Test stand-ins for the SDK's unit tests: a node:http origin with Range support, a `ws` tracker
 * stub that speaks the viewer half of the tracker protocol, and scripted relays that answer over
 * real node-datachannel peer connections on 127.0.0.1. The real tracker and relay are exercised by
 * the cross-package tests in test/; here every failure mode is produced exactly, at a chosen byte.
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  DATA_CHANNEL_LABEL,
  FrameType,
  MAX_CHUNK_BYTES,
  TRACKER_SUBPROTOCOL,
  decodeFrames,
  decodePublicKey,
  decodeSignedGrant,
  decodeTrackerClientMessage,
  encodeBase58,
  encodeSignedAssignment,
  fromBase64,
  encodeDataFrame,
  encodeDigestSidecar,
  encodeFrame,
  encodeTrackerMessage,
  toBase64,
  type BindFrame,
  type RelayFrame,
  type IceServer,
  type Reachability,
  type ReportMessage,
  type RequestFrame,
  type SignalPayload,
  type TrackerServerMessage,
} from '@relaycast/protocol';
import { rawPublicKey, signAssignment, verifyTrackerSessionProof } from '@relaycast/protocol/node';
import { RTCPeerConnection as PolyfillPeerConnection } from 'node-datachannel/polyfill';
import { WebSocket, WebSocketServer } from 'ws';
import { RelaycastClient, type RelaycastClientOptions } from '../relaycast-client.js';
import type { RTCPeerConnectionConstructor } from '../relay-connection.js';
import type { WebSocketConstructor } from '../tracker-client.js';

/** Loopback WebRTC for node-datachannel: it ignores 127.0.0.1 unless told to bind there. */
export const LOOPBACK_RTC = { iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration;
export const NodeRTCPeerConnection = PolyfillPeerConnection as unknown as RTCPeerConnectionConstructor;
export const NodeWebSocket = WebSocket as unknown as WebSocketConstructor;

/** Deterministic, non-repeating-looking test bytes. */
export function testBytes(length: number, seed = 7): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (i * 31 + seed + (i >> 8)) % 251;
  return out;
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `predicate` until true (state changes that have no event to await). */
export async function until(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

// ---------------------------------------------------------------------------------------------
// Origin
// ---------------------------------------------------------------------------------------------

export interface OriginRequestLog {
  path: string;
  range: string | undefined;
}

export interface TestOrigin {
  base: string;
  requests: OriginRequestLog[];
  /** Resources by path; tests may replace them (a new version of a segment). */
  files: Map<string, Uint8Array>;
  /** When true the origin ignores Range headers and always answers 200 with the whole file. */
  ignoreRange: boolean;
  close(): Promise<void>;
}

/** Hex SHA-256 of `bytes`, as digest sidecars carry it. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * The origin files for `media.m3u8`'s segments plus the digest sidecar that publishes their
 * SHA-256 (`/media.m3u8.digests.json`): what an honest origin serves, for `startOrigin`.
 */
export function withDigestSidecar(segments: Record<string, Uint8Array>, playlist = 'media.m3u8'): Record<string, Uint8Array> {
  const digests = Object.fromEntries(Object.entries(segments).map(([name, bytes]) => [name, sha256Hex(bytes)]));
  const sidecar = encodeDigestSidecar({ version: 1, algorithm: 'sha256', playlist, segments: digests });
  return {
    ...Object.fromEntries(Object.entries(segments).map(([name, bytes]) => [`/${name}`, bytes])),
    [`/${playlist}.digests.json`]: new TextEncoder().encode(sidecar),
  };
}

export async function startOrigin(files: Record<string, Uint8Array>): Promise<TestOrigin> {
  const origin: Omit<TestOrigin, 'base' | 'close'> = { requests: [], files: new Map(Object.entries(files)), ignoreRange: false };
  const server: Server = createServer((req: IncomingMessage, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    origin.requests.push({ path, range: req.headers.range });
    const body = origin.files.get(path);
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    if (m === null || origin.ignoreRange) {
      res.writeHead(200, { 'content-length': body.byteLength, 'cache-control': 'no-store' }).end(body);
      return;
    }
    const start = Number(m[1]);
    const end = Math.min(m[2] === '' ? body.byteLength - 1 : Number(m[2]), body.byteLength - 1);
    if (start >= body.byteLength) {
      res.writeHead(416, { 'content-range': `bytes */${body.byteLength}` }).end();
      return;
    }
    res
      .writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${body.byteLength}`, 'cache-control': 'no-store' })
      .end(body.subarray(start, end + 1));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return Object.assign(origin, {
    base,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

// ---------------------------------------------------------------------------------------------
// Relays
// ---------------------------------------------------------------------------------------------

/** What a scripted relay can do with one request. */
export interface RelayRequestContext {
  request: RequestFrame;
  relay: TestRelay;
  send(frame: RelayFrame): void;
  /** Sends RESPONSE for `resource` (the whole file) at the requested range, then `limit` bytes of it (all by default), then END unless `end: false`. */
  serve(resource: Uint8Array, opts?: { limit?: number; end?: boolean; chunkBytes?: number }): Promise<void>;
  /** Closes this viewer's data channel and peer connection (the relay "goes away"). */
  closeChannel(): void;
}

export type RelayBehaviour = (ctx: RelayRequestContext) => void | Promise<void>;

export class TestRelay {
  readonly relayId = encodeBase58(globalThis.crypto.getRandomValues(new Uint8Array(32)));
  /** Every frame viewers sent, in order. */
  readonly received: RelayFrame[] = [];
  readonly peers = new Map<string, RTCPeerConnection>();
  readonly channels = new Set<RTCDataChannel>();
  /** Ignore offers entirely (a relay that never answers). */
  silent = false;
  /** The tracker's reachability verdict put in shortlists. Default: untested (absent). */
  reachability: Reachability | undefined;
  /** A paid relay sends CHALLENGE first thing on every channel. Default: free (no challenge). */
  paid = false;
  /** Each BIND received, with the challenge of the channel it came on. */
  readonly binds: { frame: BindFrame; challenge: Uint8Array | undefined }[] = [];

  constructor(
    public behaviour: RelayBehaviour,
    private readonly sendToViewer: (viewer: WebSocket, connectionId: string, signal: SignalPayload) => void,
  ) {}

  get requests(): RequestFrame[] {
    return this.received.filter((f): f is RequestFrame => f.type === FrameType.REQUEST);
  }

  get cancels(): number[] {
    return this.received.filter((f) => f.type === FrameType.CANCEL).map((f) => f.requestId);
  }

  async onSignal(viewer: WebSocket, connectionId: string, payload: SignalPayload): Promise<void> {
    if (this.silent) return;
    if (payload.kind === 'offer') {
      const pc = new NodeRTCPeerConnection({ ...LOOPBACK_RTC });
      this.peers.set(connectionId, pc);
      pc.addEventListener('datachannel', (ev: RTCDataChannelEvent) => this.attach(ev.channel, connectionId));
      await pc.setRemoteDescription({ type: 'offer', sdp: payload.sdp });
      const answer = await pc.createAnswer();
      await pc.setLocalDescription(answer);
      this.sendToViewer(viewer, connectionId, { kind: 'answer', sdp: pc.localDescription?.sdp ?? answer.sdp ?? '' });
      // Like the real relay: candidates only after the answer.
      pc.addEventListener('icecandidate', (ev: RTCPeerConnectionIceEvent) => {
        if (ev.candidate !== null && ev.candidate.candidate !== '') {
          this.sendToViewer(viewer, connectionId, { kind: 'candidate', candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid ?? undefined });
        }
      });
    } else if (payload.kind === 'candidate') {
      await this.peers
        .get(connectionId)
        ?.addIceCandidate({ candidate: payload.candidate, sdpMid: payload.sdpMid ?? '0' })
        .catch(() => undefined);
    }
  }

  /** Closes every peer connection this relay has (it "crashes"). */
  closeAll(): void {
    for (const ch of this.channels) ch.close();
    for (const pc of this.peers.values()) pc.close();
    this.channels.clear();
    this.peers.clear();
  }

  private attach(channel: RTCDataChannel, connectionId: string): void {
    if (channel.label !== DATA_CHANNEL_LABEL) return channel.close();
    channel.binaryType = 'arraybuffer';
    this.channels.add(channel);
    let challenge: Uint8Array | undefined;
    const sendChallenge = (): void => {
      if (!this.paid || challenge !== undefined) return;
      challenge = new Uint8Array(randomBytes(32));
      channel.send(encodeFrame({ type: FrameType.CHALLENGE, requestId: 0, challenge }));
    };
    if (channel.readyState === 'open') sendChallenge();
    else channel.addEventListener('open', sendChallenge, { once: true });
    channel.addEventListener('close', () => this.channels.delete(channel));
    channel.addEventListener('message', (ev: MessageEvent) => {
      for (const frame of decodeFrames(new Uint8Array(ev.data as ArrayBuffer))) {
        this.received.push(frame);
        if (frame.type === FrameType.BIND) this.binds.push({ frame, challenge });
        if (frame.type === FrameType.REQUEST) void this.handle(channel, connectionId, frame);
      }
    });
  }

  private async handle(channel: RTCDataChannel, connectionId: string, request: RequestFrame): Promise<void> {
    const send = (frame: RelayFrame): void => {
      if (channel.readyState === 'open') channel.send(encodeFrame(frame));
    };
    const ctx: RelayRequestContext = {
      request,
      relay: this,
      send,
      closeChannel: () => {
        channel.close();
        const pc = this.peers.get(connectionId);
        this.peers.delete(connectionId);
        pc?.close();
      },
      serve: async (resource, opts = {}) => {
        const start = request.range?.start ?? 0;
        const end = Math.min(request.range?.end ?? resource.byteLength, resource.byteLength);
        send({ type: FrameType.RESPONSE, requestId: request.requestId, offset: start, totalBytes: resource.byteLength });
        const stopAt = Math.min(end, start + (opts.limit ?? Infinity));
        const step = opts.chunkBytes ?? 16_384;
        let sent = 0;
        for (let at = start; at < stopAt; at += step) {
          if (this.cancelled(request.requestId)) return;
          const piece = resource.subarray(at, Math.min(stopAt, at + Math.min(step, MAX_CHUNK_BYTES)));
          if (channel.readyState !== 'open') return;
          channel.send(encodeDataFrame(request.requestId, piece));
          sent += piece.byteLength;
          // Yield so a slow reader, a cancel or a timer gets a chance; never a speed assumption.
          await delay(1);
        }
        if (opts.end !== false) send({ type: FrameType.END, requestId: request.requestId, bytesSent: sent });
      },
    };
    await this.behaviour(ctx);
  }

  private cancelled(requestId: number): boolean {
    return this.received.some((f) => f.type === FrameType.CANCEL && f.requestId === requestId);
  }
}

// ---------------------------------------------------------------------------------------------
// Tracker stub
// ---------------------------------------------------------------------------------------------

interface ViewerState {
  peerId: string;
  nonce: Uint8Array;
  /** Session key bound by an accepted `session`. */
  sessionKey?: Uint8Array;
  /** Relays handed to this viewer in shortlists. */
  handed: Set<string>;
}

export class TestTracker {
  readonly relays: TestRelay[] = [];
  readonly joins: { swarmId: string; count: number | undefined }[] = [];
  /** Integrity reports viewers sent, in order. */
  readonly reports: ReportMessage[] = [];
  /** ICE servers put in every hello from now on (STUN). */
  iceServers: IceServer[] | undefined;
  /** TURN servers answered to `turn` questions; undefined: `turn` is refused (RC_ERR_TURN_REFUSED). */
  turnServers: IceServer[] | undefined;
  /** `turn` questions received, by relay id, in order. */
  readonly turnRequests: string[] = [];
  /** `session` messages received: the peer, and whether the proof verified over that connection's nonce. */
  readonly sessions: { peerId: string; sessionKey: string; proofValid: boolean }[] = [];
  /** When false, bound sessions get no assignments (a tracker that has not signed any yet). */
  assignmentsEnabled = true;
  /** The tracker's signing key (assignments). */
  readonly key = generateKeyPairSync('ed25519').privateKey;
  readonly viewers = new Set<WebSocket>();
  private readonly state = new Map<WebSocket, ViewerState>();
  private nextPeer = 0;

  private constructor(
    private readonly wss: WebSocketServer,
    readonly url: string,
  ) {
    wss.on('connection', (ws) => this.onConnection(ws));
  }

  static async start(): Promise<TestTracker> {
    const wss = new WebSocketServer({
      host: '127.0.0.1',
      port: 0,
      handleProtocols: (protocols) => (protocols.has(TRACKER_SUBPROTOCOL) ? TRACKER_SUBPROTOCOL : false),
    });
    await new Promise<void>((r) => wss.once('listening', () => r()));
    return new TestTracker(wss, `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  }

  addRelay(behaviour: RelayBehaviour): TestRelay {
    const relay = new TestRelay(behaviour, (viewer, connectionId, signal) => this.send(viewer, { type: 'signal', from: relay.relayId, connectionId, signal }));
    this.relays.push(relay);
    return relay;
  }

  get trackerKey(): Uint8Array {
    return rawPublicKey(this.key);
  }

  /** Sends a bound viewer the assignments of every relay handed to it (what the real tracker does after `session`). */
  sendAssignments(ws: WebSocket): void {
    const st = this.state.get(ws);
    if (st?.sessionKey === undefined || !this.assignmentsEnabled) return;
    this.send(ws, { type: 'assignments', assignments: [...st.handed].map((relayId) => ({ relayId, assignment: this.assignment(st, relayId) })) });
  }

  private assignment(st: ViewerState, relayId: string): string {
    const sa = signAssignment(
      { version: 1, tracker: this.trackerKey, sessionKey: st.sessionKey as Uint8Array, relay: decodePublicKey(relayId), issuedAtMs: Date.now() },
      this.key,
    );
    return toBase64(encodeSignedAssignment(sa));
  }

  /** Drops every viewer socket (a tracker restart as the viewers see it). */
  dropViewers(): void {
    for (const ws of this.viewers) ws.terminate();
  }

  async close(): Promise<void> {
    for (const r of this.relays) r.closeAll();
    for (const ws of this.viewers) ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private send(ws: WebSocket, msg: TrackerServerMessage): void {
    if (ws.readyState === WebSocket.OPEN) ws.send(encodeTrackerMessage(msg));
  }

  private onConnection(ws: WebSocket): void {
    this.viewers.add(ws);
    ws.on('close', () => {
      this.viewers.delete(ws);
      this.state.delete(ws);
    });
    const peerId = `viewer-${String(++this.nextPeer).padStart(4, '0')}`;
    const st: ViewerState = { peerId, nonce: new Uint8Array(randomBytes(32)), handed: new Set() };
    this.state.set(ws, st);
    this.send(ws, { type: 'hello', peerId, nonce: toBase64(st.nonce), heartbeatIntervalMs: 5_000, iceServers: this.iceServers });
    ws.on('message', (data: Buffer) => {
      const msg = decodeTrackerClientMessage(new Uint8Array(data));
      if (msg.type === 'join') {
        this.joins.push({ swarmId: msg.swarmId, count: msg.count });
        const relays = this.relays.slice(0, msg.count ?? 5).map((r) => {
          st.handed.add(r.relayId);
          return {
            relayId: r.relayId,
            region: '',
            ...(r.reachability === undefined ? {} : { reachability: r.reachability }),
            ...(st.sessionKey === undefined || !this.assignmentsEnabled ? {} : { assignment: this.assignment(st, r.relayId) }),
          };
        });
        this.send(ws, { type: 'shortlist', swarmId: msg.swarmId, relays });
      } else if (msg.type === 'session') {
        const grant = decodeSignedGrant(fromBase64(msg.grant) as Uint8Array).grant;
        const proofValid = verifyTrackerSessionProof(grant.sessionKey, st.nonce, fromBase64(msg.proof) as Uint8Array);
        this.sessions.push({ peerId, sessionKey: encodeBase58(grant.sessionKey), proofValid });
        if (!proofValid) return this.send(ws, { type: 'error', code: 'RC_ERR_SESSION_INVALID', message: 'bad proof', ref: 'session' });
        st.sessionKey = grant.sessionKey;
        this.sendAssignments(ws);
      } else if (msg.type === 'turn') {
        this.turnRequests.push(msg.relayId);
        if (this.turnServers === undefined) this.send(ws, { type: 'error', code: 'RC_ERR_TURN_REFUSED', message: 'no TURN here', ref: 'turn' });
        else this.send(ws, { type: 'ice', relayId: msg.relayId, iceServers: this.turnServers });
      } else if (msg.type === 'report') {
        this.reports.push(msg);
      } else if (msg.type === 'signal') {
        const relay = this.relays.find((r) => r.relayId === msg.to);
        if (relay === undefined) this.send(ws, { type: 'error', code: 'RC_ERR_SIGNAL_NOT_ALLOWED', message: 'unknown relay', ref: 'signal' });
        else void relay.onSignal(ws, msg.connectionId, msg.signal);
      }
    });
  }
}

/** An SDK client of `tracker` for the stream under `origin`, over loopback WebRTC, one warm relay unless told otherwise. */
export function loopbackClient(tracker: TestTracker, origin: TestOrigin, options: Partial<RelaycastClientOptions> = {}): RelaycastClient {
  return new RelaycastClient({
    trackerUrl: tracker.url,
    swarmId: `${origin.base}/master.m3u8`,
    WebSocket: NodeWebSocket,
    RTCPeerConnection: NodeRTCPeerConnection,
    rtcConfiguration: LOOPBACK_RTC,
    maxRelays: 1,
    ...options,
  });
}

/** A loopback tracker and origin with the clients made on them: what one test file sets up once. */
export interface LoopbackNetwork {
  origin: TestOrigin;
  tracker: TestTracker;
  /** A `loopbackClient` closed by the next `reset()`. */
  client(options?: Partial<RelaycastClientOptions>): RelaycastClient;
  /** Between tests: closes the clients and every scripted relay, forgets the origin's requests. */
  reset(): Promise<void>;
  close(): Promise<void>;
}

/** Starts a tracker stub and an origin serving `files` (see startOrigin, TestTracker). */
export async function startLoopbackNetwork(files: Record<string, Uint8Array>): Promise<LoopbackNetwork> {
  const origin = await startOrigin(files);
  const tracker = await TestTracker.start();
  const clients: RelaycastClient[] = [];
  return {
    origin,
    tracker,
    client(options = {}) {
      const c = loopbackClient(tracker, origin, options);
      clients.push(c);
      return c;
    },
    async reset() {
      for (const c of clients.splice(0)) await c.close();
      for (const r of tracker.relays.splice(0)) r.closeAll();
      origin.requests.length = 0;
    },
    async close() {
      await tracker.close();
      await origin.close();
    },
  };
}
