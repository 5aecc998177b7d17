import { chmod, mkdtemp, rm, stat } from 'node:fs/promises';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { signRedeemBody } from '@relaycast/protocol/node';
import { REDEEM_SIGNATURE_HEADER, SETTLER_PATHS, relayStatusPath } from '@relaycast/protocol/settlement';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSettlerForTestRelay } from '../helpers/paid-network.js';
import {
  SETTLER_BIN,
  assignmentB64,
  newIdentity,
  receiptB64,
  redeemAs,
  requestGrantAt,
  tokenBalance,
  waitForPayout,
  type PaymentSetup,
  type SettlerProc,
  type TestIdentity,
} from '../helpers/payments-world.js';
import { startProcess, stopAll, waitFor } from '../helpers/processes.js';

const PRICE_PER_GIB = 1n << 30n;

/** POST from a chosen local address (anything in 127.0.0.0/8 is this host): one client per address. */
function postFrom(
  localAddress: string,
  url: string,
  body: Buffer,
  headers: Record<string, string>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', localAddress, headers: { 'content-type': 'application/json', 'content-length': String(body.length), ...headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString()) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** A signed redeem request from `relay` carrying `n` junk items (each fails its first, cheapest check). */
function junkRedeem(relay: TestIdentity, n: number): { raw: Buffer; headers: Record<string, string> } {
  const items = Array.from({ length: n }, () => ({ grant: 'AAAA', receipt: 'AAAA', assignment: 'AAAA' }));
  const raw = Buffer.from(JSON.stringify({ relay: relay.id, requestedAtMs: Date.now(), items }));
  return { raw, headers: { [REDEEM_SIGNATURE_HEADER]: signRedeemBody(raw, relay.privateKey) } };
}

/**
 * Issue 14, finding 10, the settler's part: /v1/redeem burning CPU and disk for any key, a per-IP
 * table evicted by rotating addresses, the treasury key's and the ledger's file permissions, and
 * a viewer-chosen timestamp keeping an expired grant redeemable. Real chain and settler processes.
 */
describe('attack 10 (settler): redeem floods, key and ledger permissions, expiry on the settler’s clock', () => {
  let dir: string;
  let setup: PaymentSetup;
  let settler: SettlerProc;
  let honest: TestIdentity;
  const tracker = newIdentity();
  const dbPath = (): string => join(dir, 'ledger', 'settler.sqlite');

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack10s-'));
    ({
      setup,
      settler,
      relay: honest,
    } = await startSettlerForTestRelay(dir, PRICE_PER_GIB, tracker, {
      relayName: 'honest',
      dbPath: dbPath(),
      // Grants live 3 s; receipts are credited up to 2 s after expiry.
      settlerExtra: ['--grant-ttl-ms', '3000', '--redeem-window-ms', '2000'],
    }));
  });

  afterAll(async () => {
    await stopAll();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('a redeem flood from fresh keys is cut per relay key and per address range before any item is checked; nothing is stored; another address is unaffected', async () => {
    const url = `${settler.url.replace('0.0.0.0', '127.0.0.1')}${SETTLER_PATHS.redeem}`;
    // One key: 1,000 items per request; its bucket holds 2,000.
    const one = newIdentity();
    const perKey: number[] = [];
    for (let i = 0; i < 4; i++) {
      const { raw, headers } = junkRedeem(one, 1_000);
      perKey.push((await postFrom('127.0.0.2', url, raw, headers)).status);
    }
    expect(perKey.slice(0, 2)).toEqual([200, 200]);
    expect(perKey.slice(2)).toEqual([429, 429]);
    // Fresh keys from one address: the address range's 4,000-item bucket is empty after a few.
    const statuses: number[] = [];
    const codes = new Set<string>();
    for (let i = 0; i < 8; i++) {
      const { raw, headers } = junkRedeem(newIdentity(), 1_000);
      const res = await postFrom('127.0.0.3', url, raw, headers);
      statuses.push(res.status);
      if (res.status !== 200) codes.add((res.body['error'] as { code: string }).code);
    }
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(4);
    expect(statuses.at(-1)).toBe(429);
    expect(codes).toEqual(new Set(['RC_ERR_RATE_LIMITED']));
    // Refused and rejected items left nothing behind for those keys.
    expect((await (await fetch(`${settler.url.replace('0.0.0.0', '127.0.0.1')}${relayStatusPath(one.id)}`)).json()) as unknown).toEqual({
      owed: '0',
      cumulativePaid: '0',
      pending: null,
    });
    // The honest relay on another address is served at once.
    const viewer = newIdentity();
    const g = await requestGrantAt(settler.url.replace('0.0.0.0', '127.0.0.1'), viewer);
    const item = { grant: g.grant!.b64, receipt: receiptB64(viewer, g.grant!.signed, honest, 1, 50_000), assignment: assignmentB64(tracker, viewer, honest) };
    const raw = Buffer.from(JSON.stringify({ relay: honest.id, requestedAtMs: Date.now(), items: [item] }));
    const paid = await postFrom('127.0.0.4', url, raw, { [REDEEM_SIGNATURE_HEADER]: signRedeemBody(raw, honest.privateKey) });
    expect(paid.status, JSON.stringify(paid.body)).toBe(200);
    expect(paid.body).toMatchObject({ status: 'payout', amount: '50000', credited: [{ index: 0, credited: '50000' }] });
    await waitForPayout(setup.rpcUrl, paid.body['signature'] as string);
    expect(await tokenBalance(setup, honest.id)).toBe(50_000n);
  });

  it('a receipt dated inside the grant’s life but redeemed after expiry + the redeem window is not credited (RC_ERR_REDEEM_WINDOW_CLOSED); one in the window is', async () => {
    const base = settler.url.replace('0.0.0.0', '127.0.0.1');
    await waitFor(
      'the honest payout resolved',
      async () => ((await (await fetch(`${base}${relayStatusPath(honest.id)}`)).json()) as { pending: unknown }).pending === null,
    );
    const late = newIdentity();
    const lateGrant = (await requestGrantAt(base, late)).grant!;
    // The viewer signs while the grant is live (timestampMs inside its life) and hands the receipt
    // over; the relay keeps it past expiry + window before redeeming.
    const stale = { grant: lateGrant.b64, receipt: receiptB64(late, lateGrant.signed, honest, 1, 30_000), assignment: assignmentB64(tracker, late, honest) };
    const onTime = newIdentity();
    await new Promise((r) => setTimeout(r, 2_000));
    const onTimeGrant = (await requestGrantAt(base, onTime)).grant!;
    const onTimeItem = {
      grant: onTimeGrant.b64,
      receipt: receiptB64(onTime, onTimeGrant.signed, honest, 1, 20_000),
      assignment: assignmentB64(tracker, onTime, honest),
    };
    await waitFor('the first grant to pass expiry + window', () => Date.now() > lateGrant.signed.grant.expiresAtMs + 2_000 + 100, 10_000);
    const res = await redeemAs(base, honest, [stale, onTimeItem]);
    expect(res.body).toMatchObject({
      status: 'payout',
      amount: '20000',
      cumulativePaid: '70000',
      credited: [
        { index: 0, credited: '0', shortfall: { code: 'RC_ERR_REDEEM_WINDOW_CLOSED', amount: '30000' } },
        { index: 1, credited: '20000' },
      ],
    });
  });

  it('the ledger files are readable by their owner only; a treasury key others can read stops the bin (RC_ERR_KEY_PERMISSIONS)', async () => {
    for (const f of [dbPath(), `${dbPath()}-wal`, `${dbPath()}-shm`]) expect(((await stat(f)).mode & 0o777).toString(8), f).toBe('600');
    await chmod(setup.treasuryKeypair, 0o644);
    try {
      const proc = startProcess('settler-open-key', SETTLER_BIN, [
        '--treasury-keypair',
        setup.treasuryKeypair,
        '--mint',
        setup.mint,
        '--rpc-url',
        setup.rpcUrl,
        '--port',
        '0',
        '--db',
        join(dir, 'other.sqlite'),
        '--grant-auth',
        'open',
        '--trusted-tracker',
        tracker.id,
      ]);
      await waitFor('the settler to refuse', () => proc.exited, 30_000);
      expect(proc.child.exitCode).toBe(2);
      expect(proc.output()).toContain('RC_ERR_KEY_PERMISSIONS');
    } finally {
      await chmod(setup.treasuryKeypair, 0o600);
    }
  });
});
