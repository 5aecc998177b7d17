import { describe, expect, it } from 'vitest';
import { deadline, raceAbort } from './deadline.js';
import { ErrorCode, isRelaycastError } from './errors.js';

describe('deadline', () => {
  it('aborts with RC_ERR_TIMEOUT when the time is up', async () => {
    const d = deadline(undefined, 30, 'the search');
    await new Promise((r) => setTimeout(r, 80));
    expect(d.signal.aborted).toBe(true);
    expect(isRelaycastError(d.signal.reason) && d.signal.reason.code).toBe(ErrorCode.TIMEOUT);
  });

  it('follows its parent, and clear() stops the timer', async () => {
    const parent = new AbortController();
    const d = deadline(parent.signal, 10_000);
    parent.abort(new Error('stop'));
    expect(d.signal.aborted).toBe(true);
    expect((d.signal.reason as Error).message).toBe('stop');
    const e = deadline(undefined, 30);
    e.clear();
    await new Promise((r) => setTimeout(r, 80));
    expect(e.signal.aborted).toBe(false);
  });
});

describe('raceAbort', () => {
  it('rejects with the reason when the signal aborts, even if the work never settles', async () => {
    const d = deadline(undefined, 20, 'the search');
    const err: unknown = await raceAbort(new Promise(() => undefined), d.signal).catch((e: unknown) => e);
    expect(isRelaycastError(err) && err.code).toBe(ErrorCode.TIMEOUT);
  });

  it('settles with the work when it finishes first', async () => {
    const ac = new AbortController();
    expect(await raceAbort(Promise.resolve(7), ac.signal)).toBe(7);
  });
});
