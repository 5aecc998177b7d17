import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCode, RelaycastError, type Receipt, type SignedGrant } from '@relaycast/protocol';

/**
 * The relay's durable payment records in one SQLite file: every grant it accepted, the newest
 * receipt per (relay, session), what each payer's settlement service acknowledged, and every payout
 * transaction it co-signed. WAL with synchronous=FULL: a write that returned survives a crash or
 * power loss, which is why receipts are stored before they count.
 */
export interface ReceiptStoreOptions {
  /** Database file; its directory is created. Required. */
  path: string;
  /** Relay id (base58) whose receipts this store holds; every row is keyed by it. Required. */
  relayId: string;
  /** Test hook: SQLite `max_page_count`, to make the file "full". Default: none (SQLite's). */
  maxPageCount?: number | undefined;
}

/** The newest receipt of one session as stored. */
export interface StoredReceipt {
  sessionKey: Uint8Array;
  payer: string;
  receipt: Receipt;
  /** The signed receipt's encoding (what redemption sends). */
  signed: Uint8Array;
}

/** One receipt ready for `POST /v1/redeem`, with its grant. */
export interface ReportItem {
  sessionKey: Uint8Array;
  sequence: number;
  amount: bigint;
  signedGrant: Uint8Array;
  signedReceipt: Uint8Array;
}

export type PayoutStatus = 'pending' | 'confirmed' | 'expired' | 'failed';

export interface PayoutRecord {
  /** Transaction id (base58 of the relay's fee-payer signature). */
  signature: string;
  payer: string;
  amount: bigint;
  /** What the relay will have been paid by this payer in total once this lands (the memo's paid=). */
  cumulativePaid: bigint;
  /** The fully signed transaction, so a restart can resubmit exactly the same bytes. */
  transaction: Uint8Array;
  lastValidBlockHeight: number;
  status: PayoutStatus;
  createdAtMs: number;
}

export interface PayerTotals {
  payer: string;
  /** Sessions with a stored receipt. */
  receipts: number;
  /** Σ newest receipts' cumulativeAmount. */
  earned: bigint;
  /** Σ confirmed payouts. */
  paid: bigint;
  /** Σ pending payouts (submitted or about to be, not confirmed). */
  pending: bigint;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS grants (
  nonce BLOB PRIMARY KEY,
  session_key BLOB NOT NULL,
  payer TEXT NOT NULL,
  signed BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS receipts (
  relay TEXT NOT NULL,
  session_key BLOB NOT NULL,
  grant_nonce BLOB NOT NULL,
  payer TEXT NOT NULL,
  sequence INTEGER NOT NULL,
  cumulative_bytes INTEGER NOT NULL,
  cumulative_amount TEXT NOT NULL,
  timestamp_ms INTEGER NOT NULL,
  signed BLOB NOT NULL,
  acked_sequence INTEGER,
  acked_amount TEXT NOT NULL DEFAULT '0',
  rejected_sequence INTEGER,
  rejected_code TEXT,
  PRIMARY KEY (relay, session_key)
);
CREATE INDEX IF NOT EXISTS receipts_by_payer ON receipts (relay, payer);
CREATE TABLE IF NOT EXISTS payouts (
  signature TEXT PRIMARY KEY,
  relay TEXT NOT NULL,
  payer TEXT NOT NULL,
  amount TEXT NOT NULL,
  cumulative_paid TEXT NOT NULL,
  tx BLOB NOT NULL,
  last_valid_block_height INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'expired', 'failed')),
  created_at_ms INTEGER NOT NULL,
  settled_at_ms INTEGER
);
CREATE INDEX IF NOT EXISTS payouts_by_payer ON payouts (relay, payer, status);
`;

interface ReceiptRow {
  session_key: Buffer;
  grant_nonce: Buffer;
  payer: string;
  sequence: number;
  cumulative_bytes: number;
  cumulative_amount: string;
  timestamp_ms: number;
  signed: Buffer;
}

interface PayoutRow {
  signature: string;
  payer: string;
  amount: string;
  cumulative_paid: string;
  tx: Buffer;
  last_valid_block_height: number;
  status: PayoutStatus;
  created_at_ms: number;
}

function storeError(err: unknown, what: string): RelaycastError {
  if (err instanceof RelaycastError) return err;
  const code = (err as { code?: unknown }).code;
  return new RelaycastError(ErrorCode.RECEIPT_STORE, `${what}: ${(err as Error).message}`, {
    cause: err,
    details: typeof code === 'string' ? { sqlite: code } : undefined,
  });
}

const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));

function rowToStored(row: ReceiptRow, relay: Uint8Array): StoredReceipt {
  return {
    sessionKey: bytes(row.session_key),
    payer: row.payer,
    signed: bytes(row.signed),
    receipt: {
      version: 1,
      grantNonce: bytes(row.grant_nonce),
      sessionKey: bytes(row.session_key),
      relay,
      sequence: row.sequence,
      cumulativeBytes: row.cumulative_bytes,
      cumulativeAmount: BigInt(row.cumulative_amount),
      timestampMs: row.timestamp_ms,
    },
  };
}

function rowToPayout(r: PayoutRow): PayoutRecord {
  return {
    signature: r.signature,
    payer: r.payer,
    amount: BigInt(r.amount),
    cumulativePaid: BigInt(r.cumulative_paid),
    transaction: bytes(r.tx),
    lastValidBlockHeight: r.last_valid_block_height,
    status: r.status,
    createdAtMs: r.created_at_ms,
  };
}

/** Synchronous on purpose: better-sqlite3 commits before the call returns, so "stored" means on disk. */
export class ReceiptStore {
  private readonly db: Database.Database;
  private readonly relayId: string;
  private readonly relayKey: Uint8Array;
  private readonly stmts;

  private constructor(db: Database.Database, relayId: string, relayKey: Uint8Array) {
    this.db = db;
    this.relayId = relayId;
    this.relayKey = relayKey;
    this.stmts = {
      putGrant: db.prepare('INSERT OR IGNORE INTO grants (nonce, session_key, payer, signed) VALUES (?, ?, ?, ?)'),
      grant: db.prepare<[Buffer], { signed: Buffer }>('SELECT signed FROM grants WHERE nonce = ?'),
      newest: db.prepare<[string, Buffer], ReceiptRow>('SELECT * FROM receipts WHERE relay = ? AND session_key = ?'),
      // Newest wins even if two writers race: an older sequence never replaces a newer row.
      putReceipt: db.prepare(
        `INSERT INTO receipts (relay, session_key, grant_nonce, payer, sequence, cumulative_bytes, cumulative_amount, timestamp_ms, signed)
         VALUES (@relay, @sessionKey, @grantNonce, @payer, @sequence, @cumulativeBytes, @cumulativeAmount, @timestampMs, @signed)
         ON CONFLICT (relay, session_key) DO UPDATE SET
           grant_nonce = excluded.grant_nonce, payer = excluded.payer, sequence = excluded.sequence,
           cumulative_bytes = excluded.cumulative_bytes, cumulative_amount = excluded.cumulative_amount,
           timestamp_ms = excluded.timestamp_ms, signed = excluded.signed
         WHERE excluded.sequence > receipts.sequence`,
      ),
      toReport: db.prepare<[string, string, number], ReceiptRow & { grant_signed: Buffer }>(
        `SELECT r.*, g.signed AS grant_signed FROM receipts r JOIN grants g ON g.nonce = r.grant_nonce
         WHERE r.relay = ? AND r.payer = ?
           AND (r.acked_sequence IS NULL OR r.acked_sequence < r.sequence)
           AND (r.rejected_sequence IS NULL OR r.rejected_sequence < r.sequence)
         ORDER BY r.sequence LIMIT ?`,
      ),
      ack: db.prepare('UPDATE receipts SET acked_sequence = ?, acked_amount = ? WHERE relay = ? AND session_key = ? AND (acked_sequence IS NULL OR acked_sequence < ?)'),
      reject: db.prepare('UPDATE receipts SET rejected_sequence = ?, rejected_code = ? WHERE relay = ? AND session_key = ?'),
      amounts: db.prepare<[string, string], { cumulative_amount: string; acked_amount: string }>(
        'SELECT cumulative_amount, acked_amount FROM receipts WHERE relay = ? AND payer = ?',
      ),
      payers: db.prepare<[string, string], { payer: string }>('SELECT DISTINCT payer FROM receipts WHERE relay = ? UNION SELECT DISTINCT payer FROM payouts WHERE relay = ?'),
      payoutsOf: db.prepare<[string, string, string], { amount: string }>('SELECT amount FROM payouts WHERE relay = ? AND payer = ? AND status = ?'),
      putPayout: db.prepare(
        `INSERT OR IGNORE INTO payouts (signature, relay, payer, amount, cumulative_paid, tx, last_valid_block_height, status, created_at_ms)
         VALUES (@signature, @relay, @payer, @amount, @cumulativePaid, @tx, @lastValidBlockHeight, 'pending', @createdAtMs)`,
      ),
      pending: db.prepare<[string, string], PayoutRow>("SELECT * FROM payouts WHERE relay = ? AND payer = ? AND status = 'pending' ORDER BY created_at_ms"),
      payout: db.prepare<[string, string], PayoutRow>('SELECT * FROM payouts WHERE relay = ? AND signature = ?'),
      settle: db.prepare("UPDATE payouts SET status = ?, settled_at_ms = ? WHERE relay = ? AND signature = ? AND status = 'pending'"),
      count: db.prepare<[string, string], { n: number }>('SELECT COUNT(*) AS n FROM receipts WHERE relay = ? AND payer = ?'),
    };
  }

  /** Opens (creating when missing) the database at `options.path`. Throws RC_ERR_RECEIPT_STORE. */
  static open(options: ReceiptStoreOptions, relayKey: Uint8Array): ReceiptStore {
    let db: Database.Database | undefined;
    try {
      mkdirSync(dirname(options.path), { recursive: true });
      db = new Database(options.path);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new RelaycastError(ErrorCode.RECEIPT_STORE, `receipt store could not switch to WAL (journal_mode=${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      db.exec(SCHEMA);
      if (options.maxPageCount !== undefined) db.pragma(`max_page_count = ${Math.trunc(options.maxPageCount)}`);
      return new ReceiptStore(db, options.relayId, relayKey);
    } catch (err) {
      db?.close();
      throw storeError(err, `cannot open receipt store ${options.path}`);
    }
  }

  /** SQLite pragmas in force (journal_mode, synchronous), for tests and status. */
  pragmas(): { journalMode: string; synchronous: number } {
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.db.pragma('synchronous', { simple: true })),
    };
  }

  private run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeError(err, what);
    }
  }

  /** Keeps a grant the relay accepted (redemption sends it with its receipts). Idempotent. */
  putGrant(sg: SignedGrant, payer: string, encoded: Uint8Array): void {
    this.run('cannot store grant', () => this.stmts.putGrant.run(Buffer.from(sg.grant.nonce), Buffer.from(sg.grant.sessionKey), payer, Buffer.from(encoded)));
  }

  /** The signed grant with this nonce, if stored. */
  grant(nonce: Uint8Array): Uint8Array | undefined {
    const row = this.run('cannot read grant', () => this.stmts.grant.get(Buffer.from(nonce)));
    return row === undefined ? undefined : bytes(row.signed);
  }

  /** The newest stored receipt of a session. */
  newest(sessionKey: Uint8Array): StoredReceipt | undefined {
    const row = this.run('cannot read receipt', () => this.stmts.newest.get(this.relayId, Buffer.from(sessionKey)));
    return row === undefined ? undefined : rowToStored(row, this.relayKey);
  }

  /**
   * Stores `receipt` as the newest of its session when its sequence is higher than the stored one;
   * returns whether it was stored. Returns only once the write is durable. Throws RC_ERR_RECEIPT_STORE.
   */
  putReceipt(receipt: Receipt, payer: string, encoded: Uint8Array): boolean {
    const info = this.run('cannot store receipt', () =>
      this.stmts.putReceipt.run({
        relay: this.relayId,
        sessionKey: Buffer.from(receipt.sessionKey),
        grantNonce: Buffer.from(receipt.grantNonce),
        payer,
        sequence: receipt.sequence,
        cumulativeBytes: receipt.cumulativeBytes,
        cumulativeAmount: receipt.cumulativeAmount.toString(),
        timestampMs: receipt.timestampMs,
        signed: Buffer.from(encoded),
      }),
    );
    return info.changes > 0;
  }

  /** Receipts of `payer` whose newest version its settler has not acknowledged yet (nor refused), oldest first. */
  receiptsToReport(payer: string, limit: number): ReportItem[] {
    const rows = this.run('cannot read receipts', () => this.stmts.toReport.all(this.relayId, payer, limit));
    return rows.map((r) => ({
      sessionKey: bytes(r.session_key),
      sequence: r.sequence,
      amount: BigInt(r.cumulative_amount),
      signedGrant: bytes(r.grant_signed),
      signedReceipt: bytes(r.signed),
    }));
  }

  /** Records the settler's answer to a redeem request: accepted items are acknowledged at their sequence, refused ones remembered so they are not resent. */
  markReported(accepted: readonly ReportItem[], rejected: readonly { item: ReportItem; code: string }[]): void {
    this.run('cannot record redemption', () =>
      this.db.transaction(() => {
        for (const it of accepted) this.stmts.ack.run(it.sequence, it.amount.toString(), this.relayId, Buffer.from(it.sessionKey), it.sequence);
        for (const { item, code } of rejected) this.stmts.reject.run(item.sequence, code, this.relayId, Buffer.from(item.sessionKey));
      })(),
    );
  }

  /** Σ of what `payer`'s settler acknowledged (its view of the relay's receipts). */
  acknowledged(payer: string): bigint {
    let total = 0n;
    for (const r of this.run('cannot read receipts', () => this.stmts.amounts.all(this.relayId, payer))) total += BigInt(r.acked_amount);
    return total;
  }

  /** Payers the relay holds receipts or payouts of. */
  payers(): string[] {
    return this.run('cannot read payers', () => this.stmts.payers.all(this.relayId, this.relayId)).map((r) => r.payer);
  }

  private sumPayouts(payer: string, status: PayoutStatus): bigint {
    let total = 0n;
    for (const r of this.run('cannot read payouts', () => this.stmts.payoutsOf.all(this.relayId, payer, status))) total += BigInt(r.amount);
    return total;
  }

  /** What `payer` has paid this relay, counting confirmed payouts only. */
  paidToDate(payer: string): bigint {
    return this.sumPayouts(payer, 'confirmed');
  }

  totals(payer: string): PayerTotals {
    let earned = 0n;
    for (const r of this.run('cannot read receipts', () => this.stmts.amounts.all(this.relayId, payer))) earned += BigInt(r.cumulative_amount);
    const receipts = this.run('cannot read receipts', () => this.stmts.count.get(this.relayId, payer))?.n ?? 0;
    return { payer, receipts, earned, paid: this.paidToDate(payer), pending: this.sumPayouts(payer, 'pending') };
  }

  /** Records a payout before it is submitted. Idempotent on the signature (the same payout again changes nothing). */
  recordPayout(p: Omit<PayoutRecord, 'status' | 'createdAtMs'>): void {
    this.run('cannot record payout', () =>
      this.stmts.putPayout.run({
        signature: p.signature,
        relay: this.relayId,
        payer: p.payer,
        amount: p.amount.toString(),
        cumulativePaid: p.cumulativePaid.toString(),
        tx: Buffer.from(p.transaction),
        lastValidBlockHeight: p.lastValidBlockHeight,
        createdAtMs: Date.now(),
      }),
    );
  }

  payout(signature: string): PayoutRecord | undefined {
    const row = this.run('cannot read payout', () => this.stmts.payout.get(this.relayId, signature));
    return row === undefined ? undefined : rowToPayout(row);
  }

  pendingPayouts(payer: string): PayoutRecord[] {
    return this.run('cannot read payouts', () => this.stmts.pending.all(this.relayId, payer)).map(rowToPayout);
  }

  /** Moves a pending payout to its final state; paid-to-date moves only here, on 'confirmed'. */
  settlePayout(signature: string, status: Exclude<PayoutStatus, 'pending'>): void {
    this.run('cannot settle payout', () => this.stmts.settle.run(status, Date.now(), this.relayId, signature));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}
