import { generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ErrorCode,
  FrameType,
  amountForBytes,
  decodeBase58,
  decodeSignedGrant,
  encodeBase58,
  encodeFrame,
  encodeSignedReceipt,
  fromBase64,
  swarmIdFromUrl,
  type RelayFrame,
  type SignedGrant,
} from '@relaycast/protocol';
import { rawPublicKey, signReceipt } from '@relaycast/protocol/node';
import { ReceiptStore, Redeemer, loadKeypair } from '@relaycast/relay';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import {
  blockHeight,
  relayRedeem,
  setUpRelayWallet,
  setUpTreasury,
  startChainProcess,
  startSettlerProcess,
  startSettlerProxy,
  tokenBalance,
  type PaymentSetup,
  type SettlerProc,
  type SettlerProxy,
} from './helpers/payments-world.js';
import { startRelayProcess, startTrackerProcess, waitFor, type RelayProc, type TrackerProc } from './helpers/processes.js';
import { useProcesses } from './helpers/use-processes.js';
import { openRawChannel, type RawChannel } from './helpers/raw-viewer.js';

/** One base unit per byte, so amounts read as byte counts. */
const PRICE_PER_GIB = 1n << 30n;
const SEG_BYTES = 200_000;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

/** A viewer session as the SDK runs it: a session key, a grant from the settler, running receipt totals. */
class PayingViewer {
  readonly key: KeyObject = generateKeyPairSync('ed25519').privateKey;
  grantBytes!: Uint8Array;
  grant!: SignedGrant;
  sequence = 0;
  bytes = 0;
  private nextId = 1;

  constructor(readonly channel: RawChannel) {}

  async obtainGrant(settlerUrl: string, scope: string): Promise<void> {
    const res = await fetch(`${settlerUrl}/v1/grants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessionKey: encodeBase58(rawPublicKey(this.key)), scope }),
    });
    expect(res.status).toBe(200);
    this.grantBytes = fromBase64(((await res.json()) as { grant: string }).grant) as Uint8Array;
    this.grant = decodeSignedGrant(this.grantBytes);
    this.channel.send(encodeFrame({ type: FrameType.GRANT, requestId: 0, signedGrant: this.grantBytes }));
  }

  /** Fetches `url` through the relay and returns the final frame; counts the DATA bytes. */
  async fetch(url: string): Promise<RelayFrame> {
    const id = this.nextId++;
    this.channel.send(encodeFrame({ type: FrameType.REQUEST, requestId: id, url }));
    for (;;) {
      const f = await this.channel.nextFrame(20_000);
      if (f.requestId === 0 && f.type === FrameType.ERROR) throw new Error(`relay refused a payment frame: ${f.code}`);
      if (f.requestId !== id) continue;
      if (f.type === FrameType.DATA) this.bytes += f.chunk.byteLength;
      if (f.type === FrameType.END || f.type === FrameType.ERROR || f.type === FrameType.ABSENT) return f;
    }
  }

  /** Signs and sends a receipt for everything received so far; returns its amount. */
  sendReceipt(relayId: string): bigint {
    this.sequence++;
    const cumulativeAmount = amountForBytes(this.bytes, this.grant.grant.pricePerGiB);
    const signed = signReceipt(
      {
        version: 1,
        grantNonce: this.grant.grant.nonce,
        sessionKey: this.grant.grant.sessionKey,
        relay: decodeBase58(relayId),
        sequence: this.sequence,
        cumulativeBytes: this.bytes,
        cumulativeAmount,
        timestampMs: Date.now(),
      },
      this.key,
    );
    this.channel.send(encodeFrame({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: encodeSignedReceipt(signed) }));
    return cumulativeAmount;
  }
}

describe('relay payments against the real settler and embedded chain', () => {
  useProcesses();
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let setup: PaymentSetup;
  let settler: SettlerProc;
  let proxy: SettlerProxy;
  let relayKeypair: string;
  let relayId: string;
  let relayDb: string;
  let settlerDb: string;
  let segUrl: string;
  let scope: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-relay-pay-'));
    await mkdir(join(dir, 'media'));
    await writeFile(join(dir, 'media', 'seg0.ts'), randomBytes(SEG_BYTES));
    origin = await startOrigin(dir);
    scope = `${origin.url}media/`;
    segUrl = `${scope}seg0.ts`;
    // 50 ms slots: a payout's blockhash expires after 150 slots, 7.5 s, so expiry can be tested.
    const chain = await startChainProcess(50);
    setup = await setUpTreasury(chain.rpcUrl, dir, 1_000);
    relayKeypair = join(dir, 'relay', 'relay.json');
    await mkdir(join(dir, 'relay'));
    relayId = await setUpRelayWallet(setup, relayKeypair);
    relayDb = join(dir, 'relay', 'receipts.sqlite');
    settlerDb = join(dir, 'settler.sqlite');
    settler = await startSettlerProcess(setup, settlerDb, PRICE_PER_GIB);
    proxy = await startSettlerProxy(settler.url);
    tracker = await startTrackerProcess();
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
    const s = (await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { payments?: { receiptsAccepted: number } };
    return s.payments?.receiptsAccepted ?? 0;
  }

  const redeemArgs = (settlerUrl: string): string[] => [
    '--keypair', relayKeypair,
    '--db', relayDb,
    '--rpc-url', setup.rpcUrl,
    '--accept-payer', `${settler.payer}=${settlerUrl}`,
  ];

  it('redeems the receipts a relay stored before a kill -9 exactly once; a second redeem pays nothing', { timeout: 180_000 }, async () => {
    const statusPort = await freePort();
    const relay = await startPaidRelay(statusPort);
    const swarmId = swarmIdFromUrl(`${scope}index.m3u8`);
    const a = new PayingViewer(await openRawChannel(tracker.url, swarmId, relay.relayId));
    const b = new PayingViewer(await openRawChannel(tracker.url, swarmId, relay.relayId));
    await a.obtainGrant(settler.url, scope);
    await b.obtainGrant(settler.url, scope);
    expect((await a.fetch(segUrl)).type).toBe(FrameType.END);
    expect((await a.fetch(segUrl)).type).toBe(FrameType.END);
    expect((await b.fetch(segUrl)).type).toBe(FrameType.END);
    const owed = a.sendReceipt(relayId) + b.sendReceipt(relayId);
    expect(owed).toBe(BigInt(3 * SEG_BYTES));
    await waitFor('both receipts stored', async () => (await receiptsAccepted(statusPort)) === 2 || undefined);
    a.channel.close();
    b.channel.close();
    await relay.stop('SIGKILL');
    await waitFor('the tracker to drop the killed relay', async () => !(await tracker.relayIds()).includes(relayId) || undefined);

    // Restarted on the same database, the relay still holds both receipts, unpaid.
    const restartedPort = await freePort();
    const restarted = await startPaidRelay(restartedPort);
    try {
      const status = (await (await fetch(`http://127.0.0.1:${restartedPort}/status`)).json()) as { payments: Record<string, unknown> };
      expect(status.payments).toMatchObject({ receipts: 2, earned: owed.toString(), unpaid: owed.toString(), paid: '0' });
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

  it('never pays twice when the settler dies after signing a payout and before the relay got it', { timeout: 180_000 }, async () => {
    const statusPort = await freePort();
    const relay = await startPaidRelay(statusPort);
    const c = new PayingViewer(await openRawChannel(tracker.url, swarmIdFromUrl(`${scope}index.m3u8`), relay.relayId));
    await c.obtainGrant(settler.url, scope);
    expect((await c.fetch(segUrl)).type).toBe(FrameType.END);
    const owed = c.sendReceipt(relayId);
    await waitFor('the receipt stored', async () => (await receiptsAccepted(statusPort)) === 1 || undefined);
    c.channel.close();
    const before = await tokenBalance(setup, relayId);

    // The settler signs and records the payout, then dies before its answer reaches the relay.
    proxy.target = settler.url;
    proxy.afterRedeemAnswer = async () => {
      await settler.proc.stop('SIGKILL');
      return 'drop';
    };
    const failed = await relayRedeem(redeemArgs(proxy.url));
    expect(failed.code).toBe(1);
    expect((failed.out?.['payers'] as { error?: { code: string } }[])[0]?.error?.code).toBe(ErrorCode.SETTLEMENT_UNAVAILABLE);
    expect(await tokenBalance(setup, relayId)).toBe(before);

    settler = await startSettlerProcess(setup, settlerDb, PRICE_PER_GIB);
    proxy.target = settler.url;
    const retried = await relayRedeem(redeemArgs(proxy.url));
    expect(retried.code, retried.stderr).toBe(0);
    expect(retried.out).toMatchObject({ amount: owed.toString() });
    expect((await tokenBalance(setup, relayId)) - before).toBe(owed);

    const again = await relayRedeem(redeemArgs(proxy.url));
    expect(again.out).toMatchObject({ amount: '0' });
    expect((await tokenBalance(setup, relayId)) - before).toBe(owed);
    const status = (await (await fetch(`${settler.url}/v1/relays/${relayId}`)).json()) as { owed: string; pending: unknown };
    expect(status).toMatchObject({ owed: '0', pending: null });
    await relay.stop();
  });

  /** A relay's store holding one receipt of `bytes` from a fresh session granted by the settler. */
  async function storeWithReceipt(keypairPath: string, bytes: number): Promise<{ store: ReceiptStore; redeemer: () => Redeemer; owed: bigint; relayId: string }> {
    const id = await setUpRelayWallet(setup, keypairPath);
    const keypair = await loadKeypair(keypairPath);
    const store = ReceiptStore.open({ path: join(dir, `${id}.sqlite`), relayId: id }, keypair.publicKey);
    const viewer = new PayingViewer({ send: () => undefined } as unknown as RawChannel);
    await viewer.obtainGrant(settler.url, scope);
    viewer.bytes = bytes;
    viewer.sequence = 1;
    const owed = amountForBytes(bytes, viewer.grant.grant.pricePerGiB);
    const receipt = { version: 1 as const, grantNonce: viewer.grant.grant.nonce, sessionKey: viewer.grant.grant.sessionKey, relay: keypair.publicKey, sequence: 1, cumulativeBytes: bytes, cumulativeAmount: owed, timestampMs: Date.now() };
    store.putGrant(viewer.grant, settler.payer, viewer.grantBytes);
    store.putReceipt(receipt, settler.payer, encodeSignedReceipt(signReceipt(receipt, viewer.key)));
    const redeemer = (): Redeemer => new Redeemer({ store, signer: keypair, payers: new Map([[settler.payer, settler.url]]), rpcUrl: setup.rpcUrl, retryMinMs: 50 });
    return { store, redeemer, owed, relayId: id };
  }

  /** Runs a redemption that "crashes" right after the payout was recorded and before it was sent. */
  async function crashBeforeSubmit(r: Redeemer): Promise<void> {
    const crash = new AbortController();
    const conn = (r as unknown as { connection: { sendRawTransaction: () => Promise<never> } }).connection;
    conn.sendRawTransaction = () => {
      crash.abort();
      return new Promise<never>(() => undefined);
    };
    await expect(r.redeem(crash.signal)).rejects.toMatchObject({ code: ErrorCode.ABORTED });
  }

  it('after a crash between recording and submitting, a restart resubmits the recorded payout (or redeems again once it expired) and pays once', { timeout: 180_000 }, async () => {
    // Resumed while the recorded payout is still valid.
    const one = await storeWithReceipt(join(dir, 'relay-r1.json'), 150_000);
    await crashBeforeSubmit(one.redeemer());
    const pending = one.store.pendingPayouts(settler.payer);
    expect(pending.map((p) => p.amount)).toEqual([one.owed]);
    expect(await tokenBalance(setup, one.relayId)).toBe(0n);
    const resumed = await one.redeemer().redeem(AbortSignal.timeout(60_000));
    expect(resumed.amount).toBe(one.owed.toString());
    expect(resumed.payers[0]?.payouts.map((p) => p.signature)).toEqual([pending[0]?.signature]);
    expect(await tokenBalance(setup, one.relayId)).toBe(one.owed);
    expect((await one.redeemer().redeem(AbortSignal.timeout(60_000))).amount).toBe('0');
    expect(await tokenBalance(setup, one.relayId)).toBe(one.owed);
    one.store.close();

    // Left until its blockhash expired unlanded: settled as expired, then redeemed again, once.
    const two = await storeWithReceipt(join(dir, 'relay-r2.json'), 170_000);
    await crashBeforeSubmit(two.redeemer());
    const stale = two.store.pendingPayouts(settler.payer)[0];
    expect(stale?.amount).toBe(two.owed);
    await waitFor('the recorded payout to expire', async () => (await blockHeight(setup.rpcUrl)) > (stale?.lastValidBlockHeight ?? 0) + 2 || undefined, 60_000, 200);
    const again = await two.redeemer().redeem(AbortSignal.timeout(60_000));
    expect(again.amount).toBe(two.owed.toString());
    expect(again.payers[0]?.payouts.map((p) => p.signature)).not.toContain(stale?.signature);
    expect(two.store.payout(stale?.signature ?? '')?.status).toBe('expired');
    expect(await tokenBalance(setup, two.relayId)).toBe(two.owed);
    expect((await two.redeemer().redeem(AbortSignal.timeout(60_000))).amount).toBe('0');
    two.store.close();
  });

  it('redeems on its own once owed passes --redeem-threshold, and shows it on /status', { timeout: 180_000 }, async () => {
    const keypair = join(dir, 'relay-auto', 'relay.json');
    await mkdir(join(dir, 'relay-auto'));
    const id = await setUpRelayWallet(setup, keypair);
    const statusPort = await freePort();
    const relay = await startRelayProcess(tracker, {
      keypair,
      allowOrigin: [scope],
      extra: [
        '--accept-payer', `${settler.payer}=${settler.url}`,
        '--rpc-url', setup.rpcUrl,
        '--redeem-threshold', String(SEG_BYTES + 1),
        '--redeem-interval-ms', '300',
        '--status-port', String(statusPort),
      ],
    });
    const v = new PayingViewer(await openRawChannel(tracker.url, swarmIdFromUrl(`${scope}index.m3u8`), relay.relayId));
    await v.obtainGrant(settler.url, scope);
    expect((await v.fetch(segUrl)).type).toBe(FrameType.END);
    v.sendReceipt(id);
    await waitFor('the first receipt', async () => (await receiptsAccepted(statusPort)) === 1 || undefined);
    // Below the threshold: nothing is redeemed.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await tokenBalance(setup, id)).toBe(0n);
    expect((await v.fetch(segUrl)).type).toBe(FrameType.END);
    const owed = v.sendReceipt(id);
    await waitFor('the automatic payout', async () => (await tokenBalance(setup, id)) === owed || undefined, 60_000, 500);
    // The balance moves when the payout lands; the relay records it once it sees the confirmation,
    // a moment later.
    const readPayments = async (): Promise<Record<string, unknown>> =>
      ((await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { payments: Record<string, unknown> }).payments;
    const payments = await waitFor('the relay to record the payout', async () => ((await readPayments())['pending'] === '0' ? await readPayments() : undefined), 20_000, 200);
    expect(payments).toMatchObject({ receipts: 1, earned: owed.toString(), paid: owed.toString(), unpaid: '0', pending: '0' });
    v.channel.close();
    await relay.stop();
    // The default database sits beside the keypair.
    const store = ReceiptStore.open({ path: join(dir, 'relay-auto', 'relay-receipts.sqlite'), relayId: id }, decodeBase58(id));
    expect(store.paidToDate(settler.payer)).toBe(owed);
    store.close();
  });
});
