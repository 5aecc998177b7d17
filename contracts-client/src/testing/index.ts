// Test kits: the chain and settler processes, and a funded payment world on the embedded chain
// (exported as `@relaycast/contracts-client/testing`).
export * from './chain-process.js';
export * from './settlement-world.js';
