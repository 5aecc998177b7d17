import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeTracker } from './fake-tracker.js';
import { parseAcceptedPayers, parseCliArgs, receiptsDbPath } from './relay-config.js';
import { eventually } from './transport-compliance.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'relaycast-relay.js');

describe('parseCliArgs', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-cli-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const PAYER = '4Nd1mBQtrMJVYVfKf2PJy9NZUZdTAsp7D4xWLs4gDB4T';
  const base = ['start', '--tracker', 'ws://127.0.0.1:9000', '--allow-origin', 'https://cdn.example/media/', '--keypair', '/tmp/k.json'];

  it('parses every flag', async () => {
    const cmd = await parseCliArgs([
      ...base,
      '--allow-origin', 'https://cdn2.example/',
      '--region', 'eu-west',
      '--capacity', '50',
      '--price-per-gib', '1200',
      '--cache-max-bytes', '1048576',
      '--bind-address', '127.0.0.1',
      '--rtc-port', '50000',
      '--max-upload-bytes-per-sec', '1000000',
      '--log-level', 'debug',
      '--accept-payer', `${PAYER}=http://127.0.0.1:7000/`,
      '--rpc-url', 'http://127.0.0.1:8899',
      '--db', '/tmp/r.sqlite',
      '--credit-limit-bytes', '1000000',
      '--redeem-threshold', '5000',
      '--redeem-interval-ms', '1000',
    ]);
    expect(cmd).toEqual({
      command: 'start',
      config: {
        tracker: 'ws://127.0.0.1:9000',
        allowOrigin: ['https://cdn.example/media/', 'https://cdn2.example/'],
        keypair: '/tmp/k.json',
        region: 'eu-west',
        capacity: 50,
        pricePerGib: '1200',
        cacheMaxBytes: 1048576,
        bindAddress: '127.0.0.1',
        rtcPort: 50000,
        maxUploadBytesPerSec: 1000000,
        logLevel: 'debug',
        acceptPayer: [`${PAYER}=http://127.0.0.1:7000/`],
        rpcUrl: 'http://127.0.0.1:8899',
        db: '/tmp/r.sqlite',
        creditLimitBytes: 1000000,
        redeemThreshold: '5000',
        redeemIntervalMs: 1000,
      },
    });
    expect(parseAcceptedPayers([`${PAYER}=http://127.0.0.1:7000/`])).toEqual(new Map([[PAYER, 'http://127.0.0.1:7000/']]));
    expect(receiptsDbPath({ keypair: '/keys/relay.json' })).toBe('/keys/relay-receipts.sqlite');
    expect(receiptsDbPath({ keypair: '/keys/relay.json', db: '/data/r.sqlite' })).toBe('/data/r.sqlite');
    expect(await parseCliArgs(['redeem', '--keypair', 'k.json', '--rpc-url', 'http://127.0.0.1:8899', '--accept-payer', `${PAYER}=http://s/`])).toEqual({
      command: 'redeem',
      config: { keypair: 'k.json', rpcUrl: 'http://127.0.0.1:8899', acceptPayer: [`${PAYER}=http://s/`] },
    });
    expect(await parseCliArgs(['--help'])).toEqual({ command: 'help' });
  });

  it('reads a config file and lets flags override it', async () => {
    const path = join(dir, 'relay.json');
    await writeFile(path, JSON.stringify({ tracker: 'ws://file:1', allowOrigin: ['https://file.example/'], keypair: 'k.json', capacity: 5, pricePerGib: 7 }));
    const cmd = await parseCliArgs(['start', '--config', path, '--capacity', '9']);
    expect(cmd).toEqual({
      command: 'start',
      config: { tracker: 'ws://file:1', allowOrigin: ['https://file.example/'], keypair: 'k.json', capacity: 9, pricePerGib: '7' },
    });
  });

  it('refuses invalid settings with RC_ERR_CONFIG_INVALID', async () => {
    const cfg = join(dir, 'bad.json');
    const cases: [string[], string?][] = [
      [['start', '--allow-origin', 'https://a/', '--keypair', 'k']],
      [['start', '--tracker', 'http://x', '--allow-origin', 'https://a/', '--keypair', 'k']],
      [['start', '--tracker', 'ws://x', '--keypair', 'k']],
      [['start', '--tracker', 'ws://x', '--allow-origin', 'ftp://a/', '--keypair', 'k']],
      [['start', '--tracker', 'ws://x', '--allow-origin', 'https://a/']],
      [[...base, '--capacity', '-1']],
      [[...base, '--capacity', 'ten']],
      [[...base, '--rtc-port', '70000']],
      [[...base, '--bind-address', 'localhost']],
      [[...base, '--region', 'EU West']],
      [[...base, '--price-per-gib', '1.5']],
      [[...base, '--log-level', 'loud']],
      [[...base, '--unknown-flag', 'x']],
      [[...base, '--accept-payer', 'nobody=http://s/']],
      [[...base, '--accept-payer', PAYER]],
      [[...base, '--accept-payer', `${PAYER}=ftp://s/`]],
      [[...base, '--accept-payer', `${PAYER}=http://a/`, '--accept-payer', `${PAYER}=http://b/`]],
      [[...base, '--rpc-url', 'ws://x']],
      [[...base, '--credit-limit-bytes', '0']],
      [[...base, '--redeem-threshold', '-5']],
      [[...base, '--redeem-interval-ms', '5']],
      [['redeem', '--rpc-url', 'http://x', '--accept-payer', `${PAYER}=http://s/`]],
      [['redeem', '--keypair', 'k', '--accept-payer', `${PAYER}=http://s/`]],
      [['redeem', '--keypair', 'k', '--rpc-url', 'http://x']],
      [['serve']],
      [['start', '--config', cfg], '{"tracker": "ws://x", "allowOrigins": ["https://a/"]}'],
      [['start', '--config', cfg], '{"capacity": "5"}'],
      [['start', '--config', cfg], '{"tracker": "ws://x", "allowOrigin": ["https://a/"], "keypair": "k", "acceptPayer": [5]}'],
      [['start', '--config', cfg], 'not json'],
      [['start', '--config', join(dir, 'missing.json')]],
    ];
    for (const [args, file] of cases) {
      if (file !== undefined) await writeFile(cfg, file);
      await expect(parseCliArgs(args), args.join(' ')).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    }
  });
});

function run(args: string[]): { exited: Promise<number | null>; stdout: () => string; stderr: () => string; kill: (s: NodeJS.Signals) => void } {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += String(d)));
  child.stderr.on('data', (d) => (err += String(d)));
  return {
    exited: new Promise((resolve) => child.on('exit', (code) => resolve(code))),
    stdout: () => out,
    stderr: () => err,
    kill: (s) => child.kill(s),
  };
}

describe('relaycast-relay bin', () => {
  it('creates a missing keypair (0600), registers, logs JSON and stops with exit 0 on SIGTERM', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relaycast-cli-bin-'));
    const tracker = await startFakeTracker();
    try {
      const keypair = join(dir, 'keys', 'relay.json');
      const p = run(['start', '--tracker', tracker.url, '--allow-origin', 'http://127.0.0.1:1/media/', '--keypair', keypair, '--bind-address', '127.0.0.1', '--region', 'local']);
      await eventually(() => tracker.connections.some((c) => c.signatureValid === true), 'the relay to register', 30_000);
      expect((await stat(keypair)).mode & 0o777).toBe(0o600);
      await eventually(() => p.stdout().includes('relay registered and serving'), 'the startup log', 10_000);
      const lines = p.stdout().trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      const created = lines.find((l) => typeof l['msg'] === 'string' && (l['msg'] as string).startsWith('created a new relay keypair'));
      const register = tracker.all().find((m) => m.type === 'register');
      expect(created?.['relayId']).toBe(register?.type === 'register' ? register.relayId : undefined);
      expect(register).toMatchObject({ region: 'local' });
      p.kill('SIGTERM');
      expect(await p.exited).toBe(0);
    } finally {
      await tracker.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 1 with a clear message on an invalid configuration', { timeout: 30_000 }, async () => {
    const p = run(['start', '--tracker', 'ws://127.0.0.1:1', '--keypair', '/tmp/none.json']);
    expect(await p.exited).toBe(1);
    expect(p.stderr()).toContain('RC_ERR_CONFIG_INVALID');
    expect(p.stderr()).toContain('--allow-origin');
  });
});
