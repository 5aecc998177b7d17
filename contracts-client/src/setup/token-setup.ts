import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import {
  TOKEN_2022_PROGRAM_ID,
  TOKEN_PROGRAM_ID,
  createMint,
  getAccount,
  getAssociatedTokenAddressSync,
  getMint,
  getOrCreateAssociatedTokenAccount,
  mintTo,
} from '@solana/spl-token';
import type { Connection, Keypair, PublicKey } from '@solana/web3.js';
import { DEFAULT_SETUP_STEP_TIMEOUT_MS } from '../constants.js';
import { confirmSignature, runStep } from './step.js';

/**
 * The token side of setup, written only against a `Connection`: the same calls work on the
 * embedded chain, devnet or mainnet. Each function is one step with its own deadline.
 */
export interface SetupStepOptions {
  /** Aborts waiting for the step (a sent transaction may still land). Default: none. */
  signal?: AbortSignal | undefined;
  /** Deadline of the step, confirmation included. Default: 60,000. */
  timeoutMs?: number;
}

export interface MintInfo {
  mint: PublicKey;
  decimals: number;
  /** null when the supply is fixed. */
  mintAuthority: PublicKey | null;
  supply: bigint;
  /** SPL Token or Token-2022. */
  programId: PublicKey;
}

function timeout(o: SetupStepOptions): number {
  return o.timeoutMs ?? DEFAULT_SETUP_STEP_TIMEOUT_MS;
}

/** Sends SOL from the cluster's faucet (only local chains, devnet and testnet have one) and waits for it. */
export async function airdropSol(connection: Connection, to: PublicKey, lamports: number, o: SetupStepOptions = {}): Promise<string> {
  return runStep('airdrop', timeout(o), o.signal, async () => {
    const signature = await connection.requestAirdrop(to, lamports);
    await confirmSignature(connection, signature);
    return signature;
  });
}

/** Creates a new mint whose mint authority is `payer` (no freeze authority). */
export async function createTokenMint(connection: Connection, payer: Keypair, decimals: number, o: SetupStepOptions = {}): Promise<MintInfo> {
  if (!Number.isInteger(decimals) || decimals < 0 || decimals > 18) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'decimals must be 0..18');
  const mint = await runStep('create mint', timeout(o), o.signal, () => createMint(connection, payer, payer.publicKey, null, decimals));
  return readMint(connection, mint, o);
}

/** Reads an existing mint (SPL Token or Token-2022), e.g. USDC; RC_ERR_CHAIN_REQUEST_FAILED when it is not one. */
export async function readMint(connection: Connection, mint: PublicKey, o: SetupStepOptions = {}): Promise<MintInfo> {
  return runStep('read mint', timeout(o), o.signal, async () => {
    const info = await connection.getAccountInfo(mint);
    if (info === null) throw new RelaycastError(ErrorCode.CHAIN_REQUEST_FAILED, `mint ${mint.toBase58()} does not exist`);
    const programId = info.owner.equals(TOKEN_2022_PROGRAM_ID) ? TOKEN_2022_PROGRAM_ID : TOKEN_PROGRAM_ID;
    const m = await getMint(connection, mint, undefined, programId);
    return { mint, decimals: m.decimals, mintAuthority: m.mintAuthority, supply: m.supply, programId };
  });
}

/** The owner's associated token account for `mint`, created (paid by `payer`) when missing. */
export async function ensureTokenAccount(
  connection: Connection,
  payer: Keypair,
  mint: MintInfo,
  owner: PublicKey,
  o: SetupStepOptions = {},
): Promise<{ address: PublicKey; amount: bigint }> {
  const account = await runStep('create token account', timeout(o), o.signal, () =>
    getOrCreateAssociatedTokenAccount(connection, payer, mint.mint, owner, false, undefined, undefined, mint.programId),
  );
  return { address: account.address, amount: account.amount };
}

/** Mints `amount` base units to `destination`; `authority` must be the mint authority. */
export async function mintTokens(
  connection: Connection,
  payer: Keypair,
  mint: MintInfo,
  destination: PublicKey,
  authority: Keypair,
  amount: bigint,
  o: SetupStepOptions = {},
): Promise<string> {
  if (mint.mintAuthority === null || !mint.mintAuthority.equals(authority.publicKey)) {
    throw new RelaycastError(ErrorCode.CHAIN_REQUEST_FAILED, `${authority.publicKey.toBase58()} is not the mint authority of ${mint.mint.toBase58()}`);
  }
  return runStep('mint tokens', timeout(o), o.signal, () =>
    mintTo(connection, payer, mint.mint, destination, authority, amount, [], undefined, mint.programId),
  );
}

export interface Balances {
  owner: PublicKey;
  lamports: number;
  token?: { mint: PublicKey; account: PublicKey; exists: boolean; amount: bigint; decimals: number };
}

/** SOL of `owner`, and with a mint its associated token account's balance (0 when the account does not exist). */
export async function readBalances(connection: Connection, owner: PublicKey, mint: PublicKey | undefined, o: SetupStepOptions = {}): Promise<Balances> {
  const lamports = await runStep('read balance', timeout(o), o.signal, () => connection.getBalance(owner));
  if (mint === undefined) return { owner, lamports };
  const m = await readMint(connection, mint, o);
  const account = getAssociatedTokenAddressSync(mint, owner, true, m.programId);
  const amount = await runStep('read token balance', timeout(o), o.signal, async () => {
    if ((await connection.getAccountInfo(account)) === null) return undefined;
    return (await getAccount(connection, account, undefined, m.programId)).amount;
  });
  return { owner, lamports, token: { mint, account, exists: amount !== undefined, amount: amount ?? 0n, decimals: m.decimals } };
}
