import type { IncomingMessage } from 'node:http';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import type { Keypair } from '@solana/web3.js';
import type { Logger } from 'pino';
import {
  DEFAULT_GRANT_BUDGET,
  DEFAULT_GRANT_TTL_MS,
  DEFAULT_PRICE_PER_GIB,
  DEFAULT_RPC_URL,
  DEFAULT_SETTLER_HOST,
  DEFAULT_SETTLER_MAX_CONCURRENT_REDEEMS,
  DEFAULT_SETTLER_REQUEST_BURST,
  DEFAULT_SETTLER_REQUEST_TIMEOUT_MS,
  DEFAULT_SETTLER_REQUESTS_PER_SEC,
  DEFAULT_SETTLER_RPC_TIMEOUT_MS,
} from '../constants.js';

/** What the platform's authorisation hook decides for one grant request. */
export interface GrantDecision {
  /** Budget of this grant, base units. Default: the settler's `defaultBudget`. */
  budget?: bigint;
  /** Lifetime of this grant. Default: the settler's `grantTtlMs`. */
  ttlMs?: number;
  /** A label for logs (e.g. the platform's user id); never put secrets here. Default: none. */
  subject?: string;
}

/**
 * Decides whether the caller of `POST /v1/grants` gets a grant (platforms look at their session
 * cookie or bearer token). `undefined` refuses with RC_ERR_GRANT_REFUSED.
 */
export type AuthorizeGrant = (req: IncomingMessage) => Promise<GrantDecision | undefined>;

/** Configuration of the settlement service (`startSettler`, bin `relaycast-settler`). */
export interface SettlerOptions {
  /** Solana JSON-RPC URL (WebSocket derived by web3.js). Default: 'http://127.0.0.1:8899' (the embedded chain). */
  rpcUrl?: string;
  /** Treasury owner: a Solana CLI keypair file path, or a loaded Keypair. It signs grants and payouts. Required. */
  treasuryKeypair: string | Keypair;
  /** SPL mint (base58) relays are paid in; the treasury's associated token account for it pays. Required. */
  mint: string;
  /** Token base units per GiB (2^30 bytes) written into grants. Default: 1,000,000n. */
  pricePerGiB?: bigint;
  /** Grant budget when the authorisation hook names none, base units. Default: 10,000,000n. */
  defaultBudget?: bigint;
  /** Grant lifetime when the hook names none. Default: 21,600,000 (6 h). */
  grantTtlMs?: number;
  /** SQLite ledger file (created with its directory). Required. */
  dbPath: string;
  /**
   * Platform hook deciding who gets a grant. Default: grants everyone, with a warning logged at
   * start — for local development only.
   */
  authorize?: AuthorizeGrant;
  /** Page origins (scheme://host[:port]) allowed to call POST /v1/grants from a browser (CORS). Default: none. */
  allowedOrigins?: readonly string[];
  /** Deadline of each RPC call the settler makes. Default: 30,000. */
  rpcTimeoutMs?: number;
  /** Interface to bind. Default: '127.0.0.1'. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default: 0. */
  port?: number;
  /** Requests per second per client IP. Default: 20. */
  maxRequestsPerSec?: number;
  /** Requests a quiet client may send at once. Default: 40. */
  requestBurst?: number;
  /** Redeem requests handled at once; more are refused with RC_ERR_RATE_LIMITED. Default: 16. */
  maxConcurrentRedeems?: number;
  /** Time a client has to send a whole request. Default: 10,000. */
  requestTimeoutMs?: number;
  /** Before listening, recompute every relay's paid-to-date from the treasury's confirmed payout memos. Default: false. */
  rebuildFromChain?: boolean;
  /** Parent logger; the settler logs through `logger.child({ component: 'settler' })`. Default: silent. */
  logger?: Logger;
  /** Clock (Unix ms); tests move it. Default: Date.now. */
  now?: () => number;
  /** Aborts the start. Default: none. */
  signal?: AbortSignal;
}

export type ResolvedSettlerOptions = Required<
  Omit<SettlerOptions, 'authorize' | 'logger' | 'signal' | 'treasuryKeypair' | 'mint' | 'dbPath'>
> &
  Pick<SettlerOptions, 'authorize'>;

function positiveInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a positive integer`);
  return v;
}

function u64(name: string, v: bigint): bigint {
  if (typeof v !== 'bigint' || v < 0n || v >= 1n << 64n) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a u64`);
  return v;
}

function origin(o: string): string {
  let u: URL;
  try {
    u = new URL(o);
  } catch {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `allowed origin ${o} is not a URL`);
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.origin !== o.replace(/\/$/, '')) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `allowed origin ${o} must be scheme://host[:port]`);
  }
  return u.origin;
}

export function resolveSettlerOptions(o: SettlerOptions): ResolvedSettlerOptions {
  const port = o.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'port must be 0..65535');
  if (typeof o.mint !== 'string' || o.mint === '') throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'mint is required');
  if (typeof o.dbPath !== 'string' || o.dbPath === '') throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'dbPath is required');
  return {
    rpcUrl: o.rpcUrl ?? DEFAULT_RPC_URL,
    pricePerGiB: u64('pricePerGiB', o.pricePerGiB ?? DEFAULT_PRICE_PER_GIB),
    defaultBudget: u64('defaultBudget', o.defaultBudget ?? DEFAULT_GRANT_BUDGET),
    grantTtlMs: positiveInt('grantTtlMs', o.grantTtlMs ?? DEFAULT_GRANT_TTL_MS),
    authorize: o.authorize,
    allowedOrigins: (o.allowedOrigins ?? []).map(origin),
    rpcTimeoutMs: positiveInt('rpcTimeoutMs', o.rpcTimeoutMs ?? DEFAULT_SETTLER_RPC_TIMEOUT_MS),
    host: o.host ?? DEFAULT_SETTLER_HOST,
    port,
    maxRequestsPerSec: positiveInt('maxRequestsPerSec', o.maxRequestsPerSec ?? DEFAULT_SETTLER_REQUESTS_PER_SEC),
    requestBurst: positiveInt('requestBurst', o.requestBurst ?? DEFAULT_SETTLER_REQUEST_BURST),
    maxConcurrentRedeems: positiveInt('maxConcurrentRedeems', o.maxConcurrentRedeems ?? DEFAULT_SETTLER_MAX_CONCURRENT_REDEEMS),
    requestTimeoutMs: positiveInt('requestTimeoutMs', o.requestTimeoutMs ?? DEFAULT_SETTLER_REQUEST_TIMEOUT_MS),
    rebuildFromChain: o.rebuildFromChain ?? false,
    now: o.now ?? Date.now,
  };
}
