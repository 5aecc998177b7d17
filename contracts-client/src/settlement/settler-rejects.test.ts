import { generateKeyPairSync } from 'node:crypto';
import { GRANT_VERSION, encodeBase58, encodeSignedGrant, fromBase64, type SignedGrant } from '@relaycast/protocol';
import { rawPublicKey, signGrant } from '@relaycast/protocol/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_REDEEM_ITEMS, REDEEM_MAX_CLOCK_SKEW_MS, SETTLER_MAX_BODY_BYTES } from '../constants.js';
import { signRedeemBody } from './redeem-request.js';
import type { Settler } from './settler.js';
import {
  TREASURY_FUNDS,
  getJson,
  newRelay,
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
} from './settlement-test-support.js';

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
    expect((await getJson(`${settler.url}/v1/relays/${r.id}`)).body).toEqual({ owed: '0', cumulativePaid: '0', pending: null });
    expect(await tokenBalance(w, w.treasuryTokenAccount)).toBe(TREASURY_FUNDS);
  }

  it('refuses bad items one by one with their codes and pays nothing for them', async () => {
    const viewer = newViewer();
    const intruder = newViewer();
    const grant = await requestGrant(settler, viewer);
    const pk = relay.keypair.publicKey;
    const tampered = fromBase64(receiptFor(viewer, grant.signed, pk, 1, 1_000))!;
    const amountLastByte = 1 + 16 + 32 + 32 + 8 + 8 + 7;
    tampered[amountLastByte] = tampered[amountLastByte]! ^ 1;
    const expiredGrant = await requestGrant(settler, viewer, { 'x-test-ttl-ms': '1' });
    const smallGrant = await requestGrant(settler, viewer, { 'x-test-budget': '10' });
    const { privateKey: strangerKey } = generateKeyPairSync('ed25519');
    const strangerGrant: SignedGrant = signGrant({ ...grant.signed.grant, payer: rawPublicKey(strangerKey) }, strangerKey);
    const forged: SignedGrant = { grant: { ...grant.signed.grant, budget: grant.signed.grant.budget + 1n }, signature: grant.signed.signature };
    const b64 = (g: SignedGrant): string => Buffer.from(encodeSignedGrant(g)).toString('base64');
    const items = [
      // Signed by a key the grant was not issued to.
      { grant: grant.b64, receipt: receiptFor(intruder, grant.signed, pk, 1, 1_000, { sessionKey: intruder.sessionKey }) },
      { grant: grant.b64, receipt: Buffer.from(tampered).toString('base64') },
      { grant: grant.b64, receipt: receiptFor(viewer, grant.signed, pk, 1, 1_000, { cumulativeAmount: 5_000n }) },
      { grant: grant.b64, receipt: receiptFor(viewer, grant.signed, otherRelay.keypair.publicKey, 1, 1_000) },
      { grant: expiredGrant.b64, receipt: receiptFor(viewer, expiredGrant.signed, pk, 1, 1_000, { timestampMs: expiredGrant.signed.grant.expiresAtMs + 1 }) },
      { grant: smallGrant.b64, receipt: receiptFor(viewer, smallGrant.signed, pk, 1, 1_000) },
      { grant: b64(strangerGrant), receipt: receiptFor(viewer, strangerGrant, pk, 1, 1_000) },
      { grant: b64(forged), receipt: receiptFor(viewer, forged, pk, 1, 1_000) },
      { grant: grant.b64, receipt: 'not base64!' },
      { grant: grant.b64, receipt: Buffer.from(tampered.subarray(1)).toString('base64') },
    ];
    const res = await redeemAt(settler, relay, items);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      status: 'nothing-owed',
      cumulativePaid: '0',
      rejected: [
        { index: 0, code: 'RC_ERR_RECEIPT_NO_GRANT' },
        { index: 1, code: 'RC_ERR_RECEIPT_SIGNATURE' },
        { index: 2, code: 'RC_ERR_RECEIPT_AMOUNT' },
        { index: 3, code: 'RC_ERR_RECEIPT_WRONG_RELAY' },
        { index: 4, code: 'RC_ERR_GRANT_EXPIRED' },
        { index: 5, code: 'RC_ERR_RECEIPT_OVER_BUDGET' },
        { index: 6, code: 'RC_ERR_PAYER_UNKNOWN' },
        { index: 7, code: 'RC_ERR_GRANT_SIGNATURE' },
        { index: 8, code: 'RC_ERR_RECEIPT_MALFORMED' },
        { index: 9, code: 'RC_ERR_RECEIPT_MALFORMED' },
      ],
    });
    await expectNothingPaid(relay);
  });

  it('refuses requests that are not the relay’s, stale, oversized or malformed, and stores nothing from them', async () => {
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer);
    const items = [{ grant: grant.b64, receipt: receiptFor(viewer, grant.signed, relay.keypair.publicKey, 1, 1_000) }];
    const codeOf = (r: Awaited<ReturnType<typeof redeemAt>>): [number, string | undefined] => [r.status, r.body.error?.code];

    // Signed by another relay's key, or a body changed after signing.
    expect(codeOf(await redeemAt(settler, relay, items, { signatureOf: (raw) => signRedeemBody(raw, otherRelay.key) }))).toEqual([401, 'RC_ERR_REDEEM_SIGNATURE']);
    expect(codeOf(await redeemAt(settler, relay, items, { signatureOf: () => 'AAAA' }))).toEqual([401, 'RC_ERR_REDEEM_SIGNATURE']);
    expect(codeOf(await redeemAt(settler, relay, items, { requestedAtMs: Date.now() - REDEEM_MAX_CLOCK_SKEW_MS - 60_000 }))).toEqual([401, 'RC_ERR_REDEEM_CLOCK_SKEW']);
    expect(codeOf(await redeemAt(settler, relay, items, { requestedAtMs: Date.now() + REDEEM_MAX_CLOCK_SKEW_MS + 60_000 }))).toEqual([401, 'RC_ERR_REDEEM_CLOCK_SKEW']);
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
    const older = receiptFor(viewer, grant.signed, pk, 1, 1_000);
    const newer = receiptFor(viewer, grant.signed, pk, 2, 2_000);
    const first = await redeemAt(settler, otherRelay, [{ grant: grant.b64, receipt: newer }]);
    expect(first.body).toMatchObject({ status: 'payout', amount: '2000', cumulativePaid: '2000' });
    const replay = await redeemAt(settler, otherRelay, [{ grant: grant.b64, receipt: older }]);
    expect(replay.body).toEqual({ ...first.body, rejected: [{ index: 0, code: 'RC_ERR_RECEIPT_STALE' }] });
  });

  it('caps a grant across relays at its budget, first redeemed first credited', async () => {
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer, { 'x-test-budget': '1500' });
    const a = await newRelay(w);
    const b = await newRelay(w);
    const ra = await redeemAt(settler, a, [{ grant: grant.b64, receipt: receiptFor(viewer, grant.signed, a.keypair.publicKey, 1, 1_000) }]);
    const rb = await redeemAt(settler, b, [{ grant: grant.b64, receipt: receiptFor(viewer, grant.signed, b.keypair.publicKey, 1, 1_000) }]);
    expect(ra.body).toMatchObject({ status: 'payout', amount: '1000' });
    expect(rb.body).toMatchObject({ status: 'payout', amount: '500' });
  });

  it('answers RC_ERR_PAYOUT_ACCOUNT_MISSING when the relay has no token account, and keeps its receipts', async () => {
    const noAta = await newRelay(w, false);
    const viewer = newViewer();
    const grant = await requestGrant(settler, viewer);
    const res = await redeemAt(settler, noAta, [{ grant: grant.b64, receipt: receiptFor(viewer, grant.signed, noAta.keypair.publicKey, 1, 3_000) }]);
    expect([res.status, res.body.error?.code]).toEqual([409, 'RC_ERR_PAYOUT_ACCOUNT_MISSING']);
    expect((await getJson(`${settler.url}/v1/relays/${noAta.id}`)).body).toEqual({ owed: '3000', cumulativePaid: '0', pending: null });
  });

  it('grants: refused by the hook, refused to unlisted page origins, CORS for listed ones, malformed bodies', async () => {
    const sessionKey = encodeBase58(newViewer().sessionKey);
    const body = { sessionKey, scope: 'https://cdn.example.test/hls/' };
    const refused = await postJson(`${settler.url}/v1/grants`, body, { 'x-test-refuse': '1' });
    expect([refused.status, (refused.body['error'] as { code: string }).code]).toEqual([403, 'RC_ERR_GRANT_REFUSED']);
    const foreign = await postJson(`${settler.url}/v1/grants`, body, { origin: 'https://evil.example.test' });
    expect([foreign.status, (foreign.body['error'] as { code: string }).code]).toEqual([403, 'RC_ERR_GRANT_REFUSED']);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    const page = await postJson(`${settler.url}/v1/grants`, body, { origin: PAGE });
    expect(page.status).toBe(200);
    expect(page.headers.get('access-control-allow-origin')).toBe(PAGE);
    const preflight = await fetch(`${settler.url}/v1/grants`, { method: 'OPTIONS', headers: { origin: PAGE, 'access-control-request-method': 'POST' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-methods')).toBe('POST');
    for (const bad of [{ sessionKey: 'xyz', scope: body.scope }, { sessionKey, scope: 'ftp://x/' }, { sessionKey, scope: 'x'.repeat(600) }, { sessionKey }]) {
      const res = await postJson(`${settler.url}/v1/grants`, bad);
      expect(res.status).toBe(400);
    }
    const g = (await postJson(`${settler.url}/v1/grants`, body)).body;
    expect(g).toMatchObject({ payer: settler.payer, mint: w.mint.mint.toBase58(), budget: '100000000' });
    expect(fromBase64(g['grant'] as string)![0]).toBe(GRANT_VERSION);
  });

  it('rate-limits per client IP', async () => {
    const limited = await startTestSettler(w, { dbPath: `${w.dbPath}.limited`, maxRequestsPerSec: 2, requestBurst: 2 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) statuses.push((await fetch(`${limited.url}/v1/info`)).status);
      expect(statuses.slice(0, 2)).toEqual([200, 200]);
      expect(statuses.slice(2)).toEqual([429, 429]);
    } finally {
      await limited.close();
    }
  });
});
