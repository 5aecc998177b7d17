import { describe, expect, it } from 'vitest';
import { RangeTable, SlidingWindow, addressRange } from './address-range.js';

describe('addressRange', () => {
  it('groups IPv4 by /24 and IPv4-mapped IPv6 with its IPv4 range', () => {
    expect(addressRange('203.0.113.7')).toBe('203.0.113.0/24');
    expect(addressRange('203.0.113.250')).toBe('203.0.113.0/24');
    expect(addressRange('203.0.114.1')).toBe('203.0.114.0/24');
    expect(addressRange('::ffff:203.0.113.9')).toBe('203.0.113.0/24');
    expect(addressRange('::FFFF:127.0.0.1')).toBe('127.0.0.0/24');
  });

  it('groups IPv6 by /48 whatever the spelling; rotating the lower 80 bits stays in one range', () => {
    const r = addressRange('2001:db8:1234:5678::1');
    expect(r).toBe('2001:db8:1234::/48');
    expect(addressRange('2001:0db8:1234:ffff:aaaa:bbbb:cccc:dddd')).toBe(r);
    expect(addressRange('2001:DB8:1234::')).toBe(r);
    expect(addressRange('2001:db8:1234:1::1%eth0')).toBe(r);
    expect(addressRange('2001:db8:1235::1')).not.toBe(r);
    expect(addressRange('::1')).toBe('0:0:0::/48');
    expect(addressRange('64:ff9b::192.0.2.1')).toBe('64:ff9b:0::/48');
  });

  it('keeps anything unparseable as its own range', () => {
    expect(addressRange('unknown')).toBe('unknown');
  });
});

describe('SlidingWindow', () => {
  it('admits at most max events per window and frees slots as they age out', () => {
    const w = new SlidingWindow(2, 100);
    expect(w.tryAdd(0)).toBe(true);
    expect(w.tryAdd(10)).toBe(true);
    expect(w.tryAdd(20)).toBe(false);
    expect(w.count(50)).toBe(2);
    expect(w.tryAdd(100)).toBe(true);
    expect(w.count(111)).toBe(1);
  });
});

describe('RangeTable', () => {
  it('remembers at most maxRanges, forgetting the least recently used first', () => {
    let made = 0;
    const t = new RangeTable(2, () => ++made);
    expect(t.get('a')).toBe(1);
    expect(t.get('b')).toBe(2);
    expect(t.get('a')).toBe(1);
    expect(t.get('c')).toBe(3);
    expect(t.size).toBe(2);
    expect(t.peek('b')).toBeUndefined();
    expect(t.peek('a')).toBe(1);
  });
});
