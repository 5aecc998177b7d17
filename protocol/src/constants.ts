/** Protocol-level constants shared by every part. Component defaults live in each package's constants file. */

/** Version byte carried by every relay data-channel frame. */
export const FRAME_VERSION = 1;

/** WebSocket subprotocol that versions the tracker protocol; the tracker refuses any other. */
export const TRACKER_SUBPROTOCOL = 'relaycast-tracker.1';

/** Data-channel label viewers open towards relays. */
export const DATA_CHANNEL_LABEL = 'relaycast.1';

/**
 * Largest whole frame (4-byte length prefix included). 64 KiB is the smallest message size every
 * WebRTC stack here accepts (libdatachannel's default, werift's hard cap), so one frame is always
 * one SCTP message.
 */
export const MAX_FRAME_BYTES = 64 * 1024;

/** Length prefix (4) + version (1) + type (1) + request id (4). */
export const FRAME_HEADER_BYTES = 10;

/** Largest DATA payload: a full frame minus its header. */
export const MAX_CHUNK_BYTES = MAX_FRAME_BYTES - FRAME_HEADER_BYTES;

/** Largest segment URL (and playlist URL) a request may carry, in UTF-8 bytes. */
export const MAX_URL_BYTES = 2048;

/** Largest error message carried in an ERROR frame or tracker error, in UTF-8 bytes. */
export const MAX_ERROR_MESSAGE_BYTES = 1024;

/** Largest error code string. */
export const MAX_ERROR_CODE_BYTES = 64;

/**
 * Largest tracker WebSocket message, in bytes. ws's own default is 100 MiB; ours is a few KB: a full
 * shortlist with a signed assignment per relay (~230 base64 bytes each) and a 2 KiB swarm id fits.
 */
export const MAX_TRACKER_MESSAGE_BYTES = 16 * 1024;

/** Largest SDP carried in a signaling message. */
export const MAX_SDP_BYTES = 6 * 1024;

/** Largest ICE candidate line. */
export const MAX_CANDIDATE_BYTES = 1024;

/** Largest number of stream ids a relay may advertise in one heartbeat. */
export const MAX_ADVERTISED_STREAMS = 64;

/** Largest swarm id (master playlist URL without query). */
export const MAX_SWARM_ID_BYTES = 2048;

/** Largest number of relays in one shortlist. */
export const MAX_SHORTLIST_SIZE = 16;

/** Ed25519 sizes. */
export const ED25519_PUBLIC_KEY_BYTES = 32;
/** Size of an Ed25519 signature. */
export const ED25519_SIGNATURE_BYTES = 64;

/** Registration challenge nonce size. */
export const CHALLENGE_NONCE_BYTES = 32;

/** Domain separator signed together with the tracker's nonce at relay registration. */
export const REGISTER_SIGNING_DOMAIN = 'relaycast-register-v1:';

/** SHA-256 digest size. */
export const SHA256_BYTES = 32;

/** Header a relay sends with every origin request, naming itself, so origins can attribute requests. */
export const RELAY_ID_HEADER = 'x-relaycast-relay-id';

/**
 * The relay's local status interface (`--status-port`): `GET` the counters as JSON, `GET`
 * Prometheus text, `PUT` `{"maxUploadBytesPerSec": N}`. Read by `relaycast-relay status` and the devnet.
 */
export const RELAY_STATUS_PATHS = { status: '/status', metrics: '/metrics', limits: '/limits' } as const;

/** The tracker's HTTP endpoints beside its WebSocket, on the same port: health, JSON status, Prometheus text. */
export const TRACKER_HTTP_PATHS = { health: '/healthz', status: '/status', metrics: '/metrics' } as const;
