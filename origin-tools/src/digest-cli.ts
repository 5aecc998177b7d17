import { EXIT, LOG_SETTINGS, bool, configInvalid, createLogger, defineSettings, durationMs, runCli } from '@relaycast/cli-kit';
import { isAbortError } from '@relaycast/protocol';
import { DEFAULT_WATCH_INTERVAL_MS } from './constants.js';
import { DigestWriter } from './digest-writer.js';

const BIN = 'relaycast-digest';

const SETTINGS = defineSettings(
  {
    watch: { type: bool(), flag: 'watch', help: 'keep the sidecars current while a live stream writes segments (Ctrl-C stops)' },
    intervalMs: { type: durationMs({ min: 10 }), flag: 'interval-ms', default: DEFAULT_WATCH_INTERVAL_MS, help: 'rescan interval in watch mode' },
    ...LOG_SETTINGS,
  },
  { envPrefix: 'RELAYCAST_DIGEST_' },
);

const USAGE = `Usage: ${BIN} <folder> [options]

Writes <playlist>.digests.json (SHA-256 per segment) beside every HLS media playlist under <folder>,
so viewers can verify what relays deliver. Serve the sidecars with the playlists.

${SETTINGS.usage()}
In watch mode SIGINT/SIGTERM stop after one last pass, so every segment written until then has its
digest; a second one exits 130 at once.
`;

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

await runCli(BIN, async ({ argv, env, signal, stdout }) => {
  const cl = await SETTINGS.parseCommandLine(argv, { env, signal, allowPositionals: true });
  if (cl.help) return void stdout.write(USAGE);
  const [folder, ...more] = cl.positionals;
  if (folder === undefined || more.length > 0) throw configInvalid(`exactly one folder is required (got ${cl.positionals.length})`);
  const { intervalMs, logLevel, logFormat } = cl.values;
  const logger = createLogger({ level: logLevel, format: logFormat });
  if (cl.values.watch !== true) {
    try {
      const { playlists, written } = await new DigestWriter(folder, { signal, logger }).scan();
      logger.info({ playlists, written: written.length }, 'digests written');
      return EXIT.OK;
    } catch (err) {
      // Stopped by Ctrl-C before every sidecar was written: not a success.
      if (signal.aborted && isAbortError(err)) return EXIT.INTERRUPTED;
      throw err;
    }
  }
  // Watch mode: passes are not cut short by the first signal (the writer gets none), and one more
  // pass runs after it, so segments written since the previous pass get their digests too.
  const writer = new DigestWriter(folder, { logger });
  logger.info({ folder, intervalMs }, 'watching for segments');
  for (;;) {
    const stopping = signal.aborted;
    try {
      const { written } = await writer.scan();
      if (written.length > 0) logger.debug({ written: written.length }, 'digests updated');
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'digest scan failed; retrying');
    }
    if (stopping) break;
    await pause(intervalMs, signal);
  }
  logger.info('stopped watching');
  return EXIT.OK;
});
