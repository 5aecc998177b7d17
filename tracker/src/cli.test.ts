import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { TRACKER_HTTP_PATHS } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/relaycast-tracker.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  args: string[],
  onStdout?: ((text: string, kill: (sig: NodeJS.Signals) => void) => void) | Record<string, string>,
  env: Record<string, string> = {},
): Promise<Run> {
  if (typeof onStdout === 'object') return run(args, undefined, onStdout);
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  child.stdout.on('data', (d: Buffer) => {
    stdout += String(d);
    onStdout?.(stdout, (sig) => child.kill(sig));
  });
  child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
  return once(child, 'exit').then(([code]) => {
    clearTimeout(timer);
    return { code: code as number | null, stdout, stderr };
  });
}

describe('relaycast-tracker CLI', () => {
  it('logs one JSON line with the port when listening, serves /healthz, exits 0 on SIGTERM', async () => {
    let port: number | undefined;
    let healthy = false;
    const result = await run(['--port', '0', '--heartbeat-interval-ms', '1000'], (text, kill) => {
      if (port !== undefined) return;
      const line = text.split('\n').find((l) => l.includes('listening'));
      if (line === undefined) return;
      port = (JSON.parse(line) as { port: number }).port;
      void fetch(`http://127.0.0.1:${port}${TRACKER_HTTP_PATHS.health}`)
        .then(async (res) => {
          healthy = res.status === 200 && ((await res.json()) as { ok: boolean }).ok;
        })
        .finally(() => kill('SIGTERM'));
    });
    expect(result.code).toBe(0);
    expect(port).toBeGreaterThan(0);
    expect(healthy).toBe(true);
  });

  it('exits 2 with RC_ERR_CONFIG_INVALID naming the port when it is busy', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await run(['--port', String(port), '--log-level', 'silent']);
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('RC_ERR_CONFIG_INVALID');
      expect(result.stderr).toContain('already in use');
    } finally {
      blocker.close();
    }
  });

  it('exits 2 on a bad flag or environment variable and prints usage on --help', async () => {
    const bad = await run(['--port', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('RC_ERR_CONFIG_INVALID: --port');
    const badEnv = await run([], { RELAYCAST_TRACKER_MIN_HEALTH: '2' });
    expect(badEnv.code).toBe(2);
    expect(badEnv.stderr).toContain('RC_ERR_CONFIG_INVALID: RELAYCAST_TRACKER_MIN_HEALTH');
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--heartbeat-timeout-ms');
    expect(help.stdout).toContain('--max-connections');
  });
});

describe('relaycast-tracker CLI: trust flags', () => {
  /** Starts the bin with `args`, reads /status once it listens, then stops it. */
  async function statusOf(args: string[], headers: Record<string, string> = {}): Promise<{ run: Run; status: Record<string, unknown> | undefined }> {
    let status: Record<string, unknown> | undefined;
    let asked = false;
    const result = await run(['--port', '0', ...args], (text, kill) => {
      if (asked) return;
      const line = text.split('\n').find((l) => l.includes('listening'));
      if (line === undefined) return;
      asked = true;
      const port = (JSON.parse(line) as { port: number }).port;
      void fetch(`http://127.0.0.1:${port}${TRACKER_HTTP_PATHS.status}`, { headers })
        .then(async (res) => {
          status = (await res.json()) as Record<string, unknown>;
        })
        .finally(() => kill('SIGTERM'));
    });
    return { run: result, status };
  }

  it('--key creates a 0600 Solana keypair file and keeps the same tracker key across runs; without it the key is ephemeral', { timeout: 60_000 }, async () => {
    const { mkdtemp, stat, readFile, chmod, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'rc-tracker-key-'));
    try {
      const path = join(dir, 'keys', 'tracker.json');
      const first = await statusOf(['--key', path]);
      expect(first.run.code).toBe(0);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(JSON.parse(await readFile(path, 'utf8'))).toHaveLength(64);
      const second = await statusOf(['--key', path]);
      expect(second.status?.['trackerKey']).toBe(first.status?.['trackerKey']);
      const ephemeral = await statusOf([]);
      expect(ephemeral.status?.['trackerKey']).not.toBe(first.status?.['trackerKey']);
      await chmod(path, 0o644);
      const open = await run(['--port', '0', '--key', path, '--log-level', 'silent']);
      expect(open.code).toBe(2);
      expect(open.stderr).toContain('RC_ERR_KEY_PERMISSIONS');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 naming the flag on bad trust flags and a bad payer key', { timeout: 60_000 }, async () => {
    // Few runs, one at a time: each is a tsx start-up (the options' own bounds are tested in trust.test.ts).
    for (const [args, flag] of [
      [['--relay-admission', 'closed'], '--relay-admission'],
      [['--relay-admission', 'allowlist'], '--relay-admission allowlist needs --relay-allowlist'],
      [['--trusted-payer', 'not-a-key'], '--trusted-payer'],
    ] as const) {
      const r = await run(['--port', '0', '--log-level', 'silent', ...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toContain(`RC_ERR_CONFIG_INVALID: ${flag}`);
    }
  });
});
