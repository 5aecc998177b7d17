import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { resolveBin } from '@relaycast/cli-kit/testing';
import type { TrackerStatus } from '@relaycast/tracker';
import { RELAY_STATUS_PATHS, TRACKER_HTTP_PATHS, encodeBase58 } from '@relaycast/protocol';

export const TRACKER_BIN = resolveBin('@relaycast/tracker', 'relaycast-tracker');
export const RELAY_BIN = resolveBin('@relaycast/relay', 'relaycast-relay');
/** TEST ONLY: the relay's CLI plus --test-fault (this workspace's `relaycast-faulty-relay` bin). */
export const FAULTY_RELAY_BIN = resolveBin('@relaycast/test', 'relaycast-faulty-relay');

/** Lines of output kept per process (a ring buffer), shown when a test fails. */
const RING_LINES = 300;

export interface Proc {
  name: string;
  child: ChildProcess;
  /** Last lines of stdout and stderr, for failure messages. */
  output(): string;
  /** Whether the process has exited. */
  readonly exited: boolean;
  /** Sends `signal` (SIGTERM by default) and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Processes the helpers started and that have not been stopped yet. */
export const live = new Set<Proc>();

// A test process that dies any other way must not leave relays and trackers behind.
process.once('exit', () => {
  for (const p of live) if (!p.exited) p.child.kill('SIGKILL');
});

/**
 * `wrap` runs node under another command, e.g. `['ip', 'netns', 'exec', NS]` to start a bin inside
 * a network namespace (see netns.ts). `env` replaces this process's environment (e.g. outsideEnv()
 * for a bin installed from a tarball).
 */
function start(name: string, bin: string, args: string[], wrap: string[] = [], env?: NodeJS.ProcessEnv): Proc {
  const argv = [...wrap, process.execPath, bin, ...args];
  const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], env });
  const lines: string[] = [];
  const keep = (d: Buffer): void => {
    lines.push(...d.toString().split('\n').filter(Boolean));
    if (lines.length > RING_LINES) lines.splice(0, lines.length - RING_LINES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exited = true;
      resolve();
    }),
  );
  const proc: Proc = {
    name,
    child,
    output: () => lines.join('\n'),
    get exited() {
      return exited;
    },
    async stop(signal = 'SIGTERM') {
      if (!exited) child.kill(signal);
      await exit;
      live.delete(proc);
    },
  };
  live.add(proc);
  return proc;
}

/** Kills every process the helpers started in this test file. */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop('SIGKILL')));
}

/** Thrown inside a `waitFor` callback to stop waiting at once (e.g. the process died). */
export class GiveUp extends Error {}

export async function waitFor<T>(
  what: string,
  fn: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
}

/** Shape of the tracker's `GET /status`, from the tracker package itself. */
export type { TrackerStatus } from '@relaycast/tracker';

export interface TrackerProc extends Proc {
  port: number;
  /** WebSocket URL, `ws://127.0.0.1:PORT/`. */
  url: string;
  /** HTTP base URL without trailing slash. */
  httpUrl: string;
  status(): Promise<TrackerStatus>;
  relayIds(): Promise<string[]>;
}

/**
 * Starts `relaycast-tracker --port 0` and reads the port it bound from its JSON "listening" log line.
 * `bin` defaults to TRACKER_BIN; `env` to this process's environment.
 */
export async function startTrackerProcess(extra: string[] = [], opts: { bin?: string; env?: NodeJS.ProcessEnv } = {}): Promise<TrackerProc> {
  const proc = start('tracker', opts.bin ?? TRACKER_BIN, ['--port', '0', '--host', '127.0.0.1', '--log-level', 'info', ...extra], [], opts.env);
  const port = await waitFor('tracker to listen', () => {
    for (const line of proc.output().split('\n')) {
      try {
        const j = JSON.parse(line) as { port?: unknown; msg?: unknown };
        if (typeof j.port === 'number' && j.port > 0 && typeof j.msg === 'string' && j.msg.includes('listening')) return j.port;
      } catch {
        // not a JSON log line
      }
    }
    if (proc.exited) throw new GiveUp(`tracker exited:\n${proc.output()}`);
    return undefined;
  });
  const httpUrl = `http://127.0.0.1:${port}`;
  await waitFor('tracker /healthz', async () => (await fetch(`${httpUrl}${TRACKER_HTTP_PATHS.health}`)).ok || undefined);
  const status = async (): Promise<TrackerStatus> => {
    const res = await fetch(`${httpUrl}${TRACKER_HTTP_PATHS.status}`);
    if (!res.ok) throw new Error(`GET /status: ${res.status}`);
    return (await res.json()) as TrackerStatus;
  };
  return Object.assign(proc, {
    port,
    url: `ws://127.0.0.1:${port}/`,
    httpUrl,
    status,
    relayIds: async () => (await status()).relays.map((r) => r.relayId),
  });
}

/** Relay id of a Solana CLI keypair file: base58 of its last 32 bytes (the public key). */
export async function relayIdOfKeypair(path: string): Promise<string> {
  const bytes = JSON.parse(await readFile(path, 'utf8')) as number[];
  if (!Array.isArray(bytes) || bytes.length !== 64) throw new Error(`${path} is not a 64-byte Solana keypair`);
  return encodeBase58(Uint8Array.from(bytes.slice(32)));
}

export interface RelayProc extends Proc {
  relayId: string;
}

export interface RelayOptions {
  /** Keypair file; created by the relay when missing. */
  keypair: string;
  allowOrigin: string[];
  /** More CLI flags, e.g. ['--max-upload-bytes-per-sec', '150000']. */
  extra?: string[];
  /** The bin to run. Default: RELAY_BIN; FAULTY_RELAY_BIN for `--test-fault`. */
  bin?: string;
  /** The relay's environment. Default: this process's. */
  env?: NodeJS.ProcessEnv;
}

/** Starts `relaycast-relay start ...`; ready once the tracker's /status lists its relay id. */
export async function startRelayProcess(tracker: TrackerProc, opts: RelayOptions): Promise<RelayProc> {
  const args = ['start', '--tracker', tracker.url, '--keypair', opts.keypair, '--bind-address', '127.0.0.1', '--log-level', 'info'];
  for (const o of opts.allowOrigin) args.push('--allow-origin', o);
  const proc = start(`relay ${opts.keypair}`, opts.bin ?? RELAY_BIN, [...args, ...(opts.extra ?? [])], [], opts.env);
  const relayId = await waitFor('relay keypair file', async () => {
    if (proc.exited) throw new GiveUp(`relay exited:\n${proc.output()}`);
    return await relayIdOfKeypair(opts.keypair);
  });
  await waitFor(`relay ${relayId} in the tracker's /status`, async () => {
    if (proc.exited) throw new GiveUp(`relay exited:\n${proc.output()}`);
    return (await tracker.relayIds()).includes(relayId) || undefined;
  });
  // The tracker may still list an earlier process with the same key (one just killed): when this
  // one has a status port, it is ready only once that port answers.
  const extra = opts.extra ?? [];
  const statusPort = Number(extra[extra.indexOf('--status-port') + 1]);
  if (extra.includes('--status-port') && statusPort > 0) {
    await waitFor(`relay ${relayId}'s status port ${statusPort}`, async () => {
      if (proc.exited) throw new GiveUp(`relay exited:\n${proc.output()}`);
      return (await fetch(`http://127.0.0.1:${statusPort}${RELAY_STATUS_PATHS.status}`)).ok || undefined;
    });
  }
  return Object.assign(proc, { name: `relay ${relayId}`, relayId });
}

/**
 * A relay for a test's media origin: keypair `<dir>/keys/<name>.json`, allowlisted to
 * `<originUrl>media/`; with `fault`, the test-only faulty relay bin with `--test-fault <fault>`.
 */
export function startMediaRelay(tracker: TrackerProc, dir: string, originUrl: string, name: string, fault?: string): Promise<RelayProc> {
  return startRelayProcess(tracker, {
    keypair: join(dir, 'keys', `${name}.json`),
    allowOrigin: [`${originUrl}media/`],
    ...(fault === undefined ? {} : { bin: FAULTY_RELAY_BIN, extra: ['--test-fault', fault] }),
  });
}

/** One relay process per name, one after the other, each with keypair `<keysDir>/<name>.json`. */
export async function startRelayProcesses(
  tracker: TrackerProc,
  keysDir: string,
  names: readonly string[],
  opts: Omit<RelayOptions, 'keypair'>,
): Promise<RelayProc[]> {
  const relays: RelayProc[] = [];
  for (const name of names) relays.push(await startRelayProcess(tracker, { ...opts, keypair: join(keysDir, `${name}.json`) }));
  return relays;
}

/** A TCP port free on 127.0.0.1 right now (for a bin's flag that takes a fixed port, e.g. --status-port). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A relay process with its status server on `statusPort` (127.0.0.1). */
export interface StatusRelayProc extends RelayProc {
  statusPort: number;
}

/** startRelayProcess with `--status-port` on a free port, after `opts.extra`. */
export async function startRelayWithStatus(tracker: TrackerProc, opts: RelayOptions): Promise<StatusRelayProc> {
  const statusPort = await freePort();
  const proc = await startRelayProcess(tracker, { ...opts, extra: [...(opts.extra ?? []), '--status-port', String(statusPort)] });
  return Object.assign(proc, { statusPort });
}

/** The JSON of a relay's `GET /status` on 127.0.0.1:`statusPort`. */
export async function relayStatus<T = Record<string, unknown>>(statusPort: number): Promise<T> {
  return (await (await fetch(`http://127.0.0.1:${statusPort}${RELAY_STATUS_PATHS.status}`)).json()) as T;
}

/** Starts any of the project's bins (e.g. contracts-client's) under the same bookkeeping as the helpers above. */
export { start as startProcess };
