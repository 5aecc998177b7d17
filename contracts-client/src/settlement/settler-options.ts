import type { IncomingMessage } from 'node:http';
import { ErrorCode, RelaycastError, decodePublicKey } from '@relaycast/protocol';
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
  DEFAULT_BUDGET_PERIOD_MS,
  DEFAULT_MAX_BITRATE_BPS,
  DEFAULT_PLAUSIBLE_BURST_BYTES,
  DEFAULT_REDEEM_ITEM_BURST_PER_RANGE,
  DEFAULT_REDEEM_ITEM_BURST_PER_RELAY,
  DEFAULT_REDEEM_ITEMS_PER_SEC_PER_RANGE,
  DEFAULT_REDEEM_ITEMS_PER_SEC_PER_RELAY,
  DEFAULT_REDEEM_WINDOW_MS,
  DEFAULT_USER_BUDGET,
  USER_BUDGET_GRANTS,
} from '../constants.js';
import type { GrantAuthPolicy } from './grant-auth.js';

/** What the platform's authorisation hook decides for one grant request. */
export interface GrantDecision {
  /** Budget of this grant, base units. Default: the settler's `defaultBudget`. */
  budget?: bigint;
  /** Lifetime of this grant. Default: the settler's `grantTtlMs`. */
  ttlMs?: number;
  /** A label for logs (e.g. the platform's user id); never put secrets here. Default: none. */
  subject?: string;
  /**
   * The platform's stable user id. Per-user budgets count by it, and the grant carries its tag
   * (first 16 bytes of SHA-256("relaycast-user-v1\0" || payer || user)). Default: none, which makes
   * every grant its own user (only acceptable for local development).
   */
  user?: string;
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
   * Platform hook deciding who gets a grant (embedding). Exactly one of `authorize` and `grantAuth`
   * is required; neither is RC_ERR_CONFIG_INVALID.
   */
  authorize?: AuthorizeGrant;
  /**
   * Built-in grant policy (what the bin's --grant-auth selects): `{ mode: 'jwt', ... }` verifies the
   * platform's bearer token; `{ mode: 'open' }` grants every caller (development; warned at start,
   * shown in /v1/info).
   */
  grantAuth?: GrantAuthPolicy;
  /** Σ budgets of the grants one user may be issued within `budgetPeriodMs`, base units. Default: 10 × defaultBudget (100,000,000n at the default budget). */
  userBudget?: bigint;
  /** The sliding window per-user budgets cover. Default: 86,400,000 (1 day). */
  budgetPeriodMs?: number;
  /** Highest plausible delivery rate written into grants (maxBytesPerSec = this / 8). Default: 20,000,000 (20 Mbit/s). */
  maxBitrateBps?: number;
  /** Bytes credited on top of maxBytesPerSec × the grant's age. Default: 67,108,864 (64 MiB). */
  plausibleBurstBytes?: number;
  /** Receipts of a grant expired longer ago than this (settler's clock) are no longer credited. Default: 604,800,000 (7 days). */
  redeemWindowMs?: number;
  /**
   * Tracker public keys (base58) whose signed assignments make a receipt payable. Required (at
   * least one): without an assignment nothing ties a receipt to a session the tracker sent to that relay.
   */
  trustedTrackers: readonly string[];
  /** Redeem items checked per second per relay key, and burst. Default: 100 and 2,000. */
  redeemItemsPerSecPerRelay?: number;
  redeemItemBurstPerRelay?: number;
  /** Redeem items checked per second per address range (/64, /32), and burst. Default: 200 and 4,000. */
  redeemItemsPerSecPerRange?: number;
  redeemItemBurstPerRange?: number;
  /** Page origins (scheme://host[:port]) allowed to call POST /v1/grants from a browser (CORS). Default: none. */
  allowedOrigins?: readonly string[];
  /** Deadline of each RPC call the settler makes. Default: 30,000. */
  rpcTimeoutMs?: number;
  /** Interface to bind. Default: '127.0.0.1'. */
  host?: string;
  /** Port to bind; 0 picks a free one. Default: 0. */
  port?: number;
  /** Requests per second per client address range (IPv6 /64, IPv4 /32). Default: 20. */
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
  Omit<SettlerOptions, 'authorize' | 'grantAuth' | 'logger' | 'signal' | 'treasuryKeypair' | 'mint' | 'dbPath' | 'trustedTrackers'>
> &
  Pick<SettlerOptions, 'authorize' | 'grantAuth'> & { trustedTrackers: Uint8Array[] };

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

function nonNegativeInt(name: string, v: number): number {
  if (!Number.isSafeInteger(v) || v < 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a non-negative integer`);
  return v;
}

function trackers(list: readonly string[] | undefined): Uint8Array[] {
  if (!Array.isArray(list) || list.length === 0) {
    throw new RelaycastError(
      ErrorCode.CONFIG_INVALID,
      'trustedTrackers needs at least one tracker public key (base58): receipts are paid only with a tracker-signed assignment',
    );
  }
  return list.map((k: string) => {
    try {
      return decodePublicKey(k);
    } catch (err) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `trusted tracker ${k} is not a base58 public key`, { cause: err });
    }
  });
}

function userBudget(o: SettlerOptions): bigint {
  const grant = u64('defaultBudget', o.defaultBudget ?? DEFAULT_GRANT_BUDGET);
  if (o.userBudget === undefined) return o.defaultBudget === undefined ? DEFAULT_USER_BUDGET : USER_BUDGET_GRANTS * grant;
  const b = u64('userBudget', o.userBudget);
  if (b < grant) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `userBudget ${b} is below defaultBudget ${grant}: nobody could get a default grant`);
  return b;
}

export function resolveSettlerOptions(o: SettlerOptions): ResolvedSettlerOptions {
  if ((o.authorize === undefined) === (o.grantAuth === undefined)) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'name exactly one grant policy: authorize (embedding) or grantAuth (jwt or open)');
  }
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
    grantAuth: o.grantAuth,
    userBudget: userBudget(o),
    budgetPeriodMs: positiveInt('budgetPeriodMs', o.budgetPeriodMs ?? DEFAULT_BUDGET_PERIOD_MS),
    maxBitrateBps: positiveInt('maxBitrateBps', o.maxBitrateBps ?? DEFAULT_MAX_BITRATE_BPS),
    plausibleBurstBytes: nonNegativeInt('plausibleBurstBytes', o.plausibleBurstBytes ?? DEFAULT_PLAUSIBLE_BURST_BYTES),
    redeemWindowMs: nonNegativeInt('redeemWindowMs', o.redeemWindowMs ?? DEFAULT_REDEEM_WINDOW_MS),
    trustedTrackers: trackers(o.trustedTrackers),
    redeemItemsPerSecPerRelay: positiveInt('redeemItemsPerSecPerRelay', o.redeemItemsPerSecPerRelay ?? DEFAULT_REDEEM_ITEMS_PER_SEC_PER_RELAY),
    redeemItemBurstPerRelay: positiveInt('redeemItemBurstPerRelay', o.redeemItemBurstPerRelay ?? DEFAULT_REDEEM_ITEM_BURST_PER_RELAY),
    redeemItemsPerSecPerRange: positiveInt('redeemItemsPerSecPerRange', o.redeemItemsPerSecPerRange ?? DEFAULT_REDEEM_ITEMS_PER_SEC_PER_RANGE),
    redeemItemBurstPerRange: positiveInt('redeemItemBurstPerRange', o.redeemItemBurstPerRange ?? DEFAULT_REDEEM_ITEM_BURST_PER_RANGE),
  };
}
