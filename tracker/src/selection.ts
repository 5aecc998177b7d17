/**
 * Relay selection: a pure function from the registry's view of the relays and one viewer's request
 * to a ranked shortlist. Weighted rendezvous (highest-random-weight) hashing of swarm × relay gives
 * cache affinity: every viewer of a stream ranks the same relays first, so their caches stay warm,
 * and because each relay's score depends only on itself and the swarm, removing a relay never
 * reorders the others (only the viewers that were on it move).
 */
import type { Reachability } from '@relaycast/protocol';
import {
  DEFAULT_MIN_HEALTH,
  SELECTION_NEEDS_TURN_TIER,
  SELECTION_UNTESTED_TIER,
  SELECTION_BASE_WEIGHT,
  SELECTION_REGION_BONUS,
  SELECTION_WARM_BONUS,
} from './constants.js';
import { swarmHasher } from './rendezvous-hash.js';

export interface RelayCandidate {
  relayId: string;
  region: string;
  /** Maximum concurrent viewer sessions. */
  capacity: number;
  /** Current viewer sessions. */
  load: number;
  /** 0 (bad) .. 1 (good). */
  health: number;
  /** Streams (swarm or playlist URLs) the relay advertises as warm. */
  streams: readonly string[];
  /**
   * Outcome of the tracker's reachability test; undefined while untested (ranked after every tested
   * relay, still handed out to fill a list).
   */
  reachability?: Reachability | undefined;
}

export interface SelectionRequest {
  swarmId: string;
  /** Viewer's region; relays there get SELECTION_REGION_BONUS. Empty or undefined: no preference. */
  region?: string | undefined;
  /** Relays wanted; the result may be shorter when fewer are eligible. */
  count: number;
  /** Relays never to return (e.g. ones the viewer already uses or reported broken). */
  exclude?: ReadonlySet<string> | undefined;
  /** Relays below this health are skipped. Default: DEFAULT_MIN_HEALTH (0.2). */
  minHealth?: number | undefined;
}

/** Directory of a URL ("https://cdn/x/master.m3u8" → "https://cdn/x/"): media playlists sit beside or below the master. */
function directoryOf(url: string): string {
  const slash = url.lastIndexOf('/');
  return slash < 0 ? url : url.slice(0, slash + 1);
}

/**
 * Relays advertise the media playlists they hold, viewers join by master playlist: a relay is warm
 * for a swarm when it advertises the swarm itself or anything under the master's directory.
 */
function isWarm(relay: RelayCandidate, swarmId: string): boolean {
  const dir = directoryOf(swarmId);
  return relay.streams.some((s) => s === swarmId || s.startsWith(dir));
}

/** Selection weight of an eligible relay (before hashing); undefined when it must not be handed out. */
export function relayWeight(relay: RelayCandidate, request: SelectionRequest): number | undefined {
  if (request.exclude?.has(relay.relayId) === true) return undefined;
  if (!(relay.capacity > 0) || relay.load >= relay.capacity) return undefined;
  if (!(relay.health >= (request.minHealth ?? DEFAULT_MIN_HEALTH))) return undefined;
  const free = (relay.capacity - relay.load) / relay.capacity;
  let weight = Math.min(1, relay.health) * (SELECTION_BASE_WEIGHT + (1 - SELECTION_BASE_WEIGHT) * free);
  if (request.region !== undefined && request.region !== '' && relay.region === request.region) weight *= SELECTION_REGION_BONUS;
  if (isWarm(relay, request.swarmId)) weight *= SELECTION_WARM_BONUS;
  return weight;
}

/**
 * Tested-reachable relays first. Relays that failed the reachability test come next: a viewer
 * behind NAT reaches them only through TURN, which costs a hop and TURN bandwidth. Untested relays
 * come last: their capacity, region and streams are their own word, and a relay that has not
 * answered the probe may not exist at all (fake registrations, issue 14 finding 9). Both are still
 * handed out to fill the list.
 */
export function selectionTier(relay: RelayCandidate): number {
  if (relay.reachability === undefined) return SELECTION_UNTESTED_TIER;
  return relay.reachability === 'needs-turn' ? SELECTION_NEEDS_TURN_TIER : 0;
}

/**
 * Ranks relays for a request, best first, at most `count`. Deterministic: the same relays (in any
 * input order) and request give the same result.
 */
export function rankRelays(relays: readonly RelayCandidate[], request: SelectionRequest): RelayCandidate[] {
  const count = Math.max(0, Math.floor(request.count));
  if (count === 0) return [];
  const hash = swarmHasher(request.swarmId);
  const scored: { relay: RelayCandidate; score: number; tier: number }[] = [];
  for (const relay of relays) {
    const weight = relayWeight(relay, request);
    if (weight === undefined) continue;
    const h = hash(relay.relayId);
    // Weighted rendezvous: score = -w / ln(h) makes P(relay ranks first) = w / Σw while keeping
    // each score independent of the other relays. h = 1 would divide by zero: treat it as the max.
    const score = h >= 1 ? Number.POSITIVE_INFINITY : -weight / Math.log(h);
    scored.push({ relay, score, tier: selectionTier(relay) });
  }
  scored.sort((a, b) => a.tier - b.tier || b.score - a.score || (a.relay.relayId < b.relay.relayId ? -1 : a.relay.relayId > b.relay.relayId ? 1 : 0));
  return scored.slice(0, count).map((s) => s.relay);
}
