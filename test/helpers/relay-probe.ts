/**
 * Looking at a running relay process from outside: its /status (the status server started with
 * `--status-port 0`), and what the kernel says about it (/proc: resident memory, open file
 * descriptors, threads). Linux only, like the rest of the e2e suite.
 */
import { readdir, readFile } from 'node:fs/promises';
import { RELAY_STATUS_PATHS } from '@relaycast/protocol';
import type { Proc } from './processes.js';
import { GiveUp, waitFor } from './processes.js';

export interface ProcessFigures {
  /** Resident set size (VmRSS), in bytes. */
  rssBytes: number;
  /** Open file descriptors (sockets, pipes, epoll, eventfds, files). */
  fds: number;
  /** OS threads (libdatachannel and libuv pools included). */
  threads: number;
}

export async function processFigures(pid: number): Promise<ProcessFigures> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): number => {
    const m = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status);
    if (m === null) throw new Error(`/proc/${pid}/status has no ${name}`);
    return Number(m[1]);
  };
  return { rssBytes: field('VmRSS') * 1024, fds: (await readdir(`/proc/${pid}/fd`)).length, threads: field('Threads') };
}

/** Whether the process is stopped by a signal (state T in /proc/<pid>/stat). */
export async function isStopped(pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The command name in parentheses may contain spaces; the state follows the last ')'.
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('T');
}

/** The subset of the relay's GET /status these tests read. */
export interface RelayStatus {
  peers: number;
  pendingPeers: number;
  channels: number;
  viewers: number;
  activeRequests: number;
  requests: number;
  completed: number;
  cancelled: number;
  bytesServed: number;
  protocolViolations: number;
  errorsByCode: Record<string, number>;
}

/** Base URL of a relay's status server, from its "relay started" log line (start it with `--status-port 0`). */
export async function statusUrlOf(relay: Proc): Promise<string> {
  return waitFor('the relay status URL in its log', () => {
    for (const line of relay.output().split('\n')) {
      try {
        const j = JSON.parse(line) as { statusUrl?: unknown };
        if (typeof j.statusUrl === 'string') return j.statusUrl;
      } catch {
        // not a JSON log line
      }
    }
    if (relay.exited) throw new GiveUp(`relay exited:\n${relay.output()}`);
    return undefined;
  });
}

export async function relayStatus(statusUrl: string): Promise<RelayStatus> {
  const res = await fetch(`${statusUrl}${RELAY_STATUS_PATHS.status}`);
  if (!res.ok) throw new Error(`GET /status: ${res.status}`);
  return (await res.json()) as RelayStatus;
}

const HANDLE_PROBE = new URL('./handle-probe.mjs', import.meta.url).href;

/**
 * Runs `start` (which spawns a process) with handle-probe.mjs preloaded into that process through
 * NODE_OPTIONS. The variable is restored before `start`'s promise is awaited: the spawn itself is
 * synchronous, so no other child inherits it.
 */
export async function withHandleProbe<T extends Proc>(start: () => Promise<T>): Promise<T> {
  const saved = process.env['NODE_OPTIONS'];
  process.env['NODE_OPTIONS'] = `${saved ?? ''} --import=${HANDLE_PROBE}`.trim();
  let pending: Promise<T>;
  try {
    pending = start();
  } finally {
    if (saved === undefined) delete process.env['NODE_OPTIONS'];
    else process.env['NODE_OPTIONS'] = saved;
  }
  return pending;
}

export interface HandleFigures {
  /** Ref'ed resources keeping the event loop alive, by type (`Timeout`, `TCPSocketWrap`, ...). */
  resources: Record<string, number>;
  /** Timers not yet fired or cleared, unref'ed ones included. */
  liveTimers: number;
}

/** What the process's handle probe reports (start the process with `withHandleProbe`). */
export async function handleFigures(proc: Proc): Promise<HandleFigures> {
  const port = await waitFor('the handle probe port in the process output', () => {
    for (const line of proc.output().split('\n')) {
      try {
        const j = JSON.parse(line) as { handleProbePort?: unknown };
        if (typeof j.handleProbePort === 'number') return j.handleProbePort;
      } catch {
        // not a JSON line
      }
    }
    if (proc.exited) throw new GiveUp(`process exited:\n${proc.output()}`);
    return undefined;
  });
  const res = await fetch(`http://127.0.0.1:${port}/`);
  return (await res.json()) as HandleFigures;
}
