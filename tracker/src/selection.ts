/**
 * Relay selection: a pure function from the registry's view of the relays and one viewer's request
 * to a ranked shortlist. Rendezvous (highest-random-weight) hashing of swarm × relay gives cache
 * affinity: every viewer of a stream ranks the same relays first, so their caches stay warm, and
 * removing a relay only moves the viewers that were on it.
 */

export interface RelayCandidate {
  relayId: string;
  region: string;
  /** Maximum concurrent viewer sessions. */
  capacity: number;
  /** Current viewer sessions. */
  load: number;
  /** 0 (bad) .. 1 (good). */
  health: number;
  /** Streams (playlist or swarm URLs) the relay advertises as warm. */
  streams: readonly string[];
}

export interface SelectionRequest {
  swarmId: string;
  region?: string | undefined;
  count: number;
  exclude?: ReadonlySet<string> | undefined;
  /** Relays below this health are skipped. */
  minHealth: number;
}

/** Region match multiplies the score by this; same-region relays win unless much busier. */
const REGION_BONUS = 1.5;
/** Advertising the swarm (already warm) multiplies the score by this. */
const WARM_BONUS = 1.25;

/** 64-bit FNV-1a over UTF-16 code units, returned as a float in (0, 1]. */
export function rendezvousWeight(swarmId: string, relayId: string): number {
  let h = 0xcbf29ce484222325n;
  const key = `${swarmId}\u0000${relayId}`;
  for (let i = 0; i < key.length; i++) {
    h ^= BigInt(key.charCodeAt(i));
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  // Finalise (splitmix64-style) so nearby keys do not give correlated weights.
  h ^= h >> 33n;
  h = (h * 0xff51afd7ed558ccdn) & 0xffffffffffffffffn;
  h ^= h >> 33n;
  return (Number(h >> 11n) + 1) / 2 ** 53;
}

/** Score of one relay for one request; undefined when the relay must not be handed out. */
export function scoreRelay(relay: RelayCandidate, request: SelectionRequest): number | undefined {
  if (request.exclude?.has(relay.relayId) === true) return undefined;
  if (relay.capacity <= 0 || relay.load >= relay.capacity) return undefined;
  if (relay.health < request.minHealth) return undefined;
  // Weighted rendezvous: -w/ln(h) keeps the HRW property while letting weight scale the share.
  const free = (relay.capacity - relay.load) / relay.capacity;
  let weight = relay.health * (0.25 + 0.75 * free);
  if (request.region !== undefined && request.region !== '' && relay.region === request.region) weight *= REGION_BONUS;
  if (relay.streams.some((s) => s === request.swarmId || s.startsWith(stripFile(request.swarmId)))) weight *= WARM_BONUS;
  const h = rendezvousWeight(request.swarmId, relay.relayId);
  return -weight / Math.log(h === 1 ? 1 - Number.EPSILON : h);
}

/** Directory of a URL ("https://cdn/x/master.m3u8" → "https://cdn/x/"): media playlists sit beside the master. */
function stripFile(url: string): string {
  const slash = url.lastIndexOf('/');
  return slash < 0 ? url : url.slice(0, slash + 1);
}

/** Ranks relays for a request, best first, at most `count`. */
export function rankRelays(relays: readonly RelayCandidate[], request: SelectionRequest): RelayCandidate[] {
  const scored: { relay: RelayCandidate; score: number }[] = [];
  for (const relay of relays) {
    const score = scoreRelay(relay, request);
    if (score !== undefined) scored.push({ relay, score });
  }
  scored.sort((a, b) => b.score - a.score || (a.relay.relayId < b.relay.relayId ? -1 : 1));
  return scored.slice(0, Math.max(0, request.count)).map((s) => s.relay);
}
