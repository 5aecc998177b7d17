import type { Reachability } from '@relaycast/protocol';

/** Why a segment (or its rest) came from the origin instead of a relay. */
export type FallbackReason =
  | 'ttfb-timeout'
  | 'stall'
  | 'absent'
  | 'relay-error'
  | 'channel-closed'
  | 'no-relay'
  /** The relay's bytes failed verification; the origin's copy replaced them. */
  | 'integrity'
  /** The origin publishes no digest for the segment and the policy is `refuse`. */
  | 'no-digest'
  /** Startup policy: the buffer was low and no relay (or no digest) was ready, so the origin served at once. */
  | 'startup'
  /** Startup policy: relay and origin raced with a low buffer and the origin's first byte came first. */
  | 'hedge';

export const FALLBACK_REASONS: readonly FallbackReason[] = [
  'ttfb-timeout',
  'stall',
  'absent',
  'relay-error',
  'channel-closed',
  'no-relay',
  'integrity',
  'no-digest',
  'startup',
  'hedge',
];

/** How startup went: the `startup` part of the stats (times from `RelaycastClient.start()`). */
export interface StartupStats {
  /** From start() to the first segment loaded from any source, ms; undefined until then. */
  firstSegmentMs: number | undefined;
  /** From start() to the first relay byte received for a load, ms; undefined until then. */
  firstRelayByteMs: number | undefined;
  /** Loads where relay and origin raced (low buffer, relay and digest ready). */
  races: number;
  /** Of those, the races the origin joined (no relay byte within the head start). */
  originJoined: number;
  /** Of those, the races the origin won (its first byte came first; the relay was cancelled). */
  originWon: number;
  /**
   * Origin bytes of the loads the policy sent there (fallback `startup`) or the origin won
   * (`hedge`): what not waiting for relays cost in offload. The relay share outside startup is
   * `bytesFromRelays / (bytesFromRelays + bytesFromOrigin - originBytes)`.
   */
  originBytes: number;
}

/** What one relay delivered to this client: an entry of `perRelay` in the stats. */
export interface RelayStatsEntry {
  /** Bytes this relay delivered that ended up in loaded segments. */
  bytes: number;
  /** Requests sent to this relay. */
  requests: number;
  /** Requests that ended in a fallback to the origin. */
  failures: number;
  /** Of `bytes`, those checked against the origin's digest (or copy): the only bytes a relay may be paid for. */
  bytesVerified: number;
  /** Segments from this relay that failed verification (discarded, refetched from the origin, reported). */
  integrityFailures: number;
  /** How the latest connection to it travels ('direct' or through TURN, 'relayed'), when the WebRTC stack says. */
  path?: 'direct' | 'relayed' | undefined;
  /** The tracker's reachability verdict on the relay when it was handed out; undefined while untested. */
  reachability?: Reachability | undefined;
  /** Latest successful connection setup to it, ms: from the attempt's start (its offer is created at once) to the data channel open. */
  setupMs?: number | undefined;
  /** Connection attempts to it that never opened (every retry counts); absent while none failed. */
  setupFailures?: number | undefined;
}

/**
 * Why a relay connection attempt never opened its data channel: `timeout` (not open within the
 * connect timeout), `signaling` (the offer could not go out through the tracker, or the relay's
 * answer was unusable), `ice` / `dtls` (the peer connection failed at that stage, when the WebRTC
 * stack tells which), `failed` (the peer connection failed, stage not told), `closed` (the channel or
 * peer connection closed before opening), `other` (anything else, e.g. no WebRTC implementation).
 */
export type SetupFailureCause = 'timeout' | 'signaling' | 'ice' | 'dtls' | 'failed' | 'closed' | 'other';

export const SETUP_FAILURE_CAUSES: readonly SetupFailureCause[] = ['timeout', 'signaling', 'ice', 'dtls', 'failed', 'closed', 'other'];

/** Relay connection setups: the `setup` part of the stats. attempts − opened − failed are in progress (or cut short by close()). */
export interface SetupStats {
  /** Connection attempts started; a retry is a new attempt. */
  attempts: number;
  /** Attempts whose data channel opened. */
  opened: number;
  /** Attempts that never opened, every retry included. */
  failed: number;
  /** `failed` by cause; every cause is present (0 when it never happened). */
  failedByCause: Record<SetupFailureCause, number>;
}

/** How relay bytes were checked: the `integrity` part of the stats. */
export interface IntegrityStats {
  /** Relay segments whose bytes did not match the origin's digest or copy. */
  failures: number;
  /** Relay bytes delivered after they matched the origin's digest or an audit. */
  verifiedBytes: number;
  /** Relay bytes delivered unchecked (no digest published, `audit` policy, not sampled). */
  unverifiedBytes: number;
  /** Relay segments compared with the origin's copy under the `audit` policy. */
  audits: number;
  /** Segment loads for which the origin published no digest. */
  segmentsWithoutDigest: number;
}

/** Plain JSON snapshot of everything the SDK counts. */
export interface SdkStatsSnapshot {
  /** Bytes of loaded segments that came from relays. */
  bytesFromRelays: number;
  /** Bytes of loaded segments that came from the origin. */
  bytesFromOrigin: number;
  /** Relay bytes thrown away because the origin's copy of the resource turned out to differ. */
  bytesDiscarded: number;
  /** bytesFromRelays / (bytesFromRelays + bytesFromOrigin); 0 when nothing loaded yet. */
  relayShare: number;
  /** By relay id (base58 public key): every relay this client connected to, tried to connect to, or sent a request to. */
  perRelay: Record<string, RelayStatsEntry>;
  /** Every reason is present (0 when it never happened) so dashboards get a stable shape. */
  fallbacks: { count: number; byReason: Record<FallbackReason, number> };
  /** Segments (or ranges) completely loaded, whatever the source. */
  segments: number;
  /** How relay bytes were checked. */
  integrity: IntegrityStats;
  /** Relay connection setups: attempts, opened, failed by cause (per relay: `setupMs`, `setupFailures`). */
  setup: SetupStats;
  /**
   * Relay loads for which no digest could be found, by cause (under the `refuse` policy each one
   * went to the origin with fallback reason `no-digest`): `absent` (the sidecar is 404/410),
   * `failed` (network error, other HTTP status, time-out), `malformed` (it did not decode, e.g. a
   * read caught mid-rewrite), `unlisted` (the sidecar lacks the segment), `no-playlist` (the load
   * named no media playlist). Every cause is present (0 when it never happened).
   */
  digestsUnavailable: Record<'absent' | 'failed' | 'malformed' | 'unlisted' | 'no-playlist', number>;
  /** The latest of those, with the sidecar URL and a short detail (`origin answered 503`, `timed out after 2000 ms`…); undefined while there was none. */
  lastDigestProblem:
    | {
        /** One of the `digestsUnavailable` causes. */
        cause: 'absent' | 'failed' | 'malformed' | 'unlisted' | 'no-playlist';
        /** The sidecar's URL; undefined for `no-playlist`. */
        sidecarUrl: string | undefined;
        /** What went wrong, in a few words. */
        detail: string;
        /** When it happened, ms since the epoch. */
        atMs: number;
      }
    | undefined;
  /** Startup: time to the first segment and first relay byte, and the relay/origin races (see StartupOptions). */
  startup: StartupStats;
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
  private readonly setup: SetupStats = {
    attempts: 0,
    opened: 0,
    failed: 0,
    failedByCause: Object.fromEntries(SETUP_FAILURE_CAUSES.map((c) => [c, 0])) as Record<SetupFailureCause, number>,
  };
  private readonly integrity: IntegrityStats = { failures: 0, verifiedBytes: 0, unverifiedBytes: 0, audits: 0, segmentsWithoutDigest: 0 };
  private readonly digestsUnavailable: SdkStatsSnapshot['digestsUnavailable'] = { absent: 0, failed: 0, malformed: 0, unlisted: 0, 'no-playlist': 0 };
  private lastDigestProblem: SdkStatsSnapshot['lastDigestProblem'];
  private startedAt: number | undefined;
  private readonly startup: StartupStats = { firstSegmentMs: undefined, firstRelayByteMs: undefined, races: 0, originJoined: 0, originWon: 0, originBytes: 0 };

  /** The client started (the clock of the `startup` times); later calls change nothing. */
  started(): void {
    this.startedAt ??= performance.now();
  }

  /** A race began (`joined` false) or the origin joined it (`joined` true). */
  race(joined: boolean): void {
    if (joined) this.startup.originJoined++;
    else this.startup.races++;
  }

  /** The origin won a race. */
  raceWonByOrigin(): void {
    this.startup.originWon++;
  }

  /** Origin bytes of a load the startup policy sent to the origin or the origin won. */
  startupOriginBytes(bytes: number): void {
    this.startup.originBytes += bytes;
  }

  private since(): number | undefined {
    return this.startedAt === undefined ? undefined : Math.round(performance.now() - this.startedAt);
  }

  private relay(relayId: string): RelayStatsEntry {
    let e = this.perRelay.get(relayId);
    if (e === undefined) {
      e = { bytes: 0, requests: 0, failures: 0, bytesVerified: 0, integrityFailures: 0 };
      this.perRelay.set(relayId, e);
    }
    return e;
  }

  relayRequest(relayId: string): void {
    this.relay(relayId).requests++;
  }

  relayBytes(relayId: string, bytes: number): void {
    this.startup.firstRelayByteMs ??= this.since();
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

  /** Takes back origin bytes delivered and then thrown away with the relay bytes they continued. */
  originBytesDiscarded(bytes: number): void {
    this.bytesFromOrigin -= bytes;
    this.bytesDiscarded += bytes;
  }

  relayReachability(relayId: string, reachability: RelayStatsEntry['reachability']): void {
    if (reachability !== undefined) this.relay(relayId).reachability = reachability;
  }

  relayPath(relayId: string, path: 'direct' | 'relayed' | undefined): void {
    this.relay(relayId).path = path;
  }

  /** A connection attempt to a relay began. */
  setupAttempt(): void {
    this.setup.attempts++;
  }

  /** A connection attempt opened its data channel after `setupMs`. */
  setupOpened(relayId: string, setupMs: number): void {
    this.setup.opened++;
    this.relay(relayId).setupMs = setupMs;
  }

  /** A connection attempt ended without opening. */
  setupFailed(relayId: string, cause: SetupFailureCause): void {
    this.setup.failed++;
    this.setup.failedByCause[cause]++;
    const e = this.relay(relayId);
    e.setupFailures = (e.setupFailures ?? 0) + 1;
  }

  relayBytesVerified(relayId: string, bytes: number): void {
    this.relay(relayId).bytesVerified += bytes;
    this.integrity.verifiedBytes += bytes;
  }

  relayBytesUnverified(bytes: number): void {
    this.integrity.unverifiedBytes += bytes;
  }

  integrityFailure(relayId: string): void {
    this.relay(relayId).integrityFailures++;
    this.integrity.failures++;
  }

  audited(): void {
    this.integrity.audits++;
  }

  segmentWithoutDigest(): void {
    this.integrity.segmentsWithoutDigest++;
  }

  /** A relay load found no digest (see SdkStatsSnapshot.digestsUnavailable). */
  digestUnavailable(cause: keyof SdkStatsSnapshot['digestsUnavailable'], sidecarUrl: string | undefined, detail: string): void {
    this.digestsUnavailable[cause]++;
    this.lastDigestProblem = { cause, sidecarUrl, detail, atMs: Date.now() };
  }

  fallback(reason: FallbackReason, relayId: string | undefined): void {
    this.fallbackCount++;
    this.byReason[reason]++;
    if (relayId !== undefined) this.relay(relayId).failures++;
  }

  segmentLoaded(): void {
    this.startup.firstSegmentMs ??= this.since();
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
      setup: { ...this.setup, failedByCause: { ...this.setup.failedByCause } },
      integrity: { ...this.integrity },
      digestsUnavailable: { ...this.digestsUnavailable },
      lastDigestProblem: this.lastDigestProblem === undefined ? undefined : { ...this.lastDigestProblem },
      startup: { ...this.startup },
    };
  }
}
