import { parseArgs } from 'node:util';
import { ErrorCode, RelaycastError, isRelaycastError } from '@relaycast/protocol';
import { pino, type Level } from 'pino';
import {
  DEFAULT_GRANT_BUDGET,
  DEFAULT_GRANT_TTL_MS,
  DEFAULT_LOG_LEVEL,
  DEFAULT_PRICE_PER_GIB,
  DEFAULT_RPC_URL,
  DEFAULT_SETTLER_DB_PATH,
  DEFAULT_SETTLER_HOST,
  DEFAULT_SETTLER_PORT,
  DEFAULT_BUDGET_PERIOD_MS,
  DEFAULT_MAX_BITRATE_BPS,
  DEFAULT_PLAUSIBLE_BURST_BYTES,
  DEFAULT_REDEEM_WINDOW_MS,
  DEFAULT_USER_BUDGET,
  GRANT_JWT_SECRET_ENV,
} from './constants.js';
import { jwtPolicyFromFlags, type GrantAuthPolicy } from './settlement/grant-auth.js';
import { startSettler, type Settler } from './settlement/settler.js';

const USAGE = `Usage: relaycast-settler --treasury-keypair PATH --mint ADDRESS --grant-auth jwt|open --trusted-tracker KEY [options]

The platform's settlement service: signs session grants, redeems relays' receipts into
treasury-signed payout transactions, keeps its ledger in SQLite (docs/PAYMENTS.md).

  --treasury-keypair PATH  treasury owner keypair (Solana CLI JSON, mode 0600); signs grants and
                           payouts and pays their fees (required; needs SOL)
  --mint ADDRESS           SPL mint relays are paid in (required)
  --grant-auth jwt|open    who gets grants (required, no default):
                           jwt  = the platform's user token, Authorization: Bearer <JWT>, verified
                                  with the HS256 secret in ${GRANT_JWT_SECRET_ENV} or --grant-jwks;
                                  aud, sub and exp required
                           open = every caller (local development only; shown in /v1/info)
  --grant-jwt-audience AUD expected aud of the platform's tokens (required with jwt)
  --grant-jwt-issuer ISS   expected iss (default: not checked)
  --grant-jwks FILE        JWKS file of the platform's public keys, instead of the HS256 secret
  --trusted-tracker KEY    base58 tracker key whose signed assignments make receipts payable
                           (required, repeatable)
  --user-budget N          Σ grant budgets per user per budget period, base units
                           (default 10 × --default-budget: ${DEFAULT_USER_BUDGET})
  --budget-period-ms N     sliding window of the user budget (default ${DEFAULT_BUDGET_PERIOD_MS})
  --max-bitrate-bps N      highest plausible delivery rate, written into grants (default ${DEFAULT_MAX_BITRATE_BPS})
  --plausible-burst-bytes N  bytes credited above bitrate × grant age (default ${DEFAULT_PLAUSIBLE_BURST_BYTES})
  --redeem-window-ms N     receipts of grants expired longer ago are not credited (default ${DEFAULT_REDEEM_WINDOW_MS})
  --rpc-url URL            Solana JSON-RPC URL (default ${DEFAULT_RPC_URL})
  --port N                 HTTP port; 0 = any free port (default ${DEFAULT_SETTLER_PORT})
  --host ADDR              address to bind (default ${DEFAULT_SETTLER_HOST})
  --price-per-gib N        base units per GiB written into grants (default ${DEFAULT_PRICE_PER_GIB})
  --default-budget N       grant budget in base units (default ${DEFAULT_GRANT_BUDGET})
  --grant-ttl-ms N         grant lifetime (default ${DEFAULT_GRANT_TTL_MS})
  --db PATH                SQLite ledger (default ${DEFAULT_SETTLER_DB_PATH})
  --allow-origin ORIGIN    page origin allowed to request grants from a browser (repeatable)
  --rebuild-from-chain     recompute paid-to-date per relay from the chain's payout memos first
  --log-level L            fatal|error|warn|info|debug|trace|silent (default ${DEFAULT_LOG_LEVEL})
  -h, --help               show this text

Platforms with their own policy embed startSettler({ authorize }). Exit status 2 on a bad
configuration (RC_ERR_CONFIG_INVALID, RC_ERR_KEY_PERMISSIONS). Logs are JSON lines on stdout;
"settler listening" carries the url.
`;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function fail(err: unknown): never {
  const text = isRelaycastError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`relaycast-settler: ${text}\n`);
  const config = isRelaycastError(err) && (err.code === ErrorCode.CONFIG_INVALID || err.code === ErrorCode.KEY_PERMISSIONS);
  process.exit(config ? 2 : 1);
}

function uintFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `--${name} must be a non-negative integer`);
  return Number(value);
}

function u64Flag(name: string, value: string | undefined): bigint | undefined {
  if (value === undefined) return undefined;
  if (!/^\d{1,20}$/.test(value)) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `--${name} must be a non-negative integer`);
  return BigInt(value);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'rpc-url': { type: 'string' },
        'treasury-keypair': { type: 'string' },
        mint: { type: 'string' },
        'price-per-gib': { type: 'string' },
        'default-budget': { type: 'string' },
        'grant-ttl-ms': { type: 'string' },
        db: { type: 'string' },
        'allow-origin': { type: 'string', multiple: true },
        'rebuild-from-chain': { type: 'boolean' },
        'grant-auth': { type: 'string' },
        'grant-jwt-audience': { type: 'string' },
        'grant-jwt-issuer': { type: 'string' },
        'grant-jwks': { type: 'string' },
        'trusted-tracker': { type: 'string', multiple: true },
        'user-budget': { type: 'string' },
        'budget-period-ms': { type: 'string' },
        'max-bitrate-bps': { type: 'string' },
        'plausible-burst-bytes': { type: 'string' },
        'redeem-window-ms': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(new RelaycastError(ErrorCode.CONFIG_INVALID, (err as Error).message));
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const level = values['log-level'] ?? DEFAULT_LOG_LEVEL;
  if (!LEVELS.has(level)) fail(new RelaycastError(ErrorCode.CONFIG_INVALID, `unknown --log-level ${level}`));
  if (values['treasury-keypair'] === undefined || values.mint === undefined) {
    fail(new RelaycastError(ErrorCode.CONFIG_INVALID, '--treasury-keypair and --mint are required (see --help)'));
  }
  const mode = values['grant-auth'];
  if (mode !== 'jwt' && mode !== 'open') {
    fail(new RelaycastError(ErrorCode.CONFIG_INVALID, '--grant-auth jwt|open is required: jwt verifies the platform’s user tokens, open grants every caller (development)'));
  }
  if ((values['trusted-tracker'] ?? []).length === 0) {
    fail(new RelaycastError(ErrorCode.CONFIG_INVALID, '--trusted-tracker KEY is required (at least one): receipts are paid only with a tracker-signed assignment'));
  }
  let grantAuth: GrantAuthPolicy;
  try {
    grantAuth =
      mode === 'open'
        ? { mode: 'open' }
        : await jwtPolicyFromFlags({ audience: values['grant-jwt-audience'], jwksFile: values['grant-jwks'], issuer: values['grant-jwt-issuer'], env: process.env });
  } catch (err) {
    fail(err);
  }
  const logger = pino({ level: level as Level });

  const startup = new AbortController();
  let settler: Settler | undefined;
  let stopping = false;
  const stop = async (s: Settler): Promise<void> => {
    try {
      await s.close();
    } catch (err) {
      fail(err);
    }
    process.exit(0);
  };
  const onSignal = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    startup.abort();
    if (settler !== undefined) void stop(settler);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    settler = await startSettler({
      treasuryKeypair: values['treasury-keypair'],
      mint: values.mint,
      rpcUrl: values['rpc-url'],
      port: uintFlag('port', values.port) ?? DEFAULT_SETTLER_PORT,
      host: values.host,
      pricePerGiB: u64Flag('price-per-gib', values['price-per-gib']),
      defaultBudget: u64Flag('default-budget', values['default-budget']),
      grantTtlMs: uintFlag('grant-ttl-ms', values['grant-ttl-ms']),
      dbPath: values.db ?? DEFAULT_SETTLER_DB_PATH,
      allowedOrigins: values['allow-origin'],
      rebuildFromChain: values['rebuild-from-chain'] === true,
      grantAuth,
      trustedTrackers: values['trusted-tracker'] ?? [],
      userBudget: u64Flag('user-budget', values['user-budget']),
      budgetPeriodMs: uintFlag('budget-period-ms', values['budget-period-ms']),
      maxBitrateBps: uintFlag('max-bitrate-bps', values['max-bitrate-bps']),
      plausibleBurstBytes: uintFlag('plausible-burst-bytes', values['plausible-burst-bytes']),
      redeemWindowMs: uintFlag('redeem-window-ms', values['redeem-window-ms']),
      logger,
      signal: startup.signal,
    });
  } catch (err) {
    if (stopping) process.exit(0);
    fail(err);
  }
  if (stopping) void stop(settler);
}

await main();
