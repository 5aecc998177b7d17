import nodeDataChannel from 'node-datachannel';
import { stripSdpCandidates, type SignalMessage } from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { startTracker, type Tracker } from './index.js';
import { connect, connectRelay, type TestRelay } from './testing/clients.js';

const SWARM = 'https://cdn.example/live/master.m3u8';
const trackers: Tracker[] = [];
const closers: (() => void)[] = [];

afterEach(async () => {
  for (const c of closers.splice(0)) c();
  await Promise.all(trackers.splice(0).map((t) => t.close()));
});

/**
 * Answers the tracker's probe offers with a real libdatachannel peer on loopback, as a relay
 * does. `sendCandidates: false` withholds the relay's candidates, so the probe has nothing it may
 * send checks to: the same outcome as a relay behind a NAT without a mapping.
 */
function answerProbes(relay: TestRelay, opts: { sendCandidates: boolean }): { offers: number } {
  const seen = { offers: 0 };
  relay.ws.on('message', (data) => {
    const msg = JSON.parse(String(data)) as SignalMessage;
    if (msg.type !== 'signal' || msg.signal.kind !== 'offer') return;
    seen.offers++;
    expect(msg.signal.sdp).not.toMatch(/a=candidate:/);
    const pc = new nodeDataChannel.PeerConnection('relay', { iceServers: [], bindAddress: '127.0.0.1' });
    closers.push(() => pc.close());
    const send = (signal: SignalMessage['signal']): void => relay.send({ type: 'signal', to: msg.from, connectionId: msg.connectionId, signal });
    pc.onLocalDescription((sdp, type) => {
      if (type === 'answer') send({ kind: 'answer', sdp: opts.sendCandidates ? sdp : stripSdpCandidates(sdp) });
    });
    pc.onLocalCandidate((candidate, sdpMid) => {
      if (opts.sendCandidates) send({ kind: 'candidate', candidate, sdpMid });
    });
    pc.onDataChannel(() => undefined);
    pc.setRemoteDescription(msg.signal.sdp, 'offer');
  });
  return seen;
}

async function statusOf(t: Tracker, relayId: string): Promise<Record<string, unknown> | undefined> {
  return t.status().relays.find((r) => r.relayId === relayId);
}

describe('relay reachability test', () => {
  it('a relay answering on its own address is tested public, told so, and listed as public', async () => {
    const t = await startTracker({ port: 0, reachability: { timeoutMs: 5_000 } });
    trackers.push(t);
    const relay = await connectRelay(t.url, { streams: [SWARM] });
    closers.push(() => relay.ws.terminate());
    const seen = answerProbes(relay, { sendCandidates: true });
    const verdict = await relay.next('reachability', 10_000);
    expect(verdict.reachability).toBe('public');
    expect(verdict.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(seen.offers).toBe(1);
    expect(await statusOf(t, relay.key.relayId)).toMatchObject({ reachability: 'public', reachableAddress: verdict.address });

    const viewer = await connect(t.url);
    closers.push(() => viewer.ws.terminate());
    viewer.send({ type: 'join', swarmId: SWARM });
    const list = await viewer.next('shortlist');
    expect(list.relays).toEqual([{ relayId: relay.key.relayId, region: 'eu', reachability: 'public' }]);
  });

  it('a relay the probe cannot reach is tested needs-turn and ranked after every reachable relay', async () => {
    const t = await startTracker({ port: 0, reachability: { timeoutMs: 1_500 } });
    trackers.push(t);
    const hidden: TestRelay[] = [];
    for (let i = 0; i < 4; i++) {
      const r = await connectRelay(t.url, { streams: [SWARM] });
      closers.push(() => r.ws.terminate());
      answerProbes(r, { sendCandidates: false });
      hidden.push(r);
    }
    const open = await connectRelay(t.url, { streams: [] });
    closers.push(() => open.ws.terminate());
    answerProbes(open, { sendCandidates: true });
    for (const r of hidden) expect((await r.next('reachability', 10_000)).reachability).toBe('needs-turn');
    expect((await open.next('reachability', 10_000)).reachability).toBe('public');

    // The open relay is not warm for the swarm and the hidden ones are: without the tier it would
    // rarely rank first. With it, it always does, and the others still fill the list.
    const viewer = await connect(t.url);
    closers.push(() => viewer.ws.terminate());
    viewer.send({ type: 'join', swarmId: SWARM, count: 5 });
    const list = await viewer.next('shortlist');
    expect(list.relays[0]).toMatchObject({ relayId: open.key.relayId, reachability: 'public' });
    expect(list.relays.slice(1).map((r) => r.reachability)).toEqual(['needs-turn', 'needs-turn', 'needs-turn', 'needs-turn']);
    expect(await statusOf(t, hidden[0]!.key.relayId)).toMatchObject({ reachability: 'needs-turn' });
  });

  it('tests again when a heartbeat reports a changed port mapping, at most once per minRetestMs', async () => {
    const t = await startTracker({ port: 0, reachability: { timeoutMs: 1_500, minRetestMs: 1_000 } });
    trackers.push(t);
    const relay = await connectRelay(t.url);
    closers.push(() => relay.ws.terminate());
    const seen = answerProbes(relay, { sendCandidates: true });
    await relay.next('reachability', 10_000);
    relay.send({ type: 'heartbeat', capacity: 100, load: 0, streams: [], nat: { portMapping: 'upnp', publicAddress: '203.0.113.5', mappedPort: 40000 } });
    // Within minRetestMs of the first verdict: remembered, not probed yet.
    await new Promise((r) => setTimeout(r, 200));
    expect(seen.offers).toBe(1);
    await new Promise((r) => setTimeout(r, 1_000));
    relay.send({ type: 'heartbeat', capacity: 100, load: 0, streams: [], nat: { portMapping: 'upnp', publicAddress: '203.0.113.5', mappedPort: 40000 } });
    const again = await relay.next('reachability', 10_000);
    // Reached while reporting a mapping: the tracker calls it mapped.
    expect(again.reachability).toBe('mapped');
    expect(seen.offers).toBe(2);
    // The same report again, or only a new public address, is no change: no third probe.
    await new Promise((r) => setTimeout(r, 1_100));
    relay.send({ type: 'heartbeat', capacity: 100, load: 0, streams: [], nat: { portMapping: 'upnp', publicAddress: '203.0.113.6', mappedPort: 40000 } });
    relay.send({ type: 'heartbeat', capacity: 100, load: 0, streams: [], nat: { portMapping: 'upnp', publicAddress: '203.0.113.5', mappedPort: 40000 } });
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.offers).toBe(2);
  });

  it('tests a relay the full queue turned away once it heartbeats after the queue has room', async () => {
    const t = await startTracker({ port: 0, reachability: { timeoutMs: 600, maxConcurrent: 1, maxQueued: 1 } });
    trackers.push(t);
    const relays: TestRelay[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await connectRelay(t.url);
      closers.push(() => r.ws.terminate());
      answerProbes(r, { sendCandidates: false });
      relays.push(r);
    }
    const [probing, queued, turnedAway] = relays as [TestRelay, TestRelay, TestRelay];
    expect((await probing.next('reachability', 10_000)).reachability).toBe('needs-turn');
    expect((await queued.next('reachability', 10_000)).reachability).toBe('needs-turn');
    expect((await statusOf(t, turnedAway.key.relayId))?.['reachability']).toBeUndefined();
    turnedAway.send({ type: 'heartbeat', capacity: 100, load: 0, streams: [] });
    expect((await turnedAway.next('reachability', 10_000)).reachability).toBe('needs-turn');
  });

  it('is off with reachability.enabled false: no offers, relays stay untested', async () => {
    const t = await startTracker({ port: 0, reachability: { enabled: false } });
    trackers.push(t);
    const relay = await connectRelay(t.url);
    closers.push(() => relay.ws.terminate());
    const seen = answerProbes(relay, { sendCandidates: true });
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.offers).toBe(0);
    expect((await statusOf(t, relay.key.relayId))?.['reachability']).toBeUndefined();
  });
});
