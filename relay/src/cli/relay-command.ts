import {
  configInvalid,
  defineCommand,
  waitForAbort,
  type CliContext,
  type CliMain,
  type Command,
  type CommandContext,
  type SettingsSpec,
} from '@relaycast/cli-kit';
import { decodePublicKey } from '@relaycast/protocol';
import type { Logger } from 'pino';
import { loadKeypair, loadOrCreateKeypair } from '../keypair.js';
import { startRelay, type RelayNodeOptions } from '../node/relay-node.js';
import { ReceiptStore } from '../payments/receipt-store.js';
import { Redeemer } from '../payments/redeemer.js';
import { REDEEM_SETTINGS, STATUS_SETTINGS, nodeSettings, receiptsDbPath, startSettings, type CliCommand, type RelayConfig } from './relay-config.js';
import { formatRelayStatus, readRelayStatus } from './status-command.js';

/** What a bin built on the relay's CLI may add (relay/src/testing/faulty-relay-cli.ts). */
export interface RelayCliHooks {
  /** More settings of `start` (flags, environment, config file, USAGE). Default: none. */
  extraSettings?: SettingsSpec | undefined;
  /** More startRelay options, once the keypair and the logger exist. Default: none. */
  startOptions?: ((c: { config: RelayConfig & Record<string, unknown>; relayId: string; logger: Logger }) => Partial<RelayNodeOptions>) | undefined;
}

const STATUS_SYNOPSIS = 'status --status-port N [--rpc-url URL --accept-payer PAYER=URL] [--json]';
const STATUS_ABOUT = `asks the running relay (started with --status-port) for viewers, cache, served bytes,
receipts and unpaid amounts, and with --rpc-url and --accept-payer its token balance; --json
prints the raw JSON. It reads --status-port, --rpc-url and --accept-payer from the same places.`;
const REDEEM_SYNOPSIS = 'redeem --keypair FILE --rpc-url URL --accept-payer PAYER=URL [--db FILE]';
const REDEEM_ABOUT = `redeems once from every --accept-payer and prints JSON (payouts, amount, balance) on
stdout, logs on stderr (default level warn); exit 0 when every payer answered, 1 otherwise.`;

/** `asks ...` → `Asks ...`: a command's own --help starts with what `start`'s lists after its name. */
const sentence = (text: string): string => text.charAt(0).toUpperCase() + text.slice(1);

/** `start`: runs the relay until the first signal, then closes it gracefully. */
function startCommand(hooks: RelayCliHooks): Command<SettingsSpec> {
  return defineCommand({
    settings: startSettings(hooks.extraSettings),
    // Also the bin's own --help: every command's form, then start's settings.
    usage: {
      synopsis: ['start [options]', STATUS_SYNOPSIS, REDEEM_SYNOPSIS],
      about: 'start: registers with the tracker and serves viewers segments fetched from the allowed origins.',
      notes: `status: ${STATUS_ABOUT}

redeem: ${REDEEM_ABOUT}

SIGINT/SIGTERM stop the relay gracefully; a second one stops it at once (exit 130). A bad setting
exits 2 with RC_ERR_CONFIG_INVALID.`,
    },
    run: async ({ given, logger, signal }) => {
      const config = given as RelayConfig & Record<string, unknown>;
      const { keypair, created } = await loadOrCreateKeypair(config.keypair, { logger, signal });
      if (created) logger.info({ relayId: keypair.relayId, path: config.keypair }, 'created a new relay keypair (keep this file safe: it is the relay wallet)');
      const relay = await startRelay({
        ...nodeSettings(config),
        receiptsDbPath: receiptsDbPath(config),
        keypair,
        signal,
        logger,
        ...hooks.startOptions?.({ config, relayId: keypair.relayId, logger }),
      });
      logger.info({ relayId: relay.relayId, tracker: config.trackerUrl }, 'relay registered and serving');
      await waitForAbort(signal);
      await relay.close();
    },
  });
}

/** `status`: the running relay's figures (and balance), as text or JSON. */
const STATUS = defineCommand({
  settings: STATUS_SETTINGS,
  usage: { synopsis: STATUS_SYNOPSIS, about: sentence(STATUS_ABOUT) },
  extraFlags: { json: { type: 'boolean' } },
  oneShot: true,
  run: async ({ values, extra, signal, stdout }) => {
    const report = await readRelayStatus({ statusPort: values.statusPort, rpcUrl: values.rpcUrl, payers: values.acceptPayers, signal });
    stdout.write(extra['json'] === true ? `${JSON.stringify(report)}\n` : formatRelayStatus(report));
  },
});

/** `redeem`: one redemption from every payer, the result as JSON on stdout (logs on stderr). */
const REDEEM = defineCommand({
  settings: REDEEM_SETTINGS,
  usage: { synopsis: REDEEM_SYNOPSIS, about: sentence(REDEEM_ABOUT) },
  logTo: 2,
  oneShot: true,
  run: async ({ values, logger, signal, stdout }) => {
    const keypair = await loadKeypair(values.keypair, { logger, signal });
    const relayKey = decodePublicKey(keypair.relayId);
    const store = ReceiptStore.open({ path: receiptsDbPath(values), relayId: keypair.relayId }, relayKey);
    try {
      const redeemer = new Redeemer({
        store,
        payers: values.acceptPayers,
        rpcUrl: values.rpcUrl,
        signer: { relayId: keypair.relayId, publicKey: relayKey, sign: (m) => keypair.sign(m) },
        logger,
      });
      const result = await redeemer.redeem(signal);
      stdout.write(`${JSON.stringify({ relayId: keypair.relayId, ...result })}\n`);
      return result.payers.every((p) => p.error === undefined) ? 0 : 1;
    } finally {
      store.close();
    }
  },
});

type RelayCommandName = 'start' | 'status' | 'redeem';
/** What the dispatch needs of a command: to run it, and to read a command line for parseCliArgs. */
type Subcommand = CliMain & Pick<Command<SettingsSpec>, 'parse'>;

/** The command `name` names; undefined for the bin's own help. Throws RC_ERR_CONFIG_INVALID for an unknown one. */
function commandNamed(name: string | undefined, hooks: RelayCliHooks): { name: RelayCommandName; command: Subcommand } | undefined {
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') return undefined;
  if (name === 'start') return { name, command: startCommand(hooks) };
  if (name === 'status') return { name, command: STATUS };
  if (name === 'redeem') return { name, command: REDEEM };
  throw configInvalid(`unknown command "${name}" (expected "start", "status" or "redeem")`);
}

/** The relay's bin: `start`, `status` or `redeem`. Resolves with the exit status. */
export async function relayCommand(ctx: CliContext, hooks: RelayCliHooks = {}): Promise<number | void> {
  const [name, ...argv] = ctx.argv;
  const named = commandNamed(name, hooks);
  if (named === undefined) return void ctx.stdout.write(startCommand(hooks).usage(ctx.bin));
  return named.command({ ...ctx, argv });
}

/**
 * Reads `relaycast-relay` arguments (without node and script) as the bin does, without running:
 * the command and the settings the operator gave, checked. `extraSettings` are a test bin's.
 */
export async function parseCliArgs(
  argv: readonly string[],
  signal?: AbortSignal,
  env: NodeJS.ProcessEnv = process.env,
  extraSettings?: SettingsSpec,
): Promise<CliCommand> {
  const [name, ...rest] = argv;
  const named = commandNamed(name, { extraSettings });
  if (named === undefined) return { command: 'help' };
  const cl = await named.command.parse(rest, { env, signal });
  if (cl.help) return { command: 'help' };
  const config = cl.given as CommandContext<SettingsSpec>['given'];
  return (
    named.name === 'status' ? { command: 'status', config: { ...config, json: cl.extra['json'] === true } } : { command: named.name, config }
  ) as CliCommand;
}
