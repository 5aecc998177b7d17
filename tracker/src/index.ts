export { startTracker, type Tracker, type TrackerOptions, type TrackerStatus } from './tracker-server.js';
export { rankRelays, rendezvousWeight, scoreRelay, type RelayCandidate, type SelectionRequest } from './selection.js';
