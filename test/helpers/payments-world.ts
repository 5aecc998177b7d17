import { execFile } from 'node:child_process';
import type { KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { resolveBin } from '@relaycast/cli-kit/testing';
import { decodeSignedGrant, fromBase64, type SignedGrant } from '@relaycast/protocol';
import { privateKeyFromSeed } from '@relaycast/protocol/node';
import { SETTLER_PATHS, type RedeemItem } from '@relaycast/protocol/settlement';
import { loadSigner } from '@relaycast/contracts-client/setup';
import { PublicKey } from '@solana/web3.js';
import { assignmentFor, newTracker, receiptFor, redeemAt, type RedeemCall, type Viewer } from '@relaycast/contracts-client/testing';
import { GiveUp, startProcess, waitFor, type Proc } from './processes.js';

/**
 * The payment side as real processes: the embedded chain (relaycast-chain), a mint, a funded
 * treasury and a relay wallet set up through relaycast-solana, and the settlement service
 * (relaycast-settler), all over loopback.
 */
export const CHAIN_BIN = resolveBin('@relaycast/contracts-client', 'relaycast-chain');
export const SOLANA_BIN = resolveBin('@relaycast/contracts-client', 'relaycast-solana');
export const SETTLER_BIN = resolveBin('@relaycast/contracts-client', 'relaycast-settler');
export const RELAY_BIN = resolveBin('@relaycast/relay', 'relaycast-relay');

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
  /** The treasury owner's public key (base58): the settler's payer and the fee payer of payouts. */
  treasury: string;
}

/** Mint (6 decimals) and a treasury holding `tokens` whole tokens, its owner holding SOL for payout fees. */
export async function setUpTreasury(rpcUrl: string, dir: string, tokens: number): Promise<PaymentSetup> {
  const funderKeypair = join(dir, 'funder.json');
  const treasuryKeypair = join(dir, 'treasury.json');
  await solana(rpcUrl, funderKeypair, ['keygen', '--outfile', funderKeypair]);
  await solana(rpcUrl, funderKeypair, ['airdrop', '100']);
  const mint = (await solana(rpcUrl, funderKeypair, ['create-mint', '--decimals', '6']))['mint'] as string;
  const created = await solana(rpcUrl, funderKeypair, ['create-treasury', '--mint', mint, '--treasury-keypair', treasuryKeypair, '--amount', String(tokens)]);
  const treasury = created['treasury'] as string;
  // The treasury owner is the fee payer of every payout.
  await solana(rpcUrl, funderKeypair, ['airdrop', '10', '--to', treasury]);
  return { rpcUrl, mint, funderKeypair, treasuryKeypair, treasury };
}

/** A relay wallet: keypair file and its associated token account for the mint (no SOL: the treasury pays payout fees). */
export async function setUpRelayWallet(s: PaymentSetup, keypairPath: string): Promise<string> {
  const relayId = (await solana(s.rpcUrl, s.funderKeypair, ['keygen', '--outfile', keypairPath]))['publicKey'] as string;
  await solana(s.rpcUrl, s.funderKeypair, ['create-token-account', '--mint', s.mint, '--owner', relayId]);
  return relayId;
}

/** A tracker key file (Solana CLI keypair, 0600) for the tracker's --key; returns its public key (base58), what settlers trust. */
export async function trackerKeyFile(s: PaymentSetup, path: string): Promise<string> {
  return (await solana(s.rpcUrl, s.funderKeypair, ['keygen', '--outfile', path]))['publicKey'] as string;
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

export interface SettlerProcessOptions {
  /** Tracker keys (base58) whose assignments the settler pays for; at least one. */
  trustedTrackers: string[];
  /** Default 'open'. jwt reads its HS256 secret from RELAYCAST_GRANT_JWT_SECRET in this process's environment. */
  grantAuth?: 'open' | 'jwt';
  /** More flags (e.g. --user-budget, --grant-jwt-audience). */
  extra?: string[];
}

export async function startSettlerProcess(s: PaymentSetup, dbPath: string, pricePerGiB: bigint, o: SettlerProcessOptions): Promise<SettlerProc> {
  const proc = startProcess('settler', SETTLER_BIN, [
    '--treasury-keypair',
    s.treasuryKeypair,
    '--mint',
    s.mint,
    '--rpc-url',
    s.rpcUrl,
    '--port',
    '0',
    '--db',
    dbPath,
    '--price-per-gib',
    pricePerGiB.toString(),
    '--default-budget',
    '1000000000',
    '--log-level',
    'info',
    '--grant-auth',
    o.grantAuth ?? 'open',
    ...o.trustedTrackers.flatMap((k) => ['--trusted-tracker', k]),
    ...(o.extra ?? []),
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
            headers: Object.fromEntries(
              Object.entries(req.headers).filter(([k, v]) => typeof v === 'string' && k !== 'host' && k !== 'content-length'),
            ) as Record<string, string>,
            body: req.method === 'GET' ? undefined : Buffer.concat(chunks),
          });
          const body = Buffer.from(await upstream.arrayBuffer());
          const hook = proxy.afterRedeemAnswer;
          if (req.url === SETTLER_PATHS.redeem && hook !== undefined) {
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
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getBlockHeight', params: [] }),
  });
  return ((await res.json()) as { result: number }).result;
}

// --- Playing the other parties against a real settler (attack tests) ---

/** An Ed25519 identity held by the test: a tracker that signs assignments, a viewer's session, a relay. */
export interface TestIdentity {
  id: string;
  publicKey: Uint8Array;
  privateKey: KeyObject;
}

export function newIdentity(): TestIdentity {
  return newTracker();
}

/** The identity of a Solana CLI keypair file (a relay's wallet). */
export async function identityOfKeypair(path: string): Promise<TestIdentity> {
  const signer = await loadSigner(path);
  const privateKey = privateKeyFromSeed(signer.secretKey.subarray(0, 32));
  return { id: signer.publicKey.toBase58(), publicKey: signer.publicKey.toBytes(), privateKey };
}

/** A test identity as the settlement test support's viewer (its session key). */
const asViewer = (session: TestIdentity): Viewer => ({ sessionKey: session.publicKey, privateKey: session.privateKey });

/** The tracker's signed assignment of `session` to `relay`, base64. */
export function assignmentB64(tracker: TestIdentity, session: TestIdentity, relay: TestIdentity, issuedAtMs = Date.now()): string {
  return assignmentFor({ tracker }, asViewer(session), new PublicKey(relay.publicKey), issuedAtMs);
}

/** A viewer's receipt for `cumulativeBytes` delivered by `relay` under `grant`, base64. */
export function receiptB64(session: TestIdentity, grant: SignedGrant, relay: TestIdentity, sequence: number, cumulativeBytes: number): string {
  return receiptFor(asViewer(session), grant, new PublicKey(relay.publicKey), sequence, cumulativeBytes);
}

/** POST /v1/grants for `session`; the answer's status and JSON body. */
export async function requestGrantAt(
  settlerUrl: string,
  session: TestIdentity,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; grant?: { b64: string; signed: SignedGrant } }> {
  const res = await fetch(`${settlerUrl}${SETTLER_PATHS.grants}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ sessionKey: session.id, scope: 'https://cdn.example.test/hls/' }),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) return { status: res.status, body };
  const b64 = body['grant'] as string;
  return { status: res.status, body, grant: { b64, signed: decodeSignedGrant(fromBase64(b64)!) } };
}

/** POST /v1/redeem signed by `relay`'s key, as a relay's settler client sends it. */
export async function redeemAs(settlerUrl: string, relay: TestIdentity, items: RedeemItem[]): Promise<RedeemCall> {
  return redeemAt({ url: settlerUrl }, { id: relay.id, key: relay.privateKey }, items);
}

/** JSON-RPC call against `rpcUrl`. */
export async function rpc<T>(rpcUrl: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const j = (await res.json()) as { result?: T; error?: unknown };
  if (j.error !== undefined) throw new Error(`${method}: ${JSON.stringify(j.error)}`);
  return j.result as T;
}

/** Waits until the payout `signature` is confirmed, looked up by id only (what a relay does). */
export async function waitForPayout(rpcUrl: string, signature: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(
    `payout ${signature} confirmed`,
    async () => {
      const st = (await rpc<{ value: ({ err: unknown } | null)[] }>(rpcUrl, 'getSignatureStatuses', [[signature], { searchTransactionHistory: true }]))
        .value[0];
      if (st !== null && st !== undefined && st.err !== null) throw new GiveUp(`payout ${signature} failed: ${JSON.stringify(st.err)}`);
      return st !== null && st !== undefined;
    },
    timeoutMs,
  );
}
