import type { ReputationOptions } from './tracker-options.js';

/**
 * Relay health from viewers' integrity reports. A relay starts at health 1; each counted report
 * takes `reportPenalty` off, but one viewer's reports about one relay count for at most
 * `maxPenaltyPerViewer` in total, so a single viewer (honest or lying) can dent a relay, never ban
 * it: past the tracker's minHealth it takes reports from several viewers. Reports expire after
 * `windowMs`, so a relay whose fault was fixed recovers on its own.
 */
interface ViewerPenalty {
  penalty: number;
  lastAt: number;
}

export type ReportOutcome = 'counted' | 'quota-exhausted';

export class ReputationBook {
  /** relayId → viewer key → penalty; Map order = least recently reported relay first. */
  private readonly byRelay = new Map<string, Map<string, ViewerPenalty>>();

  constructor(
    private readonly options: ReputationOptions,
    private readonly now: () => number,
  ) {}

  /** Counts one report by `viewer` against `relayId`, unless that viewer's quota for it is spent. */
  report(relayId: string, viewer: string): ReportOutcome {
    const now = this.now();
    let viewers = this.byRelay.get(relayId);
    if (viewers === undefined) {
      viewers = new Map();
      while (this.byRelay.size >= this.options.maxRelays) this.byRelay.delete(this.byRelay.keys().next().value as string);
    } else {
      this.byRelay.delete(relayId); // re-insert as the most recent
    }
    this.byRelay.set(relayId, viewers);
    this.expire(viewers, now);
    const entry = viewers.get(viewer) ?? { penalty: 0, lastAt: now };
    if (entry.penalty + this.options.reportPenalty > this.options.maxPenaltyPerViewer + 1e-9) return 'quota-exhausted';
    if (!viewers.has(viewer) && viewers.size >= this.options.maxViewersPerRelay) return 'quota-exhausted';
    entry.penalty += this.options.reportPenalty;
    entry.lastAt = now;
    viewers.set(viewer, entry);
    return 'counted';
  }

  /** 0 (many viewers reported it) .. 1 (no report in the window). */
  health(relayId: string): number {
    const viewers = this.byRelay.get(relayId);
    if (viewers === undefined) return 1;
    this.expire(viewers, this.now());
    if (viewers.size === 0) {
      this.byRelay.delete(relayId);
      return 1;
    }
    let penalty = 0;
    for (const v of viewers.values()) penalty += v.penalty;
    return Math.max(0, 1 - penalty);
  }

  /** Distinct viewers whose reports against the relay still count. */
  reporters(relayId: string): number {
    return this.byRelay.get(relayId)?.size ?? 0;
  }

  private expire(viewers: Map<string, ViewerPenalty>, now: number): void {
    const cutoff = now - this.options.windowMs;
    for (const [k, v] of viewers) if (v.lastAt < cutoff) viewers.delete(k);
  }
}
