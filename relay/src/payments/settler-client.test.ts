import { generateKeyPairSync } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ErrorCode, encodeBase58 } from '@relaycast/protocol';
import { rawPublicKey, signEd25519, verifyRedeemSignature } from '@relaycast/protocol/node';
import { REDEEM_SIGNATURE_HEADER, SETTLER_MAX_BODY_BYTES } from '@relaycast/protocol/settlement';
import { afterEach, describe, expect, it } from 'vitest';
import { SETTLER_MAX_RESPONSE_BYTES } from '../constants.js';
import { SettlerClient } from './settler-client.js';

const key = generateKeyPairSync('ed25519').privateKey;
const publicKey = rawPublicKey(key);
const PAYOUT_ID = encodeBase58(new Uint8Array(64).fill(5));
const signer = { relayId: encodeBase58(publicKey), publicKey, sign: (m: Uint8Array) => signEd25519(key, m) };

describe('SettlerClient', () => {
  let server: Server | undefined;
  afterEach(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server = undefined;
  });

  async function serve(handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => void): Promise<SettlerClient> {
    server = createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => handler(req, Buffer.concat(parts), res));
    });
    await new Promise<void>((resolve) => server?.listen(0, '127.0.0.1', () => resolve()));
    return new SettlerClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, signer, timeoutMs: 2_000 });
  }

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };

  it('signs the exact body it sends with the relay key, sends each item’s assignment, and parses a payout with its credits', async () => {
    let verified = false;
    const client = await serve((req, body, res) => {
      verified = verifyRedeemSignature(publicKey, body, String(req.headers[REDEEM_SIGNATURE_HEADER]));
      const parsed = JSON.parse(body.toString()) as { relay: string; items: unknown[] };
      expect(parsed.relay).toBe(signer.relayId);
      expect(parsed.items).toEqual([
        { grant: 'AQID', receipt: 'BAUG', assignment: 'BwgJ' },
        { grant: 'AQID', receipt: 'BAUG' },
      ]);
      json(res, 200, {
        status: 'payout',
        transaction: 'AAEC',
        signature: PAYOUT_ID,
        amount: '12',
        cumulativePaid: '30',
        merkleRoot: 'ab'.repeat(32),
        lastValidBlockHeight: 99,
        rejected: [{ index: 1, code: 'RC_ERR_ASSIGNMENT_MISSING' }],
        credited: [{ index: 0, credited: '7', shortfall: { code: 'RC_ERR_GRANT_BUDGET_SPENT', amount: '5' } }],
      });
    });
    const item = { signedGrant: new Uint8Array([1, 2, 3]), signedReceipt: new Uint8Array([4, 5, 6]) };
    const { sent, answer } = await client.redeem([{ ...item, assignment: new Uint8Array([7, 8, 9]) }, item], AbortSignal.timeout(5_000));
    expect(verified).toBe(true);
    expect(sent).toBe(2);
    expect(answer).toMatchObject({
      status: 'payout',
      amount: 12n,
      cumulativePaid: 30n,
      lastValidBlockHeight: 99,
      rejected: [{ index: 1, code: 'RC_ERR_ASSIGNMENT_MISSING' }],
      credited: [{ index: 0, credited: 7n, shortfall: { code: 'RC_ERR_GRANT_BUDGET_SPENT', amount: 5n } }],
    });
  });

  it('keeps a settler refusal code, and turns server trouble, malformed and oversized answers into RC_ERR_SETTLEMENT_UNAVAILABLE', async () => {
    let mode = '';
    const client = await serve((_req, _body, res) => {
      if (mode === 'refused') return json(res, 401, { error: { code: 'RC_ERR_REDEEM_SIGNATURE', message: 'bad signature' } });
      if (mode === '500') return json(res, 500, { error: { code: 'RC_ERR_INTERNAL', message: 'boom' } });
      if (mode === 'malformed') return json(res, 200, { status: 'payout', amount: '-1' });
      if (mode === 'bad credit') return json(res, 200, { status: 'nothing-owed', cumulativePaid: '0', credited: [{ index: 0, credited: '-3' }] });
      if (mode === 'info') return json(res, 200, { payer: 'x' });
      if (mode === 'huge') return json(res, 200, { pad: 'x'.repeat(SETTLER_MAX_RESPONSE_BYTES) });
      res.destroy();
    });
    const signal = AbortSignal.timeout(5_000);
    const codeOf = async (p: Promise<unknown>): Promise<string | undefined> =>
      p.then(
        () => undefined,
        (e: { code?: string }) => e.code,
      );
    mode = 'refused';
    expect(await codeOf(client.redeem([], signal))).toBe(ErrorCode.REDEEM_SIGNATURE);
    for (const m of ['500', 'malformed', 'bad credit', 'huge', 'reset']) {
      mode = m;
      expect(await codeOf(client.redeem([], signal)), m).toBe(ErrorCode.SETTLEMENT_UNAVAILABLE);
    }
    mode = 'info';
    expect(await codeOf(client.info(signal))).toBe(ErrorCode.SETTLEMENT_UNAVAILABLE);
  });

  it('sends the first items that fit the settler’s body limit and says how many', async () => {
    const received: number[] = [];
    const client = await serve((_req, body, res) => {
      expect(body.byteLength).toBeLessThanOrEqual(SETTLER_MAX_BODY_BYTES);
      received.push((JSON.parse(body.toString()) as { items: unknown[] }).items.length);
      json(res, 200, { status: 'nothing-owed', cumulativePaid: '0', credited: [] });
    });
    // About 1 KB of JSON each: a 256 KiB body holds about 250.
    const item = { signedGrant: new Uint8Array(400), signedReceipt: new Uint8Array(184), assignment: new Uint8Array(169) };
    const { sent } = await client.redeem(
      Array.from({ length: 400 }, () => item),
      AbortSignal.timeout(5_000),
    );
    expect(sent).toBeGreaterThan(200);
    expect(sent).toBeLessThan(400);
    expect(received).toEqual([sent]);
  });

  it('refuses a settler URL that is not http(s)', () => {
    expect(() => new SettlerClient({ baseUrl: 'ftp://x/', signer })).toThrow(expect.objectContaining({ code: ErrorCode.CONFIG_INVALID }));
  });
});
