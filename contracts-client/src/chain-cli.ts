import { LOG_SETTINGS, defineCommand, defineSettings, durationMs, int, runCli, text, waitForAbort } from '@relaycast/cli-kit';
import { DEFAULT_CHAIN_HOST, DEFAULT_CHAIN_PORT, DEFAULT_SLOT_MS } from './constants.js';
import { startEmbeddedChain } from './embedded-chain/chain-server.js';

const BIN = 'relaycast-chain';

const SETTINGS = defineSettings(
  {
    // The WebSocket listens on port + 1, so the last port has no pair.
    port: { type: int({ max: 65_534 }), flag: 'port', default: DEFAULT_CHAIN_PORT, help: 'HTTP JSON-RPC port; WebSocket on N + 1; 0 = any free pair' },
    host: { type: text({ metavar: 'ADDR' }), flag: 'host', default: DEFAULT_CHAIN_HOST, help: 'address to bind' },
    stateFile: {
      type: text({ metavar: 'PATH' }),
      flag: 'state-file',
      defaultText: 'none: in memory only',
      help: 'keep accounts and history in PATH (+ PATH.history.jsonl) across restarts',
    },
    slotMs: { type: durationMs({ min: 1 }), flag: 'slot-ms', default: DEFAULT_SLOT_MS, help: 'slot length' },
    ...LOG_SETTINGS,
  },
  { envPrefix: 'RELAYCAST_CHAIN_' },
);

const CHAIN = defineCommand({
  settings: SETTINGS,
  usage: {
    synopsis: '[options]',
    about: 'A local Solana JSON-RPC + WebSocket endpoint over litesvm, for development and tests.',
    notes: `The "chain listening" log line carries rpcUrl and wsUrl. SIGINT/SIGTERM stop the chain (the state
file is always up to date); a second one exits 130 at once.`,
  },
  run: async ({ values, logger, signal }) => {
    const chain = await startEmbeddedChain({ ...values, logger, signal });
    logger.info({ rpcUrl: chain.rpcUrl, wsUrl: chain.wsUrl }, 'chain listening');
    await waitForAbort(signal);
    await chain.close();
    logger.info('chain stopped');
  },
});

await runCli(BIN, CHAIN);
