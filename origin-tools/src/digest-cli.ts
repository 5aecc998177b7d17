import { setTimeout as sleep } from 'node:timers/promises';
import { LOG_SETTINGS, bool, configInvalid, defineCommand, defineSettings, durationMs, runCli } from '@relaycast/cli-kit';
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

const DIGEST = defineCommand({
  settings: SETTINGS,
  usage: {
    synopsis: '<folder> [options]',
    about: `Writes <playlist>.digests.json (SHA-256 per segment) beside every HLS media playlist under <folder>,
so viewers can verify what relays deliver. Serve the sidecars with the playlists.`,
    notes: `In watch mode SIGINT/SIGTERM stop after one last pass, so every segment written until then has its
digest; a second one exits 130 at once. Without --watch, a signal stops the scan: exit 130.`,
  },
  allowPositionals: true,
  // Without --watch, one scan is the work: cut short by Ctrl-C, not every sidecar was written. (Watch
  // mode hands its passes no signal, so no abort ends it.)
  oneShot: true,
  run: async ({ values, positionals, logger, signal }) => {
    const [folder, ...more] = positionals;
    if (folder === undefined || more.length > 0) throw configInvalid(`exactly one folder is required (got ${positionals.length})`);
    if (values.watch !== true) {
      const { playlists, written } = await new DigestWriter(folder, { signal, logger }).scan();
      logger.info({ playlists, written: written.length }, 'digests written');
      return;
    }
    // Watch mode: passes are not cut short by the first signal (the writer gets none), and one more
    // pass runs after it, so segments written since the previous pass get their digests too.
    const writer = new DigestWriter(folder, { logger });
    logger.info({ folder, intervalMs: values.intervalMs }, 'watching for segments');
    for (;;) {
      const stopping = signal.aborted;
      try {
        const { written } = await writer.scan();
        if (written.length > 0) logger.debug({ written: written.length }, 'digests updated');
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'digest scan failed; retrying');
      }
      if (stopping) break;
      // The first signal ends the wait at once (its rejection is that abort), for the last pass.
      await sleep(values.intervalMs, undefined, { signal }).catch(() => undefined);
    }
    logger.info('stopped watching');
  },
});

await runCli(BIN, DIGEST);
