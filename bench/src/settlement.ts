/**
 * Settlement: payouts per second on the embedded chain and fee lamports per GiB delivered.
 *
 * Method: the embedded chain (JSON-RPC over loopback), a mint and funded treasury, the settlement
 * service, and R relays, each with one stored receipt worth the relay's default redemption
 * threshold at the settler's default price (so one payout = one threshold's worth of bytes). Each
 * relay redeems with the relay's real Redeemer (settler request, payout check, co-sign, submit,
 * confirm over RPC): first one after another, then all at once. Fees are read from the treasury
 * owner's SOL balance (the treasury owner is the payout's fee payer; the settler submits it). Baseline in the same run: a plain SOL transfer
 * signed and confirmed through the same RPC, one after another.
 *
 *   npx tsx bench/src/settlement.ts [--relays R]
 */
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startEmbeddedChain } from '@relaycast/contracts-client/chain';
import { startSettler } from '@relaycast/contracts-client/settler';
import { airdropSol, createTokenMint, createTreasury, ensureTokenAccount, loadSigner } from '@relaycast/contracts-client/setup';
import { BYTES_PER_GIB, amountForBytes, decodeSignedGrant, decodeSignedReceipt, encodeBase58 } from '@relaycast/protocol';
import { privateKeyFromSeed, rawPublicKey, signEd25519 } from '@relaycast/protocol/node';
import { Redeemer, ReceiptStore } from '@relaycast/relay';
import { Connection, Keypair, LAMPORTS_PER_SOL, SystemProgram, Transaction, sendAndConfirmTransaction } from '@solana/web3.js';
import { TestSession, type TestPayer } from '@relaycast/relay/testing';
import { report } from './lib/report.js';

const PRICE_PER_GIB = 1_000_000n; // the settler's DEFAULT_PRICE_PER_GIB
const THRESHOLD = 1_000_000n; // the relay's DEFAULT_REDEEM_THRESHOLD

const BENCH_TRACKER = (() => {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = rawPublicKey(privateKey);
  return { key: privateKey, publicKey, id: encodeBase58(publicKey) };
})();
const { values } = parseArgs({ options: { relays: { type: 'string', default: '10' } } });
const R = Number(values.relays);
const dir = mkdtempSync(join(tmpdir(), 'rc-bench-settle-'));
const chain = await startEmbeddedChain({ port: 0 });
const connection = new Connection(chain.rpcUrl, 'confirmed');
const platform = Keypair.generate();
await airdropSol(connection, platform.publicKey, 100 * LAMPORTS_PER_SOL);
const mint = await createTokenMint(connection, platform, 6);
const treasuryPath = join(dir, 'treasury.json');
const treasury = await createTreasury(connection, platform, mint.mint, treasuryPath, 10n ** 15n);
// The treasury owner pays every payout's fee.
await airdropSol(connection, treasury.treasury, 100 * LAMPORTS_PER_SOL);
const settler = await startSettler({
  rpcUrl: chain.rpcUrl,
  treasuryKeypair: treasuryPath,
  mint: mint.mint.toBase58(),
  dbPath: join(dir, 'settler.sqlite'),
  pricePerGiB: PRICE_PER_GIB,
  defaultBudget: 10n ** 15n,
  authorize: () => Promise.resolve({}),
  // The bench plays the tracker: redeem items need its assignments (relay store API, RELAY-PAYMENTS).
  trustedTrackers: [BENCH_TRACKER.id],
});
const treasuryKey = await loadSigner(treasuryPath);
const payer: TestPayer = {
  key: privateKeyFromSeed(treasuryKey.secretKey.subarray(0, 32)),
  publicKey: treasury.treasury.toBytes(),
  id: treasury.treasury.toBase58(),
  mint: mint.mint.toBytes(),
};
// One threshold's worth of bytes: the bytes a relay delivers between two automatic redemptions.
const bytesPerPayout = Number((THRESHOLD * BYTES_PER_GIB + PRICE_PER_GIB - 1n) / PRICE_PER_GIB);

interface BenchRelay {
  keypair: Keypair;
  store: ReceiptStore;
  redeemer: Redeemer;
}

async function newRelay(i: number): Promise<BenchRelay> {
  const keypair = Keypair.generate();
  await airdropSol(connection, keypair.publicKey, LAMPORTS_PER_SOL);
  await ensureTokenAccount(connection, platform, mint, keypair.publicKey);
  const relayKey = keypair.publicKey.toBytes();
  const relayId = encodeBase58(relayKey);
  const store = ReceiptStore.open({ path: join(dir, `relay-${i}.sqlite`), relayId }, relayKey);
  // Issued an hour ago: a threshold's worth (1 GiB) is plausible at the settler's default 20 Mbit/s.
  const session = new TestSession(payer, { pricePerGiB: PRICE_PER_GIB, budget: 10n ** 15n, mint: payer.mint, issuedAtMs: Date.now() - 3_600_000 });
  const grantBytes = session.signedGrant();
  store.putGrant(decodeSignedGrant(grantBytes), payer.id, grantBytes, session.assignment(BENCH_TRACKER, relayKey));
  const receiptBytes = session.signedReceipt(relayKey, bytesPerPayout);
  store.putReceipt(decodeSignedReceipt(receiptBytes).receipt, payer.id, receiptBytes);
  const signingKey = privateKeyFromSeed(keypair.secretKey.subarray(0, 32));
  const redeemer = new Redeemer({
    store,
    payers: new Map([[payer.id, settler.url]]),
    rpcUrl: chain.rpcUrl,
    signer: { relayId, publicKey: rawPublicKey(signingKey), sign: (m) => signEd25519(signingKey, m) },
  });
  return { keypair, store, redeemer };
}

async function redeemAll(relays: BenchRelay[], concurrent: boolean): Promise<{ seconds: number; feesLamports: number[]; paid: bigint[] }> {
  const before = await connection.getBalance(treasury.treasury);
  const t0 = performance.now();
  const results = [];
  if (concurrent) results.push(...(await Promise.all(relays.map((r) => r.redeemer.redeem(AbortSignal.timeout(120_000))))));
  else for (const r of relays) results.push(await r.redeemer.redeem(AbortSignal.timeout(120_000)));
  const seconds = (performance.now() - t0) / 1000;
  const after = await connection.getBalance(treasury.treasury);
  return { seconds, feesLamports: [before - after], paid: results.map((x) => BigInt(x.amount)) };
}

const sequentialRelays = [];
for (let i = 0; i < R; i++) sequentialRelays.push(await newRelay(i));
const concurrentRelays = [];
for (let i = 0; i < R; i++) concurrentRelays.push(await newRelay(R + i));
const seq = await redeemAll(sequentialRelays, false);
const par = await redeemAll(concurrentRelays, true);

// Baseline: plain SOL transfers, signed and confirmed through the same RPC, one after another.
const from = Keypair.generate();
await airdropSol(connection, from.publicKey, 10 * LAMPORTS_PER_SOL);
const t0 = performance.now();
for (let i = 0; i < R; i++) {
  await sendAndConfirmTransaction(
    connection,
    new Transaction().add(SystemProgram.transfer({ fromPubkey: from.publicKey, toPubkey: Keypair.generate().publicKey, lamports: LAMPORTS_PER_SOL / 100 })),
    [from],
  );
}
const baselineSeconds = (performance.now() - t0) / 1000;

const expected = amountForBytes(bytesPerPayout, PRICE_PER_GIB);
const allPaidExactly = [...seq.paid, ...par.paid].every((p) => p === expected);
const feePerPayout = seq.feesLamports.reduce((a, b) => a + b, 0) / R;
const gibPerPayout = bytesPerPayout / Number(BYTES_PER_GIB);
const result = {
  relays: R,
  payoutsPerSec: { sequential: R / seq.seconds, concurrent: R / par.seconds },
  baselineSolTransfersPerSec: R / baselineSeconds,
  ratioSequentialToBaseline: R / seq.seconds / (R / baselineSeconds),
  feeLamportsPerPayout: feePerPayout,
  defaultRedeemThreshold: THRESHOLD.toString(),
  defaultPricePerGiB: PRICE_PER_GIB.toString(),
  gibPerPayoutAtDefaults: gibPerPayout,
  feeLamportsPerGiBAtDefaults: feePerPayout / gibPerPayout,
  allPaidExactly,
};
report(
  'settlement',
  result,
  `${result.payoutsPerSec.sequential.toFixed(1)} payouts/s one at a time (${result.ratioSequentialToBaseline.toFixed(2)}x plain SOL transfers ${result.baselineSolTransfersPerSec.toFixed(1)}/s), ${result.payoutsPerSec.concurrent.toFixed(1)}/s with ${R} relays at once; ${feePerPayout} lamports per payout = ${Math.round(result.feeLamportsPerGiBAtDefaults)} lamports per GiB at the defaults (${gibPerPayout.toFixed(2)} GiB per payout); paid exactly: ${allPaidExactly}`,
);
for (const r of [...sequentialRelays, ...concurrentRelays]) r.store.close();
await settler.close();
await chain.close();
rmSync(dir, { recursive: true, force: true });
process.exit(allPaidExactly ? 0 : 1);
