import { upnpNat } from '@achingbrain/nat-port-mapper';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import type { FindGateway, MappingGateway } from './port-mapping.js';

/**
 * Finds the first UPnP IGD on the local network (SSDP search) and wraps it as a MappingGateway.
 * The library's own auto-refresh is off: PortMapping renews, so renewal is one tested code path.
 */
export function createUpnpGatewayFinder(opts: { description: string; internalHost?: string }): FindGateway {
  return async (signal) => {
    const client = upnpNat({ autoRefresh: false, description: opts.description });
    for await (const gateway of client.findGateways({ signal })) {
      const wrapped: MappingGateway = {
        async map(internalPort, ttlMs, sig) {
          const host = opts.internalHost ?? (await localAddressTowards(gateway.host));
          const m = await gateway.map(internalPort, host, { protocol: 'udp', externalPort: internalPort, ttl: ttlMs, autoRefresh: false, signal: sig });
          return { externalHost: m.externalHost, externalPort: m.externalPort };
        },
        async unmap(internalPort, sig) {
          await gateway.unmap(internalPort, { signal: sig });
        },
      };
      return wrapped;
    }
    throw new RelaycastError(ErrorCode.NAT_NO_GATEWAY, 'no UPnP gateway answered the search');
  };
}

/** The local address the kernel would use to reach `host`: the one the gateway must forward to. */
async function localAddressTowards(host: string): Promise<string> {
  const { createSocket } = await import('node:dgram');
  const sock = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      // A UDP connect sends nothing; it only picks the route and source address.
      sock.connect(9, host, () => resolve());
    });
    return sock.address().address;
  } finally {
    sock.close();
  }
}
