import { describe, expect, it } from 'vitest';
import { natHint } from './operator-hint.js';

describe('natHint', () => {
  it('names the port and the address to forward to when the relay needs TURN and has no mapping', () => {
    const hint = natHint({ reachability: 'needs-turn', rtcPort: 40000, localAddress: '192.168.1.20' });
    expect(hint).toContain('Forward UDP port 40000');
    expect(hint).toContain('192.168.1.20:40000');
    expect(hint).toContain('--map-port');
  });

  it('asks for --rtc-port when there is no single port to forward', () => {
    expect(natHint({ reachability: 'needs-turn' })).toContain('--rtc-port');
  });

  it('points past the router when a mapping exists and the relay is still unreachable', () => {
    const hint = natHint({ reachability: 'needs-turn', rtcPort: 40000, portMapping: { status: 'mapped', method: 'upnp', externalPort: 40000, renewals: 0 } });
    expect(hint).toContain('carrier-grade NAT');
    expect(hint).not.toContain('Forward UDP port');
  });

  it('says which protocol mapped the port and where viewers reach the relay', () => {
    const hint = natHint({ reachability: 'mapped', reachedAddress: '203.0.113.9:40000', portMapping: { status: 'mapped', method: 'nat-pmp', renewals: 1 } });
    expect(hint).toContain('203.0.113.9:40000');
    expect(hint).toContain('NAT-PMP');
  });

  it('reports a failed mapping with its error code', () => {
    const hint = natHint({ reachability: 'needs-turn', rtcPort: 40001, portMapping: { status: 'failed', errorCode: 'RC_ERR_NAT_NO_GATEWAY', renewals: 0 } });
    expect(hint).toContain('RC_ERR_NAT_NO_GATEWAY');
    expect(hint).toContain('UDP port 40001');
  });
});
