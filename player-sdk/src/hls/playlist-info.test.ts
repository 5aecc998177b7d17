import Hls from 'hls.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { RelaycastClient } from '../relaycast-client.js';
import { loadFragment } from '../testing/hls-fragment.js';
import { startOrigin, testBytes, withDigestSidecar, type TestOrigin } from '../testing/loopback-network.js';
import type { FragmentLoaderClass } from './fragment-loader.js';
import { RelaycastHls } from './relaycast-hls.js';

/**
 * The adapter tells the core what hls.js knows of each fragment's media playlist (live or not,
 * target duration), which paces the retries of a missing or failed digest sidecar. hls.js is a
 * stand-in holding the loaded playlists' details; the origin is real.
 */
const SEGMENT = testBytes(10_000);
let origin: TestOrigin;

beforeAll(async () => {
  origin = await startOrigin(withDigestSidecar({ 'seg.ts': SEGMENT }));
});

afterAll(async () => {
  await origin.close();
});

class FakeHls {
  levels = [{ details: { live: true, targetduration: 2 } }, { details: undefined }];
  audioTracks = [{ details: { live: false, targetduration: 6 } }];
  subtitleTracks: unknown[] = [];
  private readonly handlers = new Map<string, (event: string, data: unknown) => void>();
  on(event: string, handler: (event: string, data: unknown) => void): void {
    this.handlers.set(event, handler);
  }
  fire(event: string, data: unknown): void {
    this.handlers.get(event)?.(event, data);
  }
}

describe('RelaycastHls: playlist info for the digest store', () => {
  it("passes each fragment's playlist liveness and target duration (ms) with the load", async () => {
    const spy = vi.spyOn(RelaycastClient.prototype, 'loadSegment');
    const relaycast = new RelaycastHls({});
    const hls = new FakeHls();
    relaycast.attach(hls as unknown as Hls);
    try {
      hls.fire(Hls.Events.MANIFEST_LOADING, { url: `${origin.base}/master.m3u8` });
      const Loader = relaycast.hlsConfig().fLoader as FragmentLoaderClass;
      expect(await loadFragment(Loader, { url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/media.m3u8`, frag: { type: 'main', level: 0 } })).toEqual(
        SEGMENT,
      );
      await loadFragment(Loader, { url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/media.m3u8`, frag: { type: 'audio', level: 0 } });
      await loadFragment(Loader, { url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/media.m3u8`, frag: { type: 'main', level: 1 } });
      const requests = spy.mock.calls.map(([request]) => request);
      expect(requests.map((r) => [r.live, r.targetDurationMs])).toEqual([
        [true, 2_000],
        [false, 6_000],
        [undefined, undefined],
      ]);
      expect(requests.every((r) => r.playlistUrl === `${origin.base}/media.m3u8`)).toBe(true);
    } finally {
      spy.mockRestore();
      hls.fire(Hls.Events.DESTROYING, {});
      await relaycast.destroy();
    }
  });
});
