export { startEmbeddedChain, type EmbeddedChain } from './embedded-chain/chain-server.js';
export type { EmbeddedChainOptions } from './embedded-chain/chain-options.js';
