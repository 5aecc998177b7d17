import { cp, mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';
import { chromium, type Browser, type Page } from 'playwright-core';
import { buildBrowser } from '@relaycast/player-sdk/browser-build';

// The SDK's package folder (examples/, dist/), found the way any dependent would find it.
const SDK_ROOT = dirname(createRequire(import.meta.url).resolve('@relaycast/player-sdk/package.json'));

/** Debian's Chromium (installed by .ci/run); never a browser downloaded by a test tool. */
export const CHROMIUM_PATH = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';

/** Headless Chromium with the flags WebRTC on loopback needs; playwright gives it a fresh profile. */
export async function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-dev-shm-usage',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
    ],
  });
}

/**
 * Copies the example player under `<root>/player/examples/` and builds the SDK's browser bundles
 * (with a copy of hls.js) into `<root>/player/dist/browser/`, where the example's import map looks,
 * so an origin serving `root` serves the page at `player/examples/index.html` (same origin as the media).
 */
export async function preparePlayerSite(root: string): Promise<void> {
  await mkdir(join(root, 'player'), { recursive: true });
  await cp(join(SDK_ROOT, 'examples'), join(root, 'player', 'examples'), { recursive: true });
  await buildBrowser(join(root, 'player', 'dist', 'browser'), { copyHls: true });
}

/** The example page's player URL for a stream served by the same origin. */
export function playerPageUrl(originUrl: string, src: string, trackerUrl: string | undefined): string {
  const q = new URLSearchParams({ src, ...(trackerUrl === undefined ? {} : { tracker: trackerUrl }) });
  return `${originUrl}player/examples/index.html?${q}`;
}

export interface PageStats {
  currentTime: number;
  fatalErrors: string[];
  relayShare: number;
  /** Relay share of the bytes outside the startup policy's origin loads (see StartupStats.originBytes). */
  relayShareAfterStartup: number;
  bytesFromRelays: number;
  bytesFromOrigin: number;
  relays: string[];
  rebufferMs: number;
  rebufferCount: number;
  perRelay: Record<string, { bytes: number; bytesVerified: number; integrityFailures: number }>;
  integrity: { failures: number; verifiedBytes: number; unverifiedBytes: number };
  /** SHA-256 of every media fragment hls.js received (see examples/player.js). */
  fragments: { url: string; sha256: string }[];
}

/** Reads the example page's `window.relaycastDemo`. */
export async function pageStats(page: Page): Promise<PageStats> {
  return page.evaluate(() => {
    type Demo = {
      relaycast: { getStats(): Record<string, unknown> & { playback: { rebufferMs: number; rebufferCount: number } } };
      video: HTMLVideoElement;
      fatalErrors: string[];
      fragments: { url: string; sha256: string }[];
    };
    const d = (window as unknown as { relaycastDemo: Demo }).relaycastDemo;
    const s = d.relaycast.getStats();
    const fromRelays = s['bytesFromRelays'] as number;
    const outside = fromRelays + (s['bytesFromOrigin'] as number) - (s['startup'] as { originBytes: number }).originBytes;
    return {
      currentTime: d.video.currentTime,
      fatalErrors: d.fatalErrors,
      relayShare: s['relayShare'] as number,
      relayShareAfterStartup: outside === 0 ? 0 : fromRelays / outside,
      bytesFromRelays: s['bytesFromRelays'] as number,
      bytesFromOrigin: s['bytesFromOrigin'] as number,
      relays: s['relays'] as string[],
      rebufferMs: s.playback.rebufferMs,
      rebufferCount: s.playback.rebufferCount,
      perRelay: s['perRelay'] as PageStats['perRelay'],
      integrity: s['integrity'] as PageStats['integrity'],
      fragments: d.fragments.map((f) => ({ ...f })),
    };
  });
}

/** Waits until the video has played `seconds` past the first moment it was seen playing. */
export async function playFor(page: Page, seconds: number, timeoutMs = 60_000): Promise<void> {
  await page.waitForFunction(
    () => ((window as unknown as { relaycastDemo?: { video: HTMLVideoElement } }).relaycastDemo?.video.currentTime ?? 0) > 0,
    undefined,
    { timeout: timeoutMs },
  );
  const start = await page.evaluate(() => (window as unknown as { relaycastDemo: { video: HTMLVideoElement } }).relaycastDemo.video.currentTime);
  await page.waitForFunction(
    (t) => (window as unknown as { relaycastDemo: { video: HTMLVideoElement } }).relaycastDemo.video.currentTime > t,
    start + seconds,
    { timeout: timeoutMs, polling: 250 },
  );
}
