import { spawn } from 'node:child_process';
import { chmod, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeSignedGrant, fromBase64 } from '@relaycast/protocol';
import { SETTLER_PATHS, relayStatusPath } from '@relaycast/protocol/settlement';
import { Keypair, PublicKey } from '@solana/web3.js';
import { SignJWT } from 'jose';
import { userTag } from './settlement/grant-auth.js';
import { SettlementLedger } from './settlement/settlement-ledger.js';
import { startPaymentWorld, type PaymentWorld } from './testing/settlement-world.js';

const SETTLER_BIN = fileURLToPath(new URL('../bin/relaycast-settler.js', import.meta.url));

/** Starts the bin, resolves with its url once it logs "settler listening", and a stop() that sends SIGTERM. */
function startBin(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ url: string; lines: Record<string, unknown>[]; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [SETTLER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
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

const SECRET = 'test-secret-of-the-platform-at-least-32-bytes';

describe('relaycast-settler bin', () => {
  let w: PaymentWorld;
  beforeAll(async () => {
    w = await startPaymentWorld();
  }, 60_000);
  afterAll(async () => {
    await w?.close();
  });

  const args = (): string[] => [
    '--port',
    '0',
    '--rpc-url',
    w.chain.rpcUrl,
    '--treasury-keypair',
    w.treasuryKeypairPath,
    '--mint',
    w.mint.mint.toBase58(),
    '--db',
    w.dbPath,
    '--price-per-gib',
    '2048',
    '--default-budget',
    '777',
    '--grant-ttl-ms',
    '60000',
    '--allow-origin',
    'https://platform.example.test',
    '--trusted-tracker',
    w.tracker.id,
    '--grant-auth',
    'open',
  ];
  const without = (flag: string): string[] => {
    const a = args();
    const i = a.indexOf(flag);
    a.splice(i, 2);
    return a;
  };

  it('serves the API from its flags, never logs the treasury key, and exits 0 on SIGTERM', async () => {
    const bin = await startBin(args());
    const info = (await (await fetch(`${bin.url}${SETTLER_PATHS.info}`)).json()) as Record<string, unknown>;
    expect(info).toMatchObject({
      mint: w.mint.mint.toBase58(),
      treasuryTokenAccount: w.treasuryTokenAccount.toBase58(),
      pricePerGiB: '2048',
      defaultBudget: '777',
      grantTtlMs: 60_000,
      grantAuth: 'open',
      trustedTrackers: [w.tracker.id],
      userBudget: '7770', // 10 × --default-budget
      budgetPeriodMs: 86_400_000,
      maxBytesPerSec: 2_500_000,
    });
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
    expect(((await (await fetch(`${plain.url}${relayStatusPath(relay)}`)).json()) as Record<string, unknown>)['cumulativePaid']).toBe('5');
    expect(await plain.stop()).toBe(0);
    const rebuilt = await startBin([...args(), '--rebuild-from-chain']);
    expect(((await (await fetch(`${rebuilt.url}${relayStatusPath(relay)}`)).json()) as Record<string, unknown>)['cumulativePaid']).toBe('0');
    expect(await rebuilt.stop()).toBe(0);
  });

  it('exits 2 with a code on bad flags: no grant policy, no trusted tracker, jwt without audience or key', async () => {
    await expect(startBin(['--mint', 'x'])).rejects.toThrow(/exited 2: .*RC_ERR_CONFIG_INVALID/);
    await expect(startBin(without('--grant-auth'))).rejects.toThrow(/exited 2: .*RC_ERR_CONFIG_INVALID.*--grant-auth/);
    await expect(startBin([...without('--grant-auth'), '--grant-auth', 'none'])).rejects.toThrow(/exited 2: .*RC_ERR_CONFIG_INVALID/);
    await expect(startBin(without('--trusted-tracker'))).rejects.toThrow(/exited 2: .*RC_ERR_CONFIG_INVALID.*--trusted-tracker/);
    const jwt = [...without('--grant-auth'), '--grant-auth', 'jwt'];
    await expect(startBin(jwt, { RELAYCAST_GRANT_JWT_SECRET: SECRET })).rejects.toThrow(/exited 2: .*--grant-jwt-audience/);
    await expect(startBin([...jwt, '--grant-jwt-audience', 'relaycast'])).rejects.toThrow(/exited 2: .*RELAYCAST_GRANT_JWT_SECRET/);
    await expect(startBin([...jwt, '--grant-jwt-audience', 'relaycast'], { RELAYCAST_GRANT_JWT_SECRET: 'short' })).rejects.toThrow(
      /exited 2: .*at least 32 bytes/,
    );
  }, 90_000);

  it('refuses to start with a treasury key file group or others can read (RC_ERR_KEY_PERMISSIONS, exit 2)', async () => {
    await chmod(w.treasuryKeypairPath, 0o640);
    try {
      await expect(startBin(args())).rejects.toThrow(/exited 2: .*RC_ERR_KEY_PERMISSIONS/);
    } finally {
      await chmod(w.treasuryKeypairPath, 0o600);
    }
  });

  it('--grant-auth jwt grants only with a valid platform token (aud, sub, exp) and tags the grant with its user', async () => {
    const bin = await startBin([...without('--grant-auth'), '--grant-auth', 'jwt', '--grant-jwt-audience', 'relaycast-settler'], {
      RELAYCAST_GRANT_JWT_SECRET: SECRET,
    });
    try {
      const key = new TextEncoder().encode(SECRET);
      const token = (claims: Record<string, unknown>, aud = 'relaycast-settler', exp: string | null = '5m') => {
        const j = new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setAudience(aud).setIssuedAt();
        return (exp === null ? j : j.setExpirationTime(exp)).sign(key);
      };
      const grant = async (headers: Record<string, string>) => {
        const res = await fetch(`${bin.url}${SETTLER_PATHS.grants}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...headers },
          body: JSON.stringify({ sessionKey: Keypair.generate().publicKey.toBase58(), scope: 'https://cdn.example.test/hls/' }),
        });
        return { status: res.status, body: (await res.json()) as { grant?: string; error?: { code: string } } };
      };
      const code = (r: { status: number; body: { error?: { code: string } } }) => [r.status, r.body.error?.code];
      expect(code(await grant({}))).toEqual([401, 'RC_ERR_GRANT_UNAUTHENTICATED']);
      expect(code(await grant({ authorization: 'Bearer nonsense' }))).toEqual([401, 'RC_ERR_GRANT_UNAUTHENTICATED']);
      expect(code(await grant({ authorization: `Bearer ${await token({ sub: 'alice' }, 'someone-else')}` }))).toEqual([401, 'RC_ERR_GRANT_UNAUTHENTICATED']);
      expect(code(await grant({ authorization: `Bearer ${await token({ sub: 'alice' }, 'relaycast-settler', null)}` }))).toEqual([
        401,
        'RC_ERR_GRANT_UNAUTHENTICATED',
      ]);
      expect(code(await grant({ authorization: `Bearer ${await token({}, 'relaycast-settler')}` }))).toEqual([401, 'RC_ERR_GRANT_UNAUTHENTICATED']);
      expect(code(await grant({ authorization: `Bearer ${await token({ sub: 'alice' }, 'relaycast-settler', '-1m')}` }))).toEqual([
        401,
        'RC_ERR_GRANT_UNAUTHENTICATED',
      ]);
      const forged = await new SignJWT({ sub: 'alice' })
        .setProtectedHeader({ alg: 'HS256' })
        .setAudience('relaycast-settler')
        .setExpirationTime('5m')
        .sign(new TextEncoder().encode('x'.repeat(40)));
      expect(code(await grant({ authorization: `Bearer ${forged}` }))).toEqual([401, 'RC_ERR_GRANT_UNAUTHENTICATED']);
      const ok = await grant({ authorization: `Bearer ${await token({ sub: 'alice' })}` });
      expect(ok.status).toBe(200);
      const signed = decodeSignedGrant(fromBase64(ok.body.grant!)!);
      const info = (await (await fetch(`${bin.url}${SETTLER_PATHS.info}`)).json()) as { payer: string; grantAuth: string };
      expect(info.grantAuth).toBe('jwt');
      expect(signed.grant.user).toEqual(userTag(new PublicKey(info.payer).toBytes(), 'alice'));
    } finally {
      await bin.stop();
    }
  });
});
