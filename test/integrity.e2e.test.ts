import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, decodeDigestSidecar, digestSidecarUrl, swarmIdFromUrl, type RelaycastError } from '@relaycast/protocol';
import type { Browser } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, pageStats, playFor, playerPageUrl, preparePlayerSite } from './helpers/browser.js';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { cachedVod, linkVod } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startMediaRelay, startTrackerProcess, stopAll, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { rawJoin } from './helpers/raw-viewer.js';
import { testPayer } from './helpers/test-payer.js';

/**
 * Issue "every relay-delivered segment is verified; bad relays are caught and never paid": relays
 * started from the test-only relaycast-faulty-relay bin (`--test-fault`) lie about segments, and real viewers (headless
 * Chromium with hls.js, and the SDK in Node) must play the origin's bytes only, count each
 * failure, report the relay, and make the tracker stop handing it out.
 */
describe('segment integrity end to end', () => {
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let browser: Browser | undefined;
  const relays: RelayProc[] = [];
  /** Vouches for SDK viewers' sessions: only their reports count (issue 14 finding 3). */
  const payer = testPayer();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-integrity-'));
    await linkVod(await cachedVod({ format: 'ts', durationSec: 16 }), join(dir, 'media', 'vod'));
    // The same VOD published without digests, and with a broken sidecar.
    await linkVod(await cachedVod({ format: 'ts', durationSec: 16, digests: false }), join(dir, 'media', 'unsigned'));
    const broken = await cachedVod({ format: 'ts', durationSec: 16, digests: false });
    await cp(broken.dir, join(dir, 'media', 'broken'), { recursive: true });
    for (const r of broken.renditions) await writeFile(join(dir, 'media', 'broken', r.name, 'index.m3u8.digests.json'), '{"version":1,"algorithm":"sha1"');
    await preparePlayerSite(dir);
    origin = await startOrigin(dir);
    // Every viewer here is on loopback, one address range: let three users of it count.
    tracker = await startTrackerProcess(['--trusted-payer', payer.payerId, '--max-reporters-per-range', '3']);
  });

  afterEach(async () => {
    await Promise.all(relays.splice(0).map((r) => r.stop('SIGKILL')));
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

  /** Every rendition's sidecar, as absolute segment URL → SHA-256, read from the origin over HTTP. */
  async function publishedDigests(stream: string): Promise<Map<string, string>> {
    const master = `${origin.url}media/${stream}/master.m3u8`;
    const out = new Map<string, string>();
    for (const variant of variantUrls(await (await fetch(master)).text(), master)) {
      const sidecarUrl = digestSidecarUrl(variant);
      const sidecar = decodeDigestSidecar(await (await fetch(sidecarUrl)).text());
      for (const [uri, digest] of Object.entries(sidecar.segments)) out.set(new URL(uri, sidecarUrl).href, digest);
    }
    return out;
  }

  async function segmentsOf(stream: string): Promise<{ variant: string; segments: string[] }> {
    const master = `${origin.url}media/${stream}/master.m3u8`;
    const variant = variantUrls(await (await fetch(master)).text(), master)[0] as string;
    return { variant, segments: mediaPlaylist(await (await fetch(variant)).text(), variant).segments };
  }

  const fileOf = (url: string): Promise<Buffer> => readFile(join(dir, new URL(url).pathname));
  const healthOf = async (relayId: string): Promise<number | undefined> => (await tracker.status()).relays.find((r) => r.relayId === relayId)?.health;

  it('flipped bytes: Chromium plays only origin-identical fragments, counts the failures; its anonymous report counts for nothing, three users with grants get the relay excluded', async () => {
    const bad = await relay('flipper', 'flip:2');
    const digests = await publishedDigests('vod');
    browser = await launchChromium();
    const page = await browser.newPage();
    try {
      await page.goto(playerPageUrl(origin.url, `${origin.url}media/vod/master.m3u8`, tracker.url));
      await playFor(page, 4);
      await page.waitForFunction(
        () => {
          const d = (window as unknown as { relaycastDemo: { relaycast: { getStats(): { integrity: { failures: number } } } } }).relaycastDemo;
          return d.relaycast.getStats().integrity.failures >= 1;
        },
        undefined,
        { timeout: 30_000 },
      );
      await page.waitForFunction(() =>
        (window as unknown as { relaycastDemo: { fragments: { sha256: string }[] } }).relaycastDemo.fragments.every((f) => f.sha256 !== ''),
      );
      const s = await pageStats(page);
      expect(s.fatalErrors).toEqual([]);
      expect(s.integrity.failures).toBeGreaterThanOrEqual(1);
      expect(s.perRelay[bad.relayId]?.integrityFailures).toBe(s.integrity.failures);
      // The relay served good segments too (every other one is corrupted) before it was dropped.
      expect(s.perRelay[bad.relayId]?.bytesVerified).toBeGreaterThan(0);
      expect(s.integrity.verifiedBytes).toBe(s.bytesFromRelays);
      expect(s.relays).not.toContain(bad.relayId);
      // Every fragment hls.js received is the origin's: corrupted ones were replaced before hand-over.
      expect(s.fragments.length).toBeGreaterThanOrEqual(4);
      for (const f of s.fragments) expect(f.sha256, f.url).toBe(digests.get(f.url));
      // Each corrupted segment was fetched again by the viewer from the origin.
      const viewerFetches = origin.requests.filter((r) => r.relayId === undefined && r.path.endsWith('.ts')).length;
      expect(viewerFetches).toBeGreaterThanOrEqual(s.integrity.failures);
      await page.screenshot({ path: join(dir, 'integrity.png') });
    } finally {
      await page.close();
    }

    // The browser viewer has no grant: its report is refused and the relay keeps full health.
    const swarmId = swarmIdFromUrl(`${origin.url}media/vod/master.m3u8`);
    await new Promise((r) => setTimeout(r, 500));
    expect(await healthOf(bad.relayId)).toBe(1);
    expect((await tracker.status()).relays.find((r) => r.relayId === bad.relayId)?.reporters).toBe(0);

    // SDK viewers (in Node) with grants of three distinct users each meet a corrupted segment and
    // report it; below three users nothing moves, at three the relay is no longer handed out.
    const { variant, segments } = await segmentsOf('vod');
    for (let n = 1; n <= 3; n++) {
      const client = nodeClient({ trackerUrl: tracker.url, swarmId, payments: payer.payments() });
      const failures: RelaycastError[] = [];
      client.on('integrity-failure', (e) => failures.push(e));
      try {
        await client.start();
        for (const url of segments) {
          const result = await client.loadSegment({ url, playlistUrl: variant });
          expect(Buffer.compare(Buffer.from(result.data), await fileOf(url)), url).toBe(0);
        }
        expect(failures.length).toBe(1);
        expect(failures[0]?.code).toBe(ErrorCode.SEGMENT_INTEGRITY);
        expect(client.getStats().integrity.failures).toBe(1);
      } finally {
        await client.close();
      }
      await waitFor(
        `report ${n} counted`,
        async () => ((await tracker.status()).relays.find((r) => r.relayId === bad.relayId)?.reporters === n ? true : undefined),
        10_000,
      );
      if (n < 3) {
        expect(await healthOf(bad.relayId)).toBe(1);
        expect((await rawJoin(tracker.url, swarmId)).map((r) => r.relayId)).toContain(bad.relayId);
      }
    }
    await waitFor('the relay health to reach 0', async () => ((await healthOf(bad.relayId)) === 0 ? true : undefined), 10_000);
    expect((await rawJoin(tracker.url, swarmId)).map((r) => r.relayId)).not.toContain(bad.relayId);
  });

  for (const fault of ['truncate', 'extend'] as const) {
    it(`a relay that ${fault === 'truncate' ? 'truncates segments' : 'appends bytes'} (announcing the size to match) is caught; every segment is the origin's`, async () => {
      const bad = await relay(`${fault}-relay`, fault);
      const { variant, segments } = await segmentsOf('vod');
      const client = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(`${origin.url}media/vod/master.m3u8`) });
      try {
        await client.start();
        expect(client.relays).toEqual([bad.relayId]);
        for (const url of segments) {
          const result = await client.loadSegment({ url, playlistUrl: variant });
          expect(Buffer.compare(Buffer.from(result.data), await fileOf(url)), url).toBe(0);
        }
        const stats = client.getStats();
        expect(stats.integrity.failures).toBe(1);
        expect(stats.fallbacks.byReason.integrity).toBe(1);
        expect(stats.perRelay[bad.relayId]).toMatchObject({ bytes: 0, bytesVerified: 0, integrityFailures: 1 });
        expect(stats.bytesFromRelays).toBe(0);
        expect(stats.bytesDiscarded).toBeGreaterThan(0);
      } finally {
        await client.close();
      }
    });
  }

  it('no sidecar: relays are refused by default and used under audit; a malformed sidecar is an error event, not a crash', async () => {
    const honest = await relay('honest');
    const unsigned = await segmentsOf('unsigned');
    const refuse = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(`${origin.url}media/unsigned/master.m3u8`) });
    const audit = nodeClient({
      trackerUrl: tracker.url,
      swarmId: swarmIdFromUrl(`${origin.url}media/unsigned/master.m3u8`),
      integrity: { noDigestPolicy: 'audit', auditFraction: 1 },
    });
    const broken = await segmentsOf('broken');
    const malformed = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(`${origin.url}media/broken/master.m3u8`) });
    const errors: RelaycastError[] = [];
    malformed.on('error', (e) => errors.push(e));
    try {
      await Promise.all([refuse.start(), audit.start(), malformed.start()]);
      for (const url of unsigned.segments) {
        const a = await refuse.loadSegment({ url, playlistUrl: unsigned.variant });
        const b = await audit.loadSegment({ url, playlistUrl: unsigned.variant });
        const file = await fileOf(url);
        expect(Buffer.compare(Buffer.from(a.data), file), url).toBe(0);
        expect(Buffer.compare(Buffer.from(b.data), file), url).toBe(0);
        expect(a.fallbackReason).toBe('no-digest');
        expect(b.bytesFromRelay).toBe(file.length);
      }
      const n = unsigned.segments.length;
      expect(refuse.getStats()).toMatchObject({ bytesFromRelays: 0, integrity: { segmentsWithoutDigest: n } });
      expect(refuse.getStats().fallbacks.byReason['no-digest']).toBe(n);
      expect(audit.getStats().integrity).toMatchObject({ audits: n, failures: 0, segmentsWithoutDigest: n });
      expect(audit.getStats().perRelay[honest.relayId]?.bytesVerified).toBe(audit.getStats().bytesFromRelays);

      for (const url of broken.segments) {
        const r = await malformed.loadSegment({ url, playlistUrl: broken.variant });
        expect(Buffer.compare(Buffer.from(r.data), await fileOf(url)), url).toBe(0);
        expect(r.fallbackReason).toBe('no-digest');
      }
      expect(errors.length).toBeGreaterThanOrEqual(1);
      expect(new Set(errors.map((e) => e.code))).toEqual(new Set([ErrorCode.DIGEST_SIDECAR_INVALID]));
      // The relay is unharmed by any of this.
      expect(await healthOf(honest.relayId)).toBe(1);
    } finally {
      await Promise.all([refuse.close(), audit.close(), malformed.close()]);
    }
  });
});
