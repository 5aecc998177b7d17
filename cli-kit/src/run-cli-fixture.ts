// A bin made of the kit alone, for run-cli.test.ts: started with `node --import tsx`.
import { defineCommand } from './command.js';
import { LOG_SETTINGS, componentLogger } from './logging.js';
import { runCli, waitForAbort } from './run-cli.js';
import { defineSettings } from './settings.js';
import { bool, int } from './values.js';

const SETTINGS = defineSettings(
  {
    port: { type: int({ min: 1, max: 65_535 }), flag: 'port', default: 8000, help: 'a port' },
    hang: { type: bool(), flag: 'hang', help: 'never stop gracefully (a second signal is needed)' },
    fail: { type: bool(), flag: 'fail', help: 'fail after start with a non-configuration error' },
    ...LOG_SETTINGS,
  },
  { envPrefix: 'FIXTURE_' },
);

await runCli(
  'fixture-bin',
  defineCommand({
    settings: SETTINGS,
    usage: { synopsis: '[options]', about: 'A bin of the kit alone.' },
    run: async ({ values, logger, signal }) => {
      const log = componentLogger(logger, 'fixture');
      log.info({ port: values.port }, 'ready');
      if (values.fail === true) throw new Error('the work failed');
      await waitForAbort(signal);
      log.info('stopping');
      if (values.hang === true) await new Promise(() => setInterval(() => undefined, 1_000));
      log.info('stopped');
    },
  }),
);
