import { ErrorCode, RelaycastError, isRelaycastError, throwIfAborted, toRelaycastError } from '@relaycast/protocol';
import { MAX_REDEEM_ITEMS, type SettlerInfo } from '@relaycast/protocol/settlement';
import { getAssociatedTokenAddressSync } from '@solana/spl-token';
import { Connection, PublicKey, Transaction } from '@solana/web3.js';
import type { Logger } from 'pino';
import {
  DEFAULT_PAYOUT_CONFIRM_TIMEOUT_MS,
  DEFAULT_IMPLAUSIBLE_RETRY_MS,
  DEFAULT_REDEEM_ATTEMPTS,
  DEFAULT_REDEEM_RETRY_MAX_MS,
  DEFAULT_REDEEM_RETRY_MIN_MS,
  DEFAULT_RPC_TIMEOUT_MS,
  PAYOUT_CONFIRM_POLL_MS,
  PAYOUT_RESEND_MS,
} from '../constants.js';
import { checkPayoutTransaction } from './payout-check.js';
import type { ItemCredit, PayoutRecord, ReceiptStore, ReportItem } from './receipt-store.js';
import { SettlerClient, type RedeemAnswer, type RelayPaymentSigner } from './settler-client.js';

export interface RedeemerOptions {
  /** The relay's receipt store. Required. */
  store: ReceiptStore;
  /** The relay key: authenticates redeem requests (payouts need no relay signature: the payer's treasury owner pays the fee). Required. */
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
  /** Time after which a receipt the settler found implausible is sent again (the plausible amount grows with the grant's age). Default: DEFAULT_IMPLAUSIBLE_RETRY_MS (5 min). */
  implausibleRetryMs?: number | undefined;
  /** Clock (Unix ms); tests inject one. Default: Date.now. */
  now?: (() => number) | undefined;
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
  /** What the settler credits this relay in total now (Σ over its receipts). */
  credited: string;
  /** Shortfalls the settler reported this time (receipt amount − credited), by reason code. */
  shortfall: Record<string, string>;
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
 * by an earlier run (crash, timeout), send the receipts the settler has not answered, record what it
 * credits per receipt (and each shortfall with its reason), check the payout it returns against
 * Σ credited − paid, record it, (re)submit the same bytes, and resolve it by its id. The payer's
 * treasury owner signs and pays the fee; the relay signs nothing. Only a confirmed payout moves
 * paid-to-date, so retries and restarts never count twice, and a shortfall never blocks a later payout.
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
    for (const [payer, url] of options.payers)
      this.clients.set(payer, new SettlerClient({ baseUrl: url, signer: options.signer, timeoutMs: options.settlerTimeoutMs }));
  }

  private get retryBefore(): number {
    return (this.options.now ?? Date.now)() - (this.options.implausibleRetryMs ?? DEFAULT_IMPLAUSIBLE_RETRY_MS);
  }

  /**
   * What a redemption could bring now, per payer and in total: Σ credited − confirmed payouts, plus
   * what receipts not yet answered (or due for a plausibility retry) claim beyond their credit.
   */
  owed(): { total: bigint; byPayer: Map<string, bigint> } {
    const byPayer = new Map<string, bigint>();
    let total = 0n;
    for (const payer of this.options.payers.keys()) {
      const owed = this.options.store.redeemable(payer, this.retryBefore);
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
    const out: PayerRedemption = { payer, payouts: [], amount: '0', paidToDate: '0', rejected: {}, credited: '0', shortfall: {} };
    let total = 0n;
    let info: SettlerInfo | undefined;
    try {
      info = await this.retry('settler info', signal, (s) => client.info(s));
      if (info.payer !== payer)
        throw new RelaycastError(ErrorCode.CONFIG_INVALID, `settler at ${this.options.payers.get(payer) ?? ''} is payer ${info.payer}, not ${payer}`);
      for (const p of store.pendingPayouts(payer)) {
        const settled = await this.settle(p, signal);
        if (settled === 'confirmed') {
          out.payouts.push({ signature: p.signature, amount: p.amount.toString() });
          total += p.amount;
        }
      }
      const payerKey = new PublicKey(info.payer);
      // Shortfalls the settler found implausible are retried once per call, in the first round.
      let retryBefore = this.retryBefore;
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const due = store.receiptsToReport(payer, MAX_REDEEM_ITEMS, retryBefore);
        retryBefore = -1;
        const { sent, answer } = await this.retry('redeem request', signal, (s) => client.redeem(due, s));
        const items = due.slice(0, sent);
        this.recordAnswer(items, answer, out);
        // More is due when this request could not carry all (the body limit), or the batch was full.
        const moreDue = sent < due.length || due.length === MAX_REDEEM_ITEMS;
        // The settler submits payouts itself: one whose answer never reached the relay (a crash, a
        // dropped connection) may have landed. Its paid total says so; the ids are checked on chain.
        const settlerPaidBefore = answer.status === 'nothing-owed' ? answer.cumulativePaid : answer.cumulativePaid - answer.amount;
        if (settlerPaidBefore > store.paidToDate(payer) && store.payout(answer.status === 'payout' ? answer.signature : '') === undefined) {
          for (const p of await this.reconcile(client, payer, payerKey, info, signal)) {
            out.payouts.push(p);
            total += BigInt(p.amount);
          }
        }
        const paidToDate = store.paidToDate(payer);
        const owed = store.credited(payer) - paidToDate;
        if (answer.status === 'nothing-owed') {
          if (answer.cumulativePaid !== paidToDate)
            this.log?.warn(
              { payer, settlerPaid: answer.cumulativePaid.toString(), relayPaid: paidToDate.toString() },
              'settler and relay disagree on paid to date',
            );
          if (!moreDue) break;
          continue;
        }
        const known = store.payout(answer.signature);
        if (known !== undefined && known.status !== 'pending') {
          if (known.status === 'expired' || known.status === 'failed') {
            // The settler has not noticed yet that this one can no longer land; ask again shortly.
            await sleep(PAYOUT_CONFIRM_POLL_MS, signal);
            continue;
          }
          throw new RelaycastError(ErrorCode.PAYOUT_MISMATCH, `payout ${answer.signature} was already settled (${known.status}); not counting it again`);
        }
        // A payout the relay already recorded (a resumed run) was checked before; it still pays at most what is owed.
        const checked = checkPayoutTransaction(answer.transaction, {
          relay: this.relay,
          payer: payerKey,
          mint: new PublicKey(info.mint),
          amount: known === undefined ? (owed > 0n ? owed : 0n) : known.amount,
          paidToDate,
          treasuryTokenAccount: new PublicKey(info.treasuryTokenAccount),
          decimals: info.decimals,
          merkleRoot: answer.merkleRoot,
        });
        if (answer.amount !== checked.amount || answer.cumulativePaid !== checked.cumulativePaid || answer.signature !== checked.signature) {
          throw new RelaycastError(ErrorCode.PAYOUT_MISMATCH, 'payout refused: the settler’s amount, paid total or id differ from its transaction');
        }
        if (checked.amount < owed)
          this.log?.info({ payer, amount: checked.amount.toString(), owed: owed.toString() }, 'payout covers part of what is owed; the rest follows');
        const signature = checked.signature;
        // Recorded before anything is sent: a crash from here on resumes this exact transaction.
        store.recordPayout({
          signature,
          payer,
          amount: checked.amount,
          cumulativePaid: checked.cumulativePaid,
          transaction: answer.transaction,
          lastValidBlockHeight: answer.lastValidBlockHeight,
        });
        const record = store.payout(signature);
        if (record === undefined || record.status !== 'pending') throw new RelaycastError(ErrorCode.RECEIPT_STORE, `payout ${signature} could not be recorded`);
        this.log?.info({ payer, signature, amount: checked.amount.toString() }, 'payout checked; resolving it by id');
        const settled = await this.settle(record, signal);
        if (settled === 'confirmed') {
          out.payouts.push({ signature, amount: checked.amount.toString() });
          total += checked.amount;
          const more = store.credited(payer) - store.paidToDate(payer);
          if (!moreDue && more <= 0n && store.receiptsToReport(payer, 1).length === 0) break;
        } else if (settled === 'failed') {
          throw new RelaycastError(ErrorCode.SETTLEMENT_UNAVAILABLE, `payout ${signature} failed on chain`);
        }
        // Expired: ask again; the settler builds a new payout once the old one can no longer land.
      }
      out.credited = store.credited(payer).toString();
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

  private recordAnswer(items: ReportItem[], answer: RedeemAnswer, out: PayerRedemption): void {
    const refused = new Map<number, string>();
    for (const r of answer.rejected) if (r.index >= 0 && r.index < items.length) refused.set(r.index, r.code);
    const credits = new Map<number, ItemCredit>();
    for (const c of answer.credited) if (c.index >= 0 && c.index < items.length && !refused.has(c.index)) credits.set(c.index, c);
    const refusedItems = [...refused].map(([i, code]) => ({ item: items[i] as ReportItem, code }));
    for (const { code } of refusedItems) out.rejected[code] = (out.rejected[code] ?? 0) + 1;
    const credited = [...credits].map(([i, credit]) => ({ item: items[i] as ReportItem, credit }));
    for (const { credit } of credited) {
      if (credit.shortfall !== undefined && credit.shortfall.amount > 0n) {
        out.shortfall[credit.shortfall.code] = (BigInt(out.shortfall[credit.shortfall.code] ?? '0') + credit.shortfall.amount).toString();
      }
    }
    // An item neither refused nor credited stays unanswered and is sent again next time.
    const unanswered = items.length - refused.size - credits.size;
    if (unanswered > 0) this.log?.warn({ unanswered }, 'settler answered neither a credit nor a refusal for some items');
    this.options.store.markReported(credited, refusedItems, (this.options.now ?? Date.now)());
  }

  /**
   * Counts payouts that landed without the relay having recorded them: for each payout the settler
   * lists that the relay does not know, in order of its paid total, the transaction is fetched by
   * id, checked like a new payout (fee payer, transfer to this relay, amount, memo adding up to the
   * relay's own paid-to-date) and, when it succeeded on chain, recorded as confirmed.
   */
  private async reconcile(
    client: SettlerClient,
    payer: string,
    payerKey: PublicKey,
    info: SettlerInfo,
    signal: AbortSignal,
  ): Promise<{ signature: string; amount: string }[]> {
    const store = this.options.store;
    const listed = await this.retry('settler payouts', signal, (s) => client.payouts(s));
    const found: { signature: string; amount: string }[] = [];
    for (const p of [...listed].sort((a, b) => (a.cumulativePaid < b.cumulativePaid ? -1 : a.cumulativePaid > b.cumulativePaid ? 1 : 0))) {
      const known = store.payout(p.signature);
      if (known?.status === 'confirmed') continue;
      const paidToDate = store.paidToDate(payer);
      if (p.cumulativePaid <= paidToDate) continue;
      const landed = await this.retry('payout transaction', signal, (s) =>
        this.rpc(s, () => this.connection.getTransaction(p.signature, { commitment: 'confirmed', maxSupportedTransactionVersion: 0 })),
      );
      if (landed === null || landed.meta?.err != null || landed.transaction.message.version !== 'legacy') {
        this.log?.warn({ payer, signature: p.signature }, 'a payout the settler lists is not a successful legacy transaction on chain; not counted');
        continue;
      }
      const tx = Transaction.populate(landed.transaction.message, landed.transaction.signatures);
      const wire = new Uint8Array(tx.serialize({ requireAllSignatures: false, verifySignatures: false }));
      const owed = store.credited(payer) - paidToDate;
      const checked = checkPayoutTransaction(wire, {
        relay: this.relay,
        payer: payerKey,
        mint: new PublicKey(info.mint),
        amount: owed > 0n ? owed : 0n,
        paidToDate,
        treasuryTokenAccount: new PublicKey(info.treasuryTokenAccount),
        decimals: info.decimals,
      });
      if (checked.signature !== p.signature) throw new RelaycastError(ErrorCode.PAYOUT_MISMATCH, `payout ${p.signature} on chain has another id`);
      store.recordPayout({
        signature: p.signature,
        payer,
        amount: checked.amount,
        cumulativePaid: checked.cumulativePaid,
        transaction: wire,
        lastValidBlockHeight: 0,
      });
      store.settlePayout(p.signature, 'confirmed');
      this.log?.info({ payer, signature: p.signature, amount: checked.amount.toString() }, 'payout found by id: it landed while its answer was lost');
      found.push({ signature: p.signature, amount: checked.amount.toString() });
    }
    return found;
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
        throw new RelaycastError(
          ErrorCode.SETTLEMENT_UNAVAILABLE,
          `payout ${p.signature} neither confirmed nor expired in time; it stays pending and is resumed next time`,
        );
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
