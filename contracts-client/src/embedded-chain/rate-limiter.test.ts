import { describe, expect, it } from 'vitest';
import { PerClientRateLimiter } from './rate-limiter.js';

describe('PerClientRateLimiter', () => {
  it('allows rate + burst credit per second per client, and refills after a window', () => {
    let now = 0;
    const perSec = 10;
    const burst = 15;
    const limiter = new PerClientRateLimiter(perSec, burst, 16, () => now);
    let granted = 0;
    while (limiter.allow('a')) granted++;
    expect(granted).toBe(burst);
    expect(limiter.allow('b')).toBe(true);
    now += 1_000;
    granted = 0;
    while (limiter.allow('a')) granted++;
    expect(granted).toBeGreaterThanOrEqual(perSec);
    expect(granted).toBeLessThanOrEqual(burst);
  });
});
