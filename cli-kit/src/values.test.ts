import { ErrorCode, RelaycastError } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { U64_MAX, bool, durationMs, enumOf, float, int, listOf, parseValue, text, u64, url } from './values.js';

function refusal(f: () => unknown): RelaycastError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(RelaycastError);
    expect((err as RelaycastError).code).toBe(ErrorCode.CONFIG_INVALID);
    return err as RelaycastError;
  }
  throw new Error('expected RC_ERR_CONFIG_INVALID');
}

describe('int', () => {
  const port = int({ min: 1, max: 65_535 });
  it('reads flag strings, JSON numbers and typed values within bounds', () => {
    expect(port.parse('8080', '--port')).toBe(8080);
    expect(port.parse(' 1 ', '--port')).toBe(1);
    expect(port.parse(65_535, 'port')).toBe(65_535);
    expect(int().parse('0', '--n')).toBe(0);
  });
  it('refuses what is not an integer in bounds, naming the flag and the value', () => {
    expect(refusal(() => port.parse('0', '--port')).message).toBe('--port must be an integer in 1..65535 (got "0")');
    expect(refusal(() => port.parse('70000', '--port')).message).toMatch(/^--port /);
    for (const bad of ['ten', '1.5', '', '0x10', '1e3', 1.5, true, null]) refusal(() => port.parse(bad, '--port'));
    expect(refusal(() => int().parse('-1', '--capacity')).message).toBe('--capacity must be an integer of at least 0 (got "-1")');
    refusal(() => int().parse(String(2 ** 53), '--n'));
  });
});

describe('u64', () => {
  it('reads token amounts up to 2^64-1 as bigint, from strings, safe JSON numbers and bigints', () => {
    const t = u64();
    expect(t.parse('18446744073709551615', '--price-per-gib')).toBe(U64_MAX);
    expect(t.parse(7, 'pricePerGiB')).toBe(7n);
    expect(t.parse(5n, 'pricePerGiB')).toBe(5n);
    for (const bad of ['18446744073709551616', '-5', '1.5', '', 'abc', 1.5, -1]) refusal(() => t.parse(bad, '--price-per-gib'));
    expect(refusal(() => u64({ min: 1n }).parse('0', '--budget')).message).toMatch(/^--budget must be an integer of at least 1/);
  });
});

describe('float', () => {
  it('reads a bounded number', () => {
    expect(float({ min: 0, max: 1 }).parse('0.25', '--min-health')).toBe(0.25);
    for (const bad of ['1.5', 'NaN', '', 'x', Infinity]) refusal(() => float({ min: 0, max: 1 }).parse(bad, '--min-health'));
  });
});

describe('durationMs', () => {
  it('reads milliseconds, bare or with a unit', () => {
    const d = durationMs({ min: 100 });
    expect(d.parse('1500', '--interval-ms')).toBe(1500);
    expect(d.parse('500ms', '--interval-ms')).toBe(500);
    expect(d.parse('10s', '--interval-ms')).toBe(10_000);
    expect(d.parse('5m', '--interval-ms')).toBe(300_000);
    expect(d.parse('1h', '--interval-ms')).toBe(3_600_000);
    expect(d.parse(60_000, 'intervalMs')).toBe(60_000);
    expect(refusal(() => d.parse('5', '--interval-ms')).message).toMatch(/^--interval-ms must be a duration in ms of at least 100/);
    for (const bad of ['1.5s', '10 days', '-1', 99, 1.5]) refusal(() => d.parse(bad, '--interval-ms'));
    refusal(() => durationMs({ max: 1_000 }).parse('2s', '--t'));
  });
});

describe('url', () => {
  it('accepts only the allowed protocols and keeps the string given', () => {
    const ws = url({ protocols: ['ws:', 'wss:'] });
    expect(ws.parse('ws://127.0.0.1:9000', '--tracker')).toBe('ws://127.0.0.1:9000');
    expect(ws.parse('wss://t.example/x', '--tracker')).toBe('wss://t.example/x');
    expect(refusal(() => ws.parse('http://x', '--tracker')).message).toBe('--tracker must be a ws:// or wss:// URL (got "http://x")');
    for (const bad of ['not a url', '', 5]) refusal(() => ws.parse(bad, '--tracker'));
    expect(url({ protocols: ['stun:'] }).parse('stun:stun.example:3478', '--stun')).toBe('stun:stun.example:3478');
  });
});

describe('enumOf, text, bool', () => {
  it('enumOf accepts exactly the listed words', () => {
    const e = enumOf(['ignore', 'keep'] as const);
    expect(e.parse('keep', '--cache-key-query')).toBe('keep');
    expect(e.metavar).toBe('ignore|keep');
    expect(refusal(() => e.parse('strip', '--cache-key-query')).message).toBe('--cache-key-query must be one of ignore, keep (got "strip")');
  });
  it('text checks a pattern and hides secrets', () => {
    const region = text({ pattern: /^[a-z0-9-]{0,32}$/, expected: 'at most 32 characters of [a-z0-9-]', allowEmpty: true });
    expect(region.parse('eu-west', '--region')).toBe('eu-west');
    expect(region.parse('', '--region')).toBe('');
    expect(refusal(() => region.parse('EU West', '--region')).message).toBe('--region must be at most 32 characters of [a-z0-9-] (got "EU West")');
    refusal(() => text().parse('  ', '--keypair'));
    const token = text({ pattern: /^\S{16,}$/, expected: '16 or more characters', secret: true });
    expect(refusal(() => token.parse('short-secret', '--status-token')).message).not.toContain('short-secret');
  });
  it('bool reads switches from flags, the environment and JSON', () => {
    const b = bool();
    expect(b.kind).toBe('boolean');
    expect([b.parse(true, 'x'), b.parse('1', 'X'), b.parse('TRUE', 'X'), b.parse('false', 'X'), b.parse('0', 'X')]).toEqual([true, true, true, false, false]);
    for (const bad of ['yes', 'maybe', 1, null]) refusal(() => b.parse(bad, 'RELAYCAST_ALLOW'));
  });
});

describe('listOf', () => {
  it('reads repeated flags, comma-separated environment values and JSON arrays, each item checked', () => {
    const origins = listOf(url({ protocols: ['http:', 'https:'] }), { min: 1 });
    expect(origins.multiple).toBe(true);
    expect(origins.parse(['https://a/', 'https://b/'], '--allow-origin')).toEqual(['https://a/', 'https://b/']);
    expect(origins.parse('https://a/, https://b/', 'RELAYCAST_ALLOW_ORIGIN')).toEqual(['https://a/', 'https://b/']);
    expect(refusal(() => origins.parse(['ftp://a/'], '--allow-origin')).message).toMatch(/^--allow-origin must be an http:\/\/ or https:\/\/ URL/);
    expect(refusal(() => origins.parse([], '--allow-origin')).message).toBe('--allow-origin is required (at least one)');
    refusal(() => origins.parse(5, 'config: allowedOrigins'));
    refusal(() => listOf(int(), { max: 1 }).parse(['1', '2'], '--n'));
  });
});

describe('every type', () => {
  it('parse of its own output is the same value (start*() options are checked by the same parsers)', () => {
    const cases: [{ parse(raw: unknown, name: string): unknown }, unknown][] = [
      [int({ max: 10 }), '7'],
      [u64(), '123'],
      [durationMs(), '2s'],
      [url({ protocols: ['https:'] }), 'https://x/'],
      [enumOf(['a', 'b'] as const), 'b'],
      [text(), ' path '],
      [bool(), 'true'],
      [listOf(int()), '1,2'],
    ];
    for (const [t, raw] of cases) {
      const once = t.parse(raw, 'x');
      expect(t.parse(once, 'x')).toEqual(once);
    }
  });
  it('parseValue leaves an absent flag undefined', () => {
    expect(parseValue(int(), undefined, '--port')).toBeUndefined();
    expect(parseValue(int(), '3', '--port')).toBe(3);
  });
});
