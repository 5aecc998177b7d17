import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pageStats, playFor, playerPageUrl, preparePlayerSite } from './helpers/browser.js';
import { generateVod, startLiveStream, type LiveStream } from './helpers/media.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcesses, startTrackerProcess, stopAll, type RelayProc, type TrackerProc } from './helpers/processes.js';

const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));

/**
 * Issue "viewers play HLS in a real browser through relays": headless Chromium runs the example
 * page (hls.js + the SDK's browser bundle) against real relay and tracker processes.
 */
describe('browser playback through relays', () => {
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let relays: RelayProc[];
  let live: LiveStream;
  let browser: Browser;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-browser-'));
    live = await startLiveStream(join(dir, 'media', 'live'), { durationSec: 120 });
    await Promise.all([
      generateVod(join(dir, 'media', 'vod-ts'), { format: 'ts', durationSec: 24 }),
      generateVod(join(dir, 'media', 'vod-fmp4'), { format: 'fmp4', durationSec: 24 }),
    ]);
    await preparePlayerSite(dir);
    await mkdir(ARTIFACTS, { recursive: true });
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess();
    relays = await startRelayProcesses(tracker, join(dir, 'keys'), ['a', 'b'], { allowOrigin: [`${origin.url}media/`] });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await live?.stop();
    await stopAll();
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  function pageUrl(stream: string, withTracker = true): string {
    return playerPageUrl(origin.url, `${origin.url}media/${stream}`, withTracker ? tracker.url : undefined);
  }

  for (const [name, stream] of [
    ['VOD MPEG-TS', 'vod-ts/master.m3u8'],
    ['VOD fMP4', 'vod-fmp4/master.m3u8'],
    ['live', `live/${'master.m3u8'}`],
  ] as const) {
    it(`plays ${name} through two relays with at least 90% of media bytes from relays once started`, async () => {
      const page = await browser.newPage();
      try {
        await page.goto(pageUrl(stream));
        await playFor(page, 10);
        const s = await pageStats(page);
        await page.screenshot({ path: join(ARTIFACTS, `playback-${name.replace(/\W+/g, '-').toLowerCase()}.png`) });
        expect(s.fatalErrors).toEqual([]);
        expect(s.relays).toHaveLength(2);
        expect(s.bytesFromRelays).toBeGreaterThan(0);
        // The first segments come from the origin while relays connect (the startup policy, issue 17).
        expect(s.relayShareAfterStartup).toBeGreaterThanOrEqual(0.9);
      } finally {
        await page.close();
      }
    });
  }

  it('keeps playing with under 1 s of rebuffering when a relay is killed mid-playback', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(pageUrl('live/master.m3u8'));
      await playFor(page, 6);
      const before = await pageStats(page);
      expect(before.relays).toHaveLength(2);
      const victim = relays[0] as RelayProc;
      await victim.stop('SIGKILL');
      const killedAt = await pageStats(page);
      await playFor(page, 3);
      // Anything in flight from the dead relay has settled by now; from here on it must serve nothing.
      const settled = (await pageStats(page)).perRelay[victim.relayId]?.bytes ?? 0;
      await playFor(page, 10);
      const after = await pageStats(page);
      await page.screenshot({ path: join(ARTIFACTS, 'playback-after-relay-kill.png') });
      expect(after.fatalErrors).toEqual([]);
      expect(after.rebufferMs).toBeLessThan(1_000);
      expect(after.perRelay[victim.relayId]?.bytes ?? 0).toBe(settled);
      const served = after.bytesFromRelays + after.bytesFromOrigin - (killedAt.bytesFromRelays + killedAt.bytesFromOrigin);
      expect(served).toBeGreaterThan(0);
    } finally {
      await page.close();
    }
  });

  it('plays from the origin like plain hls.js when no relay is available', async () => {
    const page = await browser.newPage();
    try {
      // A tracker with no relays registered.
      const empty = await startTrackerProcess();
      const src = `${origin.url}media/vod-ts/master.m3u8`;
      await page.goto(`${origin.url}player/examples/index.html?${new URLSearchParams({ src, tracker: empty.url })}`);
      await playFor(page, 10);
      const s = await pageStats(page);
      expect(s.fatalErrors).toEqual([]);
      expect(s.bytesFromRelays).toBe(0);
      expect(s.bytesFromOrigin).toBeGreaterThan(0);
      await empty.stop();
    } finally {
      await page.close();
    }
  });
});
