/**
 * The one CLI kit of Relaycast's bins. A bin declares its settings once in a table
 * (`defineSettings`), makes its command of it with `defineCommand` (command line, --help, logger)
 * and runs that under `runCli` (signals, exit statuses). Libraries check their `start*()` options
 * with the same table's `check`/`resolve`.
 */
export { configInvalid } from './config-error.js';
export {
  U64_MAX,
  bool,
  durationMs,
  enumOf,
  float,
  int,
  listOf,
  parseValue,
  text,
  toList,
  u64,
  url,
  valueType,
  type DurationOptions,
  type FloatOptions,
  type IntOptions,
  type ListOptions,
  type TextOptions,
  type U64Options,
  type UrlOptions,
  type ValueType,
  type ValueTypeSpec,
} from './values.js';
export {
  DEFAULT_LOG_LEVEL,
  LOG_FORMATS,
  LOG_LEVELS,
  LOG_SETTINGS,
  componentLogger,
  createLogger,
  logFormat,
  logLevel,
  type LogFormat,
  type LogLevel,
  type LoggerOptions,
} from './logging.js';
export { defineCommand, type Command, type CommandContext, type CommandSpec, type CommandUsage } from './command.js';
export { EXIT, reportError, runCli, waitForAbort, type CliContext, type CliMain, type CliProcess, type RunCliOptions } from './run-cli.js';
export {
  SettingsTable,
  defineSettings,
  quote,
  type CommandLine,
  type NameStyle,
  type Overridden,
  type ParseCommandLineOptions,
  type Setting,
  type SettingValue,
  type SettingsCheck,
  type SettingsInput,
  type SettingsOptions,
  type SettingsSpec,
  type SettingsTableOptions,
  type SettingsValues,
} from './settings.js';
export { resolveBin } from './resolve-bin.js';
