import { parseArgs } from 'node:util';
import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { pino } from 'pino';
import { DEFAULT_CHAIN_PORT, DEFAULT_SETTLER_PORT, DEFAULT_RELAY_COUNT, DEFAULT_RELAY_STATUS_PORT_BASE, DEFAULT_STATE_DIR, DEFAULT_TRACKER_PORT, DEFAULT_WEB_PORT, SAMPLE_VOD_DURATION_SEC } from './constants.js';
import { startDevnet, type Devnet } from './devnet.js';

const USAGE = `Usage: npm start -- [options]   (or relaycast-devnet [options])

Runs a whole Relaycast network on this machine and prints the URL of its page.

  --state-dir DIR          keys, media, databases and logs, reused by the next start (default ${DEFAULT_STATE_DIR})
  --port N                 page, API and origin (default ${DEFAULT_WEB_PORT})
  --tracker-port N         tracker (default ${DEFAULT_TRACKER_PORT})
  --chain-port N           embedded Solana chain JSON-RPC; its WebSocket uses N + 1 (default ${DEFAULT_CHAIN_PORT})
  --settler-port N         settlement service (default ${DEFAULT_SETTLER_PORT})
  --relay-status-port N    first relay's status port; relay i uses N + i (default ${DEFAULT_RELAY_STATUS_PORT_BASE})
  --relays N               relays to run, 1-16 (default ${DEFAULT_RELAY_COUNT})
  --vod-seconds N          length of the sample VOD made on the first start (default ${SAMPLE_VOD_DURATION_SEC})
  --log-level L            this launcher's log level (children log to <state-dir>/logs)
  -h, --help               show this text

Ctrl-C stops every process it started.
`;

function int(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[0-9]{1,5}$/.test(v)) {
    process.stderr.write(`relaycast-devnet: ${flag} must be a number\n${USAGE}`);
    process.exit(2);
  }
  return Number(v);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        'state-dir': { type: 'string' },
        port: { type: 'string' },
        'tracker-port': { type: 'string' },
        'chain-port': { type: 'string' },
        'settler-port': { type: 'string' },
        'relay-status-port': { type: 'string' },
        relays: { type: 'string' },
        'vod-seconds': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (err) {
    process.stderr.write(`relaycast-devnet: ${(err as Error).message}\n${USAGE}`);
    process.exit(2);
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const logger = pino({ level: values['log-level'] ?? 'info' });
  const startup = new AbortController();
  let devnet: Devnet | undefined;
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    startup.abort();
    logger.info('stopping every process');
    void (devnet?.close() ?? Promise.resolve()).then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    devnet = await startDevnet({
      stateDir: values['state-dir'],
      webPort: int(values.port, '--port'),
      trackerPort: int(values['tracker-port'], '--tracker-port'),
      chainPort: int(values['chain-port'], '--chain-port'),
      settlerPort: int(values['settler-port'], '--settler-port'),
      relayStatusPortBase: int(values['relay-status-port'], '--relay-status-port'),
      relays: int(values.relays, '--relays'),
      vodSeconds: int(values['vod-seconds'], '--vod-seconds'),
      signal: startup.signal,
      logger,
    });
  } catch (err) {
    if (stopping) return;
    const text = isRelaycastError(err) ? `${err.code}: ${err.message}` : String(err);
    process.stderr.write(`relaycast-devnet: ${text}\n`);
    process.exit(isRelaycastError(err, ErrorCode.CONFIG_INVALID) ? 2 : 1);
  }
  if (stopping) return void devnet.close();
  process.stdout.write(`\n  Relaycast is running: ${devnet.url}\n\n  (state in ${devnet.stateDir}; Ctrl-C stops everything)\n\n`);
}

await main();
