import { readFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { pmpNat } from '@achingbrain/nat-port-mapper';
import { ErrorCode, RelaycastError, isRelaycastError, raceAbort } from '@relaycast/protocol';
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
        const m = await gateway.map(internalPort, host, { protocol: 'udp', externalPort: internalPort, ttl: Math.max(1, Math.round(ttlMs / 1000)), autoRefresh: false, signal: sig });
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

/**
 * Looks for gateways with every finder at once and prefers the first finder's: once another one
 * answers, the preferred one still gets `graceMs` to answer too. A router with only one protocol
 * enabled is found without waiting out the other's search, and one with both is used over UPnP
 * (the protocol operators' router pages call "UPnP").
 */
export function preferredGateway(finders: FindGateway[], graceMs: number): FindGateway {
  return async (signal) => {
    const ac = new AbortController();
    const all = AbortSignal.any([signal, ac.signal]);
    const attempts = finders.map((find) => find(all));
    for (const a of attempts) a.catch(() => undefined);
    const preferred = attempts[0]!.catch(() => undefined);
    let winner: MappingGateway;
    try {
      // The libraries' searches do not always stop on abort (an SSDP search was seen outliving it).
      winner = await raceAbort(Promise.any(attempts), signal);
      if (winner !== (await Promise.race([preferred, Promise.resolve(null)]))) {
        const graceOver = new AbortController();
        const grace = sleep(graceMs, undefined, { signal: graceOver.signal }).catch(() => undefined);
        winner = (await raceAbort(Promise.race([preferred, grace]), signal).catch(() => undefined)) ?? winner;
        graceOver.abort();
      }
    } catch (err) {
      for (const a of attempts) void a.then((g) => g.close?.(), () => undefined);
      if (isRelaycastError(err)) throw err;
      const errors = err instanceof AggregateError ? err.errors : [err];
      throw new RelaycastError(ErrorCode.NAT_NO_GATEWAY, 'no UPnP IGD or NAT-PMP gateway answered', { cause: errors[0] });
    } finally {
      ac.abort();
    }
    // The others may have found something too: release it.
    for (const a of attempts) void a.then((g) => (g === winner ? undefined : g.close?.()), () => undefined);
    return winner;
  };
}
