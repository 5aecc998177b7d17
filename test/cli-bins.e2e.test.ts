import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveBin, spawnBin, type BinProcess } from '@relaycast/cli-kit/testing';
import { startPaymentWorld } from '@relaycast/contracts-client/testing';
import { TRACKER_SUBPROTOCOL } from '@relaycast/protocol';
import { startTracker } from '@relaycast/tracker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * Issue 15, "Must show" 4, over the real bins (found through their packages' `bin` fields): every
 * bin refuses a bad flag with exit status 2, RC_ERR_CONFIG_INVALID and the flag's name; a second
 * stop signal that reaches a bin while it is still closing exits 130 at once. Ctrl-C twice is sent
 * where a close lasts (the tracker held by a peer, the devnet stopping its processes); the digest's
 * last pass gets both signals in one turn of its event loop; the chain, the settler and the relay
 * close within the turn that handles the first signal, so for them two signals must stop them at
 * once and cleanly. Linux: /proc tells when a frozen bin is stopped.
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

/** The state letter of a process (R, S, T for stopped, ...), from /proc (Linux). */
function processState(pid: number): string {
  return /^\d+ \(.*\) (\S)/s.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))?.[1] ?? '?';
}

/**
 * Delivers two stop signals to a bin in one turn of its event loop. Two SIGINTs cannot be made to
 * arrive together: the kernel merges a SIGINT into one still pending (standard signals do not
 * queue), and one sent after the first was delivered is read a turn later. So the bin is frozen
 * (SIGSTOP), SIGINT and then SIGTERM (the other stop signal, counted with SIGINT by runCli) are
 * queued, and the bin is thawed (SIGCONT): it reads both at once, the second while the close
 * started by the first waits for its first I/O, if it waits for any. A literal second Ctrl-C is
 * tested where a close lasts: the tracker's (a peer that never answers its close handshake) and
 * the devnet's (it stops its processes one by one).
 */
async function stopTwiceWhileClosing(p: BinProcess): Promise<number> {
  const pid = p.pid as number;
  process.kill(pid, 'SIGSTOP');
  // A signal queued before the stop takes effect would be handled first (lower number): wait.
  const deadline = Date.now() + 10_000;
  while (processState(pid) !== 'T') {
    if (Date.now() > deadline) throw new Error(`pid ${pid} did not stop`);
    await new Promise((r) => setTimeout(r, 5));
  }
  process.kill(pid, 'SIGINT');
  process.kill(pid, 'SIGTERM');
  process.kill(pid, 'SIGCONT');
  return p.exited;
}

/**
 * Sends a Ctrl-C, waits until the bin says it is closing (`closing`, a line of its output), and
 * sends another: for bins whose close lasts.
 */
async function ctrlCTwice(p: BinProcess, closing: string): Promise<number> {
  p.kill('SIGINT');
  await p.waitForOutput(closing);
  p.kill('SIGINT');
  return p.exited;
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

/**
 * A WebSocket peer of the tracker that never answers: its close handshake is never completed, so
 * the tracker waits for it (--close-grace-ms) before cutting it.
 */
async function silentTrackerPeer(port: number): Promise<Socket> {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
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
    socket.once('data', (d: Buffer) => (d.toString('latin1').startsWith('HTTP/1.1 101') ? resolve() : reject(new Error(d.toString('latin1')))));
  });
  // From here on, nothing is read: the tracker's frames pile up unanswered.
  socket.pause();
  return socket;
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

describe('every long-running bin: a second stop signal while it closes exits 130', () => {
  it('relaycast-tracker: Ctrl-C, then Ctrl-C again while a peer keeps it closing', async () => {
    const p = run('relaycast-tracker', ['--port', '0', '--close-grace-ms', '20000']);
    await stopped(p, async () => {
      await p.waitForOutput('tracker listening');
      const peer = await silentTrackerPeer(Number(logLine(p, 'tracker listening')['port']));
      try {
        expect(await ctrlCTwice(p, 'shutting down'), p.stderr()).toBe(130);
      } finally {
        peer.destroy();
      }
    });
  });

  // The chain, the settler and the relay, with nothing in flight, close their listeners and exit
  // within the event-loop turn that handles the first signal: the second, even read in that same
  // turn, finds the process gone. There is no closing phase for a second Ctrl-C to cut short, so
  // what is checked is that two signals together stop them at once and cleanly (never 1, never a
  // hang); 130 is what they exit the day their close waits for something.
  const closesAtOnce = async (p: BinProcess): Promise<void> => {
    const started = Date.now();
    expect([0, 130], p.stderr()).toContain(await stopTwiceWhileClosing(p));
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(p.stderr()).toBe('');
  };

  it('relaycast-chain: two signals together stop it at once', async () => {
    const p = run('relaycast-chain', ['--port', '0']);
    await stopped(p, async () => {
      await p.waitForOutput('chain listening');
      await closesAtOnce(p);
    });
  });

  it('relaycast-settler: two signals together stop it at once', async () => {
    const w = await startPaymentWorld();
    try {
      const p = run('relaycast-settler', [
        ...['--port', '0', '--rpc-url', w.chain.rpcUrl, '--treasury-keypair', w.treasuryKeypairPath, '--mint', w.mint.mint.toBase58()],
        ...['--db', w.dbPath, '--grant-auth', 'open', '--trusted-tracker', w.tracker.id],
      ]);
      await stopped(p, async () => {
        await p.waitForOutput('settler listening', 120_000);
        await closesAtOnce(p);
      });
    } finally {
      await w.close();
    }
  });

  it('relaycast-relay: two signals together stop it at once', async () => {
    const tracker = await startTracker({ port: 0, reachability: { enabled: false } });
    try {
      const keypair = join(dir, 'relay.json');
      const p = run('relaycast-relay', [
        'start',
        '--tracker',
        tracker.url,
        '--allow-origin',
        'http://127.0.0.1:9/',
        '--keypair',
        keypair,
        '--bind-address',
        '127.0.0.1',
      ]);
      await stopped(p, async () => {
        await p.waitForOutput('relay registered and serving', 120_000);
        await closesAtOnce(p);
      });
    } finally {
      await tracker.close();
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
      expect(await stopTwiceWhileClosing(p), p.stderr()).toBe(130);
    });
  });

  it('relaycast-devnet: Ctrl-C, then Ctrl-C again while it stops its processes', async () => {
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
    await stopped(p, async () => {
      // A fresh state directory: the sample media are made with ffmpeg first.
      await p.waitForOutput('Relaycast is running', 150_000);
      // Closing stops a relay, the settler, the tracker, the chain and ffmpeg, one process after
      // another: a second or more, while the second SIGINT takes a few ms to arrive.
      expect(await ctrlCTwice(p, 'stopping every process'), p.stderr()).toBe(130);
    });
  }, 180_000);
});
