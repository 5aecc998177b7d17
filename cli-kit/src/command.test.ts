import { PassThrough } from 'node:stream';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { defineCommand, type CommandContext } from './command.js';
import { LOG_SETTINGS } from './logging.js';
import { EXIT, type CliContext } from './run-cli.js';
import { defineSettings } from './settings.js';
import { bool, int, text } from './values.js';

const SETTINGS = defineSettings(
  {
    port: { type: int({ max: 65_535 }), flag: 'port', default: 8000, help: 'a port' },
    name: { type: text(), flag: 'name', help: 'a name' },
    ...LOG_SETTINGS,
  },
  { envPrefix: 'T_' },
);
const USAGE = { synopsis: ['[options]', 'other FORM'], about: 'Does a thing.', notes: 'Ctrl-C stops it.' };

function context(argv: string[], signal = new AbortController().signal): CliContext & { out: () => string } {
  const stdout = new PassThrough();
  let out = '';
  stdout.on('data', (d) => (out += String(d)));
  return { bin: 'test-bin', argv, env: {}, signal, stdout, stderr: new PassThrough(), out: () => out };
}

describe('defineCommand', () => {
  it('on --help writes the Usage lines, the text about the command, the options from the table and the notes', async () => {
    let ran = false;
    const command = defineCommand({ settings: SETTINGS, usage: USAGE, run: async () => void (ran = true) });
    const ctx = context(['--help']);
    expect(await command(ctx)).toBe(EXIT.OK);
    expect(ran).toBe(false);
    expect(ctx.out()).toBe(`Usage: test-bin [options]\n       test-bin other FORM\n\nDoes a thing.\n\n${SETTINGS.usage()}\nCtrl-C stops it.\n`);
    expect(command.usage('test-bin')).toBe(ctx.out());
  });

  it('hands run the settings without the log ones, what was given, a logger at --log-level, and the context', async () => {
    let seen: CommandContext<typeof SETTINGS.spec> | undefined;
    const command = defineCommand({
      settings: SETTINGS,
      usage: USAGE,
      run: async (c) => {
        seen = c;
        return 3;
      },
    });
    const ctx = context(['--name', 'x', '--log-level', 'warn']);
    expect(await command(ctx)).toBe(3);
    expect(seen?.values).toEqual({ port: 8000, name: 'x' });
    expect(seen?.given).toEqual({ name: 'x' });
    expect(seen?.logger.level).toBe('warn');
    expect(seen?.signal).toBe(ctx.signal);
    expect(seen?.usage()).toBe(command.usage('test-bin'));
    expectTypeOf<NonNullable<typeof seen>['values']['port']>().toEqualTypeOf<number>();
    expectTypeOf<NonNullable<typeof seen>['values']>().not.toHaveProperty('logLevel');
  });

  it('gives a silent logger when the table has no log settings, and reads positionals and extra flags when asked', async () => {
    const plain = defineSettings({ all: { type: bool(), flag: 'all', help: 'all' } }, { envPrefix: 'T_' });
    let seen: CommandContext<typeof plain.spec> | undefined;
    const command = defineCommand({
      settings: plain,
      usage: { synopsis: '<what>', about: 'x' },
      allowPositionals: true,
      extraFlags: { json: { type: 'boolean' } },
      run: async (c) => void (seen = c),
    });
    await command(context(['a', '--json', 'b', '--all']));
    expect(seen).toMatchObject({ values: { all: true }, positionals: ['a', 'b'], extra: { json: true } });
    expect(seen?.logger.level).toBe('silent');
    expect(await command.parse(['a', '--all'], { env: { T_ALL: 'false' } })).toMatchObject({ help: false, given: { all: true }, positionals: ['a'] });
    await expect(defineCommand({ settings: plain, usage: { synopsis: '', about: '' }, run: async () => undefined })(context(['a']))).rejects.toMatchObject({
      code: ErrorCode.CONFIG_INVALID,
    });
  });

  it('a one-shot command cut short by the first signal exits 130; a server rethrows (runCli exits 0), and other errors go through', async () => {
    const aborted = AbortSignal.abort(new RelaycastError(ErrorCode.ABORTED, 'stopped by SIGINT'));
    const cutShort = async ({ signal }: { signal: AbortSignal }): Promise<void> => {
      throw signal.reason as Error;
    };
    const oneShot = defineCommand({ settings: SETTINGS, usage: USAGE, oneShot: true, run: cutShort });
    expect(await oneShot(context([], aborted))).toBe(EXIT.INTERRUPTED);
    const server = defineCommand({ settings: SETTINGS, usage: USAGE, run: cutShort });
    await expect(server(context([], aborted))).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    // Not stopped by a signal: a failure like any other.
    const failing = defineCommand({
      settings: SETTINGS,
      usage: USAGE,
      oneShot: true,
      run: () => Promise.reject(new RelaycastError(ErrorCode.ABORTED, 'timed out')),
    });
    await expect(failing(context([]))).rejects.toMatchObject({ message: 'timed out' });
    await expect(oneShot(context(['--port', 'x'], aborted))).rejects.toMatchObject({ code: ErrorCode.CONFIG_INVALID });
  });
});
