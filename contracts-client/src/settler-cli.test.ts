import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Keypair } from '@solana/web3.js';
import { SettlementLedger } from './settlement/settlement-ledger.js';
import { startPaymentWorld, type PaymentWorld } from './settlement/settlement-test-support.js';

const SETTLER_BIN = fileURLToPath(new URL('../bin/relaycast-settler.js', import.meta.url));

/** Starts the bin, resolves with its url once it logs "settler listening", and a stop() that sends SIGTERM. */
function startBin(args: string[]): Promise<{ url: string; lines: Record<string, unknown>[]; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [SETTLER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines: Record<string, unknown>[] = [];
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`settler did not start: ${stderr}`));
    }, 20_000);
    child.stdout.on('data', (d: Buffer) => {
      for (const text of d.toString().split('\n').filter(Boolean)) {
        const line = JSON.parse(text) as Record<string, unknown>;
        lines.push(line);
        if (line['msg'] === 'settler listening') {
          clearTimeout(timer);
          resolve({
            url: line['url'] as string,
            lines,
            stop: () => {
              child.kill('SIGTERM');
              return exited;
            },
          });
        }
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`settler exited ${code}: ${stderr}`));
    });
  });
}

describe('relaycast-settler bin', () => {
  let w: PaymentWorld;
  beforeAll(async () => {
    w = await startPaymentWorld();
  }, 60_000);
  afterAll(async () => {
    await w?.close();
  });

  const args = (): string[] => [
    '--port', '0', '--rpc-url', w.chain.rpcUrl, '--treasury-keypair', w.treasuryKeypairPath, '--mint', w.mint.mint.toBase58(),
    '--db', w.dbPath, '--price-per-gib', '2048', '--default-budget', '777', '--grant-ttl-ms', '60000', '--allow-origin', 'https://platform.example.test',
  ];

  it('serves the API from its flags, never logs the treasury key, and exits 0 on SIGTERM', async () => {
    const bin = await startBin(args());
    const info = (await (await fetch(`${bin.url}/v1/info`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({ mint: w.mint.mint.toBase58(), treasuryTokenAccount: w.treasuryTokenAccount.toBase58(), pricePerGiB: '2048', defaultBudget: '777', grantTtlMs: 60_000 });
    expect(await bin.stop()).toBe(0);
    const secret = (await readFile(w.treasuryKeypairPath, 'utf8')).slice(1, 40);
    expect(JSON.stringify(bin.lines)).not.toContain(secret);
  });

  it('--rebuild-from-chain replaces the ledger’s paid-to-date with what the chain shows', async () => {
    // A ledger claiming a payout the chain never saw.
    const relay = Keypair.generate().publicKey.toBase58();
    const ledger = SettlementLedger.open(w.dbPath);
    ledger.setPaidFromChain(new Map([[relay, 5n]]));
    ledger.close();
    const plain = await startBin(args());
    expect(((await (await fetch(`${plain.url}/v1/relays/${relay}`)).json()) as Record<string, unknown>)['cumulativePaid']).toBe('5');
    expect(await plain.stop()).toBe(0);
    const rebuilt = await startBin([...args(), '--rebuild-from-chain']);
    expect(((await (await fetch(`${rebuilt.url}/v1/relays/${relay}`)).json()) as Record<string, unknown>)['cumulativePaid']).toBe('0');
    expect(await rebuilt.stop()).toBe(0);
  });

  it('exits 1 with a code on bad flags', async () => {
    await expect(startBin(['--mint', 'x'])).rejects.toThrow(/RC_ERR_CONFIG_INVALID/);
  });
});
