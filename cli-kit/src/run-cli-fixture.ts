// A bin made of the kit alone, for run-cli.test.ts: started with `node --import tsx`.
import { LOG_SETTINGS, componentLogger, createLogger } from './logging.js';
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

await runCli('fixture-bin', async ({ argv, env, signal, stdout }) => {
  const cl = await SETTINGS.parseCommandLine(argv, { env, signal });
  if (cl.help) {
    stdout.write(SETTINGS.usage());
    return 0;
  }
  const log = componentLogger(createLogger({ level: cl.values.logLevel, format: cl.values.logFormat }), 'fixture');
  log.info({ port: cl.values.port }, 'ready');
  if (cl.values.fail === true) throw new Error('the work failed');
  await waitForAbort(signal);
  if (cl.values.hang === true) await new Promise(() => setInterval(() => undefined, 1_000));
  log.info('stopped');
  return 0;
});
