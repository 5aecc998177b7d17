import { createHash, generateKeyPairSync } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  ErrorCode,
  FrameType,
  amountForBytes,
  checkReceipt,
  decodePublicKey,
  decodeSignedGrant,
  decodeSignedReceipt,
  encodeDigestSidecar,
  encodeSignedGrant,
  toBase64,
  type RelaycastError,
  type SessionGrant,
  type SignedReceipt,
} from '@relaycast/protocol';
import { rawPublicKey, signGrant, verifyGrantSignature, verifyReceiptSignature } from '@relaycast/protocol/node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  LOOPBACK_RTC,
  NodeRTCPeerConnection,
  NodeWebSocket,
  TestTracker,
  loopbackClient,
  startOrigin,
  testBytes,
  until,
  type RelayBehaviour,
  type TestOrigin,
  type TestRelay,
} from '../test-support/harness.js';
import { RelaycastClient, type RelaycastClientOptions } from './relaycast-client.js';
import { createSessionSigner } from './session-key.js';

/**
 * Receipts from the SDK core: a session key made by the SDK, a grant signed here with a payer key
 * (standing in for the platform's settlement service, which has its own tests), and scripted
 * relays over real node-datachannel connections that record every GRANT and RECEIPT frame.
 */
const SEGMENT = testBytes(150_000);
const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const payer = generateKeyPairSync('ed25519').privateKey;
const PRICE = 1_000_000_000n; // base units per GiB: 150,000 bytes are worth 139,698 units

let origin: TestOrigin;
let tracker: TestTracker;
const clients: RelaycastClient[] = [];

function grantFor(sessionKey: string, over: Partial<SessionGrant> = {}): Uint8Array {
  return encodeSignedGrant(
    signGrant(
      {
        version: 1,
        sessionKey: decodePublicKey(sessionKey),
        payer: rawPublicKey(payer),
        mint: new Uint8Array(32).fill(7),
        pricePerGiB: PRICE,
        budget: 10_000_000n,
        expiresAtMs: Date.now() + 600_000,
        scope: `${origin.base}/`,
        nonce: new Uint8Array(16).fill(1),
        ...over,
      },
      payer,
    ),
  );
}

beforeAll(async () => {
  origin = await startOrigin({
    '/seg.ts': SEGMENT,
    '/media.m3u8.digests.json': new TextEncoder().encode(encodeDigestSidecar({ version: 1, algorithm: 'sha256', playlist: 'media.m3u8', segments: { 'seg.ts': sha256(SEGMENT) } })),
  });
  tracker = await TestTracker.start();
});

afterAll(async () => {
  await tracker.close();
  await origin.close();
});

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const r of tracker.relays.splice(0)) r.closeAll();
});

async function withRelay(behaviour: RelayBehaviour, options: Partial<RelaycastClientOptions>): Promise<{ client: RelaycastClient; relay: TestRelay }> {
  const relay = tracker.addRelay(behaviour);
  const client = loopbackClient(tracker, origin, options);
  clients.push(client);
  await client.start();
  return { client, relay };
}

const load = (client: RelaycastClient) => client.loadSegment({ url: `${origin.base}/seg.ts`, playlistUrl: `${origin.base}/media.m3u8` });
const receiptsAt = (relay: TestRelay): SignedReceipt[] =>
  relay.received.filter((f) => f.type === FrameType.RECEIPT).map((f) => decodeSignedReceipt((f as { signedReceipt: Uint8Array }).signedReceipt));

describe('receipts', () => {
  it('sends the grant first, then one signed running-total receipt per verified segment', async () => {
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
    await until(() => relay.received.some((f) => f.type === FrameType.GRANT), 5_000, 'the GRANT frame');
    await load(client);
    await load(client);
    await until(() => receiptsAt(relay).length === 2, 5_000, 'two receipts');

    const grantFrame = relay.received.find((f) => f.type === FrameType.GRANT) as { signedGrant: Uint8Array };
    const grant = decodeSignedGrant(grantFrame.signedGrant);
    expect(verifyGrantSignature(grant)).toBe(true);
    expect(relay.received.findIndex((f) => f.type === FrameType.GRANT)).toBeLessThan(relay.received.findIndex((f) => f.type === FrameType.RECEIPT));

    const [first, second] = receiptsAt(relay) as [SignedReceipt, SignedReceipt];
    const relayKey = decodePublicKey(relay.relayId);
    for (const r of [first, second]) expect(verifyReceiptSignature(r)).toBe(true);
    expect(first.receipt).toMatchObject({ sequence: 1, cumulativeBytes: SEGMENT.byteLength, cumulativeAmount: amountForBytes(SEGMENT.byteLength, PRICE) });
    expect(second.receipt).toMatchObject({ sequence: 2, cumulativeBytes: 2 * SEGMENT.byteLength, cumulativeAmount: amountForBytes(2 * SEGMENT.byteLength, PRICE) });
    expect(Buffer.from(first.receipt.sessionKey).equals(Buffer.from(decodePublicKey(sessionKey)))).toBe(true);
    checkReceipt(first.receipt, grant.grant, { relay: relayKey });
    checkReceipt(second.receipt, grant.grant, { relay: relayKey, previous: first.receipt });
    expect(client.getStats().payments).toEqual({ receiptsSent: 2, bytesReceipted: 2 * SEGMENT.byteLength, amountSigned: amountForBytes(2 * SEGMENT.byteLength, PRICE).toString() });
  });

  it('never receipts bytes that failed verification', async () => {
    const bad = SEGMENT.slice();
    bad[100] = (bad[100] as number) ^ 0xff;
    const { client, relay } = await withRelay((ctx) => ctx.serve(bad), { payments: { getGrant: async (req) => grantFor(req.sessionKey) } });
    await until(() => relay.received.some((f) => f.type === FrameType.GRANT), 5_000, 'the GRANT frame');
    const r = await load(client);
    expect(r.fallbackReason).toBe('integrity');
    await new Promise((res) => setTimeout(res, 200));
    expect(receiptsAt(relay)).toEqual([]);
    expect(client.getStats().payments?.receiptsSent).toBe(0);
  });

  it('stops receipting at the grant budget', async () => {
    const budget = amountForBytes(SEGMENT.byteLength, PRICE); // exactly one segment's worth
    const { client, relay } = await withRelay((ctx) => ctx.serve(SEGMENT), { payments: { getGrant: async (req) => grantFor(req.sessionKey, { budget }) } });
    await until(() => relay.received.some((f) => f.type === FrameType.GRANT), 5_000, 'the GRANT frame');
    await load(client);
    await load(client);
    await new Promise((res) => setTimeout(res, 200));
    const receipts = receiptsAt(relay);
    expect(receipts).toHaveLength(1);
    expect(receipts[0]?.receipt.cumulativeAmount).toBe(budget);
  });

  it('fetches the grant from grantUrl with credentials; a refusal is an error event and playback goes on', async () => {
    let status = 200;
    const seen: { sessionKey: string; scope: string }[] = [];
    const server: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c));
      req.on('end', () => {
        const parsed = JSON.parse(body) as { sessionKey: string; scope: string };
        seen.push(parsed);
        if (status !== 200) return res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'RC_ERR_GRANT_REFUSED' } }));
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ grant: toBase64(grantFor(parsed.sessionKey)) }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const grantUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/grants`;
    try {
      const ok = await withRelay((ctx) => ctx.serve(SEGMENT), { payments: { grantUrl } });
      await until(() => ok.relay.received.some((f) => f.type === FrameType.GRANT), 5_000, 'the GRANT frame');
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
