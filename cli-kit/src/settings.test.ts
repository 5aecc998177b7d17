import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { LOG_SETTINGS } from './logging.js';
import { configInvalid } from './config-error.js';
import { defineSettings } from './settings.js';
import { bool, durationMs, enumOf, int, listOf, text, u64, url } from './values.js';

const TABLE = defineSettings(
  {
    trackerUrl: { type: url({ protocols: ['ws:', 'wss:'] }), flag: 'tracker', required: true, help: 'tracker WebSocket URL' },
    allowedOrigins: { type: listOf(url({ protocols: ['http:', 'https:'] }), { min: 1 }), flag: 'allow-origin', required: true, help: 'origin URL prefix' },
    capacity: { type: int({ max: 1_000_000 }), flag: 'capacity', default: 100, group: 'Limits', help: 'viewers advertised' },
    cacheMaxBytes: { type: int({ min: 1 }), flag: 'cache-max-bytes', default: 256 * 1024 * 1024, unit: 'bytes', group: 'Limits', help: 'segment cache size' },
    burst: { type: int(), flag: 'burst', group: 'Limits', help: 'burst' },
    rate: { type: int(), flag: 'rate', group: 'Limits', help: 'rate; 0 = unlimited' },
    price: { type: u64(), flag: 'price', default: 0n, help: 'price per GiB' },
    intervalMs: { type: durationMs({ min: 100 }), flag: 'interval-ms', default: 60_000, help: 'how often' },
    mode: { type: enumOf(['ignore', 'keep'] as const), flag: 'mode', default: 'ignore', help: 'cache key mode' },
    mapPort: { type: bool(), flag: 'map-port', file: false, help: 'map the port' },
    token: { type: text({ secret: true }), flag: 'status-token', env: 'RELAYCAST_STATUS_TOKEN', help: 'bearer token' },
    keypair: { type: text({ metavar: 'FILE' }), flag: 'keypair', env: false, help: 'keypair file' },
    ...LOG_SETTINGS,
  },
  {
    envPrefix: 'RELAYCAST_',
    configFile: { flag: 'config' },
    groups: ['', 'Limits', 'Logs'],
    checks: [
      (v, name) => {
        if (v.burst === 0 && v.rate !== 0) throw configInvalid(`${name('burst')} must be positive (or ${name('rate')} 0)`);
      },
    ],
  },
);

const BASE = ['--tracker', 'ws://t:1', '--allow-origin', 'https://o/'];

async function refused(p: Promise<unknown>): Promise<string> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as { code?: string; message: string } | undefined;
  expect(err?.code).toBe(ErrorCode.CONFIG_INVALID);
  return (err as { message: string }).message;
}

describe('a settings table', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'cli-kit-settings-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('generates the parseArgs options, with --config and --help', () => {
    const o = TABLE.parseArgsOptions();
    expect(o['tracker']).toEqual({ type: 'string' });
    expect(o['allow-origin']).toEqual({ type: 'string', multiple: true });
    expect(o['map-port']).toEqual({ type: 'boolean' });
    expect(o['config']).toEqual({ type: 'string' });
    expect(o['help']).toEqual({ type: 'boolean', short: 'h' });
  });

  it('reads flags, typed, and fills the defaults; `given` holds only what was set', async () => {
    const cl = await TABLE.parseCommandLine([...BASE, '--allow-origin', 'https://p/', '--capacity', '5', '--price', '18446744073709551615', '--map-port'], {
      env: {},
    });
    if (cl.help) throw new Error('not help');
    expect(cl.given).toEqual({ trackerUrl: 'ws://t:1', allowedOrigins: ['https://o/', 'https://p/'], capacity: 5, price: 2n ** 64n - 1n, mapPort: true });
    expect(cl.values).toMatchObject({ capacity: 5, cacheMaxBytes: 268_435_456, intervalMs: 60_000, mode: 'ignore', logLevel: 'info' });
    expect(cl.values.logFormat).toBeUndefined();
    expectTypeOf(cl.values.capacity).toEqualTypeOf<number>();
    expectTypeOf(cl.values.price).toEqualTypeOf<bigint>();
    expectTypeOf(cl.values.mode).toEqualTypeOf<'ignore' | 'keep'>();
    expectTypeOf(cl.values.trackerUrl).toEqualTypeOf<string>();
    expectTypeOf(cl.values.burst).toEqualTypeOf<number | undefined>();
    expect(await TABLE.parseCommandLine(['--help'], { env: {} })).toEqual({ help: true });
    expect(await TABLE.parseCommandLine(['-h'], { env: {} })).toEqual({ help: true });
  });

  it('takes flags over the environment over the config file over defaults', async () => {
    const path = join(dir, 'c.json');
    await writeFile(path, JSON.stringify({ trackerUrl: 'ws://file:1', allowedOrigins: ['https://file/'], capacity: 1, cacheMaxBytes: 10, price: '7' }));
    const env = {
      RELAYCAST_CONFIG: path,
      RELAYCAST_CAPACITY: '2',
      RELAYCAST_CACHE_MAX_BYTES: '20',
      RELAYCAST_ALLOW_ORIGIN: 'https://e1/, https://e2/',
      RELAYCAST_MODE: '',
    };
    const cl = await TABLE.parseCommandLine(['--capacity', '3'], { env });
    expect(cl).toMatchObject({
      help: false,
      values: { trackerUrl: 'ws://file:1', allowedOrigins: ['https://e1/', 'https://e2/'], capacity: 3, cacheMaxBytes: 20, price: 7n, mode: 'ignore' },
    });
    // --config wins over RELAYCAST_CONFIG.
    const other = join(dir, 'other.json');
    await writeFile(other, JSON.stringify({ trackerUrl: 'ws://other:1', allowedOrigins: ['https://x/'] }));
    expect(await TABLE.parseCommandLine(['--config', other], { env: { RELAYCAST_CONFIG: path } })).toMatchObject({ values: { trackerUrl: 'ws://other:1' } });
    // Explicit and absent environment names.
    expect(TABLE.envOf('token')).toBe('RELAYCAST_STATUS_TOKEN');
    expect(TABLE.envOf('keypair')).toBeUndefined();
    const noKey = await TABLE.parseCommandLine(BASE, { env: { RELAYCAST_KEYPAIR: '/k' } });
    expect(noKey.help === false && noKey.given.keypair).toBeUndefined();
  });

  it('refuses bad flags, variables and file keys with RC_ERR_CONFIG_INVALID naming the setting', async () => {
    expect(await refused(TABLE.parseCommandLine([...BASE, '--capacity', 'ten'], { env: {} }))).toBe('--capacity must be an integer in 0..1000000 (got "ten")');
    expect(await refused(TABLE.parseCommandLine([...BASE, '--unknown-flag', 'x'], { env: {} }))).toContain("'--unknown-flag'");
    expect(await refused(TABLE.parseCommandLine(BASE, { env: { RELAYCAST_CAPACITY: '-1' } }))).toMatch(/^RELAYCAST_CAPACITY must be/);
    expect(await refused(TABLE.parseCommandLine(['--allow-origin', 'https://o/'], { env: {} }))).toBe('--tracker is required (tracker WebSocket URL)');
    expect(await refused(TABLE.parseCommandLine([...BASE, '--burst', '0'], { env: {} }))).toBe('--burst must be positive (or --rate 0)');
    expect(await TABLE.parseCommandLine([...BASE, '--burst', '0', '--rate', '0'], { env: {} })).toMatchObject({ values: { burst: 0 } });
    const cfg = join(dir, 'bad.json');
    const file = async (content: string): Promise<string> => {
      await writeFile(cfg, content);
      return refused(TABLE.parseCommandLine(['--config', cfg], { env: {} }));
    };
    expect(await file('{"tracker": "ws://x"}')).toBe(`${cfg}: unknown key "tracker" (did you mean "trackerUrl", the key of --tracker?)`);
    expect(await file('{"allowOrigin": []}')).toContain('did you mean "allowedOrigins"');
    expect(await file('{"Capacity": 5}')).toContain('did you mean "capacity"');
    expect(await file('{"mapPort": true}')).toBe(`${cfg}: "mapPort" is not read from a config file (give --map-port)`);
    expect(await file('{"capacity": "many"}')).toBe(`${cfg}: capacity must be an integer in 0..1000000 (got "many")`);
    expect(await file('[1]')).toBe(`${cfg} must hold a JSON object`);
    expect(await file('not json')).toMatch(/is not valid JSON/);
    expect(await refused(TABLE.parseCommandLine(['--config', join(dir, 'missing.json')], { env: {} }))).toMatch(/^cannot read config file/);
  });

  it('checks a start*() options object by its keys, ignoring what is not a setting', () => {
    const logger = { info: () => undefined };
    expect(TABLE.check({ trackerUrl: 'ws://t:1', allowedOrigins: ['https://o/'], capacity: 9, logger })).toEqual({
      trackerUrl: 'ws://t:1',
      allowedOrigins: ['https://o/'],
      capacity: 9,
    });
    expect(() => TABLE.check({ trackerUrl: 'ws://t:1', allowedOrigins: [] })).toThrow('allowedOrigins is required (at least one)');
    expect(() => TABLE.check({ trackerUrl: 'ws://t:1', allowedOrigins: ['https://o/'], capacity: -1 })).toThrow(/^capacity must be an integer/);
    expect(() => TABLE.check({ trackerUrl: 'ws://t:1', allowedOrigins: ['https://o/'], burst: 0 })).toThrow('burst must be positive (or rate 0)');
    expect(TABLE.resolve({ trackerUrl: 'ws://t:1', allowedOrigins: ['https://o/'] })).toMatchObject({ capacity: 100, price: 0n });
  });

  it('refuses a table whose default its own type refuses, or a flag declared twice', () => {
    expect(() => defineSettings({ n: { type: int({ max: 5 }), flag: 'n', default: 6, help: 'n' } }, { envPrefix: 'X_' })).toThrow(/default of n/);
    expect(() => defineSettings({ a: { type: int(), flag: 'n', help: 'a' }, b: { type: int(), flag: 'n', help: 'b' } }, { envPrefix: 'X_' })).toThrow(
      /--n declared twice/,
    );
  });

  it('extends and picks tables', async () => {
    const more = TABLE.extend({ json: { type: bool(), flag: 'json', env: false, file: false, help: 'print JSON' } });
    expect(more.parseArgsOptions()['json']).toEqual({ type: 'boolean' });
    await expect(more.parseCommandLine([...BASE, '--burst', '0'], { env: {} })).rejects.toMatchObject({ message: '--burst must be positive (or --rate 0)' });
    const picked = TABLE.pick(['capacity', 'keypair']);
    expect(Object.keys(picked.parseArgsOptions())).toEqual(['capacity', 'keypair', 'config', 'help']);
  });

  it('renders USAGE from the table: grouped, with bounds, defaults, units and where else settings come from', () => {
    const usage = TABLE.usage();
    expect(usage).toContain('  --tracker URL                   tracker WebSocket URL (required; config key trackerUrl)\n');
    expect(usage).toContain(
      '--allow-origin URL              origin URL prefix (required; repeatable; config key\n                                  allowedOrigins)',
    );
    expect(usage).toContain('--cache-max-bytes N             segment cache size (default 268435456 bytes = 256 MiB)');
    expect(usage).toContain('--capacity N                    viewers advertised (0..1000000; default 100)');
    expect(usage).toContain('--interval-ms MS                how often (default 60000 ms = 1 min)');
    expect(usage).toContain('--mode ignore|keep              cache key mode (default ignore)');
    expect(usage).toContain('--map-port                      map the port (not in the config file)');
    expect(usage).toContain('--keypair FILE                  keypair file (no environment variable)');
    expect(usage).toContain('--log-level fatal|error|warn|info|debug|trace|silent\n');
    expect(usage.indexOf('Limits:')).toBeLessThan(usage.indexOf('Logs:'));
    expect(usage.indexOf('--tracker')).toBeLessThan(usage.indexOf('Limits:'));
    expect(usage).toContain('  --config FILE');
    expect(usage).toContain('RELAYCAST_ALLOW_ORIGIN for --allow-origin');
    for (const line of usage.split('\n')) expect(line.length, line).toBeLessThanOrEqual(100);
  });

  it("takes USAGE's environment example from a setting that has a variable", () => {
    const keyFirst = defineSettings(
      {
        keypair: { type: text(), flag: 'key-file', env: false, help: 'keypair file' },
        port: { type: int(), flag: 'port', help: 'port' },
      },
      { envPrefix: 'X_' },
    );
    const oneLine = (t: { usage(): string }): string => t.usage().replace(/\s+/g, ' ');
    expect(oneLine(keyFirst)).toContain('(X_PORT for --port; lists comma-separated)');
    expect(oneLine(keyFirst)).not.toContain('( for');
    const noEnv = defineSettings({ keypair: { type: text(), flag: 'key-file', env: false, help: 'keypair file' } }, { envPrefix: 'X_' });
    expect(oneLine(noEnv)).not.toContain('environment variable,');
    expect(noEnv.usage()).toMatch(/show this text\n$/);
    const noEnvWithFile = defineSettings(
      { keypair: { type: text(), flag: 'key-file', env: false, help: 'keypair file' } },
      { envPrefix: 'X_', configFile: { flag: 'config' } },
    );
    expect(oneLine(noEnvWithFile)).toContain('Settings may also be given in the JSON file named by --config or X_CONFIG');
  });
});

describe('a picked table', () => {
  it('overrides fields, reads the whole config file and returns its own settings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'cli-kit-pick-'));
    try {
      const status = TABLE.pick(['capacity', 'price'], { capacity: { required: true } });
      const path = join(dir, 'c.json');
      await writeFile(path, JSON.stringify({ trackerUrl: 'ws://t:1', capacity: 4 }));
      const cl = await status.parseCommandLine(['--config', path], { env: {} });
      expect(cl).toMatchObject({ help: false, given: { capacity: 4 }, values: { capacity: 4, price: 0n } });
      if (cl.help) throw new Error('not help');
      expectTypeOf(cl.values.capacity).toEqualTypeOf<number>();
      expect(Object.keys(cl.given)).toEqual(['capacity']);
      await expect(status.parseCommandLine([], { env: {} })).rejects.toMatchObject({ message: '--capacity is required (viewers advertised)' });
      await writeFile(path, JSON.stringify({ trackerUrl: 'http://x', capacity: 4 }));
      await expect(status.parseCommandLine(['--config', path], { env: {} })).rejects.toMatchObject({
        message: expect.stringMatching(/trackerUrl must be a ws/) as unknown,
      });
      await writeFile(path, JSON.stringify({ typo: 1 }));
      await expect(status.parseCommandLine(['--config', path], { env: {} })).rejects.toMatchObject({ message: `${path}: unknown key "typo"` });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
