import { ErrorCode, RelaycastError, TokenBucket } from '@relaycast/protocol';

/**
 * Origin bytes are counted with protocol's TokenBucket in debt mode. The size of an origin
 * download is not known when it starts (Content-Length may be missing, and a 1-byte range still
 * fetches the whole segment into the cache), so the bucket is not asked for the bytes up front: a
 * new download may start while the balance is positive, and the bytes it then fetches are charged
 * as they arrive, possibly below zero. The debt is paid back at the rate before the next download
 * may start. Over any window the bytes fetched are at most `burst + rate × window` plus the
 * downloads that were already running when the balance reached zero (each bounded by the maximum
 * segment size).
 */
export interface OriginRateOptions {
  /** Relay-wide origin bytes per second; 0 = unlimited. */
  relayBytesPerSec: number;
  /** Relay-wide burst in bytes. */
  relayBurstBytes: number;
  /** Origin bytes per second one key (a channel or session) may cause; 0 = unlimited. */
  keyBytesPerSec: number;
  /** Burst of one key in bytes. */
  keyBurstBytes: number;
  /** Keys tracked at once; a key whose bucket refilled is dropped first, then the least recently used. */
  maxKeys: number;
  /** Clock (tests). Default: Date.now. */
  now?: (() => number) | undefined;
}

/**
 * The relay's origin-fetch rates: one relay-wide bucket and one bucket per caller-chosen key (the
 * channel server passes its channel or session). A new origin download is refused with
 * RC_ERR_ORIGIN_BUDGET while either bucket is in debt; cache hits and joins of a running download
 * cost nothing and are never refused.
 */
export class OriginRateLimiter {
  private readonly relay: TokenBucket | undefined;
  private readonly keys = new Map<string, TokenBucket>();
  private readonly now: () => number;
  private refusals = 0;

  constructor(private readonly o: OriginRateOptions) {
    for (const [name, v] of Object.entries({
      relayBytesPerSec: o.relayBytesPerSec,
      relayBurstBytes: o.relayBurstBytes,
      keyBytesPerSec: o.keyBytesPerSec,
      keyBurstBytes: o.keyBurstBytes,
    })) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a non-negative integer`);
    }
    if (o.relayBytesPerSec > 0 && o.relayBurstBytes <= 0)
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'relayBurstBytes must be positive when the relay-wide origin rate is set');
    if (o.keyBytesPerSec > 0 && o.keyBurstBytes <= 0)
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'keyBurstBytes must be positive when the per-channel origin rate is set');
    if (!Number.isSafeInteger(o.maxKeys) || o.maxKeys < 1) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'maxKeys must be a positive integer');
    this.now = o.now ?? Date.now;
    this.relay = o.relayBytesPerSec > 0 ? new TokenBucket(o.relayBytesPerSec, o.relayBurstBytes, this.now) : undefined;
  }

  /**
   * Throws RC_ERR_ORIGIN_BUDGET when a new download on behalf of `key` (undefined: the relay's own,
   * e.g. live prefetch) may not start now.
   */
  checkStart(key: string | undefined): void {
    if (this.relay !== undefined && !(this.relay.balance > 0)) {
      this.refusals++;
      throw new RelaycastError(ErrorCode.ORIGIN_BUDGET, `relay-wide origin fetch rate of ${this.o.relayBytesPerSec} bytes/s reached`, {
        details: { scope: 'relay', bytesPerSec: this.o.relayBytesPerSec },
      });
    }
    if (key === undefined || this.o.keyBytesPerSec === 0) return;
    const bucket = this.keys.get(key);
    if (bucket !== undefined && !(bucket.balance > 0)) {
      this.refusals++;
      throw new RelaycastError(ErrorCode.ORIGIN_BUDGET, `origin fetch rate of ${this.o.keyBytesPerSec} bytes/s reached for this channel`, {
        details: { scope: 'channel', bytesPerSec: this.o.keyBytesPerSec },
      });
    }
  }

  /** Whether a relay-initiated download (prefetch) may start: it never overdraws the relay-wide bucket. */
  relayCanStart(): boolean {
    return this.relay === undefined || this.relay.balance > 0;
  }

  /** Charges fetched bytes to the relay-wide bucket and to `key`'s. */
  charge(key: string | undefined, bytes: number): void {
    this.relay?.charge(bytes);
    if (key === undefined || this.o.keyBytesPerSec === 0) return;
    let bucket = this.keys.get(key);
    if (bucket === undefined) {
      this.makeRoom();
      bucket = new TokenBucket(this.o.keyBytesPerSec, this.o.keyBurstBytes, this.now);
    } else {
      this.keys.delete(key); // re-inserted below: most recently used last
    }
    this.keys.set(key, bucket);
    bucket.charge(bytes);
  }

  stats(): { relayBalanceBytes: number | undefined; trackedKeys: number; refusals: number } {
    return { relayBalanceBytes: this.relay === undefined ? undefined : Math.floor(this.relay.balance), trackedKeys: this.keys.size, refusals: this.refusals };
  }

  private makeRoom(): void {
    if (this.keys.size < this.o.maxKeys) return;
    // A refilled bucket carries no information: drop those first. Only then the least recently
    // charged one (which forgives its debt: the relay-wide bucket still bounds the total).
    for (const [k, b] of this.keys) if (b.full) this.keys.delete(k);
    while (this.keys.size >= this.o.maxKeys) this.keys.delete(this.keys.keys().next().value as string);
  }
}
