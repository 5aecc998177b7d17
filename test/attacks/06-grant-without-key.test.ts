/**
 * Finding 6 (issue 14): "A grant is bound without proof of the session key." A party that saw a
 * viewer's grant (a malicious relay it bound with, a logged request) opened a new channel, took
 * 32 MiB unpaid, then presented the victim's grant: the victim was charged and then refused. A
 * second grant for the victim's key with another scope did the same. Replayed over real processes
 * (chain, settler, tracker, relay, origin): the thief gets only the unbound allowance, its BIND with
 * the victim's grant and assignment fails with RC_ERR_BIND_PROOF (its own signature, or the
 * victim's proof replayed from another channel), the victim is charged nothing of it, the settler
 * refuses a second grant for the victim's key (RC_ERR_GRANT_LIVE_EXISTS), and the victim beside it
 * is served and its relay paid exactly verified bytes × price.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, FrameType, decodeBase58, encodeBase58, encodeFrame, swarmIdFromUrl, type RelayFrame } from '@relaycast/protocol';
import { signBindProof } from '@relaycast/protocol/node';
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
/** The relay's unbound allowance: what any channel may take before it proves a session key. */
const UNBOUND = 250_000;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', () => resolve()));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('attack 06: a grant binds only with its session key', () => {
  let dir: string;
  let origin: OriginServer;
  let setup: PaymentSetup;
  let settler: SettlerProc;
  let tracker: TrackerProc;
  let relay: RelayProc;
  let keypair: string;
  let db: string;
  let statusPort: number;
  let scope: string;
  const segs: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack-06-'));
    await mkdir(join(dir, 'media'));
    for (let i = 0; i < 4; i++) await writeFile(join(dir, 'media', `seg${i}.ts`), randomBytes(SEG_BYTES));
    origin = await startOrigin(dir);
    scope = `${origin.url}media/`;
    for (let i = 0; i < 4; i++) segs.push(`${scope}seg${i}.ts`);
    const chain = await startChainProcess(100);
    setup = await setUpTreasury(chain.rpcUrl, dir, 1_000);
    const trackerKey = await trackerKeyFile(setup, join(dir, 'tracker.json'));
    settler = await startSettlerProcess(setup, join(dir, 'settler.sqlite'), PRICE_PER_GIB, { trustedTrackers: [trackerKey] });
    tracker = await startTrackerProcess(['--key', join(dir, 'tracker.json'), '--trusted-payer', settler.payer]);
    await mkdir(join(dir, 'relay'));
    keypair = join(dir, 'relay', 'relay.json');
    await setUpRelayWallet(setup, keypair);
    db = join(dir, 'relay', 'receipts.sqlite');
    statusPort = await freePort();
    relay = await startRelayProcess(tracker, {
      keypair,
      allowOrigin: [scope],
      extra: ['--accept-payer', `${settler.payer}=${settler.url}`, '--db', db, '--status-port', String(statusPort), '--unbound-credit-bytes', String(UNBOUND)],
    });
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  async function payments(): Promise<Record<string, unknown>> {
    return ((await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { payments: Record<string, unknown> }).payments;
  }

  it('the thief gets the unbound allowance only, cannot bind the victim’s grant (RC_ERR_BIND_PROOF) nor get a second grant for its key (RC_ERR_GRANT_LIVE_EXISTS); the victim owes nothing of it and its relay is paid exactly', { timeout: 240_000 }, async () => {
    const swarmId = swarmIdFromUrl(`${scope}index.m3u8`);
    const victim = await PayingViewer.open({ trackerUrl: tracker.url, swarmId, relayId: relay.relayId, settlerUrl: settler.url, scope });
    expect((await victim.fetch(segs[0] as string)).type).toBe(FrameType.END);
    victim.sendReceipt();
    await waitFor('the victim’s receipt', async () => Number((await payments())['receiptsAccepted']) === 1 || undefined);

    // The thief: an anonymous channel to the same relay. It has seen everything the victim sends
    // anyone: its grant, the tracker's assignment of it to this relay, its BIND proof (signed over
    // the victim's own channel's challenge). Not the session key.
    const thief = await PayingViewer.anonymous({ trackerUrl: tracker.url, swarmId, relayId: relay.relayId });
    const frames: RelayFrame[] = [];
    let nextId = 1;
    const request = async (url: string): Promise<RelayFrame> => {
      const id = nextId++;
      thief.send(encodeFrame({ type: FrameType.REQUEST, requestId: id, url }));
      for (;;) {
        const f = await thief.nextFrame(20_000);
        frames.push(f);
        if (f.requestId === id && (f.type === FrameType.END || f.type === FrameType.ERROR || f.type === FrameType.ABSENT)) return f;
      }
    };
    const channelErrors = (): string[] => frames.flatMap((f) => (f.type === FrameType.ERROR && f.requestId === 0 ? [f.code] : []));
    // The unbound allowance (250,000): three segments, then refused.
    for (let i = 0; i < 3; i++) expect((await request(segs[i] as string)).type).toBe(FrameType.END);
    expect(await request(segs[3] as string)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });

    // Presents the victim's grant and assignment with its own signature over its challenge...
    const relayKey = decodeBase58(relay.relayId);
    const forged = signBindProof(thief.challenge, relayKey, generateKeyPairSync('ed25519').privateKey);
    thief.send(encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: victim.grantBytes, signedAssignment: victim.channel.assignment, proof: forged }));
    // ... and with the victim's real proof, replayed from the victim's channel.
    const replayed = signBindProof(victim.challenge as Uint8Array, relayKey, victim.key);
    thief.send(encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: victim.grantBytes, signedAssignment: victim.channel.assignment, proof: replayed }));
    // Still unbound: refused.
    expect(await request(segs[0] as string)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
    expect(channelErrors()).toEqual([ErrorCode.BIND_PROOF, ErrorCode.BIND_PROOF]);
    const afterTheft = await payments();
    expect(afterTheft).toMatchObject({ bindsAccepted: 1, unreceiptedBytes: 0 });
    expect((afterTheft['refusedByCode'] as Record<string, number>)[ErrorCode.BIND_PROOF]).toBe(2);

    // A second grant for the victim's key (another scope) is refused by the settler.
    const second = await fetch(`${settler.url}/v1/grants`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sessionKey: encodeBase58(victim.grant.grant.sessionKey), scope: `${origin.url}other/` }),
    });
    expect(second.status).toBe(409);
    expect(((await second.json()) as { error: { code: string } }).error.code).toBe(ErrorCode.GRANT_LIVE_EXISTS);

    // The thief's channel closes unbound: its bytes are the relay's cost of the allowance, nobody's debt.
    thief.close();
    await waitFor('the thief’s bytes forgiven', async () => Number((await payments())['unboundBytesForgiven']) === 3 * SEG_BYTES || undefined);

    // The victim is served on, owes only its own bytes, and its relay is paid exactly them.
    expect((await victim.fetch(segs[1] as string)).type).toBe(FrameType.END);
    expect((await victim.fetch(segs[2] as string)).type).toBe(FrameType.END);
    const owed = victim.sendReceipt();
    expect(owed).toBe(BigInt(3 * SEG_BYTES));
    await waitFor('the victim’s second receipt', async () => Number((await payments())['receiptsAccepted']) === 2 || undefined);
    expect(victim.channelErrors).toEqual([]);
    victim.close();
    const res = await relayRedeem(['--keypair', keypair, '--db', db, '--rpc-url', setup.rpcUrl, '--accept-payer', `${settler.payer}=${settler.url}`]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.out).toMatchObject({ amount: owed.toString() });
    expect(await tokenBalance(setup, relay.relayId)).toBe(owed);
    expect(await payments()).toMatchObject({ receipted: owed.toString(), earned: owed.toString(), paid: owed.toString(), shortfall: '0' });
  });
});
