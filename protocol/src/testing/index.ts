// Test kits shared by every package's tests (exported as `@relaycast/protocol/testing`).
export * from './errors.js';
