// The seam between the channel server and the payment side (a seam like segment-source.ts): the
// channel server drives one ChannelPayments per channel and never knows grants, receipts or keys.
import type { BindFrame, ReceiptFrame, RelaycastError } from '@relaycast/protocol';

/** What a new request may do, as the payment side decides it. */
export interface Admission {
  /** The refusal to answer (ERROR frame for the request); undefined = serve it. */
  refusal?: RelaycastError | undefined;
  /** False when a cache miss must not start an origin download (the channel's origin credit is used up: RC_ERR_ORIGIN_BUDGET). */
  allowOriginFetch: boolean;
}

/** The payment side of one viewer channel, as the channel server drives it. */
export interface ChannelPayments {
  /** The CHALLENGE this channel's BIND must answer; the channel server sends it first thing. */
  readonly challenge: Uint8Array;
  /**
   * Handles a BIND or RECEIPT frame. Returns undefined when accepted, else the error to answer
   * (ERROR frame, requestId 0); RC_ERR_RATE_LIMITED means the channel floods and must be closed.
   */
  onFrame(frame: BindFrame | ReceiptFrame): RelaycastError | undefined;
  /** Whether a new REQUEST for `url` may be served, and whether it may start an origin download. */
  admit(url: string): Admission;
  /** Counts DATA payload bytes handed to the channel. */
  served(bytes: number): void;
  /**
   * The error that stops requests already being served: admission checks the credit before a
   * request, but concurrent requests admitted together could each run to a whole segment; past
   * twice the credit (twice the unbound allowance) they are cut. Undefined while within it.
   */
  exceeded(): RelaycastError | undefined;
  /** Counts origin bytes a request of this channel caused (its cache miss started the download); may come after the request ended. */
  originFetched(bytes: number): void;
  /** The channel closed. */
  close(): void;
}

/** What ChannelServer needs: a per-channel payment handler. */
export interface ChannelPaymentGate {
  openChannel(): ChannelPayments;
}
