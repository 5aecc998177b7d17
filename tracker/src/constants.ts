/** Every default of the tracker, in one place. Units are in the names. */

export const DEFAULT_TRACKER_HOST = '127.0.0.1';
export const DEFAULT_TRACKER_PORT = 8000;
export const DEFAULT_HEARTBEAT_INTERVAL_MS = 5_000;
/** A relay silent for this many heartbeat intervals is evicted. */
export const DEFAULT_HEARTBEAT_TIMEOUT_FACTOR = 3;
/** ws closes a socket whose frame exceeds this; below it, oversized messages get an error reply. */
export const DEFAULT_HARD_MAX_PAYLOAD_BYTES = 64 * 1024;
export const DEFAULT_MAX_CONNECTIONS = 20_000;
export const DEFAULT_MAX_CONNECTIONS_PER_IP = 256;
/** Token bucket per connection. */
export const DEFAULT_RATE_LIMIT_PER_SEC = 50;
export const DEFAULT_RATE_LIMIT_BURST = 100;
/** Messages dropped for rate limiting before the connection is closed. */
export const DEFAULT_MAX_DROPPED_MESSAGES = 500;
export const DEFAULT_SHORTLIST_SIZE = 3;
export const DEFAULT_MAX_VIEWERS_PER_SWARM = 10_000;
export const DEFAULT_MAX_SWARMS_PER_VIEWER = 8;
/** Relays a viewer may be handed over its connection's lifetime (bounds the signaling allow-list). */
export const DEFAULT_MAX_ASSIGNED_RELAYS_PER_VIEWER = 64;
/** Relays whose health falls below this are not handed out. */
export const DEFAULT_MIN_HEALTH = 0.2;
/** Ping interval used to drop dead sockets. */
export const DEFAULT_PING_INTERVAL_MS = 15_000;
export const DEFAULT_LOG_LEVEL = 'info';
