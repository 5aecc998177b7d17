import {
  FrameType,
  RECEIPT_VERSION,
  amountForBytes,
  decodePublicKey,
  encodeSignedGrant,
  encodeSignedReceipt,
  receiptSigningBytes,
  type GrantFrame,
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
  /** Signing is async: receipts of one relay are signed and sent strictly in order. */
  tail: Promise<void>;
}

export interface ReceiptTotals {
  /** Receipts signed and handed to a relay connection. */
  receiptsSent: number;
  /** Verified bytes covered by the newest receipts, all relays together. */
  bytesReceipted: number;
  /** Their worth in token base units (decimal string: may exceed 2^53). */
  amountSigned: string;
}

/**
 * Running-total receipts, one account per relay: each credit of verified bytes raises that relay's
 * cumulative count and sends a newly signed receipt that supersedes the previous one. Receipts
 * never claim more than the grant's budget; bytes beyond it are simply not receipted (the relay's
 * credit limit then stops serving this session).
 */
export class ReceiptSigner {
  private readonly accounts = new Map<string, Account>();
  private readonly grantBytes: Uint8Array;
  private receiptsSent = 0;
  private readonly log: SdkLogger;

  constructor(
    readonly signer: SessionSigner,
    readonly grant: SignedGrant,
    private readonly send: (relayId: string, frame: GrantFrame | ReceiptFrame) => boolean,
    logger?: SdkLogger,
  ) {
    this.grantBytes = encodeSignedGrant(grant);
    this.log = logger ?? silentLogger;
  }

  /** The GRANT frame every new relay connection gets before any receipt. */
  grantFrame(): GrantFrame {
    return { type: FrameType.GRANT, requestId: 0, signedGrant: this.grantBytes };
  }

  /** Records `bytes` more verified bytes from `relayId` and sends the new running total. */
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
      if (this.accounts.size >= MAX_RECEIPT_ACCOUNTS) this.accounts.delete(this.accounts.keys().next().value as string);
      acct = { relay, sequence: 0, bytes: 0, tail: Promise.resolve() };
      this.accounts.set(relayId, acct);
    }
    const g = this.grant.grant;
    const next = acct.bytes + bytes;
    if (amountForBytes(next, g.pricePerGiB) > g.budget) {
      this.log.warn({ relayId }, 'grant budget reached: further bytes from this relay are not receipted');
      return acct.tail;
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
      timestampMs: Math.min(Date.now(), g.expiresAtMs),
    };
    const a = acct;
    a.tail = a.tail.then(async () => {
      const signature = await this.signer.sign(receiptSigningBytes(receipt));
      const sent = this.send(relayId, { type: FrameType.RECEIPT, requestId: 0, signedReceipt: encodeSignedReceipt({ receipt, signature }) });
      if (sent) this.receiptsSent++;
      // Not sent (channel closed): the next receipt to this relay carries the total anyway.
    }).catch((err: unknown) => this.log.warn({ relayId, err: String(err) }, 'signing a receipt failed'));
    return a.tail;
  }

  totals(): ReceiptTotals {
    let bytes = 0;
    let amount = 0n;
    for (const a of this.accounts.values()) {
      bytes += a.bytes;
      amount += amountForBytes(a.bytes, this.grant.grant.pricePerGiB);
    }
    return { receiptsSent: this.receiptsSent, bytesReceipted: bytes, amountSigned: amount.toString() };
  }
}
