import {
  DATA_CHANNEL_LABEL,
  FrameType,
  TRACKER_SUBPROTOCOL,
  concatBytes,
  decodeFrames,
  encodeFrame,
  decodeTrackerServerMessage,
  encodeTrackerMessage,
  fromBase64,
  toBase64,
  type RelayDescriptor,
  type RelayFrame,
  type TrackerClientMessage,
  type TrackerServerMessage,
} from '@relaycast/protocol';
import type { KeyObject } from 'node:crypto';
import { signTrackerSessionProof } from '@relaycast/protocol/node';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { WebSocket } from 'ws';
import { LOOPBACK_RTC } from './node-client.js';

/**
 * A hand-driven tracker session and data channel, speaking the protocol directly, so tests can
 * send what the SDK never would.
 */
export class TrackerSocket {
  private readonly queue: TrackerServerMessage[] = [];
  private waiters: (() => void)[] = [];
  private isClosed = false;
  readonly closed: Promise<number>;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data) => {
      this.queue.push(decodeTrackerServerMessage(data as Buffer));
      for (const w of this.waiters.splice(0)) w();
    });
    this.closed = new Promise((resolve) =>
      ws.once('close', (code) => {
        this.isClosed = true;
        for (const w of this.waiters.splice(0)) w();
        resolve(code);
      }),
    );
  }

  static async open(url: string): Promise<TrackerSocket> {
    const ws = new WebSocket(url, TRACKER_SUBPROTOCOL);
    const socket = new TrackerSocket(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return socket;
  }

  /** Next message of `type` (earlier messages of other types are skipped). */
  async next<T extends TrackerServerMessage['type']>(type: T, timeoutMs = 5_000): Promise<Extract<TrackerServerMessage, { type: T }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.queue.findIndex((m) => m.type === type);
      if (i >= 0) return this.queue.splice(i, 1)[0] as Extract<TrackerServerMessage, { type: T }>;
      const left = deadline - Date.now();
      if (this.isClosed) throw new Error(`tracker socket closed while waiting for ${type}`);
      if (left <= 0) throw new Error(`no ${type} message within ${timeoutMs} ms`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  send(msg: TrackerClientMessage): void {
    this.ws.send(encodeTrackerMessage(msg));
  }

  sendRaw(data: string | Buffer): void {
    this.ws.send(data);
  }

  close(): void {
    this.ws.close();
  }
}

/** One join over a fresh connection: the tracker's shortlist for `swarmId`. */
export async function rawJoin(trackerUrl: string, swarmId: string): Promise<RelayDescriptor[]> {
  const t = await TrackerSocket.open(trackerUrl);
  try {
    await t.next('hello');
    t.send({ type: 'join', swarmId, count: 8 });
    return (await t.next('shortlist')).relays;
  } finally {
    t.close();
  }
}

export interface RawChannel {
  relayId: string;
  tracker: TrackerSocket;
  /** The tracker's signed assignment of the bound session to this relay (only with `session`). */
  assignment?: Uint8Array | undefined;
  send(bytes: Uint8Array): void;
  /** Next frame the relay sent. */
  nextFrame(timeoutMs?: number): Promise<RelayFrame>;
  /** Resolves when the data channel closes. */
  closed: Promise<void>;
  /** Offer created → data channel open, ms (the setup bench's figure). */
  setupMs: number;
  close(): void;
}

const TERMINAL = new Set<number>([FrameType.END, FrameType.ERROR, FrameType.ABSENT]);

/** An ERROR frame's code; undefined for any other frame. */
export const codeOf = (f: RelayFrame): string | undefined => (f.type === FrameType.ERROR ? f.code : undefined);

/**
 * One REQUEST over a raw channel: its last frame (END, ERROR or ABSENT) and the DATA bytes before
 * it. Frames of other requests are passed over; with `strict`, one fails the call.
 */
export async function fetchThrough(
  ch: RawChannel,
  requestId: number,
  url: string,
  o: { range?: { start: number; end?: number }; timeoutMs?: number; strict?: boolean } = {},
): Promise<{ last: RelayFrame; data: Uint8Array }> {
  ch.send(encodeFrame({ type: FrameType.REQUEST, requestId, url, range: o.range }));
  const chunks: Uint8Array[] = [];
  for (;;) {
    const f = await ch.nextFrame(o.timeoutMs);
    if (f.requestId !== requestId) {
      if (o.strict === true) throw new Error(`a frame of request ${f.requestId} while waiting for request ${requestId}: ${JSON.stringify(f)}`);
      continue;
    }
    if (f.type === FrameType.DATA) chunks.push(f.chunk);
    if (TERMINAL.has(f.type)) return { last: f, data: concatBytes(chunks) };
  }
}

export interface RawSession {
  /** The settler's signed grant for `key`. */
  signedGrant: Uint8Array;
  /** The session key (its private half). */
  key: KeyObject;
}

/**
 * How long after the answer our candidates are held back if ICE has not connected (ms); the
 * SDK's RelayConnection does the same (see its sendLocalSignal for why candidates wait at all).
 */
const CANDIDATE_HOLD_MS = 300;

/** An SDP without its candidate lines, and those lines (as `candidate:...`). */
function splitCandidates(sdp: string): { sdp: string; candidates: string[] } {
  const candidates: string[] = [];
  const kept = sdp.split(/\r?\n/).filter((line) => {
    if (line.startsWith('a=candidate:')) candidates.push(line.slice(2));
    return !line.startsWith('a=candidate:') && line !== 'a=end-of-candidates';
  });
  return { sdp: kept.join('\r\n'), candidates };
}

/**
 * Joins, picks the first shortlisted relay (or `relayId`), and opens a data channel to it by hand,
 * once: a setup that fails is the test's failure. Like the SDK, it sends its ICE candidates only
 * once ICE is connected, so libdatachannel never checks the relay's DTLS certificate before it has
 * stored the answer's fingerprint (the `unknown CA` setups these helpers used to retry).
 */
export interface RawChannelOptions {
  /**
   * Signal as the SDK did before the `unknown CA` fix, for the setup bench's baseline only:
   * candidates inline in the offer and trickled at once, a second setLocalDescription, the answer
   * applied as it came. Default: false.
   */
  legacySignaling?: boolean | undefined;
  /** The data channel must open within this, ms. Default: 15 s. */
  openTimeoutMs?: number | undefined;
}

/** Why a raw channel did not open: `setupCause` says at which stage. */
export class RawSetupError extends Error {
  constructor(
    message: string,
    /** 'failed': the peer connection failed or closed before the channel opened; 'timeout': not open in time. */
    readonly setupCause: 'failed' | 'timeout',
  ) {
    super(message);
  }
}

export async function openRawChannel(
  trackerUrl: string,
  swarmId: string,
  relayId?: string,
  session?: RawSession,
  options: RawChannelOptions = {},
): Promise<RawChannel> {
  const legacy = options.legacySignaling === true;
  const tracker = await TrackerSocket.open(trackerUrl);
  const hello = await tracker.next('hello');
  if (session !== undefined) {
    // Bind the session to this connection as the SDK does, so shortlists carry signed assignments.
    const nonce = fromBase64(hello.nonce) as Uint8Array;
    tracker.send({ type: 'session', grant: toBase64(session.signedGrant), proof: toBase64(signTrackerSessionProof(nonce, session.key)) });
    await tracker.next('assignments');
  }
  tracker.send({ type: 'join', swarmId, count: 8 });
  const relays = (await tracker.next('shortlist')).relays;
  const target = relayId ?? relays[0]?.relayId;
  if (target === undefined) throw new Error('no relay in the shortlist');
  const assignmentB64 = relays.find((r) => r.relayId === target)?.assignment;
  const setupStart = performance.now();
  const pc = new RTCPeerConnection(LOOPBACK_RTC);
  const dc = pc.createDataChannel(DATA_CHANNEL_LABEL);
  dc.binaryType = 'arraybuffer';
  const frames: RelayFrame[] = [];
  let wake: (() => void) | undefined;
  dc.onmessage = (ev: MessageEvent) => {
    frames.push(...decodeFrames(new Uint8Array(ev.data as ArrayBuffer)));
    wake?.();
  };
  const closed = new Promise<void>((resolve) => dc.addEventListener('close', () => resolve()));
  const connectionId = 'raw' + Math.random().toString(36).slice(2, 10);
  // Our candidates wait until ICE is connected (or CANDIDATE_HOLD_MS after the answer): until then
  // the relay cannot check us, so ICE cannot connect while the answer is being applied.
  let held: { candidate: string; sdpMid: string }[] | undefined = [];
  const sendCandidate = (c: { candidate: string; sdpMid: string }): void =>
    tracker.send({ type: 'signal', to: target, connectionId, signal: { kind: 'candidate', ...c } });
  const release = (): void => {
    if (held === undefined) return;
    const queued = held;
    held = undefined;
    for (const c of queued) sendCandidate(c);
  };
  pc.onicecandidate = (ev) => {
    if (!ev.candidate?.candidate) return;
    const c = { candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid ?? '0' };
    if (held !== undefined) held.push(c);
    else sendCandidate(c);
  };
  pc.addEventListener('iceconnectionstatechange', () => {
    if (pc.iceConnectionState === 'connected' || pc.iceConnectionState === 'completed') release();
  });
  const offer = await pc.createOffer();
  // The polyfill has applied its offer already; a second setLocalDescription is only a warning.
  if (legacy || pc.signalingState !== 'have-local-offer') await pc.setLocalDescription(offer);
  const localSdp = pc.localDescription?.sdp ?? (offer.sdp as string);
  const offerSdp = legacy ? localSdp : splitCandidates(localSdp).sdp;
  tracker.send({ type: 'signal', to: target, connectionId, signal: { kind: 'offer', sdp: offerSdp } });
  if (legacy) release();
  const opened = new Promise<void>((resolve) => dc.addEventListener('open', () => resolve()));
  // Candidates the relay trickles before its answer, and the answer's own, are applied after it.
  const remoteEarly: { candidate: string; sdpMid?: string | undefined }[] = [];
  for (;;) {
    const m = await tracker.next('signal', 15_000);
    if (m.signal.kind === 'answer') {
      const answer = legacy ? { sdp: m.signal.sdp, candidates: [] } : splitCandidates(m.signal.sdp);
      const mid = /^a=mid:(\S+)/m.exec(m.signal.sdp)?.[1] ?? '0';
      remoteEarly.unshift(...answer.candidates.map((candidate) => ({ candidate, sdpMid: mid })));
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      break;
    }
    if (m.signal.kind === 'candidate') remoteEarly.push(m.signal);
    else if (m.signal.kind !== 'end-of-candidates') throw new Error(`expected an answer, got ${m.signal.kind}`);
  }
  for (const c of remoteEarly) await pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.sdpMid ?? '0' }).catch(() => undefined);
  const holdTimer = setTimeout(release, CANDIDATE_HOLD_MS);
  void (async () => {
    for (;;) {
      const m = await tracker.next('signal', 30_000).catch(() => undefined);
      if (m === undefined) return;
      if (m.signal.kind === 'candidate') await pc.addIceCandidate({ candidate: m.signal.candidate, sdpMid: m.signal.sdpMid ?? '0' }).catch(() => undefined);
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = new Promise<never>((_, reject) => {
    const timeoutMs = options.openTimeoutMs ?? 15_000;
    timer = setTimeout(() => reject(new RawSetupError(`data channel did not open (timeout, ${timeoutMs} ms)`, 'timeout')), timeoutMs);
    pc.addEventListener('connectionstatechange', () => {
      // libdatachannel goes from failed to closed at once: the polyfill may report only 'closed'.
      // Whether ICE had connected is not told apart: in the setup bench's failed setups the ICE
      // 'connected' callback never reached JavaScript although libdatachannel logged the state.
      if (pc.connectionState === 'failed' || pc.connectionState === 'closed')
        reject(new RawSetupError('data channel did not open (peer connection failed)', 'failed'));
    });
  });
  failed.catch(() => undefined); // a failure after the channel opened is not this function's business
  let setupMs = Number.NaN;
  try {
    await Promise.race([opened, failed]);
    setupMs = performance.now() - setupStart;
  } catch (err) {
    pc.close();
    tracker.ws.close();
    throw err;
  } finally {
    clearTimeout(timer);
    clearTimeout(holdTimer);
    release();
  }
  return {
    relayId: target,
    tracker,
    assignment: assignmentB64 === undefined ? undefined : fromBase64(assignmentB64),
    send: (bytes) => dc.send(bytes),
    async nextFrame(timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (frames.length === 0) {
        if (Date.now() > deadline) throw new Error('no frame from relay');
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 50);
        });
      }
      return frames.shift() as RelayFrame;
    },
    closed,
    setupMs,
    close() {
      dc.close();
      pc.close();
      tracker.close();
    },
  };
}
