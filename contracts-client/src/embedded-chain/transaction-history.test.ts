import { describe, expect, it } from 'vitest';
import { TransactionHistory, type TransactionRecord } from './transaction-history.js';

function record(signature: string, accountKeys: string[], slot: number): TransactionRecord {
  return {
    signature,
    slot,
    blockTime: slot,
    accountKeys,
    err: null,
    fee: 0,
    preBalances: [],
    postBalances: [],
    preTokenBalances: [],
    postTokenBalances: [],
    logMessages: [],
    innerInstructions: [],
    computeUnitsConsumed: 0,
    memo: null,
  };
}

describe('TransactionHistory', () => {
  it('pages newest first with before / until / limit', () => {
    const h = new TransactionHistory(100);
    for (let i = 0; i < 10; i++) h.add(record(`s${i}`, ['A', i % 2 === 0 ? 'B' : 'C'], i));
    const sigs = (q: Parameters<TransactionHistory['signaturesForAddress']>[1]): string[] => h.signaturesForAddress('A', q).map((r) => r.signature);
    expect(sigs({ limit: 3 })).toEqual(['s9', 's8', 's7']);
    expect(sigs({ limit: 3, before: 's7' })).toEqual(['s6', 's5', 's4']);
    expect(sigs({ limit: 100, before: 's3', until: 's0' })).toEqual(['s2', 's1']);
    expect(h.signaturesForAddress('B', { limit: 100 }).map((r) => r.signature)).toEqual(['s8', 's6', 's4', 's2', 's0']);
    expect(sigs({ limit: 5, before: 'unknown' })).toEqual([]);
  });

  it('forgets the oldest records beyond its bound, from every index', () => {
    const max = 4;
    const h = new TransactionHistory(max);
    for (let i = 0; i < 10; i++) h.add(record(`s${i}`, ['A'], i));
    expect(h.size).toBe(max);
    expect(h.has('s5')).toBe(false);
    expect(h.signaturesForAddress('A', { limit: 100 }).map((r) => r.signature)).toEqual(['s9', 's8', 's7', 's6']);
  });

  it('reports the first slot it still holds completely once it forgot records', () => {
    const h = new TransactionHistory(3);
    h.add(record('a', ['A'], 1));
    h.add(record('b', ['A'], 2));
    h.add(record('c', ['A'], 2));
    expect(h.firstAvailableSlot).toBe(0);
    h.add(record('d', ['A'], 5));
    expect(h.firstAvailableSlot).toBe(2);
    h.add(record('e', ['A'], 6));
    // Slot 2 lost one of its two transactions: only from slot 3 on is everything there.
    expect(h.firstAvailableSlot).toBe(3);
  });
});
