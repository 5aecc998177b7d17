import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, swarmIdFromUrl, type RelaycastError } from '@relaycast/protocol';
import type { RelaycastClient } from '@relaycast/player-sdk';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pageStats, playFor, playerPageUrl, preparePlayerSite } from './helpers/browser.js';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { cachedVod, linkVod } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startMediaRelay, startTrackerProcess, stopAll, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';

/**
 * Issue 17, the startup policy, with real processes (tracker, relays, an HTTP origin) and real
 * viewers: loads with a low buffer never wait for relays, a race's loser is cancelled so the viewer
 * asks the origin for a segment at most once, and every path still verifies relay bytes.
 */
describe('startup policy end to end', () => {
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let browser: Browser | undefined;
  const relays: RelayProc[] = [];
  const clients: RelaycastClient[] = [];
  let master: string;
  let segments: string[];
  let playlistUrl: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-startup-'));
    // One rendition, so hls.js never switches level and asks for a segment again on its own.
    await linkVod(
      await cachedVod({ format: 'ts', durationSec: 40, renditions: [{ name: '360p', width: 640, height: 360, videoKbps: 800 }] }),
      join(dir, 'media', 'vod'),
    );
    await preparePlayerSite(dir);
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess();
    master = `${origin.url}media/vod/master.m3u8`;
    playlistUrl = variantUrls(await (await fetch(master)).text(), master)[0] as string;
    segments = mediaPlaylist(await (await fetch(playlistUrl)).text(), playlistUrl).segments;
  });

  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    await Promise.all(relays.splice(0).map((r) => r.stop('SIGKILL')));
    origin.requests.length = 0;
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function relay(name: string, fault?: string): Promise<RelayProc> {
    const r = await startMediaRelay(tracker, dir, origin.url, name, fault);
    relays.push(r);
    return r;
  }

  const pathOf = (url: string): string => new URL(url).pathname;
  const fileOf = (url: string): Promise<Buffer> => readFile(join(dir, pathOf(url)));
  const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
  /** Requests the viewers (not relays) made for `url`. */
  const viewerRequests = (url: string): number => origin.count(pathOf(url));

  async function connectedClient(): Promise<RelaycastClient> {
    const client = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(master) });
    clients.push(client);
    await client.start(AbortSignal.timeout(20_000));
    await waitFor('a relay connection', () => client.relays.length > 0, 15_000);
    return client;
  }

  it('relays slow to connect: Chromium starts from the origin at once, never rebuffers, then moves to relays; no segment is asked of the origin twice', async () => {
    await relay('a');
    await relay('b');
    browser = await launchChromium();
    const context = await browser.newContext();
    // Stand-in for a slow network path (the browser's own WebRTC cannot be slowed otherwise): every
    // answer from a relay is applied 4 s late, so no relay is up for the first seconds.
    await context.addInitScript(() => {
      const proto = RTCPeerConnection.prototype;
      const set = proto.setRemoteDescription;
      const add = proto.addIceCandidate;
      const applied = new WeakMap<RTCPeerConnection, Promise<void>>();
      proto.setRemoteDescription = function (this: RTCPeerConnection, ...args: Parameters<typeof set>) {
        const p = new Promise<void>((resolve) => setTimeout(resolve, 4_000)).then(() => set.apply(this, args));
        applied.set(this, p);
        return p;
      } as typeof set;
      // Candidates follow their description, as they would have.
      proto.addIceCandidate = function (this: RTCPeerConnection, ...args: Parameters<typeof add>) {
        return (applied.get(this) ?? Promise.resolve()).then(() => add.apply(this, args));
      } as typeof add;
    });
    const page = await context.newPage();
    // hls.js keeps 10 s ahead (it would load all 60 s at once on loopback), so segments are still
    // being loaded once the relays are up.
    await page.goto(`${playerPageUrl(origin.url, master, tracker.url)}&buffer=10`);
    await page.waitForFunction(
      () => ((window as unknown as { relaycastDemo?: { video: HTMLVideoElement } }).relaycastDemo?.video.currentTime ?? 0) > 0,
      undefined,
      {
        timeout: 20_000,
      },
    );
    await playFor(page, 14, 60_000);
    const stats = await pageStats(page);
    const full = await page.evaluate(() => (window as unknown as { relaycastDemo: { relaycast: { getStats(): unknown } } }).relaycastDemo.relaycast.getStats());
    const s = full as {
      fallbacks: { byReason: Record<string, number> };
      playback: { startupMs: number };
      startup: { firstSegmentMs: number; firstRelayByteMs: number };
    };
    expect(stats.fatalErrors).toEqual([]);
    expect(stats.rebufferCount).toBe(0);
    // It started without waiting: first segment and first frame before the first relay byte.
    expect(s.fallbacks.byReason['startup']).toBeGreaterThan(0);
    expect(s.startup.firstSegmentMs).toBeLessThan(s.startup.firstRelayByteMs);
    expect(s.playback.startupMs).toBeLessThan(s.startup.firstRelayByteMs);
    // Then relays take over: the bytes of the latest fragments came from them.
    expect(stats.bytesFromRelays).toBeGreaterThan(0);
    expect(stats.integrity.verifiedBytes).toBe(stats.bytesFromRelays);
    // Every fragment hls.js got is the origin's, and none was asked of the origin twice by the viewer.
    expect(stats.fragments.length).toBeGreaterThan(5);
    for (const f of stats.fragments) {
      expect(f.sha256).toBe(sha256(await fileOf(f.url)));
      expect(viewerRequests(f.url)).toBeLessThanOrEqual(1);
    }
    await context.close();
  });

  it('a hedged segment is fetched from the origin at most once: the relay slow to answer is cancelled, the origin serves it whole', async () => {
    await relay('slow', 'slow');
    const client = await connectedClient();
    for (const url of segments.slice(0, 3)) {
      const r = await client.loadSegment({ url, playlistUrl }, { bufferAheadMs: 1_000 });
      expect(sha256(r.data)).toBe(sha256(await fileOf(url)));
      expect(r).toMatchObject({ bytesFromRelay: 0, bytesFromOrigin: r.data.byteLength });
      expect(viewerRequests(url)).toBe(1);
    }
    const stats = client.getStats();
    // Each load either raced and the origin won, or (the first, when the sidecar took longer than the
    // relay's head start) went to the origin at once.
    const { startup, hedge } = stats.fallbacks.byReason;
    expect(startup + hedge).toBe(3);
    expect(hedge).toBeGreaterThanOrEqual(2);
    expect(stats.startup).toMatchObject({ races: hedge, originJoined: hedge, originWon: hedge });
    // Losing races does not cost the relay its connection.
    expect(client.relays.length).toBe(1);
  });

  it('a fast relay wins the race with the buffer empty: the viewer asks the origin at most once and takes the relay bytes, verified', async () => {
    await relay('fast');
    const client = await connectedClient();
    // Warm the relay's cache and the client's digests.
    for (const url of segments.slice(0, 4)) await client.loadSegment({ url, playlistUrl }, { bufferAheadMs: 60_000 });
    origin.requests.length = 0;
    for (const url of segments.slice(0, 4)) {
      const r = await client.loadSegment({ url, playlistUrl }, { bufferAheadMs: 0 });
      expect(sha256(r.data)).toBe(sha256(await fileOf(url)));
      expect(viewerRequests(url)).toBeLessThanOrEqual(1);
    }
    const stats = client.getStats();
    expect(stats.startup.races).toBe(4);
    expect(stats.integrity.verifiedBytes).toBe(stats.bytesFromRelays);
  });

  it('integrity holds on every path: a lying relay never gets a byte to the player, whether it serves alone, races with a head start, or races from zero', async () => {
    await relay('liar', 'flip');
    for (const bufferAheadMs of [undefined, 1_000, 0]) {
      const client = await connectedClient();
      const failures: RelaycastError[] = [];
      client.on('integrity-failure', (e) => failures.push(e));
      // The first load of each client fetches the sidecar (relay-only waits for it; a low buffer goes to the origin).
      for (const url of segments.slice(0, 3)) {
        const r = await client.loadSegment({ url, playlistUrl }, { bufferAheadMs });
        expect(sha256(r.data)).toBe(sha256(await fileOf(url)));
        expect(r.bytesFromRelay).toBe(0);
      }
      const stats = client.getStats();
      expect(stats.integrity.verifiedBytes).toBe(0);
      expect(stats.bytesFromRelays).toBe(0);
      // Where the relay's bytes reached the check, it was caught, and dropped for good.
      for (const e of failures) expect(e.code).toBe(ErrorCode.SEGMENT_INTEGRITY);
      if (bufferAheadMs !== 0) expect(failures.length).toBe(1);
      await client.close();
    }
  });
});
