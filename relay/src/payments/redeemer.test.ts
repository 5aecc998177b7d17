import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, decodeSignedGrant, decodeSignedReceipt, encodeBase58, fromBase64, toBase64 } from '@relaycast/protocol';
import { privateKeyFromSeed, signEd25519 } from '@relaycast/protocol/node';
import { MEMO_PROGRAM_ID, SETTLER_MAX_BODY_BYTES, SETTLER_PATHS, formatPayoutMemo } from '@relaycast/protocol/settlement';
import { TOKEN_PROGRAM_ID, createTransferCheckedInstruction, getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Keypair, PublicKey, Transaction, TransactionInstruction, type Connection } from '@solana/web3.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TestSession, type TestPayer } from '../testing/payments.js';
import { ReceiptStore } from './receipt-store.js';
import { Redeemer } from './redeemer.js';

const MEMO = new PublicKey(MEMO_PROGRAM_ID);
const relay = Keypair.generate();
const relayId = relay.publicKey.toBase58();
const treasury = Keypair.generate();
const mint = Keypair.generate().publicKey;
const treasuryAccount = getAssociatedTokenAddressSync(mint, treasury.publicKey);
const relayKey = privateKeyFromSeed(relay.secretKey.subarray(0, 32));
const signer = { relayId, publicKey: relay.publicKey.toBytes(), sign: (m: Uint8Array) => signEd25519(relayKey, m) };

/** The payer as the settler runs it: its treasury owner key signs grants. */
function treasuryPayer(): TestPayer {
  const key = privateKeyFromSeed(treasury.secretKey.subarray(0, 32));
  return { key, publicKey: treasury.publicKey.toBytes(), id: treasury.publicKey.toBase58(), mint: mint.toBytes() };
}

/** The settler's payout: the treasury owner pays the fee and signs everything; the relay signs nothing. */
function payoutTx(amount: bigint, paid: bigint, root: string): { wire: string; id: string } {
  const tx = new Transaction({ feePayer: treasury.publicKey, blockhash: Keypair.generate().publicKey.toBase58(), lastValidBlockHeight: 1_000 });
  tx.add(
    createTransferCheckedInstruction(
      treasuryAccount,
      mint,
      getAssociatedTokenAddressSync(mint, relay.publicKey),
      treasury.publicKey,
      amount,
      6,
      [],
      TOKEN_PROGRAM_ID,
    ),
    new TransactionInstruction({ programId: MEMO, keys: [], data: Buffer.from(formatPayoutMemo({ relay: relayId, cumulativePaid: paid, merkleRoot: root })) }),
  );
  tx.sign(treasury);
  return { wire: toBase64(new Uint8Array(tx.serialize())), id: encodeBase58(tx.signature as Buffer) };
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

  /** A scripted settler: `answer` builds each redeem answer from the parsed request; bodies past the settler's limit get its 413. */
  async function settler(answer: (items: { grant: string; receipt: string; assignment?: string }[]) => unknown, payerId: string): Promise<string> {
    server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        if (Buffer.concat(parts).byteLength > SETTLER_MAX_BODY_BYTES) {
          res.writeHead(413, { 'content-type': 'application/json' });
          return void res.end(JSON.stringify({ error: { code: ErrorCode.MESSAGE_TOO_LARGE, message: 'too large' } }));
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        if (req.url === SETTLER_PATHS.info)
          return void res.end(JSON.stringify({ payer: payerId, mint: mint.toBase58(), decimals: 6, treasuryTokenAccount: treasuryAccount.toBase58() }));
        res.end(JSON.stringify(answer((JSON.parse(Buffer.concat(parts).toString()) as { items: { grant: string; receipt: string }[] }).items)));
      });
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** An RPC that lands whatever is sent and finds it by id. */
  function chain(): { connection: Connection; sent: Uint8Array[]; balance: { v: bigint } } {
    const sent: Uint8Array[] = [];
    const landed = new Set<string>();
    const balance = { v: 0n };
    const connection = {
      sendRawTransaction: (wire: Uint8Array) => {
        sent.push(wire);
        const tx = Transaction.from(wire);
        const id = encodeBase58(tx.signature as Buffer);
        if (!landed.has(id)) {
          landed.add(id);
          const data = tx.instructions[0]!.data;
          balance.v += data.readBigUInt64LE(1);
        }
        return Promise.resolve(id);
      },
      getSignatureStatuses: (ids: string[]) =>
        Promise.resolve({ value: ids.map((id) => (landed.has(id) ? { err: null, confirmationStatus: 'confirmed' } : null)) }),
      getBlockHeight: () => Promise.resolve(10),
      getTokenAccountBalance: () => Promise.resolve({ value: { amount: String(balance.v) } }),
    } as unknown as Connection;
    return { connection, sent, balance };
  }

  function storeReceipt(session: TestSession, bytes: number): bigint {
    const g = session.signedGrant();
    store.putGrant(decodeSignedGrant(g), session.payer.id, g, new Uint8Array(169).fill(1));
    const r = session.signedReceipt(relay.publicKey.toBytes(), bytes);
    store.putReceipt(decodeSignedReceipt(r).receipt, session.payer.id, r);
    return decodeSignedReceipt(r).receipt.cumulativeAmount;
  }

  it(
    'refuses a payout that pays more than the settler credits (nothing recorded or sent), then records and submits the settler’s own bytes, signing nothing',
    { timeout: 30_000 },
    async () => {
      const payer = treasuryPayer();
      store = ReceiptStore.open({ path: join(dir, 'r.sqlite'), relayId }, relay.publicKey.toBytes());
      const owed = storeReceipt(new TestSession(payer), 2 ** 30);
      let offer = owed + 1n;
      const root = 'ab'.repeat(32);
      let lastTx = '';
      const assignments: (string | undefined)[] = [];
      const url = await settler((items) => {
        assignments.push(...items.map((i) => i.assignment));
        const p = payoutTx(offer, offer, root);
        lastTx = p.wire;
        return {
          status: 'payout',
          transaction: p.wire,
          signature: p.id,
          amount: String(offer),
          cumulativePaid: String(offer),
          merkleRoot: root,
          lastValidBlockHeight: 1_000,
          credited: items.map((_, index) => ({ index, credited: owed.toString() })),
        };
      }, payer.id);
      const { connection, sent } = chain();
      const redeemer = new Redeemer({ store, signer, payers: new Map([[payer.id, url]]), connection, retryMinMs: 10 });

      const refused = await redeemer.redeem(AbortSignal.timeout(10_000));
      expect(refused.payers[0]?.error?.code).toBe(ErrorCode.PAYOUT_MISMATCH);
      expect(refused.amount).toBe('0');
      expect(sent).toEqual([]);
      expect(store.pendingPayouts(payer.id)).toEqual([]);
      // The credit was recorded even though the payout was refused, and the assignment stored with the grant travelled with the item.
      expect(store.credited(payer.id)).toBe(owed);
      expect(assignments).toEqual([toBase64(new Uint8Array(169).fill(1))]);

      offer = owed;
      const paid = await redeemer.redeem(AbortSignal.timeout(10_000));
      expect(paid.payers[0]?.error).toBeUndefined();
      expect(paid.amount).toBe(owed.toString());
      expect(paid.payers[0]?.balance).toBe(owed.toString());
      expect(store.paidToDate(payer.id)).toBe(owed);
      // What was sent is exactly the settler's transaction; its id is the treasury's fee-payer signature.
      expect(toBase64(sent[0] as Uint8Array)).toBe(lastTx);
      const tx = Transaction.from(sent[0] as Uint8Array);
      expect(tx.signatures.map((x) => x.publicKey.toBase58())).toEqual([treasury.publicKey.toBase58()]);
      expect(paid.payers[0]?.payouts).toEqual([{ signature: encodeBase58(tx.signature as Buffer), amount: owed.toString() }]);
    },
  );

  it(
    'finding 2: paid what the settler credits when another relay spent the grant first; the shortfall is recorded with its reason; later receipts are still paid',
    { timeout: 30_000 },
    async () => {
      const payer = treasuryPayer();
      store = ReceiptStore.open({ path: join(dir, 'r2.sqlite'), relayId }, relay.publicKey.toBytes());
      const shared = new TestSession(payer);
      const full = storeReceipt(shared, 2 ** 30);
      // Another relay redeemed 3/4 of this grant's budget first: the settler credits the rest.
      const credit = full / 4n;
      let paidSoFar = 0n;
      const credits = new Map<string, { credited: bigint; shortfall?: { code: string; amount: bigint } }>();
      credits.set(toBase64(shared.signedGrant()), { credited: credit, shortfall: { code: ErrorCode.GRANT_BUDGET_SPENT, amount: full - credit } });
      const url = await settler((items) => {
        const credited = items.map((it, index) => {
          const c = credits.get(it.grant) ?? { credited: decodeSignedReceipt(fromBase64(it.receipt) as Uint8Array).receipt.cumulativeAmount };
          return {
            index,
            credited: c.credited.toString(),
            ...(c.shortfall === undefined ? {} : { shortfall: { code: c.shortfall.code, amount: c.shortfall.amount.toString() } }),
          };
        });
        let total = 0n;
        for (const c of credits.values()) total += c.credited;
        for (const it of items)
          if (!credits.has(it.grant)) credits.set(it.grant, { credited: decodeSignedReceipt(fromBase64(it.receipt) as Uint8Array).receipt.cumulativeAmount });
        total = [...credits.values()].reduce((a, c) => a + c.credited, 0n);
        const owed = total - paidSoFar;
        if (owed === 0n) return { status: 'nothing-owed', cumulativePaid: paidSoFar.toString(), credited };
        const p = payoutTx(owed, paidSoFar + owed, 'cd'.repeat(32));
        paidSoFar += owed;
        return {
          status: 'payout',
          transaction: p.wire,
          signature: p.id,
          amount: owed.toString(),
          cumulativePaid: paidSoFar.toString(),
          merkleRoot: 'cd'.repeat(32),
          lastValidBlockHeight: 1_000,
          credited,
        };
      }, payer.id);
      const { connection, balance } = chain();
      const redeemer = new Redeemer({ store, signer, payers: new Map([[payer.id, url]]), connection, retryMinMs: 10 });

      const first = await redeemer.redeem(AbortSignal.timeout(10_000));
      expect(first.payers[0]?.error).toBeUndefined();
      expect(first.amount).toBe(credit.toString());
      expect(first.payers[0]?.shortfall).toEqual({ [ErrorCode.GRANT_BUDGET_SPENT]: (full - credit).toString() });
      expect(store.totals(payer.id)).toMatchObject({
        receipted: full,
        earned: credit,
        shortfall: full - credit,
        paid: credit,
        shortfallByCode: { [ErrorCode.GRANT_BUDGET_SPENT]: full - credit },
      });
      // The shortfall is not owed: nothing to redeem until a new receipt comes.
      expect(redeemer.owed().total).toBe(0n);

      // A later session's receipt is paid in full: no freeze.
      const later = storeReceipt(new TestSession(payer), 2 ** 29);
      expect(redeemer.owed().total).toBe(later);
      const second = await redeemer.redeem(AbortSignal.timeout(10_000));
      expect(second.payers[0]?.error).toBeUndefined();
      expect(second.amount).toBe(later.toString());
      expect(balance.v).toBe(credit + later);
      expect(store.paidToDate(payer.id)).toBe(credit + later);
    },
  );

  it(
    'a long HD viewer: a receipt the settler finds implausible for the grant’s age is paid in part, sent again after the retry time, and paid the rest once plausible',
    { timeout: 30_000 },
    async () => {
      const payer = treasuryPayer();
      store = ReceiptStore.open({ path: join(dir, 'r3.sqlite'), relayId }, relay.publicKey.toBytes());
      const full = storeReceipt(new TestSession(payer), 2 ** 30);
      let plausible = full / 3n;
      let paidSoFar = 0n;
      const sentItems: number[] = [];
      const url = await settler((items) => {
        sentItems.push(items.length);
        const credited = items.map((_, index) => ({
          index,
          credited: (plausible < full ? plausible : full).toString(),
          ...(plausible < full ? { shortfall: { code: ErrorCode.RECEIPT_IMPLAUSIBLE, amount: (full - plausible).toString() } } : {}),
        }));
        const total = plausible < full ? plausible : full;
        if (total === paidSoFar) return { status: 'nothing-owed', cumulativePaid: paidSoFar.toString(), credited };
        const owed = total - paidSoFar;
        const p = payoutTx(owed, total, 'ef'.repeat(32));
        paidSoFar = total;
        return {
          status: 'payout',
          transaction: p.wire,
          signature: p.id,
          amount: owed.toString(),
          cumulativePaid: total.toString(),
          merkleRoot: 'ef'.repeat(32),
          lastValidBlockHeight: 1_000,
          credited,
        };
      }, payer.id);
      const { connection, balance } = chain();
      let now = 1_000_000;
      const redeemer = new Redeemer({
        store,
        signer,
        payers: new Map([[payer.id, url]]),
        connection,
        retryMinMs: 10,
        implausibleRetryMs: 60_000,
        now: () => now,
      });

      const first = await redeemer.redeem(AbortSignal.timeout(10_000));
      expect(first.payers[0]?.error).toBeUndefined();
      expect(first.amount).toBe((full / 3n).toString());
      expect(first.payers[0]?.shortfall).toEqual({ [ErrorCode.RECEIPT_IMPLAUSIBLE]: (full - full / 3n).toString() });
      // Not due yet: nothing to redeem, and a redemption now does not send it again.
      expect(redeemer.owed().total).toBe(0n);
      sentItems.length = 0;
      await redeemer.redeem(AbortSignal.timeout(10_000));
      expect(sentItems).toEqual([0]);
      // Later the grant is old enough for all of it: the receipt is due again and paid the rest.
      now += 60_000;
      plausible = full;
      expect(redeemer.owed().total).toBe(full - full / 3n);
      const later = await redeemer.redeem(AbortSignal.timeout(10_000));
      expect(later.payers[0]?.error).toBeUndefined();
      expect(later.amount).toBe((full - full / 3n).toString());
      expect(balance.v).toBe(full);
      expect(store.totals(payer.id)).toMatchObject({ earned: full, paid: full, shortfall: 0n });
    },
  );

  it(
    'redeems more sessions than one request body holds: each request carries what fits, the next ones the rest, and all are paid',
    { timeout: 60_000 },
    async () => {
      const payer = treasuryPayer();
      store = ReceiptStore.open({ path: join(dir, 'r4.sqlite'), relayId }, relay.publicKey.toBytes());
      const sessions = 700;
      let total = 0n;
      for (let i = 0; i < sessions; i++) total += storeReceipt(new TestSession(payer), 2 ** 20);
      const sizes: number[] = [];
      const seen = new Set<string>();
      let credited = 0n;
      let paidSoFar = 0n;
      const root = '12'.repeat(32);
      const url = await settler((items) => {
        sizes.push(items.length);
        const amounts = items.map((it) => decodeSignedReceipt(fromBase64(it.receipt) as Uint8Array).receipt.cumulativeAmount);
        items.forEach((it, i) => {
          if (!seen.has(it.receipt)) credited += amounts[i]!;
          seen.add(it.receipt);
        });
        const answer = items.map((_, index) => ({ index, credited: amounts[index]!.toString() }));
        const owed = credited - paidSoFar;
        if (owed === 0n) return { status: 'nothing-owed', cumulativePaid: paidSoFar.toString(), credited: answer };
        const p = payoutTx(owed, paidSoFar + owed, root);
        paidSoFar += owed;
        return {
          status: 'payout',
          transaction: p.wire,
          signature: p.id,
          amount: owed.toString(),
          cumulativePaid: paidSoFar.toString(),
          merkleRoot: root,
          lastValidBlockHeight: 1_000,
          credited: answer,
        };
      }, payer.id);
      const { connection, balance } = chain();
      const redeemer = new Redeemer({ store, signer, payers: new Map([[payer.id, url]]), connection, retryMinMs: 10 });

      const result = await redeemer.redeem(AbortSignal.timeout(50_000));
      expect(result.payers[0]?.error).toBeUndefined();
      // One body holds about 300 such items: several requests, every session sent once.
      expect(sizes.length).toBeGreaterThan(1);
      expect(sizes.reduce((a, b) => a + b, 0)).toBe(sessions);
      expect(seen.size).toBe(sessions);
      expect(balance.v).toBe(total);
      expect(store.paidToDate(payer.id)).toBe(total);
    },
  );
});
