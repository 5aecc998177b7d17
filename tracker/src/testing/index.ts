// Test kits for code that talks to a tracker (exported as `@relaycast/tracker/testing`).
export * from './clients.js';
