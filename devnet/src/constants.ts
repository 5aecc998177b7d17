/** Every default of `npm start`, in one place. Units are in the names. */

/** The page, the API and the origin (media) share this port: the one URL printed. */
export const DEFAULT_WEB_PORT = 8080;
export const DEFAULT_TRACKER_PORT = 8000;
export const DEFAULT_CHAIN_PORT = 8899;
export const DEFAULT_SETTLER_PORT = 8090;
/** Relay i (0-based) serves its local status interface on this + i. */
export const DEFAULT_RELAY_STATUS_PORT_BASE = 8101;
export const DEFAULT_RELAY_COUNT = 3;
/** Most relays one devnet runs (each is a process and a status port). */
export const MAX_RELAY_COUNT = 16;
/** Where keys, media, databases and logs live (relative to the working directory). */
export const DEFAULT_STATE_DIR = '.relaycast-devnet';
/** Sample VOD length and segment duration. */
export const SAMPLE_VOD_DURATION_SEC = 60;
export const SAMPLE_SEGMENT_SEC = 2;
/** The live stream runs for this long before ffmpeg has to be restarted (a day). */
export const SAMPLE_LIVE_DURATION_SEC = 24 * 3600;
/**
 * A child that has not said it is ready within this is a failed start. Generous: each bin compiles
 * its TypeScript on load (tsx), which took 35 s for a relay on a 2-core machine at load 20.
 */
export const CHILD_READY_TIMEOUT_MS = 120_000;
/** SIGTERM, then SIGKILL after this. */
export const CHILD_STOP_GRACE_MS = 5_000;
/** /api/network polls relays, tracker and chain no more often than this. */
export const NETWORK_SNAPSHOT_MIN_INTERVAL_MS = 500;
/** Largest body accepted on the API. */
export const MAX_API_BODY_BYTES = 4 * 1024;

// --- Payments on the embedded chain ---

/** Decimals of the sample token (like USDC). */
export const SAMPLE_MINT_DECIMALS = 6;
/** Tokens minted into the treasury on the first start. */
export const SAMPLE_TREASURY_TOKENS = 1_000_000n;
/** Price written into grants: 100 tokens per GiB, so a few minutes of video earn visible amounts. */
export const SAMPLE_PRICE_PER_GIB = 100n * 10n ** 6n;
/**
 * Budget of each grant, summed over every relay (100 tokens = 1 GiB at SAMPLE_PRICE_PER_GIB: hours
 * of the sample video, so a page left open keeps paying its relays). The settler's per-user budget
 * is set to the same: under --grant-auth open every grant is its own user.
 */
export const SAMPLE_GRANT_BUDGET = 100n * 10n ** 6n;
/** Relays redeem once they are owed this much (0.001 token), checked every REDEEM_INTERVAL_MS. */
export const SAMPLE_REDEEM_THRESHOLD = 1_000n;
export const SAMPLE_REDEEM_INTERVAL_MS = 5_000;
