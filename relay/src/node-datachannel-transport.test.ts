import { createSocket } from 'node:dgram';
import { ErrorCode } from '@relaycast/protocol';
import { afterEach, describe, expect, it } from 'vitest';
import { NodeDataChannelTransport, isMdnsCandidate } from './node-datachannel-transport.js';
import { connectViewer, type TestViewer } from './transport-compliance.js';
import { describeRelayTransportCompliance } from './transport-compliance.js';

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
