import { parseArgs } from 'node:util';
import { isRelaycastError } from '@relaycast/protocol';
import { pino } from 'pino';
import { DEFAULT_LOG_LEVEL, DEFAULT_TRACKER_HOST, DEFAULT_TRACKER_PORT } from './constants.js';
import { startTracker } from './tracker-server.js';

const USAGE = `Usage: relaycast-tracker [options]

  --port N                    TCP port for WebSocket and HTTP (default ${DEFAULT_TRACKER_PORT}; 0 = any free port)
  --host ADDR                 interface to bind (default ${DEFAULT_TRACKER_HOST})
  --heartbeat-interval-ms N   heartbeat interval told to relays (default 5000)
  --heartbeat-timeout-ms N    evict relays silent this long (default 3 x interval)
  --log-level L               trace|debug|info|warn|error (default ${DEFAULT_LOG_LEVEL})
  --help                      show this text
`;

function intFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) {
    process.stderr.write(`relaycast-tracker: --${name} must be a non-negative integer\n`);
    process.exit(2);
  }
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
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`relaycast-tracker: ${(err as Error).message}\n\n${USAGE}`);
    process.exit(2);
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const logger = pino({ level: values['log-level'] ?? DEFAULT_LOG_LEVEL });
  try {
    const tracker = await startTracker({
      port: intFlag(values.port, 'port'),
      host: values.host,
      heartbeatIntervalMs: intFlag(values['heartbeat-interval-ms'], 'heartbeat-interval-ms'),
      heartbeatTimeoutMs: intFlag(values['heartbeat-timeout-ms'], 'heartbeat-timeout-ms'),
      logger,
    });
    const stop = (): void => {
      void tracker.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (err) {
    process.stderr.write(`relaycast-tracker: ${isRelaycastError(err) ? `${err.code}: ${err.message}` : String(err)}\n`);
    process.exit(1);
  }
}

await main();
