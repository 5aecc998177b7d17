import type { Connection } from '@solana/web3.js';
import type { Logger } from 'pino';
import { PAYOUT_WATCH_POLL_MS } from '../constants.js';
import { resolvePayout } from './payout-resolver.js';
import type { PayoutRecord, SettlementLedger } from './settlement-ledger.js';

/**
 * Follows every payout the settler submitted until the chain decides it (confirmed or void), so
 * paid-to-date moves without waiting for the relay's next redeem, and a payout never waits for
 * anyone's history to be scanned. At most one watch per payout, and the ledger allows one pending
 * payout per relay, so the watches are bounded by the relays owed. Stopped by `signal`.
 */
export class PayoutWatcher {
  readonly #watching = new Set<string>();
  readonly #connection: Connection;
  readonly #ledger: SettlementLedger;
  readonly #o: { rpcTimeoutMs: number; now: () => number; log: Logger; signal: AbortSignal };
  readonly #running = new Set<Promise<void>>();

  constructor(connection: Connection, ledger: SettlementLedger, o: { rpcTimeoutMs: number; now: () => number; log: Logger; signal: AbortSignal }) {
    this.#connection = connection;
    this.#ledger = ledger;
    this.#o = o;
  }

  watch(p: PayoutRecord): void {
    if (this.#watching.has(p.id) || this.#o.signal.aborted) return;
    this.#watching.add(p.id);
    const run = this.#follow(p).finally(() => {
      this.#watching.delete(p.id);
      this.#running.delete(run);
    });
    this.#running.add(run);
  }

  /** Resolves once every watch has stopped (after the signal aborted). */
  async idle(): Promise<void> {
    await Promise.allSettled([...this.#running]);
  }

  async #follow(p: PayoutRecord): Promise<void> {
    const { signal, log } = this.#o;
    let delay = PAYOUT_WATCH_POLL_MS;
    while (!signal.aborted) {
      try {
        // A redeem may have settled it meanwhile.
        if (this.#ledger.pendingPayout(p.relay)?.id !== p.id) return;
        const outcome = await resolvePayout(this.#connection, this.#ledger, p, { timeoutMs: this.#o.rpcTimeoutMs, signal, nowMs: this.#o.now(), log });
        if (outcome !== 'pending') {
          log.info({ payout: p.id, relay: p.relay, outcome }, 'payout resolved');
          return;
        }
        delay = PAYOUT_WATCH_POLL_MS;
      } catch (err) {
        if (signal.aborted) return;
        // The ledger may be closing, or the RPC failing: back off, the next redeem also resolves.
        log.debug({ payout: p.id, err }, 'payout status check failed');
        delay = Math.min(delay * 2, 10_000);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(done, delay);
        function done(): void {
          clearTimeout(t);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}
