import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import type { FindGateway, MappingGateway } from './port-mapping.js';
import { preferredGateway } from './preferred-gateway.js';

function gateway(kind: MappingGateway['kind'], closed: string[]): MappingGateway {
  return {
    kind,
    map: async () => ({ externalHost: '203.0.113.1', externalPort: 1 }),
    unmap: async () => undefined,
    close: async () => void closed.push(kind),
  };
}

/** A finder that answers after `ms`, fails, or never answers and ignores aborts (as a library may). */
function finder(kind: MappingGateway['kind'], closed: string[], behaviour: number | 'fail' | 'hang'): FindGateway {
  return () =>
    behaviour === 'hang'
      ? new Promise(() => undefined)
      : behaviour === 'fail'
        ? Promise.reject(new Error(`${kind} said no`))
        : new Promise((resolve) => setTimeout(() => resolve(gateway(kind, closed)), behaviour));
}

describe('preferredGateway', () => {
  it('takes UPnP when both answer within the grace period, and closes the other', async () => {
    const closed: string[] = [];
    const find = preferredGateway([finder('upnp', closed, 60), finder('nat-pmp', closed, 5)], 500);
    expect((await find(AbortSignal.timeout(5_000))).kind).toBe('upnp');
    await new Promise((r) => setTimeout(r, 20));
    expect(closed).toEqual(['nat-pmp']);
  });

  it('takes NAT-PMP when UPnP fails or stays silent past the grace period', async () => {
    expect((await preferredGateway([finder('upnp', [], 'fail'), finder('nat-pmp', [], 5)], 500)(AbortSignal.timeout(5_000))).kind).toBe('nat-pmp');
    const t0 = performance.now();
    expect((await preferredGateway([finder('upnp', [], 'hang'), finder('nat-pmp', [], 5)], 100)(AbortSignal.timeout(5_000))).kind).toBe('nat-pmp');
    expect(performance.now() - t0).toBeLessThan(1_000);
  });

  it('rejects at the deadline even when every search ignores the abort', async () => {
    const t0 = performance.now();
    const err: unknown = await preferredGateway(
      [finder('upnp', [], 'hang'), finder('nat-pmp', [], 'hang')],
      100,
    )(AbortSignal.timeout(150)).catch((e: unknown) => e);
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(err).toBeInstanceOf(Error);
  });

  it('rejects with RC_ERR_NAT_NO_GATEWAY when every search fails', async () => {
    const err: unknown = await preferredGateway(
      [finder('upnp', [], 'fail'), finder('nat-pmp', [], 'fail')],
      100,
    )(AbortSignal.timeout(5_000)).catch((e: unknown) => e);
    expect(isRelaycastError(err, ErrorCode.NAT_NO_GATEWAY)).toBe(true);
  });
});
