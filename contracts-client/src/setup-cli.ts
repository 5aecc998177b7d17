import { homedir } from 'node:os';
import { join } from 'node:path';
import { bool, configInvalid, defineCommand, defineSettings, int, runCli, text, url, type CommandContext } from '@relaycast/cli-kit';
import { Connection, PublicKey } from '@solana/web3.js';
import { SOL_DECIMALS, formatDecimalAmount, parseDecimalAmount } from './amounts.js';
import { DEFAULT_COMMITMENT, DEFAULT_MINT_DECIMALS, DEFAULT_RPC_URL } from './constants.js';
import { createSignerFile, loadSigner } from './setup/signer-file.js';
import { airdropSol, createTokenMint, ensureTokenAccount, readBalances, readMint } from './setup/token-setup.js';
import { createTreasury } from './setup/treasury-setup.js';

const BIN = 'relaycast-solana';
const DEFAULT_KEYPAIR = join(homedir(), '.config', 'solana', 'id.json');

function isPublicKey(s: string): boolean {
  try {
    new PublicKey(s);
    return true;
  } catch {
    return false;
  }
}

const publicKey = text({ metavar: 'PUBKEY', check: isPublicKey, expected: 'a base58 public key' });
const COMMAND = 'Command options';

const SETTINGS = defineSettings(
  {
    url: { type: url({ protocols: ['http:', 'https:'] }), flag: 'url', default: DEFAULT_RPC_URL, help: 'JSON-RPC URL of the cluster' },
    keypair: {
      type: text({ metavar: 'PATH' }),
      flag: 'keypair',
      default: DEFAULT_KEYPAIR,
      defaultText: '~/.config/solana/id.json',
      help: 'payer keypair file',
    },
    json: { type: bool(), flag: 'json', help: 'print one JSON object instead of text' },
    outfile: { type: text({ metavar: 'PATH' }), flag: 'outfile', group: COMMAND, help: 'keygen: the new keypair file' },
    to: { type: publicKey, flag: 'to', group: COMMAND, defaultText: 'the payer', help: 'airdrop: who gets the SOL' },
    decimals: { type: int({ max: 255 }), flag: 'decimals', default: DEFAULT_MINT_DECIMALS, group: COMMAND, help: 'create-mint: decimals of the new mint' },
    mint: { type: publicKey, flag: 'mint', group: COMMAND, help: 'the mint (create-mint: use this existing one)' },
    owner: { type: publicKey, flag: 'owner', group: COMMAND, help: 'create-token-account, balance: the account owner (balance: default the payer)' },
    amount: {
      type: text({ metavar: 'TOKENS', pattern: /^\d+(\.\d+)?$/, expected: 'a non-negative decimal number of tokens' }),
      flag: 'amount',
      group: COMMAND,
      defaultText: '0',
      help: 'create-treasury: tokens minted into the treasury when the payer is the mint authority',
    },
    treasuryKeypair: {
      type: text({ metavar: 'PATH' }),
      flag: 'treasury-keypair',
      group: COMMAND,
      help: 'create-treasury: treasury keypair file (created if missing)',
    },
  },
  { envPrefix: 'RELAYCAST_SOLANA_', groups: ['', COMMAND] },
);

type Output = Record<string, string | number | boolean | null>;

/** A flag the command cannot do without. */
function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw configInvalid(`${what} is required`);
  return value;
}

function write(stdout: NodeJS.WritableStream, output: Output, json: boolean): void {
  if (json) stdout.write(`${JSON.stringify(output)}\n`);
  else for (const [k, v] of Object.entries(output)) stdout.write(`${k}: ${String(v)}\n`);
}

async function run({ values, positionals, signal, stdout, usage }: CommandContext<typeof SETTINGS.spec>): Promise<void> {
  const [command, ...rest] = positionals;
  if (command === undefined) {
    stdout.write(usage());
    return;
  }
  const json = values.json === true;
  const print = (output: Output): void => write(stdout, output, json);
  const connection = new Connection(values.url, DEFAULT_COMMITMENT);
  const payerPath = values.keypair;
  const step = { signal };
  const flag = (key: keyof typeof SETTINGS.spec): string => SETTINGS.flagOf(key);

  switch (command) {
    case 'keygen': {
      const outfile = need(values.outfile, flag('outfile'));
      const kp = await createSignerFile(outfile, signal);
      print({ publicKey: kp.publicKey.toBase58(), outfile });
      return;
    }
    case 'airdrop': {
      const lamports = parseDecimalAmount(need(rest[0], 'the SOL amount'), SOL_DECIMALS, 'SOL amount');
      if (lamports <= 0n || lamports > BigInt(Number.MAX_SAFE_INTEGER)) throw configInvalid('SOL amount out of range');
      const to = values.to !== undefined ? new PublicKey(values.to) : (await loadSigner(payerPath, signal)).publicKey;
      const signature = await airdropSol(connection, to, Number(lamports), step);
      const balance = await readBalances(connection, to, undefined, step);
      print({ to: to.toBase58(), signature, lamports: Number(lamports), balanceLamports: balance.lamports });
      return;
    }
    case 'create-mint': {
      const payer = await loadSigner(payerPath, signal);
      const info =
        values.mint !== undefined
          ? await readMint(connection, new PublicKey(values.mint), step)
          : await createTokenMint(connection, payer, values.decimals, step);
      print({
        mint: info.mint.toBase58(),
        decimals: info.decimals,
        mintAuthority: info.mintAuthority?.toBase58() ?? null,
        payerIsMintAuthority: info.mintAuthority?.equals(payer.publicKey) ?? false,
        supply: info.supply.toString(),
        programId: info.programId.toBase58(),
      });
      return;
    }
    case 'create-treasury': {
      const payer = await loadSigner(payerPath, signal);
      const mint = new PublicKey(need(values.mint, flag('mint')));
      const decimals = (await readMint(connection, mint, step)).decimals;
      const amount = values.amount === undefined ? 0n : parseDecimalAmount(values.amount, decimals, flag('amount'));
      const r = await createTreasury(connection, payer, mint, need(values.treasuryKeypair, flag('treasuryKeypair')), amount, step);
      print({
        treasury: r.treasury.toBase58(),
        keypairCreated: r.keypairCreated,
        tokenAccount: r.tokenAccount.toBase58(),
        minted: r.minted.toString(),
        balance: r.balance.toString(),
        balanceUi: formatDecimalAmount(r.balance, decimals),
      });
      return;
    }
    case 'create-token-account': {
      const payer = await loadSigner(payerPath, signal);
      const mint = await readMint(connection, new PublicKey(need(values.mint, flag('mint'))), step);
      const owner = new PublicKey(need(values.owner, flag('owner')));
      const account = await ensureTokenAccount(connection, payer, mint, owner, step);
      print({ owner: owner.toBase58(), mint: mint.mint.toBase58(), tokenAccount: account.address.toBase58(), balance: account.amount.toString() });
      return;
    }
    case 'balance':
    case 'balances': {
      const owner = values.owner !== undefined ? new PublicKey(values.owner) : (await loadSigner(payerPath, signal)).publicKey;
      const mint = values.mint === undefined ? undefined : new PublicKey(values.mint);
      const b = await readBalances(connection, owner, mint, step);
      const out: Output = { owner: owner.toBase58(), lamports: b.lamports, sol: formatDecimalAmount(BigInt(b.lamports), SOL_DECIMALS) };
      if (b.token !== undefined) {
        out['mint'] = b.token.mint.toBase58();
        out['tokenAccount'] = b.token.account.toBase58();
        out['tokenAccountExists'] = b.token.exists;
        out['tokenAmount'] = b.token.amount.toString();
        out['tokenUi'] = formatDecimalAmount(b.token.amount, b.token.decimals);
      }
      print(out);
      return;
    }
    default:
      throw configInvalid(`unknown command ${command}`);
  }
}

const SOLANA = defineCommand({
  settings: SETTINGS,
  usage: {
    synopsis: '<command> [options]',
    about: `Sets up Relaycast's Solana side on any cluster: the embedded chain (relaycast-chain), devnet or
mainnet — only --url changes.

Commands:
  keygen --outfile PATH                 new Solana CLI keypair file (mode 0600; never overwrites)
  airdrop SOL [--to PUBKEY]             faucet SOL to PUBKEY (default: the payer); local/devnet only
  create-mint [--decimals N]            new mint, the payer is its mint authority
  create-mint --mint PUBKEY             use an existing mint (e.g. USDC): checks it and prints it
  create-treasury --mint PUBKEY --treasury-keypair PATH [--amount TOKENS]
                                        treasury keypair (created if missing), its token account,
                                        and TOKENS minted into it when the payer is the mint authority
  create-token-account --mint PUBKEY --owner PUBKEY
                                        the owner's (e.g. a relay's) associated token account
  balance [--owner PUBKEY] [--mint PUBKEY]
                                        SOL and token balance (default owner: the payer); alias: balances`,
  },
  allowPositionals: true,
  // Each command is one transaction or read: cut short by Ctrl-C, it was not done.
  oneShot: true,
  run,
});

// A failed transaction's program logs say why.
await runCli(BIN, SOLANA, { explain: (err) => (err.details?.['logs'] as string[] | undefined)?.join('\n') });
