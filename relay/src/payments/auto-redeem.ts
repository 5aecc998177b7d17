import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import type { Logger } from 'pino';
import { DEFAULT_REDEEM_INTERVAL_MS, DEFAULT_REDEEM_THRESHOLD } from '../constants.js';
import type { Redeemer } from './redeemer.js';

export interface AutoRedeemOptions {
  /** Owed base units (all payers) at or above which a redemption starts. Default: DEFAULT_REDEEM_THRESHOLD. */
  thresholdBaseUnits?: bigint | undefined;
  /** Check interval. Default: DEFAULT_REDEEM_INTERVAL_MS. */
  intervalMs?: number | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

export interface AutoRedeem {
  /** Stops the timer and aborts a redemption in progress (its recorded payout resumes on the next start). */
  stop(): Promise<void>;
}

/**
 * Redeems on a timer whenever the relay is owed at least the threshold, or a payout recorded by an
 * earlier run is still unsettled (so a restart finishes what a crash interrupted). The first check
 * runs at once.
 */
export function startAutoRedeem(redeemer: Redeemer, options: AutoRedeemOptions = {}): AutoRedeem {
  const threshold = options.thresholdBaseUnits ?? DEFAULT_REDEEM_THRESHOLD;
  const log = options.logger?.child({ component: 'auto-redeem' });
  const stopper = new AbortController();
  let running: Promise<void> | undefined;

  const tick = (): void => {
    if (running !== undefined || stopper.signal.aborted) return;
    let owed: bigint;
    let pending: boolean;
    try {
      owed = redeemer.owed().total;
      pending = redeemer.hasPending();
    } catch (err) {
      log?.error({ err }, 'cannot read the receipt store');
      return;
    }
    if (!pending && (owed === 0n || owed < threshold)) return;
    log?.info({ owed: owed.toString(), threshold: threshold.toString(), pending }, 'redeeming');
    running = redeemer
      .redeem(stopper.signal)
      .then((r) => log?.info({ amount: r.amount, errors: r.payers.filter((p) => p.error !== undefined).length }, 'redemption finished'))
      .catch((err: unknown) => {
        if (!isRelaycastError(err, ErrorCode.ABORTED)) log?.warn({ err }, 'redemption failed');
      })
      .finally(() => {
        running = undefined;
      });
  };

  const timer = setInterval(tick, options.intervalMs ?? DEFAULT_REDEEM_INTERVAL_MS);
  timer.unref();
  setImmediate(tick);
  return {
    async stop(): Promise<void> {
      clearInterval(timer);
      stopper.abort();
      await running;
    },
  };
}
