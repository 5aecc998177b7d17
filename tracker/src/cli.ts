import { parseArgs } from 'node:util';
import { isRelaycastError } from '@relaycast/protocol';
import { pino } from 'pino';
import {
  DEFAULT_CLI_PORT,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_FACTOR,
  DEFAULT_LOG_LEVEL,
  DEFAULT_MAX_PENDING_OFFERS_PER_RANGE,
  DEFAULT_MAX_PENDING_OFFERS_PER_VIEWER,
  DEFAULT_MAX_RELAYS_HANDED_PER_MINUTE,
  DEFAULT_MAX_RELAYS_PER_RANGE,
  DEFAULT_MAX_REPORTERS_PER_RANGE,
  DEFAULT_MIN_REPORTERS,
  DEFAULT_PENDING_OFFER_WINDOW_MS,
  DEFAULT_REACHABILITY_TIMEOUT_MS,
  DEFAULT_TRACKER_HOST,
  DEFAULT_TURN_CREDENTIAL_TTL_MS,
  DEFAULT_TURN_REQUESTS_PER_CONNECTION_PER_MINUTE,
  DEFAULT_TURN_REQUESTS_PER_RANGE_PER_MINUTE,
} from './constants.js';
import { loadOrCreateTrackerKey, readRelayAllowlist } from './tracker-files.js';
import { startTracker } from './tracker-server.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const USAGE = `Usage: relaycast-tracker [options]

Runs a Relaycast tracker: WebSocket protocol and HTTP /healthz, /status on one port.

  --port N                    TCP port (default ${DEFAULT_CLI_PORT}; 0 = any free port)
  --host ADDR                 interface to bind (default ${DEFAULT_TRACKER_HOST})
  --heartbeat-interval-ms N   heartbeat interval told to relays (default ${DEFAULT_HEARTBEAT_INTERVAL_MS})
  --heartbeat-timeout-ms N    evict relays silent this long (default ${DEFAULT_HEARTBEAT_TIMEOUT_FACTOR} x interval)
  --reachability-timeout-ms N how long a relay's reachability probe may take (default ${DEFAULT_REACHABILITY_TIMEOUT_MS})
  --no-reachability-test      do not probe relays (they all rank as untested)
  --log-level L               ${LOG_LEVELS.join('|')} (default ${DEFAULT_LOG_LEVEL})

Trust (docs/THREAT-MODEL.md):
  --key FILE                  tracker signing key, Solana CLI keypair file (created 0600 when missing;
                              refused when others may read it). Without it: an ephemeral key per run
  --trusted-payer KEY         base58 key of a settler whose grants bind viewer sessions (repeatable;
                              none = every session refused, so no integrity report counts)
  --min-reporters N           distinct users who must report a relay before its health drops (default ${DEFAULT_MIN_REPORTERS})
  --max-reporters-per-range N reporting users per relay counted per IPv4 /24 or IPv6 /48 (default ${DEFAULT_MAX_REPORTERS_PER_RANGE})
  --relay-admission MODE      open (any relay key) or allowlist (default open)
  --relay-allowlist FILE      with allowlist: one base58 relay id per line, # comments; SIGHUP re-reads
                              it and closes relays no longer listed
  --max-relays-per-range N    registered relays per IPv4 /24 or IPv6 /48 (default ${DEFAULT_MAX_RELAYS_PER_RANGE})
  --max-pending-offers-per-viewer N
                              offers one viewer connection may have pending (default ${DEFAULT_MAX_PENDING_OFFERS_PER_VIEWER})
  --max-pending-offers-per-range N
                              offers pending to one relay from one address range (default ${DEFAULT_MAX_PENDING_OFFERS_PER_RANGE})
  --pending-offer-window-ms N how long a forwarded offer counts as pending: the relays' connect
                              timeout (default ${DEFAULT_PENDING_OFFER_WINDOW_MS})
  --max-relays-handed-per-minute N
                              relays newly handed to one viewer connection per minute (default ${DEFAULT_MAX_RELAYS_HANDED_PER_MINUTE})
  --status-token TOKEN        show relays' addresses in /status to \`Authorization: Bearer TOKEN\`
                              (16+ characters; prefer RELAYCAST_STATUS_TOKEN: flags show in \`ps\`).
                              Without a token, /status never shows relays' addresses

ICE:
  --stun URL                  STUN server handed to every peer in hello (repeatable), e.g. stun:stun.example.com:3478
  --turn URL                  TURN server (repeatable), handed out only on a viewer's \`turn\` request for a
                              relay it was given; needs the shared secret in RELAYCAST_TURN_SECRET (coturn
                              use-auth-secret; harden coturn as docs/NAT.md says)
  --turn-credential-ttl-ms N  TURN credential lifetime, 60000..3600000 (default ${DEFAULT_TURN_CREDENTIAL_TTL_MS})
  --turn-requests-per-minute N
                              TURN requests per viewer connection per minute (default ${DEFAULT_TURN_REQUESTS_PER_CONNECTION_PER_MINUTE})
  --turn-requests-per-range-per-minute N
                              TURN requests per IPv4 /24 or IPv6 /48 per minute (default ${DEFAULT_TURN_REQUESTS_PER_RANGE_PER_MINUTE})
  --help                      show this text

Logs are JSON lines on stdout. SIGINT/SIGTERM close connections and exit 0.
`;

function fail(message: string, exitCode: number): never {
  process.stderr.write(`relaycast-tracker: ${message}\n`);
  process.exit(exitCode);
}

function intFlag(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isSafeInteger(n) || n < min || n > max) fail(`--${name} must be an integer in ${min}..${max}`, 2);
  return n;
}

/** Drops undefined fields, so a flag not given leaves the library default in place. */
function defined<T extends Record<string, number | undefined>>(o: T): { [K in keyof T]?: number } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as { [K in keyof T]?: number };
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'heartbeat-interval-ms': { type: 'string' },
        'heartbeat-timeout-ms': { type: 'string' },
        'log-level': { type: 'string' },
        stun: { type: 'string', multiple: true },
        turn: { type: 'string', multiple: true },
        'reachability-timeout-ms': { type: 'string' },
        'no-reachability-test': { type: 'boolean' },
        key: { type: 'string' },
        'trusted-payer': { type: 'string', multiple: true },
        'min-reporters': { type: 'string' },
        'max-reporters-per-range': { type: 'string' },
        'relay-admission': { type: 'string' },
        'relay-allowlist': { type: 'string' },
        'max-relays-per-range': { type: 'string' },
        'max-pending-offers-per-viewer': { type: 'string' },
        'max-pending-offers-per-range': { type: 'string' },
        'max-relays-handed-per-minute': { type: 'string' },
        'pending-offer-window-ms': { type: 'string' },
        'status-token': { type: 'string' },
        'turn-credential-ttl-ms': { type: 'string' },
        'turn-requests-per-minute': { type: 'string' },
        'turn-requests-per-range-per-minute': { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`relaycast-tracker: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const level = values['log-level'] ?? DEFAULT_LOG_LEVEL;
  if (!LOG_LEVELS.includes(level)) fail(`--log-level must be one of ${LOG_LEVELS.join(', ')}`, 2);
  const port = intFlag(values.port, 'port', 0, 65_535) ?? DEFAULT_CLI_PORT;
  const heartbeatIntervalMs = intFlag(values['heartbeat-interval-ms'], 'heartbeat-interval-ms', 1, 3_600_000);
  const heartbeatTimeoutMs = intFlag(values['heartbeat-timeout-ms'], 'heartbeat-timeout-ms', 1, Number.MAX_SAFE_INTEGER);
  const logger = pino({ level });
  const reachability = {
    enabled: values['no-reachability-test'] !== true,
    timeoutMs: intFlag(values['reachability-timeout-ms'], 'reachability-timeout-ms', 100, 120_000),
  };
  const admission = values['relay-admission'] ?? 'open';
  if (admission !== 'open' && admission !== 'allowlist') fail('--relay-admission must be open or allowlist', 2);
  if (admission === 'allowlist' && values['relay-allowlist'] === undefined) fail('--relay-admission allowlist needs --relay-allowlist FILE', 2);
  if (admission === 'open' && values['relay-allowlist'] !== undefined) fail('--relay-allowlist needs --relay-admission allowlist', 2);
  const reputation = {
    minReporters: intFlag(values['min-reporters'], 'min-reporters', 1, 64),
    maxReportersPerRange: intFlag(values['max-reporters-per-range'], 'max-reporters-per-range', 1, 1_000),
  };
  const limits = {
    maxRelaysPerRange: intFlag(values['max-relays-per-range'], 'max-relays-per-range', 1, 1_000_000),
    maxPendingOffersPerViewer: intFlag(values['max-pending-offers-per-viewer'], 'max-pending-offers-per-viewer', 1, 1_000),
    maxPendingOffersPerRange: intFlag(values['max-pending-offers-per-range'], 'max-pending-offers-per-range', 1, 100_000),
    maxRelaysHandedPerMinute: intFlag(values['max-relays-handed-per-minute'], 'max-relays-handed-per-minute', 1, 10_000),
    pendingOfferWindowMs: intFlag(values['pending-offer-window-ms'], 'pending-offer-window-ms', 1_000, 600_000),
  };
  const turnLimits = {
    turnCredentialTtlMs: intFlag(values['turn-credential-ttl-ms'], 'turn-credential-ttl-ms', 60_000, 3_600_000),
    turnRequestsPerConnectionPerMinute: intFlag(values['turn-requests-per-minute'], 'turn-requests-per-minute', 1, 1_000),
    turnRequestsPerRangePerMinute: intFlag(values['turn-requests-per-range-per-minute'], 'turn-requests-per-range-per-minute', 1, 100_000),
  };
  const statusToken = values['status-token'] ?? process.env['RELAYCAST_STATUS_TOKEN'];

  const controller = new AbortController();
  let stopping = false;
  let stop: () => void = () => controller.abort();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (stopping) {
      // A second signal means "now": do not wait for close handshakes.
      process.exit(0);
    }
    stopping = true;
    logger.info({ signal: sig }, 'shutting down');
    stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // The TURN secret comes from the environment, never from a flag: flags show up in `ps`.
    const ice = { stunUrls: values.stun ?? [], turnUrls: values.turn ?? [], turnSecret: process.env['RELAYCAST_TURN_SECRET'], ...defined(turnLimits) };
    let secretKey: Uint8Array | undefined;
    if (values.key !== undefined) {
      const loaded = await loadOrCreateTrackerKey(values.key, controller.signal);
      secretKey = loaded.secretKey;
      if (loaded.created) logger.info({ path: values.key }, 'created tracker key file');
    }
    const trust = {
      secretKey,
      trustedPayers: values['trusted-payer'] ?? [],
      relayAdmission: admission,
      relayAllowlist: values['relay-allowlist'] === undefined ? [] : await readRelayAllowlist(values['relay-allowlist'], controller.signal),
    } as const;
    const tracker = await startTracker(
      {
        port,
        host: values.host,
        heartbeatIntervalMs,
        heartbeatTimeoutMs,
        ice,
        reachability,
        trust,
        statusToken,
        limits: defined(limits),
        reputation: defined(reputation),
        logger,
      },
      controller.signal,
    );
    secretKey?.fill(0);
    const allowlistPath = values['relay-allowlist'];
    if (allowlistPath !== undefined) {
      // SIGHUP re-reads the allowlist: relays are added and removed without a restart.
      process.on('SIGHUP', () => {
        readRelayAllowlist(allowlistPath)
          .then((ids) => tracker.setRelayAllowlist(ids))
          .catch((err: unknown) => logger.error({ err, path: allowlistPath }, 'relay allowlist not reloaded; keeping the previous one'));
      });
    }
    stop = () => {
      void tracker.close().then(
        () => process.exit(0),
        (err: unknown) => fail(`error while closing: ${String(err)}`, 1),
      );
    };
  } catch (err) {
    if (stopping) process.exit(0);
    fail(isRelaycastError(err) ? `${err.message} (${err.code})` : String(err), 1);
  }
}

await main();
