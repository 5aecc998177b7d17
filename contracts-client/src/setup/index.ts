// `@relaycast/contracts-client/setup`: keys, mints, token accounts and the treasury, through any
// cluster's RPC URL (what the `relaycast-solana` bin does). Loads no embedded chain.
export { SOL_DECIMALS, formatDecimalAmount, parseDecimalAmount } from '../amounts.js';
export { createSignerFile, loadOrCreateSigner, loadSigner } from './signer-file.js';
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
} from './token-setup.js';
export { createTreasury, type TreasuryResult } from './treasury-setup.js';
