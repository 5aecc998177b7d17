// Test kits for the relay and for code that talks to it (exported as `@relaycast/relay/testing`).
// The transport compliance suite imports vitest, so it has its own subpath:
// `@relaycast/relay/testing/transport-compliance`.
export * from './channel-harness.js';
export * from './fake-tracker.js';
export * from './faulty-segment-source.js';
export * from './origin-server.js';
export * from './payments.js';
export * from './held-segment.js';
