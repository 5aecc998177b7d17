import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import Database from 'better-sqlite3';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, decodeSignedGrant, decodeSignedReceipt, encodeBase58 } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ReceiptStore } from './receipt-store.js';
import { TestSession, testPayer, testTracker } from '../testing/payments.js';

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

  it('runs in WAL mode with synchronous=FULL, at schema 1, in a file only its user may read (0600, the WAL too)', async () => {
    const s = openStore();
    expect(s.pragmas()).toEqual({ journalMode: 'wal', synchronous: 2, userVersion: 1 });
    const session = new TestSession(testPayer());
    store(s, session, 10);
    for (const f of ['receipts.sqlite', 'receipts.sqlite-wal']) expect((await stat(join(dir, 'db', f))).mode & 0o777, f).toBe(0o600);
  });

  it('migrates a schema-0 file: receipts keep their acknowledged amount as credited, grants gain an assignment column', () => {
    const path = join(dir, 'old.sqlite');
    const db = new Database(path);
    db.exec(`
      CREATE TABLE grants (nonce BLOB PRIMARY KEY, session_key BLOB NOT NULL, payer TEXT NOT NULL, signed BLOB NOT NULL);
      CREATE TABLE receipts (relay TEXT NOT NULL, session_key BLOB NOT NULL, grant_nonce BLOB NOT NULL, payer TEXT NOT NULL, sequence INTEGER NOT NULL,
        cumulative_bytes INTEGER NOT NULL, cumulative_amount TEXT NOT NULL, timestamp_ms INTEGER NOT NULL, signed BLOB NOT NULL,
        acked_sequence INTEGER, acked_amount TEXT NOT NULL DEFAULT '0', rejected_sequence INTEGER, rejected_code TEXT, PRIMARY KEY (relay, session_key));
      CREATE INDEX receipts_by_payer ON receipts (relay, payer);
      CREATE TABLE payouts (signature TEXT PRIMARY KEY, relay TEXT NOT NULL, payer TEXT NOT NULL, amount TEXT NOT NULL, cumulative_paid TEXT NOT NULL,
        tx BLOB NOT NULL, last_valid_block_height INTEGER NOT NULL, status TEXT NOT NULL, created_at_ms INTEGER NOT NULL, settled_at_ms INTEGER);
    `);
    const session = new TestSession(testPayer());
    const r = decodeSignedReceipt(session.signedReceipt(relayKey, 2 ** 30)).receipt;
    db.prepare(`INSERT INTO receipts VALUES (?, ?, ?, ?, 1, ?, ?, 0, ?, 1, ?, NULL, NULL)`).run(
      relayId,
      Buffer.from(r.sessionKey),
      Buffer.from(r.grantNonce),
      session.payer.id,
      r.cumulativeBytes,
      r.cumulativeAmount.toString(),
      Buffer.alloc(184),
      r.cumulativeAmount.toString(),
    );
    db.close();
    const s = openStore(path);
    expect(s.pragmas().userVersion).toBe(1);
    expect(s.totals(session.payer.id)).toMatchObject({ receipts: 1, receipted: r.cumulativeAmount, earned: r.cumulativeAmount, shortfall: 0n });
    expect(s.newest(r.sessionKey, r.grantNonce)?.receipt.cumulativeBytes).toBe(2 ** 30);
    s.close();
    expect(openStore(path).pragmas().userVersion).toBe(1);
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
    expect(totals.receipted).toBe(
      decodeSignedReceipt(newest.encoded).receipt.cumulativeAmount + (again.newest(b.grant.sessionKey)?.receipt.cumulativeAmount ?? -1n),
    );
    // Earned is what the settler credits: nothing before it answered.
    expect(totals.earned).toBe(0n);
  });

  it('keeps receipts of two grants of one session key apart (a renewed grant never hides what the first earned)', () => {
    const s = openStore();
    const payer = testPayer();
    const a = new TestSession(payer);
    const renewed = Object.assign(Object.create(TestSession.prototype) as TestSession, a, {
      grant: { ...a.grant, nonce: new Uint8Array(randomBytes(16)) },
      sequence: 0,
    });
    store(s, a, 5_000);
    store(s, renewed, 1_000);
    expect(s.newest(a.grant.sessionKey, a.grant.nonce)?.receipt.cumulativeBytes).toBe(5_000);
    expect(s.newest(a.grant.sessionKey, renewed.grant.nonce)?.receipt.cumulativeBytes).toBe(1_000);
    expect(s.totals(payer.id).receipts).toBe(2);
  });

  it('records what the settler credits per receipt and each shortfall with its reason; retries only implausible ones, and only after the retry time', () => {
    const s = openStore();
    const payer = testPayer();
    const sessions = [new TestSession(payer), new TestSession(payer), new TestSession(payer)];
    for (const t of sessions) {
      const g = t.signedGrant();
      s.putGrant(decodeSignedGrant(g), payer.id, g, t.assignment(testTracker(), relayKey));
      store(s, t, 2 ** 30);
    }
    const items = s.receiptsToReport(payer.id, 10);
    expect(items.map((i) => i.assignment?.byteLength)).toEqual([169, 169, 169]);
    const full = items[0]!.amount;
    const byKey = (t: TestSession) => items.find((i) => Buffer.from(i.sessionKey).equals(Buffer.from(t.grant.sessionKey)))!;
    const [ok, spent, fast] = sessions.map(byKey) as [(typeof items)[0], (typeof items)[0], (typeof items)[0]];
    s.markReported(
      [
        { item: ok, credit: { credited: full } },
        { item: spent, credit: { credited: full / 4n, shortfall: { code: ErrorCode.GRANT_BUDGET_SPENT, amount: full - full / 4n } } },
        { item: fast, credit: { credited: full / 2n, shortfall: { code: ErrorCode.RECEIPT_IMPLAUSIBLE, amount: full / 2n } } },
      ],
      [],
      1_000,
    );
    expect(s.totals(payer.id)).toMatchObject({
      receipted: 3n * full,
      earned: full + full / 4n + full / 2n,
      shortfall: 3n * full - (full + full / 4n + full / 2n),
      shortfallByCode: { [ErrorCode.GRANT_BUDGET_SPENT]: full - full / 4n, [ErrorCode.RECEIPT_IMPLAUSIBLE]: full / 2n },
    });
    expect(s.credited(payer.id)).toBe(full + full / 4n + full / 2n);
    // Nothing is due now; the implausible one is due again once the retry time passed.
    expect(s.receiptsToReport(payer.id, 10, 999)).toEqual([]);
    expect(s.redeemable(payer.id, 999)).toBe(full + full / 4n + full / 2n);
    expect(s.receiptsToReport(payer.id, 10, 1_000).map((i) => i.sequence)).toEqual([fast.sequence]);
    expect(s.redeemable(payer.id, 1_000)).toBe(2n * full + full / 4n);
    // Later credited in full: the shortfall is gone.
    s.markReported([{ item: fast, credit: { credited: full } }], [], 2_000);
    expect(s.totals(payer.id).shortfallByCode).toEqual({ [ErrorCode.GRANT_BUDGET_SPENT]: full - full / 4n });
    expect(s.receiptsToReport(payer.id, 10, 1_999)).toEqual([]);
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
    s.markReported([{ item: ia!, credit: { credited: ia!.amount } }], [{ item: ib!, code: ErrorCode.RECEIPT_OVER_BUDGET }]);
    expect(s.receiptsToReport(payer.id, 10)).toEqual([]);
    expect(s.credited(payer.id)).toBe(ia!.amount);
    expect(s.totals(payer.id).refusedByCode).toEqual({ [ErrorCode.RECEIPT_OVER_BUDGET]: 1 });
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
