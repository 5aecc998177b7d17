import type { Reachability } from '@relaycast/protocol';
import type { PortMappingState } from './port-mapping.js';

/** What the operator needs to know about the relay's network, for `relaycast-relay status`. */
export interface NatStatusFacts {
  /** Tracker's verdict; undefined while untested. */
  reachability: Reachability | undefined;
  /** `ip:port` the tracker reached. */
  reachedAddress?: string | undefined;
  portMapping?: PortMappingState | undefined;
  /** Public IP from STUN or the gateway. */
  publicAddress?: string | undefined;
  /** This host's address towards the tracker (what a port forward must point at). */
  localAddress?: string | undefined;
  /** The relay's fixed UDP port, when it has one. */
  rtcPort?: number | undefined;
}

const METHOD = { upnp: 'UPnP', 'nat-pmp': 'NAT-PMP' } as const;

/** One plain-language sentence or two: what state the relay is in and, if it matters, what to do. */
export function natHint(f: NatStatusFacts): string {
  const m = f.portMapping;
  switch (f.reachability) {
    case undefined:
      return 'Waiting for the tracker to test whether viewers can reach this relay.';
    case 'public':
      return `Reachable at ${f.reachedAddress ?? 'its own address'}: viewers connect directly.`;
    case 'mapped':
      return `Reachable at ${f.reachedAddress ?? `${m?.externalHost ?? '?'}:${m?.externalPort ?? '?'}`} through a ${m?.method === undefined ? 'port mapping' : `${METHOD[m.method]} port mapping`} on your router: viewers connect directly.`;
    case 'needs-turn': {
      const head =
        'Not reachable from the internet: viewers behind NAT get this relay only through TURN (slower; the tracker hands it out after directly reachable relays).';
      if (f.rtcPort === undefined) {
        return `${head} Start it with --rtc-port N (one fixed UDP port), then forward that UDP port on your router to this machine or add --map-port.`;
      }
      const target = `${f.localAddress ?? 'this machine'}:${f.rtcPort}`;
      if (m?.status === 'mapped') {
        return `${head} Your router maps UDP ${m.externalPort ?? f.rtcPort} to this relay, yet the tracker could not reach it: another NAT (carrier-grade NAT) or a firewall is in front of the router. Ask your provider for a public IPv4 address, or allow inbound UDP ${f.rtcPort} on the firewall.`;
      }
      if (m?.status === 'failed') {
        return `${head} The router refused or did not answer the port mapping (${m.errorCode ?? 'error'}): enable UPnP or NAT-PMP on it, or forward UDP port ${f.rtcPort} to ${target} by hand.`;
      }
      return `${head} Forward UDP port ${f.rtcPort} on your router to ${target}, or enable UPnP/NAT-PMP on the router and start the relay with --map-port.`;
    }
  }
}
