export { startTracker, type Tracker } from './tracker-server.js';
export type { TrackerLimits, TrackerOptions } from './tracker-options.js';
export type { TrackerStatus } from './tracker-hub.js';
export { rankRelays, relayWeight, type RelayCandidate, type SelectionRequest } from './selection.js';
export { rendezvousWeight } from './rendezvous-hash.js';
export { turnRestCredentials } from './ice-servers.js';
