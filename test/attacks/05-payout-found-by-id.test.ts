import { sign } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { amountForBytes } from '@relaycast/protocol';
import { privateKeyFromSeed } from '@relaycast/protocol/node';
import { relayStatusPath } from '@relaycast/protocol/settlement';
import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Connection, Keypair, LAMPORTS_PER_SOL, PublicKey, SystemProgram, Transaction } from '@solana/web3.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSettlerForTestRelay } from '../helpers/paid-network.js';
import { startRpcProxy } from '../helpers/rpc-proxy.js';
import {
  assignmentB64,
  newIdentity,
  receiptB64,
  redeemAs,
  requestGrantAt,
  rpc,
  tokenBalance,
  waitForPayout,
  type PaymentSetup,
  type SettlerProc,
  type TestIdentity,
} from '../helpers/payments-world.js';
import { stopAll, waitFor } from '../helpers/processes.js';

/** One base unit per byte: amounts read as byte counts. */
const PRICE_PER_GIB = 1n << 30n;
/** The old resolver scanned this many newest entries of the relay's token account. */
const OLD_SCAN_BOUND = 10_000;
const SPAM = OLD_SCAN_BOUND + 500;

/**
 * A JSON-RPC proxy in front of the chain for the settler alone: it counts methods (a history
 * scan would show as getSignaturesForAddress) and can black out sends and status lookups, so the
 * settler records a payout it cannot see land until the attacker has buried it.
 */
async function settlerRpc(target: string): Promise<{ url: string; calls: Map<string, number>; blackout: boolean; close(): Promise<void> }> {
  const state = { url: '', calls: new Map<string, number>(), blackout: false, close: (): Promise<void> => Promise.resolve() };
  const proxy = await startRpcProxy(target, (body) => {
    const calls = ([] as { method?: string }[]).concat(JSON.parse(body.toString()) as { method?: string });
    for (const c of calls) state.calls.set(c.method ?? '?', (state.calls.get(c.method ?? '?') ?? 0) + 1);
    return state.blackout && calls.some((c) => c.method === 'sendTransaction' || c.method === 'getSignatureStatuses') ? 'fail' : undefined;
  });
  state.url = proxy.url;
  state.close = proxy.close;
  return state;
}

/**
 * Lands `count` real transactions on `target` (a token account): each a tiny system transfer of a
 * few lamports to it (a different amount each, so each is a distinct transaction), which anyone
 * can send to a relay's predictable associated token account. One message template, patched and
 * signed with node:crypto, sent in JSON-RPC batches.
 */
async function spam(rpcUrl: string, target: PublicKey, count: number): Promise<void> {
  const connection = new Connection(rpcUrl, 'confirmed');
  const spammer = Keypair.generate();
  await connection.confirmTransaction(await connection.requestAirdrop(spammer.publicKey, 100 * LAMPORTS_PER_SOL), 'confirmed');
  const key = privateKeyFromSeed(spammer.secretKey.subarray(0, 32));
  const MARK = 0x7a69_0000;
  let sent = 0;
  while (sent < count) {
    // A fresh blockhash per chunk keeps every transaction well inside its validity window.
    const { blockhash } = await connection.getLatestBlockhash('confirmed');
    const tx = new Transaction({ feePayer: spammer.publicKey, recentBlockhash: blockhash }).add(
      SystemProgram.transfer({ fromPubkey: spammer.publicKey, toPubkey: target, lamports: MARK }),
    );
    const message = tx.serializeMessage();
    // The system transfer's data: u32 instruction 2, then the u64 lamports; patch the amount.
    const mark = Buffer.alloc(8);
    mark.writeBigUInt64LE(BigInt(MARK));
    const at = message.indexOf(mark);
    const chunkEnd = Math.min(count, sent + 2_000);
    const wires: string[] = [];
    for (let i = sent; i < chunkEnd; i++) {
      message.writeBigUInt64LE(BigInt(i + 1), at);
      wires.push(Buffer.concat([Buffer.of(1), sign(null, message, key), message]).toString('base64'));
    }
    let pending = wires;
    while (pending.length > 0) {
      const retry: string[] = [];
      for (let b = 0; b < pending.length; b += 64) {
        const batch = pending.slice(b, b + 64);
        const res = await fetch(rpcUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(
            batch.map((w, id) => ({ jsonrpc: '2.0', id, method: 'sendTransaction', params: [w, { encoding: 'base64', skipPreflight: true }] })),
          ),
        });
        if (res.status !== 200) {
          retry.push(...batch);
          continue;
        }
        const answers = (await res.json()) as { id: number; error?: { message: string } }[];
        for (const a of answers) if (a.error !== undefined && !/already/i.test(a.error.message)) retry.push(batch[a.id]!);
      }
      if (retry.length > 0) await new Promise((r) => setTimeout(r, 250));
      pending = retry;
    }
    sent = chunkEnd;
  }
}

/** Entries of `address`'s history newer than `signature` (paged like the old resolver, up to `max`). */
async function entriesAfter(rpcUrl: string, address: string, signature: string, max: number): Promise<number> {
  let before: string | undefined;
  let n = 0;
  for (;;) {
    const page = await rpc<{ signature: string }[]>(rpcUrl, 'getSignaturesForAddress', [address, { limit: 1_000, ...(before ? { before } : {}) }]);
    for (const e of page) {
      if (e.signature === signature) return n;
      if (++n > max) return n;
    }
    if (page.length < 1_000) return n;
    before = page[page.length - 1]!.signature;
  }
}

describe('attack 5: a payout buried under spam on the relay’s token account', () => {
  let dir: string;
  let setup: PaymentSetup;
  let chainUrl: string;
  let proxy: Awaited<ReturnType<typeof settlerRpc>>;
  let settler: SettlerProc;
  let relay: TestIdentity;
  const tracker = newIdentity();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-attack05-'));
    ({ setup, settler, relay } = await startSettlerForTestRelay(dir, PRICE_PER_GIB, tracker, {
      relayName: 'relay',
      settlerRpcUrl: async (rpcUrl) => (proxy = await settlerRpc(rpcUrl)).url,
    }));
    chainUrl = setup.rpcUrl;
  });

  afterAll(async () => {
    await stopAll();
    await proxy?.close();
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it(
    `resolves a payout by its id under ${SPAM} spam entries, and the relay’s next payout lands: paid exactly bytes × price`,
    { timeout: 120_000 },
    async () => {
      const viewer = newIdentity();
      const g = await requestGrantAt(settler.url, viewer);
      expect(g.status).toBe(200);
      const grant = g.grant!;
      const assignment = assignmentB64(tracker, viewer, relay);
      const item = (seq: number, bytes: number) => ({ grant: grant.b64, receipt: receiptB64(viewer, grant.signed, relay, seq, bytes), assignment });

      // The settler records payout 1 but cannot see the chain: its sends and status lookups fail.
      proxy.blackout = true;
      const first = await redeemAs(settler.url, relay, [item(1, 300_000)]);
      expect(first.body.status, JSON.stringify(first.body)).toBe('payout');
      if (first.body.status !== 'payout') return;
      expect(first.body.credited).toEqual([{ index: 0, credited: '300000' }]);
      // The relay submits the exact bytes itself (it may): payout 1 lands.
      await rpc(chainUrl, 'sendTransaction', [first.body.transaction, { encoding: 'base64' }]);
      await waitForPayout(chainUrl, first.body.signature);

      // The attack: more than 10,000 entries on the relay's predictable token account.
      const relayAta = getAssociatedTokenAddressSync(new PublicKey(setup.mint), new PublicKey(relay.id));
      await spam(chainUrl, relayAta, SPAM);
      expect(await entriesAfter(chainUrl, relayAta.toBase58(), first.body.signature, OLD_SCAN_BOUND)).toBeGreaterThan(OLD_SCAN_BOUND);
      // Payout 1 is still pending in the settler's ledger.
      expect(((await (await fetch(`${settler.url}${relayStatusPath(relay.id)}`)).json()) as { pending: unknown }).pending).toMatchObject({
        signature: first.body.signature,
      });

      // The chain comes back; the relay's next redeem: payout 1 is found by id, payout 2 pays the rest.
      proxy.blackout = false;
      const newest = item(2, 700_000);
      const second = await redeemAs(settler.url, relay, [newest]);
      expect(second.body.status, JSON.stringify(second.body)).toBe('payout');
      if (second.body.status !== 'payout') return;
      expect(second.body.signature).not.toBe(first.body.signature);
      expect([second.body.amount, second.body.cumulativePaid]).toEqual(['400000', '700000']);
      await waitForPayout(chainUrl, second.body.signature);
      await waitFor('payout 2 resolved', async () => {
        const st = (await (await fetch(`${settler.url}${relayStatusPath(relay.id)}`)).json()) as { pending: unknown; cumulativePaid: string };
        return st.pending === null && st.cumulativePaid === '700000';
      });
      // Exactly the receipted bytes × price, from the treasury to the relay; spam moved nothing.
      expect(await tokenBalance(setup, relay.id)).toBe(amountForBytes(700_000, PRICE_PER_GIB));
      const again = await redeemAs(settler.url, relay, [newest]);
      expect(again.body).toEqual({ status: 'nothing-owed', cumulativePaid: '700000', credited: [{ index: 0, credited: '700000' }] });
      // Found by id: the settler never read anyone's history.
      expect(proxy.calls.get('getSignaturesForAddress') ?? 0).toBe(0);
      expect(proxy.calls.get('getSignatureStatuses') ?? 0).toBeGreaterThan(0);
    },
  );
});
