import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, RELAY_STATUS_PATHS } from '@relaycast/protocol';
import { isRunning, spawnBin, type BinProcess } from '@relaycast/cli-kit/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakeTracker } from '../testing/fake-tracker.js';
import { startHeldSegmentWorld } from '../testing/held-segment.js';
import { RELAY_SETTINGS } from '../node/relay-settings.js';
import { receiptsDbPath } from './relay-config.js';
import { parseCliArgs } from './relay-command.js';
import { eventually } from '../testing/transport-compliance.js';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'relaycast-relay.js');

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
    // A flag and its value a line.
    // prettier-ignore
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
      '--max-peers', '2000',
    ]);
    expect(cmd).toEqual({
      command: 'start',
      config: {
        trackerUrl: 'ws://127.0.0.1:9000',
        allowedOrigins: ['https://cdn.example/media/', 'https://cdn2.example/'],
        keypair: '/tmp/k.json',
        region: 'eu-west',
        capacity: 50,
        pricePerGiB: 1200n,
        cacheMaxBytes: 1048576,
        bindAddress: '127.0.0.1',
        rtcPort: 50000,
        maxUploadBytesPerSec: 1000000,
        logLevel: 'debug',
        acceptPayers: new Map([[PAYER, 'http://127.0.0.1:7000/']]),
        rpcUrl: 'http://127.0.0.1:8899',
        receiptsDbPath: '/tmp/r.sqlite',
        creditLimitBytes: 1000000,
        redeemThreshold: 5000n,
        redeemIntervalMs: 1000,
        maxPeers: 2000,
      },
    });
    expect(RELAY_SETTINGS.spec.acceptPayers.type.parse([`${PAYER}=http://127.0.0.1:7000/`], '--accept-payer')).toEqual(
      new Map([[PAYER, 'http://127.0.0.1:7000/']]),
    );
    expect(receiptsDbPath({ keypair: '/keys/relay.json' })).toBe('/keys/relay-receipts.sqlite');
    expect(receiptsDbPath({ keypair: '/keys/relay.json', receiptsDbPath: '/data/r.sqlite' })).toBe('/data/r.sqlite');
    expect(await parseCliArgs(['redeem', '--keypair', 'k.json', '--rpc-url', 'http://127.0.0.1:8899', '--accept-payer', `${PAYER}=http://s/`])).toEqual({
      command: 'redeem',
      config: { keypair: 'k.json', rpcUrl: 'http://127.0.0.1:8899', acceptPayers: new Map([[PAYER, 'http://s/']]) },
    });
    expect(await parseCliArgs(['--help'])).toEqual({ command: 'help' });
  });

  it('reads a config file and lets flags override it', async () => {
    const path = join(dir, 'relay.json');
    await writeFile(
      path,
      JSON.stringify({ trackerUrl: 'ws://file:1', allowedOrigins: ['https://file.example/'], keypair: 'k.json', capacity: 5, pricePerGiB: 7 }),
    );
    const cmd = await parseCliArgs(['start', '--config', path, '--capacity', '9']);
    expect(cmd).toEqual({
      command: 'start',
      config: { trackerUrl: 'ws://file:1', allowedOrigins: ['https://file.example/'], keypair: 'k.json', capacity: 9, pricePerGiB: 7n },
    });
  });

  it('takes RELAYCAST_* environment variables between the config file and the flags', async () => {
    const path = join(dir, 'env.json');
    await writeFile(
      path,
      JSON.stringify({ trackerUrl: 'ws://file:1', allowedOrigins: ['https://file.example/'], keypair: 'k.json', capacity: 5, region: 'file' }),
    );
    const env = {
      RELAYCAST_CONFIG: path,
      RELAYCAST_CAPACITY: '6',
      RELAYCAST_REGION: 'env',
      RELAYCAST_ALLOW_ORIGIN: 'https://env-a.example/, https://env-b.example/',
      RELAYCAST_LOG_FORMAT: 'pretty',
    };
    const cmd = await parseCliArgs(['start', '--region', 'flag'], undefined, env);
    expect(cmd).toEqual({
      command: 'start',
      config: {
        trackerUrl: 'ws://file:1',
        allowedOrigins: ['https://env-a.example/', 'https://env-b.example/'],
        keypair: 'k.json',
        capacity: 6,
        region: 'flag',
        logFormat: 'pretty',
      },
    });
    for (const bad of [{ RELAYCAST_CAPACITY: 'many' }, { RELAYCAST_LOG_FORMAT: 'xml' }]) {
      await expect(parseCliArgs(base, undefined, bad)).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    }
    expect(await parseCliArgs(['status', '--json'], undefined, { RELAYCAST_STATUS_PORT: '9123' })).toEqual({
      command: 'status',
      config: { statusPort: 9123, json: true },
    });
    await expect(parseCliArgs(['status'], undefined, {})).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
  });

  it('parses the trust settings of the origin side, offers and candidates from flags, environment and config file', async () => {
    // A flag and its value a line.
    // prettier-ignore
    const cmd = await parseCliArgs([
      ...base,
      '--cache-key-query', 'keep',
      '--origin-bytes-per-sec', '1000000',
      '--origin-burst-bytes', '5000000',
      '--channel-origin-bytes-per-sec', '200000',
      '--channel-origin-burst-bytes', '400000',
      '--allow-private-candidates',
      '--max-pending-peers', '16',
      '--max-pending-peers-per-viewer', '1',
    ]);
    expect(cmd).toMatchObject({
      command: 'start',
      config: {
        cacheKeyQuery: 'keep',
        originBytesPerSec: 1_000_000,
        originBurstBytes: 5_000_000,
        channelOriginBytesPerSec: 200_000,
        channelOriginBurstBytes: 400_000,
        allowPrivateCandidates: true,
        maxPendingPeers: 16,
        maxPendingPeersPerViewer: 1,
      },
    });
    const plain = await parseCliArgs(base);
    expect(plain).toMatchObject({ config: {} });
    expect((plain as unknown as { config: Record<string, unknown> }).config['allowPrivateCandidates']).toBeUndefined();
    const path = join(dir, 'trust.json');
    await writeFile(path, JSON.stringify({ cacheKeyQuery: 'ignore', allowPrivateCandidates: true, channelOriginBytesPerSec: 0, maxPendingPeersPerViewer: 3 }));
    expect(
      await parseCliArgs([...base, '--config', path], undefined, { RELAYCAST_MAX_PENDING_PEERS_PER_VIEWER: '4', RELAYCAST_ALLOW_PRIVATE_CANDIDATES: 'false' }),
    ).toMatchObject({
      config: { cacheKeyQuery: 'ignore', allowPrivateCandidates: false, channelOriginBytesPerSec: 0, maxPendingPeersPerViewer: 4 },
    });
    const cfg = join(dir, 'trust-bad.json');
    const cases: [string[], string?][] = [
      [[...base, '--cache-key-query', 'strip']],
      [[...base, '--origin-burst-bytes', '0']],
      [[...base, '--channel-origin-burst-bytes', '0']],
      [[...base, '--max-pending-peers', '0']],
      [[...base, '--max-pending-peers-per-viewer', '0']],
      [[...base, '--allow-private-candidates', 'yes']],
      [[...base, '--config', cfg], '{"allowPrivateCandidates": "yes"}'],
    ];
    for (const [args, file] of cases) {
      if (file !== undefined) await writeFile(cfg, file);
      await expect(parseCliArgs(args), args.join(' ')).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    }
    await expect(parseCliArgs(base, undefined, { RELAYCAST_ALLOW_PRIVATE_CANDIDATES: 'maybe' })).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    // A rate of 0 (unlimited) needs no burst.
    expect(await parseCliArgs([...base, '--origin-bytes-per-sec', '0', '--origin-burst-bytes', '0'])).toMatchObject({ config: { originBytesPerSec: 0 } });
  });

  it('parses the payment trust settings (--trusted-tracker, --unbound-credit-bytes) from flags, environment and config file, and refuses bad ones', async () => {
    expect(await parseCliArgs([...base, '--trusted-tracker', PAYER, '--trusted-tracker', PAYER, '--unbound-credit-bytes', '1000'])).toMatchObject({
      config: { trustedTrackers: [PAYER, PAYER], unboundCreditBytes: 1000 },
    });
    expect(await parseCliArgs(base, undefined, { RELAYCAST_TRUSTED_TRACKER: PAYER, RELAYCAST_UNBOUND_CREDIT_BYTES: '2000' })).toMatchObject({
      config: { trustedTrackers: [PAYER], unboundCreditBytes: 2000 },
    });
    for (const bad of [
      ['--trusted-tracker', 'not-a-key'],
      ['--unbound-credit-bytes', '0'],
    ]) {
      await expect(parseCliArgs([...base, ...bad]), bad.join(' ')).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    }
  });

  it('--map-port with --rtc-port turns port mapping on', async () => {
    const cmd = await parseCliArgs([...base, '--rtc-port', '50000', '--map-port']);
    expect(cmd).toMatchObject({ command: 'start', config: { rtcPort: 50000, mapPort: true } });
    expect(await parseCliArgs([...base, '--rtc-port', '50000'])).not.toMatchObject({ config: { mapPort: true } });
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
      [[...base, '--map-port']],
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
      [[...base, '--max-peers', '0']],
      [['redeem', '--rpc-url', 'http://x', '--accept-payer', `${PAYER}=http://s/`]],
      [['redeem', '--keypair', 'k', '--accept-payer', `${PAYER}=http://s/`]],
      [['redeem', '--keypair', 'k', '--rpc-url', 'http://x']],
      [['serve']],
      [['start', '--config', cfg], '{"trackerUrl": "ws://x", "allowOrigins": ["https://a/"]}'],
      [['start', '--config', cfg], '{"capacity": "5"}'],
      [['start', '--config', cfg], '{"trackerUrl": "ws://x", "allowedOrigins": ["https://a/"], "keypair": "k", "acceptPayers": [5]}'],
      [['start', '--config', cfg], 'not json'],
      [['start', '--config', join(dir, 'missing.json')]],
    ];
    for (const [args, file] of cases) {
      if (file !== undefined) await writeFile(cfg, file);
      await expect(parseCliArgs(args), args.join(' ')).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
    }
  });
});

function run(args: string[]): BinProcess {
  return spawnBin(BIN, args);
}

/** `start` with a tracker, an origin nobody answers on, the keypair file and loopback only. */
function startArgs(trackerUrl: string, keypair: string, ...more: string[]): string[] {
  return ['start', '--tracker', trackerUrl, '--allow-origin', 'http://127.0.0.1:1/media/', '--keypair', keypair, '--bind-address', '127.0.0.1', ...more];
}

describe('relaycast-relay bin', () => {
  it('creates a missing keypair (0600), registers, logs JSON and stops with exit 0 on SIGTERM', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relaycast-cli-bin-'));
    const tracker = await startFakeTracker();
    try {
      const keypair = join(dir, 'keys', 'relay.json');
      const p = run(startArgs(tracker.url, keypair, '--region', 'local'));
      await eventually(() => tracker.connections.some((c) => c.signatureValid === true), 'the relay to register', 30_000);
      expect((await stat(keypair)).mode & 0o777).toBe(0o600);
      await eventually(() => p.stdout().includes('relay registered and serving'), 'the startup log', 10_000);
      const lines = p
        .stdout()
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
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

  it('status reads the running relay: text and JSON, Prometheus /metrics on the same port', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relaycast-cli-status-'));
    const tracker = await startFakeTracker();
    const port = 20_000 + Math.floor(Math.random() * 20_000);
    try {
      const p = run(startArgs(tracker.url, join(dir, 'k.json'), '--status-port', String(port)));
      await eventually(() => p.stdout().includes('relay registered and serving'), 'the relay to start', 30_000);
      const relayId = (
        JSON.parse(
          p
            .stdout()
            .trim()
            .split('\n')
            .find((l) => l.includes('relay registered and serving')) as string,
        ) as { relayId: string }
      ).relayId;
      const text = run(['status', '--status-port', String(port)]);
      expect(await text.exited).toBe(0);
      expect(text.stdout()).toContain(`relay     ${relayId} (registered with the tracker)`);
      expect(text.stdout()).toContain('cache     0 segments');
      const json = run(['status', '--status-port', String(port), '--json']);
      expect(await json.exited).toBe(0);
      expect(JSON.parse(json.stdout())).toMatchObject({ status: { relayId, registered: true, viewers: 0 }, balances: [] });
      const metrics = await (await fetch(`http://127.0.0.1:${port}${RELAY_STATUS_PATHS.metrics}`)).text();
      expect(metrics).toMatch(/^relaycast_relay_registered 1$/m);
      expect(metrics).toMatch(/^relaycast_relay_bytes_served_total 0$/m);
      p.kill('SIGTERM');
      expect(await p.exited).toBe(0);
      const gone = run(['status', '--status-port', String(port)]);
      expect(await gone.exited).toBe(2);
      expect(gone.stderr()).toContain('RC_ERR_CONFIG_INVALID');
    } finally {
      await tracker.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 with RC_ERR_CONFIG_INVALID naming the flag on an invalid configuration', { timeout: 30_000 }, async () => {
    const p = run(['start', '--tracker', 'ws://127.0.0.1:1', '--keypair', '/tmp/none.json']);
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('relaycast-relay: RC_ERR_CONFIG_INVALID: --allow-origin is required');
    const bad = run(['start', '--tracker', 'ws://127.0.0.1:1', '--allow-origin', 'https://a/', '--keypair', '/tmp/none.json', '--capacity', 'ten']);
    expect(await bad.exited).toBe(2);
    expect(bad.stderr()).toContain('relaycast-relay: RC_ERR_CONFIG_INVALID: --capacity must be an integer');
    const unknown = run(['start', '--test-fault', 'flip']);
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toContain("RC_ERR_CONFIG_INVALID: Unknown option '--test-fault'");
  });

  it('a second signal while it waits for an in-flight segment stops it at once with exit 130', { timeout: 60_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'relaycast-cli-twice-'));
    const world = await startHeldSegmentWorld();
    try {
      const p = run(['start', ...world.relayArgs, '--keypair', join(dir, 'k.json'), '--bind-address', '127.0.0.1']);
      await world.registered();
      // A viewer's request is in flight, held by the origin: the graceful close waits for it.
      await world.holdRequest();
      p.kill('SIGINT');
      await world.unregistered();
      const second = Date.now();
      p.kill('SIGTERM');
      expect(await p.ended).toEqual({ code: 130, signal: null });
      expect(Date.now() - second).toBeLessThan(2_000);
      expect(isRunning(p.pid as number)).toBe(false);
    } finally {
      await world.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
