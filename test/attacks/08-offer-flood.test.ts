/**
 * Issue 14, finding 8: "One tracker client blocks new viewers from a relay. 64 offers that never
 * connect fill the relay's pending-peer slots for 20 s. One connection can be assigned 64 relays.
 * Remote ICE candidates with loopback/private addresses are not filtered, so the relay sends STUN
 * checks into its own LAN."
 *
 * Real processes: the tracker bin and a relay bin (with its status port) with default settings, an
 * HTTP origin, a raw viewer. Replayed from one attacking address range: 64 well-formed offers that
 * never connect on one connection, then more connections of the same range. The tracker forwards
 * 8 per connection (RC_ERR_OFFER_LIMIT) and 32 per range and relay (RC_ERR_ADDRESS_RANGE_LIMIT);
 * the relay itself keeps at most 2 negotiating per viewer (RC_ERR_OFFER_LIMIT in its status). The
 * attacker's private and link-local candidates are dropped by the relay's candidate policy. Beside
 * it, the honest path: a viewer from another range opens a data channel to the relay during the
 * flood and gets a segment byte-identical to the origin's.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCode, FrameType } from '@relaycast/protocol';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, connectRelay, type TestClient } from '@relaycast/tracker/testing';
import { mediaPlaylist, variantUrls } from '../helpers/hls.js';
import { LOOPBACK_RTC } from '../helpers/node-client.js';
import { relayStatus as readRelayStatus, waitFor } from '../helpers/processes.js';
import { fetchThrough, openRawChannel } from '../helpers/raw-viewer.js';
import { useProcesses } from '../helpers/use-processes.js';
import { startVodRelay, type VodRelay } from '../helpers/vod-relay.js';

/** A real offer (one data channel) whose peer connection is then dropped: it can never connect. */
async function deadOffer(): Promise<string> {
  const pc = new RTCPeerConnection(LOOPBACK_RTC);
  pc.createDataChannel('x');
  const offer = await pc.createOffer();
  await pc.setLocalDescription(offer);
  const sdp = pc.localDescription?.sdp ?? (offer.sdp as string);
  pc.close();
  return sdp;
}

interface RelayStatus {
  pendingPeers: number;
  offers: { refused: Record<string, number>; displaced: number };
  remoteCandidatesDropped: number;
}

describe('attack 8: offer flood against one relay', () => {
  useProcesses();
  let vod: VodRelay;
  const sockets: TestClient[] = [];

  beforeAll(async () => {
    vod = await startVodRelay('rc-attack08-');
  });

  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await vod?.close();
  });

  const relayStatus = (): Promise<RelayStatus> => readRelayStatus<RelayStatus>(vod.relay.statusPort);

  async function attacker(localAddress: string): Promise<TestClient> {
    const c = await connect(vod.tracker.url, undefined, localAddress);
    sockets.push(c);
    c.send({ type: 'join', swarmId: vod.swarmId });
    expect((await c.next('shortlist')).relays.map((r) => r.relayId)).toContain(vod.relay.relayId);
    return c;
  }

  /** Sends `n` offers and counts what the tracker refused, by code. */
  async function flood(c: TestClient, sdp: string, n: number, tag: string): Promise<Record<string, number>> {
    for (let i = 0; i < n; i++) c.send({ type: 'signal', to: vod.relay.relayId, connectionId: `${tag}${i}`, signal: { kind: 'offer', sdp } });
    const codes: Record<string, number> = {};
    // Answers come back for forwarded offers; errors for refused ones. Give the tracker a moment.
    await new Promise((r) => setTimeout(r, 1_000));
    for (;;) {
      const m = await c.next('error', 200).catch(() => undefined);
      if (m === undefined) break;
      const code = m.code;
      codes[code] = (codes[code] ?? 0) + 1;
    }
    return codes;
  }

  it('caps the flood at the tracker (per connection, per range) and at the relay (per viewer); private and link-local candidates are dropped; an honest viewer still gets a segment', async () => {
    const sdp = await deadOffer();
    // As found: one connection, 64 offers that never connect.
    const first = await attacker('127.0.85.1');
    expect(await flood(first, sdp, 64, 'a')).toEqual({ [ErrorCode.OFFER_LIMIT]: 56 });
    // Candidates pointing into the relay's LAN and at the metadata address, for an offer it holds.
    for (const addr of ['10.0.0.5', '192.168.1.20', '169.254.169.254']) {
      first.send({
        type: 'signal',
        to: vod.relay.relayId,
        connectionId: 'a0',
        signal: { kind: 'candidate', candidate: `candidate:1 1 udp 2122260223 ${addr} 9 typ host`, sdpMid: '0' },
      });
    }
    // More connections from the same /24: 32 offers per range and relay in all.
    const more = await Promise.all([2, 3, 4, 5].map((i) => attacker(`127.0.85.${i}`)));
    const refused: Record<string, number> = {};
    for (const [i, c] of more.entries()) {
      for (const [code, n] of Object.entries(await flood(c, sdp, 8, `b${i}-`))) refused[code] = (refused[code] ?? 0) + n;
    }
    expect(refused).toEqual({ [ErrorCode.ADDRESS_RANGE_LIMIT]: 8 });

    // The relay saw at most 32 offers from that range and kept at most 2 per viewer negotiating.
    const status = await waitFor(
      'the relay to settle the offers',
      async () => {
        const s = await relayStatus();
        return s.remoteCandidatesDropped >= 3 ? s : undefined;
      },
      10_000,
    );
    expect(status.offers.refused[ErrorCode.OFFER_LIMIT] ?? 0).toBeGreaterThanOrEqual(32 - 5 * 2);
    expect(status.pendingPeers).toBeLessThanOrEqual(5 * 2);
    expect(status.remoteCandidatesDropped).toBeGreaterThanOrEqual(3);

    // The honest path, while the attacker's offers are still pending: another range's viewer connects and is served.
    const master = `${vod.origin.url}vod/master.m3u8`;
    const variant = variantUrls(await (await fetch(master)).text(), master)[0] as string;
    const url = mediaPlaylist(await (await fetch(variant)).text(), variant).segments[0] as string;
    const ch = await openRawChannel(vod.tracker.url, vod.swarmId, vod.relay.relayId);
    try {
      const { last, data } = await fetchThrough(ch, 1, url, { timeoutMs: 20_000 });
      expect(last.type).toBe(FrameType.END);
      expect(Buffer.compare(Buffer.from(data), await readFile(join(vod.dir, new URL(url).pathname)))).toBe(0);
    } finally {
      ch.close();
    }
  });

  it('one connection is never handed more than one shortlist of relays at once (16), nor more than 32 new ones a minute', async () => {
    // 40 more relays (WebSocket stand-ins), 8 per /24, so there is more to hand out than the cap.
    for (let i = 0; i < 40; i++)
      sockets.push(await connectRelay(vod.tracker.url, { streams: [vod.swarmId] }, undefined, `127.0.${100 + Math.floor(i / 8)}.${(i % 8) + 1}`));
    const greedy = await connect(vod.tracker.url, undefined, '127.0.86.1');
    sockets.push(greedy);
    const handed = new Set<string>();
    // Different swarms rank different relays first: six joins would reach all 41 without the cap.
    for (let s = 0; s < 6; s++) {
      greedy.send({ type: 'join', swarmId: `${vod.swarmId}?s=${s}`, count: 16 });
      const m = await greedy.next();
      if (m.type === 'shortlist') {
        expect(m.relays.length).toBeLessThanOrEqual(16);
        for (const r of m.relays) handed.add(r.relayId);
      } else {
        expect(m).toMatchObject({ type: 'error', code: ErrorCode.RATE_LIMITED, ref: 'join' });
      }
    }
    expect(handed.size).toBeGreaterThanOrEqual(16);
    expect(handed.size).toBeLessThanOrEqual(32);
    // Only the 16 most recently handed may be signaled.
    let allowed = 0;
    for (const id of handed) {
      greedy.send({ type: 'signal', to: id, connectionId: 'g', signal: { kind: 'end-of-candidates' } });
      const err = await greedy.next('error', 300).catch(() => undefined);
      if (err === undefined || err.code !== ErrorCode.SIGNAL_NOT_ALLOWED) allowed++;
    }
    expect(allowed).toBeLessThanOrEqual(16);
  });
});
