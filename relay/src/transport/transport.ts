/**
 * The relay's WebRTC transport seam. node-datachannel implements it today; a pure-TS fallback
 * (werift) may implement it later and must pass the same compliance suite
 * (relay/src/transport-compliance.ts).
 */

/** A reliable, ordered, binary data channel as the relay's channel server uses it. */
export interface RelayDataChannel {
  readonly label: string;
  /** Bytes queued in the channel but not yet handed to the network. */
  readonly bufferedAmount: number;
  /** True until the channel closes; sends after that are dropped. */
  readonly isOpen: boolean;
  /** Largest message the remote side accepts (from its SDP `a=max-message-size`). */
  readonly maxMessageSize: number;
  /** Queues one binary message. Returns false when the channel is closed. */
  send(message: Uint8Array): boolean;
  /** Fires once when `bufferedAmount` falls to or below `threshold` after having been above it. */
  setBufferedAmountLowThreshold(threshold: number): void;
  onBufferedAmountLow(cb: () => void): void;
  onMessage(cb: (message: Uint8Array) => void): void;
  onClose(cb: () => void): void;
  close(): void;
}

/** One incoming peer connection, created from a remote offer. */
/**
 * Every `on*` method adds a listener (several may subscribe); a listener added late is replayed the
 * local candidates gathered and the channels opened so far.
 */
export interface RelayPeer {
  readonly id: string;
  /** Resolves with the local answer SDP once created. */
  readonly answer: Promise<string>;
  addRemoteCandidate(candidate: string, sdpMid: string | undefined): void;
  /** Local ICE candidates as they are gathered (trickle); `undefined` once gathering completes. */
  onLocalCandidate(cb: (candidate: { candidate: string; sdpMid: string } | undefined) => void): void;
  onDataChannel(cb: (channel: RelayDataChannel) => void): void;
  /** Fires once when the connection fails or closes. */
  onClose(cb: () => void): void;
  close(): void;
}

export interface RelayTransport {
  /** Accepts a viewer's offer. The caller must `close()` the peer when done with it. */
  acceptOffer(id: string, offerSdp: string): RelayPeer;
  /** Number of peers currently open (for load reporting and leak tests). */
  readonly peerCount: number;
  /** Viewers' remote ICE candidates refused by the transport's candidate policy so far (status). Default: not counted. */
  readonly remoteCandidatesDropped?: number | undefined;
  close(): Promise<void>;
}
