import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { componentLogger } from '@relaycast/cli-kit';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import type { Level, Logger } from 'pino';
import { CHILD_STOP_GRACE_MS } from './constants.js';

export interface ChildOptions {
  /** Name in logs and errors (e.g. "relay-1"). */
  name: string;
  /** JS entry point run with this Node (a package's bin shim). */
  script: string;
  args: string[];
  /** Every output line is appended here (the child's own JSON logs). */
  logFile: string;
  /**
   * Each of the child's log lines is written here too, under the child's name (`relay-1`, or
   * `relay-1/nat` for a line of the child's own nat component): pretty on a terminal, JSON for a
   * collector, as this logger writes. Children log JSON to their pipes (`--log-format json`).
   * Default: none (the log file only).
   */
  logger?: Logger | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  /** Resolves the start once a stdout JSON line satisfies it (e.g. "listening"). Default: at spawn. */
  ready?: ((line: Record<string, unknown>) => boolean) | undefined;
  readyTimeoutMs: number;
  signal?: AbortSignal | undefined;
}

export interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  /** The JSON line that made it ready, if any. */
  readonly readyLine: Record<string, unknown> | undefined;
  readonly exited: Promise<number | null>;
  isRunning(): boolean;
  /** SIGTERM, then SIGKILL after the grace period; resolves when it is gone. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Children not yet exited: killed if the devnet exits first (a second Ctrl-C exits at once, mid-close). */
const running = new Set<ChildProcess>();
let exitHooked = false;

/** Kills `child` with SIGKILL if this process exits before it does; every process the devnet starts goes through here. */
export function killOnExit(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
  if (exitHooked) return;
  exitHooked = true;
  process.once('exit', () => {
    for (const c of running) c.kill('SIGKILL');
  });
}

/** Runs one network component as its own process, the way an operator would. */
export async function startChild(options: ChildOptions): Promise<Child> {
  const log: WriteStream = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(process.execPath, [options.script, ...options.args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  killOnExit(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // After 'exit' the pipes may still hold output: the file is closed once they are drained.
  child.once('close', () => log.end());
  let readyLine: Record<string, unknown> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    onLines(child.stdout, (line) => {
      const parsed = parseLogLine(line);
      if (options.logger !== undefined) forward(options.logger, options.name, line, parsed, 'info');
      if (options.ready === undefined || readyLine !== undefined || parsed === undefined) return;
      if (options.ready(parsed)) {
        readyLine = parsed;
        resolve();
      }
    });
    onLines(child.stderr, (line) => {
      if (options.logger !== undefined) forward(options.logger, options.name, line, parseLogLine(line), 'warn');
    });
    for (const stream of [child.stdout, child.stderr]) stream.on('data', (d: string) => log.write(d));
    if (options.ready === undefined) resolve();
    timer = setTimeout(
      () => reject(new RelaycastError(ErrorCode.TIMEOUT, `${options.name} did not start within ${options.readyTimeoutMs} ms (see ${options.logFile})`)),
      options.readyTimeoutMs,
    );
    void exited.then((code) =>
      reject(new RelaycastError(ErrorCode.INTERNAL, `${options.name} exited with ${String(code)} while starting (see ${options.logFile})`)),
    );
    options.signal?.addEventListener('abort', () => reject(new RelaycastError(ErrorCode.ABORTED, 'start aborted')), { once: true });
  });
  const handle: Child = {
    name: options.name,
    process: child,
    get readyLine() {
      return readyLine;
    },
    exited,
    isRunning: () => running.has(child),
    async stop(sig: NodeJS.Signals = 'SIGTERM') {
      if (!running.has(child)) return;
      child.kill(sig);
      const t = setTimeout(() => child.kill('SIGKILL'), CHILD_STOP_GRACE_MS);
      await exited;
      clearTimeout(t);
    },
  };
  try {
    await ready;
  } catch (err) {
    await handle.stop('SIGKILL');
    throw err;
  } finally {
    clearTimeout(timer);
  }
  return handle;
}

/** Longest line kept while waiting for its end; a child printing more without a newline loses its start. */
const MAX_LINE_CHARS = 1 << 20;

/** Calls `onLine` with each complete line of `stream` (decoded as UTF-8 across chunks). */
function onLines(stream: Readable, onLine: (line: string) => void): void {
  stream.setEncoding('utf8');
  let buffered = '';
  stream.on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (line.trim() !== '') onLine(line);
    }
    if (buffered.length > MAX_LINE_CHARS) buffered = buffered.slice(-65_536);
  });
}

/** A pino JSON line as an object, or undefined for any other output. */
function parseLogLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const parsed: unknown = JSON.parse(line);
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const LEVELS: Record<number, Level> = { 10: 'trace', 20: 'debug', 30: 'info', 40: 'warn', 50: 'error', 60: 'fatal' };

/**
 * Writes one of a child's lines through `root`, at the child's level, under the child's name. Its
 * time, pid and host are the devnet's own; a line that is not JSON (a crash, a bin's error message)
 * is written as the message at `plain`.
 */
function forward(root: Logger, name: string, line: string, entry: Record<string, unknown> | undefined, plain: Level): void {
  if (entry === undefined || typeof entry['level'] !== 'number') {
    componentLogger(root, name)[plain](line);
    return;
  }
  const { level, msg, component, time: _time, pid: _pid, hostname: _hostname, ...fields } = entry;
  const inner = typeof component === 'string' && !name.startsWith(component) ? `${name}/${component}` : name;
  componentLogger(root, inner)[LEVELS[level] ?? 'info'](fields, typeof msg === 'string' ? msg : '');
}
