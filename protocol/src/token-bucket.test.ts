import { describe, expect, it } from 'vitest';
import { TokenBucket } from './token-bucket.js';

describe('TokenBucket', () => {
  it('allows a burst, then refills at the sustained rate without exceeding the burst', () => {
    let now = 0;
    const bucket = new TokenBucket(10, 3, () => now);
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
    now += 100; // one token at 10/s
    expect([bucket.take(), bucket.take()]).toEqual([true, false]);
    now += 60_000;
    expect([bucket.take(), bucket.take(), bucket.take(), bucket.take()]).toEqual([true, true, true, false]);
  });
});

describe('TokenBucket take(n), charge and full', () => {
  it('takes n at once or nothing, goes into debt on charge, and is full only once the debt is repaid', () => {
    let now = 0;
    const bucket = new TokenBucket(1_000, 5_000, () => now);
    expect(bucket.take(6_000)).toBe(false);
    expect(bucket.balance).toBe(5_000);
    bucket.charge(8_000);
    expect(bucket.balance).toBe(-3_000);
    now += 3_000;
    expect(bucket.balance).toBe(0);
    expect(bucket.full).toBe(false);
    now += 5_000;
    expect(bucket.full).toBe(true);
    now -= 1_000; // a clock that steps back refills nothing
    expect(bucket.balance).toBe(5_000);
  });
});
