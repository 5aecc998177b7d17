import nodeDataChannel from 'node-datachannel';
import type { Logger } from 'pino';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { DEFAULT_MAX_PEERS, DEFAULT_RTC_MAX_MESSAGE_BYTES } from './constants.js';
import type { RelayDataChannel, RelayPeer, RelayTransport } from './transport.js';

type NdcPeerConnection = InstanceType<typeof nodeDataChannel.PeerConnection>;
type NdcDataChannel = ReturnType<NdcPeerConnection['createDataChannel']>;

export interface NodeDataChannelTransportOptions {
  /** Local address ICE binds to; '127.0.0.1' on loopback. Default: all interfaces. */
  bindAddress?: string | undefined;
  /** First UDP port of the ICE range. Default: ephemeral ports. */
  portRangeBegin?: number | undefined;
  /** Last UDP port of the ICE range; equal to the first enables ICE UDP mux (all viewers on one port). */
  portRangeEnd?: number | undefined;
  /** STUN/TURN servers in libdatachannel URL form. Default: none (directly reachable relay). */
  iceServers?: string[] | undefined;
  /** Largest SCTP message accepted. Default: DEFAULT_RTC_MAX_MESSAGE_BYTES (256 KiB). */
  maxMessageSize?: number | undefined;
  /** Open peers at once; offers beyond throw RC_ERR_RELAY_OVERLOADED. Default: DEFAULT_MAX_PEERS (512). */
  maxPeers?: number | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

/** Relay transport over libdatachannel (node-datachannel's native API, not its browser polyfill). */
export class NodeDataChannelTransport implements RelayTransport {
  private readonly peers = new Set<NdcRelayPeer>();
  private readonly maxPeers: number;
  private readonly log: Logger | undefined;

  constructor(private readonly options: NodeDataChannelTransportOptions = {}) {
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
    this.log = options.logger?.child({ component: 'rtc-transport' });
  }

  get peerCount(): number {
    return this.peers.size;
  }

  acceptOffer(id: string, offerSdp: string): RelayPeer {
    if (this.peers.size >= this.maxPeers) {
      throw new RelaycastError(ErrorCode.RELAY_OVERLOADED, `relay already has ${this.maxPeers} peers`);
    }
    const o = this.options;
    const single = o.portRangeBegin !== undefined && o.portRangeBegin === (o.portRangeEnd ?? o.portRangeBegin);
    const pc = new nodeDataChannel.PeerConnection(id, {
      iceServers: o.iceServers ?? [],
      bindAddress: o.bindAddress,
      portRangeBegin: o.portRangeBegin,
      portRangeEnd: o.portRangeEnd ?? o.portRangeBegin,
      enableIceUdpMux: single,
      maxMessageSize: o.maxMessageSize ?? DEFAULT_RTC_MAX_MESSAGE_BYTES,
    });
    const peer = new NdcRelayPeer(id, pc, () => this.peers.delete(peer), this.log);
    this.peers.add(peer);
    try {
      pc.setRemoteDescription(offerSdp, 'offer');
    } catch (err) {
      peer.close();
      throw new RelaycastError(ErrorCode.MESSAGE_FIELD, 'offer SDP was refused', { cause: err });
    }
    return peer;
  }

  async close(): Promise<void> {
    for (const peer of [...this.peers]) peer.close();
  }
}

class NdcRelayPeer implements RelayPeer {
  readonly answer: Promise<string>;
  private closed = false;
  private closeCallbacks: (() => void)[] = [];
  private readonly channels = new Set<NdcChannel>();

  constructor(
    readonly id: string,
    private readonly pc: NdcPeerConnection,
    private readonly onGone: () => void,
    private readonly log: Logger | undefined,
  ) {
    this.answer = new Promise((resolve, reject) => {
      pc.onLocalDescription((sdp, type) => {
        if (type === 'answer') resolve(sdp);
      });
      this.closeCallbacks.push(() => reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'peer closed before answering')));
    });
    this.answer.catch(() => undefined);
    pc.onStateChange((state) => {
      if (state === 'failed' || state === 'closed' || state === 'disconnected') this.close();
    });
  }

  addRemoteCandidate(candidate: string, sdpMid: string | undefined): void {
    if (this.closed) return;
    // mDNS (.local) candidates cannot resolve on a relay and would stall ICE.
    if (/\s[0-9a-f-]+\.local\s/i.test(candidate)) return;
    try {
      this.pc.addRemoteCandidate(candidate, sdpMid ?? '0');
    } catch (err) {
      this.log?.debug({ peer: this.id, err: (err as Error).message }, 'remote candidate refused');
    }
  }

  onLocalCandidate(cb: (candidate: { candidate: string; sdpMid: string } | undefined) => void): void {
    this.pc.onLocalCandidate((candidate, mid) => cb({ candidate, sdpMid: mid }));
    this.pc.onGatheringStateChange((state) => {
      if (state === 'complete') cb(undefined);
    });
  }

  onDataChannel(cb: (channel: RelayDataChannel) => void): void {
    this.pc.onDataChannel((dc) => {
      const channel = new NdcChannel(dc);
      this.channels.add(channel);
      channel.onClose(() => this.channels.delete(channel));
      cb(channel);
    });
  }

  onClose(cb: () => void): void {
    if (this.closed) queueMicrotask(cb);
    else this.closeCallbacks.push(cb);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const ch of [...this.channels]) ch.close();
    try {
      this.pc.close();
    } catch {
      // already torn down by libdatachannel
    }
    this.onGone();
    const callbacks = this.closeCallbacks;
    this.closeCallbacks = [];
    for (const cb of callbacks) cb();
  }
}

class NdcChannel implements RelayDataChannel {
  readonly label: string;
  private open = true;
  private readonly closeCallbacks: (() => void)[] = [];

  constructor(private readonly dc: NdcDataChannel) {
    this.label = dc.getLabel();
    dc.onClosed(() => this.markClosed());
    dc.onError(() => this.markClosed());
  }

  get bufferedAmount(): number {
    return this.open ? this.dc.bufferedAmount() : 0;
  }

  get isOpen(): boolean {
    return this.open && this.dc.isOpen();
  }

  get maxMessageSize(): number {
    return this.open ? this.dc.maxMessageSize() : 0;
  }

  send(message: Uint8Array): boolean {
    if (!this.isOpen) return false;
    try {
      return this.dc.sendMessageBinary(message);
    } catch {
      this.markClosed();
      return false;
    }
  }

  setBufferedAmountLowThreshold(threshold: number): void {
    if (this.open) this.dc.setBufferedAmountLowThreshold(threshold);
  }

  onBufferedAmountLow(cb: () => void): void {
    this.dc.onBufferedAmountLow(cb);
  }

  onMessage(cb: (message: Uint8Array) => void): void {
    this.dc.onMessage((msg) => {
      if (typeof msg === 'string') cb(new TextEncoder().encode(msg));
      else if (msg instanceof ArrayBuffer) cb(new Uint8Array(msg));
      else cb(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    });
  }

  onClose(cb: () => void): void {
    if (!this.open) queueMicrotask(cb);
    else this.closeCallbacks.push(cb);
  }

  close(): void {
    if (!this.open) return;
    try {
      this.dc.close();
    } catch {
      // closing twice is harmless
    }
    this.markClosed();
  }

  private markClosed(): void {
    if (!this.open) return;
    this.open = false;
    for (const cb of this.closeCallbacks.splice(0)) cb();
  }
}
