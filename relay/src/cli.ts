import { parseArgs } from 'node:util';
import { isRelaycastError } from '@relaycast/protocol';
import { pino } from 'pino';
import { DEFAULT_LOG_LEVEL } from './constants.js';
import { loadOrCreateKeypair } from './keypair.js';
import { checkInt, readConfigFile, resolveConfig, type RelayConfig } from './relay-config.js';
import { startRelay } from './relay-node.js';

const USAGE = `Usage: relaycast-relay start [options]

  --tracker URL                   tracker WebSocket URL (required)
  --allow-origin PREFIX           origin URL prefix the relay may fetch from; repeatable (required)
  --keypair FILE                  Solana CLI keypair file; created (0600) if missing (required)
  --config FILE                   JSON file with the same settings in camelCase; flags win
  --region R                      region label advertised to the tracker
  --capacity N                    concurrent viewers advertised (default 100)
  --price-per-gib N               advertised price in token base units per GiB (default 0)
  --cache-max-bytes N             segment cache size (default 268435456)
  --bind-address ADDR             address WebRTC binds to (127.0.0.1 on loopback)
  --rtc-port N                    one UDP port for all viewers (default: ephemeral ports)
  --max-upload-bytes-per-sec N    cap on the relay's total upload (default unlimited)
  --log-level L                   trace|debug|info|warn|error (default ${DEFAULT_LOG_LEVEL})
  --help                          show this text
`;

function fail(message: string, code = 1): never {
  process.stderr.write(`relaycast-relay: ${message}\n`);
  process.exit(code);
}

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  if (command === '--help' || command === 'help' || command === undefined) {
    process.stdout.write(USAGE);
    return;
  }
  if (command !== 'start') fail(`unknown command "${command}"\n\n${USAGE}`, 2);
  let values;
  try {
    ({ values } = parseArgs({
      args: rest,
      options: {
        tracker: { type: 'string' },
        'allow-origin': { type: 'string', multiple: true },
        keypair: { type: 'string' },
        config: { type: 'string' },
        region: { type: 'string' },
        capacity: { type: 'string' },
        'price-per-gib': { type: 'string' },
        'cache-max-bytes': { type: 'string' },
        'bind-address': { type: 'string' },
        'rtc-port': { type: 'string' },
        'max-upload-bytes-per-sec': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n\n${USAGE}`, 2);
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    return;
  }
  const int = (v: string | undefined, name: string): number | undefined => (v === undefined ? undefined : checkInt(v, name));
  let config: RelayConfig;
  try {
    const file = values.config === undefined ? {} : await readConfigFile(values.config);
    config = resolveConfig(file, {
      tracker: values.tracker,
      allowOrigin: values['allow-origin'],
      keypair: values.keypair,
      region: values.region,
      capacity: int(values.capacity, 'capacity'),
      pricePerGib: values['price-per-gib'],
      cacheMaxBytes: int(values['cache-max-bytes'], 'cache-max-bytes'),
      bindAddress: values['bind-address'],
      rtcPort: int(values['rtc-port'], 'rtc-port'),
      maxUploadBytesPerSec: int(values['max-upload-bytes-per-sec'], 'max-upload-bytes-per-sec'),
      logLevel: values['log-level'],
    });
  } catch (err) {
    fail(isRelaycastError(err) ? `${err.code}: ${err.message}` : String(err), 2);
  }
  const logger = pino({ level: config.logLevel ?? DEFAULT_LOG_LEVEL });
  try {
    const { keypair, created } = await loadOrCreateKeypair(config.keypair);
    if (created) logger.info({ relayId: keypair.relayId, path: config.keypair }, 'created a new relay keypair');
    const relay = await startRelay({
      trackerUrl: config.tracker,
      allowedOrigins: config.allowOrigin,
      keypair,
      region: config.region,
      capacity: config.capacity,
      pricePerGiB: config.pricePerGib,
      cacheMaxBytes: config.cacheMaxBytes,
      bindAddress: config.bindAddress,
      rtcPort: config.rtcPort,
      maxUploadBytesPerSec: config.maxUploadBytesPerSec,
      logger,
    });
    logger.info({ relayId: relay.relayId }, 'relay started');
    const stop = (): void => {
      void relay.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (err) {
    fail(isRelaycastError(err) ? `${err.code}: ${err.message}` : String(err));
  }
}

await main();
