import { describe, expect, it } from 'vitest';
import { stripDuplicateContentLength } from './fetch-content-length.js';

describe('stripDuplicateContentLength', () => {
  it('drops a caller-set Content-Length on a string body and keeps the other headers', () => {
    const out = stripDuplicateContentLength({ method: 'POST', headers: { 'Content-Length': '5', SOAPAction: '"x"' }, body: 'hello' });
    const headers = new Headers(out?.headers);
    expect(headers.has('content-length')).toBe(false);
    expect(headers.get('soapaction')).toBe('"x"');
    expect(out?.body).toBe('hello');
  });

  it('leaves other requests as they are', () => {
    const init = { method: 'GET', headers: { Accept: 'text/xml' } };
    expect(stripDuplicateContentLength(init)).toBe(init);
    expect(stripDuplicateContentLength(undefined)).toBeUndefined();
  });
});
