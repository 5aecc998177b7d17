/** Every default of the relay, in one place. Units are in the names. */

// --- Origin side (allowlist, fetch, cache, coalescing, live prefetch) ---

/** Segment cache capacity (complete segments only). */
export const DEFAULT_CACHE_MAX_BYTES = 256 * 1024 * 1024;
/** Largest number of entries the segment cache holds, whatever their size. */
export const DEFAULT_CACHE_MAX_ENTRIES = 16_384;
/** A segment larger than this fraction of the cache is streamed but not cached (it would evict too much). */
export const CACHE_MAX_ENTRY_FRACTION = 0.125;
/** Largest segment the relay downloads; also the bound of one in-flight download's buffer. */
export const DEFAULT_MAX_SEGMENT_BYTES = 32 * 1024 * 1024;
/** Largest media playlist the relay downloads. */
export const DEFAULT_MAX_PLAYLIST_BYTES = 1024 * 1024;
/** Time the origin has to send response headers. */
export const DEFAULT_ORIGIN_TIMEOUT_MS = 10_000;
/** Longest silence allowed between two body chunks from the origin. */
export const DEFAULT_ORIGIN_BODY_TIMEOUT_MS = 15_000;
/** Time allowed to open a TCP/TLS connection to the origin. */
export const DEFAULT_ORIGIN_CONNECT_TIMEOUT_MS = 5_000;
/** Redirect hops followed per origin request (each hop is checked against the allowlist). */
export const DEFAULT_MAX_REDIRECTS = 3;
/** Keep-alive connections per origin host. */
export const DEFAULT_ORIGIN_CONNECTIONS_PER_HOST = 8;
/** Distinct origin hosts the undici agent keeps pools for. */
export const DEFAULT_ORIGIN_MAX_HOSTS = 64;
/** Idle keep-alive connection lifetime towards the origin. */
export const DEFAULT_ORIGIN_KEEP_ALIVE_MS = 30_000;
/** Concurrent origin downloads (viewer-driven and prefetch together); more opens get RC_ERR_RELAY_OVERLOADED. */
export const DEFAULT_MAX_INFLIGHT_DOWNLOADS = 32;
/** Live prefetch is on by default. */
export const DEFAULT_LIVE_POLLING_ENABLED = true;
/** A live playlist is followed for this long after its last viewer request. */
export const DEFAULT_LIVE_VIEWER_IDLE_MS = 30_000;
/** Live playlists followed at once; the least recently requested is dropped beyond it. */
export const DEFAULT_MAX_FOLLOWED_PLAYLISTS = 32;
/** Newest segments of a followed live playlist kept prefetched. */
export const DEFAULT_PREFETCH_SEGMENTS = 3;
/** Bounds of the live poll interval (targetDuration / 2 clamped to these). */
export const DEFAULT_LIVE_POLL_MIN_MS = 500;
export const DEFAULT_LIVE_POLL_MAX_MS = 10_000;
/** How long a requested playlist stays advertised to the tracker after its last viewer request. */
export const DEFAULT_ADVERTISE_TTL_MS = 5 * 60_000;

// --- Viewer side (transport, channel server, tracker client, node, CLI) ---

/** Open WebRTC peers per relay; offers beyond get RC_ERR_RELAY_OVERLOADED. */
export const DEFAULT_MAX_PEERS = 512;
/** Data channels one viewer peer may open (a viewer needs one). */
export const DEFAULT_MAX_CHANNELS_PER_PEER = 4;
/** Local ICE candidates a peer keeps to replay to late listeners; a relay gathers a handful. */
export const MAX_LOCAL_CANDIDATES_PER_PEER = 64;
/** Largest SCTP message the relay accepts and advertises, in bytes. */
export const DEFAULT_RTC_MAX_MESSAGE_BYTES = 256 * 1024;
/** Longest wait when closing the transport for data channels to flush before connections are cut. */
export const DEFAULT_TRANSPORT_CLOSE_TIMEOUT_MS = 2_000;
/** Pending (not yet connected) peers per relay; offers beyond are refused. */
export const DEFAULT_MAX_PENDING_PEERS = 64;
/** A peer that has not opened a data channel within this time is closed. */
export const DEFAULT_PEER_CONNECT_TIMEOUT_MS = 20_000;
/** Above this many queued bytes a channel stops producing until the low-water event. */
export const DEFAULT_CHANNEL_HIGH_WATER_BYTES = 1024 * 1024;
/** Low-water threshold that resumes sending. */
export const DEFAULT_CHANNEL_LOW_WATER_BYTES = 256 * 1024;
/**
 * Queued bytes beyond which a channel is dropped: only control frames bypass the high-water mark,
 * so reaching this means a viewer keeps sending requests while never reading.
 */
export const DEFAULT_CHANNEL_HARD_LIMIT_BYTES = 8 * 1024 * 1024;
/** Concurrent requests per viewer channel; more get RC_ERR_RELAY_OVERLOADED. */
export const DEFAULT_MAX_REQUESTS_PER_CHANNEL = 8;
/** Relay-wide upload cap in bytes per second; 0 means unlimited. */
export const DEFAULT_MAX_UPLOAD_BYTES_PER_SEC = 0;
/** Concurrent viewer sessions advertised to the tracker. */
export const DEFAULT_CAPACITY = 100;
/** Region label advertised to the tracker ('' = unspecified). */
export const DEFAULT_REGION = '';
/** Advertised price in token base units per GiB. */
export const DEFAULT_PRICE_PER_GIB = 0n;
/** Largest capacity and load the tracker protocol accepts in a heartbeat. */
export const MAX_REPORTED_LOAD = 1_000_000;
/** First tracker reconnect delay; doubles per failed attempt, with jitter. */
export const DEFAULT_RECONNECT_MIN_MS = 500;
/** Longest tracker reconnect delay. */
export const DEFAULT_RECONNECT_MAX_MS = 15_000;
/** Time the tracker WebSocket handshake may take. */
export const DEFAULT_TRACKER_HANDSHAKE_TIMEOUT_MS = 10_000;
/** Largest message accepted from the tracker (a few KB by protocol; some slack for a newer tracker). */
export const TRACKER_CLIENT_MAX_PAYLOAD_BYTES = 64 * 1024;
/** Time the graceful shutdown waits for in-flight segments. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

// --- Payments (grants, receipts, redemption) ---

/** Delivered-but-unreceipted bytes (origin bytes fetched for it included) a bound paying session may owe before new requests are refused. */
export const DEFAULT_CREDIT_LIMIT_BYTES = 32 * 1024 * 1024;
/**
 * Bytes (served plus origin bytes fetched for it) a channel not yet bound by BIND may take: enough
 * for a first segment while the viewer's SDK signs the challenge, small enough that a channel that
 * never binds costs little. Charged to the session the channel then binds to.
 */
export const DEFAULT_UNBOUND_CREDIT_BYTES = 4 * 1024 * 1024;
/** A receipt the settler found implausible (too many bytes for the grant's age yet) is sent again after this. */
export const DEFAULT_IMPLAUSIBLE_RETRY_MS = 5 * 60_000;
/** GRANT + RECEIPT frames one channel may send per second (the SDK sends about one receipt per segment). */
export const DEFAULT_PAYMENT_FRAMES_PER_SEC = 20;
/** Payment frames a quiet channel may send at once. */
export const DEFAULT_PAYMENT_FRAME_BURST = 40;
/** Paying sessions kept in memory; sessions without an open channel are forgotten first (their receipts stay in the store). */
export const DEFAULT_MAX_PAYING_SESSIONS = 50_000;
/** Receipt database file name, created beside the keypair file unless --db says otherwise. */
export const DEFAULT_RECEIPTS_DB_FILE = 'relay-receipts.sqlite';
/** Owed amount (token base units, all payers) past which the relay redeems on its own. */
export const DEFAULT_REDEEM_THRESHOLD = 1_000_000n;
/** How often the relay checks whether it is owed more than the threshold. */
export const DEFAULT_REDEEM_INTERVAL_MS = 60_000;
/** Time one settlement service request may take. */
export const DEFAULT_SETTLER_TIMEOUT_MS = 15_000;
/** Largest settlement service response read (a payout transaction is about 1 KiB). */
export const SETTLER_MAX_RESPONSE_BYTES = 256 * 1024;
/** Time one Solana RPC call may take. */
export const DEFAULT_RPC_TIMEOUT_MS = 15_000;
/** Attempts per settlement / RPC step before redeem gives up with RC_ERR_SETTLEMENT_UNAVAILABLE. */
export const DEFAULT_REDEEM_ATTEMPTS = 5;
/** First retry delay of a failed settlement / RPC step; doubles per attempt, with jitter. */
export const DEFAULT_REDEEM_RETRY_MIN_MS = 500;
/** Longest retry delay. */
export const DEFAULT_REDEEM_RETRY_MAX_MS = 10_000;
/** Poll interval while waiting for a payout to confirm. */
export const PAYOUT_CONFIRM_POLL_MS = 400;
/** Longest wait for one payout to confirm or expire; past it the payout stays recorded as pending and the next redemption resumes it. */
export const DEFAULT_PAYOUT_CONFIRM_TIMEOUT_MS = 120_000;
/** A submitted payout is re-sent this often while it is neither confirmed nor expired. */
export const PAYOUT_RESEND_MS = 2_000;

// --- Port mapping on the home router (--map-port) ---

/** Lease asked of the gateway for the UDP --rtc-port mapping; short so a crashed relay's mapping lapses soon. */
export const DEFAULT_PORT_MAPPING_TTL_MS = 10 * 60_000;
/** The mapping is renewed once this fraction of its lease has passed. */
export const PORT_MAPPING_RENEW_FRACTION = 0.5;
/** Time allowed to find a UPnP or NAT-PMP gateway, and for each add, renew or remove call. */
export const DEFAULT_PORT_MAPPING_TIMEOUT_MS = 10_000;

// --- Public address discovery (STUN) ---

/**
 * Time one STUN server has to answer a Binding request (DNS lookup and retransmissions included)
 * before the next server is tried. A healthy server answers in one round trip; 3 s rides out a
 * couple of lost datagrams without holding up the relay's start for long.
 */
export const DEFAULT_STUN_TIMEOUT_MS = 3_000;
/** First STUN retransmission delay; doubles after each send (RFC 8489 §6.2.1), bounded by the timeout. */
export const STUN_FIRST_RETRANSMIT_MS = 250;
/** Port of a `stun:host` URL without one (RFC 7064). */
export const DEFAULT_STUN_PORT = 3478;

/** Once a NAT-PMP gateway answers, a UPnP IGD still has this long to answer and be preferred. */
export const PORT_MAPPING_UPNP_GRACE_MS = 2_000;

// --- Trust (issue 14): origin amplification, offers, candidates -------------------------------

/** Query strings are not part of the segment cache key (see OriginSourceOptions.cacheKeyQuery). */
export const DEFAULT_CACHE_KEY_QUERY = 'ignore' as const;
/** Relay-wide origin bytes per second (token bucket): 32 MiB/s ≈ 268 Mbit/s. */
export const DEFAULT_ORIGIN_RELAY_BYTES_PER_SEC = 32 * 1024 * 1024;
/** Relay-wide origin burst: 128 MiB (four maximum-size segments). */
export const DEFAULT_ORIGIN_RELAY_BURST_BYTES = 128 * 1024 * 1024;
/** Origin bytes per second one channel may cause with cache misses: 4 MiB/s ≈ 34 Mbit/s (an HD stream is 5-8 Mbit/s). */
export const DEFAULT_ORIGIN_CHANNEL_BYTES_PER_SEC = 4 * 1024 * 1024;
/** Origin burst of one channel: 32 MiB (one maximum-size segment, or a quick start over several small ones). */
export const DEFAULT_ORIGIN_CHANNEL_BURST_BYTES = 32 * 1024 * 1024;
/** Channels whose origin-fetch rate is tracked at once (refilled buckets are dropped first). */
export const DEFAULT_MAX_ORIGIN_RATE_KEYS = 4_096;
/** Peers one viewer (tracker peer id) may have negotiating at once; more offers get RC_ERR_OFFER_LIMIT. */
export const DEFAULT_MAX_PENDING_PEERS_PER_VIEWER = 2;
/** Remote candidates kept per peer (a viewer sending thousands would only make ICE work for nothing). */
export const MAX_REMOTE_CANDIDATES_PER_PEER = 32;
