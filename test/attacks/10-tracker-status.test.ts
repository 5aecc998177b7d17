/**
 * Issue 14, finding 10, the tracker's item: "Tracker `/status` shows relays' home IPs to anyone."
 *
 * Real processes: the tracker bin and a relay bin whose address the reachability probe learns, plus
 * a relay that reports its public address and port mapping. Replayed: anyone reading `/status`
 * (and `/metrics`) finds no relay address; a made-up or wrong token changes nothing. Beside it,
 * the honest path: the operator, presenting the token it configured (RELAYCAST_STATUS_TOKEN or
 * `--status-token`), sees every address; the public fields (ids, health, reachability) stay visible
 * to everyone.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TRACKER_HTTP_PATHS } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, makeRelayKey, registerMessage, type TestClient } from '@relaycast/tracker/testing';
import { startRelayProcess, startTrackerProcess, waitFor, type TrackerProc, type TrackerStatus } from '../helpers/processes.js';
import { useProcesses } from '../helpers/use-processes.js';

const TOKEN = 'operator-status-token-7f3a9c';
const HOME_IP = '203.0.113.77';

describe("attack 10 (tracker): /status shows relays' addresses", () => {
  useProcesses();
  let dir: string;
  let tracker: TrackerProc;
  let relayId: string;
  let home: TestClient;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack10t-'));
    process.env['RELAYCAST_STATUS_TOKEN'] = TOKEN;
    try {
      tracker = await startTrackerProcess();
    } finally {
      delete process.env['RELAYCAST_STATUS_TOKEN'];
    }
    relayId = (await startRelayProcess(tracker, { keypair: join(dir, 'relay.json'), allowOrigin: ['https://cdn.example/'] })).relayId;
    // A home relay reporting its router's public address and mapped port.
    home = await connect(tracker.url);
    home.send({ ...registerMessage(makeRelayKey(), home.hello.nonce), nat: { portMapping: 'upnp', publicAddress: HOME_IP, mappedPort: 41_234 } });
    await home.next('registered');
    await waitFor(
      'the probe to reach the relay bin',
      async () => {
        const r = (await statusWith(`Bearer ${TOKEN}`)).relays.find((x) => x.relayId === relayId);
        return r?.reachableAddress !== undefined ? true : undefined;
      },
      20_000,
    );
  });

  afterAll(async () => {
    home?.ws.terminate();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function statusText(authorization?: string): Promise<string> {
    const res = await fetch(`${tracker.httpUrl}${TRACKER_HTTP_PATHS.status}`, { headers: authorization === undefined ? {} : { authorization } });
    expect(res.status).toBe(200);
    return res.text();
  }
  const statusWith = async (authorization?: string): Promise<TrackerStatus> => JSON.parse(await statusText(authorization)) as TrackerStatus;

  it('anyone reading /status or /metrics finds no relay address, whatever token they make up', async () => {
    const full = await statusWith(`Bearer ${TOKEN}`);
    const probed = full.relays.find((r) => r.relayId === relayId)?.reachableAddress as string;
    expect(probed).toMatch(/^127\.0\.0\.1:\d+$/);
    for (const auth of [
      undefined,
      'Bearer ',
      `Bearer ${TOKEN.slice(0, -1)}`,
      TOKEN,
      `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`,
      `Bearer ${TOKEN}x`,
    ]) {
      const text = await statusText(auth);
      expect(text, String(auth)).not.toContain(probed);
      expect(text).not.toContain(HOME_IP);
      expect(text).not.toContain('41234');
      const body = JSON.parse(text) as TrackerStatus;
      // What everyone may see stays.
      expect(body.relays.map((r) => r.relayId).sort()).toEqual(full.relays.map((r) => r.relayId).sort());
      for (const r of body.relays) {
        expect(r.reachableAddress).toBeUndefined();
        expect(Object.keys(r.nat ?? {}).filter((k) => k !== 'portMapping')).toEqual([]);
      }
    }
    const metrics = await (await fetch(`${tracker.httpUrl}${TRACKER_HTTP_PATHS.metrics}`)).text();
    expect(metrics).not.toContain(HOME_IP);
    expect(metrics).not.toContain(probed);
  });

  it('honest path: the operator with the configured token sees every address', async () => {
    const full = await statusWith(`Bearer ${TOKEN}`);
    expect(full.relays.find((r) => r.relayId === relayId)?.reachability).toBe('public');
    expect(full.relays.find((r) => r.nat?.publicAddress === HOME_IP)?.nat).toEqual({ portMapping: 'upnp', publicAddress: HOME_IP, mappedPort: 41_234 });
  });
});
