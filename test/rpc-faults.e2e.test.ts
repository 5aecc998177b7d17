import { join } from 'node:path';
import { decodeSignedGrant, decodeSignedReceipt } from '@relaycast/protocol';
import { privateKeyFromSeed, rawPublicKey, signEd25519 } from '@relaycast/protocol/node';
import { ReceiptStore, Redeemer } from '@relaycast/relay';
import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Settler } from '@relaycast/contracts-client/settler';
import { loadSigner } from '@relaycast/contracts-client/setup';
import { TestSession, type TestPayer } from '@relaycast/relay/testing';
import { startRpcProxy, type RpcFault } from './helpers/rpc-proxy.js';
import { newRelay, startPaymentWorld, startTestSettler, TEST_PRICE_PER_GIB, type PaymentWorld } from '@relaycast/contracts-client/testing';

type Fault = RpcFault;

/**
 * A JSON-RPC proxy in front of the real embedded chain that misbehaves on chosen methods the way a
 * flaky provider does: an HTTP 503 without forwarding, no answer at all, or forwarding the call
 * and losing the answer (the transaction lands; the caller does not know). Only the relay talks
 * through it; the settler and the test use the chain directly.
 */
async function flakyRpc(target: string, faults: Map<string, Fault[]>): Promise<{ url: string; calls: Map<string, number>; close(): Promise<void> }> {
  const calls = new Map<string, number>();
  const proxy = await startRpcProxy(target, (body) => {
    let method = 'batch';
    try {
      method = (JSON.parse(body.toString()) as { method?: string }).method ?? 'batch';
    } catch {
      // forwarded as is
    }
    calls.set(method, (calls.get(method) ?? 0) + 1);
    return faults.get(method)?.shift();
  });
  return { ...proxy, calls };
}

/**
 * Issue "hardening", RPC errors and timeouts during redemption: the relay's real Redeemer against
 * the real settlement service and embedded chain, through an RPC that fails, hangs and loses
 * answers. It must retry with backoff and pay exactly once.
 */
describe('redemption through a faulty RPC', () => {
  let w: PaymentWorld;
  let settler: Settler;
  let payer: TestPayer;

  beforeAll(async () => {
    w = await startPaymentWorld();
    settler = await startTestSettler(w);
    const treasury = await loadSigner(w.treasuryKeypairPath);
    payer = {
      key: privateKeyFromSeed(treasury.secretKey.subarray(0, 32)),
      publicKey: treasury.publicKey.toBytes(),
      id: treasury.publicKey.toBase58(),
      mint: w.mint.mint.toBytes(),
    };
  });

  afterAll(async () => {
    await settler?.close();
    await w?.close();
  });

  async function relayWithReceipt(name: string, bytes: number) {
    const relay = await newRelay(w);
    const relayKey = relay.keypair.publicKey.toBytes();
    const store = ReceiptStore.open({ path: join(w.dir, `${name}.sqlite`), relayId: relay.id }, relayKey);
    const session = new TestSession(payer, { pricePerGiB: TEST_PRICE_PER_GIB, budget: 10n ** 15n, mint: payer.mint, scope: 'https://cdn.example.test/hls/' });
    const g = session.signedGrant();
    // Bound with the tracker's assignment of the session to this relay: the settler pays only for those.
    store.putGrant(
      decodeSignedGrant(g),
      payer.id,
      g,
      session.assignment({ key: w.tracker.privateKey, publicKey: w.tracker.publicKey, id: w.tracker.id }, relayKey),
    );
    const r = session.signedReceipt(relayKey, bytes);
    store.putReceipt(decodeSignedReceipt(r).receipt, payer.id, r);
    const key = privateKeyFromSeed(relay.keypair.secretKey.subarray(0, 32));
    const signer = { relayId: relay.id, publicKey: rawPublicKey(key), sign: (m: Uint8Array) => signEd25519(key, m) };
    return { relay, store, signer, owed: decodeSignedReceipt(r).receipt.cumulativeAmount };
  }

  const balance = async (owner: { keypair: { publicKey: import('@solana/web3.js').PublicKey } }): Promise<bigint> =>
    BigInt((await w.connection.getTokenAccountBalance(getAssociatedTokenAddressSync(w.mint.mint, owner.keypair.publicKey))).value.amount);

  it(
    'retries failed and hung RPC calls with backoff and pays exactly once (the settler submits; the relay resolves by id and resubmits the same bytes)',
    { timeout: 120_000 },
    async () => {
      const { relay, store, signer, owed } = await relayWithReceipt('flaky', 3 * 2 ** 20);
      const rpc = await flakyRpc(
        w.chain.rpcUrl,
        new Map<string, Fault[]>([
          ['sendTransaction', ['fail', 'hang']],
          ['getSignatureStatuses', ['fail', 'hang', 'fail']],
          ['getBlockHeight', ['fail']],
        ]),
      );
      try {
        const redeemer = new Redeemer({
          store,
          signer,
          payers: new Map([[payer.id, settler.url]]),
          rpcUrl: rpc.url,
          rpcTimeoutMs: 1_000,
          retryMinMs: 50,
          retryMaxMs: 500,
          attempts: 6,
        });
        const result = await redeemer.redeem(AbortSignal.timeout(90_000));
        expect(result.payers[0]?.error).toBeUndefined();
        expect(result.amount).toBe(owed.toString());
        expect(await balance(relay)).toBe(owed);
        expect(store.paidToDate(payer.id)).toBe(owed);
        expect(rpc.calls.get('getSignatureStatuses') ?? 0).toBeGreaterThanOrEqual(4);
        const again = await redeemer.redeem(AbortSignal.timeout(30_000));
        expect(again.amount).toBe('0');
        expect(await balance(relay)).toBe(owed);
      } finally {
        store.close();
        await rpc.close();
      }
    },
  );

  it('never pays twice when the status lookups of a landed payout lose their answers', { timeout: 120_000 }, async () => {
    const { relay, store, signer, owed } = await relayWithReceipt('lost-answer', 5 * 2 ** 20);
    const faults = new Map<string, Fault[]>([['getSignatureStatuses', ['drop-answer', 'drop-answer']]]);
    const rpc = await flakyRpc(w.chain.rpcUrl, faults);
    try {
      const redeemer = new Redeemer({
        store,
        signer,
        payers: new Map([[payer.id, settler.url]]),
        rpcUrl: rpc.url,
        rpcTimeoutMs: 1_000,
        retryMinMs: 50,
        retryMaxMs: 500,
        attempts: 6,
      });
      const result = await redeemer.redeem(AbortSignal.timeout(90_000));
      expect(result.payers[0]?.error).toBeUndefined();
      expect(await balance(relay)).toBe(owed);
      // A second relay process (same store) redeeming again: nothing more.
      const again = await new Redeemer({ store, signer, payers: new Map([[payer.id, settler.url]]), rpcUrl: w.chain.rpcUrl }).redeem(
        AbortSignal.timeout(30_000),
      );
      expect(again.amount).toBe('0');
      expect(await balance(relay)).toBe(owed);
      expect(store.paidToDate(payer.id)).toBe(owed);
      // Both lost answers were used up, and the payout was still counted once.
      expect(faults.get('getSignatureStatuses')?.length).toBe(0);
    } finally {
      store.close();
      await rpc.close();
    }
  });
});
