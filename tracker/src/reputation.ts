import type { ReputationOptions } from './tracker-options.js';

/**
 * Relay health from viewers' integrity reports. Reports are counted per USER (the user tag the
 * settler put in the viewer's grant), never per connection: opening more sockets does not make more
 * reporters (issue 14 finding 3). A relay starts at health 1 and stays there until at least
 * `minReporters` distinct users reported it within `windowMs`; from then each counted report takes
 * `reportPenalty` off, one user's reports about one relay counting for at most
 * `maxPenaltyPerViewer`. At most `maxReportersPerRange` users from one address range count per
 * relay, since under open grant issuance user tags cost nothing. Reports expire after `windowMs`,
 * so a relay whose fault was fixed recovers on its own.
 */
interface UserPenalty {
  penalty: number;
  lastAt: number;
  range: string;
}

export type ReportOutcome = 'counted' | 'quota-exhausted' | 'range-limit';

export class ReputationBook {
  /** relayId → user tag → penalty; Map order = least recently reported relay first. */
  private readonly byRelay = new Map<string, Map<string, UserPenalty>>();

  constructor(
    private readonly options: ReputationOptions,
    private readonly now: () => number,
  ) {}

  /**
   * Counts one report by `user` (reporting from address range `range`) against `relayId`, unless
   * that user's quota for it is spent or its range already has its share of reporters.
   */
  report(relayId: string, user: string, range: string): ReportOutcome {
    const now = this.now();
    let users = this.byRelay.get(relayId);
    if (users === undefined) {
      users = new Map();
      while (this.byRelay.size >= this.options.maxRelays) this.byRelay.delete(this.byRelay.keys().next().value as string);
    } else {
      this.byRelay.delete(relayId); // re-insert as the most recent
    }
    this.byRelay.set(relayId, users);
    this.expire(users, now);
    const existing = users.get(user);
    if (existing === undefined) {
      if (users.size >= this.options.maxViewersPerRelay) return 'quota-exhausted';
      let fromRange = 0;
      for (const u of users.values()) if (u.range === range) fromRange++;
      if (fromRange >= this.options.maxReportersPerRange) return 'range-limit';
    }
    const entry = existing ?? { penalty: 0, lastAt: now, range };
    if (entry.penalty + this.options.reportPenalty > this.options.maxPenaltyPerViewer + 1e-9) return 'quota-exhausted';
    entry.penalty += this.options.reportPenalty;
    entry.lastAt = now;
    users.set(user, entry);
    return 'counted';
  }

  /** 0 (enough users reported it) .. 1 (fewer than minReporters users in the window). */
  health(relayId: string): number {
    const users = this.byRelay.get(relayId);
    if (users === undefined) return 1;
    this.expire(users, this.now());
    if (users.size === 0) {
      this.byRelay.delete(relayId);
      return 1;
    }
    if (users.size < this.options.minReporters) return 1;
    let penalty = 0;
    for (const v of users.values()) penalty += v.penalty;
    return Math.max(0, 1 - penalty);
  }

  /** Distinct users whose reports against the relay still count. */
  reporters(relayId: string): number {
    const users = this.byRelay.get(relayId);
    if (users === undefined) return 0;
    this.expire(users, this.now());
    return users.size;
  }

  private expire(users: Map<string, UserPenalty>, now: number): void {
    const cutoff = now - this.options.windowMs;
    for (const [k, v] of users) if (v.lastAt < cutoff) users.delete(k);
  }
}
