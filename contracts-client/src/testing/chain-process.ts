import { spawn, type ChildProcess } from 'node:child_process';
import { resolveBin } from '@relaycast/cli-kit/testing';

/** Helpers shared by contracts-client's tests (not exported from the package). */

export const CHAIN_BIN = resolveBin('@relaycast/contracts-client', 'relaycast-chain');
export const SOLANA_BIN = resolveBin('@relaycast/contracts-client', 'relaycast-solana');

export interface ChainProcess {
  child: ChildProcess;
  rpcUrl: string;
  /** Every line the process printed so far (stdout and stderr). */
  output: string[];
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Starts the `relaycast-chain` bin and waits for its "chain listening" line. */
export function startChainProcess(args: string[], timeoutMs = 15_000): Promise<ChainProcess> {
  const child = spawn(process.execPath, [CHAIN_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  process.once('exit', () => child.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`chain did not start:\n${output.join('\n')}`));
    }, timeoutMs);
    const onData = (d: Buffer): void => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        output.push(line);
        let parsed: { msg?: string; rpcUrl?: string } | undefined;
        try {
          parsed = JSON.parse(line) as { msg?: string; rpcUrl?: string };
        } catch {
          continue;
        }
        if (parsed.msg === 'chain listening' && parsed.rpcUrl !== undefined) {
          clearTimeout(timer);
          const rpcUrl = parsed.rpcUrl;
          resolve({
            child,
            rpcUrl,
            output,
            stop: async () => {
              if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
              return exited;
            },
          });
        }
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d: Buffer) => output.push(d.toString()));
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`chain exited with ${code}:\n${output.join('\n')}`));
    });
  });
}

/** Runs the `relaycast-solana` bin with --json and returns its parsed output; rejects on a non-zero exit. */
export function runSolanaCli(args: string[], timeoutMs = 60_000): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SOLANA_BIN, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => {
      if (code !== 0) {
        reject(new Error(`relaycast-solana ${args.join(' ')} exited ${code}: ${stderr}`));
        return;
      }
      try {
        resolve(JSON.parse(stdout) as Record<string, unknown>);
      } catch {
        reject(new Error(`relaycast-solana ${args.join(' ')} printed no JSON: ${stdout} ${stderr}`));
      }
    });
  });
}
