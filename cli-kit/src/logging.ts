import { pino, type Logger } from 'pino';
import PinoPretty from 'pino-pretty';
import { enumOf } from './values.js';

/** pino levels a bin accepts, most to least severe, then `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
/** `pretty`: coloured lines for a person at a terminal; `json`: one object per line for collectors. */
export const LOG_FORMATS = ['pretty', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/** Level of every bin unless its table says otherwise. */
export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

export const logLevel = enumOf(LOG_LEVELS);
export const logFormat = enumOf(LOG_FORMATS);

/**
 * `--log-level` and `--log-format`, to spread into a bin's settings table. A bin whose stdout
 * carries its result (JSON answers) writes its logs to stderr instead (createLogger's `destination`).
 */
export const LOG_SETTINGS = {
  logLevel: { type: logLevel, flag: 'log-level', default: DEFAULT_LOG_LEVEL, group: 'Logs', help: 'least severe level written' },
  logFormat: {
    type: logFormat,
    flag: 'log-format',
    defaultText: 'pretty when the output is a terminal, else json',
    group: 'Logs',
    help: 'pretty (for people) or json (one object per line, for collectors)',
  },
} as const;

export interface LoggerOptions {
  /** Default: DEFAULT_LOG_LEVEL. */
  level?: LogLevel | undefined;
  /** Default: pretty when `destination` is a terminal, json otherwise. */
  format?: LogFormat | undefined;
  /** Where logs go: 1 (stdout), 2 (stderr, for bins whose stdout is their answer) or a stream (tests). Default: 1. */
  destination?: 1 | 2 | NodeJS.WritableStream | undefined;
  /** Base fields of every line (the bin's name, an id). Default: none. */
  base?: Record<string, unknown> | undefined;
  /** Whether the destination is a terminal; tests set it. Default: asks the process's stream. */
  isTTY?: boolean | undefined;
}

/**
 * The root logger of a bin: pino, pretty when a person is watching, JSON for collectors.
 * Writes synchronously, so lines written just before process.exit are not lost.
 * Components log through `componentLogger(root, name)`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const dest = options.destination ?? 1;
  const stream = dest === 1 ? process.stdout : dest === 2 ? process.stderr : dest;
  const isTTY = options.isTTY ?? (stream as { isTTY?: boolean }).isTTY === true;
  const format = options.format ?? (isTTY ? 'pretty' : 'json');
  const opts = { level: options.level ?? DEFAULT_LOG_LEVEL, base: options.base ?? {} };
  if (format === 'json') return pino(opts, typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest);
  const pretty = PinoPretty({
    destination: dest,
    sync: true,
    colorize: isTTY,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname,component',
    messageFormat: '{if component}[{component}] {end}{msg}',
  });
  return pino(opts, pretty);
}

const children = new WeakMap<Logger, Map<string, Logger>>();

/** The one child of `root` for `component` (`{ component }` on every line), made once and reused. */
export function componentLogger(root: Logger, component: string): Logger {
  let byName = children.get(root);
  if (byName === undefined) {
    byName = new Map();
    children.set(root, byName);
  }
  let child = byName.get(component);
  if (child === undefined) {
    child = root.child({ component });
    byName.set(component, child);
  }
  return child;
}
