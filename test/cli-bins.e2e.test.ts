import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isRunning, processState, resolveBin, spawnBin, type BinProcess } from '@relaycast/cli-kit/testing';
import { startPaymentWorld } from '@relaycast/contracts-client/testing';
import { TRACKER_SUBPROTOCOL } from '@relaycast/protocol';
import { SETTLER_PATHS } from '@relaycast/protocol/settlement';
import { startHeldSegmentWorld } from '@relaycast/relay/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';

/**
 * Issue 15, "Must show" 4, over the real bins (found through their packages' `bin` fields): every
 * bin refuses a bad flag with exit status 2, RC_ERR_CONFIG_INVALID and the flag's name; a second
 * stop signal that reaches a bin while it is still closing exits 130 at once. Each such case gives
 * the bin work that keeps its close waiting (a tracker peer that never answers the close, a relay's
 * segment request held at the origin, the devnet's processes), sends Ctrl-C, waits until the bin is
 * observably closing and sends Ctrl-C again. The chain and the settler have no such work: their
 * close cuts every connection and request at once, so for them one signal must stop them at once
 * while something is in flight. Linux: /proc tells when a process is stopped or gone.
 */

const bin = (pkg: string, name: string): string => resolveBin(pkg, name, import.meta.url);
const BINS = {
  'relaycast-relay': bin('@relaycast/relay', 'relaycast-relay'),
  'relaycast-digest': bin('@relaycast/origin-tools', 'relaycast-digest'),
  'relaycast-tracker': bin('@relaycast/tracker', 'relaycast-tracker'),
  'relaycast-chain': bin('@relaycast/contracts-client', 'relaycast-chain'),
  'relaycast-settler': bin('@relaycast/contracts-client', 'relaycast-settler'),
  'relaycast-solana': bin('@relaycast/contracts-client', 'relaycast-solana'),
  'relaycast-devnet': bin('@relaycast/devnet', 'relaycast-devnet'),
} as const;
type BinName = keyof typeof BINS;

// The bins read RELAYCAST_* variables; the runner's own must not change what they are given.
const ENV = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('RELAYCAST_')));

function run(name: BinName, args: readonly string[]): BinProcess {
  return spawnBin(BINS[name], args, { env: ENV });
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rc-cli-bins-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('every bin: a bad flag exits 2 with RC_ERR_CONFIG_INVALID and the flag', () => {
  // [bin, arguments, the flag the error must name]. The digest's folder and the relay's and the
  // solana's commands are given, so only the flag is wrong.
  const cases: [BinName, string[], string][] = [
    ['relaycast-relay', ['start', '--capacity', 'many'], '--capacity'],
    ['relaycast-relay', ['start', '--no-such-flag'], '--no-such-flag'],
    ['relaycast-digest', ['--interval-ms', 'soon', '.'], '--interval-ms'],
    ['relaycast-digest', ['--no-such-flag', '.'], '--no-such-flag'],
    ['relaycast-tracker', ['--port', 'abc'], '--port'],
    ['relaycast-tracker', ['--no-such-flag'], '--no-such-flag'],
    ['relaycast-chain', ['--port', 'abc'], '--port'],
    ['relaycast-chain', ['--no-such-flag'], '--no-such-flag'],
    ['relaycast-settler', ['--port', 'abc'], '--port'],
    ['relaycast-settler', ['--no-such-flag'], '--no-such-flag'],
    ['relaycast-solana', ['balance', '--url', 'not-a-url'], '--url'],
    ['relaycast-solana', ['balance', '--no-such-flag'], '--no-such-flag'],
    ['relaycast-devnet', ['--port', 'abc'], '--port'],
    ['relaycast-devnet', ['--no-such-flag'], '--no-such-flag'],
  ];
  it.each(cases)('%s %s', async (name, args, flag) => {
    const p = run(name, args);
    expect(await p.exited, p.stderr()).toBe(2);
    expect(p.stderr()).toContain(`${name}: RC_ERR_CONFIG_INVALID: `);
    expect(p.stderr()).toContain(flag);
  });
});

/**
 * Delivers two stop signals to a bin in one turn of its event loop. Two SIGINTs cannot be made to
 * arrive together: the kernel merges a SIGINT into one still pending (standard signals do not
 * queue), and one sent after the first was delivered is read a turn later. So the bin is frozen
 * (SIGSTOP), SIGINT and then SIGTERM (the other stop signal, counted with SIGINT by runCli) are
 * queued, and the bin is thawed (SIGCONT): it reads both at once, the second while the close
 * started by the first waits for its first I/O. For the digest's last pass, which reads every
 * playlist again after the first signal and says nothing on the way.
 */
async function stopTwiceAtOnce(p: BinProcess): Promise<void> {
  const pid = p.pid as number;
  process.kill(pid, 'SIGSTOP');
  // A signal queued before the stop takes effect would be handled first (lower number): wait.
  await until(() => processState(pid) === 'T', `pid ${pid} to stop`);
  process.kill(pid, 'SIGINT');
  process.kill(pid, 'SIGTERM');
  process.kill(pid, 'SIGCONT');
  await exitedItself(p, 130);
}

/**
 * Ctrl-C; then, once `closing` resolves (the bin is observably closing, held by work in flight),
 * Ctrl-C again: the bin exits 130 itself, at once.
 */
async function ctrlCTwice(p: BinProcess, closing: () => Promise<unknown>): Promise<void> {
  p.kill('SIGINT');
  await closing();
  const second = Date.now();
  p.kill('SIGINT');
  await exitedItself(p, 130);
  expect(Date.now() - second).toBeLessThan(5_000);
}

/** The bin exited with `code` by itself (a bin killed by SIGINT would also read 130 in a shell), and is gone. */
async function exitedItself(p: BinProcess, code: number): Promise<void> {
  expect(await p.ended, p.stderr()).toEqual({ code, signal: null });
  expect(isRunning(p.pid as number)).toBe(false);
}

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** The first JSON log line of `p` whose msg starts with `msg`. */
function logLine(p: BinProcess, msg: string): Record<string, unknown> {
  for (const line of p.stdout().split('\n')) {
    if (!line.startsWith('{')) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (typeof entry['msg'] === 'string' && entry['msg'].startsWith(msg)) return entry;
  }
  throw new Error(`no "${msg}" line in:\n${p.stdout()}`);
}

/** The processes whose parent is `pid`, with their command lines (Linux: /proc). */
function childrenOf(pid: number): { pid: number; command: string }[] {
  const children: { pid: number; command: string }[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const ppid = /^\d+ \(.*\) \S (\d+)/s.exec(readFileSync(`/proc/${name}/stat`, 'utf8'))?.[1];
      if (Number(ppid) === pid) children.push({ pid: Number(name), command: readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ') });
    } catch {
      // exited meanwhile
    }
  }
  return children;
}

/**
 * A WebSocket peer of the tracker that never answers: it reads the tracker's frames but never sends
 * one, so the tracker's close handshake is never completed and the tracker waits for it
 * (--close-grace-ms) before cutting it. `closing` resolves when the tracker's close frame arrives.
 */
async function silentTrackerPeer(port: number): Promise<{ closing: Promise<void>; destroy(): void }> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  let buffered = Buffer.alloc(0);
  let upgraded: (() => void) | undefined;
  let refused: ((err: Error) => void) | undefined;
  let closed: (() => void) | undefined;
  const closing = new Promise<void>((resolve) => (closed = resolve));
  socket.on('data', (d: Buffer) => {
    buffered = Buffer.concat([buffered, d]);
    if (upgraded !== undefined) {
      const end = buffered.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = buffered.subarray(0, end).toString('latin1');
      if (!head.startsWith('HTTP/1.1 101')) return refused?.(new Error(head));
      upgraded();
      upgraded = undefined;
      buffered = buffered.subarray(end + 4);
    }
    // Server frames are unmasked: opcode, length (7 bits, or 16 or 64 more), payload.
    while (buffered.length >= 2) {
      const opcode = (buffered[0] as number) & 0x0f;
      const short = (buffered[1] as number) & 0x7f;
      const offset = short === 126 ? 4 : short === 127 ? 10 : 2;
      if (buffered.length < offset) return;
      const length = short === 126 ? buffered.readUInt16BE(2) : short === 127 ? Number(buffered.readBigUInt64BE(2)) : short;
      if (buffered.length < offset + length) return;
      if (opcode === 0x8) closed?.();
      buffered = buffered.subarray(offset + length);
    }
  });
  await new Promise<void>((resolve, reject) => {
    upgraded = resolve;
    refused = reject;
    socket.once('error', reject);
    socket.write(
      [
        'GET / HTTP/1.1',
        `Host: 127.0.0.1:${port}`,
        'Upgrade: websocket',
        'Connection: Upgrade',
        `Sec-WebSocket-Key: ${randomBytes(16).toString('base64')}`,
        'Sec-WebSocket-Version: 13',
        `Sec-WebSocket-Protocol: ${TRACKER_SUBPROTOCOL}`,
        '',
        '',
      ].join('\r\n'),
    );
  });
  return { closing, destroy: () => socket.destroy() };
}

/**
 * An HTTP request whose body never finishes arriving: the server has it in flight until it gives
 * up on it. `closed` resolves when the server closes the connection.
 */
async function halfSentRequest(url: string, path: string): Promise<{ closed: Promise<void>; destroy(): void }> {
  const { hostname, port, host } = new URL(url);
  const socket = connect(Number(port), hostname);
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: ${host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":`);
  return { closed, destroy: () => socket.destroy() };
}

/** A running bin is never left behind by a failed test (the devnet stops its processes on SIGTERM). */
async function stopped(p: BinProcess, test: () => Promise<void>): Promise<void> {
  try {
    await test();
  } finally {
    p.kill('SIGTERM');
    const timer = setTimeout(() => p.kill('SIGKILL'), 20_000);
    await p.exited;
    clearTimeout(timer);
  }
}

/** A port free on 127.0.0.1 now, with the next one free too (the chain's WebSocket takes port + 1). */
async function freePortPair(): Promise<number> {
  const listen = (port: number): Promise<(() => Promise<void>) | undefined> =>
    new Promise((resolve) => {
      const s = createServer();
      s.once('error', () => resolve(undefined));
      s.listen(port, '127.0.0.1', () => resolve(() => new Promise<void>((r) => s.close(() => r()))));
    });
  for (;;) {
    const port = 40_000 + 2 * Math.floor(Math.random() * 5_000);
    const [a, b] = [await listen(port), await listen(port + 1)];
    await a?.();
    await b?.();
    if (a !== undefined && b !== undefined) return port;
  }
}

describe('every bin whose close waits for something: a second stop signal while it closes exits 130', () => {
  it('relaycast-tracker: Ctrl-C, then Ctrl-C again while a peer that never answers the close keeps it closing', async () => {
    const p = run('relaycast-tracker', ['--port', '0', '--close-grace-ms', '20000']);
    await stopped(p, async () => {
      await p.waitForOutput('tracker listening');
      const peer = await silentTrackerPeer(Number(logLine(p, 'tracker listening')['port']));
      try {
        await ctrlCTwice(p, () => peer.closing);
      } finally {
        peer.destroy();
      }
    });
  });

  it('relaycast-relay: Ctrl-C, then Ctrl-C again while a segment request held at the origin keeps it closing', async () => {
    const world = await startHeldSegmentWorld();
    try {
      const p = run('relaycast-relay', ['start', ...world.relayArgs, '--keypair', join(dir, 'relay.json'), '--bind-address', '127.0.0.1']);
      await stopped(p, async () => {
        await world.registered(120_000);
        await world.holdRequest();
        // It unregisters first, then waits for the request (up to its 5 s grace period).
        await ctrlCTwice(p, () => world.unregistered());
      });
    } finally {
      await world.close();
    }
  });

  it('relaycast-digest --watch: a second signal during its last pass', async () => {
    // A few playlists: its last pass after the first signal (digest-cli.ts) reads them again.
    const media = join(dir, 'media');
    for (const r of ['a', 'b', 'c']) {
      await mkdir(join(media, r), { recursive: true });
      const segments = ['0.ts', '1.ts', '2.ts'];
      for (const s of segments) await writeFile(join(media, r, s), `segment ${r}/${s}`);
      await writeFile(join(media, r, 'index.m3u8'), ['#EXTM3U', '#EXT-X-TARGETDURATION:2', ...segments.flatMap((s) => ['#EXTINF:2,', s])].join('\n'));
    }
    const p = run('relaycast-digest', [media, '--watch']);
    await stopped(p, async () => {
      await p.waitForOutput('watching for segments');
      await stopTwiceAtOnce(p);
    });
  });

  it('relaycast-devnet: Ctrl-C, then Ctrl-C again while it stops its processes; its services are gone', async () => {
    const [chain, web, tracker, settler, status] = [
      await freePortPair(),
      await freePortPair(),
      await freePortPair(),
      await freePortPair(),
      await freePortPair(),
    ];
    const p = run('relaycast-devnet', [
      ...['--state-dir', join(dir, 'devnet'), '--relays', '1', '--vod-seconds', '4'],
      ...['--port', String(web), '--tracker-port', String(tracker), '--chain-port', String(chain)],
      ...['--settler-port', String(settler), '--relay-status-port', String(status)],
    ]);
    let children: { pid: number; command: string }[] = [];
    try {
      await stopped(p, async () => {
        // A fresh state directory: the sample media are made with ffmpeg first.
        await p.waitForOutput('Relaycast is running', 150_000);
        children = childrenOf(p.pid as number);
        // Its services, and beside them the live stream's ffmpeg and digest watcher.
        const services = children.filter((c) => /\/bin\/relaycast-(chain|tracker|settler|relay)\.js /.test(c.command));
        expect(services).toHaveLength(4);
        // Closing stops a relay, the settler, the tracker, the chain and ffmpeg, one process after
        // another, each given time to stop gracefully.
        await ctrlCTwice(p, () => p.waitForOutput('stopping every process'));
        await until(() => services.every((c) => !isRunning(c.pid)), 'the services the devnet started to be gone');
        // Every other child too: the live ffmpeg would otherwise run for a day.
        expect(children.length).toBeGreaterThan(services.length);
        await until(() => children.every((c) => !isRunning(c.pid)), 'every process the devnet started to be gone');
      });
    } finally {
      // What the devnet left behind must not outlive the test (its live ffmpeg runs for a day).
      for (const c of children) if (isRunning(c.pid)) process.kill(c.pid, 'SIGKILL');
    }
  }, 180_000);
});

describe('the chain and the settler: their close waits for nothing, so one signal stops them at once, cutting what is in flight', () => {
  it('relaycast-chain: a slot subscriber and a half-sent JSON-RPC request are cut, exit 0', async () => {
    const p = run('relaycast-chain', ['--port', '0']);
    await stopped(p, async () => {
      await p.waitForOutput('chain listening');
      const { rpcUrl, wsUrl } = logLine(p, 'chain listening') as { rpcUrl: string; wsUrl: string };
      const subscriber = new WebSocket(wsUrl);
      subscriber.on('error', () => undefined);
      const unsubscribed = new Promise<void>((resolve) => subscriber.once('close', () => resolve()));
      await once(subscriber, 'open');
      subscriber.send(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'slotSubscribe' }));
      // A notification: the subscription is live.
      await new Promise<void>((resolve) => subscriber.on('message', (m) => String(m).includes('slotNotification') && resolve()));
      const request = await halfSentRequest(rpcUrl, '/');
      try {
        const first = Date.now();
        p.kill('SIGINT');
        await exitedItself(p, 0);
        expect(Date.now() - first).toBeLessThan(5_000);
        await Promise.all([unsubscribed, request.closed]);
      } finally {
        request.destroy();
        subscriber.terminate();
      }
    });
  });

  it('relaycast-settler: a half-sent grant request is cut, exit 0', async () => {
    const w = await startPaymentWorld();
    try {
      const p = run('relaycast-settler', [
        ...['--port', '0', '--rpc-url', w.chain.rpcUrl, '--treasury-keypair', w.treasuryKeypairPath, '--mint', w.mint.mint.toBase58()],
        ...['--db', w.dbPath, '--grant-auth', 'open', '--trusted-tracker', w.tracker.id],
      ]);
      await stopped(p, async () => {
        await p.waitForOutput('settler listening', 120_000);
        const request = await halfSentRequest(logLine(p, 'settler listening')['url'] as string, SETTLER_PATHS.grants);
        try {
          const first = Date.now();
          p.kill('SIGINT');
          await exitedItself(p, 0);
          expect(Date.now() - first).toBeLessThan(5_000);
          await request.closed;
        } finally {
          request.destroy();
        }
      });
    } finally {
      await w.close();
    }
  });
});
