import { waitFor } from './processes.js';

/** Just enough playlist reading for tests: variant URLs of a master, segment URLs of a media playlist. */

export function variantUrls(masterText: string, masterUrl: string): string[] {
  return masterText
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => new URL(l, masterUrl).href);
}

export interface MediaPlaylistInfo {
  segments: string[];
  initSegment: string | undefined;
  ended: boolean;
}

export function mediaPlaylist(text: string, playlistUrl: string): MediaPlaylistInfo {
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  const segments = lines.filter((l) => l !== '' && !l.startsWith('#')).map((l) => new URL(l, playlistUrl).href);
  const map = lines.find((l) => l.startsWith('#EXT-X-MAP:'));
  const uri = map === undefined ? undefined : /URI="([^"]+)"/.exec(map)?.[1];
  return { segments, initSegment: uri === undefined ? undefined : new URL(uri, playlistUrl).href, ended: lines.includes('#EXT-X-ENDLIST') };
}

/** Waits until the live media playlist at `mediaUrl` lists at least two segments. */
export async function waitForLivePlaylist(mediaUrl: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    'the live playlist',
    async () => {
      const res = await fetch(mediaUrl);
      return res.ok && mediaPlaylist(await res.text(), mediaUrl).segments.length >= 2 ? true : undefined;
    },
    timeoutMs,
    250,
  );
}
