import { rm } from 'node:fs/promises';
import { amountForBytes, decodeSignedReceipt, encodeBase58, fromBase64, toHex } from '@relaycast/protocol';
import { merkleRoot, receiptLeaf } from '@relaycast/protocol/node';
import { MEMO_PROGRAM_ID, SETTLER_PATHS, formatPayoutMemo, relayStatusPath, type RedeemItem } from '@relaycast/protocol/settlement';
import { TOKEN_PROGRAM_ID, decodeTransferCheckedInstruction, getAssociatedTokenAddressSync, transferChecked } from '@solana/spl-token';
import { Connection, PublicKey, Transaction, type TransactionSignature } from '@solana/web3.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSigner } from '../setup/signer-file.js';
import { ensureTokenAccount } from '../setup/token-setup.js';
import { rebuildPaidFromChain } from './rebuild-from-chain.js';
import type { Settler } from './settler.js';
import {
  TREASURY_FUNDS,
  confirmPayout,
  getJson,
  itemFor,
  newRelay,
  newViewer,
  redeemAt,
  requestGrant,
  startPaymentWorld,
  startTestSettler,
  tokenBalance,
  type PaymentWorld,
  type TestRelay,
} from '../testing/settlement-world.js';

type Payout = Extract<Awaited<ReturnType<typeof redeemAt>>['body'], { status: 'payout' }>;

function expectPayout(res: Awaited<ReturnType<typeof redeemAt>>): Payout {
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.status).toBe('payout');
  return res.body as Payout;
}

describe('settler against the embedded chain', () => {
  let w: PaymentWorld;
  let settler: Settler;
  let relay: TestRelay;
  let relayAta: PublicKey;
  const viewer = newViewer();
  let grant: Awaited<ReturnType<typeof requestGrant>>;
  const items: RedeemItem[] = [];
  let paidSoFar = 0n;

  beforeAll(async () => {
    w = await startPaymentWorld();
    settler = await startTestSettler(w);
    relay = await newRelay(w);
    relayAta = getAssociatedTokenAddressSync(w.mint.mint, relay.keypair.publicKey);
    grant = await requestGrant(settler, viewer);
  }, 60_000);

  afterAll(async () => {
    await settler?.close();
    await w?.close();
  });

  it('answers /healthz and /v1/info with the payer, mint and treasury account', async () => {
    expect((await fetch(`${settler.url}${SETTLER_PATHS.health}`)).status).toBe(200);
    const info = await getJson(`${settler.url}${SETTLER_PATHS.info}`);
    expect(info.body).toMatchObject({
      payer: settler.payer,
      mint: w.mint.mint.toBase58(),
      decimals: w.mint.decimals,
      treasuryTokenAccount: w.treasuryTokenAccount.toBase58(),
    });
    expect(grant.signed.grant.payer).toEqual(new PublicKey(settler.payer).toBytes());
  });

  it('pays a redeemed receipt with exactly transferChecked + memo, the treasury as fee payer and only signer, submitted by the settler', async () => {
    const bytes = 5_000_000;
    items[0] = itemFor(w, viewer, grant, relay.keypair.publicKey, 1, bytes);
    const treasuryBefore = await tokenBalance(w, w.treasuryTokenAccount);
    const payout = expectPayout(await redeemAt(settler, relay, items));
    const amount = amountForBytes(bytes, grant.signed.grant.pricePerGiB);
    expect(payout.credited).toEqual([{ index: 0, credited: amount.toString() }]);
    expect(payout.amount).toBe(amount.toString());
    expect(payout.cumulativePaid).toBe(amount.toString());
    expect(payout.merkleRoot).toBe(toHex(merkleRoot([receiptLeaf(decodeSignedReceipt(fromBase64(items[0].receipt)!))])));

    const tx = Transaction.from(Buffer.from(payout.transaction, 'base64'));
    expect(tx.feePayer?.toBase58()).toBe(settler.payer);
    expect(tx.verifySignatures()).toBe(true);
    expect(tx.signatures).toHaveLength(1);
    // The payout's id is the transaction id: the treasury owner's (fee payer's) signature.
    expect(payout.signature).toBe(encodeBase58(tx.signature!));
    expect(tx.instructions).toHaveLength(2);
    const transfer = decodeTransferCheckedInstruction(tx.instructions[0]!, TOKEN_PROGRAM_ID);
    expect(transfer.keys.source.pubkey.equals(w.treasuryTokenAccount)).toBe(true);
    expect(transfer.keys.destination.pubkey.equals(relayAta)).toBe(true);
    expect(transfer.keys.mint.pubkey.equals(w.mint.mint)).toBe(true);
    expect(transfer.keys.owner.pubkey.toBase58()).toBe(settler.payer);
    expect(transfer.data.amount).toBe(amount);
    expect(transfer.data.decimals).toBe(w.mint.decimals);
    expect(tx.instructions[1]!.programId.toBase58()).toBe(MEMO_PROGRAM_ID);
    expect(tx.instructions[1]!.data.toString('utf8')).toBe(formatPayoutMemo({ relay: relay.id, cumulativePaid: amount, merkleRoot: payout.merkleRoot }));

    // The settler already submitted it; the relay only waits for the id (resubmitting is harmless).
    await confirmPayout(w, payout);
    expect(await tokenBalance(w, relayAta)).toBe(amount);
    expect(await tokenBalance(w, w.treasuryTokenAccount)).toBe(treasuryBefore - amount);
    paidSoFar = amount;
  });

  it('answers nothing-owed when nothing new arrived, once the payout landed', async () => {
    const res = await redeemAt(settler, relay, items);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'nothing-owed', cumulativePaid: paidSoFar.toString(), credited: [{ index: 0, credited: paidSoFar.toString() }] });
    expect((await getJson(`${settler.url}${relayStatusPath(relay.id)}`)).body).toEqual({ owed: '0', cumulativePaid: paidSoFar.toString(), pending: null });
  });

  it('builds one payout for concurrent redeems, and it pays once however often it is resubmitted', async () => {
    items[0] = itemFor(w, viewer, grant, relay.keypair.publicKey, 2, 9_000_000);
    const [a, b] = await Promise.all([redeemAt(settler, relay, items), redeemAt(settler, relay, items)]);
    const first = expectPayout(a);
    const second = b.body.status === 'payout' ? b.body : undefined;
    // The second either got the same pending payout, or found it already landed.
    if (second !== undefined) expect(second.signature).toBe(first.signature);
    expect(BigInt(first.amount)).toBe(amountForBytes(9_000_000, grant.signed.grant.pricePerGiB) - paidSoFar);
    await confirmPayout(w, first);
    await confirmPayout(w, first);
    paidSoFar += BigInt(first.amount);
    expect(await tokenBalance(w, relayAta)).toBe(paidSoFar);
    expect(await tokenBalance(w, w.treasuryTokenAccount)).toBe(TREASURY_FUNDS - paidSoFar);
    expect((await redeemAt(settler, relay, items)).body).toMatchObject({ status: 'nothing-owed', cumulativePaid: paidSoFar.toString() });
  });

  it('after a restart, a payout recorded but never sent is sent again and resolved by its id', async () => {
    const more = itemFor(w, viewer, grant, relay.keypair.publicKey, 3, 10_000_000);
    // A settler whose chain connection drops every send: the payout is recorded, not landed.
    await settler.close();
    const realSend = Connection.prototype.sendRawTransaction;
    let dropped: TransactionSignature | undefined;
    Connection.prototype.sendRawTransaction = function (this: Connection) {
      dropped = 'dropped';
      return Promise.reject(new Error('network down'));
    };
    let pendingPayout: Payout;
    try {
      settler = await startTestSettler(w);
      pendingPayout = expectPayout(await redeemAt(settler, relay, [more]));
      expect(dropped).toBe('dropped');
      await settler.close();
    } finally {
      Connection.prototype.sendRawTransaction = realSend;
    }
    settler = await startTestSettler(w);
    const again = expectPayout(await redeemAt(settler, relay, [more]));
    expect(again.signature).toBe(pendingPayout.signature);
    await confirmPayout(w, again);
    paidSoFar += BigInt(again.amount);
    expect(await tokenBalance(w, relayAta)).toBe(paidSoFar);
    for (;;) {
      const res = await redeemAt(settler, relay, [more]);
      if (res.body.status === 'nothing-owed') {
        expect(res.body.cumulativePaid).toBe(paidSoFar.toString());
        break;
      }
      expect(res.body.signature).toBe(again.signature);
    }
    items[0] = more;
  });

  it('rebuilds paid-to-date from the chain after the ledger is deleted, and pays nothing twice', async () => {
    expect(await rebuildPaidFromChain(w.connection, w.treasuryTokenAccount)).toEqual(new Map([[relay.id, paidSoFar]]));
    await settler.close();
    await rm(w.dbPath, { force: true });
    await rm(`${w.dbPath}-wal`, { force: true });
    await rm(`${w.dbPath}-shm`, { force: true });
    settler = await startTestSettler(w, { rebuildFromChain: true });
    expect((await getJson(`${settler.url}${relayStatusPath(relay.id)}`)).body).toEqual({ owed: '0', cumulativePaid: paidSoFar.toString(), pending: null });
    // The relay sends its newest receipts again: they are worth exactly what the chain shows paid.
    expect((await redeemAt(settler, relay, items)).body).toEqual({
      status: 'nothing-owed',
      cumulativePaid: paidSoFar.toString(),
      credited: [{ index: 0, credited: paidSoFar.toString() }],
    });
  });

  it('voids a payout that landed and failed, and the next one pays', async () => {
    const relay = await newRelay(w);
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer);
    const items = [itemFor(w, viewer, grant, relay.keypair.publicKey, 1, 6_000)];
    // Empty the treasury first: the settler's own submission fails preflight; the test then lands
    // the same bytes with skipPreflight (fee charged, err set).
    const owner = await loadSigner(w.treasuryKeypairPath);
    const parking = await ensureTokenAccount(w.connection, w.mintAuthority, w.mint, w.mintAuthority.publicKey);
    const held = await tokenBalance(w, w.treasuryTokenAccount);
    await transferChecked(w.connection, w.mintAuthority, w.treasuryTokenAccount, w.mint.mint, parking.address, owner, held, w.mint.decimals);
    const doomed = (await redeemAt(settler, relay, items)).body;
    if (doomed.status !== 'payout') throw new Error(JSON.stringify(doomed));
    const tx = Transaction.from(Buffer.from(doomed.transaction, 'base64'));
    const landed = await w.connection.sendRawTransaction(tx.serialize(), { skipPreflight: true });
    expect(landed).toBe(doomed.signature);
    await w.connection.confirmTransaction(
      { signature: landed, blockhash: tx.recentBlockhash!, lastValidBlockHeight: doomed.lastValidBlockHeight },
      'confirmed',
    );
    expect((await w.connection.getSignatureStatus(landed, { searchTransactionHistory: true })).value?.err).not.toBeNull();

    await transferChecked(w.connection, w.mintAuthority, parking.address, w.mint.mint, w.treasuryTokenAccount, w.mintAuthority, held, w.mint.decimals);
    const next = (await redeemAt(settler, relay, items)).body;
    if (next.status !== 'payout') throw new Error(JSON.stringify(next));
    expect(next.signature).not.toBe(doomed.signature);
    expect([next.amount, next.cumulativePaid]).toEqual([doomed.amount, doomed.cumulativePaid]);
    await confirmPayout(w, next);
    const relayAta = getAssociatedTokenAddressSync(w.mint.mint, relay.keypair.publicKey);
    expect(await tokenBalance(w, relayAta)).toBe(BigInt(next.amount));
    await expect.poll(async () => (await redeemAt(settler, relay, items)).body.status).toBe('nothing-owed');
    expect((await getJson(`${settler.url}${relayStatusPath(relay.id)}`)).body).toEqual({ owed: '0', cumulativePaid: next.amount, pending: null });
  });
});
