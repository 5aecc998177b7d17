import { parseArgs } from 'node:util';
import { isRelaycastError } from '@relaycast/protocol';
import { pino } from 'pino';
import { DEFAULT_LOG_LEVEL } from './constants.js';
import { DigestWriter } from './digest-writer.js';

const USAGE = `Usage: relaycast-digest <folder> [options]

Writes <playlist>.digests.json (SHA-256 per segment) beside every HLS media playlist under <folder>,
so viewers can verify what relays deliver. Serve the sidecars with the playlists.

  --watch            keep the sidecars current while a live stream writes segments (Ctrl-C stops)
  --interval-ms N    rescan interval in watch mode (default 500)
  --log-level L      trace|debug|info|warn|error (default ${DEFAULT_LOG_LEVEL})
  --help             show this text
`;

function fail(message: string, code: number): never {
  process.stderr.write(`relaycast-digest: ${message}\n`);
  process.exit(code);
}

let parsed;
try {
  parsed = parseArgs({
    allowPositionals: true,
    options: {
      watch: { type: 'boolean' },
      'interval-ms': { type: 'string' },
      'log-level': { type: 'string' },
      help: { type: 'boolean' },
    },
  });
} catch (err) {
  fail(`${(err as Error).message}\n\n${USAGE}`, 2);
}
const { values, positionals } = parsed;
if (values.help === true) {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (positionals.length !== 1) fail(`exactly one folder is required\n\n${USAGE}`, 2);
const intervalMs = Number(values['interval-ms'] ?? 500);
if (!Number.isSafeInteger(intervalMs) || intervalMs < 10) fail('--interval-ms must be an integer of at least 10', 2);

const logger = pino({ level: values['log-level'] ?? DEFAULT_LOG_LEVEL });
const controller = new AbortController();
process.once('SIGINT', () => controller.abort());
process.once('SIGTERM', () => controller.abort());
const writer = new DigestWriter(positionals[0] as string, { signal: controller.signal, logger });
try {
  if (values.watch === true) {
    logger.info({ folder: positionals[0], intervalMs }, 'watching for segments');
    await writer.watch(intervalMs);
  } else {
    const { playlists, written } = await writer.scan();
    logger.info({ playlists, written: written.length }, 'digests written');
  }
} catch (err) {
  fail(isRelaycastError(err) ? `${err.code}: ${err.message}` : String(err), 1);
}
