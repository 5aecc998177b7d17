import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, FrameType, encodeBase58, type RelayFrame } from '@relaycast/protocol';
import { generateKeyPairSync } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ChannelServer } from '../channel-server.js';
import { FrameViewer, fakeSource } from '../channel-test-kit.js';
import { NodeDataChannelTransport } from '../node-datachannel-transport.js';
import { connectViewer, eventually, withTimeout, type ConnectedPair } from '../transport-compliance.js';
import { PaymentGate, type PaymentGateOptions } from './payment-gate.js';
import { TEST_SCOPE, TestSession, testPayer, type TestPayer } from './payment-test-kit.js';
import { ReceiptStore } from './receipt-store.js';

const SEG_BYTES = 300_001;
const SEG = `${TEST_SCOPE}seg1.ts`;
const OUTSIDE = 'https://origin.test/other/seg1.ts';
const CREDIT = 500_000;

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

describe('PaymentGate over real data channels', () => {
  let dir: string;
  let payer: TestPayer;
  const transports: NodeDataChannelTransport[] = [];
  const pairs: ConnectedPair[] = [];
  const servers: ChannelServer[] = [];
  const stores: ReceiptStore[] = [];
  let nextRequestId = 1;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-gate-'));
    payer = testPayer();
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
    const gate = new PaymentGate({ relayKey, acceptedPayers: [payer.id], store, creditLimitBytes: CREDIT, ...gateOptions });
    const seg = new Uint8Array(randomBytes(SEG_BYTES));
    const source = fakeSource({ [SEG]: { bytes: seg, fromCache: true }, [OUTSIDE]: { bytes: seg, fromCache: true } });
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
    return { store, gate, server, viewer };
  }

  /** Sends a REQUEST and returns its final frame. */
  async function request(v: FrameViewer, url = SEG): Promise<RelayFrame | undefined> {
    const id = nextRequestId++;
    v.send({ type: FrameType.REQUEST, requestId: id, url });
    return (await v.complete(id)).at(-1);
  }

  const grantFrame = (bytes: Uint8Array): RelayFrame => ({ type: FrameType.GRANT, requestId: 0, signedGrant: bytes });
  const receiptFrame = (bytes: Uint8Array): RelayFrame => ({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: bytes });

  it('serves a paying session within its credit, stores receipts before counting them, and refuses past the credit limit', { timeout: 60_000 }, async () => {
    const { gate, store, viewer } = await setup();
    const v = await viewer();
    const session = new TestSession(payer);
    v.send(grantFrame(session.signedGrant()));
    await eventually(() => gate.stats().grantsAccepted === 1, 'the grant to be accepted');
    // 300,001 bytes each: the second request leaves 600,002 unreceipted > 500,000.
    expect((await request(v))?.type).toBe(FrameType.END);
    expect((await request(v))?.type).toBe(FrameType.END);
    expect(await request(v)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
    v.send(receiptFrame(session.signedReceipt(relayKey, 2 * SEG_BYTES)));
    await eventually(() => gate.stats().receiptsAccepted === 1, 'the receipt to be accepted');
    expect(store.newest(session.grant.sessionKey)?.receipt.cumulativeBytes).toBe(2 * SEG_BYTES);
    expect((await request(v))?.type).toBe(FrameType.END);
    expect(channelErrors(v)).toEqual([]);
  });

  it('refuses every bad grant and receipt with its code, and the channel stays up', { timeout: 60_000 }, async () => {
    let now = Date.now();
    const { gate, store, viewer } = await setup({ now: () => now });
    const v = await viewer();
    const other = testPayer();
    const session = new TestSession(payer, { budget: 1_000n, pricePerGiB: 1_000_000_000n });
    const expired = new TestSession(payer, { expiresAtMs: now - 1 });
    const stranger = generateKeyPairSync('ed25519').privateKey;
    const expected: string[] = [];
    const sendExpect = (frame: RelayFrame, code: string): void => {
      v.send(frame);
      expected.push(code);
    };
    sendExpect(grantFrame(new TestSession(other).signedGrant()), ErrorCode.PAYER_UNKNOWN);
    sendExpect(grantFrame(session.signedGrant(stranger)), ErrorCode.GRANT_SIGNATURE);
    sendExpect(grantFrame(expired.signedGrant()), ErrorCode.GRANT_EXPIRED);
    sendExpect(grantFrame(new Uint8Array([9, 9, 9])), ErrorCode.RECEIPT_MALFORMED);
    // No grant presented for this session yet.
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 100)), ErrorCode.RECEIPT_NO_GRANT);
    v.send(grantFrame(session.signedGrant()));
    const good = session.signedReceipt(relayKey, 500);
    v.send(receiptFrame(good));
    await eventually(() => gate.stats().receiptsAccepted === 1, 'the first good receipt');
    // Signed by a key that holds no grant for this session.
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 600, {}, stranger)), ErrorCode.RECEIPT_SIGNATURE);
    // Amount changed after signing.
    const tampered = session.signedReceipt(relayKey, 700);
    tampered[1 + 16 + 32 + 32 + 8 + 8 + 7] = (tampered[1 + 16 + 32 + 32 + 8 + 8 + 7] as number) ^ 1;
    sendExpect(receiptFrame(tampered), ErrorCode.RECEIPT_SIGNATURE);
    // Signed, but claims more than its bytes are worth.
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 800, { cumulativeAmount: 10n ** 9n })), ErrorCode.RECEIPT_AMOUNT);
    // The first good receipt again, then an older sequence.
    sendExpect(receiptFrame(good), ErrorCode.RECEIPT_STALE);
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 900, { sequence: 0 })), ErrorCode.RECEIPT_STALE);
    sendExpect(receiptFrame(session.signedReceipt(new Uint8Array(randomBytes(32)), 900)), ErrorCode.RECEIPT_WRONG_RELAY);
    // 1,000 base units at 1e9 per GiB buys ~1,073 bytes.
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 2 ** 20)), ErrorCode.RECEIPT_OVER_BUDGET);
    sendExpect(receiptFrame(session.signedReceipt(relayKey, 950, { timestampMs: session.grant.expiresAtMs + 1 })), ErrorCode.GRANT_EXPIRED);
    sendExpect(receiptFrame(new Uint8Array(184)), ErrorCode.RECEIPT_MALFORMED);
    await nthChannelError(v, expected.length);
    expect(channelErrors(v)).toEqual(expected);
    expect(store.newest(session.grant.sessionKey)?.receipt.cumulativeBytes).toBe(500);
    // Still serving, and a later good receipt is still accepted.
    expect((await request(v))?.type).toBe(FrameType.END);
    v.send(receiptFrame(session.signedReceipt(relayKey, 1_000)));
    await eventually(() => gate.stats().receiptsAccepted === 2, 'a later good receipt');
    // The grant expires while the channel is open: requests are refused from then on.
    now = session.grant.expiresAtMs + 1;
    expect(await request(v)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.GRANT_EXPIRED });
    expect(gate.stats().refusedByCode[ErrorCode.RECEIPT_STALE]).toBe(2);
  });

  it('refuses URLs outside the grant scope', { timeout: 60_000 }, async () => {
    const { gate, viewer } = await setup();
    const v = await viewer();
    v.send(grantFrame(new TestSession(payer).signedGrant()));
    await eventually(() => gate.stats().grantsAccepted === 1, 'the grant');
    expect(await request(v, OUTSIDE)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.GRANT_SCOPE });
    expect((await request(v))?.type).toBe(FrameType.END);
  });

  it('gives a channel without a grant the same credit, then requires one; the debt follows the session to a new channel', { timeout: 60_000 }, async () => {
    const { gate, viewer } = await setup();
    const v = await viewer();
    expect((await request(v, OUTSIDE))?.type).toBe(FrameType.END);
    expect((await request(v, OUTSIDE))?.type).toBe(FrameType.END);
    expect(await request(v, OUTSIDE)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
    const session = new TestSession(payer);
    v.send(grantFrame(session.signedGrant()));
    await eventually(() => gate.stats().grantsAccepted === 1, 'the grant');
    // The bytes served before the grant are now the session's debt.
    expect(await request(v)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
    v.pair.viewer.close();
    await withTimeout(v.closed, 15_000, 'the first channel to close');
    const w = await viewer();
    w.send(grantFrame(session.signedGrant()));
    await eventually(() => gate.stats().grantsAccepted === 2, 'the grant on the new channel');
    expect(await request(w)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
    w.send(receiptFrame(session.signedReceipt(relayKey, 2 * SEG_BYTES)));
    await eventually(() => gate.stats().receiptsAccepted === 1, 'the receipt');
    expect((await request(w))?.type).toBe(FrameType.END);
  });

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
    v.send(grantFrame(session.signedGrant()));
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
  it('ignores payment frames and serves everyone', { timeout: 60_000 }, async () => {
    const seg = new Uint8Array(randomBytes(1_000));
    const server = new ChannelServer({ source: fakeSource({ [SEG]: { bytes: seg } }) });
    const transport = new NodeDataChannelTransport({ bindAddress: '127.0.0.1' });
    try {
      const pair = await connectViewer(transport);
      const v = new FrameViewer(pair);
      server.serve(pair.channel);
      const session = new TestSession(testPayer());
      v.send({ type: FrameType.GRANT, requestId: 0, signedGrant: session.signedGrant() });
      v.send({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: session.signedReceipt(relayKey, 10) });
      v.send({ type: FrameType.REQUEST, requestId: 1, url: SEG });
      expect((await v.complete(1)).at(-1)?.type).toBe(FrameType.END);
      expect(channelErrors(v)).toEqual([]);
      // Payment frames always use request id 0; anything else breaks the protocol.
      v.send({ type: FrameType.RECEIPT, requestId: 7, signedReceipt: session.signedReceipt(relayKey, 20) });
      expect(await nthChannelError(v, 1)).toBe(ErrorCode.FRAME_FIELD);
      await withTimeout(v.closed, 15_000, 'the channel to close');
      pair.viewer.close();
    } finally {
      server.close();
      await transport.close();
    }
  });
});
