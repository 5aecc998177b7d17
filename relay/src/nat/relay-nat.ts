import type { IceServer, NatReport, PortMappingKind, ReachabilityMessage } from '@relaycast/protocol';
import type { Logger } from 'pino';
import { localAddressTowards } from './local-address.js';
import { natHint, type NatStatusFacts } from './operator-hint.js';
import type { PortMapping } from './port-mapping.js';
import { discoverPublicAddress } from './stun-client.js';

export interface RelayNatOptions {
  /** The relay's fixed UDP port, when it has one. Default: none (ephemeral ports). */
  rtcPort?: number | undefined;
  /** Address WebRTC binds to; also the STUN socket's. Default: none (all interfaces). */
  bindAddress?: string | undefined;
  /** The port mapping to keep (with --map-port). Default: none. */
  mapping?: PortMapping | undefined;
  /** Tracker host name or address: the local address towards it is what a port forward points at. Required. */
  trackerHost: string;
  /** Bound of one STUN discovery. Default: DEFAULT_STUN_TIMEOUT_MS (3 s). */
  stunTimeoutMs?: number | undefined;
  /** Called when anything the tracker should hear about changed (the relay heartbeats at once). Required. */
  onChange: () => void;
  /** Parent logger. Required. */
  logger: Logger;
}

/** `relaycast-relay status` view of the relay's network. */
export interface RelayNatStatus extends NatStatusFacts {
  /** Plain-language state and, when needed, what the operator should do. */
  hint: string;
}

/**
 * The relay's view of its own network: the port mapping (UPnP/NAT-PMP), its public address
 * (STUN, through the servers the tracker hands out), and the tracker's reachability verdict. It
 * feeds `register`/`heartbeat`, adds the mapped address as an ICE candidate (the host candidate
 * behind a NAT is useless to viewers), and explains the state to the operator.
 */
export class RelayNat {
  private readonly log: Logger;
  private stunUrls: string[] = [];
  private publicAddress: string | undefined;
  private localAddress: string | undefined;
  private verdict: ReachabilityMessage | undefined;
  private readonly abort = new AbortController();

  constructor(private readonly options: RelayNatOptions) {
    this.log = options.logger.child({ component: 'nat' });
  }

  /** Maps the port (failures are logged: an unmapped relay still serves whoever reaches it). */
  async start(signal: AbortSignal): Promise<void> {
    this.localAddress = this.options.bindAddress ?? (await localAddressTowards(this.options.trackerHost).catch(() => undefined));
    const mapping = this.options.mapping;
    if (mapping === undefined) return;
    this.log.info({ port: this.options.rtcPort }, 'looking for a UPnP or NAT-PMP gateway to map the port');
    await mapping.start(signal).catch((err: unknown) => this.log.warn({ err }, 'port mapping failed; running unmapped'));
  }

  /** The STUN servers of the tracker's `hello`; a new set triggers a public-address discovery. */
  setIceServers(servers: readonly IceServer[] | undefined): void {
    const stun = (servers ?? []).flatMap((s) => s.urls.filter((u) => u.startsWith('stun:')));
    if (stun.join(' ') === this.stunUrls.join(' ')) return;
    this.stunUrls = stun;
    if (stun.length === 0) return;
    // Each server has its own deadline in discoverPublicAddress; close() ends a discovery early.
    discoverPublicAddress(stun, { signal: this.abort.signal, timeoutMs: this.options.stunTimeoutMs, bindAddress: this.options.bindAddress, logger: this.log })
      .then((found) => {
        if (found.address === this.publicAddress) return;
        this.publicAddress = found.address;
        this.log.info({ publicAddress: found.address, server: found.server }, 'public address discovered');
        this.options.onChange();
      })
      .catch((err: unknown) => this.log.warn({ err }, 'STUN discovery failed'));
  }

  /** The tracker's verdict; logged so the operator sees it without asking. */
  setReachability(msg: ReachabilityMessage): void {
    const changed = msg.reachability !== this.verdict?.reachability;
    this.verdict = msg;
    if (changed)
      this.log[msg.reachability === 'needs-turn' ? 'warn' : 'info'](
        { reachability: msg.reachability, address: msg.address, hint: this.status().hint },
        'reachability tested',
      );
  }

  /** STUN URLs for the relay's own peer connections (server-reflexive candidates). */
  iceServerUrls(): string[] {
    return [...this.stunUrls];
  }

  report(): NatReport {
    const m = this.options.mapping?.state();
    const portMapping: PortMappingKind = m === undefined || m.status === 'off' ? 'none' : m.status === 'failed' ? 'failed' : (m.method ?? 'upnp');
    const report: NatReport = { portMapping };
    const publicAddress = this.publicAddress ?? (m?.status === 'mapped' ? m.externalHost : undefined);
    if (publicAddress !== undefined) report.publicAddress = publicAddress;
    if (m?.status === 'mapped' && m.externalPort !== undefined) report.mappedPort = m.externalPort;
    return report;
  }

  /**
   * ICE candidates to add to every answer: the mapped public address. libdatachannel only knows
   * its host address and what STUN tells it, and STUN cannot tell which port the router forwards.
   */
  extraCandidates(): string[] {
    const m = this.options.mapping?.state();
    if (m?.status !== 'mapped' || m.externalHost === undefined || m.externalPort === undefined || this.options.rtcPort === undefined) return [];
    // Server-reflexive priority (type preference 100), component 1; foundation "rcmap" marks it as ours.
    const priority = (100 << 24) + (65_535 << 8) + 255;
    return [
      `candidate:rcmap 1 UDP ${priority} ${m.externalHost} ${m.externalPort} typ srflx raddr ${this.localAddress ?? '0.0.0.0'} rport ${this.options.rtcPort}`,
    ];
  }

  status(): RelayNatStatus {
    const facts: NatStatusFacts = {
      reachability: this.verdict?.reachability,
      reachedAddress: this.verdict?.address,
      portMapping: this.options.mapping?.state(),
      publicAddress: this.report().publicAddress,
      localAddress: this.localAddress,
      rtcPort: this.options.rtcPort,
    };
    return { ...facts, hint: natHint(facts) };
  }

  async close(signal: AbortSignal): Promise<void> {
    this.abort.abort();
    await this.options.mapping?.close(signal).catch((err: unknown) => this.log.warn({ err }, 'removing the port mapping failed'));
  }
}
