import { parseArgs } from 'node:util';
import { isRelaycastError } from '@relaycast/protocol';
import { pino } from 'pino';
import {
  DEFAULT_CLI_PORT,
  DEFAULT_HEARTBEAT_INTERVAL_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_FACTOR,
  DEFAULT_LOG_LEVEL,
  DEFAULT_REACHABILITY_TIMEOUT_MS,
  DEFAULT_TRACKER_HOST,
} from './constants.js';
import { startTracker } from './tracker-server.js';

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

const USAGE = `Usage: relaycast-tracker [options]

Runs a Relaycast tracker: WebSocket protocol and HTTP /healthz, /status on one port.

  --port N                    TCP port (default ${DEFAULT_CLI_PORT}; 0 = any free port)
  --host ADDR                 interface to bind (default ${DEFAULT_TRACKER_HOST})
  --heartbeat-interval-ms N   heartbeat interval told to relays (default ${DEFAULT_HEARTBEAT_INTERVAL_MS})
  --heartbeat-timeout-ms N    evict relays silent this long (default ${DEFAULT_HEARTBEAT_TIMEOUT_FACTOR} x interval)
  --stun URL                  STUN server handed to peers (repeatable), e.g. stun:stun.example.com:3478
  --turn URL                  TURN server handed to peers with time-limited credentials (repeatable);
                              needs the shared secret in RELAYCAST_TURN_SECRET (coturn use-auth-secret)
  --reachability-timeout-ms N how long a relay's reachability probe may take (default ${DEFAULT_REACHABILITY_TIMEOUT_MS})
  --no-reachability-test      do not probe relays; every relay counts as reachable
  --log-level L               ${LOG_LEVELS.join('|')} (default ${DEFAULT_LOG_LEVEL})
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
    const ice = { stunUrls: values.stun ?? [], turnUrls: values.turn ?? [], turnSecret: process.env['RELAYCAST_TURN_SECRET'] };
    const tracker = await startTracker({ port, host: values.host, heartbeatIntervalMs, heartbeatTimeoutMs, ice, reachability, logger }, controller.signal);
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
