export { startTracker, type Tracker } from './tracker-server.js';
export type { IceOptions, ReputationOptions, TrackerLimits, TrackerOptions, TrustOptions } from './tracker-options.js';
export type { TrackerStatus } from './tracker-hub.js';
export { rankRelays, relayWeight, selectionTier, type RelayCandidate, type SelectionRequest } from './selection.js';
export { rendezvousWeight } from './rendezvous-hash.js';
export { turnRestCredentials } from './ice-servers.js';
export { addressRange } from './address-range.js';
export { loadOrCreateTrackerKey, parseRelayAllowlist, readRelayAllowlist } from './tracker-files.js';
export { DEFAULT_MAX_JOINS_PER_RANGE_PER_MINUTE, DEFAULT_MAX_RELAYS_PER_RANGE } from './constants.js';
