import { afterEach, describe, expect, it, vi } from 'vitest';
import pino from 'pino';
import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { PortMapping, renewDelayMs, type MappingGateway } from './port-mapping.js';

const logger = pino({ level: 'silent' });
const PORT = 40_123;
const TTL_MS = 60_000;

function fakeGateway(): MappingGateway & { maps: number[]; unmaps: number[]; fail: boolean } {
  const g = {
    maps: [] as number[],
    unmaps: [] as number[],
    kind: 'upnp' as const,
    fail: false,
    async map(port: number) {
      if (g.fail) throw new Error('gateway said no');
      g.maps.push(port);
      return { externalHost: '11.0.0.1', externalPort: port };
    },
    async unmap(port: number) {
      g.unmaps.push(port);
    },
  };
  return g;
}

afterEach(() => vi.useRealTimers());

describe('PortMapping', () => {
  it('maps on start, renews before the lease ends, removes on close', async () => {
    vi.useFakeTimers();
    const gw = fakeGateway();
    const pm = new PortMapping({ port: PORT, ttlMs: TTL_MS, logger, findGateway: async () => gw });
    const state = await pm.start(new AbortController().signal);
    expect(state).toMatchObject({ status: 'mapped', externalHost: '11.0.0.1', externalPort: PORT, renewals: 0 });
    expect(renewDelayMs(TTL_MS)).toBeLessThan(TTL_MS);
    await vi.advanceTimersByTimeAsync(renewDelayMs(TTL_MS) * 2);
    expect(gw.maps).toEqual([PORT, PORT, PORT]);
    expect(pm.state().renewals).toBe(2);
    await pm.close(new AbortController().signal);
    expect(gw.unmaps).toEqual([PORT]);
    await vi.advanceTimersByTimeAsync(renewDelayMs(TTL_MS) * 2);
    expect(gw.maps).toHaveLength(3);
    expect(pm.state().status).toBe('off');
  });

  it('a failed renewal marks the mapping failed and is retried', async () => {
    vi.useFakeTimers();
    const gw = fakeGateway();
    const pm = new PortMapping({ port: PORT, ttlMs: TTL_MS, logger, findGateway: async () => gw });
    await pm.start(new AbortController().signal);
    gw.fail = true;
    await vi.advanceTimersByTimeAsync(renewDelayMs(TTL_MS));
    expect(pm.state()).toMatchObject({ status: 'failed', errorCode: ErrorCode.NAT_MAPPING_FAILED });
    gw.fail = false;
    await vi.advanceTimersByTimeAsync(renewDelayMs(TTL_MS));
    expect(pm.state().status).toBe('mapped');
    await pm.close(new AbortController().signal);
  });

  it('no gateway: RC_ERR_NAT_NO_GATEWAY, and close has nothing to remove', async () => {
    const pm = new PortMapping({
      port: PORT,
      logger,
      findGateway: async () => {
        throw new Error('no answer');
      },
    });
    const err = await pm.start(new AbortController().signal).catch((e: unknown) => e);
    expect(isRelaycastError(err, ErrorCode.NAT_NO_GATEWAY)).toBe(true);
    await pm.close(new AbortController().signal);
  });

  it('a refused mapping: RC_ERR_NAT_MAPPING_FAILED', async () => {
    const gw = fakeGateway();
    gw.fail = true;
    const pm = new PortMapping({ port: PORT, logger, findGateway: async () => gw });
    const err = await pm.start(new AbortController().signal).catch((e: unknown) => e);
    expect(isRelaycastError(err, ErrorCode.NAT_MAPPING_FAILED)).toBe(true);
    expect(pm.state().status).toBe('failed');
    await pm.close(new AbortController().signal);
  });

  it('an aborted start: RC_ERR_ABORTED before any gateway call', async () => {
    const ac = new AbortController();
    ac.abort();
    const gw = fakeGateway();
    const pm = new PortMapping({ port: PORT, logger, findGateway: async () => gw });
    const err = await pm.start(ac.signal).catch((e: unknown) => e);
    expect(isRelaycastError(err, ErrorCode.ABORTED)).toBe(true);
    expect(gw.maps).toEqual([]);
  });
});
