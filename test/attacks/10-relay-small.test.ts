/**
 * Issue 14, finding 10, the relay's two small items:
 *  - "The relay's status server has no `Host` check (DNS rebinding → `PUT /limits`)."
 *  - "`%252e%252e` passes the allowlist."
 *
 * Real processes: the relay bin with a status port, a tracker, an HTTP origin beside an "internal"
 * directory, and a raw viewer. A rebinding page reaches 127.0.0.1:<port> under its own name (its
 * Host header) or posts from its own origin (an Origin header): both are refused with
 * RC_ERR_HOST_REFUSED (403) and the limit is unchanged, while the operator's own requests still
 * work. Double (and deeper) percent-encodings of dot segments and separators are refused with
 * RC_ERR_ORIGIN_NOT_ALLOWED before any origin request, while ordinary segments are served.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { ErrorCode, FrameType, RELAY_STATUS_PATHS, type RelayFrame } from '@relaycast/protocol';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { OriginServer } from '../helpers/origin-server.js';
import { fetchThrough as fetchOver, openRawChannel, type RawChannel } from '../helpers/raw-viewer.js';
import { useProcesses } from '../helpers/use-processes.js';
import { startVodRelay, type VodRelay } from '../helpers/vod-relay.js';

/** A raw HTTP request to 127.0.0.1:port with exactly these headers (fetch forbids setting Host). */
function raw(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body = '',
): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method, path, setHost: false, headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> });
          } catch (err) {
            reject(new Error(`not JSON (${res.statusCode}): ${text}`, { cause: err }));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('attack 10 (relay): status server DNS rebinding, double-encoded dot segments', () => {
  useProcesses();
  let vod: VodRelay;
  let dir: string;
  let origin: OriginServer;
  let port: number;
  let ch: RawChannel;
  let nextId = 1;

  beforeAll(async () => {
    vod = await startVodRelay('rc-attack10-', ['--max-upload-bytes-per-sec', '0']);
    ({ dir, origin } = vod);
    await mkdir(join(dir, 'private'));
    await writeFile(join(dir, 'private', 'secret.txt'), 'not for viewers');
    port = vod.relay.statusPort;
    ch = await openRawChannel(vod.tracker.url, vod.swarmId, vod.relay.relayId);
  });

  afterAll(async () => {
    ch?.close();
    await vod?.close();
  });

  const fetchThrough = (url: string): Promise<{ last: RelayFrame; data: Uint8Array }> => fetchOver(ch, nextId++, url, { timeoutMs: 20_000 });

  const cap = async (): Promise<unknown> => (await raw(port, 'GET', RELAY_STATUS_PATHS.status, { host: `127.0.0.1:${port}` })).json['maxUploadBytesPerSec'];

  it('refuses a DNS-rebinding page (foreign Host) and a cross-origin post with RC_ERR_HOST_REFUSED; the limit stays; the operator still changes it', async () => {
    const body = JSON.stringify({ maxUploadBytesPerSec: 1 });
    // The page at http://attacker.example:<port>/ rebinds its name to 127.0.0.1: same origin for the
    // browser, so it may read and write, but the Host header is its own name.
    for (const host of [`attacker.example:${port}`, 'attacker.example', `127.0.0.1.nip.io:${port}`]) {
      const put = await raw(port, 'PUT', RELAY_STATUS_PATHS.limits, { host, 'content-type': 'text/plain' }, body);
      expect(put.status, host).toBe(403);
      expect(put.json['code']).toBe(ErrorCode.HOST_REFUSED);
      const get = await raw(port, 'GET', RELAY_STATUS_PATHS.status, { host });
      expect(get.status, host).toBe(403);
      expect(get.json['code']).toBe(ErrorCode.HOST_REFUSED);
    }
    // A page on any origin posting to 127.0.0.1 directly (a "simple" request needs no preflight).
    const cross = await raw(
      port,
      'PUT',
      RELAY_STATUS_PATHS.limits,
      { host: `127.0.0.1:${port}`, origin: 'http://attacker.example', 'content-type': 'text/plain' },
      body,
    );
    expect(cross.status).toBe(403);
    expect(cross.json['code']).toBe(ErrorCode.HOST_REFUSED);
    expect(await cap()).toBe(0);

    // The honest path: the operator's tools (no Origin, loopback Host) read and change the limit.
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      expect((await raw(port, 'GET', RELAY_STATUS_PATHS.status, { host })).status, host).toBe(200);
    }
    const ok = await raw(
      port,
      'PUT',
      RELAY_STATUS_PATHS.limits,
      { host: `localhost:${port}`, 'content-type': 'application/json' },
      JSON.stringify({ maxUploadBytesPerSec: 5_000_000 }),
    );
    expect(ok.status).toBe(200);
    expect(await cap()).toBe(5_000_000);
    expect((await fetch(`http://127.0.0.1:${port}${RELAY_STATUS_PATHS.status}`)).ok).toBe(true);
  });

  it('refuses %252e%252e and other double encodings without an origin request, and serves ordinary segments', async () => {
    const before = origin.requests.length;
    const tricks = [
      `${origin.url}vod/%252e%252e/private/secret.txt`,
      `${origin.url}vod/%252E%252E/private/secret.txt`,
      `${origin.url}vod/180p/%252e%252e/%252e%252e/private/secret.txt`,
      `${origin.url}vod/..%252fprivate%252fsecret.txt`,
      `${origin.url}vod/%252e%252e%252fprivate%252fsecret.txt`,
      `${origin.url}vod/..%255cprivate%255csecret.txt`,
      `${origin.url}vod/%25252e%25252e/private/secret.txt`,
      `${origin.url}vod/%25%32%65%25%32%65/private/secret.txt`,
      `${origin.url}vod/180p/seg000.ts%2500.txt`,
    ];
    for (const url of tricks) {
      const { last } = await fetchThrough(url);
      expect(last.type, url).toBe(FrameType.ERROR);
      expect(last.type === FrameType.ERROR ? last.code : undefined, url).toBe(ErrorCode.ORIGIN_NOT_ALLOWED);
    }
    expect(origin.requests.length).toBe(before);

    const { last, data } = await fetchThrough(`${origin.url}vod/180p/seg000.ts`);
    expect(last.type).toBe(FrameType.END);
    expect(Buffer.compare(Buffer.from(data), await readFile(join(dir, 'vod/180p/seg000.ts')))).toBe(0);
    for (const r of origin.requests) expect(r.path.startsWith('/vod/'), r.path).toBe(true);
  });
});
