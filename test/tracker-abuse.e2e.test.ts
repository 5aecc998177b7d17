import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ErrorCode, TRACKER_SUBPROTOCOL, decodeTrackerServerMessage, type TrackerServerMessage } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { startRelayProcess, startTrackerProcess, stopAll, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { TrackerSocket } from './helpers/raw-viewer.js';

const ARTIFACTS = fileURLToPath(new URL('./artifacts/', import.meta.url));
const SWARM = 'https://cdn.example/abuse/master.m3u8';
/** Attackers come from another loopback address than honest peers, as they would from another host. */
const ATTACKER_ADDRESS = '127.0.0.2';

interface Attacker {
  ws: WebSocket;
  messages: TrackerServerMessage[];
  closed: Promise<number>;
}

async function attacker(url: string): Promise<Attacker | undefined> {
  const ws = new WebSocket(url, TRACKER_SUBPROTOCOL, { localAddress: ATTACKER_ADDRESS, maxPayload: 1 << 20 });
  const messages: TrackerServerMessage[] = [];
  const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
  ws.on('message', (d) => {
    try {
      messages.push(decodeTrackerServerMessage(d as Buffer));
    } catch {
      // the tracker never sends these; counted as a failure below if it did
      messages.push({ type: 'error', code: 'UNDECODABLE', message: '' });
    }
  });
  ws.on('error', () => undefined);
  const opened = await new Promise<boolean>((resolve) => {
    ws.once('open', () => resolve(true));
    ws.once('close', () => resolve(false));
    ws.once('unexpected-response', () => resolve(false));
  });
  return opened ? { ws, messages, closed } : undefined;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

/** One honest viewer: connect, join, time until its shortlist names the honest relay. */
async function honestJoin(url: string, relayId: string): Promise<number> {
  const t0 = performance.now();
  const v = await TrackerSocket.open(url);
  try {
    v.send({ type: 'join', swarmId: SWARM });
    const list = await v.next('shortlist', 10_000);
    expect(list.relays.map((r) => r.relayId)).toContain(relayId);
    return performance.now() - t0;
  } finally {
    v.ws.close();
  }
}

/**
 * Issue "hardening", tracker under abuse: connection floods, message floods, oversized and malformed
 * frames and forged registrations from one attacking address, against the tracker process, while
 * an honest relay keeps its registration and honest viewers keep getting shortlists. Join latencies
 * with and without the attack go to test/artifacts/tracker-abuse.json (speed is reported, not asserted).
 */
describe('tracker under abuse', () => {
  let tracker: TrackerProc;
  let relay: RelayProc;

  beforeAll(async () => {
    tracker = await startTrackerProcess(['--heartbeat-interval-ms', '1000']);
    relay = await startRelayProcess(tracker, {
      keypair: join(fileURLToPath(new URL('./.tmp/', import.meta.url)), `abuse-relay-${process.pid}.json`),
      allowOrigin: ['https://cdn.example/'],
    });
  });

  afterAll(async () => {
    await stopAll();
  });

  it('rejects or throttles every attack while honest relays and viewers keep working', async () => {
    const baseline: number[] = [];
    for (let i = 0; i < 15; i++) baseline.push(await honestJoin(tracker.url, relay.relayId));

    // 1. Connection flood: far more sockets than the per-address cap (256).
    const flood = (await Promise.all(Array.from({ length: 300 }, () => attacker(tracker.url)))).filter((a): a is Attacker => a !== undefined);
    await new Promise((r) => setTimeout(r, 500));
    const refused = flood.filter((a) => a.messages.some((m) => m.type === 'error' && m.code === ErrorCode.TRACKER_FULL));
    expect(refused.length).toBeGreaterThanOrEqual(300 - 256);
    const held = flood.filter((a) => a.ws.readyState === WebSocket.OPEN);
    expect(held.length).toBeLessThanOrEqual(256);

    // 2-4 from the held sockets, all at once, while honest viewers join.
    const [flooder, oversize, malformed, forger] = held as [Attacker, Attacker, Attacker, Attacker];
    const attack = (async () => {
      // Message flood: 5,000 joins as fast as the socket takes them.
      for (let i = 0; i < 5_000 && flooder.ws.readyState === WebSocket.OPEN; i++) flooder.ws.send(JSON.stringify({ type: 'join', swarmId: `${SWARM}?${i}` }));
      // Oversized: one frame between the message cap (8 KiB) and the hard cap, then one over the hard cap.
      oversize.ws.send(JSON.stringify({ type: 'join', swarmId: 'x'.repeat(20_000) }));
      oversize.ws.send('y'.repeat(200_000));
      // Malformed: binary, not JSON, wrong types, deep nesting.
      for (const m of [
        Buffer.from([0xff, 0x00]),
        '{',
        '[]',
        '{"type":7}',
        JSON.stringify({ type: 'signal', to: 'a', connectionId: '../', signal: {} }),
        `${'['.repeat(5_000)}${']'.repeat(5_000)}`,
      ]) {
        malformed.ws.send(m);
      }
      // Forged registration: a well-formed register message with a signature by nobody.
      forger.ws.send(
        JSON.stringify({
          type: 'register',
          relayId: relay.relayId,
          signature: Buffer.alloc(64, 7).toString('base64'),
          capacity: 1_000_000,
          load: 0,
          region: '',
          pricePerGiB: '0',
          streams: [SWARM],
        }),
      );
    })();
    const underAttack: number[] = [];
    for (let i = 0; i < 15; i++) underAttack.push(await honestJoin(tracker.url, relay.relayId));
    await attack;

    expect(await Promise.race([flooder.closed, new Promise((r) => setTimeout(() => r('open'), 10_000))])).toBe(1008);
    expect(flooder.messages.some((m) => m.type === 'error' && m.code === ErrorCode.RATE_LIMITED)).toBe(true);
    expect(await oversize.closed).toBe(1009);
    expect(oversize.messages.some((m) => m.type === 'error' && m.code === ErrorCode.MESSAGE_TOO_LARGE)).toBe(true);
    await new Promise((r) => setTimeout(r, 300));
    const malformedCodes = new Set(malformed.messages.map((m) => (m.type === 'error' ? m.code : m.type)));
    for (const c of malformedCodes)
      expect([ErrorCode.MESSAGE_MALFORMED, ErrorCode.MESSAGE_TYPE, ErrorCode.MESSAGE_FIELD, ErrorCode.MESSAGE_TOO_LARGE, 'hello']).toContain(c);
    expect(malformed.ws.readyState).toBe(WebSocket.OPEN);
    expect(await forger.closed).toBe(4001);
    expect(forger.messages.some((m) => m.type === 'error' && m.code === ErrorCode.REGISTRATION_SIGNATURE)).toBe(true);

    // The honest relay kept its registration through it all, and nobody took its id.
    const status = await tracker.status();
    expect(status.relays.map((r) => r.relayId)).toEqual([relay.relayId]);
    expect(status.relays[0]?.lastSeenMsAgo).toBeLessThan(3_000);
    expect(underAttack).toHaveLength(15);

    for (const a of flood) a.ws.terminate();
    await mkdir(ARTIFACTS, { recursive: true });
    await writeFile(
      join(ARTIFACTS, 'tracker-abuse.json'),
      `${JSON.stringify({ honestJoinMsMedian: { baseline: median(baseline), underAttack: median(underAttack) }, refusedConnections: refused.length, heldConnections: held.length }, null, 2)}\n`,
    );
  });
});
