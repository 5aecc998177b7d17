import { LOG_SETTINGS, componentLogger, defineCommand, defineSettings, int, runCli, text, waitForAbort } from '@relaycast/cli-kit';
import {
  DEFAULT_CHAIN_PORT,
  DEFAULT_RELAY_COUNT,
  DEFAULT_RELAY_STATUS_PORT_BASE,
  DEFAULT_SETTLER_PORT,
  DEFAULT_STATE_DIR,
  DEFAULT_TRACKER_PORT,
  DEFAULT_WEB_PORT,
  MAX_RELAY_COUNT,
  SAMPLE_VOD_DURATION_SEC,
} from './constants.js';
import { startDevnet } from './devnet.js';

const BIN = 'relaycast-devnet';
// Every component listens on a port it was given: relays are told the tracker's, the page the settler's.
const port = int({ min: 1, max: 65_535 });

const SETTINGS = defineSettings(
  {
    stateDir: {
      type: text({ metavar: 'DIR' }),
      flag: 'state-dir',
      default: DEFAULT_STATE_DIR,
      help: 'keys, media, databases and logs, reused by the next start',
    },
    webPort: { type: port, flag: 'port', default: DEFAULT_WEB_PORT, help: 'page, API and origin' },
    trackerPort: { type: port, flag: 'tracker-port', default: DEFAULT_TRACKER_PORT, help: 'tracker' },
    chainPort: {
      type: int({ min: 1, max: 65_534 }),
      flag: 'chain-port',
      default: DEFAULT_CHAIN_PORT,
      help: 'embedded Solana chain JSON-RPC; its WebSocket uses N + 1',
    },
    settlerPort: { type: port, flag: 'settler-port', default: DEFAULT_SETTLER_PORT, help: 'settlement service' },
    relayStatusPortBase: {
      type: int({ min: 1, max: 65_536 - MAX_RELAY_COUNT }),
      flag: 'relay-status-port',
      default: DEFAULT_RELAY_STATUS_PORT_BASE,
      help: "first relay's status port; relay i uses N + i",
    },
    relays: { type: int({ min: 1, max: MAX_RELAY_COUNT }), flag: 'relays', default: DEFAULT_RELAY_COUNT, help: 'relays to run' },
    vodSeconds: {
      type: int({ min: 1, max: 3_600, unit: 's' }),
      flag: 'vod-seconds',
      default: SAMPLE_VOD_DURATION_SEC,
      help: 'length of the sample VOD made on the first start',
    },
    ...LOG_SETTINGS,
  },
  { envPrefix: 'RELAYCAST_DEVNET_' },
);

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
