// `@relaycast/contracts-client/chain`: the embedded development chain (litesvm behind Solana's
// JSON-RPC and PubSub endpoints). For development and tests only.
export { startEmbeddedChain, type EmbeddedChain } from './chain-server.js';
export type { EmbeddedChainOptions } from './chain-options.js';
