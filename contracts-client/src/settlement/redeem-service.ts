import { ErrorCode, RelaycastError, decodeSignedReceipt, toHex } from '@relaycast/protocol';
import { merkleRoot, receiptLeaf } from '@relaycast/protocol/node';
import {
  RELAY_PAYOUTS_LISTED,
  type CreditedItem,
  type RedeemResponse,
  type RejectedItem,
  type RelayPayoutsResponse,
  type RelayStatusResponse,
} from '@relaycast/protocol/settlement';
import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { PublicKey, type Connection, type Keypair } from '@solana/web3.js';
import type { Logger } from 'pino';
import { runStep } from '../setup/step.js';
import { buildPayoutTransaction } from './payout-transaction.js';
import { resolvePayout } from './payout-resolver.js';
import { takeInReceipts, type IntakeContext } from './receipt-intake.js';
import type { RedeemRequest } from './redeem-request.js';
import type { PayoutRecord, SettlementLedger } from './settlement-ledger.js';

/** How often a new blockhash is looked for when a replacement payout needs one. */
const BLOCKHASH_POLL_MS = 100;

/** What the settler pays from and in; fixed at start. */
export interface Treasury {
  owner: Keypair;
  tokenAccount: PublicKey;
  mint: PublicKey;
  decimals: number;
  tokenProgramId: PublicKey;
}

export interface RedeemDeps {
  connection: Connection;
  ledger: SettlementLedger;
  treasury: Treasury;
  rpcTimeoutMs: number;
  now: () => number;
  log: Logger;
  /** Trust and plausibility settings of receipt intake (all but the relay and the clock). */
  intake: Omit<IntakeContext, 'relay' | 'relayKey' | 'nowMs' | 'payer' | 'mint'>;
  /** Called with every payout the settler has (re)submitted: the watcher follows it to its end. */
  onSubmitted?: (p: PayoutRecord) => void;
}

function payoutResponse(p: PayoutRecord, credited: CreditedItem[], rejected: RejectedItem[]): RedeemResponse {
  return {
    status: 'payout',
    transaction: Buffer.from(p.transaction).toString('base64'),
    signature: p.id,
    amount: p.amount.toString(),
    cumulativePaid: p.cumulativePaid.toString(),
    merkleRoot: p.merkleRoot,
    lastValidBlockHeight: p.lastValidBlockHeight,
    credited,
    ...(rejected.length > 0 ? { rejected } : {}),
  };
}

function nothingOwed(paid: bigint, credited: CreditedItem[], rejected: RejectedItem[]): RedeemResponse {
  return { status: 'nothing-owed', cumulativePaid: paid.toString(), credited, ...(rejected.length > 0 ? { rejected } : {}) };
}

/**
 * Sends a recorded payout's exact bytes. Sending again is harmless (same signature: it lands at
 * most once), so failures are only logged: the payout stays pending, the relay may resubmit, and
 * the resolver decides its fate by id.
 */
export async function submitPayout(connection: Connection, p: PayoutRecord, log: Logger): Promise<void> {
  try {
    await connection.sendRawTransaction(p.transaction, { skipPreflight: false, preflightCommitment: 'confirmed', maxRetries: 5 });
  } catch (err) {
    const text = String((err as Error).message ?? err);
    if (/already (been )?processed|AlreadyProcessed/i.test(text)) return;
    log.warn({ payout: p.id, relay: p.relay, err: text.slice(0, 300) }, 'payout submission failed (the treasury owner pays the fee: does it hold SOL?)');
  }
}

/**
 * One redemption: store and credit the valid receipts, settle any outstanding payout from the
 * chain by its id, and when something is owed build a new payout, record it as pending, submit it,
 * and answer with it. The final
 * owed computation and the insert run in one SQLite write transaction, and the ledger's unique
 * index allows one pending payout per relay, so concurrent redeems (or two settler processes)
 * cannot create two.
 */
export async function redeem(req: RedeemRequest, deps: RedeemDeps, signal: AbortSignal): Promise<RedeemResponse> {
  const { ledger, connection, treasury } = deps;
  const call = { timeoutMs: deps.rpcTimeoutMs, signal };
  const { rejected, credited } = takeInReceipts(ledger, req.items, {
    ...deps.intake,
    relay: req.relay,
    relayKey: req.relayKey,
    payer: treasury.owner.publicKey.toBytes(),
    mint: treasury.mint.toBytes(),
    nowMs: deps.now(),
  });
  if (rejected.length > 0) deps.log.info({ relay: req.relay, rejected: rejected.length, items: req.items.length }, 'receipts refused');

  const pending = ledger.pendingPayout(req.relay);
  if (pending !== undefined) {
    const outcome = await resolvePayout(connection, ledger, pending, { ...call, nowMs: deps.now(), log: deps.log });
    deps.log.info({ relay: req.relay, payout: pending.id, outcome }, 'outstanding payout checked');
    if (outcome === 'pending' || outcome === 'unknown') {
      if (outcome === 'pending') {
        await submitPayout(connection, pending, deps.log);
        deps.onSubmitted?.(pending);
      }
      return payoutResponse(pending, credited, rejected);
    }
  }

  const totals = ledger.relayTotals(req.relay);
  if (totals.earned <= totals.paid) return nothingOwed(totals.paid, credited, rejected);

  const relay = new PublicKey(req.relayKey);
  const relayTokenAccount = getAssociatedTokenAddressSync(treasury.mint, relay, true, treasury.tokenProgramId);
  const account = await runStep('read relay token account', call.timeoutMs, signal, () => connection.getAccountInfo(relayTokenAccount, 'confirmed'));
  if (account === null || !account.owner.equals(treasury.tokenProgramId)) {
    throw new RelaycastError(
      ErrorCode.PAYOUT_ACCOUNT_MISSING,
      `the relay's associated token account ${relayTokenAccount.toBase58()} for mint ${treasury.mint.toBase58()} does not exist`,
      {
        details: { relayTokenAccount: relayTokenAccount.toBase58(), mint: treasury.mint.toBase58() },
      },
    );
  }
  // A payout voided in this blockhash window would be rebuilt byte for byte (same blockhash, same
  // amount and memo), so same id and same signature, which can never land twice: wait for the next
  // blockhash and build again.
  let outcome: { created: boolean; payout?: PayoutRecord; paid: bigint; sameAsVoided?: string };
  let avoid: string | undefined;
  for (let round = 0; ; round++) {
    const latest = await runStep('read latest blockhash', call.timeoutMs, signal, async () => {
      for (;;) {
        const l = await connection.getLatestBlockhashAndContext('confirmed');
        if (l.value.blockhash !== avoid) return l;
        await new Promise((r) => setTimeout(r, BLOCKHASH_POLL_MS));
      }
    });
    outcome = ledger.transaction((): { created: boolean; payout?: PayoutRecord; paid: bigint; sameAsVoided?: string } => {
      const existing = ledger.pendingPayout(req.relay);
      if (existing !== undefined) return { created: false, payout: existing, paid: 0n };
      const { earned, paid } = ledger.relayTotals(req.relay);
      if (earned <= paid) return { created: false, paid };
      const root = toHex(merkleRoot(ledger.signedReceipts(req.relay).map((b) => receiptLeaf(decodeSignedReceipt(b)))));
      const amount = earned - paid;
      const built = buildPayoutTransaction({
        treasury: treasury.owner,
        treasuryTokenAccount: treasury.tokenAccount,
        mint: treasury.mint,
        decimals: treasury.decimals,
        tokenProgramId: treasury.tokenProgramId,
        relay,
        relayTokenAccount,
        amount,
        cumulativePaid: earned,
        merkleRoot: root,
        blockhash: latest.value.blockhash,
        lastValidBlockHeight: latest.value.lastValidBlockHeight,
      });
      const payout: PayoutRecord = {
        id: built.id,
        relay: req.relay,
        status: 'pending',
        amount,
        cumulativePaid: earned,
        merkleRoot: root,
        relayTokenAccount: relayTokenAccount.toBase58(),
        lastValidBlockHeight: latest.value.lastValidBlockHeight,
        createdSlot: latest.context.slot,
        transaction: built.transaction,
        createdAtMs: deps.now(),
        landedSignature: null,
      };
      if (ledger.payouts(req.relay).some((p) => p.id === payout.id)) return { created: false, paid, sameAsVoided: latest.value.blockhash };
      ledger.insertPayout(payout);
      return { created: true, payout, paid };
    });
    if (outcome.sameAsVoided === undefined || round >= 2) break;
    avoid = outcome.sameAsVoided;
  }
  if (outcome.sameAsVoided !== undefined)
    throw new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, 'the chain offers no new blockhash for a replacement payout; try again');
  if (outcome.payout === undefined) return nothingOwed(outcome.paid, credited, rejected);
  if (outcome.created) {
    deps.log.info(
      { relay: req.relay, payout: outcome.payout.id, amount: outcome.payout.amount.toString(), cumulativePaid: outcome.payout.cumulativePaid.toString() },
      'payout built',
    );
  }
  // Recorded (committed) first, sent second: a crash in between leaves a pending payout that the
  // next redeem or the watcher resends; sent first, a crash could leave a landed payout unrecorded.
  await submitPayout(connection, outcome.payout, deps.log);
  deps.onSubmitted?.(outcome.payout);
  return payoutResponse(outcome.payout, credited, rejected);
}

/** `GET /v1/relays/:relay`. */
export function relayStatus(ledger: SettlementLedger, relay: string): RelayStatusResponse {
  const { earned, paid } = ledger.relayTotals(relay);
  const pending = ledger.pendingPayout(relay);
  return {
    owed: (earned > paid ? earned - paid : 0n).toString(),
    cumulativePaid: paid.toString(),
    pending: pending === undefined ? null : { signature: pending.id, amount: pending.amount.toString() },
  };
}

/** `GET /v1/relays/:relay/payouts` (added by RELAY-PAYMENTS: the relay reconciles payouts whose redeem answer it never got). */
export function relayPayouts(ledger: SettlementLedger, relay: string): RelayPayoutsResponse {
  return {
    payouts: ledger
      .payouts(relay)
      .filter((p) => p.status === 'confirmed')
      .slice(-RELAY_PAYOUTS_LISTED)
      .map((p) => ({ signature: p.id, amount: p.amount.toString(), cumulativePaid: p.cumulativePaid.toString() })),
  };
}
