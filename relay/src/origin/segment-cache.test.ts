import { ErrorCode } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { SegmentCache, type CachedSegment } from './segment-cache.js';

function entry(size: number): CachedSegment {
  return { bytes: new Uint8Array(size), digest: new Uint8Array(32) };
}

describe('SegmentCache', () => {
  it('evicts least recently used entries until the new one fits in bytes', () => {
    const cache = new SegmentCache({ maxBytes: 300, maxEntryBytes: 300 });
    expect(cache.set('a', entry(100))).toBe(true);
    expect(cache.set('b', entry(100))).toBe(true);
    expect(cache.set('c', entry(100))).toBe(true);
    cache.get('a'); // a becomes most recent, b is now the oldest
    expect(cache.set('d', entry(150))).toBe(true);
    expect(cache.has('b')).toBe(false);
    expect(cache.has('c')).toBe(false);
    expect(cache.has('a')).toBe(true);
    expect(cache.has('d')).toBe(true);
    expect(cache.bytes).toBe(250);
  });

  it('refuses entries above the per-entry fraction without evicting anything', () => {
    const cache = new SegmentCache({ maxBytes: 800 });
    expect(cache.maxEntryBytes).toBe(100);
    cache.set('small', entry(100));
    expect(cache.set('big', entry(101))).toBe(false);
    expect(cache.has('small')).toBe(true);
    expect(cache.bytes).toBe(100);
  });

  it('replaces an entry under the same key without double counting', () => {
    const cache = new SegmentCache({ maxBytes: 1000, maxEntryBytes: 1000 });
    cache.set('a', entry(100));
    cache.set('a', entry(200));
    expect(cache.bytes).toBe(200);
    expect(cache.size).toBe(1);
  });

  it('bounds the entry count too', () => {
    const cache = new SegmentCache({ maxBytes: 1000, maxEntries: 2 });
    cache.set('a', entry(0));
    cache.set('b', entry(0));
    cache.set('c', entry(0));
    expect(cache.size).toBe(2);
    expect(cache.has('a')).toBe(false);
  });

  it('rejects an invalid size with RC_ERR_CONFIG_INVALID', () => {
    expect(() => new SegmentCache({ maxBytes: -1 })).toThrowError(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });
});
