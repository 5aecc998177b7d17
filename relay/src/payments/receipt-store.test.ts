import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, decodeSignedGrant, decodeSignedReceipt, encodeBase58 } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReceiptStore } from './receipt-store.js';
import { TestSession, testPayer } from './payment-test-kit.js';

const relayKey = new Uint8Array(randomBytes(32));
const relayId = encodeBase58(relayKey);

describe('ReceiptStore', () => {
  let dir: string;
  const open: ReceiptStore[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-receipts-'));
  });
  afterEach(async () => {
    for (const s of open.splice(0)) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  const openStore = (path = join(dir, 'db', 'receipts.sqlite'), maxPageCount?: number): ReceiptStore => {
    const s = ReceiptStore.open({ path, relayId, maxPageCount }, relayKey);
    open.push(s);
    return s;
  };

  function store(s: ReceiptStore, session: TestSession, bytes: number): { stored: boolean; encoded: Uint8Array } {
    const encoded = session.signedReceipt(relayKey, bytes);
    const sr = decodeSignedReceipt(encoded);
    return { stored: s.putReceipt(sr.receipt, session.payer.id, encoded), encoded };
  }

  it('runs in WAL mode with synchronous=FULL', () => {
    expect(openStore().pragmas()).toEqual({ journalMode: 'wal', synchronous: 2 });
  });

  it('keeps only the newest receipt per session, and it survives reopening', () => {
    const path = join(dir, 'receipts.sqlite');
    const s = openStore(path);
    const payer = testPayer();
    const a = new TestSession(payer);
    const b = new TestSession(payer);
    const ga = a.signedGrant();
    s.putGrant(decodeSignedGrant(ga), payer.id, ga);
    store(s, a, 1_000);
    const newest = store(s, a, 5_000);
    store(s, b, 7_000);
    // An older sequence arriving late never replaces the newer one.
    const older = decodeSignedReceipt(a.signedReceipt(relayKey, 9_000, { sequence: 1 }));
    expect(s.putReceipt(older.receipt, payer.id, a.signedReceipt(relayKey, 9_000, { sequence: 1 }))).toBe(false);
    s.close();

    const again = openStore(path);
    const got = again.newest(a.grant.sessionKey);
    expect(got?.receipt.cumulativeBytes).toBe(5_000);
    expect(Buffer.from(got?.signed ?? []).equals(Buffer.from(newest.encoded))).toBe(true);
    expect(got?.receipt).toEqual(decodeSignedReceipt(newest.encoded).receipt);
    expect(again.grant(a.grant.nonce)).toEqual(ga);
    const totals = again.totals(payer.id);
    expect(totals.receipts).toBe(2);
    expect(totals.earned).toBe(decodeSignedReceipt(newest.encoded).receipt.cumulativeAmount + (again.newest(b.grant.sessionKey)?.receipt.cumulativeAmount ?? -1n));
  });

  it('reports unacknowledged receipts, remembers acknowledgements and refusals, and counts only confirmed payouts as paid', () => {
    const s = openStore();
    const payer = testPayer();
    const a = new TestSession(payer);
    const b = new TestSession(payer);
    for (const t of [a, b]) {
      const g = t.signedGrant();
      s.putGrant(decodeSignedGrant(g), payer.id, g);
    }
    store(s, a, 2 ** 30);
    store(s, b, 2 ** 29);
    const items = s.receiptsToReport(payer.id, 10);
    expect(items).toHaveLength(2);
    const [ia, ib] = items[0]?.sessionKey.every((x, i) => x === a.grant.sessionKey[i]) ? items : [items[1], items[0]];
    s.markReported([ia!], [{ item: ib!, code: ErrorCode.RECEIPT_OVER_BUDGET }]);
    expect(s.receiptsToReport(payer.id, 10)).toEqual([]);
    expect(s.acknowledged(payer.id)).toBe(ia!.amount);
    // A newer receipt of the refused session is reported again.
    store(s, b, 2 ** 30);
    expect(s.receiptsToReport(payer.id, 10).map((i) => i.sequence)).toEqual([b.sequence]);

    const tx = new Uint8Array([1, 2, 3]);
    s.recordPayout({ signature: 'sig1', payer: payer.id, amount: 400n, cumulativePaid: 400n, transaction: tx, lastValidBlockHeight: 99 });
    s.recordPayout({ signature: 'sig1', payer: payer.id, amount: 400n, cumulativePaid: 400n, transaction: tx, lastValidBlockHeight: 99 });
    expect(s.pendingPayouts(payer.id).map((p) => p.signature)).toEqual(['sig1']);
    expect(s.paidToDate(payer.id)).toBe(0n);
    s.settlePayout('sig1', 'confirmed');
    s.settlePayout('sig1', 'expired'); // a settled payout never changes state again
    expect(s.payout('sig1')?.status).toBe('confirmed');
    expect(s.paidToDate(payer.id)).toBe(400n);
    expect(s.payers()).toEqual([payer.id]);
  });

  it('fails with RC_ERR_RECEIPT_STORE when the file is full and keeps every receipt stored before', () => {
    const path = join(dir, 'full.sqlite');
    const s = openStore(path);
    const payer = testPayer();
    const first = new TestSession(payer);
    store(s, first, 1_000);
    const pages = Number((s as unknown as { db: { pragma(q: string, o: object): unknown } }).db.pragma('page_count', { simple: true }));
    s.close();
    const full = openStore(path, pages);
    let failure: unknown;
    for (let i = 0; i < 200 && failure === undefined; i++) {
      try {
        store(full, new TestSession(payer), 1_000 + i);
      } catch (err) {
        failure = err;
      }
    }
    expect(failure).toMatchObject({ code: ErrorCode.RECEIPT_STORE });
    expect(full.newest(first.grant.sessionKey)?.receipt.cumulativeBytes).toBe(1_000);
    full.close();
    expect(openStore(path).newest(first.grant.sessionKey)?.receipt.cumulativeBytes).toBe(1_000);
  });
});
