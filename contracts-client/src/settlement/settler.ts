import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, RelaycastError, decodePublicKey, encodeBase58, throwIfAborted } from '@relaycast/protocol';
import { privateKeyFromSeed } from '@relaycast/protocol/node';
import { REDEEM_SIGNATURE_HEADER, SETTLER_MAX_BODY_BYTES, SETTLER_PATHS, matchRelayPath, type SettlerInfo } from '@relaycast/protocol/settlement';
import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Connection, PublicKey, type Keypair } from '@solana/web3.js';
import { pino } from 'pino';
import { SETTLER_RATE_TABLE_MAX_ENTRIES } from '../constants.js';
import { KeyedRateLimiter, addressRange } from '../net/rate-limiter.js';
import { readBody } from '../net/read-body.js';
import { checkKeyFilePermissions, loadSigner } from '../setup/signer-file.js';
import { readMint } from '../setup/token-setup.js';
import { authorizeFor } from './grant-auth.js';
import { issueGrant, parseGrantRequest, type GrantTerms } from './grant-issuer.js';
import { sendError, sendJson } from './http-io.js';
import { PayoutWatcher } from './payout-watcher.js';
import { rebuildPaidFromChain } from './rebuild-from-chain.js';
import { authenticateRedeem } from './redeem-request.js';
import { redeem, relayPayouts, relayStatus, type Treasury } from './redeem-service.js';
import { resolveSettlerOptions, type SettlerOptions } from './settler-options.js';
import { SettlementLedger } from './settlement-ledger.js';

export interface Settler {
  /** Base URL, e.g. http://127.0.0.1:8788 */
  readonly url: string;
  /** Treasury owner (payer) public key, base58. */
  readonly payer: string;
  /** The treasury's token account (base58) payouts come from. */
  readonly treasuryTokenAccount: string;
  /** Stops listening, aborts requests in flight, closes the ledger. Idempotent. */
  close(): Promise<void>;
}

async function loadTreasury(o: SettlerOptions, signal: AbortSignal | undefined): Promise<Keypair> {
  if (typeof o.treasuryKeypair !== 'string') return o.treasuryKeypair;
  await checkKeyFilePermissions(o.treasuryKeypair);
  return loadSigner(o.treasuryKeypair, signal);
}

function grantAuthName(o: { authorize?: unknown; grantAuth?: { mode: string } | undefined }): string {
  return o.authorize !== undefined ? 'custom' : o.grantAuth!.mode;
}

/**
 * Starts the settlement service of docs/PAYMENTS.md: grants for viewer sessions, redemption of
 * relays' receipts into treasury-signed payout transactions, and the ledger behind them.
 */
export async function startSettler(options: SettlerOptions): Promise<Settler> {
  const o = resolveSettlerOptions(options);
  const log = (options.logger ?? pino({ level: 'silent' })).child({ component: 'settler' });
  const signal = options.signal;
  const owner = await loadTreasury(options, signal);
  const payerKey = privateKeyFromSeed(owner.secretKey.subarray(0, 32));
  let mintKey: PublicKey;
  try {
    mintKey = new PublicKey(decodePublicKey(options.mint));
  } catch (err) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'mint must be a base58 address', { cause: err });
  }
  const connection = new Connection(o.rpcUrl, { commitment: 'confirmed', disableRetryOnRateLimit: true });
  const mint = await readMint(connection, mintKey, { timeoutMs: o.rpcTimeoutMs, signal });
  const treasury: Treasury = {
    owner,
    mint: mint.mint,
    decimals: mint.decimals,
    tokenProgramId: mint.programId,
    tokenAccount: getAssociatedTokenAddressSync(mint.mint, owner.publicKey, false, mint.programId),
  };
  const authorize = o.authorize ?? authorizeFor(o.grantAuth!);
  const ledger = SettlementLedger.open(options.dbPath);
  try {
    if (o.rebuildFromChain) {
      const paid = await rebuildPaidFromChain(connection, treasury.tokenAccount, { timeoutMs: o.rpcTimeoutMs, signal });
      ledger.setPaidFromChain(paid);
      log.info({ relays: paid.size }, 'paid-to-date rebuilt from chain');
    }
    throwIfAborted(signal);
  } catch (err) {
    ledger.close();
    throw err;
  }

  const grantAuth = grantAuthName(o);
  if (grantAuth === 'open') {
    log.warn(
      '--grant-auth open: every caller gets a grant and each grant is its own user, so per-user budgets bound nothing (local development only; platforms use jwt)',
    );
  }
  const maxBytesPerSec = Math.max(1, Math.floor(o.maxBitrateBps / 8));
  const terms: GrantTerms = {
    payerKey,
    payer: owner.publicKey.toBytes(),
    mint: mint.mint.toBytes(),
    pricePerGiB: o.pricePerGiB,
    defaultBudget: o.defaultBudget,
    grantTtlMs: o.grantTtlMs,
    maxBytesPerSec,
    userBudget: o.userBudget,
    budgetPeriodMs: o.budgetPeriodMs,
  };
  const info: Required<SettlerInfo> = {
    payer: owner.publicKey.toBase58(),
    mint: mint.mint.toBase58(),
    decimals: mint.decimals,
    treasuryTokenAccount: treasury.tokenAccount.toBase58(),
    pricePerGiB: o.pricePerGiB.toString(),
    defaultBudget: o.defaultBudget.toString(),
    grantTtlMs: o.grantTtlMs,
    grantAuth,
    userBudget: o.userBudget.toString(),
    budgetPeriodMs: o.budgetPeriodMs,
    maxBytesPerSec,
    plausibleBurstBytes: o.plausibleBurstBytes,
    redeemWindowMs: o.redeemWindowMs,
    trustedTrackers: o.trustedTrackers.map((k) => encodeBase58(k)),
  };
  // Keyed by address range (IPv6 /64, IPv4 /32) and by relay key; rotating keys cannot evict a limited entry.
  const limiter = new KeyedRateLimiter(o.maxRequestsPerSec, o.requestBurst, SETTLER_RATE_TABLE_MAX_ENTRIES);
  const rangeItems = new KeyedRateLimiter(o.redeemItemsPerSecPerRange, o.redeemItemBurstPerRange, SETTLER_RATE_TABLE_MAX_ENTRIES);
  const relayItems = new KeyedRateLimiter(o.redeemItemsPerSecPerRelay, o.redeemItemBurstPerRelay, SETTLER_RATE_TABLE_MAX_ENTRIES);
  const lifetime = new AbortController();
  const watcher = new PayoutWatcher(connection, ledger, { rpcTimeoutMs: o.rpcTimeoutMs, now: o.now, log, signal: lifetime.signal });
  const intake = {
    trustedTrackers: o.trustedTrackers,
    plausibleBurstBytes: o.plausibleBurstBytes,
    redeemWindowMs: o.redeemWindowMs,
  };
  const inFlight = new Set<Promise<void>>();
  let redeemsInFlight = 0;

  const corsHeaders = (req: IncomingMessage): Record<string, string> | undefined => {
    const origin = req.headers.origin;
    if (origin === undefined) return {};
    if (!o.allowedOrigins.includes(origin)) return undefined;
    return { 'access-control-allow-origin': origin, 'access-control-allow-credentials': 'true', vary: 'Origin' };
  };

  async function handle(req: IncomingMessage, res: ServerResponse, reqSignal: AbortSignal): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://settler');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const range = addressRange(req.socket.remoteAddress);
    if (!limiter.allow(range)) throw new RelaycastError(ErrorCode.RATE_LIMITED, 'too many requests from this address range');
    if (method === 'GET' && path === SETTLER_PATHS.health) {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
      return;
    }
    if (method === 'GET' && path === SETTLER_PATHS.info) return sendJson(res, 200, info);
    if (path === SETTLER_PATHS.grants) {
      const cors = corsHeaders(req);
      if (cors === undefined) throw new RelaycastError(ErrorCode.GRANT_REFUSED, 'page origin not allowed');
      if (method === 'OPTIONS') {
        res
          .writeHead(204, {
            ...cors,
            'access-control-allow-methods': 'POST',
            'access-control-allow-headers': 'content-type, authorization',
            'access-control-max-age': '600',
          })
          .end();
        return;
      }
      if (method === 'POST') {
        try {
          const body = parseGrantRequest(await readBody(req, SETTLER_MAX_BODY_BYTES, reqSignal));
          const decision = await authorize(req);
          throwIfAborted(reqSignal);
          if (decision === undefined) throw new RelaycastError(ErrorCode.GRANT_REFUSED, 'the platform refused a grant for this request');
          const grant = issueGrant(body, decision, terms, ledger, o.now());
          log.info({ sessionKey: encodeBase58(body.sessionKey), subject: decision.subject, budget: grant.budget }, 'grant issued');
          return sendJson(res, 200, grant, cors);
        } catch (err) {
          sendError(res, err, cors);
          return;
        }
      }
    }
    if (method === 'POST' && path === SETTLER_PATHS.redeem) {
      if (redeemsInFlight >= o.maxConcurrentRedeems) throw new RelaycastError(ErrorCode.RATE_LIMITED, 'too many redemptions in progress');
      redeemsInFlight++;
      try {
        const raw = await readBody(req, SETTLER_MAX_BODY_BYTES, reqSignal);
        const header = req.headers[REDEEM_SIGNATURE_HEADER];
        const request = authenticateRedeem(raw, typeof header === 'string' ? header : undefined, o.now());
        // Signature checks cost CPU per item: counted per relay key (after its signature proved the
        // key) and per address range (fresh keys from one range share it), before any item is looked at.
        const cost = Math.max(1, request.items.length);
        if (!relayItems.allow(request.relay, cost)) throw new RelaycastError(ErrorCode.RATE_LIMITED, 'too many redeem items for this relay key; retry later');
        if (!rangeItems.allow(range, cost)) throw new RelaycastError(ErrorCode.RATE_LIMITED, 'too many redeem items from this address range; retry later');
        const answer = await redeem(
          request,
          { connection, ledger, treasury, rpcTimeoutMs: o.rpcTimeoutMs, now: o.now, log, intake, onSubmitted: (p) => watcher.watch(p) },
          reqSignal,
        );
        return sendJson(res, 200, answer);
      } finally {
        redeemsInFlight--;
      }
    }
    const relayPath = method === 'GET' ? matchRelayPath(path) : undefined;
    if (relayPath !== undefined) {
      return sendJson(res, 200, relayPath.resource === 'status' ? relayStatus(ledger, relayPath.relay) : relayPayouts(ledger, relayPath.relay));
    }
    throw new RelaycastError(ErrorCode.MESSAGE_TYPE, `no route ${method} ${path}`);
  }

  const server = createServer((req, res) => {
    const ac = new AbortController();
    const onLifetimeAbort = (): void => ac.abort();
    lifetime.signal.addEventListener('abort', onLifetimeAbort, { once: true });
    res.on('close', () => ac.abort());
    const p = handle(req, res, ac.signal)
      .catch((err: unknown) => {
        const e = sendError(res, err);
        if (e.code === ErrorCode.INTERNAL || e.code === ErrorCode.RECEIPT_STORE) log.error({ err: e, path: req.url }, 'request failed');
        else log.debug({ code: e.code, path: req.url }, 'request refused');
      })
      .finally(() => {
        lifetime.signal.removeEventListener('abort', onLifetimeAbort);
        inFlight.delete(p);
      });
    inFlight.add(p);
  });
  server.requestTimeout = o.requestTimeoutMs;
  server.headersTimeout = Math.min(o.requestTimeoutMs, 60_000);
  server.keepAliveTimeout = 5_000;

  const port = await new Promise<number>((resolve, reject) => {
    const onError = (err: Error): void => {
      ledger.close();
      reject(new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot listen on ${o.host}:${o.port}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(o.port, o.host, () => {
      server.off('error', onError);
      resolve((server.address() as AddressInfo).port);
    });
  });
  const host = o.host.includes(':') ? `[${o.host}]` : o.host;
  const url = `http://${host}:${port}`;
  for (const p of ledger.allPendingPayouts()) watcher.watch(p);
  log.info({ url, payer: info.payer, mint: info.mint, treasuryTokenAccount: info.treasuryTokenAccount, grantAuth }, 'settler listening');

  let closing: Promise<void> | undefined;
  return {
    url,
    payer: info.payer,
    treasuryTokenAccount: info.treasuryTokenAccount,
    close: () => {
      closing ??= (async () => {
        lifetime.abort();
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await Promise.allSettled([...inFlight]);
        await watcher.idle();
        ledger.close();
        log.info('settler closed');
      })();
      return closing;
    },
  };
}
