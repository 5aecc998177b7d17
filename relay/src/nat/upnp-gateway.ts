import { upnpNat } from '@achingbrain/nat-port-mapper';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { installFetchContentLengthFix } from './fetch-content-length.js';
import { localAddressTowards } from './local-address.js';
import type { FindGateway, MappingGateway } from './port-mapping.js';

/**
 * Finds the first UPnP IGD on the local network (SSDP search) and wraps it as a MappingGateway.
 * The library's own auto-refresh is off: PortMapping renews, so renewal is one tested code path.
 */
export function createUpnpGatewayFinder(opts: { description: string; internalHost?: string }): FindGateway {
  installFetchContentLengthFix();
  return async (signal) => {
    const client = upnpNat({ autoRefresh: false, description: opts.description });
    for await (const gateway of client.findGateways({ signal })) {
      const wrapped: MappingGateway = {
        kind: 'upnp',
        async map(internalPort, ttlMs, sig) {
          const host = opts.internalHost ?? (await localAddressTowards(gateway.host));
          const m = await gateway.map(internalPort, host, { protocol: 'udp', externalPort: internalPort, ttl: ttlMs, autoRefresh: false, signal: sig });
          // The library appends to its own list on every map call; renewals would grow it forever.
          (gateway as unknown as LibraryInternals).mappings?.delete(internalPort);
          return { externalHost: m.externalHost, externalPort: m.externalPort };
        },
        async unmap(internalPort, sig) {
          // Not gateway.unmap: in 4.0.5 it sends DeletePortMapping with an empty NewProtocol, which
          // miniupnpd refuses, and it swallows the error, so the mapping stayed while the relay
          // logged it removed (seen in test/nat-port-mapping.e2e.test.ts). This asks for the UDP
          // mapping and lets a SOAP fault surface.
          const device = await (gateway as unknown as LibraryInternals).getGateway({ signal: sig });
          await device.run(
            WAN_IP_CONNECTION_2,
            'DeletePortMapping',
            [
              ['NewRemoteHost', ''],
              ['NewExternalPort', internalPort],
              ['NewProtocol', 'UDP'],
            ],
            { signal: sig },
          );
        },
      };
      return wrapped;
    }
    throw new RelaycastError(ErrorCode.NAT_NO_GATEWAY, 'no UPnP gateway answered the search');
  };
}

/** WANIPConnection:2, the IGDv2 service the library's IPv4 gateway talks to. */
const WAN_IP_CONNECTION_2 = 'urn:schemas-upnp-org:service:WANIPConnection:2';

/** Untyped parts of @achingbrain/nat-port-mapper 4.0.5's IPv4 gateway (pinned exactly for this reason). */
interface LibraryInternals {
  mappings?: Map<number, unknown>;
  getGateway(options: { signal: AbortSignal }): Promise<{
    run(service: string, action: string, args: [string, string | number][], options: { signal: AbortSignal }): Promise<unknown>;
  }>;
}
