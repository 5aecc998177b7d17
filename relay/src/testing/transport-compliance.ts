/**
 * Compliance suite every RelayTransport implementation must pass, run against a viewer built from
 * node-datachannel's browser-style polyfill (the closest stand-in for a browser in Node).
 * Not exported from the package: tests import it by path.
 */
import { randomBytes } from 'node:crypto';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { afterEach, describe, expect, it } from 'vitest';
import { DATA_CHANNEL_LABEL, stripSdpCandidates } from '@relaycast/protocol';
import type { RelayDataChannel, RelayPeer, RelayTransport } from '../transport/transport.js';

/** New connections between processes may wait ~1 s on a DTLS retransmit; stay far above that. */
const CONNECT_TIMEOUT_MS = 15_000;

export interface TestViewer {
  readonly pc: RTCPeerConnection;
  readonly dc: RTCDataChannel;
  /** Resolves when the viewer's channel is open. */
  readonly opened: Promise<void>;
  /** Messages the viewer received, in order. */
  readonly received: Uint8Array[];
  /** Resolves once the viewer has received at least `bytes` bytes in total. */
  receivedBytes(bytes: number, timeoutMs?: number): Promise<void>;
  close(): void;
}

export interface ConnectedPair {
  viewer: TestViewer;
  peer: RelayPeer;
  /** The relay side of the viewer's data channel. */
  channel: RelayDataChannel;
  /** Local candidates the relay trickled (undefined = end of candidates). */
  relayCandidates: ({ candidate: string; sdpMid: string } | undefined)[];
  /** Candidates the viewer trickled. */
  viewerCandidates: string[];
}

export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
    }),
  ]);
}

/** Polls `predicate` until it holds (for state that has no event of its own, like peerCount). */
export async function eventually(predicate: () => boolean, what: string, timeoutMs = CONNECT_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * Connects a polyfill viewer to `transport` the way a browser would through the tracker: the viewer
 * offers, the relay answers, and candidates only travel by trickle (they are stripped from both
 * SDPs, so the connection proves that trickle works both ways).
 */
export async function connectViewer(transport: RelayTransport, id = `viewer-${randomBytes(4).toString('hex')}`): Promise<ConnectedPair> {
  const pc = new RTCPeerConnection({ iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration);
  const dc = pc.createDataChannel(DATA_CHANNEL_LABEL);
  dc.binaryType = 'arraybuffer';
  const received: Uint8Array[] = [];
  let total = 0;
  let byteWaiters: { bytes: number; resolve: () => void }[] = [];
  dc.onmessage = (e: MessageEvent) => {
    const data = e.data as ArrayBuffer | string;
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data);
    received.push(bytes);
    total += bytes.byteLength;
    byteWaiters = byteWaiters.filter((w) => (total >= w.bytes ? (w.resolve(), false) : true));
  };
  const opened = new Promise<void>((resolve, reject) => {
    dc.onopen = () => resolve();
    dc.onerror = () => reject(new Error('viewer channel error'));
  });
  opened.catch(() => undefined);
  const viewer: TestViewer = {
    pc,
    dc,
    opened,
    received,
    receivedBytes(bytes, timeoutMs = CONNECT_TIMEOUT_MS) {
      if (total >= bytes) return Promise.resolve();
      return withTimeout(new Promise<void>((resolve) => byteWaiters.push({ bytes, resolve })), timeoutMs, `${bytes} bytes at the viewer`);
    },
    close() {
      try {
        dc.close();
        pc.close();
      } catch {
        // already closed
      }
    },
  };

  const viewerCandidates: string[] = [];
  let peer: RelayPeer | undefined;
  let remoteSet = false;
  // The viewer's candidates reach the relay only once the viewer has applied the answer, as in
  // fake-tracker.ts: a relay that reaches the viewer first sometimes fails libdatachannel's DTLS
  // handshake ("unknown CA"), and the channel never opens.
  pc.onicecandidate = (e) => {
    if (e.candidate === null || e.candidate.candidate === '') return;
    viewerCandidates.push(e.candidate.candidate);
    if (remoteSet) peer?.addRemoteCandidate(e.candidate.candidate, e.candidate.sdpMid ?? undefined);
  };
  await pc.setLocalDescription(await pc.createOffer());
  const offer = pc.localDescription;
  if (offer === null) throw new Error('viewer produced no offer');
  try {
    peer = transport.acceptOffer(id, stripSdpCandidates(offer.sdp));
  } catch (err) {
    viewer.close();
    throw err;
  }

  const channel = new Promise<RelayDataChannel>((resolve) => peer.onDataChannel(resolve));
  const relayCandidates: ConnectedPair['relayCandidates'] = [];
  const addToViewer = (c: { candidate: string; sdpMid: string }): void => {
    void pc.addIceCandidate({ candidate: c.candidate, sdpMid: c.sdpMid }).catch(() => undefined);
  };
  peer.onLocalCandidate((c) => {
    relayCandidates.push(c);
    // A browser refuses candidates before its remote description, as the tracker client knows.
    if (c !== undefined && remoteSet) addToViewer(c);
  });
  const answer = await withTimeout(peer.answer, CONNECT_TIMEOUT_MS, 'the relay answer');
  await pc.setRemoteDescription({ type: 'answer', sdp: stripSdpCandidates(answer) });
  remoteSet = true;
  for (const c of relayCandidates) if (c !== undefined) addToViewer(c);
  for (const c of viewerCandidates) peer.addRemoteCandidate(c, '0');
  await withTimeout(opened, CONNECT_TIMEOUT_MS, 'the viewer channel to open');
  return { viewer, peer, channel: await withTimeout(channel, CONNECT_TIMEOUT_MS, 'the relay channel'), relayCandidates, viewerCandidates };
}

function messageWaiter(channel: RelayDataChannel): { next(count: number): Promise<Uint8Array[]> } {
  const got: Uint8Array[] = [];
  let waiter: { count: number; resolve: (m: Uint8Array[]) => void } | undefined;
  channel.onMessage((m) => {
    got.push(m.slice());
    if (waiter !== undefined && got.length >= waiter.count) waiter.resolve(got.splice(0, waiter.count));
  });
  return {
    next(count) {
      if (got.length >= count) return Promise.resolve(got.splice(0, count));
      return withTimeout(new Promise((resolve) => (waiter = { count, resolve })), CONNECT_TIMEOUT_MS, `${count} messages at the relay`);
    },
  };
}

export function describeRelayTransportCompliance(name: string, makeTransport: () => RelayTransport): void {
  describe(`RelayTransport compliance: ${name}`, () => {
    const transports: RelayTransport[] = [];
    const viewers: TestViewer[] = [];
    const make = (): RelayTransport => {
      const t = makeTransport();
      transports.push(t);
      return t;
    };
    const connect = async (t: RelayTransport): Promise<ConnectedPair> => {
      const pair = await connectViewer(t);
      viewers.push(pair.viewer);
      return pair;
    };

    afterEach(async () => {
      for (const v of viewers.splice(0)) v.close();
      for (const t of transports.splice(0)) await t.close();
    });

    it('answers an offer and connects with trickled candidates only', { timeout: 30_000 }, async () => {
      const t = make();
      const { channel, relayCandidates, viewerCandidates, peer } = await connect(t);
      expect(relayCandidates.filter((c) => c !== undefined).length).toBeGreaterThan(0);
      expect(viewerCandidates.length).toBeGreaterThan(0);
      expect(channel.label).toBe(DATA_CHANNEL_LABEL);
      expect(channel.isOpen).toBe(true);
      expect(channel.maxMessageSize).toBeGreaterThanOrEqual(64 * 1024);
      expect(typeof peer.id).toBe('string');
      expect(t.peerCount).toBe(1);
      // Late listeners are replayed the open channel and the gathered candidates.
      const replayed: RelayDataChannel[] = [];
      peer.onDataChannel((ch) => replayed.push(ch));
      expect(replayed).toEqual([channel]);
      let candidates = 0;
      peer.onLocalCandidate(() => candidates++);
      expect(candidates).toBe(relayCandidates.length);
    });

    it('carries binary messages both ways byte for byte, up to 64 KiB', { timeout: 30_000 }, async () => {
      const t = make();
      const { viewer, channel } = await connect(t);
      const inbox = messageWaiter(channel);
      const sizes = [1, 100, 1200, 16 * 1024, 65_535, 64 * 1024];
      const payloads = sizes.map((n) => new Uint8Array(randomBytes(n)));
      for (const p of payloads) viewer.dc.send(p);
      const atRelay = await inbox.next(payloads.length);
      expect(atRelay.map((m) => Buffer.from(m).toString('hex'))).toEqual(payloads.map((p) => Buffer.from(p).toString('hex')));

      for (const p of payloads) expect(channel.send(p)).toBe(true);
      await viewer.receivedBytes(sizes.reduce((a, b) => a + b, 0));
      expect(viewer.received.map((m) => Buffer.from(m).toString('hex'))).toEqual(payloads.map((p) => Buffer.from(p).toString('hex')));
    });

    it('reports bufferedAmount under a burst and fires onBufferedAmountLow', { timeout: 30_000 }, async () => {
      const t = make();
      const { viewer, channel } = await connect(t);
      const threshold = 64 * 1024;
      channel.setBufferedAmountLowThreshold(threshold);
      let lowEvents = 0;
      const low = new Promise<void>((resolve) =>
        channel.onBufferedAmountLow(() => {
          lowEvents++;
          resolve();
        }),
      );
      const message = new Uint8Array(randomBytes(64 * 1024));
      const count = 64;
      let peak = 0;
      for (let i = 0; i < count; i++) {
        expect(channel.send(message)).toBe(true);
        peak = Math.max(peak, channel.bufferedAmount);
      }
      expect(peak).toBeGreaterThan(threshold);
      await withTimeout(low, CONNECT_TIMEOUT_MS, 'onBufferedAmountLow');
      expect(lowEvents).toBeGreaterThan(0);
      await viewer.receivedBytes(count * message.byteLength);
      expect(viewer.received.every((m) => Buffer.from(m).equals(Buffer.from(message)))).toBe(true);
      await eventually(() => channel.bufferedAmount === 0, 'an empty send buffer');
    });

    it('closes the relay peer when the viewer closes', { timeout: 30_000 }, async () => {
      const t = make();
      const { viewer, channel, peer } = await connect(t);
      const channelClosed = new Promise<void>((resolve) => channel.onClose(resolve));
      const peerClosed = new Promise<void>((resolve) => peer.onClose(resolve));
      viewer.close();
      await withTimeout(channelClosed, CONNECT_TIMEOUT_MS, 'the relay channel to close');
      await withTimeout(peerClosed, CONNECT_TIMEOUT_MS, 'the relay peer to close');
      expect(channel.isOpen).toBe(false);
      expect(channel.send(new Uint8Array(1))).toBe(false);
      await eventually(() => t.peerCount === 0, 'peerCount 0');
    });

    it('closes the viewer channel when the relay closes the peer', { timeout: 30_000 }, async () => {
      const t = make();
      const { viewer, peer } = await connect(t);
      const viewerClosed = new Promise<void>((resolve) => viewer.dc.addEventListener('close', () => resolve()));
      peer.close();
      expect(t.peerCount).toBe(0);
      await withTimeout(viewerClosed, CONNECT_TIMEOUT_MS, 'the viewer channel to close');
    });

    it('leaves no peer behind after 20 connect/close cycles', { timeout: 120_000 }, async () => {
      const t = make();
      for (let i = 0; i < 20; i++) {
        const { viewer, channel, peer } = await connect(t);
        const payload = new Uint8Array([i, 1, 2, 3]);
        channel.send(payload);
        await viewer.receivedBytes(payload.byteLength);
        const peerClosed = new Promise<void>((resolve) => peer.onClose(resolve));
        if (i % 2 === 0) viewer.close();
        else peer.close();
        await withTimeout(peerClosed, CONNECT_TIMEOUT_MS, 'the relay peer to close');
        viewer.close();
      }
      await eventually(() => t.peerCount === 0, 'peerCount 0');
    });

    it('closes every peer on transport close and refuses offers afterwards', { timeout: 30_000 }, async () => {
      const t = make();
      const a = await connect(t);
      const b = await connect(t);
      expect(t.peerCount).toBe(2);
      const closed = Promise.all([a.peer, b.peer].map((p) => new Promise<void>((resolve) => p.onClose(resolve))));
      await t.close();
      await withTimeout(closed, CONNECT_TIMEOUT_MS, 'peers to close');
      expect(t.peerCount).toBe(0);
      await expect(connectViewer(t)).rejects.toThrow();
    });
  });
}
