/**
 * The SDK runs in browsers, so it takes any logger with pino's call shape (pino itself, or a thin
 * wrapper over the page's own logging) and defaults to silence; it never touches console.
 */
export interface SdkLogger {
  /** Routine detail: a fallback taken, a relay connection that failed, a stream without digests. */
  debug(obj: object, msg?: string): void;
  /** Milestones: a relay connected, a grant obtained. */
  info(obj: object, msg?: string): void;
  /** Something playback survives: a relay caught or refused, a tracker or signing problem. */
  warn(obj: object, msg?: string): void;
  /** Unused by the SDK today (failures reach the caller as rejections and `error` events); part of the shape so pino fits. */
  error(obj: object, msg?: string): void;
}

const noop = (): void => undefined;
export const silentLogger: SdkLogger = { debug: noop, info: noop, warn: noop, error: noop };
