import { LOG_SETTINGS, bool, defineCommand, defineSettings, durationMs, enumOf, int, listOf, runCli, text, u64, url, waitForAbort } from '@relaycast/cli-kit';
import { ErrorCode, decodePublicKey } from '@relaycast/protocol';
import {
  DEFAULT_BUDGET_PERIOD_MS,
  DEFAULT_GRANT_BUDGET,
  DEFAULT_GRANT_TTL_MS,
  DEFAULT_MAX_BITRATE_BPS,
  DEFAULT_PLAUSIBLE_BURST_BYTES,
  DEFAULT_PRICE_PER_GIB,
  DEFAULT_REDEEM_WINDOW_MS,
  DEFAULT_RPC_URL,
  DEFAULT_SETTLER_DB_PATH,
  DEFAULT_SETTLER_HOST,
  DEFAULT_SETTLER_PORT,
  GRANT_JWT_SECRET_ENV,
  USER_BUDGET_GRANTS,
} from './constants.js';
import { jwtPolicyFromFlags, type GrantAuthPolicy } from './settlement/grant-auth.js';
import { startSettler } from './settlement/settler.js';

const BIN = 'relaycast-settler';

function isPublicKey(s: string): boolean {
  try {
    decodePublicKey(s);
    return true;
  } catch {
    return false;
  }
}

/** `https://platform.example` (what a browser sends in Origin), no path. */
function isOrigin(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.origin === s.replace(/\/$/, '');
  } catch {
    return false;
  }
}

const SETTINGS = defineSettings(
  {
    treasuryKeypair: {
      type: text({ metavar: 'PATH' }),
      flag: 'treasury-keypair',
      required: true,
      help: 'treasury owner keypair (Solana CLI JSON, mode 0600); signs grants and payouts and pays their fees (needs SOL)',
    },
    mint: {
      type: text({ metavar: 'ADDRESS', check: isPublicKey, expected: 'a base58 mint address' }),
      flag: 'mint',
      required: true,
      help: 'SPL mint relays are paid in',
    },
    grantAuth: {
      type: enumOf(['jwt', 'open'] as const),
      flag: 'grant-auth',
      required: true,
      help: `who gets grants, no default: jwt = the platform's user token, Authorization: Bearer <JWT>, verified with the HS256 secret in ${GRANT_JWT_SECRET_ENV} or --grant-jwks (aud, sub and exp required); open = every caller (local development only; shown in /v1/info)`,
    },
    trustedTrackers: {
      type: listOf(text({ metavar: 'KEY', check: isPublicKey, expected: 'a base58 tracker public key' }), { min: 1 }),
      flag: 'trusted-tracker',
      required: true,
      help: 'tracker key whose signed assignments make receipts payable: receipts are paid only with a tracker-signed assignment',
    },
    grantJwtAudience: {
      type: text({ metavar: 'AUD' }),
      flag: 'grant-jwt-audience',
      group: 'Grants',
      help: "expected aud of the platform's tokens (required with jwt)",
    },
    grantJwtIssuer: { type: text({ metavar: 'ISS' }), flag: 'grant-jwt-issuer', group: 'Grants', defaultText: 'not checked', help: 'expected iss' },
    grantJwks: {
      type: text({ metavar: 'FILE' }),
      flag: 'grant-jwks',
      group: 'Grants',
      help: "JWKS file of the platform's public keys, instead of the HS256 secret",
    },
    pricePerGiB: {
      type: u64(),
      flag: 'price-per-gib',
      default: DEFAULT_PRICE_PER_GIB,
      unit: 'base units',
      group: 'Grants',
      help: 'price per GiB written into grants',
    },
    defaultBudget: { type: u64(), flag: 'default-budget', default: DEFAULT_GRANT_BUDGET, unit: 'base units', group: 'Grants', help: 'grant budget' },
    grantTtlMs: { type: durationMs({ min: 1 }), flag: 'grant-ttl-ms', default: DEFAULT_GRANT_TTL_MS, group: 'Grants', help: 'grant lifetime' },
    userBudget: {
      type: u64(),
      flag: 'user-budget',
      defaultText: `${USER_BUDGET_GRANTS} × --default-budget`,
      unit: 'base units',
      group: 'Grants',
      help: 'Σ grant budgets per user per budget period',
    },
    budgetPeriodMs: {
      type: durationMs({ min: 1 }),
      flag: 'budget-period-ms',
      default: DEFAULT_BUDGET_PERIOD_MS,
      group: 'Grants',
      help: 'sliding window of the user budget',
    },
    maxBitrateBps: {
      type: int({ min: 1, unit: 'bit/s' }),
      flag: 'max-bitrate-bps',
      default: DEFAULT_MAX_BITRATE_BPS,
      group: 'Grants',
      help: 'highest plausible delivery rate, written into grants',
    },
    plausibleBurstBytes: {
      type: int({ unit: 'bytes' }),
      flag: 'plausible-burst-bytes',
      default: DEFAULT_PLAUSIBLE_BURST_BYTES,
      group: 'Grants',
      help: 'bytes credited above bitrate × grant age',
    },
    redeemWindowMs: {
      type: durationMs(),
      flag: 'redeem-window-ms',
      default: DEFAULT_REDEEM_WINDOW_MS,
      group: 'Grants',
      help: 'receipts of grants expired longer ago are not credited',
    },
    allowedOrigins: {
      type: listOf(text({ metavar: 'ORIGIN', check: isOrigin, expected: 'a page origin, http(s)://host[:port]' })),
      flag: 'allow-origin',
      default: [] as string[],
      group: 'Grants',
      help: 'page origin allowed to request grants from a browser',
    },
    rpcUrl: { type: url({ protocols: ['http:', 'https:'] }), flag: 'rpc-url', default: DEFAULT_RPC_URL, group: 'Service', help: 'Solana JSON-RPC URL' },
    port: { type: int({ max: 65_535 }), flag: 'port', default: DEFAULT_SETTLER_PORT, group: 'Service', help: 'HTTP port; 0 = any free port' },
    host: { type: text({ metavar: 'ADDR' }), flag: 'host', default: DEFAULT_SETTLER_HOST, group: 'Service', help: 'address to bind' },
    dbPath: { type: text({ metavar: 'PATH' }), flag: 'db', default: DEFAULT_SETTLER_DB_PATH, group: 'Service', help: 'SQLite ledger' },
    rebuildFromChain: {
      type: bool(),
      flag: 'rebuild-from-chain',
      group: 'Service',
      help: "recompute paid-to-date per relay from the chain's payout memos first",
    },
    ...LOG_SETTINGS,
  },
  { envPrefix: 'RELAYCAST_SETTLER_', groups: ['', 'Grants', 'Service', 'Logs'] },
);

const SETTLER = defineCommand({
  settings: SETTINGS,
  usage: {
    synopsis: '--treasury-keypair PATH --mint ADDRESS --grant-auth jwt|open --trusted-tracker KEY [options]',
    about: `The platform's settlement service: signs session grants, redeems relays' receipts into
treasury-signed payout transactions, keeps its ledger in SQLite (docs/PAYMENTS.md).`,
    notes: `Platforms with their own policy embed startSettler({ authorize }). Exit status 2 on a bad
configuration (RC_ERR_CONFIG_INVALID, RC_ERR_KEY_PERMISSIONS). The "settler listening" log line
carries the url. SIGINT/SIGTERM stop the settler; a second one exits 130 at once.`,
  },
  run: async ({ values, logger, signal, env }) => {
    const { grantAuth: mode, grantJwtAudience, grantJwks, grantJwtIssuer, ...options } = values;
    const grantAuth: GrantAuthPolicy =
      mode === 'open' ? { mode: 'open' } : await jwtPolicyFromFlags({ audience: grantJwtAudience, jwksFile: grantJwks, issuer: grantJwtIssuer, env });
    const settler = await startSettler({ ...options, rebuildFromChain: options.rebuildFromChain === true, grantAuth, logger, signal });
    await waitForAbort(signal);
    await settler.close();
  },
});

// A treasury key file others may read is the operator's configuration to fix, like a bad flag.
await runCli(BIN, SETTLER, { configCodes: [ErrorCode.KEY_PERMISSIONS] });
