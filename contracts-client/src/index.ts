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
export { startSettler, type Settler } from './settlement/settler.js';
export type { AuthorizeGrant, GrantDecision, SettlerOptions } from './settlement/settler-options.js';
export { authorizeFor, userTag, type GrantAuthPolicy } from './settlement/grant-auth.js';
export { rebuildPaidFromChain, type RebuildOptions } from './settlement/rebuild-from-chain.js';
export { plausibleAmount } from './settlement/receipt-intake.js';
