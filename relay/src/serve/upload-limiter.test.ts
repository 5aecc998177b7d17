import { ErrorCode } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { UploadLimiter } from './upload-limiter.js';

describe('UploadLimiter', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'performance'] });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('allows one second of burst, then holds bytes until the budget refills', async () => {
    const limiter = new UploadLimiter(100_000);
    const signal = new AbortController().signal;
    await limiter.take(100_000, signal);
    let granted = false;
    void limiter.take(50_000, signal).then(() => (granted = true));
    await vi.advanceTimersByTimeAsync(400);
    expect(granted).toBe(false);
    await vi.advanceTimersByTimeAsync(200);
    expect(granted).toBe(true);
  });

  it('serves waiters in arrival order', async () => {
    const limiter = new UploadLimiter(10_000);
    const signal = new AbortController().signal;
    await limiter.take(10_000, signal);
    const order: number[] = [];
    const all = [1, 2, 3].map((n) => limiter.take(5_000, signal).then(() => order.push(n)));
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all(all);
    expect(order).toEqual([1, 2, 3]);
  });

  it('rejects a waiter whose signal aborts with RC_ERR_ABORTED, without blocking the next one', async () => {
    const limiter = new UploadLimiter(10_000);
    const never = new AbortController().signal;
    await limiter.take(10_000, never);
    const controller = new AbortController();
    const aborted = limiter.take(10_000, controller.signal);
    const next = limiter.take(1_000, never);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: ErrorCode.ABORTED });
    await vi.advanceTimersByTimeAsync(200);
    await expect(next).resolves.toBeUndefined();
  });

  it('refuses a cap that is not a non-negative integer', () => {
    for (const bad of [-1, 1.5, Number.NaN]) {
      expect(() => new UploadLimiter(bad)).toThrowError(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
    }
  });

  it('treats 0 as unlimited and can change the cap while running', async () => {
    const limiter = new UploadLimiter(0);
    const signal = new AbortController().signal;
    // Unlimited: 100 MB are granted without any time passing.
    for (let i = 0; i < 100; i++) await limiter.take(1_000_000, signal);
    limiter.setRate(100_000);
    expect(limiter.rate).toBe(100_000);
    await limiter.take(100_000, signal); // the new cap's one-second burst
    let granted = false;
    void limiter.take(50_000, signal).then(() => (granted = true));
    await vi.advanceTimersByTimeAsync(400);
    expect(granted).toBe(false);
    // Lifting the cap releases the waiting sender.
    limiter.setRate(0);
    await vi.advanceTimersByTimeAsync(250);
    expect(granted).toBe(true);
  });
});
