import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assignmentB64,
  identityOfKeypair,
  newIdentity,
  receiptB64,
  redeemAs,
  requestGrantAt,
  setUpRelayWallet,
  setUpTreasury,
  startChainProcess,
  startSettlerProcess,
  tokenBalance,
  waitForPayout,
  type PaymentSetup,
  type SettlerProc,
  type TestIdentity,
} from '../helpers/payments-world.js';
import { stopAll, waitFor } from '../helpers/processes.js';

/** One base unit per byte: amounts read as byte counts. */
const PRICE_PER_GIB = 1n << 30n;
const BUDGET = 10_000_000n;
const USER_BUDGET = 3n * BUDGET;
const SECRET = 'the-platform-s-hs256-secret-for-relaycast-grants';
const AUDIENCE = 'relaycast-settler';
/** 1 MB/s plausible, 1 MB burst: a grant one second old is worth at most ~2 MB. */
const TRUST_FLAGS = ['--default-budget', String(BUDGET), '--user-budget', String(USER_BUDGET), '--max-bitrate-bps', '8000000', '--plausible-burst-bytes', '1000000'];

async function platformToken(sub: string): Promise<string> {
  return new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(sub).setAudience(AUDIENCE).setExpirationTime('10m').sign(new TextEncoder().encode(SECRET));
}

/** The settler's per-range limit is 20 requests/s: the attacker paces itself to stay under it. */
const pace = (): Promise<void> => new Promise((r) => setTimeout(r, 60));

/**
 * Issue 14, finding 1: "a fresh key posing as a relay, 50 POST /v1/grants, 50 full-budget receipts
 * signed to that relay: 500,000,000 base units credited". Replayed against real chain and settler
 * processes, under both grant policies; an honest relay redeems beside the attacker.
 */
describe('attack 1: draining the treasury with self-issued grants and receipts', () => {
  let dir: string;
  let setup: PaymentSetup;
  let jwtSettler: SettlerProc;
  let openSettler: SettlerProc;
  let honestRelay: TestIdentity;
  const tracker = newIdentity();
  const fakeRelay = newIdentity();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack01-'));
    const chain = await startChainProcess();
    setup = await setUpTreasury(chain.rpcUrl, dir, 1_000);
    // The bin reads the HS256 secret from its environment (inherited from this process).
    process.env['RELAYCAST_GRANT_JWT_SECRET'] = SECRET;
    jwtSettler = await startSettlerProcess(setup, join(dir, 'jwt.sqlite'), PRICE_PER_GIB, {
      grantAuth: 'jwt',
      trustedTrackers: [tracker.id],
      extra: ['--grant-jwt-audience', AUDIENCE, ...TRUST_FLAGS],
    });
    openSettler = await startSettlerProcess(setup, join(dir, 'open.sqlite'), PRICE_PER_GIB, { grantAuth: 'open', trustedTrackers: [tracker.id], extra: TRUST_FLAGS });
    const keypair = join(dir, 'honest-relay.json');
    await setUpRelayWallet(setup, keypair);
    honestRelay = await identityOfKeypair(keypair);
  });

  afterAll(async () => {
    await stopAll();
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
      const receipt = receiptB64(viewer, g.grant!.signed, fakeRelay, 1, Number(BUDGET));
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
    expect(((await (await fetch(`${openSettler.url}/v1/relays/${fakeRelay.id}`)).json()) as Record<string, unknown>)).toEqual({ owed: '0', cumulativePaid: '0', pending: null });
    expect(await tokenBalance(setup, setup.treasury)).toBe(before);
  });

  it('a relay the tracker did assign is credited only what is plausible on the settler’s clock; the honest relay beside it is paid exactly its bytes × price', async () => {
    const treasuryBefore = await tokenBalance(setup, setup.treasury);
    // The attacker holds a valid assignment (it registered as a relay and was handed the session)
    // and claims the whole budget at once.
    const mallory = newIdentity();
    const mg = await requestGrantAt(openSettler.url, mallory);
    const issuedAtMs = mg.grant!.signed.grant.issuedAtMs;
    const greedy = await redeemAs(openSettler.url, fakeRelay, [
      { grant: mg.grant!.b64, receipt: receiptB64(mallory, mg.grant!.signed, fakeRelay, 1, Number(BUDGET)), assignment: assignmentB64(tracker, mallory, fakeRelay) },
    ]);
    expect(greedy.status).toBe(409); // its token account does not even exist; the receipt is kept
    const status = (await (await fetch(`${openSettler.url}/v1/relays/${fakeRelay.id}`)).json()) as { owed: string };
    const ageMs = Date.now() - issuedAtMs;
    // At most 1 MB/s × age + 1 MB, far below the 10,000,000 claimed.
    expect(BigInt(status.owed)).toBeLessThanOrEqual(BigInt(Math.ceil(1_000 * ageMs + 1_000_000)));
    expect(BigInt(status.owed)).toBeLessThan(BUDGET / 2n);

    // The honest relay: a viewer the platform vouches for, the tracker's assignment, 1,500,000 bytes delivered.
    const viewer = newIdentity();
    const g = await requestGrantAt(jwtSettler.url, viewer, { authorization: `Bearer ${await platformToken('honest-viewer')}` });
    expect(g.status).toBe(200);
    const bytes = 1_500_000;
    // Delivering 1.5 MB takes time at any real bitrate: the receipt comes at least 1 s after the grant.
    await new Promise((r) => setTimeout(r, 1_000));
    const item = { grant: g.grant!.b64, receipt: receiptB64(viewer, g.grant!.signed, honestRelay, 1, bytes), assignment: assignmentB64(tracker, viewer, honestRelay) };
    const paid = await redeemAs(jwtSettler.url, honestRelay, [item]);
    expect(paid.body.status, JSON.stringify(paid.body)).toBe('payout');
    if (paid.body.status !== 'payout') return;
    expect(paid.body.credited).toEqual([{ index: 0, credited: String(bytes) }]);
    await waitForPayout(setup.rpcUrl, paid.body.signature);
    await waitFor('the honest payout resolved', async () => ((await (await fetch(`${jwtSettler.url}/v1/relays/${honestRelay.id}`)).json()) as { pending: unknown }).pending === null);
    expect(await tokenBalance(setup, honestRelay.id)).toBe(BigInt(bytes));
    expect(await tokenBalance(setup, setup.treasury)).toBe(treasuryBefore - BigInt(bytes));
  });
});
