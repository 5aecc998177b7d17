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
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, FrameType, swarmIdFromUrl } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRandomSegmentOrigin, type OriginServer } from '../helpers/origin-server.js';
import { redeemPaidRelay, relayPayments, startPaidNetwork, startPaidRelay, type PaidNetwork, type PaidRelay } from '../helpers/paid-network.js';
import { PayingViewer } from '../helpers/paying-viewer.js';
import { tokenBalance } from '../helpers/payments-world.js';
import { stopAll, waitFor } from '../helpers/processes.js';

/** One base unit per byte: amounts read as byte counts. */
const PRICE_PER_GIB = 1n << 30n;
const SEG_BYTES = 100_000;
/** Each grant may be paid 300,000 base units in total, over all relays. */
const BUDGET = 300_000n;

interface PayerOut {
  error?: { code: string };
  amount: string;
  shortfall: Record<string, string>;
  credited: string;
}

describe('attack 02: an honest relay cannot be frozen out of its pay', () => {
  let dir: string;
  let origin: OriginServer;
  let net: PaidNetwork;
  let scope: string;
  let segs: string[];
  let a: PaidRelay;
  let b: PaidRelay;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack-02-'));
    ({ origin, scope, segs } = await startRandomSegmentOrigin(dir, 4, SEG_BYTES));
    net = await startPaidNetwork(dir, PRICE_PER_GIB, { slotMs: 100, settlerExtra: ['--default-budget', BUDGET.toString()] });
    a = await startPaidRelay(net, dir, 'relay-a', { allowOrigin: [scope] });
    b = await startPaidRelay(net, dir, 'relay-b', { allowOrigin: [scope] });
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const open = (r: PaidRelay, session?: PayingViewer['session']): Promise<PayingViewer> =>
    PayingViewer.open({
      trackerUrl: net.tracker.url,
      swarmId: swarmIdFromUrl(`${scope}index.m3u8`),
      relayId: r.id,
      settlerUrl: net.settler.url,
      scope,
      session,
    });

  const status = (r: PaidRelay): Promise<Record<string, unknown>> => relayPayments(r.statusPort);

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
    const res = await redeemPaidRelay(net, r);
    expect(res.code, res.stderr).toBe(0);
    return (res.out?.['payers'] as PayerOut[])[0] as PayerOut;
  }

  it(
    'relay A is paid what the settler credits after relay B redeemed the shared grant first, the shortfall is recorded with its reason, and its later receipts are paid; an honest viewer over both relays pays both exactly',
    { timeout: 240_000 },
    async () => {
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
      expect(await tokenBalance(net.setup, a.id)).toBe(100_000n);
      expect(await status(a)).toMatchObject({ receipted: '200000', earned: '100000', paid: '100000', unpaid: '0', shortfall: '100000' });
      expect(((await status(a))['byPayer'] as { shortfallByCode: Record<string, string> }[])[0]?.shortfallByCode).toEqual({
        [ErrorCode.GRANT_BUDGET_SPENT]: '100000',
      });

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
      expect(await tokenBalance(net.setup, a.id)).toBe(300_000n);
      expect(await tokenBalance(net.setup, b.id)).toBe(300_000n);
      expect(await status(a)).toMatchObject({ receipted: '400000', earned: '300000', paid: '300000', shortfall: '100000' });

      // Nothing more is owed to anyone, and asking again pays nothing.
      expect((await redeem(a)).amount).toBe('0');
      expect(await tokenBalance(net.setup, a.id)).toBe(300_000n);
    },
  );
});
