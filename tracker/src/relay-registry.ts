import type { NatReport } from '@relaycast/protocol';
import type { RelayCandidate } from './selection.js';

/** What the tracker knows about one registered relay. */
export interface RegisteredRelay extends RelayCandidate {
  pricePerGiB: string;
  /** performance.now() of the last register/heartbeat. */
  lastSeenAt: number;
  /** Connection the relay is reachable on (its peer id on the tracker). */
  connectionId: string;
  /** Address range (IPv4 /24, IPv6 /48) the relay's connection comes from; relays per range are capped. */
  range: string;
  /** The relay's own view of its network, from register/heartbeat. */
  nat?: NatReport | undefined;
  /** `ip:port` the reachability probe reached, when it did. */
  reachableAddress?: string | undefined;
  /** performance.now() of the last reachability verdict. */
  testedAt?: number | undefined;
  /** The NAT report changed since the last test; retest once minRetestMs has passed. */
  retestWanted?: boolean | undefined;
}

/** Registered relays by relay id. One live connection per relay: a re-registration replaces the old one. */
export class RelayRegistry {
  private readonly relays = new Map<string, RegisteredRelay>();

  get size(): number {
    return this.relays.size;
  }

  get(relayId: string): RegisteredRelay | undefined {
    return this.relays.get(relayId);
  }

  /** Adds or replaces; returns the entry it replaced (whose connection the caller closes). */
  upsert(relay: RegisteredRelay): RegisteredRelay | undefined {
    const previous = this.relays.get(relay.relayId);
    this.relays.set(relay.relayId, relay);
    return previous;
  }

  /** Removes the relay only if it is still bound to `connectionId` (a newer registration wins). */
  remove(relayId: string, connectionId: string): boolean {
    const r = this.relays.get(relayId);
    if (r === undefined || r.connectionId !== connectionId) return false;
    this.relays.delete(relayId);
    return true;
  }

  /** Relays silent since before `deadline`. */
  stale(deadline: number): RegisteredRelay[] {
    return [...this.relays.values()].filter((r) => r.lastSeenAt < deadline);
  }

  all(): RegisteredRelay[] {
    return [...this.relays.values()];
  }
}
