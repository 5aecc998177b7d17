import { isAbortError } from '@relaycast/protocol';
import { pino, type Logger } from 'pino';
import { createLogger, type LogFormat, type LogLevel } from './logging.js';
import { EXIT, type CliContext, type CliMain } from './run-cli.js';
import type { CommandLine, ParseCommandLineOptions, SettingsOptions, SettingsSpec, SettingsTable, SettingsValues } from './settings.js';

/** The settings spread in from LOG_SETTINGS: the kit makes the logger from them. */
type LogKey = 'logLevel' | 'logFormat';

/** --help's text around the options the table renders. */
export interface CommandUsage {
  /** What follows the bin's name on the `Usage:` line; one string a form: `[options]`. */
  synopsis: string | readonly string[];
  /** What the command does: between the `Usage:` lines and the options. */
  about: string;
  /** After the options: signals, exit statuses, log lines to look for. Default: none. */
  notes?: string | undefined;
}

/** What a command's body is handed: the runner's context, the settings read, and the logger. */
export interface CommandContext<S extends SettingsSpec> extends CliContext {
  /** Every setting but the log settings, defaults applied. */
  values: Omit<SettingsValues<S>, LogKey>;
  /** Only what the operator gave, for a `start*()` that applies its own defaults. */
  given: Omit<SettingsOptions<S>, LogKey>;
  positionals: string[];
  /** The command's `extraFlags`, as given. */
  extra: Record<string, string | boolean | (string | boolean)[] | undefined>;
  /** Made from --log-level and --log-format; silent when the table has no log settings. */
  logger: Logger;
  /** What --help prints, for a command that also shows it without --help. */
  usage: () => string;
}

export interface CommandSpec<S extends SettingsSpec> {
  settings: SettingsTable<S>;
  usage: CommandUsage;
  /** Accept positional arguments (handed over as `positionals`). Default: false. */
  allowPositionals?: boolean | undefined;
  /** Flags that are not settings (`--json`), handed over in `extra`. Default: none. */
  extraFlags?: ParseCommandLineOptions['extraFlags'];
  /** Where logs go: 2 for a command whose stdout is its answer. Default: 1. */
  logTo?: 1 | 2 | undefined;
  /**
   * The command does a piece of work and returns (a scan, a transaction) instead of serving until
   * the first signal: an abort by that signal means the work was not done, exit 130. Default: false,
   * a server, which exits 0 when the first signal stops it while it starts.
   */
  oneShot?: boolean | undefined;
  /** The body: resolves with the exit status (default 0), or throws (runCli reports it). */
  run: (c: CommandContext<S>) => Promise<number | void>;
}

/** A command: the main of `runCli(bin, command)` or of a subcommand, plus its parts for a parent command and tests. */
export interface Command<S extends SettingsSpec> extends CliMain {
  readonly settings: SettingsTable<S>;
  /** Reads argv as the command does (the table, its positionals and extra flags), without running it. */
  parse(argv: readonly string[], o?: { env?: NodeJS.ProcessEnv | undefined; signal?: AbortSignal | undefined }): Promise<CommandLine<S>>;
  /** What --help prints. */
  usage(bin: string): string;
}

const SILENT = pino({ level: 'silent' });

/**
 * Defines a bin's command from its settings table: the one prologue of every bin. The command
 * reads the command line with the table (flags, environment, config file), prints USAGE made from
 * the table on --help, makes the logger from --log-level and --log-format, and hands `run` the
 * other settings, typed, with the logger and the stop signal.
 *
 * ```ts
 * await runCli(BIN, defineCommand({
 *   settings: SETTINGS,
 *   usage: { synopsis: '[options]', about: 'A local Solana JSON-RPC endpoint.' },
 *   run: async ({ values, logger, signal }) => { ... },
 * }));
 * ```
 */
export function defineCommand<S extends SettingsSpec>(spec: CommandSpec<S>): Command<S> {
  const { settings } = spec;
  const hasLogs = Object.hasOwn(settings.spec, 'logLevel');
  const parse: Command<S>['parse'] = (argv, o = {}) =>
    settings.parseCommandLine(argv, { env: o.env, signal: o.signal, allowPositionals: spec.allowPositionals, extraFlags: spec.extraFlags });
  const usage = (bin: string): string => {
    const synopsis = typeof spec.usage.synopsis === 'string' ? [spec.usage.synopsis] : spec.usage.synopsis;
    const lines = synopsis.map((s, i) => `${i === 0 ? 'Usage: ' : '       '}${bin} ${s}`);
    const notes = spec.usage.notes === undefined ? '' : `\n${spec.usage.notes.replace(/\n?$/, '\n')}`;
    return `${lines.join('\n')}\n\n${spec.usage.about.replace(/\n?$/, '\n')}\n${settings.usage()}${notes}`;
  };
  const main = async (ctx: CliContext): Promise<number | void> => {
    try {
      const cl = await parse(ctx.argv, { env: ctx.env, signal: ctx.signal });
      if (cl.help) {
        ctx.stdout.write(usage(ctx.bin));
        return EXIT.OK;
      }
      const { logLevel, logFormat, ...values } = cl.values as SettingsValues<S> & { logLevel?: LogLevel; logFormat?: LogFormat };
      const { logLevel: _level, logFormat: _format, ...given } = cl.given as SettingsOptions<S> & { logLevel?: LogLevel; logFormat?: LogFormat };
      const logger = hasLogs ? createLogger({ level: logLevel, format: logFormat, destination: spec.logTo }) : SILENT;
      return await spec.run({
        ...ctx,
        values: values as Omit<SettingsValues<S>, LogKey>,
        given: given as Omit<SettingsOptions<S>, LogKey>,
        positionals: cl.positionals,
        extra: cl.extra,
        logger,
        usage: () => usage(ctx.bin),
      });
    } catch (err) {
      // A one-shot command cut short by Ctrl-C did not do its work: say so, as a shell would.
      if (spec.oneShot === true && ctx.signal.aborted && isAbortError(err)) return EXIT.INTERRUPTED;
      throw err;
    }
  };
  return Object.assign(main, { settings, parse, usage });
}
