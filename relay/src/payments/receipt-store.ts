import { closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCode, RelaycastError, type Receipt, type SignedGrant } from '@relaycast/protocol';

/**
 * The relay's durable payment records in one SQLite file (created 0600): every grant it accepted
 * with the tracker's assignment it was bound with, the newest receipt per (relay, session, grant),
 * what each payer's settlement service credits for it (and the shortfall with its reason), and
 * every payout transaction it was handed. WAL with synchronous=FULL: a write that returned survives
 * a crash or power loss, which is why receipts are stored before they count.
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

/** One receipt ready for `POST /v1/redeem`, with its grant and the assignment it was bound with. */
export interface ReportItem {
  sessionKey: Uint8Array;
  grantNonce: Uint8Array;
  sequence: number;
  amount: bigint;
  signedGrant: Uint8Array;
  signedReceipt: Uint8Array;
  /** The tracker's signed assignment (session → this relay); undefined for grants stored before assignments existed. */
  assignment: Uint8Array | undefined;
}

/** The settler's word on one reported item (docs/PAYMENTS.md "Credited amounts"). */
export interface ItemCredit {
  /** Cumulative base units the settler credits for this (relay, session, grant). */
  credited: bigint;
  /** receipt amount − credited, with the reason (RC_ERR_GRANT_BUDGET_SPENT, RC_ERR_RECEIPT_IMPLAUSIBLE, RC_ERR_REDEEM_WINDOW_CLOSED). */
  shortfall?: { code: string; amount: bigint } | undefined;
}

export type PayoutStatus = 'pending' | 'confirmed' | 'expired' | 'failed';

export interface PayoutRecord {
  /** Transaction id (base58 of the fee payer's signature: the payer's treasury owner). */
  signature: string;
  payer: string;
  amount: bigint;
  /** What the relay will have been paid by this payer in total once this lands (the memo's paid=). */
  cumulativePaid: bigint;
  /** The fully signed transaction (the relay signs nothing), so a restart can resubmit exactly the same bytes. */
  transaction: Uint8Array;
  lastValidBlockHeight: number;
  status: PayoutStatus;
  createdAtMs: number;
}

export interface PayerTotals {
  payer: string;
  /** (session, grant) pairs with a stored receipt. */
  receipts: number;
  /** Σ newest receipts' cumulativeAmount: what viewers signed for. */
  receipted: bigint;
  /** Σ what the settler credits (its last answer per item): what the relay is paid against. */
  earned: bigint;
  /** Σ shortfalls the settler reported (receipted amounts it does not credit), by reason code. */
  shortfall: bigint;
  shortfallByCode: Record<string, bigint>;
  /** Receipts the settler refused outright, by code. */
  refusedByCode: Record<string, number>;
  /** Σ confirmed payouts. */
  paid: bigint;
  /** Σ pending payouts (submitted or about to be, not confirmed). */
  pending: bigint;
}

/**
 * Schema version in `PRAGMA user_version`. 0: the first layout (receipts keyed by session only,
 * `acked_amount` = the receipt's own amount). 1: receipts keyed by (session, grant), the settler's
 * credited amount and shortfall per receipt, the assignment beside each grant.
 */
const SCHEMA_VERSION = 1;

const SCHEMA_V0 = `
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

/** v0 → v1. The old acknowledged amount is what the old settler credited (it capped nothing it acknowledged). */
const MIGRATE_V1 = `
ALTER TABLE grants ADD COLUMN assignment BLOB;
CREATE TABLE receipts_v1 (
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
  credited TEXT NOT NULL DEFAULT '0',
  shortfall TEXT NOT NULL DEFAULT '0',
  shortfall_code TEXT,
  rejected_sequence INTEGER,
  rejected_code TEXT,
  reported_at_ms INTEGER,
  PRIMARY KEY (relay, session_key, grant_nonce)
);
INSERT INTO receipts_v1 (relay, session_key, grant_nonce, payer, sequence, cumulative_bytes, cumulative_amount, timestamp_ms, signed, acked_sequence, credited, rejected_sequence, rejected_code)
  SELECT relay, session_key, grant_nonce, payer, sequence, cumulative_bytes, cumulative_amount, timestamp_ms, signed, acked_sequence, acked_amount, rejected_sequence, rejected_code FROM receipts;
DROP TABLE receipts;
ALTER TABLE receipts_v1 RENAME TO receipts;
CREATE INDEX receipts_by_payer ON receipts (relay, payer);
`;

/** Brings the file to SCHEMA_VERSION in one transaction; a file from a newer relay is refused. */
function migrate(db: Database.Database): void {
  db.transaction(() => {
    const version = Number(db.pragma('user_version', { simple: true }));
    if (version > SCHEMA_VERSION) {
      throw new RelaycastError(ErrorCode.RECEIPT_STORE, `receipt store schema ${version} is newer than this relay understands (${SCHEMA_VERSION})`);
    }
    if (version === SCHEMA_VERSION) return;
    db.exec(SCHEMA_V0);
    if (version < 1) db.exec(MIGRATE_V1);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

/** Creates the database file 0600 (SQLite gives its -wal and -shm files the same mode); an existing file is left as it is. */
function createPrivate(path: string): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    closeSync(openSync(path, 'wx', 0o600));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** Shortfalls the settler may re-evaluate: time makes an implausible receipt plausible. */
const RETRYABLE_SHORTFALL = ErrorCode.RECEIPT_IMPLAUSIBLE;

interface ReceiptRow {
  session_key: Buffer;
  credited: string;
  shortfall: string;
  shortfall_code: string | null;
  rejected_code: string | null;
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
    // A row is due for reporting when its newest receipt was neither answered nor refused, or
    // when its shortfall is one that time can cure and it was last reported long enough ago.
    const due = `((r.acked_sequence IS NULL OR r.acked_sequence < r.sequence) AND (r.rejected_sequence IS NULL OR r.rejected_sequence < r.sequence))
      OR (r.shortfall_code = '${RETRYABLE_SHORTFALL}' AND (r.reported_at_ms IS NULL OR r.reported_at_ms <= @retryBefore))`;
    this.stmts = {
      putGrant: db.prepare(
        `INSERT INTO grants (nonce, session_key, payer, signed, assignment) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (nonce) DO UPDATE SET assignment = COALESCE(excluded.assignment, grants.assignment)`,
      ),
      grant: db.prepare<[Buffer], { signed: Buffer }>('SELECT signed FROM grants WHERE nonce = ?'),
      assignment: db.prepare<[Buffer], { assignment: Buffer | null }>('SELECT assignment FROM grants WHERE nonce = ?'),
      newest: db.prepare<[string, Buffer, Buffer], ReceiptRow>('SELECT * FROM receipts WHERE relay = ? AND session_key = ? AND grant_nonce = ?'),
      newestOfSession: db.prepare<[string, Buffer], ReceiptRow>('SELECT * FROM receipts WHERE relay = ? AND session_key = ? ORDER BY sequence DESC LIMIT 1'),
      // Newest wins even if two writers race: an older sequence never replaces a newer row.
      putReceipt: db.prepare(
        `INSERT INTO receipts (relay, session_key, grant_nonce, payer, sequence, cumulative_bytes, cumulative_amount, timestamp_ms, signed)
         VALUES (@relay, @sessionKey, @grantNonce, @payer, @sequence, @cumulativeBytes, @cumulativeAmount, @timestampMs, @signed)
         ON CONFLICT (relay, session_key, grant_nonce) DO UPDATE SET
           payer = excluded.payer, sequence = excluded.sequence,
           cumulative_bytes = excluded.cumulative_bytes, cumulative_amount = excluded.cumulative_amount,
           timestamp_ms = excluded.timestamp_ms, signed = excluded.signed
         WHERE excluded.sequence > receipts.sequence`,
      ),
      toReport: db.prepare<
        [{ relay: string; payer: string; retryBefore: number; limit: number }],
        ReceiptRow & { grant_signed: Buffer; assignment: Buffer | null }
      >(
        `SELECT r.*, g.signed AS grant_signed, g.assignment AS assignment FROM receipts r JOIN grants g ON g.nonce = r.grant_nonce
         WHERE r.relay = @relay AND r.payer = @payer AND (${due})
         ORDER BY r.sequence LIMIT @limit`,
      ),
      dueAmounts: db.prepare<[{ relay: string; payer: string; retryBefore: number }], { cumulative_amount: string; credited: string }>(
        `SELECT r.cumulative_amount, r.credited FROM receipts r WHERE r.relay = @relay AND r.payer = @payer AND (${due})`,
      ),
      credit: db.prepare(
        `UPDATE receipts SET acked_sequence = MAX(COALESCE(acked_sequence, 0), @sequence), credited = @credited, shortfall = @shortfall,
           shortfall_code = @shortfallCode, reported_at_ms = @nowMs
         WHERE relay = @relay AND session_key = @sessionKey AND grant_nonce = @grantNonce`,
      ),
      reject: db.prepare(
        `UPDATE receipts SET rejected_sequence = @sequence, rejected_code = @code, reported_at_ms = @nowMs
         WHERE relay = @relay AND session_key = @sessionKey AND grant_nonce = @grantNonce`,
      ),
      rows: db.prepare<[string, string], Pick<ReceiptRow, 'cumulative_amount' | 'credited' | 'shortfall' | 'shortfall_code' | 'rejected_code'>>(
        'SELECT cumulative_amount, credited, shortfall, shortfall_code, rejected_code FROM receipts WHERE relay = ? AND payer = ?',
      ),
      payers: db.prepare<[string, string], { payer: string }>(
        'SELECT DISTINCT payer FROM receipts WHERE relay = ? UNION SELECT DISTINCT payer FROM payouts WHERE relay = ?',
      ),
      payoutsOf: db.prepare<[string, string, string], { amount: string }>('SELECT amount FROM payouts WHERE relay = ? AND payer = ? AND status = ?'),
      putPayout: db.prepare(
        `INSERT OR IGNORE INTO payouts (signature, relay, payer, amount, cumulative_paid, tx, last_valid_block_height, status, created_at_ms)
         VALUES (@signature, @relay, @payer, @amount, @cumulativePaid, @tx, @lastValidBlockHeight, 'pending', @createdAtMs)`,
      ),
      pending: db.prepare<[string, string], PayoutRow>("SELECT * FROM payouts WHERE relay = ? AND payer = ? AND status = 'pending' ORDER BY created_at_ms"),
      payout: db.prepare<[string, string], PayoutRow>('SELECT * FROM payouts WHERE relay = ? AND signature = ?'),
      settle: db.prepare("UPDATE payouts SET status = ?, settled_at_ms = ? WHERE relay = ? AND signature = ? AND status = 'pending'"),
    };
  }

  /** Opens (creating when missing, 0600) the database at `options.path`, migrating an older layout. Throws RC_ERR_RECEIPT_STORE. */
  static open(options: ReceiptStoreOptions, relayKey: Uint8Array): ReceiptStore {
    let db: Database.Database | undefined;
    try {
      createPrivate(options.path);
      db = new Database(options.path);
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new RelaycastError(ErrorCode.RECEIPT_STORE, `receipt store could not switch to WAL (journal_mode=${String(mode)})`);
      db.pragma('synchronous = FULL');
      db.pragma('busy_timeout = 5000');
      migrate(db);
      if (options.maxPageCount !== undefined) db.pragma(`max_page_count = ${Math.trunc(options.maxPageCount)}`);
      return new ReceiptStore(db, options.relayId, relayKey);
    } catch (err) {
      db?.close();
      throw storeError(err, `cannot open receipt store ${options.path}`);
    }
  }

  /** SQLite pragmas in force (journal_mode, synchronous), for tests and status. */
  pragmas(): { journalMode: string; synchronous: number; userVersion: number } {
    return {
      journalMode: String(this.db.pragma('journal_mode', { simple: true })),
      synchronous: Number(this.db.pragma('synchronous', { simple: true })),
      userVersion: Number(this.db.pragma('user_version', { simple: true })),
    };
  }

  private run<T>(what: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw storeError(err, what);
    }
  }

  /**
   * Keeps a grant the relay accepted and the tracker's assignment it was bound with (redemption
   * sends both with its receipts). Idempotent; a later assignment replaces an earlier one.
   */
  putGrant(sg: SignedGrant, payer: string, encoded: Uint8Array, assignment?: Uint8Array): void {
    this.run('cannot store grant', () =>
      this.stmts.putGrant.run(
        Buffer.from(sg.grant.nonce),
        Buffer.from(sg.grant.sessionKey),
        payer,
        Buffer.from(encoded),
        assignment === undefined ? null : Buffer.from(assignment),
      ),
    );
  }

  /** The signed grant with this nonce, if stored. */
  grant(nonce: Uint8Array): Uint8Array | undefined {
    const row = this.run('cannot read grant', () => this.stmts.grant.get(Buffer.from(nonce)));
    return row === undefined ? undefined : bytes(row.signed);
  }

  /** The signed assignment stored with the grant of this nonce, if any. */
  assignment(nonce: Uint8Array): Uint8Array | undefined {
    const row = this.run('cannot read grant', () => this.stmts.assignment.get(Buffer.from(nonce)));
    return row?.assignment == null ? undefined : bytes(row.assignment);
  }

  /** The newest stored receipt of a session under one grant (or, without `grantNonce`, under any grant). */
  newest(sessionKey: Uint8Array, grantNonce?: Uint8Array): StoredReceipt | undefined {
    const row = this.run('cannot read receipt', () =>
      grantNonce === undefined
        ? this.stmts.newestOfSession.get(this.relayId, Buffer.from(sessionKey))
        : this.stmts.newest.get(this.relayId, Buffer.from(sessionKey), Buffer.from(grantNonce)),
    );
    return row === undefined ? undefined : rowToStored(row, this.relayKey);
  }

  /**
   * Stores `receipt` as the newest of its (session, grant) when its sequence is higher than the
   * stored one; returns whether it was stored. Returns only once the write is durable. Throws
   * RC_ERR_RECEIPT_STORE.
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

  /**
   * Receipts of `payer` to send to its settler, oldest first: those whose newest version it has
   * neither answered nor refused, and those with an RC_ERR_RECEIPT_IMPLAUSIBLE shortfall last
   * reported at or before `retryBeforeMs` (the settler's plausibility bound grows with the grant's age).
   */
  receiptsToReport(payer: string, limit: number, retryBeforeMs = -1): ReportItem[] {
    const rows = this.run('cannot read receipts', () => this.stmts.toReport.all({ relay: this.relayId, payer, retryBefore: retryBeforeMs, limit }));
    return rows.map((r) => ({
      sessionKey: bytes(r.session_key),
      grantNonce: bytes(r.grant_nonce),
      sequence: r.sequence,
      amount: BigInt(r.cumulative_amount),
      signedGrant: bytes(r.grant_signed),
      signedReceipt: bytes(r.signed),
      assignment: r.assignment === null ? undefined : bytes(r.assignment),
    }));
  }

  /**
   * Records the settler's answer to a redeem request in one transaction: for each accepted item the
   * credited cumulative amount and the shortfall with its reason (what the relay accounts with from
   * now on), for each refused item its code (so it is not resent until a newer receipt comes).
   */
  markReported(
    credited: readonly { item: ReportItem; credit: ItemCredit }[],
    rejected: readonly { item: ReportItem; code: string }[],
    nowMs = Date.now(),
  ): void {
    this.run('cannot record redemption', () =>
      this.db.transaction(() => {
        for (const { item, credit } of credited) {
          this.stmts.credit.run({
            relay: this.relayId,
            sessionKey: Buffer.from(item.sessionKey),
            grantNonce: Buffer.from(item.grantNonce),
            sequence: item.sequence,
            credited: credit.credited.toString(),
            shortfall: (credit.shortfall?.amount ?? 0n).toString(),
            shortfallCode: credit.shortfall?.code ?? null,
            nowMs,
          });
        }
        for (const { item, code } of rejected) {
          this.stmts.reject.run({
            relay: this.relayId,
            sessionKey: Buffer.from(item.sessionKey),
            grantNonce: Buffer.from(item.grantNonce),
            sequence: item.sequence,
            code,
            nowMs,
          });
        }
      })(),
    );
  }

  /** Σ of what `payer`'s settler credits this relay (its last answer per receipt). */
  credited(payer: string): bigint {
    let total = 0n;
    for (const r of this.run('cannot read receipts', () => this.stmts.rows.all(this.relayId, payer))) total += BigInt(r.credited);
    return total;
  }

  /** @deprecated the settler's credited sum: use credited(). */
  acknowledged(payer: string): bigint {
    return this.credited(payer);
  }

  /**
   * What a redemption of `payer` could bring now: Σ credited − paid, plus what the receipts due for
   * reporting claim beyond their credit (an estimate: the settler decides). Drives auto-redeem.
   */
  redeemable(payer: string, retryBeforeMs = -1): bigint {
    let extra = 0n;
    for (const r of this.run('cannot read receipts', () => this.stmts.dueAmounts.all({ relay: this.relayId, payer, retryBefore: retryBeforeMs }))) {
      const more = BigInt(r.cumulative_amount) - BigInt(r.credited);
      if (more > 0n) extra += more;
    }
    const owed = this.credited(payer) - this.paidToDate(payer);
    return (owed > 0n ? owed : 0n) + extra;
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
    let receipted = 0n;
    let earned = 0n;
    let shortfall = 0n;
    const shortfallByCode: Record<string, bigint> = {};
    const refusedByCode: Record<string, number> = {};
    const rows = this.run('cannot read receipts', () => this.stmts.rows.all(this.relayId, payer));
    for (const r of rows) {
      receipted += BigInt(r.cumulative_amount);
      earned += BigInt(r.credited);
      const sf = BigInt(r.shortfall);
      if (sf > 0n && r.shortfall_code !== null) {
        shortfall += sf;
        shortfallByCode[r.shortfall_code] = (shortfallByCode[r.shortfall_code] ?? 0n) + sf;
      }
      if (r.rejected_code !== null) refusedByCode[r.rejected_code] = (refusedByCode[r.rejected_code] ?? 0) + 1;
    }
    return {
      payer,
      receipts: rows.length,
      receipted,
      earned,
      shortfall,
      shortfallByCode,
      refusedByCode,
      paid: this.paidToDate(payer),
      pending: this.sumPayouts(payer, 'pending'),
    };
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
