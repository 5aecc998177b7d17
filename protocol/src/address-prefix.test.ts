import { describe, expect, it } from 'vitest';
import { addressPrefix } from './address-prefix.js';

describe('addressPrefix', () => {
  it('masks IPv4 to the prefix, IPv4-mapped IPv6 included', () => {
    expect(addressPrefix('203.0.113.7', { ipv4: 24, ipv6: 48 })).toBe('203.0.113.0/24');
    expect(addressPrefix('::FFFF:203.0.113.9', { ipv4: 24, ipv6: 48 })).toBe('203.0.113.0/24');
    expect(addressPrefix('203.0.113.7', { ipv4: 32, ipv6: 64 })).toBe('203.0.113.7');
    expect(addressPrefix('256.0.0.1', { ipv4: 32, ipv6: 64 })).toBeUndefined();
  });

  it('keeps the first groups of IPv6 whatever the spelling, zone ignored', () => {
    const r = addressPrefix('2001:db8:1234:5678::1', { ipv4: 24, ipv6: 48 });
    expect(r).toBe('2001:db8:1234::/48');
    expect(addressPrefix('2001:0DB8:1234:ffff:aaaa:bbbb:cccc:dddd', { ipv4: 24, ipv6: 48 })).toBe(r);
    expect(addressPrefix('2001:db8:1234:1::1%eth0', { ipv4: 24, ipv6: 48 })).toBe(r);
    expect(addressPrefix('2001:db8::1', { ipv4: 32, ipv6: 64 })).toBe('2001:db8:0:0::/64');
    expect(addressPrefix('64:ff9b::192.0.2.1', { ipv4: 24, ipv6: 48 })).toBe('64:ff9b:0::/48');
  });

  it('refuses what is not an address', () => {
    for (const bad of ['unknown', '', '1:2:3:4:5:6:7:8:9', '1::2::3', 'g::1', '1:2:3:4:5:6:7::8', '1.2.3'])
      expect(addressPrefix(bad, { ipv4: 24, ipv6: 48 }), bad).toBeUndefined();
  });
});
