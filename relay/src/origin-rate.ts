import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/**
 * A token bucket of origin bytes that may go into debt.
 *
 * The size of an origin download is not known when it starts (Content-Length may be missing, and
 * a 1-byte range still fetches the whole segment into the cache), so the bucket is not asked for
 * the bytes up front: a new download may start while the bucket holds a positive balance, and the
 * bytes it then fetches are taken as they arrive, possibly below zero. The debt is paid back at
 * `bytesPerSec` before the next download may start. Over any window the bytes fetched are at most
 * `burstBytes + bytesPerSec × window` plus the downloads that were already running when the
 * balance reached zero (each bounded by the maximum segment size).
 */
export class OriginByteBucket {
  private tokens: number;
  private last: number;

  constructor(
    readonly bytesPerSec: number,
    readonly burstBytes: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burstBytes;
    this.last = now();
  }

  /** Whether a new download may start now. */
  canStart(): boolean {
    this.refill();
    return this.tokens > 0;
  }

  /** Takes fetched bytes (the balance may go below zero). */
  take(bytes: number): void {
    this.refill();
    this.tokens -= bytes;
  }

  /** True when the bucket is full again, i.e. indistinguishable from a fresh one (it can be dropped). */
  isFull(): boolean {
    this.refill();
    return this.tokens >= this.burstBytes;
  }

  /** Current balance (negative while in debt), for status and tests. */
  get balance(): number {
    this.refill();
    return this.tokens;
  }

  private refill(): void {
    const t = this.now();
    const elapsed = Math.max(0, t - this.last);
    this.last = t;
    this.tokens = Math.min(this.burstBytes, this.tokens + (elapsed * this.bytesPerSec) / 1000);
  }
}

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
  private readonly relay: OriginByteBucket | undefined;
  private readonly keys = new Map<string, OriginByteBucket>();
  private readonly now: () => number;
  private refusals = 0;

  constructor(private readonly o: OriginRateOptions) {
    for (const [name, v] of Object.entries({ relayBytesPerSec: o.relayBytesPerSec, relayBurstBytes: o.relayBurstBytes, keyBytesPerSec: o.keyBytesPerSec, keyBurstBytes: o.keyBurstBytes })) {
      if (!Number.isSafeInteger(v) || v < 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a non-negative integer`);
    }
    if (o.relayBytesPerSec > 0 && o.relayBurstBytes <= 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'relayBurstBytes must be positive when the relay-wide origin rate is set');
    if (o.keyBytesPerSec > 0 && o.keyBurstBytes <= 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'keyBurstBytes must be positive when the per-channel origin rate is set');
    if (!Number.isSafeInteger(o.maxKeys) || o.maxKeys < 1) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'maxKeys must be a positive integer');
    this.now = o.now ?? Date.now;
    this.relay = o.relayBytesPerSec > 0 ? new OriginByteBucket(o.relayBytesPerSec, o.relayBurstBytes, this.now) : undefined;
  }

  /**
   * Throws RC_ERR_ORIGIN_BUDGET when a new download on behalf of `key` (undefined: the relay's own,
   * e.g. live prefetch) may not start now.
   */
  checkStart(key: string | undefined): void {
    if (this.relay !== undefined && !this.relay.canStart()) {
      this.refusals++;
      throw new RelaycastError(ErrorCode.ORIGIN_BUDGET, `relay-wide origin fetch rate of ${this.o.relayBytesPerSec} bytes/s reached`, {
        details: { scope: 'relay', bytesPerSec: this.o.relayBytesPerSec },
      });
    }
    if (key === undefined || this.o.keyBytesPerSec === 0) return;
    const bucket = this.keys.get(key);
    if (bucket !== undefined && !bucket.canStart()) {
      this.refusals++;
      throw new RelaycastError(ErrorCode.ORIGIN_BUDGET, `origin fetch rate of ${this.o.keyBytesPerSec} bytes/s reached for this channel`, {
        details: { scope: 'channel', bytesPerSec: this.o.keyBytesPerSec },
      });
    }
  }

  /** Whether a relay-initiated download (prefetch) may start: it never overdraws the relay-wide bucket. */
  relayCanStart(): boolean {
    return this.relay === undefined || this.relay.canStart();
  }

  /** Charges fetched bytes to the relay-wide bucket and to `key`'s. */
  charge(key: string | undefined, bytes: number): void {
    this.relay?.take(bytes);
    if (key === undefined || this.o.keyBytesPerSec === 0) return;
    let bucket = this.keys.get(key);
    if (bucket === undefined) {
      this.makeRoom();
      bucket = new OriginByteBucket(this.o.keyBytesPerSec, this.o.keyBurstBytes, this.now);
    } else {
      this.keys.delete(key); // re-inserted below: most recently used last
    }
    this.keys.set(key, bucket);
    bucket.take(bytes);
  }

  stats(): { relayBalanceBytes: number | undefined; trackedKeys: number; refusals: number } {
    return { relayBalanceBytes: this.relay === undefined ? undefined : Math.floor(this.relay.balance), trackedKeys: this.keys.size, refusals: this.refusals };
  }

  private makeRoom(): void {
    if (this.keys.size < this.o.maxKeys) return;
    // A refilled bucket carries no information: drop those first. Only then the least recently
    // charged one (which forgives its debt: the relay-wide bucket still bounds the total).
    for (const [k, b] of this.keys) if (b.isFull()) this.keys.delete(k);
    while (this.keys.size >= this.o.maxKeys) this.keys.delete(this.keys.keys().next().value as string);
  }
}
