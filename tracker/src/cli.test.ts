import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/relaycast-tracker.js', import.meta.url));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[], onStdout?: (text: string, kill: (sig: NodeJS.Signals) => void) => void): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
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
      void fetch(`http://127.0.0.1:${port}/healthz`)
        .then(async (res) => {
          healthy = res.status === 200 && ((await res.json()) as { ok: boolean }).ok;
        })
        .finally(() => kill('SIGTERM'));
    });
    expect(result.code).toBe(0);
    expect(port).toBeGreaterThan(0);
    expect(healthy).toBe(true);
  });

  it('exits 1 with a one-line message when the port is busy', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const result = await run(['--port', String(port), '--log-level', 'silent']);
      expect(result.code).toBe(1);
      expect(result.stderr).toContain('already in use');
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
    } finally {
      blocker.close();
    }
  });

  it('exits 2 on a bad flag and prints usage on --help', async () => {
    const bad = await run(['--port', 'many']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port');
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--heartbeat-timeout-ms');
  });
});
