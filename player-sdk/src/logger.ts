/**
 * The SDK runs in browsers, so it takes any logger with pino's call shape (pino itself, or a thin
 * wrapper over the page's own logging) and defaults to silence; it never touches console.
 */
export interface SdkLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => undefined;
export const silentLogger: SdkLogger = { debug: noop, info: noop, warn: noop, error: noop };
