import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmIdFromUrl } from '@relaycast/protocol';
import type { RelaycastClient } from '@relaycast/player-sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { cachedVod, linkVod } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { startRelayProcess, startTrackerProcess, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';
import { rawJoin } from './helpers/raw-viewer.js';

const HEARTBEAT_INTERVAL_MS = 500;
const HEARTBEAT_TIMEOUT_MS = 1_500;
/** The tracker checks for silent relays periodically; allow one heartbeat interval on top plus scheduling slack. */
const EVICTION_BOUND_MS = HEARTBEAT_TIMEOUT_MS + HEARTBEAT_INTERVAL_MS + 500;
/** Slow relay uplinks (~150 KB/s) make a 360p segment (~200 KB) take over a second: a kill lands mid-transfer. */
const RELAY_UPLOAD_BYTES_PER_SEC = 150_000;

interface Eviction {
  /** Milliseconds from the failure until the tracker's /status stopped listing the relay. */
  done: Promise<number>;
}

/** Polls the tracker from the moment of the failure until the relay is gone from /status. */
function watchEviction(tracker: TrackerProc, relayId: string, failedAt: number): Eviction {
  return {
    done: waitFor(`tracker to drop ${relayId}`, async () => ((await tracker.relayIds()).includes(relayId) ? undefined : Date.now() - failedAt), 20_000, 25),
  };
}

/**
 * Issue 2, must-show 2: a relay fails in the middle of a segment transfer. The client finishes
 * every segment intact, and the tracker stops handing the relay out within its heartbeat timeout.
 */
describe('relay failure mid-segment', () => {
  useProcesses();
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  const relays: RelayProc[] = [];
  let masterUrl: string;
  let variant: string;
  let segments: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-failure-'));
    await linkVod(await cachedVod({ format: 'ts' }), join(dir, 'vod'));
    origin = await startOrigin(dir);
    tracker = await startTrackerProcess(['--heartbeat-interval-ms', String(HEARTBEAT_INTERVAL_MS), '--heartbeat-timeout-ms', String(HEARTBEAT_TIMEOUT_MS)]);
    for (const name of ['a', 'b']) relays.push(await startSlowRelay(name));
    masterUrl = `${origin.url}vod/master.m3u8`;
    variant = variantUrls(await (await fetch(masterUrl)).text(), masterUrl)[0] as string;
    segments = mediaPlaylist(await (await fetch(variant)).text(), variant).segments;
  });

  afterAll(async () => {
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  function startSlowRelay(name: string): Promise<RelayProc> {
    return startRelayProcess(tracker, {
      keypair: join(dir, 'keys', `${name}.json`),
      allowOrigin: [origin.url],
      extra: ['--max-upload-bytes-per-sec', String(RELAY_UPLOAD_BYTES_PER_SEC)],
    });
  }

  async function newClient(): Promise<RelaycastClient> {
    const c = nodeClient({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(masterUrl), stallTimeoutMs: 800, ttfbTimeoutMs: 1_500 });
    await c.start();
    return c;
  }

  /**
   * Loads every segment of the variant; during segment `failAt`, once the first relay bytes of it
   * have arrived, `fail` is applied to the relay serving it. Checks every segment against the file.
   */
  async function loadAllFailingOne(client: RelaycastClient, failAt: number, fail: (relay: RelayProc) => void) {
    let failed: { relay: RelayProc; at: number; url: string; relayBytesBefore: number } | undefined;
    let failedResult: { bytesFromRelay: number; bytesFromOrigin: number; deadRelayBytes: number; size: number } | undefined;
    for (const [i, url] of segments.entries()) {
      const file = await readFile(join(dir, new URL(url).pathname));
      const before = client.getStats().perRelay;
      const result = await client.loadSegment(
        { url, playlistUrl: variant },
        {
          onProgress: (_chunk, loaded) => {
            if (i !== failAt || failed !== undefined || loaded === 0 || loaded >= file.length) return;
            // The relay whose byte count moved during this segment is the one serving it.
            const now = client.getStats().perRelay;
            const serving = relays.find((r) => (now[r.relayId]?.bytes ?? 0) > (before[r.relayId]?.bytes ?? 0));
            if (serving === undefined) return;
            failed = { relay: serving, at: Date.now(), url, relayBytesBefore: before[serving.relayId]?.bytes ?? 0 };
            fail(serving);
          },
        },
      );
      expect(result.data.byteLength, url).toBe(file.length);
      expect(Buffer.compare(Buffer.from(result.data), file), url).toBe(0);
      if (failed !== undefined && failed.url === url) {
        const deadRelayBytes = (client.getStats().perRelay[failed.relay.relayId]?.bytes ?? 0) - failed.relayBytesBefore;
        failedResult = { bytesFromRelay: result.bytesFromRelay, bytesFromOrigin: result.bytesFromOrigin, deadRelayBytes, size: file.length };
      }
    }
    if (failed === undefined || failedResult === undefined) throw new Error(`no relay bytes arrived during segment ${failAt}: nothing was failed`);
    // The failure really landed mid-transfer: the failed relay sent part of the segment, the rest came from elsewhere.
    expect(failedResult.deadRelayBytes).toBeGreaterThan(0);
    expect(failedResult.deadRelayBytes).toBeLessThan(failedResult.size);
    expect(failedResult.bytesFromRelay + failedResult.bytesFromOrigin).toBe(failedResult.size);
    if (failedResult.bytesFromOrigin > 0 && failedResult.bytesFromOrigin < failedResult.size) {
      // Resumed from the origin with a Range from the bytes already received.
      const path = new URL(failed.url).pathname;
      const resumes = origin.requests.filter((r) => r.path === path && r.relayId === undefined && r.range !== undefined);
      expect(resumes.map((r) => r.range)).toContain(`bytes=${failedResult.size - failedResult.bytesFromOrigin}-`);
    }
    return failed;
  }

  it('a killed relay: every segment finishes byte-identical and the tracker stops handing it out', async () => {
    const client = await newClient();
    try {
      expect(client.relays).toHaveLength(2);
      let eviction: Eviction | undefined;
      const failed = await loadAllFailingOne(client, 1, (relay) => {
        relay.child.kill('SIGKILL');
        eviction = watchEviction(tracker, relay.relayId, Date.now());
      });
      const stats = client.getStats();
      expect(stats.segments).toBe(segments.length);
      expect(stats.fallbacks.count).toBeGreaterThanOrEqual(1);
      expect(stats.perRelay[failed.relay.relayId]?.failures).toBeGreaterThanOrEqual(1);

      expect(await (eviction as Eviction).done).toBeLessThanOrEqual(EVICTION_BOUND_MS);
      const shortlist = (await rawJoin(tracker.url, swarmIdFromUrl(masterUrl))).map((r) => r.relayId);
      expect(shortlist).not.toContain(failed.relay.relayId);
      expect(shortlist).toHaveLength(1);
      // A viewer that joins now is served by the survivor.
      const fresh = await newClient();
      try {
        expect(fresh.relays).not.toContain(failed.relay.relayId);
        const url = segments[0] as string;
        const result = await fresh.loadSegment({ url, playlistUrl: variant });
        expect(Buffer.compare(Buffer.from(result.data), await readFile(join(dir, new URL(url).pathname)))).toBe(0);
        expect(result.bytesFromRelay).toBe(result.data.byteLength);
      } finally {
        await fresh.close();
      }
    } finally {
      await client.close();
    }
    await Promise.all(relays.splice(0).map((r) => r.stop('SIGKILL')));
  });

  it('a frozen relay (socket open, no heartbeats): the client falls back and the tracker evicts it on heartbeat timeout', async () => {
    for (const name of ['c', 'd']) relays.push(await startSlowRelay(name));
    await waitFor('only the new relays in /status', async () => ((await tracker.relayIds()).length === 2 ? true : undefined), 10_000);
    const client = await newClient();
    let frozen: RelayProc | undefined;
    try {
      expect(client.relays).toHaveLength(2);
      let eviction: Eviction | undefined;
      const failed = await loadAllFailingOne(client, 2, (relay) => {
        frozen = relay;
        relay.child.kill('SIGSTOP');
        eviction = watchEviction(tracker, relay.relayId, Date.now());
      });
      expect(client.getStats().segments).toBe(segments.length);
      const evictedAfter = await (eviction as Eviction).done;
      expect(evictedAfter).toBeGreaterThanOrEqual(HEARTBEAT_TIMEOUT_MS - HEARTBEAT_INTERVAL_MS);
      expect(evictedAfter).toBeLessThanOrEqual(EVICTION_BOUND_MS);
      expect((await rawJoin(tracker.url, swarmIdFromUrl(masterUrl))).map((r) => r.relayId)).not.toContain(failed.relay.relayId);
    } finally {
      await client.close();
      if (frozen !== undefined) frozen.child.kill('SIGKILL');
    }
  });
});
