/**
 * Issue 14, finding 4: "TURN is open. Every `hello`, to any anonymous socket, carries a 24 h TURN
 * credential; and reconnecting mints more. coturn has no default `denied-peer-ip`, and nothing in
 * the docs hardens it."
 *
 * Real processes: the tracker bin with a TURN server configured (`--turn`, RELAYCAST_TURN_SECRET),
 * a relay that the reachability test finds `needs-turn` (it registers and never answers the probe),
 * and a relay bin the test finds reachable. Replayed: anonymous sockets and reconnects get no TURN
 * credential at all; asking for one for a relay not handed out, or past the per-connection and
 * per-range budgets, is RC_ERR_TURN_REFUSED. Beside it, the honest path: a viewer handed the
 * needs-turn relay gets TURN REST credentials valid for minutes, which the TURN server's secret
 * verifies. The coturn side (denied-peer-ip, no private peer reachable) is shown over a real coturn
 * in netns-testbed.e2e.test.ts.
 */
import { createHmac } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, connectRelay, type TestClient } from '@relaycast/tracker/testing';
import { startRelayProcess, startTrackerProcess, waitFor, type RelayProc, type TrackerProc } from '../helpers/processes.js';
import { useProcesses } from '../helpers/use-processes.js';

const SECRET = 'attack-04-turn-shared-secret';
const SWARM = 'https://cdn.example/attack04/master.m3u8';
const TURN_URL = 'turn:127.0.0.1:3478?transport=udp';

describe('attack 4: TURN handed to anyone', () => {
  useProcesses();
  let dir: string;
  let tracker: TrackerProc;
  let reachable: RelayProc;
  let needsTurn: TestClient & { key: { relayId: string } };
  const sockets: TestClient[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack04-'));
    // The tracker reads the secret from its environment (flags show in `ps`); spawn inherits it.
    process.env['RELAYCAST_TURN_SECRET'] = SECRET;
    try {
      tracker = await startTrackerProcess(['--stun', 'stun:127.0.0.1:3478', '--turn', TURN_URL, '--reachability-timeout-ms', '1000']);
    } finally {
      delete process.env['RELAYCAST_TURN_SECRET'];
    }
    reachable = await startRelayProcess(tracker, { keypair: join(dir, 'keys', 'relay.json'), allowOrigin: ['https://cdn.example/'] });
    // A relay nobody can reach unsolicited: it never answers the tracker's probe.
    needsTurn = await connectRelay(tracker.url, { streams: [SWARM] });
    sockets.push(needsTurn);
    await waitFor(
      'both reachability verdicts',
      async () => {
        const s = await tracker.status();
        const v = (id: string) => s.relays.find((r) => r.relayId === id)?.reachability;
        return v(needsTurn.key.relayId) === 'needs-turn' && v(reachable.relayId) === 'public' ? true : undefined;
      },
      20_000,
    );
  });

  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function viewer(localAddress = '127.0.0.1'): Promise<TestClient> {
    const c = await connect(tracker.url, undefined, localAddress);
    sockets.push(c);
    return c;
  }

  async function joined(localAddress?: string): Promise<TestClient> {
    const c = await viewer(localAddress);
    c.send({ type: 'join', swarmId: SWARM, count: 4 });
    const list = await c.next('shortlist');
    expect(list.relays.map((r) => r.relayId).sort()).toEqual([needsTurn.key.relayId, reachable.relayId].sort());
    return c;
  }

  it('hello carries no TURN credential, however often an anonymous socket reconnects', async () => {
    for (let i = 0; i < 20; i++) {
      const c = await viewer('127.0.80.1');
      expect(c.hello.iceServers).toEqual([{ urls: ['stun:127.0.0.1:3478'] }]);
      expect(JSON.stringify(c.hello)).not.toContain('turn:');
      c.ws.terminate();
    }
  });

  it('refuses TURN for a relay not handed to the connection and past the per-connection and per-range budgets (RC_ERR_TURN_REFUSED)', async () => {
    const anonymous = await viewer('127.0.81.1');
    anonymous.send({ type: 'turn', relayId: needsTurn.key.relayId });
    const notHanded = await anonymous.next('error');
    expect(notHanded).toMatchObject({ code: ErrorCode.TURN_REFUSED, ref: 'turn' });

    // One connection asking again and again: 6 per minute (the default), then refused.
    const greedy = await joined('127.0.82.1');
    for (let i = 0; i < 9; i++) greedy.send({ type: 'turn', relayId: needsTurn.key.relayId });
    let granted = 0;
    let refused = 0;
    for (let i = 0; i < 9; i++) {
      const m = await greedy.next();
      if (m.type === 'ice') granted++;
      else if (m.type === 'error' && m.code === ErrorCode.TURN_REFUSED) refused++;
    }
    expect({ granted, refused }).toEqual({ granted: 6, refused: 3 });

    // Reconnecting does not mint more than the range allows: 60 per minute per /24 (the default).
    let rangeGranted = 0;
    let rangeRefused = 0;
    for (let c = 0; c < 11; c++) {
      const s = await joined(`127.0.83.${c + 1}`);
      for (let i = 0; i < 6; i++) s.send({ type: 'turn', relayId: reachable.relayId });
      for (let i = 0; i < 6; i++) {
        const m = await s.next();
        if (m.type === 'ice') rangeGranted++;
        else if (m.type === 'error' && m.code === ErrorCode.TURN_REFUSED) rangeRefused++;
      }
      s.ws.terminate();
    }
    // The bucket refills one request per second: a slow machine may see one or two more granted.
    expect(rangeGranted).toBeGreaterThanOrEqual(60);
    expect(rangeGranted).toBeLessThanOrEqual(62);
    expect(rangeGranted + rangeRefused).toBe(66);
  });

  it('honest path: a viewer handed a needs-turn relay gets TURN REST credentials valid for minutes, which the shared secret verifies', async () => {
    const honest = await joined('127.0.90.1');
    honest.send({ type: 'turn', relayId: needsTurn.key.relayId });
    const ice = await honest.next('ice');
    expect(ice.relayId).toBe(needsTurn.key.relayId);
    const turn = ice.iceServers.find((s) => s.urls.some((u) => u.startsWith('turn:')));
    expect(turn?.urls).toEqual([TURN_URL]);
    const [expiry, id] = (turn?.username ?? '').split(':');
    expect(id).toBe(honest.hello.peerId);
    const ttlMs = Number(expiry) * 1000 - Date.now();
    expect(ttlMs).toBeGreaterThan(9 * 60_000);
    expect(ttlMs).toBeLessThanOrEqual(10 * 60_000);
    expect(turn?.credential).toBe(
      createHmac('sha1', SECRET)
        .update(turn?.username ?? '')
        .digest('base64'),
    );
  });
});
