import { LOG_SETTINGS, componentLogger, defineCommand, runCli, waitForAbort } from '@relaycast/cli-kit';
import { DEVNET_SETTINGS } from './devnet-settings.js';
import { startDevnet } from './devnet.js';

const BIN = 'relaycast-devnet';
const SETTINGS = DEVNET_SETTINGS.extend(LOG_SETTINGS);

const DEVNET = defineCommand({
  settings: SETTINGS,
  usage: {
    synopsis: `[options]   (or npm start -- [options])`,
    about: `Runs a whole Relaycast network on this machine and prints the URL of its page. The log lines of
every process it starts are shown with its own, each under the process's name (--log-level applies
to them all); every process also writes its full log to <state-dir>/logs.`,
    notes: 'Ctrl-C stops every process it started; a second Ctrl-C exits 130 at once.',
  },
  run: async ({ values, logger, signal, stdout }) => {
    const devnet = await startDevnet({ ...values, signal, logger });
    stdout.write(`\n  Relaycast is running: ${devnet.url}\n\n  (state in ${devnet.stateDir}; Ctrl-C stops everything)\n\n`);
    await waitForAbort(signal);
    componentLogger(logger, 'devnet').info('stopping every process');
    await devnet.close();
  },
});

await runCli(BIN, DEVNET);
