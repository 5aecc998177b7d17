import { generateKeyPairSync } from 'node:crypto';
import { GRANT_VERSION, encodeBase58, encodeSignedGrant, fromBase64, type SignedGrant } from '@relaycast/protocol';
import { rawPublicKey, signGrant, signRedeemBody } from '@relaycast/protocol/node';
import { MAX_REDEEM_ITEMS, REDEEM_MAX_CLOCK_SKEW_MS, SETTLER_MAX_BODY_BYTES, SETTLER_PATHS, relayStatusPath } from '@relaycast/protocol/settlement';
import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { PublicKey } from '@solana/web3.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { userTag } from './grant-auth.js';
import type { Settler } from './settler.js';
import {
  assignmentFor,
  confirmPayout,
  getJson,
  itemFor,
  newRelay,
  newTracker,
  newViewer,
  postJson,
  receiptFor,
  redeemAt,
  requestGrant,
  startPaymentWorld,
  startTestSettler,
  tokenBalance,
  type PaymentWorld,
  type TestRelay,
} from '../testing/settlement-world.js';

const PAGE = 'https://platform.example.test';

describe('settler refusals', () => {
  let w: PaymentWorld;
  let settler: Settler;
  let relay: TestRelay;
  let otherRelay: TestRelay;

  beforeAll(async () => {
    w = await startPaymentWorld();
    settler = await startTestSettler(w, {
      allowedOrigins: [PAGE],
      // The test's "platform": budget and lifetime from headers, refusal when asked to.
      authorize: (req) => {
        if (req.headers['x-test-refuse'] !== undefined) return Promise.resolve(undefined);
        const budget = req.headers['x-test-budget'];
        const ttl = req.headers['x-test-ttl-ms'];
        return Promise.resolve({
          ...(typeof budget === 'string' ? { budget: BigInt(budget) } : {}),
          ...(typeof ttl === 'string' ? { ttlMs: Number(ttl) } : {}),
        });
      },
    });
    relay = await newRelay(w);
    otherRelay = await newRelay(w);
  }, 60_000);

  afterAll(async () => {
    await settler?.close();
    await w?.close();
  });

  async function expectNothingPaid(r: TestRelay): Promise<void> {
    expect((await getJson(`${settler.url}${relayStatusPath(r.id)}`)).body).toEqual({ owed: '0', cumulativePaid: '0', pending: null });
    expect(await tokenBalance(w, getAssociatedTokenAddressSync(w.mint.mint, r.keypair.publicKey))).toBe(0n);
  }

  it('refuses bad items one by one with their codes, cheap checks first, and stores nothing for them', async () => {
    const viewer = newViewer();
    const intruder = newViewer();
    const grant = await requestGrant(settler, viewer);
    const pk = relay.keypair.publicKey;
    const tampered = fromBase64(receiptFor(viewer, grant.signed, pk, 1, 1_000))!;
    const lastByte = tampered.length - 1;
    tampered[lastByte] = tampered[lastByte]! ^ 1;
    const smallViewer = newViewer();
    const smallGrant = await requestGrant(settler, smallViewer, { 'x-test-budget': '10' });
    const { privateKey: strangerKey } = generateKeyPairSync('ed25519');
    const strangerGrant: SignedGrant = signGrant({ ...grant.signed.grant, payer: rawPublicKey(strangerKey) }, strangerKey);
    const forged: SignedGrant = { grant: { ...grant.signed.grant, budget: grant.signed.grant.budget + 1n }, signature: grant.signed.signature };
    const b64 = (g: SignedGrant): string => Buffer.from(encodeSignedGrant(g)).toString('base64');
    const assignment = assignmentFor(w, viewer, pk);
    const stranger = newTracker();
    const badSig = fromBase64(assignment)!;
    badSig[badSig.length - 1] = badSig[badSig.length - 1]! ^ 1;
    const ok = (r: string): { grant: string; receipt: string; assignment: string } => ({ grant: grant.b64, receipt: r, assignment });
    const items = [
      // Signed by a key the grant was not issued to.
      ok(receiptFor(intruder, grant.signed, pk, 1, 1_000, { sessionKey: intruder.sessionKey })),
      ok(Buffer.from(tampered).toString('base64')),
      ok(receiptFor(viewer, grant.signed, pk, 1, 1_000, { cumulativeAmount: 5_000n })),
      ok(receiptFor(viewer, grant.signed, otherRelay.keypair.publicKey, 1, 1_000)),
      { grant: smallGrant.b64, receipt: receiptFor(smallViewer, smallGrant.signed, pk, 1, 1_000), assignment: assignmentFor(w, smallViewer, pk) },
      { grant: b64(strangerGrant), receipt: receiptFor(viewer, strangerGrant, pk, 1, 1_000), assignment },
      { grant: b64(forged), receipt: receiptFor(viewer, forged, pk, 1, 1_000), assignment },
      ok('not base64!'),
      ok(Buffer.from(tampered.subarray(1)).toString('base64')),
      // Assignments: none, from a tracker nobody trusts, for another relay, for another session, forged.
      { grant: grant.b64, receipt: receiptFor(viewer, grant.signed, pk, 1, 1_000) },
      { ...ok(receiptFor(viewer, grant.signed, pk, 1, 1_000)), assignment: assignmentFor(w, viewer, pk, Date.now(), stranger) },
      { ...ok(receiptFor(viewer, grant.signed, pk, 1, 1_000)), assignment: assignmentFor(w, viewer, otherRelay.keypair.publicKey) },
      { ...ok(receiptFor(viewer, grant.signed, pk, 1, 1_000)), assignment: assignmentFor(w, intruder, pk) },
      { ...ok(receiptFor(viewer, grant.signed, pk, 1, 1_000)), assignment: Buffer.from(badSig).toString('base64') },
      { ...ok(receiptFor(viewer, grant.signed, pk, 1, 1_000)), assignment: 'AAAA' },
      // Dated long after the grant expired.
      { ...ok(receiptFor(viewer, grant.signed, pk, 1, 1_000)), assignment: assignmentFor(w, viewer, pk, grant.signed.grant.expiresAtMs + 1) },
    ];
    const res = await redeemAt(settler, relay, items);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'nothing-owed',
      cumulativePaid: '0',
      credited: [],
      rejected: [
        { index: 0, code: 'RC_ERR_RECEIPT_NO_GRANT' },
        { index: 1, code: 'RC_ERR_RECEIPT_SIGNATURE' },
        { index: 2, code: 'RC_ERR_RECEIPT_AMOUNT' },
        { index: 3, code: 'RC_ERR_RECEIPT_WRONG_RELAY' },
        { index: 4, code: 'RC_ERR_RECEIPT_OVER_BUDGET' },
        { index: 5, code: 'RC_ERR_PAYER_UNKNOWN' },
        { index: 6, code: 'RC_ERR_GRANT_SIGNATURE' },
        { index: 7, code: 'RC_ERR_RECEIPT_MALFORMED' },
        { index: 8, code: 'RC_ERR_RECEIPT_MALFORMED' },
        { index: 9, code: 'RC_ERR_ASSIGNMENT_MISSING' },
        { index: 10, code: 'RC_ERR_ASSIGNMENT_INVALID' },
        { index: 11, code: 'RC_ERR_ASSIGNMENT_INVALID' },
        { index: 12, code: 'RC_ERR_ASSIGNMENT_INVALID' },
        { index: 13, code: 'RC_ERR_ASSIGNMENT_INVALID' },
        { index: 14, code: 'RC_ERR_ASSIGNMENT_INVALID' },
        { index: 15, code: 'RC_ERR_ASSIGNMENT_INVALID' },
      ],
    });
    await expectNothingPaid(relay);
  });

  it('credits at most the plausible amount on its own clock, re-evaluates a resent receipt, and closes the redeem window', async () => {
    let now = Date.now();
    // 8,000 bit/s = 1,000 bytes/s, no burst: a grant t seconds old can have earned 1,000 × t bytes.
    const clocked = await startTestSettler(w, {
      dbPath: `${w.dbPath}.clocked`,
      maxBitrateBps: 8_000,
      plausibleBurstBytes: 0,
      redeemWindowMs: 60_000,
      now: () => now,
    });
    try {
      const r = await newRelay(w);
      const pk = r.keypair.publicKey;
      const viewer = newViewer();
      const grant = await requestGrant(clocked, viewer, { 'x-test-ttl-ms': '100000' });
      expect(grant.signed.grant.maxBytesPerSec).toBe(1_000);
      expect(grant.signed.grant.issuedAtMs).toBe(now);
      // The viewer's timestamp is ignored: only the settler's clock counts.
      const item = itemFor(w, viewer, grant, pk, 1, 50_000, { timestampMs: now + 10_000_000 });
      now += 10_000;
      const first = await redeemAt(clocked, r, [item], { requestedAtMs: now });
      expect(first.body).toMatchObject({
        status: 'payout',
        amount: '10000',
        credited: [{ index: 0, credited: '10000', shortfall: { code: 'RC_ERR_RECEIPT_IMPLAUSIBLE', amount: '40000' } }],
      });
      await confirmPayout(w, first.body as { transaction: string; signature: string; lastValidBlockHeight: number });
      // 30 s later the same receipt is plausible up to 40,000.
      now += 30_000;
      await expect.poll(async () => (await getJson(`${clocked.url}${relayStatusPath(r.id)}`)).body['pending']).toBeNull();
      const second = await redeemAt(clocked, r, [item], { requestedAtMs: now });
      expect(second.body).toMatchObject({
        status: 'payout',
        amount: '30000',
        cumulativePaid: '40000',
        credited: [{ index: 0, credited: '40000', shortfall: { code: 'RC_ERR_RECEIPT_IMPLAUSIBLE', amount: '10000' } }],
      });
      await confirmPayout(w, second.body as { transaction: string; signature: string; lastValidBlockHeight: number });
      await expect.poll(async () => (await getJson(`${clocked.url}${relayStatusPath(r.id)}`)).body['pending']).toBeNull();
      // Past expiry + the redeem window: nothing more is credited, whatever the receipt says.
      now = grant.signed.grant.expiresAtMs + 60_001;
      const late = itemFor(w, viewer, grant, pk, 2, 60_000);
      const closed = await redeemAt(clocked, r, [late], { requestedAtMs: now });
      expect(closed.body).toEqual({
        status: 'nothing-owed',
        cumulativePaid: '40000',
        credited: [{ index: 0, credited: '40000', shortfall: { code: 'RC_ERR_REDEEM_WINDOW_CLOSED', amount: '20000' } }],
      });
    } finally {
      await clocked.close();
    }
  });

  it('per-user budgets and one live grant per session key', async () => {
    const budgeted = await startTestSettler(w, {
      dbPath: `${w.dbPath}.budgeted`,
      defaultBudget: 1_000n,
      userBudget: 2_500n,
      authorize: (req) => Promise.resolve({ user: String(req.headers['x-test-user']) }),
    });
    try {
      const alice = { 'x-test-user': 'alice' };
      const v1 = newViewer();
      const g1 = await requestGrant(budgeted, v1, alice);
      const again = await postJson(
        `${budgeted.url}${SETTLER_PATHS.grants}`,
        { sessionKey: encodeBase58(v1.sessionKey), scope: 'https://cdn.example.test/hls/' },
        alice,
      );
      expect([again.status, (again.body['error'] as { code: string }).code]).toEqual([409, 'RC_ERR_GRANT_LIVE_EXISTS']);
      const g2 = await requestGrant(budgeted, newViewer(), alice);
      const third = await postJson(
        `${budgeted.url}${SETTLER_PATHS.grants}`,
        { sessionKey: encodeBase58(newViewer().sessionKey), scope: 'https://cdn.example.test/hls/' },
        alice,
      );
      expect([third.status, (third.body['error'] as { code: string }).code]).toEqual([403, 'RC_ERR_USER_BUDGET_EXHAUSTED']);
      // Another user is not affected; a user's grants carry the same tag, never the id itself.
      const bob = await requestGrant(budgeted, newViewer(), { 'x-test-user': 'bob' });
      expect(g1.signed.grant.user).toEqual(g2.signed.grant.user);
      expect(g1.signed.grant.user).toEqual(userTag(new PublicKey(budgeted.payer).toBytes(), 'alice'));
      expect(bob.signed.grant.user).not.toEqual(g1.signed.grant.user);
    } finally {
      await budgeted.close();
    }
  });

  it('refuses requests that are not the relay’s, stale, oversized or malformed, and stores nothing from them', async () => {
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer);
    const items = [itemFor(w, viewer, grant, relay.keypair.publicKey, 1, 1_000)];
    const codeOf = (r: Awaited<ReturnType<typeof redeemAt>>): [number, string | undefined] => [r.status, r.body.error?.code];

    // Signed by another relay's key, or a body changed after signing.
    expect(codeOf(await redeemAt(settler, relay, items, { signatureOf: (raw) => signRedeemBody(raw, otherRelay.key) }))).toEqual([
      401,
      'RC_ERR_REDEEM_SIGNATURE',
    ]);
    expect(codeOf(await redeemAt(settler, relay, items, { signatureOf: () => 'AAAA' }))).toEqual([401, 'RC_ERR_REDEEM_SIGNATURE']);
    expect(codeOf(await redeemAt(settler, relay, items, { requestedAtMs: Date.now() - REDEEM_MAX_CLOCK_SKEW_MS - 60_000 }))).toEqual([
      401,
      'RC_ERR_REDEEM_CLOCK_SKEW',
    ]);
    expect(codeOf(await redeemAt(settler, relay, items, { requestedAtMs: Date.now() + REDEEM_MAX_CLOCK_SKEW_MS + 60_000 }))).toEqual([
      401,
      'RC_ERR_REDEEM_CLOCK_SKEW',
    ]);
    expect(codeOf(await redeemAt(settler, relay, [], { rawBody: Buffer.alloc(SETTLER_MAX_BODY_BYTES + 1, 0x20) }))).toEqual([413, 'RC_ERR_MESSAGE_TOO_LARGE']);
    expect(codeOf(await redeemAt(settler, relay, [], { rawBody: Buffer.from('{"relay":') }))).toEqual([400, 'RC_ERR_MESSAGE_MALFORMED']);
    const tooMany = Array.from({ length: MAX_REDEEM_ITEMS + 1 }, () => ({ grant: '', receipt: '' }));
    expect(codeOf(await redeemAt(settler, relay, tooMany))).toEqual([400, 'RC_ERR_MESSAGE_FIELD']);
    await expectNothingPaid(relay);
  });

  it('refuses a replayed older receipt and keeps the outstanding payout unchanged', async () => {
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer);
    const pk = otherRelay.keypair.publicKey;
    const older = itemFor(w, viewer, grant, pk, 1, 1_000);
    const newer = itemFor(w, viewer, grant, pk, 2, 2_000);
    const first = await redeemAt(settler, otherRelay, [newer]);
    expect(first.body).toMatchObject({ status: 'payout', amount: '2000', cumulativePaid: '2000', credited: [{ index: 0, credited: '2000' }] });
    const replay = await redeemAt(settler, otherRelay, [older]);
    expect(replay.body).toMatchObject({ cumulativePaid: '2000', credited: [], rejected: [{ index: 0, code: 'RC_ERR_RECEIPT_STALE' }] });
  });

  it('caps a grant across relays at its budget, first redeemed first credited, and says so per item', async () => {
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer, { 'x-test-budget': '1500' });
    const a = await newRelay(w);
    const b = await newRelay(w);
    const ra = await redeemAt(settler, a, [itemFor(w, viewer, grant, a.keypair.publicKey, 1, 1_000)]);
    const rb = await redeemAt(settler, b, [itemFor(w, viewer, grant, b.keypair.publicKey, 1, 1_000)]);
    expect(ra.body).toMatchObject({ status: 'payout', amount: '1000', credited: [{ index: 0, credited: '1000' }] });
    expect(rb.body).toMatchObject({
      status: 'payout',
      amount: '500',
      credited: [{ index: 0, credited: '500', shortfall: { code: 'RC_ERR_GRANT_BUDGET_SPENT', amount: '500' } }],
    });
  });

  it('answers RC_ERR_PAYOUT_ACCOUNT_MISSING when the relay has no token account, and keeps its receipts', async () => {
    const noAta = await newRelay(w, false);
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer);
    const res = await redeemAt(settler, noAta, [itemFor(w, viewer, grant, noAta.keypair.publicKey, 1, 3_000)]);
    expect([res.status, res.body.error?.code]).toEqual([409, 'RC_ERR_PAYOUT_ACCOUNT_MISSING']);
    expect((await getJson(`${settler.url}${relayStatusPath(noAta.id)}`)).body).toEqual({ owed: '3000', cumulativePaid: '0', pending: null });
  });

  it('grants: refused by the hook, refused to unlisted page origins, CORS for listed ones, malformed bodies', async () => {
    const sessionKey = encodeBase58(newViewer().sessionKey);
    const body = { sessionKey, scope: 'https://cdn.example.test/hls/' };
    const refused = await postJson(`${settler.url}${SETTLER_PATHS.grants}`, body, { 'x-test-refuse': '1' });
    expect([refused.status, (refused.body['error'] as { code: string }).code]).toEqual([403, 'RC_ERR_GRANT_REFUSED']);
    const foreign = await postJson(`${settler.url}${SETTLER_PATHS.grants}`, body, { origin: 'https://evil.example.test' });
    expect([foreign.status, (foreign.body['error'] as { code: string }).code]).toEqual([403, 'RC_ERR_GRANT_REFUSED']);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const page = await postJson(`${settler.url}${SETTLER_PATHS.grants}`, body, { origin: PAGE });
    expect(page.status).toBe(200);
    expect(page.headers.get('access-control-allow-origin')).toBe(PAGE);
    const preflight = await fetch(`${settler.url}${SETTLER_PATHS.grants}`, {
      method: 'OPTIONS',
      headers: { origin: PAGE, 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    for (const bad of [{ sessionKey: 'xyz', scope: body.scope }, { sessionKey, scope: 'ftp://x/' }, { sessionKey, scope: 'x'.repeat(600) }, { sessionKey }]) {
      const res = await postJson(`${settler.url}${SETTLER_PATHS.grants}`, bad);
      expect(res.status).toBe(400);
    }
    const g = (await postJson(`${settler.url}${SETTLER_PATHS.grants}`, { ...body, sessionKey: encodeBase58(newViewer().sessionKey) })).body;
    expect(g).toMatchObject({ payer: settler.payer, mint: w.mint.mint.toBase58(), budget: '100000000' });
    expect(fromBase64(g['grant'] as string)![0]).toBe(GRANT_VERSION);
  });

  it('rate-limits per client IP', async () => {
    const limited = await startTestSettler(w, { dbPath: `${w.dbPath}.limited`, maxRequestsPerSec: 2, requestBurst: 2 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await fetch(`${limited.url}${SETTLER_PATHS.info}`)).status);
      expect(statuses.slice(0, 2)).toEqual([200, 200]);
      expect(statuses.slice(2)).toEqual([429, 429]);
    } finally {
      await limited.close();
    }
  });
});
