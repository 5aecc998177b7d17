import { ErrorCode, type RelaycastError } from '@relaycast/protocol';
import Hls from 'hls.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LOOPBACK_RTC,
  NodeRTCPeerConnection,
  NodeWebSocket,
  TestTracker,
  startOrigin,
  testBytes,
  until,
  type RelayBehaviour,
  type TestOrigin,
  sha256Hex,
  withDigestSidecar,
} from '../testing/loopback-network.js';
import { loadFragment } from '../testing/hls-fragment.js';
import type { FragmentLoaderClass } from './fragment-loader.js';
import { RelaycastHls } from './relaycast-hls.js';

/**
 * The adapter's events come from the client it starts per manifest: a relay that serves wrong bytes
 * through the adapter's own fragment loader must reach a RelaycastHls listener as integrity-failure.
 * Real tracker, relay (node-datachannel on loopback) and origin; hls.js itself is a stand-in that
 * only fires the events the adapter listens to.
 */
const SEGMENT = testBytes(200_000);
const flipOne: RelayBehaviour = (ctx) => {
  const bad = SEGMENT.slice();
  bad[150_000] = (bad[150_000] as number) ^ 0x01;
  return ctx.serve(bad);
};

let origin: TestOrigin;
let tracker: TestTracker;

beforeAll(async () => {
  origin = await startOrigin(withDigestSidecar({ 'seg.ts': SEGMENT }));
  tracker = await TestTracker.start();
});

afterAll(async () => {
  for (const r of tracker.relays.splice(0)) r.closeAll();
  await tracker.close();
  await origin.close();
});

/** The slice of hls.js the adapter uses: `on` for the three events, and firing them. */
class FakeHls {
  private readonly handlers = new Map<string, (event: string, data: unknown) => void>();
  on(event: string, handler: (event: string, data: unknown) => void): void {
    this.handlers.set(event, handler);
  }
  fire(event: string, data: unknown): void {
    this.handlers.get(event)?.(event, data);
  }
}

describe('RelaycastHls events', () => {
  it("forwards a relay's integrity failure from its client to its own listeners", async () => {
    const relay = tracker.addRelay(flipOne);
    const relaycast = new RelaycastHls({
      trackerUrl: tracker.url,
      WebSocket: NodeWebSocket,
      RTCPeerConnection: NodeRTCPeerConnection,
      rtcConfiguration: LOOPBACK_RTC,
      maxRelays: 1,
    });
    const failures: RelaycastError[] = [];
    const connected: string[] = [];
    relaycast.on('integrity-failure', (err) => failures.push(err));
    relaycast.on('relay-connected', (id) => connected.push(id));
    const hls = new FakeHls();
    relaycast.attach(hls as unknown as Hls);
    try {
      hls.fire(Hls.Events.MANIFEST_LOADING, { url: `${origin.base}/master.m3u8` });
      await until(() => connected.length === 1, 10_000, 'the relay to connect');

      const Loader = relaycast.hlsConfig().fLoader as FragmentLoaderClass;
      const data = await loadFragment(Loader, { url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/media.m3u8` });

      expect(Buffer.from(data).equals(Buffer.from(SEGMENT))).toBe(true);
      expect(failures).toHaveLength(1);
      expect(failures[0]?.code).toBe(ErrorCode.SEGMENT_INTEGRITY);
      expect(failures[0]?.details).toMatchObject({ url: `${origin.base}/seg.ts`, relayId: relay.relayId, expectedSha256: sha256Hex(SEGMENT) });
      expect(relaycast.getStats().integrity.failures).toBe(1);
    } finally {
      hls.fire(Hls.Events.DESTROYING, {});
      await relaycast.destroy();
    }
  });
});
