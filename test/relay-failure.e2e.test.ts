import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmIdFromUrl } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { generateVod } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess, stopAll, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { rawJoin } from './helpers/raw-viewer.js';

const HEARTBEAT_INTERVAL_MS = 500;
const HEARTBEAT_TIMEOUT_MS = 1_500;

/** Issue "segments flow…", must-show 2: a relay dies in the middle of a segment transfer. */
describe('relay failure mid-segment', () => {
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let relays: RelayProc[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-failure-'));
    await generateVod(join(dir, 'vod'), { format: 'ts', durationSec: 12 });
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess([
      '--heartbeat-interval-ms', String(HEARTBEAT_INTERVAL_MS),
      '--heartbeat-timeout-ms', String(HEARTBEAT_TIMEOUT_MS),
    ]);
    relays = [];
    // Slow uplinks (~150 KB/s) make a ~200 KB segment take over a second, so a kill lands mid-transfer.
    for (const name of ['a', 'b']) {
      relays.push(
        await startRelayProcess(tracker, {
          keypair: join(dir, 'keys', `${name}.json`),
          allowOrigin: [origin.url],
          extra: ['--max-upload-bytes-per-sec', '150000'],
        }),
      );
    }
  });

  afterAll(async () => {
    await stopAll();
    await origin?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('finishes every segment byte-identical and the tracker stops handing out the dead relay', async () => {
    const masterUrl = `${origin.url}vod/master.m3u8`;
    const client = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(masterUrl), stallTimeoutMs: 800, ttfbTimeoutMs: 1_500 });
    await client.start();
    try {
      expect(client.relays).toHaveLength(2);
      const variant = variantUrls(await (await fetch(masterUrl)).text(), masterUrl)[0] as string;
      const { segments } = mediaPlaylist(await (await fetch(variant)).text(), variant);
      let killed: RelayProc | undefined;
      let killedDuring: string | undefined;
      for (const [i, url] of segments.entries()) {
        const before = client.getStats().perRelay;
        const result = await client.loadSegment(
          { url, playlistUrl: variant },
          {
            onProgress: (_chunk, loaded) => {
              if (i !== 1 || killed !== undefined || loaded === 0) return;
              // The relay whose byte count moved is the one serving this segment: kill it now.
              const now = client.getStats().perRelay;
              const serving = relays.find((r) => (now[r.relayId]?.bytes ?? 0) > (before[r.relayId]?.bytes ?? 0));
              if (serving === undefined) return;
              killed = serving;
              killedDuring = url;
              serving.child.kill('SIGKILL');
            },
          },
        );
        const file = await readFile(join(dir, new URL(url).pathname));
        expect(Buffer.compare(Buffer.from(result.data), file), url).toBe(0);
        if (url === killedDuring) {
          expect(result.bytesFromRelay).toBeGreaterThan(0);
          expect(result.bytesFromRelay).toBeLessThan(file.length);
        }
      }
      expect(killed).toBeDefined();
      const dead = (killed as RelayProc).relayId;
      const stats = client.getStats();
      expect(stats.fallbacks.count).toBeGreaterThanOrEqual(1);
      expect(stats.segments).toBe(segments.length);

      // Within the heartbeat timeout the tracker neither lists nor hands out the dead relay.
      const t0 = Date.now();
      await waitFor('tracker to drop the dead relay', async () =>
        (await tracker.status()).relays.some((r) => r.relayId === dead) ? undefined : true,
      HEARTBEAT_TIMEOUT_MS + 1_000, 50);
      expect(Date.now() - t0).toBeLessThanOrEqual(HEARTBEAT_TIMEOUT_MS + 1_000);
      const shortlist = await rawJoin(tracker.url, swarmIdFromUrl(masterUrl));
      expect(shortlist.map((r) => r.relayId)).not.toContain(dead);
      expect(shortlist.length).toBe(1);
    } finally {
      await client.close();
    }
  });
});
