import { createLogger, waitForAbort, type CliContext, type SettingsSpec } from '@relaycast/cli-kit';
import { decodePublicKey } from '@relaycast/protocol';
import type { Logger } from 'pino';
import { loadKeypair, loadOrCreateKeypair } from '../keypair.js';
import { startRelay, type RelayNodeOptions } from '../node/relay-node.js';
import { ReceiptStore } from '../payments/receipt-store.js';
import { Redeemer } from '../payments/redeemer.js';
import { nodeSettings, parseCliArgs, receiptsDbPath, startSettings, type RedeemConfig, type RelayConfig, type StatusConfig } from './relay-config.js';
import { formatRelayStatus, readRelayStatus } from './status-command.js';

/** What a bin built on the relay's CLI may add (relay/src/testing/faulty-relay-cli.ts). */
export interface RelayCliHooks {
  /** The bin's name in messages and USAGE. */
  bin: string;
  /** More settings of `start` (flags, environment, config file, USAGE). Default: none. */
  extraSettings?: SettingsSpec | undefined;
  /** More startRelay options, once the keypair and the logger exist. Default: none. */
  startOptions?: ((c: { config: RelayConfig & Record<string, unknown>; relayId: string; logger: Logger }) => Partial<RelayNodeOptions>) | undefined;
}

/** USAGE of the relay's bin: the commands, then `start`'s settings generated from the table. */
export function relayUsage(hooks: RelayCliHooks): string {
  const bin = hooks.bin;
  return `Usage: ${bin} start [options]
       ${bin} status --status-port N [--rpc-url URL --accept-payer PAYER=URL] [--json]
       ${bin} redeem --keypair FILE --rpc-url URL --accept-payer PAYER=URL [--db FILE]

start: registers with the tracker and serves viewers segments fetched from the allowed origins.

${startSettings(hooks.extraSettings).usage()}
status: asks the running relay (started with --status-port) for viewers, cache, served bytes,
receipts and unpaid amounts, and with --rpc-url and --accept-payer its token balance; --json
prints the raw JSON. It reads --status-port, --rpc-url and --accept-payer from the same places.

redeem: redeems once from every --accept-payer and prints JSON (payouts, amount, balance) on
stdout, logs on stderr (default level warn); exit 0 when every payer answered, 1 otherwise.

SIGINT/SIGTERM stop the relay gracefully; a second one stops it at once (exit 130). A bad setting
exits 2 with RC_ERR_CONFIG_INVALID.
`;
}

/** The relay's bin: `start`, `status` or `redeem`. Resolves with the exit status. */
export async function relayCommand(ctx: CliContext, hooks: RelayCliHooks = { bin: 'relaycast-relay' }): Promise<number> {
  const parsed = await parseCliArgs(ctx.argv, ctx.signal, ctx.env, hooks.extraSettings);
  switch (parsed.command) {
    case 'help':
      ctx.stdout.write(relayUsage(hooks));
      return 0;
    case 'start':
      return startCommand(parsed.config as RelayConfig & Record<string, unknown>, ctx, hooks);
    case 'status':
      return statusCommand(parsed.config, ctx);
    case 'redeem':
      return redeemCommand(parsed.config, ctx);
  }
}

/** `start`: runs the relay until the first signal, then closes it gracefully. */
async function startCommand(config: RelayConfig & Record<string, unknown>, ctx: CliContext, hooks: RelayCliHooks): Promise<number> {
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
  const { keypair, created } = await loadOrCreateKeypair(config.keypair, { logger, signal: ctx.signal });
  if (created) logger.info({ relayId: keypair.relayId, path: config.keypair }, 'created a new relay keypair (keep this file safe: it is the relay wallet)');
  const relay = await startRelay({
    ...nodeSettings(config),
    receiptsDbPath: receiptsDbPath(config),
    keypair,
    signal: ctx.signal,
    logger,
    ...hooks.startOptions?.({ config, relayId: keypair.relayId, logger }),
  });
  logger.info({ relayId: relay.relayId, tracker: config.trackerUrl }, 'relay registered and serving');
  await waitForAbort(ctx.signal);
  await relay.close();
  return 0;
}

/** `status`: the running relay's figures (and balance), as text or JSON. */
async function statusCommand(config: StatusConfig, ctx: CliContext): Promise<number> {
  const report = await readRelayStatus({ statusPort: config.statusPort, rpcUrl: config.rpcUrl, payers: config.acceptPayers, signal: ctx.signal });
  ctx.stdout.write(config.json ? `${JSON.stringify(report)}\n` : formatRelayStatus(report));
  return 0;
}

/** `redeem`: one redemption from every payer, the result as JSON on stdout. */
async function redeemCommand(config: RedeemConfig, ctx: CliContext): Promise<number> {
  // stdout carries the JSON result; logs go to stderr.
  const logger = createLogger({ level: config.logLevel, format: config.logFormat, destination: 2 });
  const keypair = await loadKeypair(config.keypair, { logger, signal: ctx.signal });
  const relayKey = decodePublicKey(keypair.relayId);
  const store = ReceiptStore.open({ path: receiptsDbPath(config), relayId: keypair.relayId }, relayKey);
  try {
    const redeemer = new Redeemer({
      store,
      payers: config.acceptPayers,
      rpcUrl: config.rpcUrl,
      signer: { relayId: keypair.relayId, publicKey: relayKey, sign: (m) => keypair.sign(m) },
      logger,
    });
    const result = await redeemer.redeem(ctx.signal);
    ctx.stdout.write(`${JSON.stringify({ relayId: keypair.relayId, ...result })}\n`);
    return result.payers.every((p) => p.error === undefined) ? 0 : 1;
  } finally {
    store.close();
  }
}
