// `@relaycast/contracts-client`: all three entry points at once, for development tools. It loads
// the embedded chain (litesvm): a production settler imports `@relaycast/contracts-client/settler`
// (and `/setup` for keys), never this.
export * from './embedded-chain/index.js';
export * from './settlement/index.js';
export * from './setup/index.js';
