import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  airdropSol,
  createTokenMint,
  createTreasury,
  ensureTokenAccount,
  loadOrCreateSigner,
  readBalances,
  readMint,
  type MintInfo,
} from '@relaycast/contracts-client/setup';
import { Connection, LAMPORTS_PER_SOL, PublicKey } from '@solana/web3.js';
import type { Logger } from 'pino';
import { SAMPLE_MINT_DECIMALS, SAMPLE_TREASURY_TOKENS } from './constants.js';

export interface PaymentsSetup {
  mint: MintInfo;
  /** Treasury owner: the settlement service's key, the `payer` in grants. */
  treasury: PublicKey;
  treasuryTokenAccount: PublicKey;
  treasuryKeypairPath: string;
}

/**
 * The Solana side of the local network, through the chain's RPC URL only (the same calls work on
 * devnet): a platform key that pays set-up fees and owns the mint, a treasury holding tokens and
 * the SOL for payout fees, and for each relay its token account. Idempotent: a second start finds
 * the mint (recorded in the state directory), the accounts and the balances in place.
 */
export async function setUpPayments(options: {
  rpcUrl: string;
  keysDir: string;
  stateFile: string;
  relayOwners: PublicKey[];
  logger: Logger;
  signal?: AbortSignal;
}): Promise<PaymentsSetup> {
  const log = options.logger;
  const connection = new Connection(options.rpcUrl, 'confirmed');
  const o = { signal: options.signal };
  const { signer: platform } = await loadOrCreateSigner(join(options.keysDir, 'platform.json'), options.signal);
  const sol = async (owner: PublicKey, min: number, amount: number): Promise<void> => {
    if ((await connection.getBalance(owner)) < min * LAMPORTS_PER_SOL) await airdropSol(connection, owner, amount * LAMPORTS_PER_SOL, o);
  };
  await sol(platform.publicKey, 5, 10);

  let mint: MintInfo | undefined;
  const recorded = await readFile(options.stateFile, 'utf8').then(
    (t) => JSON.parse(t) as { mint?: string },
    () => undefined,
  );
  if (recorded?.mint !== undefined) mint = await readMint(connection, new PublicKey(recorded.mint), o).catch(() => undefined);
  if (mint === undefined) {
    mint = await createTokenMint(connection, platform, SAMPLE_MINT_DECIMALS, o);
    await writeFile(options.stateFile, `${JSON.stringify({ mint: mint.mint.toBase58() }, null, 1)}\n`);
    log.info({ mint: mint.mint.toBase58() }, 'created the sample token mint');
  }

  const treasuryKeypairPath = join(options.keysDir, 'treasury.json');
  const { signer: treasuryKey } = await loadOrCreateSigner(treasuryKeypairPath, options.signal);
  const current = await readBalances(connection, treasuryKey.publicKey, mint.mint, o);
  const topUp = (current.token?.amount ?? 0n) === 0n ? SAMPLE_TREASURY_TOKENS * 10n ** BigInt(SAMPLE_MINT_DECIMALS) : 0n;
  const treasury = await createTreasury(connection, platform, mint.mint, treasuryKeypairPath, topUp, o);
  // The treasury owner is the fee payer of payouts (the settler signs and submits them whole), so
  // it needs SOL: 5,000 lamports a payout, 2 SOL last 400,000 payouts.
  await sol(treasuryKey.publicKey, 1, 2);
  // Relays get a little SOL too: enough to resubmit or close accounts, not needed for payouts.
  for (const owner of options.relayOwners) {
    await ensureTokenAccount(connection, platform, mint, owner, o);
    await sol(owner, 0.5, 2);
  }
  return { mint, treasury: treasury.treasury, treasuryTokenAccount: treasury.tokenAccount, treasuryKeypairPath };
}
