import { ErrorCode, RelaycastError, isAbortError, isRelaycastError } from '@relaycast/protocol';

/** Exit statuses shared by every bin. */
export const EXIT = {
  OK: 0,
  /** The work failed (an origin, a chain, a peer): details on stderr. */
  FAILURE: 1,
  /** The operator's configuration is wrong (RC_ERR_CONFIG_INVALID): nothing was started. */
  CONFIG: 2,
  /** A second SIGINT/SIGTERM: stopped at once, without a graceful shutdown (128 + SIGINT). */
  INTERRUPTED: 130,
} as const;

/** What a bin's main function is handed. */
export interface CliContext {
  /** The bin's name, as given to runCli: for USAGE and messages. */
  readonly bin: string;
  /** Arguments after `node` and the script. */
  readonly argv: string[];
  readonly env: NodeJS.ProcessEnv;
  /** Aborted by the first SIGINT or SIGTERM (its reason an RC_ERR_ABORTED error). */
  readonly signal: AbortSignal;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** A bin's body: resolves with its exit status (default 0), or throws. */
export type CliMain = (ctx: CliContext) => Promise<number | void>;

/** The part of `process` the runner uses; tests hand in a fake. */
export interface CliProcess {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  on(event: 'SIGINT' | 'SIGTERM', listener: (signal: NodeJS.Signals) => void): unknown;
  exit(code: number): never;
}

export interface RunCliOptions {
  /** More codes that mean "fix your configuration" and exit 2, besides RC_ERR_CONFIG_INVALID (e.g. RC_ERR_KEY_PERMISSIONS). */
  configCodes?: readonly ErrorCode[] | undefined;
  /** More text for stderr after the error line (a transaction's logs). Default: none. */
  explain?: ((err: RelaycastError) => string | undefined) | undefined;
  /** Default: the real process. */
  process?: CliProcess | undefined;
}

/**
 * Runs a bin: SIGINT/SIGTERM abort `ctx.signal` (the bin stops gracefully and resolves), a second
 * signal exits 130 at once. The exit status is main's result, else from what it threw:
 * `<bin>: RC_ERR_CONFIG_INVALID: <message>` and 2 for a configuration error, `<bin>: <code>:
 * <message>` and 1 for any other, 0 for an abort caused by the first signal (stopped while starting).
 */
export async function runCli(bin: string, main: CliMain, options: RunCliOptions = {}): Promise<never> {
  const proc: CliProcess = options.process ?? process;
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) proc.exit(EXIT.INTERRUPTED);
    controller.abort(new RelaycastError(ErrorCode.ABORTED, `stopped by ${signal}`));
  };
  proc.on('SIGINT', onSignal);
  proc.on('SIGTERM', onSignal);
  let code: number;
  try {
    const result = await main({ bin, argv: proc.argv.slice(2), env: proc.env, signal: controller.signal, stdout: proc.stdout, stderr: proc.stderr });
    code = result ?? EXIT.OK;
  } catch (err) {
    code = reportError(bin, err, { aborted: controller.signal.aborted, configCodes: options.configCodes, explain: options.explain, stderr: proc.stderr });
  }
  // Exit explicitly: clients (RPC WebSockets, keep-alive agents) may still hold the event loop.
  return proc.exit(code);
}

/** Writes what went wrong to stderr and returns the exit status for it. */
export function reportError(
  bin: string,
  err: unknown,
  o: { aborted: boolean; configCodes?: readonly ErrorCode[] | undefined; explain?: RunCliOptions['explain']; stderr: NodeJS.WritableStream },
): number {
  if (o.aborted && isAbortError(err)) return EXIT.OK;
  if (isRelaycastError(err)) {
    const config = err.code === ErrorCode.CONFIG_INVALID || (o.configCodes?.includes(err.code) ?? false);
    const more = o.explain?.(err);
    o.stderr.write(`${bin}: ${err.code}: ${err.message}\n${more === undefined ? '' : `${more.replace(/\n?$/, '\n')}`}`);
    if (err.code === ErrorCode.CONFIG_INVALID) o.stderr.write(`Run "${bin} --help" for usage.\n`);
    return config ? EXIT.CONFIG : EXIT.FAILURE;
  }
  // Not one of ours: a defect. The stack says where.
  o.stderr.write(`${bin}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return EXIT.FAILURE;
}

/**
 * Resolves when `signal` aborts: the body of a server bin is "start, await this, close". Keeps the
 * process alive meanwhile (a pending promise alone does not).
 */
export function waitForAbort(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  const keepAlive = setInterval(() => undefined, 2 ** 30);
  return new Promise((resolve) =>
    signal.addEventListener(
      'abort',
      () => {
        clearInterval(keepAlive);
        resolve();
      },
      { once: true },
    ),
  );
}
