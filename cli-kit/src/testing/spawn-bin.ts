import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface SpawnBinOptions {
  /** Environment of the child. Default: this process's. */
  env?: NodeJS.ProcessEnv | undefined;
  /** Node options before the script (`--import tsx`). Default: none. */
  nodeArgs?: readonly string[] | undefined;
}

export interface BinProcess {
  readonly pid: number | undefined;
  /** Exit status; a child killed by a signal resolves with `128 + signal number`, like a shell. */
  readonly exited: Promise<number>;
  /**
   * How it ended: `{ code: 130, signal: null }` is a bin that exited 130 itself, `{ code: null,
   * signal: 'SIGINT' }` one the signal killed (which `exited` also reports as 130).
   */
  readonly ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
  kill(signal: NodeJS.Signals): void;
  /** Resolves once stdout or stderr contains `text`; rejects after `timeoutMs` or if the child exits first. */
  waitForOutput(text: string | RegExp, timeoutMs?: number): Promise<void>;
}

const SIGNAL_NUMBERS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };

/** Starts `node <script> ...args` with piped output: the way the tests drive every bin. */
export function spawnBin(script: string, args: readonly string[], o: SpawnBinOptions = {}): BinProcess {
  const child = spawn(process.execPath, [...(o.nodeArgs ?? []), script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: o.env ?? process.env });
  let out = '';
  let err = '';
  let done = false;
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (err += String(d)));
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    }),
  );
  const exited = ended.then(({ code, signal }) => code ?? 128 + (signal === null ? 0 : (SIGNAL_NUMBERS[signal] ?? 0)));
  const matches = (text: string | RegExp): boolean => {
    const all = out + err;
    return typeof text === 'string' ? all.includes(text) : text.test(all);
  };
  return {
    pid: child.pid,
    exited,
    ended,
    stdout: () => out,
    stderr: () => err,
    kill: (signal) => {
      child.kill(signal);
    },
    waitForOutput: async (text, timeoutMs = 30_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!matches(text)) {
        if (done) throw new Error(`the bin exited before writing ${String(text)}:\n${out}\n${err}`);
        if (Date.now() > deadline) throw new Error(`the bin did not write ${String(text)} within ${timeoutMs} ms:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 25));
      }
    },
  };
}

/** The state letter of process `pid` (R, S, T when stopped, Z for a zombie), undefined when there is none. Linux: /proc. */
export function processState(pid: number): string | undefined {
  try {
    return /^\d+ \(.*\) (\S)/s.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1];
  } catch {
    return undefined;
  }
}

/** Whether process `pid` still runs: false once it has exited, a zombie included (an orphan not yet reaped has stopped all the same). */
export function isRunning(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z';
}
