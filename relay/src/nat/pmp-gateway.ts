import { readFile } from 'node:fs/promises';
import { pmpNat } from '@achingbrain/nat-port-mapper';
import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { localAddressTowards } from './local-address.js';
import type { FindGateway, MappingGateway } from './port-mapping.js';

/**
 * The IPv4 default gateway from the kernel's routing table: NAT-PMP has no discovery, a client
 * talks to its default router (RFC 6886 section 3.1).
 */
export async function defaultGatewayIpv4(routeFile = '/proc/net/route'): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(routeFile, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    // Iface Destination Gateway Flags ...: destination 0 is the default route; fields are little-endian hex.
    if (f.length < 3 || f[1] !== '00000000') continue;
    const g = Number.parseInt(f[2] as string, 16);
    if (!Number.isFinite(g) || g === 0) continue;
    return [g & 255, (g >>> 8) & 255, (g >>> 16) & 255, (g >>> 24) & 255].join('.');
  }
  return undefined;
}

/**
 * Maps through NAT-PMP at the default gateway (@achingbrain/nat-port-mapper's PMP client). The
 * gateway counts as found once it answers an external-address request.
 */
export function createPmpGatewayFinder(opts: { description: string; gatewayIp?: string; internalHost?: string }): FindGateway {
  return async (signal) => {
    const ip = opts.gatewayIp ?? (await defaultGatewayIpv4());
    if (ip === undefined) throw new RelaycastError(ErrorCode.NAT_NO_GATEWAY, 'no IPv4 default gateway to ask over NAT-PMP');
    const gateway = pmpNat(ip, { autoRefresh: false, description: opts.description });
    try {
      await gateway.externalIp({ signal });
    } catch (err) {
      await gateway.stop().catch(() => undefined);
      throw new RelaycastError(ErrorCode.NAT_NO_GATEWAY, `the default gateway ${ip} did not answer NAT-PMP`, { cause: err });
    }
    const wrapped: MappingGateway = {
      kind: 'nat-pmp',
      async map(internalPort, ttlMs, sig) {
        const host = opts.internalHost ?? (await localAddressTowards(ip));
        // The library writes `ttl` into the request as is, and NAT-PMP lifetimes are seconds.
        const m = await gateway.map(internalPort, host, {
          protocol: 'udp',
          externalPort: internalPort,
          ttl: Math.max(1, Math.round(ttlMs / 1000)),
          autoRefresh: false,
          signal: sig,
        });
        return { externalHost: m.externalHost, externalPort: m.externalPort };
      },
      async unmap(internalPort, sig) {
        // Not gateway.unmap: in 4.0.5 it deletes the TCP mapping whatever was mapped. A request
        // with lifetime 0 deletes (RFC 6886 section 3.4).
        await gateway.map(internalPort, '', { protocol: 'udp', externalPort: internalPort, ttl: 0, autoRefresh: false, signal: sig });
      },
      async close() {
        await gateway.stop();
      },
    };
    return wrapped;
  };
}
