import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { rendezvousWeight } from './rendezvous-hash.js';
import { rankRelays, type RelayCandidate } from './selection.js';

function relay(i: number, overrides: Partial<RelayCandidate> = {}): RelayCandidate {
  return { relayId: `relay-${i.toString().padStart(3, '0')}`, region: 'eu', capacity: 100, load: 0, health: 1, streams: [], ...overrides };
}

function relays(n: number, overrides: (i: number) => Partial<RelayCandidate> = () => ({})): RelayCandidate[] {
  return Array.from({ length: n }, (_, i) => relay(i, overrides(i)));
}

const ids = (list: readonly RelayCandidate[]): string[] => list.map((r) => r.relayId);
const swarm = (i: number): string => `https://cdn.example/stream-${i}/master.m3u8`;

describe('rendezvousWeight', () => {
  it('is deterministic and in (0, 1]', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (s, r) => {
        const w = rendezvousWeight(s, r);
        expect(w).toBeGreaterThan(0);
        expect(w).toBeLessThanOrEqual(1);
        expect(rendezvousWeight(s, r)).toBe(w);
      }),
    );
  });

  it('does not confuse the swarm/relay boundary', () => {
    expect(rendezvousWeight('ab', 'c')).not.toBe(rendezvousWeight('a', 'bc'));
  });
});

describe('rankRelays', () => {
  it('returns at most count relays, best first, and the same order for any input order', () => {
    const all = relays(20);
    const request = { swarmId: swarm(1), count: 5 };
    const ranked = ids(rankRelays(all, request));
    expect(ranked).toHaveLength(5);
    expect(new Set(ranked).size).toBe(5);
    fc.assert(
      fc.property(fc.shuffledSubarray(all, { minLength: all.length, maxLength: all.length }), (shuffled) => {
        expect(ids(rankRelays(shuffled, request))).toEqual(ranked);
      }),
    );
  });

  it('gives every viewer of a swarm the same top relays (cache affinity)', () => {
    const all = relays(30);
    const first = ids(rankRelays(all, { swarmId: swarm(7), count: 3 }));
    for (let i = 0; i < 10; i++) expect(ids(rankRelays(all, { swarmId: swarm(7), count: 3 }))).toEqual(first);
  });

  it('spreads different swarms over the relays', () => {
    const all = relays(10);
    const firstPicks = new Map<string, number>();
    const swarms = 500;
    for (let i = 0; i < swarms; i++) {
      const top = rankRelays(all, { swarmId: swarm(i), count: 1 })[0] as RelayCandidate;
      firstPicks.set(top.relayId, (firstPicks.get(top.relayId) ?? 0) + 1);
    }
    expect(firstPicks.size).toBe(10);
    // Equal weights: each relay should lead about 50 swarms; allow generous statistical slack.
    for (const n of firstPicks.values()) {
      expect(n).toBeGreaterThan(20);
      expect(n).toBeLessThan(90);
    }
  });

  it('excludes full relays, unhealthy relays, zero-capacity relays and excluded ids', () => {
    const all = [relay(0, { load: 100 }), relay(1, { load: 150 }), relay(2, { capacity: 0 }), relay(3, { health: 0.1 }), relay(4), relay(5)];
    const ranked = ids(rankRelays(all, { swarmId: swarm(1), count: 10, exclude: new Set(['relay-005']) }));
    expect(ranked).toEqual(['relay-004']);
    expect(ids(rankRelays(all, { swarmId: swarm(1), count: 10, minHealth: 0.05 })).sort()).toEqual(['relay-003', 'relay-004', 'relay-005']);
  });

  it('returns nothing for count 0 or no eligible relay', () => {
    expect(rankRelays(relays(5), { swarmId: swarm(1), count: 0 })).toEqual([]);
    expect(rankRelays([], { swarmId: swarm(1), count: 3 })).toEqual([]);
  });

  it('prefers relays in the viewer region without refusing other regions', () => {
    const all = relays(20, (i) => ({ region: i % 2 === 0 ? 'eu' : 'us' }));
    let inRegion = 0;
    const swarms = 400;
    for (let i = 0; i < swarms; i++) {
      const top = rankRelays(all, { swarmId: swarm(i), region: 'us', count: 1 })[0] as RelayCandidate;
      if (top.region === 'us') inRegion++;
    }
    expect(inRegion / swarms).toBeGreaterThan(0.7);
    const onlyEu = relays(3, () => ({ region: 'eu' }));
    expect(rankRelays(onlyEu, { swarmId: swarm(1), region: 'us', count: 3 })).toHaveLength(3);
  });

  it('prefers relays with more free capacity', () => {
    const all = relays(20, (i) => ({ load: i % 2 === 0 ? 95 : 0 }));
    let idle = 0;
    const swarms = 400;
    for (let i = 0; i < swarms; i++) {
      const top = rankRelays(all, { swarmId: swarm(i), count: 1 })[0] as RelayCandidate;
      if (top.load === 0) idle++;
    }
    expect(idle / swarms).toBeGreaterThan(0.65);
  });

  it('prefers relays that advertise the swarm or a playlist beside it', () => {
    const swarms = 300;
    let warmFirst = 0;
    for (let i = 0; i < swarms; i++) {
      const s = swarm(i);
      const all = relays(10, (j) => ({ streams: j < 5 ? [s.replace('master.m3u8', '720p/index.m3u8')] : [] }));
      const top = rankRelays(all, { swarmId: s, count: 1 })[0] as RelayCandidate;
      if (top.streams.length > 0) warmFirst++;
    }
    expect(warmFirst / swarms).toBeGreaterThan(0.55);
  });

  it('moves only what must move when a relay leaves (minimal disruption)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 30 }), fc.integer({ min: 0, max: 10_000 }), fc.nat(), (n, swarmNo, removeSeed) => {
        const all = relays(n, (i) => ({ load: (i * 37) % 90, region: i % 3 === 0 ? 'us' : 'eu' }));
        const request = { swarmId: swarm(swarmNo), region: 'us', count: n };
        const before = ids(rankRelays(all, request));
        const removed = all[removeSeed % n] as RelayCandidate;
        const after = ids(
          rankRelays(
            all.filter((r) => r !== removed),
            request,
          ),
        );
        expect(after).toEqual(before.filter((id) => id !== removed.relayId));
      }),
    );
  });

  it('keeps the top relays when a relay joins, unless the newcomer outranks them', () => {
    const all = relays(15);
    const request = { swarmId: swarm(3), count: 3 };
    const before = ids(rankRelays(all, request));
    const after = ids(rankRelays([...all, relay(99)], request));
    expect(after.filter((id) => id !== 'relay-099')).toEqual(before.slice(0, after.includes('relay-099') ? 2 : 3));
  });
});

describe('rankRelays: reachability', () => {
  const tierOf = (r: RelayCandidate): number => (r.reachability === undefined ? 2 : r.reachability === 'needs-turn' ? 1 : 0);

  it('ranks tested-reachable relays first, then relays that need TURN, untested relays last, whatever their weights', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.array(fc.constantFrom('public', 'mapped', 'needs-turn', undefined), { minLength: 1, maxLength: 20 }),
        (s, kinds) => {
          // Lower tiers get every weight advantage (region, warm, idle); tested-reachable relays are loaded.
          const list = kinds.map((k, i) =>
            relay(
              i,
              k === 'public' || k === 'mapped' ? { reachability: k, load: 90 } : { reachability: k, region: 'us', streams: [swarm(s)], capacity: 1_000_000 },
            ),
          );
          const ranked = rankRelays(list, { swarmId: swarm(s), region: 'us', count: list.length });
          expect(ranked).toHaveLength(list.length);
          const tiers = ranked.map(tierOf);
          expect(tiers).toEqual([...tiers].sort((a, b) => a - b));
        },
      ),
    );
  });

  it('hands untested relays out to fill the list when nothing else is eligible', () => {
    const list = relays(4);
    expect(rankRelays(list, { swarmId: swarm(1), count: 3 })).toHaveLength(3);
  });

  it('fake relays claiming every advantage rank below one honest tested relay (issue 14 finding 9)', () => {
    const fakes = relays(50, () => ({ region: 'us', streams: [swarm(7)], capacity: 1_000_000 }));
    const honest = relay(999, { reachability: 'public', load: 99 });
    const ranked = rankRelays([...fakes, honest], { swarmId: swarm(7), region: 'us', count: 3 });
    expect(ranked[0]?.relayId).toBe(honest.relayId);
  });
});
