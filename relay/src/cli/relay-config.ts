import { dirname, join } from 'node:path';
import { LOG_SETTINGS, int, text, type SettingsOptions, type SettingsSpec, type SettingsTable } from '@relaycast/cli-kit';
import { DEFAULT_RECEIPTS_DB_FILE } from '../constants.js';
import { RELAY_SETTINGS, type RelaySettingsOptions } from '../node/relay-settings.js';

/**
 * Settings of `relaycast-relay start`: the relay's (node/relay-settings.ts), the keypair file and
 * the logs. Each is read from its flag, else its RELAYCAST_<FLAG> environment variable, else the
 * JSON file named by --config (or RELAYCAST_CONFIG), else its default.
 */
export const RELAY_CLI_SETTINGS = RELAY_SETTINGS.extend(
  {
    keypair: {
      type: text({ metavar: 'FILE' }),
      flag: 'keypair',
      required: true,
      help: 'Solana CLI keypair file, the relay identity and wallet; created (mode 0600) if missing',
    },
    ...LOG_SETTINGS,
  },
  { configFile: { flag: 'config' }, groups: [...(RELAY_SETTINGS.options.groups ?? []), 'Logs'] },
);

/** `relaycast-relay redeem`: the relay's keypair, payers and RPC URL; logs on stderr, quieter (stdout is the answer). */
export const REDEEM_SETTINGS = RELAY_CLI_SETTINGS.pick(['keypair', 'acceptPayers', 'rpcUrl', 'receiptsDbPath', 'logLevel', 'logFormat'], {
  acceptPayers: { required: true },
  rpcUrl: { required: true },
  logLevel: { default: 'warn' },
});

/** `relaycast-relay status`: where the running relay answers, and what is needed for its balance. */
export const STATUS_SETTINGS = RELAY_CLI_SETTINGS.pick(['statusPort', 'rpcUrl', 'acceptPayers'], {
  statusPort: { type: int({ min: 1, max: 65_535 }), required: true },
});

/** What the operator gave to `start`, checked (a required setting is always there). */
export type RelayConfig = SettingsOptions<typeof RELAY_CLI_SETTINGS.spec>;
export type RedeemConfig = SettingsOptions<typeof REDEEM_SETTINGS.spec>;
export type StatusConfig = SettingsOptions<typeof STATUS_SETTINGS.spec> & {
  /** `--json`: print the raw JSON instead of text. */
  json: boolean;
};

export type CliCommand =
  { command: 'help' } | { command: 'start'; config: RelayConfig } | { command: 'redeem'; config: RedeemConfig } | { command: 'status'; config: StatusConfig };

/** The relay settings of a `start` config: startRelay's options by name (the keypair file and logs are the CLI's own). */
export function nodeSettings(config: RelayConfig): RelaySettingsOptions {
  const given = config as Record<string, unknown>;
  return Object.fromEntries(RELAY_SETTINGS.keys().flatMap((k) => (given[k] === undefined ? [] : [[k, given[k]]]))) as RelaySettingsOptions;
}

/** The receipt database path: `receiptsDbPath` (--db), else the default file beside the keypair. */
export function receiptsDbPath(config: { receiptsDbPath?: string | undefined; keypair: string }): string {
  return config.receiptsDbPath ?? join(dirname(config.keypair), DEFAULT_RECEIPTS_DB_FILE);
}

/** The table of `start`: RELAY_CLI_SETTINGS, with a test bin's extra settings. */
export function startSettings(extra?: SettingsSpec): SettingsTable<SettingsSpec> {
  return (extra === undefined ? RELAY_CLI_SETTINGS : RELAY_CLI_SETTINGS.extend(extra)) as unknown as SettingsTable<SettingsSpec>;
}
