/**
 * Issue 17, the startup policy's race: with a low buffer a relay and the origin race for each
 * segment and the first byte wins. A relay that lies its way into winning (it sends a first byte at
 * once, then nothing) could hold every low-buffer load for itself. What bounds it: the stall timeout
 * hands the rest of the segment to the origin (Range after the relay's bytes), the relay gets a
 * strike per stall and is dropped after two, and only the prefix it really delivered (and that
 * verified inside the whole segment) can ever be credited to it.
 *
 * Real processes: a tracker bin and the test-only faulty relay bin (`--test-fault tease`: 1 KiB,
 * then 30 s of silence); the viewer is the Node SDK.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmIdFromUrl } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaPlaylist, variantUrls } from '../helpers/hls.js';
import { cachedVod, linkVod } from '../helpers/media.js';
import { nodeClient } from '../helpers/node-client.js';
import { startOrigin, type OriginServer } from '../helpers/origin-server.js';
import { startMediaRelay, startTrackerProcess, waitFor, type TrackerProc } from '../helpers/processes.js';
import { useProcesses } from '../helpers/use-processes.js';

/** The relay faults' `tease` prefix (relay/src/testing/faulty-segment-source.ts). */
const TEASE_BYTES = 1_024;

describe('attack 12: a relay that wins races and stalls', () => {
  useProcesses();
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack12-'));
    await linkVod(await cachedVod({ format: 'ts', durationSec: 16 }), join(dir, 'media', 'vod'));
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess();
  });

  afterAll(async () => {
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('every low-buffer load still delivers the origin bytes; the relay is dropped after two stalls and credited its real prefixes at most', async () => {
    const relay = await startMediaRelay(tracker, dir, origin.url, 'teaser', 'tease');
    const master = `${origin.url}media/vod/master.m3u8`;
    const playlistUrl = variantUrls(await (await fetch(master)).text(), master)[0] as string;
    const segments = mediaPlaylist(await (await fetch(playlistUrl)).text(), playlistUrl).segments;
    // A relay gets 300 ms alone in a race at 3 s of buffer: time enough for its first byte.
    const client = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(master), startup: { lowBufferMs: 4_000, hedgeDelayMs: 400 } });
    try {
      await client.start(AbortSignal.timeout(20_000));
      await waitFor('the relay connection', () => client.relays.includes(relay.relayId), 15_000);
      // The first load fetches the sidecar (no digest at hand: straight to the origin).
      for (const url of segments) {
        const r = await client.loadSegment({ url, playlistUrl }, { bufferAheadMs: 3_000 });
        const file = await readFile(join(dir, new URL(url).pathname));
        expect(createHash('sha256').update(r.data).digest('hex'), url).toBe(createHash('sha256').update(file).digest('hex'));
      }
      const stats = client.getStats();
      expect(stats.fallbacks.byReason.stall).toBe(2);
      expect(client.relays).not.toContain(relay.relayId);
      expect(stats.perRelay[relay.relayId]?.bytesVerified ?? 0).toBeLessThanOrEqual(2 * TEASE_BYTES);
      expect(stats.integrity.failures).toBe(0);
    } finally {
      await client.close();
    }
  });
});
