import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { amountForBytes, swarmIdFromUrl } from '@relaycast/protocol';
import { SETTLER_PATHS } from '@relaycast/protocol/settlement';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mediaPlaylist, variantUrls } from './helpers/hls.js';
import { cachedVod, linkVod } from './helpers/media.js';
import { nodeClient } from './helpers/node-client.js';
import { startOrigin, type OriginServer } from './helpers/origin-server.js';
import { redeemPaidRelay, startPaidNetwork, startPaidRelay, type PaidNetwork, type PaidRelay } from './helpers/paid-network.js';
import { tokenBalance, type PaymentSetup, type SettlerProc } from './helpers/payments-world.js';
import { stopAll, type TrackerProc } from './helpers/processes.js';

/** 1,000 tokens (6 decimals) per GiB: a 24 s VOD is worth a few tokens, exact to the base unit. */
const PRICE_PER_GIB = 1_000n * 10n ** 6n;

/**
 * Issue "viewers sign receipts for verified bytes; relays redeem them on Solana": a real SDK client
 * with a session grant from the settlement service streams a VOD through two relay processes,
 * signing receipts as it verifies bytes; each relay redeems through `relaycast-relay redeem`
 * against the embedded chain's RPC URL. Every party is its own process over loopback.
 */
describe('payments end to end', () => {
  let dir: string;
  let origin: OriginServer;
  let tracker: TrackerProc;
  let setup: PaymentSetup;
  let settler: SettlerProc;
  let net: PaidNetwork;
  const relays: PaidRelay[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-payments-'));
    await linkVod(await cachedVod({ format: 'ts', durationSec: 24 }), join(dir, 'media', 'vod'));
    origin = await startOrigin(dir);
    // The settler pays only sessions this tracker assigned; the tracker binds sessions of this settler's grants.
    net = await startPaidNetwork(dir, PRICE_PER_GIB);
    ({ setup, settler, tracker } = net);
    // No --rpc-url: receipts are kept and redeemed only by the explicit `relaycast-relay redeem` below.
    for (const name of ['a', 'b']) relays.push(await startPaidRelay(net, dir, `relay-${name}`, { allowOrigin: [`${origin.url}media/`] }));
  });

  afterAll(async () => {
    await stopAll();
    await origin?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  const redeem = (r: PaidRelay): ReturnType<typeof redeemPaidRelay> => redeemPaidRelay(net, r);

  it('pays each relay exactly its verified bytes × price, takes the sum from the treasury, and pays nothing twice', async () => {
    const master = `${origin.url}media/vod/master.m3u8`;
    const variants = variantUrls(await (await fetch(master)).text(), master);
    const client = nodeClient({
      trackerUrl: tracker.url,
      swarmId: swarmIdFromUrl(master),
      maxRelays: 2,
      payments: { grantUrl: `${settler.url}${SETTLER_PATHS.grants}` },
    });
    const treasuryBefore = await tokenBalance(setup, settler.payer);
    const before = await Promise.all(relays.map((r) => tokenBalance(setup, r.proc.relayId)));
    try {
      await client.start();
      expect(client.relays).toHaveLength(2);
      await waitForGrant(client);
      for (const variant of variants) {
        const segments = mediaPlaylist(await (await fetch(variant)).text(), variant).segments;
        // Two at a time, so both warm relays serve (the SDK picks the one with fewer in flight).
        for (let i = 0; i < segments.length; i += 2) {
          const pair = segments.slice(i, i + 2);
          const results = await Promise.all(pair.map((url) => client.loadSegment({ url, playlistUrl: variant })));
          for (const [j, url] of pair.entries()) {
            expect(Buffer.compare(Buffer.from((results[j] as { data: Uint8Array }).data), await readFile(join(dir, new URL(url).pathname))), url).toBe(0);
          }
        }
      }
      // Receipts are sent asynchronously after each verified segment: let the last ones land.
      await new Promise((r) => setTimeout(r, 1_000));
    } finally {
      await client.close();
    }
    const stats = client.getStats();
    const verified = relays.map((r) => stats.perRelay[r.proc.relayId]?.bytesVerified ?? 0);
    expect(verified.every((v) => v > 0)).toBe(true);
    expect(stats.payments?.bytesReceipted).toBe(verified.reduce((a, b) => a + b, 0));

    const expected = verified.map((v) => amountForBytes(v, PRICE_PER_GIB));
    for (const [i, r] of relays.entries()) {
      const out = await redeem(r);
      expect(out.code, out.stderr).toBe(0);
      const after = await tokenBalance(setup, r.proc.relayId);
      // Exactly floor(cumulative verified bytes × price / 2^30): docs/PAYMENTS.md, rounding rule.
      expect(after - (before[i] as bigint)).toBe(expected[i]);
    }
    const treasuryAfter = await tokenBalance(setup, settler.payer);
    expect(treasuryBefore - treasuryAfter).toBe((expected[0] as bigint) + (expected[1] as bigint));

    // A second redeem with nothing new pays nothing.
    for (const [i, r] of relays.entries()) {
      const again = await redeem(r);
      expect(again.code, again.stderr).toBe(0);
      expect(await tokenBalance(setup, r.proc.relayId)).toBe((before[i] as bigint) + (expected[i] as bigint));
    }
    expect(await tokenBalance(setup, settler.payer)).toBe(treasuryAfter);
  });
});

async function waitForGrant(client: { getStats(): { payments: unknown } }): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (client.getStats().payments === undefined) {
    if (Date.now() > deadline) throw new Error('no session grant within 15 s');
    await new Promise((r) => setTimeout(r, 100));
  }
}
