import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createMint, getAccount, getMint, getOrCreateAssociatedTokenAccount, mintTo, transferChecked } from '@solana/spl-token';
import {
  Connection,
  Keypair,
  LAMPORTS_PER_SOL,
  PublicKey,
  SendTransactionError,
  SystemProgram,
  Transaction,
  TransactionInstruction,
  sendAndConfirmTransaction,
} from '@solana/web3.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { ErrorCode, isRelaycastError, utf8Decode } from '@relaycast/protocol';
import { MEMO_PROGRAM_ID as MEMO_PROGRAM } from '@relaycast/protocol/settlement';
import { startEmbeddedChain, type EmbeddedChain } from './chain-server.js';

const MEMO_PROGRAM_ID = new PublicKey(MEMO_PROGRAM);
const FEE_PER_SIGNATURE = 5_000;
const FAST_SLOT_MS = 20;

async function airdrop(connection: Connection, to: PublicKey, lamports: number): Promise<void> {
  const signature = await connection.requestAirdrop(to, lamports);
  const latest = await connection.getLatestBlockhash();
  const result = await connection.confirmTransaction({ signature, ...latest }, 'confirmed');
  expect(result.value.err).toBeNull();
}

async function rawRpc(url: string, body: string): Promise<{ status: number; json: unknown }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
  return { status: res.status, json: await res.json() };
}

function transfer(from: Keypair, to: PublicKey, lamports: number): Transaction {
  return new Transaction().add(SystemProgram.transfer({ fromPubkey: from.publicKey, toPubkey: to, lamports }));
}

/** Error code and text of a web3.js send failure, whichever shape it came in. */
function sendFailure(err: unknown): string {
  if (err instanceof SendTransactionError) return `${err.message} ${(err.logs ?? []).join('\n')}`;
  return err instanceof Error ? err.message : String(err);
}

describe('embedded chain through an unmodified web3.js Connection', () => {
  let chain: EmbeddedChain;
  let connection: Connection;
  const payer = Keypair.generate();

  beforeAll(async () => {
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS });
    connection = new Connection(chain.rpcUrl, 'confirmed');
    await airdrop(connection, payer.publicKey, 10 * LAMPORTS_PER_SOL);
  });
  afterAll(async () => {
    await chain.close();
  });

  it('airdrops and reports the balance, twice the same amount included', async () => {
    const who = Keypair.generate().publicKey;
    const amount = 3 * LAMPORTS_PER_SOL;
    await airdrop(connection, who, amount);
    await airdrop(connection, who, amount);
    expect(await connection.getBalance(who)).toBe(2 * amount);
  });

  it('sendAndConfirmTransaction moves SOL and charges the fee per signature', async () => {
    const to = Keypair.generate().publicKey;
    const before = await connection.getBalance(payer.publicKey);
    const lamports = LAMPORTS_PER_SOL / 10;
    const signature = await sendAndConfirmTransaction(connection, transfer(payer, to, lamports), [payer]);
    expect(await connection.getBalance(to)).toBe(lamports);
    expect(await connection.getBalance(payer.publicKey)).toBe(before - lamports - FEE_PER_SIGNATURE);
    const status = await connection.getSignatureStatus(signature);
    expect(status.value?.err).toBeNull();
    expect(status.value?.confirmationStatus).toBe('finalized');
  });

  it('spl-token: createMint, ATAs, mintTo and transferChecked give exact balances', async () => {
    const decimals = 6;
    const mintAuthority = Keypair.generate();
    const mint = await createMint(connection, payer, mintAuthority.publicKey, null, decimals);
    expect((await getMint(connection, mint)).decimals).toBe(decimals);
    const alice = Keypair.generate();
    const bob = Keypair.generate();
    const aliceAta = await getOrCreateAssociatedTokenAccount(connection, payer, mint, alice.publicKey);
    const bobAta = await getOrCreateAssociatedTokenAccount(connection, payer, mint, bob.publicKey);
    // Asking again finds the existing account instead of creating one.
    expect((await getOrCreateAssociatedTokenAccount(connection, payer, mint, alice.publicKey)).address.equals(aliceAta.address)).toBe(true);
    const minted = 1_000_000_000n;
    const sent = 123_456_789n;
    await mintTo(connection, payer, mint, aliceAta.address, mintAuthority, minted);
    await transferChecked(connection, payer, aliceAta.address, mint, bobAta.address, alice, sent, decimals);
    expect((await getAccount(connection, aliceAta.address)).amount).toBe(minted - sent);
    expect((await getAccount(connection, bobAta.address)).amount).toBe(sent);
    expect((await getMint(connection, mint)).supply).toBe(minted);
    const owned = await connection.getTokenAccountsByOwner(bob.publicKey, { mint });
    expect(owned.value.map((a) => a.pubkey.toBase58())).toEqual([bobAta.address.toBase58()]);
    const balance = await connection.getTokenAccountBalance(bobAta.address);
    expect(balance.value.amount).toBe(sent.toString());
    expect(balance.value.decimals).toBe(decimals);
  });

  it('reads a Memo back through getSignaturesForAddress + getTransaction, newest first and paged', async () => {
    const relay = Keypair.generate().publicKey;
    const memos = ['paid 1', 'paid 2', 'paid 3'];
    const signatures: string[] = [];
    for (const memo of memos) {
      const tx = transfer(payer, relay, LAMPORTS_PER_SOL / 100).add(
        new TransactionInstruction({ programId: MEMO_PROGRAM_ID, keys: [], data: Buffer.from(memo, 'utf8') }),
      );
      signatures.push(await sendAndConfirmTransaction(connection, tx, [payer]));
    }
    const listed = await connection.getSignaturesForAddress(relay);
    expect(listed.map((s) => s.signature)).toEqual([...signatures].reverse());
    expect(listed[0]!.memo).toBe(`[${memos[2]!.length}] ${memos[2]}`);
    const page = await connection.getSignaturesForAddress(relay, { before: signatures[2], limit: 1 });
    expect(page.map((s) => s.signature)).toEqual([signatures[1]]);
    const until = await connection.getSignaturesForAddress(relay, { until: signatures[0] });
    expect(until.map((s) => s.signature)).toEqual([signatures[2], signatures[1]]);

    const tx = await connection.getTransaction(signatures[0]!, { maxSupportedTransactionVersion: 0, commitment: 'confirmed' });
    expect(tx?.meta?.err).toBeNull();
    expect(tx?.meta?.logMessages?.some((l) => l.includes(MEMO_PROGRAM_ID.toBase58()))).toBe(true);
    const message = tx!.transaction.message;
    const keys = message.staticAccountKeys;
    const memoIx = message.compiledInstructions.find((ix) => keys[ix.programIdIndex]!.equals(MEMO_PROGRAM_ID));
    expect(utf8Decode(memoIx!.data)).toBe(memos[0]);
    const relayIndex = keys.findIndex((k) => k.equals(relay));
    expect(tx!.meta!.postBalances[relayIndex]! - tx!.meta!.preBalances[relayIndex]!).toBe(LAMPORTS_PER_SOL / 100);
  });

  it('rejects a replayed identical transaction as already processed', async () => {
    const tx = transfer(payer, Keypair.generate().publicKey, LAMPORTS_PER_SOL / 10);
    tx.recentBlockhash = (await connection.getLatestBlockhash()).blockhash;
    tx.sign(payer);
    const wire = tx.serialize();
    await connection.confirmTransaction({ signature: await connection.sendRawTransaction(wire), ...(await connection.getLatestBlockhash()) });
    const replay = await connection.sendRawTransaction(wire).then(
      () => 'accepted',
      (err: unknown) => sendFailure(err),
    );
    expect(replay).toMatch(/already been processed/);
    const rawReplay = await rawRpc(
      chain.rpcUrl,
      JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sendTransaction', params: [wire.toString('base64'), { encoding: 'base64' }] }),
    );
    expect(rawReplay.json).toMatchObject({ error: { code: -32002, data: { err: 'AlreadyProcessed' } } });
  });

  it('simulateTransaction returns the program logs without changing state', async () => {
    const to = Keypair.generate().publicKey;
    const sim = await connection.simulateTransaction(transfer(payer, to, 1_000_000), [payer]);
    expect(sim.value.err).toBeNull();
    expect(sim.value.logs?.some((l) => l.startsWith(`Program ${SystemProgram.programId.toBase58()} success`))).toBe(true);
    expect(await connection.getBalance(to)).toBe(0);
  });

  it('answers malformed JSON, bad requests and an oversized body with JSON-RPC errors and keeps serving', async () => {
    expect(await rawRpc(chain.rpcUrl, '{"jsonrpc":"2.0",')).toMatchObject({ json: { error: { code: -32700 } } });
    expect(await rawRpc(chain.rpcUrl, '{"jsonrpc":"2.0","id":7,"method":"noSuchMethod"}')).toMatchObject({
      json: { id: 7, error: { code: -32601 } },
    });
    expect(await rawRpc(chain.rpcUrl, '{"jsonrpc":"2.0","id":8,"method":"getBalance","params":["not-an-address"]}')).toMatchObject({
      json: { id: 8, error: { code: -32602 } },
    });
    expect(await rawRpc(chain.rpcUrl, '{"jsonrpc":"2.0","id":9,"method":"sendTransaction","params":["AAAA",{"encoding":"base64"}]}')).toMatchObject({
      json: { id: 9, error: { code: -32602 } },
    });
    const huge = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'getSlot', params: ['x'.repeat(128 * 1024)] });
    const tooLarge = await rawRpc(chain.rpcUrl, huge);
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.json).toMatchObject({ error: { code: -32600 } });
    const batch = await rawRpc(chain.rpcUrl, '[{"jsonrpc":"2.0","id":1,"method":"getHealth"},{"jsonrpc":"2.0","id":2,"method":"getSlot"}]');
    expect(batch.json).toMatchObject([{ id: 1, result: 'ok' }, { id: 2 }]);
    expect(await connection.getSlot()).toBeGreaterThan(0);
  });
});

describe('embedded chain edge cases', () => {
  let chain: EmbeddedChain | undefined;
  afterEach(async () => {
    await chain?.close();
  });

  it('commits a failing transaction sent without preflight: fee charged, error in status and history', async () => {
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS });
    const connection = new Connection(chain.rpcUrl, 'confirmed');
    const payer = Keypair.generate();
    const poor = Keypair.generate();
    await airdrop(connection, payer.publicKey, LAMPORTS_PER_SOL);
    await airdrop(connection, poor.publicKey, LAMPORTS_PER_SOL / 1000);
    // poor pays the fee but tries to move more than it has: the System program fails the instruction.
    const tx = transfer(poor, payer.publicKey, LAMPORTS_PER_SOL);
    const latest = await connection.getLatestBlockhash();
    tx.recentBlockhash = latest.blockhash;
    tx.sign(poor);
    const before = await connection.getBalance(poor.publicKey);
    const preflight = await connection.sendRawTransaction(tx.serialize()).then(
      () => 'accepted',
      (err: unknown) => sendFailure(err),
    );
    expect(preflight).toMatch(/simulation failed/);
    expect(await connection.getBalance(poor.publicKey)).toBe(before);
    const signature = await connection.sendRawTransaction(tx.serialize(), { skipPreflight: true });
    const confirmed = await connection.confirmTransaction({ signature, ...latest });
    expect(confirmed.value.err).toEqual({ InstructionError: [0, { Custom: 1 }] });
    expect(await connection.getBalance(poor.publicKey)).toBe(before - FEE_PER_SIGNATURE);
    const listed = await connection.getSignaturesForAddress(poor.publicKey);
    expect(listed[0]).toMatchObject({ signature, err: { InstructionError: [0, { Custom: 1 }] } });
  });

  it('answers bad WebSocket messages with errors, drops oversized ones, and keeps serving', async () => {
    const maxWsMessageBytes = 4 * 1024;
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS, maxWsMessageBytes });
    const open = async (): Promise<WebSocket> => {
      const ws = new WebSocket(chain!.wsUrl);
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      return ws;
    };
    const ask = (ws: WebSocket, text: string): Promise<unknown> =>
      new Promise((resolve) => {
        ws.once('message', (d) => resolve(JSON.parse(d.toString())));
        ws.send(text);
      });
    const ws = await open();
    expect(await ask(ws, '{oops')).toMatchObject({ error: { code: -32700 } });
    expect(await ask(ws, '{"jsonrpc":"2.0","id":3,"method":"signatureSubscribe","params":["short"]}')).toMatchObject({ id: 3, error: { code: -32602 } });
    expect(await ask(ws, '{"jsonrpc":"2.0","id":4,"method":"slotUnsubscribe","params":[12345]}')).toMatchObject({ id: 4, error: { code: -32602 } });
    const slotSub = (await ask(ws, '{"jsonrpc":"2.0","id":5,"method":"slotSubscribe"}')) as { result: number };
    const note = (await new Promise((resolve) => ws.once('message', (d) => resolve(JSON.parse(d.toString()))))) as {
      method: string;
      params: { subscription: number; result: { slot: number } };
    };
    expect(note.method).toBe('slotNotification');
    expect(note.params.subscription).toBe(slotSub.result);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.send('x'.repeat(maxWsMessageBytes + 1));
    expect(await closed).toBe(1009);
    const again = await open();
    expect(await ask(again, '{"jsonrpc":"2.0","id":6,"method":"slotSubscribe"}')).toMatchObject({ id: 6, result: expect.any(Number) });
    again.close();
  });

  it('survives mutated transactions (litesvm aborts the process on bytes its decoder rejects)', async () => {
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS });
    const connection = new Connection(chain.rpcUrl, 'confirmed');
    const payer = Keypair.generate();
    await airdrop(connection, payer.publicKey, LAMPORTS_PER_SOL);
    const tx = transfer(payer, Keypair.generate().publicKey, 1_000).add(
      new TransactionInstruction({ programId: MEMO_PROGRAM_ID, keys: [], data: Buffer.from('memo', 'utf8') }),
    );
    tx.recentBlockhash = (await connection.getLatestBlockhash()).blockhash;
    tx.sign(payer);
    const wire = tx.serialize();
    const send = async (bytes: Buffer, id: number, method: string, skipPreflight: boolean): Promise<void> => {
      const { json } = await rawRpc(
        chain!.rpcUrl,
        JSON.stringify({ jsonrpc: '2.0', id, method, params: [bytes.toString('base64'), { encoding: 'base64', skipPreflight }] }),
      );
      expect(json).toMatchObject({ jsonrpc: '2.0', id });
    };
    // Every cut inside the instructions: a transaction cut after its last program index aborted it.
    const tail = 40;
    for (let cut = 1; cut <= tail; cut++) await send(wire.subarray(0, wire.length - cut), cut, 'sendTransaction', cut % 2 === 0);
    // Deterministic mutations: a fixed LCG so a failure reproduces.
    let seed = 12345;
    const next = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    const rounds = 300;
    for (let i = 0; i < rounds; i++) {
      const w = Buffer.from(wire);
      for (let j = 0; j <= next(3); j++) w[next(w.length)] = next(256);
      await send(w, i, i % 2 === 0 ? 'sendTransaction' : 'simulateTransaction', i % 4 === 0);
    }
    expect(await connection.getSlot()).toBeGreaterThan(0);
  });

  it('refuses to start on a taken port with RC_ERR_CHAIN_LISTEN_FAILED', async () => {
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS });
    const second = await startEmbeddedChain({ port: chain.port, slotMs: FAST_SLOT_MS }).then(
      async (c) => {
        await c.close();
        return undefined;
      },
      (err: unknown) => err,
    );
    expect(isRelaycastError(second, ErrorCode.CHAIN_LISTEN_FAILED)).toBe(true);
  });

  it('getFeeForMessage charges per signature and answers null for an unknown blockhash', async () => {
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS });
    const connection = new Connection(chain.rpcUrl, 'confirmed');
    const payer = Keypair.generate();
    const cosigner = Keypair.generate();
    const tx = transfer(payer, Keypair.generate().publicKey, 1).add(transfer(cosigner, payer.publicKey, 1).instructions[0]!);
    tx.feePayer = payer.publicKey;
    tx.recentBlockhash = (await connection.getLatestBlockhash()).blockhash;
    expect((await connection.getFeeForMessage(tx.compileMessage())).value).toBe(2 * FEE_PER_SIGNATURE);
    tx.recentBlockhash = Keypair.generate().publicKey.toBase58();
    expect((await connection.getFeeForMessage(tx.compileMessage())).value).toBeNull();
  });

  it('refuses unsigned and wrongly signed transactions with -32003, with or without preflight', async () => {
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS });
    const connection = new Connection(chain.rpcUrl, 'confirmed');
    const payer = Keypair.generate();
    await airdrop(connection, payer.publicKey, LAMPORTS_PER_SOL);
    const tx = transfer(payer, Keypair.generate().publicKey, 1_000);
    tx.feePayer = payer.publicKey;
    tx.recentBlockhash = (await connection.getLatestBlockhash()).blockhash;
    const unsigned = tx.serialize({ requireAllSignatures: false, verifySignatures: false });
    tx.sign(payer);
    const forged = Buffer.from(tx.serialize());
    forged[1] = forged[1]! ^ 1;
    for (const wire of [unsigned, forged]) {
      for (const skipPreflight of [false, true]) {
        const { json } = await rawRpc(
          chain.rpcUrl,
          JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sendTransaction', params: [wire.toString('base64'), { encoding: 'base64', skipPreflight }] }),
        );
        expect(json).toMatchObject({ error: { code: -32003 } });
      }
    }
    expect(await connection.getBalance(payer.publicKey)).toBe(LAMPORTS_PER_SOL);
  });

  it('rate-limits each client with HTTP 429 and a JSON-RPC error', async () => {
    // A burst of 5 and one more token per second: the sixth request within a second is refused.
    const burst = 5;
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS, maxRequestsPerSec: 1, requestBurst: burst });
    const body = '{"jsonrpc":"2.0","id":1,"method":"getSlot"}';
    const statuses: number[] = [];
    for (let i = 0; i < burst; i++) statuses.push((await rawRpc(chain.rpcUrl, body)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    const limited = await rawRpc(chain.rpcUrl, body);
    expect(limited.status).toBe(429);
    expect(limited.json).toMatchObject({ error: { code: 429 } });
  });
});

describe('embedded chain blockhash window', () => {
  let chain: EmbeddedChain | undefined;
  afterEach(async () => {
    await chain?.close();
  });

  it('rejects a transaction whose blockhash left the window with the cluster’s preflight error', async () => {
    const validitySlots = 5;
    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS, blockhashValiditySlots: validitySlots });
    const connection = new Connection(chain.rpcUrl, 'confirmed');
    const payer = Keypair.generate();
    await airdrop(connection, payer.publicKey, LAMPORTS_PER_SOL);
    const { blockhash, lastValidBlockHeight } = await connection.getLatestBlockhash();
    // Still valid inside the window: a transaction on it lands.
    const early = transfer(payer, Keypair.generate().publicKey, 1_000_000);
    early.recentBlockhash = blockhash;
    early.sign(payer);
    await connection.sendRawTransaction(early.serialize());
    while ((await connection.getBlockHeight()) <= lastValidBlockHeight) await new Promise((r) => setTimeout(r, FAST_SLOT_MS));
    expect((await connection.isBlockhashValid(blockhash)).value).toBe(false);
    const late = transfer(payer, Keypair.generate().publicKey, 2_000_000);
    late.recentBlockhash = blockhash;
    late.sign(payer);
    const wire = late.serialize().toString('base64');
    const raw = await rawRpc(chain.rpcUrl, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sendTransaction', params: [wire, { encoding: 'base64' }] }));
    expect(raw.json).toMatchObject({ error: { code: -32002, message: expect.stringContaining('Blockhash not found'), data: { err: 'BlockhashNotFound' } } });
    const viaWeb3 = await connection.sendRawTransaction(late.serialize()).then(
      () => 'accepted',
      (err: unknown) => sendFailure(err),
    );
    expect(viaWeb3).toMatch(/Blockhash not found/);
  });
});

describe('embedded chain persistence', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'relaycast-chain-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps balances, mints, token accounts and history across a restart on the same state file', async () => {
    const stateFile = join(dir, 'chain.json');
    const payer = Keypair.generate();
    const decimals = 2;
    const amount = 4_200n;
    let chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS, stateFile });
    let connection = new Connection(chain.rpcUrl, 'confirmed');
    await airdrop(connection, payer.publicKey, 5 * LAMPORTS_PER_SOL);
    const mint = await createMint(connection, payer, payer.publicKey, null, decimals);
    const ata = await getOrCreateAssociatedTokenAccount(connection, payer, mint, payer.publicKey);
    const mintSig = await mintTo(connection, payer, mint, ata.address, payer, amount);
    const solBefore = await connection.getBalance(payer.publicKey);
    const historyBefore = await connection.getSignaturesForAddress(payer.publicKey);
    const genesis = await connection.getGenesisHash();
    const slotBefore = await connection.getSlot();
    await chain.close();

    chain = await startEmbeddedChain({ port: 0, slotMs: FAST_SLOT_MS, stateFile });
    try {
      connection = new Connection(chain.rpcUrl, 'confirmed');
      expect(await connection.getBalance(payer.publicKey)).toBe(solBefore);
      expect((await getAccount(connection, ata.address)).amount).toBe(amount);
      expect((await getMint(connection, mint)).supply).toBe(amount);
      expect(await connection.getSignaturesForAddress(payer.publicKey)).toEqual(historyBefore);
      expect((await connection.getTransaction(mintSig, { maxSupportedTransactionVersion: 0 }))?.meta?.err).toBeNull();
      expect(await connection.getGenesisHash()).toBe(genesis);
      expect(await connection.getSlot()).toBeGreaterThan(slotBefore);
      // The restored chain keeps working on the restored accounts.
      const other = Keypair.generate().publicKey;
      const otherAta = await getOrCreateAssociatedTokenAccount(connection, payer, mint, other);
      await transferChecked(connection, payer, ata.address, mint, otherAta.address, payer, 200n, decimals);
      expect((await getAccount(connection, otherAta.address)).amount).toBe(200n);
    } finally {
      await chain.close();
    }
  });
});
