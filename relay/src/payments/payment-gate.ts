import { randomBytes } from 'node:crypto';
import {
  BIND_CHALLENGE_BYTES,
  ErrorCode,
  RelaycastError,
  TokenBucket,
  bytesEqual,
  checkAssignment,
  checkReceipt,
  decodeSignedAssignment,
  decodeSignedGrant,
  decodeSignedReceipt,
  encodeBase58,
  toRelaycastError,
  type BindFrame,
  type ReceiptFrame,
  type SignedGrant,
} from '@relaycast/protocol';
import { sessionKeyObject, verifyAssignmentSignature, verifyBindProof, verifyGrantSignature, verifyReceiptSignature } from '@relaycast/protocol/node';
import type { Logger } from 'pino';
import {
  DEFAULT_CREDIT_LIMIT_BYTES,
  DEFAULT_MAX_PAYING_SESSIONS,
  DEFAULT_PAYMENT_FRAME_BURST,
  DEFAULT_PAYMENT_FRAMES_PER_SEC,
  DEFAULT_UNBOUND_CREDIT_BYTES,
} from '../constants.js';
import type { Admission, ChannelPaymentGate, ChannelPayments } from '../serve/channel-payments.js';
import type { ReceiptStore } from './receipt-store.js';
import { SessionLedger, type PayingSession } from './session-ledger.js';

/** Requests in flight are cut once a channel's debt passes this many times its credit (admission alone cannot stop concurrent requests). */
const HARD_LIMIT_FACTOR = 2;

/** Tracker keys learned from the tracker connection that stay trusted (a restarted tracker may come back with a new key while sessions it assigned are still bound). */
const MAX_LEARNED_TRACKER_KEYS = 4;

export interface PaymentGateOptions {
  /** The relay's raw 32-byte public key (receipts, assignments and BIND proofs must name it). Required. */
  relayKey: Uint8Array;
  /** base58 ids of the payers whose grants the relay accepts; at least one. Required. */
  acceptedPayers: readonly string[];
  /** Durable receipt store. Required. */
  store: ReceiptStore;
  /**
   * Tracker keys whose assignments bind sessions, besides the key the relay's own tracker announces
   * (`learnTrackerKey`, from `registered.trackerKey`); `--trusted-tracker`. Default: none.
   */
  trustedTrackers?: readonly Uint8Array[] | undefined;
  /** Unreceipted bytes (served plus origin bytes fetched for it, see below) a bound session may owe before new requests are refused. Default: DEFAULT_CREDIT_LIMIT_BYTES. */
  creditLimitBytes?: number | undefined;
  /** Bytes an unbound channel may take (served; origin bytes fetched for it count separately against the same figure). Default: DEFAULT_UNBOUND_CREDIT_BYTES. */
  unboundCreditBytes?: number | undefined;
  /** BIND/RECEIPT frames per second per channel; beyond the burst the channel is closed. Default: DEFAULT_PAYMENT_FRAMES_PER_SEC (20). */
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

export interface PaymentGateStats {
  /** Paying sessions in memory. */
  sessions: number;
  /** BIND frames accepted (channels bound). */
  bindsAccepted: number;
  receiptsAccepted: number;
  /** Refused BIND and RECEIPT frames, by error code. */
  refusedByCode: Record<string, number>;
  /** Delivered bytes not yet covered by a stored receipt (sessions in memory). */
  unreceiptedBytes: number;
  /** Bytes served to channels that never bound (closed unbound); the relay's cost of the unbound allowance. */
  unboundBytesForgiven: number;
  /** Origin bytes fetched for requests of channels and sessions (cache misses they caused). */
  originBytes: number;
}

function checkPositive(v: number, name: string): number {
  if (!Number.isSafeInteger(v) || v <= 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, `${name} must be a positive integer`);
  return v;
}

/**
 * Channel binding, receipts and credit on the data channel. A paid relay challenges every channel;
 * the channel is unbound (a small allowance, `unboundCreditBytes`) until the viewer proves, with
 * its session key's signature over that challenge, that it holds the key of a grant of an accepted
 * payer, unexpired on the relay's clock, and shows the tracker's assignment of that session to this
 * relay. Bytes a channel took before binding become the debt of the session it binds to; nothing a
 * channel took is ever charged to a session bound on another channel. Receipts are accepted only on
 * a channel bound to their session, verified (cached session KeyObject), checked against the newest
 * stored one, and stored durably before they count. Origin bytes a channel's cache misses caused
 * count against the same credit.
 */
export class PaymentGate implements ChannelPaymentGate {
  readonly creditLimitBytes: number;
  readonly unboundCreditBytes: number;
  private readonly accepted: ReadonlySet<string>;
  private readonly ledger: SessionLedger;
  private readonly now: () => number;
  private readonly log: Logger | undefined;
  private readonly configuredTrackers: readonly Uint8Array[];
  private learnedTrackers: Uint8Array[] = [];
  private readonly counters = { bindsAccepted: 0, receiptsAccepted: 0, unboundBytesForgiven: 0, originBytes: 0, refusedByCode: {} as Record<string, number> };

  constructor(readonly options: PaymentGateOptions) {
    if (options.acceptedPayers.length === 0) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'a payment gate needs at least one accepted payer');
    this.accepted = new Set(options.acceptedPayers);
    this.creditLimitBytes = checkPositive(options.creditLimitBytes ?? DEFAULT_CREDIT_LIMIT_BYTES, 'creditLimitBytes');
    this.unboundCreditBytes = checkPositive(options.unboundCreditBytes ?? DEFAULT_UNBOUND_CREDIT_BYTES, 'unboundCreditBytes');
    checkPositive(options.paymentFramesPerSec ?? DEFAULT_PAYMENT_FRAMES_PER_SEC, 'paymentFramesPerSec');
    checkPositive(options.paymentFrameBurst ?? DEFAULT_PAYMENT_FRAME_BURST, 'paymentFrameBurst');
    this.ledger = new SessionLedger(checkPositive(options.maxSessions ?? DEFAULT_MAX_PAYING_SESSIONS, 'maxSessions'));
    this.now = options.now ?? Date.now;
    this.log = options.logger?.child({ component: 'payment-gate' });
    for (const k of options.trustedTrackers ?? []) {
      if (!(k instanceof Uint8Array) || k.byteLength !== 32) throw new RelaycastError(ErrorCode.CONFIG_INVALID, 'a trusted tracker key must be 32 bytes');
    }
    this.configuredTrackers = [...(options.trustedTrackers ?? [])];
  }

  /**
   * Trusts the key the relay's tracker announced (`registered.trackerKey`): assignments it signs
   * bind sessions here. The last few learned keys stay trusted, so sessions a restarted tracker
   * assigned under its old key are not cut off.
   */
  learnTrackerKey(key: Uint8Array): void {
    if (key.byteLength !== 32) return;
    if (this.learnedTrackers.some((k) => bytesEqual(k, key))) return;
    this.learnedTrackers = [key, ...this.learnedTrackers].slice(0, MAX_LEARNED_TRACKER_KEYS);
    this.log?.info({ trackerKey: encodeBase58(key) }, 'trusting the tracker key for assignments');
  }

  /** Tracker keys whose assignments bind sessions now. */
  trustedTrackers(): Uint8Array[] {
    return [...this.configuredTrackers, ...this.learnedTrackers];
  }

  openChannel(): ChannelPayments {
    return new PayingChannel(this);
  }

  stats(): PaymentGateStats {
    return {
      sessions: this.ledger.size,
      bindsAccepted: this.counters.bindsAccepted,
      receiptsAccepted: this.counters.receiptsAccepted,
      refusedByCode: { ...this.counters.refusedByCode },
      unreceiptedBytes: this.ledger.totalUnreceiptedBytes(),
      unboundBytesForgiven: this.counters.unboundBytesForgiven,
      originBytes: this.counters.originBytes,
    };
  }

  /** @internal */
  refuse(err: RelaycastError): RelaycastError {
    this.counters.refusedByCode[err.code] = (this.counters.refusedByCode[err.code] ?? 0) + 1;
    this.log?.debug({ code: err.code }, 'payment frame refused');
    return err;
  }

  /** @internal */
  countOrigin(bytes: number): void {
    this.counters.originBytes += bytes;
  }

  /** @internal */
  forgive(bytes: number): void {
    this.counters.unboundBytesForgiven += bytes;
  }

  /**
   * @internal Checks a BIND for the channel that issued `challenge`, cheapest checks first, and
   * binds its session; throws typed errors. The proof comes before the assignment: a grant seen
   * elsewhere (with or without its assignment) is refused for what it lacks, the key.
   */
  acceptBind(frame: BindFrame, challenge: Uint8Array): PayingSession {
    const sg: SignedGrant = decodeSignedGrant(frame.signedGrant);
    const grant = sg.grant;
    const payer = encodeBase58(grant.payer);
    if (!this.accepted.has(payer)) throw new RelaycastError(ErrorCode.PAYER_UNKNOWN, 'this relay does not accept grants of that payer', { details: { payer } });
    if (grant.expiresAtMs <= this.now()) throw new RelaycastError(ErrorCode.GRANT_EXPIRED, 'grant has expired');
    if (!verifyGrantSignature(sg)) throw new RelaycastError(ErrorCode.GRANT_SIGNATURE, 'grant signature does not verify under its payer key');
    const keyObject = sessionKeyObject(grant.sessionKey);
    if (!verifyBindProof(keyObject, challenge, this.options.relayKey, frame.proof)) throw bindProofError();
    if (frame.signedAssignment === undefined || frame.signedAssignment.byteLength === 0) {
      throw new RelaycastError(ErrorCode.ASSIGNMENT_MISSING, 'bind with the assignment the tracker handed out with this relay');
    }
    const sa = decodeSignedAssignment(frame.signedAssignment);
    checkAssignment(sa.assignment, { sessionKey: grant.sessionKey, relay: this.options.relayKey, trustedTrackers: this.trustedTrackers(), grant });
    if (!verifyAssignmentSignature(sa)) throw new RelaycastError(ErrorCode.ASSIGNMENT_INVALID, 'assignment signature does not verify under its tracker key');
    // Stored with its assignment: redemption needs both.
    this.options.store.putGrant(sg, payer, frame.signedGrant, frame.signedAssignment);
    const session = this.ledger.bind(
      grant,
      payer,
      () => ({
        keyObject,
        newest: this.options.store.newest(grant.sessionKey, grant.nonce)?.receipt,
      }),
      (nonce) => this.options.store.newest(grant.sessionKey, nonce)?.receipt,
    );
    this.counters.bindsAccepted++;
    return session;
  }

  /** @internal Verifies, checks and durably stores a receipt of the channel's bound session, then counts it; throws typed errors. */
  acceptReceipt(bytes: Uint8Array, session: PayingSession | undefined): void {
    const sr = decodeSignedReceipt(bytes);
    if (session === undefined) throw new RelaycastError(ErrorCode.RECEIPT_NO_GRANT, 'this channel is not bound to a session: BIND first');
    if (!bytesEqual(sr.receipt.sessionKey, session.grant.sessionKey)) {
      throw new RelaycastError(ErrorCode.RECEIPT_NO_GRANT, 'receipts travel on a channel bound to their own session');
    }
    if (!verifyReceiptSignature(sr, session.keyObject))
      throw new RelaycastError(ErrorCode.RECEIPT_SIGNATURE, 'receipt signature does not verify under its session key');
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
      session.newest = this.options.store.newest(sr.receipt.sessionKey, sr.receipt.grantNonce)?.receipt ?? session.newest;
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

function bindProofError(): RelaycastError {
  return new RelaycastError(ErrorCode.BIND_PROOF, 'the proof is not the grant’s session key signing this channel’s challenge');
}

class PayingChannel implements ChannelPayments {
  readonly challenge: Uint8Array = new Uint8Array(randomBytes(BIND_CHALLENGE_BYTES));
  private session: PayingSession | undefined;
  /** Bytes served before this channel bound. */
  private unboundServed = 0;
  /** Origin bytes this channel's requests caused before it bound. */
  private unboundOrigin = 0;
  private readonly bucket: TokenBucket;
  private closed = false;

  constructor(private readonly gate: PaymentGate) {
    const o = gate.options;
    this.bucket = new TokenBucket(o.paymentFramesPerSec ?? DEFAULT_PAYMENT_FRAMES_PER_SEC, o.paymentFrameBurst ?? DEFAULT_PAYMENT_FRAME_BURST);
  }

  onFrame(frame: BindFrame | ReceiptFrame): RelaycastError | undefined {
    if (this.closed) return undefined;
    if (!this.bucket.take()) return this.gate.refuse(new RelaycastError(ErrorCode.RATE_LIMITED, 'too many payment frames on this channel'));
    try {
      if ('signedReceipt' in frame) {
        this.gate.acceptReceipt(frame.signedReceipt, this.session);
        return undefined;
      }
      const session = this.gate.acceptBind(frame, this.challenge);
      if (this.session === undefined) {
        this.session = session;
        // The proof shows the key holder controls this channel: what it took unbound is its debt.
        session.servedBytes += this.unboundServed;
        session.originBytes += this.unboundOrigin;
        this.unboundServed = 0;
        this.unboundOrigin = 0;
      } else {
        // Re-binding the same session (a renewed grant or assignment) keeps one reference.
        this.gate.release(session);
        if (session !== this.session) {
          // Each channel binds one session: what it took stays with the session it bound first.
          return this.gate.refuse(new RelaycastError(ErrorCode.BIND_PROOF, 'this channel is already bound to another session'));
        }
      }
      return undefined;
    } catch (err) {
      return this.gate.refuse(toRelaycastError(err, ErrorCode.RECEIPT_MALFORMED));
    }
  }

  admit(url: string): Admission {
    const s = this.session;
    if (s === undefined) {
      const limit = this.gate.unboundCreditBytes;
      if (this.unboundServed >= limit)
        return {
          refusal: new RelaycastError(ErrorCode.CREDIT_EXCEEDED, 'bind this channel to a paid session (BIND) to be served more'),
          allowOriginFetch: false,
        };
      return { allowOriginFetch: this.unboundOrigin < limit };
    }
    if (!url.startsWith(s.grant.scope))
      return { refusal: new RelaycastError(ErrorCode.GRANT_SCOPE, 'the session grant does not cover this URL'), allowOriginFetch: false };
    if (s.grant.expiresAtMs <= this.gate.clock)
      return { refusal: new RelaycastError(ErrorCode.GRANT_EXPIRED, 'the session grant has expired'), allowOriginFetch: false };
    if (s.storeFailed) return { refusal: new RelaycastError(ErrorCode.RECEIPT_STORE, 'this relay cannot store receipts right now'), allowOriginFetch: false };
    const limit = this.gate.creditLimitBytes;
    if (SessionLedger.unreceiptedBytes(s) > limit)
      return { refusal: new RelaycastError(ErrorCode.CREDIT_EXCEEDED, 'send a receipt for the bytes delivered so far'), allowOriginFetch: false };
    return { allowOriginFetch: SessionLedger.unpaidOriginBytes(s) <= limit };
  }

  served(bytes: number): void {
    if (this.session !== undefined) this.session.servedBytes += bytes;
    else this.unboundServed += bytes;
  }

  exceeded(): RelaycastError | undefined {
    const s = this.session;
    if (s === undefined) {
      if (this.unboundServed > HARD_LIMIT_FACTOR * this.gate.unboundCreditBytes)
        return new RelaycastError(ErrorCode.CREDIT_EXCEEDED, 'bind this channel to a paid session (BIND) to be served more');
      return undefined;
    }
    if (SessionLedger.unreceiptedBytes(s) > HARD_LIMIT_FACTOR * this.gate.creditLimitBytes)
      return new RelaycastError(ErrorCode.CREDIT_EXCEEDED, 'send a receipt for the bytes delivered so far');
    return undefined;
  }

  originFetched(bytes: number): void {
    this.gate.countOrigin(bytes);
    if (this.session !== undefined) this.session.originBytes += bytes;
    else this.unboundOrigin += bytes;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.session !== undefined) this.gate.release(this.session);
    else this.gate.forgive(this.unboundServed);
    this.session = undefined;
  }
}
