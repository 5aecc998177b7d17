/**
 * Pre-warm (issue 17, docs/PROTOCOL.md 2.13) lets a viewer put its `join` into the tracker URL, so
 * the shortlist comes with `hello`. Attacker's view: a shortlist now costs one WebSocket handshake
 * and no message, and every fresh socket brings a fresh per-connection budget (message bucket,
 * 32 relays handed per minute). A host that opens and closes sockets in a loop, each carrying a swarm
 * in its URL, could take shortlists (each a ranking of every registered relay, and relay ids to
 * walk) as fast as it connects, and fill swarms.
 *
 * Real processes: the tracker bin (default settings but a joins budget of 120 a minute, see BUDGET)
 * and 40 WebSocket stand-in relays from five other /24s. Replayed from one attacking /24
 * (127.0.111.0/24, a different IP for every socket, so the per-IP connection cap is not what stops
 * it): three budgets' worth of sockets, 50 at a time, each asking for a different swarm with count
 * 16, each closed after its hello. A pre-warm is a join for every limit: the range's joins budget
 * (shared with `join` messages) runs out; later sockets get a plain hello and RC_ERR_RATE_LIMITED
 * (ref prewarm), and stay open; `join` messages from that range are refused the same way. Beside it, the
 * honest path: a viewer from another range pre-warms during the flood and gets its relays with
 * hello; the SDK pre-warms against the same tracker with no `join` message (the tracker's
 * /metrics), and a bad swarm id in its URL is a typed error that leaves the socket and the tracker up.
 */
import { ErrorCode, TRACKER_HTTP_PATHS, encodePrewarmQuery, type ErrorMessage, type HelloMessage } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_JOINS_PER_RANGE_PER_MINUTE } from '@relaycast/tracker';
import { connect, connectRelay, type TestClient } from '@relaycast/tracker/testing';
import type { RelaycastError } from '@relaycast/player-sdk';
import { nodeClient } from '../helpers/node-client.js';
import { startTrackerProcess, waitFor, type TrackerProc } from '../helpers/processes.js';
import { useProcesses } from '../helpers/use-processes.js';

const SWARM = 'https://cdn.example/attack11/master.m3u8';
/**
 * The tracker runs with a joins budget of a tenth of the default (120 a minute, so 2 a second
 * refill) so the flood that spends it takes seconds, not a minute on a shared 2-core machine; the
 * mechanism is the same at DEFAULT_MAX_JOINS_PER_RANGE_PER_MINUTE (1,200, 20 a second).
 */
const BUDGET = DEFAULT_MAX_JOINS_PER_RANGE_PER_MINUTE / 10;
describe('attack 11: shortlists from pre-warmed sockets, many per address range', () => {
  useProcesses();
  let tracker: TrackerProc;
  const sockets: TestClient[] = [];
  let heartbeats: ReturnType<typeof setInterval> | undefined;

  beforeAll(async () => {
    tracker = await startTrackerProcess(['--max-joins-per-range-per-minute', String(BUDGET)]);
    // 40 relays, 8 per /24 (the per-range registration cap), all advertising the swarm.
    const relays: TestClient[] = [];
    for (let i = 0; i < 40; i++) {
      relays.push(await connectRelay(tracker.url, { streams: [SWARM] }, undefined, `127.0.${100 + Math.floor(i / 8)}.${(i % 8) + 1}`));
    }
    sockets.push(...relays);
    // Stand-ins heartbeat like relays, or the tracker evicts them after 15 s.
    heartbeats = setInterval(() => {
      for (const r of relays) r.send({ type: 'heartbeat', capacity: 100, load: 0, streams: [SWARM] });
    }, 2_000);
  });

  afterAll(() => {
    clearInterval(heartbeats);
    for (const s of sockets) s.ws.terminate();
  });

  const metric = async (name: string, type: string): Promise<number> => {
    const text = await (await fetch(`${tracker.httpUrl}${TRACKER_HTTP_PATHS.metrics}`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name}{type="${type}"}`));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  };

  it('pre-warms and joins from one range share one joins budget: past it, plain hellos and RC_ERR_RATE_LIMITED; other ranges unaffected', async () => {
    const total = 3 * BUDGET;
    let served = 0;
    const relaysSeen = new Set<string>();
    const refusals: ErrorMessage[] = [];
    let stillOpenAfterRefusal = 0;
    let honest: HelloMessage | undefined;
    const startedAt = performance.now();
    for (let batch = 0; batch < total; batch += 50) {
      const round = await Promise.all(
        Array.from({ length: Math.min(50, total - batch) }, async (_, k) => {
          const i = batch + k;
          const c = await connect(`${tracker.url}?${encodePrewarmQuery({ swarmId: `${SWARM}?s=${i}`, count: 16 })}`, undefined, `127.0.111.${(i % 250) + 1}`);
          if (c.hello.shortlist !== undefined) {
            served++;
            expect(c.hello.shortlist.relays.length).toBeLessThanOrEqual(16);
            for (const r of c.hello.shortlist.relays) relaysSeen.add(r.relayId);
          } else {
            refusals.push(await c.next('error'));
            if (c.ws.readyState === c.ws.OPEN) stillOpenAfterRefusal++;
          }
          c.ws.terminate();
        }),
      );
      expect(round).toHaveLength(Math.min(50, total - batch));
      // Halfway through, an honest viewer of another range pre-warms.
      if (honest === undefined && batch >= total / 2) {
        const h = await connect(`${tracker.url}?${encodePrewarmQuery({ swarmId: SWARM, count: 3 })}`, undefined, '127.0.112.1');
        sockets.push(h);
        honest = h.hello;
      }
    }
    const elapsedS = (performance.now() - startedAt) / 1000;
    // The bound: the burst plus what refilled (BUDGET a minute) while the flood ran.
    const bound = BUDGET + Math.ceil(elapsedS * (BUDGET / 60)) + 1;
    expect(served).toBeGreaterThanOrEqual(BUDGET);
    expect(served).toBeLessThanOrEqual(bound);
    expect(served + refusals.length).toBe(total);
    expect(refusals.length).toBeGreaterThanOrEqual(total - bound);
    for (const r of refusals) expect(r).toMatchObject({ type: 'error', code: ErrorCode.RATE_LIMITED, ref: 'prewarm' });
    expect(stillOpenAfterRefusal).toBe(refusals.length);
    expect(relaysSeen.size).toBeLessThanOrEqual(40);

    // Join messages from that range draw on the same, spent budget: 60 at once get at most what
    // refilled since the flood ended, the rest RC_ERR_RATE_LIMITED.
    const joiner = await connect(tracker.url, undefined, '127.0.111.251');
    sockets.push(joiner);
    for (let i = 0; i < 60; i++) joiner.send({ type: 'join', swarmId: SWARM });
    const answers = await Promise.all(Array.from({ length: 60 }, () => joiner.next()));
    const refilled = Math.ceil(((performance.now() - startedAt) / 1000 - elapsedS) * (BUDGET / 60)) + 1;
    const joined = answers.filter((m) => m.type === 'shortlist').length;
    expect(joined).toBeLessThanOrEqual(refilled);
    for (const m of answers.filter((x) => x.type !== 'shortlist')) expect(m).toMatchObject({ type: 'error', code: ErrorCode.RATE_LIMITED, ref: 'join' });

    // The honest viewer of another range got its relays with hello, during the flood.
    expect(honest?.shortlist?.swarmId).toBe(SWARM);
    expect(honest?.shortlist?.relays).toHaveLength(3);
    expect(await metric('relaycast_tracker_messages_total', 'prewarm')).toBe(served + refusals.length + 1);
  });

  it('the SDK pre-warms against the tracker: offers go out with no join message; a bad swarm id is a typed error and nothing goes down', async () => {
    const joinsBefore = await metric('relaycast_tracker_messages_total', 'join');
    const prewarmsBefore = await metric('relaycast_tracker_messages_total', 'prewarm');
    const signalsBefore = await metric('relaycast_tracker_messages_total', 'signal');
    const client = nodeClient({ trackerUrl: tracker.url, swarmId: SWARM, maxRelays: 3, connectTimeoutMs: 2_000 });
    try {
      void client.start().catch(() => undefined);
      // The stand-in relays never answer; what matters is that offers went out on the hello's
      // shortlist with no join (the SDK joins again only seconds later, when those relays failed).
      await waitFor(
        'offers from the SDK',
        async () => ((await metric('relaycast_tracker_messages_total', 'signal')) > signalsBefore ? true : undefined),
        2_500,
        20,
      );
      expect(await metric('relaycast_tracker_messages_total', 'prewarm')).toBe(prewarmsBefore + 1);
      expect(await metric('relaycast_tracker_messages_total', 'join')).toBe(joinsBefore);
    } finally {
      await client.close();
    }

    const bad = nodeClient({ trackerUrl: tracker.url, swarmId: 'x'.repeat(3_000), maxRelays: 1 });
    const errors: RelaycastError[] = [];
    bad.on('error', (e) => errors.push(e));
    try {
      void bad.start().catch(() => undefined);
      await waitFor('the refusal', async () => (errors.length > 0 ? true : undefined));
      expect(errors[0]).toMatchObject({ code: ErrorCode.TRACKER_UNAVAILABLE, details: { code: ErrorCode.MESSAGE_FIELD, ref: 'prewarm' } });
      // The tracker is up and serves everyone else (the refused socket staying open is shown above, with raw sockets).
      expect((await fetch(`${tracker.httpUrl}${TRACKER_HTTP_PATHS.health}`)).ok).toBe(true);
      const after = await connect(`${tracker.url}?${encodePrewarmQuery({ swarmId: SWARM })}`, undefined, '127.0.113.1');
      sockets.push(after);
      expect(after.hello.shortlist?.relays.length).toBeGreaterThan(0);
    } finally {
      await bad.close();
    }
  });
});
