import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { swarmIdFromUrl } from '@relaycast/protocol';
import { cachedVod, linkVod } from './media.js';
import { startOrigin, type OriginServer } from './origin-server.js';
import { startRelayWithStatus, startTrackerProcess, type StatusRelayProc, type TrackerProc } from './processes.js';

/**
 * An unpaid relay serving a VOD as real processes: the cached TS VOD under `dir`/vod/, an HTTP
 * origin over `dir`, a tracker, and a relay (keys/relay.json) allowed the origin's vod/ only, with
 * a status port. More relays on the same tracker and origin with startRelay.
 */
export interface VodRelay {
  dir: string;
  origin: OriginServer;
  tracker: TrackerProc;
  relay: StatusRelayProc;
  /** The VOD's swarm (its master playlist's). */
  swarmId: string;
  /** Another relay (keys/`name`.json) allowed the origin's vod/, with a status port and `extra` flags. */
  startRelay(name: string, extra?: string[]): Promise<StatusRelayProc>;
  /** Closes the origin and removes `dir` (processes are stopped by useProcesses). */
  close(): Promise<void>;
}

/** `tmpPrefix` names the temporary directory; `relayExtra` are the first relay's more flags. */
export async function startVodRelay(tmpPrefix: string, relayExtra: string[] = []): Promise<VodRelay> {
  const dir = await mkdtemp(join(tmpdir(), tmpPrefix));
  await linkVod(await cachedVod({ format: 'ts' }), join(dir, 'vod'));
  const origin = await startOrigin(dir);
  const tracker = await startTrackerProcess();
  const startRelay = (name: string, extra: string[] = []): Promise<StatusRelayProc> =>
    startRelayWithStatus(tracker, { keypair: join(dir, 'keys', `${name}.json`), allowOrigin: [`${origin.url}vod/`], extra });
  const relay = await startRelay('relay', relayExtra);
  return {
    dir,
    origin,
    tracker,
    relay,
    swarmId: swarmIdFromUrl(`${origin.url}vod/master.m3u8`),
    startRelay,
    close: async () => {
      await origin.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
