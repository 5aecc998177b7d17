import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestBed } from './netns.js';
import { GiveUp, waitFor } from './processes.js';

/** Relay (allocation) ports coturn may hand out: small, so a leak shows quickly. */
const MIN_RELAY_PORT = 49_160;
const MAX_RELAY_PORT = 49_200;
const RING_LINES = 500;

export interface CoturnOptions {
  /** TURN REST API shared secret (`static-auth-secret`). */
  secret: string;
  /** Realm; `relaycast.test` by default. */
  realm?: string;
  /** Address coturn listens and relays on; the bed's `addr.turn` (11.199.0.20) by default. */
  listenIp?: string;
  /** UDP (and TCP) listening port; 3478 by default. */
  port?: number;
}

export interface Coturn {
  /** e.g. `turn:11.199.0.20:3478?transport=udp` (no credentials: the tracker's turnRestCredentials makes them). */
  url: string;
  /** e.g. `stun:11.199.0.20:3478`. */
  stunUrl: string;
  ip: string;
  port: number;
  realm: string;
  /** Last lines of coturn's log. */
  output(): string;
  /**
   * Successful TURN allocations seen in the log since start. coturn 4.6.1 logs, per allocation,
   * `session 001000000000000001: new, realm=<...>, username=<1796094508:viewer1>, lifetime=600`
   * followed by `session ...: realm <...> user <...>: incoming packet ALLOCATE processed, success`;
   * the latter is counted. A bad credential logs `... processed, error 401: Unauthorized`.
   */
  allocations(): number;
  /**
   * Requests refused with 401 although the client sent a username (a wrong password or expired
   * username): `... user <1796094508:viewer1>: incoming packet message processed, error 401: Unauthorized`.
   */
  rejectedAllocations(): number;
  stop(): Promise<void>;
}

/**
 * Runs Debian's coturn `turnserver` inside the bed's public namespace with TURN REST auth, UDP and
 * TCP listeners on `listenIp:port`, relay ports 49160-49200 on the same address, no TLS/DTLS, no
 * CLI, no /etc/turnserver.conf (its config file and SQLite db live in a temp dir) and its log on
 * stdout. Resolves once its UDP listener is open. coturn 4.6.1 has no default `denied-peer-ip`
 * ranges, so peers with private addresses are allowed as they are; loopback peers stay refused.
 */
export async function startCoturn(bed: TestBed, opts: CoturnOptions): Promise<Coturn> {
  const ip = opts.listenIp ?? bed.addr.turn;
  const port = opts.port ?? 3478;
  const realm = opts.realm ?? 'relaycast.test';
  const dir = await mkdtemp(join(tmpdir(), 'rc-coturn-'));
  const conf = [
    `listening-ip=${ip}`,
    `relay-ip=${ip}`,
    `listening-port=${port}`,
    `min-port=${MIN_RELAY_PORT}`,
    `max-port=${MAX_RELAY_PORT}`,
    'use-auth-secret',
    `static-auth-secret=${opts.secret}`,
    `realm=${realm}`,
    'fingerprint',
    'no-tls',
    'no-dtls',
    'no-cli',
    'no-multicast-peers',
    'log-file=stdout',
    'simple-log',
    // Needed for the per-session lines allocations() counts.
    'verbose',
    `pidfile=${join(dir, 'turnserver.pid')}`,
    // Its default db is /var/lib/turn/turndb: keep everything in the temp dir.
    `userdb=${join(dir, 'turndb')}`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'turnserver.conf'), conf);
  const child: ChildProcess = spawn('ip', ['netns', 'exec', bed.ns.public, 'turnserver', '-c', join(dir, 'turnserver.conf')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let allocations = 0;
  let rejected = 0;
  let partial = '';
  const keep = (d: Buffer): void => {
    const text = partial + d.toString();
    const parts = text.split('\n');
    partial = parts.pop() ?? '';
    for (const line of parts) {
      if (line === '') continue;
      if (/incoming packet ALLOCATE processed, success/.test(line)) allocations++;
      // The first Allocate of every session is refused 401 without credentials (user <>), by design.
      else if (/user <[^>]+>: incoming packet \w+ processed, error 401/.test(line)) rejected++;
      lines.push(line);
    }
    if (lines.length > RING_LINES) lines.splice(0, lines.length - RING_LINES);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => ((exited = true), resolve())));
  const output = (): string => [...lines, partial].filter(Boolean).join('\n');
  const stop = async (): Promise<void> => {
    if (!exited) child.kill('SIGTERM');
    const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exit;
    clearTimeout(killer);
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const listening = new RegExp(`UDP listener opened on\\s*:\\s*${ip.replace(/\./g, '\\.')}:${port}\\b`);
    await waitFor('turnserver to listen', () => {
      if (exited) throw new GiveUp(`turnserver exited:\n${output()}`);
      return listening.test(output()) || undefined;
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    url: `turn:${ip}:${port}?transport=udp`,
    stunUrl: `stun:${ip}:${port}`,
    ip,
    port,
    realm,
    output,
    allocations: () => allocations,
    rejectedAllocations: () => rejected,
    stop,
  };
}
