import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TRACKER_BIN = `${ROOT}tracker/bin/relaycast-tracker.js`;
const RELAY_BIN = `${ROOT}relay/bin/relaycast-relay.js`;

export interface Proc {
  child: ChildProcess;
  /** Last lines of output, for failure messages. */
  output(): string;
  /** Sends `signal` and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

const live = new Set<Proc>();

function start(bin: string, args: string[]): Proc {
  const child = spawn(process.execPath, [bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (d: Buffer): void => {
    lines.push(...d.toString().split('\n').filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const proc: Proc = {
    child,
    output: () => lines.join('\n'),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
      live.delete(proc);
    },
  };
  live.add(proc);
  return proc;
}

/** Kills every process the helpers started (call from afterAll). */
export async function stopAll(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop('SIGKILL')));
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 20_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
}

export interface TrackerProc extends Proc {
  url: string;
  httpUrl: string;
  status(): Promise<{ relays: { relayId: string }[] }>;
}

/** Starts `relaycast-tracker --port 0` and reads the port it bound from its listening log line. */
export async function startTrackerProcess(extra: string[] = []): Promise<TrackerProc> {
  const proc = start(TRACKER_BIN, ['--port', '0', '--log-level', 'info', ...extra]);
  const port = await waitFor('tracker to listen', () => {
    for (const line of proc.output().split('\n')) {
      try {
        const j = JSON.parse(line) as { port?: number; msg?: string };
        if (typeof j.port === 'number' && j.msg?.includes('listening') === true) return j.port;
      } catch {
        // not a log line
      }
    }
    if (proc.child.exitCode !== null) throw new Error(`tracker exited:\n${proc.output()}`);
    return undefined;
  });
  const httpUrl = `http://127.0.0.1:${port}`;
  return {
    ...proc,
    url: `ws://127.0.0.1:${port}/`,
    httpUrl,
    status: async () => (await (await fetch(`${httpUrl}/status`)).json()) as { relays: { relayId: string }[] },
  };
}

export interface RelayProc extends Proc {
  relayId: string;
}

/** Starts `relaycast-relay start ...` and waits until the tracker lists it. */
export async function startRelayProcess(
  tracker: TrackerProc,
  opts: { keypair: string; allowOrigin: string[]; extra?: string[] },
): Promise<RelayProc> {
  const before = new Set((await tracker.status()).relays.map((r) => r.relayId));
  const args = ['start', '--tracker', tracker.url, '--keypair', opts.keypair, '--bind-address', '127.0.0.1', '--log-level', 'info'];
  for (const o of opts.allowOrigin) args.push('--allow-origin', o);
  const proc = start(RELAY_BIN, [...args, ...(opts.extra ?? [])]);
  const relayId = await waitFor('relay to register', async () => {
    if (proc.child.exitCode !== null) throw new Error(`relay exited:\n${proc.output()}`);
    const status = await tracker.status();
    return status.relays.map((r) => r.relayId).find((id) => !before.has(id) && proc.output().includes(id));
  });
  return { ...proc, relayId };
}
