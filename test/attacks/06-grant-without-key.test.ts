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
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ErrorCode, FrameType, decodeBase58, encodeBase58, encodeFrame, swarmIdFromUrl, type RelayFrame } from '@relaycast/protocol';
import { signBindProof } from '@relaycast/protocol/node';
import { SETTLER_PATHS } from '@relaycast/protocol/settlement';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRandomSegmentOrigin, type OriginServer } from '../helpers/origin-server.js';
import { redeemPaidRelay, relayPayments, startPaidNetwork, startPaidRelay, type PaidNetwork, type PaidRelay } from '../helpers/paid-network.js';
import { PayingViewer } from '../helpers/paying-viewer.js';
import { tokenBalance } from '../helpers/payments-world.js';
import { stopAll, waitFor } from '../helpers/processes.js';

/** One base unit per byte: amounts read as byte counts. */
const PRICE_PER_GIB = 1n << 30n;
const SEG_BYTES = 100_000;
/** The relay's unbound allowance: what any channel may take before it proves a session key. */
const UNBOUND = 250_000;

describe('attack 06: a grant binds only with its session key', () => {
  let dir: string;
  let origin: OriginServer;
  let net: PaidNetwork;
  let relay: PaidRelay;
  let scope: string;
  let segs: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack-06-'));
    ({ origin, scope, segs } = await startRandomSegmentOrigin(dir, 4, SEG_BYTES));
    net = await startPaidNetwork(dir, PRICE_PER_GIB, { slotMs: 100 });
    relay = await startPaidRelay(net, dir, 'relay', { allowOrigin: [scope], extra: ['--unbound-credit-bytes', String(UNBOUND)] });
  }, 180_000);

  afterAll(async () => {
    await stopAll();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const payments = (): Promise<Record<string, unknown>> => relayPayments(relay.statusPort);

  it(
    'the thief gets the unbound allowance only, cannot bind the victim’s grant (RC_ERR_BIND_PROOF) nor get a second grant for its key (RC_ERR_GRANT_LIVE_EXISTS); the victim owes nothing of it and its relay is paid exactly',
    { timeout: 240_000 },
    async () => {
      const swarmId = swarmIdFromUrl(`${scope}index.m3u8`);
      const victim = await PayingViewer.open({ trackerUrl: net.tracker.url, swarmId, relayId: relay.id, settlerUrl: net.settler.url, scope });
      expect((await victim.fetch(segs[0] as string)).type).toBe(FrameType.END);
      victim.sendReceipt();
      await waitFor('the victim’s receipt', async () => Number((await payments())['receiptsAccepted']) === 1 || undefined);

      // The thief: an anonymous channel to the same relay. It has seen everything the victim sends
      // anyone: its grant, the tracker's assignment of it to this relay, its BIND proof (signed over
      // the victim's own channel's challenge). Not the session key.
      const thief = await PayingViewer.anonymous({ trackerUrl: net.tracker.url, swarmId, relayId: relay.id });
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
      const relayKey = decodeBase58(relay.id);
      const forged = signBindProof(thief.challenge, relayKey, generateKeyPairSync('ed25519').privateKey);
      thief.send(
        encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: victim.grantBytes, signedAssignment: victim.channel.assignment, proof: forged }),
      );
      // ... and with the victim's real proof, replayed from the victim's channel.
      const replayed = signBindProof(victim.challenge as Uint8Array, relayKey, victim.key);
      thief.send(
        encodeFrame({ type: FrameType.BIND, requestId: 0, signedGrant: victim.grantBytes, signedAssignment: victim.channel.assignment, proof: replayed }),
      );
      // Still unbound: refused.
      expect(await request(segs[0] as string)).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CREDIT_EXCEEDED });
      expect(channelErrors()).toEqual([ErrorCode.BIND_PROOF, ErrorCode.BIND_PROOF]);
      const afterTheft = await payments();
      expect(afterTheft).toMatchObject({ bindsAccepted: 1, unreceiptedBytes: 0 });
      expect((afterTheft['refusedByCode'] as Record<string, number>)[ErrorCode.BIND_PROOF]).toBe(2);

      // A second grant for the victim's key (another scope) is refused by the settler.
      const second = await fetch(`${net.settler.url}${SETTLER_PATHS.grants}`, {
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
      const res = await redeemPaidRelay(net, relay);
      expect(res.code, res.stderr).toBe(0);
      expect(res.out).toMatchObject({ amount: owed.toString() });
      expect(await tokenBalance(net.setup, relay.id)).toBe(owed);
      expect(await payments()).toMatchObject({ receipted: owed.toString(), earned: owed.toString(), paid: owed.toString(), shortfall: '0' });
    },
  );
});
