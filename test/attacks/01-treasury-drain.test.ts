import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { amountForBytes, swarmIdFromUrl } from '@relaycast/protocol';
import { SETTLER_PATHS, relayStatusPath } from '@relaycast/protocol/settlement';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaPlaylist, variantUrls } from '../helpers/hls.js';
import { cachedVod, linkVod } from '../helpers/media.js';
import { nodeClient } from '../helpers/node-client.js';
import { startOrigin, type OriginServer } from '../helpers/origin-server.js';
import { redeemPaidRelay, startPaidNetwork, startPaidRelay, type PaidNetwork, type PaidRelay } from '../helpers/paid-network.js';
import {
  assignmentB64,
  identityOfKeypair,
  newIdentity,
  receiptB64,
  redeemAs,
  requestGrantAt,
  startSettlerProcess,
  tokenBalance,
  type PaymentSetup,
  type SettlerProc,
  type TestIdentity,
} from '../helpers/payments-world.js';
import { stopAll, type TrackerProc } from '../helpers/processes.js';

/** One base unit per byte: amounts read as byte counts. */
const PRICE_PER_GIB = 1n << 30n;
const BUDGET = 10_000_000n;
const USER_BUDGET = 3n * BUDGET;
const SECRET = 'the-platform-s-hs256-secret-for-relaycast-grants';
const AUDIENCE = 'relaycast-settler';
/** jwt settler: 1 MB/s plausible, 1 MB burst: a grant one second old is worth at most ~2 MB. */
const JWT_FLAGS = [
  '--default-budget',
  String(BUDGET),
  '--user-budget',
  String(USER_BUDGET),
  '--max-bitrate-bps',
  '8000000',
  '--plausible-burst-bytes',
  '1000000',
];
/** open settler (the one the honest viewer and relay use): default plausibility (20 Mbit/s + 64 MiB). */
const OPEN_FLAGS = ['--default-budget', String(BUDGET)];

async function platformToken(sub: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(sub)
    .setAudience(AUDIENCE)
    .setExpirationTime('10m')
    .sign(new TextEncoder().encode(SECRET));
}

/** The settler's per-range limit is 20 requests/s: the attacker paces itself to stay under it. */
const pace = (): Promise<void> => new Promise((r) => setTimeout(r, 60));

/**
 * Issue 14, finding 1: "a fresh key posing as a relay, 50 POST /v1/grants, 50 full-budget receipts
 * signed to that relay: 500,000,000 base units credited". Replayed against real chain and settler
 * processes, under both grant policies. Beside it a real tracker (its key trusted by the settler),
 * a real relay process and an SDK viewer streaming a VOD: the honest relay is paid exactly the
 * bytes the viewer verified × price.
 */
describe('attack 1: draining the treasury with self-issued grants and receipts', () => {
  let dir: string;
  let net: PaidNetwork;
  let setup: PaymentSetup;
  let jwtSettler: SettlerProc;
  let openSettler: SettlerProc;
  let origin: OriginServer;
  let trackerProc: TrackerProc;
  let tracker: TestIdentity;
  let honest: PaidRelay;
  const fakeRelay = newIdentity();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack01-'));
    await linkVod(await cachedVod({ format: 'ts', durationSec: 12 }), join(dir, 'media', 'vod'));
    origin = await startOrigin(dir);
    net = await startPaidNetwork(dir, PRICE_PER_GIB, { settlerExtra: OPEN_FLAGS });
    ({ setup, settler: openSettler, tracker: trackerProc } = net);
    tracker = await identityOfKeypair(net.trackerKeyPath);
    // The bin reads the HS256 secret from its environment (inherited from this process).
    process.env['RELAYCAST_GRANT_JWT_SECRET'] = SECRET;
    jwtSettler = await startSettlerProcess(setup, join(dir, 'jwt.sqlite'), PRICE_PER_GIB, {
      grantAuth: 'jwt',
      trustedTrackers: [tracker.id],
      extra: ['--grant-jwt-audience', AUDIENCE, ...JWT_FLAGS],
    });
    honest = await startPaidRelay(net, dir, 'honest-relay', { allowOrigin: [`${origin.url}media/`] });
  });

  afterAll(async () => {
    await stopAll();
    await origin?.close();
    delete process.env['RELAYCAST_GRANT_JWT_SECRET'];
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('jwt: 50 grant requests without the platform’s token are refused (RC_ERR_GRANT_UNAUTHENTICATED); a real user is capped by the per-user budget', async () => {
    const codes: string[] = [];
    for (let i = 0; i < 50; i++) {
      const res = await requestGrantAt(jwtSettler.url, newIdentity());
      codes.push(`${res.status} ${(res.body['error'] as { code: string } | undefined)?.code}`);
      await pace();
    }
    expect(new Set(codes)).toEqual(new Set(['401 RC_ERR_GRANT_UNAUTHENTICATED']));

    // A logged-in attacker asking 50 times: three grants' budget per day, then refused.
    const auth = { authorization: `Bearer ${await platformToken('mallory')}` };
    const granted: string[] = [];
    const refused: string[] = [];
    const session = newIdentity();
    for (let i = 0; i < 50; i++) {
      const res = await requestGrantAt(jwtSettler.url, i <= 1 ? session : newIdentity(), auth);
      if (res.status === 200) granted.push(res.body['budget'] as string);
      else refused.push((res.body['error'] as { code: string }).code);
      await pace();
    }
    expect(granted).toEqual([String(BUDGET), String(BUDGET), String(BUDGET)]);
    expect(refused[0]).toBe('RC_ERR_GRANT_LIVE_EXISTS');
    expect(new Set(refused.slice(1))).toEqual(new Set(['RC_ERR_USER_BUDGET_EXHAUSTED']));
  });

  it('open: 50 grants, 50 full-budget receipts to a fresh key posing as a relay: every item refused (no assignment / a forged one), nothing paid', async () => {
    const items = [];
    const forger = newIdentity();
    for (let i = 0; i < 50; i++) {
      const viewer = newIdentity();
      const g = await requestGrantAt(openSettler.url, viewer);
      expect(g.status).toBe(200);
      const receipt = receiptB64(viewer, g.grant!.signed, fakeRelay, 1, Number(g.grant!.signed.grant.budget));
      // Half claim without an assignment, half with one signed by a key no settler trusts.
      items.push(i % 2 === 0 ? { grant: g.grant!.b64, receipt } : { grant: g.grant!.b64, receipt, assignment: assignmentB64(forger, viewer, fakeRelay) });
      await pace();
    }
    const before = await tokenBalance(setup, setup.treasury);
    const res = await redeemAs(openSettler.url, fakeRelay, items);
    expect(res.status).toBe(200);
    expect(res.body.status).toBe('nothing-owed');
    expect(res.body.credited).toEqual([]);
    expect(res.body.rejected).toEqual(items.map((_, index) => ({ index, code: index % 2 === 0 ? 'RC_ERR_ASSIGNMENT_MISSING' : 'RC_ERR_ASSIGNMENT_INVALID' })));
    expect((await (await fetch(`${openSettler.url}${relayStatusPath(fakeRelay.id)}`)).json()) as Record<string, unknown>).toEqual({
      owed: '0',
      cumulativePaid: '0',
      pending: null,
    });
    expect(await tokenBalance(setup, setup.treasury)).toBe(before);
  });

  it('a relay the tracker did assign is credited only what is plausible on the settler’s clock', async () => {
    // The attacker, a logged-in user, holds a valid assignment (it registered as a relay and was
    // handed its own session) and claims the whole budget at once.
    const mallory = newIdentity();
    const mg = await requestGrantAt(jwtSettler.url, mallory, { authorization: `Bearer ${await platformToken('mallory-2')}` });
    expect(mg.status).toBe(200);
    const issuedAtMs = mg.grant!.signed.grant.issuedAtMs;
    const greedy = await redeemAs(jwtSettler.url, fakeRelay, [
      {
        grant: mg.grant!.b64,
        receipt: receiptB64(mallory, mg.grant!.signed, fakeRelay, 1, Number(BUDGET)),
        assignment: assignmentB64(tracker, mallory, fakeRelay),
      },
    ]);
    expect(greedy.status).toBe(409); // its token account does not even exist; the receipt is kept
    const status = (await (await fetch(`${jwtSettler.url}${relayStatusPath(fakeRelay.id)}`)).json()) as { owed: string };
    const ageMs = Date.now() - issuedAtMs;
    // At most 1 MB/s × age + 1 MB, far below the 10,000,000 claimed.
    expect(BigInt(status.owed)).toBeLessThanOrEqual(BigInt(Math.ceil(1_000 * ageMs + 1_000_000)));
    expect(BigInt(status.owed)).toBeLessThan(BUDGET / 2n);
  });

  it('beside it, an honest relay process serving an SDK viewer is paid exactly the verified bytes × price', async () => {
    const treasuryBefore = await tokenBalance(setup, setup.treasury);
    const master = `${origin.url}media/vod/master.m3u8`;
    const variant = variantUrls(await (await fetch(master)).text(), master)[0]!;
    const client = nodeClient({
      trackerUrl: trackerProc.url,
      swarmId: swarmIdFromUrl(master),
      maxRelays: 1,
      payments: { grantUrl: `${openSettler.url}${SETTLER_PATHS.grants}` },
    });
    try {
      await client.start();
      const deadline = Date.now() + 15_000;
      while (client.getStats().payments === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      for (const url of mediaPlaylist(await (await fetch(variant)).text(), variant).segments) {
        const got = (await client.loadSegment({ url, playlistUrl: variant })) as { data: Uint8Array };
        expect(Buffer.compare(Buffer.from(got.data), await readFile(join(dir, new URL(url).pathname))), url).toBe(0);
      }
      // Receipts are sent after each verified segment: let the last ones land.
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await client.close();
    }
    const verified = client.getStats().perRelay[honest.proc.relayId]?.bytesVerified ?? 0;
    expect(verified).toBeGreaterThan(0);
    const out = await redeemPaidRelay(net, honest);
    expect(out.code, out.stderr).toBe(0);
    const expected = amountForBytes(verified, PRICE_PER_GIB);
    expect(await tokenBalance(setup, honest.proc.relayId)).toBe(expected);
    expect(await tokenBalance(setup, setup.treasury)).toBe(treasuryBefore - expected);
  });
});
