/** Every default of the player SDK, in one place. Units are in the names. */

/** Warm relay connections kept per stream (the design's "best 2-3"). */
export const DEFAULT_MAX_RELAYS = 2;
export const MAX_RELAYS_LIMIT = 3;
/** Relays asked for in a join: spares replace failed connections without another round trip. */
export const DEFAULT_SHORTLIST_SIZE = 5;
/** A relay must deliver its first byte within this, or the origin takes over. */
export const DEFAULT_TTFB_TIMEOUT_MS = 1_500;
/** No bytes for this long in the middle of a transfer counts as a stall. */
export const DEFAULT_STALL_TIMEOUT_MS = 2_000;
/** WebRTC setup (offer to open data channel) must finish within this. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** A shortlist must arrive within this after a join. */
export const DEFAULT_JOIN_TIMEOUT_MS = 5_000;
/** The tracker must say hello within this after the socket was created, or the socket is dropped. */
export const DEFAULT_HELLO_TIMEOUT_MS = 10_000;
/** Joins for a fresh shortlist are at least this far apart (the tracker rate-limits too). */
export const DEFAULT_REJOIN_INTERVAL_MS = 3_000;
/** With fewer warm relays than wanted, the manager tries again after this (doubling up to the max). */
export const DEFAULT_REFILL_RETRY_MIN_MS = 1_000;
export const DEFAULT_REFILL_RETRY_MAX_MS = 30_000;
/** Tracker reconnect backoff. */
export const DEFAULT_RECONNECT_MIN_MS = 500;
export const DEFAULT_RECONNECT_MAX_MS = 15_000;
/** A relay whose connection failed is not retried for this long. */
export const DEFAULT_RELAY_BACKOFF_MS = 30_000;
/** Requests in flight on one relay connection. */
export const DEFAULT_MAX_REQUESTS_PER_RELAY = 6;
/** Largest segment the SDK accepts from any source. */
export const DEFAULT_MAX_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Pending signaling messages buffered per connection before its answer arrives. */
export const MAX_PENDING_CANDIDATES = 64;
/** hls.js adapter: relay TTFB deadline bounds and the share of the buffer ahead it may use. */
export const DEFAULT_MIN_TTFB_TIMEOUT_MS = 400;
export const DEFAULT_MAX_TTFB_TIMEOUT_MS = 3_000;
export const TTFB_SHARE_OF_BUFFER = 0.25;
/**
 * Startup policy (startup-policy.ts): below this buffer ahead, ms of media, loads never wait for
 * relays. Under one 2 s segment: measured (startup bench, 10 runs) 4,000 gave 0.91-0.93 relay share
 * over a 60 s live view (the second segment went to the origin too), 1,500 gave 0.97.
 */
export const DEFAULT_LOW_BUFFER_MS = 1_500;
export const MAX_LOW_BUFFER_MS = 60_000;
/** Startup policy: the origin joins a relay's race after at most this long without a relay byte, ms. */
export const DEFAULT_HEDGE_DELAY_MS = 300;
export const MAX_HEDGE_DELAY_MS = 5_000;
/** hls.js adapter: relay connections begin at the first frame, or this long after the manifest started loading, ms. */
export const DEFAULT_RELAYS_AT_LATEST_MS = 3_000;

// --- Integrity ---

/** What to do with relay bytes of a segment the origin publishes no digest for. */
export const DEFAULT_NO_DIGEST_POLICY = 'refuse';
/** Under the `audit` policy, share of digest-less relay segments checked against the origin's copy. */
export const DEFAULT_AUDIT_FRACTION = 0.1;
/** A segment newer than its playlist's sidecar waits this long for its digest. */
export const DEFAULT_DIGEST_WAIT_MS = 2_000;
/** A sidecar is refetched for a missing digest at most this often. */
export const DEFAULT_DIGEST_REFETCH_MS = 250;
/** An absent or invalid sidecar is asked for again after this. */
export const DEFAULT_DIGEST_ABSENT_RETRY_MS = 30_000;
/** One sidecar fetch may take this long. */
export const DEFAULT_SIDECAR_TIMEOUT_MS = 5_000;
/** First wait before a sidecar that failed (or, on a live playlist, was absent) is asked for again, ms; at most half a target duration. */
export const DEFAULT_SIDECAR_RETRY_MIN_MS = 500;
/** Longest wait between those retries, ms (on a live playlist also at most one target duration). */
export const DEFAULT_SIDECAR_RETRY_MAX_MS = 4_000;
/** Sidecars (media playlists) kept at once; the oldest is dropped first. */
export const MAX_SIDECARS_CACHED = 16;
/** Relays that failed verification are never used again by this client; at most this many remembered. */
export const MAX_BANNED_RELAYS = 256;

// --- Payments ---

/** One grant request may take this long. */
export const DEFAULT_GRANT_TIMEOUT_MS = 10_000;
/** A grant is renewed when less than this is left of its lifetime. */
export const GRANT_RENEW_BEFORE_MS = 60_000;
/** Relays with running receipt totals remembered at most. */
export const MAX_RECEIPT_ACCOUNTS = 256;
/** Tracker assignments (one per relay handed to this viewer) remembered at most. */
export const MAX_ASSIGNMENTS_KEPT = 256;
/** The tracker must answer a `turn` question within this. */
export const DEFAULT_TURN_TIMEOUT_MS = 5_000;
