import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RELAY_ID_HEADER } from '@relaycast/protocol';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetworkMonitor } from './network-monitor.js';
import { countBodyBytes, startWebServer, type WebServer } from './web-server.js';

describe('the origin counters of /api/network', () => {
  let dir: string;
  let web: WebServer;
  let monitor: NetworkMonitor;
  const segment = Buffer.alloc(100_000, 7);

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rc-web-'));
    await mkdir(join(dir, 'media', 'vod'), { recursive: true });
    await writeFile(join(dir, 'media', 'vod', 'seg0.ts'), segment);
    const logger = pino({ level: 'silent' });
    monitor = new NetworkMonitor({ trackerHttpUrl: 'http://127.0.0.1:9', slots: [], logger });
    web = await startWebServer({ port: 0, mediaDir: join(dir, 'media'), sdkDir: join(dir, 'media'), monitor, logger });
  });

  afterAll(async () => {
    await web?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('count the body bytes sent: whole files, ranges, nothing for HEAD, by who asked', async () => {
    const url = `${web.url}media/vod/seg0.ts`;
    expect((await fetch(url, { method: 'HEAD' })).headers.get('content-length')).toBe(String(segment.length));
    expect((await (await fetch(url)).arrayBuffer()).byteLength).toBe(segment.length);
    expect((await (await fetch(url, { headers: { range: 'bytes=1000-1999' } })).arrayBuffer()).byteLength).toBe(1000);
    expect((await (await fetch(url, { headers: { [RELAY_ID_HEADER]: 'relay-1' } })).arrayBuffer()).byteLength).toBe(segment.length);
    // Counted when the socket has taken the bytes, which can be a moment after the client has them.
    await expect.poll(() => monitor.origin.bytesToViewers).toBe(segment.length + 1000);
    await expect.poll(() => monitor.origin.bytesToRelays).toBe(segment.length);
    expect(monitor.origin).toMatchObject({ requestsFromViewers: 3, requestsFromRelays: 1 });
  });
});

describe('countBodyBytes', () => {
  let server: Server;
  let port: number;
  let handler: (res: ServerResponse) => void;
  const counted: { bytes: number; closed: Promise<void> }[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      const c = { bytes: 0, closed: new Promise<void>((resolve) => res.once('close', resolve)) };
      counted.push(c);
      countBodyBytes(req, res, (n) => (c.bytes += n));
      handler(res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  /** `method` /, reading at most `readAtMost` bytes before hanging up. Resolves with the bytes read. */
  const get = (readAtMost = Infinity, method = 'GET'): Promise<number> =>
    new Promise((resolve) => {
      let got = 0;
      const req = request({ port, host: '127.0.0.1', path: '/', method, agent: false }, (res) => {
        res.on('data', (d: Buffer) => {
          got += d.length;
          if (got >= readAtMost) {
            req.destroy();
            resolve(got);
          }
        });
        res.on('end', () => resolve(got));
      });
      req.on('error', () => resolve(got));
      req.end();
    });

  it('counts a streamed body chunk by chunk, strings by their encoded length', async () => {
    handler = (res) => {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.write('héllo'); // 6 bytes in UTF-8
      setTimeout(() => {
        res.write(Buffer.alloc(1000));
        res.end(Buffer.alloc(10));
      }, 20);
    };
    expect(await get()).toBe(1016);
    const c = counted.at(-1)!;
    await c.closed;
    expect(c.bytes).toBe(1016);
  });

  it('counts nothing for a HEAD, whose body Node drops', async () => {
    handler = (res) => {
      res.writeHead(200, { 'content-length': 5 });
      res.write('hello');
      res.end();
    };
    expect(await get(Infinity, 'HEAD')).toBe(0);
    const c = counted.at(-1)!;
    await c.closed;
    expect(c.bytes).toBe(0);
  });

  it('does not count what an aborted response never sent', async () => {
    // Far more than loopback socket buffers hold, so most of it is still queued when the client leaves.
    const body = Buffer.alloc(48 * 1024 * 1024);
    handler = (res) => res.writeHead(200, { 'content-length': body.length }).end(body);
    const read = await get(64 * 1024);
    const c = counted.at(-1)!;
    await c.closed;
    expect(read).toBeLessThan(body.length);
    expect(c.bytes).toBeLessThan(body.length);
  });
});
