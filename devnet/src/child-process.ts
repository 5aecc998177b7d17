import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { CHILD_STOP_GRACE_MS } from './constants.js';

export interface ChildOptions {
  /** Name in logs and errors (e.g. "relay-1"). */
  name: string;
  /** JS entry point run with this Node (a package's bin shim). */
  script: string;
  args: string[];
  /** Every output line is appended here (the child's own JSON logs). */
  logFile: string;
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

/** Runs one network component as its own process, the way an operator would. */
export async function startChild(options: ChildOptions): Promise<Child> {
  const log: WriteStream = createWriteStream(options.logFile, { flags: 'a' });
  const child = spawn(process.execPath, [options.script, ...options.args], {
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let running = true;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      running = false;
      log.end();
      resolve(code);
    }),
  );
  let readyLine: Record<string, unknown> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    let buffered = '';
    const onData = (data: Buffer): void => {
      log.write(data);
      if (options.ready === undefined || readyLine !== undefined) return;
      buffered += data.toString('utf8');
      if (buffered.length > 1 << 20) buffered = buffered.slice(-65_536);
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        try {
          const parsed = JSON.parse(line) as Record<string, unknown>;
          if (options.ready(parsed)) {
            readyLine = parsed;
            resolve();
          }
        } catch {
          // not a JSON log line
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (d: Buffer) => log.write(d));
    if (options.ready === undefined) resolve();
    timer = setTimeout(
      () => reject(new RelaycastError(ErrorCode.TIMEOUT, `${options.name} did not start within ${options.readyTimeoutMs} ms (see ${options.logFile})`)),
      options.readyTimeoutMs,
    );
    void exited.then((code) => reject(new RelaycastError(ErrorCode.INTERNAL, `${options.name} exited with ${String(code)} while starting (see ${options.logFile})`)));
    options.signal?.addEventListener('abort', () => reject(new RelaycastError(ErrorCode.ABORTED, 'start aborted')), { once: true });
  });
  const handle: Child = {
    name: options.name,
    process: child,
    get readyLine() {
      return readyLine;
    },
    exited,
    isRunning: () => running,
    async stop(sig: NodeJS.Signals = 'SIGTERM') {
      if (!running) return;
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
