import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { encodeBase58 } from '../base58.js';
import { concatBytes, toBase64, utf8Encode } from '../bytes.js';
import { SIGNED_ASSIGNMENT_BYTES } from '../assignments.js';
import { ErrorCode } from '../errors.js';
import { MAX_SIGNED_GRANT_BYTES, SIGNED_RECEIPT_BYTES } from '../receipts.js';
import { expectRelaycastError } from '../testing/errors.js';
import { rawPublicKey, signEd25519 } from '../node/ed25519.js';
import { signRedeemBody, verifyRedeemSignature } from '../node/settlement.js';
import {
  MAX_REDEEM_ITEMS,
  REDEEM_MAX_CLOCK_SKEW_MS,
  SETTLER_MAX_BODY_BYTES,
  checkRedeemClock,
  decodeRedeemBody,
  decodeRedeemResponse,
  encodeRedeemBody,
  redeemItemsFitting,
  redeemSigningBytes,
  type RedeemBody,
  type RedeemItem,
} from './redeem.js';

const key = generateKeyPairSync('ed25519').privateKey;
const relay = encodeBase58(rawPublicKey(key));
const body: RedeemBody = {
  relay,
  requestedAtMs: 1_700_000_000_000,
  items: [
    { grant: 'AQID', receipt: 'BAUG', assignment: 'BwgJ' },
    { grant: 'AQID', receipt: 'BAUG' },
  ],
};
const bytes = (o: unknown): Uint8Array => utf8Encode(JSON.stringify(o));

describe('redeem request', () => {
  it('signs the domain then the exact body bytes; the header verifies for this body and key only', () => {
    const raw = encodeRedeemBody(body);
    expect(redeemSigningBytes(raw)).toEqual(concatBytes([utf8Encode('relaycast-redeem-v1\0'), raw]));
    const header = signRedeemBody(raw, key);
    expect(header).toBe(toBase64(signEd25519(key, redeemSigningBytes(raw))));
    expect(verifyRedeemSignature(rawPublicKey(key), raw, header)).toBe(true);
    expect(verifyRedeemSignature(rawPublicKey(key), concatBytes([raw, utf8Encode(' ')]), header)).toBe(false);
    expect(verifyRedeemSignature(rawPublicKey(generateKeyPairSync('ed25519').privateKey), raw, header)).toBe(false);
    expect(verifyRedeemSignature(rawPublicKey(key), raw, 'AAAA')).toBe(false);
    expect(verifyRedeemSignature(rawPublicKey(key), raw, undefined)).toBe(false);
  });

  it('round-trips a body, and leaves an item’s contents to the settler', () => {
    expect(decodeRedeemBody(encodeRedeemBody(body))).toEqual(body);
    // Not base64: still an item; the settler refuses it alone, with its code.
    expect(decodeRedeemBody(bytes({ ...body, items: [{ grant: '!', receipt: '' }] })).items).toEqual([{ grant: '!', receipt: '' }]);
  });

  it('refuses bodies that are not JSON objects, and oversized bodies', () => {
    expectRelaycastError(() => decodeRedeemBody(utf8Encode('{"relay":')), ErrorCode.MESSAGE_MALFORMED);
    expectRelaycastError(() => decodeRedeemBody(bytes([body])), ErrorCode.MESSAGE_MALFORMED);
    expectRelaycastError(() => decodeRedeemBody(new Uint8Array(SETTLER_MAX_BODY_BYTES + 1).fill(0x20)), ErrorCode.MESSAGE_TOO_LARGE);
  });

  it.each([
    { ...body, relay: 'x' },
    { ...body, relay: `1${relay}` },
    { ...body, relay: 7 },
    { ...body, requestedAtMs: -1 },
    { ...body, requestedAtMs: 1.5 },
    { ...body, requestedAtMs: '1' },
    { ...body, items: {} },
    { ...body, items: Array.from({ length: MAX_REDEEM_ITEMS + 1 }, () => ({ grant: '', receipt: '' })) },
    { ...body, items: [{ grant: 'AQID' }] },
    { ...body, items: [null] },
    { ...body, items: [{ grant: 'AQID', receipt: 'BAUG', assignment: 5 }] },
  ])('refuses a bad field: %#', (bad) => {
    expectRelaycastError(() => decodeRedeemBody(bytes(bad)), ErrorCode.MESSAGE_FIELD);
  });

  it('will not encode a body the settler would refuse', () => {
    expectRelaycastError(() => encodeRedeemBody({ ...body, relay: `1${relay}` }), ErrorCode.MESSAGE_FIELD);
    expectRelaycastError(() => encodeRedeemBody({ ...body, requestedAtMs: -1 }), ErrorCode.MESSAGE_FIELD);
  });

  it('counts the items one body carries: within SETTLER_MAX_BODY_BYTES and MAX_REDEEM_ITEMS, exactly', () => {
    const item = (grantBytes: number): RedeemItem => ({
      grant: toBase64(new Uint8Array(grantBytes)),
      receipt: toBase64(new Uint8Array(SIGNED_RECEIPT_BYTES)),
      assignment: toBase64(new Uint8Array(SIGNED_ASSIGNMENT_BYTES)),
    });
    // The largest grant, a typical one, and tiny items (the item limit binds before the bytes).
    for (const one of [item(MAX_SIGNED_GRANT_BYTES), item(300), { grant: '', receipt: '' }]) {
      const all = { relay, requestedAtMs: Number.MAX_SAFE_INTEGER, items: Array.from({ length: MAX_REDEEM_ITEMS + 1 }, () => one) };
      const n = redeemItemsFitting(all);
      expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThanOrEqual(MAX_REDEEM_ITEMS);
      // n items encode; with one more the body is too large (or over the item limit).
      expect(() => encodeRedeemBody({ ...all, items: all.items.slice(0, n) })).not.toThrow();
      expectRelaycastError(
        () => encodeRedeemBody({ ...all, items: all.items.slice(0, n + 1) }),
        n === MAX_REDEEM_ITEMS ? ErrorCode.MESSAGE_FIELD : ErrorCode.MESSAGE_TOO_LARGE,
      );
    }
    expect(redeemItemsFitting(body)).toBe(body.items.length);
  });

  it('accepts a clock within the skew either way', () => {
    const now = 1_700_000_000_000;
    expect(() => checkRedeemClock(now - REDEEM_MAX_CLOCK_SKEW_MS, now)).not.toThrow();
    expect(() => checkRedeemClock(now + REDEEM_MAX_CLOCK_SKEW_MS, now)).not.toThrow();
    expectRelaycastError(() => checkRedeemClock(now - REDEEM_MAX_CLOCK_SKEW_MS - 1, now), ErrorCode.REDEEM_CLOCK_SKEW);
    expectRelaycastError(() => checkRedeemClock(now + REDEEM_MAX_CLOCK_SKEW_MS + 1, now), ErrorCode.REDEEM_CLOCK_SKEW);
  });
});

describe('redeem answer', () => {
  const signature = encodeBase58(new Uint8Array(64).fill(9));
  const payout = {
    status: 'payout',
    transaction: 'AAEC',
    signature,
    amount: '12',
    cumulativePaid: '30',
    merkleRoot: 'ab'.repeat(32),
    lastValidBlockHeight: 99,
    rejected: [{ index: 1, code: ErrorCode.ASSIGNMENT_MISSING }],
    credited: [{ index: 0, credited: '7', shortfall: { code: ErrorCode.GRANT_BUDGET_SPENT, amount: '5' } }],
  };

  it('decodes both statuses as sent', () => {
    expect(decodeRedeemResponse(payout)).toEqual(payout);
    const none = { status: 'nothing-owed', cumulativePaid: '18446744073709551615', credited: [] };
    expect(decodeRedeemResponse(none)).toEqual(none);
    // A code this version does not know is still a code (a newer settler may send it).
    expect(decodeRedeemResponse({ ...none, rejected: [{ index: 0, code: 'RC_ERR_FROM_THE_FUTURE' }] })).toMatchObject({
      rejected: [{ code: 'RC_ERR_FROM_THE_FUTURE' }],
    });
  });

  it('refuses an answer that is not an object', () => {
    expectRelaycastError(() => decodeRedeemResponse(null), ErrorCode.MESSAGE_MALFORMED);
  });

  it.each([
    { ...payout, status: 'paid' },
    { ...payout, amount: '-1' },
    { ...payout, amount: '18446744073709551616' },
    { ...payout, cumulativePaid: 30 },
    { ...payout, transaction: 'not base64' },
    { ...payout, transaction: toBase64(new Uint8Array(1_233)) },
    { ...payout, signature: 'sig' },
    { ...payout, signature: encodeBase58(new Uint8Array(32).fill(9)) },
    { ...payout, merkleRoot: 'AB'.repeat(32) },
    { ...payout, lastValidBlockHeight: -1 },
    { ...payout, credited: undefined },
    { ...payout, credited: [{ index: 0, credited: '-3' }] },
    { ...payout, credited: [{ index: -1, credited: '3' }] },
    { ...payout, credited: [{ index: 0, credited: '3', shortfall: { code: 'nope', amount: '1' } }] },
    { ...payout, credited: [{ index: 0, credited: '3', shortfall: null }] },
    { ...payout, rejected: [{ index: 0 }] },
    { ...payout, rejected: {} },
  ])('refuses a malformed field: %#', (bad) => {
    expectRelaycastError(() => decodeRedeemResponse(bad), ErrorCode.MESSAGE_FIELD);
  });
});
