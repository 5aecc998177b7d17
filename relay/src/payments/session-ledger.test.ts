import { ErrorCode } from '@relaycast/protocol';
import { sessionKeyObject } from '@relaycast/protocol/node';
import { describe, expect, it } from 'vitest';
import { TestSession, testPayer } from '../testing/payments.js';
import { SessionLedger } from './session-ledger.js';

describe('SessionLedger', () => {
  const payer = testPayer();
  const bind = (ledger: SessionLedger, s: TestSession, newestBytes?: number) =>
    ledger.bind(s.grant, payer.id, () => ({
      keyObject: sessionKeyObject(s.grant.sessionKey),
      newest: newestBytes === undefined ? undefined : s.receiptFields(new Uint8Array(32), newestBytes),
    }));

  it('starts a rebuilt session at its stored receipt, so nothing is forgiven or charged twice', () => {
    const ledger = new SessionLedger(10);
    const s = bind(ledger, new TestSession(payer), 5_000);
    expect(s.servedBytes).toBe(5_000);
    expect(SessionLedger.unreceiptedBytes(s)).toBe(0);
    s.servedBytes += 700;
    expect(SessionLedger.unreceiptedBytes(s)).toBe(700);
    expect(ledger.totalUnreceiptedBytes()).toBe(700);
  });

  it('keeps one entry per session key across channels, forgets only sessions without channels, and refuses when all are in use', () => {
    const ledger = new SessionLedger(2);
    const a = new TestSession(payer);
    const b = new TestSession(payer);
    const first = bind(ledger, a);
    expect(bind(ledger, a)).toBe(first);
    expect(first.channels).toBe(2);
    bind(ledger, b);
    expect(() => bind(ledger, new TestSession(payer))).toThrow(expect.objectContaining({ code: ErrorCode.RELAY_OVERLOADED }));
    const bs = ledger.get(b.grant.sessionKey);
    if (bs === undefined) throw new Error('session b missing');
    ledger.release(bs);
    const c = new TestSession(payer);
    bind(ledger, c);
    expect(ledger.get(b.grant.sessionKey)).toBeUndefined();
    expect(ledger.get(a.grant.sessionKey)).toBe(first);
    expect(ledger.size).toBe(2);
  });

  it('a renewed grant for the same session key counts receipts under the new grant and keeps what the old one left unreceipted', () => {
    const ledger = new SessionLedger(10);
    const a = new TestSession(payer);
    const first = bind(ledger, a, 5_000);
    first.servedBytes += 1_000;
    first.originBytes += 7_000;
    const renewed = { ...a.grant, nonce: new Uint8Array(16).fill(9) };
    const again = ledger.bind(
      renewed,
      payer.id,
      () => {
        throw new Error('a known session is not rebuilt');
      },
      () => undefined,
    );
    expect(again).toBe(first);
    expect(again.grant.nonce).toEqual(renewed.nonce);
    expect(again.newest).toBeUndefined();
    expect(SessionLedger.unreceiptedBytes(again)).toBe(1_000);
    expect(SessionLedger.unpaidOriginBytes(again)).toBe(7_000);
  });
});
