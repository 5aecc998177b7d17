import type { Connection, Keypair, PublicKey } from '@solana/web3.js';
import { loadOrCreateSigner } from './signer-file.js';
import { ensureTokenAccount, mintTokens, readMint, type SetupStepOptions } from './token-setup.js';

export interface TreasuryResult {
  treasury: PublicKey;
  /** True when the treasury keypair file was created by this call. */
  keypairCreated: boolean;
  tokenAccount: PublicKey;
  /** Base units minted by this call (0 when none were asked for). */
  minted: bigint;
  /** Token balance of the treasury account afterwards, base units. */
  balance: bigint;
}

/**
 * The platform treasury: a keypair of its own (file created 0600 when missing), its associated
 * token account for `mint` (rent paid by `payer`), and optionally `mintAmount` base units minted
 * into it when `payer` is the mint authority. Re-running is safe: the keypair and account are
 * reused, and only the requested amount is minted again.
 */
export async function createTreasury(
  connection: Connection,
  payer: Keypair,
  mintAddress: PublicKey,
  treasuryKeypairPath: string,
  mintAmount: bigint,
  o: SetupStepOptions = {},
): Promise<TreasuryResult> {
  const { signer: treasury, created } = await loadOrCreateSigner(treasuryKeypairPath, o.signal);
  const mint = await readMint(connection, mintAddress, o);
  const account = await ensureTokenAccount(connection, payer, mint, treasury.publicKey, o);
  if (mintAmount > 0n) await mintTokens(connection, payer, mint, account.address, payer, mintAmount, o);
  const after = await ensureTokenAccount(connection, payer, mint, treasury.publicKey, o);
  return { treasury: treasury.publicKey, keypairCreated: created, tokenAccount: account.address, minted: mintAmount, balance: after.amount };
}
