import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { writeHeapSnapshot } from 'node:v8';
import { join } from 'node:path';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/** CPU and memory of a worker process, as `process.cpuUsage()` / `process.memoryUsage()` report them. */
export interface Usage {
  cpuUserUs: number;
  cpuSystemUs: number;
  rssBytes: number;
  heapUsedBytes: number;
}

export function cpuMsBetween(a: Usage, b: Usage): number {
  return (b.cpuUserUs + b.cpuSystemUs - a.cpuUserUs - a.cpuSystemUs) / 1000;
}

export interface WorkerOptions {
  /** Writes a V8 CPU profile of the worker into this directory (node --cpu-prof). Default: none. */
  cpuProfileDir?: string | undefined;
  /** Extra environment variables. Default: none. */
  env?: Record<string, string> | undefined;
  /** Longest wait for the worker to say it is ready. Default: 30 s. */
  readyTimeoutMs?: number | undefined;
}

/** A bench component (relay, tracker, baseline server) in its own process, so its CPU and memory are its own. */
export interface Worker<Info> {
  readonly info: Info;
  readonly pid: number;
  request<T>(cmd: string, arg?: unknown, timeoutMs?: number): Promise<T>;
  /** CPU and memory now; `gc: true` collects garbage first (the worker runs with --expose-gc). */
  usage(gc?: boolean): Promise<Usage>;
  stop(): Promise<void>;
}

interface Reply {
  id: number;
  ok: boolean;
  value?: unknown;
  error?: string;
}

/** Bounds a request to a worker that hangs or died. */
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;

/** Starts `file` (a worker module calling `serveWorker`) under tsx with `config`, and waits for it to be ready. */
export async function startWorker<Info>(file: URL, config: unknown, options: WorkerOptions = {}): Promise<Worker<Info>> {
  const execArgv = ['--import', 'tsx', '--expose-gc'];
  if (options.cpuProfileDir !== undefined) execArgv.push('--cpu-prof', '--cpu-prof-dir', options.cpuProfileDir);
  const child: ChildProcess = fork(fileURLToPath(file), [JSON.stringify(config)], {
    execArgv,
    env: { ...process.env, ...options.env },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  let nextId = 1;
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      for (const p of pending.values()) p.reject(new RelaycastError(ErrorCode.INTERNAL, `worker ${file.pathname} exited (${code ?? signal})`));
      pending.clear();
      resolve();
    }),
  );
  const info = await new Promise<Info>((resolve, reject) => {
    const timer = setTimeout(() => reject(new RelaycastError(ErrorCode.TIMEOUT, `worker ${file.pathname} not ready`)), options.readyTimeoutMs ?? 30_000);
    child.on('message', (m: { ready?: Info } & Partial<Reply>) => {
      if (m.ready !== undefined) {
        clearTimeout(timer);
        resolve(m.ready);
        return;
      }
      const p = m.id === undefined ? undefined : pending.get(m.id);
      if (p === undefined || m.id === undefined) return;
      pending.delete(m.id);
      if (m.ok === true) p.resolve(m.value);
      else p.reject(new RelaycastError(ErrorCode.INTERNAL, m.error ?? 'worker error'));
    });
    void exit.then(() => {
      clearTimeout(timer);
      reject(new RelaycastError(ErrorCode.INTERNAL, `worker ${file.pathname} exited before it was ready`));
    });
  });
  const request = <T>(cmd: string, arg?: unknown, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<T> => {
    if (exited) return Promise.reject(new RelaycastError(ErrorCode.INTERNAL, 'worker has exited'));
    const id = nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new RelaycastError(ErrorCode.TIMEOUT, `worker request ${cmd} timed out`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      child.send({ id, cmd, arg });
    });
  };
  return {
    info,
    pid: child.pid ?? -1,
    request,
    usage: (gc = false) => request<Usage>('usage', { gc }),
    async stop() {
      if (exited) return;
      const killer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      request('stop', undefined, STOP_TIMEOUT_MS).catch(() => undefined);
      await exit;
      clearTimeout(killer);
    },
  };
}

export type Handlers = Record<string, (arg: unknown) => unknown>;

/**
 * The worker side: parses the config, starts the component, answers `usage`, `stop` and the
 * component's own commands over IPC. A parent that goes away takes the worker with it.
 */
export function serveWorker<Config, Info>(start: (config: Config) => Promise<{ info: Info; handlers?: Handlers; close(): Promise<void> }>): void {
  const config = JSON.parse(process.argv[2] ?? '{}') as Config;
  process.once('disconnect', () => process.exit(0));
  void (async () => {
    const component = await start(config);
    const handlers: Handlers = {
      ...component.handlers,
      usage: (arg) => {
        if ((arg as { gc?: boolean } | undefined)?.gc === true) globalThis.gc?.();
        const cpu = process.cpuUsage();
        const mem = process.memoryUsage();
        return { cpuUserUs: cpu.user, cpuSystemUs: cpu.system, rssBytes: mem.rss, heapUsedBytes: mem.heapUsed } satisfies Usage;
      },
      // For memory figures far from their baseline: where the bytes are (see heap-summary.ts).
      heapSnapshot: (arg) => {
        globalThis.gc?.();
        return writeHeapSnapshot(join((arg as { dir: string }).dir, `${(arg as { name: string }).name}-${process.pid}.heapsnapshot`));
      },
      stop: async () => {
        await component.close();
        // Exit after the reply is out; a CPU profile is written on a normal exit.
        setImmediate(() => process.exit(0));
      },
    };
    process.on('message', (m: { id: number; cmd: string; arg: unknown }) => {
      void (async () => {
        const handler = handlers[m.cmd];
        try {
          if (handler === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `unknown command ${m.cmd}`);
          const value = await handler(m.arg);
          process.send?.({ id: m.id, ok: true, value });
        } catch (err) {
          process.send?.({ id: m.id, ok: false, error: err instanceof Error ? err.message : String(err) });
        }
      })();
    });
    process.send?.({ ready: component.info });
  })().catch((err: unknown) => {
    process.stderr.write(`worker failed to start: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
