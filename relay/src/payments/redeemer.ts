import { ErrorCode, RelaycastError, encodeBase58, isRelaycastError, throwIfAborted, toRelaycastError } from '@relaycast/protocol';
import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Connection, PublicKey } from '@solana/web3.js';
import type { Logger } from 'pino';
import {
  DEFAULT_PAYOUT_CONFIRM_TIMEOUT_MS,
  DEFAULT_REDEEM_ATTEMPTS,
  DEFAULT_REDEEM_RETRY_MAX_MS,
  DEFAULT_REDEEM_RETRY_MIN_MS,
  DEFAULT_RPC_TIMEOUT_MS,
  PAYOUT_CONFIRM_POLL_MS,
  PAYOUT_RESEND_MS,
  REDEEM_MAX_ITEMS,
} from '../constants.js';
import { checkPayoutTransaction } from './payout-check.js';
import type { PayoutRecord, ReceiptStore, ReportItem } from './receipt-store.js';
import { SettlerClient, type RelayPaymentSigner, type SettlerInfo } from './settler-client.js';

export interface RedeemerOptions {
  /** The relay's receipt store. Required. */
  store: ReceiptStore;
  /** The relay key: authenticates redeem requests and co-signs payouts as fee payer. Required. */
  signer: RelayPaymentSigner;
  /** Accepted payers: base58 payer id → settlement service URL. Required. */
  payers: ReadonlyMap<string, string>;
  /** Solana JSON-RPC URL. Required unless `connection` is given. */
  rpcUrl?: string | undefined;
  /** Replaces the RPC connection (tests). Default: a web3.js Connection to rpcUrl at 'confirmed'. */
  connection?: Connection | undefined;
  /** Time one settlement request may take. Default: the settler client's (DEFAULT_SETTLER_TIMEOUT_MS, 15 s). */
  settlerTimeoutMs?: number | undefined;
  /** Time one RPC call may take. Default: DEFAULT_RPC_TIMEOUT_MS (15 s). */
  rpcTimeoutMs?: number | undefined;
  /** Attempts per settlement / RPC step. Default: DEFAULT_REDEEM_ATTEMPTS (5). */
  attempts?: number | undefined;
  /** First retry delay, doubling per attempt. Default: DEFAULT_REDEEM_RETRY_MIN_MS (500 ms). */
  retryMinMs?: number | undefined;
  /** Longest retry delay. Default: DEFAULT_REDEEM_RETRY_MAX_MS (10 s). */
  retryMaxMs?: number | undefined;
  /** Longest wait for one payout to confirm or expire (a stalled chain). Default: DEFAULT_PAYOUT_CONFIRM_TIMEOUT_MS (120 s). */
  confirmTimeoutMs?: number | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

/** Outcome of one payer's redemption. */
export interface PayerRedemption {
  payer: string;
  /** Payouts confirmed by this redemption (normally one). */
  payouts: { signature: string; amount: string }[];
  /** Σ of those payouts. */
  amount: string;
  /** What this payer has paid the relay in total (confirmed). */
  paidToDate: string;
  /** Receipts the settler refused this time, by code. */
  rejected: Record<string, number>;
  /** The relay's token balance for this payer's mint after redeeming, when readable. */
  balance?: string | undefined;
  /** Set when this payer's redemption failed (others still ran). */
  error?: { code: string; message: string } | undefined;
}

export interface RedeemResult {
  payers: PayerRedemption[];
  /** Σ confirmed by this call, over all payers. */
  amount: string;
}

type Settled = 'confirmed' | 'expired' | 'failed';

/** Longest number of payout rounds per payer and call (a new payout after an expired one, or the next batch of receipts). */
const MAX_ROUNDS = 8;

/**
 * Turns stored receipts into confirmed payouts. Per accepted payer: settle any payout left pending
 * by an earlier run (crash, timeout), send the receipts the settler has not acknowledged, check the
 * payout it returns against the relay's own accounting, record it, co-sign, submit, confirm. Only a
 * confirmed payout moves paid-to-date, and the same recorded transaction is what gets resubmitted,
 * so retries and restarts never pay (or count) twice.
 */
export class Redeemer {
  private readonly connection: Connection;
  private readonly relay: PublicKey;
  private readonly log: Logger | undefined;
  private readonly clients = new Map<string, SettlerClient>();
  private running: Promise<RedeemResult> | undefined;
  private readonly attempts: number;

  constructor(private readonly options: RedeemerOptions) {
    if (options.payers.size === 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'redemption needs at least one accepted payer');
    if (options.connection === undefined && options.rpcUrl === undefined) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'redemption needs an RPC URL');
    this.connection = options.connection ?? new Connection(options.rpcUrl as string, { commitment: 'confirmed', disableRetryOnRateLimit: true });
    this.relay = new PublicKey(options.signer.publicKey);
    this.log = options.logger?.child({ component: 'redeemer' });
    this.attempts = options.attempts ?? DEFAULT_REDEEM_ATTEMPTS;
    for (const [payer, url] of options.payers) this.clients.set(payer, new SettlerClient({ baseUrl: url, signer: options.signer, timeoutMs: options.settlerTimeoutMs }));
  }

  /** What the relay is owed (Σ newest receipts − confirmed payouts), per payer and in total. */
  owed(): { total: bigint; byPayer: Map<string, bigint> } {
    const byPayer = new Map<string, bigint>();
    let total = 0n;
    for (const payer of this.options.payers.keys()) {
      const t = this.options.store.totals(payer);
      const owed = t.earned > t.paid ? t.earned - t.paid : 0n;
      byPayer.set(payer, owed);
      total += owed;
    }
    return { total, byPayer };
  }

  /** True when a payout was recorded but is not settled yet (a restart left it). */
  hasPending(): boolean {
    return [...this.options.payers.keys()].some((p) => this.options.store.pendingPayouts(p).length > 0);
  }

  /** Redeems from every accepted payer once; concurrent calls share one run. */
  redeem(signal: AbortSignal): Promise<RedeemResult> {
    this.running ??= this.redeemAll(signal).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async redeemAll(signal: AbortSignal): Promise<RedeemResult> {
    const payers: PayerRedemption[] = [];
    let amount = 0n;
    for (const payer of this.options.payers.keys()) {
      throwIfAborted(signal);
      const r = await this.redeemPayer(payer, signal);
      amount += BigInt(r.amount);
      payers.push(r);
    }
    return { payers, amount: amount.toString() };
  }

  private async redeemPayer(payer: string, signal: AbortSignal): Promise<PayerRedemption> {
    const client = this.clients.get(payer) as SettlerClient;
    const store = this.options.store;
    const out: PayerRedemption = { payer, payouts: [], amount: '0', paidToDate: '0', rejected: {} };
    let total = 0n;
    let info: SettlerInfo | undefined;
    try {
      info = await this.retry('settler info', signal, (s) => client.info(s));
      if (info.payer !== payer) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `settler at ${this.options.payers.get(payer) ?? ''} is payer ${info.payer}, not ${payer}`);
      for (const p of store.pendingPayouts(payer)) {
        const settled = await this.settle(p, signal);
        if (settled === 'confirmed') {
          out.payouts.push({ signature: p.signature, amount: p.amount.toString() });
          total += p.amount;
        }
      }
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const items = store.receiptsToReport(payer, REDEEM_MAX_ITEMS);
        const answer = await this.retry('redeem request', signal, (s) => client.redeem(items, s));
        this.recordAnswer(items, answer.rejected, out);
        if (answer.status === 'nothing-owed') {
          const paid = store.paidToDate(payer);
          if (answer.cumulativePaid !== paid) this.log?.warn({ payer, settlerPaid: answer.cumulativePaid.toString(), relayPaid: paid.toString() }, 'settler and relay disagree on paid to date');
          if (items.length < REDEEM_MAX_ITEMS) break;
          continue;
        }
        const paidToDate = store.paidToDate(payer);
        const expected = store.acknowledged(payer) - paidToDate;
        const checked = checkPayoutTransaction(answer.transaction, {
          relay: this.relay,
          mint: new PublicKey(info.mint),
          amount: expected,
          paidToDate,
          treasuryTokenAccount: new PublicKey(info.treasuryTokenAccount),
          decimals: info.decimals,
          merkleRoot: answer.merkleRoot,
        });
        if (answer.amount !== checked.amount || answer.cumulativePaid !== checked.cumulativePaid) {
          throw new RelaycastError(ErrorCode.PAYOUT_MISMATCH, 'payout refused: the settler’s amount fields differ from its transaction');
        }
        const tx = checked.transaction;
        tx.addSignature(this.relay, Buffer.from(this.options.signer.sign(tx.serializeMessage())));
        const wire = new Uint8Array(tx.serialize());
        const signature = encodeBase58(tx.signature as Buffer);
        // Recorded before anything is sent: a crash from here on resumes this exact transaction.
        store.recordPayout({ signature, payer, amount: checked.amount, cumulativePaid: checked.cumulativePaid, transaction: wire, lastValidBlockHeight: answer.lastValidBlockHeight });
        const record = store.payout(signature);
        if (record?.status === 'expired') {
          // The settler has not noticed yet that this one can no longer land; ask again shortly.
          await sleep(PAYOUT_CONFIRM_POLL_MS, signal);
          continue;
        }
        if (record === undefined || record.status !== 'pending') {
          throw new RelaycastError(ErrorCode.PAYOUT_MISMATCH, `payout ${signature} was already settled (${record?.status ?? 'missing'}); not sending it again`);
        }
        this.log?.info({ payer, signature, amount: checked.amount.toString() }, 'payout checked and co-signed; submitting');
        const settled = await this.settle(record, signal);
        if (settled === 'confirmed') {
          out.payouts.push({ signature, amount: checked.amount.toString() });
          total += checked.amount;
          if (items.length < REDEEM_MAX_ITEMS && store.receiptsToReport(payer, 1).length === 0) break;
        } else if (settled === 'failed') {
          throw new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, `payout ${signature} failed on chain`);
        }
        // Expired: ask again; the settler builds a new payout once the old one can no longer land.
      }
    } catch (err) {
      const e = toRelaycastError(err);
      if (e.code === ErrorCode.ABORTED) throw e;
      out.error = { code: e.code, message: e.message };
      this.log?.warn({ payer, code: e.code, err: e }, 'redemption failed');
    }
    out.amount = total.toString();
    out.paidToDate = store.paidToDate(payer).toString();
    if (info !== undefined) out.balance = await this.balance(new PublicKey(info.mint), signal).catch(() => undefined);
    return out;
  }

  private recordAnswer(items: ReportItem[], rejected: { index: number; code: string }[], out: PayerRedemption): void {
    const refused = new Map<number, string>();
    for (const r of rejected) if (r.index >= 0 && r.index < items.length) refused.set(r.index, r.code);
    const accepted = items.filter((_, i) => !refused.has(i));
    const refusedItems = [...refused].map(([i, code]) => ({ item: items[i] as ReportItem, code }));
    for (const { code } of refusedItems) out.rejected[code] = (out.rejected[code] ?? 0) + 1;
    this.options.store.markReported(accepted, refusedItems);
  }

  /**
   * Drives a recorded payout to a final state: confirmed or failed on chain, or expired (its
   * blockhash can no longer land). Resends the same bytes while it is still valid.
   */
  private async settle(p: PayoutRecord, signal: AbortSignal): Promise<Settled> {
    let lastSend = 0;
    const deadline = Date.now() + (this.options.confirmTimeoutMs ?? DEFAULT_PAYOUT_CONFIRM_TIMEOUT_MS);
    for (;;) {
      throwIfAborted(signal);
      if (Date.now() > deadline) {
        throw new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, `payout ${p.signature} neither confirmed nor expired in time; it stays pending and is resumed next time`);
      }
      const status = await this.retry('signature status', signal, (s) =>
        this.rpc(s, () => this.connection.getSignatureStatuses([p.signature], { searchTransactionHistory: true })),
      );
      const st = status.value[0];
      if (st != null) {
        if (st.err !== null) return this.finish(p, 'failed', { err: st.err });
        if (st.confirmationStatus === 'confirmed' || st.confirmationStatus === 'finalized') return this.finish(p, 'confirmed');
      } else {
        const height = await this.retry('block height', signal, (s) => this.rpc(s, () => this.connection.getBlockHeight('confirmed')));
        if (height > p.lastValidBlockHeight) {
          // Past its last valid height the transaction can never land; one last look for a late confirmation.
          const again = await this.retry('signature status', signal, (s) =>
            this.rpc(s, () => this.connection.getSignatureStatuses([p.signature], { searchTransactionHistory: true })),
          );
          const last = again.value[0];
          if (last == null) return this.finish(p, 'expired');
          if (last.err !== null) return this.finish(p, 'failed', { err: last.err });
          if (last.confirmationStatus === 'confirmed' || last.confirmationStatus === 'finalized') return this.finish(p, 'confirmed');
        } else if (Date.now() - lastSend >= PAYOUT_RESEND_MS) {
          lastSend = Date.now();
          await this.rpc(signal, () => this.connection.sendRawTransaction(p.transaction, { skipPreflight: false, maxRetries: 0 })).catch((err: unknown) => {
            // Already processed, or a preflight refusal: the status checks decide what happened.
            this.log?.debug({ signature: p.signature, err: toRelaycastError(err) }, 'payout submission answered an error');
          });
        }
      }
      await sleep(PAYOUT_CONFIRM_POLL_MS, signal);
    }
  }

  private finish(p: PayoutRecord, status: Settled, details: Record<string, unknown> = {}): Settled {
    this.options.store.settlePayout(p.signature, status);
    const line = { payer: p.payer, signature: p.signature, amount: p.amount.toString(), ...details };
    if (status === 'confirmed') this.log?.info(line, 'payout confirmed');
    else this.log?.warn(line, `payout ${status}`);
    return status;
  }

  /** The relay's token balance for `mint` (its associated token account), base units. */
  async balance(mint: PublicKey, signal: AbortSignal): Promise<string> {
    const ata = getAssociatedTokenAddressSync(mint, this.relay, true);
    const res = await this.rpc(signal, () => this.connection.getTokenAccountBalance(ata, 'confirmed'));
    return res.value.amount;
  }

  /** One RPC call under the RPC timeout; any failure is RC_ERR_SETTLEMENT_UNAVAILABLE (retryable). */
  private async rpc<T>(signal: AbortSignal, fn: () => Promise<T>): Promise<T> {
    throwIfAborted(signal);
    const timeoutMs = this.options.rpcTimeoutMs ?? DEFAULT_RPC_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    let onAbort: (() => void) | undefined;
    const guard = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, `RPC did not answer within ${timeoutMs} ms`)), timeoutMs);
      onAbort = () => reject(new RelaycastError(ErrorCode.ABORTED, 'operation aborted'));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    try {
      return await Promise.race([fn(), guard]);
    } catch (err) {
      if (isRelaycastError(err)) throw err;
      throw new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, `RPC error: ${(err as Error).message}`, { cause: err });
    } finally {
      clearTimeout(timer);
      if (onAbort !== undefined) signal.removeEventListener('abort', onAbort);
    }
  }

  /** Retries `fn` on RC_ERR_SETTLEMENT_UNAVAILABLE with exponential backoff and jitter; other errors pass through. */
  private async retry<T>(what: string, signal: AbortSignal, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const min = this.options.retryMinMs ?? DEFAULT_REDEEM_RETRY_MIN_MS;
    const max = this.options.retryMaxMs ?? DEFAULT_REDEEM_RETRY_MAX_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn(signal);
      } catch (err) {
        if (!isRelaycastError(err, ErrorCode.SETTLEMENT_UNAVAILABLE) || attempt >= this.attempts) throw err;
        const delay = Math.min(max, min * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
        this.log?.debug({ what, attempt, delayMs: Math.round(delay), err }, 'retrying');
        await sleep(delay, signal);
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new RelaycastError(ErrorCode.ABORTED, 'operation aborted'));
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(new RelaycastError(ErrorCode.ABORTED, 'operation aborted'));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
