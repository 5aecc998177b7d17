import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettlementLedger, type PayoutRecord } from './settlement-ledger.js';

const grant = (n: number, budget: bigint) => ({ nonce: new Uint8Array(16).fill(n), sessionKey: new Uint8Array(32).fill(n), budget });
const receipt = (sequence: number, amount: bigint) => ({
  sequence,
  cumulativeBytes: Number(amount),
  cumulativeAmount: amount,
  signed: Uint8Array.of(sequence, Number(amount % 256n)),
});

function payout(id: string, relay: string, amount: bigint): PayoutRecord {
  return {
    id,
    relay,
    status: 'pending',
    amount,
    cumulativePaid: amount,
    merkleRoot: '00'.repeat(32),
    relayTokenAccount: 'ata',
    lastValidBlockHeight: 100,
    createdSlot: 1,
    transaction: Uint8Array.of(1, 2, 3),
    createdAtMs: 0,
    landedSignature: null,
  };
}

describe('SettlementLedger', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'settler-ledger-'));
    path = join(dir, 'l.sqlite');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('caps a grant across relays at its budget, first stored first credited, and never takes credit back', () => {
    const l = SettlementLedger.open(path);
    const g = grant(1, 100n);
    l.transaction(() => {
      expect(l.storeReceipt('A', g, receipt(1, 70n), 0).credited).toBe(70n);
      expect(l.storeReceipt('B', g, receipt(1, 50n), 0)).toEqual({ credited: 30n, others: 70n });
      // B's newer receipt cannot take A's share; A's newer receipt keeps what it had.
      expect(l.storeReceipt('B', g, receipt(2, 90n), 0).credited).toBe(30n);
      expect(l.storeReceipt('A', g, receipt(2, 80n), 0).credited).toBe(70n);
    });
    expect(l.relayTotals('A')).toEqual({ earned: 70n, paid: 0n });
    expect(l.relayTotals('B')).toEqual({ earned: 30n, paid: 0n });
    l.close();
  });

  it('credits within a lower cap, and a resent receipt gains as the cap grows, never losing credit', () => {
    const l = SettlementLedger.open(path);
    const g = grant(2, 100n);
    const r = receipt(1, 90n);
    l.transaction(() => {
      expect(l.storeReceipt('A', g, r, 0, 40n).credited).toBe(40n);
      expect(l.storeReceipt('A', g, r, 0, 60n).credited).toBe(60n);
      expect(l.storeReceipt('A', g, r, 0, 10n).credited).toBe(60n);
      expect(l.storeReceipt('A', g, r, 0, 500n).credited).toBe(90n);
    });
    expect(l.relayTotals('A').earned).toBe(90n);
    l.close();
  });

  it('reserves grants within the user budget over a sliding period, one live grant per session key', () => {
    const l = SettlementLedger.open(path);
    const limits = { userBudget: 250n, periodMs: 1_000 };
    const g = (n: number, session: number, at: number) => ({
      nonce: new Uint8Array(16).fill(n),
      sessionKey: new Uint8Array(32).fill(session),
      userTag: 'u',
      budget: 100n,
      issuedAtMs: at,
      expiresAtMs: at + 100,
    });
    l.reserveGrant(g(1, 1, 0), limits);
    expect(() => l.reserveGrant(g(2, 1, 50), limits)).toThrow(expect.objectContaining({ code: 'RC_ERR_GRANT_LIVE_EXISTS' }));
    l.reserveGrant(g(3, 1, 100), limits);
    expect(() => l.reserveGrant(g(4, 2, 500), limits)).toThrow(expect.objectContaining({ code: 'RC_ERR_USER_BUDGET_EXHAUSTED' }));
    l.reserveGrant({ ...g(5, 3, 500), userTag: 'v' }, limits);
    // The first grant leaves the window at 1,000 ms.
    l.reserveGrant(g(6, 4, 1_001), limits);
    l.close();
  });

  it('creates the database, -wal and -shm readable by the owner only', () => {
    const l = SettlementLedger.open(path);
    l.transaction(() => l.storeReceipt('A', grant(1, 10n), receipt(1, 5n), 0));
    for (const f of [path, `${path}-wal`, `${path}-shm`]) expect(statSync(f).mode & 0o777).toBe(0o600);
    l.close();
  });

  it('allows one pending payout per relay, across two handles on the same file', () => {
    const a = SettlementLedger.open(path);
    const b = SettlementLedger.open(path);
    a.transaction(() => a.insertPayout(payout('p1', 'R', 5n)));
    expect(() => b.transaction(() => b.insertPayout(payout('p2', 'R', 5n)))).toThrow(/UNIQUE/);
    b.transaction(() => b.insertPayout(payout('p3', 'S', 5n)));
    a.markConfirmed('p1', 'tx1', 1);
    expect(b.relayTotals('R').paid).toBe(5n);
    b.transaction(() => b.insertPayout(payout('p2', 'R', 7n)));
    expect(a.pendingPayout('R')?.id).toBe('p2');
    a.close();
    b.close();
  });

  it('refuses a ledger of another schema version', () => {
    SettlementLedger.open(path).close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    expect(() => SettlementLedger.open(path)).toThrow(expect.objectContaining({ code: 'RC_ERR_CONFIG_INVALID' }));
  });
});
