import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ReputationBook } from './reputation.js';
import type { ReputationOptions } from './tracker-options.js';

const OPTIONS: ReputationOptions = {
  reportPenalty: 0.5,
  maxPenaltyPerViewer: 0.5,
  windowMs: 1_000,
  maxRelays: 100,
  maxViewersPerRelay: 64,
  minReporters: 3,
  maxReportersPerRange: 1,
};

describe('ReputationBook', () => {
  it('keeps health 1 until minReporters distinct users reported, then drops it', () => {
    let now = 0;
    const book = new ReputationBook(OPTIONS, () => now);
    expect(book.report('r', 'u1', 'a')).toBe('counted');
    expect(book.report('r', 'u2', 'b')).toBe('counted');
    expect(book.health('r')).toBe(1);
    expect(book.report('r', 'u3', 'c')).toBe('counted');
    expect(book.health('r')).toBe(0);
    now = 1_001;
    expect(book.health('r')).toBe(1);
    expect(book.reporters('r')).toBe(0);
  });

  it('one user is one reporter, however many reports; one range is maxReportersPerRange reporters', () => {
    const book = new ReputationBook(OPTIONS, () => 0);
    expect(book.report('r', 'u1', 'a')).toBe('counted');
    expect(book.report('r', 'u1', 'b')).toBe('quota-exhausted');
    expect(book.report('r', 'u2', 'a')).toBe('range-limit');
    expect(book.reporters('r')).toBe(1);
  });

  it('property: fewer than minReporters distinct users, or users from fewer than minReporters ranges, never lower health', () => {
    fc.assert(
      fc.property(fc.array(fc.record({ user: fc.integer({ min: 0, max: 20 }), range: fc.integer({ min: 0, max: 1 }) }), { maxLength: 200 }), (reports) => {
        const book = new ReputationBook(OPTIONS, () => 0);
        for (const r of reports) book.report('relay', `u${r.user}`, `range${r.range}`);
        // Two ranges, one reporter each at most: below minReporters (3) whatever they send.
        expect(book.health('relay')).toBe(1);
      }),
    );
  });
});
