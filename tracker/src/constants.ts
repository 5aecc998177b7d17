/** Every default of the tracker, in one place. Units are in the names. */

/** Library default host: loopback, so nothing is exposed by accident. */
export const DEFAULT_TRACKER_HOST = '127.0.0.1';
/** Library default port: 0 lets the OS pick a free one (tests, embedding). */
export const DEFAULT_TRACKER_PORT = 0;
/** Port the CLI listens on when `--port` is not given. */
export const DEFAULT_CLI_PORT = 8000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
/** A relay silent for this many heartbeat intervals is evicted. */
export const DEFAULT_HEARTBEAT_TIMEOUT_FACTOR = 3;
/** Ping interval used to drop dead sockets (a socket that misses one pong is terminated). */
export const DEFAULT_PING_INTERVAL_MS = 15_000;
/** Grace period for WebSocket close handshakes at shutdown before sockets are terminated. */
export const DEFAULT_CLOSE_GRACE_MS = 1_000;

// --- Limits ---

/**
 * ws closes a socket whose frame exceeds this. Below it, a message over MAX_TRACKER_MESSAGE_BYTES
 * gets an RC_ERR_MESSAGE_TOO_LARGE reply and the connection stays up, so a client bug is visible
 * instead of a bare close.
 */
export const DEFAULT_HARD_MAX_PAYLOAD_BYTES = 64 * 1024;
export const DEFAULT_MAX_CONNECTIONS = 20_000;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
/** Token bucket per connection: sustained rate. */
export const DEFAULT_RATE_LIMIT_PER_SEC = 50;
/** Token bucket per connection: burst size. */
export const DEFAULT_RATE_LIMIT_BURST = 100;
/**
 * A registered relay forwards the answer and ICE candidates (a dozen messages) of every viewer that
 * connects to it: 1,000/s lets ~80 viewers connect per second per relay while still bounding a
 * relay key that floods.
 */
export const DEFAULT_RELAY_RATE_LIMIT_PER_SEC = 1_000;
export const DEFAULT_RELAY_RATE_LIMIT_BURST = 2_000;
/** Rate-limited (dropped) messages after which a connection is closed: 5 × the burst. */
export const DEFAULT_MAX_DROPPED_MESSAGES = 5 * DEFAULT_RATE_LIMIT_BURST;
export const DEFAULT_MAX_VIEWERS_PER_SWARM = 10_000;
/** Swarms one viewer connection is a member of at once; joining one more leaves the oldest. */
export const DEFAULT_MAX_SWARMS_PER_VIEWER = 8;
/**
 * Relays remembered as handed to one viewer (the signaling allow-list); the oldest are forgotten
 * first. One full shortlist (MAX_SHORTLIST_SIZE, 16): a viewer is never handed more relays at once
 * than one join can ask for (issue 14 finding 8: one connection could be assigned 64 relays).
 */
export const DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER = 16;
/**
 * Relays newly handed to one viewer connection per minute (re-joining the same swarm returns the
 * same relays and costs nothing). An honest player replaces a failed relay a few times a minute at
 * most; 32 is two full shortlists.
 */
export const DEFAULT_MAX_RELAYS_HANDED_PER_MINUTE = 32;
/**
 * Joins per address range (IPv4 /24, IPv6 /48) per minute, all connections together (token bucket,
 * this also the burst); a pre-warm in a connection's URL counts as a join. Each join ranks every
 * registered relay, and a fresh connection starts with a fresh per-connection budget, so without it
 * one host opening and closing sockets would get shortlists as fast as it can connect. An honest
 * viewer joins once per tracker connection and a few times a minute when its relays fail: 1,200 is
 * hundreds of viewers behind one NAT starting within the same minute.
 */
export const DEFAULT_MAX_JOINS_PER_RANGE_PER_MINUTE = 1_200;
/**
 * Offers one viewer connection may have pending (forwarded within DEFAULT_PENDING_OFFER_WINDOW_MS)
 * at once, over all relays. The SDK opens one peer connection per shortlisted relay (3 by default)
 * and retries a failed one once.
 */
export const DEFAULT_MAX_PENDING_OFFERS_PER_VIEWER = 8;
/**
 * How long a forwarded offer counts as pending: the relay holds a peer that has not connected for
 * this long (relay DEFAULT_PEER_CONNECT_TIMEOUT_MS, 20 s) before it frees the slot.
 */
export const DEFAULT_PENDING_OFFER_WINDOW_MS = 20_000;
/**
 * Offers pending to one relay from one address range (IPv4 /24, IPv6 /48): half the relay's
 * pending-peer slots (relay DEFAULT_MAX_PENDING_PEERS, 64), so one range cannot fill them all.
 */
export const DEFAULT_MAX_PENDING_OFFERS_PER_RANGE = 32;
/** Registered relays per address range (IPv4 /24, IPv6 /48): fake relays from one host cannot crowd selection. */
export const DEFAULT_MAX_RELAYS_PER_RANGE = 8;
/**
 * `session` messages one connection may send per minute (token bucket, this also the burst): one
 * per grant, and the SDK renews grants before they expire (an hour or more). Each costs two
 * signature checks and up to 16 signatures, so they are not left to the general message rate.
 */
export const SESSION_REQUESTS_PER_MINUTE = 6;
/** Address ranges remembered by the per-range rate tables (least recently seen forgotten first). */
export const DEFAULT_MAX_TRACKED_RANGES = 100_000;
/** Outgoing bytes queued on one socket before it is dropped as a slow consumer. */
export const DEFAULT_MAX_SEND_BUFFER_BYTES = 1024 * 1024;

// --- Selection ---

export const DEFAULT_SHORTLIST_SIZE = 3;
/** Relays whose health (0..1) falls below this are not handed out. */
export const DEFAULT_MIN_HEALTH = 0.2;
/**
 * Weight multiplier for a relay in the viewer's region. With weighted rendezvous hashing a relay's
 * chance to rank first is proportional to its weight, so 4 puts ~80% of first picks in-region when
 * regions are equally provisioned, while other regions still absorb overflow.
 */
export const SELECTION_REGION_BONUS = 4;
/** Weight multiplier for a relay that advertises the swarm (or a playlist beside it): its cache is warm. */
export const SELECTION_WARM_BONUS = 2;
/** Weight share that does not depend on free capacity, so a nearly full relay keeps some affinity. */
export const SELECTION_BASE_WEIGHT = 0.25;

// --- Reputation (integrity reports) ---

/**
 * Health taken off per counted report. Viewers drop a relay after its first bad segment, so one
 * report per viewer is the normal case: two independent viewers' reports bring a relay to 0.
 */
export const DEFAULT_REPORT_PENALTY = 0.5;
/** One viewer takes at most this off one relay, so it cannot push it under DEFAULT_MIN_HEALTH alone. */
export const DEFAULT_MAX_PENALTY_PER_VIEWER = 0.5;
export const DEFAULT_REPORT_WINDOW_MS = 10 * 60_000;
export const DEFAULT_MAX_REPORTED_RELAYS = 10_000;
export const DEFAULT_MAX_REPORTERS_PER_RELAY = 64;
/**
 * Distinct users (grant user tags) that must have reported a relay in the window before its health
 * drops at all: one party with two accounts cannot push an honest relay out (issue 14 finding 3).
 */
export const DEFAULT_MIN_REPORTERS = 3;
/**
 * Reporting users per relay counted from one address range (IPv4 /24, IPv6 /48). Under
 * `--grant-auth open` anyone can mint user tags, so distinct ranges are what a ban costs.
 */
export const DEFAULT_MAX_REPORTERS_PER_RANGE = 1;

/**
 * TURN credentials (answer to `turn`) are valid this long: long enough for ICE to finish and for a
 * TURN allocation's refreshes to keep working (coturn checks the credential when the allocation is
 * made and refreshed), short enough that a leaked one is soon worthless. The SDK asks again when it
 * needs TURN after that.
 */
export const DEFAULT_TURN_CREDENTIAL_TTL_MS = 10 * 60_000;
/** `turn` requests one connection may make per minute (token bucket, this also the burst). */
export const DEFAULT_TURN_REQUESTS_PER_CONNECTION_PER_MINUTE = 6;
/** `turn` requests one address range (IPv4 /24, IPv6 /48) may make per minute, all connections together. */
export const DEFAULT_TURN_REQUESTS_PER_RANGE_PER_MINUTE = 60;

// --- Close codes (4000-4999 are application-defined) ---

export const CLOSE_REGISTRATION_REFUSED = 4001;
export const CLOSE_REPLACED = 4002;
export const CLOSE_HEARTBEAT_TIMEOUT = 4003;
export const CLOSE_SLOW_CONSUMER = 4004;
/** RFC 6455 "policy violation": used for connections that keep exceeding their rate limit. */
export const CLOSE_POLICY_VIOLATION = 1008;
/** RFC 6455 "try again later": used when the tracker or the caller's IP is at its connection cap. */
export const CLOSE_TRY_AGAIN_LATER = 1013;
/** RFC 6455 "going away": tracker shutdown. */
export const CLOSE_GOING_AWAY = 1001;

/** A relay that has not opened the probe's data channel by then counts as not reachable unsolicited. */
export const DEFAULT_REACHABILITY_TIMEOUT_MS = 8_000;
/** Probes run at once; each is one WebRTC handshake in the tracker process. */
export const DEFAULT_REACHABILITY_MAX_CONCURRENT = 4;
/** Probes waiting for a slot; relays beyond it stay untested until their next heartbeat. */
export const DEFAULT_REACHABILITY_MAX_QUEUED = 256;
/** Routers reboot and leases lapse: a relay's reachability is tested again this often. */
export const DEFAULT_REACHABILITY_RETEST_MS = 10 * 60_000;
/** A relay whose port mapping changes is tested again, but not more often than this. */
export const DEFAULT_REACHABILITY_MIN_RETEST_MS = 30_000;
/** Relays that failed the reachability test are ranked after every reachable one. */
export const SELECTION_NEEDS_TURN_TIER = 1;
/**
 * Relays not tested yet (just registered, or turned away by a full probe queue) rank last, after
 * needs-turn ones: nothing but their own word vouches for them (issue 14 finding 9).
 */
export const SELECTION_UNTESTED_TIER = 2;
