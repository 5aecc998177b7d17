import { utf8Length } from './bytes.js';
import { ErrorCode, RelaycastError } from './errors.js';

/**
 * Segment digests an origin publishes next to each media playlist, so viewers can check bytes
 * that strangers' relays delivered. One JSON sidecar per media playlist, named after it
 * (`index.m3u8` → `index.m3u8.digests.json`), mapping each segment URI exactly as the playlist
 * writes it (init segments included) to the SHA-256 of the file, in lowercase hex.
 *
 * ```json
 * { "version": 1, "algorithm": "sha256", "playlist": "index.m3u8",
 *   "segments": { "seg000.ts": "9f86d0…", "init.mp4": "…" } }
 * ```
 */
export const DIGEST_SIDECAR_VERSION = 1;
/** Appended to a media playlist's URL to name its sidecar. */
export const DIGEST_SIDECAR_SUFFIX = '.digests.json';
/** Largest sidecar accepted: ~10,000 segments of long names. */
export const MAX_DIGEST_SIDECAR_BYTES = 2 * 1024 * 1024;
/** Most segments one sidecar may list. */
export const MAX_DIGEST_ENTRIES = 20_000;

/** The parsed sidecar file (format above). */
export interface DigestSidecar {
  version: typeof DIGEST_SIDECAR_VERSION;
  algorithm: 'sha256';
  /** File name of the media playlist the digests belong to. */
  playlist: string;
  /** Segment URI (as written in the playlist) → SHA-256, lowercase hex. */
  segments: Record<string, string>;
}

const HEX_SHA256 = /^[0-9a-f]{64}$/;

function invalid(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.DIGEST_SIDECAR_INVALID, message);
}

/**
 * URL of the sidecar for a media playlist URL (query and fragment dropped).
 * Throws RC_ERR_CONFIG_INVALID when the URL is not absolute and parseable.
 */
export function digestSidecarUrl(mediaPlaylistUrl: string): string {
  let u: URL;
  try {
    u = new URL(mediaPlaylistUrl);
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'media playlist URL must be an absolute URL', { cause: err });
  }
  u.search = '';
  u.hash = '';
  return `${u.href}${DIGEST_SIDECAR_SUFFIX}`;
}

/** The sidecar's JSON text, as written beside the playlist. */
export function encodeDigestSidecar(sidecar: DigestSidecar): string {
  return `${JSON.stringify(sidecar, null, 1)}\n`;
}

/** Parses and validates a sidecar; throws RC_ERR_DIGEST_SIDECAR_INVALID on any defect. */
export function decodeDigestSidecar(text: string): DigestSidecar {
  if (utf8Length(text) > MAX_DIGEST_SIDECAR_BYTES) throw invalid(`sidecar over ${MAX_DIGEST_SIDECAR_BYTES} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw invalid('sidecar is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw invalid('sidecar must be an object');
  const o = parsed as Record<string, unknown>;
  if (o['version'] !== DIGEST_SIDECAR_VERSION) throw invalid(`unsupported sidecar version ${String(o['version'])}`);
  if (o['algorithm'] !== 'sha256') throw invalid('algorithm must be sha256');
  if (typeof o['playlist'] !== 'string' || o['playlist'].length === 0 || o['playlist'].length > 1024) throw invalid('playlist must be a file name');
  const segs = o['segments'];
  if (typeof segs !== 'object' || segs === null || Array.isArray(segs)) throw invalid('segments must be an object');
  const entries = Object.entries(segs as Record<string, unknown>);
  if (entries.length > MAX_DIGEST_ENTRIES) throw invalid(`more than ${MAX_DIGEST_ENTRIES} segments`);
  const segments: Record<string, string> = {};
  for (const [uri, digest] of entries) {
    if (uri.length === 0 || uri.length > 2048) throw invalid('segment URI must be 1-2048 characters');
    if (typeof digest !== 'string' || !HEX_SHA256.test(digest)) throw invalid(`digest of ${uri.slice(0, 64)} is not 64 lowercase hex characters`);
    // A plain assignment to "__proto__" would set the prototype and silently drop that segment's digest.
    Object.defineProperty(segments, uri, { value: digest, enumerable: true, writable: true, configurable: true });
  }
  return { version: DIGEST_SIDECAR_VERSION, algorithm: 'sha256', playlist: o['playlist'], segments };
}
