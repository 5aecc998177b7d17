/**
 * A live HLS player reduced to what the offload bench measures: it reads the media playlist from
 * the origin, starts three segments behind the live edge (hls.js's default liveSyncDurationCount),
 * loads segments one after another through a RelaycastClient, and plays them against the wall
 * clock: startup time is join → first segment loaded, a rebuffer is the buffer running dry.
 */
import type { RelaycastClient } from '@relaycast/player-sdk';

export interface SimPlayerOptions {
  client: RelaycastClient;
  mediaUrl: string;
  /** Segments behind the live edge to start at. Default: 3 (hls.js liveSyncDurationCount). */
  liveSyncSegments?: number | undefined;
  /** Playlist reload interval while waiting for a new segment. Default: 1000 ms (half a 2 s target duration). */
  reloadMs?: number | undefined;
}

export interface SegmentLoad {
  /** Wall time the load started (performance.now()). */
  startedAt: number;
  bytesFromRelay: number;
  bytesFromOrigin: number;
}

export interface PlayerResult {
  startupMs: number;
  rebuffers: number;
  rebufferMs: number;
  loads: SegmentLoad[];
  /** Loads that failed on the relay and the origin alike. */
  failedLoads: number;
}

interface Entry {
  url: string;
  durationSec: number;
}

function parseMedia(text: string, base: string): Entry[] {
  const out: Entry[] = [];
  let duration = 0;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith('#EXTINF:')) duration = Number.parseFloat(line.slice(8));
    else if (line !== '' && !line.startsWith('#')) out.push({ url: new URL(line, base).href, durationSec: duration });
  }
  return out;
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const t = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });

/** Plays until `signal` aborts; `joinedAt` is when the viewer arrived (before the client started). */
export async function playLive(options: SimPlayerOptions, joinedAt: number, signal: AbortSignal): Promise<PlayerResult> {
  const { client, mediaUrl } = options;
  const reloadMs = options.reloadMs ?? 1000;
  const loads: SegmentLoad[] = [];
  let failedLoads = 0;
  let startupMs = Number.NaN;
  let rebuffers = 0;
  let rebufferMs = 0;
  /** Wall time at which the buffer runs dry while playing. */
  let dryAt = Number.NaN;
  let lastUrl: string | undefined;
  while (!signal.aborted) {
    let entries: Entry[];
    try {
      const res = await fetch(mediaUrl, { signal });
      entries = parseMedia(await res.text(), mediaUrl);
    } catch {
      if (signal.aborted) break;
      await sleep(reloadMs, signal);
      continue;
    }
    const from = lastUrl === undefined ? Math.max(0, entries.length - (options.liveSyncSegments ?? 3)) : entries.findIndex((e) => e.url === lastUrl) + 1;
    // A player that fell out of the sliding window jumps back to the live edge.
    const next = lastUrl !== undefined && from === 0 ? entries.slice(-1) : entries.slice(from);
    if (next.length === 0) {
      await sleep(reloadMs, signal);
      continue;
    }
    for (const e of next) {
      if (signal.aborted) break;
      const startedAt = performance.now();
      try {
        // What a player tells the SDK: the media still buffered ahead (the startup policy's input).
        const bufferAheadMs = Number.isNaN(dryAt) ? 0 : Math.max(0, dryAt - startedAt);
        const r = await client.loadSegment({ url: e.url, playlistUrl: mediaUrl, live: true }, { signal, bufferAheadMs });
        loads.push({ startedAt, bytesFromRelay: r.bytesFromRelay, bytesFromOrigin: r.bytesFromOrigin });
      } catch {
        if (signal.aborted) break;
        failedLoads++;
      }
      lastUrl = e.url;
      const now = performance.now();
      if (Number.isNaN(startupMs)) {
        startupMs = now - joinedAt;
        dryAt = now + e.durationSec * 1000;
      } else if (now > dryAt) {
        rebuffers++;
        rebufferMs += now - dryAt;
        dryAt = now + e.durationSec * 1000;
      } else {
        dryAt += e.durationSec * 1000;
      }
    }
  }
  // Still stalled when the viewer leaves: that rebuffer counts too.
  const end = performance.now();
  if (!Number.isNaN(dryAt) && end > dryAt) {
    rebuffers++;
    rebufferMs += end - dryAt;
  }
  return { startupMs, rebuffers, rebufferMs, loads, failedLoads };
}
