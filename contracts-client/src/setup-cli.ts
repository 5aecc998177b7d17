import { homedir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ErrorCode, RelaycastError, isRelaycastError } from '@relaycast/protocol';
import { Connection, PublicKey } from '@solana/web3.js';
import { SOL_DECIMALS, formatDecimalAmount, parseDecimalAmount } from './amounts.js';
import { DEFAULT_COMMITMENT, DEFAULT_MINT_DECIMALS, DEFAULT_RPC_URL } from './constants.js';
import { createSignerFile, loadSigner } from './setup/signer-file.js';
import { airdropSol, createTokenMint, ensureTokenAccount, readBalances, readMint } from './setup/token-setup.js';
import { createTreasury } from './setup/treasury-setup.js';

const DEFAULT_KEYPAIR = join(homedir(), '.config', 'solana', 'id.json');

const USAGE = `Usage: relaycast-solana <command> [options]

Sets up Relaycast's Solana side on any cluster: the embedded chain (relaycast-chain), devnet or
mainnet — only --url changes.

Commands:
  keygen --outfile PATH                 new Solana CLI keypair file (mode 0600; never overwrites)
  airdrop SOL [--to PUBKEY]             faucet SOL to PUBKEY (default: the payer); local/devnet only
  create-mint [--decimals N]            new mint, the payer is its mint authority (default decimals ${DEFAULT_MINT_DECIMALS})
  create-mint --mint PUBKEY             use an existing mint (e.g. USDC): checks it and prints it
  create-treasury --mint PUBKEY --treasury-keypair PATH [--amount TOKENS]
                                        treasury keypair (created if missing), its token account,
                                        and TOKENS minted into it when the payer is the mint authority
  create-token-account --mint PUBKEY --owner PUBKEY
                                        the owner's (e.g. a relay's) associated token account
  balance [--owner PUBKEY] [--mint PUBKEY]
                                        SOL and token balance (default owner: the payer); alias: balances

Global options:
  --url URL          JSON-RPC URL (default ${DEFAULT_RPC_URL})
  --keypair PATH     payer keypair file (default ${DEFAULT_KEYPAIR})
  --json             print one JSON object instead of text
  -h, --help         show this text
`;

type Output = Record<string, string | number | boolean | null>;

function fail(err: unknown): never {
  const text = isRelaycastError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`relaycast-solana: ${text}\n`);
  const logs = isRelaycastError(err) ? (err.details?.['logs'] as string[] | undefined) : undefined;
  if (logs !== undefined) process.stderr.write(`${logs.join('\n')}\n`);
  if (isRelaycastError(err, ErrorCode.CONFIG_INVALID)) process.stderr.write('Run "relaycast-solana --help" for usage.\n');
  process.exit(1);
}

function need(value: string | undefined, flag: string): string {
  if (value === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${flag} is required`);
  return value;
}

function pubkey(value: string, flag: string): PublicKey {
  try {
    return new PublicKey(value);
  } catch {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${flag} must be a base58 public key`);
  }
}

function print(output: Output, json: boolean): void {
  if (json) process.stdout.write(`${JSON.stringify(output)}\n`);
  else for (const [k, v] of Object.entries(output)) process.stdout.write(`${k}: ${String(v)}\n`);
}

async function run(argv: string[], signal: AbortSignal): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        url: { type: 'string' },
        keypair: { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
        outfile: { type: 'string' },
        to: { type: 'string' },
        decimals: { type: 'string' },
        mint: { type: 'string' },
        owner: { type: 'string' },
        amount: { type: 'string' },
        'treasury-keypair': { type: 'string' },
      },
      strict: true,
      allowPositionals: true,
    });
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, (err as Error).message);
  }
  const { values, positionals } = parsed;
  const [command, ...rest] = positionals;
  if (values.help === true || command === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  const json = values.json === true;
  const connection = new Connection(values.url ?? DEFAULT_RPC_URL, DEFAULT_COMMITMENT);
  const payerPath = values.keypair ?? DEFAULT_KEYPAIR;
  const step = { signal };

  switch (command) {
    case 'keygen': {
      const outfile = need(values.outfile, '--outfile');
      const kp = await createSignerFile(outfile, signal);
      print({ publicKey: kp.publicKey.toBase58(), outfile }, json);
      return;
    }
    case 'airdrop': {
      const lamports = parseDecimalAmount(need(rest[0], 'the SOL amount'), SOL_DECIMALS, 'SOL amount');
      if (lamports <= 0n || lamports > BigInt(Number.MAX_SAFE_INTEGER)) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'SOL amount out of range');
      const to = values.to !== undefined ? pubkey(values.to, '--to') : (await loadSigner(payerPath, signal)).publicKey;
      const signature = await airdropSol(connection, to, Number(lamports), step);
      const balance = await readBalances(connection, to, undefined, step);
      print({ to: to.toBase58(), signature, lamports: Number(lamports), balanceLamports: balance.lamports }, json);
      return;
    }
    case 'create-mint': {
      const payer = await loadSigner(payerPath, signal);
      const info =
        values.mint !== undefined
          ? await readMint(connection, pubkey(values.mint, '--mint'), step)
          : await createTokenMint(
              connection,
              payer,
              Number(parseDecimalAmount(values.decimals ?? String(DEFAULT_MINT_DECIMALS), 0, '--decimals')),
              step,
            );
      print(
        {
          mint: info.mint.toBase58(),
          decimals: info.decimals,
          mintAuthority: info.mintAuthority?.toBase58() ?? null,
          payerIsMintAuthority: info.mintAuthority?.equals(payer.publicKey) ?? false,
          supply: info.supply.toString(),
          programId: info.programId.toBase58(),
        },
        json,
      );
      return;
    }
    case 'create-treasury': {
      const payer = await loadSigner(payerPath, signal);
      const mint = pubkey(need(values.mint, '--mint'), '--mint');
      const decimals = (await readMint(connection, mint, step)).decimals;
      const amount = values.amount === undefined ? 0n : parseDecimalAmount(values.amount, decimals, '--amount');
      const r = await createTreasury(connection, payer, mint, need(values['treasury-keypair'], '--treasury-keypair'), amount, step);
      print(
        {
          treasury: r.treasury.toBase58(),
          keypairCreated: r.keypairCreated,
          tokenAccount: r.tokenAccount.toBase58(),
          minted: r.minted.toString(),
          balance: r.balance.toString(),
          balanceUi: formatDecimalAmount(r.balance, decimals),
        },
        json,
      );
      return;
    }
    case 'create-token-account': {
      const payer = await loadSigner(payerPath, signal);
      const mint = await readMint(connection, pubkey(need(values.mint, '--mint'), '--mint'), step);
      const owner = pubkey(need(values.owner, '--owner'), '--owner');
      const account = await ensureTokenAccount(connection, payer, mint, owner, step);
      print({ owner: owner.toBase58(), mint: mint.mint.toBase58(), tokenAccount: account.address.toBase58(), balance: account.amount.toString() }, json);
      return;
    }
    case 'balance':
    case 'balances': {
      const owner = values.owner !== undefined ? pubkey(values.owner, '--owner') : (await loadSigner(payerPath, signal)).publicKey;
      const mint = values.mint === undefined ? undefined : pubkey(values.mint, '--mint');
      const b = await readBalances(connection, owner, mint, step);
      const out: Output = { owner: owner.toBase58(), lamports: b.lamports, sol: formatDecimalAmount(BigInt(b.lamports), SOL_DECIMALS) };
      if (b.token !== undefined) {
        out['mint'] = b.token.mint.toBase58();
        out['tokenAccount'] = b.token.account.toBase58();
        out['tokenAccountExists'] = b.token.exists;
        out['tokenAmount'] = b.token.amount.toString();
        out['tokenUi'] = formatDecimalAmount(b.token.amount, b.token.decimals);
      }
      print(out, json);
      return;
    }
    default:
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `unknown command ${command}`);
  }
}

const controller = new AbortController();
const onSignal = (): void => controller.abort();
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
try {
  await run(process.argv.slice(2), controller.signal);
  // web3.js keeps its WebSocket client alive after confirmations; the work is done.
  process.exit(0);
} catch (err) {
  fail(err);
}
