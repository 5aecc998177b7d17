import type { KeyObject } from 'node:crypto';
import { ErrorCode, RelaycastError, bytesEqual, toHex, type Receipt, type SessionGrant } from '@relaycast/protocol';

/** What the relay knows about one paying viewer session while it serves it. */
export interface PayingSession {
  /** Hex of the session key (the map key). */
  readonly id: string;
  grant: SessionGrant;
  /** base58 payer id of the grant. */
  payer: string;
  /** Imported once per session: importing a raw key costs about as much as verifying. */
  keyObject: KeyObject;
  /** Newest receipt stored for (session, current grant, this relay). */
  newest: Receipt | undefined;
  /**
   * Bytes this relay delivered to the session under its current grant (plus what an earlier grant
   * left unreceipted); starts at the stored receipt's count so a restart forgives nothing and
   * charges nothing twice.
   */
  servedBytes: number;
  /** Origin bytes the session's requests caused (cache misses); beyond its receipted bytes they count as owed. */
  originBytes: number;
  /** Channels bound to this session now; a session with none may be forgotten. */
  channels: number;
  /** The last receipt could not be stored: paid delivery stops until one can. */
  storeFailed: boolean;
}

/**
 * Bounded in-memory index of paying sessions, keyed by session key so that credit follows the
 * viewer across channels (reconnecting does not reset what it owes). Durable state lives in the
 * receipt store; a forgotten session is rebuilt from it.
 */
export class SessionLedger {
  private readonly sessions = new Map<string, PayingSession>();

  constructor(private readonly maxSessions: number) {}

  get size(): number {
    return this.sessions.size;
  }

  get(sessionKey: Uint8Array): PayingSession | undefined {
    return this.sessions.get(toHex(sessionKey));
  }

  /**
   * The session for `grant.sessionKey`, created with `init` when new; another grant for the same
   * session key replaces the old one (renewal): receipts then count under the new grant (`newestOf`
   * reads its stored newest), and what the old grant left unreceipted stays owed. Throws
   * RC_ERR_RELAY_OVERLOADED when full of sessions that all have open channels.
   */
  bind(
    grant: SessionGrant,
    payer: string,
    init: () => Pick<PayingSession, 'keyObject' | 'newest'>,
    newestOf: (grantNonce: Uint8Array) => Receipt | undefined = () => undefined,
  ): PayingSession {
    const id = toHex(grant.sessionKey);
    const known = this.sessions.get(id);
    if (known !== undefined) {
      if (!bytesEqual(known.grant.nonce, grant.nonce)) {
        const owed = SessionLedger.unreceiptedBytes(known);
        const paidOrigin = known.newest?.cumulativeBytes ?? 0;
        known.newest = newestOf(grant.nonce);
        const base = known.newest?.cumulativeBytes ?? 0;
        known.servedBytes = base + owed;
        known.originBytes = base + Math.max(0, known.originBytes - paidOrigin);
      }
      known.grant = grant;
      known.payer = payer;
      known.channels++;
      // Map order doubles as recency for eviction.
      this.sessions.delete(id);
      this.sessions.set(id, known);
      return known;
    }
    if (this.sessions.size >= this.maxSessions && !this.evictOne()) {
      throw new RelaycastError(ErrorCode.RELAY_OVERLOADED, `at most ${this.maxSessions} paying sessions at once`);
    }
    const { keyObject, newest } = init();
    const session: PayingSession = {
      id,
      grant,
      payer,
      keyObject,
      newest,
      servedBytes: newest?.cumulativeBytes ?? 0,
      originBytes: newest?.cumulativeBytes ?? 0,
      channels: 1,
      storeFailed: false,
    };
    this.sessions.set(id, session);
    return session;
  }

  release(session: PayingSession): void {
    if (session.channels > 0) session.channels--;
  }

  /** Delivered bytes not yet covered by a stored receipt. */
  static unreceiptedBytes(session: PayingSession): number {
    return Math.max(0, session.servedBytes - (session.newest?.cumulativeBytes ?? 0));
  }

  /**
   * Origin bytes the session caused beyond what it has receipted: a viewer that pays for N bytes
   * may make the relay fetch N bytes from the origin; past that, fetches are owed like served bytes.
   */
  static unpaidOriginBytes(session: PayingSession): number {
    return Math.max(0, session.originBytes - (session.newest?.cumulativeBytes ?? 0));
  }

  /** Σ unreceipted bytes over the sessions in memory (status figure). */
  totalUnreceiptedBytes(): number {
    let total = 0;
    for (const s of this.sessions.values()) total += SessionLedger.unreceiptedBytes(s);
    return total;
  }

  private evictOne(): boolean {
    for (const [id, s] of this.sessions) {
      if (s.channels === 0) {
        this.sessions.delete(id);
        return true;
      }
    }
    return false;
  }
}
