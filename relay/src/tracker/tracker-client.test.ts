import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DATA_CHANNEL_LABEL, TRACKER_SUBPROTOCOL, decodeTrackerClientMessage, type NatReport, type SignalPayload } from '@relaycast/protocol';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadOrCreateKeypair, type RelayKeypair } from '../keypair.js';
import { NodeDataChannelTransport } from '../transport/node-datachannel-transport.js';
import { TrackerClient, type RelayAdvertisement } from './tracker-client.js';
import { FAKE_TRACKER_KEY, connectViewerViaTracker, startFakeTracker, type TrackerConnection } from '../testing/fake-tracker.js';
import { eventually, withTimeout } from '../testing/transport-compliance.js';
import type { RelayDataChannel, RelayPeer, RelayTransport } from '../transport/transport.js';

// ---------- a transport whose peers never connect (for the pending-peer bounds) ----------

class StuckTransport implements RelayTransport {
  accepted: string[] = [];
  open = new Set<string>();
  get peerCount(): number {
    return this.open.size;
  }
  acceptOffer(id: string): RelayPeer {
    this.accepted.push(id);
    this.open.add(id);
    const closeCbs: (() => void)[] = [];
    const self = this;
    return {
      id,
      answer: new Promise<string>(() => undefined),
      addRemoteCandidate: () => undefined,
      onLocalCandidate: () => undefined,
      onDataChannel: () => undefined,
      onClose: (cb) => closeCbs.push(cb),
      close() {
        if (!self.open.delete(id)) return;
        for (const cb of closeCbs) cb();
      },
    };
  }
  async close(): Promise<void> {
    this.open.clear();
  }
}

describe('TrackerClient', () => {
  let keypair: RelayKeypair;
  let dir: string;
  const cleanups: (() => unknown)[] = [];
  const advert: RelayAdvertisement = { capacity: 10, load: 3, region: 'eu-west', pricePerGiB: '5', streams: ['https://origin.test/live/index.m3u8'] };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-tracker-client-'));
    ({ keypair } = await loadOrCreateKeypair(join(dir, 'relay.json')));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function client(url: string, transport: RelayTransport, extra: Partial<ConstructorParameters<typeof TrackerClient>[0]> = {}): TrackerClient {
    const c = new TrackerClient({
      trackerUrl: url,
      keypair,
      transport,
      advertise: () => advert,
      onPeer: () => undefined,
      reconnectMinMs: 20,
      reconnectMaxMs: 200,
      ...extra,
    });
    cleanups.push(() => c.close());
    return c;
  }

  it('registers with a signature over the tracker nonce and heartbeats the current figures', async () => {
    const tracker = await startFakeTracker({ heartbeatIntervalMs: 50 });
    cleanups.push(() => tracker.close());
    const c = client(tracker.url, new StuckTransport());
    await withTimeout(c.start(AbortSignal.timeout(10_000)), 10_000, 'registration');
    expect(c.registered).toBe(true);
    const conn = tracker.connections[0] as TrackerConnection;
    expect(conn.ws.protocol).toBe(TRACKER_SUBPROTOCOL);
    expect(conn.signatureValid).toBe(true);
    expect(conn.messages[0]).toMatchObject({ type: 'register', relayId: keypair.relayId, ...advert });
    advert.load = 4;
    await eventually(() => conn.messages.filter((m) => m.type === 'heartbeat').length >= 2, 'two heartbeats');
    expect(conn.messages.find((m) => m.type === 'heartbeat' && m.load === 4)).toMatchObject({ capacity: 10, streams: advert.streams });
    advert.load = 3;
  });

  it('reconnects and registers again (fresh nonce) after the tracker drops the socket', async () => {
    const tracker = await startFakeTracker();
    cleanups.push(() => tracker.close());
    const c = client(tracker.url, new StuckTransport());
    await c.start(AbortSignal.timeout(10_000));
    tracker.connections[0]?.ws.terminate();
    await eventually(() => tracker.connections.length === 2 && tracker.connections[1]?.signatureValid === true, 'a second registration');
    await c.whenRegistered(AbortSignal.timeout(10_000));
    expect(Buffer.from(tracker.connections[0]!.nonce).equals(Buffer.from(tracker.connections[1]!.nonce))).toBe(false);
  });

  it('keeps retrying while the tracker is down and registers once it comes up', async () => {
    const probe = await startFakeTracker();
    const port = probe.port;
    await probe.close();
    const c = client(`ws://127.0.0.1:${port}`, new StuckTransport());
    const started = c.start(AbortSignal.timeout(15_000));
    await new Promise((r) => setTimeout(r, 150));
    const tracker = await startFakeTracker({ port });
    cleanups.push(() => tracker.close());
    await started;
    expect(tracker.connections.some((conn) => conn.signatureValid === true)).toBe(true);
  });

  it('start rejects with RC_ERR_ABORTED when its signal aborts first', async () => {
    const probe = await startFakeTracker();
    await probe.close();
    const c = client(probe.url, new StuckTransport());
    await expect(c.start(AbortSignal.timeout(100))).rejects.toMatchObject({ code: 'RC_ERR_ABORTED' });
  });

  it('ignores malformed tracker messages', async () => {
    const tracker = await startFakeTracker();
    cleanups.push(() => tracker.close());
    const c = client(tracker.url, new StuckTransport());
    await c.start(AbortSignal.timeout(10_000));
    const conn = tracker.connections[0] as TrackerConnection;
    conn.send('not json');
    conn.send('{"type":"surprise"}');
    conn.send('{"type":"signal","from":"x","connectionId":"c1","signal":{"kind":"offer"}}');
    conn.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    conn.send({ type: 'registered', relayId: keypair.relayId, trackerKey: FAKE_TRACKER_KEY });
    await new Promise((r) => setTimeout(r, 100));
    expect(tracker.connections).toHaveLength(1);
    expect(c.registered).toBe(true);
  });

  it('bounds negotiating peers and closes those that never connect', async () => {
    const tracker = await startFakeTracker();
    cleanups.push(() => tracker.close());
    const transport = new StuckTransport();
    const c = client(tracker.url, transport, { maxPendingPeers: 2, peerConnectTimeoutMs: 200 });
    await c.start(AbortSignal.timeout(10_000));
    const conn = tracker.connections[0] as TrackerConnection;
    for (const [from, id] of [
      ['viewer-0001', 'c1'],
      ['viewer-0002', 'c2'],
      ['viewer-0002', 'c3'],
    ]) {
      conn.send({ type: 'signal', from: from as string, connectionId: id as string, signal: { kind: 'offer', sdp: 'v=0' } });
    }
    await eventually(() => transport.accepted.length === 2, 'two accepted offers');
    await new Promise((r) => setTimeout(r, 50));
    expect(transport.accepted).toHaveLength(2);
    expect(c.pendingPeers).toBe(2);
    expect(c.offerStats().refused).toEqual({ RC_ERR_OFFER_LIMIT: 1 });
    await eventually(() => transport.peerCount === 0 && c.pendingPeers === 0, 'stuck peers to be closed');
  });

  it('caps pending peers per viewer with RC_ERR_OFFER_LIMIT, and a flooding viewer never keeps another one out', async () => {
    const tracker = await startFakeTracker();
    cleanups.push(() => tracker.close());
    const transport = new StuckTransport();
    const c = client(tracker.url, transport, { maxPendingPeers: 4, maxPendingPeersPerViewer: 2, peerConnectTimeoutMs: 60_000 });
    await c.start(AbortSignal.timeout(10_000));
    const conn = tracker.connections[0] as TrackerConnection;
    const offer = (from: string, id: string): void => conn.send({ type: 'signal', from, connectionId: id, signal: { kind: 'offer', sdp: 'v=0' } });
    // One viewer floods: only two of its 64 offers are held.
    for (let i = 0; i < 64; i++) offer('viewer-flood', `f${i}`);
    await eventually(() => c.offerStats().refused['RC_ERR_OFFER_LIMIT'] === 62, '62 refusals');
    expect(transport.accepted).toEqual(['viewer-flood/f0', 'viewer-flood/f1']);
    // Many flooding ids fill the relay-wide cap ...
    offer('viewer-flood2', 'g0');
    offer('viewer-flood2', 'g1');
    await eventually(() => c.pendingPeers === 4, 'a full relay');
    // ... and a new viewer still gets in, displacing the oldest offer of a viewer holding two slots.
    offer('viewer-honest', 'h0');
    await eventually(() => transport.accepted.includes('viewer-honest/h0'), "the honest viewer's offer");
    expect(transport.open.has('viewer-flood/f0')).toBe(false);
    expect(c.pendingPeers).toBe(4);
    expect(c.offerStats().displaced).toBe(1);
  });

  it('refuses an offer when the relay is full and nobody holds more slots than its viewer would', async () => {
    const tracker = await startFakeTracker();
    cleanups.push(() => tracker.close());
    const transport = new StuckTransport();
    const c = client(tracker.url, transport, { maxPendingPeers: 2, maxPendingPeersPerViewer: 2, peerConnectTimeoutMs: 60_000 });
    await c.start(AbortSignal.timeout(10_000));
    const conn = tracker.connections[0] as TrackerConnection;
    const offer = (from: string, id: string): void => conn.send({ type: 'signal', from, connectionId: id, signal: { kind: 'offer', sdp: 'v=0' } });
    offer('viewer-a', 'a0');
    offer('viewer-b', 'b0');
    await eventually(() => c.pendingPeers === 2, 'a full relay');
    offer('viewer-a', 'a1');
    await eventually(() => c.offerStats().refused['RC_ERR_OFFER_LIMIT'] === 1, 'a refusal');
    expect(transport.accepted).toEqual(['viewer-a/a0', 'viewer-b/b0']);
    expect(c.offerStats().displaced).toBe(0);
  });

  it('refuses pending-peer caps below 1 with RC_ERR_CONFIG_INVALID', () => {
    for (const bad of [{ maxPendingPeers: 0 }, { maxPendingPeersPerViewer: 0 }]) {
      expect(() => client('ws://127.0.0.1:1/', new StuckTransport(), bad)).toThrowError(expect.objectContaining({ code: 'RC_ERR_CONFIG_INVALID' }));
    }
  });

  it('turns a relayed offer into a connected peer: answer first, then trickled candidates both ways', { timeout: 30_000 }, async () => {
    const tracker = await startFakeTracker();
    cleanups.push(() => tracker.close());
    const transport = new NodeDataChannelTransport({ bindAddress: '127.0.0.1' });
    cleanups.push(() => transport.close());
    const channels: RelayDataChannel[] = [];
    const peersFrom: string[] = [];
    const c = client(tracker.url, transport, {
      onPeer: (peer, viewer) => {
        peersFrom.push(viewer);
        peer.onDataChannel((ch) => channels.push(ch));
      },
    });
    await c.start(AbortSignal.timeout(10_000));
    const conn = tracker.connections[0] as TrackerConnection;

    const viewerId = 'viewer-abcdef12';
    const toViewer: SignalPayload[] = [];
    conn.ws.on('message', (data) => {
      const msg = decodeTrackerClientMessage(String(data));
      if (msg.type !== 'signal') return;
      expect(msg).toMatchObject({ to: viewerId, connectionId: 'conn1' });
      toViewer.push(msg.signal);
    });
    const viewer = await connectViewerViaTracker(conn, viewerId, 'conn1');
    cleanups.push(() => viewer.close());
    await eventually(() => channels.length === 1, 'the relay channel');
    expect(channels[0]?.label).toBe(DATA_CHANNEL_LABEL);
    expect(peersFrom).toEqual([viewerId]);
    expect(toViewer[0]?.kind).toBe('answer');
    expect(toViewer.some((s) => s.kind === 'candidate')).toBe(true);
    await eventually(() => c.pendingPeers === 0, 'negotiation to settle');
    expect(transport.peerCount).toBe(1);
  });
});

describe('TrackerClient: NAT', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('reports its NAT in register and heartbeat, hands over hello and reachability, and puts extra candidates before its own', async () => {
    const tracker = await startFakeTracker();
    cleanups.push(() => tracker.close());
    const transport = new NodeDataChannelTransport({ bindAddress: '127.0.0.1' });
    cleanups.push(() => transport.close());
    const dir = await mkdtemp(join(tmpdir(), 'relaycast-tracker-client-nat-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const { keypair } = await loadOrCreateKeypair(join(dir, 'relay.json'));
    const hellos: unknown[] = [];
    const verdicts: unknown[] = [];
    let nat: NatReport = { portMapping: 'none' };
    const extra = 'candidate:rcmap 1 UDP 1694498815 203.0.113.7 40000 typ srflx raddr 192.168.1.20 rport 40000';
    const c = new TrackerClient({
      trackerUrl: tracker.url,
      keypair,
      transport,
      advertise: () => ({ capacity: 1, load: 0, region: '', pricePerGiB: '0', streams: [], nat }),
      onPeer: () => undefined,
      onHello: (h) => hellos.push(h),
      onReachability: (m) => verdicts.push(m),
      extraCandidates: () => [extra],
    });
    cleanups.push(() => c.close());
    await c.start(AbortSignal.timeout(10_000));
    const conn = tracker.connections[0] as TrackerConnection;
    expect(conn.messages[0]).toMatchObject({ type: 'register', nat: { portMapping: 'none' } });
    expect(hellos).toHaveLength(1);

    nat = { portMapping: 'upnp', publicAddress: '203.0.113.7', mappedPort: 40000 };
    c.heartbeatNow();
    await eventually(() => conn.messages.some((m) => m.type === 'heartbeat' && m.nat?.portMapping === 'upnp'), 'a heartbeat with the mapping');

    conn.send({ type: 'reachability', reachability: 'mapped', address: '203.0.113.7:40000' });
    await eventually(() => verdicts.length === 1, 'the verdict');
    expect(verdicts[0]).toEqual({ type: 'reachability', reachability: 'mapped', address: '203.0.113.7:40000' });

    const viewer = await connectViewerViaTracker(conn, 'viewer-0001', 'c1');
    cleanups.push(() => viewer.close());
    const sent = conn.messages.filter((m) => m.type === 'signal');
    const candidates = sent.flatMap((m) => (m.type === 'signal' && m.signal.kind === 'candidate' ? [m.signal.candidate] : []));
    expect(sent[0]?.type === 'signal' && sent[0].signal.kind).toBe('answer');
    expect(candidates[0]).toBe(extra);
    expect(candidates.filter((x) => x === extra)).toHaveLength(1);
    expect(candidates.length).toBeGreaterThan(1);
  }, 30_000);
});
