import { ErrorCode, TokenBucket } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { OriginRateLimiter } from './origin-rate.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => void (t += ms) };
}

describe('origin bytes on a TokenBucket in debt mode', () => {
  it('lets a download start while positive, goes into debt, and pays it back at the rate', () => {
    const c = clock();
    const b = new TokenBucket(1_000, 5_000, c.now);
    expect(b.balance > 0).toBe(true);
    b.charge(8_000);
    expect(b.balance).toBe(-3_000);
    expect(b.balance > 0).toBe(false);
    c.advance(3_000);
    expect(b.balance > 0).toBe(false); // exactly 0: still nothing to spend
    c.advance(1);
    expect(b.balance > 0).toBe(true);
    c.advance(60_000);
    expect(b.balance).toBe(5_000); // never above the burst
    expect(b.full).toBe(true);
  });
});

describe('OriginRateLimiter', () => {
  const base = { relayBytesPerSec: 0, relayBurstBytes: 0, keyBytesPerSec: 1_000, keyBurstBytes: 2_000, maxKeys: 2 };

  it('refuses a key in debt with RC_ERR_ORIGIN_BUDGET and leaves other keys alone', () => {
    const c = clock();
    const r = new OriginRateLimiter({ ...base, now: c.now });
    r.charge('a', 10_000);
    expect(() => r.checkStart('a')).toThrow(expect.objectContaining({ code: ErrorCode.ORIGIN_BUDGET }));
    expect(() => r.checkStart('b')).not.toThrow();
    expect(() => r.checkStart(undefined)).not.toThrow();
    c.advance(8_001);
    expect(() => r.checkStart('a')).not.toThrow();
    expect(r.stats().refusals).toBe(1);
  });

  it('refuses every key while the relay-wide bucket is in debt, and prefetch yields to it', () => {
    const c = clock();
    const r = new OriginRateLimiter({ ...base, relayBytesPerSec: 1_000, relayBurstBytes: 1_000, keyBytesPerSec: 0, now: c.now });
    expect(r.relayCanStart()).toBe(true);
    r.charge(undefined, 5_000);
    expect(r.relayCanStart()).toBe(false);
    expect(() => r.checkStart('fresh')).toThrow(expect.objectContaining({ code: ErrorCode.ORIGIN_BUDGET }));
  });

  it('tracks at most maxKeys keys, dropping refilled buckets first', () => {
    const c = clock();
    const r = new OriginRateLimiter({ ...base, now: c.now });
    r.charge('old', 100);
    c.advance(1_000); // 'old' is full again
    r.charge('debtor', 10_000);
    r.charge('new', 100);
    expect(r.stats().trackedKeys).toBe(2);
    expect(() => r.checkStart('debtor')).toThrow(expect.objectContaining({ code: ErrorCode.ORIGIN_BUDGET }));
  });

  it('refuses negative or fractional settings', () => {
    expect(() => new OriginRateLimiter({ ...base, keyBytesPerSec: -1 })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    expect(() => new OriginRateLimiter({ ...base, keyBurstBytes: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    expect(() => new OriginRateLimiter({ ...base, maxKeys: 0 })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });
});
