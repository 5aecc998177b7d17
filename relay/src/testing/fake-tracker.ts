/**
 * A tiny in-test tracker for the relay's own tests: sends `hello`, verifies the registration
 * signature against its nonce, answers `registered`, records every message, and can relay a
 * polyfill viewer's signaling like the real tracker. Test support only; not exported.
 */
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import {
  DATA_CHANNEL_LABEL,
  TRACKER_SUBPROTOCOL,
  decodePublicKey,
  decodeTrackerClientMessage,
  encodeBase58,
  encodeTrackerMessage,
  fromBase64,
  registrationSigningBytes,
  stripSdpCandidates,
  toBase64,
  type TrackerClientMessage,
  type TrackerServerMessage,
} from '@relaycast/protocol';
import { verifyEd25519 } from '@relaycast/protocol/node';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { WebSocketServer, type WebSocket } from 'ws';
import { withTimeout } from './transport-compliance.js';

/** The key the fake tracker announces in `registered` (it signs nothing). */
export const FAKE_TRACKER_KEY = encodeBase58(new Uint8Array(32).fill(7));

export interface TrackerConnection {
  ws: WebSocket;
  nonce: Uint8Array;
  messages: TrackerClientMessage[];
  /** Whether the register signature verified against this connection's nonce. */
  signatureValid?: boolean;
  send(msg: TrackerServerMessage | string): void;
}

export interface FakeTracker {
  url: string;
  port: number;
  connections: TrackerConnection[];
  /** Every message any relay sent, across connections. */
  all(): TrackerClientMessage[];
  close(): Promise<void>;
}

export async function startFakeTracker(options: { heartbeatIntervalMs?: number; port?: number } = {}): Promise<FakeTracker> {
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    handleProtocols: (protocols) => (protocols.has(TRACKER_SUBPROTOCOL) ? TRACKER_SUBPROTOCOL : false),
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const connections: TrackerConnection[] = [];
  wss.on('connection', (ws) => {
    const conn: TrackerConnection = {
      ws,
      nonce: new Uint8Array(randomBytes(32)),
      messages: [],
      send: (msg) => ws.send(typeof msg === 'string' ? msg : encodeTrackerMessage(msg)),
    };
    connections.push(conn);
    ws.on('message', (data) => {
      const msg = decodeTrackerClientMessage(String(data));
      conn.messages.push(msg);
      if (msg.type === 'register') {
        conn.signatureValid = verifyEd25519(decodePublicKey(msg.relayId), registrationSigningBytes(conn.nonce), fromBase64(msg.signature) as Uint8Array);
        if (conn.signatureValid) conn.send({ type: 'registered', relayId: msg.relayId, trackerKey: FAKE_TRACKER_KEY });
        else ws.close(4001, 'bad signature');
      }
    });
    conn.send({
      type: 'hello',
      peerId: `relay-conn-${connections.length}`,
      nonce: toBase64(conn.nonce),
      heartbeatIntervalMs: options.heartbeatIntervalMs ?? 60_000,
    });
  });
  const port = (wss.address() as AddressInfo).port;
  return {
    url: `ws://127.0.0.1:${port}`,
    port,
    connections,
    all: () => connections.flatMap((c) => c.messages),
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        wss.close(() => resolve());
      }),
  };
}

export interface SignaledViewer {
  pc: RTCPeerConnection;
  dc: RTCDataChannel;
  /** Messages that arrived before the test set its own `dc.onmessage` (a paid relay's CHALLENGE comes first thing). */
  early: ArrayBuffer[];
  close(): void;
}

/**
 * Connects a polyfill viewer to the relay registered on `conn`, relaying offer, answer and
 * candidates over the tracker socket as the real tracker does. Resolves once the channel is open.
 */
export async function connectViewerViaTracker(conn: TrackerConnection, viewerId: string, connectionId: string): Promise<SignaledViewer> {
  const pc = new RTCPeerConnection({ iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration);
  const dc = pc.createDataChannel(DATA_CHANNEL_LABEL);
  dc.binaryType = 'arraybuffer';
  const early: ArrayBuffer[] = [];
  dc.onmessage = (e: MessageEvent) => early.push(e.data as ArrayBuffer);
  const viewer: SignaledViewer = {
    pc,
    dc,
    early,
    close() {
      try {
        dc.close();
        pc.close();
      } catch {
        // already closed
      }
    },
  };
  const opened = new Promise<void>((resolve) => (dc.onopen = () => resolve()));
  // The viewer's candidates travel only by trickle, after the answer is applied here: when the relay
  // can reach the viewer before the viewer knows the answer, libdatachannel (the polyfill viewer)
  // sometimes fails the DTLS handshake ("unknown CA"); browsers buffer such early packets.
  let answered = false;
  const ownCandidates: { candidate: string; sdpMid?: string | undefined }[] = [];
  const sendOwn = (c: { candidate: string; sdpMid?: string | undefined }): void =>
    conn.send({ type: 'signal', from: viewerId, connectionId, signal: { kind: 'candidate', candidate: c.candidate, sdpMid: c.sdpMid } });
  pc.onicecandidate = (e) => {
    if (!e.candidate?.candidate) return;
    const c = { candidate: e.candidate.candidate, sdpMid: e.candidate.sdpMid ?? undefined };
    if (answered) sendOwn(c);
    else ownCandidates.push(c);
  };
  // Signals are applied strictly in arrival order: a candidate must wait for the answer to be set.
  let applied: Promise<unknown> = Promise.resolve();
  const onMessage = (data: unknown): void => {
    const msg = decodeTrackerClientMessage(String(data));
    if (msg.type !== 'signal' || msg.to !== viewerId || msg.connectionId !== connectionId) return;
    const s = msg.signal;
    if (s.kind === 'answer') {
      applied = applied.then(async () => {
        await pc.setRemoteDescription({ type: 'answer', sdp: s.sdp });
        answered = true;
        for (const c of ownCandidates.splice(0)) sendOwn(c);
      });
    } else if (s.kind === 'candidate') {
      applied = applied.then(() => pc.addIceCandidate({ candidate: s.candidate, sdpMid: s.sdpMid ?? '0' })).catch(() => undefined);
    }
  };
  conn.ws.on('message', onMessage);
  await pc.setLocalDescription(await pc.createOffer());
  const offer = pc.localDescription;
  if (offer === null) throw new Error('viewer produced no offer');
  conn.send({ type: 'signal', from: viewerId, connectionId, signal: { kind: 'offer', sdp: stripSdpCandidates(offer.sdp) } });
  try {
    await withTimeout(opened, 15_000, 'the viewer channel to open');
  } catch (err) {
    viewer.close();
    throw err;
  } finally {
    conn.ws.off('message', onMessage);
  }
  return viewer;
}
