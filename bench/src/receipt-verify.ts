/**
 * Receipt acceptance on the relay vs raw node:crypto verification.
 *
 * Method: N receipts of S sessions (signed beforehand, round-robin so every receipt supersedes its
 * session's previous one) are fed to the relay's PaymentGate through its per-channel entry point,
 * once with the receipt store on a disk file (WAL, synchronous=FULL: one fsync per receipt) and
 * once on tmpfs (/dev/shm, where fsync is nearly free, so the figure is the CPU cost of decode +
 * verify with the cached session key + checkReceipt + SQLite upsert). Baselines: raw
 * crypto.verify over the same signed bytes with a cached KeyObject, and with the raw key imported
 * per call. Target: the tmpfs gate path at least 0.5x the cached raw verify.
 *
 *   npx tsx bench/src/receipt-verify.ts [--receipts N] [--sessions S]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FrameType, decodeSignedReceipt, encodeBase58, receiptSigningBytes } from '@relaycast/protocol';
import { sessionKeyObject, verifyEd25519 } from '@relaycast/protocol/node';
import { PaymentGate, ReceiptStore } from '@relaycast/relay';
import { TestSession, testPayer } from '../../relay/src/payments/payment-test-kit.js';
import { report } from './lib/report.js';

const { values } = parseArgs({ options: { receipts: { type: 'string', default: '20000' }, sessions: { type: 'string', default: '200' } } });
const N = Number(values.receipts);
const S = Number(values.sessions);

const relayKey = new Uint8Array(randomBytes(32));
const relayId = encodeBase58(relayKey);
const payer = testPayer();
const sessions = Array.from({ length: S }, () => new TestSession(payer));
const grants = sessions.map((s) => s.signedGrant());
const receipts: Uint8Array[] = [];
for (let i = 0; i < N; i++) {
  const s = sessions[i % S] as TestSession;
  receipts.push(s.signedReceipt(relayKey, (Math.floor(i / S) + 1) * 1_000_000));
}

function rate(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return Math.round(N / ((performance.now() - t0) / 1000));
}

function rawVerify(cached: boolean): number {
  const decoded = receipts.map((r) => decodeSignedReceipt(r));
  const keys = new Map(sessions.map((s) => [Buffer.from(s.grant.sessionKey).toString('hex'), sessionKeyObject(s.grant.sessionKey)]));
  return rate(() => {
    for (const sr of decoded) {
      const key = cached ? keys.get(Buffer.from(sr.receipt.sessionKey).toString('hex')) : sr.receipt.sessionKey;
      if (key === undefined || !verifyEd25519(key, receiptSigningBytes(sr.receipt), sr.signature)) throw new Error('verify failed');
    }
  });
}

function gatePath(dir: string): number {
  const store = ReceiptStore.open({ path: join(dir, 'receipts.sqlite'), relayId }, relayKey);
  try {
    const gate = new PaymentGate({ relayKey, acceptedPayers: [payer.id], store, paymentFramesPerSec: 1e9, paymentFrameBurst: 1e9 });
    const channel = gate.openChannel();
    for (const g of grants) if (channel.onFrame({ type: FrameType.GRANT, requestId: 0, signedGrant: g }) !== undefined) throw new Error('grant refused');
    return rate(() => {
      for (const r of receipts) {
        const err = channel.onFrame({ type: FrameType.RECEIPT, requestId: 0, signedReceipt: r });
        if (err !== undefined) throw err;
      }
    });
  } finally {
    store.close();
  }
}

/** Best of ROUNDS, interleaved, so JIT warm-up and other load on the machine hit every variant alike. */
const ROUNDS = 3;
function fresh(fn: (dir: string) => number, base: string): number {
  const dir = mkdtempSync(join(base, 'rc-bench-'));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
let rawCached = 0;
let rawImport = 0;
let gateTmpfs = 0;
let gateDisk = 0;
for (let round = 0; round < ROUNDS; round++) {
  rawCached = Math.max(rawCached, rawVerify(true));
  rawImport = Math.max(rawImport, rawVerify(false));
  gateTmpfs = Math.max(gateTmpfs, fresh(gatePath, '/dev/shm'));
  gateDisk = Math.max(gateDisk, fresh(gatePath, tmpdir()));
}
const ratio = Math.round((gateTmpfs / rawCached) * 100) / 100;
report(
  'receipt-verify',
  { receipts: N, sessions: S, perSec: { rawVerifyCachedKey: rawCached, rawVerifyImportKey: rawImport, gateTmpfs, gateDiskFsync: gateDisk }, gateVsRawCached: ratio, target: 0.5 },
  `raw verify ${rawCached}/s (key import per call ${rawImport}/s); gate ${gateTmpfs}/s on tmpfs (${ratio}x raw), ${gateDisk}/s with fsync to disk`,
);
