import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { DEFAULT_HEDGE_DELAY_MS, DEFAULT_LOW_BUFFER_MS, MAX_HEDGE_DELAY_MS, MAX_LOW_BUFFER_MS } from './constants.js';

/**
 * How the SDK keeps relays from ever costing the viewer time (`RelaycastClientOptions.startup`).
 * While less than `lowBufferMs` of media is buffered ahead of the playhead (startup, after a seek
 * or a stall), a load never waits for a relay: with no relay connected, or no digest at hand yet to
 * verify a relay's bytes, it goes straight to the origin; with both, relay and origin race (the
 * origin joins after a delay that shrinks with the buffer) and the source whose first byte comes
 * second is cancelled. Above `lowBufferMs` relays serve alone, under the time-to-first-byte deadline.
 */
export interface StartupOptions {
  /**
   * Buffer ahead of the playhead (ms of media) below which loads never wait for relays.
   * 0 turns the policy off (relays first, always). Bounds 0-60,000. Default: DEFAULT_LOW_BUFFER_MS (1,500).
   */
  lowBufferMs?: number | undefined;
  /**
   * How long a relay has alone, ms, before the origin joins the race, when the buffer is just under
   * `lowBufferMs`; it shrinks in proportion to the buffer, down to 0 (both at once) with an empty one.
   * Bounds 0-5,000. Default: DEFAULT_HEDGE_DELAY_MS (300).
   */
  hedgeDelayMs?: number | undefined;
  /**
   * `false`: `start()` connects the tracker (and gets the shortlist) but opens no relay connection
   * until `RelaycastClient.connectRelays()`, so WebRTC setup (DTLS and SCTP handshakes, CPU the first
   * frame would otherwise share) comes after startup. The hls.js adapter calls it at the first frame.
   * Meanwhile a load that has the buffer to wait (at least `lowBufferMs`) waits for a relay being set
   * up, up to its time-to-first-byte deadline. Default: true (relays connect at `start()`).
   */
  relaysAtStart?: boolean | undefined;
}

/** StartupOptions with every default applied. */
export interface ResolvedStartupOptions {
  lowBufferMs: number;
  hedgeDelayMs: number;
  relaysAtStart: boolean;
}

/** Throws RC_ERR_CONFIG_INVALID for a value out of bounds; fills in the defaults. */
export function resolveStartupOptions(options: StartupOptions = {}): ResolvedStartupOptions {
  const lowBufferMs = options.lowBufferMs ?? DEFAULT_LOW_BUFFER_MS;
  const hedgeDelayMs = options.hedgeDelayMs ?? DEFAULT_HEDGE_DELAY_MS;
  if (!(Number.isFinite(lowBufferMs) && lowBufferMs >= 0 && lowBufferMs <= MAX_LOW_BUFFER_MS)) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `startup.lowBufferMs must be 0-${MAX_LOW_BUFFER_MS} ms`, { details: { lowBufferMs } });
  }
  if (!(Number.isFinite(hedgeDelayMs) && hedgeDelayMs >= 0 && hedgeDelayMs <= MAX_HEDGE_DELAY_MS)) {
    throw new RelaycastError(ErrorCode.CONFIG_INVALID, `startup.hedgeDelayMs must be 0-${MAX_HEDGE_DELAY_MS} ms`, { details: { hedgeDelayMs } });
  }
  return { lowBufferMs, hedgeDelayMs, relaysAtStart: options.relaysAtStart !== false };
}

/** What the policy knows when a load starts. */
export interface LoadSituation {
  /** Media buffered ahead of the playhead, ms; undefined when the player does not say (then never low). */
  bufferAheadMs: number | undefined;
  /** A relay connection is open and has room for a request. */
  relayReady: boolean;
}

/** Where a load goes first. */
export type LoadPlan =
  /** Relays alone, origin only as a fallback (time-to-first-byte deadline, stall, absent). */
  | { source: 'relay' }
  /**
   * Relay first; the origin joins after `originAfterMs` without a relay byte; the later first byte
   * loses. The relay's head start also covers its digest: a segment whose digest is not at hand
   * by then goes to the origin alone (relay bytes are never taken unverifiable).
   */
  | { source: 'race'; originAfterMs: number }
  /** The origin at once: the buffer is low and a relay would have to be waited for. */
  | { source: 'origin' };

/**
 * Decides where one load goes. Pure: the why is in the branches.
 *  - A buffer that covers the wait (or one the player does not report) lets relays serve alone:
 *    the time-to-first-byte deadline bounds what a slow relay costs, and relays are what the
 *    platform pays less for.
 *  - A low buffer with no relay goes to the origin now: that is what plain hls.js would do, so
 *    startup costs nothing extra.
 *  - A low buffer with a relay races: a relay that answers within `originAfterMs` (digest lookup
 *    included) serves alone and the origin is never asked, else the origin joins and the first byte
 *    wins. The emptier the buffer, the sooner the origin joins; at zero both start together.
 */
export function planLoad(situation: LoadSituation, options: ResolvedStartupOptions): LoadPlan {
  const ahead = situation.bufferAheadMs;
  const low = ahead !== undefined && ahead < options.lowBufferMs;
  if (!low) return { source: 'relay' };
  if (!situation.relayReady) return { source: 'origin' };
  const share = Math.max(0, ahead) / options.lowBufferMs;
  return { source: 'race', originAfterMs: Math.round(options.hedgeDelayMs * share) };
}
