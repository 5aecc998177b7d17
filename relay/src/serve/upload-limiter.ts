import { ErrorCode, RelaycastError } from '@relaycast/protocol';

/**
 * Relay-wide upload cap (bytes per second) shared by every viewer channel, so an operator can bound
 * what the relay takes of their uplink. Waiters are served first come, first served.
 */
export class UploadLimiter {
  private available = 0;
  private last = performance.now();
  private tail: Promise<void> = Promise.resolve();
  private bytesPerSec = 0;

  /** `bytesPerSec` 0 means unlimited. */
  constructor(bytesPerSec: number) {
    this.setRate(bytesPerSec);
  }

  get rate(): number {
    return this.bytesPerSec;
  }

  /** Changes the cap at run time (operators adjust bandwidth without a restart); 0 lifts it. */
  setRate(bytesPerSec: number): void {
    if (!Number.isSafeInteger(bytesPerSec) || bytesPerSec < 0) {
      throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'upload cap must be a non-negative integer of bytes per second');
    }
    this.bytesPerSec = bytesPerSec;
    // One second of burst keeps short segments smooth without exceeding the cap over time.
    this.available = bytesPerSec;
    this.last = performance.now();
  }

  /** Resolves when `bytes` may be sent; rejects with RC_ERR_ABORTED if `signal` aborts first. */
  take(bytes: number, signal: AbortSignal): Promise<void> {
    if (this.bytesPerSec === 0) {
      return signal.aborted ? Promise.reject(new RelaycastError(ErrorCode.ABORTED, 'upload wait aborted')) : Promise.resolve();
    }
    const turn = this.tail.then(() => this.wait(bytes, signal));
    this.tail = turn.catch(() => undefined);
    return turn;
  }

  private async wait(bytes: number, signal: AbortSignal): Promise<void> {
    for (;;) {
      if (signal.aborted) throw new RelaycastError(ErrorCode.ABORTED, 'upload wait aborted');
      if (this.bytesPerSec === 0) return;
      const now = performance.now();
      this.available = Math.min(this.bytesPerSec, this.available + ((now - this.last) / 1000) * this.bytesPerSec);
      this.last = now;
      if (this.available >= Math.min(bytes, this.bytesPerSec)) {
        this.available -= bytes;
        return;
      }
      const ms = Math.max(1, ((bytes - this.available) / this.bytesPerSec) * 1000);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(ms, 250));
        function done(): void {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          resolve();
        }
        signal.addEventListener('abort', done, { once: true });
      });
    }
  }
}
