/** Why a segment (or its rest) came from the origin instead of a relay. */
export type FallbackReason = 'ttfb-timeout' | 'stall' | 'absent' | 'relay-error' | 'channel-closed' | 'no-relay';

export const FALLBACK_REASONS: readonly FallbackReason[] = ['ttfb-timeout', 'stall', 'absent', 'relay-error', 'channel-closed', 'no-relay'];

export interface RelayStatsEntry {
  /** Bytes this relay delivered that ended up in loaded segments. */
  bytes: number;
  /** Requests sent to this relay. */
  requests: number;
  /** Requests that ended in a fallback to the origin. */
  failures: number;
}

/** Plain JSON snapshot of everything the SDK counts. */
export interface SdkStatsSnapshot {
  bytesFromRelays: number;
  bytesFromOrigin: number;
  /** Relay bytes thrown away because the origin's copy of the resource turned out to differ. */
  bytesDiscarded: number;
  /** bytesFromRelays / (bytesFromRelays + bytesFromOrigin); 0 when nothing loaded yet. */
  relayShare: number;
  perRelay: Record<string, RelayStatsEntry>;
  /** Every reason is present (0 when it never happened) so dashboards get a stable shape. */
  fallbacks: { count: number; byReason: Record<FallbackReason, number> };
  /** Segments (or ranges) completely loaded, whatever the source. */
  segments: number;
}

/** Mutable counters behind getStats(); only the SDK writes them. */
export class SdkStats {
  private bytesFromRelays = 0;
  private bytesFromOrigin = 0;
  private bytesDiscarded = 0;
  private segments = 0;
  private fallbackCount = 0;
  private readonly byReason = Object.fromEntries(FALLBACK_REASONS.map((r) => [r, 0])) as Record<FallbackReason, number>;
  private readonly perRelay = new Map<string, RelayStatsEntry>();

  private relay(relayId: string): RelayStatsEntry {
    let e = this.perRelay.get(relayId);
    if (e === undefined) {
      e = { bytes: 0, requests: 0, failures: 0 };
      this.perRelay.set(relayId, e);
    }
    return e;
  }

  relayRequest(relayId: string): void {
    this.relay(relayId).requests++;
  }

  relayBytes(relayId: string, bytes: number): void {
    this.relay(relayId).bytes += bytes;
    this.bytesFromRelays += bytes;
  }

  /** Takes back relay bytes the loader discarded, so per-relay sums keep matching bytesFromRelays. */
  relayBytesDiscarded(relayId: string, bytes: number): void {
    this.relay(relayId).bytes -= bytes;
    this.bytesFromRelays -= bytes;
    this.bytesDiscarded += bytes;
  }

  originBytes(bytes: number): void {
    this.bytesFromOrigin += bytes;
  }

  fallback(reason: FallbackReason, relayId: string | undefined): void {
    this.fallbackCount++;
    this.byReason[reason]++;
    if (relayId !== undefined) this.relay(relayId).failures++;
  }

  segmentLoaded(): void {
    this.segments++;
  }

  snapshot(): SdkStatsSnapshot {
    const total = this.bytesFromRelays + this.bytesFromOrigin;
    return {
      bytesFromRelays: this.bytesFromRelays,
      bytesFromOrigin: this.bytesFromOrigin,
      bytesDiscarded: this.bytesDiscarded,
      relayShare: total === 0 ? 0 : this.bytesFromRelays / total,
      perRelay: Object.fromEntries([...this.perRelay].map(([k, v]) => [k, { ...v }])),
      fallbacks: { count: this.fallbackCount, byReason: { ...this.byReason } },
      segments: this.segments,
    };
  }
}
