import { createSocket } from 'node:dgram';
import { ErrorCode } from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { NodeDataChannelTransport, filterSdpCandidates, isMdnsCandidate, remoteCandidateRefusal, type CandidatePolicy } from './node-datachannel-transport.js';
import { connectViewer, type TestViewer } from '../testing/transport-compliance.js';
import { describeRelayTransportCompliance } from '../testing/transport-compliance.js';

describeRelayTransportCompliance('node-datachannel', () => new NodeDataChannelTransport({ bindAddress: '127.0.0.1' }));

/** A UDP port free right now (fixed ports collide when test runs overlap on one machine). */
async function freeUdpPort(): Promise<number> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(() => resolve()));
  return port;
}

const MUX_PORT = await freeUdpPort();
describeRelayTransportCompliance(
  'node-datachannel, one UDP port (ICE UDP mux)',
  () => new NodeDataChannelTransport({ bindAddress: '127.0.0.1', portRangeBegin: MUX_PORT, portRangeEnd: MUX_PORT }),
);

describe('NodeDataChannelTransport', () => {
  const transports: NodeDataChannelTransport[] = [];
  const viewers: TestViewer[] = [];
  afterEach(async () => {
    for (const v of viewers.splice(0)) v.close();
    for (const t of transports.splice(0)) await t.close();
  });

  it('refuses offers beyond maxPeers with RC_ERR_RELAY_OVERLOADED and accepts again once one closes', { timeout: 30_000 }, async () => {
    const t = new NodeDataChannelTransport({ bindAddress: '127.0.0.1', maxPeers: 1 });
    transports.push(t);
    const first = await connectViewer(t);
    viewers.push(first.viewer);
    await expect(connectViewer(t)).rejects.toMatchObject({ code: ErrorCode.RELAY_OVERLOADED });
    first.peer.close();
    const second = await connectViewer(t);
    viewers.push(second.viewer);
    expect(t.peerCount).toBe(1);
  });

  it('gives every viewer the one configured UDP port when muxed', { timeout: 30_000 }, async () => {
    const port = await freeUdpPort();
    const t = new NodeDataChannelTransport({ bindAddress: '127.0.0.1', portRangeBegin: port });
    transports.push(t);
    const a = await connectViewer(t);
    const b = await connectViewer(t);
    viewers.push(a.viewer, b.viewer);
    const ports = [...a.relayCandidates, ...b.relayCandidates].filter((c) => c !== undefined).map((c) => c.candidate.split(/\s+/)[5]);
    expect(ports.length).toBeGreaterThan(1);
    expect(new Set(ports)).toEqual(new Set([String(port)]));
  });

  it('refuses a malformed offer with a typed error and keeps no peer', () => {
    const t = new NodeDataChannelTransport({ bindAddress: '127.0.0.1' });
    transports.push(t);
    expect(() => t.acceptOffer('bad', 'not an sdp')).toThrowError(expect.objectContaining({ code: ErrorCode.MESSAGE_FIELD }));
    expect(t.peerCount).toBe(0);
  });

  it('recognises mDNS candidates', () => {
    expect(isMdnsCandidate('candidate:1 1 UDP 2122317823 2f6a31d2-7d6e-4e1b-a4e5-1f5f2a0e3c1b.local 50000 typ host')).toBe(true);
    expect(isMdnsCandidate('candidate:1 1 UDP 2122317823 127.0.0.1 50000 typ host')).toBe(false);
  });

  it('validates its options with RC_ERR_CONFIG_INVALID', () => {
    for (const bad of [{ maxPeers: 0 }, { portRangeBegin: 70_000 }, { portRangeBegin: 5000, portRangeEnd: 4000 }, { maxMessageSize: 10 }]) {
      expect(() => new NodeDataChannelTransport(bad)).toThrowError(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    }
  });
});

describe('remote candidate policy', () => {
  const strict: CandidatePolicy = { allowLoopback: false, allowPrivate: false };
  const office: CandidatePolicy = { allowLoopback: false, allowPrivate: true };
  const dev: CandidatePolicy = { allowLoopback: true, allowPrivate: false };
  const cand = (address: string, typ = 'host'): string => `candidate:1 1 UDP 2122317823 ${address} 50000 typ ${typ}`;

  it.each([
    ['127.0.0.1', 'loopback address'],
    ['127.9.9.9', 'loopback address'],
    ['::1', 'loopback address'],
    ['::ffff:127.0.0.1', 'loopback address'],
    ['169.254.169.254', 'link-local address'],
    ['fe80::1', 'link-local address'],
    ['10.0.0.5', 'private address (see --allow-private-candidates)'],
    ['172.20.1.1', 'private address (see --allow-private-candidates)'],
    ['192.168.1.10', 'private address (see --allow-private-candidates)'],
    ['100.64.3.4', 'private address (see --allow-private-candidates)'],
    ['fd12:3456::1', 'private address (see --allow-private-candidates)'],
    ['::ffff:192.168.0.1', 'private address (see --allow-private-candidates)'],
    ['0.0.0.0', 'unspecified, multicast or reserved address'],
    ['::', 'unspecified, multicast or reserved address'],
    ['224.0.0.1', 'unspecified, multicast or reserved address'],
    ['255.255.255.255', 'unspecified, multicast or reserved address'],
    ['2f6a31d2-7d6e-4e1b-a4e5-1f5f2a0e3c1b.local', 'mDNS host name'],
    ['intranet.example', 'not an IP address'],
  ])('refuses %s by default (%s)', (address, reason) => {
    expect(remoteCandidateRefusal(cand(address), strict)).toBe(reason);
  });

  it('accepts public addresses of every candidate type, with or without a=', () => {
    for (const address of ['8.8.8.8', '11.199.0.2', '2001:4860::8888', '::ffff:8.8.4.4']) {
      expect(remoteCandidateRefusal(cand(address), strict), address).toBeUndefined();
      expect(remoteCandidateRefusal(`a=${cand(address, 'srflx')}`, strict), address).toBeUndefined();
    }
  });

  it('accepts private ranges only with allowPrivate, loopback only with allowLoopback, link-local never', () => {
    expect(remoteCandidateRefusal(cand('10.199.2.10'), office)).toBeUndefined();
    expect(remoteCandidateRefusal(cand('192.168.1.10'), office)).toBeUndefined();
    expect(remoteCandidateRefusal(cand('127.0.0.1'), office)).toBe('loopback address');
    expect(remoteCandidateRefusal(cand('127.0.0.1'), dev)).toBeUndefined();
    expect(remoteCandidateRefusal(cand('10.0.0.1'), dev)).toBe('private address (see --allow-private-candidates)');
    for (const p of [office, dev, { allowLoopback: true, allowPrivate: true }])
      expect(remoteCandidateRefusal(cand('169.254.169.254'), p)).toBe('link-local address');
  });

  it('removes refused candidates from an offer and leaves the rest of it byte for byte', () => {
    const sdp = ['v=0', 'a=mid:0', `a=${cand('10.0.0.5')}`, `a=${cand('8.8.8.8')}`, `a=${cand('127.0.0.1')}`, 'a=end-of-candidates', ''].join('\r\n');
    const out = filterSdpCandidates(sdp, strict);
    expect(out.dropped).toBe(2);
    expect(out.sdp).toBe(['v=0', 'a=mid:0', `a=${cand('8.8.8.8')}`, 'a=end-of-candidates', ''].join('\r\n'));
    expect(filterSdpCandidates(sdp, { allowLoopback: true, allowPrivate: true })).toEqual({ sdp, dropped: 0 });
  });

  it('drops loopback candidates on a relay not bound to loopback, and keeps them on one that is', async () => {
    const pc = new RTCPeerConnection({ iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration);
    pc.createDataChannel('x');
    const offer = await pc.createOffer();
    try {
      const open = new NodeDataChannelTransport();
      const bound = new NodeDataChannelTransport({ bindAddress: '127.0.0.1' });
      const office = new NodeDataChannelTransport({ allowPrivateCandidates: true });
      for (const t of [open, bound, office]) {
        const peer = t.acceptOffer('p', offer.sdp as string);
        for (const a of ['127.0.0.1', '10.1.2.3', '169.254.169.254', '8.8.8.8']) peer.addRemoteCandidate(cand(a), '0');
        peer.close();
        await t.close();
      }
      expect(open.remoteCandidatesDropped).toBe(3);
      expect(bound.remoteCandidatesDropped).toBe(2);
      expect(office.remoteCandidatesDropped).toBe(2);
    } finally {
      pc.close();
    }
  });

  it('keeps at most 32 remote candidates per peer', async () => {
    const pc = new RTCPeerConnection({ iceServers: [], bindAddress: '127.0.0.1' } as RTCConfiguration);
    pc.createDataChannel('x');
    const offer = await pc.createOffer();
    const t = new NodeDataChannelTransport();
    try {
      const peer = t.acceptOffer('p', offer.sdp as string);
      for (let i = 0; i < 40; i++) peer.addRemoteCandidate(cand(`8.8.${i}.1`), '0');
      expect(t.remoteCandidatesDropped).toBe(8);
      peer.close();
    } finally {
      await t.close();
      pc.close();
    }
  });
});
