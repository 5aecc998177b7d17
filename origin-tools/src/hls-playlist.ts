import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { MAX_PLAYLIST_LINES } from './constants.js';

/** The little of an HLS media playlist the relay needs to follow a live stream. */
export interface MediaPlaylist {
  /** EXT-X-TARGETDURATION in seconds (0 when absent). */
  targetDurationSec: number;
  /** EXT-X-MEDIA-SEQUENCE (0 when absent): sequence number of the first segment. */
  mediaSequence: number;
  /** True with EXT-X-ENDLIST (VOD or an ended live stream): nothing new will appear. */
  endList: boolean;
  /** True for a master (multivariant) playlist, which lists variants, not segments. */
  isMaster: boolean;
  /** Segments in playlist order, URIs resolved against the playlist URL. */
  segments: MediaSegment[];
  /** URIs of EXT-X-MAP init segments as written, in order of appearance. */
  initSegmentUris: string[];
}

export interface MediaSegment {
  /** Absolute URL (resolved against the playlist URL; may still be outside the allowlist). */
  url: string;
  /** The URI exactly as the playlist writes it. */
  uri: string;
  sequence: number;
}

/**
 * Parses a media playlist (RFC 8216) leniently: unknown tags are ignored, and so are URIs that do
 * not resolve. Throws RC_ERR_PLAYLIST_INVALID when the text is not a playlist at all.
 */
export function parseMediaPlaylist(text: string, playlistUrl: URL | string): MediaPlaylist {
  const lines = text.split(/\r?\n/, MAX_PLAYLIST_LINES);
  if ((lines[0] ?? '').replace(/^\uFEFF/, '').trim() !== '#EXTM3U') {
    throw new RelaycastError(ErrorCode.PLAYLIST_INVALID, 'playlist does not start with #EXTM3U');
  }
  const playlist: MediaPlaylist = { targetDurationSec: 0, mediaSequence: 0, endList: false, isMaster: false, segments: [], initSegmentUris: [] };
  let sequence: number | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = (lines[i] as string).trim();
    if (line.length === 0) continue;
    if (line.startsWith('#')) {
      if (line.startsWith('#EXT-X-TARGETDURATION:')) {
        playlist.targetDurationSec = nonNegative(line.slice('#EXT-X-TARGETDURATION:'.length));
      } else if (line.startsWith('#EXT-X-MEDIA-SEQUENCE:')) {
        playlist.mediaSequence = Math.floor(nonNegative(line.slice('#EXT-X-MEDIA-SEQUENCE:'.length)));
      } else if (line === '#EXT-X-ENDLIST') {
        playlist.endList = true;
      } else if (line.startsWith('#EXT-X-STREAM-INF:')) {
        playlist.isMaster = true;
      } else if (line.startsWith('#EXT-X-MAP:')) {
        const uri = /URI="([^"]+)"/.exec(line)?.[1];
        if (uri !== undefined && !playlist.initSegmentUris.includes(uri)) playlist.initSegmentUris.push(uri);
      }
      continue;
    }
    // A URI line: in a master playlist it names a variant, not a segment.
    if (playlist.isMaster) continue;
    sequence ??= playlist.mediaSequence;
    let url: string;
    try {
      url = new URL(line, playlistUrl).href;
    } catch {
      sequence++;
      continue;
    }
    playlist.segments.push({ url, uri: line, sequence });
    sequence++;
  }
  return playlist;
}

function nonNegative(text: string): number {
  const v = Number(text.trim());
  return Number.isFinite(v) && v >= 0 ? v : 0;
}
