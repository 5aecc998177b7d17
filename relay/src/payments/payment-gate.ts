import {
  ErrorCode,
  RelaycastError,
  TokenBucket,
  checkReceipt,
  decodeSignedGrant,
  decodeSignedReceipt,
  encodeBase58,
  toRelaycastError,
  type GrantFrame,
  type ReceiptFrame,
} from '@relaycast/protocol';
import { sessionKeyObject, verifyGrantSignature, verifyReceiptSignature } from '@relaycast/protocol/node';
import type { Logger } from 'pino';
import { DEFAULT_CREDIT_LIMIT_BYTES, DEFAULT_MAX_PAYING_SESSIONS, DEFAULT_PAYMENT_FRAME_BURST, DEFAULT_PAYMENT_FRAMES_PER_SEC } from '../constants.js';
import type { ReceiptStore } from './receipt-store.js';
import { SessionLedger, type PayingSession } from './session-ledger.js';

export interface PaymentGateOptions {
  /** The relay's raw 32-byte public key (receipts must name it). Required. */
  relayKey: Uint8Array;
  /** base58 ids of the payers whose grants the relay accepts; at least one. Required. */
  acceptedPayers: readonly string[];
  /** Durable receipt store. Required. */
  store: ReceiptStore;
  /** Unreceipted bytes a session (or a channel without a grant) may owe before new requests are refused. Default: DEFAULT_CREDIT_LIMIT_BYTES (32 MiB). */
  creditLimitBytes?: number | undefined;
  /** GRANT/RECEIPT frames per second per channel; beyond the burst the channel is closed. Default: DEFAULT_PAYMENT_FRAMES_PER_SEC (20). */
  paymentFramesPerSec?: number | undefined;
  /** Payment frames a quiet channel may send at once. Default: DEFAULT_PAYMENT_FRAME_BURST (40). */
  paymentFrameBurst?: number | undefined;
  /** Paying sessions kept in memory. Default: DEFAULT_MAX_PAYING_SESSIONS (50,000). */
  maxSessions?: number | undefined;
  /** Clock (Unix ms) for grant expiry; tests inject one. Default: Date.now. */
  now?: (() => number) | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

/** The payment side of one viewer channel, as the channel server drives it. */
export interface ChannelPayments {
  /**
   * Handles a GRANT or RECEIPT frame. Returns undefined when accepted, else the error to answer
   * (ERROR frame, requestId 0); RC_ERR_RATE_LIMITED means the channel floods and must be closed.
   */
  onFrame(frame: GrantFrame | ReceiptFrame): RelaycastError | undefined;
  /** Whether a new REQUEST for `url` may be served; the error to answer otherwise. */
  admit(url: string): RelaycastError | undefined;
  /** Counts DATA payload bytes handed to the channel. */
  served(bytes: number): void;
  /** The channel closed. */
  close(): void;
}

/** What ChannelServer needs: a per-channel payment handler. */
export interface ChannelPaymentGate {
  openChannel(): ChannelPayments;
}

export interface PaymentGateStats {
  /** Paying sessions in memory. */
  sessions: number;
  grantsAccepted: number;
  receiptsAccepted: number;
  /** Refused grants and receipts, by error code. */
  refusedByCode: Record<string, number>;
  /** Delivered bytes not yet covered by a stored receipt (sessions in memory). */
  unreceiptedBytes: number;
}

function checkPositive(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a positive integer`);
  return v;
}

/**
 * Grants and receipts on the data channel: accepts grants of configured payers only, verifies
 * receipts (cached session KeyObject), checks them against the newest stored one, stores them
 * durably before counting them, and enforces the credit limit and grant scope on requests.
 */
export class PaymentGate implements ChannelPaymentGate {
  readonly creditLimitBytes: number;
  private readonly accepted: ReadonlySet<string>;
  private readonly ledger: SessionLedger;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private readonly counters = { grantsAccepted: 0, receiptsAccepted: 0, refusedByCode: {} as Record<string, number> };

  constructor(readonly options: PaymentGateOptions) {
    if (options.acceptedPayers.length === 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'a payment gate needs at least one accepted payer');
    this.accepted = new Set(options.acceptedPayers);
    this.creditLimitBytes = checkPositive(options.creditLimitBytes ?? DEFAULT_CREDIT_LIMIT_BYTES, 'creditLimitBytes');
    checkPositive(options.paymentFramesPerSec ?? DEFAULT_PAYMENT_FRAMES_PER_SEC, 'paymentFramesPerSec');
    checkPositive(options.paymentFrameBurst ?? DEFAULT_PAYMENT_FRAME_BURST, 'paymentFrameBurst');
    this.ledger = new SessionLedger(checkPositive(options.maxSessions ?? DEFAULT_MAX_PAYING_SESSIONS, 'maxSessions'));
    this.now = options.now ?? Date.now;
    this.log = options.logger?.child({ component: 'payment-gate' });
  }

  openChannel(): ChannelPayments {
    return new PayingChannel(this);
  }

  stats(): PaymentGateStats {
    return {
      sessions: this.ledger.size,
      grantsAccepted: this.counters.grantsAccepted,
      receiptsAccepted: this.counters.receiptsAccepted,
      refusedByCode: { ...this.counters.refusedByCode },
      unreceiptedBytes: this.ledger.totalUnreceiptedBytes(),
    };
  }

  /** @internal */
  refuse(err: RelaycastError): RelaycastError {
    this.counters.refusedByCode[err.code] = (this.counters.refusedByCode[err.code] ?? 0) + 1;
    this.log?.debug({ code: err.code }, 'payment frame refused');
    return err;
  }

  /** @internal Verifies and binds a grant; throws typed errors. */
  acceptGrant(bytes: Uint8Array): PayingSession {
    const sg = decodeSignedGrant(bytes);
    const payer = encodeBase58(sg.grant.payer);
    if (!this.accepted.has(payer)) throw new RelaycastError(ErrorCode.PAYER_UNKNOWN, 'this relay does not accept grants of that payer', { details: { payer } });
    if (!verifyGrantSignature(sg)) throw new RelaycastError(ErrorCode.GRANT_SIGNATURE, 'grant signature does not verify under its payer key');
    if (sg.grant.expiresAtMs <= this.now()) throw new RelaycastError(ErrorCode.GRANT_EXPIRED, 'grant has expired');
    this.options.store.putGrant(sg, payer, bytes);
    const session = this.ledger.bind(sg.grant, payer, () => ({
      keyObject: sessionKeyObject(sg.grant.sessionKey),
      newest: this.options.store.newest(sg.grant.sessionKey)?.receipt,
    }));
    this.counters.grantsAccepted++;
    return session;
  }

  /** @internal Verifies, checks and durably stores a receipt, then counts it; throws typed errors. */
  acceptReceipt(bytes: Uint8Array): void {
    const sr = decodeSignedReceipt(bytes);
    const session = this.ledger.get(sr.receipt.sessionKey);
    if (session === undefined) throw new RelaycastError(ErrorCode.RECEIPT_NO_GRANT, 'no grant was presented for this session key');
    if (!verifyReceiptSignature(sr, session.keyObject)) throw new RelaycastError(ErrorCode.RECEIPT_SIGNATURE, 'receipt signature does not verify under its session key');
    checkReceipt(sr.receipt, session.grant, { relay: this.options.relayKey, previous: session.newest });
    let stored: boolean;
    try {
      stored = this.options.store.putReceipt(sr.receipt, session.payer, bytes);
    } catch (err) {
      session.storeFailed = true;
      this.log?.error({ err: toRelaycastError(err), session: session.id }, 'cannot store a receipt; paid delivery to this session stops');
      throw err;
    }
    session.storeFailed = false;
    if (!stored) {
      // Another writer (a second relay process on the same file) stored a newer one: catch up.
      session.newest = this.options.store.newest(sr.receipt.sessionKey)?.receipt ?? session.newest;
      throw new RelaycastError(ErrorCode.RECEIPT_STALE, 'a newer receipt is already stored');
    }
    session.newest = sr.receipt;
    if (session.servedBytes < sr.receipt.cumulativeBytes) session.servedBytes = sr.receipt.cumulativeBytes;
    this.counters.receiptsAccepted++;
  }

  /** @internal */
  release(session: PayingSession): void {
    this.ledger.release(session);
  }

  /** @internal */
  get clock(): number {
    return this.now();
  }
}

class PayingChannel implements ChannelPayments {
  private session: PayingSession | undefined;
  /** Bytes served before this channel presented a grant. */
  private ungrantedBytes = 0;
  private readonly bucket: TokenBucket;
  private closed = false;

  constructor(private readonly gate: PaymentGate) {
    const o = gate.options;
    this.bucket = new TokenBucket(o.paymentFramesPerSec ?? DEFAULT_PAYMENT_FRAMES_PER_SEC, o.paymentFrameBurst ?? DEFAULT_PAYMENT_FRAME_BURST);
  }

  onFrame(frame: GrantFrame | ReceiptFrame): RelaycastError | undefined {
    if (this.closed) return undefined;
    if (!this.bucket.take()) return this.gate.refuse(new RelaycastError(ErrorCode.RATE_LIMITED, 'too many payment frames on this channel'));
    try {
      if ('signedGrant' in frame) {
        const session = this.gate.acceptGrant(frame.signedGrant);
        if (this.session !== session) {
          if (this.session !== undefined) this.gate.release(this.session);
          this.session = session;
        } else {
          // Re-presenting the same session's grant on this channel: keep one reference.
          this.gate.release(session);
        }
        session.servedBytes += this.ungrantedBytes;
        this.ungrantedBytes = 0;
      } else {
        this.gate.acceptReceipt(frame.signedReceipt);
      }
      return undefined;
    } catch (err) {
      return this.gate.refuse(toRelaycastError(err, ErrorCode.RECEIPT_MALFORMED));
    }
  }

  admit(url: string): RelaycastError | undefined {
    const limit = this.gate.creditLimitBytes;
    const s = this.session;
    if (s === undefined) {
      if (this.ungrantedBytes > limit) return new RelaycastError(ErrorCode.CREDIT_EXCEEDED, 'present a grant to be served more');
      return undefined;
    }
    if (!url.startsWith(s.grant.scope)) return new RelaycastError(ErrorCode.GRANT_SCOPE, 'the session grant does not cover this URL');
    if (s.grant.expiresAtMs <= this.gate.clock) return new RelaycastError(ErrorCode.GRANT_EXPIRED, 'the session grant has expired');
    if (s.storeFailed) return new RelaycastError(ErrorCode.RECEIPT_STORE, 'this relay cannot store receipts right now');
    if (SessionLedger.unreceiptedBytes(s) > limit) return new RelaycastError(ErrorCode.CREDIT_EXCEEDED, 'send a receipt for the bytes delivered so far');
    return undefined;
  }

  served(bytes: number): void {
    if (this.session !== undefined) this.session.servedBytes += bytes;
    else this.ungrantedBytes += bytes;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.session !== undefined) this.gate.release(this.session);
    this.session = undefined;
  }
}
