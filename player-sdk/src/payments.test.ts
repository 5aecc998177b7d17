import { generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ErrorCode,
  FrameType,
  amountForBytes,
  checkAssignment,
  checkReceipt,
  decodePublicKey,
  decodeSignedAssignment,
  decodeSignedGrant,
  decodeSignedReceipt,
  encodeBase58,
  encodeSignedGrant,
  toBase64,
  type ReceiptFrame,
  type RelaycastError,
  type SessionGrant,
  type SignedReceipt,
} from '@relaycast/protocol';
import { rawPublicKey, signGrant, verifyAssignmentSignature, verifyBindProof, verifyGrantSignature, verifyReceiptSignature } from '@relaycast/protocol/node';
import { SETTLER_PATHS } from '@relaycast/protocol/settlement';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  startLoopbackNetwork,
  delay,
  testBytes,
  until,
  type LoopbackNetwork,
  type RelayBehaviour,
  type TestOrigin,
  type TestRelay,
  type TestTracker,
  withDigestSidecar,
} from './testing/loopback-network.js';
import { ReceiptSigner } from './receipt-signer.js';
import { RelaycastClient, type RelaycastClientOptions } from './relaycast-client.js';
import { createSessionSigner } from './session-key.js';

/**
 * Receipts from the SDK core: a session key made by the SDK, a grant signed here with a payer key
 * (standing in for the platform's settlement service, which has its own tests), a tracker stub that
 * checks the session proof and signs assignments, and scripted relays over real node-datachannel
 * connections that send CHALLENGE (when paid) and record every BIND and RECEIPT frame.
 */
const SEGMENT = testBytes(150_000);
const payer = generateKeyPairSync('ed25519').privateKey;
const PRICE = 1_000_000_000n; // base units per GiB: 150,000 bytes are worth 139,698 units

let net: LoopbackNetwork;
let origin: TestOrigin;
let tracker: TestTracker;
/** Clients made outside `net.client`: closed after each test too. */
const clients: RelaycastClient[] = [];

function grantFor(sessionKey: string, over: Partial<SessionGrant> = {}): Uint8Array {
  return encodeSignedGrant(
    signGrant(
      {
        version: 2,
        sessionKey: decodePublicKey(sessionKey),
        payer: rawPublicKey(payer),
        mint: new Uint8Array(32).fill(7),
        pricePerGiB: PRICE,
        budget: 10_000_000n,
        issuedAtMs: Date.now(),
        expiresAtMs: Date.now() + 600_000,
        maxBytesPerSec: 10_000_000,
        user: new Uint8Array(16).fill(3),
        scope: `${origin.base}/`,
        nonce: new Uint8Array(16).fill(1),
        ...over,
      },
      payer,
    ),
  );
}

beforeAll(async () => {
  net = await startLoopbackNetwork(withDigestSidecar({ 'seg.ts': SEGMENT }));
  ({ origin, tracker } = net);
});

afterAll(() => net.close());

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await net.reset();
  tracker.sessions.splice(0);
  tracker.assignmentsEnabled = true;
});

async function withRelay(
  behaviour: RelayBehaviour,
  options: Partial<RelaycastClientOptions>,
  paid = true,
): Promise<{ client: RelaycastClient; relay: TestRelay }> {
  const relay = tracker.addRelay(behaviour);
  relay.paid = paid;
  const client = net.client(options);
  await client.start();
  return { client, relay };
}

const load = (client: RelaycastClient) => client.loadSegment({ url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/media.m3u8` });
const receiptsAt = (relay: TestRelay): SignedReceipt[] =>
  relay.received.filter((f) => f.type === FrameType.RECEIPT).map((f) => decodeSignedReceipt((f as { signedReceipt: Uint8Array }).signedReceipt));

describe('receipts', () => {
  it("proves the session key to the tracker, answers the paid relay's CHALLENGE with a verifiable BIND, then sends running-total receipts", async () => {
    let sessionKey = '';
    const { client, relay } = await withRelay((ctx) => ctx.serve(SEGMENT), {
      payments: {
        getGrant: async (req) => {
          sessionKey = req.sessionKey;
          expect(req.scope).toBe(`${origin.base}/`);
          return grantFor(req.sessionKey);
        },
      },
    });
    await until(() => relay.binds.length === 1, 5_000, 'the BIND frame');
    expect(tracker.sessions).toEqual([{ peerId: expect.any(String), sessionKey, proofValid: true }]);
    await load(client);
    await load(client);
    await until(() => receiptsAt(relay).length === 2, 5_000, 'two receipts');

    // BIND: the grant, the tracker's assignment of this session to this relay, and a proof over this channel's challenge.
    const relayKey = decodePublicKey(relay.relayId);
    const { frame, challenge } = relay.binds[0] as (typeof relay.binds)[number];
    const grant = decodeSignedGrant(frame.signedGrant);
    expect(verifyGrantSignature(grant)).toBe(true);
    expect(encodeBase58(grant.grant.sessionKey)).toBe(sessionKey);
    const assignment = decodeSignedAssignment(frame.signedAssignment as Uint8Array);
    expect(verifyAssignmentSignature(assignment)).toBe(true);
    checkAssignment(assignment.assignment, { sessionKey: grant.grant.sessionKey, relay: relayKey, trustedTrackers: [tracker.trackerKey], grant: grant.grant });
    expect(verifyBindProof(grant.grant.sessionKey, challenge as Uint8Array, relayKey, frame.proof)).toBe(true);
    // The proof is for this relay and this challenge only.
    expect(verifyBindProof(grant.grant.sessionKey, new Uint8Array(32), relayKey, frame.proof)).toBe(false);
    expect(verifyBindProof(grant.grant.sessionKey, challenge as Uint8Array, new Uint8Array(32).fill(1), frame.proof)).toBe(false);
    expect(relay.received.findIndex((f) => f.type === FrameType.BIND)).toBeLessThan(relay.received.findIndex((f) => f.type === FrameType.RECEIPT));

    const [first, second] = receiptsAt(relay) as [SignedReceipt, SignedReceipt];
    for (const r of [first, second]) expect(verifyReceiptSignature(r)).toBe(true);
    expect(first.receipt).toMatchObject({ sequence: 1, cumulativeBytes: SEGMENT.byteLength, cumulativeAmount: amountForBytes(SEGMENT.byteLength, PRICE) });
    expect(second.receipt).toMatchObject({
      sequence: 2,
      cumulativeBytes: 2 * SEGMENT.byteLength,
      cumulativeAmount: amountForBytes(2 * SEGMENT.byteLength, PRICE),
    });
    checkReceipt(first.receipt, grant.grant, { relay: relayKey });
    checkReceipt(second.receipt, grant.grant, { relay: relayKey, previous: first.receipt });
    expect(client.getStats().payments).toEqual({
      receiptsSent: 2,
      bytesReceipted: 2 * SEGMENT.byteLength,
      amountSigned: amountForBytes(2 * SEGMENT.byteLength, PRICE).toString(),
    });
  });

  it("waits for the tracker's assignment before BIND, and sends no receipt before BIND", async () => {
    tracker.assignmentsEnabled = false;
    const { client, relay } = await withRelay((ctx) => ctx.serve(SEGMENT), { payments: { getGrant: async (req) => grantFor(req.sessionKey) } });
    await until(() => tracker.sessions.length === 1, 5_000, 'the session');
    await load(client);
    await delay(200);
    expect(relay.binds).toEqual([]);
    expect(receiptsAt(relay)).toEqual([]);
    // The assignment arrives: BIND goes out, and the receipt signed meanwhile follows it.
    tracker.assignmentsEnabled = true;
    for (const ws of tracker.viewers) tracker.sendAssignments(ws);
    await until(() => receiptsAt(relay).length === 1, 5_000, 'the receipt after BIND');
    expect(relay.binds).toHaveLength(1);
    expect(relay.received.findIndex((f) => f.type === FrameType.BIND)).toBeLessThan(relay.received.findIndex((f) => f.type === FrameType.RECEIPT));
    expect(receiptsAt(relay)[0]?.receipt.cumulativeBytes).toBe(SEGMENT.byteLength);
  });

  it('a free relay (no CHALLENGE) gets neither BIND nor receipts, and is served as before', async () => {
    const { client, relay } = await withRelay((ctx) => ctx.serve(SEGMENT), { payments: { getGrant: async (req) => grantFor(req.sessionKey) } }, false);
    await until(() => tracker.sessions.length === 1, 5_000, 'the session');
    const r = await load(client);
    expect(r.bytesFromRelay).toBe(SEGMENT.byteLength);
    await delay(200);
    expect(relay.received.filter((f) => f.type === FrameType.BIND || f.type === FrameType.RECEIPT)).toEqual([]);
    expect(client.getStats().payments).toEqual({ receiptsSent: 0, bytesReceipted: 0, amountSigned: '0' });
  });

  it('sends `session` again, with a proof over the new nonce, after the tracker connection drops', async () => {
    await withRelay((ctx) => ctx.serve(SEGMENT), { payments: { getGrant: async (req) => grantFor(req.sessionKey) } });
    await until(() => tracker.sessions.length === 1, 5_000, 'the first session');
    tracker.dropViewers();
    await until(() => tracker.sessions.length === 2, 10_000, 'the session after the reconnect');
    const [a, b] = tracker.sessions as [(typeof tracker.sessions)[number], (typeof tracker.sessions)[number]];
    expect(b.peerId).not.toBe(a.peerId);
    expect(b.sessionKey).toBe(a.sessionKey);
    expect([a.proofValid, b.proofValid]).toEqual([true, true]);
  });

  it('a renewed grant (new session key) is proven to the tracker and bound on a fresh channel to the relay', async () => {
    // Renewal comes GRANT_RENEW_BEFORE_MS (60 s) before expiry: the first grant (63 s) renews after about 3 s, well after the first BIND.
    let grants = 0;
    const { client, relay } = await withRelay((ctx) => ctx.serve(SEGMENT), {
      payments: {
        getGrant: async (req) =>
          grantFor(req.sessionKey, {
            expiresAtMs: Date.now() + (grants++ === 0 ? 63_000 : 600_000),
            nonce: globalThis.crypto.getRandomValues(new Uint8Array(16)),
          }),
      },
    });
    await until(() => relay.binds.length === 2, 10_000, 'the BIND of the renewed grant');
    expect(tracker.sessions.map((x) => x.proofValid)).toEqual([true, true]);
    expect(tracker.sessions[1]?.sessionKey).not.toBe(tracker.sessions[0]?.sessionKey);
    const [first, second] = relay.binds as [(typeof relay.binds)[number], (typeof relay.binds)[number]];
    const key = (b: typeof first): Uint8Array => decodeSignedGrant(b.frame.signedGrant).grant.sessionKey;
    expect(encodeBase58(key(second))).toBe(tracker.sessions[1]?.sessionKey);
    // A new channel (its own challenge), each proof valid for its own channel only.
    expect(Buffer.from(second.challenge as Uint8Array).equals(Buffer.from(first.challenge as Uint8Array))).toBe(false);
    const relayKey = decodePublicKey(relay.relayId);
    expect(verifyBindProof(key(first), first.challenge as Uint8Array, relayKey, first.frame.proof)).toBe(true);
    expect(verifyBindProof(key(second), second.challenge as Uint8Array, relayKey, second.frame.proof)).toBe(true);
    await until(() => client.relays.length === 1, 5_000, 'the replacement channel');
    await load(client);
    await until(() => receiptsAt(relay).length === 1, 5_000, 'a receipt under the new grant');
    expect(encodeBase58(receiptsAt(relay)[0]?.receipt.sessionKey as Uint8Array)).toBe(tracker.sessions[1]?.sessionKey);
  });

  it('never receipts bytes that failed verification', async () => {
    const bad = SEGMENT.slice();
    bad[100] = (bad[100] as number) ^ 0xff;
    const { client, relay } = await withRelay((ctx) => ctx.serve(bad), { payments: { getGrant: async (req) => grantFor(req.sessionKey) } });
    await until(() => relay.binds.length === 1, 5_000, 'the BIND frame');
    const r = await load(client);
    expect(r.fallbackReason).toBe('integrity');
    await delay(200);
    expect(receiptsAt(relay)).toEqual([]);
    expect(client.getStats().payments?.receiptsSent).toBe(0);
  });

  it('stops receipting at the grant budget', async () => {
    const budget = amountForBytes(SEGMENT.byteLength, PRICE); // exactly one segment's worth
    const { client, relay } = await withRelay((ctx) => ctx.serve(SEGMENT), { payments: { getGrant: async (req) => grantFor(req.sessionKey, { budget }) } });
    await until(() => relay.binds.length === 1, 5_000, 'the BIND frame');
    await load(client);
    await load(client);
    await delay(200);
    const receipts = receiptsAt(relay);
    expect(receipts).toHaveLength(1);
    expect(receipts[0]?.receipt.cumulativeAmount).toBe(budget);
  });

  it('the budget caps the receipts of all relays together (over real relays)', async () => {
    const budget = amountForBytes(Math.floor(SEGMENT.byteLength * 1.5), PRICE);
    const a = tracker.addRelay((ctx) => ctx.serve(SEGMENT));
    const b = tracker.addRelay((ctx) => ctx.serve(SEGMENT));
    a.paid = true;
    b.paid = true;
    const client = net.client({ maxRelays: 2, payments: { getGrant: async (req) => grantFor(req.sessionKey, { budget }) } });
    await client.start();
    await until(() => a.binds.length === 1 && b.binds.length === 1, 5_000, 'both BINDs');
    const results = await Promise.all([load(client), load(client), load(client), load(client)]);
    // Both relays served verified bytes (4 segments' worth in all, far over the budget).
    expect(new Set(results.map((r) => r.relayId))).toEqual(new Set([a.relayId, b.relayId]));
    await delay(300);
    const newest = (relay: TestRelay): bigint => receiptsAt(relay).reduce((m, r) => (r.receipt.cumulativeAmount > m ? r.receipt.cumulativeAmount : m), 0n);
    // The two relays' receipts together claim up to the budget, never over it.
    expect(newest(a) + newest(b)).toBe(budget);
    expect(BigInt(client.getStats().payments?.amountSigned ?? '-1')).toBe(budget);
  });

  it('ReceiptSigner: the sum over relays never exceeds the budget, and the last bytes are claimed up to it', async () => {
    const signer = await createSessionSigner({ preferNoble: true });
    const price = 1n << 30n; // one base unit per byte
    const grant = decodeSignedGrant(grantFor(encodeBase58(signer.publicKey), { pricePerGiB: price, budget: 1_000n }));
    const sent: { relayId: string; frame: ReceiptFrame }[] = [];
    const rs = new ReceiptSigner(signer, grant, (relayId, frame) => (sent.push({ relayId, frame }), true));
    const [r1, r2, r3] = [1, 2, 3].map((n) => encodeBase58(new Uint8Array(32).fill(n))) as [string, string, string];
    await rs.credit(r1, 400);
    await rs.credit(r2, 400);
    await rs.credit(r3, 400); // only 200 left: claimed up to the budget
    await rs.credit(r1, 10); // nothing left
    await rs.credit(r2, 10);
    const newest = new Map<string, bigint>();
    for (const s of sent) newest.set(s.relayId, decodeSignedReceipt(s.frame.signedReceipt).receipt.cumulativeAmount);
    expect([...newest.values()].reduce((x, y) => x + y, 0n)).toBe(1_000n);
    expect(newest.get(r3)).toBe(200n);
    expect(sent).toHaveLength(3);
    expect(rs.totals()).toEqual({ receiptsSent: 3, bytesReceipted: 1_000, amountSigned: '1000' });
  });

  it('fetches the grant from grantUrl with credentials; a refusal is an error event and playback goes on', async () => {
    let status = 200;
    const seen: { sessionKey: string; scope: string }[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const parsed = JSON.parse(body) as { sessionKey: string; scope: string };
        seen.push(parsed);
        if (status !== 200)
          return res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'RC_ERR_GRANT_REFUSED' } }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ grant: toBase64(grantFor(parsed.sessionKey)) }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const grantUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}${SETTLER_PATHS.grants}`;
    try {
      const ok = await withRelay((ctx) => ctx.serve(SEGMENT), { payments: { grantUrl } });
      await until(() => ok.relay.binds.length === 1, 5_000, 'the BIND frame');
      expect(seen[0]?.sessionKey).toMatch(/^[1-9A-HJ-NP-Za-km-z]{32,44}$/);

      status = 403;
      const errors: RelaycastError[] = [];
      const refused = new RelaycastClient({ swarmId: `${origin.base}/master.m3u8`, payments: { grantUrl } });
      clients.push(refused);
      refused.on('error', (e) => errors.push(e));
      await refused.start();
      await until(() => errors.length === 1, 5_000, 'the refusal');
      expect(errors[0]?.code).toBe(ErrorCode.GRANT_REFUSED);
      expect(refused.getStats().payments).toBeUndefined();
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('session keys from WebCrypto and from @noble sign receipts node:crypto verifies', async () => {
    for (const preferNoble of [false, true]) {
      const signer = await createSessionSigner({ preferNoble });
      expect(signer.implementation).toBe(preferNoble ? 'noble' : 'webcrypto');
      const message = new TextEncoder().encode('relaycast');
      const signature = await signer.sign(message);
      const { verifyEd25519 } = await import('@relaycast/protocol/node');
      expect(verifyEd25519(signer.publicKey, message, signature)).toBe(true);
      expect(verifyEd25519(signer.publicKey, new TextEncoder().encode('other'), signature)).toBe(false);
    }
  });
});
