/**
 * Finding 2 (issue 14): "An honest relay can be frozen out of its pay." The settler caps a grant's
 * total across relays; the relay used to sum its full receipts and refuse any payout that differed
 * (RC_ERR_PAYOUT_MISMATCH), for that payer, forever. Replayed here over real processes (chain,
 * settler, tracker, two relays, origin): a viewer spends past its grant's budget over two relays and
 * relay B redeems first. Relay A is then paid what the settler credits, records the shortfall with
 * its reason (RC_ERR_GRANT_BUDGET_SPENT), and its later receipts are paid in full. Beside it an
 * honest viewer watching over both relays within its budget has both relays paid exactly verified
 * bytes × price.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, FrameType, swarmIdFromUrl } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrigin, type OriginServer } from '../helpers/origin-server.js';
import { PayingViewer } from '../helpers/paying-viewer.js';
import {
  relayRedeem,
  setUpRelayWallet,
  setUpTreasury,
  startChainProcess,
  startSettlerProcess,
  tokenBalance,
  trackerKeyFile,
  type PaymentSetup,
  type SettlerProc,
} from '../helpers/payments-world.js';
import { startRelayProcess, startTrackerProcess, stopAll, waitFor, type RelayProc, type TrackerProc } from '../helpers/processes.js';

/** One base unit per byte: amounts read as byte counts. */
const PRICE_PER_GIB = 1n << 30n;
const SEG_BYTES = 100_000;
/** Each grant may be paid 300,000 base units in total, over all relays. */
const BUDGET = 300_000n;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

interface PaidRelay {
  proc: RelayProc;
  id: string;
  keypair: string;
  db: string;
  statusPort: number;
}

interface PayerOut {
  error?: { code: string };
  amount: string;
  shortfall: Record<string, string>;
  credited: string;
}

describe('attack 02: an honest relay cannot be frozen out of its pay', () => {
  let dir: string;
  let origin: OriginServer;
  let setup: PaymentSetup;
  let settler: SettlerProc;
  let tracker: TrackerProc;
  let scope: string;
  let segs: string[];
  let a: PaidRelay;
  let b: PaidRelay;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack-02-'));
    await mkdir(join(dir, 'media'));
    segs = [];
    for (let i = 0; i < 4; i++) await writeFile(join(dir, 'media', `seg${i}.ts`), randomBytes(SEG_BYTES));
    origin = await startOrigin(dir);
    scope = `${origin.url}media/`;
    for (let i = 0; i < 4; i++) segs.push(`${scope}seg${i}.ts`);
    const chain = await startChainProcess(100);
    setup = await setUpTreasury(chain.rpcUrl, dir, 1_000);
    const trackerKey = await trackerKeyFile(setup, join(dir, 'tracker.json'));
    settler = await startSettlerProcess(setup, join(dir, 'settler.sqlite'), PRICE_PER_GIB, { trustedTrackers: [trackerKey], extra: ['--default-budget', BUDGET.toString()] });
    tracker = await startTrackerProcess(['--key', join(dir, 'tracker.json'), '--trusted-payer', settler.payer]);
    const relay = async (name: string): Promise<PaidRelay> => {
      await mkdir(join(dir, name));
      const keypair = join(dir, name, 'relay.json');
      const id = await setUpRelayWallet(setup, keypair);
      const db = join(dir, name, 'receipts.sqlite');
      const statusPort = await freePort();
      const proc = await startRelayProcess(tracker, {
        keypair,
        allowOrigin: [scope],
        extra: ['--accept-payer', `${settler.payer}=${settler.url}`, '--db', db, '--status-port', String(statusPort)],
      });
      return { proc, id, keypair, db, statusPort };
    };
    a = await relay('relay-a');
    b = await relay('relay-b');
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const open = (r: PaidRelay, session?: PayingViewer['session']): Promise<PayingViewer> =>
    PayingViewer.open({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(`${scope}index.m3u8`), relayId: r.id, settlerUrl: settler.url, scope, session });

  async function status(r: PaidRelay): Promise<Record<string, unknown>> {
    return ((await (await fetch(`http://127.0.0.1:${r.statusPort}/status`)).json()) as { payments: Record<string, unknown> }).payments;
  }

  /** Fetches `n` segments on `v` and sends a receipt; waits until the relay stored it. */
  async function watch(v: PayingViewer, r: PaidRelay, n: number): Promise<bigint> {
    const before = Number((await status(r))['receiptsAccepted']);
    for (let i = 0; i < n; i++) expect((await v.fetch(segs[i] as string)).type).toBe(FrameType.END);
    const amount = v.sendReceipt();
    await waitFor('the receipt stored', async () => Number((await status(r))['receiptsAccepted']) > before || undefined);
    expect(v.channelErrors).toEqual([]);
    return amount;
  }

  async function redeem(r: PaidRelay): Promise<PayerOut> {
    const res = await relayRedeem(['--keypair', r.keypair, '--db', r.db, '--rpc-url', setup.rpcUrl, '--accept-payer', `${settler.payer}=${settler.url}`]);
    expect(res.code, res.stderr).toBe(0);
    return (res.out?.['payers'] as PayerOut[])[0] as PayerOut;
  }

  it('relay A is paid what the settler credits after relay B redeemed the shared grant first, the shortfall is recorded with its reason, and its later receipts are paid; an honest viewer over both relays pays both exactly', { timeout: 240_000 }, async () => {
    // The viewer spends past its grant's budget over two relays: 200,000 via B, 200,000 via A.
    const greedyOnB = await open(b);
    const greedyOnA = await open(a, greedyOnB.session);
    expect(await watch(greedyOnB, b, 2)).toBe(200_000n);
    expect(await watch(greedyOnA, a, 2)).toBe(200_000n);
    greedyOnA.close();
    greedyOnB.close();

    // B redeems first and takes 200,000 of the 300,000 budget.
    const fromB = await redeem(b);
    expect(fromB.error).toBeUndefined();
    expect(fromB.amount).toBe('200000');

    // A: credited the remaining 100,000, the rest a shortfall with its reason; no RC_ERR_PAYOUT_MISMATCH.
    const fromA = await redeem(a);
    expect(fromA.error).toBeUndefined();
    expect(fromA.amount).toBe('100000');
    expect(fromA.shortfall).toEqual({ [ErrorCode.GRANT_BUDGET_SPENT]: '100000' });
    expect(await tokenBalance(setup, a.id)).toBe(100_000n);
    expect(await status(a)).toMatchObject({ receipted: '200000', earned: '100000', paid: '100000', unpaid: '0', shortfall: '100000' });
    expect(((await status(a))['byPayer'] as { shortfallByCode: Record<string, string> }[])[0]?.shortfallByCode).toEqual({ [ErrorCode.GRANT_BUDGET_SPENT]: '100000' });

    // The honest path beside it: a viewer within its budget over both relays (an HD viewer spread
    // over relays). Both relays are paid exactly verified bytes × price, A included: the earlier
    // shortfall blocks nothing.
    const honestOnA = await open(a);
    const honestOnB = await open(b, honestOnA.session);
    expect(await watch(honestOnA, a, 2)).toBe(200_000n);
    expect(await watch(honestOnB, b, 1)).toBe(100_000n);
    honestOnA.close();
    honestOnB.close();
    const laterA = await redeem(a);
    expect(laterA.error).toBeUndefined();
    expect(laterA.amount).toBe('200000');
    expect(laterA.shortfall).toEqual({});
    const laterB = await redeem(b);
    expect(laterB.error).toBeUndefined();
    expect(laterB.amount).toBe('100000');
    expect(await tokenBalance(setup, a.id)).toBe(300_000n);
    expect(await tokenBalance(setup, b.id)).toBe(300_000n);
    expect(await status(a)).toMatchObject({ receipted: '400000', earned: '300000', paid: '300000', shortfall: '100000' });

    // Nothing more is owed to anyone, and asking again pays nothing.
    expect((await redeem(a)).amount).toBe('0');
    expect(await tokenBalance(setup, a.id)).toBe(300_000n);
  });
});
