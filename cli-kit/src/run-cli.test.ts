import { EventEmitter } from 'node:events';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { configInvalid } from './config-error.js';
import { EXIT, runCli, waitForAbort, type CliMain, type CliProcess } from './run-cli.js';
import { spawnBin } from './testing/spawn-bin.js';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'run-cli-fixture.ts');
const TSX = ['--import', 'tsx'];

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

/** A fake process: exit throws, so the runner stops where a real process would end. */
function fakeProcess(argv: string[] = []): CliProcess & { emitter: EventEmitter; err: () => string; exits: number[] } {
  const emitter = new EventEmitter();
  const stderr = new PassThrough();
  let err = '';
  stderr.on('data', (d) => (err += String(d)));
  const exits: number[] = [];
  return {
    emitter,
    exits,
    err: () => err,
    argv: ['node', 'bin', ...argv],
    env: {},
    stdout: new PassThrough(),
    stderr,
    on: (event, listener) => emitter.on(event, listener),
    exit: (code: number): never => {
      exits.push(code);
      throw new Exit(code);
    },
  };
}

async function run(main: CliMain, proc = fakeProcess(), configCodes?: ErrorCode[]): Promise<number> {
  try {
    await runCli('test-bin', main, { process: proc, configCodes });
  } catch (err) {
    if (err instanceof Exit) return err.code;
    throw err;
  }
  throw new Error('runCli returned without exiting');
}

describe('runCli', () => {
  it("exits with main's status, 0 by default, handing it the arguments after the script", async () => {
    let seen: string[] = [];
    expect(
      await run(
        async ({ argv }) => {
          seen = argv;
        },
        fakeProcess(['--a', 'b']),
      ),
    ).toBe(0);
    expect(seen).toEqual(['--a', 'b']);
    expect(await run(async () => 3)).toBe(3);
  });

  it('prints RC_ERR_CONFIG_INVALID with the bin name and exits 2; other errors exit 1', async () => {
    const p = fakeProcess();
    expect(await run(() => Promise.reject(configInvalid('--port must be an integer in 1..65535 (got "x")')), p)).toBe(EXIT.CONFIG);
    expect(p.err()).toBe('test-bin: RC_ERR_CONFIG_INVALID: --port must be an integer in 1..65535 (got "x")\nRun "test-bin --help" for usage.\n');
    const q = fakeProcess();
    expect(await run(() => Promise.reject(new RelaycastError(ErrorCode.ORIGIN_UNREACHABLE, 'no route')), q)).toBe(EXIT.FAILURE);
    expect(q.err()).toBe('test-bin: RC_ERR_ORIGIN_UNREACHABLE: no route\n');
    const r = fakeProcess();
    expect(await run(() => Promise.reject(new TypeError('x is undefined')), r)).toBe(EXIT.FAILURE);
    expect(r.err()).toMatch(/^test-bin: TypeError: x is undefined\n\s+at /);
    expect(await run(() => Promise.reject(new RelaycastError(ErrorCode.KEY_PERMISSIONS, 'mode 0644')), fakeProcess(), [ErrorCode.KEY_PERMISSIONS])).toBe(
      EXIT.CONFIG,
    );
  });

  it('turns the first SIGINT/SIGTERM into an abort of ctx.signal; an abort error after it exits 0', async () => {
    const p = fakeProcess();
    const code = run(async ({ signal }) => {
      setImmediate(() => p.emitter.emit('SIGTERM', 'SIGTERM'));
      await new Promise((_resolve, reject) => signal.addEventListener('abort', () => reject(signal.reason as Error)));
    }, p);
    expect(await code).toBe(0);
    // The same abort error without a signal is a failure.
    expect(await run(() => Promise.reject(new RelaycastError(ErrorCode.ABORTED, 'operation aborted')))).toBe(EXIT.FAILURE);
  });

  it('exits 130 on a second signal, without waiting for main', async () => {
    const p = fakeProcess();
    let reason: unknown;
    void run(async ({ signal }) => {
      await waitForAbort(signal);
      reason = signal.reason;
      await new Promise(() => undefined);
    }, p);
    p.emitter.emit('SIGINT', 'SIGINT');
    await new Promise((r) => setImmediate(r));
    expect(reason).toMatchObject({ code: ErrorCode.ABORTED });
    expect(p.exits).toEqual([]);
    expect(() => p.emitter.emit('SIGINT', 'SIGINT')).toThrow(Exit);
    expect(p.exits).toEqual([EXIT.INTERRUPTED]);
  });
});

describe('a real bin on the kit', () => {
  it('a bad flag exits 2 with RC_ERR_CONFIG_INVALID naming the flag', { timeout: 20_000 }, async () => {
    const p = spawnBin(FIXTURE, ['--port', '0'], { nodeArgs: TSX });
    expect(await p.exited).toBe(2);
    expect(p.stderr()).toContain('fixture-bin: RC_ERR_CONFIG_INVALID: --port must be an integer in 1..65535');
    const unknown = spawnBin(FIXTURE, ['--nope'], { nodeArgs: TSX });
    expect(await unknown.exited).toBe(2);
    expect(unknown.stderr()).toContain("RC_ERR_CONFIG_INVALID: Unknown option '--nope'");
    const failed = spawnBin(FIXTURE, ['--fail'], { nodeArgs: TSX });
    expect(await failed.exited).toBe(1);
  });

  it('stops gracefully with exit 0 on SIGTERM, logging JSON when stdout is a pipe', { timeout: 20_000 }, async () => {
    const p = spawnBin(FIXTURE, [], { nodeArgs: TSX });
    await p.waitForOutput('"msg":"ready"');
    p.kill('SIGTERM');
    expect(await p.exited).toBe(0);
    expect(p.stdout()).toContain('"msg":"stopped"');
  });

  it('exits 130 on a second Ctrl-C when the first does not stop it', { timeout: 20_000 }, async () => {
    const p = spawnBin(FIXTURE, ['--hang', '--log-format', 'pretty'], { nodeArgs: TSX });
    await p.waitForOutput('[fixture] ready');
    p.kill('SIGINT');
    await p.waitForOutput('[fixture] stopping');
    p.kill('SIGINT');
    // Exited 130 itself: not killed by the signal, which a shell would also show as 130.
    expect(await p.ended).toEqual({ code: 130, signal: null });
  });
});
