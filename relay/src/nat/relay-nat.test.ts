import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { PortMapping, type MappingGateway } from './port-mapping.js';
import { RelayNat } from './relay-nat.js';

const logger = pino({ level: 'silent' });

function mapping(found: boolean): PortMapping {
  const gw: MappingGateway = {
    kind: 'nat-pmp',
    map: async (port) => ({ externalHost: '203.0.113.9', externalPort: port }),
    unmap: async () => undefined,
  };
  return new PortMapping({ port: 40_000, logger, findGateway: async () => (found ? gw : Promise.reject(new Error('none'))) });
}

describe('RelayNat', () => {
  it('with a mapping: reports it, adds the mapped address as a server-reflexive candidate, and says so in the hint', async () => {
    const nat = new RelayNat({
      rtcPort: 40_000,
      bindAddress: '192.168.1.20',
      mapping: mapping(true),
      trackerHost: '127.0.0.1',
      onChange: () => undefined,
      logger,
    });
    await nat.start(AbortSignal.timeout(5_000));
    expect(nat.report()).toEqual({ portMapping: 'nat-pmp', publicAddress: '203.0.113.9', mappedPort: 40_000 });
    const [candidate, ...rest] = nat.extraCandidates();
    expect(rest).toEqual([]);
    expect(candidate).toMatch(/^candidate:rcmap 1 UDP \d+ 203\.0\.113\.9 40000 typ srflx raddr 192\.168\.1\.20 rport 40000$/);
    expect(nat.status().hint).toContain('Waiting');
    nat.setReachability({ type: 'reachability', reachability: 'mapped', address: '203.0.113.9:40000' });
    expect(nat.status()).toMatchObject({ reachability: 'mapped', reachedAddress: '203.0.113.9:40000' });
    expect(nat.status().hint).toContain('NAT-PMP');
    await nat.close(AbortSignal.timeout(5_000));
    expect(nat.report().portMapping).toBe('none');
    expect(nat.extraCandidates()).toEqual([]);
  });

  it('without a gateway: reports a failed mapping, adds no candidate, and tells the operator which port to forward', async () => {
    const nat = new RelayNat({
      rtcPort: 40_000,
      bindAddress: '192.168.1.20',
      mapping: mapping(false),
      trackerHost: '127.0.0.1',
      onChange: () => undefined,
      logger,
    });
    await nat.start(AbortSignal.timeout(5_000));
    expect(nat.report()).toEqual({ portMapping: 'failed' });
    expect(nat.extraCandidates()).toEqual([]);
    nat.setReachability({ type: 'reachability', reachability: 'needs-turn' });
    expect(nat.status().hint).toContain('forward UDP port 40000 to 192.168.1.20:40000');
    await nat.close(AbortSignal.timeout(5_000));
  });

  it('takes only stun: URLs from the tracker for its own peer connections', () => {
    const nat = new RelayNat({ trackerHost: '127.0.0.1', onChange: () => undefined, logger, stunTimeoutMs: 50 });
    nat.setIceServers([{ urls: ['stun:127.0.0.1:9'] }, { urls: ['turn:127.0.0.1:9'], username: 'u', credential: 'c' }]);
    expect(nat.iceServerUrls()).toEqual(['stun:127.0.0.1:9']);
    nat.setIceServers(undefined);
    expect(nat.iceServerUrls()).toEqual([]);
    void nat.close(AbortSignal.timeout(1_000));
  });
});
