import { describe, expect, it } from 'vitest';
import { encodeBase58 } from '../base58.js';
import { toBase64, utf8Encode } from '../bytes.js';
import { ErrorCode } from '../errors.js';
import { expectRelaycastError } from '../testing/errors.js';
import { MAX_GRANT_SCOPE_BYTES } from '../receipts.js';
import {
  RELAY_PAYOUTS_LISTED,
  SETTLER_PATHS,
  decodeGrantRequest,
  decodeGrantResponse,
  decodeRelayPayoutsResponse,
  decodeRelayStatusResponse,
  decodeSettlerError,
  decodeSettlerInfo,
  matchRelayPath,
  relayPayoutsPath,
  relayStatusPath,
  settlerEndpoint,
  signedGrantOf,
} from './settler-api.js';

const key = (b: number): string => encodeBase58(new Uint8Array(32).fill(b));
const sig = encodeBase58(new Uint8Array(64).fill(3));
const expectField = (f: () => unknown): unknown => expectRelaycastError(f, ErrorCode.MESSAGE_FIELD);

describe('settler paths', () => {
  it('builds and matches the relay paths, refusing a relay segment that is not a canonical key', () => {
    expect(SETTLER_PATHS).toEqual({ health: '/healthz', info: '/v1/info', grants: '/v1/grants', redeem: '/v1/redeem' });
    expect(matchRelayPath(relayStatusPath(key(1)))).toEqual({ relay: key(1), resource: 'status' });
    expect(matchRelayPath(relayPayoutsPath(key(1)))).toEqual({ relay: key(1), resource: 'payouts' });
    expect(matchRelayPath('/v1/relays')).toBeUndefined();
    expect(matchRelayPath(`/v1/relays/${key(1)}/other`)).toBeUndefined();
    expectField(() => matchRelayPath('/v1/relays/xyz'));
    expectField(() => matchRelayPath(`/v1/relays/1${key(1)}`));
  });

  it('resolves a path under the base URL, keeping its path prefix', () => {
    expect(settlerEndpoint('http://127.0.0.1:8900', SETTLER_PATHS.info).href).toBe('http://127.0.0.1:8900/v1/info');
    expect(settlerEndpoint('http://127.0.0.1:8900/', SETTLER_PATHS.grants).href).toBe('http://127.0.0.1:8900/v1/grants');
    expect(settlerEndpoint('https://pay.example/settler', relayPayoutsPath(key(1))).href).toBe(`https://pay.example/settler/v1/relays/${key(1)}/payouts`);
  });
});

describe('GET /v1/info', () => {
  const info = {
    payer: key(1),
    mint: key(2),
    decimals: 6,
    treasuryTokenAccount: key(3),
    pricePerGiB: '1000000',
    defaultBudget: '10000000',
    grantTtlMs: 21_600_000,
    grantAuth: 'open',
    userBudget: '100000000',
    budgetPeriodMs: 86_400_000,
    maxBytesPerSec: 2_500_000,
    plausibleBurstBytes: 67_108_864,
    redeemWindowMs: 604_800_000,
    trustedTrackers: [key(4)],
  };

  it('decodes the full answer, and the payment terms alone', () => {
    expect(decodeSettlerInfo(info)).toEqual(info);
    const terms = { payer: key(1), mint: key(2), decimals: 6, treasuryTokenAccount: key(3) };
    expect(decodeSettlerInfo(terms)).toEqual(terms);
  });

  it.each([
    { ...info, payer: 'x' },
    { ...info, mint: undefined },
    { ...info, decimals: 256 },
    { ...info, treasuryTokenAccount: 5 },
    { ...info, pricePerGiB: 1 },
    { ...info, grantTtlMs: -5 },
    { ...info, grantAuth: 'x'.repeat(33) },
    { ...info, trustedTrackers: ['x'] },
    { ...info, trustedTrackers: key(4) },
  ])('refuses a malformed field: %#', (bad) => {
    expectField(() => decodeSettlerInfo(bad));
  });

  it('refuses an answer that is not an object', () => {
    expectRelaycastError(() => decodeSettlerInfo('x'), ErrorCode.MESSAGE_MALFORMED);
  });
});

describe('GET /v1/relays/:relay and /payouts', () => {
  it('decodes the status with and without a pending payout', () => {
    const idle = { owed: '0', cumulativePaid: '5', pending: null };
    expect(decodeRelayStatusResponse(idle)).toEqual(idle);
    const pending = { owed: '7', cumulativePaid: '5', pending: { signature: sig, amount: '7' } };
    expect(decodeRelayStatusResponse(pending)).toEqual(pending);
    expectField(() => decodeRelayStatusResponse({ ...idle, pending: undefined }));
    expectField(() => decodeRelayStatusResponse({ ...pending, pending: { signature: 'x', amount: '7' } }));
    expectField(() => decodeRelayStatusResponse({ ...idle, owed: '01' }));
  });

  it('decodes the payout list, at most RELAY_PAYOUTS_LISTED, every id a 64-byte base58 signature', () => {
    const one = { signature: sig, amount: '7', cumulativePaid: '12' };
    expect(decodeRelayPayoutsResponse({ payouts: [one] })).toEqual({ payouts: [one] });
    expectField(() => decodeRelayPayoutsResponse({ payouts: Array.from({ length: RELAY_PAYOUTS_LISTED + 1 }, () => one) }));
    expectField(() => decodeRelayPayoutsResponse({ payouts: [{ ...one, signature: key(1) }] }));
    expectField(() => decodeRelayPayoutsResponse({ payouts: [{ ...one, amount: 7 }] }));
    expectField(() => decodeRelayPayoutsResponse({}));
  });
});

describe('POST /v1/grants', () => {
  const scope = 'https://cdn.example/live/';
  const req = (o: unknown): Uint8Array => utf8Encode(JSON.stringify(o));

  it('decodes a request, and refuses a malformed one with the codes the settler answers', () => {
    expect(decodeGrantRequest(req({ sessionKey: key(5), scope }))).toEqual({ sessionKey: key(5), scope });
    expectRelaycastError(() => decodeGrantRequest(utf8Encode('nope')), ErrorCode.MESSAGE_MALFORMED);
    expectRelaycastError(() => decodeGrantRequest(req({ sessionKey: key(5) })), ErrorCode.MESSAGE_MALFORMED);
    expectField(() => decodeGrantRequest(req({ sessionKey: 'x', scope })));
    expectField(() => decodeGrantRequest(req({ sessionKey: key(5), scope: '' })));
    expectField(() => decodeGrantRequest(req({ sessionKey: key(5), scope: `https://a/${'x'.repeat(MAX_GRANT_SCOPE_BYTES)}` })));
    expectField(() => decodeGrantRequest(req({ sessionKey: key(5), scope: '/relative/' })));
    expectField(() => decodeGrantRequest(req({ sessionKey: key(5), scope: 'ftp://cdn.example/' })));
  });

  it('decodes an answer', () => {
    const answer = {
      grant: toBase64(new Uint8Array(200)),
      issuedAtMs: 1,
      expiresAtMs: 2,
      maxBytesPerSec: 3,
      pricePerGiB: '4',
      budget: '5',
      mint: key(2),
      payer: key(1),
    };
    expect(decodeGrantResponse(answer)).toEqual(answer);
    expectField(() => decodeGrantResponse({ ...answer, grant: '' }));
    expectField(() => decodeGrantResponse({ ...answer, budget: '-5' }));
    expectField(() => decodeGrantResponse({ ...answer, payer: 'x' }));
  });

  it('reads the grant alone from an answer that carries only it', () => {
    expect(signedGrantOf({ grant: toBase64(new Uint8Array([1, 2, 3])) })).toEqual(new Uint8Array([1, 2, 3]));
    for (const other of [null, undefined, {}, { grant: 5 }, { grant: 'not base64!' }]) expect(signedGrantOf(other)).toBeUndefined();
  });
});

describe('error body', () => {
  it('reads { error: { code, message } } and nothing else', () => {
    expect(decodeSettlerError({ error: { code: 'RC_ERR_RATE_LIMITED', message: 'slow down' } })).toEqual({ code: 'RC_ERR_RATE_LIMITED', message: 'slow down' });
    for (const other of [null, 'x', {}, { error: 'x' }, { error: { code: 5, message: 'm' } }, { error: { code: 'RC_ERR_X' } }]) {
      expect(decodeSettlerError(other)).toBeUndefined();
    }
  });
});
