/**
 * Hash behind rendezvous (highest-random-weight) selection: a 53-bit cyrb53-style hash of
 * `swarmId \0 relayId`, two 32-bit multiply-xor lanes with a final avalanche. It is not
 * cryptographic; it only has to spread well and run fast, because a join hashes every relay.
 *
 * The algorithm is part of the tracker's observable behaviour: several tracker instances must rank
 * identically for viewers of one stream to land on the same relays, so changing it moves swarms.
 */

interface LaneState {
  h1: number;
  h2: number;
}

function absorb(state: LaneState, text: string): void {
  let { h1, h2 } = state;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ ch, 2654435761);
    h2 = Math.imul(h2 ^ ch, 1597334677);
  }
  state.h1 = h1;
  state.h2 = h2;
}

function finish(state: LaneState): number {
  let h1 = Math.imul(state.h1 ^ (state.h1 >>> 16), 2246822507);
  h1 ^= Math.imul(state.h2 ^ (state.h2 >>> 13), 3266489909);
  let h2 = Math.imul(state.h2 ^ (state.h2 >>> 16), 2246822507);
  h2 ^= Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  return 4294967296 * (2097151 & h2) + (h1 >>> 0);
}

/**
 * Returns a function giving each relay's hash weight in (0, 1] for one swarm. The swarm id (often a
 * long URL) is absorbed once and its state reused for every relay.
 */
export function swarmHasher(swarmId: string): (relayId: string) => number {
  const prefix: LaneState = { h1: 0xdeadbeef, h2: 0x41c6ce57 };
  absorb(prefix, swarmId);
  absorb(prefix, '\u0000');
  return (relayId) => {
    const state = { h1: prefix.h1, h2: prefix.h2 };
    absorb(state, relayId);
    return (finish(state) + 1) / 2 ** 53;
  };
}

/** Hash weight in (0, 1] of one (swarm, relay) pair. */
export function rendezvousWeight(swarmId: string, relayId: string): number {
  return swarmHasher(swarmId)(relayId);
}
