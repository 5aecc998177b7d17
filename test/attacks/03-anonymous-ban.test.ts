/**
 * Issue 14, finding 3: "Two anonymous WebSockets ban any relay. A viewer's identity is its
 * connection id; two reports with made-up hashes take health to 0 for 10 minutes (256 connections
 * per IP allowed)."
 *
 * Real processes: the tracker bin trusting one payer (`--trusted-payer`, the settler stand-in of
 * helpers/test-payer.ts), relay bins, an HTTP origin, SDK viewers in Node. The attack is replayed
 * as found, then with what an attacker could still get (grants under `--grant-auth open` for many
 * made-up users, all from its own address range): every report is refused with a typed error and
 * the honest relay keeps full health and its place in shortlists. Beside it, the honest path: three
 * users from three address ranges, each meeting a corrupted segment from a lying relay, push that
 * relay out with the default settings (--min-reporters 3, --max-reporters-per-range 1).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, swarmIdFromUrl } from '@relaycast/protocol';
import { RelaycastClient, type RelaycastClientOptions } from '@relaycast/player-sdk';
import { RTCPeerConnection } from 'node-datachannel/polyfill';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connect, sessionMessage, type TestClient } from '@relaycast/tracker/testing';
import { mediaPlaylist, variantUrls } from '../helpers/hls.js';
import { cachedVod, linkVod } from '../helpers/media.js';
import { LOOPBACK_RTC } from '../helpers/node-client.js';
import { startOrigin, type OriginServer } from '../helpers/origin-server.js';
import { FAULTY_RELAY_BIN, startRelayProcess, startTrackerProcess, waitFor, type RelayProc, type TrackerProc } from '../helpers/processes.js';
import { testPayer } from '../helpers/test-payer.js';
import { useProcesses } from '../helpers/use-processes.js';

const report = (relayId: string, n: number): Record<string, unknown> => ({
  type: 'report',
  relayId,
  reason: 'integrity',
  url: `https://cdn.example/made-up/seg${n}.ts`,
  expectedSha256: 'a'.repeat(64),
  receivedSha256: 'b'.repeat(64),
});

/** An SDK viewer whose tracker connection comes from `localAddress` (all of 127/8 is loopback). */
function viewerFrom(localAddress: string, options: Omit<RelaycastClientOptions, 'WebSocket' | 'RTCPeerConnection'>): RelaycastClient {
  class FromAddress extends WebSocket {
    constructor(url: string, protocols?: string | string[]) {
      super(url, protocols, { localAddress });
    }
  }
  return new RelaycastClient({
    rtcConfiguration: LOOPBACK_RTC,
    ...options,
    WebSocket: FromAddress as unknown as RelaycastClientOptions['WebSocket'],
    RTCPeerConnection: RTCPeerConnection as unknown as RelaycastClientOptions['RTCPeerConnection'],
  });
}

describe('attack 3: anonymous sockets ban a relay', () => {
  useProcesses();
  const payer = testPayer();
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let honest: RelayProc;
  let swarmId: string;
  const sockets: TestClient[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack03-'));
    await linkVod(await cachedVod({ format: 'ts', durationSec: 16 }), join(dir, 'vod'));
    origin = await startOrigin(dir);
    swarmId = swarmIdFromUrl(`${origin.url}vod/master.m3u8`);
    tracker = await startTrackerProcess(['--trusted-payer', payer.payerId]);
    honest = await startRelayProcess(tracker, { keypair: join(dir, 'keys', 'honest.json'), allowOrigin: [`${origin.url}vod/`] });
  });

  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const relayStatus = async (relayId: string) => (await tracker.status()).relays.find((r) => r.relayId === relayId);

  async function joined(localAddress: string): Promise<TestClient> {
    const c = await connect(tracker.url, undefined, localAddress);
    sockets.push(c);
    c.send({ type: 'join', swarmId });
    expect((await c.next('shortlist')).relays.map((r) => r.relayId)).toContain(honest.relayId);
    return c;
  }

  it('reports from anonymous sockets are refused (RC_ERR_REPORT_REFUSED) and change nothing', async () => {
    // As found: two anonymous sockets, two made-up reports each; then twenty more sockets.
    const attackers = await Promise.all(Array.from({ length: 22 }, () => joined('127.0.66.1')));
    for (const [i, a] of attackers.entries()) {
      a.send(report(honest.relayId, 2 * i));
      a.send(report(honest.relayId, 2 * i + 1));
    }
    for (const a of attackers) {
      for (let k = 0; k < 2; k++) {
        const e = await a.next('error');
        expect(e.code).toBe(ErrorCode.REPORT_REFUSED);
        expect(e.ref).toBe('report');
      }
    }
    expect(await relayStatus(honest.relayId)).toMatchObject({ health: 1, reporters: 0 });
  });

  it('grants for many made-up users from one address range count as one reporter (RC_ERR_ADDRESS_RANGE_LIMIT); two ranges are still below three users', async () => {
    const oneRange = await Promise.all(Array.from({ length: 6 }, (_, i) => joined(`127.0.67.${i + 1}`)));
    for (const a of oneRange) {
      a.send(sessionMessage(payer, a.hello.nonce).msg);
      await a.next('assignments');
    }
    (oneRange[0] as TestClient).send(report(honest.relayId, 1));
    await waitFor('the first report counted', async () => ((await relayStatus(honest.relayId))?.reporters === 1 ? true : undefined), 5_000);
    for (const a of oneRange.slice(1)) {
      a.send(report(honest.relayId, 1));
      expect((await a.next('error')).code).toBe(ErrorCode.ADDRESS_RANGE_LIMIT);
    }
    const second = await joined('127.0.68.1');
    second.send(sessionMessage(payer, second.hello.nonce).msg);
    await second.next('assignments');
    second.send(report(honest.relayId, 1));
    await waitFor('the second range counted', async () => ((await relayStatus(honest.relayId))?.reporters === 2 ? true : undefined), 5_000);
    // Two users: below --min-reporters (3), so the honest relay keeps full health and its place.
    expect((await relayStatus(honest.relayId))?.health).toBe(1);
    const fresh = await joined('127.0.69.1');
    fresh.send({ type: 'join', swarmId });
    expect((await fresh.next('shortlist')).relays[0]?.relayId).toBe(honest.relayId);
  });

  it('honest path: three users from three ranges, each served a corrupted segment, push the lying relay out', async () => {
    await honest.stop('SIGKILL');
    await waitFor('the tracker to drop the honest relay', async () => ((await relayStatus(honest.relayId)) === undefined ? true : undefined), 20_000);
    const liar = await startRelayProcess(tracker, {
      keypair: join(dir, 'keys', 'liar.json'),
      allowOrigin: [`${origin.url}vod/`],
      bin: FAULTY_RELAY_BIN,
      extra: ['--test-fault', 'flip:2'],
    });
    const master = `${origin.url}vod/master.m3u8`;
    const variant = variantUrls(await (await fetch(master)).text(), master)[0] as string;
    const segments = mediaPlaylist(await (await fetch(variant)).text(), variant).segments;
    for (const [n, address] of ['127.0.71.1', '127.0.72.1', '127.0.73.1'].entries()) {
      const client = viewerFrom(address, { trackerUrl: tracker.url, swarmId, payments: payer.payments() });
      try {
        await client.start();
        for (const url of segments) {
          const result = await client.loadSegment({ url, playlistUrl: variant });
          const file = await (await fetch(url)).arrayBuffer();
          expect(Buffer.compare(Buffer.from(result.data), Buffer.from(file)), url).toBe(0);
        }
        expect(client.getStats().integrity.failures).toBe(1);
      } finally {
        await client.close();
      }
      await waitFor(`user ${n + 1}'s report counted`, async () => ((await relayStatus(liar.relayId))?.reporters === n + 1 ? true : undefined), 10_000);
      if (n < 2) expect((await relayStatus(liar.relayId))?.health).toBe(1);
    }
    expect((await relayStatus(liar.relayId))?.health).toBe(0);
    const after = await connect(tracker.url, undefined, '127.0.74.1');
    sockets.push(after);
    after.send({ type: 'join', swarmId });
    expect((await after.next('shortlist')).relays.map((r) => r.relayId)).not.toContain(liar.relayId);
  });
});
