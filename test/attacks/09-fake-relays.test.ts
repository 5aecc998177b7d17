/**
 * Issue 14, finding 9: "Fake relays take over selection. Registration proves only a fresh key.
 * Capacity, load, region and streams are self-reported. Untested relays count as reachable while
 * the probe queue is full."
 *
 * Real processes: tracker bins and a relay bin. Replayed from one host (one /24): 20 fresh keys
 * register claiming huge capacity, no load, the viewers' region and the stream. With open admission
 * only 8 per address range get in (RC_ERR_ADDRESS_RANGE_LIMIT, closed 4001), and since they never
 * answer the reachability probe they rank after the honest relay the probe reached (untested ones
 * last, even when the probe queue is full); with `--relay-admission allowlist` none gets in
 * (RC_ERR_RELAY_NOT_ADMITTED). Beside it, the honest path: the honest relay registers, is tested
 * reachable and comes first in every viewer's shortlist.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, type ErrorMessage } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_RELAYS_PER_RANGE } from '@relaycast/tracker';
import { connect, makeRelayKey, registerMessage, type TestClient } from '@relaycast/tracker/testing';
import { relayIdOfKeypair, startRelayProcess, startTrackerProcess, waitFor, type TrackerProc } from '../helpers/processes.js';
import { useProcesses } from '../helpers/use-processes.js';

const SWARM = 'https://cdn.example/attack09/master.m3u8';
const CLAIMS = { capacity: 1_000_000, load: 0, region: 'eu', streams: [SWARM] };

describe('attack 9: fake relays take over selection', () => {
  useProcesses();
  let dir: string;
  const sockets: TestClient[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack09-'));
  });

  afterAll(async () => {
    for (const s of sockets) s.ws.terminate();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  /** Registers 20 fake relays from one /24; returns how each registration ended. */
  async function fakeRelays(tracker: TrackerProc, n = 20): Promise<{ admitted: number; refused: Record<string, number>; closeCodes: number[] }> {
    let admitted = 0;
    const refused: Record<string, number> = {};
    const closeCodes: number[] = [];
    for (let i = 0; i < n; i++) {
      const c = await connect(tracker.url, undefined, `127.0.91.${i + 1}`);
      sockets.push(c);
      c.send(registerMessage(makeRelayKey(), c.hello.nonce, CLAIMS));
      const m = await c.next();
      if (m.type === 'registered') admitted++;
      else {
        const code = (m as ErrorMessage).code;
        refused[code] = (refused[code] ?? 0) + 1;
        closeCodes.push((await c.closed).code);
      }
    }
    return { admitted, refused, closeCodes };
  }

  async function shortlist(tracker: TrackerProc): Promise<string[]> {
    const v = await connect(tracker.url, undefined, '127.0.92.1');
    sockets.push(v);
    v.send({ type: 'join', swarmId: SWARM, region: 'eu', count: 8 });
    return (await v.next('shortlist')).relays.map((r) => r.relayId);
  }

  it('open admission: 8 fakes per address range get in, and rank after the honest relay the probe reached', async () => {
    // The fakes never answer the probe: untested while they wait for it (the finding's "queue full"
    // case ranks them the same way), needs-turn after it; either way after the tested honest relay.
    const tracker = await startTrackerProcess(['--reachability-timeout-ms', '1500']);
    const fakes = await fakeRelays(tracker);
    expect(fakes.admitted).toBe(DEFAULT_MAX_RELAYS_PER_RANGE); // the tracker runs with the default per-range cap
    expect(fakes.refused).toEqual({ [ErrorCode.ADDRESS_RANGE_LIMIT]: 12 });
    expect(new Set(fakes.closeCodes)).toEqual(new Set([4001]));

    const honest = await startRelayProcess(tracker, { keypair: join(dir, 'honest.json'), allowOrigin: ['https://cdn.example/'] });
    await waitFor(
      'the honest relay tested reachable',
      async () => {
        const r = (await tracker.status()).relays.find((x) => x.relayId === honest.relayId);
        return r?.reachability === 'public' || r?.reachability === 'mapped' ? true : undefined;
      },
      30_000,
    );
    const status = await tracker.status();
    for (const r of status.relays) if (r.relayId !== honest.relayId) expect(r.reachability === undefined || r.reachability === 'needs-turn').toBe(true);
    for (let i = 0; i < 3; i++) expect((await shortlist(tracker))[0]).toBe(honest.relayId);
    await honest.stop('SIGKILL');
    await tracker.stop('SIGKILL');
  });

  it('allowlist admission: no fake gets in (RC_ERR_RELAY_NOT_ADMITTED); the listed honest relay registers and is handed out', async () => {
    const keypair = join(dir, 'listed.json');
    // The relay makes its keypair on first start; write one first so the allowlist can name it.
    const { generateSecretKey, formatKeypairText } = await import('@relaycast/protocol/node');
    const secret = generateSecretKey();
    await writeFile(keypair, formatKeypairText(secret), { mode: 0o600 });
    secret.fill(0);
    const listed = await relayIdOfKeypair(keypair);
    const allowlist = join(dir, 'allowlist.txt');
    await writeFile(allowlist, `# relays this operator vouches for\n${listed}  # the honest one\n`);
    const tracker = await startTrackerProcess(['--relay-admission', 'allowlist', '--relay-allowlist', allowlist]);
    const fakes = await fakeRelays(tracker, 5);
    expect(fakes.admitted).toBe(0);
    expect(fakes.refused).toEqual({ [ErrorCode.RELAY_NOT_ADMITTED]: 5 });
    expect(new Set(fakes.closeCodes)).toEqual(new Set([4001]));
    const honest = await startRelayProcess(tracker, { keypair, allowOrigin: ['https://cdn.example/'] });
    expect(honest.relayId).toBe(listed);
    expect(await tracker.relayIds()).toEqual([listed]);
    expect(await shortlist(tracker)).toEqual([listed]);
  });
});
