/** Every default of contracts-client, in one place. Units are in the names. */

// --- Embedded chain ---

/** Default RPC port, the same as a local Solana test validator (WebSocket on port + 1). */
export const DEFAULT_CHAIN_PORT = 8899;
/** Interface the chain binds to: loopback only, it is a development chain. */
export const DEFAULT_CHAIN_HOST = '127.0.0.1';
/** One slot per 400 ms, like mainnet's target. */
export const DEFAULT_SLOT_MS = 400;
/** A blockhash is accepted for this many slots after it was issued (a real cluster: 150). */
export const DEFAULT_BLOCKHASH_VALIDITY_SLOTS = 150;
/** Largest airdrop granted by one requestAirdrop call: 1,000 SOL. */
export const DEFAULT_MAX_AIRDROP_LAMPORTS = 1_000_000_000_000;
/** Largest HTTP request body accepted (a transaction is at most 1,232 bytes; batches need more). */
export const DEFAULT_MAX_BODY_BYTES = 64 * 1024;
/** Largest WebSocket message accepted. */
export const DEFAULT_MAX_WS_MESSAGE_BYTES = 64 * 1024;
/** Largest JSON-RPC batch (requests in one array). */
export const DEFAULT_MAX_BATCH_REQUESTS = 64;
/** Requests (HTTP requests, batch entries and WebSocket messages) per second per client IP. */
export const DEFAULT_MAX_REQUESTS_PER_SEC = 2_000;
/** Requests a quiet client may send at once (the rate limiter's burst). */
export const DEFAULT_REQUEST_BURST = 4_000;
/** Client IPs the chain's rate limiter tracks; past it, new clients share one overflow bucket. */
export const CHAIN_RATE_TABLE_MAX_ENTRIES = 4_096;
/** WebSocket connections open at once. */
export const DEFAULT_MAX_WS_CONNECTIONS = 256;
/** Subscriptions open at once on one WebSocket connection. */
export const DEFAULT_MAX_SUBSCRIPTIONS_PER_CONNECTION = 1_024;
/** Bytes a WebSocket may have queued before the server drops it (a reader that never reads). */
export const DEFAULT_MAX_WS_BUFFERED_BYTES = 4 * 1024 * 1024;
/** Transactions kept for getTransaction / getSignaturesForAddress; the oldest are forgotten. */
export const DEFAULT_MAX_HISTORY_TRANSACTIONS = 100_000;
/** getSignaturesForAddress page size when the caller gives none, and the largest allowed (as on a real cluster). */
export const MAX_SIGNATURES_FOR_ADDRESS_LIMIT = 1_000;
/** Accounts per getMultipleAccounts call (as on a real cluster). */
export const MAX_MULTIPLE_ACCOUNTS = 100;
/** Signatures per getSignatureStatuses call (as on a real cluster). */
export const MAX_SIGNATURE_STATUSES = 256;
/** Idle HTTP keep-alive connections are closed after this long. */
export const DEFAULT_HTTP_KEEP_ALIVE_MS = 5_000;
/** Time a client has to send a complete HTTP request. */
export const DEFAULT_HTTP_REQUEST_TIMEOUT_MS = 10_000;
/** Fee per signature, what litesvm charges by default (as mainnet). */
export const LAMPORTS_PER_SIGNATURE = 5_000;
/** Version string getVersion reports (the Agave line litesvm 1.5 runs). */
export const CHAIN_SOLANA_CORE_VERSION = '2.3.0';
/** Attempts to find a free port pair (HTTP p, WebSocket p + 1) when the port is 0. */
export const PORT_PAIR_ATTEMPTS = 50;
/** With port 0, pairs are drawn at random from [START, START + 2 × PAIRS), below Linux's ephemeral range (32768+). */
export const PORT_PAIR_RANGE_START = 20_000;
export const PORT_PAIR_RANGE_PAIRS = 6_000;

// --- Setup CLI ---

/** RPC URL of the setup CLI when --url is not given: the embedded chain on its default port. */
export const DEFAULT_RPC_URL = `http://${DEFAULT_CHAIN_HOST}:${DEFAULT_CHAIN_PORT}`;
/** Decimals of a mint created by `create-mint` when --decimals is not given (USDC has 6). */
export const DEFAULT_MINT_DECIMALS = 6;
/** Commitment the setup CLI waits for. */
export const DEFAULT_COMMITMENT = 'confirmed';
/** Time one setup step (a transaction and its confirmation) may take. */
export const DEFAULT_SETUP_STEP_TIMEOUT_MS = 60_000;

// --- Settlement service (relaycast-settler) ---
// Its wire formats and their limits (body size, items per redeem, clock skew, memo) are in
// @relaycast/protocol/settlement.

/** Interface the settler binds to: loopback unless a reverse proxy or platform network exposes it on purpose. */
export const DEFAULT_SETTLER_HOST = '127.0.0.1';
/** Port of the settler bin when --port is not given. */
export const DEFAULT_SETTLER_PORT = 8788;
/** SQLite ledger file of the settler bin when --db is not given. */
export const DEFAULT_SETTLER_DB_PATH = 'relaycast-settler.sqlite';
/** Token base units per GiB delivered (1 token per GiB at 6 decimals). */
export const DEFAULT_PRICE_PER_GIB = 1_000_000n;
/** Budget of a grant when the authorisation hook names none, base units (10 GiB at the default price). */
export const DEFAULT_GRANT_BUDGET = 10_000_000n;
/** Lifetime of a grant: receipts signed later are refused. */
export const DEFAULT_GRANT_TTL_MS = 6 * 60 * 60 * 1_000;
/** Deadline of one RPC call (or one call plus its confirmation) made by the settler. */
export const DEFAULT_SETTLER_RPC_TIMEOUT_MS = 30_000;
/** Requests per second per client IP on the settler's HTTP API. */
export const DEFAULT_SETTLER_REQUESTS_PER_SEC = 20;
/** Burst on top of the per-second rate (total a quiet client may send at once). */
export const DEFAULT_SETTLER_REQUEST_BURST = 40;
/** Time a client has to send a complete HTTP request to the settler. */
export const DEFAULT_SETTLER_REQUEST_TIMEOUT_MS = 10_000;
/** Redeem requests handled at once (each holds chain calls); more get RC_ERR_RATE_LIMITED. */
export const DEFAULT_SETTLER_MAX_CONCURRENT_REDEEMS = 16;
/** Page size when reading a token account's history (the RPC maximum). */
export const HISTORY_PAGE_SIZE = 1_000;
/** Most transactions read when rebuilding paid-to-date from the chain (a bound, not a target). */
export const DEFAULT_REBUILD_MAX_TRANSACTIONS = 1_000_000;

// --- Settlement service: trust (issue 14) ---

/** Default grants' worth one user may be issued within one budget period (when --user-budget is not given). */
export const USER_BUDGET_GRANTS = 10n;
/** Σ budgets of the grants one user may be issued within one budget period, base units (10 default grants). */
export const DEFAULT_USER_BUDGET = USER_BUDGET_GRANTS * DEFAULT_GRANT_BUDGET;
/** The sliding window a user's budget covers. */
export const DEFAULT_BUDGET_PERIOD_MS = 24 * 60 * 60 * 1_000;
/** Highest delivery rate the settler deems plausible for a grant (written into it): 20 Mbit/s. */
export const DEFAULT_MAX_BITRATE_BPS = 20_000_000;
/** Bytes credited on top of maxBytesPerSec × age (a player's first buffer fill arrives faster than the bitrate). */
export const DEFAULT_PLAUSIBLE_BURST_BYTES = 64 * 1024 * 1024;
/** Receipts of a grant whose expiry (on the settler's clock) is older than this are no longer credited. */
export const DEFAULT_REDEEM_WINDOW_MS = 7 * 24 * 60 * 60 * 1_000;
/** Redeem items (receipts) per second one relay key may have checked, and its burst. */
export const DEFAULT_REDEEM_ITEMS_PER_SEC_PER_RELAY = 100;
export const DEFAULT_REDEEM_ITEM_BURST_PER_RELAY = 2_000;
/** Redeem items per second one address range (/64 IPv6, /32 IPv4) may have checked, and its burst. */
export const DEFAULT_REDEEM_ITEMS_PER_SEC_PER_RANGE = 200;
export const DEFAULT_REDEEM_ITEM_BURST_PER_RANGE = 4_000;
/** Ranges / relay keys a rate table tracks; past it, new clients share one overflow bucket (nobody is evicted). */
export const SETTLER_RATE_TABLE_MAX_ENTRIES = 16_384;
/** Smallest HS256 secret accepted for --grant-auth jwt (RFC 7518 §3.2: at least the hash size). */
export const MIN_GRANT_JWT_SECRET_BYTES = 32;
/** Environment variable holding the HS256 secret of --grant-auth jwt. */
export const GRANT_JWT_SECRET_ENV = 'RELAYCAST_GRANT_JWT_SECRET';
/** Signing domain of the user tag: SHA-256(domain || payer || sub), first 16 bytes. */
export const USER_TAG_DOMAIN = 'relaycast-user-v1\0';
/** How often the settler polls the status of a payout it submitted, and for how long at most. */
export const PAYOUT_WATCH_POLL_MS = 500;
