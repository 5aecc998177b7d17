import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmIdFromUrl } from '@relaycast/protocol';
import type { RelaycastClient } from '@relaycast/player-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { generateVod, startLiveStream, type LiveStream } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess, stopAll, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';

/**
 * Issue "segments flow origin → relay → viewer": real tracker and relay processes started through
 * their bins, a real ffmpeg VOD and live stream, an SDK client over real WebRTC on loopback.
 */
describe('delivery through relays', () => {
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let relays: RelayProc[];
  let live: LiveStream;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-delivery-'));
    live = await startLiveStream(join(dir, 'live'), { durationSec: 75 });
    await generateVod(join(dir, 'vod'), { format: 'ts', durationSec: 12 });
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess();
    relays = [];
    for (const name of ['a', 'b']) {
      relays.push(await startRelayProcess(tracker, { keypair: join(dir, 'keys', `${name}.json`), allowOrigin: [origin.url] }));
    }
  });

  afterAll(async () => {
    await live?.stop();
    await stopAll();
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function client(masterUrl: string): Promise<RelaycastClient> {
    const c = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(masterUrl) });
    await c.start();
    return c;
  }

  it('serves every VOD segment of both renditions byte-identical, mostly from relays, each fetched from the origin at most once per relay', async () => {
    const masterUrl = `${origin.url}vod/master.m3u8`;
    const c = await client(masterUrl);
    try {
      expect(c.relays.length).toBe(2);
      const variants = variantUrls(await (await fetch(masterUrl)).text(), masterUrl);
      expect(variants).toHaveLength(2);
      const segmentPaths: string[] = [];
      for (const variant of variants) {
        const { segments } = mediaPlaylist(await (await fetch(variant)).text(), variant);
        expect(segments.length).toBeGreaterThanOrEqual(6);
        for (const url of segments) {
          const result = await c.loadSegment({ url, playlistUrl: variant });
          const path = new URL(url).pathname;
          segmentPaths.push(path);
          const file = await readFile(join(dir, path));
          expect(Buffer.compare(Buffer.from(result.data), file), path).toBe(0);
        }
      }
      const stats = c.getStats();
      expect(stats.segments).toBe(segmentPaths.length);
      expect(stats.bytesFromRelays / (stats.bytesFromRelays + stats.bytesFromOrigin)).toBeGreaterThanOrEqual(0.95);
      for (const path of segmentPaths) {
        for (const relay of relays) expect(origin.count(path, relay.relayId), path).toBeLessThanOrEqual(1);
      }
    } finally {
      await c.close();
    }
  });

  it('serves 30 s of a live sliding-window stream byte-identical, mostly from relays', async () => {
    const masterUrl = `${origin.url}live/${live.master}`;
    const mediaUrl = `${origin.url}live/${live.media}`;
    await waitFor('live playlist', async () => {
      const res = await fetch(mediaUrl);
      return res.ok && mediaPlaylist(await res.text(), mediaUrl).segments.length >= 2 ? true : undefined;
    }, 30_000, 250);
    const c = await client(masterUrl);
    const seen = new Set<string>();
    let compared = 0;
    try {
      const until = Date.now() + 30_000;
      while (Date.now() < until) {
        const { segments } = mediaPlaylist(await (await fetch(mediaUrl)).text(), mediaUrl);
        // Start at the live edge, like a player would, then take every new segment.
        const fresh = seen.size === 0 ? segments.slice(-2) : segments.filter((s) => !seen.has(s));
        for (const url of fresh) {
          seen.add(url);
          const result = await c.loadSegment({ url, playlistUrl: mediaUrl });
          const file = await readFile(join(dir, new URL(url).pathname));
          expect(Buffer.compare(Buffer.from(result.data), file), url).toBe(0);
          compared++;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(compared).toBeGreaterThanOrEqual(12);
      const stats = c.getStats();
      expect(stats.bytesFromRelays / (stats.bytesFromRelays + stats.bytesFromOrigin)).toBeGreaterThanOrEqual(0.95);
    } finally {
      await c.close();
    }
  });
});
