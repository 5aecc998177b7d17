import { describe, expect, it } from 'vitest';
import { BlockhashWindow } from './blockhash-window.js';

describe('BlockhashWindow', () => {
  it('accepts a blockhash for exactly validitySlots slots after it was issued, then forgets it', () => {
    const validity = 5;
    const w = new BlockhashWindow(validity);
    for (let slot = 0; slot <= 20; slot++) w.push(`h${slot}`, slot);
    const now = 20;
    expect(w.isValid(`h${now - validity}`, now)).toBe(true);
    expect(w.isValid(`h${now - validity - 1}`, now)).toBe(false);
    expect(w.isValid('never-issued', now)).toBe(false);
    expect(w.size).toBe(validity + 1);
    expect(w.latest()).toEqual({ blockhash: `h${now}`, lastValidBlockHeight: now + validity });
  });
});
