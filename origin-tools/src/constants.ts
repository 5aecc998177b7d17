/** Largest number of lines parsed from one media playlist: bounds the parser's work on hostile input. */
export const MAX_PLAYLIST_LINES = 20_000;
/** `relaycast-digest --watch` rescans this often: a live segment gets its digest within this of being written. */
export const DEFAULT_WATCH_INTERVAL_MS = 500;
