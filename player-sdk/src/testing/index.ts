// Node-only test kits: a loopback tracker, relays and origin for driving the SDK core without a
// browser (exported as `@relaycast/player-sdk/testing`; never part of the browser build).
export * from './loopback-network.js';
