/** Why a segment (or its rest) came from the origin instead of a relay. */
export type FallbackReason = 'ttfb-timeout' | 'stall' | 'absent' | 'relay-error' | 'channel-closed' | 'no-relay';

export interface RelayStatsEntry {
  /** Verified-by-construction bytes this relay delivered. */
  bytes: number;
  /** Requests sent to this relay. */
  requests: number;
  /** Requests that ended in a fallback. */
  failures: number;
}

/** Plain JSON snapshot of everything the SDK counts. */
export interface SdkStatsSnapshot {
  bytesFromRelays: number;
  bytesFromOrigin: number;
  /** bytesFromRelays / all bytes (0 when nothing loaded yet). */
  relayShare: number;
  perRelay: Record<string, RelayStatsEntry>;
  fallbacks: { count: number; byReason: Partial<Record<FallbackReason, number>> };
  /** Segments (or ranges) completely loaded. */
  segments: number;
}

/** Mutable counters behind getStats(); only the SDK writes them. */
export class SdkStats {
  private bytesFromRelays = 0;
  private bytesFromOrigin = 0;
  private segments = 0;
  private fallbackCount = 0;
  private readonly byReason: Partial<Record<FallbackReason, number>> = {};
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

  originBytes(bytes: number): void {
    this.bytesFromOrigin += bytes;
  }

  fallback(reason: FallbackReason, relayId: string | undefined): void {
    this.fallbackCount++;
    this.byReason[reason] = (this.byReason[reason] ?? 0) + 1;
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
      relayShare: total === 0 ? 0 : this.bytesFromRelays / total,
      perRelay: Object.fromEntries([...this.perRelay].map(([k, v]) => [k, { ...v }])),
      fallbacks: { count: this.fallbackCount, byReason: { ...this.byReason } },
      segments: this.segments,
    };
  }
}
