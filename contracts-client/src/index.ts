export { startEmbeddedChain, type EmbeddedChain } from './embedded-chain/chain-server.js';
export type { EmbeddedChainOptions } from './embedded-chain/chain-options.js';
export { SOL_DECIMALS, formatDecimalAmount, parseDecimalAmount } from './amounts.js';
export { createSignerFile, loadOrCreateSigner, loadSigner } from './setup/signer-file.js';
export {
  airdropSol,
  createTokenMint,
  ensureTokenAccount,
  mintTokens,
  readBalances,
  readMint,
  type Balances,
  type MintInfo,
  type SetupStepOptions,
} from './setup/token-setup.js';
export { createTreasury, type TreasuryResult } from './setup/treasury-setup.js';
