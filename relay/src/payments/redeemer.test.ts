import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, decodeSignedGrant, decodeSignedReceipt, encodeBase58, toBase64 } from '@relaycast/protocol';
import { privateKeyFromSeed, signEd25519 } from '@relaycast/protocol/node';
import { TOKEN_PROGRAM_ID, createTransferCheckedInstruction, getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Keypair, PublicKey, Transaction, TransactionInstruction, type Connection } from '@solana/web3.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestSession, testPayer } from './payment-test-kit.js';
import { ReceiptStore } from './receipt-store.js';
import { Redeemer } from './redeemer.js';

const MEMO = new PublicKey('MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr');
const relay = Keypair.generate();
const relayId = relay.publicKey.toBase58();
const treasury = Keypair.generate();
const mint = Keypair.generate().publicKey;
const treasuryAccount = getAssociatedTokenAddressSync(mint, treasury.publicKey);
const relayKey = privateKeyFromSeed(relay.secretKey.subarray(0, 32));
const signer = { relayId, publicKey: relay.publicKey.toBytes(), sign: (m: Uint8Array) => signEd25519(relayKey, m) };

function payoutTx(amount: bigint, paid: bigint, root: string): string {
  const tx = new Transaction({ feePayer: relay.publicKey, blockhash: Keypair.generate().publicKey.toBase58(), lastValidBlockHeight: 1_000 });
  tx.add(
    createTransferCheckedInstruction(treasuryAccount, mint, getAssociatedTokenAddressSync(mint, relay.publicKey), treasury.publicKey, amount, 6, [], TOKEN_PROGRAM_ID),
    new TransactionInstruction({ programId: MEMO, keys: [], data: Buffer.from(`relaycast:v1 relay=${relayId} paid=${paid} root=${root}`) }),
  );
  tx.partialSign(treasury);
  return toBase64(new Uint8Array(tx.serialize({ requireAllSignatures: false, verifySignatures: false })));
}

describe('Redeemer against a scripted settler and RPC', () => {
  let dir: string;
  let server: Server | undefined;
  let store: ReceiptStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-redeemer-'));
  });
  afterEach(async () => {
    store?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a payout that pays more than its own accounting (nothing signed, recorded or sent), then pays the right one once', { timeout: 30_000 }, async () => {
    const payer = testPayer(mint.toBytes());
    store = ReceiptStore.open({ path: join(dir, 'r.sqlite'), relayId }, relay.publicKey.toBytes());
    const session = new TestSession(payer);
    const g = session.signedGrant();
    store.putGrant(decodeSignedGrant(g), payer.id, g);
    const r = session.signedReceipt(relay.publicKey.toBytes(), 2 ** 30);
    const owed = decodeSignedReceipt(r).receipt.cumulativeAmount;
    store.putReceipt(decodeSignedReceipt(r).receipt, payer.id, r);

    let offer = owed + 1n;
    const root = 'ab'.repeat(32);
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json' });
        if (req.url === '/v1/info') return void res.end(JSON.stringify({ payer: payer.id, mint: mint.toBase58(), decimals: 6, treasuryTokenAccount: treasuryAccount.toBase58() }));
        res.end(JSON.stringify({ status: 'payout', transaction: payoutTx(offer, offer, root), signature: 'x', amount: String(offer), cumulativePaid: String(offer), merkleRoot: root, lastValidBlockHeight: 1_000 }));
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    const sent: Uint8Array[] = [];
    const connection = {
      sendRawTransaction: (wire: Uint8Array) => {
        sent.push(wire);
        return Promise.resolve('sig');
      },
      getSignatureStatuses: () => Promise.resolve({ value: [sent.length > 0 ? { err: null, confirmationStatus: 'confirmed' } : null] }),
      getBlockHeight: () => Promise.resolve(10),
      getTokenAccountBalance: () => Promise.resolve({ value: { amount: String(sent.length > 0 ? owed : 0n) } }),
    } as unknown as Connection;
    const redeemer = new Redeemer({ store, signer, payers: new Map([[payer.id, url]]), connection, retryMinMs: 10 });

    const refused = await redeemer.redeem(AbortSignal.timeout(10_000));
    expect(refused.payers[0]?.error?.code).toBe(ErrorCode.PAYOUT_MISMATCH);
    expect(refused.amount).toBe('0');
    expect(sent).toEqual([]);
    expect(store.pendingPayouts(payer.id)).toEqual([]);

    offer = owed;
    const paid = await redeemer.redeem(AbortSignal.timeout(10_000));
    expect(paid.payers[0]?.error).toBeUndefined();
    expect(paid.amount).toBe(owed.toString());
    expect(paid.payers[0]?.balance).toBe(owed.toString());
    expect(store.paidToDate(payer.id)).toBe(owed);
    // What was sent is the treasury's transaction co-signed by the relay, and its id is what was recorded.
    const tx = Transaction.from(sent[0] as Uint8Array);
    expect(tx.verifySignatures(true)).toBe(true);
    expect(paid.payers[0]?.payouts).toEqual([{ signature: encodeBase58(tx.signature as Buffer), amount: owed.toString() }]);
  });
});
