// Origin operators' tooling: publishes what relays must deliver, needs none of the relay's native modules.
export { DigestWriter, type DigestScanResult, type DigestWriterOptions } from './digest-writer.js';
export { parseMediaPlaylist, type MediaPlaylist, type MediaSegment } from './hls-playlist.js';
export { MAX_PLAYLIST_LINES } from './constants.js';
