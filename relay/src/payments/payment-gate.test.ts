import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, FrameType, encodeBase58, encodeFrame, type BindFrame, type RelayFrame } from '@relaycast/protocol';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChannelServer } from '../serve/channel-server.js';
import { FrameViewer, fakeSource } from '../testing/channel-harness.js';
import { NodeDataChannelTransport } from '../transport/node-datachannel-transport.js';
import { connectViewer, eventually, withTimeout, type ConnectedPair } from '../testing/transport-compliance.js';
import { PaymentGate, type PaymentGateOptions } from './payment-gate.js';
import { TEST_SCOPE, TestSession, testPayer, testTracker, type TestPayer, type TestTracker } from '../testing/payments.js';
import { ReceiptStore } from './receipt-store.js';

const SEG_BYTES = 300_001;
const SEG = `${TEST_SCOPE}seg1.ts`;
const OUTSIDE = 'https://origin.test/other/seg1.ts';
/** Segments only the origin has: each request of one starts a download of MISS_BYTES. */
const MISS = (n: number): string => `${TEST_SCOPE}miss${n}.ts`;
const MISS_BYTES = 200_000;
const CREDIT = 500_000;
const UNBOUND = 500_000;

const relayKey = new Uint8Array(randomBytes(32));
const relayId = encodeBase58(relayKey);

/** ERROR frames the relay sent on request id 0, in order. */
function channelErrors(v: FrameViewer): string[] {
  return v.frames.flatMap((f) => (f.type === FrameType.ERROR && f.requestId === 0 ? [f.code] : []));
}

async function nthChannelError(v: FrameViewer, n: number): Promise<string> {
  await v.waitFor(() => channelErrors(v).length >= n, `channel error #${n}`);
  return channelErrors(v)[n - 1] as string;
}

async function challengeOf(v: FrameViewer): Promise<Uint8Array> {
  const f = await v.waitFor((x) => x.type === FrameType.CHALLENGE, 'the CHALLENGE');
  return (f as Extract<RelayFrame, { type: typeof FrameType.CHALLENGE }>).challenge;
}

describe('PaymentGate over real data channels', () => {
  let dir: string;
  let payer: TestPayer;
  let tracker: TestTracker;
  const transports: NodeDataChannelTransport[] = [];
  const pairs: ConnectedPair[] = [];
  const servers: ChannelServer[] = [];
  const stores: ReceiptStore[] = [];
  let nextRequestId = 1;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-gate-'));
    payer = testPayer();
    tracker = testTracker();
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close();
    for (const p of pairs.splice(0)) p.viewer.close();
    for (const t of transports.splice(0)) await t.close();
    for (const s of stores.splice(0)) s.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function setup(gateOptions: Partial<PaymentGateOptions> = {}, storeOptions: { maxPageCount?: number } = {}) {
    const store = ReceiptStore.open({ path: join(dir, 'receipts.sqlite'), relayId, ...storeOptions }, relayKey);
    stores.push(store);
    const gate = new PaymentGate({
      relayKey,
      acceptedPayers: [payer.id],
      store,
      creditLimitBytes: CREDIT,
      unboundCreditBytes: UNBOUND,
      ...gateOptions,
    });
    gate.learnTrackerKey(tracker.publicKey);
    const seg = new Uint8Array(randomBytes(SEG_BYTES));
    const miss = new Uint8Array(randomBytes(MISS_BYTES));
    const segments: Parameters<typeof fakeSource>[0] = { [SEG]: { bytes: seg, fromCache: true }, [OUTSIDE]: { bytes: seg, fromCache: true } };
    for (let i = 0; i < 20; i++) segments[MISS(i)] = { bytes: miss, originMiss: true };
    const source = fakeSource(segments);
    const server = new ChannelServer({ source, payments: gate });
    servers.push(server);
    const transport = new NodeDataChannelTransport({ bindAddress: '127.0.0.1' });
    transports.push(transport);
    const viewer = async (): Promise<FrameViewer> => {
      const pair = await connectViewer(transport);
      pairs.push(pair);
      const v = new FrameViewer(pair);
      server.serve(pair.channel);
      return v;
    };
    return { store, gate, server, source, viewer };
  }

  /** Sends a REQUEST and returns its final frame. */
  async function request(v: FrameViewer, url = SEG, range?: { start: number; end: number }): Promise<RelayFrame | undefined> {
    const id = nextRequestId++;
    v.send({ type: FrameType.REQUEST, requestId: id, url, range });
    return (await v.complete(id)).at(-1);
  }

  /** Binds `session` on `v` the way the SDK does: answers the channel's CHALLENGE. */
  async function bind(v: FrameViewer, session: TestSession, gate: PaymentGate): Promise<void> {
    const before = gate.stats().bindsAccepted;
    v.send(session.bindFrame(await challengeOf(v), relayKey, tracker));
    await eventually(() => gate.stats().bindsAccepted > before, 'the BIND to be accepted');
  }

  const receiptFrame = (bytes: Uint8Array): RelayFrame => ({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: bytes });

  it(
    'challenges every channel first; a bound session is served within its credit, receipts are stored before they count, and past the credit it is refused',
    { timeout: 60_000 },
    async () => {
      const { gate, store, viewer } = await setup();
      const v = await viewer();
      const w = await viewer();
      const [cv, cw] = [await challengeOf(v), await challengeOf(w)];
      expect(v.frames[0]?.type).toBe(FrameType.CHALLENGE);
      expect(cv).toHaveLength(32);
      expect(Buffer.from(cv).equals(Buffer.from(cw))).toBe(false);
      const session = new TestSession(payer);
      await bind(v, session, gate);
      // The grant is stored with the assignment it was bound with: redemption sends both.
      expect(store.assignment(session.grant.nonce)).toHaveLength(169);
      // 300,001 bytes each: the second request leaves 600,002 unreceipted > 500,000.
      expect((await request(v))?.type).toBe(FrameType.END);
      expect((await request(v))?.type).toBe(FrameType.END);
      expect(await request(v)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
      v.send(receiptFrame(session.signedReceipt(relayKey, 2 * SEG_BYTES)));
      await eventually(() => gate.stats().receiptsAccepted === 1, 'the receipt to be accepted');
      expect(store.newest(session.grant.sessionKey, session.grant.nonce)?.receipt.cumulativeBytes).toBe(2 * SEG_BYTES);
      expect((await request(v))?.type).toBe(FrameType.END);
      expect(channelErrors(v)).toEqual([]);
      // The receipt database is private to the relay's user.
      expect((await stat(join(dir, 'receipts.sqlite'))).mode & 0o777).toBe(0o600);
    },
  );

  it('refuses every bad BIND with its code and the channel stays unbound; then binds a good one', { timeout: 60_000 }, async () => {
    let now = Date.now();
    const { gate, store, viewer } = await setup({ now: () => now });
    const v = await viewer();
    const challenge = await challengeOf(v);
    const session = new TestSession(payer);
    const stranger = generateKeyPairSync('ed25519').privateKey;
    const otherTracker = testTracker();
    const expected: string[] = [];
    const sendExpect = (frame: BindFrame | RelayFrame, code: string): void => {
      v.send(frame);
      expected.push(code);
    };
    sendExpect(new TestSession(testPayer()).bindFrame(challenge, relayKey, tracker), ErrorCode.PAYER_UNKNOWN);
    sendExpect(session.bindFrame(challenge, relayKey, tracker, { signedGrant: session.signedGrant(stranger) }), ErrorCode.GRANT_SIGNATURE);
    sendExpect(new TestSession(payer, { expiresAtMs: now - 1, issuedAtMs: now - 1_000 }).bindFrame(challenge, relayKey, tracker), ErrorCode.GRANT_EXPIRED);
    sendExpect(session.bindFrame(challenge, relayKey, tracker, { signedGrant: new Uint8Array([2, 9, 9]) }), ErrorCode.RECEIPT_MALFORMED);
    // The proof: signed by a key that is not the grant's, over another challenge, or for another relay.
    sendExpect(session.bindFrame(challenge, relayKey, tracker, { proofKey: stranger }), ErrorCode.BIND_PROOF);
    sendExpect(session.bindFrame(new Uint8Array(randomBytes(32)), relayKey, tracker), ErrorCode.BIND_PROOF);
    const forOther = session.bindFrame(challenge, new Uint8Array(randomBytes(32)), tracker);
    sendExpect({ ...forOther, signedAssignment: session.assignment(tracker, relayKey) }, ErrorCode.BIND_PROOF);
    // The assignment: missing, by a tracker the relay does not trust, for another relay or session, forged, dated outside the grant.
    sendExpect(session.bindFrame(challenge, relayKey, tracker, { assignment: null }), ErrorCode.ASSIGNMENT_MISSING);
    sendExpect(session.bindFrame(challenge, relayKey, otherTracker), ErrorCode.ASSIGNMENT_INVALID);
    sendExpect(
      session.bindFrame(challenge, relayKey, tracker, { assignment: session.assignment(tracker, new Uint8Array(randomBytes(32))) }),
      ErrorCode.ASSIGNMENT_INVALID,
    );
    sendExpect(
      session.bindFrame(challenge, relayKey, tracker, { assignment: new TestSession(payer).assignment(tracker, relayKey) }),
      ErrorCode.ASSIGNMENT_INVALID,
    );
    const forged = session.assignment(tracker, relayKey);
    forged[forged.byteLength - 1] = (forged[forged.byteLength - 1] as number) ^ 1;
    sendExpect(session.bindFrame(challenge, relayKey, tracker, { assignment: forged }), ErrorCode.ASSIGNMENT_INVALID);
    sendExpect(
      session.bindFrame(challenge, relayKey, tracker, { assignment: session.assignment(tracker, relayKey, { issuedAtMs: session.grant.expiresAtMs + 1 }) }),
      ErrorCode.ASSIGNMENT_INVALID,
    );
    // Receipts before binding belong to no session here.
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 100)), ErrorCode.RECEIPT_NO_GRANT);
    await nthChannelError(v, expected.length);
    expect(channelErrors(v)).toEqual(expected);
    expect(gate.stats().bindsAccepted).toBe(0);
    expect(store.grant(session.grant.nonce)).toBeUndefined();

    // An assignment by a tracker given on the command line (--trusted-tracker) binds too.
    const { gate: g2, viewer: viewer2 } = await setup({ trustedTrackers: [otherTracker.publicKey] });
    const w = await viewer2();
    w.send(new TestSession(payer).bindFrame(await challengeOf(w), relayKey, otherTracker));
    await eventually(() => g2.stats().bindsAccepted === 1, 'a bind with a configured tracker key');

    v.send(session.bindFrame(challenge, relayKey, tracker));
    await eventually(() => gate.stats().bindsAccepted === 1, 'the good bind');
    // The channel binds one session only.
    v.send(new TestSession(payer).bindFrame(challenge, relayKey, tracker));
    expect(await nthChannelError(v, expected.length + 1)).toBe(ErrorCode.BIND_PROOF);
    // The grant expires while the channel is open: requests are refused from then on.
    expect((await request(v))?.type).toBe(FrameType.END);
    now = session.grant.expiresAtMs + 1;
    expect(await request(v)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.GRANT_EXPIRED });
  });

  it('refuses every bad receipt with its code, and the channel stays up', { timeout: 60_000 }, async () => {
    const { gate, store, viewer } = await setup();
    const v = await viewer();
    const session = new TestSession(payer, { budget: 1_000n, pricePerGiB: 1_000_000_000n });
    const other = new TestSession(payer);
    const stranger = generateKeyPairSync('ed25519').privateKey;
    await bind(v, session, gate);
    const expected: string[] = [];
    const sendExpect = (frame: RelayFrame, code: string): void => {
      v.send(frame);
      expected.push(code);
    };
    const good = session.signedReceipt(relayKey, 500);
    v.send(receiptFrame(good));
    await eventually(() => gate.stats().receiptsAccepted === 1, 'the first good receipt');
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 600, {}, stranger)), ErrorCode.RECEIPT_SIGNATURE);
    const tampered = session.signedReceipt(relayKey, 700);
    tampered[1 + 16 + 32 + 32 + 8 + 8 + 7] = (tampered[1 + 16 + 32 + 32 + 8 + 8 + 7] as number) ^ 1;
    sendExpect(receiptFrame(tampered), ErrorCode.RECEIPT_SIGNATURE);
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 800, { cumulativeAmount: 10n ** 9n })), ErrorCode.RECEIPT_AMOUNT);
    sendExpect(receiptFrame(good), ErrorCode.RECEIPT_STALE);
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 900, { sequence: 0 })), ErrorCode.RECEIPT_STALE);
    sendExpect(receiptFrame(session.signedReceipt(new Uint8Array(randomBytes(32)), 900)), ErrorCode.RECEIPT_WRONG_RELAY);
    // 1,000 base units at 1e9 per GiB buys ~1,073 bytes.
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 2 ** 20)), ErrorCode.RECEIPT_OVER_BUDGET);
    // Another session's receipt on this channel: receipts travel on their own session's channel.
    sendExpect(receiptFrame(other.signedReceipt(relayKey, 100)), ErrorCode.RECEIPT_NO_GRANT);
    sendExpect(receiptFrame(new Uint8Array(184)), ErrorCode.RECEIPT_MALFORMED);
    await nthChannelError(v, expected.length);
    expect(channelErrors(v)).toEqual(expected);
    expect(store.newest(session.grant.sessionKey)?.receipt.cumulativeBytes).toBe(500);
    // The viewer's timestamp decides nothing: a receipt dated after expiry is still a receipt.
    v.send(receiptFrame(session.signedReceipt(relayKey, 1_000, { timestampMs: session.grant.expiresAtMs + 1 })));
    await eventually(() => gate.stats().receiptsAccepted === 2, 'a later good receipt');
    expect((await request(v))?.type).toBe(FrameType.END);
    expect(gate.stats().refusedByCode[ErrorCode.RECEIPT_STALE]).toBe(2);
  });

  it('refuses URLs outside the grant scope', { timeout: 60_000 }, async () => {
    const { gate, viewer } = await setup();
    const v = await viewer();
    await bind(v, new TestSession(payer), gate);
    expect(await request(v, OUTSIDE)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.GRANT_SCOPE });
    expect((await request(v))?.type).toBe(FrameType.END);
  });

  it(
    'gives an unbound channel its allowance, then requires BIND; what it took becomes the debt of the session it binds, across channels',
    { timeout: 60_000 },
    async () => {
      const { gate, viewer } = await setup();
      const v = await viewer();
      expect((await request(v, OUTSIDE))?.type).toBe(FrameType.END);
      expect((await request(v, OUTSIDE))?.type).toBe(FrameType.END);
      expect(await request(v, OUTSIDE)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
      const session = new TestSession(payer);
      await bind(v, session, gate);
      // The bytes served before the BIND are now the session's debt.
      expect(await request(v)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
      v.pair.viewer.close();
      await withTimeout(v.closed, 15_000, 'the first channel to close');
      const w = await viewer();
      await bind(w, session, gate);
      expect(await request(w)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
      w.send(receiptFrame(session.signedReceipt(relayKey, 2 * SEG_BYTES)));
      await eventually(() => gate.stats().receiptsAccepted === 1, 'the receipt');
      expect((await request(w))?.type).toBe(FrameType.END);
    },
  );

  it('cuts requests admitted together once a channel passes twice its credit: concurrency does not multiply the allowance', { timeout: 60_000 }, async () => {
    const { gate, server, viewer } = await setup();
    const v = await viewer();
    // Eight requests of 300,001 bytes sent at once, all admitted at 0 bytes served.
    const ids = Array.from({ length: 8 }, () => nextRequestId++);
    for (const id of ids) v.send({ type: FrameType.REQUEST, requestId: id, url: SEG });
    const ends = await Promise.all(ids.map(async (id) => (await v.complete(id)).at(-1)));
    const cut = ends.filter((f) => f?.type === FrameType.ERROR && f.code === ErrorCode.CREDIT_EXCEEDED).length;
    expect(cut).toBeGreaterThan(0);
    // At most 2 × 500,000 plus the chunks already queued when the limit was passed (one per request).
    expect(server.stats().bytesServed).toBeLessThanOrEqual(2 * UNBOUND + 8 * 64 * 1024);
    v.pair.viewer.close();
    await eventually(() => gate.stats().unboundBytesForgiven === server.stats().bytesServed, 'the unbound bytes forgiven');
  });

  it(
    'finding 6: a party holding a victim’s grant (and its assignment) downloads unbound, then cannot bind it (RC_ERR_BIND_PROOF); the victim owes nothing',
    { timeout: 60_000 },
    async () => {
      const { gate, store, viewer } = await setup();
      const victim = new TestSession(payer);
      const thief = await viewer();
      // Unbound allowance: the thief takes what it may, then is refused.
      expect((await request(thief))?.type).toBe(FrameType.END);
      expect((await request(thief))?.type).toBe(FrameType.END);
      expect(await request(thief)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
      // It has everything the victim shows anyone: the grant, an assignment to this relay, even a
      // proof the victim signed for another channel's challenge. Not the key.
      const replayedProof = victim.bindFrame(new Uint8Array(randomBytes(32)), relayKey, tracker);
      thief.send(replayedProof);
      thief.send(victim.bindFrame(await challengeOf(thief), relayKey, tracker, { proofKey: generateKeyPairSync('ed25519').privateKey }));
      expect(await nthChannelError(thief, 2)).toBe(ErrorCode.BIND_PROOF);
      expect(channelErrors(thief)).toEqual([ErrorCode.BIND_PROOF, ErrorCode.BIND_PROOF]);
      expect(await request(thief)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
      // The victim binds on its own channel and has its whole credit: nothing moved to it.
      const own = await viewer();
      await bind(own, victim, gate);
      expect(gate.stats().unreceiptedBytes).toBe(0);
      expect((await request(own))?.type).toBe(FrameType.END);
      expect(gate.stats().unreceiptedBytes).toBe(SEG_BYTES);
      own.send(receiptFrame(victim.signedReceipt(relayKey, SEG_BYTES)));
      await eventually(() => gate.stats().receiptsAccepted === 1, 'the victim’s receipt');
      expect(store.newest(victim.grant.sessionKey)?.receipt.cumulativeBytes).toBe(SEG_BYTES);
      // The thief's channel closes unbound: its bytes are the relay's cost, nobody's debt.
      thief.pair.viewer.close();
      await eventually(() => gate.stats().unboundBytesForgiven === 2 * SEG_BYTES, 'the unbound bytes forgiven');
    },
  );

  it(
    'counts origin bytes a channel’s cache misses cause against its credit (RC_ERR_ORIGIN_BUDGET) while cached segments are still served',
    { timeout: 60_000 },
    async () => {
      const { gate, source, viewer } = await setup();
      const v = await viewer();
      // Unbound: 500,000 bytes of origin credit; each miss costs 200,000 however little is asked (10 bytes here).
      const tiny = { start: 0, end: 10 };
      for (let i = 0; i < 3; i++) expect((await request(v, MISS(i), tiny))?.type, `miss ${i}`).toBe(FrameType.END);
      expect(await request(v, MISS(3), tiny)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.ORIGIN_BUDGET });
      expect(source.originBytes).toBe(3 * MISS_BYTES);
      expect(gate.stats().originBytes).toBe(3 * MISS_BYTES);
      // Cached content is still served.
      expect((await request(v, SEG, tiny))?.type).toBe(FrameType.END);
      // A bound session's origin bytes beyond what it receipted count the same way.
      const w = await viewer();
      const session = new TestSession(payer);
      await bind(w, session, gate);
      for (let i = 4; i < 7; i++) expect((await request(w, MISS(i), tiny))?.type, `miss ${i}`).toBe(FrameType.END);
      expect(await request(w, MISS(7), tiny)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.ORIGIN_BUDGET });
      expect((await request(w, SEG))?.type).toBe(FrameType.END);
      // Paying for the bytes delivered makes room again.
      w.send(receiptFrame(session.signedReceipt(relayKey, 3 * 10 + SEG_BYTES)));
      await eventually(() => gate.stats().receiptsAccepted === 1, 'the receipt');
      expect((await request(w, MISS(8), tiny))?.type).toBe(FrameType.END);
      expect(source.originBytes).toBe(7 * MISS_BYTES);
    },
  );

  it('closes a channel that floods payment frames', { timeout: 60_000 }, async () => {
    const { server, viewer } = await setup({ paymentFramesPerSec: 20, paymentFrameBurst: 40 });
    const v = await viewer();
    const junk = new TestSession(payer).signedReceipt(relayKey, 1);
    for (let i = 0; i < 60; i++) v.send(receiptFrame(junk));
    await v.waitFor((f) => f.type === FrameType.ERROR && f.code === ErrorCode.RATE_LIMITED, 'RC_ERR_RATE_LIMITED');
    await withTimeout(v.closed, 15_000, 'the flooding channel to close');
    expect(server.stats().protocolViolations).toBe(1);
  });

  it('stops paid delivery when a receipt cannot be stored, loses no stored receipt, and resumes once storing works', { timeout: 60_000 }, async () => {
    const { gate, store, viewer } = await setup();
    const db = (store as unknown as { db: { pragma(q: string): unknown } }).db;
    const v = await viewer();
    const session = new TestSession(payer);
    await bind(v, session, gate);
    v.send(receiptFrame(session.signedReceipt(relayKey, 1_000)));
    await eventually(() => gate.stats().receiptsAccepted === 1, 'the first receipt');
    // The file stops taking writes (as on a full or read-only disk).
    db.pragma('query_only = ON');
    v.send(receiptFrame(session.signedReceipt(relayKey, 2_000)));
    expect(await nthChannelError(v, 1)).toBe(ErrorCode.RECEIPT_STORE);
    expect(await request(v)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.RECEIPT_STORE });
    expect(store.newest(session.grant.sessionKey)?.receipt.cumulativeBytes).toBe(1_000);
    db.pragma('query_only = OFF');
    v.send(receiptFrame(session.signedReceipt(relayKey, 3_000)));
    await eventually(() => gate.stats().receiptsAccepted === 2, 'a receipt once the store works again');
    expect(store.newest(session.grant.sessionKey)?.receipt.cumulativeBytes).toBe(3_000);
    expect((await request(v))?.type).toBe(FrameType.END);
  });
});

describe('ChannelServer without a payment gate (free relay)', () => {
  it('sends no CHALLENGE, ignores BIND and RECEIPT, serves everyone, and refuses the retired GRANT frame type', { timeout: 60_000 }, async () => {
    const seg = new Uint8Array(randomBytes(1_000));
    const server = new ChannelServer({ source: fakeSource({ [SEG]: { bytes: seg } }) });
    const transport = new NodeDataChannelTransport({ bindAddress: '127.0.0.1' });
    try {
      const pair = await connectViewer(transport);
      const v = new FrameViewer(pair);
      server.serve(pair.channel);
      const session = new TestSession(testPayer());
      v.send(session.bindFrame(new Uint8Array(32), relayKey, testTracker()));
      v.send({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: session.signedReceipt(relayKey, 10) });
      v.send({ type: FrameType.REQUEST, requestId: 1, url: SEG });
      expect((await v.complete(1)).at(-1)?.type).toBe(FrameType.END);
      expect(channelErrors(v)).toEqual([]);
      expect(v.frames.some((f) => f.type === FrameType.CHALLENGE)).toBe(false);
      // Payment frames always use request id 0; anything else breaks the protocol.
      v.send({ type: FrameType.RECEIPT, requestId: 7, signedReceipt: session.signedReceipt(relayKey, 20) });
      expect(await nthChannelError(v, 1)).toBe(ErrorCode.FRAME_FIELD);
      await withTimeout(v.closed, 15_000, 'the channel to close');
      pair.viewer.close();
      // Type 8 (the old GRANT) is no frame any more.
      const pair2 = await connectViewer(transport);
      const w = new FrameViewer(pair2);
      server.serve(pair2.channel);
      // Length prefix (4), version (1), then the type byte.
      const raw = encodeFrame({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: session.signedReceipt(relayKey, 30) });
      raw[5] = 8;
      w.sendRaw(raw);
      expect(await nthChannelError(w, 1)).toBe(ErrorCode.FRAME_TYPE);
      pair2.viewer.close();
    } finally {
      server.close();
      await transport.close();
    }
  });
});
