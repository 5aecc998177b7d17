import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmIdFromUrl } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { cachedVod, linkVod } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess, stopAll, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { rawJoin } from './helpers/raw-viewer.js';

/**
 * Issue "hardening", faults: the tracker restarting under a playing viewer, and the origin going
 * away behind the relays. Real tracker and relay processes, the SDK in Node.
 */
describe('faults', () => {
  let dir: string;
  let origin: OriginServer | undefined;
  let tracker: TrackerProc;
  const relays: RelayProc[] = [];
  let master: string;
  let variant: string;
  let segments: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-faults-'));
    await linkVod(await cachedVod({ format: 'ts', durationSec: 24 }), join(dir, 'media', 'vod'));
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess(['--heartbeat-interval-ms', '1000']);
    for (const name of ['a', 'b']) relays.push(await startRelayProcess(tracker, { keypair: join(dir, `${name}.json`), allowOrigin: [`${origin.url}media/`] }));
    master = `${origin.url}media/vod/master.m3u8`;
    variant = variantUrls(await (await fetch(master)).text(), master)[0] as string;
    segments = mediaPlaylist(await (await fetch(variant)).text(), variant).segments;
  });

  afterAll(async () => {
    await stopAll();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const file = (url: string): Promise<Buffer> => readFile(join(dir, new URL(url).pathname));

  it('a tracker restart: loads keep coming from relays already connected, relays re-register and viewers rejoin by themselves', async () => {
    const client = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(master), maxRelays: 2 });
    try {
      await client.start();
      expect(client.relays).toHaveLength(2);
      const half = Math.floor(segments.length / 2);
      for (const url of segments.slice(0, half)) await client.loadSegment({ url, playlistUrl: variant });

      const port = tracker.port;
      await tracker.stop('SIGKILL');
      // While the tracker is down, the data channels stay up and keep serving.
      const before = client.getStats().bytesFromRelays;
      for (const url of segments.slice(half)) {
        const r = await client.loadSegment({ url, playlistUrl: variant });
        expect(Buffer.compare(Buffer.from(r.data), await file(url)), url).toBe(0);
      }
      expect(client.getStats().bytesFromRelays).toBeGreaterThan(before);
      expect(client.getStats().fallbacks.byReason['no-relay']).toBe(0);

      tracker = await startTrackerProcess(['--port', String(port), '--heartbeat-interval-ms', '1000']);
      await waitFor('both relays to re-register', async () => ((await tracker.relayIds()).length === 2 ? true : undefined), 30_000, 250);
      await waitFor('the viewer to rejoin the new tracker', async () => ((await tracker.status()).viewers === 1 ? true : undefined), 30_000, 250);
      expect((await rawJoin(tracker.url, swarmIdFromUrl(master))).map((r) => r.relayId).sort()).toEqual(relays.map((r) => r.relayId).sort());
    } finally {
      await client.close();
    }
  });

  it('an origin outage: relays keep serving what they cached, the rest fails with a clear error, nothing crashes', async () => {
    const client = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(master), maxRelays: 2 });
    const other = variantUrls(await (await fetch(master)).text(), master)[1] as string;
    const uncached = mediaPlaylist(await (await fetch(other)).text(), other).segments;
    try {
      await client.start();
      // A viewer mid-playback: it has the stream's digests already (they come from the origin only;
      // a viewer that starts during an outage cannot verify relay bytes and gets the origin's error).
      await client.loadSegment({ url: segments[0] as string, playlistUrl: variant });
      // Every segment of the first variant is in a relay cache by now (the previous test loaded them).
      await origin?.close();
      origin = undefined;
      for (const url of segments) {
        const r = await client.loadSegment({ url, playlistUrl: variant });
        expect(Buffer.compare(Buffer.from(r.data), await file(url)), url).toBe(0);
        expect(r.bytesFromRelay).toBe(r.data.byteLength);
      }
      // Never fetched by any relay: the relay cannot reach the origin, neither can the viewer.
      const err = await client.loadSegment({ url: uncached[0] as string, playlistUrl: other }).then(
        () => undefined,
        (e: { code?: string }) => e,
      );
      expect(err?.code).toBe('RC_ERR_ORIGIN_UNREACHABLE');
      for (const r of relays) expect(r.exited).toBe(false);
      expect((await tracker.relayIds()).sort()).toEqual(relays.map((r) => r.relayId).sort());
    } finally {
      await client.close();
    }
  });
});
