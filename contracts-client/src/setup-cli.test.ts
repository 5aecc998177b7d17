import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getAccount, getAssociatedTokenAddressSync, getMint } from '@solana/spl-token';
import { Connection, LAMPORTS_PER_SOL, PublicKey } from '@solana/web3.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDecimalAmount } from './amounts.js';
import { runSolanaCli, startChainProcess, type ChainProcess } from './testing/chain-process.js';

// Four CLI processes and a chain each start tsx: give the whole flow room on a 2-core machine.
const FLOW_TIMEOUT_MS = 120_000;

describe('relaycast-chain + relaycast-solana bins', () => {
  let dir: string;
  let chain: ChainProcess;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-setup-cli-'));
    chain = await startChainProcess(['--port', '0', '--slot-ms', '100', '--state-file', join(dir, 'chain.json')]);
  }, FLOW_TIMEOUT_MS);
  afterAll(async () => {
    await chain?.stop();
    await rm(dir, { recursive: true, force: true });
  }, FLOW_TIMEOUT_MS);

  it(
    'runs keygen → airdrop → create-mint → create-treasury → create-token-account → balances with exact results',
    async () => {
      const url = ['--url', chain.rpcUrl];
      const payerFile = join(dir, 'payer.json');
      const payer = await runSolanaCli(['keygen', '--outfile', payerFile]);
      expect((await stat(payerFile)).mode & 0o777).toBe(0o600);
      const asPayer = [...url, '--keypair', payerFile];

      const airdropSol = '25';
      const dropped = await runSolanaCli([...asPayer, 'airdrop', airdropSol]);
      expect(dropped['balanceLamports']).toBe(Number(parseDecimalAmount(airdropSol, 9)));

      const decimals = 6;
      const mint = await runSolanaCli([...asPayer, 'create-mint', '--decimals', String(decimals)]);
      expect(mint).toMatchObject({ decimals, mintAuthority: payer['publicKey'], payerIsMintAuthority: true, supply: '0' });
      const mintAddress = String(mint['mint']);

      const funded = '1000.25';
      const treasuryFile = join(dir, 'treasury.json');
      const treasury = await runSolanaCli([...asPayer, 'create-treasury', '--mint', mintAddress, '--treasury-keypair', treasuryFile, '--amount', funded]);
      const fundedUnits = parseDecimalAmount(funded, decimals);
      expect(treasury).toMatchObject({ keypairCreated: true, minted: fundedUnits.toString(), balance: fundedUnits.toString(), balanceUi: funded });

      const relay = await runSolanaCli(['keygen', '--outfile', join(dir, 'relay.json')]);
      const relayAccount = await runSolanaCli([...asPayer, 'create-token-account', '--mint', mintAddress, '--owner', String(relay['publicKey'])]);
      expect(relayAccount['balance']).toBe('0');

      const relayBalances = await runSolanaCli([...url, 'balances', '--owner', String(relay['publicKey']), '--mint', mintAddress]);
      expect(relayBalances).toMatchObject({ lamports: 0, tokenAccountExists: true, tokenAmount: '0', tokenAccount: relayAccount['tokenAccount'] });
      const treasuryBalances = await runSolanaCli([...url, 'balance', '--owner', String(treasury['treasury']), '--mint', mintAddress]);
      expect(treasuryBalances).toMatchObject({ tokenAmount: fundedUnits.toString(), tokenUi: funded });

      // The chain agrees when asked directly.
      const connection = new Connection(chain.rpcUrl, 'confirmed');
      const mintKey = new PublicKey(mintAddress);
      const treasuryAta = getAssociatedTokenAddressSync(mintKey, new PublicKey(String(treasury['treasury'])));
      expect((await getAccount(connection, treasuryAta)).amount).toBe(fundedUnits);
      expect((await getMint(connection, mintKey)).supply).toBe(fundedUnits);
      const payerLamports = await connection.getBalance(new PublicKey(String(payer['publicKey'])));
      expect(payerLamports).toBeLessThan(Number(airdropSol) * LAMPORTS_PER_SOL);
      expect(payerLamports).toBeGreaterThan((Number(airdropSol) - 1) * LAMPORTS_PER_SOL);

      // Only the mint authority can mint: a treasury run by another payer fails with a typed code.
      const stranger = join(dir, 'stranger.json');
      await runSolanaCli(['keygen', '--outfile', stranger]);
      await runSolanaCli([...url, '--keypair', stranger, 'airdrop', '1']);
      const refused = await runSolanaCli([
        ...url,
        '--keypair',
        stranger,
        'create-treasury',
        '--mint',
        mintAddress,
        '--treasury-keypair',
        join(dir, 't2.json'),
        '--amount',
        '1',
      ]).then(
        () => 'succeeded',
        (err: Error) => err.message,
      );
      // A failed transaction exits 1; a configuration error (below) exits 2.
      expect(refused).toMatch(/exited 1: .*RC_ERR_CHAIN_REQUEST_FAILED/s);

      // keygen never overwrites.
      const again = await runSolanaCli(['keygen', '--outfile', payerFile]).then(
        () => 'succeeded',
        (err: Error) => err.message,
      );
      expect(again).toMatch(/exited 2: .*RC_ERR_CONFIG_INVALID/s);
    },
    FLOW_TIMEOUT_MS,
  );

  it(
    'the chain bin exits 0 on SIGTERM and a restart on the same state file keeps the balances',
    async () => {
      const stateArgs = ['--port', '0', '--slot-ms', '100', '--state-file', join(dir, 'chain.json')];
      const before = await runSolanaCli(['--url', chain.rpcUrl, 'balance', '--keypair', join(dir, 'payer.json')]);
      expect(await chain.stop()).toBe(0);
      chain = await startChainProcess(stateArgs);
      const after = await runSolanaCli(['--url', chain.rpcUrl, 'balance', '--keypair', join(dir, 'payer.json')]);
      expect(after['lamports']).toBe(before['lamports']);
    },
    FLOW_TIMEOUT_MS,
  );
});
