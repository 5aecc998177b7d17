import {
  FrameType,
  RECEIPT_VERSION,
  amountForBytes,
  bindSigningBytes,
  decodePublicKey,
  encodeSignedGrant,
  encodeSignedReceipt,
  receiptSigningBytes,
  type BindFrame,
  type Receipt,
  type ReceiptFrame,
  type SignedGrant,
} from '@relaycast/protocol';
import { MAX_RECEIPT_ACCOUNTS } from './constants.js';
import { silentLogger, type SdkLogger } from './logger.js';
import type { SessionSigner } from './session-key.js';

interface Account {
  relay: Uint8Array;
  sequence: number;
  bytes: number;
  /** The newest signed receipt, kept until a bound channel took it (a relay not bound yet gets it after BIND). */
  unsent: ReceiptFrame | undefined;
  /** Signing is async: receipts of one relay are signed and sent strictly in order. */
  tail: Promise<void>;
}

/** Payment totals of the current grant: what the viewer's receipts have promised relays so far. */
export interface ReceiptTotals {
  /** Receipts signed and handed to a relay connection. */
  receiptsSent: number;
  /** Verified bytes covered by the newest receipts, all relays together. */
  bytesReceipted: number;
  /** Their worth in token base units (decimal string: may exceed 2^53); never more than the grant's budget. */
  amountSigned: string;
}

/**
 * The payment side of one grant: BIND frames that prove the session key holds a relay's channel,
 * and running-total receipts, one account per relay: each credit of verified bytes raises that
 * relay's cumulative count and signs a receipt that supersedes the previous one.
 *
 * The grant's budget is what the WHOLE grant may be paid (docs/PAYMENTS.md): the receipts' amounts
 * summed over every relay never exceed it. Bytes beyond it are simply not receipted (the relays'
 * credit limits then stop serving this session and the origin takes over).
 */
export class ReceiptSigner {
  private readonly accounts = new Map<string, Account>();
  readonly grantBytes: Uint8Array;
  private receiptsSent = 0;
  /** Amount of accounts dropped to keep the table bounded: still signed, so still spent. */
  private evictedAmount = 0n;
  private readonly log: SdkLogger;

  constructor(
    readonly signer: SessionSigner,
    readonly grant: SignedGrant,
    /** Hands a receipt to that relay's channel; false when it could not go (closed, or not bound yet). */
    private readonly send: (relayId: string, frame: ReceiptFrame) => boolean,
    logger?: SdkLogger,
  ) {
    this.grantBytes = encodeSignedGrant(grant);
    this.log = logger ?? silentLogger;
  }

  /**
   * The BIND answering `challenge` from `relayId`: grant, the tracker's assignment, and the session
   * key's signature over bindSigningBytes(challenge, relay key). Rejects when the relay id is not
   * a key or signing fails.
   */
  async bindFrame(challenge: Uint8Array, relayId: string, assignment: Uint8Array | undefined): Promise<BindFrame> {
    const proof = await this.signer.sign(bindSigningBytes(challenge, decodePublicKey(relayId)));
    return { type: FrameType.BIND, requestId: 0, signedGrant: this.grantBytes, signedAssignment: assignment, proof };
  }

  /** After a BIND: the newest receipt of that relay that no bound channel took yet, if any. */
  flush(relayId: string): Promise<void> {
    const acct = this.accounts.get(relayId);
    if (acct === undefined) return Promise.resolve();
    acct.tail = acct.tail.then(() => {
      const frame = acct.unsent;
      if (frame !== undefined && this.send(relayId, frame)) {
        acct.unsent = undefined;
        this.receiptsSent++;
      }
    });
    return acct.tail;
  }

  /** Sum of what every relay's newest receipt claims (evicted accounts included). */
  private spent(): bigint {
    let amount = this.evictedAmount;
    for (const a of this.accounts.values()) amount += amountForBytes(a.bytes, this.grant.grant.pricePerGiB);
    return amount;
  }

  /** Records `bytes` more verified bytes from `relayId` and signs (and sends, if bound) the new running total. */
  credit(relayId: string, bytes: number): Promise<void> {
    if (bytes <= 0) return Promise.resolve();
    let acct = this.accounts.get(relayId);
    if (acct === undefined) {
      let relay: Uint8Array;
      try {
        relay = decodePublicKey(relayId);
      } catch {
        return Promise.resolve(); // not a relay key: nothing can be receipted
      }
      if (this.accounts.size >= MAX_RECEIPT_ACCOUNTS) {
        const oldest = this.accounts.keys().next().value as string;
        this.evictedAmount += amountForBytes(this.accounts.get(oldest)?.bytes ?? 0, this.grant.grant.pricePerGiB);
        this.accounts.delete(oldest);
      }
      acct = { relay, sequence: 0, bytes: 0, unsent: undefined, tail: Promise.resolve() };
      this.accounts.set(relayId, acct);
    }
    const g = this.grant.grant;
    const current = amountForBytes(acct.bytes, g.pricePerGiB);
    const left = g.budget - (this.spent() - current); // what this relay's receipts may claim in total
    let next = acct.bytes + bytes;
    if (amountForBytes(next, g.pricePerGiB) > left) {
      // Claim as many of the verified bytes as the budget still covers, and stop there.
      next = Math.max(acct.bytes, maxBytesFor(left, g.pricePerGiB));
      if (amountForBytes(next, g.pricePerGiB) <= current) {
        this.log.warn({ relayId }, 'grant budget reached: further bytes are not receipted');
        return acct.tail;
      }
    }
    acct.bytes = next;
    acct.sequence += 1;
    const receipt: Receipt = {
      version: RECEIPT_VERSION,
      grantNonce: g.nonce,
      sessionKey: g.sessionKey,
      relay: acct.relay,
      sequence: acct.sequence,
      cumulativeBytes: next,
      cumulativeAmount: amountForBytes(next, g.pricePerGiB),
      // Informational only (relays and the settler decide expiry on their own clocks).
      timestampMs: Date.now(),
    };
    const a = acct;
    a.tail = a.tail
      .then(async () => {
        const signature = await this.signer.sign(receiptSigningBytes(receipt));
        const frame: ReceiptFrame = { type: FrameType.RECEIPT, requestId: 0, signedReceipt: encodeSignedReceipt({ receipt, signature }) };
        if (this.send(relayId, frame)) {
          a.unsent = undefined;
          this.receiptsSent++;
        } else {
          // Not bound yet (or closed): flush() sends it after the BIND; a newer one replaces it.
          a.unsent = frame;
        }
      })
      .catch((err: unknown) => this.log.warn({ relayId, err: String(err) }, 'signing a receipt failed'));
    return a.tail;
  }

  totals(): ReceiptTotals {
    let bytes = 0;
    for (const a of this.accounts.values()) bytes += a.bytes;
    return { receiptsSent: this.receiptsSent, bytesReceipted: bytes, amountSigned: this.spent().toString() };
  }
}

/** Most bytes worth at most `amount` at `pricePerGiB` (amountForBytes floors). */
function maxBytesFor(amount: bigint, pricePerGiB: bigint): number {
  if (amount < 0n) return 0;
  if (pricePerGiB === 0n) return Number.MAX_SAFE_INTEGER;
  const bytes = ((amount + 1n) * (1n << 30n) - 1n) / pricePerGiB;
  return bytes > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(bytes);
}
