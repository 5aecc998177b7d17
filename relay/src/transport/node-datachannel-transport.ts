import { BlockList, isIP } from 'node:net';
import nodeDataChannel from 'node-datachannel';
import type { Logger } from 'pino';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import {
  DEFAULT_MAX_CHANNELS_PER_PEER,
  DEFAULT_MAX_PEERS,
  DEFAULT_RTC_MAX_MESSAGE_BYTES,
  DEFAULT_TRANSPORT_CLOSE_TIMEOUT_MS,
  MAX_LOCAL_CANDIDATES_PER_PEER,
  MAX_REMOTE_CANDIDATES_PER_PEER,
} from '../constants.js';
import type { RelayDataChannel, RelayPeer, RelayTransport } from './transport.js';

type NdcPeerConnection = InstanceType<typeof nodeDataChannel.PeerConnection>;
type NdcDataChannel = ReturnType<NdcPeerConnection['createDataChannel']>;
type LocalCandidate = { candidate: string; sdpMid: string } | undefined;

export interface NodeDataChannelTransportOptions {
  /** Local address ICE binds to; the CLI passes '127.0.0.1' on loopback. Default: undefined (all interfaces). */
  bindAddress?: string | undefined;
  /** First UDP port of the ICE range. Default: undefined (ephemeral ports). */
  portRangeBegin?: number | undefined;
  /** Last UDP port of the ICE range. Default: portRangeBegin (a single port). */
  portRangeEnd?: number | undefined;
  /** Serve every peer from one UDP port. Default: true when the range is exactly one port, false otherwise. */
  enableIceUdpMux?: boolean | undefined;
  /**
   * STUN/TURN servers in libdatachannel URL form (`stun:host:port`), or a function read for every
   * new peer (the relay learns its STUN servers from the tracker after start). Default: none.
   */
  iceServers?: string[] | (() => string[]) | undefined;
  /** Largest SCTP message accepted and advertised, in bytes. Default: DEFAULT_RTC_MAX_MESSAGE_BYTES (256 KiB). */
  maxMessageSize?: number | undefined;
  /** Peers open at once; offers beyond throw RC_ERR_RELAY_OVERLOADED. Default: DEFAULT_MAX_PEERS. */
  maxPeers?: number | undefined;
  /** Data channels one peer may open; extra ones are closed at once. Default: DEFAULT_MAX_CHANNELS_PER_PEER (4). */
  maxChannelsPerPeer?: number | undefined;
  /**
   * Accept viewers' ICE candidates with private addresses (10/8, 172.16/12, 192.168/16, CGNAT
   * 100.64/10, fc00::/7): for relays serving an office LAN. Without it the relay never sends ICE
   * checks into its own network on a viewer's say-so. Default: false.
   */
  allowPrivateCandidates?: boolean | undefined;
  /** Longest wait in close() for queued data to leave before connections are cut. Default: DEFAULT_TRANSPORT_CLOSE_TIMEOUT_MS (2 s). */
  closeTimeoutMs?: number | undefined;
  /** Parent logger. Default: none. */
  logger?: Logger | undefined;
}

function invalid(message: string): RelaycastError {
  return new RelaycastError(ErrorCode.CONFIG_INVALID, message);
}

function checkPort(value: number | undefined, name: string): void {
  if (value !== undefined && (!Number.isInteger(value) || value < 1 || value > 65535)) throw invalid(`${name} must be a port number 1-65535`);
}

/** mDNS host names (`<uuid>.local`) cannot be resolved by a relay and stall ICE while it tries. */
export function isMdnsCandidate(candidate: string): boolean {
  // candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
  const address = candidate.trim().split(/\s+/)[4];
  return address !== undefined && address.toLowerCase().endsWith('.local');
}

/** Which remote candidate addresses a relay sends ICE checks to (see remoteCandidateRefusal). */
export interface CandidatePolicy {
  /** Loopback (127/8, ::1): only for a relay that binds a loopback address itself (development, tests). */
  allowLoopback: boolean;
  /** Private ranges (RFC 1918, CGNAT, unique local IPv6): office LANs, `--allow-private-candidates`. */
  allowPrivate: boolean;
}

type Ranges = readonly [string, number, 'ipv4' | 'ipv6'][];
function blockList(ranges: Ranges): BlockList {
  const list = new BlockList();
  for (const [net, prefix, family] of ranges) list.addSubnet(net, prefix, family);
  return list;
}
/** Never a viewer: "this network", multicast, reserved/broadcast, unspecified, discard. */
const NEVER = blockList([
  ['0.0.0.0', 8, 'ipv4'],
  ['224.0.0.0', 4, 'ipv4'],
  ['240.0.0.0', 4, 'ipv4'],
  ['::', 128, 'ipv6'],
  ['ff00::', 8, 'ipv6'],
  ['100::', 64, 'ipv6'],
]);
const LINK_LOCAL = blockList([
  ['169.254.0.0', 16, 'ipv4'], // also cloud metadata services (169.254.169.254)
  ['fe80::', 10, 'ipv6'],
]);
const LOOPBACK = blockList([
  ['127.0.0.0', 8, 'ipv4'],
  ['::1', 128, 'ipv6'],
]);
const PRIVATE = blockList([
  ['10.0.0.0', 8, 'ipv4'],
  ['172.16.0.0', 12, 'ipv4'],
  ['192.168.0.0', 16, 'ipv4'],
  ['100.64.0.0', 10, 'ipv4'], // CGNAT
  ['fc00::', 7, 'ipv6'],
  ['fec0::', 10, 'ipv6'], // site-local (deprecated)
]);

/** True for 127.0.0.0/8 and ::1 (the relay binding one of these is a development or test setup). */
export function isLoopbackAddress(address: string): boolean {
  const v = isIP(address);
  return v !== 0 && LOOPBACK.check(address, v === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Why the relay refuses a viewer's remote ICE candidate, or undefined when it may send checks to it.
 * A viewer chooses its candidates freely, so without this policy any viewer could make the relay
 * send STUN binding requests to hosts on the relay's own LAN or loopback (a port scan that
 * reports back through connection success). The documented policy:
 *  - mDNS names (`<uuid>.local`) and any other host name: refused (the relay never resolves a name
 *    a viewer chose; browsers send mDNS names only for private host candidates anyway);
 *  - unspecified, multicast, broadcast and reserved addresses: always refused;
 *  - link-local (169.254/16 — cloud metadata — and fe80::/10): always refused;
 *  - loopback: refused unless `allowLoopback` (the relay binds a loopback address itself);
 *  - private ranges: refused unless `allowPrivate` (`--allow-private-candidates`);
 *  - IPv4-mapped IPv6 is judged by its IPv4 address.
 */
export function remoteCandidateRefusal(candidate: string, policy: CandidatePolicy): string | undefined {
  // candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
  const fields = candidate.trim().replace(/^a=/, '').split(/\s+/);
  let address = fields[4];
  if (address === undefined) return 'malformed candidate';
  if (address.startsWith('[') && address.endsWith(']')) address = address.slice(1, -1);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped !== null) address = mapped[1] as string;
  const v = isIP(address);
  if (v === 0) return address.toLowerCase().endsWith('.local') ? 'mDNS host name' : 'not an IP address';
  const family = v === 4 ? 'ipv4' : 'ipv6';
  if (NEVER.check(address, family)) return 'unspecified, multicast or reserved address';
  if (LINK_LOCAL.check(address, family)) return 'link-local address';
  if (LOOPBACK.check(address, family)) return policy.allowLoopback ? undefined : 'loopback address';
  if (PRIVATE.check(address, family)) return policy.allowPrivate ? undefined : 'private address (see --allow-private-candidates)';
  return undefined;
}

/** The offer with every `a=candidate` line the policy refuses removed (non-trickle offers carry candidates inline). */
export function filterSdpCandidates(sdp: string, policy: CandidatePolicy): { sdp: string; dropped: number } {
  let dropped = 0;
  const lines = sdp.split(/\r?\n/);
  const kept = lines.filter((line) => {
    if (!line.startsWith('a=candidate:')) return true;
    if (remoteCandidateRefusal(line, policy) === undefined) return true;
    dropped++;
    return false;
  });
  return { sdp: dropped === 0 ? sdp : kept.join('\r\n'), dropped };
}

/** Relay transport over libdatachannel through node-datachannel's native API (not its browser polyfill). */
export class NodeDataChannelTransport implements RelayTransport {
  private readonly peers = new Set<NdcRelayPeer>();
  private readonly maxPeers: number;
  private readonly log: Logger | undefined;
  private readonly candidatePolicy: CandidatePolicy;
  private readonly candidateCounters = { dropped: 0 };
  private closed = false;

  constructor(private readonly options: NodeDataChannelTransportOptions = {}) {
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_PEERS;
    if (!Number.isInteger(this.maxPeers) || this.maxPeers < 1) throw invalid('maxPeers must be a positive integer');
    checkPort(options.portRangeBegin, 'portRangeBegin');
    checkPort(options.portRangeEnd, 'portRangeEnd');
    if (options.portRangeEnd !== undefined && options.portRangeBegin === undefined) throw invalid('portRangeEnd needs portRangeBegin');
    if ((options.portRangeEnd ?? Infinity) < (options.portRangeBegin ?? 0)) throw invalid('portRangeEnd is below portRangeBegin');
    const mms = options.maxMessageSize;
    if (mms !== undefined && (!Number.isInteger(mms) || mms < 16 * 1024)) throw invalid('maxMessageSize must be an integer of at least 16384');
    this.log = options.logger?.child({ component: 'rtc-transport' });
    this.candidatePolicy = {
      allowLoopback: options.bindAddress !== undefined && isLoopbackAddress(options.bindAddress),
      allowPrivate: options.allowPrivateCandidates ?? false,
    };
  }

  get peerCount(): number {
    return this.peers.size;
  }

  /** Remote candidates refused by the candidate policy or the per-peer bound, offers' inline ones included. */
  get remoteCandidatesDropped(): number {
    return this.candidateCounters.dropped;
  }

  acceptOffer(id: string, offerSdp: string): RelayPeer {
    if (this.closed) throw new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'transport is closed');
    if (this.peers.size >= this.maxPeers) {
      throw new RelaycastError(ErrorCode.RELAY_OVERLOADED, `relay already has ${this.maxPeers} peers`);
    }
    const o = this.options;
    const portRangeEnd = o.portRangeEnd ?? o.portRangeBegin;
    const pc = new nodeDataChannel.PeerConnection(id, {
      iceServers: typeof o.iceServers === 'function' ? o.iceServers() : (o.iceServers ?? []),
      bindAddress: o.bindAddress,
      portRangeBegin: o.portRangeBegin,
      portRangeEnd,
      enableIceUdpMux: o.enableIceUdpMux ?? (o.portRangeBegin !== undefined && o.portRangeBegin === portRangeEnd),
      maxMessageSize: o.maxMessageSize ?? DEFAULT_RTC_MAX_MESSAGE_BYTES,
    });
    const peer = new NdcRelayPeer(
      id,
      pc,
      o.maxChannelsPerPeer ?? DEFAULT_MAX_CHANNELS_PER_PEER,
      () => this.peers.delete(peer),
      this.log,
      this.candidatePolicy,
      this.candidateCounters,
    );
    this.peers.add(peer);
    const offer = filterSdpCandidates(offerSdp, this.candidatePolicy);
    this.candidateCounters.dropped += offer.dropped;
    try {
      // Every native callback is registered by now: libdatachannel drops events that fire before.
      pc.setRemoteDescription(offer.sdp, 'offer');
    } catch (err) {
      peer.close();
      throw new RelaycastError(ErrorCode.MESSAGE_FIELD, 'offer SDP was refused', { cause: err });
    }
    return peer;
  }

  /** Closes every peer once the data already queued to it has left (bounded by closeTimeoutMs). */
  async close(): Promise<void> {
    this.closed = true;
    const timeoutMs = this.options.closeTimeoutMs ?? DEFAULT_TRANSPORT_CLOSE_TIMEOUT_MS;
    await Promise.all([...this.peers].map((peer) => peer.closeGracefully(timeoutMs)));
  }
}

/**
 * Native callbacks are wired in the constructor, before the offer is applied, and a listener added
 * later is replayed what already happened (gathered candidates, bounded; open channels): candidates
 * gathered between `acceptOffer` and `onLocalCandidate` would otherwise be lost and trickle ICE
 * could never complete. Several listeners may subscribe (the tracker client and the node both do).
 */
class NdcRelayPeer implements RelayPeer {
  readonly answer: Promise<string>;
  private closed = false;
  private closeCallbacks: (() => void)[] = [];
  private readonly candidateListeners: ((c: LocalCandidate) => void)[] = [];
  private candidates: LocalCandidate[] = [];
  private readonly channelListeners: ((channel: RelayDataChannel) => void)[] = [];
  private readonly channels = new Set<NdcChannel>();
  private remoteCandidates = 0;

  constructor(
    readonly id: string,
    private readonly pc: NdcPeerConnection,
    private readonly maxChannels: number,
    private readonly onGone: () => void,
    private readonly log: Logger | undefined,
    private readonly candidatePolicy: CandidatePolicy,
    private readonly counters: { dropped: number },
  ) {
    this.answer = new Promise((resolve, reject) => {
      pc.onLocalDescription((sdp, type) => {
        if (type === 'answer') resolve(sdp);
      });
      this.closeCallbacks.push(() => reject(new RelaycastError(ErrorCode.CHANNEL_CLOSED, 'peer closed before answering')));
    });
    this.answer.catch(() => undefined);
    pc.onLocalCandidate((candidate, mid) => this.emitCandidate({ candidate, sdpMid: mid }));
    pc.onGatheringStateChange((state) => {
      if (state === 'complete') this.emitCandidate(undefined);
    });
    pc.onStateChange((state) => {
      this.log?.debug({ peer: this.id, state }, 'peer state');
      // libjuice does not recover from 'disconnected' (consent freshness lost), so it is final too.
      if (state === 'failed' || state === 'closed' || state === 'disconnected') this.close();
    });
    pc.onDataChannel((dc) => this.acceptChannel(dc));
  }

  addRemoteCandidate(candidate: string, sdpMid: string | undefined): void {
    if (this.closed) return;
    const refused =
      this.remoteCandidates >= MAX_REMOTE_CANDIDATES_PER_PEER ? 'too many candidates for one peer' : remoteCandidateRefusal(candidate, this.candidatePolicy);
    if (refused !== undefined) {
      this.counters.dropped++;
      this.log?.debug({ peer: this.id, reason: refused }, 'remote candidate dropped');
      return;
    }
    this.remoteCandidates++;
    try {
      this.pc.addRemoteCandidate(candidate, sdpMid ?? '0');
    } catch (err) {
      this.log?.debug({ peer: this.id, err: (err as Error).message }, 'remote candidate refused');
    }
  }

  onLocalCandidate(cb: (candidate: LocalCandidate) => void): void {
    this.candidateListeners.push(cb);
    for (const c of this.candidates) cb(c);
  }

  onDataChannel(cb: (channel: RelayDataChannel) => void): void {
    this.channelListeners.push(cb);
    for (const ch of this.channels) cb(ch);
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
    this.candidates = [];
    const callbacks = this.closeCallbacks;
    this.closeCallbacks = [];
    for (const cb of callbacks) cb();
  }

  /**
   * Waits (bounded) until the data already queued has left, then closes. libdatachannel's
   * bufferedAmount only covers its own queue and closing the connection drops whatever SCTP still
   * holds, so "left" means: every channel queue empty and the SCTP byte counter quiet for a moment.
   */
  async closeGracefully(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    while (!this.closed && Date.now() < deadline && [...this.channels].some((ch) => ch.bufferedAmount > 0)) await sleep(10);
    let last = -1;
    let quietSince = Date.now();
    while (!this.closed && Date.now() < deadline && Date.now() - quietSince < SCTP_QUIET_MS) {
      const sent = this.bytesSent();
      if (sent !== last) {
        last = sent;
        quietSince = Date.now();
      }
      await sleep(10);
    }
    this.close();
  }

  private bytesSent(): number {
    try {
      return this.pc.bytesSent();
    } catch {
      return 0;
    }
  }

  private emitCandidate(c: LocalCandidate): void {
    if (this.closed || this.candidates.length >= MAX_LOCAL_CANDIDATES_PER_PEER) return;
    this.candidates.push(c);
    for (const cb of this.candidateListeners) cb(c);
  }

  private acceptChannel(dc: NdcDataChannel): void {
    if (this.closed || this.channels.size >= this.maxChannels) {
      this.log?.debug({ peer: this.id }, 'refusing data channel beyond the per-peer limit');
      dc.close();
      return;
    }
    const channel = new NdcChannel(dc);
    this.channels.add(channel);
    channel.onClose(() => this.channels.delete(channel));
    for (const cb of this.channelListeners) cb(channel);
  }
}

/** How long the SCTP byte counter must stay still before a graceful close cuts the connection. */
const SCTP_QUIET_MS = 100;

/** Messages arriving before the owner subscribes are kept, up to this many, then the channel is dropped. */
const MAX_EARLY_MESSAGES = 64;

class NdcChannel implements RelayDataChannel {
  readonly label: string;
  private open = true;
  private readonly closeCallbacks: (() => void)[] = [];
  private readonly lowCallbacks: (() => void)[] = [];
  private messageListener: ((message: Uint8Array) => void) | undefined;
  private earlyMessages: Uint8Array[] = [];

  constructor(private readonly dc: NdcDataChannel) {
    this.label = dc.getLabel();
    dc.onClosed(() => this.markClosed());
    dc.onError(() => this.markClosed());
    dc.onBufferedAmountLow(() => {
      for (const cb of this.lowCallbacks) cb();
    });
    dc.onMessage((msg) => {
      // libdatachannel hands out Buffers it does not reuse, so wrapping (not copying) is safe.
      const bytes =
        typeof msg === 'string'
          ? new TextEncoder().encode(msg)
          : msg instanceof ArrayBuffer
            ? new Uint8Array(msg)
            : new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength);
      if (this.messageListener !== undefined) this.messageListener(bytes);
      else if (this.earlyMessages.length < MAX_EARLY_MESSAGES) this.earlyMessages.push(bytes);
      else this.close();
    });
  }

  get bufferedAmount(): number {
    if (!this.open) return 0;
    try {
      return this.dc.bufferedAmount();
    } catch {
      return 0;
    }
  }

  get isOpen(): boolean {
    return this.open;
  }

  get maxMessageSize(): number {
    if (!this.open) return 0;
    try {
      return this.dc.maxMessageSize();
    } catch {
      return 0;
    }
  }

  send(message: Uint8Array): boolean {
    if (!this.open) return false;
    try {
      // libdatachannel returns false when it queued the message instead of sending it at once;
      // that is still a successful send, so only a throw (closed channel) counts as failure.
      this.dc.sendMessageBinary(message);
      return true;
    } catch {
      this.markClosed();
      return false;
    }
  }

  setBufferedAmountLowThreshold(threshold: number): void {
    if (!this.open) return;
    try {
      this.dc.setBufferedAmountLowThreshold(threshold);
    } catch {
      this.markClosed();
    }
  }

  onBufferedAmountLow(cb: () => void): void {
    this.lowCallbacks.push(cb);
  }

  onMessage(cb: (message: Uint8Array) => void): void {
    this.messageListener = cb;
    for (const m of this.earlyMessages.splice(0)) cb(m);
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
    this.earlyMessages = [];
    for (const cb of this.closeCallbacks.splice(0)) cb();
  }
}
