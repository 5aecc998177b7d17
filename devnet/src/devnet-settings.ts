import { defineSettings, int, text } from '@relaycast/cli-kit';
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

/**
 * Every setting of startDevnet, declared once: the devnet's bin reads them from flags and
 * RELAYCAST_DEVNET_* variables (with its log settings), and startDevnet checks its options with the
 * same table, bounds included.
 */
// Every component listens on a port it was given: relays are told the tracker's, the page the settler's.
const port = int({ min: 1, max: 65_535 });

export const DEVNET_SETTINGS = defineSettings(
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
  },
  { envPrefix: 'RELAYCAST_DEVNET_' },
);
