import { generateKeyPairSync } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ASSIGNMENT_VERSION,
  ErrorCode,
  FrameType,
  RELAY_STATUS_PATHS,
  amountForBytes,
  assignmentSigningBytes,
  decodeBase58,
  decodeSignedGrant,
  encodeSignedAssignment,
  encodeSignedReceipt,
  swarmIdFromUrl,
  type Assignment,
} from '@relaycast/protocol';
import { Transaction } from '@solana/web3.js';
import { signReceipt } from '@relaycast/protocol/node';
import { relayStatusPath } from '@relaycast/protocol/settlement';
import { ReceiptStore, Redeemer, loadKeypair } from '@relaycast/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRandomSegmentOrigin, type OriginServer } from './helpers/origin-server.js';
import { relayPayments, startPaidNetwork } from './helpers/paid-network.js';
import {
  relayRedeem,
  setUpRelayWallet,
  startSettlerProcess,
  startSettlerProxy,
  tokenBalance,
  type PaymentSetup,
  type SettlerProc,
  type SettlerProxy,
} from './helpers/payments-world.js';
import { PayingViewer, requestGrant } from './helpers/paying-viewer.js';
import { freePort, startRelayProcess, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';

/** One base unit per byte, so amounts read as byte counts. */
const PRICE_PER_GIB = 1n << 30n;
const SEG_BYTES = 200_000;

describe('relay payments against the real settler and embedded chain', () => {
  useProcesses();
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let setup: PaymentSetup;
  let settler: SettlerProc;
  let proxy: SettlerProxy;
  let trackerKey: string;
  let relayKeypair: string;
  let relayId: string;
  let relayDb: string;
  let settlerDb: string;
  let segUrl: string;
  let scope: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-relay-pay-'));
    let segs: string[];
    ({ origin, scope, segs } = await startRandomSegmentOrigin(dir, 1, SEG_BYTES));
    segUrl = segs[0] as string;
    // 50 ms slots: a payout's blockhash expires after 150 slots, 7.5 s, so expiry can be tested.
    // The tracker signs assignments with its key; the settler pays only for sessions it assigned.
    const net = await startPaidNetwork(dir, PRICE_PER_GIB, { slotMs: 50 });
    ({ setup, settler, tracker, trackerKey } = net);
    relayKeypair = join(dir, 'relay', 'relay.json');
    await mkdir(join(dir, 'relay'));
    relayId = await setUpRelayWallet(setup, relayKeypair);
    relayDb = join(dir, 'relay', 'receipts.sqlite');
    settlerDb = join(dir, 'settler.sqlite');
    proxy = await startSettlerProxy(settler.url);
  }, 180_000);

  afterAll(async () => {
    await proxy?.close();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function startPaidRelay(statusPort: number): Promise<RelayProc> {
    return startRelayProcess(tracker, {
      keypair: relayKeypair,
      allowOrigin: [scope],
      extra: ['--accept-payer', `${settler.payer}=${settler.url}`, '--db', relayDb, '--status-port', String(statusPort)],
    });
  }

  async function receiptsAccepted(statusPort: number): Promise<number> {
    const s = (await (await fetch(`http://127.0.0.1:${statusPort}${RELAY_STATUS_PATHS.status}`)).json()) as { payments?: { receiptsAccepted: number } };
    return s.payments?.receiptsAccepted ?? 0;
  }

  const redeemArgs = (settlerUrl: string): string[] => [
    '--keypair',
    relayKeypair,
    '--db',
    relayDb,
    '--rpc-url',
    setup.rpcUrl,
    '--accept-payer',
    `${settler.payer}=${settlerUrl}`,
  ];

  const viewer = (relay: RelayProc, bind = true): Promise<PayingViewer> =>
    PayingViewer.open({ trackerUrl: tracker.url, swarmId: swarmIdFromUrl(`${scope}index.m3u8`), relayId: relay.relayId, settlerUrl: settler.url, scope, bind });

  it('redeems the receipts a relay stored before a kill -9 exactly once; a second redeem pays nothing', { timeout: 180_000 }, async () => {
    const statusPort = await freePort();
    const relay = await startPaidRelay(statusPort);
    const a = await viewer(relay);
    const b = await viewer(relay);
    expect((await a.fetch(segUrl)).type).toBe(FrameType.END);
    expect((await a.fetch(segUrl)).type).toBe(FrameType.END);
    expect((await b.fetch(segUrl)).type).toBe(FrameType.END);
    const owed = a.sendReceipt() + b.sendReceipt();
    expect(owed).toBe(BigInt(3 * SEG_BYTES));
    await waitFor('both receipts stored', async () => (await receiptsAccepted(statusPort)) === 2 || undefined);
    expect([...a.channelErrors, ...b.channelErrors]).toEqual([]);
    a.close();
    b.close();
    await relay.stop('SIGKILL');
    await waitFor('the tracker to drop the killed relay', async () => !(await tracker.relayIds()).includes(relayId) || undefined);
    // The receipt database and its WAL are private to the relay's user.
    for (const f of [relayDb, `${relayDb}-wal`]) expect((await stat(f)).mode & 0o777, f).toBe(0o600);

    // Restarted on the same database, the relay still holds both receipts, not yet credited by the settler.
    const restartedPort = await freePort();
    const restarted = await startPaidRelay(restartedPort);
    try {
      expect(await relayPayments(restartedPort)).toMatchObject({ receipts: 2, receipted: owed.toString(), earned: '0', unpaid: '0', paid: '0' });
    } finally {
      await restarted.stop();
    }

    const before = await tokenBalance(setup, relayId);
    const first = await relayRedeem(redeemArgs(settler.url));
    expect(first.code, first.stderr).toBe(0);
    expect(first.out).toMatchObject({ relayId, amount: owed.toString() });
    const after = await tokenBalance(setup, relayId);
    expect(after - before).toBe(owed);
    expect((first.out?.['payers'] as { balance?: string }[])[0]?.balance).toBe(after.toString());

    const second = await relayRedeem(redeemArgs(settler.url));
    expect(second.code, second.stderr).toBe(0);
    expect(second.out).toMatchObject({ amount: '0' });
    expect(await tokenBalance(setup, relayId)).toBe(after);
  });

  it(
    'never pays twice when the settler dies after building (and submitting) a payout and before the relay got it; the relay finds it by id',
    { timeout: 180_000 },
    async () => {
      const statusPort = await freePort();
      const relay = await startPaidRelay(statusPort);
      const c = await viewer(relay);
      expect((await c.fetch(segUrl)).type).toBe(FrameType.END);
      const owed = c.sendReceipt();
      await waitFor('the receipt stored', async () => (await receiptsAccepted(statusPort)) === 1 || undefined);
      c.close();
      const before = await tokenBalance(setup, relayId);

      // The settler builds, records and submits the payout (the treasury pays its fee), then dies
      // before its answer reaches the relay.
      proxy.target = settler.url;
      proxy.afterRedeemAnswer = async () => {
        await settler.proc.stop('SIGKILL');
        return 'drop';
      };
      const failed = await relayRedeem(redeemArgs(proxy.url));
      expect(failed.code).toBe(1);
      expect((failed.out?.['payers'] as { error?: { code: string } }[])[0]?.error?.code).toBe(ErrorCode.SETTLEMENT_UNAVAILABLE);
      // It may have landed already; never more than once.
      expect((await tokenBalance(setup, relayId)) - before).toBeLessThanOrEqual(owed);

      settler = await startSettlerProcess(setup, settlerDb, PRICE_PER_GIB, { trustedTrackers: [trackerKey] });
      proxy.target = settler.url;
      const retried = await relayRedeem(redeemArgs(proxy.url));
      expect(retried.code, retried.stderr).toBe(0);
      expect(retried.out).toMatchObject({ amount: owed.toString() });
      expect((await tokenBalance(setup, relayId)) - before).toBe(owed);

      const again = await relayRedeem(redeemArgs(proxy.url));
      expect(again.out).toMatchObject({ amount: '0' });
      expect((await tokenBalance(setup, relayId)) - before).toBe(owed);
      const status = (await (await fetch(`${settler.url}${relayStatusPath(relayId)}`)).json()) as { owed: string; pending: unknown };
      expect(status).toMatchObject({ owed: '0', pending: null });
      await relay.stop();
    },
  );

  /** A relay's store holding one receipt of `bytes` from a fresh session granted by the settler and assigned to the relay by the tracker. */
  async function storeWithReceipt(
    keypairPath: string,
    bytes: number,
  ): Promise<{ store: ReceiptStore; redeemer: () => Redeemer; owed: bigint; relayId: string }> {
    const id = await setUpRelayWallet(setup, keypairPath);
    const keypair = await loadKeypair(keypairPath);
    const store = ReceiptStore.open({ path: join(dir, `${id}.sqlite`), relayId: id }, keypair.publicKey);
    const key = generateKeyPairSync('ed25519').privateKey;
    const got = await requestGrant(settler.url, key, scope);
    const grant = decodeSignedGrant(got.grant as Uint8Array);
    const trackerSigner = await loadKeypair(join(dir, 'tracker.json'));
    const assignment: Assignment = {
      version: ASSIGNMENT_VERSION,
      tracker: trackerSigner.publicKey,
      sessionKey: grant.grant.sessionKey,
      relay: keypair.publicKey,
      issuedAtMs: Date.now(),
    };
    const signedAssignment = encodeSignedAssignment({ assignment, signature: trackerSigner.sign(assignmentSigningBytes(assignment)) });
    const owed = amountForBytes(bytes, grant.grant.pricePerGiB);
    const receipt = {
      version: 1 as const,
      grantNonce: grant.grant.nonce,
      sessionKey: grant.grant.sessionKey,
      relay: keypair.publicKey,
      sequence: 1,
      cumulativeBytes: bytes,
      cumulativeAmount: owed,
      timestampMs: Date.now(),
    };
    store.putGrant(grant, settler.payer, got.grant as Uint8Array, signedAssignment);
    store.putReceipt(receipt, settler.payer, encodeSignedReceipt(signReceipt(receipt, key)));
    const redeemer = (): Redeemer =>
      new Redeemer({ store, signer: keypair, payers: new Map([[settler.payer, settler.url]]), rpcUrl: setup.rpcUrl, retryMinMs: 50 });
    return { store, redeemer, owed, relayId: id };
  }

  /** Runs a redemption that "crashes" right after the payout was recorded, before the relay saw it confirmed. */
  async function crashAfterRecording(r: Redeemer): Promise<void> {
    const crash = new AbortController();
    const conn = (r as unknown as { connection: { getSignatureStatuses: () => Promise<never> } }).connection;
    conn.getSignatureStatuses = () => {
      crash.abort();
      return new Promise<never>(() => undefined);
    };
    await expect(r.redeem(crash.signal)).rejects.toMatchObject({ code: ErrorCode.ABORTED });
  }

  it(
    'after a crash between recording a payout and seeing it confirmed, a restart resolves it by id (resubmitting the same bytes) and pays once',
    { timeout: 180_000 },
    async () => {
      const one = await storeWithReceipt(join(dir, 'relay-r1.json'), 150_000);
      await crashAfterRecording(one.redeemer());
      const pending = one.store.pendingPayouts(settler.payer);
      expect(pending.map((p) => p.amount)).toEqual([one.owed]);
      // What the relay recorded is the settler's transaction, fully signed by the treasury (its fee payer).
      const tx = Transaction.from(pending[0]?.transaction as Uint8Array);
      expect(tx.feePayer?.toBase58()).toBe(settler.payer);
      expect(tx.verifySignatures(true)).toBe(true);
      const resumed = await one.redeemer().redeem(AbortSignal.timeout(60_000));
      expect(resumed.amount).toBe(one.owed.toString());
      expect(resumed.payers[0]?.payouts.map((p) => p.signature)).toEqual([pending[0]?.signature]);
      expect(await tokenBalance(setup, one.relayId)).toBe(one.owed);
      expect((await one.redeemer().redeem(AbortSignal.timeout(60_000))).amount).toBe('0');
      expect(await tokenBalance(setup, one.relayId)).toBe(one.owed);
      expect(one.store.totals(settler.payer)).toMatchObject({ receipted: one.owed, earned: one.owed, paid: one.owed, shortfall: 0n });
      one.store.close();
    },
  );

  it('redeems on its own once owed passes --redeem-threshold, and shows it on /status', { timeout: 180_000 }, async () => {
    const keypair = join(dir, 'relay-auto', 'relay.json');
    await mkdir(join(dir, 'relay-auto'));
    const id = await setUpRelayWallet(setup, keypair);
    const statusPort = await freePort();
    const relay = await startRelayProcess(tracker, {
      keypair,
      allowOrigin: [scope],
      extra: [
        '--accept-payer',
        `${settler.payer}=${settler.url}`,
        '--rpc-url',
        setup.rpcUrl,
        '--redeem-threshold',
        String(SEG_BYTES + 1),
        '--redeem-interval-ms',
        '300',
        '--status-port',
        String(statusPort),
      ],
    });
    const v = await viewer(relay);
    expect((await v.fetch(segUrl)).type).toBe(FrameType.END);
    v.sendReceipt();
    await waitFor('the first receipt', async () => (await receiptsAccepted(statusPort)) === 1 || undefined);
    // Below the threshold: nothing is redeemed.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await tokenBalance(setup, id)).toBe(0n);
    expect((await v.fetch(segUrl)).type).toBe(FrameType.END);
    const owed = v.sendReceipt();
    await waitFor('the automatic payout', async () => (await tokenBalance(setup, id)) === owed || undefined, 60_000, 500);
    // The balance moves when the payout lands; the relay records it once it sees the confirmation,
    // a moment later.
    const readPayments = (): Promise<Record<string, unknown>> => relayPayments(statusPort);
    const payments = await waitFor(
      'the relay to record the payout',
      async () => ((await readPayments())['pending'] === '0' ? await readPayments() : undefined),
      20_000,
      200,
    );
    expect(payments).toMatchObject({ receipts: 1, earned: owed.toString(), paid: owed.toString(), unpaid: '0', pending: '0' });
    v.close();
    await relay.stop();
    // The default database sits beside the keypair.
    const store = ReceiptStore.open({ path: join(dir, 'relay-auto', 'relay-receipts.sqlite'), relayId: id }, decodeBase58(id));
    expect(store.paidToDate(settler.payer)).toBe(owed);
    store.close();
  });
});
