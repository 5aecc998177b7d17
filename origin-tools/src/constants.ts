/** Largest number of lines parsed from one media playlist: bounds the parser's work on hostile input. */
export const MAX_PLAYLIST_LINES = 20_000;
/** pino level of `relaycast-digest` unless `--log-level` says otherwise. */
export const DEFAULT_LOG_LEVEL = 'info';
