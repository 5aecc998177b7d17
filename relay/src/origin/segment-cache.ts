import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { CACHE_MAX_ENTRY_FRACTION, DEFAULT_CACHE_MAX_BYTES, DEFAULT_CACHE_MAX_ENTRIES } from '../constants.js';

/** One complete segment. `bytes` is shared by every reader: treat it as read-only. */
export interface CachedSegment {
  bytes: Uint8Array;
  /** SHA-256 of `bytes`, computed while downloading. */
  digest: Uint8Array;
}

export interface SegmentCacheOptions {
  /** Total bytes of segment data held. Default: DEFAULT_CACHE_MAX_BYTES. */
  maxBytes?: number | undefined;
  /** Entries held whatever their size (bounds empty segments too). Default: DEFAULT_CACHE_MAX_ENTRIES. */
  maxEntries?: number | undefined;
  /** Larger entries are refused. Default: maxBytes × CACHE_MAX_ENTRY_FRACTION (1/8). */
  maxEntryBytes?: number | undefined;
}

/**
 * Byte-bounded LRU of complete segments keyed by the source's cache key (see segmentCacheKey: by
 * default the normalised URL without its query). A Map keeps
 * insertion order, so re-inserting on every hit makes its first key the least recently used.
 */
export class SegmentCache {
  readonly maxBytes: number;
  readonly maxEntries: number;
  readonly maxEntryBytes: number;
  private readonly entries = new Map<string, CachedSegment>();
  private usedBytes = 0;

  constructor(options: SegmentCacheOptions = {}) {
    this.maxBytes = options.maxBytes ?? DEFAULT_CACHE_MAX_BYTES;
    this.maxEntries = options.maxEntries ?? DEFAULT_CACHE_MAX_ENTRIES;
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 0) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'cacheMaxBytes must be a non-negative integer');
    }
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 0) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'cache maxEntries must be a non-negative integer');
    }
    this.maxEntryBytes = options.maxEntryBytes ?? Math.floor(this.maxBytes * CACHE_MAX_ENTRY_FRACTION);
  }

  /** Bytes currently held. */
  get bytes(): number {
    return this.usedBytes;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Returns the entry and marks it most recently used. */
  get(key: string): CachedSegment | undefined {
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, entry);
    }
    return entry;
  }

  /** Presence test that does not touch recency (prefetch asks this without being a viewer). */
  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** Inserts and evicts least recently used entries to fit. Returns false when the entry is too large to cache. */
  set(key: string, entry: CachedSegment): boolean {
    const size = entry.bytes.byteLength;
    if (size > this.maxEntryBytes || size > this.maxBytes || this.maxEntries === 0) return false;
    this.delete(key);
    while (this.entries.size > 0 && (this.usedBytes + size > this.maxBytes || this.entries.size >= this.maxEntries)) {
      const oldest = this.entries.keys().next().value as string;
      this.delete(oldest);
    }
    this.entries.set(key, entry);
    this.usedBytes += size;
    return true;
  }

  delete(key: string): boolean {
    const entry = this.entries.get(key);
    if (entry === undefined) return false;
    this.entries.delete(key);
    this.usedBytes -= entry.bytes.byteLength;
    return true;
  }

  clear(): void {
    this.entries.clear();
    this.usedBytes = 0;
  }
}
