import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { pino } from 'pino';
import { DEFAULT_LOG_LEVEL } from './constants.js';
import { loadOrCreateKeypair } from './keypair.js';
import { parseSegmentFault } from './faulty-segment-source.js';
import { parseCliArgs } from './relay-config.js';
import { startRelay, type RelayNode } from './relay-node.js';

const USAGE = `Usage: relaycast-relay start [options]

  --tracker URL                   tracker WebSocket URL, ws:// or wss:// (required)
  --allow-origin PREFIX           origin URL prefix the relay may fetch from; repeatable (required)
  --keypair FILE                  Solana CLI keypair file; created (mode 0600) if missing (required)
  --config FILE                   JSON file with the same settings in camelCase
                                  (tracker, allowOrigin [array], keypair, region, capacity,
                                  pricePerGib, cacheMaxBytes, bindAddress, rtcPort, statusPort,
                                  maxUploadBytesPerSec, logLevel); flags override it
  --region R                      region label advertised to the tracker ([a-z0-9-], <= 32)
  --capacity N                    concurrent viewers advertised (default 100)
  --price-per-gib N               advertised price, token base units per GiB (default 0)
  --cache-max-bytes N             segment cache size in bytes (default 268435456)
  --bind-address ADDR             IP address WebRTC binds to (127.0.0.1 on loopback; default all)
  --rtc-port N                    one UDP port for all viewers (default: ephemeral ports)
  --status-port N                 local status interface on 127.0.0.1: GET /status, PUT /limits (0 = any free port)
  --max-upload-bytes-per-sec N    cap on the relay's total upload; 0 = unlimited (default 0)
  --log-level L                   fatal|error|warn|info|debug|trace|silent (default ${DEFAULT_LOG_LEVEL})
  --test-fault MODE[:N]           TEST ONLY: corrupt every N-th segment served (flip|truncate|extend)
  -h, --help                      show this text

Logs are JSON lines on stdout. SIGINT/SIGTERM stop the relay gracefully.
`;

function fail(err: unknown): never {
  const text = isRelaycastError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`relaycast-relay: ${text}\n`);
  if (isRelaycastError(err, ErrorCode.CONFIG_INVALID)) process.stderr.write('Run "relaycast-relay --help" for usage.\n');
  process.exit(1);
}

async function main(): Promise<void> {
  // Signals during startup abort it; afterwards they close the relay. A second signal forces exit.
  const startup = new AbortController();
  let relay: RelayNode | undefined;
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    startup.abort();
    if (relay !== undefined) void relay.close().then(() => process.exit(0), fail);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  let parsed;
  try {
    parsed = await parseCliArgs(process.argv.slice(2), startup.signal);
  } catch (err) {
    fail(err);
  }
  if (parsed.command === 'help') {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const config = parsed.config;
  const logger = pino({ level: config.logLevel ?? DEFAULT_LOG_LEVEL });
  try {
    const { keypair, created } = await loadOrCreateKeypair(config.keypair, { logger, signal: startup.signal });
    if (created) logger.info({ relayId: keypair.relayId, path: config.keypair }, 'created a new relay keypair (keep this file safe: it is the relay wallet)');
    relay = await startRelay({
      trackerUrl: config.tracker,
      allowedOrigins: config.allowOrigin,
      keypair,
      region: config.region,
      capacity: config.capacity,
      pricePerGiB: config.pricePerGib,
      cacheMaxBytes: config.cacheMaxBytes,
      bindAddress: config.bindAddress,
      rtcPort: config.rtcPort,
      statusPort: config.statusPort,
      maxUploadBytesPerSec: config.maxUploadBytesPerSec,
      testFault: config.testFault === undefined ? undefined : parseSegmentFault(config.testFault),
      signal: startup.signal,
      logger,
    });
    logger.info({ relayId: relay.relayId, tracker: config.tracker }, 'relay registered and serving');
    if (stopping) void relay.close().then(() => process.exit(0), fail);
  } catch (err) {
    if (stopping && isRelaycastError(err, ErrorCode.ABORTED)) process.exit(0);
    fail(err);
  }
}

await main();
