import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ASSIGNMENT_VERSION,
  RECEIPT_VERSION,
  amountForBytes,
  decodeSignedGrant,
  encodeBase58,
  encodeSignedAssignment,
  encodeSignedReceipt,
  fromBase64,
  type Receipt,
  type SignedGrant,
} from '@relaycast/protocol';
import { privateKeyFromSeed, rawPublicKey, signAssignment, signReceipt, signRedeemBody } from '@relaycast/protocol/node';
import { REDEEM_SIGNATURE_HEADER, SETTLER_PATHS, type RedeemItem, type RedeemResponse } from '@relaycast/protocol/settlement';
import { getAccount } from '@solana/spl-token';
import { Connection, Keypair, LAMPORTS_PER_SOL, type PublicKey } from '@solana/web3.js';
import { startEmbeddedChain, type EmbeddedChain } from '../embedded-chain/chain-server.js';
import type { EmbeddedChainOptions } from '../embedded-chain/chain-options.js';
import { airdropSol, createTokenMint, ensureTokenAccount, type MintInfo } from '../setup/token-setup.js';
import { createTreasury } from '../setup/treasury-setup.js';
import { startSettler, type Settler } from '../settlement/settler.js';
import type { SettlerOptions } from '../settlement/settler-options.js';

/** Test-only: a real embedded chain (talked to through its RPC URL), a funded treasury, relays and viewers. */

export const TREASURY_FUNDS = 1_000_000_000n;
/** 2^30 base units per GiB: one base unit per byte, so amounts are easy to reason about. */
export const TEST_PRICE_PER_GIB = 1n << 30n;
export const SCOPE = 'https://cdn.example.test/hls/';

export interface TestRelay {
  keypair: Keypair;
  id: string;
  key: KeyObject;
}

export interface Viewer {
  sessionKey: Uint8Array;
  privateKey: KeyObject;
}

/** The test's tracker: its key signs assignments; settlers trust it. */
export interface TestTracker {
  id: string;
  publicKey: Uint8Array;
  privateKey: KeyObject;
}

export function newTracker(): TestTracker {
  const { privateKey } = generateKeyPairSync('ed25519');
  const publicKey = rawPublicKey(privateKey);
  return { id: encodeBase58(publicKey), publicKey, privateKey };
}

export interface PaymentWorld {
  chain: EmbeddedChain;
  tracker: TestTracker;
  /** The treasury owner (fee payer of payouts). */
  treasury: PublicKey;
  connection: Connection;
  dir: string;
  mint: MintInfo;
  mintAuthority: Keypair;
  treasuryKeypairPath: string;
  treasuryTokenAccount: PublicKey;
  dbPath: string;
  close(): Promise<void>;
}

export async function startPaymentWorld(chainOptions: EmbeddedChainOptions = {}): Promise<PaymentWorld> {
  const chain = await startEmbeddedChain({ port: 0, ...chainOptions });
  const connection = new Connection(chain.rpcUrl, 'confirmed');
  const dir = await mkdtemp(join(tmpdir(), 'relaycast-settler-'));
  const mintAuthority = Keypair.generate();
  await airdropSol(connection, mintAuthority.publicKey, 100 * LAMPORTS_PER_SOL);
  const mint = await createTokenMint(connection, mintAuthority, 6);
  const treasuryKeypairPath = join(dir, 'treasury.json');
  const treasury = await createTreasury(connection, mintAuthority, mint.mint, treasuryKeypairPath, TREASURY_FUNDS);
  // The treasury owner pays the fees of its payouts.
  await airdropSol(connection, treasury.treasury, 10 * LAMPORTS_PER_SOL);
  return {
    chain,
    tracker: newTracker(),
    treasury: treasury.treasury,
    connection,
    dir,
    mint,
    mintAuthority,
    treasuryKeypairPath,
    treasuryTokenAccount: treasury.tokenAccount,
    dbPath: join(dir, 'ledger', 'settler.sqlite'),
    close: async () => {
      await chain.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function settlerOptions(w: PaymentWorld, extra: Partial<SettlerOptions> = {}): SettlerOptions {
  return {
    rpcUrl: w.chain.rpcUrl,
    treasuryKeypair: w.treasuryKeypairPath,
    mint: w.mint.mint.toBase58(),
    dbPath: w.dbPath,
    pricePerGiB: TEST_PRICE_PER_GIB,
    defaultBudget: 100_000_000n,
    rpcTimeoutMs: 10_000,
    authorize: () => Promise.resolve({}),
    trustedTrackers: [w.tracker.id],
    ...extra,
  };
}

export function startTestSettler(w: PaymentWorld, extra: Partial<SettlerOptions> = {}): Promise<Settler> {
  return startSettler(settlerOptions(w, extra));
}

/** A relay (no SOL: it pays no fees) with, unless told otherwise, its associated token account. */
export async function newRelay(w: PaymentWorld, withTokenAccount = true): Promise<TestRelay> {
  const keypair = Keypair.generate();
  if (withTokenAccount) await ensureTokenAccount(w.connection, w.mintAuthority, w.mint, keypair.publicKey);
  return { keypair, id: keypair.publicKey.toBase58(), key: privateKeyFromSeed(keypair.secretKey.subarray(0, 32)) };
}

export function newViewer(): Viewer {
  const { privateKey } = generateKeyPairSync('ed25519');
  return { privateKey, sessionKey: rawPublicKey(privateKey) };
}

export async function postJson(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; headers: Headers }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown>, headers: res.headers };
}

export async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Asks the settler for a grant for the viewer; returns the base64 grant and its decoded form. */
export async function requestGrant(settler: Settler, viewer: Viewer, headers: Record<string, string> = {}): Promise<{ b64: string; signed: SignedGrant }> {
  const res = await postJson(`${settler.url}${SETTLER_PATHS.grants}`, { sessionKey: encodeBase58(viewer.sessionKey), scope: SCOPE }, headers);
  if (res.status !== 200) throw new Error(`grant refused: ${JSON.stringify(res.body)}`);
  const b64 = res.body['grant'] as string;
  return { b64, signed: decodeSignedGrant(fromBase64(b64)!) };
}

/** A correctly signed receipt (unless `override` breaks it) as base64. */
export function receiptFor(
  viewer: Viewer,
  grant: SignedGrant,
  relay: PublicKey,
  sequence: number,
  cumulativeBytes: number,
  override: Partial<Receipt> = {},
  signer?: KeyObject,
): string {
  const receipt: Receipt = {
    version: RECEIPT_VERSION,
    grantNonce: grant.grant.nonce,
    sessionKey: viewer.sessionKey,
    relay: relay.toBytes(),
    sequence,
    cumulativeBytes,
    cumulativeAmount: amountForBytes(cumulativeBytes, grant.grant.pricePerGiB),
    timestampMs: Date.now(),
    ...override,
  };
  return Buffer.from(encodeSignedReceipt(signReceipt(receipt, signer ?? viewer.privateKey))).toString('base64');
}

/** The tracker's signed assignment of the viewer's session to the relay, base64. */
export function assignmentFor(
  w: { tracker: TestTracker },
  viewer: Viewer,
  relay: PublicKey,
  issuedAtMs = Date.now(),
  tracker: TestTracker = w.tracker,
): string {
  const sa = signAssignment(
    { version: ASSIGNMENT_VERSION, tracker: tracker.publicKey, sessionKey: viewer.sessionKey, relay: relay.toBytes(), issuedAtMs },
    tracker.privateKey,
  );
  return Buffer.from(encodeSignedAssignment(sa)).toString('base64');
}

/** One complete redeem item: grant, receipt and the tracker's assignment. */
export function itemFor(
  w: { tracker: TestTracker },
  viewer: Viewer,
  grant: { b64: string; signed: SignedGrant },
  relay: PublicKey,
  sequence: number,
  cumulativeBytes: number,
  override: Partial<Receipt> = {},
): RedeemItem {
  return {
    grant: grant.b64,
    receipt: receiptFor(viewer, grant.signed, relay, sequence, cumulativeBytes, override),
    assignment: assignmentFor(w, viewer, relay),
  };
}

export interface RedeemCall {
  status: number;
  body: RedeemResponse & { error?: { code: string; message: string } };
}

/** POST /v1/redeem signed by the relay key; `tweak` may alter the raw body after signing or the header. */
export async function redeemAt(
  settler: Pick<Settler, 'url'>,
  relay: Pick<TestRelay, 'id' | 'key'>,
  items: RedeemItem[],
  o: { requestedAtMs?: number; signatureOf?: (raw: Buffer) => string; rawBody?: Buffer } = {},
): Promise<RedeemCall> {
  const raw = o.rawBody ?? Buffer.from(JSON.stringify({ relay: relay.id, requestedAtMs: o.requestedAtMs ?? Date.now(), items }));
  const signature = o.signatureOf?.(raw) ?? signRedeemBody(raw, relay.key);
  const res = await fetch(`${settler.url}${SETTLER_PATHS.redeem}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', [REDEEM_SIGNATURE_HEADER]: signature },
    body: new Uint8Array(raw),
  });
  return { status: res.status, body: (await res.json()) as RedeemCall['body'] };
}

/**
 * What the relay may do with a payout: resubmit the exact bytes (the settler already sent them;
 * sending again is harmless) and wait until its id is confirmed, looking it up by id only.
 */
export async function confirmPayout(w: PaymentWorld, payout: { transaction: string; signature: string; lastValidBlockHeight: number }): Promise<string> {
  await w.connection.sendRawTransaction(Buffer.from(payout.transaction, 'base64'), { skipPreflight: true }).catch(() => undefined);
  for (;;) {
    const status = (await w.connection.getSignatureStatuses([payout.signature], { searchTransactionHistory: true })).value[0];
    if (status !== null && status !== undefined) {
      if (status.err !== null) throw new Error(`payout failed: ${JSON.stringify(status.err)}`);
      return payout.signature;
    }
    if ((await w.connection.getBlockHeight('finalized')) > payout.lastValidBlockHeight) throw new Error('payout expired unlanded');
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function tokenBalance(w: PaymentWorld, account: PublicKey): Promise<bigint> {
  return (await getAccount(w.connection, account, 'confirmed', w.mint.programId)).amount;
}
