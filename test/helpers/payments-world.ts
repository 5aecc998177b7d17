import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { GiveUp, startProcess, waitFor, type Proc } from './processes.js';

/**
 * The payment side as real processes: the embedded chain (relaycast-chain), a mint, a funded
 * treasury and a relay wallet set up through relaycast-solana, and the settlement service
 * (relaycast-settler), all over loopback.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CHAIN_BIN = `${ROOT}contracts-client/bin/relaycast-chain.js`;
export const SOLANA_BIN = `${ROOT}contracts-client/bin/relaycast-solana.js`;
export const SETTLER_BIN = `${ROOT}contracts-client/bin/relaycast-settler.js`;
export const RELAY_BIN = `${ROOT}relay/bin/relaycast-relay.js`;

const run = promisify(execFile);

/** The first JSON log line of `proc` whose msg is `msg`. */
export function logLine(proc: Proc, msg: string): Record<string, unknown> | undefined {
  for (const line of proc.output().split('\n')) {
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      if (j['msg'] === msg) return j;
    } catch {
      // not a JSON line
    }
  }
  return undefined;
}

async function waitForLog(proc: Proc, msg: string, what: string): Promise<Record<string, unknown>> {
  return waitFor(
    what,
    () => {
      if (proc.exited) throw new GiveUp(`${proc.name} exited:\n${proc.output()}`);
      return logLine(proc, msg);
    },
    60_000,
  );
}

/** `slotMs` short makes blockhashes expire quickly (150 slots), for tests of expired payouts. */
export async function startChainProcess(slotMs = 400): Promise<{ proc: Proc; rpcUrl: string }> {
  // The chain needs two adjacent free ports; on a busy machine its search can lose a race: try again.
  for (let attempt = 1; ; attempt++) {
    const proc = startProcess('chain', CHAIN_BIN, ['--port', '0', '--slot-ms', String(slotMs), '--log-level', 'info']);
    try {
      const line = await waitForLog(proc, 'chain listening', 'the chain to listen');
      return { proc, rpcUrl: line['rpcUrl'] as string };
    } catch (err) {
      if (attempt >= 5 || !proc.output().includes('RC_ERR_CHAIN_LISTEN_FAILED')) throw err;
    }
  }
}

/** Runs `relaycast-solana <args> --url <rpcUrl> --keypair <payer> --json` and returns its JSON. */
export async function solana(rpcUrl: string, payerKeypair: string, args: string[]): Promise<Record<string, unknown>> {
  const { stdout } = await run(process.execPath, [SOLANA_BIN, ...args, '--url', rpcUrl, '--keypair', payerKeypair, '--json'], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, unknown>;
}

export interface PaymentSetup {
  rpcUrl: string;
  mint: string;
  /** Mint authority and fee payer of the setup commands. */
  funderKeypair: string;
  treasuryKeypair: string;
}

/** Mint (6 decimals) and a treasury holding `tokens` whole tokens. */
export async function setUpTreasury(rpcUrl: string, dir: string, tokens: number): Promise<PaymentSetup> {
  const funderKeypair = join(dir, 'funder.json');
  const treasuryKeypair = join(dir, 'treasury.json');
  await solana(rpcUrl, funderKeypair, ['keygen', '--outfile', funderKeypair]);
  await solana(rpcUrl, funderKeypair, ['airdrop', '100']);
  const mint = (await solana(rpcUrl, funderKeypair, ['create-mint', '--decimals', '6']))['mint'] as string;
  await solana(rpcUrl, funderKeypair, ['create-treasury', '--mint', mint, '--treasury-keypair', treasuryKeypair, '--amount', String(tokens)]);
  return { rpcUrl, mint, funderKeypair, treasuryKeypair };
}

/** A relay wallet: keypair file, SOL for fees, and its associated token account for the mint. */
export async function setUpRelayWallet(s: PaymentSetup, keypairPath: string): Promise<string> {
  const relayId = (await solana(s.rpcUrl, s.funderKeypair, ['keygen', '--outfile', keypairPath]))['publicKey'] as string;
  await solana(s.rpcUrl, s.funderKeypair, ['airdrop', '1', '--to', relayId]);
  await solana(s.rpcUrl, s.funderKeypair, ['create-token-account', '--mint', s.mint, '--owner', relayId]);
  return relayId;
}

/** The owner's token balance in base units. */
export async function tokenBalance(s: PaymentSetup, owner: string): Promise<bigint> {
  const out = await solana(s.rpcUrl, s.funderKeypair, ['balance', '--owner', owner, '--mint', s.mint]);
  return BigInt(out['tokenAmount'] as string);
}

export interface SettlerProc {
  proc: Proc;
  url: string;
  payer: string;
}

export async function startSettlerProcess(s: PaymentSetup, dbPath: string, pricePerGiB: bigint): Promise<SettlerProc> {
  const proc = startProcess('settler', SETTLER_BIN, [
    '--treasury-keypair', s.treasuryKeypair,
    '--mint', s.mint,
    '--rpc-url', s.rpcUrl,
    '--port', '0',
    '--db', dbPath,
    '--price-per-gib', pricePerGiB.toString(),
    '--default-budget', '1000000000',
    '--log-level', 'info',
  ]);
  const line = await waitForLog(proc, 'settler listening', 'the settler to listen');
  return { proc, url: line['url'] as string, payer: line['payer'] as string };
}

/** Runs `relaycast-relay redeem ...` and returns its exit code and JSON answer. */
export async function relayRedeem(args: string[]): Promise<{ code: number; out: Record<string, unknown> | undefined; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [RELAY_BIN, 'redeem', ...args], { timeout: 120_000 });
    return { code: 0, out: JSON.parse(stdout.trim()) as Record<string, unknown>, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    let out: Record<string, unknown> | undefined;
    try {
      out = JSON.parse((e.stdout ?? '').trim()) as Record<string, unknown>;
    } catch {
      out = undefined;
    }
    return { code: typeof e.code === 'number' ? e.code : -1, out, stderr: e.stderr ?? '' };
  }
}

/**
 * An HTTP proxy in front of the settler whose target can change (a restarted settler listens on a
 * new port) and which can run a hook after the settler answered a redeem and before the relay gets
 * the answer (to kill the settler and drop the answer).
 */
export interface SettlerProxy {
  url: string;
  target: string;
  afterRedeemAnswer: (() => Promise<'drop' | 'pass'>) | undefined;
  close(): Promise<void>;
}

export async function startSettlerProxy(target: string): Promise<SettlerProxy> {
  const proxy: SettlerProxy = { url: '', target, afterRedeemAnswer: undefined, close: async () => undefined };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        try {
          const upstream = await fetch(`${proxy.target}${req.url ?? '/'}`, {
            method: req.method,
            headers: Object.fromEntries(Object.entries(req.headers).filter(([k, v]) => typeof v === 'string' && k !== 'host' && k !== 'content-length')) as Record<string, string>,
            body: req.method === 'GET' ? undefined : Buffer.concat(chunks),
          });
          const body = Buffer.from(await upstream.arrayBuffer());
          const hook = proxy.afterRedeemAnswer;
          if (req.url === '/v1/redeem' && hook !== undefined) {
            proxy.afterRedeemAnswer = undefined;
            if ((await hook()) === 'drop') return void res.destroy();
          }
          res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
          res.end(body);
        } catch {
          res.destroy();
        }
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  proxy.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return proxy;
}

/** The chain's current block height (JSON-RPC getBlockHeight). */
export async function blockHeight(rpcUrl: string): Promise<number> {
  const res = await fetch(rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getBlockHeight', params: [] }) });
  return ((await res.json()) as { result: number }).result;
}
