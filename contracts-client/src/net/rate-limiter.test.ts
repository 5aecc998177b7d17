import { describe, expect, it } from 'vitest';
import { KeyedRateLimiter, addressRange } from './rate-limiter.js';

describe('addressRange', () => {
  it('keys IPv6 by /64 and IPv4 (also mapped) by /32', () => {
    expect(addressRange('2001:db8:1:2:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressRange('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressRange('2001:0db8:0001:0002:ffff::9')).toBe('2001:db8:1:2::/64');
    expect(addressRange('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressRange('::1')).toBe('0:0:0:0::/64');
    expect(addressRange('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressRange('203.0.113.7')).toBe('203.0.113.7');
    expect(addressRange('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(addressRange(undefined)).toBe('unknown');
  });
});

describe('KeyedRateLimiter', () => {
  it('refills at its rate up to its burst', () => {
    let now = 0;
    const l = new KeyedRateLimiter(10, 20, 100, () => now);
    expect(l.allow('a', 20)).toBe(true);
    expect(l.allow('a')).toBe(false);
    // Another key has its own bucket.
    expect(l.allow('b', 20)).toBe(true);
    now += 500;
    expect(l.allow('a', 5)).toBe(true);
    expect(l.allow('a')).toBe(false);
  });

  it('an attacker rotating through a /64 is one client, and rotating /64s cannot evict a limited entry', () => {
    let now = 0;
    const l = new KeyedRateLimiter(1, 5, 64, () => now);
    // Rotating addresses inside one /64: one bucket.
    for (let i = 0; i < 5; i++) expect(l.allow(addressRange(`2001:db8:0:1::${i.toString(16)}`))).toBe(true);
    expect(l.allow(addressRange('2001:db8:0:1::ffff'))).toBe(false);
    // Thousands of fresh /64s fill the table and then share one overflow bucket...
    let admitted = 0;
    for (let i = 0; i < 5_000; i++) if (l.allow(addressRange(`2001:db8:${(i >> 16).toString(16)}:${(i & 0xffff).toString(16)}::1`))) admitted++;
    expect(admitted).toBeLessThanOrEqual(64 + 5);
    expect(l.size).toBeLessThanOrEqual(64);
    // ...while the limited /64 stays limited: its entry was not evicted to start afresh.
    expect(l.allow(addressRange('2001:db8:0:1::1234'))).toBe(false);
    // Entries that refilled are forgotten (forgetting them changes nothing).
    now += 10_000;
    expect(l.allow(addressRange('2001:db8:9:9::1'))).toBe(true);
    expect(l.size).toBeLessThan(64);
  });
});
