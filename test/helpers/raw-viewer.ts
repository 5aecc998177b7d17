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

/**
 * Joins, picks the first shortlisted relay (or `relayId`), and opens a data channel to it by hand.
 * A setup that fails (node-datachannel on a busy machine sometimes loses one within milliseconds,
 * see docs/RELIABILITY.md) is tried again, up to three times: the tests using this are about what
 * crosses an open channel.
 */
export interface RawSession {
  /** The settler's signed grant for `key`. */
  signedGrant: Uint8Array;
  /** The session key (its private half). */
  key: KeyObject;
}

export async function openRawChannel(trackerUrl: string, swarmId: string, relayId?: string, session?: RawSession): Promise<RawChannel> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await openRawChannelOnce(trackerUrl, swarmId, relayId, session);
    } catch (err) {
      if (attempt >= 3 || !(err instanceof Error) || !err.message.startsWith('data channel did not open')) throw err;
    }
  }
}

async function openRawChannelOnce(trackerUrl: string, swarmId: string, relayId?: string, session?: RawSession): Promise<RawChannel> {
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
  // Candidates gathered before the offer went out wait for it: the relay knows no connection before its offer.
  let early: { candidate: string; sdpMid: string }[] | undefined = [];
  const sendCandidate = (c: { candidate: string; sdpMid: string }): void =>
    tracker.send({ type: 'signal', to: target, connectionId, signal: { kind: 'candidate', ...c } });
  pc.onicecandidate = (ev) => {
    if (!ev.candidate?.candidate) return;
    const c = { candidate: ev.candidate.candidate, sdpMid: ev.candidate.sdpMid ?? '0' };
    if (early !== undefined) early.push(c);
    else sendCandidate(c);
  };
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  tracker.send({ type: 'signal', to: target, connectionId, signal: { kind: 'offer', sdp: pc.localDescription?.sdp ?? (offer.sdp as string) } });
  for (const c of early) sendCandidate(c);
  early = undefined;
  const opened = new Promise<void>((resolve) => dc.addEventListener('open', () => resolve()));
  // Candidates the relay trickles before its answer are applied after it.
  const remoteEarly: { candidate: string; sdpMid?: string | undefined }[] = [];
  for (;;) {
    const m = await tracker.next('signal', 15_000);
    if (m.signal.kind === 'answer') {
      await pc.setRemoteDescription({ type: 'answer', sdp: m.signal.sdp });
      break;
    }
    if (m.signal.kind === 'candidate') remoteEarly.push(m.signal);
    else if (m.signal.kind !== 'end-of-candidates') throw new Error(`expected an answer, got ${m.signal.kind}`);
  }
  for (const c of remoteEarly) await pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.sdpMid ?? '0' }).catch(() => undefined);
  void (async () => {
    for (;;) {
      const m = await tracker.next('signal', 30_000).catch(() => undefined);
      if (m === undefined) return;
      if (m.signal.kind === 'candidate') await pc.addIceCandidate({ candidate: m.signal.candidate, sdpMid: m.signal.sdpMid ?? '0' }).catch(() => undefined);
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('data channel did not open (timeout)')), 15_000);
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'failed') reject(new Error('data channel did not open (peer connection failed)'));
    });
  });
  failed.catch(() => undefined); // a failure after the channel opened is not this function's business
  try {
    await Promise.race([opened, failed]);
  } catch (err) {
    pc.close();
    tracker.ws.close();
    throw err;
  } finally {
    clearTimeout(timer);
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
    close() {
      dc.close();
      pc.close();
      tracker.close();
    },
  };
}
