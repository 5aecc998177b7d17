import { ErrorCode, isRelaycastError } from '@relaycast/protocol';
import { describe, expect, it } from 'vitest';
import { createOriginPolicy } from './origin-policy.js';

const policy = createOriginPolicy(['http://127.0.0.1:8080/media/', 'https://cdn.example.com/hls', 'http://[::1]:9000/v/']);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isRelaycastError(err) ? err.code : 'not a RelaycastError';
  }
}

describe('origin policy', () => {
  it.each([
    ['http://127.0.0.1:8080/media/a.ts', 'http://127.0.0.1:8080/media/a.ts'],
    ['http://127.0.0.1:8080/media/sub/a.ts?token=1&x=..', 'http://127.0.0.1:8080/media/sub/a.ts?token=1&x=..'],
    ['http://127.0.0.1:8080/media/a.ts#frag', 'http://127.0.0.1:8080/media/a.ts'],
    ['HTTP://127.0.0.1:8080/media/a.ts', 'http://127.0.0.1:8080/media/a.ts'],
    ['https://cdn.example.com/hls', 'https://cdn.example.com/hls'],
    ['https://cdn.example.com/hls/x.ts', 'https://cdn.example.com/hls/x.ts'],
    ['https://CDN.Example.com:443/hls/x.ts', 'https://cdn.example.com/hls/x.ts'],
    ['http://[::1]:9000/v/a.ts', 'http://[::1]:9000/v/a.ts'],
    ['http://[0:0:0:0:0:0:0:1]:9000/v/a.ts', 'http://[::1]:9000/v/a.ts'],
    // A literal '%' in a name, and double encodings of harmless characters, stay allowed
    ['http://127.0.0.1:8080/media/100%25/a.ts', 'http://127.0.0.1:8080/media/100%25/a.ts'],
    ['http://127.0.0.1:8080/media/a%2541.ts', 'http://127.0.0.1:8080/media/a%2541.ts'],
  ])('allows %s', (raw, normalised) => {
    expect(policy.check(raw).href).toBe(normalised);
  });

  it.each([
    // Path escapes
    'http://127.0.0.1:8080/media-evil/a.ts',
    'http://127.0.0.1:8080/media',
    'http://127.0.0.1:8080/media/../x',
    'http://127.0.0.1:8080/media/../media/a.ts',
    'http://127.0.0.1:8080/media/%2e%2e/x',
    'http://127.0.0.1:8080/media/%2E%2e/x',
    'http://127.0.0.1:8080/media/.%2e/x',
    'http://127.0.0.1:8080/media/%2e./x',
    'http://127.0.0.1:8080/media/./a.ts',
    'http://127.0.0.1:8080/media/a/..',
    // Servlet path parameters: Tomcat and Jetty read "..;" as ".."
    'http://127.0.0.1:8080/media/..;/x',
    'http://127.0.0.1:8080/media/..;jsessionid=1/x',
    'http://127.0.0.1:8080/media/%2e%2e;/x',
    'http://127.0.0.1:8080/media/.;/a.ts',
    'http://127.0.0.1:8080/media/..%2fsecret',
    'http://127.0.0.1:8080/media/a%2f..%2f..%2fsecret',
    'http://127.0.0.1:8080/media/a%2Fb',
    'http://127.0.0.1:8080/media/a%5cb',
    'http://127.0.0.1:8080/media/a%00.ts',
    // Double (and deeper) encodings, which a proxy decoding once more would turn into the above
    'http://127.0.0.1:8080/media/%252e%252e/x',
    'http://127.0.0.1:8080/media/%252E%252E/x',
    'http://127.0.0.1:8080/media/.%252e/x',
    'http://127.0.0.1:8080/media/%252e%252e;/x',
    'http://127.0.0.1:8080/media/..%252fsecret',
    'http://127.0.0.1:8080/media/a%252fb',
    'http://127.0.0.1:8080/media/a%255cb',
    'http://127.0.0.1:8080/media/a%2500.ts',
    'http://127.0.0.1:8080/media/%25%32%65%25%32%65/x',
    'http://127.0.0.1:8080/media/%25252e%25252e/x',
    'http://127.0.0.1:8080/media/a%25252fb',
    'http://127.0.0.1:8080/media/%252525252e%252525252e/x',
    'http://127.0.0.1:8080/media\\..\\x',
    'http://127.0.0.1:8080/media/..\\x',
    'http://127.0.0.1:8080\\media/a.ts',
    'http://127.0.0.1:8080/me\tdia/a.ts',
    'http://127.0.0.1:8080/media/.\n./x',
    ' http://127.0.0.1:8080/media/a.ts',
    'http://127.0.0.1:8080/media/a b.ts',
    'https://cdn.example.com/hls-evil/x.ts',
    'https://cdn.example.com/hlsx',
    // Userinfo
    'http://user:pass@127.0.0.1:8080/media/a.ts',
    'http://user@127.0.0.1:8080/media/a.ts',
    'http://@127.0.0.1:8080/media/a.ts',
    'http://:@127.0.0.1:8080/media/a.ts',
    'http://127.0.0.1:8080@evil.example/media/a.ts',
    'http://evil.example#@127.0.0.1:8080/media/a.ts',
    // Scheme, host, port
    'https://127.0.0.1:8080/media/a.ts',
    'http://127.0.0.1:8081/media/a.ts',
    'http://127.0.0.1/media/a.ts',
    'http://127.0.0.2:8080/media/a.ts',
    'http://localhost:8080/media/a.ts',
    'https://cdn.example.com.evil.example/hls/x.ts',
    'https://cdn.example.com:8443/hls/x.ts',
    'http://cdn.example.com/hls/x.ts',
    'http://[::2]:9000/v/a.ts',
    'http://[::1]:9001/v/a.ts',
    'http://[::ffff:127.0.0.1]:8080/media/a.ts',
    'http://[::ffff:7f00:1]:8080/media/a.ts',
    'http://[0:0:0:0:0:ffff:127.0.0.1]:8080/media/a.ts',
    'http://[::127.0.0.1]:8080/media/a.ts',
    'http://0.0.0.0:8080/media/a.ts',
    'http://0:8080/media/a.ts',
    'http://169.254.169.254/latest/meta-data/',
    'http://[fe80::1]:8080/media/a.ts',
    'http://[::1%25lo]:9000/v/a.ts',
    'http://127.0.0.1:8080@127.0.0.1:8080/media/a.ts',
    'http://127.0.0.1:8080%2f@evil.example/media/a.ts',
    'http://evil.example\\@127.0.0.1:8080/media/a.ts',
    'http://127.0.0.1:8080/media/a.ts\r\nHost: evil.example',
    'http://127.0.0.1:8080/%6dedia/a.ts',
    'http://[::1]:8080/media/a.ts',
    'ftp://127.0.0.1:8080/media/a.ts',
    'file:///etc/passwd',
    'data:text/plain,hello',
    'javascript:alert(1)',
    'ws://127.0.0.1:8080/media/a.ts',
    'http:/127.0.0.1:8080/media/a.ts',
    '//127.0.0.1:8080/media/a.ts',
    '/media/a.ts',
    '',
    'not a url',
    'http://127.0.0.1:8080/media/' + 'a'.repeat(3000),
  ])('refuses %j', (raw) => {
    expect(codeOf(() => policy.check(raw))).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
  });

  it('matches a prefix without a trailing slash on a segment boundary only', () => {
    expect(policy.check('https://cdn.example.com/hls/a/b.ts').pathname).toBe('/hls/a/b.ts');
    expect(codeOf(() => policy.check('https://cdn.example.com/hls.m3u8'))).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
  });

  it('normalises prefixes at construction', () => {
    expect(createOriginPolicy(['HTTP://Example.COM:80/a/']).prefixes).toEqual(['http://example.com/a/']);
    expect(createOriginPolicy(['http://example.com']).prefixes).toEqual(['http://example.com/']);
  });

  it.each([
    'ftp://example.com/',
    'not a url',
    '',
    'http://user:pass@example.com/media/',
    'http://example.com/a/../b/',
    'http://example.com/a/%2e%2e/b/',
    'http://example.com/media/?q=1',
    'http://example.com/media/#x',
    'http://example.com\\media/',
  ])('refuses the invalid prefix %j with RC_ERR_CONFIG_INVALID', (prefix) => {
    expect(codeOf(() => createOriginPolicy([prefix]))).toBe(ErrorCode.CONFIG_INVALID);
  });

  it('accepts other spellings of an allowlisted IPv4 literal, which are the very same address', () => {
    for (const raw of [
      'http://2130706433:8080/media/a.ts',
      'http://0x7f.1:8080/media/a.ts',
      'http://0177.0.0.1:8080/media/a.ts',
      'http://127.1:8080/media/a.ts',
    ]) {
      expect(policy.check(raw).origin).toBe('http://127.0.0.1:8080');
    }
  });

  it('allows connections to public addresses, and to internal ones only where the allowlist names them', () => {
    for (const address of ['93.184.216.34', '8.8.8.8', '2606:2800:220:1:248:1893:25c8:1946', '2a00:1450:4001::200e']) {
      expect(policy.allowsAddress('cdn.example.com', address, 443)).toBe(true);
    }
    const internal = [
      '127.0.0.1',
      '127.0.0.2',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '255.255.255.255',
      '198.18.0.1',
      '::',
      '::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '64:ff9b::a00:1',
      '2002:7f00:1::',
      '2001:0:4136:e378:8000:63bf:3fff:fdd2',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      'ff02::1',
    ];
    for (const address of internal) expect(policy.allowsAddress('cdn.example.com', address, 443), address).toBe(false);
    // Named outright, on the named port only.
    expect(policy.allowsAddress('alias.example', '127.0.0.1', 8080)).toBe(true);
    expect(policy.allowsAddress('alias.example', '127.0.0.1', 8081)).toBe(false);
    expect(policy.allowsAddress('alias.example', '0:0:0:0:0:0:0:1', 9000)).toBe(true);
    expect(policy.allowsAddress('alias.example', '::1', 80)).toBe(false);
    // localhost means loopback, nothing else.
    expect(policy.allowsAddress('localhost', '127.0.0.1', 1234)).toBe(true);
    expect(policy.allowsAddress('LOCALHOST.', '::1', 1234)).toBe(true);
    expect(policy.allowsAddress('localhost', '10.0.0.1', 1234)).toBe(false);
    expect(policy.allowsAddress('a.example', 'not-an-ip', 80)).toBe(false);
    expect(createOriginPolicy(['https://cdn.example.com/hls/']).allowsAddress('cdn.example.com', '127.0.0.1', 443)).toBe(false);
  });

  it('allows nothing with an empty list', () => {
    expect(codeOf(() => createOriginPolicy([]).check('http://127.0.0.1:8080/media/a.ts'))).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
  });
});
