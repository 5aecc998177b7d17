import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RELAY_STATUS_PATHS } from '@relaycast/protocol';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, preparePlayerSite } from './helpers/browser.js';
import { generateVod } from './helpers/media.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess, stopAll, type TrackerProc } from './helpers/processes.js';

/** hls.js sorts levels by bitrate: 0 is the low rendition, 1 the high one. */
const LOW = 0;
const HIGH = 1;

async function freeTcpPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function fragmentLevels(page: Page): Promise<number[]> {
  return page.evaluate(() => (window as unknown as { relaycastDemo: { fragmentLevels: number[] } }).relaycastDemo.fragmentLevels.slice());
}

/** Waits until `count` consecutive fragments were loaded at `level`, after the first `from` fragments. */
async function waitForLevel(page: Page, level: number, from: number, count = 2, timeoutMs = 60_000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const levels = (await fragmentLevels(page)).slice(from);
    for (let i = 0; i + count <= levels.length; i++) {
      if (levels.slice(i, i + count).every((l) => l === level)) return from + i + count;
    }
    if (Date.now() > deadline) throw new Error(`no ${count} fragments at level ${level} after #${from}: ${levels.join(',')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

/**
 * Issue "viewers play HLS in a real browser", must-show 3: hls.js ABR still works through relays
 * because the loader reports real timings. One relay whose upload cap is changed while playing.
 */
describe('ABR through a throttled relay', () => {
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let statusUrl: string;
  let browser: Browser;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-abr-'));
    await generateVod(join(dir, 'media', 'vod'), {
      format: 'ts',
      durationSec: 90,
      renditions: [
        { name: 'high', width: 640, height: 360, videoKbps: 1600 },
        { name: 'low', width: 320, height: 180, videoKbps: 150 },
      ],
    });
    await preparePlayerSite(dir);
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess();
    const statusPort = await freeTcpPort();
    statusUrl = `http://127.0.0.1:${statusPort}`;
    await startRelayProcess(tracker, {
      keypair: join(dir, 'keys', 'r.json'),
      allowOrigin: [`${origin.url}media/`],
      extra: ['--status-port', String(statusPort)],
    });
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await stopAll();
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function setCap(bytesPerSec: number): Promise<void> {
    const res = await fetch(`${statusUrl}${RELAY_STATUS_PATHS.limits}`, { method: 'PUT', body: JSON.stringify({ maxUploadBytesPerSec: bytesPerSec }) });
    expect(res.status).toBe(200);
  }

  it('switches down when the relay is throttled below the top rendition and back up when the throttle is lifted', async () => {
    const page = await browser.newPage();
    try {
      const src = `${origin.url}media/vod/master.m3u8`;
      await page.goto(`${origin.url}player/examples/index.html?${new URLSearchParams({ src, tracker: tracker.url })}`);
      // Unthrottled loopback: ABR climbs to the top rendition.
      let mark = await waitForLevel(page, HIGH, 0);
      // ~60 KB/s is well below the top rendition (~1.7 Mbit/s ≈ 210 KB/s) and above the low one.
      await setCap(60_000);
      mark = await waitForLevel(page, LOW, mark);
      await setCap(0);
      await waitForLevel(page, HIGH, mark);
      const stats = await page.evaluate(() => {
        const d = (
          window as unknown as { relaycastDemo: { relaycast: { getStats(): { bytesFromRelays: number; bytesFromOrigin: number } }; fatalErrors: string[] } }
        ).relaycastDemo;
        return { ...d.relaycast.getStats(), fatalErrors: d.fatalErrors };
      });
      expect(stats.fatalErrors).toEqual([]);
      // The low-rendition phase was decided on relay timings, not origin ones.
      expect(stats.bytesFromRelays).toBeGreaterThan(stats.bytesFromOrigin);
      const served = (await (await fetch(`${statusUrl}${RELAY_STATUS_PATHS.status}`)).json()) as { bytesServed: number };
      expect(served.bytesServed).toBeGreaterThan(0);
    } finally {
      await page.close();
    }
  });
});
