import { ErrorCode, RelaycastError, concatBytes, toHex } from '@relaycast/protocol';
import { DEFAULT_AUDIT_FRACTION, DEFAULT_NO_DIGEST_POLICY } from './constants.js';
import type { DigestStore } from './digest-store.js';
import type { SdkStats } from './stats.js';

/**
 * What the SDK does with relay bytes of a segment the origin publishes no digest for:
 *  - `refuse`: such segments never come from relays (safe, no offload without digests);
 *  - `audit`: they come from relays, and a sampled `auditFraction` of them is compared with the
 *    origin's copy before it is handed over (a relay caught lying is dropped and reported).
 */
export type NoDigestPolicy = 'refuse' | 'audit';

/** How relay bytes of segments without a published digest are treated (`RelaycastClientOptions.integrity`). */
export interface IntegrityOptions {
  /** Policy for segments without a published digest. Default: DEFAULT_NO_DIGEST_POLICY ('refuse'). */
  noDigestPolicy?: NoDigestPolicy | undefined;
  /** Under `audit`, the share (0..1) of digest-less relay segments checked against the origin. Default: DEFAULT_AUDIT_FRACTION (0.1). */
  auditFraction?: number | undefined;
  /** A live segment missing from its sidecar waits this long for its digest. Default: DEFAULT_DIGEST_WAIT_MS (2 s). */
  digestWaitMs?: number | undefined;
}

/** How one relay load is checked before its last bytes are handed over. */
export type SegmentCheck =
  | { kind: 'digest'; sha256: string }
  | { kind: 'audit' }
  /** Delivered unchecked (audit policy, not sampled). */
  | { kind: 'none' }
  /** Must not come from a relay (refuse policy). */
  | { kind: 'refuse' };

export class SegmentVerifier {
  private readonly policy: NoDigestPolicy;
  private readonly auditFraction: number;

  constructor(
    private readonly store: DigestStore,
    private readonly stats: SdkStats,
    options: IntegrityOptions = {},
    private readonly random: () => number = Math.random,
  ) {
    this.policy = options.noDigestPolicy ?? DEFAULT_NO_DIGEST_POLICY;
    if (this.policy !== 'refuse' && this.policy !== 'audit') throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'noDigestPolicy must be refuse or audit');
    this.auditFraction = options.auditFraction ?? DEFAULT_AUDIT_FRACTION;
    if (!(this.auditFraction >= 0 && this.auditFraction <= 1)) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'auditFraction must be in 0..1');
  }

  /**
   * Decides how a relay load of `url` is checked. Digests cover whole files, so a byte-range
   * request is treated like a segment without a digest. Rejects only with RC_ERR_ABORTED.
   */
  async checkFor(
    url: string,
    range: { start: number; end?: number | undefined } | undefined,
    playlistUrl: string | undefined,
    signal: AbortSignal,
  ): Promise<SegmentCheck> {
    const sha256 = isWhole(range) ? await this.store.lookup(url, playlistUrl, signal) : undefined;
    if (sha256 !== undefined) return { kind: 'digest', sha256 };
    return this.withoutDigest();
  }

  /**
   * The same decision when it can be made without waiting; undefined when it would wait for a
   * sidecar (whose fetch is then started, so a later load of the playlist finds its digests).
   */
  checkNow(url: string, range: { start: number; end?: number | undefined } | undefined, playlistUrl: string | undefined): SegmentCheck | undefined {
    if (!isWhole(range)) return this.withoutDigest();
    const sha256 = this.store.peek(url, playlistUrl);
    return sha256 === undefined ? undefined : { kind: 'digest', sha256 };
  }

  /**
   * The same decision for a race: waits at most `waitMs` for the digest; undefined when it did not
   * come in time (nothing is counted or reported then: the load goes to the origin instead).
   * Rejects only with RC_ERR_ABORTED.
   */
  async checkWithin(
    url: string,
    range: { start: number; end?: number | undefined } | undefined,
    playlistUrl: string | undefined,
    waitMs: number,
    signal: AbortSignal,
  ): Promise<SegmentCheck | undefined> {
    if (!isWhole(range)) return this.withoutDigest();
    const sha256 = await this.store.lookup(url, playlistUrl, signal, { waitMs });
    return sha256 === undefined ? undefined : { kind: 'digest', sha256 };
  }

  private withoutDigest(): SegmentCheck {
    this.stats.segmentWithoutDigest();
    if (this.policy === 'refuse') return { kind: 'refuse' };
    return this.random() < this.auditFraction ? { kind: 'audit' } : { kind: 'none' };
  }
}

/** Digests cover whole files: a byte-range request is treated like a segment without one. */
function isWhole(range: { start: number; end?: number | undefined } | undefined): boolean {
  return range === undefined || (range.start === 0 && range.end === undefined);
}

/** SHA-256 as lowercase hex, with WebCrypto (the browser's, or node:crypto's webcrypto in Node). */
export async function sha256Hex(chunks: readonly Uint8Array[]): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (subtle === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'WebCrypto is not available (a secure context is required in browsers)');
  const data = chunks.length === 1 ? (chunks[0] as Uint8Array) : concatBytes(chunks);
  return toHex(new Uint8Array(await subtle.digest('SHA-256', data as Uint8Array<ArrayBuffer>)));
}
