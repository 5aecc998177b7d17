import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, RelaycastError, isRelaycastError, raceAbort } from '@relaycast/protocol';
import type { FindGateway, MappingGateway } from './port-mapping.js';

/**
 * Looks for gateways with every finder at once and prefers the first finder's: once another one
 * answers, the preferred one still gets `graceMs` to answer too. A router with only one protocol
 * enabled is found without waiting out the other's search, and one with both is used over UPnP
 * (the protocol operators' router pages call "UPnP").
 */
export function preferredGateway(finders: FindGateway[], graceMs: number): FindGateway {
  return async (signal) => {
    const searches = new AbortController();
    const all = AbortSignal.any([signal, searches.signal]);
    const attempts = finders.map((find) => find(all));
    for (const a of attempts) a.catch(() => undefined);
    let winner: MappingGateway;
    try {
      // The libraries' searches do not always stop on abort (an SSDP search was seen outliving it).
      const first = await raceAbort(Promise.any(attempts.map((a, index) => a.then((gateway) => ({ gateway, index })))), signal);
      winner = first.gateway;
      if (first.index !== 0) {
        const graceOver = new AbortController();
        const preferred = attempts[0]!.catch(() => undefined);
        const grace = sleep(graceMs, undefined, { signal: graceOver.signal }).catch(() => undefined);
        winner = (await raceAbort(Promise.race([preferred, grace]), signal).catch(() => undefined)) ?? winner;
        graceOver.abort();
      }
    } catch (err) {
      for (const a of attempts)
        void a.then(
          (g) => g.close?.(),
          () => undefined,
        );
      if (isRelaycastError(err)) throw err;
      const errors = err instanceof AggregateError ? err.errors : [err];
      throw new RelaycastError(ErrorCode.NAT_NO_GATEWAY, 'no UPnP IGD or NAT-PMP gateway answered', { cause: errors[0] });
    } finally {
      searches.abort();
    }
    // The others may have found something too: release it.
    for (const a of attempts)
      void a.then(
        (g) => (g === winner ? undefined : g.close?.()),
        () => undefined,
      );
    return winner;
  };
}
