import { parseArgs } from 'node:util';
import { ErrorCode, RelaycastError, isRelaycastError } from '@relaycast/protocol';
import { pino, type Level } from 'pino';
import { DEFAULT_CHAIN_HOST, DEFAULT_CHAIN_PORT, DEFAULT_LOG_LEVEL, DEFAULT_SLOT_MS } from './constants.js';
import { startEmbeddedChain, type EmbeddedChain } from './embedded-chain/chain-server.js';

const USAGE = `Usage: relaycast-chain [options]

A local Solana JSON-RPC + WebSocket endpoint over litesvm, for development and tests.

  --port N            HTTP JSON-RPC port; WebSocket on N + 1; 0 = any free pair (default ${DEFAULT_CHAIN_PORT})
  --host ADDR         address to bind (default ${DEFAULT_CHAIN_HOST})
  --state-file PATH   keep accounts and history in PATH (+ PATH.history.jsonl) across restarts
  --slot-ms N         slot length in milliseconds (default ${DEFAULT_SLOT_MS})
  --log-level L       fatal|error|warn|info|debug|trace|silent (default ${DEFAULT_LOG_LEVEL})
  -h, --help          show this text

Logs are JSON lines on stdout; "chain listening" carries rpcUrl and wsUrl.
SIGINT/SIGTERM stop the chain (the state file is always up to date).
`;

const LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']);

function fail(err: unknown): never {
  const text = isRelaycastError(err) ? `${err.code}: ${err.message}` : err instanceof Error ? err.message : String(err);
  process.stderr.write(`relaycast-chain: ${text}\n`);
  process.exit(1);
}

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `--${name} must be a non-negative integer`);
  return Number(value);
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'state-file': { type: 'string' },
        'slot-ms': { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(new RelaycastError(ErrorCode.CONFIG_INVALID, (err as Error).message));
  }
  if (values.help === true) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const level = values['log-level'] ?? DEFAULT_LOG_LEVEL;
  if (!LEVELS.has(level)) fail(new RelaycastError(ErrorCode.CONFIG_INVALID, `unknown --log-level ${level}`));
  const logger = pino({ level: level as Level });

  const startup = new AbortController();
  let chain: EmbeddedChain | undefined;
  let stopping = false;
  const onSignal = (): void => {
    if (stopping) process.exit(1);
    stopping = true;
    startup.abort();
    if (chain !== undefined) void stop(chain);
  };
  const stop = async (c: EmbeddedChain): Promise<void> => {
    try {
      await c.close();
    } catch (err) {
      fail(err);
    }
    logger.info('chain stopped');
    process.exit(0);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    chain = await startEmbeddedChain({
      port: intFlag('port', values.port),
      host: values.host,
      stateFile: values['state-file'],
      slotMs: intFlag('slot-ms', values['slot-ms']),
      logger,
      signal: startup.signal,
    });
  } catch (err) {
    if (stopping && isRelaycastError(err, ErrorCode.ABORTED)) process.exit(0);
    fail(err);
  }
  logger.info({ rpcUrl: chain.rpcUrl, wsUrl: chain.wsUrl }, 'chain listening');
  if (stopping) void stop(chain);
}

await main();
