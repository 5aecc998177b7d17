import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/**
 * The settler's ledger in one SQLite file (WAL, synchronous=FULL: a write that returned survives a
 * crash or power loss). It holds the newest receipt per (relay, session, grant), what each grant
 * has credited across relays, every payout built (pending, confirmed or void, with the exact
 * transaction bytes), and paid-to-date per relay. Amounts are decimal TEXT: u64 does not fit
 * SQLite's signed INTEGER.
 */
export const LEDGER_SCHEMA_VERSION = 2;

const SCHEMA_V1 = `
CREATE TABLE grants (
  nonce BLOB PRIMARY KEY,
  session_key BLOB NOT NULL,
  budget TEXT NOT NULL,
  credited TEXT NOT NULL
);
CREATE TABLE receipts (
  relay TEXT NOT NULL,
  session_key BLOB NOT NULL,
  grant_nonce BLOB NOT NULL REFERENCES grants(nonce),
  sequence INTEGER NOT NULL,
  cumulative_bytes INTEGER NOT NULL,
  cumulative_amount TEXT NOT NULL,
  credited TEXT NOT NULL,
  signed BLOB NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (relay, session_key, grant_nonce)
);
CREATE INDEX receipts_by_grant ON receipts (grant_nonce);
CREATE TABLE relays (
  relay TEXT PRIMARY KEY,
  earned TEXT NOT NULL,
  paid TEXT NOT NULL
);
CREATE TABLE payouts (
  id TEXT PRIMARY KEY,
  relay TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'confirmed', 'void')),
  amount TEXT NOT NULL,
  cumulative_paid TEXT NOT NULL,
  merkle_root TEXT NOT NULL,
  relay_token_account TEXT NOT NULL,
  last_valid_block_height INTEGER NOT NULL,
  created_slot INTEGER NOT NULL,
  tx BLOB NOT NULL,
  created_at_ms INTEGER NOT NULL,
  landed_signature TEXT,
  resolved_at_ms INTEGER
);
-- One outstanding payout per relay, enforced by SQLite itself (two settler processes on one file included).
CREATE UNIQUE INDEX one_pending_payout_per_relay ON payouts (relay) WHERE status = 'pending';
`;

/** v2: every grant issued, for per-user budgets and one live grant per session key. */
const SCHEMA_V2 = `
CREATE TABLE issued_grants (
  nonce BLOB PRIMARY KEY,
  session_key BLOB NOT NULL,
  user_tag TEXT NOT NULL,
  budget TEXT NOT NULL,
  issued_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL
);
CREATE INDEX issued_by_user ON issued_grants (user_tag, issued_at_ms);
CREATE INDEX issued_by_session ON issued_grants (session_key, expires_at_ms);
`;

/** A grant about to be issued, as the budget check sees it. */
export interface IssuedGrant {
  nonce: Uint8Array;
  sessionKey: Uint8Array;
  /** Hex of the grant's 16-byte user tag: per-user budgets count by it. */
  userTag: string;
  budget: bigint;
  issuedAtMs: number;
  expiresAtMs: number;
}

/** What one receipt's (re)evaluation credited. */
export interface CreditOutcome {
  /** Cumulative credit of this (relay, session, grant) after the call. */
  credited: bigint;
  /** What the grant had credited to its other relays' receipts (the cap's share already taken). */
  others: bigint;
}

export type PayoutStatus = 'pending' | 'confirmed' | 'void';

export interface PayoutRecord {
  /** The treasury owner's signature (base58): the transaction id, the treasury owner being the fee payer. */
  id: string;
  relay: string;
  status: PayoutStatus;
  amount: bigint;
  /** The relay's paid-to-date once this lands (the memo's paid=). */
  cumulativePaid: bigint;
  merkleRoot: string;
  /** The relay's associated token account (base58) the payout credits. */
  relayTokenAccount: string;
  lastValidBlockHeight: number;
  /** Slot of the blockhash: the payout cannot have landed before it. */
  createdSlot: number;
  /** The transaction as returned to the relay: legacy wire format, fully signed by the treasury owner (fee payer). */
  transaction: Uint8Array;
  createdAtMs: number;
  /** Transaction id once found on chain. */
  landedSignature: string | null;
}

export interface StoredReceipt {
  sequence: number;
  cumulativeBytes: number;
  cumulativeAmount: bigint;
  credited: bigint;
  signed: Uint8Array;
}

export interface RelayTotals {
  /** Σ credited over the relay's newest receipts (each grant's total across relays capped at its budget). */
  earned: bigint;
  paid: bigint;
}

interface PayoutRow {
  id: string;
  relay: string;
  status: PayoutStatus;
  amount: string;
  cumulative_paid: string;
  merkle_root: string;
  relay_token_account: string;
  last_valid_block_height: number;
  created_slot: number;
  tx: Buffer;
  created_at_ms: number;
  landed_signature: string | null;
}

function toPayout(r: PayoutRow): PayoutRecord {
  return {
    id: r.id,
    relay: r.relay,
    status: r.status,
    amount: BigInt(r.amount),
    cumulativePaid: BigInt(r.cumulative_paid),
    merkleRoot: r.merkle_root,
    relayTokenAccount: r.relay_token_account,
    lastValidBlockHeight: r.last_valid_block_height,
    createdSlot: r.created_slot,
    transaction: new Uint8Array(r.tx),
    createdAtMs: r.created_at_ms,
    landedSignature: r.landed_signature,
  };
}

const max = (a: bigint, b: bigint): bigint => (a > b ? a : b);
const min = (a: bigint, b: bigint): bigint => (a < b ? a : b);

export class SettlementLedger {
  readonly #db: Database.Database;

  private constructor(db: Database.Database) {
    this.#db = db;
  }

  /** Opens (creating when new) the ledger; RC_ERR_CONFIG_INVALID for a file of an unknown schema version. */
  static open(path: string): SettlementLedger {
    let db: Database.Database;
    try {
      if (path !== ':memory:') {
        mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
        // Created 0600 before SQLite opens it: SQLite gives -wal and -shm the database file's mode.
        if (!existsSync(path)) closeSync(openSync(path, 'a', 0o600));
        for (const f of [path, `${path}-wal`, `${path}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
      }
      db = new Database(path);
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = FULL');
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
    } catch (err) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `cannot open the settler ledger ${path}`, { cause: err, details: { path } });
    }
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version === 0 || version === 1) {
      db.transaction(() => {
        if (version === 0) db.exec(SCHEMA_V1);
        db.exec(SCHEMA_V2);
        db.pragma(`user_version = ${LEDGER_SCHEMA_VERSION}`);
      }).immediate();
    } else if (version !== LEDGER_SCHEMA_VERSION) {
      db.close();
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, `settler ledger ${path} has schema version ${version}; this settler knows ${LEDGER_SCHEMA_VERSION}`, {
        details: { path, version },
      });
    }
    return new SettlementLedger(db);
  }

  close(): void {
    if (this.#db.open) this.#db.close();
  }

  /** Runs `fn` in one write transaction (taken at the start, so concurrent writers queue instead of conflicting). */
  transaction<T>(fn: () => T): T {
    return this.#db.transaction(fn).immediate();
  }

  newestReceipt(relay: string, sessionKey: Uint8Array, grantNonce: Uint8Array): StoredReceipt | undefined {
    const r = this.#db
      .prepare('SELECT sequence, cumulative_bytes, cumulative_amount, credited, signed FROM receipts WHERE relay = ? AND session_key = ? AND grant_nonce = ?')
      .get(relay, sessionKey, grantNonce) as
      { sequence: number; cumulative_bytes: number; cumulative_amount: string; credited: string; signed: Buffer } | undefined;
    if (r === undefined) return undefined;
    return {
      sequence: r.sequence,
      cumulativeBytes: r.cumulative_bytes,
      cumulativeAmount: BigInt(r.cumulative_amount),
      credited: BigInt(r.credited),
      signed: new Uint8Array(r.signed),
    };
  }

  /**
   * Stores `signed` as the newest receipt of (relay, session, grant) and credits it: the grant's
   * total across relays never exceeds `cap` (its budget, or less while the plausibility bound is
   * lower; first redeemed, first credited), and what was credited once is never taken back. Called
   * again with the same receipt it re-evaluates (the cap grows with the grant's age). Call inside
   * `transaction`.
   */
  storeReceipt(
    relay: string,
    grant: { nonce: Uint8Array; sessionKey: Uint8Array; budget: bigint },
    receipt: { sequence: number; cumulativeBytes: number; cumulativeAmount: bigint; signed: Uint8Array },
    nowMs: number,
    cap: bigint = grant.budget,
  ): CreditOutcome {
    const db = this.#db;
    db.prepare('INSERT OR IGNORE INTO grants (nonce, session_key, budget, credited) VALUES (?, ?, ?, ?)').run(
      grant.nonce,
      grant.sessionKey,
      grant.budget.toString(),
      '0',
    );
    const grantCredited = BigInt((db.prepare('SELECT credited FROM grants WHERE nonce = ?').get(grant.nonce) as { credited: string }).credited);
    const prev = this.newestReceipt(relay, grant.sessionKey, grant.nonce);
    const before = prev?.credited ?? 0n;
    const others = grantCredited - before;
    const room = min(cap, grant.budget) - others;
    const credited = max(before, min(receipt.cumulativeAmount, room));
    db.prepare(
      `INSERT INTO receipts (relay, session_key, grant_nonce, sequence, cumulative_bytes, cumulative_amount, credited, signed, updated_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (relay, session_key, grant_nonce) DO UPDATE SET sequence = excluded.sequence, cumulative_bytes = excluded.cumulative_bytes,
         cumulative_amount = excluded.cumulative_amount, credited = excluded.credited, signed = excluded.signed, updated_at_ms = excluded.updated_at_ms`,
    ).run(
      relay,
      grant.sessionKey,
      grant.nonce,
      receipt.sequence,
      receipt.cumulativeBytes,
      receipt.cumulativeAmount.toString(),
      credited.toString(),
      receipt.signed,
      nowMs,
    );
    db.prepare('UPDATE grants SET credited = ? WHERE nonce = ?').run((others + credited).toString(), grant.nonce);
    const totals = this.relayTotals(relay);
    this.#putRelay(relay, totals.earned - before + credited, totals.paid);
    return { credited, others };
  }

  /**
   * Records a grant about to be issued, in one write transaction with its checks: no other grant
   * for the same session key is still live (RC_ERR_GRANT_LIVE_EXISTS), and the budgets of the
   * user's grants issued within the last `periodMs`, this one included, stay within `userBudget`
   * (RC_ERR_USER_BUDGET_EXHAUSTED). Rows older than the period and expired are forgotten here.
   */
  reserveGrant(g: IssuedGrant, limits: { userBudget: bigint; periodMs: number }): void {
    const db = this.#db;
    this.transaction(() => {
      const since = g.issuedAtMs - limits.periodMs;
      db.prepare('DELETE FROM issued_grants WHERE issued_at_ms <= ? AND expires_at_ms <= ?').run(since, g.issuedAtMs);
      const live = db.prepare('SELECT 1 FROM issued_grants WHERE session_key = ? AND expires_at_ms > ? LIMIT 1').get(g.sessionKey, g.issuedAtMs);
      if (live !== undefined) {
        throw new RelaycastError(ErrorCode.GRANT_LIVE_EXISTS, 'this session key already holds a live grant; use it, or a new session key');
      }
      const rows = db.prepare('SELECT budget FROM issued_grants WHERE user_tag = ? AND issued_at_ms > ?').all(g.userTag, since) as { budget: string }[];
      const used = rows.reduce((sum, r) => sum + BigInt(r.budget), 0n);
      if (used + g.budget > limits.userBudget) {
        throw new RelaycastError(
          ErrorCode.USER_BUDGET_EXHAUSTED,
          `this user's grants within the budget period already reach ${used} of ${limits.userBudget} base units`,
          {
            details: { used: used.toString(), userBudget: limits.userBudget.toString(), requested: g.budget.toString() },
          },
        );
      }
      db.prepare('INSERT INTO issued_grants (nonce, session_key, user_tag, budget, issued_at_ms, expires_at_ms) VALUES (?, ?, ?, ?, ?, ?)').run(
        g.nonce,
        g.sessionKey,
        g.userTag,
        g.budget.toString(),
        g.issuedAtMs,
        g.expiresAtMs,
      );
    });
  }

  /** Every pending payout (the settler watches them from its start). */
  allPendingPayouts(): PayoutRecord[] {
    return (this.#db.prepare("SELECT * FROM payouts WHERE status = 'pending'").all() as PayoutRow[]).map(toPayout);
  }

  relayTotals(relay: string): RelayTotals {
    const r = this.#db.prepare('SELECT earned, paid FROM relays WHERE relay = ?').get(relay) as { earned: string; paid: string } | undefined;
    return r === undefined ? { earned: 0n, paid: 0n } : { earned: BigInt(r.earned), paid: BigInt(r.paid) };
  }

  #putRelay(relay: string, earned: bigint, paid: bigint): void {
    this.#db
      .prepare('INSERT INTO relays (relay, earned, paid) VALUES (?, ?, ?) ON CONFLICT (relay) DO UPDATE SET earned = excluded.earned, paid = excluded.paid')
      .run(relay, earned.toString(), paid.toString());
  }

  /** Signed encodings of the relay's newest receipts (what a payout's Merkle root commits to). */
  signedReceipts(relay: string): Uint8Array[] {
    return (this.#db.prepare('SELECT signed FROM receipts WHERE relay = ?').all(relay) as { signed: Buffer }[]).map((r) => new Uint8Array(r.signed));
  }

  pendingPayout(relay: string): PayoutRecord | undefined {
    const r = this.#db.prepare("SELECT * FROM payouts WHERE relay = ? AND status = 'pending'").get(relay) as PayoutRow | undefined;
    return r === undefined ? undefined : toPayout(r);
  }

  payouts(relay: string): PayoutRecord[] {
    return (this.#db.prepare('SELECT * FROM payouts WHERE relay = ? ORDER BY created_at_ms, rowid').all(relay) as PayoutRow[]).map(toPayout);
  }

  /** Records a new pending payout; the unique index refuses a second one for the same relay. Call inside `transaction`. */
  insertPayout(p: PayoutRecord): void {
    this.#db
      .prepare(
        `INSERT INTO payouts (id, relay, status, amount, cumulative_paid, merkle_root, relay_token_account, last_valid_block_height, created_slot, tx, created_at_ms)
         VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        p.id,
        p.relay,
        p.amount.toString(),
        p.cumulativePaid.toString(),
        p.merkleRoot,
        p.relayTokenAccount,
        p.lastValidBlockHeight,
        p.createdSlot,
        p.transaction,
        p.createdAtMs,
      );
  }

  /** The payout landed: the relay's paid-to-date becomes its cumulativePaid (never lower than it was). */
  markConfirmed(id: string, landedSignature: string, nowMs: number): void {
    this.transaction(() => {
      const r = this.#db.prepare("SELECT * FROM payouts WHERE id = ? AND status = 'pending'").get(id) as PayoutRow | undefined;
      if (r === undefined) return;
      this.#db.prepare("UPDATE payouts SET status = 'confirmed', landed_signature = ?, resolved_at_ms = ? WHERE id = ?").run(landedSignature, nowMs, id);
      const totals = this.relayTotals(r.relay);
      this.#putRelay(r.relay, totals.earned, max(totals.paid, BigInt(r.cumulative_paid)));
    });
  }

  /** The payout failed on chain or can no longer land. */
  markVoid(id: string, nowMs: number, landedSignature: string | null = null): void {
    this.#db
      .prepare("UPDATE payouts SET status = 'void', landed_signature = ?, resolved_at_ms = ? WHERE id = ? AND status = 'pending'")
      .run(landedSignature, nowMs, id);
  }

  /** Replaces every relay's paid-to-date with what the chain shows (relays absent from `paid` have been paid nothing). */
  setPaidFromChain(paid: ReadonlyMap<string, bigint>): void {
    this.transaction(() => {
      this.#db.prepare("UPDATE relays SET paid = '0'").run();
      for (const [relay, amount] of paid) this.#putRelay(relay, this.relayTotals(relay).earned, amount);
    });
  }
}
